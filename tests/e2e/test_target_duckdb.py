"""The tap piped into target-duckdb 0.8.0, loading a DuckDB file, as `make demo` does.

The target runs through scripts/run_target_duckdb.py, which fixes three of its loading bugs (a string or a boolean
in a JSON column refused; a one-row batch whose every column is set taken for a CSV header and dropped; a
string-or-number column made DOUBLE): the dataset has all three (department events' values of every JSON type, the
account with an odd value, chat_webpath's timestamps). The file is read back with the DuckDB of the target's venv,
the one that wrote it.

Two syncs: a full one, then `dataset.mutate()` and an incremental one from the target's state. target-duckdb
upserts on the stream's key and ignores ACTIVATE_VERSION: rows removed upstream stay, and routing_settings (no
key) gets one row more per run."""
import json
import subprocess

import pytest

from tap_zendesk_chat.dates import parse_datetime
from tap_zendesk_chat.streams import STREAMS
from tests.e2e.tools import ROOT, expected_counts, expected_keys, key_of, run_pipeline, small_dataset, tool
from tests.harness import TOKEN, make_config
from tests.integration.expected import EXPORTS, FULL_TABLE
from tests.simulator import Simulator

SCHEMA = "zendesk_chat"
# Run by the Python of .e2e-venvs/target-duckdb: the named queries on stdin, their rows as JSON on stdout.
QUERY_SCRIPT = """import json, sys, duckdb
db = duckdb.connect(sys.argv[1], read_only=True)
out = {}
for name, sql in json.load(sys.stdin).items():
    cursor = db.execute(sql)
    columns = [d[0] for d in cursor.description]
    out[name] = [dict(zip(columns, row)) for row in cursor.fetchall()]
print(json.dumps(out, default=str))"""


# Streams whose served keys cannot be compared as they are with the table's: add_real_shapes gives agent_timeline
# start times as epoch numbers (the tap writes timestamps) and a trigger without an id (the tap withholds it).
# Their keys are compared with what the tap sent.
KEYS_NOT_AS_SERVED = ("agent_timeline", "triggers")


def target_duckdb():
    return [tool("target-duckdb", "python"), str(ROOT / "scripts" / "run_target_duckdb.py")]


def target_config(path):
    return {"path": str(path), "default_target_schema": SCHEMA, "primary_key_required": False}


def query(database, **queries):
    """Each named SQL query's rows, as dicts; timestamps as text, JSON columns as JSON text."""
    proc = subprocess.run([tool("target-duckdb", "python"), "-c", QUERY_SCRIPT, str(database)],
                          input=json.dumps(queries), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def snapshot(database):
    """Every table's rows (keys and counts are read from them) and the column types of every table."""
    tables = {stream: f'SELECT * FROM {SCHEMA}."{stream}"' for stream in STREAMS}
    got = query(database, tables="SELECT table_name FROM information_schema.tables "
                                 f"WHERE table_schema = '{SCHEMA}'",
                columns="SELECT table_name, column_name, data_type FROM information_schema.columns "
                        f"WHERE table_schema = '{SCHEMA}'",
                keys="SELECT table_name, constraint_column_names FROM duckdb_constraints() "
                     f"WHERE schema_name = '{SCHEMA}' AND constraint_type = 'PRIMARY KEY'",
                **{name: sql for name, sql in tables.items()})
    got["types"] = {(row["table_name"], row["column_name"]): row["data_type"] for row in got.pop("columns")}
    return got


def decoded(json_text):
    return None if json_text is None else json.loads(json_text)


def keys(rows, stream):
    return [key_of(stream, row) for row in rows]


def odd_dataset():
    """A small account with the real API's odd shapes, and one value that makes the account's one row full."""
    dataset = small_dataset(seed=71)
    dataset.add_real_shapes()
    dataset.set_field("account", 0, ["plan", "price"], "free")
    return dataset


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    target = target_duckdb()
    workdir = tmp_path_factory.mktemp("target-duckdb")
    database = workdir / "zendesk.duckdb"
    dataset = odd_dataset()
    loaded = {"dataset": dataset}
    with Simulator(dataset, token=TOKEN) as sim:
        config = make_config(sim)
        first = run_pipeline(config, target, target_config(database), workdir=workdir / "first").assert_ok()
        loaded.update(first=first, after_first=snapshot(database), expected_first=expected_counts(dataset),
                      expected_keys_first={s: expected_keys(dataset, s) for s in STREAMS
                                           if s not in KEYS_NOT_AS_SERVED})
        changes = dataset.mutate(seed=3)
        # One more change whose effect is sure to be visible: a chat tagged after it ended.
        retagged = next(c for c in dataset.live_chat_ids() if c not in changes["updated_chats"])
        dataset.update_chat(retagged, tags=sorted(set(dataset.chat(retagged)["tags"]) | {"e2e_retagged"}))
        changes["updated_chats"].append(retagged)
        second = run_pipeline(config, target, target_config(database), state=first.target_states[-1],
                              workdir=workdir / "second").assert_ok()
        loaded.update(changes=changes, retagged=retagged, second=second, after_second=snapshot(database),
                      expected_second=expected_counts(dataset))
    return loaded


def withheld(dataset):
    """Rows the tap does not write (README: a record without its key cannot be upserted): the trigger without id."""
    return {"triggers": 1} if "trigger_without_id" in dataset.real_shapes else {}


def test_a_table_per_stream_with_the_streams_primary_keys(loaded):
    got = loaded["after_first"]
    assert {row["table_name"] for row in got["tables"]} == set(STREAMS)
    primary_keys = {row["table_name"]: list(row["constraint_column_names"]) for row in got["keys"]}
    assert primary_keys == {name: list(s.key_properties) for name, s in STREAMS.items() if s.key_properties}


def test_first_sync_loads_every_row_the_api_has(loaded):
    got, first = loaded["after_first"], loaded["first"]
    want = dict(loaded["expected_first"])
    for stream, n in withheld(loaded["dataset"]).items():
        want[stream] -= n
    assert {stream: len(got[stream]) for stream in STREAMS} == want
    for stream in STREAMS:
        if STREAMS[stream].key_properties:
            # Key for key what the tap sent, and what the simulator serves.
            assert sorted(keys(got[stream], stream)) == sorted(keys(first.records(stream), stream)), stream
            if stream in loaded["expected_keys_first"]:
                assert set(keys(got[stream], stream)) == loaded["expected_keys_first"][stream], stream


def test_timestamps_booleans_and_nested_fields_arrive_typed(loaded):
    got, first = loaded["after_first"], loaded["first"]
    types = got["types"]
    assert types[("chats", "timestamp")] == types[("chats", "update_timestamp")] == "TIMESTAMP"
    assert types[("agent_timeline", "start_time")] == "TIMESTAMP"
    assert types[("chats", "missed")] == types[("agents", "enabled")] == "BOOLEAN"
    for column in ("response_time", "history", "tags", "visitor", "_unexpected_values"):
        assert types[("chats", column)] == "JSON", column
    assert types[("department_events", "value")] == types[("department_events", "previous_value")] == "JSON"
    assert types[("shortcuts", "options")] == "VARCHAR", "a string in the API, declared one (not a JSON column)"

    rows = {row["id"]: row for row in got["chats"]}
    for record in first.records("chats"):
        row = rows[record["id"]]
        assert parse_datetime(row["update_timestamp"]) == parse_datetime(record["update_timestamp"])
        assert row["deleted"] is record["deleted"]
        for column in ("response_time", "history", "tags", "visitor", "_unexpected_values"):
            assert decoded(row[column]) == record.get(column), column
    # A JSON column given any JSON value (department events, strings among them): the value as sent.
    rows = {key_of("department_events", row): row for row in got["department_events"]}
    for record in first.records("department_events"):
        row = rows[key_of("department_events", record)]
        for column in ("value", "previous_value"):
            assert decoded(row[column]) == record.get(column), column
    # shortcuts' options, a string column: the text as sent (target-duckdb loads an empty string as NULL).
    rows = {key_of("shortcuts", row): row for row in got["shortcuts"]}
    assert {row["options"] for row in rows.values()} - {None}
    for record in first.records("shortcuts"):
        assert rows[key_of("shortcuts", record)]["options"] == (record.get("options") or None), record["name"]
    kinds = {type(json.loads(row["value"])).__name__ for row in got["department_events"] if row["value"]}
    assert {"str", "dict"} <= kinds


def test_a_one_row_batch_with_every_column_set_is_loaded(loaded):
    """The account: one row, every column set (its odd price lands in _unexpected_values); target-duckdb's own
    COPY would take it for a CSV header and load nothing."""
    [account] = loaded["after_first"]["account"]
    assert json.loads(account["_unexpected_values"]) == {"plan.price": "free"}
    assert all(value is not None for value in account.values())


def test_second_sync_updates_changed_chats_in_place(loaded):
    dataset, changes = loaded["dataset"], loaded["changes"]
    rows = loaded["after_second"]["chats"]
    assert len(rows) == len({row["id"] for row in rows}) == dataset.chat_count()
    rows = {row["id"]: row for row in rows}
    assert set(rows) == set(dataset.chat_ids())
    changed = set(changes["updated_chats"]) | set(changes["deleted_chats"]) | set(changes["new_chats"])
    assert {record["id"] for record in loaded["second"].records("chats")} == changed
    for chat_id in changes["updated_chats"]:
        want, got = dataset.chat(chat_id), rows[chat_id]
        assert json.loads(got["tags"]) == want["tags"], chat_id
        assert got["zendesk_ticket_id"] == want.get("zendesk_ticket_id"), chat_id
        assert parse_datetime(got["update_timestamp"]) == parse_datetime(want["update_timestamp"]), chat_id
        if want["type"] == "chat":
            assert (got["rating"], got["comment"]) == (want["rating"], want["comment"]), chat_id
    assert "e2e_retagged" in json.loads(rows[loaded["retagged"]]["tags"])
    for chat_id in changes["deleted_chats"]:
        assert rows[chat_id]["deleted"] is True
    for chat_id in changes["new_chats"]:
        assert rows[chat_id]["deleted"] is False
    assert sum(1 for row in rows.values() if row["deleted"]) == len(dataset.deleted_chat_ids())


def test_second_sync_adds_what_is_new_and_keeps_what_was_removed(loaded):
    before, after, changes = loaded["after_first"], loaded["after_second"], loaded["changes"]
    want = dict(loaded["expected_second"])
    for stream, n in withheld(loaded["dataset"]).items():
        want[stream] -= n
    for stream in EXPORTS:
        assert len(after[stream]) == want[stream], stream
        assert len(set(keys(after[stream], stream))) == want[stream], stream
    # Full-table streams are upserted: new and changed rows arrive, and (ACTIVATE_VERSION being ignored by
    # target-duckdb) rows removed upstream stay.
    for stream in FULL_TABLE:
        if not STREAMS[stream].key_properties:
            continue
        sent = set(keys(loaded["second"].records(stream), stream))
        assert set(keys(after[stream], stream)) == set(keys(before[stream], stream)) | sent, stream
    agents = {row["id"]: row for row in after["agents"]}
    assert set(changes["new_agents"]) <= set(agents) and set(changes["removed_agents"]) <= set(agents)
    for agent_id in changes["updated_agents"]:
        want_agent = next(a for a in loaded["dataset"].agents if a["id"] == agent_id)
        assert agents[agent_id]["login_count"] == want_agent["login_count"]
    # Without a key, each run appends its row.
    assert len(after["routing_settings"]) == 2
