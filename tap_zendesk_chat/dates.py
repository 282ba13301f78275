"""Every timestamp conversion of the tap: ISO strings, epoch seconds and epoch microseconds."""
import datetime as dt
import re

import pendulum

UTC = dt.timezone.utc
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
# Already in the form we emit. The first pattern is the hot path: it accepts only days that exist in
# their month (29 February aside, which takes the full check), so a match needs no calendar check.
_CANONICAL_FAST = (
    r"[1-9]\d{3}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1\d|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)"
    r"T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d{1,6})?Z")
CANONICAL_FAST = re.compile(_CANONICAL_FAST + r"\Z")
# Many values at once, joined by this separator: one regex call for all the timestamps of a record.
CANONICAL_SEPARATOR = "\x1f"
CANONICAL_MANY = re.compile(f"{_CANONICAL_FAST}(?:{CANONICAL_SEPARATOR}{_CANONICAL_FAST})*\\Z")
_CANONICAL = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?Z\Z")
# The tolerant fallback parser fills missing parts from today ("now", "12:00"): a year must be there.
_HAS_YEAR = re.compile(r"\d{4}")
# "2017-04-24T12:43:37+00:00Z": an offset *and* a Z, seen in real offline messages.
_OFFSET_AND_Z = re.compile(r"([+-]\d\d:?\d\d)Z\Z")


def all_canonical(values):
    """True when every string of `values` passes CANONICAL_FAST (one regex call for the lot)."""
    if not values:
        return True
    joined = CANONICAL_SEPARATOR.join(values)
    # The count makes it exact: a value holding the separator itself cannot pass as two.
    return CANONICAL_MANY.match(joined) is not None and joined.count(CANONICAL_SEPARATOR) == len(values) - 1


def parse_datetime(value):
    """Parse an ISO-8601 / RFC 3339 timestamp tolerantly into an aware UTC datetime.

    Naive values are taken as UTC. Raises ValueError for anything that is not a timestamp."""
    if isinstance(value, dt.datetime):
        parsed = value
    else:
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"not a timestamp: {value!r}")
        text = _OFFSET_AND_Z.sub(r"\1", value.strip())
        try:
            parsed = dt.datetime.fromisoformat(text)
        except ValueError:
            if not _HAS_YEAR.search(text):
                raise ValueError(f"not a timestamp: {value!r}") from None
            try:
                parsed = pendulum.parse(text, strict=False)
            except Exception as exc:  # pendulum raises its own ParserError and others
                raise ValueError(f"not a timestamp: {value!r}") from exc
            if not isinstance(parsed, dt.datetime):
                raise ValueError(f"not a timestamp: {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        parsed = parsed.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before datetime.min in UTC
        raise ValueError(f"not a timestamp in range: {value!r}") from None
    # A plain datetime, whatever the parser returned (pendulum gives a subclass).
    return dt.datetime(parsed.year, parsed.month, parsed.day, parsed.hour, parsed.minute,
                       parsed.second, parsed.microsecond, tzinfo=UTC)


# A number where the API usually sends a timestamp string is epoch time; its size tells the unit
# (seconds until the year 5138, then milliseconds, then microseconds).
_EPOCH_SECONDS_BELOW = 10 ** 11
_EPOCH_MILLIS_BELOW = 10 ** 14


def datetime_from_number(number):
    """An epoch number (seconds, milliseconds or microseconds, told apart by size) as an aware UTC datetime.
    Raises ValueError for what cannot be one (a boolean, infinity, out of range)."""
    if number.__class__ not in (int, float) or number != number or number in (float("inf"), float("-inf")):
        raise ValueError(f"not an epoch time: {number!r}")
    size = abs(number)
    micros = number * 1_000_000 if size < _EPOCH_SECONDS_BELOW else number * 1000 if size < _EPOCH_MILLIS_BELOW \
        else number
    try:
        return EPOCH + dt.timedelta(microseconds=round(micros))
    except OverflowError:
        raise ValueError(f"not an epoch time in range: {number!r}") from None


def format_datetime(value):
    """Format an aware datetime as ISO-8601 UTC with a Z (microseconds only when present)."""
    value = value.astimezone(UTC)
    text = f"{value.year:04d}" + value.strftime("-%m-%dT%H:%M:%S")  # strftime's %Y drops zero padding
    if value.microsecond:
        text += f".{value.microsecond:06d}"
    return text + "Z"


def normalize_datetime(value):
    """Return `value` as ISO-8601 UTC with Z; raises ValueError if it is not a timestamp. A number is read
    as epoch time (datetime_from_number)."""
    if value.__class__ in (int, float):
        return format_datetime(datetime_from_number(value))
    if isinstance(value, str) and CANONICAL_FAST.match(value):
        return value
    if isinstance(value, str) and _CANONICAL.match(value):
        dt.datetime.fromisoformat(value[:19])  # the shape alone lets 2024-02-30 through; raises ValueError
        return value
    return format_datetime(parse_datetime(value))


def to_epoch_seconds(value):
    return int((value - EPOCH).total_seconds())


def to_epoch_micros(value):
    delta = value - EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_epoch_seconds(seconds):
    return EPOCH + dt.timedelta(seconds=int(seconds))


def from_epoch_micros(micros):
    return EPOCH + dt.timedelta(microseconds=int(micros))


def to_epoch(value, unit):
    """An aware datetime as the API's epoch number: "seconds" or "microseconds"."""
    return to_epoch_seconds(value) if unit == "seconds" else to_epoch_micros(value)


def from_epoch(number, unit):
    return from_epoch_seconds(number) if unit == "seconds" else from_epoch_micros(number)


def utcnow():
    return dt.datetime.now(UTC)
