"""Chats and agent_timeline: exact incremental sync that never loses a change (issue 3)."""
import json
import math
import random
import threading
import time

import pytest

from tap_zendesk_chat.dates import format_datetime, parse_datetime, to_epoch_seconds
from tap_zendesk_chat.discover import build_catalog
from tests.harness import (TOKEN, catalog_selecting, finish_tap, kill, make_config, read_then_kill, run_tap,
                           start_tap, validate_records)
from tap_zendesk_chat.streams import STREAMS
from tests.integration.expected import export_changes, export_snapshot
from tests.reference_transform import reference_transform
from tap_zendesk_chat.schemas import load_schema
from tests.simulator import Dataset, Simulator

CHATS_ONLY = catalog_selecting(build_catalog(), {"chats"})
CHATS_SCHEMA = load_schema("chats")


def chat_key(chat):
    return (to_epoch_seconds(parse_datetime(chat["update_timestamp"])), chat["id"])


def chat_ids(result):
    return [c["id"] for c in result.records("chats")]


def test_second_sync_emits_exactly_the_changes(simulator):
    sim = simulator(Dataset.generate(seed=21, chats=1500, offline_msgs=300, timeline_entries=300))
    config = make_config(sim)
    first = run_tap(config).assert_ok()
    validate_records(first)
    assert sorted(chat_ids(first)) == sorted(sim.dataset.chat_ids())
    assert {c["type"] for c in first.records("chats")} == {"chat", "offline_msg"}
    assert len(first.records("agent_timeline")) == len(sim.dataset.agent_timeline)
    before = export_snapshot(sim.dataset)

    changes = sim.dataset.mutate(seed=4)
    changed = set(changes["updated_chats"]) | set(changes["new_chats"]) | set(changes["deleted_chats"])
    assert changed
    second = run_tap(config, state=first.last_state).assert_ok()
    got = chat_ids(second)
    assert set(got) == changed and len(got) == len(changed)
    by_id = {c["id"]: c for c in second.records("chats")}
    for cid in changes["deleted_chats"]:
        assert by_id[cid]["deleted"] is True
    for cid in changes["updated_chats"]:
        assert by_id[cid] == reference_transform(sim.dataset.chat(cid), CHATS_SCHEMA, (), "chats")
    assert len(second.records("agent_timeline")) == changes["new_timeline_entries"] > 0
    # Every export stream delivers exactly what is new or changed, once, and validates.
    validate_records(second)
    for stream, want in export_changes(before, sim.dataset).items():
        assert want, f"{stream}: the mutation should change it"
        keys = STREAMS[stream].key_properties
        got = [tuple(json.dumps(r[k]) for k in keys) for r in second.records(stream)]
        assert sorted(got) == sorted(tuple(json.dumps(r[k]) for k in keys) for r in want), stream

    third = run_tap(config, state=second.last_state).assert_ok()
    assert not any(third.records(stream) for stream in STREAMS if STREAMS[stream].replication_method == "INCREMENTAL")


@pytest.mark.parametrize("inclusive", [False, True])
def test_2500_chats_sharing_one_second_sync_completely(simulator, inclusive):
    dataset = Dataset.generate(seed=2, chats=200, offline_msgs=0, same_second_chats=2500, timeline_entries=0)
    sim = simulator(dataset, start_id_inclusive=inclusive)
    result = run_tap(make_config(sim), catalog=CHATS_ONLY, timeout=120).assert_ok()
    ids = chat_ids(result)
    assert len(ids) == len(set(ids)) == 2700
    assert set(ids) == set(dataset.chat_ids())
    # each page moved the cursor; the request count is the minimum
    assert sim.count("incremental/chats") == math.ceil((2700 + 1) / 1000)
    cursors = [s["bookmarks"]["chats"]["cursor"] for s in result.states if "chats" in s["bookmarks"]]
    assert cursors == sorted(cursors, key=lambda c: (c[0], c[1] or ""))


@pytest.mark.parametrize("n", [0, 999, 1000, 1001, 2000])
def test_request_count_for_n_chats(simulator, n):
    sim = simulator(Dataset.generate(seed=8, chats=n, offline_msgs=0, timeline_entries=0))
    result = run_tap(make_config(sim), catalog=CHATS_ONLY).assert_ok()
    assert len(chat_ids(result)) == n
    assert sim.count("incremental/chats") == math.ceil((n + 1) / 1000)
    assert all(r["query"]["limit"] == "1000" and r["query"]["fields"] == "chats(*)"
               for r in sim.requests if r["path"] == "incremental/chats")


def test_bookmark_within_five_minutes_of_now_asks_nothing(sim, config):
    recent = int(time.time()) - 60
    state = {"state_version": 2, "bookmarks": {"chats": {"update_timestamp": "x", "cursor": [recent, None]}}}
    result = run_tap(config, catalog=CHATS_ONLY, state=state).assert_ok()
    assert sim.count("incremental/chats") == 0
    assert "within 5 minutes of now" in result.stderr
    assert result.last_state["bookmarks"]["chats"]["cursor"] == [recent, None]


def test_forced_full_table_rereads_from_start_date(sim, config):
    catalog = catalog_selecting(build_catalog(), {"chats"}, replication_method={"chats": "FULL_TABLE"})
    first = run_tap(config, catalog=catalog).assert_ok()
    second = run_tap(config, catalog=catalog, state=first.last_state).assert_ok()
    assert sorted(chat_ids(first)) == sorted(chat_ids(second)) == sorted(sim.dataset.chat_ids())
    for result in (first, second):
        versions = {m["version"] for m in result.record_messages("chats")}
        assert len(versions) == 1
        assert [m["version"] for m in result.activate_versions("chats")] == list(versions)
    assert "chats" not in second.last_state["bookmarks"]


def test_classic_tap_state_resumes_without_loss(simulator):
    dataset = Dataset.generate(seed=13, chats=1200, offline_msgs=200, timeline_entries=0)
    sim = simulator(dataset)
    chats = dataset.chats
    ended = sorted(parse_datetime(c["end_timestamp"]) for c in chats if c["type"] == "chat")
    offline = sorted(parse_datetime(c["timestamp"]) for c in chats if c["type"] == "offline_msg")
    chat_mark, offline_mark = ended[len(ended) // 2], offline[len(offline) // 3]
    classic = {
        "currently_syncing": None,
        "bookmarks": {"chats": {"chat.end_timestamp": format_datetime(chat_mark),
                                "offline_msg.timestamp": format_datetime(offline_mark),
                                "offset": {"chat.next_url": None}},
                      "agents": {"offset": {"id": 360000000123}}},
        "chats_last_full_sync": "2024-01-01T00:00:00+00:00",
    }
    result = run_tap(make_config(sim), state=classic).assert_ok()
    delivered = set(chat_ids(result))
    # every chat the classic tap had not delivered yet comes now
    missing = {c["id"] for c in chats
               if (c["type"] == "chat" and parse_datetime(c["end_timestamp"]) >= chat_mark)
               or (c["type"] == "offline_msg" and parse_datetime(c["timestamp"]) >= offline_mark)}
    assert missing <= delivered
    # and nothing updated before the earlier of the two bookmarks is read again
    start = min(chat_mark, offline_mark)
    assert all(parse_datetime(c["update_timestamp"]) >= start for c in result.records("chats"))
    assert len(result.records("agents")) == len(dataset.agents)  # the classic offset restarts agents
    assert "older tap" in result.stderr


def _apply_to_table(table, messages, stream, key="id"):
    """A target that honours ACTIVATE_VERSION: rows of older versions vanish when a version activates."""
    for m in messages:
        if m.get("stream") != stream:
            continue
        if m["type"] == "RECORD":
            table[m["record"][key]] = (m.get("version"), m["record"])
        elif m["type"] == "ACTIVATE_VERSION":
            for k in [k for k, (v, _) in table.items() if v != m["version"]]:
                del table[k]
    return table


def test_removed_agents_vanish_through_activate_version(simulator):
    sim = simulator(Dataset.generate(seed=4, chats=10, offline_msgs=0, agents=120, timeline_entries=0))
    catalog = catalog_selecting(build_catalog(), {"agents", "triggers"})
    config = make_config(sim)
    first = run_tap(config, catalog=catalog).assert_ok()
    agents = _apply_to_table({}, first.messages, "agents")
    triggers = _apply_to_table({}, first.messages, "triggers")
    gone_agent, gone_trigger = sim.dataset.agents[5]["id"], sim.dataset.triggers[0]["id"]
    sim.dataset.remove_agent(gone_agent)
    sim.dataset.remove_trigger(gone_trigger)
    second = run_tap(config, catalog=catalog, state=first.last_state).assert_ok()
    _apply_to_table(agents, second.messages, "agents")
    _apply_to_table(triggers, second.messages, "triggers")
    assert gone_agent not in agents and len(agents) == 119
    assert gone_trigger not in triggers and set(triggers) == {t["id"] for t in sim.dataset.triggers}


def test_activate_version_can_be_turned_off(sim):
    catalog = catalog_selecting(build_catalog(), {"agents"})
    result = run_tap(make_config(sim, activate_version=False), catalog=catalog).assert_ok()
    assert result.activate_versions() == []
    assert all("version" not in m for m in result.record_messages())


def test_interrupted_full_table_sync_resumes_with_one_version(simulator):
    dataset = Dataset.generate(seed=6, chats=10, offline_msgs=0, agents=900, timeline_entries=0)
    sim = simulator(dataset)
    catalog = catalog_selecting(build_catalog(), {"agents"})
    config = make_config(sim, agents_page_limit=10)
    proc = start_tap(config, catalog=catalog)
    lines = []
    while len(lines) < 300:
        lines.append(proc.stdout.readline())
    kill(proc)
    first = finish_tap(proc, lines)
    state = first.last_state
    assert "since_id" in state["bookmarks"]["agents"], "killed after some pages: progress must be in STATE"
    second = run_tap(config, catalog=catalog, state=state).assert_ok()
    versions = {m["version"] for m in first.record_messages("agents") + second.record_messages("agents")}
    assert len(versions) == 1
    assert [m["version"] for m in second.activate_versions("agents")] == list(versions)
    table = _apply_to_table(_apply_to_table({}, first.messages, "agents"), second.messages, "agents")
    assert set(table) == {a["id"] for a in dataset.agents}
    assert state["currently_syncing"] == "agents"


def test_interrupted_forced_full_table_export_resumes_with_one_version(simulator):
    """Chats forced to FULL_TABLE, killed after its first page, resumed from the last STATE: the resumed run
    keeps the version of the sync under way. A new version there would make a target that honours versions
    delete the rows of the first run when it activates."""
    dataset = Dataset.generate(seed=8, chats=2600, offline_msgs=100, timeline_entries=0, history_events=2)
    sim = simulator(dataset)
    catalog = catalog_selecting(build_catalog(), {"chats"}, replication_method={"chats": "FULL_TABLE"})
    config = make_config(sim)
    proc = start_tap(config, catalog=catalog)
    timer = threading.Timer(60, kill, [proc])  # a hung tap fails the test instead of stalling the suite
    timer.daemon = True
    timer.start()
    lines = []
    try:
        # The tap writes only at a STATE and blocks on the pipe while this test does not read: killed right
        # after the first page's STATE, it cannot have finished the export.
        while True:
            line = proc.stdout.readline()
            assert line, "the tap ended before the first page of chats was covered by a STATE"
            lines.append(line)
            message = json.loads(line)
            if message["type"] == "STATE" and "chats" in message["value"]["bookmarks"]:
                break
        kill(proc)
        first = finish_tap(proc, lines, timeout=30)
    finally:
        timer.cancel()
        kill(proc)
    state = first.last_state
    bookmark = state["bookmarks"]["chats"]
    assert bookmark["full_table"] is True and isinstance(bookmark["version"], int), bookmark
    assert first.activate_versions("chats") == [] and 0 < len(chat_ids(first)) < dataset.chat_count()
    time.sleep(0.01)  # a version minted now is another millisecond

    second = run_tap(config, catalog=catalog, state=state, timeout=120).assert_ok()
    versions = {m["version"] for m in first.record_messages("chats") + second.record_messages("chats")}
    assert versions == {bookmark["version"]}, "the resumed run wrote its records under another version"
    assert [m["version"] for m in second.activate_versions("chats")] == [bookmark["version"]]
    table = _apply_to_table(_apply_to_table({}, first.messages, "chats"), second.messages, "chats")
    assert set(table) == set(dataset.chat_ids()), "rows of the interrupted run vanished at ACTIVATE_VERSION"
    # The resumed run read from the bookmark, not from start_date again.
    assert len(chat_ids(second)) < dataset.chat_count()
    assert "chats" not in second.last_state["bookmarks"]


# -- killed at many points, resumed from the last STATE each time --------------------------------------------

@pytest.fixture(scope="module")
def big_sim():
    dataset = Dataset.generate(seed=99, chats=18000, offline_msgs=2000, timeline_entries=0)
    with Simulator(dataset, token=TOKEN) as sim:
        yield sim


def _check_state_covers_only_emitted(result, delivered, keys):
    """Walk the run's messages: at each STATE, every chat at or before its cursor was emitted already."""
    ordered = sorted(keys.items(), key=lambda item: (item[1][0], item[1][1]))
    position = 0
    for message in result.messages:
        if message["type"] == "RECORD":
            delivered.add(message["record"]["id"])
        elif message["type"] == "STATE" and "chats" in message["value"]["bookmarks"]:
            cursor = tuple(message["value"]["bookmarks"]["chats"]["cursor"])
            while position < len(ordered) and (ordered[position][1][0], ordered[position][1][1]) <= \
                    (cursor[0], cursor[1] or ""):
                assert ordered[position][0] in delivered, f"STATE {cursor} written before chat {ordered[position][0]}"
                position += 1


@pytest.mark.parametrize("how", ["lines", "time"])
def test_sigkill_at_many_points_loses_nothing(big_sim, how):
    sim, dataset = big_sim, big_sim.dataset
    keys = {cid: (dataset.update_epoch(cid), cid) for cid in dataset.chat_ids()}
    config = make_config(sim)
    rng = random.Random(7 if how == "lines" else 8)
    delivered, emitted_total, state, runs = set(), 0, None, 0
    while True:
        runs += 1
        assert runs < 40, "the sync never finished"
        proc = start_tap(config, catalog=CHATS_ONLY, state=state)
        lines = []
        if runs <= 12 and how == "lines":
            lines = read_then_kill(proc, rng.randint(1, 2600))
        elif runs <= 12:
            time.sleep(rng.uniform(0.05, 0.8))
            kill(proc)
        result = finish_tap(proc, lines)
        emitted_total += len(result.records("chats"))
        _check_state_covers_only_emitted(result, delivered, keys)
        state = result.last_state or state
        if result.returncode == 0:
            break
    assert delivered == set(keys)
    # duplicates are bounded: at most one page (1000) per resume
    assert emitted_total - len(keys) <= 1000 * (runs - 1)


def test_outage_makes_the_tap_exit_and_resume_finishes(big_sim):
    sim, dataset = big_sim, big_sim.dataset
    config = make_config(sim, max_retries=1, max_retry_wait=0.2)
    proc = start_tap(config, catalog=CHATS_ONLY)
    lines = []
    while len(lines) < 3500:
        lines.append(proc.stdout.readline())
    sim.outage(True)
    try:
        first = finish_tap(proc, lines)
    finally:
        sim.outage(False)
    assert first.returncode != 0
    assert "Traceback" not in first.stderr and "incremental/chats" in first.stderr
    assert first.messages[-1]["type"] == "STATE"
    second = run_tap(config, catalog=CHATS_ONLY, state=first.last_state).assert_ok()
    delivered = set(chat_ids(first)) | set(chat_ids(second))
    assert delivered == set(dataset.chat_ids())
    assert len(chat_ids(first)) + len(chat_ids(second)) - len(delivered) <= 1000


def test_resume_starts_with_the_interrupted_stream(sim, config):
    state = {"state_version": 2, "currently_syncing": "triggers", "bookmarks": {}}
    result = run_tap(config, state=state).assert_ok()
    first_stream = next(m["stream"] for m in result.messages if m["type"] == "SCHEMA")
    assert first_stream == "triggers"
    assert "Resuming with 'triggers'" in result.stderr
