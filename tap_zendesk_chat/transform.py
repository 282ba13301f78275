"""Per-record work, compiled once per stream from its schema: drop deselected fields, normalise dates,
turn the 0/1 the API sometimes sends for a boolean into false/true. Fields the schema does not list are kept.

Two ways in, one result:
- a decoded record (dict): `apply` runs straight-line Python generated from the schema (one function
  per stream, no per-field calls; a chat carries some 25 timestamps), then it is serialised;
- a record still in the page's bytes (msgspec.Raw, from the export streams): a *probe* reads only the
  fields the plan would look at, in C, and a record the plan would not change goes out byte for byte.
  One that needs work is split into its top-level fields, only the fields that need work are decoded
  and fixed by `apply`, and the record is re-assembled around the untouched raw fields.
tests/unit/test_transform_raw.py proves both ways give the same records, quirks included."""
import msgspec

from tap_zendesk_chat import fastjson
from tap_zendesk_chat.client import UnexpectedResponseError
from tap_zendesk_chat.dates import CANONICAL_FAST, all_canonical, normalize_datetime

Raw = msgspec.Raw
_NULL = b"null"
_encode = msgspec.json.Encoder().encode  # dicts holding Raw values: the raw bytes go in as they are
_decode_top = msgspec.json.Decoder(dict[str, Raw]).decode


def _types(schema):
    kind = schema.get("type", [])
    if isinstance(kind, str):
        return {kind}
    return {k for k in kind if isinstance(k, str)} if isinstance(kind, list) else set()


def _is_date(schema):
    return isinstance(schema, dict) and schema.get("format") == "date-time" and "string" in _types(schema)


def _is_boolean(schema):
    return isinstance(schema, dict) and _types(schema) - {"null"} == {"boolean"}


def _has_work(schema):
    if not isinstance(schema, dict):
        return False
    if _is_date(schema) or _is_boolean(schema):
        return True
    types = _types(schema)
    if "object" in types and isinstance(schema.get("properties"), dict):
        return any(_has_work(s) for s in schema["properties"].values())
    if "array" in types and isinstance(schema.get("items"), dict):
        return _has_work(schema["items"])
    return False


def _probe_node(schema, force=False):
    """What the plan looks at in a value of this schema (both ways of RecordPlan walk these nodes):
    ("date",), ("bool",), ("object", [(key, node), ...]), ("array", object node) or None (nothing).
    `force`: a field a stream's fix_record repairs; its shape (objects, arrays of objects) is checked even
    when the schema gives it no work."""
    if _is_date(schema):
        return ("date",)
    if _is_boolean(schema):
        return ("bool",)
    if not (force or _has_work(schema)):
        return None
    types = _types(schema)
    if "object" in types and isinstance(schema.get("properties"), dict):
        return ("object", _probe_fields(schema["properties"]))
    items = schema.get("items")
    if "array" in types and isinstance(items, dict) and isinstance(items.get("properties"), dict):
        return ("array", ("object", _probe_fields(items["properties"])))
    return None


def _probe_fields(properties, force=()):
    nodes = ((key, _probe_node(sub, key in force)) for key, sub in properties.items())
    return [(key, node) for key, node in nodes if node is not None]


def _probe_type(node, required=False):
    """The msgspec type reading what `node` describes. A value of another type fails to decode, which
    sends the record down the careful path: the probe never has to be right about odd values, only strict."""
    kind = node[0]
    if kind == "date":
        inner = str
    elif kind == "bool":
        inner = bool | int  # an int is the API's 0/1 for a boolean: found by the walk
    elif kind == "object":
        names = {f"f{i}": key for i, (key, _) in enumerate(node[1])}
        inner = msgspec.defstruct("Probe", [(f"f{i}", _probe_type(sub), None) for i, (_, sub) in enumerate(node[1])],
                                  rename=names, gc=False)
    else:
        inner = list[_probe_type(node[1])]
    return inner if required else inner | None


def _walk_lines(node, var, pad, lines, depth, on_int):
    """Code that collects (d) the timestamps of the probed value `var` and runs `on_int` on a 0/1 boolean."""
    kind = node[0]
    if kind == "date":
        lines.append(f"{pad}if {var} is not None: d({var})")
    elif kind == "bool":
        lines.append(f"{pad}if {var}.__class__ is int: {on_int}")
    elif kind == "object" and node[1]:
        obj = f"o{depth}"
        lines += [f"{pad}{obj} = {var}", f"{pad}if {obj} is not None:"]
        for i, (_, sub) in enumerate(node[1]):
            _walk_lines(sub, f"{obj}.f{i}", pad + "    ", lines, depth + 1, on_int)
    elif kind == "array":
        items, item = f"a{depth}", f"i{depth}"
        body = []
        _walk_lines(node[1], item, pad + "        ", body, depth + 1, on_int)
        if body:
            lines += [f"{pad}{items} = {var}", f"{pad}if {items} is not None:", f"{pad}    for {item} in {items}:"]
            lines += body


class RecordPlan:
    """What to do to each record of one stream, decided once."""

    def __init__(self, schema, deselected=(), fix_record=None, fix_fields=(), key_properties=(), name="records"):
        self.name = name
        self.deselected = tuple(deselected)
        self.key_properties = tuple(key_properties)
        self.bad_dates = 0
        self.bad_date_example = None
        self.raw_records = 0  # records that came as slices of their page (msgspec.Raw)
        self.rewritten = 0  # of those, the ones that needed work (the others went out byte for byte)
        lines = ["def apply(record):"]
        if fix_record is not None:
            lines.append("    _fix_record(record)")
        for field in self.deselected:
            lines.append(f"    record.pop({field!r}, None)")
        properties = schema.get("properties") if isinstance(schema, dict) else None
        properties = properties if isinstance(properties, dict) else {}
        self._paths = []
        # Both ways walk the same nodes (_probe_fields), so they cannot disagree on what needs work.
        self._emit_nodes(_probe_fields(properties), "record", "", 1, lines)
        lines.append("    return record")
        scope = {"_canonical": CANONICAL_FAST.match, "_fix": self._fix, "_fix_record": fix_record,
                 "dict": dict, "list": list, "str": str, "int": int}
        exec("\n".join(lines), scope)  # noqa: S102 - source built above from the schema's field names only
        self.apply = scope["apply"]
        self.source = "\n".join(lines)
        self._compile_probe(properties, fix_record, fix_fields)

    # -- records still in the page's bytes --------------------------------------------------------------
    def _compile_probe(self, properties, fix_record, fix_fields):
        fields = _probe_fields(properties, force=set(fix_fields))
        # A catalog may give a repaired field a shape the probe cannot check (webpath as a string): then
        # raw records are decoded in full, which is always right, only slower.
        self._decode_raw = fix_record is not None and any(f in properties and f not in dict(fields)
                                                          for f in fix_fields)
        # The probe reads every field with work, and the key fields, which must be there and not null.
        # Fields a fix_record repairs stay raw in it and are checked on their own: their odd shapes (a
        # pair instead of an object) are the common case, and must not fail the whole probe.
        keys = [k for k in self.key_properties if k not in dict(fields)]
        nodes = fields + [(k, None) for k in keys]
        struct_fields = []
        for i, (key, node) in enumerate(nodes):
            required = key in self.key_properties
            if node is None:
                kind = int | str
            elif key in fix_fields and not required:
                kind = Raw
            else:
                kind = _probe_type(node, required)
            struct_fields.append((f"f{i}", kind) if required else (f"f{i}", kind, None))
        probe = msgspec.defstruct("RecordProbe", struct_fields, rename={f"f{i}": k for i, (k, _) in enumerate(nodes)},
                                  kw_only=True, gc=False)
        self._probe = msgspec.json.Decoder(probe).decode
        # failing(probe): the top-level fields the plan would change ([] for none), or None when some
        # timestamp is not in our form (one regex call checks them all; ok_<i> then finds which field).
        # ok_<i>(value): one probed field needs no work. check_<i>(raw): the same from the field's bytes
        # (None: the field is absent, so it needs nothing).
        scope = {"_all_canonical": all_canonical, "_ValidationError": msgspec.ValidationError}
        lines = []
        for i, (key, node) in enumerate(fields):
            lines += [f"def ok_{i}(v):", "    dates = []", "    d = dates.append"]
            _walk_lines(node, "v", "    ", lines, 1, "return False")
            lines += ["    return _all_canonical(dates)",
                      f"def check_{i}(raw):", "    if raw is None:", "        return True",
                      "    try:", f"        return ok_{i}(_decode_{i}(raw))",
                      "    except _ValidationError:", "        return False"]
            scope[f"_decode_{i}"] = msgspec.json.Decoder(_probe_type(node)).decode
        lines += ["def failing(p):", "    bad = []", "    b = bad.append", "    dates = []", "    d = dates.append"]
        for i, (key, node) in enumerate(fields):
            if struct_fields[i][1] is Raw:
                lines.append(f"    if p.f{i} is not None and not check_{i}(p.f{i}): b({key!r})")
            else:
                _walk_lines(node, f"p.f{i}", "    ", lines, 1, f"b({key!r})")
        lines += ["    if not _all_canonical(dates):", "        return None", "    return bad"]
        exec("\n".join(lines), scope)  # noqa: S102 - source built above from the schema only
        self._failing = scope["failing"]
        self._fields = [(key, f"f{i}", scope[f"check_{i}" if struct_fields[i][1] is Raw else f"ok_{i}"],
                         scope[f"check_{i}"]) for i, (key, _) in enumerate(fields)]
        self.probe_source = "\n".join(lines)

    def encode(self, records):
        """Each record as JSON bytes (or the record's own slice of the page when nothing changes)."""
        out = []
        append = out.append
        if records and records[0].__class__ is Raw:  # a page is all raw or all decoded
            self.raw_records += len(records)
            if self._decode_raw:
                self.rewritten += len(records)
                return [self._encode_dict(fastjson.loads(bytes(record))) for record in records]
        probe, failing, validation_error = self._probe, self._failing, msgspec.ValidationError
        deselected = bool(self.deselected)  # a record that loses fields never goes out as it came
        for record in records:
            if record.__class__ is Raw:
                try:
                    probed = probe(record)
                except validation_error:
                    append(self._patch(record))
                    continue
                bad = failing(probed)
                if bad is None:  # some timestamp to normalise: find its field
                    bad = [key for key, attr, ok, _ in self._fields if not ok(getattr(probed, attr))]
                append(self._patch(record, bad) if bad or deselected else record)
            else:
                append(self._encode_dict(record))
        return out

    def _patch(self, raw, bad=None):
        """A raw record that needs work: decode only the top-level fields that need it (`bad`, when the
        probe could tell; else each field is checked on its own)."""
        self.rewritten += 1
        try:
            top = _decode_top(raw)
        except msgspec.ValidationError:  # not an object: the decoded path says what is wrong with it
            return self._encode_dict(fastjson.loads(bytes(raw)))
        for key in self.deselected:
            top.pop(key, None)
        if bad is None:
            bad = [key for key, _, _, check in self._fields if key in top and not check(top[key])]
        if bad:
            work = {key: fastjson.loads(bytes(top[key])) for key in bad if key in top}
            self.apply(work)  # only these fields are in it: apply skips what is absent
            top.update(work)
        for key in self.key_properties:
            value = top.get(key)
            if value is None or (value.__class__ is Raw and bytes(value) == _NULL):
                self._missing_key(key, bytes(raw).decode("utf-8", "replace"))
        return _encode(top)

    def _encode_dict(self, record):
        if record.__class__ is not dict:
            raise UnexpectedResponseError(f"{self.name}: the API sent a record that is not an object "
                                          f"({str(record)[:120]}).")
        record = self.apply(record)
        for key in self.key_properties:
            if record.get(key) is None:
                self._missing_key(key, str(record))
        return fastjson.dumps(record)

    def _missing_key(self, key, text):
        raise UnexpectedResponseError(f"{self.name}: the API sent a record without its key '{key}' ({text[:120]}).")

    def _emit_nodes(self, nodes, var, path, depth, lines):
        """The decoded way: straight-line code over the nodes of _probe_fields."""
        pad = "    " * depth
        for key, node in nodes:
            where = f"{path}.{key}" if path else key
            kind = node[0]
            if kind == "date":
                self._paths.append(where)
                index = len(self._paths) - 1
                lines += [f"{pad}v = {var}.get({key!r})",
                          f"{pad}if v is not None and (v.__class__ is not str or _canonical(v) is None):",
                          f"{pad}    {var}[{key!r}] = _fix(v, {index})"]
            elif kind == "bool":
                lines += [f"{pad}v = {var}.get({key!r})",
                          f"{pad}if v.__class__ is int:",
                          f"{pad}    {var}[{key!r}] = v != 0"]
            elif kind == "object" and node[1]:
                inner = f"o{depth}"
                lines += [f"{pad}{inner} = {var}.get({key!r})", f"{pad}if {inner}.__class__ is dict:"]
                self._emit_nodes(node[1], inner, where, depth + 1, lines)
            elif kind == "array" and node[1][1]:
                items, inner = f"a{depth}", f"o{depth}"
                lines += [f"{pad}{items} = {var}.get({key!r})",
                          f"{pad}if {items}.__class__ is list:",
                          f"{pad}    for {inner} in {items}:",
                          f"{pad}        if {inner}.__class__ is dict:"]
                self._emit_nodes(node[1][1], inner, where + "[]", depth + 3, lines)

    def _fix(self, value, index):
        """A timestamp not already in our form: normalise it, or null it (counted) when it is not one."""
        try:
            return normalize_datetime(value)
        except ValueError:
            self.bad_dates += 1
            if self.bad_date_example is None:
                self.bad_date_example = f"{self._paths[index]}={str(value)[:60]!r}"
            return None
