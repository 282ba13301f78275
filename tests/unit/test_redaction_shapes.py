"""What no list of secrets knows is redacted by its shape: a credential cut short in an error text, one the
token endpoint issued; ordinary words are left alone."""
import pytest

from tap_zendesk_chat import check, report
from tap_zendesk_chat.errors import EndpointError


@pytest.mark.parametrize("text, expected", [
    ("headers: Authorization: Bearer tok-SEC", "headers: Authorization: Bearer ***"),
    ("authorization: basic c2ltLWNsaWVudDpzZWNyZXQ=)", "authorization: basic ***)"),
    ("body access_token=abc.def&scope=read", "body access_token=***&scope=read"),
    ('{"refresh_token": "r-123", "x": 1}', '{"refresh_token": "***", "x": 1}'),
    ("'access_token' is required", "'access_token' is required"),
    ("give refresh_token, client_id and client_secret so the tap renews tokens", None),
    ('"token_type": "Bearer", "expires_in": 3600', None),
    ("Basic authentication is not supported; send a Bearer token.", None),
])
def test_a_credential_is_redacted_by_its_shape(monkeypatch, text, expected):
    monkeypatch.setattr(report, "_REDACTORS", [])
    assert report.redact(text) == (text if expected is None else expected)


def test_a_message_is_redacted_before_the_check_table_cuts_it(monkeypatch):
    secret = "tok-SECRET-unit-cut-0123456789"
    monkeypatch.setattr(report, "_REDACTORS", [report.RedactSecrets([secret])])
    message = "x" * 190 + f" token {secret} echoed"  # the cut at 200 falls inside the secret
    shown = check._short(EndpointError(message, 400))
    assert "tok-SEC" not in shown and shown.endswith("token ***")
