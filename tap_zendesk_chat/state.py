"""The only code that knows the STATE shape: bookmarks, cursors, currently_syncing, versions, legacy keys.

Shape written by this tap:
    {"state_version": 2, "currently_syncing": "agents" | null,
     "bookmarks": {
        "chats":          {"update_timestamp": "2024-05-01T10:00:00Z", "cursor": [1714557600, "2405.1.Ab"]},
        "agent_timeline": {"start_time": "2024-05-01T10:00:00.123456Z", "cursor": [1714557600123456, 3601]},
        "agents":         {"version": 1714557600000, "since_id": 360001},   # a full-table sync in progress
     }}
An export read in time slices that a run left unfinished also keeps every slice's cursor and end (the
first one's cursor is "cursor"; everything outside the slices was written; the last one is open):
        "chats": {"update_timestamp": ..., "cursor": [1714557600, "2405.1.Ab"],
                  "slices": [[1714557600, "2405.1.Ab", 1716000000], [1716000000, null, 1718000000],
                             [1719000000, "2406.9.Zz", null]]}
A full-table stream has a bookmark only while a sync of it is under way; finishing removes it.
The older singer-io tap's keys are converted on load (see `upgrade_state`)."""
import copy

from tap_zendesk_chat.dates import format_datetime, from_epoch, parse_datetime, to_epoch, to_epoch_seconds
from tap_zendesk_chat.errors import StateError

STATE_VERSION = 2


MAX_EPOCH_SECONDS = 253402300799  # 9999-12-31T23:59:59Z
MAX_EPOCH_MICROS = MAX_EPOCH_SECONDS * 1_000_000


def new_state():
    return {"state_version": STATE_VERSION, "currently_syncing": None, "bookmarks": {}}


def upgrade_state(raw, streams):
    """Validate a state from --state and convert the older tap's keys. Returns (state, notes).

    `streams`: name -> the stream (its `replication_key`, whose bookmark is checked here, before
    anything is written, like every other part of a state)."""
    if raw is None or raw == {}:
        return new_state(), []
    if not isinstance(raw, dict):
        raise StateError("The state must be a JSON object (the last STATE message's value), not "
                         f"{type(raw).__name__}.")
    # Some runners store the whole STATE message rather than its value.
    if raw.get("type") == "STATE" and isinstance(raw.get("value"), dict):
        raw = raw["value"]
    version = raw.get("state_version", 1)
    if type(version) is not int or version < 1:
        raise StateError(f"The state's 'state_version' is {version!r}; expected a whole number.")
    if version > STATE_VERSION:
        raise StateError(f"The state was written by a newer tap-zendesk-chat (state_version {version}; this one "
                         f"reads up to {STATE_VERSION}). Upgrade the tap, or start without --state.")
    bookmarks = raw.get("bookmarks", {})
    if not isinstance(bookmarks, dict):
        raise StateError("The state's 'bookmarks' must be an object keyed by stream name.")
    currently = raw.get("currently_syncing")
    if currently is not None and not isinstance(currently, str):
        raise StateError("The state's 'currently_syncing' must be a stream name or null.")
    state, notes = new_state(), []
    state["currently_syncing"] = currently if currently in streams else None
    for name, bookmark in bookmarks.items():
        if name not in streams:
            notes.append(f"state: ignoring the bookmark of unknown stream '{name}'")
            continue
        if not isinstance(bookmark, dict):
            raise StateError(f"The state's bookmark for '{name}' must be an object, not {bookmark!r}.")
        most = MAX_EPOCH_SECONDS if getattr(streams[name], "time_unit", "seconds") == "seconds" else MAX_EPOCH_MICROS
        converted = _upgrade_bookmark(name, copy.deepcopy(bookmark), notes, streams[name].replication_key, most)
        if converted:
            state["bookmarks"][name] = converted
    if "chats_last_full_sync" in raw:
        notes.append("state: 'chats_last_full_sync' of the older tap is no longer needed (the incremental export "
                     "catches chats changed after they ended) and is dropped")
    return state, notes


def _upgrade_bookmark(name, bookmark, notes, replication_key, most=MAX_EPOCH_MICROS):
    legacy_offset = bookmark.pop("offset", None)
    if name == "chats" and ("chat.end_timestamp" in bookmark or "offline_msg.timestamp" in bookmark):
        times = []
        for key in ("chat.end_timestamp", "offline_msg.timestamp"):
            value = bookmark.pop(key, None)
            if value is not None:
                times.append(_parse_bookmark_time(name, key, value))
        if times and "cursor" not in bookmark:
            start = min(times)
            notes.append(f"state: the older tap's chats bookmarks converted: reading chats updated since "
                         f"{format_datetime(start)} (the earlier of its chat and offline message times)")
            return {"update_timestamp": format_datetime(start), "cursor": [to_epoch_seconds(start), None]}
    if isinstance(legacy_offset, dict) and legacy_offset:
        notes.append(f"state: the older tap was interrupted in '{name}'; that stream restarts from its beginning "
                     "(its offset cannot be combined with versioned full-table loads)")
        bookmark.pop("since_id", None)
    if "cursor" in bookmark:
        cursor = bookmark["cursor"]
        if not (isinstance(cursor, list) and len(cursor) == 2 and type(cursor[0]) is int
                and 0 <= cursor[0] <= most and (cursor[1] is None or type(cursor[1]) in (int, str))):
            unit = "seconds" if most == MAX_EPOCH_SECONDS else "microseconds"
            raise StateError(f"The state's cursor for '{name}' is {cursor!r}; expected [time, id]: a whole "
                             f"number of {unit} since 1970 up to the year 9999, and an id (number, text or null).")
    if "slices" in bookmark:
        _check_slices(name, bookmark["slices"], bookmark.get("cursor"), most)
    # The bookmark's time is read only when there is no cursor (the cursor is exact).
    if replication_key and "cursor" not in bookmark and bookmark.get(replication_key) is not None:
        _parse_bookmark_time(name, replication_key, bookmark[replication_key])
    for key in ("since_id", "version"):
        if key in bookmark and type(bookmark[key]) is not int:
            raise StateError(f"The state's '{key}' for '{name}' must be a whole number, not {bookmark[key]!r}.")
    return bookmark


def _check_slices(name, slices, cursor, most=MAX_EPOCH_MICROS):
    def fits(entry, last):
        return (isinstance(entry, list) and len(entry) == 3 and type(entry[0]) is int
                and 0 <= entry[0] <= most and (entry[1] is None or type(entry[1]) in (int, str))
                and (entry[2] is None if last else type(entry[2]) is int and entry[2] <= most))
    ok = isinstance(slices, list) and len(slices) >= 2 and all(
        fits(entry, index == len(slices) - 1) for index, entry in enumerate(slices))
    ok = ok and all(a[2] <= b[0] for a, b in zip(slices, slices[1:])) and cursor == slices[0][:2]
    if not ok:
        raise StateError(f"The state's slices for '{name}' are {slices!r}; expected two or more [time, id, end] in "
                         "time order (the last one's end null, the first one's time and id the bookmark's cursor). "
                         "Remove 'slices' to resume from the cursor (chats after it are read again).")


def _parse_bookmark_time(name, key, value):
    try:
        return parse_datetime(value)
    except ValueError:
        raise StateError(f"The state's bookmark {name}.{key} is {value!r}, not a timestamp.") from None


def get_export_slices(state, stream, replication_key, unit, start_date):
    """[(time, id, end), ...] to resume an incremental export from: the slices a run left unfinished, or
    one open slice from the cursor."""
    bookmark = state["bookmarks"].get(stream, {})
    if "slices" in bookmark:
        return [tuple(entry) for entry in bookmark["slices"]]
    return [(*get_export_cursor(state, stream, replication_key, unit, start_date), None)]


def get_export_cursor(state, stream, replication_key, unit, start_date):
    """(time in the API's unit, id or None) to resume an incremental export from."""
    bookmark = state["bookmarks"].get(stream, {})
    if "cursor" in bookmark:
        return tuple(bookmark["cursor"])
    if bookmark.get(replication_key):
        start = _parse_bookmark_time(stream, replication_key, bookmark[replication_key])
    else:
        start = start_date
    return (to_epoch(start, unit), None)


def set_export_cursor(state, stream, replication_key, unit, slices, full_table_version=None, full_table=False):
    """Record where an export stands: its slices ((time, id, end), ...; one open slice is a plain cursor). A
    FULL_TABLE re-read of an export also keeps its flag and version."""
    cursor = slices[0]
    bookmark = {replication_key: format_datetime(from_epoch(cursor[0], unit)), "cursor": [cursor[0], cursor[1]]}
    if len(slices) > 1:
        bookmark["slices"] = [list(entry) for entry in slices]
    if full_table:
        bookmark["full_table"] = True
        if full_table_version is not None:
            bookmark["version"] = full_table_version
    state["bookmarks"][stream] = bookmark
    return bookmark[replication_key]


def get_full_table_progress(state, stream):
    """(version, since_id) of a full-table sync under way, or (None, 0) when none is."""
    bookmark = state["bookmarks"].get(stream, {})
    return bookmark.get("version"), bookmark.get("since_id", 0)


def set_full_table_progress(state, stream, version, since_id=None):
    bookmark = {}
    if version is not None:
        bookmark["version"] = version
    if since_id is not None:
        bookmark["since_id"] = since_id
    state["bookmarks"][stream] = bookmark


def is_full_table_export_in_progress(state, stream):
    return bool(state["bookmarks"].get(stream, {}).get("full_table"))


def clear_bookmark(state, stream):
    state["bookmarks"].pop(stream, None)


def set_currently_syncing(state, stream):
    state["currently_syncing"] = stream
