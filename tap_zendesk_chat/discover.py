"""The catalog: building it (--discover) and reading a user's (--catalog / --properties)."""
import dataclasses

import singer
from singer import metadata as singer_metadata

from tap_zendesk_chat.errors import CatalogError, EndpointError, UnexpectedResponseError
from tap_zendesk_chat.config import read_json_file
from tap_zendesk_chat.flatten import Flattener, flatten_schema, flattened_columns, max_depth_of, needs_flattening
from tap_zendesk_chat.schemas import get_metadata, load_schema, with_unexpected_field
from tap_zendesk_chat.streams import STREAMS

LOGGER = singer.get_logger()


@dataclasses.dataclass(frozen=True)
class Naming:
    """What a run calls its streams and their keys in the messages it writes and the catalog it prints:
    their own names, or (stitch_table_names) the tables of Stitch's Zendesk Chat integration, zopim_<name>,
    with zopim_triggers keyed by name. State bookmarks always use the streams' own names."""
    stitch: bool = False

    @classmethod
    def of(cls, config):
        return cls(bool(config is not None and config.stitch_table_names))

    def table(self, name):
        return f"zopim_{name}" if self.stitch else name

    def keys(self, name):
        if self.stitch and name == "triggers":
            return ("name",)  # Stitch's key; a trigger recorded without an id still has one
        return tuple(STREAMS[name].key_properties)


def build_catalog(streams=None, naming=Naming(), flattening_depth=None):
    """The catalog of `streams`; with a flattening_depth, their schemas and metadata by flattened names."""
    entries = []
    for name, stream in (streams or STREAMS).items():
        schema = load_schema(name)
        if flattening_depth is not None:
            schema = flatten_schema(schema, flattening_depth)
        keys = naming.keys(name)
        entry = {
            "tap_stream_id": name,
            "stream": naming.table(name),
            "key_properties": list(keys),
            "schema": schema,
            "metadata": get_metadata(stream, schema, keys),
        }
        if stream.replication_key:
            entry["replication_key"] = stream.replication_key
            entry["replication_method"] = stream.replication_method
        entries.append(entry)
    return {"streams": entries}


def discover_catalog(client, logger):
    """The catalog of every stream the account can read. One cheap request per optional stream tells
    whether the account has it (and checks the credentials); with none, one request checks them."""
    streams, checked = dict(STREAMS), False
    for name, stream in STREAMS.items():
        if not stream.optional:
            continue
        try:
            stream.check(client)
            checked = True
        except EndpointError as exc:
            logger.info("%s: left out of the catalog; %s (%s)", name, exc, stream.optional_why)
            streams.pop(name)
        except UnexpectedResponseError as exc:  # the account has it; a sync says what is wrong with it
            checked = True
            logger.warning("%s: kept in the catalog, but its answer could not be read: %s", name, exc)
    if not checked:  # the credentials must still work for everything else
        probe = next(s for s in STREAMS.values() if not s.optional and s.replication_method == "FULL_TABLE")
        try:
            probe.check(client)
        except UnexpectedResponseError as exc:  # the token works; what the answer lacks is for a sync to say
            logger.warning("%s: its answer could not be read: %s", probe.name, exc)
    return build_catalog(streams, Naming.of(client.config), max_depth_of(client.config))


@dataclasses.dataclass
class SelectedStream:
    name: str
    schema: dict  # the SCHEMA to emit: only selected fields (flattened ones, when flattening)
    deselected: tuple  # top-level fields of record_schema to drop from records
    replication_method: str
    table: str = None  # the name its messages carry (Naming.table); its own name when None
    key_properties: tuple = None  # its keys as the run names them (Naming.keys); its own when None
    flatten: object = None  # flattening_enabled: turns each encoded record into its flattened form (see sync)
    record_schema: dict = None  # what the RecordPlan conforms records to before flatten: schema when None

    def __post_init__(self):
        self.table = self.table or self.name
        if self.record_schema is None:
            self.record_schema = self.schema
        if self.key_properties is None:
            self.key_properties = tuple(STREAMS[self.name].key_properties)


def load_catalog(path, config=None):
    selected = parse_catalog(read_json_file(path, "catalog"), LOGGER.info, Naming.of(config), max_depth_of(config))
    LOGGER.info("Streams to sync (%d): %s", len(selected), ", ".join(s.name for s in selected) or "none")
    return selected


def _explicit_selection(entry):
    """A stream's own `selected` (its metadata's, else the legacy schema-level one), or None when unmarked."""
    metadata = entry.get("metadata")
    roots = [m.get("metadata") for m in metadata if isinstance(m, dict) and m.get("breadcrumb") == []] \
        if isinstance(metadata, list) else []
    for root in roots:
        if isinstance(root, dict) and "selected" in root:
            return root["selected"]
    schema = entry.get("schema")
    return schema.get("selected") if isinstance(schema, dict) else None


def parse_catalog(raw, log=None, naming=Naming(), flattening_depth=None):
    """The selected streams of a catalog, in the tap's own stream order; every problem is a CatalogError.

    As the classic tap reads a catalog: once any stream is marked `selected: true`, only the streams so
    marked are synced, and an unmarked one is not. A catalog that marks none true (as --discover writes it)
    syncs every stream discovery selects by default, less those marked `selected: false`. `log(text)` is
    told which rule chose. With a flattening_depth, records are flattened (see _flattened)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("streams"), list):
        raise CatalogError("The catalog must be a JSON object with a 'streams' list, as --discover writes it.")
    explicit = any(_explicit_selection(e) is True for e in raw["streams"] if isinstance(e, dict))
    if log:
        log("The catalog marks streams selected: only those are synced" if explicit else
            "The catalog marks no stream selected: every stream selected by default is synced")
    chosen = {}
    for position, entry in enumerate(raw["streams"]):
        if not isinstance(entry, dict):
            raise CatalogError(f"The catalog's stream #{position + 1} is not an object.")
        name = entry.get("tap_stream_id") or entry.get("stream")
        if isinstance(name, str) and name not in STREAMS and name.removeprefix("zopim_") in STREAMS:
            name = name.removeprefix("zopim_")  # a catalog naming streams as Stitch's tables
        if not isinstance(name, str) or name not in STREAMS:
            known = ", ".join(STREAMS)
            raise CatalogError(f"The catalog names a stream {name!r} that this tap does not have (streams: {known}).")
        if name in chosen:
            raise CatalogError(f"The catalog lists the stream '{name}' twice.")
        schema = entry.get("schema")
        if not isinstance(schema, dict) or not isinstance(schema.get("properties", {}), dict):
            raise CatalogError(f"The catalog's schema for '{name}' must be a JSON schema object with 'properties'.")
        raw_metadata = entry.get("metadata", [])
        if not isinstance(raw_metadata, list) or not all(
                isinstance(m, dict) and isinstance(m.get("breadcrumb"), list) and isinstance(m.get("metadata"), dict)
                and all(isinstance(part, str) for part in m["breadcrumb"]) for m in raw_metadata):
            raise CatalogError(f"The catalog's metadata for '{name}' must be a list of "
                               "{\"breadcrumb\": [...], \"metadata\": {...}} objects.")
        mdata = singer_metadata.to_map(raw_metadata)
        root = mdata.get((), {})
        default = False if explicit else root.get("selected-by-default", False)
        selected = root.get("selected", schema.get("selected", default))
        if not selected:
            continue
        stream = STREAMS[name]
        method = root.get("replication-method") or entry.get("replication_method") or stream.replication_method
        if method not in ("FULL_TABLE", "INCREMENTAL"):
            raise CatalogError(f"The catalog's replication-method for '{name}' is {method!r}; "
                               "use FULL_TABLE or INCREMENTAL.")
        if method == "INCREMENTAL" and stream.replication_method == "FULL_TABLE":
            raise CatalogError(f"The stream '{name}' has no replication key and can only be synced FULL_TABLE.")
        # A catalog saved by an older version has no _unexpected_values: without it, a value that does not fit
        # would be nulled and lost. Added unless the catalog deselects it.
        schema = with_unexpected_field(schema)
        properties = schema.get("properties", {})
        keys = naming.keys(name)
        if flattening_depth is not None:
            chosen[name] = _flattened(name, schema, mdata, keys, method, naming, flattening_depth)
            continue
        deselected = tuple(f for f in properties
                           if not _field_selected(mdata.get(("properties", f), {}), f, keys, stream.replication_key))
        emitted = dict(schema, properties={f: s for f, s in properties.items() if f not in deselected})
        emitted.pop("selected", None)
        chosen[name] = SelectedStream(name, emitted, deselected, method, naming.table(name), keys)
    return [chosen[name] for name in STREAMS if name in chosen]


def _flattened(name, schema, mdata, keys, method, naming, depth):
    """A stream whose records are flattened. The catalog may name its fields either way: flattened (as --discover
    writes it with flattening on) or not (an older catalog). A flattened one cannot be conformed to (its arrays
    are strings): records are then conformed to the tap's own schema, and flattened. A column is selected unless
    its metadata, or that of a field it is part of (`visitor` for `visitor__email`), deselects it; keys and the
    replication key always are."""
    stream = STREAMS[name]
    record_schema = schema if needs_flattening(schema) else load_schema(name)
    try:
        columns = flattened_columns(record_schema, depth)
    except ValueError as exc:
        raise CatalogError(f"The catalog's schema for '{name}' cannot be flattened: {exc}.") from None

    def selected(column, parts):
        crumbs = [("properties", column)]
        for index in range(len(parts)):  # ("properties", "visitor"), ("properties", "visitor", "properties", "email")
            crumbs.append(tuple(word for part in parts[:index + 1] for word in ("properties", part)))
        return all(_field_selected(mdata.get(crumb, {}), column, keys, stream.replication_key) for crumb in crumbs)

    dropped = {column for column, (parts, _) in columns.items() if not selected(column, parts)}
    # A top-level field all of whose columns are deselected is left out before conforming, as unflattened.
    deselected = tuple(field for field in record_schema.get("properties", {})
                       if all(column in dropped for column, (parts, _) in columns.items() if parts[0] == field))
    flattener = Flattener(record_schema, depth, dropped)
    emitted = dict(flattener.schema)
    emitted.pop("selected", None)
    return SelectedStream(name, emitted, deselected, method, naming.table(name), keys, flattener, record_schema)


def _field_selected(field_metadata, field, keys, replication_key):
    if field in keys or field == replication_key:
        return True
    inclusion = field_metadata.get("inclusion")
    if inclusion == "automatic":
        return True
    if inclusion == "unsupported":
        return False
    return bool(field_metadata.get("selected", field_metadata.get("selected-by-default", True)))


def select_all(config=None):
    """With no catalog: every stream, every field, as discovery describes them."""
    naming, depth = Naming.of(config), max_depth_of(config)
    selected = parse_catalog(build_catalog(naming=naming, flattening_depth=depth), naming=naming,
                             flattening_depth=depth)
    LOGGER.info("No catalog given: every stream is synced (%d)", len(selected))
    return selected
