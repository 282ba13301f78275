"""A backfill's progress line: the share of the time span written, records, rate, an ETA, the bookmark."""
import collections
import types

from tap_zendesk_chat import report


def test_progress_line_shows_share_eta_and_bookmark(monkeypatch):
    lines = []
    monkeypatch.setattr(report, "LOGGER", types.SimpleNamespace(info=lambda fmt, *a: lines.append(fmt % a)))
    client = types.SimpleNamespace(requests_by_endpoint=collections.Counter(), retries_by_endpoint=collections.Counter())
    stream = report.StreamReport("chats", client)
    stream._start -= 60  # a minute in
    stream._last_progress -= report.PROGRESS_EVERY
    stream.add(30_000, "2026-06-01T00:00:00Z", 0.25)
    assert lines == ["chats: 25% of the time span done, about 3 min left; 30000 records so far (500/s), "
                     "bookmark 2026-06-01T00:00:00Z"]


def test_progress_line_without_a_share_is_records_and_rate(monkeypatch):
    lines = []
    monkeypatch.setattr(report, "LOGGER", types.SimpleNamespace(info=lambda fmt, *a: lines.append(fmt % a)))
    client = types.SimpleNamespace(requests_by_endpoint=collections.Counter(), retries_by_endpoint=collections.Counter())
    stream = report.StreamReport("agents", client)
    stream._last_progress -= report.PROGRESS_EVERY
    stream.add(100)
    assert lines[0].startswith("agents: 100 records so far (")


def test_durations_read_as_a_person_reads_them():
    assert [report._duration(s) for s in (4.4, 89, 700, 7500)] == ["4 s", "89 s", "12 min", "2 h 5 min"]
