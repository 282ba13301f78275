import copy
import json
import datetime as dt

import pytest

from tap_zendesk_chat.dates import parse_datetime

from tap_zendesk_chat.dates import to_epoch_micros
from tap_zendesk_chat.state import (STATE_VERSION, StateError, get_export_cursor, new_state,
                                    set_export_cursor, upgrade_state)
from tap_zendesk_chat.streams import STREAMS

UTC = dt.timezone.utc
NAMES = STREAMS
START = dt.datetime(2023, 1, 1, tzinfo=UTC)

LEGACY = {
    "bookmarks": {
        "chats": {"chat.end_timestamp": "2024-03-10T08:00:00Z", "offline_msg.timestamp": "2024-03-09T23:30:00+00:00Z"},
        "agents": {"offset": {"id": 5}},
    },
    "currently_syncing": "agents",
    "chats_last_full_sync": "2024-03-01T00:00:00Z",
}


@pytest.mark.parametrize("raw", [None, {}])
def test_empty_state_is_a_new_state(raw):
    state, notes = upgrade_state(raw, NAMES)
    assert state == {"state_version": STATE_VERSION, "currently_syncing": None, "bookmarks": {}}
    assert notes == []


def test_state_from_a_newer_tap_is_refused():
    with pytest.raises(StateError, match="newer tap-zendesk-chat"):
        upgrade_state({"state_version": STATE_VERSION + 1, "bookmarks": {}}, NAMES)


@pytest.mark.parametrize("raw, fragment", [
    ([], "must be a JSON object"),
    ("state", "must be a JSON object"),
    ({"state_version": "2"}, "'state_version'"),
    ({"state_version": True}, "'state_version'"),
    ({"state_version": 0}, "'state_version'"),
    ({"bookmarks": []}, "'bookmarks' must be an object"),
    ({"bookmarks": {"agents": 5}}, "bookmark for 'agents' must be an object"),
    ({"currently_syncing": 3}, "'currently_syncing'"),
    ({"bookmarks": {"chats": {"cursor": "1714557600"}}}, "cursor for 'chats'"),
    ({"bookmarks": {"chats": {"cursor": [1714557600]}}}, "cursor for 'chats'"),
    ({"bookmarks": {"chats": {"cursor": ["1714557600", "x"]}}}, "cursor for 'chats'"),
    ({"bookmarks": {"agents": {"since_id": "5"}}}, "'since_id' for 'agents'"),
    ({"bookmarks": {"agents": {"since_id": 5.0}}}, "'since_id' for 'agents'"),
    ({"bookmarks": {"agents": {"version": None}}}, "'version' for 'agents'"),
    ({"bookmarks": {"chats": {"chat.end_timestamp": "yesterday-ish"}}}, "chats.chat.end_timestamp"),
])
def test_unusable_states_are_refused(raw, fragment):
    with pytest.raises(StateError) as caught:
        upgrade_state(raw, NAMES)
    assert fragment in str(caught.value)


def test_current_state_passes_unchanged_and_is_not_mutated():
    raw = {"state_version": 2, "currently_syncing": "agents", "bookmarks": {
        "chats": {"update_timestamp": "2024-05-01T10:00:00Z", "cursor": [1714557600, "2405.1.Ab"]},
        "agent_timeline": {"start_time": "2024-05-01T10:00:00.123456Z", "cursor": [1714557600123456, 3601]},
        "agents": {"version": 1714557600000, "since_id": 360001}}}
    before = copy.deepcopy(raw)
    state, notes = upgrade_state(raw, NAMES)
    assert state == raw
    assert notes == []
    assert raw == before
    state["bookmarks"]["agents"]["since_id"] = 1
    assert raw["bookmarks"]["agents"]["since_id"] == 360001


def test_upgrade_is_idempotent():
    once, _ = upgrade_state(copy.deepcopy(LEGACY), NAMES)
    twice, notes = upgrade_state(copy.deepcopy(once), NAMES)
    assert twice == once
    assert notes == []


def test_older_taps_state_is_converted():
    state, notes = upgrade_state(copy.deepcopy(LEGACY), NAMES)
    earlier = dt.datetime(2024, 3, 9, 23, 30, tzinfo=UTC)
    assert state["bookmarks"]["chats"] == {"update_timestamp": "2024-03-09T23:30:00Z",
                                           "cursor": [int(earlier.timestamp()), None]}
    assert "agents" not in state["bookmarks"]  # restarts from scratch
    assert state["currently_syncing"] == "agents"
    assert "chats_last_full_sync" not in state
    text = "\n".join(notes)
    assert "2024-03-09T23:30:00Z" in text
    assert "'agents'" in text and "restarts" in text
    assert "chats_last_full_sync" in text


@pytest.mark.parametrize("chat_end, offline", [("2024-03-09T23:30:00Z", "2024-03-10T08:00:00Z"),
                                               ("2024-03-10T08:00:00Z", "2024-03-09T23:30:00Z")])
def test_older_chats_bookmark_uses_the_earlier_time_whichever_it_is(chat_end, offline):
    raw = {"bookmarks": {"chats": {"chat.end_timestamp": chat_end, "offline_msg.timestamp": offline}}}
    state, _ = upgrade_state(raw, NAMES)
    assert state["bookmarks"]["chats"]["update_timestamp"] == "2024-03-09T23:30:00Z"


def test_older_chats_bookmark_with_only_one_time():
    state, _ = upgrade_state({"bookmarks": {"chats": {"chat.end_timestamp": "2024-03-10T08:00:00Z"}}}, NAMES)
    assert state["bookmarks"]["chats"]["update_timestamp"] == "2024-03-10T08:00:00Z"


def test_older_offset_does_not_survive_next_to_a_since_id():
    state, notes = upgrade_state({"bookmarks": {"bans": {"offset": {"id": 9}, "since_id": 77}}}, NAMES)
    assert "bans" not in state["bookmarks"]
    assert any("'bans'" in note for note in notes)


def test_a_whole_state_message_is_accepted():
    value = {"state_version": 2, "currently_syncing": None,
             "bookmarks": {"chats": {"update_timestamp": "2024-05-01T10:00:00Z", "cursor": [1714557600, "x"]}}}
    state, _ = upgrade_state({"type": "STATE", "value": copy.deepcopy(value)}, NAMES)
    assert state == value


def test_a_whole_legacy_state_message_is_converted():
    state, _ = upgrade_state({"type": "STATE", "value": copy.deepcopy(LEGACY)}, NAMES)
    assert state["bookmarks"]["chats"]["update_timestamp"] == "2024-03-09T23:30:00Z"


def test_unknown_streams_are_ignored_with_a_note():
    state, notes = upgrade_state({"bookmarks": {"tickets": {"since_id": 1}, "agents": {"since_id": 4}},
                                  "currently_syncing": "tickets"}, NAMES)
    assert state["bookmarks"] == {"agents": {"since_id": 4}}
    assert state["currently_syncing"] is None
    assert notes == ["state: ignoring the bookmark of unknown stream 'tickets'"]


def test_reading_an_export_cursor_never_creates_a_bookmark():
    state = new_state()
    get_export_cursor(state, "chats", "update_timestamp", "seconds", parse_datetime("2024-01-01T00:00:00Z"))
    assert state["bookmarks"] == {}


def test_export_cursor_from_a_cursor():
    state, _ = upgrade_state({"bookmarks": {"chats": {"update_timestamp": "2020-01-01T00:00:00Z",
                                                       "cursor": [1714557600, "2405.1.Ab"]}}}, NAMES)
    assert get_export_cursor(state, "chats", "update_timestamp", "seconds", START) == (1714557600, "2405.1.Ab")
    assert state["bookmarks"]["chats"]["cursor"] == [1714557600, "2405.1.Ab"]


@pytest.mark.parametrize("unit, expected", [("seconds", 1714557600), ("microseconds", 1714557600123456)])
def test_export_cursor_from_a_bare_iso_bookmark(unit, expected):
    state = new_state()
    state["bookmarks"]["chats"] = {"update_timestamp": "2024-05-01T10:00:00.123456Z"}
    assert get_export_cursor(state, "chats", "update_timestamp", unit, START) == (expected, None)


@pytest.mark.parametrize("unit, expected", [("seconds", 1672531200), ("microseconds", 1672531200000000)])
def test_export_cursor_from_start_date(unit, expected):
    state = new_state()
    assert get_export_cursor(state, "agent_timeline", "start_time", unit, START) == (expected, None)
    assert state["bookmarks"] == {}


def test_export_cursor_from_an_unreadable_bookmark_is_a_state_error():
    state = new_state()
    state["bookmarks"]["chats"] = {"update_timestamp": "soonish"}
    with pytest.raises(StateError):
        get_export_cursor(state, "chats", "update_timestamp", "seconds", START)


@pytest.mark.parametrize("unit, cursor, written", [("seconds", (1714557600, "2405.1.Ab"), "2024-05-01T10:00:00Z"),
                                                   ("microseconds", (1714557600123456, 3601),
                                                    "2024-05-01T10:00:00.123456Z")])
def test_export_cursor_round_trips_through_the_state(unit, cursor, written):
    state = new_state()
    set_export_cursor(state, "s", "k", unit, [(*cursor, None)])
    assert get_export_cursor(state, "s", "k", unit, START) == cursor
    assert state["bookmarks"]["s"]["k"] == written
    assert "slices" not in state["bookmarks"]["s"]


def test_unfinished_slices_round_trip_through_a_state_file():
    from tap_zendesk_chat.state import get_export_slices
    slices = ((1714557600, "2405.1.Ab", 1716000000), (1716000000, None, 1718000000), (1719000000, "9.Z", None))
    state = new_state()
    set_export_cursor(state, "chats", "update_timestamp", "seconds", slices)
    bookmark = state["bookmarks"]["chats"]
    assert bookmark["cursor"] == [1714557600, "2405.1.Ab"] and bookmark["update_timestamp"] == "2024-05-01T10:00:00Z"
    loaded, _ = upgrade_state(json.loads(json.dumps(state)), STREAMS)
    assert get_export_slices(loaded, "chats", "update_timestamp", "seconds", START) == list(slices)


@pytest.mark.parametrize("slices", [
    [[1, None, None]],  # one slice: that is a cursor
    [[1, None, 5], [5, None, 9]],  # the last one is not open
    [[1, None, None], [5, None, None]],  # an open one before the last
    [[1, None, 9], [5, None, None]],  # overlapping
    [[1, None, 5], ["x", None, None]],
    [[1, [], 5], [6, None, None]],
    "[[1, null, 5]]",
    [[2, None, 5], [6, None, None]],  # the first is not the cursor
])
def test_broken_slices_in_a_state_file_are_a_clear_error(slices):
    raw = {"bookmarks": {"chats": {"update_timestamp": "2024-01-01T00:00:00Z", "cursor": [1, None], "slices": slices}}}
    with pytest.raises(StateError, match="slices for 'chats'"):
        upgrade_state(raw, STREAMS)


def test_microsecond_bookmark_keeps_precision():
    when = dt.datetime(2024, 5, 1, 10, 0, 0, 1, tzinfo=UTC)
    state = new_state()
    set_export_cursor(state, "agent_timeline", "start_time", "microseconds", [(to_epoch_micros(when), 7, None)])
    assert state["bookmarks"]["agent_timeline"]["start_time"] == "2024-05-01T10:00:00.000001Z"


@pytest.mark.parametrize("bookmark", [
    {"update_timestamp": "soonish"},
    {"update_timestamp": "2024-01-01T00:00:00Z", "cursor": [10 ** 20, None]},
    {"update_timestamp": "2024-01-01T00:00:00Z", "cursor": [-1, None]},
    {"update_timestamp": "2024-01-01T00:00:00Z", "cursor": [100, [1]]},
    {"update_timestamp": "2024-01-01T00:00:00Z", "cursor": [100, True]},
])
def test_bad_export_bookmarks_are_refused_before_the_sync(bookmark):
    with pytest.raises(StateError):
        upgrade_state({"state_version": STATE_VERSION, "bookmarks": {"chats": bookmark}}, NAMES)


@pytest.mark.parametrize("name", [n for n, s in STREAMS.items() if s.replication_key])
def test_every_streams_replication_key_is_checked(name):
    """A bookmark's time is read from the stream's own replication key, whatever the stream."""
    key = STREAMS[name].replication_key
    with pytest.raises(StateError, match=key):
        upgrade_state({"state_version": STATE_VERSION, "bookmarks": {name: {key: "not a time"}}}, NAMES)


@pytest.mark.parametrize("stream, cursor, ok", [
    ("chats", [253402300799, "x"], True),  # 9999-12-31T23:59:59Z in seconds
    ("chats", [253402300800, "x"], False),  # the year 10000: passed, and crashed when the bookmark was written
    ("chats", [253402300799 * 1_000_000, "x"], False),  # microseconds where the export counts seconds
    ("agent_timeline", [253402300799 * 1_000_000, 1], True),
    ("agent_timeline", [253402300799 * 1_000_000 + 1_000_000, 1], False),
    ("chat_tags", [253402300800, None], False),
])
def test_a_cursor_past_the_year_9999_in_its_exports_unit_is_refused(stream, cursor, ok):
    raw = {"bookmarks": {stream: {"cursor": cursor}}}
    if ok:
        upgrade_state(raw, STREAMS)
    else:
        with pytest.raises(StateError, match="up to the year 9999"):
            upgrade_state(raw, STREAMS)


def test_a_slice_ending_past_the_year_9999_is_refused():
    raw = {"bookmarks": {"chats": {"cursor": [10, None],
                                   "slices": [[10, None, 253402300800], [253402300800, None, None]]}}}
    with pytest.raises(StateError, match="slices"):
        upgrade_state(raw, STREAMS)
