"""The child tables of chats in DuckDB (target-duckdb 0.8.0) and PostgreSQL (target-postgres), as an analyst
queries them (issue 19): rows per chat equal the arrays the simulator serves; "chats per agent" and "first
response by department" are plain joins, without a cast; after an incremental sync in which chats lost tags,
the join on chats.update_timestamp (the README's view) returns only their current tags."""
import collections
import json

import pytest

from tap_zendesk_chat.streams import STREAMS
from tests.e2e.test_target_duckdb import query, target_config as duckdb_config, target_duckdb
from tests.e2e.tools import run_pipeline, small_dataset, tool
from tests.harness import TOKEN, make_config
from tests.integration.expected import CHILD_ARRAYS, child_rows
from tests.simulator import Simulator

SCHEMA = "zendesk_chat"
CHILDREN = tuple(CHILD_ARRAYS)
CURRENT = "JOIN {s}.chats c ON c.id = t.chat_id AND c.update_timestamp = t.chat_update_timestamp"


def queries(s):
    current = CURRENT.format(s=s)
    out = {f"per_chat_{name}": f'SELECT t.chat_id, count(*) AS n FROM {s}."{name}" t {current} GROUP BY t.chat_id'
           for name in CHILDREN}
    out.update({
        # every column of both sides of each join, to compare their types
        "chats_per_agent": f"SELECT a.id, count(DISTINCT t.chat_id) AS chats FROM {s}.chat_agents t {current} "
                           f"JOIN {s}.agents a ON a.id = t.agent_id GROUP BY a.id",
        "first_response_by_department": f"SELECT d.id, count(*) AS chats FROM {s}.chats c "
                                        f"JOIN {s}.departments d ON d.id = c.department_id "
                                        "WHERE c.type = 'chat' GROUP BY d.id",
        "history_departments": f"SELECT count(*) AS n FROM {s}.chat_history t JOIN {s}.departments d "
                               "ON d.id = t.department_id",
        "conversions_goals": f"SELECT count(*) AS n FROM {s}.conversions v JOIN {s}.goals g ON g.id = v.goal_id",
        "current_tags": f"SELECT t.chat_id, t.position, t.tag FROM {s}.chat_tags t {current}",
    })
    return out


JOINED_COLUMNS = [("chat_agents", "agent_id", "agents", "id"), ("chats", "department_id", "departments", "id"),
                  ("chat_history", "department_id", "departments", "id"), ("conversions", "goal_id", "goals", "id"),
                  ("chat_conversions", "goal_id", "goals", "id"), ("agent_timeline", "agent_id", "agents", "id")]


def sync_twice(target, target_config, workdir, lose_tags=4):
    """A full sync, then chats lose tags upstream and an incremental sync from the target's state. Returns the
    dataset and the ids of the chats that lost tags."""
    dataset = small_dataset(seed=61)
    with Simulator(dataset, token=TOKEN) as sim:
        config = make_config(sim)
        first = run_pipeline(config, target, target_config, workdir=workdir / "first").assert_ok()
        tagged = [c for c in dataset.served("chats") if len(c.get("tags") or []) >= 2][:lose_tags]
        assert len(tagged) == lose_tags, "the dataset should have chats with two tags"
        for chat in tagged:
            dataset.update_chat(chat["id"], tags=chat["tags"][:1])
        run_pipeline(config, target, target_config, state=first.last_state, workdir=workdir / "second").assert_ok()
    return dataset, [c["id"] for c in tagged]


def check(dataset, lost, got, types):
    chats = dataset.served("chats")
    for name in CHILDREN:
        want = collections.Counter(r["chat_id"] for r in child_rows(chats, name))
        assert {r["chat_id"]: int(r["n"]) for r in got[f"per_chat_{name}"]} == dict(want), name
    agents = collections.Counter()
    for chat in chats:
        for agent in set(chat.get("agent_ids") or []):
            agents[int(agent)] += 1
    assert {int(r["id"]): int(r["chats"]) for r in got["chats_per_agent"]} == dict(agents)
    departments = collections.Counter(int(c["department_id"]) for c in chats
                                      if c.get("department_id") is not None and c.get("type") == "chat")
    assert {int(r["id"]): int(r["chats"]) for r in got["first_response_by_department"]} == dict(departments)
    assert int(got["history_departments"][0]["n"]) > 0 and int(got["conversions_goals"][0]["n"]) > 0
    current = collections.defaultdict(list)
    for row in sorted(got["current_tags"], key=lambda r: (r["chat_id"], int(r["position"]))):
        current[row["chat_id"]].append(row["tag"])
    by_id = {c["id"]: c for c in chats}
    for chat_id in lost:
        assert current[chat_id] == by_id[chat_id]["tags"], chat_id
        assert len(current[chat_id]) == 1
    for left, column, right, key in JOINED_COLUMNS:
        assert types[(left, column)] == types[(right, key)], (left, column, types[(left, column)], types[(right, key)])


def test_duckdb(tmp_path):
    database = tmp_path / "children.duckdb"
    dataset, lost = sync_twice(target_duckdb(), duckdb_config(database), tmp_path)
    got = query(database, **queries(SCHEMA), columns="SELECT table_name, column_name, data_type FROM "
                f"information_schema.columns WHERE table_schema = '{SCHEMA}'",
                stale=f"SELECT count(*) AS n FROM {SCHEMA}.chat_tags t JOIN {SCHEMA}.chats c ON c.id = t.chat_id "
                      "WHERE c.update_timestamp <> t.chat_update_timestamp")
    types = {(r["table_name"], r["column_name"]): r["data_type"] for r in got.pop("columns")}
    check(dataset, lost, got, types)
    assert got["stale"][0]["n"] >= len(lost), "the lost tags' rows stay, marked by their older chat_update_timestamp"


def test_postgres(postgres, tmp_path):
    target = tool("target-postgres", "target-postgres")
    database, config = postgres.fresh_target("children", SCHEMA)
    dataset, lost = sync_twice(target, config, tmp_path)
    got = {name: postgres.rows(sql, database) for name, sql in queries(SCHEMA).items()}
    columns = postgres.rows("SELECT table_name, column_name, data_type FROM information_schema.columns "
                            f"WHERE table_schema = '{SCHEMA}'", database)
    types = {(r["table_name"], r["column_name"]): r["data_type"] for r in columns}
    check(dataset, lost, got, types)
    assert set(CHILDREN) <= {r["table_name"] for r in columns}
    assert all(name in STREAMS for name in CHILDREN)
    json.dumps(got)  # the rows are plain JSON values
