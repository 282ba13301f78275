"""Hostile or broken responses: refused with a clear error, never followed, never a hang.

Every run has a subprocess timeout, so a hang fails the test instead of stalling the suite."""
import re

import pytest

from tests.harness import catalog_selecting, make_config, run_tap
from tests.integration.test_faults import assert_delivered_exactly, assert_nothing_after_last_state
from tests.simulator import Dataset
from tap_zendesk_chat.discover import build_catalog

CRITICAL_LINE = re.compile(r"^CRITICAL (.*)$", re.MULTILINE)
HANG = 30  # seconds; these runs take about one


@pytest.fixture(scope="module")
def dataset():
    # Two export pages, so a next_page is read from a full page; three agents pages.
    return Dataset.generate(seed=31, chats=1000, offline_msgs=100, agents=120, timeline_entries=1100,
                            history_events=3)


def assert_clear_failure(result, phrases):
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    critical = CRITICAL_LINE.findall(result.stderr)
    assert len(critical) == 1, result.stderr[-3000:]
    for phrase in phrases:
        assert phrase in critical[0], f"{phrase!r} not in {critical[0]!r}"
    assert_nothing_after_last_state(result)


def test_next_page_on_another_host_is_never_followed(simulator, dataset):
    sim = simulator(dataset)
    sim.hostile.add("next_page_to_trap")
    result = run_tap(make_config(sim, agents_page_limit=50), timeout=HANG).assert_ok()
    assert sim.trap.requests == [], "a request (with the token) reached the foreign host"
    assert_delivered_exactly(dataset, result)
    # The export was walked past its first page, where next_page pointed at the trap.
    assert sim.count("incremental/chats") == 2 and sim.count("incremental/agent_timeline") == 2


def test_object_where_the_agents_array_is_expected(simulator, dataset):
    sim = simulator(dataset)
    sim.hostile.add("agents_object")
    result = run_tap(make_config(sim), timeout=HANG)
    assert_clear_failure(result, ["agents", "expected a JSON array", "dict"])
    assert not result.records("agents")
    assert sim.count("agents") == 1, "the tap retried or looped on a body it cannot use"


@pytest.mark.parametrize("stream,path,message", [
    ("agents", "agents", "without an integer 'id'"),  # caught by the id-cursor pager
    ("chats", "incremental/chats", "without its key 'id'"),  # caught by the per-record key check
])
def test_record_without_its_key(simulator, dataset, stream, path, message):
    sim = simulator(dataset)
    sim.hostile.add("record_without_key")
    catalog = catalog_selecting(build_catalog(), [stream])
    result = run_tap(make_config(sim), catalog=catalog, timeout=HANG)
    assert_clear_failure(result, [stream, message])
    assert not result.records(stream), "records of the broken page were written"
    assert sim.count(path) == 1
