"""Data where many fields carry types the schemas did not foresee, through validating and SQL targets
(issue 10): target-jsonl (Draft 4 validation of every record) and meltanolabs-target-postgres 0.8.1 (typed
columns that cannot change mid-run). Nothing may stop either, no record may be lost, and every odd value
must be found in the destination, under `_unexpected_values`."""
import json

import pytest

from tap_zendesk_chat.streams import STREAMS
from tests.e2e.tools import expected_counts, run_pipeline, small_dataset, tool
from tests.harness import TOKEN, make_config
from tests.simulator import Simulator

SCHEMA = "zendesk_chat_odd"
# (stream in the simulator, record index, path, odd value, the table it lands in)
ODD = [
    ("chats", 0, ["duration"], "about five minutes", "chats"),
    ("chats", 1, ["zendesk_ticket_id"], "ZD-4821", "chats"),
    ("chats", 2, ["history", 0, "timestamp"], "yesterday", "chats"),
    ("chats", 3, ["response_time", "first"], {"seconds": 12}, "chats"),
    ("chats", 4, ["unread"], 7, "chats"),
    ("chats", 5, ["tags"], "vip", "chats"),
    ("agents", 0, ["login_count"], "many", "agents"),
    ("agents", 1, ["create_date"], "2024-13-45T00:00:00Z", "agents"),
    ("departments", 0, ["enabled"], "yes", "departments"),
    ("agent_timeline", 0, ["duration"], [1, 2], "agent_timeline"),
    ("account", 0, ["plan", "price"], "free", "account"),
    ("skills", 0, ["members"], {"a": 1}, "skills"),
]


def odd_dataset(seed):
    dataset = small_dataset(seed=seed)
    dataset.add_real_shapes()
    # ODD's chat indices count chats (not offline messages) with a history, in export order.
    dataset.odd_chats = [c["id"] for c in dataset.chats if c["type"] == "chat" and c.get("history")]
    for stream, index, path, value, _ in ODD:
        if stream == "chats":
            dataset.set_field(stream, dataset.odd_chats[index], path, value, by="id")
        else:
            dataset.set_field(stream, index, path, value, by="index")
    return dataset


def path_text(path):
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def record_key(dataset, stream, index):
    if stream == "chats":
        return dataset.odd_chats[index]
    served = dataset.served(stream)
    record = served if isinstance(served, dict) else served[index]
    return record.get("account_key") if stream == "account" else record.get("id", record.get("agent_id"))


def expected_rows(dataset):
    counts = expected_counts(dataset)
    counts["triggers"] -= 1  # the trigger without id cannot be upserted: withheld and reported
    return counts


def test_odd_values_through_target_jsonl(tmp_path):
    target = tool("target-jsonl", "target-jsonl")
    dataset = odd_dataset(61)
    out = tmp_path / "out"
    with Simulator(dataset, token=TOKEN) as sim:
        result = run_pipeline(make_config(sim), target, {"destination_path": str(out), "do_timestamp_file": False},
                              workdir=tmp_path / "run")
    result.assert_ok()
    files = {path.stem: [json.loads(line) for line in path.read_text().split("\n") if line.strip()]
             for path in out.glob("*.jsonl")}
    assert {name: len(rows) for name, rows in files.items()} == expected_rows(dataset)
    for stream, index, path, value, table in ODD:
        rows = [r for r in files[table] if (r.get("_unexpected_values") or {}).get(path_text(path)) == value]
        assert len(rows) == 1, (stream, path)
        if table != "agent_timeline":
            key = rows[0]["account_key"] if table == "account" else rows[0]["id"]
            assert key == record_key(dataset, stream, index)
    # An odd value inside a history event is also one in the event's row of chat_history, at the event's own path.
    in_history = [(index, path, value) for stream, index, path, value, _ in ODD if stream == "chats"
                  and path[0] == "history"]
    for index, path, value in in_history:
        rows = [r for r in files["chat_history"] if (r.get("_unexpected_values") or {}).get(path_text(path[2:])) == value]
        assert [(r["chat_id"], r["position"]) for r in rows] == [(record_key(dataset, "chats", index), path[1])]
    warnings = [line for line in result.tap_stderr.splitlines() if "is declared" in line and "WARNING" in line]
    assert len(warnings) == len(ODD) + len(in_history)
    assert sum(line.startswith("WARNING chat_history: ") for line in warnings) == len(in_history)


@pytest.fixture(scope="module")
def odd_loaded(postgres, tmp_path_factory):
    target = tool("target-postgres", "target-postgres")
    database, target_config = postgres.fresh_target("odd", SCHEMA)
    dataset = odd_dataset(62)
    with Simulator(dataset, token=TOKEN) as sim:
        result = run_pipeline(make_config(sim), target, target_config, workdir=tmp_path_factory.mktemp("odd-pg"))
    result.assert_ok()
    return postgres, database, dataset


def test_every_row_loads_into_postgres(odd_loaded):
    postgres, database, dataset = odd_loaded
    counts = {stream: int(postgres.psql(f'SELECT count(*) FROM {SCHEMA}."{stream}"', database)) for stream in STREAMS}
    assert counts == expected_rows(dataset)


def test_unexpected_values_are_found_in_postgres_as_json(odd_loaded):
    postgres, database, dataset = odd_loaded
    column_type = postgres.psql(f"SELECT data_type FROM information_schema.columns WHERE table_schema = '{SCHEMA}' "
                                "AND table_name = 'chats' AND column_name = '_unexpected_values'", database)
    assert column_type == "jsonb"
    for stream, index, path, value, table in ODD:
        if table == "agent_timeline":
            continue  # no single-column key to find the row by; target-jsonl's test covers it
        key_column = "account_key" if table == "account" else "id"
        key = record_key(dataset, stream, index)
        rows = postgres.rows(f'SELECT "_unexpected_values" AS kept FROM {SCHEMA}."{table}" '
                             f"WHERE {key_column} = {json.dumps(key) if isinstance(key, int) else repr(key)}", database)
        assert len(rows) == 1, (table, key)
        assert rows[0]["kept"][path_text(path)] == value, (stream, path)
    # The field itself arrived as null in its typed column.
    duration_key = record_key(dataset, "chats", 0)
    assert postgres.psql(f"SELECT duration IS NULL FROM {SCHEMA}.chats WHERE id = '{duration_key}'", database) == "t"
