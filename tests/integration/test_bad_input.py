"""Every kind of bad input a user can produce gets one specific message, a non-zero exit, no traceback,
and nothing on stdout that a target could mistake for data.

Input errors (config, state, catalog) exit 2 before any request; API errors (revoked token, plan
without API access) exit 1 and write no RECORD."""
import re

import pytest

from tests.harness import CLIENT_ID, CLIENT_SECRET, TOKEN, catalog_selecting, make_config, run_tap
from tests.integration.test_faults import assert_nothing_after_last_state
from tests.simulator import Dataset
from tap_zendesk_chat.discover import build_catalog

CRITICAL_LINE = re.compile(r"^CRITICAL (.*)$", re.MULTILINE)


@pytest.fixture(scope="module")
def tiny():
    return Dataset.generate(seed=21, chats=20, offline_msgs=2, agents=5, ip_bans=2, visitor_bans=2,
                            timeline_entries=5, history_events=2)


def _catalog(**changes):
    catalog = catalog_selecting(build_catalog(), ["agents", "chats"])
    catalog["streams"].extend(changes.get("extra", []))
    for entry in catalog["streams"]:
        method = changes.get("method", {}).get(entry["tap_stream_id"])
        if method:
            entry["metadata"][0]["metadata"]["replication-method"] = method
    return catalog


def _binary_file(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"\xff\xfe\x00{\x93not text\x81")
    return str(path)


# Each case: (id, build(sim, tmp_path) -> run_tap kwargs, phrases the one CRITICAL line must contain).
INPUT_CASES = [
    ("config-missing", lambda sim, tmp: {"config": None, "args": ["--config", str(tmp / "nowhere.json")]},
     ["config file", "nowhere.json", "does not exist"]),
    ("config-is-a-directory", lambda sim, tmp: {"config": None, "args": ["--config", str(tmp)]},
     ["config file", "cannot be read"]),
    ("config-not-utf8", lambda sim, tmp: {"config": None, "args": ["--config", _binary_file(tmp, "c.json")]},
     ["config file", "cannot be read"]),
    ("config-not-json", lambda sim, tmp: {"config": '{"access_token": "abc", "subdomain": '},
     ["config file", "is not valid JSON", "line 1"]),
    ("config-not-an-object", lambda sim, tmp: {"config": ["access_token", "subdomain"]},
     ["config must be a JSON object"]),
    ("config-wrong-types", lambda sim, tmp: {"config": make_config(
        sim, max_retries="many", request_timeout="fast", activate_version="maybe", agents_page_limit=500)},
     ["4 problems", "'max_retries' must be a whole number", "'request_timeout' must be a number",
      "'activate_version' must be true or false", "'agents_page_limit' must be between 1 and 100"]),
    ("config-token-not-a-string", lambda sim, tmp: {"config": make_config(sim, access_token=12345)},
     ["'access_token' must be a string"]),
    ("config-misspelled-key", lambda sim, tmp: {"config": {**make_config(sim, access_token=None),
                                                           "acess_token": TOKEN}},
     ["unknown key 'acess_token'", "did you mean 'access_token'", "'access_token' is required"]),
    ("config-unknown-key", lambda sim, tmp: {"config": {**make_config(sim), "colour": "blue"}},
     ["unknown key 'colour'"]),
    ("config-no-token", lambda sim, tmp: {"config": make_config(sim, access_token=None)},
     ["'access_token' is required", "client_id"]),
    ("config-no-subdomain", lambda sim, tmp: {"config": make_config(sim, base_url=None)},
     ["'subdomain' is required"]),
    ("config-subdomain-is-a-host", lambda sim, tmp: {"config": make_config(sim, base_url=None,
                                                                          subdomain="https://acme.zendesk.com")},
     ["'subdomain' must be only the name", 'write "acme"']),
    ("config-start-date-future", lambda sim, tmp: {"config": make_config(sim, start_date="2999-01-01")},
     ["'start_date' 2999-01-01T00:00:00Z is in the future"]),
    ("config-start-date-unparseable", lambda sim, tmp: {"config": make_config(sim, start_date="last tuesday")},
     ["'start_date' 'last tuesday' is not a date", "RFC 3339"]),
    ("config-refresh-token-alone", lambda sim, tmp: {"config": make_config(sim, refresh_token="r-123")},
     ["'refresh_token' needs 'client_id' and 'client_secret'"]),
    ("state-missing", lambda sim, tmp: {"config": make_config(sim), "args": ["--state", str(tmp / "gone.json")]},
     ["state file", "does not exist"]),
    ("state-not-utf8", lambda sim, tmp: {"config": make_config(sim), "args": ["--state", _binary_file(tmp, "s")]},
     ["state file", "cannot be read"]),
    ("state-not-json", lambda sim, tmp: {"config": make_config(sim), "state": "{'bookmarks': {}}"},
     ["state file", "is not valid JSON"]),
    ("state-not-an-object", lambda sim, tmp: {"config": make_config(sim), "state": [1, 2]},
     ["state must be a JSON object"]),
    ("state-from-a-later-version", lambda sim, tmp: {"config": make_config(sim),
                                                     "state": {"state_version": 99, "bookmarks": {}}},
     ["newer tap-zendesk-chat", "state_version 99", "Upgrade the tap"]),
    ("state-bookmarks-wrong-type", lambda sim, tmp: {"config": make_config(sim), "state": {"bookmarks": []}},
     ["'bookmarks' must be an object"]),
    ("state-cursor-wrong-type", lambda sim, tmp: {"config": make_config(sim),
                                                  "state": {"bookmarks": {"chats": {"cursor": "yesterday"}}}},
     ["cursor for 'chats'", "expected [time, id]"]),
    ("state-legacy-bookmark-not-a-time", lambda sim, tmp: {
        "config": make_config(sim), "state": {"bookmarks": {"chats": {"chat.end_timestamp": "soon"}}}},
     ["chats.chat.end_timestamp", "'soon'", "not a timestamp"]),
    ("state-bookmark-not-a-time", lambda sim, tmp: {
        "config": make_config(sim), "state": {"bookmarks": {"chats": {"update_timestamp": "soonish"}}}},
     ["chats.update_timestamp", "'soonish'", "not a timestamp"]),
    ("state-cursor-out-of-range", lambda sim, tmp: {"config": make_config(sim), "state": {"bookmarks": {
        "chats": {"update_timestamp": "2024-01-01T00:00:00Z", "cursor": [10 ** 20, None]}}}},
     ["cursor for 'chats'", "expected [time, id]"]),
    ("state-cursor-id-wrong-type", lambda sim, tmp: {"config": make_config(sim), "state": {"bookmarks": {
        "chats": {"update_timestamp": "2024-01-01T00:00:00Z", "cursor": [100, [1]]}}}},
     ["cursor for 'chats'", "an id (number, text or null)"]),
    ("config-url-unparseable", lambda sim, tmp: {"config": make_config(sim, base_url="https://[abc")},
     ["'base_url' must be an http(s) URL"]),
    ("config-nested-too-deeply", lambda sim, tmp: {"config": "[" * 100_000 + "]" * 100_000},
     ["config file", "nests its JSON too deeply"]),
    ("catalog-stream-id-not-text", lambda sim, tmp: {"config": make_config(sim), "catalog": {"streams": [
        {"tap_stream_id": ["chats"], "schema": {"properties": {}}, "metadata": []}]}},
     ["names a stream ['chats']", "does not have"]),
    ("catalog-breadcrumb-not-text", lambda sim, tmp: {"config": make_config(sim), "catalog": _catalog(
        extra=[{"tap_stream_id": "goals", "schema": {"properties": {}},
                "metadata": [{"breadcrumb": [["properties"]], "metadata": {"selected": True}}]}])},
     ["metadata for 'goals' must be a list"]),
    ("catalog-missing", lambda sim, tmp: {"config": make_config(sim), "args": ["--catalog", str(tmp / "no.json")]},
     ["catalog file", "does not exist"]),
    ("catalog-not-json", lambda sim, tmp: {"config": make_config(sim), "catalog": "streams: [agents]"},
     ["catalog file", "is not valid JSON"]),
    ("catalog-without-streams", lambda sim, tmp: {"config": make_config(sim), "catalog": {"agents": True}},
     ["catalog must be a JSON object with a 'streams' list"]),
    ("catalog-unknown-stream", lambda sim, tmp: {"config": make_config(sim), "catalog": _catalog(
        extra=[{"tap_stream_id": "tickets", "schema": {"properties": {}}, "metadata": []}])},
     ["names a stream 'tickets'", "does not have"]),
    ("catalog-incremental-full-table-stream", lambda sim, tmp: {"config": make_config(sim),
                                                                "catalog": _catalog(method={"agents": "INCREMENTAL"})},
     ["'agents' has no replication key", "FULL_TABLE"]),
]


def assert_one_clear_line(result, phrases):
    assert "Traceback" not in result.stderr, result.stderr
    critical = CRITICAL_LINE.findall(result.stderr)
    assert len(critical) == 1, result.stderr
    for phrase in phrases:
        assert phrase in critical[0], f"{phrase!r} not in {critical[0]!r}"
    return critical[0]


@pytest.mark.parametrize("build, phrases", [c[1:] for c in INPUT_CASES], ids=[c[0] for c in INPUT_CASES])
def test_bad_input_gets_a_specific_message_and_nothing_on_stdout(simulator, tiny, tmp_path, build, phrases):
    sim = simulator(tiny)
    result = run_tap(timeout=30, **build(sim, tmp_path))
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert_one_clear_line(result, phrases)
    assert sim.requests == [], "the tap sent a request despite bad input"


def test_missing_config_argument_is_a_usage_error(tmp_path):
    result = run_tap(None, timeout=30)
    assert result.returncode == 2
    assert result.stdout == "" and "Traceback" not in result.stderr
    assert "--config is required" in result.stderr


# -- API errors: the credentials or the plan -------------------------------------------------------------
def _assert_api_error(result, phrases):
    assert result.returncode == 1, result.stderr
    line = assert_one_clear_line(result, phrases)
    assert not result.record_messages(), "records written before a fatal API error"
    assert_nothing_after_last_state(result)
    return line


@pytest.mark.parametrize("how", ["revoked", "wrong"])
def test_rejected_token_names_the_token_and_the_prerequisites(simulator, tiny, how):
    sim = simulator(tiny)
    if how == "revoked":
        sim.revoke(TOKEN)
        config = make_config(sim)
    else:
        config = make_config(sim, access_token="not-the-right-token")
    result = run_tap(config, timeout=30)
    _assert_api_error(result, ["account", "HTTP 401", "access token", "invalid, expired or revoked",
                               "Chat OAuth token", "Owner", "REST API access"])
    assert [r["status"] for r in sim.requests] == [401], "the tap retried a 401 without a way to renew the token"


def test_rejected_token_in_discovery_writes_no_catalog(simulator, tiny):
    sim = simulator(tiny)
    sim.revoke(TOKEN)
    result = run_tap(make_config(sim), args=["--discover"], timeout=30, parse=False)
    assert result.returncode == 1 and result.stdout == ""
    assert_one_clear_line(result, ["HTTP 401", "access token", "Owner"])


def test_plan_without_api_access_says_so(simulator, tiny):
    sim = simulator(tiny, api_access=False)
    result = run_tap(make_config(sim), timeout=30)
    _assert_api_error(result, ["HTTP 403", "REST API access", "Owner"])


def test_plan_without_api_access_in_discovery_writes_no_catalog(simulator, tiny):
    sim = simulator(tiny, api_access=False)
    result = run_tap(make_config(sim), args=["--discover"], timeout=30, parse=False)
    assert result.returncode == 1 and result.stdout == ""
    assert_one_clear_line(result, ["HTTP 403", "REST API access"])


# -- a secret the user put where it gets logged -----------------------------------------------------------
@pytest.mark.parametrize("where", ["token-in-base-url", "client-secret-in-token-url"])
def test_a_secret_inside_a_logged_url_is_redacted(simulator, tiny, where):
    """A secret pasted into a URL of the config ends up in log lines (the failing URL, the API's own error
    text): every line the real tap writes shows *** instead, whatever code logged it."""
    sim = simulator(tiny)
    if where == "token-in-base-url":
        secret, config = TOKEN, make_config(sim, base_url=f"{sim.base_url}/{TOKEN}")
    else:
        secret, config = CLIENT_SECRET, make_config(sim, access_token=None, client_id=CLIENT_ID,
                                                    client_secret=CLIENT_SECRET,
                                                    token_url=f"{sim.host_url}/oauth2/{CLIENT_SECRET}/token")
    result = run_tap(config, timeout=30)
    assert result.returncode == 1, result.stderr[-3000:]
    assert any(secret in r["raw_path"] for r in sim.requests), "the secret was not in the URL the tap asked for"
    leaks = result.stderr.count(secret) + result.stdout.count(secret)
    assert leaks == 0, f"the secret is in the tap's output {leaks} time(s)"  # a count: never print it
    line = assert_one_clear_line(result, ["/***/"])
    assert "Traceback" not in result.stderr and "***" in line
