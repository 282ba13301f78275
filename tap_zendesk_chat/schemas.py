"""Loads schemas/<stream>.json with their shared fragments, and builds Singer metadata from stream classes."""
import json
import pathlib

from tap_zendesk_chat.transform import UNEXPECTED_FIELD, UNEXPECTED_SCHEMA

SCHEMA_DIR = pathlib.Path(__file__).parent / "schemas"


def load_schema(name):
    """The stream's JSON schema with every {"$ref": "shared/x.json"} inlined, and the field where values
    that do not fit their declared type are kept (transform.UNEXPECTED_FIELD)."""
    schema = _inline(_read(f"{name}.json"), ())
    return with_unexpected_field(schema)


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
