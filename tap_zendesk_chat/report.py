"""What a person sees on stderr: stream start/end lines, progress, the closing summary, no secrets."""
import logging
import re
import sys
import threading
import time
import traceback

import singer

LOGGER = singer.get_logger()
PROGRESS_EVERY = 5.0  # seconds between progress lines of one long stream


# A credential by its shape, for what no list of secrets can know: a token the API echoes that was cut short
# (error texts are truncated), one obtained by another process. A "Bearer"/"Basic" value with a digit or a
# token's punctuation in it (not a word of prose: "Basic authentication"), or a credential's name followed by
# = or : and a value.
_CREDENTIAL = re.compile(r"(?i)(\b(?:bearer|basic)\s+(?=[A-Za-z0-9\-._~+/]*[0-9\-_~+/])"
                         r"|\b(?:access_token|refresh_token|client_secret)[\"']?\s*[:=]\s*[\"']?)[A-Za-z0-9\-._~+/]+=*")


class RedactSecrets(logging.Filter):
    """Replaces any secret value that reaches a log line with ***, whatever code logged it."""

    def __init__(self, secrets):
        super().__init__()
        self.secrets = tuple(s for s in secrets if s and len(s) >= 4)

    def redact(self, text):
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, "***")
        return _CREDENTIAL.sub(r"\1***", text)

    def filter(self, record):
        message = record.getMessage()
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


_REDACTORS = []


def redact(text):
    """`text` as every line the tap writes is: secrets and anything shaped like a credential as ***. For what
    reaches stderr without a log record (the --test table, a traceback)."""
    for redactor in _REDACTORS:
        text = redactor.redact(text)
    return _CREDENTIAL.sub(r"\1***", text)


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


def redact_tracebacks():
    """A traceback (a bug's: the tap's own errors are one line) is printed redacted too, of any thread."""
    sys.excepthook = _print_redacted
    threading.excepthook = lambda hook: None if hook.exc_type is SystemExit else \
        _print_redacted(hook.exc_type, hook.exc_value, hook.exc_traceback)


def _print_redacted(exc_type, value, tb):
    sys.stderr.write(redact("".join(traceback.format_exception(exc_type, value, tb))))
    sys.stderr.flush()


def _duration(seconds):
    """A wait or an ETA as a person reads it: 45 s, 12 min, 2 h 5 min."""
    seconds = round(seconds)
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    return f"{seconds // 3600} h {round(seconds % 3600 / 60)} min"


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

    def add(self, count, bookmark=None, done=None):
        """`done`: the share of the run's time span written so far (an export's backfill), for the ETA."""
        self.records += count
        now = time.monotonic()
        if now - self._last_progress >= PROGRESS_EVERY:
            self._last_progress = now
            elapsed = max(now - self._start, 1e-9)
            share = ""
            if done is not None and 0 < done < 1:
                share = f"{done:.0%} of the time span done, about {_duration(elapsed * (1 - done) / done)} left; "
            LOGGER.info("%s: %s%d records so far (%.0f/s)%s", self.name, share, self.records, self.records / elapsed,
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
