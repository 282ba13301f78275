"""Discovery and every stream's records against the simulator's data (issue 2)."""
import json
import math

import pytest

from tap_zendesk_chat.streams import STREAMS
from tap_zendesk_chat.discover import build_catalog
from tests.harness import TOKEN, catalog_selecting, make_config, run_tap, validate_records
from tests.reference_transform import reference_transform
from tap_zendesk_chat.schemas import load_schema
from tests.integration.expected import EXPORTS, expected_records, utc_z
from tests.simulator import Dataset, Simulator


@pytest.fixture(scope="module")
def full_sync():
    """One full sync of every stream (no catalog) against a default dataset, shared by this module."""
    dataset = Dataset.generate(seed=11, chats=1200, offline_msgs=250, agents=230, ip_bans=130, visitor_bans=70)
    with Simulator(dataset, token=TOKEN) as sim:
        result = run_tap(make_config(sim)).assert_ok()
        yield sim, dataset, result


@pytest.mark.parametrize("stream", list(STREAMS))
def test_every_stream_delivers_exactly_the_api_data(full_sync, stream):
    _sim, dataset, result = full_sync
    got = result.records(stream)
    schema = load_schema(stream)
    want = [reference_transform(r, schema, (), stream) for r in expected_records(dataset, stream)]
    assert len(got) == len(want)
    if STREAMS[stream].replication_method == "INCREMENTAL":
        key = STREAMS[stream].key_properties
        got = sorted(got, key=lambda r: json.dumps([r[k] for k in key]))
        want = sorted(want, key=lambda r: json.dumps([r[k] for k in key]))
    assert got == want


def test_records_match_their_schema_and_keys(full_sync):
    _sim, _dataset, result = full_sync
    validate_records(result)
    schemas = result.schemas()
    assert set(schemas) == set(STREAMS)
    for name, stream in STREAMS.items():
        assert schemas[name]["key_properties"] == list(stream.key_properties)
        for record in result.records(name):
            assert all(record.get(k) is not None for k in stream.key_properties)


def test_unknown_fields_are_kept(full_sync):
    _sim, _dataset, result = full_sync
    chats = result.records("chats")
    schema_fields = set(result.schemas()["chats"]["schema"]["properties"])
    unknown = {f for chat in chats for f in chat} - schema_fields
    assert unknown, "the simulator sends fields no schema lists; they must reach the output"


def test_odd_timestamps_are_normalised_to_utc_z(full_sync):
    """Session dates, "+00:00Z" ones included, come out as the same instant in UTC with Z."""
    _sim, dataset, result = full_sync
    served = {c["id"]: c for c in expected_records(dataset, "chats") if isinstance(c, dict)}
    odd = 0
    for chat in result.records("chats"):
        for field in ("start_date", "end_date"):
            raw = (served[chat["id"]].get("session") or {}).get(field)
            value = (chat.get("session") or {}).get(field)
            if raw is None:
                assert value is None
                continue
            assert value == utc_z(raw), (chat["id"], field, raw)
            odd += raw.endswith("+00:00Z")
    assert odd >= 50, "the dataset sent too few '+00:00Z' dates to test their normalisation"


def test_request_counts_are_the_minimum(full_sync):
    sim, dataset, result = full_sync
    n_chats = len(dataset.chats)
    assert sim.count("incremental/chats") == math.ceil((n_chats + 1) / 1000)
    assert sim.count("agents") == math.ceil((len(dataset.agents) + 1) / 100)
    assert sim.count("bans") == math.ceil((sum(len(v) for v in dataset.bans.values()) + 1) / 500)
    for path in ("departments", "goals", "roles", "skills", "shortcuts", "triggers", "routing_settings/account",
                 "incremental/agent_timeline", "account"):
        assert sim.count(path) == 1, path


def test_state_is_clean_after_a_full_sync(full_sync):
    _sim, _dataset, result = full_sync
    state = result.last_state
    assert state["currently_syncing"] is None
    assert set(state["bookmarks"]) == set(EXPORTS)
    assert result.messages[-1]["type"] == "STATE"


def test_discovery_lists_every_stream_with_standard_metadata(discovered):
    entries = {e["tap_stream_id"]: e for e in discovered["streams"]}
    assert set(entries) == set(STREAMS)
    for name, stream in STREAMS.items():
        meta = {tuple(m["breadcrumb"]): m["metadata"] for m in entries[name]["metadata"]}
        assert meta[()]["table-key-properties"] == list(stream.key_properties)
        if stream.replication_method == "FULL_TABLE":
            assert meta[()]["forced-replication-method"] == "FULL_TABLE"
        else:
            assert meta[()]["valid-replication-keys"] == [stream.replication_key]
            assert meta[("properties", stream.replication_key)]["inclusion"] == "automatic"
        for key in stream.key_properties:
            assert meta[("properties", key)]["inclusion"] == "automatic"


def test_discovery_leaves_account_out_for_integrated_accounts(simulator):
    sim = simulator(integrated_account=True)
    result = run_tap(make_config(sim), args=["--discover"], parse=False)
    assert result.returncode == 0, result.stderr
    names = {e["stream"] for e in json.loads(result.stdout)["streams"]}
    assert "account" not in names and "chats" in names
    assert "403" in result.stderr


def test_sync_skips_account_on_403_and_goes_on(simulator):
    sim = simulator(integrated_account=True)
    result = run_tap(make_config(sim)).assert_ok()
    assert result.records("account") == []
    assert len(result.records("agents")) == len(sim.dataset.agents)
    assert "account: skipped" in result.stderr


def test_field_selection_is_honoured_in_schema_and_records(sim, config, discovered):
    catalog = catalog_selecting(discovered, {"chats", "agents"},
                                deselect_fields={"chats": ["history", "session"], "agents": ["email"]})
    result = run_tap(config, catalog=catalog).assert_ok()
    assert result.streams == {"chats", "agents"}
    schemas = result.schemas()
    assert "history" not in schemas["chats"]["schema"]["properties"]
    assert "email" not in schemas["agents"]["schema"]["properties"]
    assert all("history" not in c and "session" not in c for c in result.records("chats"))
    assert all("email" not in a for a in result.records("agents"))
    assert all("id" in c and "update_timestamp" in c for c in result.records("chats"))
    assert sim.count("departments") == 0


def test_a_catalog_marking_two_streams_selected_syncs_only_those(sim, config, discovered):
    """The others are left unmarked (no `selected` at all): as with the classic tap, they are not synced, and
    the log says which streams will be and why."""
    catalog = json.loads(json.dumps(discovered))
    for entry in catalog["streams"]:
        for item in entry["metadata"]:
            if item["breadcrumb"] == [] and entry["tap_stream_id"] in ("departments", "goals"):
                item["metadata"]["selected"] = True
    sim.clear_requests()  # discovery's
    result = run_tap(config, catalog=catalog).assert_ok()
    assert result.streams == {"departments", "goals"}
    assert "The catalog marks streams selected: only those are synced" in result.stderr
    assert "Streams to sync (2): departments, goals" in result.stderr
    assert {r["path"] for r in sim.requests} == {"departments", "goals"}


def test_properties_is_the_legacy_name_of_catalog(sim, config, discovered, tmp_path):
    path = tmp_path / "properties.json"
    path.write_text(json.dumps(catalog_selecting(discovered, {"departments"})))
    result = run_tap(config, args=["--properties", str(path)]).assert_ok()
    assert result.streams == {"departments"}


def test_legacy_zopim_url_style_works(simulator):
    sim = simulator()
    result = run_tap(make_config(sim, base_url=sim.legacy_base_url)).assert_ok()
    assert len(result.records("chats")) == len(sim.dataset.chats)
    assert all(r["raw_path"].startswith("/api/v2/") and not r["raw_path"].startswith("/api/v2/chat/")
               for r in sim.requests)


@pytest.mark.parametrize("agents", [0, 1, 100, 200, 250])
def test_agents_paging_edges(simulator, agents):
    sim = simulator(Dataset.generate(seed=5, chats=5, offline_msgs=0, agents=agents, timeline_entries=0))
    config = make_config(sim)
    catalog = catalog_selecting(build_catalog(), {"agents"})
    result = run_tap(config, catalog=catalog).assert_ok()
    assert [a["id"] for a in result.records("agents")] == [a["id"] for a in sim.dataset.agents]
    assert sim.count("agents") == math.ceil((agents + 1) / 100)


@pytest.mark.parametrize("mode", ["total", "per_array"])
@pytest.mark.parametrize("ip_bans,visitor_bans", [(40, 3), (0, 25), (17, 17), (30, 0)])
def test_bans_split_across_two_arrays(simulator, mode, ip_bans, visitor_bans):
    dataset = Dataset.generate(seed=9, chats=5, offline_msgs=0, agents=3, ip_bans=ip_bans,
                               visitor_bans=visitor_bans, timeline_entries=0)
    sim = simulator(dataset, bans_limit_mode=mode)
    config = make_config(sim, bans_page_limit=7)
    catalog = catalog_selecting(build_catalog(), {"bans", "banned_ips", "banned_visitors"})
    result = run_tap(config, catalog=catalog).assert_ok()
    ips = [b["id"] for b in dataset.bans["ip_address"]]
    visitors = [b["id"] for b in dataset.bans["visitor"]]
    assert [b["id"] for b in result.records("bans")] == sorted(ips + visitors)
    assert [b["id"] for b in result.records("banned_ips")] == ips
    assert [b["id"] for b in result.records("banned_visitors")] == visitors
    # one walk serves the three streams
    assert sim.count("bans") <= math.ceil((len(ips) + len(visitors) + 1) / 7) + (len(ips) + len(visitors)) // 7 + 1
