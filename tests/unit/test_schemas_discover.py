import copy
import json

import pytest
from jsonschema import Draft4Validator
from singer import metadata as singer_metadata

from tap_zendesk_chat.discover import CatalogError, build_catalog, parse_catalog, select_all
from tap_zendesk_chat.schemas import get_metadata, load_schema
from tap_zendesk_chat.transform import RecordPlan
from tap_zendesk_chat.streams import STREAMS


def walk(node):
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


@pytest.fixture(params=list(STREAMS))
def stream(request):
    return STREAMS[request.param]


def test_schema_has_no_ref_left(stream):
    schema = load_schema(stream.name)
    assert "$ref" not in json.dumps(schema)
    assert isinstance(schema.get("properties"), dict) and schema["properties"]


def test_schema_is_valid_draft4(stream):
    Draft4Validator.check_schema(load_schema(stream.name))


def test_schema_is_open_everywhere(stream):
    """Fields the API adds must reach the target; closed schemas lost them for years."""
    closed = [node for node in walk(load_schema(stream.name))
              if isinstance(node, dict) and node.get("additionalProperties") is False]
    assert closed == []


def test_keys_and_replication_key_are_automatic_properties(stream):
    schema = load_schema(stream.name)
    mdata = singer_metadata.to_map(get_metadata(stream, schema))
    must = list(stream.key_properties) + ([stream.replication_key] if stream.replication_key else [])
    for field in must:
        assert field in schema["properties"], field
        assert mdata[("properties", field)]["inclusion"] == "automatic", field
    others = set(schema["properties"]) - set(must)
    assert all(mdata[("properties", f)]["inclusion"] == "available" for f in others)
    assert {crumb[1] for crumb in mdata if crumb} == set(schema["properties"])
    assert mdata[()]["table-key-properties"] == list(stream.key_properties)


def test_replication_metadata_matches_the_stream(stream):
    root = singer_metadata.to_map(get_metadata(stream, load_schema(stream.name)))[()]
    if stream.replication_method == "FULL_TABLE":
        assert stream.replication_key is None
        assert root["forced-replication-method"] == "FULL_TABLE"
        assert "valid-replication-keys" not in root
    else:
        assert stream.replication_method == "INCREMENTAL"
        assert root["valid-replication-keys"] == [stream.replication_key]
        assert "forced-replication-method" not in root


def test_records_of_the_reference_shape_validate():
    chat = {"id": "1704.2314815.QHgVx6SOrRuSx", "type": "chat", "update_timestamp": "2024-05-01T10:00:00Z",
            "agent_ids": ["360001"], "unread": 1, "webpath": [["a", "b"], {"from": "x", "timestamp": 1}],
            "history": [{"type": "chat.msg", "msg_id": 5, "department_id": "7"}], "new_field": {"a": 1}}
    schema = load_schema("chats")
    emitted = json.loads(RecordPlan(schema, (), STREAMS["chats"].fix_record).encode([chat])[0])  # what the tap writes
    Draft4Validator(schema).validate(emitted)
    assert emitted["unread"] is True and emitted["webpath"][0] == {"values": ["a", "b"]}
    timeline = {"agent_id": 360786799676, "start_time": "2020-12-14T04:08:32.301292Z", "status": "invisible",
                "duration": 459.213926, "engagement_count": 0}
    Draft4Validator(load_schema("agent_timeline")).validate(timeline)


def catalog():
    return copy.deepcopy(build_catalog())


def entry(raw, name):
    return next(e for e in raw["streams"] if e["tap_stream_id"] == name)


def set_root(raw, name, **values):
    for item in entry(raw, name)["metadata"]:
        if item["breadcrumb"] == []:
            item["metadata"].update(values)


def test_discovered_catalog_selects_everything():
    chosen = parse_catalog(catalog())
    assert [s.name for s in chosen] == list(STREAMS)
    assert all(s.deselected == () for s in chosen)
    assert [s.name for s in select_all()] == list(STREAMS)


def test_unknown_stream_is_refused():
    raw = catalog()
    raw["streams"].append({"tap_stream_id": "tickets", "schema": {"properties": {}}, "metadata": []})
    with pytest.raises(CatalogError, match="'tickets'"):
        parse_catalog(raw)


def test_duplicated_stream_is_refused():
    raw = catalog()
    raw["streams"].append(copy.deepcopy(entry(raw, "agents")))
    with pytest.raises(CatalogError, match="'agents' twice"):
        parse_catalog(raw)


@pytest.mark.parametrize("metadata", [{"breadcrumb": []}, [{"metadata": {}}], [{"breadcrumb": "", "metadata": {}}],
                                      [{"breadcrumb": [], "metadata": []}], ["x"]])
def test_bad_metadata_is_refused(metadata):
    raw = catalog()
    entry(raw, "agents")["metadata"] = metadata
    with pytest.raises(CatalogError, match="metadata for 'agents'"):
        parse_catalog(raw)


@pytest.mark.parametrize("raw", [[], {}, {"streams": {}}, {"streams": ["x"]}])
def test_catalog_shape_is_checked(raw):
    with pytest.raises(CatalogError):
        parse_catalog(raw)


def test_deselected_field_leaves_the_schema_and_is_listed():
    raw = catalog()
    for item in entry(raw, "chats")["metadata"]:
        if item["breadcrumb"] in (["properties", "comment"], ["properties", "history"]):
            item["metadata"]["selected"] = False
    chats = next(s for s in parse_catalog(raw) if s.name == "chats")
    assert set(chats.deselected) == {"comment", "history"}
    assert "comment" not in chats.schema["properties"] and "history" not in chats.schema["properties"]
    assert "visitor" in chats.schema["properties"]
    assert "properties" in load_schema("chats") and "comment" in load_schema("chats")["properties"]


def test_key_and_replication_key_cannot_be_deselected():
    raw = catalog()
    for item in entry(raw, "chats")["metadata"]:
        if item["breadcrumb"] in (["properties", "id"], ["properties", "update_timestamp"]):
            item["metadata"].update(selected=False, inclusion="available")
    chats = next(s for s in parse_catalog(raw) if s.name == "chats")
    assert "id" in chats.schema["properties"] and "update_timestamp" in chats.schema["properties"]
    assert chats.deselected == ()


def test_unselected_stream_is_left_out():
    raw = catalog()
    set_root(raw, "agents", selected=False)
    assert "agents" not in [s.name for s in parse_catalog(raw)]


def test_full_table_is_accepted_for_chats():
    raw = catalog()
    set_root(raw, "chats", **{"replication-method": "FULL_TABLE"})
    chats = next(s for s in parse_catalog(raw) if s.name == "chats")
    assert chats.replication_method == "FULL_TABLE"


def test_incremental_is_refused_for_agents():
    raw = catalog()
    set_root(raw, "agents", **{"replication-method": "INCREMENTAL"})
    with pytest.raises(CatalogError, match="'agents'.*FULL_TABLE"):
        parse_catalog(raw)


def test_unknown_replication_method_is_refused():
    raw = catalog()
    set_root(raw, "chats", **{"replication-method": "LOG_BASED"})
    with pytest.raises(CatalogError, match="LOG_BASED"):
        parse_catalog(raw)


def test_legacy_schema_selected_is_honoured():
    schema = copy.deepcopy(load_schema("departments"))
    raw = {"streams": [{"tap_stream_id": "departments", "schema": dict(schema, selected=True), "metadata": []},
                       {"tap_stream_id": "goals", "schema": dict(load_schema("goals"), selected=False),
                        "metadata": []},
                       {"tap_stream_id": "roles", "schema": load_schema("roles"), "metadata": []}]}
    chosen = parse_catalog(raw)
    assert [s.name for s in chosen] == ["departments"]
    assert "selected" not in chosen[0].schema
    assert chosen[0].schema["properties"] == schema["properties"]


def test_metadata_selected_wins_over_legacy_schema_selected():
    raw = catalog()
    agents = entry(raw, "agents")
    agents["schema"]["selected"] = True
    set_root(raw, "agents", selected=False)
    assert "agents" not in [s.name for s in parse_catalog(raw)]


def _encode_with(raw_catalog, record):
    chats = next(s for s in parse_catalog(raw_catalog) if s.name == "chats")
    plan = RecordPlan(chats.schema, chats.deselected, None, (), ("id",), "chats")
    (written,) = plan.encode([record])
    return chats, json.loads(bytes(written))


def test_a_catalog_saved_before_unexpected_values_still_keeps_odd_values():
    """An older version's catalog has no _unexpected_values: the tap adds it, or a value that does not fit
    its type would be nulled and lost."""
    raw = catalog()
    chats_entry = entry(raw, "chats")
    del chats_entry["schema"]["properties"]["_unexpected_values"]
    chats_entry["metadata"] = [m for m in chats_entry["metadata"] if m["breadcrumb"] != ["properties",
                                                                                         "_unexpected_values"]]
    chats, out = _encode_with(raw, {"id": "c1", "type": "chat", "response_time": "12", "rating": 5})
    assert "_unexpected_values" in chats.schema["properties"]
    assert out["response_time"] is None and out["_unexpected_values"] == {"response_time": "12", "rating": 5}


def test_a_catalog_that_deselects_unexpected_values_gets_none():
    raw = catalog()
    for item in entry(raw, "chats")["metadata"]:
        if item["breadcrumb"] == ["properties", "_unexpected_values"]:
            item["metadata"]["selected"] = False
    chats, out = _encode_with(raw, {"id": "c1", "type": "chat", "rating": 5})
    assert "_unexpected_values" not in chats.schema["properties"] and "_unexpected_values" not in out
    assert out["rating"] is None


def test_streams_marked_selected_are_the_only_ones_synced():
    """The classic tap's rule: a catalog marking two streams selected syncs those two, not the unmarked rest
    (discovery's selected-by-default no longer counts once any stream is marked)."""
    raw = catalog()
    set_root(raw, "chats", selected=True)
    set_root(raw, "agents", selected=True)
    set_root(raw, "goals", selected=False)
    told = []
    assert [s.name for s in parse_catalog(raw, told.append)] == ["agents", "chats"]
    assert told == ["The catalog marks streams selected: only those are synced"]


def test_a_catalog_marking_none_selected_syncs_every_stream_selected_by_default():
    raw = catalog()
    set_root(raw, "goals", selected=False)
    told = []
    assert [s.name for s in parse_catalog(raw, told.append)] == [n for n in STREAMS if n != "goals"]
    assert told == ["The catalog marks no stream selected: every stream selected by default is synced"]
