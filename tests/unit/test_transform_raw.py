"""The two ways into a RecordPlan give the same records: a record still in the page's bytes (msgspec.Raw,
the export streams) and the same record decoded (every other stream, and the fallback).

Records are generated from each stream's own schema, with the API's quirks and worse mixed in: 0/1 for
booleans, timestamps in every form (offsets, "+00:00Z", garbage, numbers, impossible days), objects that
are strings, webpath pairs, keys that are null or missing, fields no schema lists, huge integers, ids as strings
of digits where integers are declared ("123", and "0123", "+1", "1.0" that are not converted)."""
import copy
import json

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tap_zendesk_chat import fastjson
from tap_zendesk_chat.schemas import load_schema, with_unexpected_field
from tap_zendesk_chat.streams import STREAMS
from tap_zendesk_chat.transform import RecordPlan
from tests.reference_transform import reference_transform


def _types(schema):
    kind = schema.get("type", [])
    return {kind} if isinstance(kind, str) else set(kind) if isinstance(kind, list) else set()


def _is_date(schema):
    return isinstance(schema, dict) and schema.get("format") == "date-time" and "string" in _types(schema)


def _is_boolean(schema):
    return isinstance(schema, dict) and _types(schema) - {"null"} == {"boolean"}


def _is_integer(schema):
    """Declared integer and not string: where an id sent as "123" becomes 123."""
    return isinstance(schema, dict) and "integer" in _types(schema) and "string" not in _types(schema)


CANONICAL = st.datetimes().map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%S") + ("Z" if d.microsecond % 3 else f".{d.microsecond:06d}Z"))
# Ids as the API sends them where integers are declared: digits in a string, canonical or not.
ID_TEXTS = st.integers(0, 10 ** 20).map(str) | st.sampled_from([
    "0", "0123", "+1", "-5", " 1", "1 ", "1.0", "1e3", "12a", "", "١٢٣", "²", "1_000", "0x1f", "9" * 5000])
ODD_DATES = st.sampled_from([
    "2024-05-01T10:00:00+00:00", "2017-04-24T12:43:37+00:00Z", "2024-05-01T09:30:00+02:00", "2024-05-01 10:00:00",
    "2024-05-01T10:00:00", "2024-02-29T00:00:00Z", "2023-02-29T00:00:00Z", "2024-04-31T00:00:00Z", "0999-01-01T00:00:00Z",
    "2024-05-01T24:00:00Z", "2024-05-01T10:00:00.1234567Z", "2024-05-01t10:00:00z", "N/A", "", "later", "2024-05-01",
    "2024-05-01T10:00:00Z\x1f2024-05-01T10:00:00Z", "2024-05-01T10:00:00Z\n",
])
SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8)
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                                      max_size=3), max_leaves=6)


def value_for(schema, depth=0):
    """Values a field of this schema may hold: mostly what it says, sometimes not."""
    if not isinstance(schema, dict):
        return JSON
    if _is_date(schema):
        return CANONICAL | CANONICAL | ODD_DATES | st.none() | st.integers(0, 2 ** 40) | JSON
    if _is_boolean(schema):
        return st.sampled_from([True, False, 0, 1, 2, -1, None, "true", 1.0, 10 ** 20])
    if _is_integer(schema) and not {"object", "array"} & _types(schema):
        return ID_TEXTS | st.integers() | JSON
    types = _types(schema)
    if "object" in types and isinstance(schema.get("properties"), dict) and depth < 3:
        return record_for(schema, depth + 1) | JSON
    if "array" in types and isinstance(schema.get("items"), dict) and depth < 3:
        items = value_for(schema["items"], depth + 1) | st.lists(st.text(max_size=6), max_size=3)  # a webpath pair
        return st.lists(items, max_size=4) | st.none() | JSON
    return JSON


def record_for(schema, depth=0, keys=(), present=False):
    """A record of the schema: keys always there; the other fields sometimes (always with `present`)."""
    properties = schema.get("properties", {})
    optional = {key: value_for(sub, depth) for key, sub in properties.items() if key not in keys}
    required = {key: value_for(properties.get(key), depth) if key in properties else st.text(min_size=1) for key in keys}
    if present:
        required, optional = {**required, **optional}, {}
    extra = st.dictionaries(st.text(max_size=6).filter(lambda k: k not in properties), JSON, max_size=2)
    return st.builds(lambda r, e: {**e, **r}, st.fixed_dictionaries(required, optional=optional), extra)


def plan_for(name, deselected=()):
    stream = STREAMS[name]
    return RecordPlan(load_schema(name), deselected, stream.fix_record, stream.fix_fields, stream.key_properties, name)


def both_ways(name, record, deselected=()):
    """(outcome of the raw way, outcome of the decoded way, the two plans); an outcome is the decoded
    record written, or "withheld". Both must also agree with the independent reference."""
    outcomes, plans = [], []
    for value in (msgspec.Raw(fastjson.dumps(record)), copy.deepcopy(record)):
        plan = plan_for(name, deselected)
        plans.append(plan)
        written = plan.encode([value])
        if not written:
            assert plan.withheld == 1
            outcomes.append("withheld")
        else:
            data = bytes(written[0])
            assert b"\n" not in data and b"\r" not in data
            outcomes.append(json.loads(data))
    stream = STREAMS[name]
    expected = reference_transform(json.loads(fastjson.dumps(record)), load_schema(name), deselected, name,
                                   stream.key_properties)
    assert outcomes[1] == ("withheld" if expected is None else expected)
    return outcomes[0], outcomes[1], plans


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("name", sorted(STREAMS))
@SETTINGS
@given(data=st.data())
def test_raw_and_decoded_records_come_out_the_same(name, data):
    stream = STREAMS[name]
    record = data.draw(record_for(load_schema(name), keys=stream.key_properties))
    deselected = data.draw(st.sampled_from([(), ("comment", "history"), ("webpath", "tags", "name")]))
    raw, decoded, plans = both_ways(name, record, deselected)
    assert raw == decoded
    assert plans[0].unfit == plans[1].unfit


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(record=record_for(load_schema("chats"), keys=("id",)))
def test_chats_with_every_quirk(record):
    raw, decoded, plans = both_ways("chats", record)
    assert raw == decoded
    assert plans[0].unfit == plans[1].unfit


def a_clean_chat():
    return {"id": "2405.1.Ab", "type": "chat", "update_timestamp": "2024-05-01T10:00:00Z", "unread": False,
            "timestamp": "2024-05-01T09:00:00.123456Z", "session": {"start_date": "2024-05-01T09:00:00Z"},
            "history": [{"type": "chat.msg", "timestamp": "2024-05-01T09:00:01Z", "msg": "é \" \\ \n"}],
            "webpath": [{"from": "a", "to": "b", "timestamp": "2024-05-01T09:00:00Z"}], "brand_new": [1, {"x": None}],
            "huge": 123456789012345678901234567890}


def test_a_record_needing_nothing_goes_out_as_the_very_same_bytes():
    raw = msgspec.Raw(fastjson.dumps(a_clean_chat()))
    plan = plan_for("chats")
    (written,) = plan.encode([raw])
    assert written is raw and plan.rewritten == 0 and plan.unfit_total == 0


@pytest.mark.parametrize("change, field, expected, unexpected", [
    ({"unread": 1}, "unread", True, None),
    ({"update_timestamp": "2024-05-01T12:00:00+02:00"}, "update_timestamp", "2024-05-01T10:00:00Z", None),
    ({"update_timestamp": 1714557600}, "update_timestamp", "2024-05-01T10:00:00Z", None),
    ({"webpath": [[1493008591, "https://y"]]}, "webpath", [{"values": [1493008591, "https://y"]}], None),
    ({"webpath": ["https://y"]}, "webpath", [{"values": "https://y"}], None),
    ({"session": {"start_date": "soon"}}, "session", {"start_date": None}, {"session.start_date": "soon"}),
    ({"unread": 7}, "unread", None, {"unread": 7}),
    ({"duration": "long"}, "duration", None, {"duration": "long"}),
    ({"history": [{"skills_name": 5}]}, "history", [{"skills_name": None}], {"history[0].skills_name": 5}),
])
def test_a_record_needing_work_is_patched_and_keeps_everything_else(change, field, expected, unexpected):
    chat = {**a_clean_chat(), **change}
    plan = plan_for("chats")
    (written,) = plan.encode([msgspec.Raw(fastjson.dumps(chat))])
    out = json.loads(bytes(written))
    assert out[field] == expected and plan.rewritten == 1
    assert out.pop("_unexpected_values", None) == unexpected
    assert {k: v for k, v in out.items() if k != field} == {k: v for k, v in a_clean_chat().items() if k != field}
    assert list(out) == list(chat)  # field order kept
    assert plan.unfit_total == (len(unexpected) if unexpected else 0)


@pytest.mark.parametrize("chat", [{"type": "chat"}, {"id": None}, {"id": "x", "webpath": "nope", "id ": 1},
                                  {"id": 0, "timestamp": "2024-05-01T10:00:00+00:00"}])  # found by Hypothesis
def test_records_without_their_key_are_withheld_the_same_way(chat):
    raw, decoded, plans = both_ways("chats", {"update_timestamp": "2024-05-01T10:00:00Z", **chat})
    assert raw == decoded
    if not isinstance(chat.get("id"), (str, int)):
        assert raw == "withheld"
        why = [plan.withheld_example.split(": {")[0] for plan in plans]
        assert "'id'" in why[0] and why[0] == why[1]


@pytest.mark.parametrize("stream, record, key, written", [
    ("agent_timeline", {"agent_id": "360786799676", "start_time": "2020-12-14T04:08:32.301292Z"}, "agent_id",
     360786799676),
    ("chats", {"id": 2310104, "type": "chat", "update_timestamp": "2024-05-01T10:00:00Z"}, "id", "2310104"),
    ("bans", {"id": "70519881", "type": "ip_address"}, "id", 70519881),
    ("agents", {"id": "0", "email": "a@b.c"}, "id", 0),
])
def test_a_key_of_the_other_id_type_is_converted_not_withheld(stream, record, key, written):
    """Ids drift between numbers and strings in this API: a key that converts without loss keeps its record
    (withheld, it would be lost for good: the bookmark moves past it)."""
    raw, decoded, plans = both_ways(stream, record)
    assert raw == decoded and decoded[key] == written
    assert "_unexpected_values" not in decoded and plans[0].unfit_total == plans[1].unfit_total == 0


@pytest.mark.parametrize("value", ["0123", "12a", "-5", "", "١٢٣", 1.0, [1]])
def test_a_key_that_does_not_convert_is_withheld_and_the_example_shows_what_was_sent(value):
    raw, decoded, plans = both_ways("agent_timeline", {"agent_id": value, "start_time": "2020-12-14T04:08:32Z"})
    assert raw == decoded == "withheld"
    assert json.dumps(value, ensure_ascii=False) in plans[1].withheld_example, plans[1].withheld_example


@pytest.mark.parametrize("value", [[1, 2], "text", 7, None])
def test_a_record_that_is_not_an_object_is_withheld_both_ways(value):
    raw, decoded, plans = both_ways("chats", value)
    assert raw == decoded == "withheld"
    assert plans[0].withheld_example.startswith("is not a JSON object")


# -- the page: when records stay raw, and when the body is decoded in full --------------------------------
def page(chats, **extra):
    return b'{"chats":[' + b",".join(chats) + b']' + b"".join(b',"%s":%s' % (k.encode(), v) for k, v in extra.items()) + b"}"


def test_export_pages_keep_records_raw():
    chat = fastjson.dumps(a_clean_chat())
    body = STREAMS["chats"].decode_page(page([chat, chat], count=b"2", end_id=b'"x"', end_time=b"17") + b"\n")
    assert [bytes(r) for r in body["chats"]] == [chat, chat]
    assert body["count"] == 2 and body["end_id"] == "x" and body["end_time"] == 17
    assert set(body) == {"chats", "count", "end_id", "end_time"}
    assert set(STREAMS["chats"].decode_page(b'{"chats":[]}')) == {"chats"}  # what the API left out stays out


@pytest.mark.parametrize("body", [
    page([b'{"id":"a","x":NaN}']),                # not JSON as msgspec reads it; the standard library does
    page([b'{"id":"a",\n"x":1}']),                 # a line break inside a record would split the Singer line
    page([b'{"id":"a",\r"x":1}']),
    b'{"chats":{"id":"a"}}',                       # another shape: decoded, so the pager can say what is wrong
    b'[{"id":"a"}]',
])
def test_bodies_a_slice_cannot_pass_on_are_decoded_in_full(body):
    decoded = STREAMS["chats"].decode_page(body)
    assert decoded == json.loads(body)


def test_a_body_that_is_not_utf8_is_not_json():
    with pytest.raises(ValueError):
        STREAMS["chats"].decode_page(page([b'{"id":"\xff"}']))


def test_a_decoded_page_goes_through_the_same_plan():
    chat = {**a_clean_chat(), "unread": 0}
    body = STREAMS["chats"].decode_page(page([fastjson.dumps(chat)[:-1] + b',"x":NaN}']))
    assert body["chats"][0].__class__ is dict  # msgspec refuses NaN: the body was decoded in full
    (written,) = plan_for("chats").encode(body["chats"])
    out = json.loads(written)
    assert out["unread"] is False and out["x"] is None


def test_key_of_reads_raw_records():
    chat = msgspec.Raw(fastjson.dumps(a_clean_chat()))
    assert STREAMS["chats"].key_of(chat) == STREAMS["chats"].key_of(a_clean_chat()) == (1714557600, "2405.1.Ab")


@pytest.mark.parametrize("change, key", [
    ({"update_timestamp": 1714557600}, (1714557600, "2405.1.Ab")),  # epoch seconds
    ({"update_timestamp": 1714557600000000}, (1714557600, "2405.1.Ab")),  # epoch microseconds
    ({"update_timestamp": "not a time"}, None),
    ({"update_timestamp": None}, None),
    ({"id": None}, None),
    ({"id": [1]}, None),
])
def test_key_of_reads_numbers_and_gives_none_for_what_it_cannot_read(change, key):
    chat = {**a_clean_chat(), **change}
    assert STREAMS["chats"].key_of(msgspec.Raw(fastjson.dumps(chat))) == STREAMS["chats"].key_of(chat) == key


def test_a_catalog_that_makes_webpath_a_string_gets_records_that_fit_it():
    """The probe checks a field the catalog retyped with the catalog's type; both ways agree."""
    schema = load_schema("chats")
    schema["properties"]["webpath"] = {"type": ["null", "string"]}
    schema["properties"]["odd"] = {"type": 5}  # a type that is not a type: no work, no crash
    plans = [RecordPlan(schema, (), STREAMS["chats"].fix_record, ("webpath",), ("id",), "chats") for _ in range(2)]
    chat = {**a_clean_chat(), "webpath": [["https://x", "https://y"]], "odd": 1}
    (raw,) = plans[0].encode([msgspec.Raw(fastjson.dumps(chat))])
    (decoded,) = plans[1].encode([copy.deepcopy(chat)])
    assert json.loads(bytes(raw)) == json.loads(decoded)
    out = json.loads(decoded)
    assert out["webpath"] is None and out["_unexpected_values"] == {"webpath": [{"values": ["https://x", "https://y"]}]}
    assert plans[0].rewritten == plans[0].raw_records == 1


# -- generated schemas: every kind of node, at every depth ------------------------------------------------------
FIELD_NAMES = st.sampled_from(["a", "b", "when", "flag", "items", "class", "x-y", "0k", "_u", "id_"])
SCALAR_SCHEMAS = st.sampled_from([
    {"type": ["null", "string"]}, {"type": ["null", "integer"]}, {"type": ["null", "number"]},
    {"type": ["null", "boolean"]}, {"type": "boolean"}, {"type": ["null", "string", "integer"]},
    {"type": ["null", "boolean", "string"]}, {"type": ["null", "integer", "string", "boolean"]},
    {"type": ["null", "string"], "format": "date-time"}, {"type": "string", "format": "date-time"},
    {"type": ["null", "string", "integer"], "format": "date-time"},  # a date in a union
    {"type": ["null", "string", "number"]}, {}, {"type": ["null", "object"]}, {"type": ["null", "array"]},
])
SCHEMAS = st.recursive(SCALAR_SCHEMAS, lambda inner: st.one_of(
    inner.map(lambda items: {"type": ["null", "array"], "items": items}),  # arrays of scalars, of objects, ...
    inner.map(lambda items: {"type": ["null", "array", "string"], "items": items}),  # a container in a union
    st.dictionaries(FIELD_NAMES, inner, max_size=4).map(lambda p: {"type": ["null", "object"], "properties": p}),
    st.dictionaries(FIELD_NAMES, inner, max_size=3).map(lambda p: {"type": ["null", "object", "string"],
                                                                  "properties": p}),
), max_leaves=10)
# st.recursive leans to deep nesting: mix in plain scalars and arrays of scalars, the common case.
FIELD_SCHEMAS = st.one_of(SCALAR_SCHEMAS, SCALAR_SCHEMAS, SCALAR_SCHEMAS,
                          SCALAR_SCHEMAS.map(lambda items: {"type": ["null", "array"], "items": items}), SCHEMAS)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_generated_schemas_give_the_same_records_three_ways(data):
    """The raw path, the decoded path and the independent reference agree on schemas no stream has yet:
    scalar arrays of dates and booleans, nested arrays of objects, unions with containers, untyped fields."""
    properties = data.draw(st.dictionaries(FIELD_NAMES, FIELD_SCHEMAS, min_size=1, max_size=8))
    schema = {"type": "object", "properties": {"id": {"type": ["null", "string"]}, **properties,
                                               "_unexpected_values": {"type": ["null", "object"]}}}
    record = data.draw(record_for(schema, keys=("id",), present=True))
    outcomes, plans = [], []
    for value in (msgspec.Raw(fastjson.dumps(record)), copy.deepcopy(record)):
        plan = RecordPlan(schema, (), None, (), ("id",), "generated")
        plans.append(plan)
        written = plan.encode([value])
        outcomes.append(json.loads(bytes(written[0])) if written else "withheld")
    expected = reference_transform(json.loads(fastjson.dumps(record)), schema, (), None, ("id",))
    assert outcomes[0] == outcomes[1] == ("withheld" if expected is None else expected)
    assert plans[0].unfit == plans[1].unfit


def test_field_names_that_extend_each_other_get_their_own_probe_functions():
    """Fields "a" and "a_raw": the generated functions of one must not replace the other's (the raw way
    then passed "garbage" on as a date-time)."""
    schema = with_unexpected_field({"type": "object", "properties": {
        "id": {"type": ["null", "string"]}, "a": {"type": ["null", "string"], "format": "date-time"},
        "a_raw": {"type": ["null", "string"]}, "n": {"type": ["null", "integer"]}}})
    record = {"id": "1", "a": "garbage", "n": "str"}
    outcomes = []
    for value in (msgspec.Raw(fastjson.dumps(record)), copy.deepcopy(record)):
        (written,) = RecordPlan(schema, (), None, (), ("id",), "generated").encode([value])
        outcomes.append(json.loads(bytes(written)))
    assert outcomes[0] == outcomes[1] == {"id": "1", "a": None, "n": None,
                                          "_unexpected_values": {"a": "garbage", "n": "str"}}
