"""children.py: a chat's arrays as rows, the same from a chat in the page's bytes as from a decoded one,
whatever the arrays hold (objects, scalars, nulls, non-arrays, fields named like a row's keys)."""
import json

import msgspec
from hypothesis import given, settings, strategies as st

from tap_zendesk_chat import children, fastjson
from tap_zendesk_chat.schemas import load_schema
from tap_zendesk_chat.streams import STREAMS
from tap_zendesk_chat.transform import RecordPlan

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40), st.text(max_size=8),
                    st.sampled_from(["360001", "0123", "12a", "2024-05-01T10:00:00Z", "é\u2028", "x\\u0041"]))
fields = st.sampled_from(["type", "msg", "name", "timestamp", "department_id", "agent_id", "chat_id", "position",
                          "chat_update_timestamp", "_unexpected_values", "attachment", "tags", "from", "values",
                          "goal_id", "novel"])
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(fields, inner, max_size=3),
                      max_leaves=8)
items = st.one_of(scalars, st.dictionaries(fields, values, max_size=5))
arrays = st.one_of(st.none(), st.lists(items, max_size=4), scalars, st.dictionaries(fields, scalars, max_size=2))
chats = st.fixed_dictionaries(
    {"id": st.one_of(st.just("2405.1.Ab"), st.integers(1, 99), st.none()),
     "update_timestamp": st.sampled_from(["2024-05-01T10:00:00Z", "2024-05-01T10:00:00+00:00Z", 1714557600])},
    optional={name: arrays for name in children.ARRAYS})


def emitted(name, records):
    stream = STREAMS[name]
    plan = RecordPlan(load_schema(name), (), None, (), stream.key_properties, name)
    rows = children.CHILDREN[name].rows(records, {})
    return [json.loads(bytes(encoded)) for encoded in plan.encode(rows)], plan


@settings(max_examples=150, deadline=None)
@given(st.lists(chats, min_size=1, max_size=3))
def test_rows_from_bytes_equal_rows_from_decoded_chats(page):
    body = fastjson.dumps(page)
    raw = msgspec.json.decode(body, type=list[msgspec.Raw])
    for name in children.CHILDREN:
        from_raw, _ = emitted(name, raw)
        from_dicts, _ = emitted(name, json.loads(body))
        assert from_raw == from_dicts, name


@settings(max_examples=150, deadline=None)
@given(st.lists(chats, min_size=1, max_size=3))
def test_one_row_per_item_nothing_dropped(page):
    raw = msgspec.json.decode(fastjson.dumps(page), type=list[msgspec.Raw])
    for name, child in children.CHILDREN.items():
        rows, plan = emitted(name, raw)
        withheld = plan.withheld
        want = 0
        for chat in page:
            if name == "chat_agents":
                ids, names = chat.get("agent_ids"), chat.get("agent_names")
                odd = any(v is not None and not isinstance(v, list) for v in (ids, names))
                lengths = [len(v) for v in (ids, names) if isinstance(v, list)]
                want += max(lengths + [1 if odd else 0])
            else:
                value = chat.get(child.array)
                want += 0 if value is None else len(value) if isinstance(value, list) else 1
        assert len(rows) + withheld == want, name
        for row in rows:
            assert row["position"] >= 0 and "chat_update_timestamp" in row


def test_a_field_named_like_a_key_is_kept_under_its_path():
    chat = {"id": "c1", "update_timestamp": "2024-05-01T10:00:00Z",
            "history": [{"type": "chat.msg", "position": 7, "chat_id": "other", "msg": "hi"}, "odd", None]}
    raw = msgspec.json.decode(fastjson.dumps([chat]), type=list[msgspec.Raw])
    rows, _ = emitted("chat_history", raw)
    assert [(r["chat_id"], r["position"]) for r in rows] == [("c1", 0), ("c1", 1), ("c1", 2)]
    assert rows[0]["_unexpected_values"] == {"history[0].position": 7, "history[0].chat_id": "other"}
    assert rows[0]["msg"] == "hi"
    assert rows[1]["_unexpected_values"] == {"history[1]": "odd"}
    assert rows[2].get("type") is None


def test_agents_side_by_side_with_their_ids_as_numbers():
    chat = {"id": "c1", "update_timestamp": "2024-05-01T10:00:00Z", "agent_ids": ["360001", "0123", "x"],
            "agent_names": ["Ann", "Bo"]}
    raw = msgspec.json.decode(fastjson.dumps([chat]), type=list[msgspec.Raw])
    rows, plan = emitted("chat_agents", raw)
    assert [(r["position"], r["agent_name"]) for r in rows] == [(0, "Ann"), (1, "Bo"), (2, None)]
    assert rows[0]["agent_id"] == 360001
    # "0123" and "x" are not an agent id as a number would be: kept, never dropped
    assert all(rows[i]["agent_id"] is None and rows[i]["_unexpected_values"] for i in (1, 2))
