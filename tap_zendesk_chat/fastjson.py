"""JSON at C speed (orjson), exact where orjson alone would not be, and of any depth.

orjson reads integers beyond 64 bits as floats and rejects NaN; the standard library keeps them exact.
Bodies that could hold such values take the standard path, so the content never changes.

Depth: orjson reads 1,024 levels and writes 254, the standard library and msgspec stop at about 1,000
(Python's recursion limit), as do the JSON readers of most targets. A body nested deeper is decoded all the
same: each value in it nested more than MAX_DEPTH levels deep is taken out whole, at the top-level field of
its record, as a TooDeep holding the JSON text the API sent (the transform sets that field to null and keeps
the text). What is written is never nested deeper than what was read, and never fails for its depth."""
import json
import math
import os
import re

import msgspec
import orjson

# Any run of 19 digits could be an integer orjson would turn into a float. Mapping every digit to "0"
# and searching for 19 zeros runs at memory speed, unlike a regex over a multi-megabyte page.
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_RUN = b"0" * 19
MAX_DEPTH = 512  # levels a body keeps when it is too deep for the decoders; well within all of them
# A string (skipped whole, brackets in it are text) or a bracket: what the depth of a body is counted on.
_TOKENS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)
_QUOTE, _OPEN_ARRAY, _OPEN_OBJECT = 0x22, 0x5B, 0x7B
# One token of JSON, by group: 1 an opening bracket, 2 a closing one, 3 a comma, 4 a colon, 5 a string, 6 a
# number or literal (NaN and Infinity too, as the standard parser reads them).
_LEXEME = re.compile(rb'[ \t\n\r]*(?:([\[{])|([\]}])|(,)|(:)|("(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*")'
                     rb'|(-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|true|false|null|NaN|-?Infinity))')
_VALUE, _FIRST_VALUE, _KEY, _FIRST_KEY, _COLON, _AFTER = range(6)


class TooDeep:
    """A value nested too deeply to decode, as the JSON text the API sent."""

    __slots__ = ("text",)

    def __init__(self, text):
        self.text = text

    def __eq__(self, other):
        return other.__class__ is TooDeep and other.text == self.text

    def __repr__(self):
        return f"TooDeep({len(self.text):,} characters of JSON)"


def _std_default(value):
    if value.__class__ is TooDeep:
        return value.text
    if value.__class__ is msgspec.Raw:
        return json.loads(bytes(value))
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


_std_dumps = json.JSONEncoder(separators=(",", ":"), allow_nan=False, default=_std_default).encode


def loads(data):
    """Decode a JSON body (bytes). Raises ValueError when it is not JSON. A value nested too deeply is cut
    out at the top-level field of its record: the first object on its way that is an item of an array (a
    page's record), else the first object."""
    return _loads(data, record=False)


def loads_record(data):
    """Decode one record's JSON (bytes): a value nested too deeply is cut out at the record's own field."""
    return _loads(data, record=True)


def _loads(data, record):
    if _LONG_RUN not in data.translate(_DIGITS_TO_ZERO):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass  # NaN/Infinity, nested deeper than 1,024 levels and the like: let the standard parser decide
    try:
        return json.loads(data)
    except RecursionError:
        return _loads_deep(data, record)


def _loads_deep(data, record):
    """A body nested deeper than the decoders go: one pass over its strings and brackets finds each value
    to take out (see _cut_at), the rest is decoded with those values as placeholders, then made TooDeep."""
    spans = []  # (start, end) of each value taken out
    stack = []  # (bracket, offset) of each container open at this point
    cut = None  # the depth of the value being taken out, while in it
    for match in _TOKENS.finditer(data):
        offset = match.start()
        char = data[offset]
        if char == _QUOTE:
            continue
        if char == _OPEN_ARRAY or char == _OPEN_OBJECT:
            stack.append((char, offset))
            if cut is None and len(stack) > MAX_DEPTH:
                cut = _cut_at(stack, record)
            continue
        if not stack or stack[-1][0] != char - 2:  # "]" and "}" are "[" and "{" plus 2
            raise ValueError("JSON brackets that do not match")
        opened = stack.pop()[1]
        if len(stack) == cut:
            spans.append((opened, offset + 1))
            cut = None
    if stack:
        raise ValueError("JSON cut short")
    for start, end in spans:
        _check_json(data, start, end)
    mark = "\0too deep " + os.urandom(8).hex() + " "  # no string the API sent can be it
    texts = [data[start:end].decode("utf-8", "replace") for start, end in spans]
    pieces, at = [], 0
    for index, (start, end) in enumerate(spans):
        pieces += (data[at:start], json.dumps(f"{mark}{index}").encode())
        at = end
    pieces.append(data[at:])

    def too_deep(value):
        if value.__class__ is str and value.startswith(mark):
            return TooDeep(texts[int(value[len(mark):])])
        return value

    def restore(obj):
        for key, value in obj.items():
            if value.__class__ is str and value.startswith(mark):
                obj[key] = too_deep(value)
        return obj

    decoded = json.loads(b"".join(pieces), object_hook=restore)
    return [too_deep(item) for item in decoded] if decoded.__class__ is list else too_deep(decoded)


def _check_json(data, start, end):
    """ValueError unless data[start:end] is one JSON value (checked without recursion, unlike a decoder)."""
    stack, expect, at = [], _VALUE, start
    while at < end:
        match = _LEXEME.match(data, at, end)
        if match is None:
            break
        at, kind, token = match.end(), match.lastindex, match.group(match.lastindex)
        if expect == _AFTER and stack and kind == 3:
            expect = _KEY if stack[-1] == b"}" else _VALUE
        elif kind == 2 and (expect == _AFTER or expect == _FIRST_VALUE and token == b"]" or
                            expect == _FIRST_KEY and token == b"}") and stack and stack[-1] == token:
            stack.pop()
            expect = _AFTER
        elif expect in (_VALUE, _FIRST_VALUE) and kind == 1:
            stack.append(b"]" if token == b"[" else b"}")
            expect = _FIRST_VALUE if token == b"[" else _FIRST_KEY
        elif expect in (_VALUE, _FIRST_VALUE) and kind in (5, 6) or expect in (_KEY, _FIRST_KEY) and kind == 5:
            expect = _COLON if expect in (_KEY, _FIRST_KEY) else _AFTER
        elif expect == _COLON and kind == 4:
            expect = _VALUE
        else:
            break
        if not stack and expect == _AFTER:
            if at == end:
                return
            break
    raise ValueError(f"not valid JSON at character {at} of the body")


def _cut_at(stack, record):
    """The depth (index in `stack`) of the container to take out, the first one past MAX_DEPTH being open:
    the child of the record it is in. In a page, the record is the first object on the way that is an item
    of an array (a list's record, an export's), else the first object (a single record, as /account sends
    it); for `record`, the root. Without an object, the root's child."""
    if not record:
        objects = [depth for depth in range(len(stack) - 1) if stack[depth][0] == _OPEN_OBJECT]
        for depth in objects:
            if depth and stack[depth - 1][0] == _OPEN_ARRAY:
                return depth + 1
        if objects:
            return objects[0] + 1
    return 1


def _default(value):
    if value.__class__ is TooDeep:
        return value.text
    if value.__class__ is msgspec.Raw:
        return orjson.Fragment(bytes(value))
    raise TypeError


class TooDeepError(ValueError):
    """A value nested deeper than JSON encoders with a recursion limit go (and so the readers of targets)."""


def dumps(value):
    """Encode compact JSON as bytes (a msgspec.Raw as its bytes, a TooDeep as its text, NaN as null).
    TooDeepError for a value nested deeper than the standard encoder goes (about 1,000 levels; orjson, which
    reads 1,024, writes only 254): see dumps_text."""
    try:
        return orjson.dumps(value, default=_default)
    except TypeError:  # an integer beyond 64 bits, or deeper than the 254 levels orjson writes
        try:
            try:
                return _std_dumps(value).encode()
            except ValueError:  # NaN or infinity, which JSON cannot hold: null, as orjson writes them
                return _std_dumps(_finite(value)).encode()
        except RecursionError:
            raise TooDeepError("a value nested too deeply to encode") from None


def dumps_text(value):
    """JSON of a value of any depth, without recursion (slower than dumps): the text of a value too deep
    for dumps, to keep as a string."""
    out, todo = [], [value]
    while todo:
        item = todo.pop()
        cls = item.__class__
        if cls is bytes:  # punctuation queued below (no decoded JSON value is bytes)
            out.append(item)
        elif cls is dict:
            todo.append(b"}")
            entries = list(item.items())
            for index in range(len(entries) - 1, -1, -1):
                key, inner = entries[index]
                todo.append(inner)
                todo.append((b"," if index else b"") + orjson.dumps(str(key)) + b":")
            out.append(b"{")
        elif cls is list or cls is tuple:
            todo.append(b"]")
            for index in range(len(item) - 1, -1, -1):
                todo.append(item[index])
                if index:
                    todo.append(b",")
            out.append(b"[")
        elif cls is float and not math.isfinite(item):
            out.append(b"null")
        else:
            out.append(dumps(item))  # a scalar, a Raw, a TooDeep: no depth
    return b"".join(out)


def _finite(value):
    if value.__class__ is float:
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if value.__class__ is dict:
        return {key: _finite(item) for key, item in value.items()}
    if value.__class__ is list:
        return [_finite(item) for item in value]
    return value
