"""Ids that join (issue 19, item 4): every field naming another stream's row is declared with that row's key
type, and an id the API sent as a string of digits where integers are declared lands as that integer, on
the decoded and on the raw way alike; a value that does not convert is quarantined by its path."""
import copy
import json

import msgspec
import pytest

from tap_zendesk_chat import fastjson
from tap_zendesk_chat.schemas import SCHEMA_DIR, load_schema
from tap_zendesk_chat.streams import STREAMS
from tap_zendesk_chat.transform import UNEXPECTED_FIELD, integer_of_text
from tests.unit.test_transform_raw import both_ways, plan_for

# What a field of that name names: (stream, its key). A field ending in _id or _ids (or an array of ids
# named below) that is none of these must be listed in NOT_OURS with what it names instead.
REFERENCES = {
    "department_id": ("departments", "id"), "prev_department_id": ("departments", "id"),
    "agent_id": ("agents", "id"), "agent_ids": ("agents", "id"), "goal_id": ("goals", "id"),
    "skills_requested": ("skills", "id"), "role_id": ("roles", "id"), "chat_id": ("chats", "id"),
    # arrays of ids in the config streams
    "members": ("agents", "id"), "departments": ("departments", "id"), "enabled_departments": ("departments", "id"),
    "skills": ("skills", "id"), "agents": ("agents", "id"),
}
NOT_OURS = {
    "zendesk_ticket_id": "a Zendesk Support ticket",
    "support_group_id": "a Zendesk Support group",
    "account_id": "the Chat account (the account stream is keyed by account_key, a string)",
    "visitor_id": "a visitor: no stream of visitors",
    "msg_id": "a message inside the chat's own history",
}


def _types(schema):
    kind = schema.get("type") if isinstance(schema, dict) else None
    return frozenset([kind] if isinstance(kind, str) else kind if isinstance(kind, list) else [])


def _fields(schema, path=""):
    """(path, name, schema of the value or of its items) of every property at every depth."""
    for name, sub in (schema.get("properties") or {}).items() if isinstance(schema, dict) else ():
        where = f"{path}.{name}" if path else name
        items = sub.get("items") if "array" in _types(sub) else None
        yield where, name, items if isinstance(items, dict) else sub
        yield from _fields(sub, where)
        if isinstance(items, dict):
            yield from _fields(items, f"{where}[]")


def _stream_schemas():
    names = set(STREAMS) | {p.stem for p in SCHEMA_DIR.glob("*.json")}
    return sorted((name, load_schema(name)) for name in names)


def _key_type(stream, key):
    return _types(load_schema(stream)["properties"][key])


@pytest.mark.parametrize("name, schema", _stream_schemas())
def test_every_reference_has_the_type_of_the_key_it_names(name, schema):
    wrong = []
    for path, field, value in _fields(schema):
        if field in REFERENCES:
            stream, key = REFERENCES[field]
            if "object" in _types(value):
                continue  # an object of that name (none today): not an id
            if _types(value) != _key_type(stream, key):
                wrong.append(f"{name}: {path} is {sorted(_types(value))}, {stream}.{key} is "
                             f"{sorted(_key_type(stream, key))}")
        elif field.endswith(("_id", "_ids")) and field not in NOT_OURS:
            wrong.append(f"{name}: {path}: add it to REFERENCES (with the stream it names) or to NOT_OURS")
    assert not wrong, "\n".join(wrong)


def test_chat_ids_stay_strings():
    assert _key_type("chats", "id") == {"null", "string"}
    assert _types(load_schema("conversions")["properties"]["attribution"]["properties"]["chat_id"]) == \
        {"null", "string"}


@pytest.mark.parametrize("text, number", [("0", 0), ("7", 7), ("360786799676", 360786799676),
                                          ("123456789012345678901234567890", 123456789012345678901234567890)])
def test_canonical_digits_convert(text, number):
    assert integer_of_text(text) == number


@pytest.mark.parametrize("text", ["", "0123", "00", "+1", "-5", " 1", "1 ", "1\n", "1.0", "1e3", "12a", "abc",
                                  "1_000", "0x1f", "١٢٣", "²", "9" * 5000])
def test_other_strings_do_not(text):
    assert integer_of_text(text) is None


def a_chat_with_string_ids():
    """Ids as a real account sends them: agent ids as strings, department ids either way."""
    return {
        "id": "2405.1.Ab", "type": "chat", "update_timestamp": "2024-05-01T10:00:00Z",
        "agent_ids": ["360001", 360002], "department_id": "7", "skills_requested": ["5", 6],
        "history": [{"type": "chat.transfer", "timestamp": "2024-05-01T09:00:01Z", "department_id": "7",
                     "prev_department_id": 8, "agent_id": "360001"},
                    {"type": "chat.msg", "timestamp": "2024-05-01T09:00:02Z", "msg_id": "123"}],
        "engagements": [{"id": "e1", "agent_id": "360001", "department_id": "7", "skills_requested": ["5"]}],
        "conversions": [{"id": "c1", "goal_id": "70001",
                         "attribution": {"agent_id": "360001", "department_id": "7", "chat_id": "2405.1.Ab"}}],
        "zendesk_ticket_id": 4321,
    }


def test_string_ids_land_as_integers_both_ways():
    raw, decoded, plans = both_ways("chats", a_chat_with_string_ids())
    assert raw == decoded
    assert decoded["agent_ids"] == [360001, 360002] and decoded["department_id"] == 7
    assert decoded["skills_requested"] == [5, 6]
    assert decoded["history"][0] == {"type": "chat.transfer", "timestamp": "2024-05-01T09:00:01Z",
                                      "department_id": 7, "prev_department_id": 8, "agent_id": 360001}
    assert decoded["history"][1]["msg_id"] == "123"  # msg_id is declared string or integer: kept as sent
    assert decoded["engagements"][0] == {"id": "e1", "agent_id": 360001, "department_id": 7, "skills_requested": [5]}
    assert decoded["conversions"][0] == {"id": "c1", "goal_id": 70001, "attribution": {
        "agent_id": 360001, "department_id": 7, "chat_id": "2405.1.Ab"}}
    assert UNEXPECTED_FIELD not in decoded and plans[0].unfit_total == plans[1].unfit_total == 0


@pytest.mark.parametrize("stream, record, field, number", [
    ("conversions", {"id": "c1", "timestamp": "2024-05-01T10:00:00Z", "goal_id": "70001",
                     "attribution": {"agent_id": "360001", "department_id": 7}}, "goal_id", 70001),
    ("department_events", {"id": "e.department:7.x", "timestamp": "2024-05-01T10:00:00Z", "department_id": "7"},
     "department_id", 7),
    ("agent_events", {"id": "e.agent:9.x", "timestamp": "2024-05-01T10:00:00Z", "agent_id": "9"}, "agent_id", 9),
    ("agent_timeline", {"agent_id": "360786799676", "start_time": "2020-12-14T04:08:32.301292Z"}, "agent_id",
     360786799676),
])
def test_string_ids_of_other_streams_land_as_integers(stream, record, field, number):
    raw, decoded, plans = both_ways(stream, record)
    assert raw == decoded and decoded[field] == number
    assert UNEXPECTED_FIELD not in decoded and plans[0].unfit_total == 0


def test_a_raw_record_with_string_ids_is_rewritten_and_one_without_goes_out_as_sent():
    plan = plan_for("chats")
    clean = {**a_chat_with_string_ids(), "agent_ids": [360001], "department_id": 7, "skills_requested": [5],
             "history": [], "engagements": [], "conversions": []}
    raws = [msgspec.Raw(fastjson.dumps(clean)), msgspec.Raw(fastjson.dumps(a_chat_with_string_ids()))]
    written = plan.encode(raws)
    assert written[0] is raws[0] and plan.rewritten == 1
    assert json.loads(bytes(written[1]))["agent_ids"] == [360001, 360002]


@pytest.mark.parametrize("sent", ["abc", "12a", "0123", "+1", " 1", "1.0", "", 1.5, True, {"id": 7}, [7]])
def test_ids_that_do_not_convert_go_out_null_and_are_kept_by_path(sent):
    chat = a_chat_with_string_ids()
    chat["department_id"] = sent
    chat["agent_ids"] = ["360001", copy.deepcopy(sent)]
    chat["history"][0]["prev_department_id"] = copy.deepcopy(sent)
    chat["conversions"][0]["goal_id"] = copy.deepcopy(sent)
    raw, decoded, plans = both_ways("chats", chat)
    assert raw == decoded
    assert decoded["department_id"] is None and decoded["agent_ids"] == [360001, None]
    assert decoded["history"][0]["prev_department_id"] is None and decoded["conversions"][0]["goal_id"] is None
    assert decoded[UNEXPECTED_FIELD] == {"department_id": sent, "agent_ids[1]": sent,
                                         "history[0].prev_department_id": sent, "conversions[0].goal_id": sent}
    assert plans[0].unfit == plans[1].unfit


def test_one_warning_per_pattern(caplog):
    plan = plan_for("chats")
    for agent in ("abc", "12a", "x"):
        chat = {**a_chat_with_string_ids(), "agent_ids": [agent, agent]}
        plan.encode([msgspec.Raw(fastjson.dumps(chat))])
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith('chats: agent_ids[] is declared integer but the API sent a string (e.g. "abc")')
    assert plan.unfit_total == 6
