"""The child streams of chats (issue 19): read in the chats walk, no request of their own, one STATE for
all; a kill at any point loses no row; a child stream selected later catches up; a shrunk array's old rows
are told from current ones by chat_update_timestamp."""
import collections
import random

import pytest

from tap_zendesk_chat.discover import build_catalog
from tap_zendesk_chat.streams import STREAMS
from tests.harness import catalog_selecting, finish_tap, make_config, read_then_kill, run_tap, start_tap, validate_records
from tests.integration.expected import CHILD_ARRAYS, expected_records
from tests.simulator import Dataset

CHILDREN = tuple(CHILD_ARRAYS)
DISCOVERED = build_catalog()


def select(*names):
    return catalog_selecting(DISCOVERED, set(names))


def row_keys(result, stream):
    return collections.Counter((r["chat_id"], r["position"]) for r in result.records(stream))


def test_the_child_streams_are_the_chats_walks():
    assert {name for name, s in STREAMS.items() if s.walk == "chats" and name != "chats"} == set(CHILDREN)
    for name in CHILDREN:
        assert STREAMS[name].key_properties == ("chat_id", "position")


def test_rows_per_chat_equal_the_arrays_and_cost_no_request(simulator):
    dataset = Dataset.generate(seed=41, chats=1500, offline_msgs=200)
    sim = simulator(dataset)
    config = make_config(sim)
    alone = run_tap(config, catalog=select("chats")).assert_ok()
    alone_requests = sim.count("incremental/chats")
    sim.clear_requests()
    both = run_tap(config, catalog=select("chats", *CHILDREN)).assert_ok()
    assert sim.count("incremental/chats") == alone_requests, "child streams must not cost a request"
    validate_records(both)
    assert both.records("chats") == alone.records("chats")
    chats = dataset.served("chats")
    for stream, array in CHILD_ARRAYS.items():
        per_chat = collections.Counter(r["chat_id"] for r in both.records(stream))
        if stream == "chat_agents":
            want = {c["id"]: max(len(c.get("agent_ids") or []), len(c.get("agent_names") or [])) for c in chats}
        else:
            want = {c["id"]: len(c[array]) if isinstance(c.get(array), list) else 1 for c in chats
                    if c.get(array) is not None}
        assert per_chat == {cid: n for cid, n in want.items() if n}, stream
        assert sum(per_chat.values()) > 0, f"{stream}: the dataset should have rows"
        # every row carries the version of the chat it was read from
        updated = {c["id"]: c["update_timestamp"] for c in both.records("chats")}
        assert all(r["chat_update_timestamp"] == updated[r["chat_id"]] for r in both.records(stream)), stream
    # one STATE for all: after every page, each stream's bookmark is the chats one
    last = both.last_state["bookmarks"]
    for stream in CHILDREN:
        assert last[stream]["cursor"] == last["chats"]["cursor"]


def test_history_rows_are_typed_per_event_kind(simulator):
    sim = simulator(Dataset.generate(seed=42, chats=400, offline_msgs=20))
    result = run_tap(make_config(sim), catalog=select("chat_history")).assert_ok()
    validate_records(result)
    kinds = collections.Counter(r["type"] for r in result.records("chat_history"))
    assert {"chat.msg", "chat.memberjoin"} <= set(kinds)
    messages = [r for r in result.records("chat_history") if r["type"] == "chat.msg"]
    assert messages and all(isinstance(r.get("msg"), (str, type(None))) for r in messages)
    files = [r for r in result.records("chat_history") if r.get("attachment")]
    assert all(isinstance(r["attachment"], dict) for r in files)


def test_a_child_stream_alone(simulator):
    """Selected without chats: the same rows, and no chats."""
    dataset = Dataset.generate(seed=43, chats=800, offline_msgs=50)
    sim = simulator(dataset)
    result = run_tap(make_config(sim), catalog=select("chat_tags")).assert_ok()
    assert result.streams == {"chat_tags"}
    assert row_keys(result, "chat_tags") == collections.Counter(
        (r["chat_id"], r["position"]) for r in expected_records(dataset, "chat_tags"))
    assert set(result.last_state["bookmarks"]) == {"chat_tags"}


@pytest.mark.parametrize("seed", [1, 2])
def test_a_kill_at_any_point_loses_no_child_row(simulator, seed):
    """Killed after a random number of lines and resumed from the last STATE, again and again: every row of
    every child stream arrives under some STATE. A full sync is about 21,000 lines, a STATE after every 7,700
    (a page of chats and its rows): the kills fall inside pages and between them, and runs resume mid-walk."""
    dataset = Dataset.generate(seed=44, chats=2600, offline_msgs=100, history_events=2)
    sim = simulator(dataset)
    config = make_config(sim, max_requests_per_minute=100000)
    catalog = select("chats", "chat_history", "chat_tags", "chat_agents")
    rng = random.Random(seed)
    delivered, state, killed, resumed = collections.defaultdict(set), None, 0, 0
    for run in range(1, 30):
        resumed += bool(state and "chat_history" in state["bookmarks"])
        proc = start_tap(config, catalog=catalog, state=state)
        lines = read_then_kill(proc, rng.randint(5_000, 12_000)) if run <= 4 else []
        result = finish_tap(proc, lines)
        killed += result.returncode != 0
        pending = []
        for message in result.messages:
            if message["type"] == "RECORD":
                record = message["record"]
                key = record.get("id") if message["stream"] == "chats" else (record["chat_id"], record["position"])
                pending.append((message["stream"], key))
            elif message["type"] == "STATE":
                for stream, key in pending:
                    delivered[stream].add(key)
                pending = []
        state = result.last_state or state
        if result.returncode == 0:
            break
    else:
        pytest.fail("the sync never finished")
    assert killed >= 2 and resumed >= 2, f"{killed} runs killed, {resumed} resumed from a child stream's bookmark"
    assert delivered["chats"] == set(dataset.chat_ids())
    for stream in ("chat_history", "chat_tags", "chat_agents"):
        assert delivered[stream] == {(r["chat_id"], r["position"]) for r in expected_records(dataset, stream)}, stream


def test_a_child_stream_selected_later_catches_up(simulator):
    """chats synced alone, then chats and chat_tags: the walk reads from chat_tags' start, chats gets only
    what changed, chat_tags every row; from then on one walk, one bookmark for both."""
    dataset = Dataset.generate(seed=45, chats=1200, offline_msgs=50)
    sim = simulator(dataset)
    config = make_config(sim)
    first = run_tap(config, catalog=select("chats")).assert_ok()
    changed = dataset.mutate(seed=3)
    second = run_tap(config, catalog=select("chats", "chat_tags"), state=first.last_state).assert_ok()
    moved = set(changed["updated_chats"]) | set(changed["new_chats"]) | set(changed["deleted_chats"])
    assert {c["id"] for c in second.records("chats")} == moved
    assert row_keys(second, "chat_tags") == collections.Counter(
        (r["chat_id"], r["position"]) for r in expected_records(dataset, "chat_tags"))
    assert "walk reads from the earliest" in second.stderr or "different bookmarks" in second.stderr
    bookmarks = second.last_state["bookmarks"]
    assert bookmarks["chat_tags"]["cursor"] == bookmarks["chats"]["cursor"]
    sim.clear_requests()
    third = run_tap(config, catalog=select("chats", "chat_tags"), state=second.last_state).assert_ok()
    assert sim.count("incremental/chats") == 1 and "different bookmarks" not in third.stderr


def test_a_chat_that_lost_tags_leaves_only_stale_rows_behind(simulator):
    """A chat comes again with fewer tags: its new rows carry its new update_timestamp; the rows of the old
    version that an upserting target keeps (higher positions) carry the old one, so "current" is a join."""
    dataset = Dataset.generate(seed=46, chats=600, offline_msgs=20)
    sim = simulator(dataset)
    config = make_config(sim)
    catalog = select("chats", "chat_tags")
    first = run_tap(config, catalog=catalog).assert_ok()
    tagged = [c for c in dataset.served("chats") if len(c.get("tags") or []) >= 2][:5]
    assert tagged
    for chat in tagged:
        dataset.update_chat(chat["id"], tags=chat["tags"][:1])
    second = run_tap(config, catalog=catalog, state=first.last_state).assert_ok()
    # an upserting target: the later row of a key replaces the earlier one
    table = {}
    for result in (first, second):
        for row in result.records("chat_tags"):
            table[(row["chat_id"], row["position"])] = row
    chats = {}
    for result in (first, second):
        chats.update((c["id"], c) for c in result.records("chats"))
    current = collections.defaultdict(list)
    for (chat_id, position), row in sorted(table.items()):
        if row["chat_update_timestamp"] == chats[chat_id]["update_timestamp"]:
            current[chat_id].append(row["tag"])
    for chat in tagged:
        assert current[chat["id"]] == chat["tags"][:1]
        stale = [row for (cid, _), row in table.items() if cid == chat["id"] and row["position"] >= 1]
        assert stale and all(r["chat_update_timestamp"] != chats[chat["id"]]["update_timestamp"] for r in stale)
