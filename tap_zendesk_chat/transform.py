"""Per-record work, compiled once per stream from its schema: drop deselected fields, normalise dates,
turn the 0/1 the API sometimes sends for a boolean into false/true.

The plan is generated as straight-line Python (one function per stream, no per-field calls) because it
runs for every record: a chat carries some 25 timestamps. Fields the schema does not list are kept."""
from tap_zendesk_chat.dates import CANONICAL_FAST, normalize_datetime


def _types(schema):
    kind = schema.get("type", [])
    return {kind} if isinstance(kind, str) else set(kind)


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


class RecordPlan:
    """What to do to each record of one stream, decided once."""

    def __init__(self, schema, deselected=(), fix_record=None):
        self.deselected = tuple(deselected)
        self.bad_dates = 0
        self.bad_date_example = None
        lines = ["def apply(record):"]
        if fix_record is not None:
            lines.append("    _fix_record(record)")
        for field in self.deselected:
            lines.append(f"    record.pop({field!r}, None)")
        self._paths = []
        self._emit_object(schema.get("properties", {}) if isinstance(schema, dict) else {}, "record", "", 1, lines)
        lines.append("    return record")
        scope = {"_canonical": CANONICAL_FAST.match, "_fix": self._fix, "_fix_record": fix_record,
                 "dict": dict, "list": list, "str": str, "int": int}
        exec("\n".join(lines), scope)  # noqa: S102 - source built above from the schema's field names only
        self.apply = scope["apply"]
        self.source = "\n".join(lines)

    def _emit_object(self, properties, var, path, depth, lines):
        pad = "    " * depth
        for key, sub in properties.items():
            where = f"{path}.{key}" if path else key
            if _is_date(sub):
                self._paths.append(where)
                index = len(self._paths) - 1
                lines += [f"{pad}v = {var}.get({key!r})",
                          f"{pad}if v is not None and (v.__class__ is not str or _canonical(v) is None):",
                          f"{pad}    {var}[{key!r}] = _fix(v, {index})"]
            elif _is_boolean(sub):
                lines += [f"{pad}v = {var}.get({key!r})",
                          f"{pad}if v.__class__ is int:",
                          f"{pad}    {var}[{key!r}] = v != 0"]
            elif not _has_work(sub):
                continue
            elif "object" in _types(sub) and isinstance(sub.get("properties"), dict):
                inner = f"o{depth}"
                lines += [f"{pad}{inner} = {var}.get({key!r})", f"{pad}if {inner}.__class__ is dict:"]
                self._emit_object(sub["properties"], inner, where, depth + 1, lines)
            elif "array" in _types(sub) and isinstance(sub.get("items"), dict) and \
                    isinstance(sub["items"].get("properties"), dict):
                items, inner = f"a{depth}", f"o{depth}"
                lines += [f"{pad}{items} = {var}.get({key!r})",
                          f"{pad}if {items}.__class__ is list:",
                          f"{pad}    for {inner} in {items}:",
                          f"{pad}        if {inner}.__class__ is dict:"]
                self._emit_object(sub["items"]["properties"], inner, where + "[]", depth + 3, lines)

    def _fix(self, value, index):
        """A timestamp not already in our form: normalise it, or null it (counted) when it is not one."""
        try:
            return normalize_datetime(value)
        except ValueError:
            self.bad_dates += 1
            if self.bad_date_example is None:
                self.bad_date_example = f"{self._paths[index]}={str(value)[:60]!r}"
            return None
