"""What the simulator's dataset says each stream must deliver: the records it serves for the stream's
endpoint, for every stream in STREAMS (nothing here lists streams by hand)."""
import collections
import copy
import datetime
import json
import re

from tap_zendesk_chat.streams import STREAMS

# Streams whose records are one array of their endpoint's body: the array they take.
BAN_ARRAYS = {"bans": ("ip_address", "visitor"), "banned_ips": ("ip_address",), "banned_visitors": ("visitor",)}
# The child streams of chats: the chat's array each one's rows are the items of (chat_agents: two side by side).
CHILD_ARRAYS = {"chat_history": "history", "chat_tags": "tags", "chat_agents": ("agent_ids", "agent_names"),
                "chat_webpath": "webpath", "chat_engagements": "engagements", "chat_conversions": "conversions"}


def expected_records(dataset, stream):
    """The API's records of `stream` as the simulator serves them now (overrides included): a single object
    for account and routing_settings, a ban in the array it came in (given that array's name as its type
    when it has none, as the tap does)."""
    if stream in CHILD_ARRAYS:
        return child_rows(dataset.served("chats"), stream)
    if stream in BAN_ARRAYS:
        bans = dataset.served("bans")
        records = []
        for kind in BAN_ARRAYS[stream]:
            records += [dict(b, type=kind) if isinstance(b, dict) and "type" not in b else b for b in bans[kind]]
        if stream == "bans":
            records.sort(key=lambda b: b.get("id") if isinstance(b, dict) and isinstance(b.get("id"), int) else 0)
        return copy.deepcopy(records)
    served = dataset.served(stream)
    return copy.deepcopy([served] if isinstance(served, dict) else list(served))


EXPORTS = tuple(name for name, stream in STREAMS.items() if stream.replication_method == "INCREMENTAL")
FULL_TABLE = tuple(name for name in STREAMS if name not in EXPORTS)


def export_snapshot(dataset):
    """The export streams' records now, to tell later what changed (export_changes)."""
    return {stream: expected_records(dataset, stream) for stream in EXPORTS}


def export_changes(before, dataset):
    """Per export stream, the records an incremental run after `before` must deliver: those new or changed
    since (a chat tagged or deleted comes again)."""
    changes = {}
    for stream in EXPORTS:
        keys = STREAMS[stream].key_properties
        old = {json_key(keys, r): json.dumps(r, sort_keys=True) for r in before[stream]}
        changes[stream] = [r for r in expected_records(dataset, stream)
                           if old.get(json_key(keys, r)) != json.dumps(r, sort_keys=True)]
    return changes


def json_key(stream_key_properties, record):
    return tuple(json.dumps(record.get(k)) for k in stream_key_properties)


def key_of(stream, record):
    return tuple(record.get(k) for k in STREAMS[stream].key_properties)


def expected_keys(ds):
    """Per stream, a Counter of the record keys the simulator serves: a complete sync delivers each once."""
    keys = {name: collections.Counter(key_of(name, r) for r in expected_records(ds, name))
            for name in STREAMS if name != "chats"}
    keys["chats"] = collections.Counter((cid,) for cid in ds.chat_ids())  # ids only: cheap for the soak's 200,000
    return keys


def delivered_keys(*results):
    """Per stream, a Counter of the record keys the given runs emitted (all runs together)."""
    keys = collections.defaultdict(collections.Counter)
    for result in results:
        for message in result.record_messages():
            keys[message["stream"]][key_of(message["stream"], message["record"])] += 1
    return keys


def utc_z(raw):
    """The instant of a timestamp as the API writes it ("...Z", "...+00:00Z"), in the form the tap emits;
    stdlib only, not the tap's code."""
    if re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z", raw):
        return raw  # already the emitted form: kept as is
    when = datetime.datetime.fromisoformat(re.sub(r"([+-]\d\d:?\d\d)Z\Z", r"\1", raw))  # the "+00:00Z" quirk
    when = when.astimezone(datetime.timezone.utc) if when.tzinfo else when
    return when.strftime("%Y-%m-%dT%H:%M:%S") + (f".{when.microsecond:06d}" if when.microsecond else "") + "Z"


assert set(STREAMS) >= set(BAN_ARRAYS)


def child_rows(chats, stream):
    """A child stream's rows, as the API's chats hold them before any transform: one per item of the chat's
    array, keyed by chat id and position, with the chat's update_timestamp; an object item's fields are the
    row's, a non-object one is kept under its path in _unexpected_values (a webpath one is {"values": item},
    a tag is the row's `tag`)."""
    array = CHILD_ARRAYS[stream]
    rows = []
    for chat in chats:
        if not isinstance(chat, dict):
            continue
        keys = {"chat_id": chat.get("id"), "chat_update_timestamp": chat.get("update_timestamp")}
        if stream == "chat_agents":
            ids, names = chat.get("agent_ids"), chat.get("agent_names")
            kept = {name: value for name, value in (("agent_ids", ids), ("agent_names", names))
                    if value is not None and not isinstance(value, list)}  # not arrays: kept in the first row
            ids = ids if isinstance(ids, list) else []
            names = names if isinstance(names, list) else []
            for position in range(max(len(ids), len(names), 1 if kept else 0)):
                row = dict(keys, position=position, agent_id=ids[position] if position < len(ids) else None,
                           agent_name=names[position] if position < len(names) else None)
                if kept and position == 0:
                    row["_unexpected_values"] = kept
                rows.append(row)
            continue
        items = chat.get(array)
        if items is None:
            continue
        if not isinstance(items, list):
            rows.append(dict(keys, position=0, _unexpected_values={array: items}))
            continue
        for position, item in enumerate(items):
            row = dict(keys, position=position)
            if stream == "chat_tags":
                row["tag"] = item
            elif isinstance(item, dict):
                row.update(item)
            elif item is not None and stream == "chat_webpath":
                row["values"] = item
            elif item is not None:
                row["_unexpected_values"] = {f"{array}[{position}]": item}
            rows.append(row)
    return copy.deepcopy(rows)
