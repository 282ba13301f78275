import copy

import pytest

from tap_zendesk_chat.schemas import load_schema
from tap_zendesk_chat.transform import RecordPlan

CHATS = load_schema("chats")


def a_chat(**overrides):
    record = {
        "id": "2405.1.Ab", "type": "chat", "update_timestamp": "2024-05-01T10:00:00+00:00",
        "timestamp": "2024-05-01T09:00:00Z", "end_timestamp": "2024-05-01T09:30:00+02:00",
        "session": {"id": "s1", "start_date": "2017-04-24T12:43:37+00:00Z", "end_date": "2017-04-24T12:50:00"},
        "history": [{"type": "chat.msg", "timestamp": "2024-05-01T09:00:01.123456+00:00", "msg": "hi"},
                    {"type": "chat.memberleave", "timestamp": "2024-05-01T09:29:00Z"}],
        "engagements": [{"id": "e1", "timestamp": "2024-05-01T11:00:00+01:00", "agent_id": "360001"}],
        "webpath": [{"from": "a", "to": "b", "timestamp": 1714554000}, ["https://x", "https://y"]],
        "comment": "fine",
    }
    record.update(overrides)
    return record


def test_dates_are_normalised_at_every_level():
    plan = RecordPlan(CHATS)
    record = plan.apply(a_chat())
    assert record["update_timestamp"] == "2024-05-01T10:00:00Z"
    assert record["timestamp"] == "2024-05-01T09:00:00Z"
    assert record["end_timestamp"] == "2024-05-01T07:30:00Z"
    assert record["session"]["start_date"] == "2017-04-24T12:43:37Z"
    assert record["session"]["end_date"] == "2017-04-24T12:50:00Z"
    assert [h["timestamp"] for h in record["history"]] == ["2024-05-01T09:00:01.123456Z", "2024-05-01T09:29:00Z"]
    assert record["engagements"][0]["timestamp"] == "2024-05-01T10:00:00Z"
    assert plan.bad_dates == 0 and plan.bad_date_example is None


def test_apply_returns_the_same_record_transformed_in_place():
    record = a_chat()
    assert RecordPlan(CHATS).apply(record) is record
    assert record["session"]["start_date"] == "2017-04-24T12:43:37Z"


def test_deselected_fields_are_dropped_and_unknown_fields_kept():
    plan = RecordPlan(CHATS, deselected=("comment", "history", "not_there"))
    record = plan.apply(a_chat(brand_new_field={"x": 1}, another=[1, 2]))
    assert "comment" not in record and "history" not in record
    assert record["brand_new_field"] == {"x": 1}
    assert record["another"] == [1, 2]
    assert record["id"] == "2405.1.Ab"


def test_unparseable_dates_become_null_and_are_counted():
    plan = RecordPlan(CHATS)
    record = a_chat(timestamp="not a time")
    record["history"][1]["timestamp"] = "2024-02-30T00:00:00Z"
    record["engagements"][0]["timestamp"] = 17
    plan.apply(record)
    assert record["timestamp"] is None
    assert record["history"][1]["timestamp"] is None
    assert record["history"][0]["timestamp"] == "2024-05-01T09:00:01.123456Z"
    assert record["engagements"][0]["timestamp"] is None
    assert plan.bad_dates == 3
    assert plan.bad_date_example == "timestamp='not a time'"
    plan.apply(a_chat(update_timestamp="later"))
    assert plan.bad_dates == 4
    assert plan.bad_date_example == "timestamp='not a time'"  # the first example is kept


def test_bad_date_example_names_the_nested_path():
    plan = RecordPlan(CHATS)
    plan.apply(a_chat(session={"start_date": "??"}))
    assert plan.bad_date_example.startswith("session.start_date=")


def test_webpath_items_that_are_arrays_are_left_alone():
    record = a_chat()
    webpath = copy.deepcopy(record["webpath"])
    RecordPlan(CHATS).apply(record)
    assert record["webpath"] == webpath


@pytest.mark.parametrize("field, value", [
    ("session", "a string"), ("session", ["list"]), ("session", 5), ("history", "x"), ("history", {"a": 1}),
    ("history", [None, 3, "x", ["nested"]]), ("engagements", [{"timestamp": None}, 7]), ("visitor", []),
    ("count", "many"), ("webpath", "x"),
])
def test_unexpected_shapes_do_not_crash_and_are_kept(field, value):
    record = a_chat(**{field: copy.deepcopy(value)})
    RecordPlan(CHATS).apply(record)
    assert record[field] == value


def test_null_dates_stay_null_without_counting():
    plan = RecordPlan(CHATS)
    record = plan.apply(a_chat(end_timestamp=None, session={"start_date": None}))
    assert record["end_timestamp"] is None and record["session"]["start_date"] is None
    assert plan.bad_dates == 0


def test_a_schema_without_dates_needs_no_work():
    schema = {"type": "object", "properties": {"id": {"type": "integer"}, "tags": {"type": "array"}}}
    plan = RecordPlan(schema, deselected=("tags",))
    assert plan.apply({"id": 1, "tags": ["a"], "when": "x"}) == {"id": 1, "when": "x"}
