"""The obvious, slow transformation the tap's fast paths must agree with, record for record. It imports
nothing from tap_zendesk_chat: it is the README's list of normalisations, written out once more.

    reference_transform(record, schema, deselected=(), stream=None) -> a new record, or None when the
    record cannot be written (not an object, or a key property missing or null)

1. a deep copy: the input is never changed;
2. a chat's `webpath` item that is not an object (nor null) becomes {"values": item};
3. the deselected top-level fields are dropped;
4. the schema is walked together with the value. Where a value's JSON type is one the schema declares:
   - a date-time string is kept when already ISO-8601 UTC with `Z` (0-6 fraction digits, a real day),
     else parsed (an offset, "+00:00Z", no zone = UTC, the tolerant parser when it has a 4-digit year)
     and written as UTC with `Z` (microseconds only when not zero);
   - a float where only "integer" is declared, or a non-finite float, does not fit;
   - objects and arrays are walked through their properties and items;
   where it is not: an integer 0/1 where a boolean (and no number) is declared becomes false/true; a
   number where a date-time (and no number) is declared is epoch seconds, milliseconds or microseconds
   by size; a string of ASCII digits in canonical form ("123", "0"; not "0123", "+1", " 1", "1.0") where
   integer (and no string) is declared becomes that integer; anything else does not fit;
5. a value that does not fit becomes null, and the value as sent is kept under its path ("a.b[2].c") in
   the record's "_unexpected_values" object (only when the schema declares that field); except a key
   property sent as an integer where a (non date-time) string is declared, which becomes "123";
6. everything else is kept as it is, fields the schema does not list included.
"""
import copy
import datetime as dt
import math
import re

import pendulum

UNEXPECTED = "_unexpected_values"
UTC = dt.timezone.utc
_CANONICAL = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z")
_OFFSET_AND_Z = re.compile(r"([+-]\d\d:?\d\d)Z\Z")
_CLASSES = {"null": (type(None),), "boolean": (bool,), "integer": (int,), "number": (int, float), "string": (str,),
            "array": (list,), "object": (dict,)}


class _NotFit(Exception):
    pass


def reference_transform(record, schema, deselected=(), stream=None, key_properties=()):
    if not isinstance(record, dict):
        return None
    record = copy.deepcopy(record)
    if stream == "chats" and isinstance(record.get("webpath"), list):
        record["webpath"] = [{"values": w} if w is not None and not isinstance(w, dict) else w
                             for w in record["webpath"]]
    for field in deselected:
        record.pop(field, None)
    properties = schema.get("properties") or {}
    unexpected = {}
    for key in list(record):
        if key in properties:
            record[key] = _walk(record[key], properties[key], key, unexpected)
    for key in key_properties:
        if record.get(key) is None and key in unexpected and key in properties:
            sent, types = unexpected[key], _types(properties[key])
            if type(sent) is int and "string" in types and properties[key].get("format") != "date-time":
                record[key] = str(unexpected.pop(key))
    if any(record.get(key) is None for key in key_properties):
        return None
    if unexpected and UNEXPECTED in properties and UNEXPECTED not in deselected:
        kept = record.get(UNEXPECTED)
        record[UNEXPECTED] = {**(kept if isinstance(kept, dict) else {}), **unexpected}
    return record


def _types(schema):
    kind = schema.get("type") if isinstance(schema, dict) else None
    kinds = [kind] if isinstance(kind, str) else kind if isinstance(kind, list) else []
    return {k for k in kinds if k in _CLASSES}


def _walk(value, schema, path, unexpected):
    types = _types(schema)
    if not types:
        return value
    try:
        return _conform(value, schema, types, path, unexpected)
    except _NotFit:
        unexpected[path] = str(value) if isinstance(value, float) and not math.isfinite(value) else value
        return None


def _conform(value, schema, types, path, unexpected):
    is_date = schema.get("format") == "date-time" and "string" in types
    numeric = bool(types & {"integer", "number"})
    if type(value) in {c for t in types for c in _CLASSES[t]}:
        if isinstance(value, str) and is_date:
            return _normalise(value)
        if isinstance(value, float) and (not math.isfinite(value) or "number" not in types):
            raise _NotFit
        if isinstance(value, dict):
            properties = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
            for key in list(value):
                if key in properties:
                    value[key] = _walk(value[key], properties[key], f"{path}.{key}", unexpected)
        if isinstance(value, list) and isinstance(schema.get("items"), dict):
            value[:] = [_walk(item, schema["items"], f"{path}[{i}]", unexpected) for i, item in enumerate(value)]
        return value
    if type(value) is int and "boolean" in types and not numeric and value in (0, 1):
        return value == 1
    if type(value) in (int, float) and is_date and not numeric:
        return _from_epoch(value)
    if isinstance(value, str) and "integer" in types and "string" not in types and re.fullmatch("0|[1-9][0-9]*", value,
                                                                                                 re.ASCII):
        try:
            return int(value)
        except ValueError:  # beyond Python's limit of digits for int()
            raise _NotFit from None
    raise _NotFit


def _format(when):
    when = when.astimezone(UTC)
    text = f"{when.year:04d}-{when.month:02d}-{when.day:02d}T{when.hour:02d}:{when.minute:02d}:{when.second:02d}"
    return text + (f".{when.microsecond:06d}" if when.microsecond else "") + "Z"


def _normalise(text):
    if _CANONICAL.fullmatch(text):
        try:
            dt.datetime.fromisoformat(text[:19])
        except ValueError:
            raise _NotFit from None
        return text
    stripped = _OFFSET_AND_Z.sub(r"\1", text.strip())
    if not stripped:
        raise _NotFit
    try:
        when = dt.datetime.fromisoformat(stripped)
    except ValueError:
        if not re.search(r"\d{4}", stripped):
            raise _NotFit from None
        try:
            when = pendulum.parse(stripped, strict=False)
        except Exception:
            raise _NotFit from None
        if not isinstance(when, dt.datetime):
            raise _NotFit from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    try:
        return _format(when)
    except (OverflowError, ValueError):
        raise _NotFit from None


def _from_epoch(number):
    if not math.isfinite(number):
        raise _NotFit
    size = abs(number)
    micros = number * 1_000_000 if size < 1e11 else number * 1000 if size < 1e14 else number
    try:
        return _format(dt.datetime(1970, 1, 1, tzinfo=UTC) + dt.timedelta(microseconds=round(micros)))
    except OverflowError:
        raise _NotFit from None
