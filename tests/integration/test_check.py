"""`--test`: one request per endpoint, a table that says what each answer means, an exit code that says
whether every selected stream can be synced; no sync, no secret printed, Retry-After honoured."""
import time

import pytest

from tap_zendesk_chat.discover import build_catalog
from tap_zendesk_chat.streams import STREAMS
from tests.harness import TOKEN, catalog_selecting, make_config, run_tap
from tests.simulator import Dataset

WALKS = {stream.path for stream in STREAMS.values()}


@pytest.fixture(scope="module")
def dataset():
    return Dataset.generate(seed=81, chats=30, offline_msgs=3, agents=10, timeline_entries=10, conversions=5,
                            department_events=5, agent_events=5)


def table(result):
    """stream cell -> (endpoint, result, meaning) from the table on stderr."""
    rows = {}
    lines = result.stderr.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("stream ") and "endpoint" in line)
    for line in lines[start + 1:]:
        if not line.strip():
            break
        cells = [c for c in line.split("  ") if c.strip()]
        rows[cells[0].strip()] = tuple(c.strip() for c in cells[1:4])
    return rows


def streams_of(rows):
    return {name.strip() for cell in rows for name in cell.split(",")}


def test_everything_reachable_passes_with_one_request_per_endpoint(simulator, dataset):
    sim = simulator(dataset)
    result = run_tap(make_config(sim), args=["--test"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout == "", "--test writes nothing to stdout"
    rows = table(result)
    assert streams_of(rows) == set(STREAMS)
    assert {r[1] for r in rows.values()} == {"ok"}
    assert "Every selected stream can be synced." in result.stderr
    api = [r for r in sim.requests if r["path"] in WALKS]
    assert sorted(r["path"] for r in api) == sorted(WALKS), "one request per endpoint, and no sync"
    assert all(r["query"].get("limit") in (None, "1") for r in api if r["path"].startswith("incremental/"))


def test_a_refused_token_fails_with_what_to_do_and_no_secret(simulator, dataset):
    sim = simulator(dataset)
    config = make_config(sim, access_token="not-the-SECRET-token-42")
    result = run_tap(config, args=["--test"])
    assert result.returncode == 1
    rows = table(result)
    assert {r[1] for r in rows.values()} == {"401"}
    assert "Zendesk Support API token" in result.stderr and "Chat OAuth client" in result.stderr
    assert "not-the-SECRET-token-42" not in result.stderr + result.stdout


def test_a_plan_without_api_access_fails_and_says_owner_and_plan(simulator, dataset):
    sim = simulator(dataset, api_access=False)
    result = run_tap(make_config(sim), args=["--test"])
    assert result.returncode == 1
    rows = table(result)
    assert {r[1] for r in rows.values()} == {"403"}
    assert "must be an Owner" in result.stderr and "REST API access" in result.stderr


@pytest.mark.parametrize("options, stream", [({"integrated_account": True}, "account"),
                                             ({"agent_events_available": False}, "agent_events"),
                                             ({"agent_events_available": False,
                                               "agent_events_unavailable_status": 404}, "agent_events")])
def test_optional_streams_answering_403_or_404_are_fine(simulator, dataset, options, stream):
    sim = simulator(dataset, **options)
    result = run_tap(make_config(sim), args=["--test"])
    assert result.returncode == 0, result.stderr[-3000:]
    endpoint, code, meaning = table(result)[stream]
    assert code in ("403", "404") and meaning.startswith("fine: skipped during a sync")


def test_a_missing_endpoint_fails_for_that_stream_only(simulator, dataset):
    sim = simulator(dataset)
    sim.inject("500", times=10, path="goals", status=404)
    result = run_tap(make_config(sim), args=["--test"])
    assert result.returncode == 1
    rows = table(result)
    assert rows["goals"][1:] == ("404", "no such endpoint")
    assert {r[1] for name, r in rows.items() if name != "goals"} == {"ok"}
    assert "1 stream(s) cannot be synced as configured: goals." in result.stderr


def test_an_unreachable_host_is_reported(simulator, dataset):
    result = run_tap({"access_token": TOKEN, "base_url": "http://127.0.0.1:9/api/v2/chat", "max_retry_wait": 0.05},
                     args=["--test"], timeout=120)
    assert result.returncode == 1
    assert {r[1] for r in table(result).values()} == {"unreachable"}


def test_only_the_catalogs_streams_are_checked_and_retry_after_is_honoured(simulator, dataset):
    sim = simulator(dataset)
    sim.inject("429", times=1, path="agents", retry_after=1)
    catalog = catalog_selecting(build_catalog(), {"agents", "banned_ips"})
    started = time.monotonic()
    result = run_tap(make_config(sim, max_retry_wait=5), catalog=catalog, args=["--test"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert time.monotonic() - started >= 1.0
    assert streams_of(table(result)) == {"agents", "banned_ips"}
    assert sorted(r["path"] for r in sim.requests) == ["agents", "agents", "bans"]


def test_an_answer_the_sync_could_not_read_is_unusable_not_ok(simulator, dataset):
    """/agents answering an object where the sync needs an array: --test says so instead of "ok"."""
    sim = simulator(dataset)
    sim.hostile.add("agents_object")
    result = run_tap(make_config(sim), args=["--test"])
    assert result.returncode == 1
    rows = table(result)
    assert rows["agents"][1] == "unusable" and "cannot read" in rows["agents"][2]
    assert {r[1] for name, r in rows.items() if name != "agents"} == {"ok"}
