"""Every timestamp conversion of the tap: ISO strings, epoch seconds and epoch microseconds."""
import datetime as dt
import re

import pendulum

UTC = dt.timezone.utc
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
# Already in the form we emit: nothing to do on the hot path.
_CANONICAL = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?Z\Z")
# "2017-04-24T12:43:37+00:00Z": an offset *and* a Z, seen in real offline messages.
_OFFSET_AND_Z = re.compile(r"([+-]\d\d:?\d\d)Z\Z")


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
            try:
                parsed = pendulum.parse(text, strict=False)
            except Exception as exc:  # pendulum raises its own ParserError and others
                raise ValueError(f"not a timestamp: {value!r}") from exc
            if not isinstance(parsed, dt.datetime):
                raise ValueError(f"not a timestamp: {value!r}")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    parsed = parsed.astimezone(UTC)
    # A plain datetime, whatever the parser returned (pendulum gives a subclass).
    return dt.datetime(parsed.year, parsed.month, parsed.day, parsed.hour, parsed.minute,
                       parsed.second, parsed.microsecond, tzinfo=UTC)


def format_datetime(value):
    """Format an aware datetime as ISO-8601 UTC with a Z (microseconds only when present)."""
    value = value.astimezone(UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}"
    return text + "Z"


def normalize_datetime(value):
    """Return `value` as ISO-8601 UTC with Z; raises ValueError if it is not a timestamp."""
    if isinstance(value, str) and _CANONICAL.match(value):
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


def utcnow():
    return dt.datetime.now(UTC)
