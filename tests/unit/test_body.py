"""Bodies read with a cap (no sockets: a stand-in for urllib3's response)."""
import gzip
import io
import zlib

import pytest

from tap_zendesk_chat.body import BodyTooLargeError, gunzip, read_body
from tests.hostile_server import bomb


class Raw:
    """What read_body asks of urllib3's HTTPResponse: length_remaining and read(amt, decode_content)."""

    def __init__(self, data, declared=True):
        self._data = io.BytesIO(data)
        self.length_remaining = len(data) if declared else None
        self.reads = 0

    def read(self, amt=None, decode_content=True):
        assert decode_content is False
        self.reads += 1
        return self._data.read(amt)


def test_a_body_up_to_the_limit_is_read_and_one_over_it_is_refused():
    for declared in (True, False):
        assert read_body(Raw(b"x" * 100, declared), False, 100) == b"x" * 100
        with pytest.raises(BodyTooLargeError, match="limit of 100 bytes"):
            read_body(Raw(b"x" * 101, declared), False, 100)


def test_a_declared_length_over_the_limit_is_refused_unread():
    raw = Raw(b"x" * 5000)
    with pytest.raises(BodyTooLargeError, match="Content-Length of 5,000 bytes"):
        read_body(raw, False, 4096)
    assert raw.reads == 0


def test_a_declared_length_is_read_in_one_go():
    raw = Raw(b"[1]" * 1_000_000)
    assert read_body(raw, False, 256 << 20) == b"[1]" * 1_000_000 and raw.reads == 1


@pytest.mark.parametrize("declared", [True, False])
def test_gzip_is_decompressed_up_to_the_limit(declared):
    page = b'{"chats": [' + b'{"id": "x"},' * 50_000 + b"{}]}"
    assert read_body(Raw(gzip.compress(page), declared), True, len(page)) == page
    with pytest.raises(BodyTooLargeError, match="decompressed, it is larger"):
        read_body(Raw(gzip.compress(page), declared), True, len(page) - 1)


def test_a_bomb_stops_at_the_limit_in_one_member_or_many():
    member = gzip.compress(bytes(1 << 20))
    for data in (bomb(1), member * 1024):
        with pytest.raises(BodyTooLargeError, match="limit of 8 MiB"):
            gunzip(data, 8 << 20)


def test_a_cut_or_corrupt_gzip_body_is_a_zlib_error():
    whole = gzip.compress(b"x" * 100_000)
    for broken in (whole[:-3], whole[: len(whole) // 2], b"not gzip", whole + b"garbage"):
        with pytest.raises(zlib.error):
            gunzip(broken, 1 << 20)
