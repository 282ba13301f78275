"""The loop: SCHEMA → pages → records → STATE, in that order, per stream.

A STATE is written only after every record it covers; a page's records are written together, then its STATE."""
import copy
import dataclasses
import datetime
import gc
import time

import singer

from tap_zendesk_chat import state as states
from tap_zendesk_chat.client import ApiError, ForbiddenError, Interrupted
from tap_zendesk_chat.dates import format_datetime, from_epoch, to_epoch, utcnow
from tap_zendesk_chat.report import StreamReport, log_summary
from tap_zendesk_chat.streams import STREAMS, IncrementalExportStream, SinceIdStream
from tap_zendesk_chat.transform import UNEXPECTED_FIELD, RecordPlan

LOGGER = singer.get_logger()
EXPORT_QUIET_SECONDS = 300  # the export refuses a start_time within 5 minutes of now


@dataclasses.dataclass
class _Member:
    """One stream of a full-table group, with where it stands."""
    name: str
    version: int | None
    since_id: int
    stream: object
    report: StreamReport
    plan: RecordPlan


class StreamsFailedError(ApiError):
    """Some streams failed for good while the others were synced."""

    def __init__(self, failed):
        causes = "; ".join(f"{name}: {cause}" for name, cause in failed)
        super().__init__(f"{len(failed)} stream(s) failed and were not synced in full: "
                         f"{', '.join(name for name, _ in failed)}. Their last STATE is kept, so the next run "
                         f"resumes them; every other stream was synced. Causes: {causes}")
        self.streams = [name for name, _ in failed]


class Sync:
    """One sync run over the selected streams."""

    def __init__(self, config, client, writer, state, selected, stop_event):
        self.config = config
        self.client = client
        self.writer = writer
        self.state = state
        self.selected = selected
        self.stop = stop_event
        self.reports = []
        self.now = utcnow()
        self._written = copy.deepcopy(state)

    def run(self):
        # Records are trees without cycles, freed by reference counting: the cyclic collector only costs
        # time here (a fifth of the CPU per chat). Keep it, rarely, for the odd cycle of a retry's exception.
        gc.freeze()
        gc.set_threshold(100_000, 50, 1000)
        failed = []
        try:
            for group in self._ordered_groups():
                states.set_currently_syncing(self.state, group[0].name)
                self._write_state()
                try:
                    self._sync_group(group)
                except ApiError as exc:
                    if not exc.endpoint_only:
                        raise
                    failed += self._give_up_group(group, exc)
            states.set_currently_syncing(self.state, None)
            self._write_state()
        except Interrupted:
            self.writer.discard()  # records of an unfinished page: no STATE covers them
            self._restore_written()
            self.writer.write_state(self.state)
            self._close_reports("stopped")
            raise
        except Exception:
            self.writer.discard()
            self._close_reports("failed")
            raise
        finally:
            log_summary(self.reports)
        if failed:
            raise StreamsFailedError(failed)

    def _write_state(self):
        self.writer.write_state(self.state)
        self._written = copy.deepcopy(self.state)

    def _restore_written(self):
        """Bookmarks as the last STATE written says: what a page in flight changed is not covered."""
        self.state["bookmarks"] = copy.deepcopy(self._written["bookmarks"])

    def _give_up_group(self, group, exc):
        """One endpoint failed for good: drop what no STATE covers, keep the streams' last written
        bookmarks (the next run resumes there) and go on with the other streams."""
        self.writer.discard()
        self._restore_written()
        names = [s.name for s in group]
        LOGGER.error("%s: failed, the other streams go on: %s", ", ".join(names), exc)
        for report in self.reports:
            if report.name in names and report.status == "running":
                report.finish("failed", type(exc).__name__)
        return [(name, str(exc)) for name in names]

    def _close_reports(self, status):
        for report in self.reports:
            if report.status == "running":
                report.finish(status)

    def _ordered_groups(self):
        """Streams sharing an endpoint are one group (one walk); the interrupted group goes first."""
        groups = {}
        for selected in self.selected:
            stream = STREAMS[selected.name]
            key = stream.path if isinstance(stream, SinceIdStream) else stream.name
            groups.setdefault(key, []).append(selected)
        ordered = list(groups.values())
        current = self.state.get("currently_syncing")
        for index, group in enumerate(ordered):
            if any(s.name == current for s in group):
                LOGGER.info("Resuming with '%s', where the last run stopped", current)
                ordered.insert(0, ordered.pop(index))
                break
        return ordered

    def _check_stop(self):
        if self.stop.is_set():
            raise Interrupted()

    def _begin(self, selected, detail, counts_requests=True):
        stream = STREAMS[selected.name]
        self.writer.write_schema(selected.name, selected.schema, stream.key_properties,
                                 [stream.replication_key] if stream.replication_key else None)
        report = StreamReport(selected.name, self.client, counts_requests)
        self.reports.append(report)
        report.start(detail)
        return stream, report, RecordPlan(selected.schema, selected.deselected, stream.fix_record, stream.fix_fields,
                                          stream.key_properties, selected.name)

    def _emit(self, name, stream, plan, records, version, report, bookmark=None):
        encoded = plan.encode(records)
        self.writer.write_encoded(name, encoded, version, format_datetime(utcnow()))
        report.add(len(encoded), bookmark)

    def _finish(self, plan, report, note=""):
        for (pattern, declared, seen), count in sorted(plan.unfit.items()):
            LOGGER.warning("%s: %d values of %s declared %s were %s: set to null, kept in %s", report.name, count,
                           pattern, declared, seen, UNEXPECTED_FIELD)
        if plan.withheld:
            LOGGER.warning("%s: %d records could not be written (a target cannot upsert a record without its key); "
                           "first: %s", report.name, plan.withheld, plan.withheld_example)
        if plan.raw_records:
            LOGGER.info("%s: %d of %d records went out as the API sent them; %d needed changes (0/1 booleans, "
                        "timestamps not in UTC, webpath items, unexpected values or deselected fields)", report.name,
                        plan.raw_records - plan.rewritten, plan.raw_records, plan.rewritten)
        report.unfit, report.withheld = plan.unfit_total, plan.withheld
        report.finish("done", note)

    # -- full-table streams: one GET, or an id-cursor walk shared by the streams of one endpoint ----------
    def _sync_group(self, group):
        stream = STREAMS[group[0].name]
        if isinstance(stream, IncrementalExportStream):
            return self._sync_export(group[0], stream)
        members = []
        for selected in group:
            version, since_id = states.get_full_table_progress(self.state, selected.name)
            if version is None and self.config.activate_version:
                version = int(time.time() * 1000)
            detail = "full table" + (f", resuming at id {since_id}" if since_id else "")
            members.append(_Member(selected.name, version, since_id,
                                   *self._begin(selected, detail, counts_requests=not members)))
        try:
            if isinstance(stream, SinceIdStream):
                pages = stream.iter_pages(self.client, self.config, min(m.since_id for m in members))
            else:
                pages = stream.iter_pages(self.client, self.config)
            for page in pages:
                for member in members:
                    records = page.records
                    if isinstance(member.stream, SinceIdStream):
                        records = [r for r in member.stream.select(page) if not member.since_id
                                   or not isinstance(r, dict) or not isinstance(r.get("id"), int)
                                   or r["id"] >= member.since_id]
                        if len(members) > 1:  # the transform works in place; each stream gets its own copy
                            records = [copy.deepcopy(r) for r in records]
                    self._emit(member.name, member.stream, member.plan, records, member.version, member.report)
                    if page.cursor is not None:
                        member.since_id = max(member.since_id, page.cursor)
                        states.set_full_table_progress(self.state, member.name, member.version, member.since_id)
                if page.cursor is not None:
                    self._write_state()
                self._check_stop()
        except ForbiddenError as exc:
            if not stream.optional:
                raise
            LOGGER.info("account: skipped; %s (normal for Chat accounts inside Zendesk Support; if other streams "
                        "answer 403 too, the token's user or the plan lacks API access)", exc)
            members[0].report.finish("skipped", "403")
            return
        for member in members:
            if member.version is not None:
                self.writer.write_activate_version(member.name, member.version)
            states.clear_bookmark(self.state, member.name)
            self._finish(member.plan, member.report)
        self._write_state()

    # -- incremental exports -------------------------------------------------------------------------------
    def _sync_export(self, selected, stream):
        unit = stream.time_unit
        full_table = selected.replication_method == "FULL_TABLE"
        version = None
        if full_table:
            in_progress = states.is_full_table_export_in_progress(self.state, selected.name)
            version = states.get_full_table_progress(self.state, selected.name)[0] if in_progress else None
            if version is None and self.config.activate_version:
                version = int(time.time() * 1000)
            if not in_progress:
                states.clear_bookmark(self.state, selected.name)
        cursor = states.get_export_cursor(self.state, selected.name, stream.replication_key, unit,
                                          self.config.start_date)
        stop_at = to_epoch(self.now - datetime.timedelta(seconds=EXPORT_QUIET_SECONDS), unit)
        when = format_datetime(from_epoch(cursor[0], unit))
        stream, report, plan = self._begin(selected, ("full table" if full_table else "incremental")
                                           + f" from {when}")
        if cursor[0] >= stop_at:
            LOGGER.info("%s: the bookmark %s is within 5 minutes of now; nothing to ask the API yet", selected.name,
                        when)
        for page in stream.iter_pages(self.client, self.config, cursor, stop_at):
            self._emit(selected.name, stream, plan, page.records, version, report, when)
            emitted, page.records = bool(page.records), None  # one page in memory at a time
            if emitted:
                when = states.set_export_cursor(self.state, selected.name, stream.replication_key, unit, page.cursor,
                                                version, full_table)
                self._write_state()
            self._check_stop()
        if full_table:
            if version is not None:
                self.writer.write_activate_version(selected.name, version)
            states.clear_bookmark(self.state, selected.name)
            self._write_state()
        self._finish(plan, report, f"bookmark {when}")
