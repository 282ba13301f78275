"""Base classes by paging style, and one short declaration per stream; the STREAMS registry."""
from tap_zendesk_chat import pagination
from tap_zendesk_chat.client import UnexpectedResponseError
from tap_zendesk_chat.dates import parse_datetime, to_epoch


class Stream:
    name = None
    path = None
    key_properties = ("id",)
    replication_method = "FULL_TABLE"
    replication_key = None
    records_key = None  # the body's field holding the records; None: the body is the list
    fix_record = None  # a stream's own repair of one record, run before the schema's plan

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

    def select(self, records):
        """This stream's share of the records of its endpoint."""
        return records

    def iter_pages(self, client, config, since_id=0):
        limit = getattr(config, self.page_limit_setting)
        fetch = lambda params: client.get(self.path, params)  # noqa: E731
        return pagination.iter_since_id(fetch, since_id, limit, self.split, self.name)


class IncrementalExportStream(Stream):
    """Zendesk's incremental export: (start_time, start_id) cursor, time in seconds or microseconds."""

    replication_method = "INCREMENTAL"
    time_unit = "seconds"
    send_start_id = True

    def key_of(self, record):
        """The record's place in the export's order, in the cursor's terms."""
        try:
            when = parse_datetime(record[self.replication_key])
            key = record[self.id_field]
        except (KeyError, TypeError, ValueError):
            raise UnexpectedResponseError(f"{self.name}: a record without a readable {self.replication_key} and "
                                          f"{self.id_field} ({str(record)[:120]}).") from None
        return (to_epoch(when, self.time_unit), key)

    def iter_pages(self, client, config, cursor, stop_at):
        fetch = lambda params: client.get(self.path, params)  # noqa: E731
        return pagination.iter_export(fetch, self.records_key, cursor, 1000, self.key_of,
                                      self.send_start_id, stop_at, self.name)


class Account(ObjectStream):
    name = "account"
    path = "account"
    key_properties = ("account_key",)


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

    def select(self, records):
        return [r for r in records if r["type"] in self.kinds]


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

    @staticmethod
    def fix_record(record):
        """`webpath` items are objects, but the API sometimes sends a bare [from, to] pair: make it one.
        (A list inside a list also breaks targets that map arrays to database arrays.)"""
        webpath = record.get("webpath")
        if webpath.__class__ is list:
            for index, item in enumerate(webpath):
                if item.__class__ is list:
                    webpath[index] = {"from": item[0], "to": item[1]} if len(item) == 2 else {"values": item}


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
