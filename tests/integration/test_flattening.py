"""flattening_enabled: a sync writes flattened SCHEMAs and RECORDs (visitor__email, response_time__first, arrays as
JSON text), every record fits its SCHEMA, `_unexpected_values` names the flattened columns, discovery and field
selection use flattened names (an unflattened catalog still works), and with the setting off nothing changes."""
import inspect
import json

import pytest

from tap_zendesk_chat.discover import build_catalog
from tap_zendesk_chat.flatten import Flattener
from tap_zendesk_chat.schemas import load_schema
from tap_zendesk_chat.streams import STREAMS
from tap_zendesk_chat.sync import Sync
from tests.harness import catalog_selecting, make_config, run_tap, validate_records
from tests.simulator import Dataset

# The flattened SCHEMA is SelectedStream.schema; the RecordPlan must conform to the unflattened record_schema.
needs_sync = pytest.mark.xfail("record_schema" not in inspect.getsource(Sync._begin), strict=True,
                               reason="sync.py builds the RecordPlan from selected.schema, not selected.record_schema")
FLAT = {"flattening_enabled": True}


@pytest.fixture(scope="module")
def dataset():
    data = Dataset.generate(seed=21, chats=40, offline_msgs=5, agents=8, timeline_entries=10, history_events=3)
    chats = data.served("chats")
    with_history = next(c for c in chats if c.get("history"))
    data.set_field("chats", with_history["id"], ["visitor", "email"], 5, by="id")
    data.set_field("chats", with_history["id"], ["response_time", "first"], "slow", by="id")
    data.set_field("chats", with_history["id"], ["history", 1, "department_id"], "seven", by="id")
    data.misfit_id = with_history["id"]
    return data


@pytest.fixture
def sim(simulator, dataset):
    return simulator(dataset)


def without_times(messages):
    """Messages less what depends on the time of the run (time_extracted, full-table versions)."""
    out = []
    for message in messages:
        message = {k: v for k, v in message.items() if k not in ("time_extracted", "version")}
        if message["type"] == "STATE":
            bookmarks = message["value"].get("bookmarks", {})
            message["value"] = dict(message["value"], bookmarks={
                name: {k: v for k, v in mark.items() if k != "version"} for name, mark in bookmarks.items()})
        out.append(message)
    return out


def flattened_names(message):
    return set(message["schema"]["properties"])


@needs_sync
def test_a_flattened_sync_fits_its_schemas_and_is_the_flattened_form(sim, dataset):
    plain = run_tap(make_config(sim)).assert_ok()
    flat = run_tap(make_config(sim, **FLAT)).assert_ok()
    validate_records(flat)
    schemas = flat.schemas()
    assert {"visitor__email", "visitor__name", "response_time__first", "session__city", "count__total"} <= \
        flattened_names(schemas["chats"])
    assert not {"visitor", "response_time", "session"} & flattened_names(schemas["chats"])
    assert schemas["chats"]["key_properties"] == ["id"] and schemas["chats"]["bookmark_properties"] == ["update_timestamp"]
    # Every stream, the child streams of chats too: each record is its unflattened form, flattened.
    assert flat.streams == plain.streams
    for stream in plain.streams:
        flattener = Flattener(load_schema(stream), 10)
        assert schemas[stream]["schema"] == flattener.schema, stream
        assert flat.records(stream) == [flattener.flatten_record(r) for r in plain.records(stream)], stream
    chats = {r["id"]: r for r in flat.records("chats")}
    assert any(r.get("visitor__email") for r in chats.values())
    assert all(isinstance(r.get("history", ""), (str, type(None))) for r in chats.values())
    misfit = chats[dataset.misfit_id]
    assert misfit["visitor__email"] is None and misfit["response_time__first"] is None
    assert json.loads(misfit["_unexpected_values"]) == {"visitor__email": 5, "response_time__first": "slow",
                                                        "history[1].department_id": "seven"}
    assert flat.last_state == plain.last_state


def test_discovery_names_flattened_fields(sim):
    result = run_tap(make_config(sim, **FLAT), args=["--discover"], parse=False)
    assert result.returncode == 0, result.stderr
    chats = next(e for e in json.loads(result.stdout)["streams"] if e["tap_stream_id"] == "chats")
    assert "visitor__email" in chats["schema"]["properties"] and "visitor" not in chats["schema"]["properties"]
    crumbs = {tuple(m["breadcrumb"]): m["metadata"] for m in chats["metadata"]}
    assert crumbs[("properties", "visitor__email")]["inclusion"] == "available"
    assert crumbs[("properties", "id")]["inclusion"] == "automatic"
    assert crumbs[("properties", "update_timestamp")]["inclusion"] == "automatic"


@needs_sync
def test_deselecting_a_flattened_field_drops_its_column(sim, dataset):
    catalog = catalog_selecting(build_catalog(flattening_depth=10), {"chats"},
                                deselect_fields={"chats": ("visitor__email", "id", "update_timestamp")})
    result = run_tap(make_config(sim, **FLAT), catalog=catalog).assert_ok()
    validate_records(result)
    columns = flattened_names(result.schemas()["chats"])
    assert "visitor__email" not in columns and {"visitor__name", "id", "update_timestamp"} <= columns  # keys stay
    records = {r["id"]: r for r in result.records("chats")}
    assert len(records) == 45 and not any("visitor__email" in r for r in records.values())
    assert any(r.get("visitor__name") for r in records.values())
    # the value kept for the deselected column goes with it
    assert json.loads(records[dataset.misfit_id]["_unexpected_values"]) == {
        "response_time__first": "slow", "history[1].department_id": "seven"}


@needs_sync
def test_an_unflattened_catalog_selects_flattened_columns(sim):
    catalog = catalog_selecting(build_catalog(), {"chats"}, deselect_fields={"chats": ("visitor",)})
    result = run_tap(make_config(sim, **FLAT), catalog=catalog).assert_ok()
    validate_records(result)
    columns = flattened_names(result.schemas()["chats"])
    assert not [c for c in columns if c.startswith("visitor__")] and "response_time__first" in columns
    assert not [k for r in result.records("chats") for k in r if k.startswith("visitor__")]


def test_off_changes_nothing(sim):
    catalog = catalog_selecting(build_catalog(), set(STREAMS))
    default = run_tap(make_config(sim), catalog=catalog).assert_ok()
    off = run_tap(make_config(sim, flattening_enabled=False, flattening_max_depth=1), catalog=catalog).assert_ok()
    assert without_times(off.messages) == without_times(default.messages)
    assert "visitor" in default.schemas()["chats"]["schema"]["properties"]
    assert any(isinstance(r.get("visitor"), dict) for r in default.records("chats"))
