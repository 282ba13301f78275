"""Per-record work, compiled once per stream from its schema. Every record that leaves the tap fits the
SCHEMA the tap emitted for its stream, whatever the API sent:

- dates are normalised to ISO-8601 UTC with `Z` (a number where a date is declared is epoch time);
- the 0/1 the API sometimes sends for a boolean becomes false/true;
- an id the API sent as a string of digits ("123") where only integers are declared becomes that integer, so
  every field naming another stream's row has that row's key type (`chats.department_id = departments.id`);
- a value that still does not fit its declared type goes out as null, and the value the API sent is kept
  under its path (`history[3].skills_name`) in the record's UNEXPECTED_FIELD object;
- deselected fields are dropped; fields the schema does not list are kept as they came.

Two ways in, one result:
- a decoded record (dict): `conform` walks it with functions compiled from the schema, then it is
  serialised;
- a record still in the page's bytes (msgspec.Raw, from the export streams): a *probe* compiled from the
  schema reads every declared field in C with its declared type, so a record goes out byte for byte only
  when the probe proves it fits and needs nothing. One that needs work is split into its top-level
  fields; only the fields that need work are decoded and conformed, and the record is re-assembled
  around the untouched raw fields.
tests/unit/test_transform_raw.py proves both ways give the same records, quirks included."""
import collections
import dataclasses
import keyword
import math
import re

import msgspec
import singer

from tap_zendesk_chat import fastjson
from tap_zendesk_chat.fastjson import TooDeep
from tap_zendesk_chat.dates import CANONICAL_FAST, all_canonical, normalize_datetime

LOGGER = singer.get_logger()
UNEXPECTED_FIELD = "_unexpected_values"
UNEXPECTED_SCHEMA = {
    "type": ["null", "object"],
    "description": "Values the API sent that did not fit their field's declared type, by path (e.g. "
                   "\"history[3].skills_name\"); the field itself is null in the record.",
}
Raw = msgspec.Raw
_NULL = b"null"
_encode = msgspec.json.Encoder().encode  # dicts holding Raw values: the raw bytes go in as they are
_decode_top = msgspec.json.Decoder(dict[str, Raw]).decode
_decode_items = msgspec.json.Decoder(list[Raw]).decode
_JSON_TYPES = ("null", "boolean", "integer", "number", "string", "array", "object")
_PY_CLASSES = {"null": (type(None),), "boolean": (bool,), "integer": (int,), "number": (int, float),
               "string": (str,), "array": (list,), "object": (dict,)}
_KIND_OF = {type(None): "null", bool: "boolean", int: "integer", float: "number", str: "string", list: "array",
            dict: "object"}


@dataclasses.dataclass
class Node:
    """What the schema says of one value: its JSON types (None: anything), whether a string is a
    date-time, the declared properties of an object and the schema of array items."""
    types: frozenset | None
    date: bool = False
    properties: tuple = ()  # ((key, Node), ...)
    items: object = None  # Node or None
    pattern: str = ""  # where it is, for people: "history[].skills_name"

    @property
    def boolish(self):
        """A boolean that may come as 0/1: declared boolean and no kind of number."""
        return "boolean" in self.types and not self.types & {"integer", "number"}

    @property
    def intish(self):
        """An integer that may come as a string of digits (an id: "360001"): declared integer, no number or string."""
        return "integer" in self.types and not self.types & {"number", "string"}

    @property
    def date_only(self):
        return self.date and self.types - {"null"} == {"string"}

    @property
    def declared(self):
        if self.types is None:
            return "any type"
        return " or ".join(t for t in _JSON_TYPES if t in self.types and t != "null") + \
            (" (date-time)" if self.date else "")


def build_node(schema, pattern=""):
    if not isinstance(schema, dict):
        return Node(None, pattern=pattern)
    kind = schema.get("type")
    kinds = [kind] if isinstance(kind, str) else kind if isinstance(kind, list) else []
    types = frozenset(k for k in kinds if k in _JSON_TYPES)
    if not types:
        return Node(None, pattern=pattern)
    date = schema.get("format") == "date-time" and "string" in types
    properties = ()
    if "object" in types and isinstance(schema.get("properties"), dict):
        properties = tuple((key, build_node(sub, f"{pattern}.{key}" if pattern else key))
                           for key, sub in schema["properties"].items())
    items = None
    if "array" in types and isinstance(schema.get("items"), dict):
        items = build_node(schema["items"], f"{pattern}[]")
        if items.types is None:
            items = None
    return Node(types, date, properties, items, pattern)


# -- the decoded way: conform a value to its node -------------------------------------------------------
class Unfit:
    """The values of one record that did not fit, with their paths; collected while conforming."""

    __slots__ = ("stack", "found")

    def __init__(self):
        self.stack = []  # keys and indices from the record down to the value being conformed
        self.found = []  # (path, value, node)

    def add(self, value, node):
        path = ""
        for part in self.stack:
            path += f"[{part}]" if part.__class__ is int else (f".{part}" if path else part)
        self.found.append((path, value, node))


def _seen(value, node):
    """What kind of value the API sent where `node` did not accept it, in words."""
    if value.__class__ is TooDeep:
        return f"value nested more than {fastjson.MAX_DEPTH} levels deep"
    if value.__class__ is str and node.date:
        return "string that is not a date-time"
    if value.__class__ is float and not math.isfinite(value):
        return "non-finite number"
    if value.__class__ is float and node.types and "integer" in node.types:
        return "number with a fraction"
    return _KIND_OF.get(value.__class__, type(value).__name__)


def _a(word):
    return "an" if word[0] in "aeiou" else "a"


def _unfit_value(value):
    """The value kept in UNEXPECTED_FIELD: as sent, except what JSON cannot hold (NaN, infinity) and what
    no target could read back (a value nested too deeply: its JSON text)."""
    if value.__class__ is float and not math.isfinite(value):
        return str(value)
    if value.__class__ is TooDeep:
        return value.text
    return value


def integer_of_text(text):
    """The integer a string names when nothing is lost converting it: ASCII digits in canonical form ("123",
    "0"; not "0123", "+1", " 1", "1.0", "١٢٣"), else None. The API sends the same ids as 123 or "123"."""
    if text.isascii() and text.isdigit() and (text[0] != "0" or len(text) == 1):
        try:
            return int(text)
        except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits)
            return None
    return None


def _recover_key(key, unfit):
    """A key value of the other id type, converted when nothing is lost (123 where strings are declared; "123"
    where integers are is converted by conform, as in any field): the record keeps its key instead of being
    withheld. Removed from the unfit values (nothing is unexpected about it once converted); None when it
    cannot be."""
    for index, (path, value, node) in enumerate(unfit.found if unfit is not None else ()):
        if path != key:
            continue
        types = node.types or frozenset()
        converted = None
        if value.__class__ is int and "string" in types and not node.date:
            converted = str(value)
        if converted is not None:
            del unfit.found[index]
        return converted
    return None


def _encodable(value):
    try:
        fastjson.dumps(value)
    except fastjson.TooDeepError:
        return False
    return True


def conform_properties(value, properties, unfit):
    """Conform the declared properties of an object in place: {key: (conform, classes that need nothing)}.
    Walks the object's own keys (a history event holds 6 of the 25 an event may have); replacing a value
    while iterating is safe, the object's size does not change."""
    stack = unfit.stack
    get = properties.get
    for key, inner in value.items():
        entry = get(key)
        if entry is None or inner.__class__ in entry[1]:
            continue
        stack.append(key)
        fixed = entry[0](inner, unfit)
        if fixed is not inner:
            value[key] = fixed
        stack.pop()


def compile_conform(node):
    """conform(value, unfit) -> the value to emit, or None when the node accepts anything and needs nothing."""
    if node.types is None:
        return None
    accepted = tuple({cls for t in node.types for cls in _PY_CLASSES[t]})
    date, boolish = node.date, node.boolish
    numeric = bool(node.types & {"integer", "number"})
    properties = {key: (fn, fn.fast) for key, fn in ((k, compile_conform(sub)) for k, sub in node.properties)
                  if fn is not None}
    items = compile_conform(node.items) if node.items is not None else None
    items_fast = items.fast if items is not None else frozenset()
    integer_only = "integer" in node.types and "number" not in node.types
    from_text = "integer" in node.types and "string" not in node.types  # "123" -> 123
    canonical = CANONICAL_FAST.match

    def reject(value, unfit):
        unfit.add(value, node)
        return None

    def conform(value, unfit):
        cls = value.__class__
        if cls in accepted:
            if cls is str:
                if date and canonical(value) is None:
                    try:
                        return normalize_datetime(value)
                    except ValueError:
                        return reject(value, unfit)
            elif cls is dict:
                if properties:
                    conform_properties(value, properties, unfit)
            elif cls is list:
                if items is not None:
                    stack = unfit.stack
                    stack.append(0)
                    for index, inner in enumerate(value):
                        if inner.__class__ in items_fast:
                            continue
                        stack[-1] = index
                        fixed = items(inner, unfit)
                        if fixed is not inner:
                            value[index] = fixed
                    stack.pop()
            elif cls is float:
                if integer_only or not math.isfinite(value):
                    return reject(value, unfit)
            return value
        if cls is int and boolish and (value == 0 or value == 1):
            return value == 1
        if date and not numeric and (cls is int or cls is float):
            try:
                return normalize_datetime(value)
            except ValueError:
                return reject(value, unfit)
        if cls is str and from_text:
            number = integer_of_text(value)
            if number is not None:
                return number
        return reject(value, unfit)

    # The classes of value that need nothing at all: the caller skips the call for them.
    fast = {type(None)} if "null" in node.types else set()
    if "boolean" in node.types:
        fast.add(bool)
    if numeric:
        fast.add(int)
    if "string" in node.types and not date:
        fast.add(str)
    if "array" in node.types and items is None:
        fast.add(list)
    if "object" in node.types and not properties:
        fast.add(dict)
    conform.fast = frozenset(fast)
    return conform


# -- the raw way: a probe that reads declared fields with their declared types ----------------------------
def _has_work(node):
    """The probe must look at the value itself (dates, 0/1 booleans, ids as strings), not only its type."""
    if node.types is None:
        return False
    if node.date or node.boolish or node.intish:
        return True
    return any(_has_work(sub) for _, sub in node.properties) or (node.items is not None and _has_work(node.items))


def _walkable(node):
    """A node whose work the generated walk can find: a date-only string, a boolean that may come as 0/1
    (with any scalars beside it), or an object or array (and null) whose parts are walkable."""
    kinds = node.types - {"null"}
    if node.date:
        return node.date_only
    if kinds == {"object"}:
        return all(_walkable(sub) for _, sub in node.properties if _has_work(sub))
    if kinds == {"array"}:
        return node.items is None or not _has_work(node.items) or _walkable(node.items)
    return not ({"object", "array"} & kinds) or not _has_work(node)


def _identifier(key, taken):
    """A Python name for a schema key, as close to it as can be (generated code reads like the schema)."""
    name = re.sub(r"\W", "_", key).strip("_") or "field"
    if name[0].isdigit() or keyword.iskeyword(name):
        name = f"field_{name}"
    while name in taken:
        name += "_"
    taken.add(name)
    return name


def _attributes(properties):
    """(key, attribute name in the probe, node) of each typed property: the probe reads only those."""
    taken = set()
    return [(key, _identifier(key, taken), sub) for key, sub in properties if sub.types is not None]


class _Probe:
    """Builds the msgspec types of a probe, and the Python that walks a decoded probe for work."""

    def __init__(self):
        self.structs = 0

    def type_of(self, node, required=False):
        """The msgspec type reading a value of `node`: decoding fails on any value that does not fit, which
        sends the record down the careful path. `None` (nothing but null) for nodes the walk cannot check."""
        kinds = node.types - {"null"}
        nullable = "null" in node.types and not required
        if _has_work(node) and not _walkable(node):
            return type(None)  # only null passes the probe; anything else is conformed the careful way
        options = []
        if "boolean" in kinds:
            options.append(bool)
            if node.boolish:
                options.append(int)  # the API's 0/1: found by the walk
        if "number" in kinds:
            options.append(float)  # msgspec reads an integer as a float here: both fit "number"
        elif "integer" in kinds:
            options.append(int)
            if node.intish:
                options.append(str)  # an id as a string of digits: found by the walk, converted the careful way
        if "string" in kinds:
            options.append(str)
        if "array" in kinds:
            options.append(list[self.type_of(node.items)] if node.items is not None else list[Raw])
        if "object" in kinds:
            attributes = _attributes(node.properties)
            if attributes:
                self.structs += 1
                options.append(self.struct(f"Probe{self.structs}",
                                           [(attr, self.type_of(sub), key) for key, attr, sub in attributes]))
            else:
                options.append(dict[str, Raw])
        if nullable or not options:
            options.append(type(None))
        kind = options[0]
        for option in options[1:]:
            kind = kind | option
        return kind

    @staticmethod
    def struct(name, fields, required=()):
        """A msgspec Struct reading the JSON keys of `fields` ((attribute, type, key), ...) as attributes; the
        keys in `required` must be present."""
        spec = [(attr, kind) if key in required else (attr, kind, None) for attr, kind, key in fields]
        return msgspec.defstruct(name, spec, rename={attr: key for attr, _, key in fields}, kw_only=True, gc=False)

    def walk(self, node, var, lines, pad="    ", on_int="return False"):
        """Code that collects the date strings of the probed value `var` (collect_date) and runs `on_int` on
        a 0/1 boolean. Only for nodes the probe reads (a node it cannot walk is read as null)."""
        if not _has_work(node) or not _walkable(node):
            return
        kinds = node.types - {"null"}
        if node.date:
            lines.append(f"{pad}if {var} is not None: collect_date({var})")
        elif node.boolish:
            lines.append(f"{pad}if {var}.__class__ is int: {on_int}")
        elif node.intish and not kinds & {"object", "array"}:
            lines.append(f"{pad}if {var}.__class__ is str: {on_int}")
        elif kinds == {"object"}:
            body = []
            for _, attr, sub in _attributes(node.properties):
                self.walk(sub, f"{var}.{attr}", body, pad + "    ", on_int)
            if body:
                lines += [f"{pad}if {var} is not None:"] + body
        elif kinds == {"array"} and node.items is not None:
            item = var.replace(".", "_") + "_item"
            body = []
            self.walk(node.items, item, body, pad + "        ", on_int)
            if body:
                lines += [f"{pad}if {var} is not None:", f"{pad}    for {item} in {var}:"] + body


class RecordPlan:
    """What to do to each record of one stream, decided once."""

    def __init__(self, schema, deselected=(), fix_record=None, fix_fields=(), key_properties=(), name="records",
                 on_withheld=None):
        self.name = name
        self.on_withheld = on_withheld  # on_withheld(why, text as sent): where a withheld record is kept
        self.deselected = tuple(deselected)
        self.key_properties = tuple(key_properties)
        self.fix_record = fix_record
        self.raw_records = 0  # records that came as slices of their page (msgspec.Raw)
        self.rewritten = 0  # of those, the ones that needed work (the others went out byte for byte)
        self.unfit = collections.Counter()  # (field pattern, declared, seen) -> values set to null
        self.withheld = 0  # records that could not be written (no key, not an object)
        self.withheld_example = None
        properties = schema.get("properties") if isinstance(schema, dict) else None
        properties = properties if isinstance(properties, dict) else {}
        self.keep_unexpected = UNEXPECTED_FIELD in properties and UNEXPECTED_FIELD not in self.deselected
        self._nodes = [(key, build_node(sub, key)) for key, sub in properties.items() if key not in self.deselected]
        self._conform = [(key, fn) for key, fn in ((k, compile_conform(n)) for k, n in self._nodes) if fn is not None]
        self._conform_fast = {key: (fn, fn.fast) for key, fn in self._conform}
        self._compile_probe(fix_fields)

    # -- records still in the page's bytes --------------------------------------------------------------
    def _compile_probe(self, fix_fields):
        builder = _Probe()
        fields = _attributes(self._nodes)
        declared = {key for key, _, _ in fields}
        keys = [k for k in self.key_properties if k not in declared and k not in self.deselected]
        taken = {attr for _, attr, _ in fields}
        struct_fields = []
        for key, attr, node in fields:
            # A field the stream repairs stays raw in the probe: its odd shapes are checked on their own.
            kind = Raw if key in fix_fields else builder.type_of(node, key in self.key_properties)
            struct_fields.append((attr, kind, key))
        struct_fields += [(_identifier(key, taken), int | str, key) for key in keys]  # undeclared keys
        self._probe = msgspec.json.Decoder(builder.struct("RecordProbe", struct_fields, self.key_properties)).decode
        # needs_work(record): the top-level fields that need work ([] for none), or None when some date is
        # not in our form (one regex call checks them all; fine_<field> then finds which field).
        # fine_<field>(value): one probed field needs no work. raw_fine_<field>(raw): the same from the
        # field's bytes (an absent field needs nothing). Prefixes, not suffixes: a field named "a_raw" must
        # not get the name of field "a"'s function.
        scope = {"all_canonical": all_canonical, "ValidationError": msgspec.ValidationError}
        lines = []
        for (key, attr, node), (_, kind, _) in zip(fields, struct_fields):
            lines += [f"def fine_{attr}(value):", "    dates = []", "    collect_date = dates.append"]
            builder.walk(node, "value", lines)
            lines += ["    return all_canonical(dates)", "",
                      f"def raw_fine_{attr}(raw):", "    if raw is None:", "        return True",
                      "    try:", f"        return fine_{attr}(decode_{attr}(raw))",
                      "    except ValidationError:", "        return False", ""]
            scope[f"decode_{attr}"] = msgspec.json.Decoder(builder.type_of(node, key in self.key_properties)).decode
        # An array of objects that needs work is patched item by item: only the items that need it are decoded
        # and conformed, the others stay slices of the page (item_fine_<field> tells them apart).
        self._item_checks = {}
        for (key, attr, node), (_, kind, _) in zip(fields, struct_fields):
            items = node.items
            if kind is Raw or node.types - {"null"} != {"array"} or items is None or items.types is None \
                    or items.types - {"null"} != {"object"} or not _has_work(items) or not _walkable(items):
                continue
            lines += [f"def item_fine_{attr}(value):", "    dates = []", "    collect_date = dates.append"]
            builder.walk(items, "value", lines)
            lines += ["    return all_canonical(dates)", ""]
            scope[f"decode_item_{attr}"] = msgspec.json.Decoder(builder.type_of(items)).decode
            self._item_checks[key] = (attr, compile_conform(items))
        # needs_work also lists, in `flagged`, the (field, index) of each item of such an array with a 0/1 boolean
        # or an id as a string: when every date is in our form, only those items need work.
        lines += ["def needs_work(record, flagged):", "    fields = []", "    dates = []",
                  "    collect_date = dates.append"]
        for (key, attr, node), (_, kind, _) in zip(fields, struct_fields):
            if kind is Raw:
                lines.append(f"    if record.{attr} is not None and not raw_fine_{attr}(record.{attr}): "
                             f"fields.append({key!r})")
            elif key in self._item_checks:
                body = []
                builder.walk(node.items, f"item_{attr}", body, "            ",
                             on_int=f"fields.append({key!r}); flagged.append(({key!r}, index))")
                if body:
                    lines += [f"    if record.{attr} is not None:",
                              f"        for index, item_{attr} in enumerate(record.{attr}):"] + body
            else:
                builder.walk(node, f"record.{attr}", lines, on_int=f"fields.append({key!r})")
        lines += ["    if not all_canonical(dates):", "        return None", "    return fields"]
        self.probe_source = "\n".join(lines)
        exec(self.probe_source, scope)  # noqa: S102 - source built above from the schema only
        self._failing = scope["needs_work"]
        self._fields = [(key, attr, scope[f"raw_fine_{attr}" if kind is Raw else f"fine_{attr}"],
                         scope[f"raw_fine_{attr}"]) for (key, attr, _), (_, kind, _) in zip(fields, struct_fields)]
        self._conform_of = dict(self._conform)
        self._node_of = dict(self._nodes)
        self._item_checks = {key: (scope[f"decode_item_{attr}"], scope[f"item_fine_{attr}"], fn)
                             for key, (attr, fn) in self._item_checks.items()}

    def describe(self):
        """The plan for people: what the probe reads and the Python generated from the schema."""
        lines = [f"# {self.name}: the probe reads these top-level fields with their declared types (a value of "
                 "another type sends the record to the careful path):"]
        for key, node in self._nodes:
            if node.types is not None:
                work = (" - normalised to UTC with Z" if node.date else " - 0/1 read as false/true" if node.boolish
                        else " - with dates or booleans inside" if _has_work(node) else "")
                lines.append(f"#   {key}: {node.declared or 'null'}{work}")
        if self.deselected:
            lines.append(f"# deselected, dropped: {', '.join(self.deselected)}")
        lines.append(f"# keys, present and not null: {', '.join(self.key_properties) or '(none)'}")
        return "\n".join(lines) + "\n\n" + self.probe_source + "\n"

    def encode(self, records):
        """Each record as JSON bytes (or the record's own slice of the page when nothing changes); records
        that cannot be written (no key, not an object) are left out, counted and reported."""
        out = []
        append = out.append
        if records and records[0].__class__ is Raw:  # a page is all raw or all decoded
            self.raw_records += len(records)
        probe, failing, validation_error = self._probe, self._failing, msgspec.ValidationError
        # A record that loses fields, or that a stream repairs in full, never goes out as it came.
        always = bool(self.deselected)
        for record in records:
            if record.__class__ is Raw:
                try:
                    probed = probe(record)
                except validation_error:
                    encoded = self._patch(record)
                except RecursionError:  # nested deeper than msgspec goes: decoded without that limit
                    self.rewritten += 1
                    encoded = self._encode_dict(fastjson.loads_record(bytes(record)))
                else:
                    flagged = []
                    bad = failing(probed, flagged)
                    if bad is None:  # some date to normalise: find its field (and its items)
                        bad, flagged = [key for key, attr, ok, _ in self._fields if not ok(getattr(probed, attr))], None
                    encoded = self._patch(record, bad, flagged) if bad or always else record
            else:
                encoded = self._encode_dict(record)
            if encoded is not None:
                append(encoded)
        return out

    def _patch(self, raw, bad=None, flagged=None):
        """A raw record that needs work: decode only the top-level fields that need it (`bad`, when the
        probe could tell; else each field is checked on its own), and of an array of objects only the items
        that need it (`flagged`: (field, index) of each, when the probe could tell; else each item is checked)."""
        self.rewritten += 1
        try:
            top = _decode_top(raw)
        except msgspec.ValidationError:  # not an object
            return self._withhold("is not a JSON object", bytes(raw))
        except RecursionError:  # nested deeper than msgspec goes: decoded without that limit
            return self._encode_dict(fastjson.loads_record(bytes(raw)))
        for key in self.deselected:
            top.pop(key, None)
        if bad is None:
            bad = [key for key, _, _, check in self._fields if key in top and not check(top[key])]
        unfit = None
        if bad and self._item_checks:
            unfit = Unfit()
            bad = [key for key in dict.fromkeys(bad) if key not in top or key not in self._item_checks
                   or not self._patch_items(top, key, unfit, flagged)]
        if bad:
            work = {key: fastjson.loads(bytes(top[key])) for key in bad if key in top}
            if self.fix_record is not None:
                self.fix_record(work)
            unfit = unfit or Unfit()
            conform_of = self._conform_of
            for key, value in work.items():
                fn = conform_of.get(key)
                if fn is not None:
                    unfit.stack.append(key)
                    value = fn(value, unfit)
                    unfit.stack.pop()
                top[key] = value
        for key in self.key_properties:
            value = top.get(key)
            if value is None or (value.__class__ is Raw and bytes(value) == _NULL):
                recovered = _recover_key(key, unfit)
                if recovered is None:
                    return self._withhold(self._why_no_key(key, unfit), bytes(raw))
                top[key] = recovered
        if unfit is not None and unfit.found:
            self._keep_unexpected(top, unfit)
        try:
            return _encode(top)
        except RecursionError:  # a value deeper than msgspec writes
            return self._encode_too_deep(top)

    def _patch_items(self, top, key, unfit, flagged=None):
        """Conform the items of the array `top[key]` (its page's bytes) that need it (those `flagged` names, or
        each one its check fails), leaving the others as they are; False when it is not a list of items msgspec
        reads (then the field is conformed whole)."""
        decode, fine, conform = self._item_checks[key]
        try:
            items = _decode_items(top[key])
        except (msgspec.ValidationError, RecursionError):
            return False
        stack = unfit.stack
        chosen = None if flagged is None else sorted({index for field, index in flagged if field == key})
        for index in range(len(items)) if chosen is None else chosen:
            item = items[index]
            try:
                if chosen is None and fine(decode(item)):
                    continue
            except msgspec.ValidationError:
                pass
            except RecursionError:
                return False
            value = fastjson.loads(bytes(item))
            stack += (key, index)
            items[index] = conform(value, unfit)
            del stack[-2:]
        top[key] = items
        return True

    def _encode_dict(self, record):
        if record.__class__ is not dict:
            return self._withhold("is not a JSON object", fastjson.dumps_text(record))
        # A value too deep to decode (fastjson cut it out at its top-level field) is quarantined whole.
        too_deep = [key for key, value in record.items() if value.__class__ is TooDeep]
        too_deep = {key: record.pop(key) for key in too_deep if key not in self.deselected}
        if self.fix_record is not None:
            self.fix_record(record)
        for field in self.deselected:
            record.pop(field, None)
        unfit = Unfit()
        conform_properties(record, self._conform_fast, unfit)
        for key, value in too_deep.items():
            record[key] = None
            unfit.found.append((key, value, self._node_of.get(key) or Node(None, pattern=key)))
        for key in self.key_properties:
            if record.get(key) is None:
                recovered = _recover_key(key, unfit)
                if recovered is None:
                    sent = next((value for path, value, _ in unfit.found if path == key), None)
                    if sent is not None:
                        record[key] = sent  # the example shows what the API sent
                    return self._withhold(self._why_no_key(key, unfit), fastjson.dumps_text(record))
                record[key] = recovered
        if unfit.found:
            self._keep_unexpected(record, unfit)
        try:
            return fastjson.dumps(record)
        except fastjson.TooDeepError:
            return self._encode_too_deep(record)

    def _encode_too_deep(self, record):
        """A record holding a value the encoders cannot write for its depth (orjson reads 1,024 levels, the
        encoders stop near Python's recursion limit): each such top-level field goes out as null, its JSON text
        kept, and such a value already in UNEXPECTED_FIELD is replaced by its JSON text."""
        unfit = Unfit()
        kept = record.get(UNEXPECTED_FIELD)
        for key, value in record.items():
            if key == UNEXPECTED_FIELD and kept.__class__ is dict:
                for path, inner in kept.items():
                    if not _encodable(inner):
                        kept[path] = fastjson.dumps_text(inner).decode()
            elif not _encodable(value):
                unfit.found.append((key, TooDeep(fastjson.dumps_text(value).decode()),
                                    self._node_of.get(key) or Node(None, pattern=key)))
        for key, _, _ in unfit.found:
            record[key] = None
        if unfit.found:
            self._keep_unexpected(record, unfit)
        return fastjson.dumps(record)

    @staticmethod
    def _why_no_key(key, unfit):
        for path, value, node in unfit.found if unfit is not None else ():
            if path == key:
                seen = _seen(value, node)
                return f"its key '{key}' is {_a(seen)} {seen}, declared {node.declared}"
        return f"has no '{key}'"

    def _keep_unexpected(self, record, unfit):
        for path, value, node in unfit.found:
            seen = _seen(value, node)
            key = (node.pattern, node.declared, seen)
            if key not in self.unfit:
                where = f"kept in {UNEXPECTED_FIELD}" if self.keep_unexpected else \
                    f"dropped ({UNEXPECTED_FIELD} is not in the catalog's selection)"
                LOGGER.warning("%s: %s is declared %s but the API sent %s %s (e.g. %s); such values go out as "
                               "null, %s", self.name, node.pattern, node.declared, _a(seen), seen,
                               fastjson.dumps_text(_unfit_value(value)).decode()[:80], where)
            self.unfit[key] += 1
        if self.keep_unexpected:
            kept = record.get(UNEXPECTED_FIELD)
            if kept.__class__ is Raw:
                kept = fastjson.loads(bytes(kept))
            kept = kept if kept.__class__ is dict else {}
            kept.update((path, _unfit_value(value)) for path, value, _ in unfit.found)
            record[UNEXPECTED_FIELD] = kept

    def _withhold(self, why, text):
        self.withheld += 1
        if self.on_withheld is not None:
            self.on_withheld(why, bytes(text))
        if self.withheld_example is None:
            self.withheld_example = f"{why}: {text[:160].decode('utf-8', 'replace')}"
        return None

    @property
    def unfit_total(self):
        return sum(self.unfit.values())


def main(argv=None):
    """`python -m tap_zendesk_chat.transform STREAM...`: print the plan of each stream (its full schema)."""
    import sys

    from tap_zendesk_chat.schemas import load_schema
    from tap_zendesk_chat.streams import STREAMS

    names = (argv if argv is not None else sys.argv[1:]) or list(STREAMS)
    for name in names:
        if name not in STREAMS:
            raise SystemExit(f"no stream {name!r}; streams: {', '.join(STREAMS)}")
        stream = STREAMS[name]
        print(RecordPlan(load_schema(name), (), stream.fix_record, stream.fix_fields, stream.key_properties,
                         name).describe())


if __name__ == "__main__":
    main()
