import io
import json

import msgspec

from tap_zendesk_chat.fastjson import dumps
from tap_zendesk_chat.messages import MessageWriter


def lines(out):
    return [json.loads(line) for line in out.getvalue().splitlines()]


def write_records(writer, stream, records, **envelope):
    writer.write_encoded(stream, [dumps(record) for record in records], **envelope)


def test_records_may_be_slices_of_a_page():
    out = io.StringIO()
    writer = MessageWriter(out=out)
    page = b'[{"id":"a","x":"\\u00e9"},{"id":"b"}]'
    slices = msgspec.json.decode(page, type=list[msgspec.Raw])
    writer.write_encoded("chats", slices, time_extracted="2024-05-01T10:00:00Z")
    writer.write_state({})
    assert out.getvalue().splitlines()[0] == ('{"type":"RECORD","stream":"chats","record":{"id":"a","x":"\\u00e9"},'
                                              '"time_extracted":"2024-05-01T10:00:00Z"}')
    assert [m.get("record") for m in lines(out)] == [{"id": "a", "x": "é"}, {"id": "b"}, None]


def test_nothing_reaches_out_before_a_state_or_flush():
    out = io.StringIO()
    writer = MessageWriter(out=out)
    writer.write_schema("agents", {"type": "object"}, ["id"])
    write_records(writer, "agents", [{"id": 1}, {"id": 2}])
    writer.write_activate_version("agents", 5)
    assert out.getvalue() == ""
    writer.write_state({"bookmarks": {}})
    assert [m["type"] for m in lines(out)] == ["SCHEMA", "RECORD", "RECORD", "ACTIVATE_VERSION", "STATE"]


def test_flush_writes_the_buffer_once():
    out = io.StringIO()
    writer = MessageWriter(out=out)
    write_records(writer, "agents", [{"id": 1}])
    writer.flush()
    writer.flush()
    assert len(lines(out)) == 1


def test_every_line_is_a_singer_message():
    out = io.StringIO()
    writer = MessageWriter(out=out)
    writer.write_schema("chats", {"type": "object", "properties": {}}, ("id",), bookmark_properties=["update_timestamp"])
    write_records(writer, "chats", [{"id": "a", "text": 'quote " and \n newline é'}, {"id": "b"}])
    writer.write_activate_version("departments", 1714557600000)
    writer.write_state({"bookmarks": {"chats": {"cursor": [1, "a"]}}})
    assert out.getvalue().endswith("\n")
    schema, first, second, activate, state = lines(out)
    assert schema == {"type": "SCHEMA", "stream": "chats", "schema": {"type": "object", "properties": {}},
                      "key_properties": ["id"], "bookmark_properties": ["update_timestamp"]}
    assert first == {"type": "RECORD", "stream": "chats", "record": {"id": "a", "text": 'quote " and \n newline é'}}
    assert second["record"] == {"id": "b"}
    assert activate == {"type": "ACTIVATE_VERSION", "stream": "departments", "version": 1714557600000}
    assert state == {"type": "STATE", "value": {"bookmarks": {"chats": {"cursor": [1, "a"]}}}}


def test_schema_without_bookmark_properties_leaves_them_out():
    out = io.StringIO()
    writer = MessageWriter(out=out)
    writer.write_schema("agents", {}, ["id"])
    writer.flush()
    assert "bookmark_properties" not in lines(out)[0]


def test_records_carry_version_and_time_extracted_when_given():
    out = io.StringIO()
    writer = MessageWriter(out=out)
    write_records(writer, "departments", [{"id": 1}], version=1714557600000, time_extracted="2024-05-01T10:00:00Z")
    write_records(writer, "departments", [{"id": 2}], version=7)
    write_records(writer, "departments", [{"id": 3}], time_extracted="2024-05-01T10:00:01Z")
    write_records(writer, "departments", [])
    writer.flush()
    first, second, third = lines(out)
    assert first == {"type": "RECORD", "stream": "departments", "record": {"id": 1}, "version": 1714557600000,
                     "time_extracted": "2024-05-01T10:00:00Z"}
    assert second == {"type": "RECORD", "stream": "departments", "record": {"id": 2}, "version": 7}
    assert third == {"type": "RECORD", "stream": "departments", "record": {"id": 3},
                     "time_extracted": "2024-05-01T10:00:01Z"}


def test_stream_names_are_json_escaped():
    out = io.StringIO()
    writer = MessageWriter(out=out)
    write_records(writer, 'we"ird', [{"id": 1}])
    writer.flush()
    assert lines(out)[0]["stream"] == 'we"ird'
