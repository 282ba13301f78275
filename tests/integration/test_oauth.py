"""Expiring tokens: the tap obtains an access token itself and renews it when a call answers 401."""
import json
import re
import subprocess
import time

import pytest

from tests.harness import (CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, ROOT, TOKEN, TapResult, _keep, make_config,
                           parse_messages, run_tap, tap_command)
from tests.integration.test_faults import assert_delivered_exactly
from tests.simulator import Dataset

CRITICAL_LINE = re.compile(r"^CRITICAL (.*)$", re.MULTILINE)
TOKEN_PATH = "oauth2/token"


@pytest.fixture(scope="module")
def dataset():
    return Dataset.generate(seed=41, chats=1000, offline_msgs=100, agents=120, timeline_entries=300,
                            history_events=3)


def oauth_config(sim, **overrides):
    options = dict(access_token=None, refresh_token=REFRESH_TOKEN, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                   token_url=sim.token_url)
    options.update(overrides)
    return make_config(sim, **options)


def api_requests(sim):
    return [r for r in sim.requests if r["path"] != TOKEN_PATH]


def test_refresh_token_grant_obtains_a_token_and_syncs(simulator, dataset):
    sim = simulator(dataset)
    result = run_tap(oauth_config(sim), timeout=60).assert_ok()
    assert_delivered_exactly(dataset, result)
    grants = [r for r in sim.requests if r["path"] == TOKEN_PATH]
    assert len(grants) == 1 and grants[0]["method"] == "POST"
    assert sim.requests[0]["path"] == TOKEN_PATH, "an API call went out before a token was obtained"
    assert "Obtained a new access token (refresh_token grant)" in result.stderr
    # Only the issued token is used; no call is made without one.
    assert all(r["headers"]["Authorization"].startswith("Bearer sim-") for r in api_requests(sim))
    assert all(r["status"] == 200 for r in api_requests(sim))


def test_token_expiring_mid_run_is_renewed_on_401(simulator, dataset):
    sim = simulator(dataset, token_ttl=1)
    # The 429 makes the tap wait past the token's 1 s life in the middle of the chats export.
    sim.inject("429", times=1, path="incremental/chats", retry_after=2)
    result = run_tap(oauth_config(sim, max_retry_wait=3), timeout=90).assert_ok()
    assert_delivered_exactly(dataset, result)
    refused = [r for r in api_requests(sim) if r["status"] == 401]
    grants = [r for r in sim.requests if r["path"] == TOKEN_PATH]
    assert refused, "the token never expired during the run"
    assert len(grants) == 1 + len(refused), "one renewal per refused call, no more"
    assert "the access token was refused; obtaining a new one" in result.stderr
    tokens = [r["headers"]["Authorization"] for r in api_requests(sim)]
    assert len(set(tokens)) == len(grants)


def test_configured_access_token_refused_is_renewed_with_the_refresh_token(simulator, dataset):
    sim = simulator(dataset)
    sim.revoke(TOKEN)
    result = run_tap(oauth_config(sim, access_token=TOKEN), timeout=60).assert_ok()
    assert_delivered_exactly(dataset, result)
    statuses = [r["status"] for r in sim.requests]
    assert statuses[:3] == [401, 200, 200] and sim.requests[1]["path"] == TOKEN_PATH


def test_client_credentials_grant_without_refresh_token(simulator, dataset):
    sim = simulator(dataset)
    result = run_tap(oauth_config(sim, refresh_token=None), timeout=60).assert_ok()
    assert_delivered_exactly(dataset, result)
    assert "Obtained a new access token (client_credentials grant)" in result.stderr
    assert sum(1 for r in sim.requests if r["path"] == TOKEN_PATH) == 1


@pytest.mark.parametrize("wrong", ["client_secret", "refresh_token", "client_id"])
def test_wrong_oauth_credentials_fail_clearly(simulator, dataset, wrong):
    sim = simulator(dataset)
    result = run_tap(oauth_config(sim, **{wrong: "wrong-value-123"}), timeout=30)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    critical = CRITICAL_LINE.findall(result.stderr)
    assert len(critical) == 1, result.stderr[-2000:]
    for phrase in ("OAuth token endpoint", sim.token_url, "refused to issue an access token", "HTTP 40",
                   "Check client_id, client_secret and refresh_token"):
        assert phrase in critical[0], f"{phrase!r} not in {critical[0]!r}"
    assert not result.record_messages()
    assert api_requests(sim) == [], "an API call went out without a token"


def test_unreachable_token_endpoint_fails_clearly(simulator, dataset):
    sim = simulator(dataset)
    config = oauth_config(sim, token_url="http://127.0.0.1:9/oauth2/token", max_retries=2, max_retry_wait=0.1)
    result = run_tap(config, timeout=30)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    critical = CRITICAL_LINE.findall(result.stderr)
    assert len(critical) == 1 and "Could not reach the OAuth token endpoint" in critical[0], result.stderr[-2000:]
    # A host that never answered in this run: one quick retry, then why it cannot be reached
    assert "it refused the connection" in critical[0] and "Check token_url" in critical[0]
    assert result.stderr.count("OAuth token endpoint: could not connect to http://127.0.0.1:9: it refused the "
                               "connection (nothing listens on that port); retry") == 1


def test_the_token_endpoint_gets_the_same_retries_as_the_api(simulator, dataset):
    """One retry loop for both: Retry-After honoured, 5xx retried, and the requests counted."""
    sim = simulator(dataset)
    sim.inject("429", times=1, path="oauth2/token", retry_after=1)
    sim.inject("503", times=1, path="oauth2/token")
    started = time.monotonic()
    result = run_tap(oauth_config(sim, max_retry_wait=3), timeout=60).assert_ok()
    assert time.monotonic() - started >= 1.0
    assert "OAuth token endpoint: rate limited (429), Retry-After 1 s; retry 1 of" in result.stderr
    assert "OAuth token endpoint: HTTP 503; retry 2 of" in result.stderr
    assert sim.count("oauth2/token") == 3


@pytest.mark.parametrize("kind", ["503", "reset"])
def test_transient_fault_at_the_token_endpoint_is_retried(simulator, dataset, kind):
    sim = simulator(dataset)
    sim.inject(kind, times=1, path=TOKEN_PATH)
    result = run_tap(oauth_config(sim, max_retry_wait=0.1), timeout=60)
    result.assert_ok()
    assert_delivered_exactly(dataset, result)
    assert [r["fault"] for r in sim.requests if r["path"] == TOKEN_PATH] == [kind, None]


def run_in(workdir, config):
    """The tap with its config file in `workdir` (written only when it is not there yet)."""
    path = workdir / "config.json"
    if not path.exists():
        path.write_text(json.dumps(config))
        path.chmod(0o640)
    proc = subprocess.run(tap_command(None, workdir=workdir) + ["--config", str(path)], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)
    _keep(proc.stdout, proc.stderr)
    return TapResult(proc.returncode, proc.stdout, proc.stderr, parse_messages(proc.stdout))


def test_a_rotated_refresh_token_is_saved_in_the_config_file_for_the_next_run(simulator, dataset, tmp_path):
    sim = simulator(dataset, rotate_refresh_tokens=True, token_ttl=1)
    # The 429 outlasts the 1 s token mid-export: the renewal must use the refresh token rotated by the first.
    sim.inject("429", times=1, path="incremental/chats", retry_after=2)
    config = oauth_config(sim, max_retry_wait=3)
    first = run_in(tmp_path, config).assert_ok()
    assert_delivered_exactly(dataset, first)
    grants = [r for r in sim.requests if r["path"] == TOKEN_PATH]
    assert len(grants) >= 2 and all(r["status"] == 200 for r in grants)
    rotated = sim.refresh_token
    assert rotated != REFRESH_TOKEN
    path = tmp_path / "config.json"
    assert json.loads(path.read_text()) == {**config, "refresh_token": rotated}  # every other key kept
    assert path.stat().st_mode & 0o777 == 0o640
    assert "saved it in the config file for the next run" in first.stderr
    assert rotated not in first.stdout + first.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]  # no temporary file left
    # The old refresh token is dead now; the saved one works, and is rotated and saved again.
    assert run_tap(config, timeout=60).returncode == 1
    run_in(tmp_path, config).assert_ok()
    assert json.loads(path.read_text())["refresh_token"] == sim.refresh_token != rotated
