"""RecordPlan on decoded records: normalisations, unexpected values kept, deselection, unknown fields kept."""
import copy
import json

import pytest

from tap_zendesk_chat.schemas import load_schema
from tap_zendesk_chat.streams import STREAMS
from tap_zendesk_chat.transform import UNEXPECTED_FIELD, RecordPlan

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


def chats_plan(deselected=(), name="chats"):
    stream = STREAMS["chats"]
    return RecordPlan(CHATS, deselected, stream.fix_record, stream.fix_fields, stream.key_properties, name)


def emit(plan, record):
    written = plan.encode([record])
    return json.loads(written[0]) if written else None


def test_dates_are_normalised_at_every_level():
    plan = chats_plan()
    record = emit(plan, a_chat())
    assert record["update_timestamp"] == "2024-05-01T10:00:00Z"
    assert record["timestamp"] == "2024-05-01T09:00:00Z"
    assert record["end_timestamp"] == "2024-05-01T07:30:00Z"
    assert record["session"]["start_date"] == "2017-04-24T12:43:37Z"
    assert record["session"]["end_date"] == "2017-04-24T12:50:00Z"
    assert [h["timestamp"] for h in record["history"]] == ["2024-05-01T09:00:01.123456Z", "2024-05-01T09:29:00Z"]
    assert record["engagements"][0]["timestamp"] == "2024-05-01T10:00:00Z"
    assert plan.unfit_total == 0 and UNEXPECTED_FIELD not in record


@pytest.mark.parametrize("number, expected", [
    (1714557600, "2024-05-01T10:00:00Z"),  # epoch seconds
    (1714557600.5, "2024-05-01T10:00:00.500000Z"),
    (1714557600123, "2024-05-01T10:00:00.123000Z"),  # milliseconds
    (1714557600123456, "2024-05-01T10:00:00.123456Z"),  # microseconds
])
def test_numbers_where_dates_are_declared_are_epoch_times(number, expected):
    assert emit(chats_plan(), a_chat(update_timestamp=number))["update_timestamp"] == expected


def test_deselected_fields_are_dropped_and_unknown_fields_kept():
    plan = chats_plan(("comment", "history", "not_there"))
    record = emit(plan, a_chat(brand_new_field={"x": 1}, another=[1, 2]))
    assert "comment" not in record and "history" not in record
    assert record["brand_new_field"] == {"x": 1}
    assert record["another"] == [1, 2]
    assert record["id"] == "2405.1.Ab"


def test_values_that_do_not_fit_go_out_as_null_and_are_kept_by_path():
    plan = chats_plan()
    record = a_chat(timestamp="not a time")
    record["history"][1]["timestamp"] = "2024-02-30T00:00:00Z"
    record["history"][1]["skills_name"] = ["Billing", "VIP"]
    record["engagements"][0]["timestamp"] = True
    out = emit(plan, record)
    assert out["timestamp"] is None and out["history"][1]["timestamp"] is None
    assert out["history"][0]["timestamp"] == "2024-05-01T09:00:01.123456Z"
    assert out["engagements"][0]["timestamp"] is None
    assert out[UNEXPECTED_FIELD] == {"timestamp": "not a time", "history[1].timestamp": "2024-02-30T00:00:00Z",
                                     "engagements[0].timestamp": True}
    assert plan.unfit[("timestamp", "string (date-time)", "string that is not a date-time")] == 1
    assert plan.unfit[("engagements[].timestamp", "string (date-time)", "boolean")] == 1
    emit(plan, a_chat(update_timestamp="later"))
    assert plan.unfit_total == 4


def test_a_warning_names_the_field_once_per_stream(caplog):
    plan = chats_plan()
    for _ in range(3):
        emit(plan, a_chat(duration="long"))
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert "chats: duration is declared number but the API sent a string" in warnings[0]


def test_webpath_items_that_are_not_objects_are_kept_whole_under_values():
    stream = STREAMS["chats"]
    plan = RecordPlan(CHATS, (), stream.fix_record, stream.fix_fields, stream.key_properties, "chats")
    out = emit(plan, a_chat(webpath=[[1493008591, "https://x"], "https://y", ["a", "b", "c"], None,
                                     {"from": "a", "to": "b"}]))
    assert out["webpath"] == [{"values": [1493008591, "https://x"]}, {"values": "https://y"},
                              {"values": ["a", "b", "c"]}, None, {"from": "a", "to": "b"}]
    assert UNEXPECTED_FIELD not in out


@pytest.mark.parametrize("field, value", [
    ("session", "a string"), ("session", ["list"]), ("session", 5), ("history", "x"), ("history", {"a": 1}),
    ("visitor", []), ("count", "many"), ("webpath", "x"), ("zendesk_ticket_id", 1.5), ("duration", float("inf")),
])
def test_unexpected_shapes_do_not_crash_and_are_kept(field, value):
    out = emit(chats_plan(), a_chat(**{field: copy.deepcopy(value)}))
    assert out[field] is None
    kept = out[UNEXPECTED_FIELD][field]
    assert kept == (str(value) if value == float("inf") else value)


def test_unexpected_items_inside_arrays_keep_their_index():
    out = emit(chats_plan(), a_chat(history=[None, 3, "x", ["nested"], {"msg_id": 1.5}]))
    assert out["history"] == [None, None, None, None, {"msg_id": None}]
    assert out[UNEXPECTED_FIELD] == {"history[1]": 3, "history[2]": "x", "history[3]": ["nested"],
                                     "history[4].msg_id": 1.5}


def test_null_dates_stay_null_without_counting():
    plan = chats_plan()
    record = emit(plan, a_chat(end_timestamp=None, session={"start_date": None}))
    assert record["end_timestamp"] is None and record["session"]["start_date"] is None
    assert plan.unfit_total == 0


def test_zero_one_booleans_become_booleans_and_other_numbers_do_not_fit():
    out = emit(chats_plan(), a_chat(unread=1, missed=0, triggered=2))
    assert out["unread"] is True and out["missed"] is False and out["triggered"] is None
    assert out[UNEXPECTED_FIELD] == {"triggered": 2}


def test_a_schema_without_dates_needs_no_work():
    schema = {"type": "object", "properties": {"id": {"type": "integer"}, "tags": {"type": "array"}}}
    plan = RecordPlan(schema, deselected=("tags",))
    assert emit(plan, {"id": 1, "tags": ["a"], "when": "x"}) == {"id": 1, "when": "x"}
