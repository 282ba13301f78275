import email.utils
import gzip
import zlib

import pytest

from tap_zendesk_chat.client import gunzip, parse_retry_after

NOW = 1_700_000_000.0


@pytest.mark.parametrize("header, expected", [("120", 120.0), (" 7 ", 7.0), ("0", 0.0), ("1.5", 1.5),
                                              ("-5", 0.0), ("-0.1", 0.0)])
def test_delta_seconds(header, expected):
    assert parse_retry_after(header, now=NOW) == expected


def test_http_date_in_the_future():
    header = email.utils.formatdate(NOW + 90, usegmt=True)
    assert parse_retry_after(header, now=NOW) == pytest.approx(90.0)


def test_http_date_in_the_past_means_no_wait():
    header = email.utils.formatdate(NOW - 3600, usegmt=True)
    assert parse_retry_after(header, now=NOW) == 0.0


@pytest.mark.parametrize("header", [None, "", "soon", "Wed, 99 Foo 2015", "12 seconds"])
def test_absent_or_garbage_is_none(header):
    assert parse_retry_after(header, now=NOW) is None


# -- gzip bodies, decompressed by the tap itself ----------------------------------------------------------
def test_gunzip_joins_members_ignores_zero_padding_and_refuses_a_cut_body():
    one, two = gzip.compress(b'{"a":'), gzip.compress(b'1}')
    assert gunzip(one + two) == b'{"a":1}'
    assert gunzip(one + two + b"\0" * 8) == b'{"a":1}'
    assert gunzip(gzip.compress(b"x" * 100_000)) == b"x" * 100_000
    for broken in (one[:-3], one[:5], b"not gzip", one + b"garbage"):
        with pytest.raises(zlib.error):
            gunzip(broken)
