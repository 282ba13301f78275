"""Base classes by paging style, and one short declaration per stream; the STREAMS registry."""
import dataclasses
import datetime
import functools
import time
from typing import Any

import msgspec
import singer

from tap_zendesk_chat import children, fastjson, pagination
from tap_zendesk_chat import state as states
from tap_zendesk_chat.errors import UnexpectedResponseError
from tap_zendesk_chat.dates import datetime_from_number, format_datetime, from_epoch, parse_datetime, to_epoch, utcnow


LOGGER = singer.get_logger()
EXPORT_LIMIT = 1000  # the most records an export page holds (the API's default and maximum)


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


@dataclasses.dataclass
class Progress:
    """Where one stream of a run stands: what its pages resume from, the version of its rows (None: not
    versioned, no ACTIVATE_VERSION), and words for the log."""
    resume: object
    version: int | None = None
    detail: str = ""  # how it starts, for the log: "full table", "incremental from ..."
    bookmark: str = ""  # where it stands, for progress lines and the closing note
    notes: tuple = ()  # lines to log before it starts
    full_table: bool = False  # an export forced to re-read everything (catalog replication-method FULL_TABLE)
    saved: object = None  # an export's slices as the last STATE has them
    span: tuple = None  # an export's time span this run, (start, stop_at) in its unit
    done: float | None = None  # the share of that span its written pages cover (all its slices together)
    own: tuple = None  # an export sharing a walk that reads more than it needs: the slices it needs (see select)
    floor: int = None  # then the time that walk starts from


class Stream:
    """What every stream answers, so that sync.py runs any stream without knowing its class:

    - `begin(state, config, method, now)`: its Progress, from its bookmark in the state (or the start);
    - `iter_pages(client, config, resume)`: its pages (pagination.Page), from `Progress.resume`;
    - `walk`: streams with the same walk share one walk of their endpoint (`merge_resumes` gives where
      that walk starts; `select` each one's share of a page);
    - `save_page(state, progress, page)`: its bookmark after a page's records were written (True: a STATE
      is due); `end(state, progress)`: its bookmark once it finished (True: a STATE is due);
    - `optional`: a 403 or 404 means "not for this account" (skipped with a log line, `optional_why`)."""

    name = None
    path = None
    key_properties = ("id",)
    replication_method = "FULL_TABLE"
    replication_key = None
    records_key = None  # the body's field holding the records; None: the body is the list
    optional = False
    optional_why = ""
    fix_record = None  # a stream's own repair of one record, run before the schema's plan
    fix_fields = ()  # the top-level fields fix_record may change
    fresh_rows = False  # `select` builds records of its own (no other stream of its walk shares them)

    @property
    def walk(self):
        return self.name

    def get_records(self, body):
        records = body.get(self.records_key) if self.records_key and isinstance(body, dict) else body
        if not isinstance(records, list):
            raise UnexpectedResponseError(f"{self.name}: expected a list of records from /{self.path}, "
                                          f"the API sent {type(records).__name__}.")
        return records

    def check(self, client):
        """One cheap request that says whether the account can read this stream (discovery, --test); its
        answer read as a sync reads it (UnexpectedResponseError when it cannot be)."""
        self.get_records(client.get(self.path))

    def merge_resumes(self, progresses):
        return progresses[0].resume

    def select(self, page, progress):
        """This stream's share of a page of its walk."""
        return page.records

    def iter_pages(self, client, config, resume):
        raise NotImplementedError

    def begin(self, state, config, method, now):
        """A full-table sync: resumed with the version of the one under way, or a new version."""
        version, since_id = states.get_full_table_progress(state, self.name)
        if version is None and config.activate_version:
            version = int(time.time() * 1000)
        return Progress(since_id, version, "full table" + (f", resuming at id {since_id}" if since_id else ""))

    def save_page(self, state, progress, page):
        return False

    def end(self, state, progress):
        states.clear_bookmark(state, self.name)
        return True


class FullTableStream(Stream):
    """One GET: a list, or one object (see ObjectStream)."""

    def iter_pages(self, client, config, resume):
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

    @property
    def walk(self):
        return self.path

    def split(self, body):
        return [body]

    def check(self, client):
        for array in self.split(client.get(self.path, {"since_id": 0, "limit": 1})):
            if not isinstance(array, list):
                raise UnexpectedResponseError(f"{self.name}: expected JSON arrays from /{self.path}, the API "
                                              f"sent {type(array).__name__}.")

    def merge_resumes(self, progresses):
        return min(p.resume for p in progresses)

    def select(self, page, progress):
        return [r for r in self.select_part(page) if not progress.resume or not isinstance(r, dict)
                or not isinstance(r.get("id"), int) or r["id"] >= progress.resume]

    def select_part(self, page):
        """This stream's records of the page, before the since_id it resumes from is applied."""
        return page.records

    def iter_pages(self, client, config, resume):
        limit = getattr(config, self.page_limit_setting)
        fetch = lambda params: client.get(self.path, params)  # noqa: E731
        return pagination.prefetched(pagination.iter_since_id(fetch, resume, limit, self.split, self.name))

    def save_page(self, state, progress, page):
        progress.resume = max(progress.resume, page.cursor)
        states.set_full_table_progress(state, self.name, progress.version, progress.resume)
        return True


class IncrementalExportStream(Stream):
    """Zendesk's incremental export: (start_time, start_id) cursor, time in seconds or microseconds.

    A catalog may force FULL_TABLE: every run then re-reads from start_date, with a version of its own
    that a resumed run keeps."""

    replication_method = "INCREMENTAL"
    time_unit = "seconds"
    send_start_id = True
    id_field = "id"
    quiet_seconds = 300  # the export refuses a start_time within 5 minutes of now

    @property
    def time_field(self):
        """The records' field the export is ordered by (the replication key, but for child streams)."""
        return self.replication_key

    def check(self, client):
        body = client.get(self.path, {"start_time": to_epoch(utcnow() - datetime.timedelta(days=1), self.time_unit),
                                      "limit": 1, "fields": f"{self.records_key}(*)"})
        if not isinstance(body, dict) or not isinstance(body.get(self.records_key), list):
            raise UnexpectedResponseError(f"{self.name}: expected an object with a '{self.records_key}' list "
                                          f"from /{self.path}.")

    def begin(self, state, config, method, now):
        unit, full_table, version = self.time_unit, method == "FULL_TABLE", None
        if full_table:
            in_progress = states.is_full_table_export_in_progress(state, self.name)
            version = states.get_full_table_progress(state, self.name)[0] if in_progress else None
            if version is None and config.activate_version:
                version = int(time.time() * 1000)
            if not in_progress:
                states.clear_bookmark(state, self.name)
        slices = states.get_export_slices(state, self.name, self.replication_key, unit, config.start_date)
        stop_at = to_epoch(now - datetime.timedelta(seconds=self.quiet_seconds), unit)
        ceiling = to_epoch(now, unit)  # no cursor goes past the sync's start (see pagination._cursor_after)
        when = format_datetime(from_epoch(slices[0][0], unit))
        notes = ()
        if len(slices) > 1:
            notes = (f"{self.name}: resuming {len(slices)} time slices the last run left unfinished",)
        elif slices[0][0] >= stop_at:
            notes = (f"{self.name}: the bookmark {when} is within 5 minutes of now; nothing to ask the API yet",)
        detail = ("full table" if full_table else "incremental") + f" from {when}"
        return Progress((slices, stop_at, ceiling), version, detail, when, notes, full_table, saved=tuple(slices),
                        span=(slices[0][0], stop_at), done=0.0)

    def merge_resumes(self, progresses):
        """Where a walk shared by several streams starts: where all of them stand, when they agree (as they
        do once they were synced together); else everything any of them still needs, each one then keeping
        only its own share of each page (Progress.own, see pagination.union_slices)."""
        needs = [tuple(p.resume[0]) for p in progresses]
        if all(n == needs[0] for n in needs):
            return progresses[0].resume
        walk = pagination.union_slices(*needs)
        for progress, need in zip(progresses, needs):
            if need != walk:
                progress.own, progress.floor = need, walk[0][0]
        _, stop_at, ceiling = progresses[0].resume
        LOGGER.info("%s: the streams of this walk stand at different bookmarks; it reads from the earliest, each "
                    "stream keeps only what it has not written (a stream just selected catches up)", self.walk)
        return list(walk), stop_at, ceiling

    def select(self, page, progress):
        if progress.own is None:
            return page.records
        own, key_of, floor = progress.own, self.key_of, progress.floor
        kept = []
        for record in page.records:
            key = key_of(record)
            if key is None or key[0] < floor or pagination.pending(key, own):  # before the floor: see _placeable
                kept.append(record)
        return kept

    def iter_pages(self, client, config, resume):
        slices, stop_at, ceiling = resume
        floor = slices[0][0]  # a record timed before it was never where its time says (pagination._placeable)
        unit = self.time_unit
        page_size = pagination.PageSize(EXPORT_LIMIT)

        def fetch_page(cursor, seen):
            fetch = lambda params: client.get(self.path, params, self.decode_page, page_size)  # noqa: E731
            return pagination.fetch_export_page(fetch, self.records_key, cursor, page_size.current, self.key_of,
                                                self.send_start_id, self.name, seen, ceiling, floor,
                                                getattr(client, "answer_seconds", None))
        return pagination.iter_export_ranges(fetch_page, slices, stop_at, config.max_parallel_requests,
                                             note=lambda text: LOGGER.info("%s: %s", self.name, text),
                                             warn=lambda text: LOGGER.warning("%s: %s", self.name, text),
                                             what=self.name, show_time=lambda t: format_datetime(from_epoch(t, unit)))

    def save_page(self, state, progress, page):
        """A STATE is due when the slices moved: after records, or a slice that finished. A stream that needs
        less than its walk reads needs, after a page, what it needed and the walk still needs."""
        cursor = page.cursor if progress.own is None else pagination.intersect_slices(progress.own, page.cursor)
        if cursor == progress.saved:
            return False
        progress.saved = cursor
        progress.done = pagination.share_done(cursor, *progress.span)
        progress.bookmark = states.set_export_cursor(state, self.name, self.replication_key, self.time_unit,
                                                     cursor, progress.version, progress.full_table)
        return True

    def end(self, state, progress):
        if not progress.full_table:
            return False
        states.clear_bookmark(state, self.name)
        return True

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
            except (msgspec.DecodeError, RecursionError):  # RecursionError: deeper than msgspec decodes
                pass
            else:
                return {name: getattr(page, name) for name in page.__struct_fields__
                        if getattr(page, name) is not msgspec.UNSET}
        return fastjson.loads(body)

    @functools.cached_property
    def _key_decoder(self):
        fields = [(self.time_field, Any, None), (self.id_field, Any, None)]
        return msgspec.json.Decoder(msgspec.defstruct("ExportKey", fields, gc=False)).decode

    def key_of(self, record):
        """The record's place in the export's order, in the cursor's terms; None when it has no readable
        time or id (a number where a timestamp string is usual is epoch time)."""
        if record.__class__ is msgspec.Raw:
            try:
                key = self._key_decoder(record)
            except msgspec.ValidationError:
                return None
            when, ident = getattr(key, self.time_field), getattr(key, self.id_field)
        elif record.__class__ is dict:
            when, ident = record.get(self.time_field), record.get(self.id_field)
        else:
            return None
        if ident.__class__ not in (int, str):
            return None
        try:
            if when.__class__ is str and when[-1:] == "Z":
                try:  # the API's own shape, read without the tolerant parser (every record's key is read)
                    instant = datetime.datetime.fromisoformat(when)
                except ValueError:
                    instant = parse_datetime(when)
            else:
                instant = parse_datetime(when) if when.__class__ is str else datetime_from_number(when)
        except ValueError:
            return None
        return (to_epoch(instant, self.time_unit), ident)


class Account(ObjectStream):
    """Answers 403 for Chat accounts inside Zendesk Support: skipped then."""

    name = "account"
    path = "account"
    key_properties = ("account_key",)
    optional = True
    optional_why = ("normal for Chat accounts inside Zendesk Support; if other streams answer 403 too, the "
                    "token's user or the plan lacks API access")


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

    def select_part(self, page):
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


class ChatChild(Chats):
    """One array of each chat as a stream of its own (children.py): read in the chats walk, from the chats
    export's pages (no request of its own), with a bookmark of its own in the walk's terms, so it can be
    selected with chats or without, and added later (it then catches up from its own bookmark)."""

    key_properties = ("chat_id", "position")
    replication_key = "chat_update_timestamp"
    fix_record = None
    fix_fields = ()
    walk = parent = "chats"
    time_field = "update_timestamp"
    fresh_rows = True

    def __init__(self, name):
        self.name = name
        self.rows = children.CHILDREN[name].rows

    def select(self, page, progress):
        if page.memo is None:
            page.memo = {}
        return self.rows(super().select(page, progress), page.memo)


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


class Conversions(IncrementalExportStream):
    """Goal conversions, each with the chat, agent and department it is attributed to, in time order."""

    name = "conversions"
    path = "incremental/conversions"
    records_key = "conversions"
    replication_key = "timestamp"


class DepartmentEvents(IncrementalExportStream):
    """Changes to departments (their status, their members), in time order."""

    name = "department_events"
    path = "incremental/department_events"
    records_key = "department_events"
    replication_key = "timestamp"


class AgentEvents(IncrementalExportStream):
    """Changes of agents' status and engagements, in time order. Limited availability: an account without
    the export is skipped with a log line."""

    name = "agent_events"
    path = "incremental/agent_events"
    records_key = "agent_events"
    replication_key = "timestamp"
    optional = True
    optional_why = "the agent events export has limited availability and this account does not have it"


STREAMS = {cls.name: cls() for cls in (
    Account, Agents, Bans, BannedIps, BannedVisitors, Chats, AgentTimeline, Departments, Goals, Roles,
    Skills, Shortcuts, Triggers, RoutingSettings, Conversions, DepartmentEvents, AgentEvents)}
STREAMS.update((name, ChatChild(name)) for name in children.CHILDREN)
