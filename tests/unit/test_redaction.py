"""Secrets are redacted from any log line, whatever code logged them."""
import logging

from tap_zendesk_chat import report
from tap_zendesk_chat.report import RedactSecrets

SECRET = "tok-SECRET-unit-1234"


def make_record(msg, *args):
    return logging.LogRecord("tap", logging.INFO, __file__, 1, msg, args, None)


def test_a_secret_in_the_message_or_its_arguments_is_redacted():
    redact = RedactSecrets([SECRET, "short"[:3]])
    for record in (make_record(f"token {SECRET} refused"), make_record("token %s refused", SECRET)):
        assert redact.filter(record) is True
        assert record.getMessage() == "token *** refused"


def test_lines_without_secrets_are_left_alone_and_tiny_values_are_not_secrets():
    redact = RedactSecrets([SECRET, "abc"])  # a 3-character "secret" would blank out ordinary words
    record = make_record("abc %d", 5)
    redact.filter(record)
    assert record.getMessage() == "abc 5" and record.args == (5,)


def test_a_secret_that_arrives_during_the_run_is_redacted_from_then_on(monkeypatch):
    redact = RedactSecrets([SECRET])
    monkeypatch.setattr(report, "_REDACTORS", [redact])
    rotated = "refresh-SECRET-rotated-5678"
    report.add_secret(rotated)
    record = make_record("new refresh token %s", rotated)
    redact.filter(record)
    assert record.getMessage() == "new refresh token ***"
