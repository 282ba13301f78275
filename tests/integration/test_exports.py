"""Every incremental export stream (chats, agent_timeline, conversions, department_events, agent_events, and
any added later: the list comes from STREAMS) is exact whatever the API's start_id semantics and
envelope, resumes from any kill without loss, and agent_events' limited availability is a log line."""
import json
import random

import pytest

from tap_zendesk_chat.discover import build_catalog
from tap_zendesk_chat.schemas import load_schema
from tap_zendesk_chat.streams import STREAMS
from tests.harness import catalog_selecting, finish_tap, make_config, read_then_kill, run_tap, start_tap, validate_records
from tests.integration.expected import EXPORTS, expected_records, json_key
from tests.reference_transform import reference_transform
from tests.simulator import Dataset

NEW_EXPORTS = ("conversions", "department_events", "agent_events")
PAGE = 1000


def keys(stream, records):
    return [json_key(STREAMS[stream].key_properties, r) for r in records]


def expected_keys(dataset, stream):
    return sorted(keys(stream, expected_records(dataset, stream)))


@pytest.fixture(scope="module")
def big():
    """More than two pages of every export, with records sharing seconds."""
    return Dataset.generate(seed=71, chats=2100, offline_msgs=100, agents=20, timeline_entries=2100,
                            conversions=2300, department_events=2100, agent_events=2200, same_second_events=40,
                            history_events=2)


@pytest.mark.parametrize("stream", NEW_EXPORTS)
@pytest.mark.parametrize("inclusive", [False, True], ids=["exclusive start_id", "inclusive start_id"])
@pytest.mark.parametrize("end_id", [True, False], ids=["end_id", "no end_id"])
def test_new_exports_deliver_every_record_once(simulator, big, stream, inclusive, end_id):
    sim = simulator(big, start_id_inclusive=inclusive, events_end_id=end_id)
    result = run_tap(make_config(sim), catalog=catalog_selecting(build_catalog(), {stream}), timeout=120).assert_ok()
    validate_records(result)
    got = result.records(stream)
    assert sorted(keys(stream, got)) == expected_keys(big, stream)
    schema = load_schema(stream)
    want = [reference_transform(r, schema, (), stream, STREAMS[stream].key_properties)
            for r in expected_records(big, stream)]
    assert sorted(json.dumps(r, sort_keys=True) for r in got) == sorted(json.dumps(r, sort_keys=True) for r in want)
    # Each page moved the cursor: the fewest requests that can read them.
    assert sim.count(STREAMS[stream].path) == len(want) // PAGE + 1


@pytest.mark.parametrize("stream", EXPORTS)
def test_every_export_resumes_from_any_kill_without_loss(simulator, big, stream):
    sim = simulator(big)
    config, catalog = make_config(sim), catalog_selecting(build_catalog(), {stream})
    rng = random.Random(stream)
    delivered, emitted, state, runs = set(), 0, None, 0
    while True:
        runs += 1
        assert runs < 20, "the sync never finished"
        proc = start_tap(config, catalog=catalog, state=state)
        lines = read_then_kill(proc, rng.randint(1, 2 * PAGE)) if runs <= 4 else []
        result = finish_tap(proc, lines)
        # Only what a STATE covers counts as delivered: a resume starts from the last STATE.
        covered = []
        for message in result.messages:
            if message["type"] == "RECORD":
                covered.append(message["record"])
            elif message["type"] == "STATE":
                emitted += len(covered)
                delivered.update(keys(stream, covered))
                covered = []
        state = result.last_state or state
        if result.returncode == 0:
            break
    assert sorted(delivered) == expected_keys(big, stream)
    assert emitted - len(delivered) <= PAGE * (runs - 1), "more than one page repeated per resume"


@pytest.mark.parametrize("status", [403, 404])
def test_an_account_without_agent_events_gets_a_log_line_not_a_failure(simulator, status):
    dataset = Dataset.generate(seed=72, chats=40, offline_msgs=5, timeline_entries=20, conversions=30,
                               department_events=20, agent_events=30)
    sim = simulator(dataset, agent_events_available=False, agent_events_unavailable_status=status)
    result = run_tap(make_config(sim)).assert_ok()
    assert result.streams == set(STREAMS) - {"agent_events"}
    assert "agent_events: skipped" in result.stderr and "limited availability" in result.stderr
    assert "agent_events" not in result.last_state["bookmarks"]
    summary = [line for line in result.stderr.splitlines() if line.split()[1:3] == ["agent_events", "skipped"]]
    assert len(summary) == 1

    discovered = run_tap(make_config(sim), args=["--discover"], parse=False)
    assert discovered.returncode == 0
    names = {entry["tap_stream_id"] for entry in json.loads(discovered.stdout)["streams"]}
    assert names == set(STREAMS) - {"agent_events"}
    assert "agent_events: left out of the catalog" in discovered.stderr
