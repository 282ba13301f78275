"""On a real network's terms (a latency per answer, the API's 200 requests a minute with 429 +
Retry-After, an API that refuses concurrent requests, pages too big to serve in time), a chats backfill
read in time slices is exact, resumes from any kill, and completes; an incremental run with nothing new
is still one request."""
import random
import time

import pytest

from tap_zendesk_chat.discover import build_catalog
from tests.harness import catalog_selecting, finish_tap, make_config, read_then_kill, run_tap, start_tap, validate_records
from tests.simulator import Dataset

LATENCY = 0.3  # seconds per answer: above the 0.2 s from which the tap overlaps its requests
PAGE = 1000
CHATS = catalog_selecting(build_catalog(), {"chats"})


@pytest.fixture(scope="module")
def backfill():
    """Seven pages of chats over a month, 300 of them sharing one second."""
    return Dataset.generate(seed=81, chats=5600, offline_msgs=500, agents=5, timeline_entries=10, conversions=10,
                            department_events=10, agent_events=10, history_events=2, same_second_chats=300)


def chat_ids(records):
    return sorted(r["id"] for r in records)


def sliced_states(result):
    return [s for s in result.states if "slices" in s["bookmarks"].get("chats", {})]


def chats_requests(sim):
    return [r for r in sim.requests if r["path"] == "incremental/chats"]


@pytest.mark.parametrize("inclusive", [False, True], ids=["exclusive start_id", "inclusive start_id"])
def test_a_sliced_backfill_delivers_every_chat_once(simulator, backfill, inclusive):
    sim = simulator(backfill, latency=LATENCY, rate_limit_per_minute=200, start_id_inclusive=inclusive)
    result = run_tap(make_config(sim, max_parallel_requests=4), catalog=CHATS, timeout=120).assert_ok()
    validate_records(result)
    assert chat_ids(result.records("chats")) == sorted(backfill.chat_ids())
    # It was read in slices (each STATE kept them) and ended as one plain cursor.
    assert sliced_states(result), "the backfill was never split into time slices"
    assert "slices" not in result.last_state["bookmarks"]["chats"]
    slices = max(len(s["bookmarks"]["chats"]["slices"]) for s in sliced_states(result))
    requests = chats_requests(sim)
    assert all(r["status"] == 200 for r in requests)
    # At most one request more per split than the pages (its last page is cut at the next slice's start),
    # at most max_parallel_requests splits.
    assert 2 <= slices and len(requests) <= len(backfill.chat_ids()) // PAGE + 1 + 4
    # Connections are kept alive and shared: no more of them than requests at once.
    assert len({r["peer"] for r in requests}) <= 4 < len(requests)

    # The next run, with nothing new: one request, as without slices.
    sim.clear_requests()
    again = run_tap(make_config(sim, max_parallel_requests=4), catalog=CHATS, state=result.last_state).assert_ok()
    assert again.records("chats") == [] and len(chats_requests(sim)) == 1


def kill_and_resume(config, rng, kill_between, kills, most_runs):
    """Runs the chats sync, killing the first `kills` runs after a random number of lines in `kill_between`
    and resuming each from the last STATE, until one ends. (chat ids delivered under a STATE, how many
    records those STATEs covered in all, runs, runs that resumed from unfinished slices)."""
    delivered, emitted, state, runs, resumed_slices = set(), 0, None, 0, 0
    while True:
        runs += 1
        assert runs < most_runs, "the sync never finished"
        if state and "slices" in state["bookmarks"].get("chats", {}):
            resumed_slices += 1
        proc = start_tap(config, catalog=CHATS, state=state)
        lines = read_then_kill(proc, rng.randint(*kill_between)) if runs <= kills else []
        result = finish_tap(proc, lines)
        covered = []
        for message in result.messages:
            if message["type"] == "RECORD":
                covered.append(message["record"]["id"])
            elif message["type"] == "STATE":
                emitted += len(covered)
                delivered.update(covered)
                covered = []
        state = result.last_state or state
        if result.returncode == 0:
            return delivered, emitted, runs, resumed_slices


def test_a_sliced_backfill_resumes_from_any_kill_without_loss(simulator, backfill):
    """Killed at random points while the slices are read, each run resumed from the last STATE: every chat
    arrives, and a resume repeats at most what the last STATE did not cover (one page)."""
    sim = simulator(backfill, latency=LATENCY)
    delivered, emitted, runs, resumed_slices = kill_and_resume(
        make_config(sim, max_parallel_requests=4), random.Random(82), (PAGE + 200, 3 * PAGE), kills=4, most_runs=20)
    assert sorted(delivered) == sorted(backfill.chat_ids())
    assert emitted - len(delivered) <= PAGE * (runs - 1), "more than one page repeated per resume"
    assert resumed_slices, "no run resumed from a STATE with unfinished slices"


YEAR = 365 * 86400
SHAPES = {  # data shapes of issue 18, about 5,000 chats each
    "3,000 chats in one second": dict(chats=1900, offline_msgs=100, same_second_chats=3000),
    "data that end 3 years ago": dict(chats=4900, offline_msgs=100, end=int(time.time()) - 3 * YEAR),
    "a busy day in a quiet year": dict(chats=300, offline_msgs=0, busy_day_chats=4700, span_days=365),
    "one day in 3 empty years": dict(chats=0, offline_msgs=0, busy_day_chats=5000, span_days=3 * 365,
                                     end=int(time.time()) - YEAR),
}


def shaped(name):
    return Dataset.generate(seed=85, agents=5, timeline_entries=10, conversions=10, department_events=10,
                            agent_events=10, history_events=2, **SHAPES[name])


@pytest.mark.parametrize("name", list(SHAPES))
def test_slices_cost_at_most_max_parallel_requests_more_than_one_page_after_another(simulator, name):
    """On each shape, at 0.3 s a page and 200 requests a minute, the backfill makes at most
    max_parallel_requests requests more than a sequential walk of the same data, and delivers the same
    chats (82 requests where 6 do, on the first: a page inside one second looked endless)."""
    dataset = shaped(name)
    alone = simulator(dataset)
    sequential = run_tap(make_config(alone, max_parallel_requests=1), catalog=CHATS).assert_ok()
    baseline = len(chats_requests(alone))
    sim = simulator(dataset, latency=LATENCY, rate_limit_per_minute=200)
    result = run_tap(make_config(sim, max_parallel_requests=6), catalog=CHATS, timeout=120).assert_ok()
    assert chat_ids(result.records("chats")) == chat_ids(sequential.records("chats")) == sorted(dataset.chat_ids())
    assert baseline <= len(dataset.chat_ids()) // PAGE + 1
    assert len(chats_requests(sim)) <= baseline + 6, f"{len(chats_requests(sim))} requests, {baseline} sequential"
    if "one second" in name:
        assert result.stderr.count("a time slice never splits a second") == 1


def test_killed_inside_a_burst_and_resumed_nothing_is_lost(simulator):
    """3,000 chats in one second, killed while its pages are read (between the 1,200th and the 3,800th
    chat), each run resumed from its last STATE: every chat arrives, at most a page repeated per resume."""
    dataset = shaped("3,000 chats in one second")
    sim = simulator(dataset, latency=LATENCY)
    delivered, emitted, runs, _ = kill_and_resume(make_config(sim, max_parallel_requests=4), random.Random(86),
                                                  (1200, 3800), kills=3, most_runs=12)
    assert sorted(delivered) == sorted(dataset.chat_ids())
    assert emitted - len(delivered) <= PAGE * (runs - 1), "more than one page repeated per resume"


def test_a_slow_consumer_does_not_start_read_ahead(simulator, backfill):
    """The target reads a page in about a second, pages come in 0.3 s: the tap reads one page ahead but
    never splits (the time a page waits to be written is not latency: more requests at once would only
    cost requests), makes the requests of a sequential walk, and its summary says the target set the pace."""
    sim = simulator(backfill, latency=LATENCY)
    proc = start_tap(make_config(sim, max_parallel_requests=6), catalog=CHATS)
    lines = []
    while line := proc.stdout.readline():
        lines.append(line)
        time.sleep(0.001)  # a target writing each record somewhere slow
    result = finish_tap(proc, lines)
    assert result.returncode == 0, result.stderr[-3000:]
    assert chat_ids(result.records("chats")) == sorted(backfill.chat_ids())
    assert not sliced_states(result), "read in time slices while the target was the bottleneck"
    assert len(chats_requests(sim)) == len(backfill.chat_ids()) // PAGE + 1
    assert "reading ahead, up to 6 requests at once" in result.stderr
    assert "the target, not the API, set the pace" in result.stderr


def test_an_api_that_refuses_concurrent_requests_is_read_one_request_at_a_time(simulator, backfill):
    """A 429 to any second request in flight: a few, then one at a time, and the data is complete."""
    sequential = simulator(backfill, latency=LATENCY, refuse_concurrency=True)
    run_tap(make_config(sequential, max_parallel_requests=1), catalog=CHATS, timeout=120).assert_ok()
    baseline = len(chats_requests(sequential))
    assert all(r["status"] == 200 for r in chats_requests(sequential))

    sim = simulator(backfill, latency=LATENCY, refuse_concurrency=True)
    result = run_tap(make_config(sim, max_parallel_requests=6), catalog=CHATS, timeout=120).assert_ok()
    assert chat_ids(result.records("chats")) == sorted(backfill.chat_ids())
    statuses = [r["status"] for r in chats_requests(sim)]
    refused = statuses.count(429)
    assert 1 <= refused <= 6, f"{refused} 429s: the tap did not settle on one request at a time"
    assert "at once from now" in result.stderr
    # Sequential speed: the requests of a sequential run, the refused ones, and about one per slice.
    assert statuses.count(200) <= baseline + 6


@pytest.mark.parametrize("fault", ["504", "timeout"])
def test_pages_too_big_to_serve_are_asked_for_smaller(simulator, fault):
    """Pages above a size answer 504 (or time out): the tap halves its page size until they are served,
    carries on with the cursor as usual, and every chat arrives."""
    dataset = Dataset.generate(seed=83, chats=1100, offline_msgs=100, agents=5, timeline_entries=10,
                               conversions=10, department_events=10, agent_events=10, history_events=2)
    sizes = sorted(len(dataset.blob(cid)) for cid in dataset.chat_ids())
    most = sum(sizes[-300:])  # any 300 chats fit, no 600 do
    sim = simulator(dataset, max_page_bytes=most, oversize_fault=fault, stall_seconds=1.5)
    config = make_config(sim, request_timeout=1, max_retry_wait=0.2, max_parallel_requests=1)
    result = run_tap(config, catalog=CHATS, timeout=120).assert_ok()
    validate_records(result)
    assert chat_ids(result.records("chats")) == sorted(dataset.chat_ids())
    assert "asking for 500 records a page instead of 1000" in result.stderr
    assert "asking for 250 records a page instead of 500" in result.stderr
    served = [int(r["query"]["limit"]) for r in chats_requests(sim) if r["status"] == 200]
    assert served and 1000 not in served


def test_a_retry_after_holds_every_thread_of_the_run(simulator):
    """A 429 with Retry-After to one request: no thread sends again before it has passed."""
    import threading
    from tap_zendesk_chat.client import Client
    from tap_zendesk_chat.config import parse_config
    sim = simulator(Dataset.generate(seed=84, chats=20, offline_msgs=2, agents=5), latency=0.05)
    client = Client(parse_config(make_config(sim, max_parallel_requests=4)))
    sim.inject("429", times=1, path="departments", retry_after=2)
    errors, until = [], time.monotonic() + 3

    def read():
        try:
            while time.monotonic() < until:
                client.get("departments")
        except Exception as exc:  # reported below
            errors.append(exc)
    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    client.close()
    assert not errors
    requests = [r for r in sim.requests if r["path"] == "departments"]
    assert [r["status"] for r in requests].count(429) == 1
    refused = next(r["time"] for r in requests if r["status"] == 429)
    # Requests sent before the 429 came back may still arrive just after it; then none for 2 s.
    assert not [r for r in requests if refused + 0.3 < r["time"] < refused + 1.9]
    assert max(r["time"] for r in requests) >= refused + 2


def test_a_retry_after_that_catches_every_thread_in_flight_is_said_once(simulator, monkeypatch):
    """Four requests in flight all answered 429 + Retry-After: one hold for every thread, one WARNING line
    for it (one per thread it caught said the same thing four times), and every request then succeeds."""
    import threading
    from tap_zendesk_chat import client as client_module
    from tap_zendesk_chat.config import parse_config

    class Recorder:
        def __init__(self):
            self.warnings = []

        def warning(self, text, *args):
            self.warnings.append(text % args)

        def info(self, *args):
            pass

    recorder = Recorder()
    monkeypatch.setattr(client_module, "LOGGER", recorder)
    sim = simulator(Dataset.generate(seed=85, chats=20, offline_msgs=2, agents=5), latency=0.3)
    client = client_module.Client(parse_config(make_config(sim, max_parallel_requests=4)))
    sim.inject("429", times=4, path="departments", retry_after=2)
    errors = []

    def read():
        try:
            client.get("departments")
        except Exception as exc:  # reported below
            errors.append(exc)
    try:
        threads = [threading.Thread(target=read) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        client.close()
    assert not errors
    statuses = [r["status"] for r in sim.requests if r["path"] == "departments"]
    assert statuses.count(429) == 4 and statuses.count(200) == 4
    said = [line for line in recorder.warnings if "rate limited (429)" in line]
    assert len(said) == 1, said


def test_a_wait_before_a_request_is_not_taken_for_a_slow_network(simulator):
    """A Retry-After on the first page of a fast API: the page took a second to come, but its answer did not.
    Read-ahead follows the answers' own time (it took the wait for latency and read ahead, in time slices)."""
    dataset = Dataset.generate(seed=86, chats=4200, offline_msgs=0, agents=5, history_events=1)
    sim = simulator(dataset)
    sim.inject("429", times=1, path="incremental/chats", retry_after=1)
    result = run_tap(make_config(sim), catalog=CHATS, timeout=120).assert_ok()
    assert chat_ids(result.records("chats")) == sorted(dataset.chat_ids())
    assert "reading ahead" not in result.stderr
    assert len(chats_requests(sim)) == len(dataset.chat_ids()) // PAGE + 2  # the sequential walk and the 429
