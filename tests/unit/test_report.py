"""Progress lines of a long stream: at most one every PROGRESS_EVERY seconds, with the count and rate."""
import logging
import types

from tap_zendesk_chat import report


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_progress_lines_come_at_most_every_few_seconds(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(report.time, "monotonic", clock)
    lines = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())
    report.LOGGER.addHandler(handler)
    try:
        client = types.SimpleNamespace(requests_by_endpoint={"chats": 0}, retries_by_endpoint={"chats": 0})
        stream = report.StreamReport("chats", client)
        for _ in range(40):  # 40 pages, one a second, 1,000 records each
            clock.now += 1.0
            stream.add(1000, "2024-05-01T10:00:00Z")
        client.requests_by_endpoint["chats"] = 40
        stream.finish("done")
    finally:
        report.LOGGER.removeHandler(handler)
    progress = [line for line in lines if "so far" in line]
    assert len(progress) == 40 // int(report.PROGRESS_EVERY)
    assert progress[0].startswith("chats: 5000 records so far (1000/s)")
    assert lines[-1].startswith("chats: done, 40000 records, 40 requests, 0 retries, 40.0 s")
