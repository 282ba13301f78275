"""An export API that breaks its contract (issue 17): pages out of time order, envelopes whose end_time
runs ahead of their records, a cursor that cycles. No record is lost for it, no bookmark passes what was
received, nothing loops; a stream that cannot go on fails alone, with its last good STATE."""
import re

import pytest

from tap_zendesk_chat.discover import build_catalog
from tap_zendesk_chat.streams import STREAMS
from tests.harness import catalog_selecting, make_config, run_tap, validate_records
from tests.integration.expected import EXPORTS
from tests.integration.test_faults import assert_delivered_exactly, assert_nothing_after_last_state
from tests.simulator import Dataset

EXPORT_CATALOG = catalog_selecting(build_catalog(), set(EXPORTS))
CHATS = catalog_selecting(build_catalog(), {"chats"})
CRITICAL_LINE = re.compile(r"^CRITICAL (.*)$", re.MULTILINE)
# Each export walk logs under its first stream's name; the child streams of chats are read in the chats walk.
WALKS = tuple(name for name in EXPORTS if STREAMS[name].walk == name)
CHATS_WALK = {name for name in STREAMS if STREAMS[name].walk == "chats"}
HANG = 60  # seconds; these runs take a few


@pytest.fixture(scope="module")
def backfill():
    """Five pages of chats over a month; two pages of the agent timeline and of conversions."""
    return Dataset.generate(seed=171, chats=4500, offline_msgs=500, agents=5, timeline_entries=1100,
                            conversions=1100, department_events=300, agent_events=300, history_events=2)


def warnings_of(result, stream, phrase):
    return [line for line in result.stderr.splitlines() if line.startswith(f"WARNING {stream}: ") and phrase in line]


def test_pages_out_of_time_order_cost_no_record_when_read_in_time_slices(simulator, backfill):
    """At the default max_parallel_requests, on a network slow enough to read ahead in time slices, every
    page in an order of its own: every record arrives once (a slice cut its page at the first record past
    its end, and lost 3,467 of the 5,000 chats with exit 0), and the log says it once per stream."""
    sim = simulator(backfill, latency=0.25)
    sim.hostile.add("unsorted_pages")
    result = run_tap(make_config(sim), catalog=EXPORT_CATALOG, timeout=HANG).assert_ok()
    validate_records(result)
    assert_delivered_exactly(backfill, result, streams=EXPORTS)
    assert re.search(r"^INFO chats: read in \d+ time slices$", result.stderr, re.MULTILINE), "chats were not sliced"
    for stream in WALKS:
        assert len(warnings_of(result, stream, "not in time order")) == 1, stream


@pytest.mark.parametrize("flag", ["end_time_in_future", "end_time_past_9999"])
def test_an_end_time_ahead_of_the_records_moves_no_bookmark_past_them(simulator, backfill, flag):
    """Every page's end_time 30 days ahead (the sync ended with 1,000 of 5,000 chats and a bookmark in the
    future that every later run obeyed: the rest lost for good), or past the year 9999 (an OverflowError
    traceback): every record arrives, each bookmark is its last record's time, one WARNING per stream, and
    the next run asks on from there and gets nothing twice."""
    sim = simulator(backfill)
    sim.hostile.add(flag)
    result = run_tap(make_config(sim), catalog=EXPORT_CATALOG, timeout=HANG)
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    result.assert_ok()
    assert_delivered_exactly(backfill, result, streams=EXPORTS)
    for stream in WALKS:
        cursor = result.last_state["bookmarks"][stream]["cursor"]
        latest = max(STREAMS[stream].key_of(r)[0] for r in result.records(stream))
        assert cursor[0] == latest, f"{stream}: bookmark {cursor}, its last record at {latest}"
        assert len(warnings_of(result, stream, "is past its last record's time")) == 1, stream
    for stream in CHATS_WALK:  # read in the chats walk: its bookmark
        assert result.last_state["bookmarks"][stream]["cursor"] == result.last_state["bookmarks"]["chats"]["cursor"]
    again = run_tap(make_config(sim), catalog=EXPORT_CATALOG, state=result.last_state, timeout=HANG).assert_ok()
    assert again.record_messages() == []
    assert "nothing to ask" not in again.stderr


def test_a_cursor_that_cycles_fails_its_stream_with_its_last_good_state_and_the_others_go_on(simulator):
    """A -> B -> A inside a burst of chats sharing one second (where "never backwards" cannot see it: 29,971
    records for 1,000 chats, still looping at 25 s): chats fail with one clear line and keep the STATE of
    their last good page, every other stream is synced, exit 1; a resume from that STATE gets the rest."""
    dataset = Dataset.generate(seed=172, chats=1000, offline_msgs=0, agents=5, same_second_chats=2500,
                               timeline_entries=50, conversions=20, department_events=20, agent_events=20,
                               history_events=1)
    sim = simulator(dataset)
    sim.hostile.add("cursor_cycle")
    result = run_tap(make_config(sim), timeout=HANG)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    (critical,) = CRITICAL_LINE.findall(result.stderr)
    # the chats walk fails, and with it the child streams read in it
    assert f"{len(CHATS_WALK)} stream(s) failed" in critical and "chats: the API's cursor went back to" in critical
    assert "a cursor that cycles" in critical
    assert_nothing_after_last_state(result)
    assert_delivered_exactly(dataset, result, streams=set(STREAMS) - CHATS_WALK)
    bookmarks = result.last_state["bookmarks"]  # each stream of the walk keeps the last good page's cursor
    assert {tuple(bookmarks[name]["cursor"]) for name in CHATS_WALK} == {tuple(bookmarks["chats"]["cursor"])}
    first = [r["id"] for r in result.records("chats")]
    assert first == dataset.chat_ids()[:2000], "not exactly the two pages before the one that points back"
    assert sim.count("incremental/chats") == 3, "the tap asked again after the page that points back"

    sim.hostile.clear()
    rest = run_tap(make_config(sim), catalog=CHATS, state=result.last_state, timeout=HANG).assert_ok()
    assert sorted(first + [r["id"] for r in rest.records("chats")]) == sorted(dataset.chat_ids())
