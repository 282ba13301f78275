"""The loop: SCHEMA → pages → records → STATE, in that order, per stream.

A STATE is written only after every record it covers; a page's records are written together, then its STATE."""
import contextlib
import copy
import dataclasses
import gc
import time

import singer
from singer import metrics

from tap_zendesk_chat import state as states
from tap_zendesk_chat.errors import ApiError, EndpointError, Interrupted, StreamsFailedError
from tap_zendesk_chat.dates import format_datetime, utcnow
from tap_zendesk_chat.report import StreamReport, log_summary
from tap_zendesk_chat.streams import STREAMS
from tap_zendesk_chat.transform import UNEXPECTED_FIELD, Raw, RecordPlan

LOGGER = singer.get_logger()


@dataclasses.dataclass
class _Member:
    """One stream of a walk, with where it stands."""
    name: str
    stream: object
    progress: object  # streams.Progress
    report: StreamReport
    plan: RecordPlan
    table: str  # the name its messages carry
    flatten: object = None  # SelectedStream.flatten: .encode(encoded records) -> their flattened form


class Sync:
    """One sync run over the selected streams."""

    def __init__(self, config, client, writer, state, selected, stop_event, rejects=None):
        self.config = config
        self.rejects = rejects  # rejects.Rejects: where records without a key go, or None to only count them
        self.client = client
        self.writer = writer
        self.state = state
        self.selected = selected
        self.stop = stop_event
        self.reports = []
        self.now = utcnow()
        self._written = copy.deepcopy(state)
        self._started = time.monotonic()
        self.blocked = 0.0  # seconds spent writing to stdout: waiting for the target to read, when its pipe is full

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
            self._flush_state()
            self._close_reports("stopped")
            raise
        except Exception:
            self.writer.discard()
            self._close_reports("failed")
            raise
        finally:
            log_summary(self.reports)
            if self.rejects is not None and self.rejects.count:
                LOGGER.warning("%d records without a key a target could upsert them by are in %s (one JSON line each: "
                               "stream, reason, record as sent)", self.rejects.count, self.rejects.path)
                self.rejects.close()
            self._log_blocked()
        if failed:
            raise StreamsFailedError(failed)

    def _write_state(self):
        self._flush_state()
        self._written = copy.deepcopy(self.state)

    def _flush_state(self):
        """The STATE, and the records before it, to stdout: the only writes to it, so the time they take is
        the time the target kept the tap waiting."""
        started = time.monotonic()
        try:
            self.writer.write_state(self.state)
        finally:
            self.blocked += time.monotonic() - started

    def _log_blocked(self):
        """The summary's last line: how long stdout held the tap up; when it was most of the run, the target
        set the pace (a faster API or more requests at once would not have made the run shorter)."""
        run = time.monotonic() - self._started
        pace = "; the target, not the API, set the pace" if self.blocked >= run / 2 and run >= 1 else ""
        LOGGER.info("  blocked on stdout: %.1f s of %.1f s (waiting for the target to read)%s", self.blocked, run,
                    pace)

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
        """Streams sharing a walk of their endpoint are one group; the interrupted group goes first."""
        groups = {}
        for selected in self.selected:
            groups.setdefault(STREAMS[selected.name].walk, []).append(selected)
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

    def _begin(self, selected, counts_requests):
        stream = STREAMS[selected.name]
        progress = stream.begin(self.state, self.config, selected.replication_method, self.now)
        self.writer.write_schema(selected.table, selected.schema, selected.key_properties,
                                 [stream.replication_key] if stream.replication_key else None)
        report = StreamReport(selected.name, self.client, counts_requests)
        self.reports.append(report)
        report.start(progress.detail)
        for note in progress.notes:
            LOGGER.info(note)
        plan = RecordPlan(selected.record_schema, selected.deselected, stream.fix_record, stream.fix_fields,
                          selected.key_properties, selected.name,
                          on_withheld=None if self.rejects is None else
                          lambda why, text, name=selected.table: self.rejects.add(name, why, text))
        return _Member(selected.name, stream, progress, report, plan, selected.table, selected.flatten)

    def _finish(self, plan, report, note=""):
        for (pattern, declared, seen), count in sorted(plan.unfit.items()):
            LOGGER.warning("%s: %d values of %s declared %s were %s: set to null, kept in %s", report.name, count,
                           pattern, declared, seen, UNEXPECTED_FIELD)
        if plan.withheld:
            kept = f"; kept, as sent, in {self.rejects.path}" if self.rejects is not None else ""
            LOGGER.warning("%s: %d records could not be written (a target cannot upsert a record without its key)%s; "
                           "first: %s", report.name, plan.withheld, kept, plan.withheld_example)
        if plan.raw_records:
            LOGGER.info("%s: %d of %d records went out as the API sent them; %d needed changes (0/1 booleans, "
                        "timestamps not in UTC, webpath items, unexpected values or deselected fields)", report.name,
                        plan.raw_records - plan.rewritten, plan.raw_records, plan.rewritten)
        report.unfit, report.withheld = plan.unfit_total, plan.withheld
        report.finish("done", note)
        if self.config.metrics == "streams":  # one line a stream, as singer-python writes a counter
            metrics.log(LOGGER, metrics.Point("counter", metrics.Metric.record_count, report.records,
                                              {metrics.Tag.endpoint: report.name}))

    def _write_page(self, members, page):
        """A page's records to every stream of the walk, then each one's bookmark, then (if due) the STATE."""
        due = False
        for member in members:
            records = member.stream.select(page, member.progress)
            if len(members) > 1 and not member.stream.fresh_rows:
                # the transform works in place on decoded records; each stream gets its own copy
                records = [r if r.__class__ is Raw else copy.deepcopy(r) for r in records]
            encoded = member.plan.encode(records)
            if member.flatten is not None:
                encoded = member.flatten.encode(encoded)
            self.writer.write_encoded(member.table, encoded, member.progress.version, format_datetime(utcnow()))
            due = member.stream.save_page(self.state, member.progress, page) or due
            # the bookmark of the STATE after this page, and the share of the run's time span written
            member.report.add(len(encoded), member.progress.bookmark, getattr(member.progress, "done", None))
        page.records = page.parts = page.memo = None  # one page in memory at a time
        if due:
            self._write_state()
        self._check_stop()

    def _sync_group(self, group):
        """One walk of an endpoint: each page's records go to every stream of the group, then each stream
        saves its bookmark and, when one is due, a STATE covers them all."""
        members = [self._begin(selected, counts_requests=index == 0) for index, selected in enumerate(group)]
        first = members[0].stream
        try:
            resume = first.merge_resumes([m.progress for m in members])
            # contextlib.closing: a walk's fetcher threads stop as soon as it does, whatever stopped it
            with contextlib.closing(first.iter_pages(self.client, self.config, resume)) as pages:
                for page in pages:
                    self._write_page(members, page)
        except EndpointError as exc:
            if not first.optional:
                raise
            self.writer.discard()
            self._restore_written()
            LOGGER.info("%s: skipped; %s (%s)", first.name, exc, first.optional_why)
            for member in members:
                member.report.finish("skipped", str(exc.status or "unavailable"))
            return
        due = False
        for member in members:
            if member.progress.version is not None:
                self.writer.write_activate_version(member.table, member.progress.version)
            due = member.stream.end(self.state, member.progress) or due
            self._finish(member.plan, member.report,
                         f"bookmark {member.progress.bookmark}" if member.progress.bookmark else "")
        if due:
            self._write_state()
