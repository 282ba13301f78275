"""The tap piped into meltanolabs-target-postgres 0.8.1, loading a PostgreSQL server the tests start themselves.

Two syncs: a full one, then `dataset.mutate()` and an incremental one from the target's state. Chats are
upserted on their key; full-table streams come with a new table version and ACTIVATE_VERSION, on which the
target (hard_delete: true) deletes the rows of older versions, so agents removed upstream disappear."""

import pytest

from tap_zendesk_chat.streams import STREAMS
from tests.e2e.tools import expected_counts, expected_keys, key_of, loading_blockers, run_pipeline, small_dataset, tool
from tests.harness import TOKEN, make_config
from tests.integration.expected import export_changes, export_snapshot
from tests.simulator import Simulator

SCHEMA = "zendesk_chat"


class Loaded:
    """The database after both syncs, and what each sync and the mutation did."""

    def __init__(self, postgres, database, dataset):
        self.postgres, self.database, self.dataset = postgres, database, dataset
        self.first = self.changes = self.second = self.retagged = self.before = None
        self.after_first = self.expected_after_first = None

    def snapshot(self):
        """Rows per stream, the keys of every keyed table, and every chat's tags."""
        return {"counts": {stream: self.count(stream) for stream in STREAMS},
                "keys": {stream: set(self.keys(stream)) for stream in STREAMS if STREAMS[stream].key_properties},
                "chat_tags": {row["id"]: row["tags"] or [] for row in self.table("chats", "id, tags")}}

    def rows(self, sql):
        return self.postgres.rows(sql, self.database)

    def table(self, stream, columns="*"):
        return self.rows(f'SELECT {columns} FROM {SCHEMA}."{stream}"')

    def count(self, stream):
        return int(self.postgres.psql(f'SELECT count(*) FROM {SCHEMA}."{stream}"', self.database))

    def keys(self, stream):
        columns = ", ".join(f'"{k}"' for k in STREAMS[stream].key_properties)
        return [key_of(stream, row) for row in self.table(stream, columns)]


@pytest.fixture(scope="module")
def loaded(postgres, tmp_path_factory):
    target = tool("target-postgres", "target-postgres")
    database, target_config = postgres.fresh_target("e2e", SCHEMA)
    dataset = small_dataset(seed=51)
    workdir = tmp_path_factory.mktemp("target-postgres")
    with Simulator(dataset, token=TOKEN) as sim:
        config = make_config(sim)
        first = run_pipeline(config, target, target_config, workdir=workdir / "first")
        first.assert_ok()
        assert not loading_blockers(first.schemas()), "a schema declares a type no SQL column can hold"
        loaded = Loaded(postgres, database, dataset)
        loaded.first = first
        loaded.after_first = loaded.snapshot()
        loaded.expected_after_first = {
            "counts": expected_counts(dataset),
            "keys": {stream: expected_keys(dataset, stream) for stream in STREAMS if STREAMS[stream].key_properties},
            "chat_tags": {chat["id"]: chat["tags"] for chat in dataset.chats}}
        loaded.before = export_snapshot(dataset)
        loaded.changes = dataset.mutate(seed=1)
        # One more change whose effect is sure to be visible: a chat tagged after it ended.
        retagged = next(c for c in dataset.live_chat_ids() if c not in loaded.changes["updated_chats"])
        dataset.update_chat(retagged, tags=sorted(set(dataset.chat(retagged)["tags"]) | {"e2e_retagged"}))
        loaded.changes["updated_chats"].append(retagged)
        loaded.retagged = retagged
        loaded.second = run_pipeline(config, target, target_config, state=first.target_states[-1],
                                     workdir=workdir / "second")
        loaded.second.assert_ok()
    return loaded


def test_a_table_per_stream_with_the_streams_primary_keys(loaded):
    tables = {row["table_name"] for row in loaded.rows(
        f"SELECT table_name FROM information_schema.tables WHERE table_schema = '{SCHEMA}'")}
    assert tables == set(STREAMS)
    keys = loaded.rows(f"""
        SELECT tc.table_name, kcu.column_name, kcu.ordinal_position
        FROM information_schema.table_constraints tc
        JOIN information_schema.key_column_usage kcu
          ON kcu.constraint_name = tc.constraint_name AND kcu.table_schema = tc.table_schema
        WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = '{SCHEMA}'""")
    keys.sort(key=lambda r: r["ordinal_position"])
    got = {name: [r["column_name"] for r in keys if r["table_name"] == name] for name in STREAMS}
    assert got == {name: list(stream.key_properties) for name, stream in STREAMS.items()}


def test_first_sync_loads_every_row(loaded):
    got, want = loaded.after_first, loaded.expected_after_first
    assert got["counts"] == want["counts"]
    assert got["keys"] == want["keys"]
    assert got["chat_tags"] == want["chat_tags"]


def test_second_sync_leaves_every_table_equal_to_the_api(loaded):
    dataset = loaded.dataset
    assert {stream: loaded.count(stream) for stream in STREAMS} == expected_counts(dataset)
    for stream in STREAMS:
        if STREAMS[stream].key_properties:
            assert set(loaded.keys(stream)) == expected_keys(dataset, stream), stream


def test_second_sync_is_incremental_for_chats(loaded):
    changes = loaded.changes
    changed = set(changes["updated_chats"]) | set(changes["deleted_chats"]) | set(changes["new_chats"])
    assert {chat["id"] for chat in loaded.second.records("chats")} == changed
    assert len(loaded.second.records("agent_timeline")) == changes["new_timeline_entries"]


def test_second_sync_reads_only_what_changed_in_every_export(loaded):
    for stream, want in export_changes(loaded.before, loaded.dataset).items():
        got = sorted(key_of(stream, r) for r in loaded.second.records(stream))
        assert got == sorted(key_of(stream, r) for r in want), stream
        assert set(loaded.keys(stream)) == expected_keys(loaded.dataset, stream), stream


def test_changed_chats_are_upserted(loaded):
    dataset, changes = loaded.dataset, loaded.changes
    columns = "id, tags, rating, comment, zendesk_ticket_id, deleted, type"
    rows = {row["id"]: row for row in loaded.table("chats", columns)}
    assert len(rows) == dataset.chat_count()
    for chat_id in changes["updated_chats"]:
        want = dataset.chat(chat_id)
        got = rows[chat_id]
        assert (got["tags"] or []) == want["tags"], chat_id
        assert got["zendesk_ticket_id"] == want.get("zendesk_ticket_id"), chat_id
        if want["type"] == "chat":
            assert (got["rating"], got["comment"]) == (want["rating"], want["comment"]), chat_id
    assert "e2e_retagged" in rows[loaded.retagged]["tags"]
    for chat_id in changes["new_chats"]:
        assert rows[chat_id]["type"] == dataset.chat(chat_id)["type"]
        assert rows[chat_id]["deleted"] is False
    for chat_id in changes["deleted_chats"]:
        assert rows[chat_id]["deleted"] is True
    assert sum(1 for row in rows.values() if row["deleted"]) == len(dataset.deleted_chat_ids())


def test_rows_removed_upstream_disappear_through_activate_version(loaded):
    dataset, changes = loaded.dataset, loaded.changes
    agents = {row["id"]: row for row in loaded.table("agents", 'id, email, login_count, "_sdc_table_version"')}
    assert changes["removed_agents"] and not set(changes["removed_agents"]) & set(agents)
    assert set(changes["new_agents"]) <= set(agents)
    for agent_id in changes["updated_agents"]:
        want = next(a for a in dataset.agents if a["id"] == agent_id)
        assert agents[agent_id]["login_count"] == want["login_count"]
    # Every row left is of the version the second sync activated.
    activated = [m["version"] for m in loaded.second.messages
                 if m["type"] == "ACTIVATE_VERSION" and m["stream"] == "agents"]
    assert len(activated) == 1 and {row["_sdc_table_version"] for row in agents.values()} == set(activated)

    triggers = {row["id"] for row in loaded.table("triggers", "id")}
    assert not set(changes["removed_triggers"]) & triggers
    bans = {row["id"] for row in loaded.table("bans", "id")}
    assert not set(changes["removed_bans"]) & bans and set(changes["new_bans"]) <= bans
    # A stream without a key is replaced whole, not appended to.
    assert loaded.count("routing_settings") == 1


def test_the_trigger_without_id_reaches_postgres_under_stitch_table_names(postgres, tmp_path):
    """Keyed by name (stitch_table_names), the trigger a real account recorded without an id is a row like
    the others, in the table Stitch's integration names zopim_triggers."""
    target = tool("target-postgres", "target-postgres")
    database, target_config = postgres.fresh_target("stitch", SCHEMA)
    dataset = small_dataset(seed=53)
    dataset.add_real_shapes()
    with Simulator(dataset, token=TOKEN) as sim:
        run_pipeline(make_config(sim, stitch_table_names=True), target, target_config, workdir=tmp_path).assert_ok()
    rows = postgres.rows(f'SELECT name, id FROM {SCHEMA}."zopim_triggers"', database)
    assert {r["name"] for r in rows} == {t["name"] for t in dataset.served("triggers")}
    assert {r["id"] for r in rows if r["name"] == dataset.real_shapes["trigger_without_id"]} == {None}


# -- ids that join (issue 19, item 4) ----------------------------------------------------------------------
def _pipe(config, catalog, target, target_config, workdir):
    """tap --catalog | target, for a run whose catalog is not the discovered one (run_pipeline takes none)."""
    import json
    import shlex
    import subprocess

    from tests.harness import tap_command

    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "target_config.json").write_text(json.dumps(target_config))
    tap = shlex.join(tap_command(config, catalog=catalog, workdir=str(workdir)))
    subprocess.run(["bash", "-c", f"{tap} 2>tap.err | {shlex.quote(target)} --config target_config.json "
                                  ">target.out 2>target.err; echo \"${PIPESTATUS[0]} ${PIPESTATUS[1]}\" >status"],
                   cwd=workdir, timeout=300, check=True)
    assert (workdir / "status").read_text().split() == ["0", "0"], (workdir / "target.err").read_text()[-4000:]


def _column_types(postgres, database, pairs):
    """PostgreSQL's name of each column's type: int8 (bigint), text, _int8 (bigint[]), _text (text[])."""
    rows = postgres.rows(f"""SELECT table_name, column_name, udt_name FROM information_schema.columns
                             WHERE table_schema = '{SCHEMA}'""", database)
    types = {(r["table_name"], r["column_name"]): r["udt_name"] for r in rows}
    return {pair: types.get(pair) for pair in pairs}


JOIN_COLUMNS = [("chats", "department_id"), ("departments", "id"), ("conversions", "goal_id"), ("goals", "id"),
                ("department_events", "department_id"), ("agent_events", "agent_id"), ("agent_timeline", "agent_id"),
                ("agents", "id")]


@pytest.fixture(scope="module")
def joined(postgres, tmp_path_factory):
    """Every stream of an account with the ids real accounts send as strings, loaded by target-postgres."""
    target = tool("target-postgres", "target-postgres")
    database, target_config = postgres.fresh_target("joins", SCHEMA)
    dataset = small_dataset(seed=57)
    dataset.add_real_shapes()
    with Simulator(dataset, token=TOKEN) as sim:
        run_pipeline(make_config(sim), target, target_config, workdir=tmp_path_factory.mktemp("joins")).assert_ok()
    return postgres, database, dataset


def test_ids_that_join_land_as_bigint_like_the_keys_they_name(joined):
    postgres, database, _ = joined
    assert set(_column_types(postgres, database, JOIN_COLUMNS).values()) == {"int8"}
    arrays = [("chats", "agent_ids"), ("chats", "skills_requested"), ("agents", "departments")]
    assert set(_column_types(postgres, database, arrays).values()) == {"_int8"}


def test_chats_per_department_and_first_response_are_plain_joins(joined):
    """chats.department_id = departments.id, no cast: the report a user writes first."""
    postgres, database, dataset = joined
    got = postgres.rows(f"""
        SELECT d.id, d.name, count(*) AS chats, avg((c.response_time->>'first')::numeric) AS first_response
        FROM {SCHEMA}.chats c JOIN {SCHEMA}.departments d ON c.department_id = d.id
        GROUP BY d.id, d.name ORDER BY d.id""", database)
    departments = {d["id"]: d["name"] for d in dataset.served("departments")}
    want = {}
    for chat in dataset.served("chats"):
        if isinstance(chat, dict) and chat.get("department_id") is not None and \
                int(chat["department_id"]) in departments:
            firsts = want.setdefault(int(chat["department_id"]), [0, []])
            firsts[0] += 1
            first = (chat.get("response_time") or {}).get("first")
            if first is not None:
                firsts[1].append(first)
    assert len(got) >= 2
    assert {r["id"]: (r["name"], r["chats"]) for r in got} == \
        {i: (departments[i], n) for i, (n, _) in sorted(want.items())}
    for row in got:
        firsts = want[row["id"]][1]
        assert round(float(row["first_response"]), 6) == round(sum(firsts) / len(firsts), 6)


def test_conversions_join_goals_without_a_cast(joined):
    postgres, database, dataset = joined
    got = postgres.rows(f"""SELECT g.id, count(*) AS n FROM {SCHEMA}.conversions v
                            JOIN {SCHEMA}.goals g ON v.goal_id = g.id GROUP BY g.id""", database)
    want = {}
    for conversion in dataset.served("conversions"):
        want[int(conversion["goal_id"])] = want.get(int(conversion["goal_id"]), 0) + 1
    goals = {g["id"] for g in dataset.served("goals")}
    assert {r["id"]: r["n"] for r in got} == {g: n for g, n in want.items() if g in goals} and got


def test_a_table_loaded_by_1x_keeps_text_until_the_changelogs_alter_table(postgres, tmp_path):
    """What CHANGELOG 2.0.0 tells a target-postgres user: a 1.x column (declared integer or string) is text;
    2.0.0's integer schema does not narrow it (the target keeps the wider type), the ALTER TABLE does, and
    later syncs keep bigint."""
    from tap_zendesk_chat.discover import build_catalog
    from tests.harness import catalog_selecting

    target = tool("target-postgres", "target-postgres")
    database, target_config = postgres.fresh_target("upgrade", SCHEMA)
    dataset = small_dataset(seed=59)
    old = catalog_selecting(build_catalog(), ["chats", "departments"])
    chats = next(e for e in old["streams"] if e["tap_stream_id"] == "chats")
    properties = chats["schema"]["properties"]  # as 1.x declared them
    properties["department_id"]["type"] = ["null", "integer", "string"]
    properties["agent_ids"]["items"]["type"] = properties["skills_requested"]["items"]["type"] = \
        ["null", "integer", "string"]
    new = catalog_selecting(build_catalog(), ["chats", "departments"])
    columns = [("chats", "department_id"), ("chats", "agent_ids"), ("chats", "skills_requested")]
    as_1x = dict(zip(columns, ["text", "_text", "_text"]))
    with Simulator(dataset, token=TOKEN) as sim:
        _pipe(make_config(sim), old, target, target_config, tmp_path / "1x")
        assert _column_types(postgres, database, columns) == as_1x
        _pipe(make_config(sim), new, target, target_config, tmp_path / "2.0.0")
        assert _column_types(postgres, database, columns) == as_1x
        postgres.psql(f"ALTER TABLE {SCHEMA}.chats ALTER COLUMN department_id TYPE BIGINT USING department_id::BIGINT, "
                      "ALTER COLUMN agent_ids TYPE BIGINT[] USING agent_ids::BIGINT[], "
                      "ALTER COLUMN skills_requested TYPE BIGINT[] USING skills_requested::BIGINT[]", database)
        _pipe(make_config(sim), new, target, target_config, tmp_path / "after")
    assert _column_types(postgres, database, columns) == dict(zip(columns, ["int8", "_int8", "_int8"]))
    joined = postgres.psql(f"SELECT count(*) FROM {SCHEMA}.chats c JOIN {SCHEMA}.departments d "
                           "ON c.department_id = d.id", database)
    assert int(joined) == sum(1 for c in dataset.served("chats") if c.get("department_id") is not None)
