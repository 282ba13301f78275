"""Secrets are redacted from any log line, whatever code logged them."""
import io
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


def test_install_redaction_covers_the_handlers_there_and_those_added_later(monkeypatch):
    """A line another library logs reaches handlers that were there before install_redaction, and a handler
    added to a logger later: both print it redacted."""
    monkeypatch.setattr(report, "_REDACTORS", [])
    monkeypatch.setattr(logging, "_logRecordFactory", logging.getLogRecordFactory())  # restored after the test
    root = logging.getLogger()
    existing, added_later = io.StringIO(), io.StringIO()
    existing_handler = logging.StreamHandler(existing)  # as singer's stderr handler, there before the install
    later_handler = logging.StreamHandler(added_later)
    level = root.level
    root.addHandler(existing_handler)
    root.setLevel(logging.INFO)
    try:
        report.install_redaction([SECRET])
        logging.getLogger("urllib3.connectionpool").warning("GET https://acme.example/%s/account", SECRET)
        report.LOGGER.info("token %s refused", SECRET)
        backoff = logging.getLogger("backoff")
        backoff.addHandler(later_handler)  # called before root's handlers for a line of this logger
        backoff.error("giving up on %s", SECRET)
    finally:
        root.removeHandler(existing_handler)
        logging.getLogger("backoff").removeHandler(later_handler)
        root.setLevel(level)
    assert SECRET not in existing.getvalue(), "a handler there before install_redaction printed the secret"
    assert "GET https://acme.example/***/account" in existing.getvalue()
    assert "token *** refused" in existing.getvalue()
    assert "giving up on ***" in existing.getvalue()
    assert added_later.getvalue() == "giving up on ***\n", "a handler added later printed the secret"


def test_redaction_survives_the_handlers_being_replaced(monkeypatch):
    """singer-python's metrics timer reloads its logging config, replacing the root handler and its
    filters: a line another library logs afterwards must still be redacted."""
    monkeypatch.setattr(report, "_REDACTORS", [])
    monkeypatch.setattr(logging, "_logRecordFactory", logging.getLogRecordFactory())  # restored after the test
    root = logging.getLogger()
    level, before = root.level, list(root.handlers)
    report.install_redaction([SECRET])
    replaced = io.StringIO()
    handler = logging.StreamHandler(replaced)
    try:
        for old in list(root.handlers):
            root.removeHandler(old)
        root.addHandler(handler)  # a new handler, without the tap's filter
        root.setLevel(logging.INFO)
        logging.getLogger("urllib3.connectionpool").warning("GET https://acme.example/?t=%s", SECRET)
    finally:
        root.removeHandler(handler)
        for old in before:
            root.addHandler(old)
        root.setLevel(level)
    assert replaced.getvalue() == "GET https://acme.example/?t=***\n"


def test_an_api_error_echoing_a_secret_across_the_300th_character_keeps_no_part_of_it(monkeypatch):
    """api_message cuts the API's text at 300 characters: redacted first, a secret cut in half is not left
    half visible (redaction after the cut found no whole secret to replace)."""
    import requests

    from tap_zendesk_chat.errors import api_message

    secret = "Zq8w" * 10  # 40 characters of no credential shape: only the exact value can find it
    monkeypatch.setattr(report, "_REDACTORS", [RedactSecrets([secret])])
    response = requests.Response()
    response.status_code = 401
    response._content = ('{"error": "invalid_token", "description": "' + "x" * 270 + secret + '"}').encode()
    text = api_message(response)
    assert secret[:12] not in text and len(text) <= 300
