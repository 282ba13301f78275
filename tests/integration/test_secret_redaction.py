"""No secret on any path (issue 17, case 8): an API error that echoes the Authorization header reached the
`--test` table verbatim (it is written to stderr, not logged, so the log redaction never saw it)."""
import re

from tests.harness import CLIENT_ID, CLIENT_SECRET, SECRETS, make_config, run_tap
from tests.integration.test_bad_input import assert_one_clear_line


def _fragments(secret, size=8):
    return {secret[i:i + size] for i in range(len(secret) - size + 1)}


def assert_no_secret(text, secrets=SECRETS):
    """Not the secrets, nor any 8 characters of one (a message cut short leaves part of a token)."""
    leaked = [s for s in secrets if any(part in text for part in _fragments(s))]
    assert not leaked, f"{len(leaked)} secret(s) or a part of one in the tap's output"  # never print them


def test_the_check_table_never_shows_a_token_the_api_echoes(simulator):
    sim = simulator()
    sim.hostile.add("echo_authorization")
    result = run_tap(make_config(sim), args=["--test"], timeout=60, parse=False)
    assert result.returncode == 1, result.stderr[-3000:]
    assert result.stdout == ""
    assert any("Bearer" in r["headers"].get("Authorization", "") for r in sim.requests)
    assert re.search(r"^agents\s+/agents\s+400\s+.*Authorization: Bearer \*\*\*", result.stderr, re.MULTILINE), \
        result.stderr[-3000:]
    assert_no_secret(result.stdout + result.stderr)


def test_a_token_obtained_during_the_run_is_never_shown_either(simulator):
    """The access token the token endpoint issues is no secret of the config: redacted once obtained."""
    sim = simulator()
    sim.hostile.add("echo_authorization")
    config = make_config(sim, access_token=None, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                         token_url=sim.token_url)
    result = run_tap(config, args=["--test"], timeout=60, parse=False)
    assert result.returncode == 1, result.stderr[-3000:]
    issued = {r["headers"]["Authorization"].split(" ", 1)[1] for r in sim.requests
              if r["headers"].get("Authorization", "").startswith("Bearer ")}
    assert issued, "the tap did not obtain a token"
    assert_no_secret(result.stdout + result.stderr, SECRETS + tuple(issued))


def test_a_sync_never_logs_a_token_the_api_echoes(simulator):
    sim = simulator()
    sim.hostile.add("echo_authorization")
    result = run_tap(make_config(sim), timeout=120)
    assert result.returncode == 1, result.stderr[-3000:]
    line = assert_one_clear_line(result, ["failed", "Authorization: Bearer ***"])
    assert "agents" in line
    assert result.records("chats"), "the exports, which answer as usual, were not synced"
    assert_no_secret(result.stdout + result.stderr)
