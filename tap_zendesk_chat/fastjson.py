"""JSON at C speed (orjson), exact where orjson alone would not be.

orjson reads integers beyond 64 bits as floats and rejects NaN; the standard library keeps them exact.
Bodies that could hold such values take the standard path, so the content never changes."""
import json

import orjson

# Any run of 19 digits could be an integer orjson would turn into a float. Mapping every digit to "0"
# and searching for 19 zeros runs at memory speed, unlike a regex over a multi-megabyte page.
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_RUN = b"0" * 19
_std_dumps = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


def loads(data):
    """Decode a JSON body (bytes). Raises ValueError when it is not JSON."""
    if _LONG_RUN not in data.translate(_DIGITS_TO_ZERO):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass  # NaN/Infinity and the like: let the standard parser decide
    try:
        return json.loads(data)
    except RecursionError:  # nested deeper than the standard parser goes: not a body we can use
        raise ValueError("JSON nested too deeply") from None


def dumps(value):
    """Encode compact JSON as bytes."""
    try:
        return orjson.dumps(value)
    except TypeError:  # an integer beyond 64 bits
        try:
            return _std_dumps(value).encode()
        except ValueError:  # NaN or infinity, which JSON cannot hold: null, as orjson writes them
            return _std_dumps(_finite(value)).encode()


def _finite(value):
    if value.__class__ is float:
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if value.__class__ is dict:
        return {key: _finite(item) for key, item in value.items()}
    if value.__class__ is list:
        return [_finite(item) for item in value]
    return value
