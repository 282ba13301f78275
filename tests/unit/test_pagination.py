import bisect
import datetime as dt
import math
import random

import pytest
from hypothesis import given, strategies as st

from tap_zendesk_chat.errors import UnexpectedResponseError
from tap_zendesk_chat.pagination import (ExportPage, Page, fetch_export_page, iter_export_ranges, iter_since_id,
                                         prefetched)
from tap_zendesk_chat.streams import STREAMS

UTC = dt.timezone.utc
BANS_SPLIT = STREAMS["bans"].split
CHAT_KEY = STREAMS["chats"].key_of  # the tap's: what the export walk is given
TIMELINE_KEY = STREAMS["agent_timeline"].key_of
T0 = 1_700_000_000  # seconds; far from "now" so nothing here depends on the clock
FAR = 2 ** 62


class Budget:
    """Fails the test, instead of hanging it, when a generator asks for more pages than it could need."""

    def __init__(self, most):
        self.most = most
        self.calls = []

    def spend(self, params):
        self.calls.append(dict(params))
        if len(self.calls) > self.most:
            raise RuntimeError(f"more than {self.most} requests: the paging does not end")


# -- since_id -------------------------------------------------------------------------------------------

class AgentsApi(Budget):
    """/agents: ids >= since_id, ascending, at most `limit`."""

    def __init__(self, ids, most=1000):
        super().__init__(most)
        self.ids = sorted(ids)

    def __call__(self, params):
        self.spend(params)
        return [{"id": i} for i in self.ids[bisect.bisect_left(self.ids, params["since_id"]):][:params["limit"]]]


class BansApi(Budget):
    """/bans with either reading of `limit`: the `limit` lowest ids of the union, or `limit` of each array."""

    def __init__(self, ip_ids, visitor_ids, semantics, most=1000):
        super().__init__(most)
        self.arrays = {"ip_address": sorted(ip_ids), "visitor": sorted(visitor_ids)}
        self.semantics = semantics

    def __call__(self, params):
        self.spend(params)
        since, limit = params["since_id"], params["limit"]
        wanted = {kind: ids[bisect.bisect_left(ids, since):][:limit] for kind, ids in self.arrays.items()}
        if self.semantics == "total":
            lowest = set(sorted(i for ids in wanted.values() for i in ids)[:limit])
            wanted = {kind: [i for i in ids if i in lowest] for kind, ids in wanted.items()}
        return {kind: [{"id": i, "reason": "spam"} for i in ids] for kind, ids in wanted.items()}


def walk_agents(api, limit, since_id=0):
    pages = list(iter_since_id(api, since_id, limit, lambda body: [body], "agents"))
    return pages, [r["id"] for p in pages for r in p.records]


def test_agents_exact_multiple_of_the_limit():
    api = AgentsApi(range(1, 301))
    pages, ids = walk_agents(api, 100)
    assert ids == list(range(1, 301))
    assert [c["since_id"] for c in api.calls] == [0, 101, 201, 301]
    assert all(c["limit"] == 100 for c in api.calls)
    assert [p.cursor for p in pages] == [101, 201, 301, 301]
    assert pages[-1].records == []


def test_agents_short_last_page():
    api = AgentsApi(range(1, 251))
    pages, ids = walk_agents(api, 100)
    assert ids == list(range(1, 251))
    assert [c["since_id"] for c in api.calls] == [0, 101, 201]
    assert pages[-1].cursor == 251


def test_agents_empty():
    api = AgentsApi([])
    pages, ids = walk_agents(api, 100, since_id=42)
    assert ids == []
    assert [c["since_id"] for c in api.calls] == [42]
    assert [p.cursor for p in pages] == [42]


def test_agents_sparse_ids_resume_from_each_cursor():
    rng = random.Random(7)
    all_ids = sorted(rng.sample(range(10 ** 11, 10 ** 11 + 10 ** 6), 537))
    api = AgentsApi(all_ids)
    pages, ids = walk_agents(api, 100)
    assert ids == all_ids
    assert len(api.calls) == 6
    # Every request starts where the previous page said to resume: the cursor is a safe resume point.
    assert [c["since_id"] for c in api.calls[1:]] == [p.cursor for p in pages[:-1]]
    for page in pages:
        assert all(r["id"] < page.cursor for r in page.records)


def walk_bans(api, limit):
    pages = list(iter_since_id(api, 0, limit, BANS_SPLIT, "bans"))
    return pages, [r["id"] for p in pages for r in p.records]


def interleaved(n):
    return [i for i in range(1, n + 1) if i % 2], [i for i in range(1, n + 1) if not i % 2]


UNEVEN = {
    "interleaved": interleaved(1003),
    "one visitor among many ips": ([i for i in range(1, 1200) if i != 600], [600]),
    "all visitors": ([], list(range(5, 2005, 2))),
    "all ips": (list(range(1, 1001)), []),
    "blocks": (list(range(1, 400)) + list(range(900, 1500)), list(range(400, 900)) + list(range(1500, 1510))),
    "both empty": ([], []),
}


@pytest.mark.parametrize("semantics", ["total", "per_array"])
@pytest.mark.parametrize("limit", [1, 7, 100, 500])
@pytest.mark.parametrize("case", UNEVEN)
def test_bans_every_record_once_in_id_order(semantics, limit, case):
    ip_ids, visitor_ids = UNEVEN[case]
    api = BansApi(ip_ids, visitor_ids, semantics, most=3000)
    pages, ids = walk_bans(api, limit)
    assert ids == sorted(ip_ids + visitor_ids)
    kinds = {r["id"]: r["type"] for p in pages for r in p.records}
    assert {i for i, kind in kinds.items() if kind == "visitor"} == set(visitor_ids)
    assert [c["since_id"] for c in api.calls[1:]] == [p.cursor for p in pages[:-1]]


@given(ids=st.sets(st.integers(min_value=1, max_value=400), max_size=120),
       visitors=st.sets(st.integers(min_value=1, max_value=400), max_size=120),
       limit=st.integers(min_value=1, max_value=30),
       semantics=st.sampled_from(["total", "per_array"]))
def test_bans_property_nothing_lost_nothing_repeated(ids, visitors, limit, semantics):
    visitors -= ids
    api = BansApi(ids, visitors, semantics, most=2000)
    _, got = walk_bans(api, limit)
    assert got == sorted(ids | visitors)


def test_ids_going_backwards_are_an_error():
    class Rewinding(Budget):
        def __call__(self, params):
            self.spend(params)
            return [{"id": i} for i in range(1, 101)]  # ignores since_id
    api = Rewinding(5)
    pages = iter_since_id(api, 0, 100, lambda body: [body], "agents")
    assert [r["id"] for r in next(pages).records] == list(range(1, 101))
    with pytest.raises(UnexpectedResponseError, match="backwards"):
        next(pages)


def test_bans_going_backwards_are_an_error():
    def fetch(params):
        return {"ip_address": [{"id": params["since_id"] - 10 + i} for i in range(5)], "visitor": []}
    with pytest.raises(UnexpectedResponseError, match="backwards"):
        list(iter_since_id(fetch, 100, 5, BANS_SPLIT, "bans"))


def test_since_id_refuses_a_body_that_is_not_a_list():
    with pytest.raises(UnexpectedResponseError):
        list(iter_since_id(lambda params: {"id": 1}, 0, 100, lambda b: [b], "agents"))


@pytest.mark.parametrize("odd", [{"id": "7"}, {"name": "x"}, "x", {"id": None}])
def test_records_without_an_integer_id_are_delivered_but_never_paged_by(odd):
    """The transform withholds and reports them; the walk goes on past them."""
    def fetch(params):
        since = params["since_id"]
        ids = [i for i in range(1, 8) if i >= since][:3]
        page = [{"id": i} for i in ids]
        return page[:1] + [odd] + page[1:] if since == 1 else page
    pages = list(iter_since_id(fetch, 1, 3, lambda b: [b], "agents"))
    records = [r for p in pages for r in p.records]
    assert [r["id"] for r in records if r is not odd] == list(range(1, 8))
    assert records.count(odd) == 1


def test_a_full_page_without_any_integer_id_is_an_error():
    with pytest.raises(UnexpectedResponseError, match="without integer ids"):
        list(iter_since_id(lambda params: [{"name": "x"}] * 3, 0, 3, lambda b: [b], "agents"))


# -- incremental export ------------------------------------------------------------------------------------

# The fake API's own keys and timestamps, written with the standard library only: had they used the tap's
# key_of or date functions, a bug there would order the fake API the same wrong way and pass unseen.
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)


def _micros(text):
    return (dt.datetime.fromisoformat(text.replace("Z", "+00:00")) - EPOCH) // dt.timedelta(microseconds=1)


def chat_key(record):
    """(epoch seconds, id): the chats export's order, as the API has it."""
    return (_micros(record["update_timestamp"]) // 1_000_000, record["id"])


def interval_key(record):
    """(epoch microseconds, agent_id): the agent timeline's order, as the API has it."""
    return (_micros(record["start_time"]), record["agent_id"])


def chat(seconds, chat_id):
    stamp = (EPOCH + dt.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"id": chat_id, "type": "chat", "update_timestamp": stamp}


class ExportApi(Budget):
    """/incremental/chats: records at or after (start_time, start_id), ascending by (time, id); with
    `shuffle` (a seed), each page's records in an order of their own (the same for the same request), the
    envelope still the API's."""

    def __init__(self, records, inclusive=False, key_of=chat_key, records_key="chats", end_id=True, most=1000,
                 shuffle=None):
        super().__init__(most)
        self.records = sorted(records, key=key_of)
        self.keys = [key_of(r) for r in self.records]
        self.times = [k[0] for k in self.keys]
        self.key_of, self.records_key, self.inclusive, self.end_id = key_of, records_key, inclusive, end_id
        self.shuffle = shuffle

    def __call__(self, params):
        self.spend(params)
        assert params["fields"] == f"{self.records_key}(*)"
        start = (params["start_time"], params.get("start_id"))
        if start[1] is None:
            first = bisect.bisect_left(self.times, start[0])
        elif self.inclusive:
            first = bisect.bisect_left(self.keys, start)
        else:
            first = bisect.bisect_right(self.keys, start)
        page = self.records[first:first + params["limit"]]
        body = {self.records_key: page, "count": len(page), "next_page": "https://acme.zendesk.com/never-null",
                "end_time": self.key_of(page[-1])[0] if page else start[0]}
        if self.end_id:
            body["end_id"] = self.key_of(page[-1])[1] if page else start[1]
        if self.shuffle is not None:
            random.Random(f"{self.shuffle}/{start}").shuffle(page)
        return body


def iter_export(fetch, records_key, cursor, limit, key_of, send_start_id, stop_at, what):
    """The tap's export walk from one open range, one request at a time, its pages' cursors as (time, id)."""
    def fetch_page(at, seen):
        return fetch_export_page(fetch, records_key, at, limit, key_of, send_start_id, what, seen)
    for page in iter_export_ranges(fetch_page, [(*cursor, None)], stop_at, min_round_trip=float("inf")):
        (range_,) = page.cursor
        yield Page(page.records, range_[:2])


def export(api, cursor=(T0, None), limit=1000, stop_at=FAR, key_of=CHAT_KEY, records_key="chats", send_start_id=True):
    """The pages the tap's export walk reads (with the tap's `key_of`), and the API's keys of their records."""
    pages = list(iter_export(api, records_key, cursor, limit, key_of, send_start_id, stop_at, records_key))
    return pages, [api.key_of(r) for p in pages for r in p.records]


def many_chats(n, seed=1, spread=50):
    rng = random.Random(seed)
    return [chat(T0 + rng.randrange(spread), f"{i:07d}.{rng.randrange(10 ** 6)}") for i in range(n)]


@pytest.mark.parametrize("inclusive", [False, True], ids=["exclusive start_id", "inclusive start_id"])
@pytest.mark.parametrize("limit", [1000, 37])
def test_export_every_record_exactly_once(inclusive, limit):
    records = many_chats(2345)
    api = ExportApi(records, inclusive=inclusive)
    pages, keys = export(api, limit=limit)
    assert keys == sorted(chat_key(r) for r in records)
    # Each page's cursor is where the next request starts.
    for page, call in zip(pages, api.calls[1:]):
        assert (call["start_time"], call["start_id"]) == page.cursor


@pytest.mark.parametrize("inclusive", [False, True], ids=["exclusive start_id", "inclusive start_id"])
def test_export_thousands_sharing_one_second_terminate(inclusive):
    records = [chat(T0 + 5, f"{i:06d}") for i in range(2600)] + [chat(T0 + 6, "z")]
    api = ExportApi(records, inclusive=inclusive, most=20)
    _, keys = export(api)
    assert keys == sorted(chat_key(r) for r in records)
    assert len(api.calls) <= 4


@pytest.mark.parametrize("n", [0, 1, 999, 1000, 1001, 2000, 2500])
def test_export_stops_on_a_short_page(n):
    api = ExportApi(many_chats(n, seed=n))
    _, keys = export(api)
    assert len(keys) == n
    assert len(api.calls) == math.ceil((n + 1) / 1000)


def test_export_sends_start_id_only_when_it_has_one():
    api = ExportApi(many_chats(1500))
    export(api)
    assert "start_id" not in api.calls[0]
    assert all("start_id" in call for call in api.calls[1:])


@pytest.mark.parametrize("cursor", [(T0 + 100, None), (T0 + 100, "x"), (T0 + 101, None)])
def test_export_makes_no_request_at_or_after_stop_at(cursor):
    def fetch(params):
        raise AssertionError("no request may be sent at or after stop_at")
    assert list(iter_export(fetch, "chats", cursor, 1000, CHAT_KEY, True, T0 + 100, "chats")) == []


def test_export_stops_once_the_cursor_reaches_stop_at():
    records = [chat(T0 + s, f"{s:04d}") for s in range(100)]
    api = ExportApi(records)
    pages, keys = export(api, limit=10, stop_at=T0 + 50)
    assert all(call["start_time"] < T0 + 50 for call in api.calls)
    assert pages[-1].cursor[0] >= T0 + 50
    assert keys == [chat_key(r) for r in records[:len(keys)]]


def test_a_full_page_that_does_not_move_the_cursor_is_an_error():
    same_second = [chat(T0, f"{i:04d}") for i in range(10)]

    class Stuck(Budget):
        def __call__(self, params):
            self.spend(params)  # ignores start_id: always the first page again
            return {"chats": same_second, "count": 10, "end_time": T0, "end_id": "0009"}
    api = Stuck(10)
    with pytest.raises(UnexpectedResponseError, match="did not move"):
        export(api, limit=10)
    assert len(api.calls) == 2


def test_a_full_page_entirely_before_a_cursor_without_id_is_an_error():
    """A resumed (time, None) cursor, and an API that sends a full page of older records: no endless loop."""
    old = [chat(T0 - 100, f"{i:04d}") for i in range(10)]

    class Stale(Budget):
        def __call__(self, params):
            self.spend(params)
            return {"chats": old, "count": 10, "end_time": T0 - 100, "end_id": "0009"}
    api = Stale(10)
    with pytest.raises(UnexpectedResponseError):
        export(api, cursor=(T0, None), limit=10)
    assert len(api.calls) == 1


@pytest.mark.parametrize("body", [[], "x", None, {"chats": {"id": 1}}, {"chats": None}, {},
                                  {"chats": [], "count": "0"}])
def test_export_refuses_bodies_it_cannot_read(body):
    with pytest.raises(UnexpectedResponseError):
        list(iter_export(lambda params: body, "chats", (T0, None), 1000, CHAT_KEY, True, FAR, "chats"))


def interval(micros, agent_id):
    stamp = (EPOCH + dt.timedelta(microseconds=micros)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {"agent_id": agent_id, "start_time": stamp, "status": "online",
            "duration": 1.5, "engagement_count": 0}


def test_agent_timeline_items_sharing_a_microsecond_across_pages():
    base = T0 * 1_000_000 + 123_456
    # limit 5: pages end inside the groups of base+2 and base+4 (a group of `limit` cannot be paged without an id)
    items = ([interval(base + 1, a) for a in (11, 12, 13)]
             + [interval(base + 2, a) for a in (20, 21, 22, 23)]
             + [interval(base + 3, 30), interval(base + 3, 31)]
             + [interval(base + 4, a) for a in (40, 41, 42, 43)])
    api = ExportApi(items, key_of=interval_key, records_key="agent_timeline", end_id=False, most=50)
    pages, keys = export(api, cursor=(base, None), limit=5, key_of=TIMELINE_KEY, records_key="agent_timeline",
                         send_start_id=False)
    assert keys == sorted(interval_key(i) for i in items)
    assert all("start_id" not in call for call in api.calls)
    assert [call["start_time"] for call in api.calls] == [base, base + 2, base + 3, base + 4]
    assert pages[-1].cursor == (base + 4, 43)


def test_agent_timeline_resumes_inside_a_shared_microsecond():
    base = T0 * 1_000_000
    items = [interval(base, a) for a in range(1, 5)] + [interval(base + 1, a) for a in range(1, 5)]
    api = ExportApi(items, key_of=interval_key, records_key="agent_timeline", end_id=False, most=10)
    _, keys = export(api, cursor=(base, 3), limit=5, key_of=TIMELINE_KEY, records_key="agent_timeline",
                     send_start_id=False)
    assert keys == [(base, 4)] + [(base + 1, a) for a in range(1, 5)]


def test_agent_timeline_more_than_a_page_in_one_microsecond_is_an_error_not_a_loop():
    base = T0 * 1_000_000
    items = [interval(base, a) for a in range(1, 9)]
    api = ExportApi(items, key_of=interval_key, records_key="agent_timeline", end_id=False, most=10)
    with pytest.raises(UnexpectedResponseError):
        export(api, cursor=(base, None), limit=5, key_of=TIMELINE_KEY, records_key="agent_timeline",
               send_start_id=False)


@given(stamps=st.lists(st.tuples(st.integers(0, 20), st.text("abcdef0123", min_size=1, max_size=4)),
                       max_size=150, unique=True),
       limit=st.integers(2, 40), inclusive=st.booleans(), resume_after=st.integers(0, 10))  # 1 + inclusive: no progress possible
def test_export_property_cursor_order_and_resume(stamps, limit, inclusive, resume_after):
    """Any mix of shared seconds and ids, any page size, either start_id semantics, and a resume from any
    page's cursor: records come once each, in cursor order, and every cursor is ahead of what it covers."""
    records = [chat(T0 + s, i) for s, i in stamps]
    want = sorted(chat_key(r) for r in records)
    pages, keys = export(ExportApi(records, inclusive=inclusive), limit=limit)
    assert keys == want
    cursors = [p.cursor for p in pages]
    assert cursors == sorted(cursors, key=lambda c: (c[0], c[1] or ""))
    for page in pages:
        assert all(chat_key(r) <= page.cursor for r in page.records)
    # Resume from the cursor of some page (as a killed run would): exactly the rest comes.
    if pages and pages[0].records:
        stop = pages[min(resume_after, len(pages) - 1)]
        _, rest = export(ExportApi(records, inclusive=inclusive), cursor=stop.cursor, limit=limit)
        assert rest == [k for k in want if k > stop.cursor]


# -- prefetching ---------------------------------------------------------------------------------------------
def test_prefetched_fetches_the_next_page_while_the_current_one_is_written_and_holds_at_most_two():
    import threading
    import time

    fetched, held, most = [], set(), [0]
    lock = threading.Lock()

    def pages():
        for n in range(6):
            time.sleep(0.05)  # the round trip
            with lock:
                fetched.append(n)
                held.add(n)
                most[0] = max(most[0], len(held))
            yield n
    started = time.monotonic()
    got = []
    for page in prefetched(pages(), min_round_trip=0.01):
        time.sleep(0.05)  # writing the page
        got.append(page)
        with lock:
            held.discard(page)
    assert got == list(range(6))
    assert most[0] <= 2, "more than two pages held at once"
    assert time.monotonic() - started < 6 * 0.1 * 0.8, "the round trips did not overlap the writing"


def test_prefetched_raises_the_walks_error_where_the_failed_page_would_be():

    def pages():
        yield 1
        raise UnexpectedResponseError("page 2 is broken")
    walk = prefetched(pages(), min_round_trip=0)
    assert next(walk) == 1
    with pytest.raises(UnexpectedResponseError, match="page 2"):
        next(walk)


def test_prefetched_stops_its_thread_when_the_caller_stops_early():
    import threading

    walk = prefetched(iter(range(100)), min_round_trip=0)
    assert next(walk) == 0
    assert next(walk) == 1  # from the prefetching thread
    walk.close()
    assert not any(t.name == "page-prefetch" for t in threading.enumerate())


def test_prefetched_stays_sequential_while_pages_arrive_fast():
    import threading

    seen = []
    for page in prefetched(iter(range(5))):
        seen.append(page)
        assert not any(t.name == "page-prefetch" for t in threading.enumerate())
    assert seen == list(range(5))


def test_a_record_with_id_zero_is_paged_by_its_id_not_the_cursor():
    """Id 0 is an id (a falsy one): it sorts and is cut at the frontier like any other."""
    body = {"ip_address": [{"id": 0}, {"id": 5}], "visitor": [{"id": 3}, {"name": "no id"}]}
    pages = list(iter_since_id(lambda params: body if params["since_id"] == 0 else {"ip_address": [], "visitor": []},
                               0, 10, BANS_SPLIT, "bans"))
    assert [r.get("id") for r in pages[0].records] == [0, None, 3, 5]


# -- export in time slices -----------------------------------------------------------------------------------

def ranges_walk(api, ranges, limit, parallel, stop_at=FAR, delay=0.0, pages_wanted=None, key_of=CHAT_KEY,
                records_key="chats", send_start_id=True, ceiling=None, warn=None, min_round_trip=0):
    """The pages iter_export_ranges gives over the fake API (each request taking `delay` s), up to
    `pages_wanted` of them (a killed run), and the API's keys of their records."""
    import time as clock

    def fetch_page(cursor, seen):
        def fetch(params):
            clock.sleep(delay)
            return api(params)
        return fetch_export_page(fetch, records_key, cursor, limit, key_of, send_start_id, records_key, seen, ceiling)
    pages = []
    walk = iter_export_ranges(fetch_page, ranges, stop_at, parallel=parallel, min_round_trip=min_round_trip,
                              warn=warn, what=records_key)
    for page in walk:
        pages.append(page)
        if pages_wanted is not None and len(pages) >= pages_wanted:
            walk.close()
            break
    return pages, [api.key_of(r) for p in pages for r in p.records]


def snapshot_is_safe(snapshot, delivered, want):
    """Every record outside the snapshot's ranges was delivered: a resume from it loses nothing."""
    def inside(key):
        return any(key >= (t, i or "") if i is not None else key[0] >= t for t, i, end in snapshot
                   if end is None or key[0] < end) if snapshot else False
    return all(k in delivered or inside(k) for k in want)


@given(stamps=st.lists(st.tuples(st.integers(0, 400), st.text("abcdef0123", min_size=1, max_size=4)),
                       max_size=300, unique=True),
       limit=st.integers(3, 40), inclusive=st.booleans(), parallel=st.integers(1, 5))
def test_sliced_export_property_every_record_once(stamps, limit, inclusive, parallel):
    """However the walk splits, with either start_id semantics and any page size: each record once."""
    records = [chat(T0 + s, i) for s, i in stamps]
    api = ExportApi(records, inclusive=inclusive, most=5000)
    pages, keys = ranges_walk(api, [(T0, None, None)], limit, parallel)
    assert sorted(keys) == sorted(chat_key(r) for r in records)
    assert len(keys) == len(set(keys))
    final = pages[-1].cursor if pages else ((T0, None, None),)
    assert len(final) == 1 and final[0][2] is None  # one open range at the end: the plain bookmark


@given(stamps=st.lists(st.tuples(st.integers(0, 400), st.text("abc012", min_size=1, max_size=3)),
                       min_size=1, max_size=250, unique=True),
       limit=st.integers(3, 30), parallel=st.integers(2, 5), kill_after=st.integers(1, 30),
       inclusive=st.booleans())
def test_sliced_export_property_kill_and_resume_loses_nothing(stamps, limit, parallel, kill_after, inclusive):
    """Stopped after any page and resumed from that page's snapshot (its STATE): every record comes, and
    none twice (the snapshot covers exactly what was written)."""
    records = [chat(T0 + s, i) for s, i in stamps]
    want = sorted(chat_key(r) for r in records)
    pages, first = ranges_walk(ExportApi(records, inclusive=inclusive, most=5000), [(T0, None, None)], limit,
                               parallel, pages_wanted=kill_after)
    snapshot = pages[-1].cursor
    assert snapshot_is_safe(snapshot, set(first), want)
    _, rest = ranges_walk(ExportApi(records, inclusive=inclusive, most=5000), list(snapshot), limit, parallel)
    assert sorted(first + rest) == want


def test_sliced_export_splits_a_long_range_and_holds_few_pages():
    """A long backfill on slow answers is read by several fetchers at once, in slices; no more than
    parallel + 1 pages are alive at once (counted by what still refers to them), and the ranges end as one
    open range."""
    import threading
    import time as clock
    import weakref
    records = many_chats(3000, seed=3, spread=30000)
    api = ExportApi(records, most=400)
    lock = threading.Lock()
    alive, most_alive, in_flight, most_in_flight = [0], [0], [0], [0]

    class Body:
        """Made when a request starts, referred to by each record of its answer (as msgspec.Raw records
        refer to the body they are slices of): alive while any of them is."""

        def __init__(self):
            with lock:
                alive[0] += 1
                most_alive[0] = max(most_alive[0], alive[0])
            weakref.finalize(self, gone)

    def gone():
        with lock:
            alive[0] -= 1

    def slow_api(params):
        body = Body()
        with lock:
            in_flight[0] += 1
            most_in_flight[0] = max(most_in_flight[0], in_flight[0])
        try:
            clock.sleep(0.01)
            answer = api(params)
            answer["chats"] = [dict(r, body=body) for r in answer["chats"]]
            return answer
        finally:
            with lock:
                in_flight[0] -= 1

    def fetch_page(cursor, seen):
        return fetch_export_page(slow_api, "chats", cursor, 100, CHAT_KEY, True, "chats", seen)
    keys, widest = [], 0
    stop_at = T0 + 30000 + 300
    for page in iter_export_ranges(fetch_page, [(T0, None, None)], stop_at, parallel=4, min_round_trip=0):
        keys += [chat_key(r) for r in page.records]
        widest = max(widest, len(page.cursor))
        page = None
    assert sorted(keys) == sorted(chat_key(r) for r in records)
    assert most_in_flight[0] > 1, "the slices were not read at once"
    assert widest > 1, "the range was never split"
    assert most_alive[0] <= 4 + 1, f"{most_alive[0]} pages alive at once"
    slices = widest + 10
    assert len(api.calls) <= 3000 // 100 + 1 + slices  # about one request more per slice


def test_sliced_export_makes_one_request_when_nothing_changed():
    api = ExportApi([chat(T0 + 1, "a")], most=1)
    pages, keys = ranges_walk(api, [(T0, None, None)], 1000, 6)
    assert keys == [(T0 + 1, "a")] and len(api.calls) == 1


def test_sliced_export_raises_a_fetchers_error_in_the_writers_thread():
    calls = []

    def fetch_page(cursor, seen):
        calls.append(cursor)
        if len(calls) > 2:
            raise UnexpectedResponseError("boom")
        return ExportPage([chat(cursor[0] + 1, "x")], [(cursor[0] + 1, "x")], (cursor[0] + 10, "x"), False, 1)
    with pytest.raises(UnexpectedResponseError, match="boom"):
        list(iter_export_ranges(fetch_page, [(T0, None, None)], T0 + 10_000, parallel=3,
                                min_round_trip=0))


# -- pages out of order, envelopes that disagree with their records, cursors that cycle ----------------------

class Envelope(ExportApi):
    """The export with each answer changed by `change(params, body)` (an envelope that lies)."""

    def __init__(self, records, change, **kwargs):
        super().__init__(records, **kwargs)
        self.change = change

    def __call__(self, params):
        body = super().__call__(params)
        self.change(params, body)
        return body


def test_sliced_export_of_pages_out_of_time_order_loses_nothing():
    """Each page in an order of its own: every record still comes once, however the walk was sliced (a
    slice cut its page at the first record past its end, and lost what followed)."""
    records = many_chats(3000, seed=4, spread=30000)
    want = sorted(chat_key(r) for r in records)
    warnings = []
    pages, keys = ranges_walk(ExportApi(records, shuffle=1, most=400), [(T0, None, None)], 100, 4,
                              stop_at=T0 + 30300, delay=0.01, warn=warnings.append)
    assert max(len(p.cursor) for p in pages) > 1, "the range was never split"
    assert sorted(keys) == want and len(keys) == len(set(keys))
    assert len(warnings) == 1 and "not in time order" in warnings[0]
    _, sequential = export(ExportApi(records, shuffle=1), limit=100)
    assert sorted(sequential) == want


@given(stamps=st.lists(st.tuples(st.integers(0, 400), st.text("abc012", min_size=1, max_size=3)),
                       max_size=250, unique=True),
       limit=st.integers(3, 30), parallel=st.integers(1, 5), inclusive=st.booleans(), end_id=st.booleans(),
       shuffle=st.integers(0, 10 ** 6), kill_after=st.none() | st.integers(1, 30))
def test_sliced_export_property_any_page_order_delivers_what_the_sequential_read_does(
        stamps, limit, parallel, inclusive, end_id, shuffle, kill_after):
    """For any order inside the pages, any split and any kill point: the sliced read, resumed from the
    STATE of the page it was stopped after, delivers the set the sequential read does, which is every
    record; once each, but for a resume from a cursor the API did not give (no end_id), which may repeat
    records of its instant. Every snapshot leaves out only delivered records: no cursor passes a record
    not yet delivered."""
    records = [chat(T0 + s, i) for s, i in stamps]
    want = sorted(chat_key(r) for r in records)

    def api():
        return ExportApi(records, inclusive=inclusive, end_id=end_id, shuffle=shuffle, most=5000)
    _, sequential = export(api(), limit=limit)
    assert sorted(sequential) == want
    pages, got = ranges_walk(api(), [(T0, None, None)], limit, parallel, pages_wanted=kill_after)
    if kill_after is not None and pages:
        snapshot = pages[-1].cursor
        assert snapshot_is_safe(snapshot, set(got), want)
        _, rest = ranges_walk(api(), list(snapshot), limit, parallel)
        got += rest
    assert set(got) == set(sequential)
    if end_id or kill_after is None:
        assert len(got) == len(set(got))


@given(stamps=st.lists(st.tuples(st.integers(0, 60), st.integers(1, 6)), max_size=200, unique=True),
       limit=st.integers(8, 30), parallel=st.integers(1, 4), shuffle=st.integers(0, 10 ** 6))
def test_sliced_export_property_an_api_given_only_the_time_any_page_order(stamps, limit, parallel, shuffle):
    """The agent timeline's way (no start_id: the API sends the cursor's instant again, here in any order):
    what the walk delivered of that instant is not delivered again, and nothing of it is skipped."""
    base = T0 * 1_000_000
    records = [interval(base + t, agent) for t, agent in stamps]
    want = sorted(interval_key(r) for r in records)
    options = dict(key_of=interval_key, records_key="agent_timeline", end_id=False, shuffle=shuffle, most=5000)
    _, sequential = export(ExportApi(records, **options), cursor=(base, None), limit=limit, key_of=TIMELINE_KEY,
                           records_key="agent_timeline", send_start_id=False)
    assert sorted(sequential) == want
    _, sliced = ranges_walk(ExportApi(records, **options), [(base, None, None)], limit, parallel, key_of=TIMELINE_KEY,
                            records_key="agent_timeline", send_start_id=False)
    assert sorted(sliced) == want


@pytest.mark.parametrize("end_time", [T0 + 10_000 + 30 * 86400, 253402300800], ids=["30 days ahead", "year 10000"])
@pytest.mark.parametrize("parallel", [1, 3])
def test_a_cursor_never_passes_the_last_record_received(end_time, parallel):
    """Every envelope says the export ends far ahead of its records: the cursor stays at the last record
    received, every record comes once, and the disagreement is said once."""
    records = many_chats(2500, seed=5, spread=10_000)
    api = Envelope(records, lambda params, body: body.update(end_time=end_time), most=50)
    warnings = []
    pages, keys = ranges_walk(api, [(T0, None, None)], 500, parallel, stop_at=T0 + 10_300, delay=0.005,
                              warn=warnings.append, ceiling=T0 + 10_600)
    want = sorted(chat_key(r) for r in records)
    assert sorted(keys) == want and len(keys) == len(set(keys))
    delivered = set()
    for page in pages:  # each STATE leaves out only records delivered
        delivered.update(chat_key(r) for r in page.records)
        assert snapshot_is_safe(page.cursor, delivered, want)
    assert pages[-1].cursor == (max(chat_key(r) for r in records) + (None,),)
    assert len(warnings) == 1 and f"end_time {end_time} is past its last record" in warnings[0]


def test_a_cursor_never_passes_the_sync_start():
    """Records dated after the sync started (a clock's error): the cursor stops at the sync's start, so the
    next run reads them again rather than skip what comes before that date."""
    records = [chat(T0 + s, f"{s:04d}") for s in range(100)]
    warnings = []
    pages, keys = ranges_walk(ExportApi(records), [(T0, None, None)], 20, 1, stop_at=T0 + 40, ceiling=T0 + 49,
                              warn=warnings.append, min_round_trip=float("inf"))
    assert keys == [chat_key(r) for r in records[:60]]
    assert pages[-1].cursor == ((T0 + 49, None, None),)
    assert len(warnings) == 1 and "after this sync started" in warnings[0]


def test_an_envelope_behind_its_records_repeats_nothing():
    """end_time before the page's last record: read on from there, and what comes again is dropped."""
    records = many_chats(2500, seed=6, spread=5000)
    api = Envelope(records, lambda params, body: body.update(end_time=body["end_time"] - 100), most=50)
    warnings = []
    _, keys = ranges_walk(api, [(T0, None, None)], 1000, 1, warn=warnings.append, min_round_trip=float("inf"))
    assert sorted(keys) == sorted(chat_key(r) for r in records) and len(keys) == len(set(keys))
    assert len(warnings) == 1 and "before its last record" in warnings[0]


@pytest.mark.parametrize("parallel", [1, 3])
def test_a_cursor_that_cycles_is_an_error_not_a_loop(parallel):
    """A -> B -> A inside one second (where ids cannot be compared, so "never backwards" does not see it):
    the walk stops on the page that points back, with what came before it delivered."""
    records = [chat(T0 + 5, f"{i:05d}") for i in range(5000)]
    a, b = (T0 + 5, "00999"), (T0 + 5, "01999")

    def point_back(params, body):
        if (params["start_time"], params.get("start_id")) == b:
            body["end_time"], body["end_id"] = a
    api = Envelope(records, point_back, most=10)
    delivered = []
    with pytest.raises(UnexpectedResponseError, match="went back to start_time=1700000005, start_id=00999.*cycles"):
        for page in ranges_walk_pages(api, [(T0, None, None)], 1000, parallel, stop_at=T0 + 100):
            delivered += [chat_key(r) for r in page.records]
    assert delivered == [chat_key(r) for r in records[:2000]]
    assert len(api.calls) <= 3 + parallel


def ranges_walk_pages(api, ranges, limit, parallel, stop_at=FAR):
    """iter_export_ranges over the fake API, its pages as they come (an error where it happens)."""
    def fetch_page(cursor, seen):
        return fetch_export_page(api, "chats", cursor, limit, CHAT_KEY, True, "chats", seen)
    return iter_export_ranges(fetch_page, ranges, stop_at, parallel=parallel, min_round_trip=0, what="chats")


def test_a_record_timed_before_the_walk_started_is_delivered_and_moves_no_cursor():
    """The API sends a record whose own time (0: 1970) is before the time the walk started from: no earlier
    page held it there, so it is delivered where it comes (it was dropped as "older than the cursor"), and
    the cursor follows the records that can be placed."""
    body = {"chats": [{"id": "a", "update_timestamp": "2024-05-01T10:00:00Z"},
                      {"id": "odd", "update_timestamp": 0},
                      {"id": "b", "update_timestamp": "2024-05-01T10:00:05Z"}], "count": 3,
            "end_time": 1714557605, "end_id": "b"}
    start = 1714557500
    page = fetch_export_page(lambda params: body, "chats", (start, None), 1000, CHAT_KEY, True, "chats", None,
                             None, floor=start)
    assert [r["id"] for r in page.records] == ["a", "odd", "b"]
    assert page.cursor == (1714557605, "b") and page.last
    # within the walk (the floor earlier than the record), a record older than the cursor is one already read
    later = fetch_export_page(lambda params: body, "chats", (1714557603, None), 1000, CHAT_KEY, True, "chats",
                              None, None, floor=start)
    assert [r["id"] for r in later.records] == ["odd", "b"]


def test_a_record_without_an_integer_id_sent_on_every_page_is_delivered_once():
    """The API may send such a record on several pages (it pages by "429946125" as a number): it went out once
    per page."""
    odd = {"id": "x9", "name": "no integer id"}

    def fetch(params):
        since = params["since_id"]
        return [{"id": i} for i in range(1, 8) if i >= since][:3] + [dict(odd)]
    pages = list(iter_since_id(fetch, 1, 3, lambda b: [b], "agents"))
    records = [r for p in pages for r in p.records]
    assert [r["id"] for r in records if r != odd] == list(range(1, 8))
    assert records.count(odd) == 1
