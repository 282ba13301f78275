"""Hostile or broken responses: refused with a clear error, never followed, never a hang.

Every run has a subprocess timeout, so a hang fails the test instead of stalling the suite."""
import json
import re

import pytest

from tests.harness import CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, SECRETS, make_config, run_tap
from tests.integration.test_faults import assert_delivered_exactly, assert_nothing_after_last_state
from tests.simulator import Dataset, Fault
from tap_zendesk_chat.streams import STREAMS
from tests.integration.expected import expected_records

CRITICAL_LINE = re.compile(r"^CRITICAL (.*)$", re.MULTILINE)
HANG = 30  # seconds; these runs take about one


@pytest.fixture(scope="module")
def dataset():
    # Two export pages, so a next_page is read from a full page; three agents pages.
    return Dataset.generate(seed=31, chats=1000, offline_msgs=100, agents=120, timeline_entries=1100,
                            history_events=3)


def assert_clear_failure(result, phrases):
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    critical = CRITICAL_LINE.findall(result.stderr)
    assert len(critical) == 1, result.stderr[-3000:]
    for phrase in phrases:
        assert phrase in critical[0], f"{phrase!r} not in {critical[0]!r}"
    assert_nothing_after_last_state(result)


def test_next_page_on_another_host_is_never_followed(simulator, dataset):
    sim = simulator(dataset)
    sim.hostile.add("next_page_to_trap")
    result = run_tap(make_config(sim, agents_page_limit=50), timeout=HANG).assert_ok()
    assert sim.trap.requests == [], "a request (with the token) reached the foreign host"
    assert_delivered_exactly(dataset, result)
    # The export was walked past its first page, where next_page pointed at the trap.
    assert sim.count("incremental/chats") == 2 and sim.count("incremental/agent_timeline") == 2


def assert_nothing_reached_the_trap(sim):
    reached = sim.trap.requests
    leaked = sum(1 for secret in SECRETS if any(secret in json.dumps(r) for r in reached))  # a count: never print one
    assert leaked == 0, f"{leaked} secret(s) reached the foreign host, in {len(reached)} request(s)"
    assert reached == [], f"the tap followed a redirect to the foreign host: {[r['raw_path'] for r in reached]}"


@pytest.mark.parametrize("path,status", [("account", 301), ("incremental/chats", 302), ("agents", 303),
                                         ("departments", 307), ("bans", 308)])
def test_a_redirect_to_another_host_is_never_followed(simulator, dataset, path, status):
    """A 3xx whose Location is another host: the tap stops with the client's redirect message, and nothing
    (no request, no token) reaches that host. Following it would hand the request to whoever answers there."""
    sim = simulator(dataset)
    sim.inject(Fault.REDIRECT, path=path, status=status)
    result = run_tap(make_config(sim, agents_page_limit=50), timeout=HANG)
    assert_nothing_reached_the_trap(sim)
    assert [r["status"] for r in sim.requests if r["path"] == path] == [status], "asked again after the redirect"
    assert_clear_failure(result, [f"{path}: the API answered a redirect (HTTP {status}) from {sim.base_url}/{path};",
                                  "the tap does not follow redirects"])
    assert not result.records(path.removeprefix("incremental/"))


@pytest.mark.parametrize("status", [307, 308])
def test_a_redirect_of_the_token_endpoint_is_never_followed(simulator, dataset, status):
    """307/308 keep the POST and its body: following them would send client_secret and refresh_token to the
    other host."""
    sim = simulator(dataset)
    sim.inject(Fault.REDIRECT, path="oauth2/token", status=status)
    config = make_config(sim, access_token=None, refresh_token=REFRESH_TOKEN, client_id=CLIENT_ID,
                         client_secret=CLIENT_SECRET, token_url=sim.token_url)
    result = run_tap(config, timeout=HANG)
    assert_nothing_reached_the_trap(sim)
    assert [r["path"] for r in sim.requests] == ["oauth2/token"], "the tap went on without a token"
    assert_clear_failure(result, [f"The OAuth token endpoint {sim.token_url} refused to issue an access token",
                                  f"HTTP {status}"])
    assert not result.record_messages()


def test_object_where_the_agents_array_is_expected(simulator, dataset):
    """One endpoint sending a body the tap cannot use fails that stream for good; the others go on."""
    sim = simulator(dataset)
    sim.hostile.add("agents_object")
    result = run_tap(make_config(sim), timeout=HANG)
    assert_clear_failure(result, ["agents", "expected a JSON array", "dict", "1 stream(s) failed"])
    assert not result.records("agents")
    assert sim.count("agents") == 1, "the tap retried or looped on a body it cannot use"
    others = set(STREAMS) - {"agents"}
    assert result.streams == others, "the streams after the failed one were not all synced"
    assert "agents" not in result.last_state["bookmarks"]


@pytest.mark.parametrize("stream,path,keyless", [
    ("agents", "agents", lambda sim: sim.keyless_agent_id()),
    ("chats", "incremental/chats", lambda sim: sim.keyless_chat_id()),
])
def test_a_record_without_its_key_is_withheld_and_reported_and_the_run_goes_on(simulator, dataset, stream, path,
                                                                                keyless):
    sim = simulator(dataset)
    sim.hostile.add("record_without_key")
    result = run_tap(make_config(sim), timeout=HANG).assert_ok()
    missing = keyless(sim)
    expected = [r for r in expected_records(dataset, stream) if r.get("id") != missing]
    assert sorted(r["id"] for r in result.records(stream)) == sorted(r["id"] for r in expected)
    warning = [line for line in result.stderr.splitlines() if line.startswith(f"WARNING {stream}:")
               and "could not be written" in line]
    assert len(warning) == 1 and warning[0].startswith(f"WARNING {stream}: 1 records") and "has no 'id'" in warning[0]
    summary = next(line for line in result.stderr.splitlines() if line.split()[1:2] == [stream] and " done " in line)
    assert summary.split()[-1] == "1"  # the withheld column
    assert result.streams == set(STREAMS), "a stream after the keyless record was not synced"
