"""Flattening (flattening_enabled): nested objects become columns, named and typed as the Singer SDK's
flattening names and types them (singer_sdk/helpers/_flattening.py: flatten_schema, flatten_record, flatten_key).

The schema, decided once per stream:
- An object with declared properties (declared `object`, with or without `null`) is replaced by its
  properties, each named parent__child (the separator `__`), down to flattening_max_depth levels of objects:
  `visitor.email` is the column `visitor__email`, `response_time.first` is `response_time__first`.
- Arrays, objects without declared properties and objects at the maximum depth are one column holding the
  value as JSON text (compact, as the SDK writes it), declared `string`, with `null` when the field had it
  (`history`, `webpath`, `_unexpected_values`). A field declared with scalar types beside `object` or `array`
  (or with no type at all: anything) keeps its scalars as they are, as the SDK does, and is declared with them
  and `string`, so they still fit; the SDK declares it `string` and null alone.
- Every other field keeps its own schema, nullability included: `visitor__email` is declared as
  `visitor.email` is (the SDK adds nothing for a nullable parent; a null parent gives no columns, see below).
- A name of 255 characters or more is shortened as the SDK's flatten_key shortens it.
- Two fields flattened to one name (a field `visitor__email` beside `visitor.email`) are an error, as in the SDK.

Records, as the SDK's flatten_record makes them: an object is replaced by its parts (those of a field the schema
does not declare too, so they reach the target as columns, as undeclared fields do unflattened), arrays and
objects at the maximum depth become JSON text, everything else is kept. Two departures, so that every record
still fits its SCHEMA: a flattened object that is null gives no columns (the SDK writes `visitor: null`, a
column its schema does not have), and a field the schema does not declare whose name is a declared column's
(`visitor__email` sent beside `visitor.email`) is dropped: the declared value wins. `_unexpected_values` keys
name the columns: a path into a flattened object starts with its column (`visitor.email` is `visitor__email`,
`a.b.c` at depth 1 `a__b.c`), a path into an array is unchanged (`history[3].skills_name`); a value kept for a
deselected column is dropped with it.

Per record: one decode in C (orjson), a walk of the record's own objects, one encode."""
import dataclasses
import re

from tap_zendesk_chat import fastjson
from tap_zendesk_chat.fastjson import TooDeep
from tap_zendesk_chat.transform import UNEXPECTED_FIELD

SEPARATOR = "__"
MAX_KEY_LENGTH = 255  # the SDK's flattening_max_key_length default
_LOWERCASE = re.compile(r"[a-z]")
_SCALARS = ("null", "boolean", "integer", "number", "string")


def flatten_key(key, parents=(), max_length=MAX_KEY_LENGTH):
    """`key` under its `parents`, joined with `__`; a name of `max_length` characters or more is shortened as the
    SDK shortens it: each part in turn, from the first, is cut to the capitals of its camel case (`session_id`
    to `si`), or its first three characters when that leaves one, until the name is short enough."""
    parts = [*parents, key]
    index = 0
    while len(SEPARATOR.join(parts)) >= max_length and index < len(parts):
        camel = re.sub(r"(?:^|_)(.)", lambda match: match.group(1).upper(), parts[index])  # inflection.camelize
        reduced = _LOWERCASE.sub("", camel)
        parts[index] = (reduced if len(reduced) > 1 else parts[index][:3]).lower()
        index += 1
    return SEPARATOR.join(parts)


def _types(schema):
    kind = schema.get("type")
    return [kind] if isinstance(kind, str) else list(kind) if isinstance(kind, list) else None


def _json_text_schema(types):
    """A column holding arrays and objects as JSON text (and the scalars the field may hold, as they are)."""
    scalars = [t for t in (types if types is not None else _SCALARS) if t in _SCALARS]
    if set(scalars) <= {"null", "string"}:  # as the SDK declares it
        return {"type": ["string", "null"] if "null" in scalars else "string"}
    return {"type": scalars if "string" in scalars else [*scalars, "string"]}


@dataclasses.dataclass
class _Level:
    """One object flattened: its declared keys' column names, and its objects flattened further."""
    parts: tuple  # the keys from the record down to this object
    names: dict  # declared key -> column name (for an object flattened further: its own name, the prefix)
    objects: dict  # declared key -> _Level of an object flattened further
    entries: dict = None  # declared key -> (column name, _Level or None, deselected): what a record's key needs


def _compile(schema, max_depth):
    """(columns, root level): columns maps each column's name to (its path of keys, its schema)."""
    columns = {}

    def level_of(node, parts):
        names, objects = {}, {}
        properties = node.get("properties")
        for key, sub in (properties.items() if isinstance(properties, dict) else ()):
            name = flatten_key(key, parts)
            names[key] = name
            sub = sub if isinstance(sub, dict) else {}
            types = _types(sub)
            inner = sub.get("properties")
            if types is not None and "object" in types and set(types) <= {"object", "null"} \
                    and isinstance(inner, dict) and inner and len(parts) < max_depth:
                objects[key] = level_of(sub, (*parts, key))
                continue
            if types is None or "object" in types or "array" in types:
                sub = _json_text_schema(types)
            if name in columns:
                raise ValueError(f"two fields are flattened to one column name, {name!r}: "
                                 f"{'.'.join(columns[name][0])} and {'.'.join((*parts, key))}")
            columns[name] = ((*parts, key), sub)
        return _Level(parts, names, objects)

    return columns, level_of(schema, ())


def flattened_columns(schema, max_depth):
    """Each column of the flattened schema: its name -> (the path of keys it comes from, its schema)."""
    return _compile(schema, max_depth)[0]


def flatten_schema(schema, max_depth):
    """The schema flattened (the SDK's flatten_schema): every keyword but `properties` kept, properties as columns.
    ValueError when two fields would take one name."""
    columns = flattened_columns(schema, max_depth)
    return dict(schema, properties={name: sub for name, (_, sub) in columns.items()})


def needs_flattening(schema):
    """Whether flattening changes the schema: a field declared object or array, or without a type. A schema that
    needs none is one flattened already (or of a stream with only scalars: the same either way)."""
    properties = schema.get("properties") if isinstance(schema, dict) else None
    for key, sub in (properties.items() if isinstance(properties, dict) else ()):
        if key == UNEXPECTED_FIELD:  # added back as an object to a flattened catalog that left it out
            continue
        types = _types(sub) if isinstance(sub, dict) else None
        if types is None or "object" in types or "array" in types:
            return True
    return False


def _json_text(value):
    if value.__class__ is TooDeep:
        return value.text
    try:
        return fastjson.dumps(value).decode()
    except fastjson.TooDeepError:
        return fastjson.dumps_text(value).decode()


class Flattener:
    """Flattens one stream's records (compiled once from its unflattened schema), leaving out the deselected
    columns; `.schema` is the SCHEMA they fit, less those columns."""

    def __init__(self, schema, max_depth, deselected=()):
        self.max_depth = max_depth
        self.columns, self._root = _compile(schema, max_depth)
        self.deselected = frozenset(deselected)
        levels = [self._root]
        for level in levels:
            levels += level.objects.values()
            level.entries = {key: (name, level.objects.get(key), name in self.deselected)
                             for key, name in level.names.items()}
        self.schema = dict(schema, properties={name: sub for name, (_, sub) in self.columns.items()
                                               if name not in self.deselected})

    def encode(self, encoded):
        """The flattened form of records the RecordPlan encoded (JSON bytes or msgspec.Raw), as JSON bytes."""
        loads, dumps, flatten = fastjson.loads_record, fastjson.dumps, self.flatten_record
        return [dumps(flatten(loads(data if data.__class__ is bytes else bytes(data)))) for data in encoded]

    def flatten_record(self, record):
        """A decoded record, flattened (a new dict)."""
        out = {}
        kept = record.get(UNEXPECTED_FIELD)
        if kept.__class__ is dict:
            record = dict(record)
            renamed = {}
            for path, value in kept.items():
                column, flat = self.unexpected_path(path)
                if column not in self.deselected:
                    renamed[flat] = value
            if renamed:
                record[UNEXPECTED_FIELD] = renamed
            else:
                del record[UNEXPECTED_FIELD]
        self._into(out, record, self._root)
        return out

    def _into(self, out, node, level):
        entries = level.entries
        for key, value in node.items():
            entry = entries.get(key)
            cls = value.__class__
            if entry is None:  # a field the schema does not declare
                name = flatten_key(key, level.parts)
                if name in self.columns:
                    continue  # a declared column's name: the declared value wins
                if cls is dict and len(level.parts) < self.max_depth:
                    self._into(out, value, _Level((*level.parts, key), {}, {}, {}))
                    continue
            else:
                name, below, deselected = entry
                if below is not None:
                    if cls is dict:
                        self._into(out, value, below)
                    continue  # null: no columns (the RecordPlan let nothing else through)
                if deselected:
                    continue
            if cls is dict or cls is list or cls is TooDeep:
                value = _json_text(value)
            out[name] = value

    def unexpected_path(self, path):
        """(the column a path of _unexpected_values falls in, the path as the flattened record names it)."""
        level, rest = self._root, path
        while True:  # down the flattened objects the path goes through (the longest key, for keys with dots)
            key = max((k for k in level.objects if rest.startswith(k + ".")), key=len, default=None)
            if key is None:
                break
            level, rest = level.objects[key], rest[len(key) + 1:]
        key = max((k for k in level.names if rest == k or rest.startswith(k) and rest[len(k)] in ".["), key=len,
                  default=None)
        if key is None:  # a field the schema does not declare
            key = re.split(r"[.\[]", rest, maxsplit=1)[0]
        column = level.names.get(key) or flatten_key(key, level.parts)
        return column, column + rest[len(key):]


def max_depth_of(config):
    """flattening_max_depth when the config turns flattening on, else None."""
    if config is None or not config.flattening_enabled:
        return None
    return config.flattening_max_depth
