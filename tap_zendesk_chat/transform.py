"""Per-record work, compiled once per stream from its schema: drop deselected fields, normalise dates.

Fields the schema does not list are kept (the API adds fields; closed schemas lost them for years)."""
from tap_zendesk_chat.dates import normalize_datetime


def _types(schema):
    kind = schema.get("type", [])
    return {kind} if isinstance(kind, str) else set(kind)


class RecordPlan:
    """What to do to each record of one stream, decided once."""

    def __init__(self, schema, deselected=()):
        self.deselected = tuple(deselected)
        self.bad_dates = 0
        self.bad_date_example = None
        self._normalize = self._compile(schema, "")

    def apply(self, record):
        """Transform one record in place and return it."""
        for field in self.deselected:
            record.pop(field, None)
        if self._normalize is not None:
            self._normalize(record)
        return record

    def _bad_date(self, path, value):
        self.bad_dates += 1
        if self.bad_date_example is None:
            self.bad_date_example = f"{path}={str(value)[:60]!r}"

    def _compile(self, schema, path):
        """A function that normalises the dates inside a value of `schema`, or None when there are none.

        Timestamps are normalised where they are object properties (the only place the API puts them)."""
        if not isinstance(schema, dict):
            return None
        types = _types(schema)
        if "object" in types and isinstance(schema.get("properties"), dict):
            return self._object_fixer(schema["properties"], path)
        if "array" in types and isinstance(schema.get("items"), dict):
            inner = self._compile(schema["items"], path + "[]")
            if inner is not None:
                return _list_fixer(inner)
        return None

    def _object_fixer(self, properties, path):
        dates, nested = [], []
        for key, sub in properties.items():
            if isinstance(sub, dict) and sub.get("format") == "date-time" and "string" in _types(sub):
                dates.append(key)
            else:
                fix = self._compile(sub, f"{path}.{key}" if path else key)
                if fix is not None:
                    nested.append((key, fix))
        if not dates and not nested:
            return None
        dates = tuple(dates)
        nested = tuple(nested)
        bad = self._bad_date

        def fix_object(obj):
            if type(obj) is not dict:
                return
            for key in dates:
                value = obj.get(key)
                if value is not None:
                    try:
                        obj[key] = normalize_datetime(value)
                    except ValueError:
                        bad(f"{path}.{key}" if path else key, value)
                        obj[key] = None
            for key, fix in nested:
                value = obj.get(key)
                if value is not None:
                    fix(value)
        return fix_object


def _list_fixer(inner):
    def fix_list(values):
        if type(values) is list:
            for value in values:
                inner(value)
    return fix_list
