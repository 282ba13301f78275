"""What real accounts send, not what our simulator assumed (issue 10): recorded shapes, arbitrary values in
any field, and same-second orders other than the ids'. No value may kill the run, lose a record, or make
a RECORD that its SCHEMA refuses (checked with Draft 4 and Draft 7 validators, date-time formats included).

Expected records come from tests/reference_transform.py (which imports nothing from the tap) applied to
what the simulator serves."""
import datetime
import json
import math

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tap_zendesk_chat.discover import build_catalog
from tap_zendesk_chat.schemas import load_schema
from tap_zendesk_chat.streams import STREAMS
from tests.harness import TOKEN, catalog_selecting, make_config, run_tap, validate_records
from tests.integration.expected import expected_records, utc_z
from tests.reference_transform import reference_transform
from tests.simulator import Dataset, Simulator

CHATS_ONLY = catalog_selecting(build_catalog(), {"chats"})
SCHEMAS = {name: load_schema(name) for name in STREAMS}


def expected(dataset, stream):
    """The records the tap must write for a stream: the reference transform of what is served, records
    without their key left out."""
    out = [reference_transform(json.loads(json.dumps(r)), SCHEMAS[stream], (), stream, STREAMS[stream].key_properties)
           for r in expected_records(dataset, stream)]
    return [r for r in out if r is not None]


def canonical(records):
    return sorted(json.dumps(r, sort_keys=True) for r in records)


def assert_exact(result, dataset, streams=STREAMS):
    for stream in streams:
        assert canonical(result.records(stream)) == canonical(expected(dataset, stream)), stream


# -- recorded shapes ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def real():
    dataset = Dataset.generate(seed=44, chats=400, offline_msgs=60, agents=130, timeline_entries=300,
                               real_shapes=True)
    with Simulator(dataset, token=TOKEN) as sim:
        result = run_tap(make_config(sim, agents_page_limit=50, bans_page_limit=60)).assert_ok()
    return dataset, result


def test_every_stream_is_exact_and_valid_on_real_shapes(real):
    dataset, result = real
    validate_records(result)
    assert_exact(result, dataset)


def test_a_trigger_without_id_is_reported_and_every_other_record_and_stream_goes_on(real):
    dataset, result = real
    name = dataset.real_shapes["trigger_without_id"]
    assert name not in {t["name"] for t in result.records("triggers")}
    assert len(result.records("triggers")) == len(dataset.triggers) - 1
    warnings = [line for line in result.stderr.splitlines() if line.startswith("WARNING triggers:")]
    assert len(warnings) == 1 and "1 records could not be written" in warnings[0] and name in warnings[0]
    summary = next(line for line in result.stderr.splitlines() if line.split()[1:3] == ["triggers", "done"])
    assert summary.split()[-1] == "1"
    assert result.streams == set(STREAMS)


def test_numeric_start_times_are_read_as_timestamps(real):
    dataset, result = real
    timeline = result.records("agent_timeline")
    assert len(timeline) == len(dataset.agent_timeline)
    for name in ("timeline_start_time_seconds", "timeline_start_time_micros"):
        agent_id, number = dataset.real_shapes[name]
        micros = number if number > 10 ** 14 else number * 1_000_000
        when = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(microseconds=micros)
        text = when.strftime("%Y-%m-%dT%H:%M:%S") + (f".{when.microsecond:06d}" if when.microsecond else "") + "Z"
        assert [r for r in timeline if r["agent_id"] == agent_id and r["start_time"] == text], name


def test_no_ban_is_dropped_and_the_array_decides_the_table(real):
    dataset, result = real
    odd_type, no_type = dataset.real_shapes["ban_type_I"], dataset.real_shapes["ban_type_missing"]
    ips = {b["id"]: b for b in result.records("banned_ips")}
    visitors = {b["id"]: b for b in result.records("banned_visitors")}
    bans = {b["id"]: b for b in result.records("bans")}
    assert ips[odd_type]["type"] == "I" and odd_type not in visitors and bans[odd_type]["type"] == "I"
    assert visitors[no_type]["type"] == "visitor" and no_type not in ips
    assert set(bans) == set(ips) | set(visitors)
    assert len(bans) == len(dataset.bans["ip_address"]) + len(dataset.bans["visitor"])


def test_chats_of_real_shapes_keep_their_values(real):
    dataset, result = real
    chats = {c["id"]: c for c in result.records("chats")}
    history = chats[dataset.real_shapes["chat_long_history"]]["history"]
    assert len(history) >= 20
    assert ["Billing", "VIP"] in [event.get("skills_name") for event in history]
    assert {type(event["msg_id"]) for event in history if event.get("msg_id") is not None} == {int, str}
    webpath = chats[dataset.real_shapes["chat_webpath_arrays"]]["webpath"]
    pairs = [item["values"] for item in webpath if "values" in item]
    assert pairs and all(isinstance(p, list) for p in pairs)
    assert any(isinstance(p[0], int) and p[1].startswith("http") for p in pairs)
    served = {c["id"]: c for c in expected_records(dataset, "chats") if isinstance(c, dict)}

    def times(conversions):
        return [(c["timestamp"], c["attribution"]["chat_timestamp"]) for c in conversions]

    conversions = chats[dataset.real_shapes["chat_conversions"]]["conversions"]
    sent = times(served[dataset.real_shapes["chat_conversions"]]["conversions"])
    assert conversions and times(conversions) == [(utc_z(a), utc_z(b)) for a, b in sent]
    offline, sent = (c[dataset.real_shapes["offline_msg_odd_dates"]] for c in (chats, served))
    assert offline["type"] == "offline_msg" and sent["session"]["start_date"].endswith("+00:00Z")
    for field in ("start_date", "end_date"):  # the same instant, in UTC with Z
        assert offline["session"][field] == utc_z(sent["session"][field])
    strings = chats[dataset.real_shapes["chat_string_types"]]
    sent = served[dataset.real_shapes["chat_string_types"]]
    assert sent["agent_ids"] and all(isinstance(a, str) for a in sent["agent_ids"])
    # agent ids sent as strings land as integers, like agents.id (issue 19, item 4)
    assert strings["unread"] is True and strings["agent_ids"] == [int(a) for a in sent["agent_ids"]]
    assert [e["agent_id"] for e in strings["engagements"]] == [int(e["agent_id"]) for e in sent["engagements"]]
    assert not any("_unexpected_values" in c for c in chats.values()), "a real shape did not fit its schema"


def test_account_and_agents_of_real_shapes(real):
    dataset, result = real
    (account,) = result.records("account")
    assert "unlimited" in account["plan"].values()
    agents = {a["id"]: a for a in result.records("agents")}
    assert agents[dataset.real_shapes["agent_int_enabled"]]["enabled"] is False


# -- the API's order within a second is its own ------------------------------------------------------------------
@pytest.mark.parametrize("order", ["reversed", "scrambled"])
@pytest.mark.parametrize("inclusive", [False, True], ids=["exclusive start_id", "inclusive start_id"])
def test_chats_sharing_a_second_in_the_apis_own_order_sync_exactly(simulator, order, inclusive):
    dataset = Dataset.generate(seed=2, chats=300, offline_msgs=0, same_second_chats=2200, timeline_entries=0,
                               same_second_order=order)
    sim = simulator(dataset, start_id_inclusive=inclusive)
    first = run_tap(make_config(sim), catalog=CHATS_ONLY, timeout=120).assert_ok()
    ids = [c["id"] for c in first.records("chats")]
    assert len(ids) == len(set(ids)) == 2500 and set(ids) == set(dataset.chat_ids())
    assert sim.count("incremental/chats") == math.ceil((2500 + 1) / 1000)

    changes = dataset.mutate(seed=5)
    changed = set(changes["updated_chats"]) | set(changes["new_chats"]) | set(changes["deleted_chats"])
    second = run_tap(make_config(sim), catalog=CHATS_ONLY, state=first.last_state, timeout=120).assert_ok()
    got = [c["id"] for c in second.records("chats")]
    assert set(got) == changed and len(got) == len(changed)
    third = run_tap(make_config(sim), catalog=CHATS_ONLY, state=second.last_state).assert_ok()
    assert third.records("chats") == []


# -- any value in any field -------------------------------------------------------------------------------------
SCALARS = (st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats(allow_nan=False, allow_infinity=False)
           | st.text(max_size=10) | st.sampled_from(["2017-04-24T12:43:37+00:00Z", "unlimited", "0", "", "NaN"]))
SCALARS |= st.sampled_from(["line\x85break", "sep\u2028arator", "tab\there", "quote\"d", "é ü 漢"])
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8)
# Which record of a stream a change goes to (by index), and the streams whose ids page the walk: a
# different integer id there is a different record, not an odd value.
# The simulator's tables: one per stream, but the bans streams share the two arrays of /bans.
TABLE_OF = {"bans": None, "banned_ips": "bans.ip_address", "banned_visitors": "bans.visitor"}
TABLES = tuple(TABLE_OF.get(name, name) for name in STREAMS if TABLE_OF.get(name, name))
ID_PAGED = tuple(TABLE_OF.get(name, name) for name, stream in STREAMS.items() if hasattr(stream, "page_limit_setting")
                 and TABLE_OF.get(name, name))
SCHEMA_OF = {table: name for name, table in TABLE_OF.items() if table}


def field_paths(schema, prefix=(), depth=0):
    """Every declared field path of a schema (array items as index 0), and a few undeclared ones."""
    paths = []
    for key, sub in (schema.get("properties") or {}).items():
        path = prefix + (key,)
        paths.append(path)
        if depth < 2 and isinstance(sub, dict):
            if isinstance(sub.get("properties"), dict):
                paths += field_paths(sub, path, depth + 1)
            items = sub.get("items")
            if isinstance(items, dict):
                paths.append(path + (0,))
                if isinstance(items.get("properties"), dict):
                    paths += field_paths(items, path + (0,), depth + 1)
    return paths + [prefix + ("brand_new_field",)]


@st.composite
def changes(draw):
    out = []
    for _ in range(draw(st.integers(8, 24))):
        table = draw(st.sampled_from(TABLES))
        schema = SCHEMAS[SCHEMA_OF.get(table, table)]
        path = draw(st.sampled_from(field_paths(schema)))
        value = draw(JSON)
        if table in ID_PAGED and path == ("id",) and type(value) is int:
            value = str(value)
        out.append((table, draw(st.integers(0, 4)), list(path), value))
    return out


# Each example is a whole sync; a failure is reported as drawn (shrinking would take minutes).
@settings(max_examples=6, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(edits=changes())
def test_any_value_in_any_field_of_any_stream(edits):
    dataset = Dataset.generate(seed=9, chats=25, offline_msgs=5, agents=12, ip_bans=6, visitor_bans=6, departments=3,
                               goals=2, roles=2, skills=2, shortcuts=3, triggers=3, timeline_entries=15,
                               history_events=3, real_shapes=True)
    for table, index, path, value in edits:
        try:
            dataset.set_field(table, index, path, value, by="index")
        except (IndexError, KeyError, TypeError, ValueError):
            pass  # a path through a value that is not a container of that kind: nothing to set
    with Simulator(dataset, token=TOKEN) as sim:
        result = run_tap(make_config(sim, agents_page_limit=5, bans_page_limit=5), timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    validate_records(result)
    assert_exact(result, dataset)


# -- one stream failing for good ---------------------------------------------------------------------------------
def test_streams_failing_for_good_do_not_stop_the_others(simulator):
    """goals answers 404 and agents 403 for good: both are reported, agents keeps the bookmark it came with
    (the next run resumes it), every other stream is synced, and the exit code says the run was not whole."""
    dataset = Dataset.generate(seed=5, chats=50, offline_msgs=5, timeline_entries=20)
    sim = simulator(dataset)
    sim.inject("500", times=100, path="goals", status=404)
    sim.inject("500", times=100, path="agents", status=403)
    state = {"state_version": 2, "bookmarks": {"agents": {"version": 1700000000000, "since_id": 360000000000}}}
    result = run_tap(make_config(sim), state=state)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    emitting = {name for name in STREAMS if expected_records(dataset, name)}  # 50 chats have no conversions
    assert result.streams == emitting - {"goals", "agents"}
    assert_exact(result, dataset, set(STREAMS) - {"goals", "agents"})
    critical = [line for line in result.stderr.splitlines() if line.startswith("CRITICAL")]
    assert len(critical) == 1 and "2 stream(s) failed" in critical[0]
    assert "agents" in critical[0] and "goals" in critical[0] and "HTTP 404" in critical[0]
    assert result.last_state["bookmarks"]["agents"] == state["bookmarks"]["agents"]
    assert "goals" not in result.last_state["bookmarks"]
    assert sim.count("goals") == 1 and sim.count("agents") == 1  # a 4xx is not retried
    validate_records(result)


def test_account_403_stays_a_normal_skip(simulator):
    sim = simulator(Dataset.generate(seed=5, chats=20, offline_msgs=2, timeline_entries=5), integrated_account=True)
    result = run_tap(make_config(sim)).assert_ok()
    assert result.streams == set(STREAMS) - {"account"}
    assert "account: skipped" in result.stderr


def test_a_withheld_record_is_kept_in_the_rejects_file_beside_the_state(tmp_path):
    """No record is only logged: the trigger a real account sent without an id (keyed by id, it cannot be
    upserted) lands in tap-zendesk-chat-rejects.jsonl beside the state file, as sent, named in the log."""
    dataset = Dataset.generate(seed=44, chats=20, offline_msgs=2, agents=10, timeline_entries=10, real_shapes=True)
    name = dataset.real_shapes["trigger_without_id"]
    state = tmp_path / "state.json"
    state.write_text("{}")
    with Simulator(dataset, token=TOKEN) as sim:
        result = run_tap(make_config(sim), args=["--state", str(state)]).assert_ok()
    rejects = tmp_path / "tap-zendesk-chat-rejects.jsonl"
    lines = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert [(r["stream"], r["record"]["name"]) for r in lines] == [("triggers", name)]
    assert "has no 'id'" in lines[0]["reason"] and "id" not in lines[0]["record"]
    assert str(rejects) in result.stderr
