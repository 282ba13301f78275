"""examples/meltano into DuckDB, as a user runs it: `meltano run tap-zendesk-chat target-duckdb`, then the same with
the mapping hide-personal-data between the two, against the simulator.

One copy of the project, one `meltano install` of its three plugins (the tap, the target-duckdb loader with its
fixes, meltano-map-transform), two runs into two DuckDB files. Every stream the tap discovers must arrive with as
many rows as the simulator serves (the first run failed outright before shortcuts' `options` was declared a
string, and fails without the loader's fixes); with the mapping, no visitor email, IP or message text the
simulator serves reaches DuckDB, and each email and IP arrives as one salted SHA-256 hash."""
import collections
import hashlib
import json
import subprocess

import pytest

from tests.e2e.test_meltano import copy_project, meltano_env, run_meltano
from tests.e2e.tools import small_dataset, tool
from tests.harness import TOKEN, make_config, run_tap
from tests.integration.expected import expected_records
from tests.simulator import Simulator

SCHEMA = "zendesk_chat"
SEED = "e2e-salt-4b1d"
# Run by the Python of .e2e-venvs/target-duckdb: every table of the schema, each row as JSON text.
DUMP_SCRIPT = """import json, sys, duckdb
db = duckdb.connect(sys.argv[1], read_only=True)
tables = [t for (t,) in db.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = ?",
                                   [sys.argv[2]]).fetchall()]
types = db.execute("SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
                   "WHERE table_schema = ?", [sys.argv[2]]).fetchall()
rows = {}
for table in tables:
    cursor = db.execute(f'SELECT to_json(t)::VARCHAR FROM {sys.argv[2]}."{table}" AS t')
    rows[table] = [json.loads(row) for (row,) in cursor.fetchall()]
print(json.dumps({"rows": rows, "types": dict(types)}))"""


def dump(database):
    """{"rows": every table's rows as JSON values (JSON columns as the values they hold, timestamps as text),
    "types": {"table.column": its DuckDB type}}."""
    proc = subprocess.run([tool("target-duckdb", "python"), "-c", DUMP_SCRIPT, str(database), SCHEMA],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def hashed(value):
    return hashlib.sha256((SEED + value).encode()).hexdigest()


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    project = copy_project(tmp_path_factory.mktemp("meltano-duckdb"))
    dataset = small_dataset(seed=67)
    # The visitor with the most chats; one of them typed the email otherwise (spaces, capitals).
    emails = collections.Counter(c["visitor"]["email"] for c in dataset.served("chats") if c["visitor"].get("email"))
    [(email, _)] = emails.most_common(1)
    repeat = [c["id"] for c in dataset.served("chats") if c["visitor"].get("email") == email]
    dataset.set_field("chats", repeat[0], ["visitor", "email"], f"  {email.title()} ")
    with Simulator(dataset, token=TOKEN) as sim:
        env = meltano_env(sim, MELTANO_MAP_TRANSFORM_STREAM_MAP_CONFIG_HASH_SEED=SEED)
        discovered = run_tap(make_config(sim), args=["--discover"], parse=False).assert_ok()
        run_meltano(project, env, "install", "tap-zendesk-chat", "target-duckdb", "meltano-map-transform",
                    timeout=600)
        run_meltano(project, dict(env, TARGET_DUCKDB_PATH=str(project / "plain.duckdb")),
                    "run", "tap-zendesk-chat", "target-duckdb")
        run_meltano(project, dict(env, TARGET_DUCKDB_PATH=str(project / "hidden.duckdb")),
                    "run", "--full-refresh", "tap-zendesk-chat", "hide-personal-data", "target-duckdb")
    streams = [entry["tap_stream_id"] for entry in json.loads(discovered.stdout)["streams"]]
    return {"dataset": dataset, "streams": streams, "repeat": (email, repeat), "plain": dump(project / "plain.duckdb"),
            "hidden": dump(project / "hidden.duckdb")}


def served_chats(loaded):
    return loaded["dataset"].served("chats")


def test_every_discovered_stream_loads_every_row(loaded):
    """Whatever streams discovery returns (child streams, flattened settings), each is a table with as many rows
    as the simulator serves."""
    dataset, streams = loaded["dataset"], loaded["streams"]
    assert "shortcuts" in streams and "department_events" in streams and "account" in streams
    want = {stream: len(expected_records(dataset, stream)) for stream in streams}
    for database in ("plain", "hidden"):
        got = {table: len(rows) for table, rows in loaded[database]["rows"].items()}
        assert got == want, database
    # The API sends shortcuts' options as a string: a text column (the schema once allowed an array too, which
    # made it JSON, and plain target-duckdb refused the batch).
    assert loaded["plain"]["types"]["shortcuts.options"] == "VARCHAR"
    assert {row["options"] for row in loaded["plain"]["rows"]["shortcuts"]} - {None}
    # Any JSON value, strings among them (the loader's first fix), and epoch numbers beside ISO dates (its third).
    assert loaded["plain"]["types"]["department_events.value"] == "JSON"
    assert {type(row["value"]) for row in loaded["plain"]["rows"]["department_events"]} >= {str, dict}


def test_the_plain_run_holds_what_the_mapping_hides(loaded):
    """The scan below finds raw values where they are: in the run without the mapping."""
    text = json.dumps(loaded["plain"]["rows"])
    emails = {c["visitor"]["email"] for c in served_chats(loaded) if c["visitor"].get("email")}
    assert emails and all(json.dumps(email)[1:-1] in text for email in emails)


def test_no_visitor_email_ip_or_message_text_reaches_duckdb(loaded):
    chats = served_chats(loaded)
    text = json.dumps(loaded["hidden"]["rows"]).lower()
    emails = {c["visitor"]["email"] for c in chats if c["visitor"].get("email")}
    ips = {c["session"]["ip"] for c in chats if (c.get("session") or {}).get("ip")}
    assert len(emails) > 5 and len(ips) > 5
    assert [email for email in emails if email.strip().lower() in text] == []
    assert [ip for ip in ips if ip in text] == []
    # Message text: offline messages' and every chat.msg of the history, in any chat table (other tables may
    # share a sentence with an agent's message: a shortcut's text).
    messages = {c["message"] for c in chats if c.get("message")}
    messages |= {e["msg"] for c in chats for e in c.get("history") or () if isinstance(e, dict) and e.get("msg")}
    chat_text = json.dumps({t: rows for t, rows in loaded["hidden"]["rows"].items() if t.startswith("chat")}).lower()
    assert len(messages) > 10
    assert [m for m in messages if len(m) >= 20 and json.dumps(m)[1:-1].lower() in chat_text] == []
    for row in loaded["hidden"]["rows"]["chats"]:
        assert "message" not in row
        assert all(event.get("msg") is None for event in row["history"] or () if event)
    for row in loaded["hidden"]["rows"].get("chat_history", ()):
        assert "msg" not in row


def test_emails_and_ips_arrive_hashed_the_same_email_the_same_hash(loaded):
    rows = {row["id"]: row for row in loaded["hidden"]["rows"]["chats"]}
    by_email = {}
    for chat in served_chats(loaded):
        row = rows[chat["id"]]
        visitor, session = row["visitor"], row["session"]
        email, ip = chat["visitor"].get("email"), chat["session"].get("ip")
        # target-duckdb loads an empty string as NULL; inside a JSON column it stays as sent.
        assert visitor["email"] == (hashed(email.strip().lower()) if email else email), chat["id"]
        assert session["ip"] == (hashed(ip) if ip else ip), chat["id"]
        assert visitor["id"] == chat["visitor"]["id"] and session["city"] == chat["session"].get("city")
        if email:
            by_email.setdefault(email.strip().lower(), set()).add(visitor["email"])
    # One hash per visitor's email, however it was typed, and different emails apart: joins and counts still work.
    assert all(len(hashes) == 1 for hashes in by_email.values())
    assert len({next(iter(h)) for h in by_email.values()}) == len(by_email)
    email, repeat = loaded["repeat"]
    assert len(repeat) > 1
    assert {rows[chat_id]["visitor"]["email"] for chat_id in repeat} == {hashed(email)}
