"""fastjson decodes and encodes a value of any depth, without RecursionError (issue 17, case 6)."""
import json
import sys

import msgspec
import orjson
import pytest

from tap_zendesk_chat import fastjson
from tap_zendesk_chat.fastjson import TooDeep
from tap_zendesk_chat.transform import RecordPlan

DEEP_ARRAYS = "[" * 5000 + "]" * 5000
DEEP_OBJECTS = '{"a":' * 3000 + '"x"' + "}" * 3000


def test_a_page_too_deep_is_decoded_with_the_deep_value_cut_at_its_records_field():
    page = (f'{{"chats":[{{"id":"a","tags":{DEEP_ARRAYS},"n":1}},'
            f'{{"id":"b","history":[{{"msg":{DEEP_OBJECTS}}}],"note":"[[{{ not brackets"}}],"count":2}}')
    decoded = fastjson.loads(page.encode())
    first, second = decoded["chats"]
    assert first == {"id": "a", "tags": TooDeep(DEEP_ARRAYS), "n": 1}
    assert second["history"] == TooDeep(f'[{{"msg":{DEEP_OBJECTS}}}]'), "cut anywhere but at the record's field"
    assert second["note"] == "[[{ not brackets" and decoded["count"] == 2


@pytest.mark.parametrize("body, expected", [
    (f"[{DEEP_ARRAYS}]".encode(), [TooDeep(DEEP_ARRAYS)]),  # no object on the way: the root's child
    (f'{{"a":{DEEP_ARRAYS},"b":2}}'.encode(), {"a": TooDeep(DEEP_ARRAYS), "b": 2}),  # one record, as /account
])
def test_other_shapes_are_cut_below_the_root(body, expected):
    assert fastjson.loads(body) == expected


def test_one_record_is_cut_at_its_own_field():
    assert fastjson.loads_record(f'{{"h":[{{"a":{DEEP_ARRAYS}}}]}}'.encode()) == \
        {"h": TooDeep(f'[{{"a":{DEEP_ARRAYS}}}]')}


@pytest.mark.parametrize("body", [b"[" * 2000, b"[" * 2000 + b"}" * 2000, b'{"a":' + b"[" * 2000 + b'"x',
                                  b"[" * 2000 + b"1,,2" + b"]" * 2000])
def test_a_deep_body_that_is_not_json_is_a_value_error(body):
    with pytest.raises(ValueError):
        fastjson.loads(body)


def _value_and_text(depth):
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(4 * depth)  # to build the value and the expected text here
    try:
        text = "[" * depth + '1.5,NaN,123456789012345678901234567890,{"k":"v"}' + "]" * depth
        return json.loads(text), text.replace("NaN", "null").encode()
    finally:
        sys.setrecursionlimit(limit)


@pytest.mark.parametrize("depth", [300, 990, 5000])
def test_dumps_text_encodes_any_depth_and_dumps_says_when_it_cannot(depth):
    value, expected = _value_and_text(depth)
    assert fastjson.dumps_text(value) == expected
    if depth < 900:
        assert fastjson.dumps(value) == expected
    else:
        with pytest.raises(fastjson.TooDeepError):
            fastjson.dumps(value)


def test_a_decoded_value_too_deep_to_encode_goes_out_as_text():
    """orjson reads 1,024 levels, the encoders stop near 1,000: such a field is quarantined when written."""
    deep = orjson.loads("[" * 1020 + "]" * 1020)
    plan = RecordPlan({"properties": {"id": {"type": "integer"}, "_unexpected_values": {"type": ["null", "object"]}}},
                      key_properties=("id",), name="agents")
    [encoded] = plan.encode([{"id": 1, "deep": deep}])
    assert json.loads(encoded) == {"id": 1, "deep": None, "_unexpected_values": {"deep": "[" * 1020 + "]" * 1020}}
    assert plan.unfit_total == 1


def test_raw_and_too_deep_values_are_encoded_as_their_json():
    assert fastjson.dumps({"r": msgspec.Raw(b'{"x":[1]}'), "t": TooDeep("[[1]]")}) == b'{"r":{"x":[1]},"t":"[[1]]"}'


def test_a_key_too_deep_to_decode_withholds_its_record_and_says_why():
    plan = RecordPlan({"properties": {"id": {"type": "integer"}, "_unexpected_values": {"type": ["null", "object"]}}},
                      key_properties=("id",), name="agents")
    assert plan.encode([{"id": TooDeep(DEEP_ARRAYS)}]) == []
    assert plan.withheld_example.startswith("its key 'id' is a value nested more than 512 levels deep, declared "
                                            "integer")


def test_a_too_deep_value_inside_an_object_of_several_keys_is_read():
    """The depth check took every key after a comma for a value: an object of two keys holding a value nested
    too deeply was 'not valid JSON' (a crash of the run)."""
    record = fastjson.loads_record(b'{"v": {"e": 1, "new": ' + b"[" * 1200 + b"]" * 1200 + b"}, \"k\": 2}")
    assert record["v"].__class__ is fastjson.TooDeep and record["k"] == 2
