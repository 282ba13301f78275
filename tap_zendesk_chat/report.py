"""What a person sees on stderr: stream start/end lines, progress, the closing summary, no secrets."""
import logging
import time

import singer

LOGGER = singer.get_logger()
PROGRESS_EVERY = 5.0  # seconds between progress lines of one long stream


class RedactSecrets(logging.Filter):
    """Replaces any secret value that reaches a log line with ***, whatever code logged it."""

    def __init__(self, secrets):
        super().__init__()
        self.secrets = tuple(s for s in secrets if s and len(s) >= 4)

    def filter(self, record):
        message = record.getMessage()
        if any(s in message for s in self.secrets):
            for secret in self.secrets:
                message = message.replace(secret, "***")
            record.msg, record.args = message, None
        return True


_REDACTORS = []


def add_secret(value):
    """A secret that arrived during the run (a rotated refresh token): redact it too from now on."""
    for redactor in _REDACTORS:
        if value and len(value) >= 4 and value not in redactor.secrets:
            redactor.secrets += (value,)


def install_redaction(secrets):
    """Every log record of any logger is redacted when it is made: handlers and their filters come and go
    (singer-python's metrics timer reloads its logging config, replacing the root handler), records stay."""
    redactor = RedactSecrets(secrets)
    _REDACTORS.append(redactor)
    make_record = logging.getLogRecordFactory()

    def redacted_record(*args, **kwargs):
        record = make_record(*args, **kwargs)
        redactor.filter(record)
        return record

    logging.setLogRecordFactory(redacted_record)


class StreamReport:
    """Counts for one stream: records, requests, retries, seconds; logs progress at most every few seconds."""

    def __init__(self, name, client, counts_requests=True):
        self.name = name
        self.counts_requests = counts_requests  # False for the 2nd+ streams of a shared walk
        self.client = client
        self.records = 0
        self.status = "running"
        self.note = ""
        self._start = time.monotonic()
        self._last_progress = self._start
        self._requests_before = sum(client.requests_by_endpoint.values())
        self._retries_before = sum(client.retries_by_endpoint.values())
        self.requests = self.retries = 0
        self.unfit = 0  # values that did not fit their declared type (null, kept in _unexpected_values)
        self.withheld = 0  # records that could not be written (no key)
        self.seconds = 0.0

    def start(self, detail):
        LOGGER.info("%s: starting (%s)", self.name, detail)

    def add(self, count, bookmark=None):
        self.records += count
        now = time.monotonic()
        if now - self._last_progress >= PROGRESS_EVERY:
            self._last_progress = now
            rate = self.records / max(now - self._start, 1e-9)
            LOGGER.info("%s: %d records so far (%.0f/s)%s", self.name, self.records, rate,
                        f", bookmark {bookmark}" if bookmark else "")

    def finish(self, status="done", note=""):
        self.status, self.note = status, note
        self.seconds = time.monotonic() - self._start
        if self.counts_requests:
            self.requests = sum(self.client.requests_by_endpoint.values()) - self._requests_before
            self.retries = sum(self.client.retries_by_endpoint.values()) - self._retries_before
        LOGGER.info("%s: %s, %d records, %d requests, %d retries, %.1f s%s", self.name, status, self.records,
                    self.requests, self.retries, self.seconds, f" ({note})" if note else "")


def log_summary(reports):
    if not reports:
        return
    width = max(len(r.name) for r in reports)
    row = "  %-*s  %-8s %9s %8s %7s %8s %10s %8s"
    LOGGER.info("Summary:")
    LOGGER.info(row, width, "stream", "status", "records", "requests", "retries", "seconds", "unexpected", "withheld")
    for r in reports:
        LOGGER.info(row, width, r.name, r.status, r.records, r.requests, r.retries, f"{r.seconds:.1f}", r.unfit,
                    r.withheld)
    LOGGER.info(row, width, "total", "", sum(r.records for r in reports), sum(r.requests for r in reports),
                sum(r.retries for r in reports), f"{sum(r.seconds for r in reports):.1f}",
                sum(r.unfit for r in reports), sum(r.withheld for r in reports))
