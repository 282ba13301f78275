"""The obvious, slow transformation the tap's fast path must agree with, record for record.

    reference_transform(record, schema, deselected) -> a new record

1. a deep copy: the input is never changed;
2. the deselected top-level fields are dropped;
3. the schema is walked together with the value: wherever it says `"format": "date-time"` on a type
   that allows a string, a non-null value becomes `normalize_datetime(value)`, or None when that
   raises ValueError (not a timestamp);
4. wherever the schema allows only a boolean (and null), an integer becomes `value != 0`;
5. a chat's `webpath` item that is a list becomes {"from", "to"} (a pair) or {"values": [...]};
6. everything else is kept as it is, fields the schema does not list included.

No singer-python, no compilation, no caching: one recursive function a reader can check by eye.
"""
import copy

from tap_zendesk_chat.dates import normalize_datetime


def reference_transform(record, schema, deselected=(), stream=None):
    record = copy.deepcopy(record)
    if stream == "chats" and isinstance(record.get("webpath"), list):
        record["webpath"] = [({"from": w[0], "to": w[1]} if len(w) == 2 else {"values": w})
                             if isinstance(w, list) else w for w in record["webpath"]]
    for field in deselected:
        record.pop(field, None)
    return _walk(record, schema)


def _types(schema):
    kind = schema.get("type", [])
    return {kind} if isinstance(kind, str) else set(kind)


def _walk(value, schema):
    if value is None or not isinstance(schema, dict):
        return value
    types = _types(schema)
    if schema.get("format") == "date-time" and "string" in types:
        try:
            return normalize_datetime(value)
        except ValueError:
            return None
    if types - {"null"} == {"boolean"} and type(value) is int:
        return value != 0
    if isinstance(value, dict) and "object" in types:
        properties = schema.get("properties") or {}
        return {key: _walk(item, properties[key]) if key in properties else item for key, item in value.items()}
    if isinstance(value, list) and "array" in types:
        return [_walk(item, schema.get("items")) for item in value]
    return value
