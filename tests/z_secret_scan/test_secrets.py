"""Secrets never leak: runs last (tests/z_secret_scan: pytest collects it after every other folder) and scans everything this test session's tap runs wrote.

The scan covers every stdout/stderr the harness kept in RUN_LOG_DIR since this session began, plus a
fresh run of its own that renews tokens over OAuth, meets faults, a hostile next_page, and ends in an
error. The token, the refresh token and the client secret must appear nowhere: not in a log line,
not in a STATE, not in a URL the simulator saw."""
import json
import os
import time
import urllib.parse

import pytest

from tests.harness import (CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, RUN_LOG_DIR, SECRETS, TOKEN, make_config,
                           run_tap)
from tests.simulator import Dataset, Simulator

API_ROOT = "/api/v2/chat/"
TOKEN_PATH = "/oauth2/token"


def _session_start():
    """When this pytest process started (files older than that belong to earlier sessions)."""
    try:
        with open("/proc/self/stat") as handle:
            ticks = int(handle.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as handle:
            uptime = float(handle.read().split()[0])
        return time.time() - uptime + ticks / os.sysconf("SC_CLK_TCK") - 1
    except (OSError, ValueError, IndexError):
        return None


def _session_files(start):
    files = []
    for path in sorted(RUN_LOG_DIR.glob("*.std*")):
        stamp, _, pid = path.stem.partition("-")
        if pid == str(os.getpid()) or (start is not None and int(stamp) / 1e9 >= start):
            files.append(path)
    return files


def _states(text):
    for line in text.splitlines():
        if line.startswith('{"type":"STATE"') or line.startswith('{"type": "STATE"'):
            yield json.loads(line)["value"]


@pytest.fixture(scope="module")
def fresh_run():
    """One run that touches every code path where a secret could slip out, and fails at the end.

    Module-scoped (four tests read it), so it starts its simulator itself with the harness's secrets."""
    ds = Dataset.generate(seed=61, chats=1200, offline_msgs=50, agents=120, timeline_entries=200, history_events=3)
    with Simulator(ds, token=TOKEN, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, refresh_token=REFRESH_TOKEN,
                   token_ttl=1) as sim:
        yield _fresh_runs(sim)


def _fresh_runs(sim):
    sim.revoke(TOKEN)  # the configured access token is refused: the tap renews it with the refresh token
    sim.hostile.add("next_page_to_trap")
    for kind, path in (("500", "agents"), ("reset", "incremental/chats"), ("truncate", "bans"),
                       ("429", "incremental/chats")):
        sim.inject(kind, times=1, path=path, retry_after=2)  # the 429's wait outlives the 1 s token
    sim.inject("503", times=3, path="triggers")  # persists past max_retries: the run ends in an error
    config = make_config(sim, refresh_token=REFRESH_TOKEN, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                         token_url=sim.token_url, max_retries=2, max_retry_wait=3)
    synced = run_tap(config, timeout=120)
    discovered = run_tap(config, args=["--discover"], timeout=60, parse=False)
    # The token endpoint refuses the client: the error message must not quote what was sent.
    refused = run_tap(dict(config, client_secret=CLIENT_SECRET + "-old", access_token=None), timeout=60)
    return sim, synced, discovered, refused


def test_the_fresh_run_went_where_secrets_could_leak(fresh_run):
    sim, synced, discovered, refused = fresh_run
    assert synced.returncode == 1 and "triggers: gave up" in synced.stderr
    assert "the access token was refused; obtaining a new one" in synced.stderr
    assert [r for r in sim.requests if r["fault"]], "no fault was injected"
    assert discovered.returncode == 0
    assert refused.returncode == 1 and "refused to issue an access token" in refused.stderr


def test_no_secret_in_anything_the_session_wrote(fresh_run):
    sim, *_ = fresh_run
    files = _session_files(_session_start())
    assert len(files) >= 6, "the fresh run's own output was not kept"
    issued = {r["headers"]["Authorization"].split(" ", 1)[1] for r in sim.requests
              if r["headers"].get("Authorization", "").startswith("Bearer ")} - {TOKEN}
    assert issued, "no token was issued over OAuth"
    leaks = []
    for path in files:
        text = path.read_text(errors="replace")
        leaks += [f"{path.name}: {name}" for name, secret in (("TOKEN", TOKEN), ("REFRESH_TOKEN", REFRESH_TOKEN),
                                                                ("CLIENT_SECRET", CLIENT_SECRET))
                  if secret in text]
        # Also the partial secret a sloppy redaction would leave (e.g. the first half).
        leaks += [f"{path.name}: part of a secret" for secret in SECRETS if secret[: len(secret) // 2 + 2] in text]
    for result in fresh_run[1:]:
        leaks += [f"fresh run: issued token {t[:8]}..." for t in issued if t in result.stdout + result.stderr]
    assert not leaks, leaks


def test_no_state_holds_a_secret(fresh_run):
    states = 0
    for path in _session_files(_session_start()):
        if path.suffix != ".stdout":
            continue
        for value in _states(path.read_text(errors="replace")):
            states += 1
            text = json.dumps(value)
            assert not [s for s in SECRETS if s in text], f"a STATE in {path.name} holds a secret"
    assert states > 0


def test_the_token_goes_only_to_the_api_host_and_never_into_a_url(fresh_run):
    sim, *_ = fresh_run
    assert sim.trap.requests == [], "a request reached the foreign host of a hostile next_page"
    for request in sim.requests:
        url = urllib.parse.unquote(request["raw_path"])
        assert not [s for s in SECRETS if s in url], f"a secret in the URL {request['raw_path'][:80]}"
        assert "access_token" not in request["query"] and "token" not in request["query"]
        auth = request["headers"].get("Authorization", "")
        if request["raw_path"].startswith(TOKEN_PATH):
            assert not auth.startswith("Bearer"), "the bearer token was sent to the token endpoint"
        elif auth:
            assert request["raw_path"].startswith(API_ROOT), f"the token went to {request['raw_path'][:80]}"
            assert request["headers"].get("Host") == f"127.0.0.1:{sim.port}"
    assert any(r["raw_path"].startswith(TOKEN_PATH) for r in sim.requests)
