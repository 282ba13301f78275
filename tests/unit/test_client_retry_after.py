import email.utils
import gzip
import zlib

import pytest

from tap_zendesk_chat.body import PAGE_LIMIT, gunzip
from tap_zendesk_chat.client import parse_retry_after

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
    assert gunzip(one + two, PAGE_LIMIT) == b'{"a":1}'
    assert gunzip(one + two + b"\0" * 8, PAGE_LIMIT) == b'{"a":1}'
    assert gunzip(gzip.compress(b"x" * 100_000), PAGE_LIMIT) == b"x" * 100_000
    for broken in (one[:-3], one[:5], b"not gzip", one + b"garbage"):
        with pytest.raises(zlib.error):
            gunzip(broken, PAGE_LIMIT)


# -- how many requests at once, and how big a page -------------------------------------------------------
def test_a_429_among_concurrent_requests_narrows_below_that_crowd_and_a_quiet_minute_widens_again(monkeypatch):
    from tap_zendesk_chat import client
    gate = client._Gate(6)
    assert gate.narrow(1) is None  # alone: a plain rate limit, not concurrency
    assert gate.narrow(4) == 3
    assert gate.narrow(5) is None  # sent among more than the limit now allows: already handled
    assert gate.narrow(2) == 1
    later = [client.time.monotonic() + 61]
    monkeypatch.setattr(client.time, "monotonic", lambda: later[0])
    with gate.slot(), gate.send() as crowd:
        assert crowd == 1 and gate.limit == 2
    later[0] += 61
    with gate.slot():
        assert gate.limit == 3


def test_the_gate_holds_requests_beyond_its_limit():
    import threading
    from tap_zendesk_chat import client
    gate, most, now, lock = client._Gate(2), [0], [0], threading.Lock()
    release = threading.Event()

    def request():
        with gate.slot():
            with lock:
                now[0] += 1
                most[0] = max(most[0], now[0])
            release.wait(0.05)
            with lock:
                now[0] -= 1
    threads = [threading.Thread(target=request) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most[0] == 2


def test_page_size_halves_on_the_second_too_big_answer_and_grows_back_ever_more_slowly():
    from tap_zendesk_chat.pagination import PageSize
    size = PageSize(1000, floor=50, grow_after=2)
    assert size.failed() is None and size.current == 1000  # one timeout can be a blip
    assert size.failed() == 500
    assert size.failed() is None and size.failed() == 250
    assert size.succeeded() is None and size.succeeded() == 500
    assert size.failed() is None and size.failed() == 250  # grew into trouble: the next growth waits longer
    assert [size.succeeded() for _ in range(4)] == [None, None, None, 500]
    for _ in range(20):
        size.failed()
    assert size.current == 50  # the floor
    assert size.failed() is None and size.current == 50
