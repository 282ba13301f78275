"""Base classes by paging style, and one short declaration per stream; the STREAMS registry."""
import functools
from typing import Any

import msgspec

from tap_zendesk_chat import fastjson, pagination
from tap_zendesk_chat.client import UnexpectedResponseError
from tap_zendesk_chat.dates import datetime_from_number, parse_datetime, to_epoch


def _sliceable(body):
    """UTF-8, and no line break before the end: a slice of it is a valid line of a Singer stream."""
    if not body.isascii():
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            return False
    end = len(body)
    while end and body[end - 1] in b" \t\r\n":  # trailing whitespace after the body is fine
        end -= 1
    return body.find(b"\n", 0, end) < 0 and body.find(b"\r", 0, end) < 0


class Stream:
    name = None
    path = None
    key_properties = ("id",)
    replication_method = "FULL_TABLE"
    replication_key = None
    records_key = None  # the body's field holding the records; None: the body is the list
    optional = False  # a 403 means "not for this account": the stream is skipped with a log line
    fix_record = None  # a stream's own repair of one record, run before the schema's plan
    fix_fields = ()  # the top-level fields fix_record may change

    def get_records(self, body):
        records = body.get(self.records_key) if self.records_key and isinstance(body, dict) else body
        if not isinstance(records, list):
            raise UnexpectedResponseError(f"{self.name}: expected a list of records from /{self.path}, "
                                          f"the API sent {type(records).__name__}.")
        return records


class FullTableStream(Stream):
    """One GET: a list, or one object (see ObjectStream)."""

    def iter_pages(self, client, config, since_id=None):
        return pagination.iter_single(lambda _params: client.get(self.path), self.get_records)


class ObjectStream(FullTableStream):
    """One GET answering a single object, possibly wrapped in `records_key`."""

    def get_records(self, body):
        record = body.get(self.records_key) if self.records_key and isinstance(body, dict) else body
        if not isinstance(record, dict):
            raise UnexpectedResponseError(f"{self.name}: expected a JSON object from /{self.path}, "
                                          f"the API sent {type(record).__name__}.")
        return [record]


class SinceIdStream(Stream):
    """Id cursor (`since_id`, inclusive); resume point {"since_id": n}. Streams sharing a path share one walk."""

    page_limit_setting = "agents_page_limit"

    def split(self, body):
        return [body]

    def select(self, page):
        """This stream's share of the records of a page of its endpoint."""
        return page.records

    def iter_pages(self, client, config, since_id=0):
        limit = getattr(config, self.page_limit_setting)
        fetch = lambda params: client.get(self.path, params)  # noqa: E731
        return pagination.iter_since_id(fetch, since_id, limit, self.split, self.name)


class IncrementalExportStream(Stream):
    """Zendesk's incremental export: (start_time, start_id) cursor, time in seconds or microseconds."""

    replication_method = "INCREMENTAL"
    time_unit = "seconds"
    send_start_id = True

    @functools.cached_property
    def _page_decoder(self):
        fields = [(self.records_key, list[msgspec.Raw], msgspec.UNSET)]
        fields += [(name, Any, msgspec.UNSET) for name in ("count", "end_time", "end_id")]
        return msgspec.json.Decoder(msgspec.defstruct("ExportPage", fields, gc=False))

    def decode_page(self, body):
        """The export page with its records left as slices of the body (msgspec.Raw), decoded only as far
        as the transform needs (see transform.py). Bodies that slicing cannot pass on exactly (not UTF-8,
        a line break between tokens, NaN, another shape) are decoded in full, as every other stream is."""
        if _sliceable(body):
            try:
                page = self._page_decoder.decode(body)
            except msgspec.DecodeError:
                pass
            else:
                return {name: getattr(page, name) for name in page.__struct_fields__
                        if getattr(page, name) is not msgspec.UNSET}
        return fastjson.loads(body)

    @functools.cached_property
    def _key_decoder(self):
        fields = [(self.replication_key, Any, None), (self.id_field, Any, None)]
        return msgspec.json.Decoder(msgspec.defstruct("ExportKey", fields, gc=False)).decode

    def key_of(self, record):
        """The record's place in the export's order, in the cursor's terms; None when it has no readable
        time or id (a number where a timestamp string is usual is epoch time)."""
        if record.__class__ is msgspec.Raw:
            try:
                key = self._key_decoder(record)
            except msgspec.ValidationError:
                return None
            when, ident = getattr(key, self.replication_key), getattr(key, self.id_field)
        elif record.__class__ is dict:
            when, ident = record.get(self.replication_key), record.get(self.id_field)
        else:
            return None
        if ident.__class__ not in (int, str):
            return None
        try:
            instant = parse_datetime(when) if when.__class__ is str else datetime_from_number(when)
        except ValueError:
            return None
        return (to_epoch(instant, self.time_unit), ident)

    def iter_pages(self, client, config, cursor, stop_at):
        fetch = lambda params: client.get(self.path, params, self.decode_page)  # noqa: E731
        return pagination.iter_export(fetch, self.records_key, cursor, 1000, self.key_of,
                                      self.send_start_id, stop_at, self.name)


class Account(ObjectStream):
    """Answers 403 for Chat accounts inside Zendesk Support: skipped then."""

    name = "account"
    path = "account"
    key_properties = ("account_key",)
    optional = True


class RoutingSettings(ObjectStream):
    name = "routing_settings"
    path = "routing_settings/account"
    records_key = "data"
    key_properties = ()


class Departments(FullTableStream):
    name = "departments"
    path = "departments"


class Goals(FullTableStream):
    name = "goals"
    path = "goals"


class Roles(FullTableStream):
    name = "roles"
    path = "roles"


class Skills(FullTableStream):
    name = "skills"
    path = "skills"


class Shortcuts(FullTableStream):
    name = "shortcuts"
    path = "shortcuts"
    key_properties = ("name",)


class Triggers(FullTableStream):
    name = "triggers"
    path = "triggers"


class Agents(SinceIdStream):
    name = "agents"
    path = "agents"


class Bans(SinceIdStream):
    """Both kinds of ban, one table; /bans answers {"ip_address": [...], "visitor": [...]}."""

    name = "bans"
    path = "bans"
    page_limit_setting = "bans_page_limit"
    kinds = ("ip_address", "visitor")  # the kinds this stream keeps; the walk always reads both arrays

    def split(self, body):
        if not isinstance(body, dict):
            raise UnexpectedResponseError(f"{self.name}: expected an object with ip_address and visitor arrays "
                                          f"from /bans, the API sent {type(body).__name__}.")
        arrays = [body.get(kind) or [] for kind in Bans.kinds]
        for kind, array in zip(Bans.kinds, arrays):
            for record in array if isinstance(array, list) else ():
                if isinstance(record, dict):
                    record.setdefault("type", kind)
        return arrays

    def select(self, page):
        """The array a ban came in decides its table, whatever its `type` says (the docs' own example
        says "I"): no ban is left out."""
        if self.kinds == Bans.kinds:
            return page.records
        return [r for kind, part in zip(Bans.kinds, page.parts) if kind in self.kinds for r in part]


class BannedIps(Bans):
    name = "banned_ips"
    kinds = ("ip_address",)


class BannedVisitors(Bans):
    name = "banned_visitors"
    kinds = ("visitor",)


class Chats(IncrementalExportStream):
    """Chats and offline messages, in the order of their last update: a chat tagged, rated or linked to a
    ticket after it ended comes again with its changes."""

    name = "chats"
    path = "incremental/chats"
    records_key = "chats"
    replication_key = "update_timestamp"
    id_field = "id"
    fix_fields = ("webpath",)

    @staticmethod
    def fix_record(record):
        """`webpath` items are objects, but the API sometimes sends a bare list ([1493008591, "https://…"]: a
        time and a page) or a scalar. Its meaning is not ours to guess: every non-object item becomes
        {"values": item}, unchanged inside (a list inside a list also breaks targets that map arrays to
        database arrays)."""
        webpath = record.get("webpath")
        if webpath.__class__ is list:
            for index, item in enumerate(webpath):
                if item.__class__ is not dict and item is not None:
                    webpath[index] = {"values": item}


class AgentTimeline(IncrementalExportStream):
    """Agent status intervals; no end_id in the API, so the cursor is the last (start_time, agent_id)."""

    name = "agent_timeline"
    path = "incremental/agent_timeline"
    records_key = "agent_timeline"
    key_properties = ("agent_id", "start_time")
    replication_key = "start_time"
    id_field = "agent_id"
    time_unit = "microseconds"
    send_start_id = False


STREAMS = {cls.name: cls() for cls in (
    Account, Agents, Bans, BannedIps, BannedVisitors, Chats, AgentTimeline, Departments, Goals, Roles,
    Skills, Shortcuts, Triggers, RoutingSettings)}
