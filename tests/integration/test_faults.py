"""Transient faults never surface; a fault that persists fails fast, clearly, with a resumable STATE.

Every fault the simulator knows is injected alone on several endpoints, then all of them mixed at a
20% rate. A run must end 0 with exactly the simulator's records (nothing lost, nothing twice), and
make exactly one retry per faulted request. The helpers `expected_keys` / `delivered_keys` are shared
with the other robustness tests and the soak."""
import collections
import re
import signal
import time

import pytest

from tap_zendesk_chat.discover import build_catalog
from tap_zendesk_chat.streams import STREAMS
from tests.harness import RETRY_LINE, catalog_selecting, finish_tap, kill, make_config, run_tap, start_tap
from tests.integration.expected import EXPORTS, FULL_TABLE, delivered_keys, expected_keys
from tests.simulator import Dataset, Fault

CRITICAL_LINE = re.compile(r"^CRITICAL .*$", re.MULTILINE)
# Endpoints each fault is injected on; agents gets two in a row (one request retried twice).
MATRIX_TARGETS = {"account": 1, "agents": 2, "incremental/chats": 1, "departments": 1}


# -- shared helpers -----------------------------------------------------------------------------------------
def assert_delivered_exactly(ds, *results, streams=None):
    expected, delivered = expected_keys(ds), delivered_keys(*results)
    for name in streams or STREAMS:
        missing = expected[name] - delivered[name]
        extra = delivered[name] - expected[name]
        assert not missing and not extra, (f"{name}: {sum(missing.values())} missing, {sum(extra.values())} extra "
                                           f"(e.g. {list(missing)[:2]} / {list(extra)[:2]})")


def assert_nothing_after_last_state(result):
    """A target commits only what a STATE covers: a run that fails or stops ends on a STATE."""
    types = [m["type"] for m in result.messages]
    last_state = max((i for i, t in enumerate(types) if t == "STATE"), default=-1)
    assert "RECORD" not in types[last_state + 1:], "RECORD messages after the last STATE"
    assert not types or types[-1] == "STATE", f"the output ends on {types[-1]}, not a STATE"


def retry_lines(stderr):
    return RETRY_LINE.findall(stderr)


def faulted(sim, path=None):
    return [r for r in sim.requests if r["fault"] and (path is None or r["path"] == path)]


def full_catalog(streams):
    return catalog_selecting(build_catalog(), streams)


# -- fixtures -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dataset():
    # Every paged stream needs several pages: chats 2, timeline 2, agents 3 (limit 50), bans 3 (limit 100).
    return Dataset.generate(seed=11, chats=1000, offline_msgs=100, agents=120, ip_bans=120, visitor_bans=80,
                            timeline_entries=1100, history_events=4)


def fault_config(sim, **overrides):
    options = dict(agents_page_limit=50, bans_page_limit=100, request_timeout=1, max_retry_wait=0.1)
    options.update(overrides)
    return make_config(sim, **options)


def matrix_row(label, sim, result, ds):
    expected = sum(sum(c.values()) for c in expected_keys(ds).values())
    delivered = len(result.record_messages())
    row = (f"FAULT-MATRIX | {label:<22} | faults {len(faulted(sim)):>3} | retries {len(retry_lines(result.stderr)):>3} "
           f"| records expected {expected} delivered {delivered} | exit {result.returncode}")
    print(row)
    return row


# -- each fault alone ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", Fault.ALL)
def test_each_fault_alone_is_retried_and_every_record_arrives(simulator, dataset, kind):
    sim = simulator(dataset, stall_seconds=3)
    for path, times in MATRIX_TARGETS.items():
        sim.inject(kind, times=times, path=path, retry_after=1 if kind == "429" else None)
    # A 429 asks for 1 s; max_retry_wait must not cut it (that is tested on its own below).
    config = fault_config(sim, max_retry_wait=2 if kind == "429" else 0.1)

    result = run_tap(config, timeout=120)
    matrix_row(kind, sim, result, dataset)

    result.assert_ok()
    assert "Traceback" not in result.stderr
    assert_delivered_exactly(dataset, result)
    hits = faulted(sim)
    assert collections.Counter(r["path"] for r in hits) == collections.Counter(MATRIX_TARGETS)
    assert all(r["fault"] == kind for r in hits)
    # One retry per faulted request, logged with the endpoint; none beyond that.
    retries = retry_lines(result.stderr)
    assert collections.Counter(endpoint for endpoint, _n, _max in retries) == collections.Counter(MATRIX_TARGETS)
    assert ("agents", "2", "8") in retries
    # Requests per endpoint: the fault-free ones plus one per fault, nothing more.
    clean = collections.Counter(r["path"] for r in sim.requests if not r["fault"])
    assert all(r["status"] == 200 for r in sim.requests if not r["fault"]), \
        "a fault-free request failed"
    assert clean["agents"] == 3 and clean["incremental/chats"] == 2 and clean["bans"] == 3


@pytest.mark.parametrize("seed", [1, 2])
def test_all_faults_mixed_at_20_percent(simulator, dataset, seed):
    sim = simulator(dataset, fault_rate=0.2, fault_kinds=Fault.ALL, fault_seed=seed, stall_seconds=2)
    result = run_tap(fault_config(sim), timeout=180)
    matrix_row(f"mixed 20% seed {seed}", sim, result, dataset)

    result.assert_ok()
    assert "Traceback" not in result.stderr
    assert_delivered_exactly(dataset, result)
    hits = faulted(sim)
    assert hits, "the seed injected no fault"
    # One retry line per fault, but for a 429 whose Retry-After came while the hold of an earlier one held every
    # thread (requests read ahead in parallel): that hold's line said it.
    lines = [line for line in result.stderr.splitlines() if RETRY_LINE.match(line)]
    said_429 = sum("rate limited (429)" in line for line in lines)
    hits_429 = sum(1 for r in hits if r["fault"] == "429")
    assert len(lines) - said_429 == len(hits) - hits_429
    assert (hits_429 == 0) == (said_429 == 0) and said_429 <= hits_429
    for endpoint, count in collections.Counter(r["path"] for r in hits if r["fault"] != "429").items():
        assert sum(1 for line in lines if line.startswith(f"WARNING {endpoint}: ")
                   and "rate limited (429)" not in line) == count


@pytest.mark.parametrize("kind", ["truncate", "invalid_json", "reset"])
def test_gzip_bodies_and_cut_off_gzip(simulator, dataset, kind):
    """An API may compress for clients that accept it (Zendesk Chat's docs do not say): the tap asks,
    decompresses, and a body cut off in the middle of its gzip stream is retried like any other."""
    sim = simulator(dataset, gzip_bodies=True)
    for path, times in MATRIX_TARGETS.items():
        sim.inject(kind, times=times, path=path)
    result = run_tap(fault_config(sim, max_retry_wait=0.1), timeout=120)
    result.assert_ok()
    assert "Traceback" not in result.stderr
    assert_delivered_exactly(dataset, result)
    assert all("gzip" in r["headers"].get("Accept-Encoding", "") for r in sim.requests)
    assert len(retry_lines(result.stderr)) == sum(MATRIX_TARGETS.values())


# -- a fault that persists ----------------------------------------------------------------------------------
PERSISTENT = {  # network failures; unusable 200s fail their endpoint only (test_hostile_network)
    "503": "HTTP 503",
    "reset": "connection failed",
}


@pytest.mark.parametrize("kind", sorted(PERSISTENT))
def test_persistent_fault_fails_fast_with_one_clear_line_and_a_resumable_state(simulator, dataset, kind):
    sim = simulator(dataset)
    sim.inject(kind, times=3, path="departments")
    config = fault_config(sim, max_retries=2)

    failed = run_tap(config, timeout=60)

    assert failed.returncode == 1, failed.stderr[-3000:]
    assert "Traceback" not in failed.stderr
    critical = CRITICAL_LINE.findall(failed.stderr)
    assert len(critical) == 1, critical
    assert "departments" in critical[0] and PERSISTENT[kind] in critical[0] and "gave up after 3 attempts" \
        in critical[0]
    assert len(faulted(sim, "departments")) == 3 and len(retry_lines(failed.stderr)) == 2
    assert sim.count("goals") == 0, "the tap went on after giving up"
    assert failed.messages[-1]["type"] == "STATE"
    assert_nothing_after_last_state(failed)
    assert failed.last_state["currently_syncing"] == "departments"

    resumed = run_tap(config, state=failed.last_state, timeout=60).assert_ok()
    # Full-table streams are read whole again; the exports that finished before the failure are not read
    # again, the others are read whole.
    assert_delivered_exactly(dataset, resumed, streams=FULL_TABLE)
    done = [name for name in EXPORTS if failed.records(name)]
    assert "chats" in done and not any(resumed.records(name) for name in done)
    assert_delivered_exactly(dataset, failed, streams=done)
    assert_delivered_exactly(dataset, resumed, streams=[name for name in EXPORTS if name not in done])


def test_persistent_fault_mid_export_leaves_a_state_covering_exactly_what_was_emitted(simulator, dataset):
    sim = simulator(dataset)
    config = fault_config(sim, max_retries=2)
    catalog = full_catalog(["chats"])
    proc = start_tap(config, catalog=catalog)
    try:
        # Page 1 (1,000 chats, megabytes) fills the stdout pipe, so the tap waits there until read:
        # the fault is queued after page 1 was answered and before page 2 is asked for.
        deadline = time.monotonic() + 30
        while not [r for r in sim.requests if r["path"] == "incremental/chats" and r["status"] is not None]:
            assert time.monotonic() < deadline and proc.poll() is None, "the tap never asked for chats"
            time.sleep(0.02)
        sim.inject("500", times=3, path="incremental/chats")
        failed = finish_tap(proc, timeout=60)
    finally:
        kill(proc)

    assert failed.returncode == 1, failed.stderr[-3000:]
    assert "Traceback" not in failed.stderr
    critical = CRITICAL_LINE.findall(failed.stderr)
    assert len(critical) == 1 and "incremental/chats" in critical[0] and "HTTP 500" in critical[0], critical
    assert len(failed.records("chats")) == 1000
    assert failed.messages[-1]["type"] == "STATE"
    assert_nothing_after_last_state(failed)

    resumed = run_tap(config, catalog=catalog, state=failed.last_state, timeout=60).assert_ok()
    assert len(resumed.records("chats")) == dataset.chat_count() - 1000
    assert_delivered_exactly(dataset, failed, resumed, streams=["chats"])


# -- Retry-After and the request budget ---------------------------------------------------------------------
def _gap_after_fault(sim, path):
    times = [(r["time"], r["fault"]) for r in sim.requests if r["path"] == path]
    index = next(i for i, (_t, fault) in enumerate(times) if fault)
    return times[index + 1][0] - times[index][0]


def test_retry_after_is_honoured(simulator, dataset):
    sim = simulator(dataset)
    sim.inject("429", times=1, path="departments", retry_after=2)
    result = run_tap(fault_config(sim, max_retry_wait=5), timeout=60).assert_ok()
    assert _gap_after_fault(sim, "departments") >= 2.0
    assert "departments: rate limited (429), Retry-After 2 s; retry 1 of 8 in 2.0 s" in result.stderr
    assert_delivered_exactly(dataset, result)


def test_absurd_retry_after_is_capped_and_logged(simulator, dataset):
    sim = simulator(dataset)
    sim.inject("429", times=1, path="departments", retry_after=100000)
    started = time.monotonic()
    result = run_tap(fault_config(sim, max_retry_wait=1), timeout=60).assert_ok()
    assert time.monotonic() - started < 30
    assert "departments: the API asked to wait 100000 s; capped to max_retry_wait=1 s" in result.stderr
    assert 1.0 <= _gap_after_fault(sim, "departments") < 10
    assert_delivered_exactly(dataset, result)


def test_server_rate_limit_answers_429_and_the_tap_recovers(simulator, dataset):
    # The account's limit in a short window (the API's is 200 a minute); the tap's budget is left at 200.
    sim = simulator(dataset, rate_limit_per_minute=5, rate_limit_window=1)
    result = run_tap(fault_config(sim, max_retry_wait=3), timeout=120).assert_ok()
    limited = [r for r in sim.requests if r["status"] == 429]
    assert limited, "the simulator's limit was never reached"
    assert len(retry_lines(result.stderr)) == len(limited)
    assert_delivered_exactly(dataset, result)


def test_client_budget_keeps_the_run_under_the_limit(simulator, dataset):
    # Budget and limit both 5 a minute; the run needs 8 requests. The tap must stop at 5 and wait
    # (the budget window is 60 s, so the test stops it there with SIGTERM rather than wait a minute).
    sim = simulator(dataset, rate_limit_per_minute=5)
    config = fault_config(sim, max_requests_per_minute=5)
    catalog = full_catalog(["account", "departments", "goals", "roles", "skills", "shortcuts", "triggers",
                            "routing_settings"])
    proc = start_tap(config, catalog=catalog)
    try:
        deadline = time.monotonic() + 30
        while len(sim.requests) < 5:
            assert time.monotonic() < deadline and proc.poll() is None, "the tap did not make 5 requests"
            time.sleep(0.05)
        time.sleep(1.5)
        assert len(sim.requests) == 5 and proc.poll() is None
        stopped = time.monotonic()
        kill(proc, signal.SIGTERM)
        result = finish_tap(proc, timeout=30)
    finally:
        kill(proc)
    assert time.monotonic() - stopped < 5, "the budget wait did not wake on SIGTERM"
    assert result.returncode == 143
    assert not [r for r in sim.requests if r["status"] == 429]
    assert result.stderr.count("Request budget of 5 a minute reached: the next request waits") == 1
    assert result.messages[-1]["type"] == "STATE"
