"""Loads schemas/<stream>.json with their shared fragments, and builds Singer metadata from stream classes."""
import json
import pathlib

from tap_zendesk_chat.transform import UNEXPECTED_FIELD, UNEXPECTED_SCHEMA

SCHEMA_DIR = pathlib.Path(__file__).parent / "schemas"


# The child streams of chats (children.py): the chats schema's array whose items each row holds, and, for
# an array of scalars, the field of the row an item is.
CHILD_ARRAYS = {
    "chat_history": ("history", None),
    "chat_tags": ("tags", "tag"),
    "chat_agents": (("agent_ids", "agent_id"), ("agent_names", "agent_name")),
    "chat_webpath": ("webpath", None),
    "chat_engagements": ("engagements", None),
    "chat_conversions": ("conversions", None),
}
CHILD_DESCRIPTIONS = {
    "chat_history": "One row per event of a chat's history, in order: chat.msg (msg, msg_id, options), "
                    "chat.memberjoin / chat.memberleave, chat.rating (rating, new_rating), chat.comment "
                    "(comment, new_comment), chat.file (attachment), chat.tag (tags, new_tags), "
                    "chat.transfer.department (department_id, prev_department_id) and the others the API sends.",
    "chat_tags": "One row per tag of a chat, in order.",
    "chat_agents": "One row per agent of a chat, in order: agent_ids and agent_names side by side.",
    "chat_webpath": "One row per page the visitor went through, in order.",
    "chat_engagements": "One row per engagement of an agent in a chat, in order.",
    "chat_conversions": "One row per goal conversion of a chat, in order.",
}


def load_schema(name):
    """The stream's JSON schema with every {"$ref": "shared/x.json"} inlined, and the field where values
    that do not fit their declared type are kept (transform.UNEXPECTED_FIELD). A child stream's is made
    from the chats schema (child_schema)."""
    if name in CHILD_ARRAYS:
        return with_unexpected_field(child_schema(name))
    schema = _inline(_read(f"{name}.json"), ())
    return with_unexpected_field(schema)


def child_schema(name):
    """A child stream's schema: its keys (the chat's id, the item's position), the chat's update_timestamp,
    and the fields of an item of its array as the chats schema declares them (one source for both)."""
    chats = _inline(_read("chats.json"), ())["properties"]
    properties = {
        "chat_id": dict(chats["id"], description="The chat's id (chats.id)."),
        "position": {"type": ["integer"], "description": "The item's place in the chat's array, from 0."},
        "chat_update_timestamp": dict(chats["update_timestamp"], description=(
            "The chat's update_timestamp in the version this row was read from. A row is current while it "
            "equals chats.update_timestamp; an older one is left from a longer array (README, Child tables).")),
    }
    spec = CHILD_ARRAYS[name]
    pairs = spec if isinstance(spec[0], tuple) else (spec,)
    for array, field in pairs:
        items = chats[array].get("items", {})
        if field is not None:
            properties[field] = items
        else:
            properties.update(items.get("properties", {}))
    return {"type": ["null", "object"], "description": CHILD_DESCRIPTIONS[name], "properties": properties}


def with_unexpected_field(schema):
    """The schema, declaring UNEXPECTED_FIELD (a copy when it had to be added)."""
    properties = schema.get("properties")
    if not isinstance(properties, dict) or UNEXPECTED_FIELD in properties:
        return schema
    return dict(schema, properties={**properties, UNEXPECTED_FIELD: dict(UNEXPECTED_SCHEMA)})


def _read(relative):
    with open(SCHEMA_DIR / relative, encoding="utf-8") as handle:
        return json.load(handle)


def _inline(node, seen):
    if isinstance(node, dict):
        ref = node.get("$ref")
        if ref is not None:
            if ref in seen:
                raise ValueError(f"schema fragment {ref} refers to itself")
            return _inline(_read(ref), seen + (ref,))
        return {key: _inline(value, seen) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline(value, seen) for value in node]
    return node


def get_metadata(stream, schema, key_properties=None):
    """Standard Singer metadata: keys and replication keys are automatic, every other field available.
    `key_properties`: the stream's keys as the run names them, when not its own (stitch_table_names)."""
    keys = stream.key_properties if key_properties is None else key_properties
    automatic = set(keys) | ({stream.replication_key} if stream.replication_key else set())
    root = {
        "table-key-properties": list(keys),
        "inclusion": "available",
        "selected-by-default": True,
    }
    if getattr(stream, "parent", None):
        root["parent-tap-stream-id"] = stream.parent  # its rows come from that stream's records
    if stream.replication_method == "FULL_TABLE":
        root["forced-replication-method"] = "FULL_TABLE"
    else:
        root["valid-replication-keys"] = [stream.replication_key]
        root["replication-method"] = "INCREMENTAL"
    entries = [{"breadcrumb": [], "metadata": root}]
    for field in schema.get("properties", {}):
        entries.append({
            "breadcrumb": ["properties", field],
            "metadata": {"inclusion": "automatic" if field in automatic else "available",
                         **({} if field in automatic else {"selected-by-default": True})},
        })
    return entries
