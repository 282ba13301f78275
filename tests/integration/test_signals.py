"""SIGTERM / SIGINT: the tap stops at the next safe point, writes a final STATE matching what it
emitted, and exits non-zero (143 / 130). A resume from that STATE completes the data."""
import collections
import signal
import threading
import time

import pytest

from tap_zendesk_chat.discover import build_catalog
from tests.harness import catalog_selecting, finish_tap, kill, make_config, run_tap, start_tap
from tests.integration.expected import EXPORTS, FULL_TABLE, delivered_keys, expected_keys
from tests.integration.test_faults import assert_nothing_after_last_state
from tests.simulator import Dataset, Fault

CHAT_RECORD = b'{"type":"RECORD","stream":"chats"'
PAGE = 1000


@pytest.fixture(scope="module")
def big():
    return Dataset.generate(seed=51, chats=6000, offline_msgs=500, history_events=4)


def _watchdog(proc, seconds=90):
    """Kill a tap that hangs, so a blocked readline fails the test instead of stalling the suite."""
    timer = threading.Timer(seconds, kill, [proc])
    timer.daemon = True
    timer.start()
    return timer


def _interrupt_during_chats(config, sig, after_records=50):
    proc = start_tap(config)
    watchdog = _watchdog(proc)
    lines, seen = [], 0
    try:
        while seen < after_records:
            line = proc.stdout.readline()
            assert line, "the tap ended before any chats were written"
            lines.append(line)
            seen += line.startswith(CHAT_RECORD)
        sent = time.monotonic()
        proc.send_signal(sig)
        result = finish_tap(proc, lines, timeout=60)
        return result, time.monotonic() - sent
    finally:
        watchdog.cancel()
        kill(proc)


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_at_a_safe_point_with_a_state_covering_what_was_emitted(simulator, big, sig, code):
    sim = simulator(big)
    config = make_config(sim)
    stopped, seconds = _interrupt_during_chats(config, sig)

    assert stopped.returncode == code, stopped.stderr[-3000:]
    assert seconds < 10, f"the tap took {seconds:.1f} s to stop"
    assert "Traceback" not in stopped.stderr
    assert f"Received {signal.Signals(sig).name}; stopping at the next safe point" in stopped.stderr
    assert stopped.stdout.endswith("\n") and stopped.messages[-1]["type"] == "STATE"
    emitted = stopped.records("chats")
    assert 0 < len(emitted) < big.chat_count(), "the signal did not land in the middle of the chats"
    # The STATE's cursor is exactly the last chat emitted: nothing unconfirmed, nothing skipped.
    final = stopped.last_state
    assert final["currently_syncing"] == "chats"
    last = emitted[-1]["id"]
    assert final["bookmarks"]["chats"]["cursor"] == [big.update_epoch(last), last]

    resumed = run_tap(config, state=final, timeout=120).assert_ok()
    expected, union = expected_keys(big), delivered_keys(stopped, resumed)
    for name in EXPORTS:
        assert not expected[name] - union[name], f"{name}: records lost across the interruption"
        duplicates = sum((union[name] - expected[name]).values())
        assert duplicates <= PAGE, f"{name}: {duplicates} duplicates"
    assert delivered_keys(stopped)["chats"] + delivered_keys(resumed)["chats"] == expected["chats"]
    # Full-table streams are read whole on every run.
    for name in FULL_TABLE:
        assert delivered_keys(resumed)[name] == expected[name], name


def _sigterm_once_departments_is_asked(sim, proc, settle, watchdog_seconds=90):
    """Start draining the tap's stdout, wait for its departments request, `settle` seconds more, SIGTERM it;
    returns (seconds from the signal to its exit, its TapResult)."""
    watchdog = _watchdog(proc, watchdog_seconds)
    lines = []
    # Drain stdout on the side, so the tap never blocks on a full pipe while the test waits.
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, b"")), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while not [r for r in sim.requests if r["path"] == "departments"]:
            assert time.monotonic() < deadline and proc.poll() is None, "the tap never asked for departments"
            time.sleep(0.02)
        time.sleep(settle)
        assert proc.poll() is None
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        stopped_after = time.monotonic() - sent
        reader.join(10)
        return stopped_after, finish_tap(proc, lines, timeout=30)
    finally:
        watchdog.cancel()
        kill(proc)


def test_signal_during_a_retry_wait_stops_at_once(simulator, big):
    sim = simulator(big)
    sim.inject("429", times=1, path="departments", retry_after=60)
    proc = start_tap(make_config(sim, max_retry_wait=120))
    stopped_after, result = _sigterm_once_departments_is_asked(sim, proc, settle=0.5)
    assert stopped_after < 5, "the retry wait did not wake on SIGTERM"
    assert result.returncode == 143
    assert result.messages[-1]["type"] == "STATE"
    assert result.last_state["currently_syncing"] == "departments"
    assert collections.Counter(r["path"] for r in sim.requests)["departments"] == 1


def test_signal_while_a_response_is_stalled_emits_nothing_no_state_covers(simulator):
    """SIGTERM while the departments response is stalled: the tap does not wait for it (the request is cut),
    and nothing of departments goes out: it has no bookmark and no ACTIVATE_VERSION went out, so no STATE would
    cover its records. The resumed run then delivers departments once, not twice."""
    dataset = Dataset.generate(seed=52, chats=30, offline_msgs=3, agents=40, departments=6, timeline_entries=5,
                               history_events=2)
    sim = simulator(dataset, stall_seconds=2)
    sim.inject(Fault.STALL, path="departments")
    catalog = catalog_selecting(build_catalog(), {"agents", "departments"})
    config = make_config(sim)
    proc = start_tap(config, catalog=catalog)
    seconds, stopped = _sigterm_once_departments_is_asked(sim, proc, settle=0.3, watchdog_seconds=60)  # in the stall

    assert stopped.returncode == 143, stopped.stderr[-3000:]
    assert "Traceback" not in stopped.stderr
    (asked,) = [r for r in sim.requests if r["path"] == "departments"]
    assert asked["fault"] == "stall" and asked["status"] is None, "the signal did not land during the stalled response"
    assert seconds < 1.5, f"the tap waited {seconds:.1f} s for the stalled response"
    assert_nothing_after_last_state(stopped)
    final = stopped.last_state
    assert final["currently_syncing"] == "departments" and "departments" not in final["bookmarks"]
    assert stopped.activate_versions("departments") == []
    assert stopped.records("departments") == [], "records of the page in flight went out: no STATE covers them"
    assert len(stopped.records("agents")) == len(dataset.agents), "agents finished before the signal"

    resumed = run_tap(config, catalog=catalog, state=final, timeout=60).assert_ok()
    expected = expected_keys(dataset)["departments"]
    assert delivered_keys(stopped, resumed)["departments"] == expected, "departments delivered twice or not at all"
