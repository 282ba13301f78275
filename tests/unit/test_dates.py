import datetime as dt
import re

import pytest
from hypothesis import assume, given, strategies as st

from tap_zendesk_chat.dates import (UTC, format_datetime, from_epoch_micros, from_epoch_seconds, normalize_datetime,
                                    parse_datetime, to_epoch_micros, to_epoch_seconds)

EMITTED = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z\Z")
EMITTED_AS_IS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z\Z")  # left as is by normalize
offsets = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(
    lambda minutes: dt.timezone(dt.timedelta(minutes=minutes)))
# One day of margin at both ends, so every offset stays within datetime's range once converted to UTC.
aware = st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30), timezones=offsets)
recent = st.datetimes(min_value=dt.datetime(1970, 1, 1), max_value=dt.datetime(2100, 1, 1), timezones=st.just(UTC))
timestamp_like = st.from_regex(
    r"\d{1,4}-\d{1,2}-\d{1,2}[T ]\d{1,2}:\d{1,2}(:\d{1,2}(\.\d{1,9})?)?(Z|[+-]\d\d:?\d\d|[+-]\d\d:\d\dZ)?",
    fullmatch=True)


def _emitted(when):
    """The form the tap emits for an instant, written out here without the tap's code."""
    return (f"{when.year:04d}-{when.month:02d}-{when.day:02d}T{when.hour:02d}:{when.minute:02d}:{when.second:02d}"
            + (f".{when.microsecond:06d}" if when.microsecond else "") + "Z")


@st.composite
def written_timestamps(draw):
    """(text, instant): a timestamp written in one of the forms the API sends (T or space, with or without
    seconds, 0-6 fraction digits, Z, an offset with or without a colon, the "+00:00Z" quirk, no zone), and
    the instant it means, worked out here with datetime arithmetic only (not with the tap's parser)."""
    local = draw(st.datetimes(min_value=dt.datetime(1000, 1, 2), max_value=dt.datetime(9998, 12, 30)))
    digits = draw(st.integers(min_value=0, max_value=6))
    seconds = digits > 0 or draw(st.booleans())
    zone = draw(st.sampled_from(["Z", "offset", "offset without colon", "offset and Z", "none"]))
    minutes = draw(st.integers(min_value=-(14 * 60), max_value=14 * 60)) if zone.startswith("offset") else 0
    local = local.replace(second=local.second if seconds else 0,
                          microsecond=local.microsecond // 10 ** (6 - digits) * 10 ** (6 - digits) if digits else 0)
    text = (f"{local.year:04d}-{local.month:02d}-{local.day:02d}{draw(st.sampled_from('T '))}"
            f"{local.hour:02d}:{local.minute:02d}")
    if seconds:
        text += f":{local.second:02d}"
    if digits:
        text += "." + f"{local.microsecond:06d}"[:digits]
    sign, (hours, mins) = "+" if minutes >= 0 else "-", divmod(abs(minutes), 60)
    text += {"Z": "Z", "none": "", "offset": f"{sign}{hours:02d}:{mins:02d}",
             "offset without colon": f"{sign}{hours:02d}{mins:02d}",
             "offset and Z": f"{sign}{hours:02d}:{mins:02d}Z"}[zone]
    return text, (local - dt.timedelta(minutes=minutes)).replace(tzinfo=UTC)


def test_written_timestamps_mean_what_they_say():
    """The strategy's own arithmetic, on examples worked out by hand."""
    assert _emitted(dt.datetime(2024, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)) == "2024-01-01T00:00:00.500000Z"
    assert _emitted(dt.datetime(987, 6, 5, 4, 3, 2, tzinfo=UTC)) == "0987-06-05T04:03:02Z"
    assert dt.datetime(2024, 1, 1, 1, 30, tzinfo=UTC) - dt.timedelta(minutes=90) == dt.datetime(2024, 1, 1, tzinfo=UTC)


@given(aware)
def test_format_then_parse_round_trips(value):
    text = format_datetime(value)
    assert EMITTED.match(text), text
    assert text == _emitted(value.astimezone(UTC))
    parsed = parse_datetime(text)
    assert parsed == value
    assert parsed.utcoffset() == dt.timedelta(0)


@given(aware)
def test_any_iso_form_normalizes_to_the_emitted_form(value):
    expected = _emitted(value.astimezone(UTC))  # not format_datetime: normalize_datetime ends in it
    assert normalize_datetime(value.isoformat()) == expected
    assert normalize_datetime(value.isoformat(sep=" ")) == expected
    assert normalize_datetime(value) == expected


# (text, the instant it means) or (text, None): text that may or may not be a timestamp.
must_parse = st.one_of(written_timestamps(), aware.map(lambda v: (v.isoformat(), v.astimezone(UTC))),
                       aware.map(lambda v: (v.isoformat(sep=" "), v.astimezone(UTC))))
may_parse = st.one_of(timestamp_like, st.text(max_size=60)).map(lambda text: (text, None))


@given(st.one_of(must_parse, may_parse))
def test_normalize_is_idempotent(case):
    """Idempotent, same instant; a timestamp must normalise (only text that is none may raise ValueError)."""
    text, instant = case
    try:
        once = normalize_datetime(text)
    except ValueError:
        assert instant is None, f"{text!r} is a timestamp ({_emitted(instant)}) and was refused"
        return
    if instant is not None:  # the emitted form, or the text itself when already in it (1-6 fraction digits kept)
        assert once == (text if EMITTED_AS_IS.match(text) else _emitted(instant))
        assert parse_datetime(once) == instant
    assert normalize_datetime(once) == once
    assert parse_datetime(once) == parse_datetime(text)


@given(st.one_of(must_parse, may_parse))
def test_parse_returns_an_aware_utc_datetime_or_raises_value_error(case):
    """An aware UTC datetime, the instant the text means; ValueError only for text that is not a timestamp."""
    text, instant = case
    try:
        parsed = parse_datetime(text)
    except ValueError:
        assert instant is None, f"{text!r} is a timestamp ({_emitted(instant)}) and was refused"
        return
    assert type(parsed) is dt.datetime
    assert parsed.tzinfo is UTC
    if instant is not None:
        assert parsed == instant


@pytest.mark.parametrize("value", ["", "   ", "garbage", "2024-13-01T00:00:00Z", "2024-02-30", "2024-01-01T25:00:00Z",
                                   None, 12345, 1.5, [], {}, b"2024-01-01", "0001-01-01T00:00:00+01:00",
                                   "9999-12-31T23:59:59-01:00"])
def test_garbage_raises_value_error(value):
    with pytest.raises(ValueError):
        parse_datetime(value)


@pytest.mark.parametrize("value", ["2024-02-30T00:00:00Z", "2024-13-01T00:00:00Z", "2024-01-01T24:61:00Z",
                                   "0000-01-01T00:00:00Z"])
def test_impossible_dates_in_the_emitted_shape_are_rejected(value):
    """The fast path for already-canonical strings must not let an impossible calendar date through."""
    with pytest.raises(ValueError):
        normalize_datetime(value)


@pytest.mark.parametrize("value", ["1", "12:00", "now"])
def test_fragments_are_not_timestamps(value):
    with pytest.raises(ValueError):
        parse_datetime(value)


@pytest.mark.parametrize("text, expected", [
    ("2017-04-24T12:43:37+00:00Z", "2017-04-24T12:43:37Z"),
    ("2017-04-24T12:43:37+0000Z", "2017-04-24T12:43:37Z"),
    ("2017-04-24T14:43:37+02:00Z", "2017-04-24T12:43:37Z"),
    ("2024-01-01T01:30:00+01:30", "2024-01-01T00:00:00Z"),
    ("2023-12-31T19:00:00-05:00", "2024-01-01T00:00:00Z"),
    ("2024-01-01T10:00:00", "2024-01-01T10:00:00Z"),
    ("2024-01-01 10:00:00", "2024-01-01T10:00:00Z"),
    ("2024-01-01", "2024-01-01T00:00:00Z"),
    ("2020-12-14T04:08:32.301292Z", "2020-12-14T04:08:32.301292Z"),
    ("2020-12-14T04:08:32.301292+00:00", "2020-12-14T04:08:32.301292Z"),
    ("2020-12-14T04:08:32.000001Z", "2020-12-14T04:08:32.000001Z"),
    ("2020-12-14T04:08:32.5+00:00", "2020-12-14T04:08:32.500000Z"),
    ("  2024-01-01T10:00:00Z ", "2024-01-01T10:00:00Z"),
])
def test_normalize_examples(text, expected):
    assert normalize_datetime(text) == expected


def test_offset_and_z_quirk_parses_to_the_same_instant():
    assert parse_datetime("2017-04-24T12:43:37+00:00Z") == dt.datetime(2017, 4, 24, 12, 43, 37, tzinfo=UTC)


def test_naive_datetime_object_is_taken_as_utc():
    assert parse_datetime(dt.datetime(2024, 1, 1, 10)) == dt.datetime(2024, 1, 1, 10, tzinfo=UTC)


def test_six_digit_fraction_is_kept():
    assert parse_datetime("2020-12-14T04:08:32.301292Z").microsecond == 301292


def test_parse_returns_a_plain_datetime_even_from_the_fallback_parser():
    parsed = parse_datetime("20240101T100000Z")
    assert type(parsed) is dt.datetime and parsed == dt.datetime(2024, 1, 1, 10, tzinfo=UTC)


@given(aware)
def test_epoch_micros_round_trip(value):
    assert from_epoch_micros(to_epoch_micros(value)) == value


@given(aware)
def test_epoch_seconds_round_trip_of_whole_seconds(value):
    whole = value.replace(microsecond=0)
    assert from_epoch_seconds(to_epoch_seconds(whole)) == whole


@given(st.integers(min_value=to_epoch_micros(dt.datetime(1, 1, 1, tzinfo=UTC)),
                   max_value=to_epoch_micros(dt.datetime(9999, 12, 31, tzinfo=UTC))))
def test_micros_to_datetime_and_back(micros):
    assert to_epoch_micros(from_epoch_micros(micros)) == micros


@given(st.integers(min_value=-62135596800, max_value=253402214400))
def test_seconds_to_datetime_and_back(seconds):
    assert to_epoch_seconds(from_epoch_seconds(seconds)) == seconds


@given(recent)
def test_epoch_seconds_floor_after_1970(value):
    """Seconds cursors must never point after the record they came from."""
    floor = from_epoch_seconds(to_epoch_seconds(value))
    assert floor <= value < floor + dt.timedelta(seconds=1)


@given(aware, aware)
def test_epoch_micros_preserve_order(a, b):
    assume(a != b)
    low, high = min(a, b), max(a, b)
    assert to_epoch_micros(low) < to_epoch_micros(high)
    assert to_epoch_micros(high) - to_epoch_micros(low) == (high - low) // dt.timedelta(microseconds=1)


def test_known_epoch_values():
    when = dt.datetime(2020, 12, 14, 4, 8, 32, 301292, tzinfo=UTC)
    assert to_epoch_micros(when) == 1607918912301292
    assert to_epoch_seconds(when) == 1607918912
    assert from_epoch_micros(1607918912301292) == when
    assert from_epoch_seconds("1607918912") == when.replace(microsecond=0)
