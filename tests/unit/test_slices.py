"""Time slices that cost nothing extra (issue 18): an export read ahead in slices makes at most
`parallel` requests more than the same export read one page after another, on any shape of data (dense
bursts, data that end long before now, empty years, a busy day in a quiet year), delivers the same
records, and loses nothing when killed inside a burst; a writer slower than the answers neither starts
nor widens the read-ahead."""
import collections
import random
import time

import pytest
from hypothesis import given, settings, strategies as st

from tap_zendesk_chat.pagination import fetch_export_page, iter_export_ranges
from tests.unit.test_pagination import (CHAT_KEY, T0, TIMELINE_KEY, ExportApi, chat, chat_key, interval,
                                        interval_key, snapshot_is_safe)

DAY, YEAR = 86400, 365 * 86400


def walk(records, limit, parallel, stop_at, delay=0.0, write=0.0, min_round_trip=0.0, inclusive=False,
         shuffle=None, ranges=None, pages_wanted=None):
    """The sliced walk over a fake export whose answers take `delay` s, its writer taking `write` s a page:
    (the keys written, requests, the most slices at once, the notes, the last snapshot)."""
    api = ExportApi(records, inclusive=inclusive, shuffle=shuffle, most=100_000)
    notes = []

    def fetch_page(cursor, seen):
        def fetch(params):
            time.sleep(delay)
            return api(params)
        return fetch_export_page(fetch, "chats", cursor, limit, CHAT_KEY, True, "chats", seen)
    keys, widest, snapshot, pages = [], 1, None, 0
    pages_of = iter_export_ranges(fetch_page, ranges or [(T0, None, None)], stop_at, parallel=parallel,
                                  min_round_trip=min_round_trip, note=notes.append)
    for page in pages_of:
        keys += [api.key_of(r) for r in page.records]
        widest, snapshot, pages = max(widest, len(page.cursor)), page.cursor, pages + 1
        if write:
            time.sleep(write)
        if pages_wanted is not None and pages >= pages_wanted:
            pages_of.close()
            break
    return keys, len(api.calls), widest, notes, snapshot


def sequential(records, limit, stop_at, **options):
    """The keys and requests of the same export read one page after another, in the caller's thread."""
    keys, requests, widest, _, _ = walk(records, limit, 1, stop_at, min_round_trip=float("inf"), **options)
    assert widest == 1
    return keys, requests


def chats_at(stamps, seed=0):
    rng = random.Random(seed)
    return [chat(T0 + s, f"{i:06d}.{rng.randrange(10 ** 6)}") for i, s in enumerate(stamps)]


def shape(name, limit):
    """Records of a data shape (pages of `limit`) and the stop_at of its walk."""
    rng = random.Random(name)
    if name == "uniform":
        stamps = [rng.randrange(30 * DAY) for _ in range(40 * limit)]
        return stamps, 30 * DAY
    if name == "burst in one second":  # the issue's: 5,000 chats, 3,000 of them sharing one update_timestamp
        stamps = [rng.randrange(30 * DAY) for _ in range(2 * limit)] + [15 * DAY] * (3 * limit)
        return stamps, 30 * DAY
    if name == "data that end long before now":
        return [rng.randrange(30 * DAY) for _ in range(20 * limit)], 5 * YEAR
    if name == "empty years":
        stamps = [rng.randrange(10 * DAY) for _ in range(10 * limit)]
        return stamps + [3 * YEAR + rng.randrange(10 * DAY) for _ in range(10 * limit)], 4 * YEAR
    if name == "a busy day in a quiet year":
        stamps = [rng.randrange(YEAR) for _ in range(limit)]
        return stamps + [200 * DAY + rng.randrange(DAY) for _ in range(15 * limit)], YEAR
    if name == "bursts and a sparse tail":  # 20,000 chats with 12,000 in one second, a quiet year, one busy day
        stamps = [rng.randrange(YEAR) for _ in range(2 * limit)] + [100 * DAY + rng.randrange(DAY)
                                                                    for _ in range(6 * limit)]
        return stamps + [100 * DAY + 43200] * (12 * limit), 3 * YEAR
    raise ValueError(name)


SHAPES = ["uniform", "burst in one second", "data that end long before now", "empty years",
          "a busy day in a quiet year", "bursts and a sparse tail"]


@pytest.mark.parametrize("name", SHAPES)
@pytest.mark.parametrize("parallel", [2, 8])
def test_requests_stay_within_the_sequential_walks_plus_parallel(name, parallel):
    """On each shape the sliced walk asks for at most `parallel` pages more than one page after another
    would, and writes the same records, each once (it asked 16x as many on a burst: every idle fetcher
    split the range a page inside one second made look endless)."""
    stamps, stop = shape(name, 50)
    records = chats_at(stamps)
    want, alone = sequential(records, 50, T0 + stop)
    got, requests, widest, _, _ = walk(records, 50, parallel, T0 + stop, delay=0.002)
    assert sorted(got) == sorted(want) == sorted(chat_key(r) for r in records)
    assert len(got) == len(set(got))
    assert requests <= alone + parallel, f"{requests} requests, {alone} one page after another"
    if name == "uniform":
        assert widest > 1, "uniform data were not read in slices"


def test_a_burst_in_one_second_is_read_page_after_page_and_said_once():
    """5,000 chats, 3,000 sharing one second, pages of 1,000: no slice splits the second; the log says once
    why it is read one page after another."""
    stamps, stop = shape("burst in one second", 1000)
    records = chats_at(stamps)
    _, alone = sequential(records, 1000, T0 + stop)
    got, requests, _, notes, _ = walk(records, 1000, 8, T0 + stop, delay=0.005)
    assert len(got) == 5000 and requests <= alone + 8
    dense = [n for n in notes if "share the second" in n]
    assert len(dense) == 1 and "never splits a second" in dense[0]


@settings(max_examples=60, deadline=None)
@given(clusters=st.lists(st.tuples(st.integers(0, 10 ** 7), st.sampled_from([0, 0, 1, 5, 100, 10 ** 4, 10 ** 6]),
                                   st.integers(1, 120)), min_size=1, max_size=6),
       tail=st.sampled_from([1, 10, 10 ** 3, 10 ** 8]), limit=st.integers(5, 40), parallel=st.integers(2, 8),
       inclusive=st.booleans(), shuffle=st.none() | st.integers(0, 99))
def test_property_the_request_bound_holds_on_any_shape(clusters, tail, limit, parallel, inclusive, shuffle):
    """Clusters of records anywhere (one second wide to months wide, more than a page in one second or a
    few), the data ending just before stop_at or years before: requests <= sequential + parallel, the
    same records, each once; with either start_id semantics and pages in any order."""
    rng = random.Random(str(clusters))
    stamps = [start + rng.randrange(spread + 1) for start, spread, count in clusters for _ in range(count)]
    records = chats_at(stamps, seed=len(stamps))
    stop = T0 + max(stamps) + tail
    options = dict(inclusive=inclusive, shuffle=shuffle)
    want, alone = sequential(records, limit, stop, **options)
    got, requests, _, _, _ = walk(records, limit, parallel, stop, delay=0.0005, **options)
    assert sorted(got) == sorted(want) == sorted(chat_key(r) for r in records)
    assert len(got) == len(set(got))
    assert requests <= alone + parallel


@settings(max_examples=40, deadline=None)
@given(clusters=st.lists(st.tuples(st.integers(0, 10 ** 9), st.sampled_from([0, 1, 5, 100, 10 ** 6, 10 ** 8]),
                                   st.integers(1, 60)), min_size=1, max_size=6),
       limit=st.integers(8, 30), parallel=st.integers(2, 8))
def test_property_the_request_bound_holds_for_an_api_given_only_the_time(clusters, limit, parallel):
    """The agent timeline's way (no start_id: each page sends the cursor's microsecond again): the same
    bound, the same records."""
    rng = random.Random(str(clusters))
    base = T0 * 1_000_000
    keys = {(base + start + rng.randrange(spread + 1), rng.randrange(1, 7))
            for start, spread, count in clusters for _ in range(count)}
    records = [interval(t, agent) for t, agent in sorted(keys)]
    stop = max(t for t, _ in keys) + 10 ** 7

    def read(parallel, min_round_trip):
        api = ExportApi(records, key_of=interval_key, records_key="agent_timeline", end_id=False, most=100_000)

        def fetch_page(cursor, seen):
            def fetch(params):
                time.sleep(0.0005)
                return api(params)
            return fetch_export_page(fetch, "agent_timeline", cursor, limit, TIMELINE_KEY, False, "agent_timeline",
                                     seen)
        got = [api.key_of(r) for page in iter_export_ranges(fetch_page, [(base, None, None)], stop, parallel=parallel,
                                                            min_round_trip=min_round_trip) for r in page.records]
        return got, len(api.calls)
    if max(collections.Counter(t for t, _ in keys).values()) >= limit:
        return  # a full page inside one microsecond cannot be paged past without an id (an error, tested elsewhere)
    want, alone = read(1, float("inf"))
    got, requests = read(parallel, 0)
    assert sorted(set(got)) == sorted(want) == sorted(keys)
    assert requests <= alone + parallel


@pytest.mark.parametrize("kill_after", [1, 2, 3, 5, 8, 13])
def test_killed_inside_a_burst_and_resumed_loses_nothing(kill_after):
    """Stopped after any page while a second holding many pages is read, and resumed from that page's
    snapshot (its STATE): every record comes, and none twice."""
    stamps, stop = shape("bursts and a sparse tail", 20)
    records = chats_at(stamps)
    want = sorted(chat_key(r) for r in records)
    first, _, _, _, snapshot = walk(records, 20, 4, T0 + stop, delay=0.002, pages_wanted=kill_after)
    assert snapshot_is_safe(snapshot, set(first), want)
    rest, _, _, _, _ = walk(records, 20, 4, T0 + stop, delay=0.002, ranges=list(snapshot))
    assert sorted(first + rest) == want


def test_a_writer_slower_than_the_answers_does_not_widen_the_read_ahead():
    """Answers in 10 ms, each page written in 40 ms: the fetchers are held up by the writer, not idle; a
    split would only add requests (every fetcher split at once, whatever the writer's pace)."""
    stamps, stop = shape("uniform", 20)
    records = chats_at(stamps)
    _, alone = sequential(records, 20, T0 + stop)
    got, requests, widest, _, _ = walk(records, 20, 4, T0 + stop, delay=0.01, write=0.04)
    assert len(got) == len(records)
    assert widest == 1 and requests == alone


def test_a_writer_faster_than_the_answers_splits():
    """The other side: answers in 20 ms, pages written at once: the writer waits, so the walk splits."""
    stamps, stop = shape("uniform", 20)
    records = chats_at(stamps)
    _, alone = sequential(records, 20, T0 + stop)
    got, requests, widest, _, _ = walk(records, 20, 4, T0 + stop, delay=0.02)
    assert len(got) == len(records)
    assert widest > 1 and requests <= alone + 4


def test_the_time_a_page_waits_to_be_written_does_not_start_the_read_ahead():
    """Fast answers, a slow writer: only the answers' time counts, and the walk stays in the caller's
    thread."""
    stamps, stop = shape("uniform", 20)
    records = chats_at(stamps[:200])
    got, requests, _, notes, _ = walk(records, 20, 4, T0 + stop, write=0.03, min_round_trip=0.02)
    assert len(got) == 200 and requests == 11
    assert not [n for n in notes if "reading ahead" in n]


def test_the_share_done_counts_every_slice_from_the_start_to_stop_at():
    """What the progress lines plan by: the span from the run's start (start_date or the bookmark) to
    stop_at, less what each slice still holds."""
    from tap_zendesk_chat.pagination import share_done
    assert share_done(((0, None, None),), 0, 100) == 0.0
    assert share_done(((25, "a", None),), 0, 100) == 0.25
    assert share_done(((10, "a", 50), (60, None, 80), (90, "b", None)), 0, 100) == 1 - (40 + 20 + 10) / 100
    assert share_done(((120, "z", None),), 0, 100) == 1.0  # a cursor past stop_at: nothing left this run
    assert share_done(((5, None, None),), 5, 5) == 1.0


def slow_pages(api, seconds):
    """fetch_page over `api`, pages of 20, each answer `seconds` late (so fetchers read ahead)."""
    def fetch_page(cursor, seen):
        def fetch(params):
            time.sleep(seconds)
            return api(params)
        return fetch_export_page(fetch, "chats", cursor, 20, CHAT_KEY, True, "chats", seen)
    return fetch_page


def test_the_share_done_of_a_walk_grows_with_every_page():
    """However the slices interleave, the share never goes back; at the end it reaches the last record at
    least (what follows it up to stop_at, pages that came back empty say only for a slice of its own)."""
    stamps, stop = shape("bursts and a sparse tail", 20)
    records = chats_at(stamps)
    from tap_zendesk_chat.pagination import share_done
    fetch_page = slow_pages(ExportApi(records, most=100_000), 0.002)
    shares = [share_done(page.cursor, T0, T0 + stop)
              for page in iter_export_ranges(fetch_page, [(T0, None, None)], T0 + stop, parallel=4, min_round_trip=0)]
    assert shares == sorted(shares) and shares[-1] >= max(stamps) / stop


@pytest.mark.parametrize("parallel", [3, 6])
def test_fetchers_starting_together_get_equal_slices(parallel):
    """Fetchers that start reading ahead at once share the time after the first page equally (halves of
    halves left 6 fetchers with slices of 1/4 and 1/8: at 1.5 s a page, 84% of the ceiling, not 94%)."""
    stamps, stop = shape("uniform", 20)
    records = chats_at(stamps)
    fetch_page = slow_pages(ExportApi(records, most=100_000), 0.01)
    first = None
    for page in iter_export_ranges(fetch_page, [(T0, None, None)], T0 + stop, parallel=parallel, min_round_trip=0):
        if first is None and len(page.cursor) == parallel:
            first = page.cursor
    widths = [(end if end is not None else T0 + stop) - start for start, _, end in first[1:]]
    assert max(widths) - min(widths) <= 0.02 * max(widths), widths
