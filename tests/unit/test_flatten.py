"""Flattening (flatten.py) against the Singer SDK's documented examples (singer_sdk/helpers/_flattening.py doctests,
tests/core/test_flattening.py), our departures from it, and catalogs read with flattening on."""
import copy
import json
import pathlib
import subprocess

import pytest
from jsonschema import Draft4Validator
from singer import metadata as singer_metadata

from tap_zendesk_chat.discover import CatalogError, build_catalog, parse_catalog, select_all
from tap_zendesk_chat.flatten import Flattener, flatten_key, flatten_schema, flattened_columns, needs_flattening
from tap_zendesk_chat.schemas import load_schema
from tap_zendesk_chat.streams import STREAMS
from tap_zendesk_chat.transform import RecordPlan

SDK_PYTHON = pathlib.Path(__file__).resolve().parents[2] / ".e2e-venvs" / "target-postgres" / "bin" / "python"


def nested(object_type="object"):
    """The SDK's doctest schema: id, and foo.bar.baz.qux."""
    def obj(properties):
        return {"type": object_type, "properties": properties}
    return {"type": "object", "properties": {"id": {"type": "string"},
                                             "foo": obj({"bar": obj({"baz": obj({"qux": {"type": "string"}})})})}}


@pytest.mark.parametrize("depth, expected", [
    (1, {"id": {"type": "string"}, "foo__bar": {"type": "string"}}),
    (2, {"id": {"type": "string"}, "foo__bar__baz": {"type": "string"}}),
    (3, {"id": {"type": "string"}, "foo__bar__baz__qux": {"type": "string"}}),
])
def test_schema_as_the_sdk_doctest(depth, expected):
    assert flatten_schema(nested(), depth) == {"type": "object", "properties": expected}


@pytest.mark.parametrize("depth, expected", [
    (1, {"id": {"type": "string"}, "foo__bar": {"type": ["string", "null"]}}),
    (2, {"id": {"type": "string"}, "foo__bar__baz": {"type": ["string", "null"]}}),
    (3, {"id": {"type": "string"}, "foo__bar__baz__qux": {"type": "string"}}),  # a leaf keeps its own nullability
])
def test_nullable_objects_as_the_sdk_doctest(depth, expected):
    assert flatten_schema(nested(["object", "null"]), depth)["properties"] == expected


SDK_RECORD = {"key_1": 1, "key_2": {"key_3": "value", "key_4": {"key_5": 1, "key_6": ["a", "b"]}}}
SDK_SCHEMA = {"properties": {"key_1": {"type": ["null", "integer"]}, "key_2": {"type": ["null", "object"], "properties": {
    "key_3": {"type": ["null", "string"]},
    "key_4": {"type": ["null", "object"], "properties": {"key_5": {"type": ["null", "integer"]},
                                                         "key_6": {"type": ["null", "array"]}}}}}}}


@pytest.mark.parametrize("schema, depth, expected", [
    # key_4 declared without properties: JSON text at any depth ("flattened schema limiting the max level")
    ({"properties": {"key_1": SDK_SCHEMA["properties"]["key_1"], "key_2": {"type": ["null", "object"], "properties": {
        "key_3": {"type": ["null", "string"]}, "key_4": {"type": ["null", "object"]}}}}}, 99,
     {"key_1": 1, "key_2__key_3": "value", "key_2__key_4": '{"key_5":1,"key_6":["a","b"]}'}),
    (SDK_SCHEMA, 99, {"key_1": 1, "key_2__key_3": "value", "key_2__key_4__key_5": 1, "key_2__key_4__key_6": '["a","b"]'}),
    (SDK_SCHEMA, 1, {"key_1": 1, "key_2__key_3": "value", "key_2__key_4": '{"key_5":1,"key_6":["a","b"]}'}),
])
def test_record_as_the_sdk_test(schema, depth, expected):
    flattener = Flattener(schema, depth)
    assert flattener.flatten_record(copy.deepcopy(SDK_RECORD)) == expected
    assert json.loads(flattener.encode([json.dumps(SDK_RECORD).encode()])[0]) == expected
    Draft4Validator(flattener.schema).validate(expected)


def test_typeless_properties_as_the_sdk_test():
    schema = {"type": "object", "properties": {"id": {"type": "string"}, "changes": {"type": "object", "properties": {
        "field": {"type": "string"}, "OldValue": {}, "NewValue": {}}}}}
    flattener = Flattener(schema, 1)
    assert "string" in flattener.schema["properties"]["changes__OldValue"]["type"]
    record = {"id": "123", "changes": {"field": "status", "OldValue": {"nested": "object", "with": ["array", "values"]},
                                       "NewValue": "simple string"}}
    flat = flattener.flatten_record(record)
    assert flat == {"id": "123", "changes__field": "status",
                    "changes__OldValue": '{"nested":"object","with":["array","values"]}', "changes__NewValue": "simple string"}
    # Departure: a typeless field may hold any scalar, so it is declared with them all (the SDK: string, null).
    Draft4Validator(flattener.schema).validate(flattener.flatten_record(dict(record, changes={"OldValue": 5})))


def test_key_as_the_sdk_flatten_key():
    assert flatten_key("foo", ["bar", "baz"]) == "bar__baz__foo"
    # 255 characters or more: each part in turn shortened to its camel-case capitals (the real SDK's output)
    assert flatten_key("x", ["ab_cd"] * 60) == "__".join(["ac"] * 56 + ["ab_cd"] * 4 + ["x"])


def test_two_fields_of_one_name_are_refused():
    schema = {"properties": {"visitor__email": {"type": "string"},
                             "visitor": {"type": "object", "properties": {"email": {"type": "string"}}}}}
    with pytest.raises(ValueError, match="'visitor__email'"):
        flatten_schema(schema, 1)


def test_mixed_types_keep_their_scalars():
    """department_events' value may be a scalar, an object or an array: scalars stay as they are (as the SDK keeps
    them), so the column is declared with them and string (the SDK declares string and null, which they fail)."""
    schema = load_schema("department_events")
    flattener = Flattener(schema, 1)
    assert flattener.schema["properties"]["value"]["type"] == ["null", "string", "integer", "number", "boolean"]
    for value, expected in ((5, 5), ("on", "on"), ([1, 2], "[1,2]"), ({"a": 1}, '{"a":1}'), (None, None)):
        flat = flattener.flatten_record({"value": value})
        assert flat["value"] == expected
        Draft4Validator(flattener.schema).validate(flat)


CHATS = load_schema("chats")


def test_chats_columns():
    columns = flattened_columns(CHATS, 1)
    assert {"visitor__email", "visitor__name", "response_time__first", "count__total", "session__city"} <= set(columns)
    assert not {"visitor", "response_time", "session", "count"} & set(columns)
    assert columns["history"][1] == {"type": ["string", "null"]}  # arrays are JSON text
    assert columns["_unexpected_values"][1] == {"type": ["string", "null"]}
    assert columns["visitor__email"] == (("visitor", "email"), CHATS["properties"]["visitor"]["properties"]["email"])


def test_a_null_object_gives_no_columns():
    """Departure: the SDK writes "visitor": null, a column its schema does not have."""
    flat = Flattener(CHATS, 1).flatten_record({"id": "1", "visitor": None, "response_time": {"first": 3}})
    assert flat == {"id": "1", "response_time__first": 3}


def test_undeclared_fields_are_flattened_and_lose_to_declared_columns():
    flattener = Flattener(CHATS, 1)
    flat = flattener.flatten_record({"id": "1", "visitor__email": "undeclared", "visitor": {"email": "a@b", "new": {"x": 1}},
                                     "extra": {"inner": {"deep": 1}, "list": [1]}})
    # depth 1: an undeclared object inside visitor is JSON text, the undeclared top-level object is flattened once
    assert flat == {"id": "1", "visitor__email": "a@b", "visitor__new": '{"x":1}', "extra__inner": '{"deep":1}',
                    "extra__list": "[1]"}


def test_unexpected_values_name_the_columns():
    flattener = Flattener(CHATS, 1)
    kept = {"visitor.email": 5, "history[3].skills_name": 7, "visitor": "text", "response_time.first": "slow",
            "undeclared.x": 1}
    assert {path: flattener.unexpected_path(path)[1] for path in kept} == {
        "visitor.email": "visitor__email", "history[3].skills_name": "history[3].skills_name", "visitor": "visitor",
        "response_time.first": "response_time__first", "undeclared.x": "undeclared.x"}
    flat = flattener.flatten_record({"id": "1", "_unexpected_values": kept})
    assert json.loads(flat["_unexpected_values"]) == {"visitor__email": 5, "history[3].skills_name": 7, "visitor": "text",
                                                      "response_time__first": "slow", "undeclared.x": 1}
    # below the maximum depth, a path continues after the column of the object it is in
    deep = {"properties": {"a": {"type": "object", "properties": {"b": {"type": "object", "properties": {
        "c": {"type": "integer"}}}}}}}
    assert Flattener(deep, 1).unexpected_path("a.b.c") == ("a__b", "a__b.c")
    assert Flattener(deep, 2).unexpected_path("a.b.c") == ("a__b__c", "a__b__c")


def test_deselected_columns_and_their_unexpected_values_are_dropped():
    flattener = Flattener(CHATS, 1, deselected={"visitor__email", "history"})
    assert "visitor__email" not in flattener.schema["properties"] and "visitor__name" in flattener.schema["properties"]
    flat = flattener.flatten_record({"id": "1", "visitor": {"email": None, "name": "Ann"},
                                     "_unexpected_values": {"visitor.email": 5}})
    assert flat == {"id": "1", "visitor__name": "Ann"}  # nothing unexpected is left in a selected column


def test_every_stream_flattens_and_conformed_records_fit():
    chat = {"id": "1704.2314815.QHgVx6SOrRuSx", "type": "chat", "update_timestamp": "2024-05-01T10:00:00Z",
            "visitor": {"email": 5, "name": "Ann"}, "response_time": {"first": 3, "avg": 2.5, "max": 4},
            "history": [{"type": "chat.msg", "msg_id": 5}], "webpath": [["a", "b"]], "new_field": {"a": 1}}
    for name, stream in STREAMS.items():
        schema = load_schema(name)
        for depth in (1, 2, 10):
            flattener = Flattener(schema, depth)
            assert not needs_flattening(flattener.schema), name
            Draft4Validator.check_schema(flattener.schema)
            if name == "chats":
                plan = RecordPlan(schema, (), stream.fix_record, stream.fix_fields, stream.key_properties, name)
                flat = json.loads(flattener.encode(plan.encode([copy.deepcopy(chat)]))[0])
                Draft4Validator(flattener.schema).validate(flat)
                assert flat["visitor__name"] == "Ann" and flat["visitor__email"] is None
                assert json.loads(flat["_unexpected_values"]) == {"visitor__email": 5}
                assert flat["new_field__a"] == 1


@pytest.mark.skipif(not SDK_PYTHON.exists(), reason="the Singer SDK is installed in .e2e-venvs/target-postgres "
                                                    "(make e2e-venvs)")
def test_same_as_the_sdk_for_every_stream():
    """The real SDK's flatten_schema and flatten_record, run on every stream's schema and a record of each, give
    what we give, but for our two departures (scalars beside object/array declared; a null object gives no columns)."""
    cases = []
    for name in STREAMS:
        schema = load_schema(name)
        record = {key: example(sub) for key, sub in schema["properties"].items()}
        for depth in (1, 2, 3):
            flattener = Flattener(schema, depth)
            cases.append({"name": name, "depth": depth, "schema": schema, "record": record,
                          "ours_schema": flattener.schema, "ours": flattener.flatten_record(copy.deepcopy(record))})
    script = ("import json, sys\n"
              "from singer_sdk.helpers._flattening import flatten_record, flatten_schema\n"
              "out = []\n"
              "for c in json.load(sys.stdin):\n"
              "    schema = flatten_schema(c['schema'], c['depth'])\n"
              "    out.append([schema, flatten_record(c['record'], schema, c['depth'])])\n"
              "json.dump(out, sys.stdout)\n")
    proc = subprocess.run([str(SDK_PYTHON), "-c", script], input=json.dumps(cases), capture_output=True, text=True,
                          timeout=120, check=True)
    for case, (sdk_schema, sdk_record) in zip(cases, json.loads(proc.stdout)):
        where = f"{case['name']} at depth {case['depth']}"
        ours = case["ours_schema"]["properties"]
        assert set(ours) == set(sdk_schema["properties"]), where
        for column, declared in sdk_schema["properties"].items():
            if ours[column] != declared:  # only a column that may also hold scalars is declared otherwise
                assert declared == {"type": ["string", "null"]} and set(ours[column]["type"]) > {"string", "null"}, where
        sdk_record = {k: v for k, v in sdk_record.items() if not (v is None and k not in sdk_schema["properties"])}
        assert case["ours"] == sdk_record, where


def example(schema):
    """A value of a property's schema: objects filled, arrays of one item, one null object."""
    types = schema.get("type") or ["string"]
    types = [types] if isinstance(types, str) else types
    if "object" in types:
        properties = schema.get("properties")
        if not properties:
            return None if "null" in types and "array" not in types else {"k": [1, {"x": 2}]}
        return {key: example(sub) for key, sub in properties.items()}
    if "array" in types:
        return [example(schema.get("items") or {"type": "string"})]
    for kind, value in (("string", "s"), ("integer", 7), ("number", 1.5), ("boolean", True)):
        if kind in types:
            return value
    return None


# -- the catalog with flattening on ------------------------------------------------------------------------------
def entry(raw, name):
    return next(e for e in raw["streams"] if e["tap_stream_id"] == name)


def deselect(raw, name, *fields):
    for item in entry(raw, name)["metadata"]:
        if item["breadcrumb"][1:] and item["breadcrumb"][1] in fields:
            item["metadata"]["selected"] = False
    return raw


def test_discovery_by_flattened_names():
    chats = entry(build_catalog(flattening_depth=1), "chats")
    assert chats["schema"] == flatten_schema(CHATS, 1)
    mdata = singer_metadata.to_map(chats["metadata"])
    assert mdata[("properties", "visitor__email")] == {"inclusion": "available", "selected-by-default": True}
    assert mdata[("properties", "id")]["inclusion"] == "automatic"
    assert mdata[("properties", "update_timestamp")]["inclusion"] == "automatic"
    assert ("properties", "visitor") not in mdata


def test_a_flattened_catalog_deselects_by_flattened_names():
    raw = deselect(build_catalog(flattening_depth=1), "chats", "visitor__email", "history", "id")
    chats = next(s for s in parse_catalog(raw, flattening_depth=1) if s.name == "chats")
    assert "visitor__email" not in chats.schema["properties"] and "visitor__name" in chats.schema["properties"]
    assert "history" not in chats.schema["properties"] and "id" in chats.schema["properties"]  # keys stay
    assert chats.record_schema["properties"]["visitor"] == CHATS["properties"]["visitor"]  # conformed unflattened
    assert chats.deselected == ("history",)  # left out before conforming; visitor still has columns
    flat = chats.flatten.flatten_record({"id": "1", "visitor": {"email": "a@b", "name": "Ann"}})
    assert flat == {"id": "1", "visitor__name": "Ann"}


def test_an_unflattened_catalog_still_selects():
    raw = deselect(build_catalog(), "chats", "visitor")
    chats = next(s for s in parse_catalog(raw, flattening_depth=1) if s.name == "chats")
    assert not [c for c in chats.schema["properties"] if c.startswith("visitor")]
    assert "visitor" in chats.deselected and "session__city" in chats.schema["properties"]
    # a nested breadcrumb deselects one column
    raw = build_catalog()
    entry(raw, "chats")["metadata"].append({"breadcrumb": ["properties", "session", "properties", "city"],
                                            "metadata": {"selected": False}})
    chats = next(s for s in parse_catalog(raw, flattening_depth=1) if s.name == "chats")
    assert "session__city" not in chats.schema["properties"] and "session__ip" in chats.schema["properties"]


def test_off_changes_nothing():
    for selected in (parse_catalog(build_catalog()), select_all()):
        assert all(s.flatten is None and s.record_schema is s.schema for s in selected)
    assert build_catalog() == build_catalog(flattening_depth=None)


def test_select_all_flattens_every_stream():
    class Config:
        stitch_table_names, flattening_enabled, flattening_max_depth = False, True, 1
    for selected in select_all(Config()):
        assert selected.flatten is not None and not needs_flattening(selected.schema)
        assert selected.schema == dict(flatten_schema(load_schema(selected.name), 1))


def test_a_catalog_schema_that_cannot_be_flattened_is_refused():
    raw = build_catalog()
    entry(raw, "chats")["schema"]["properties"]["visitor__email"] = {"type": ["null", "string"]}
    with pytest.raises(CatalogError, match="'chats' cannot be flattened.*'visitor__email'"):
        parse_catalog(raw, flattening_depth=1)
