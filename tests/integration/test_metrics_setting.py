"""The `metrics` setting: METRIC lines per request (default, what Singer tooling reads), per stream, or none."""
import json
import re

import pytest

from tap_zendesk_chat.streams import STREAMS
from tests.harness import make_config, run_tap
from tests.simulator import Dataset

METRIC = re.compile(r"^INFO METRIC: (.*)$", re.MULTILINE)


@pytest.fixture
def small(simulator):
    return simulator(Dataset.generate(seed=8, chats=30, offline_msgs=5, agents=10, timeline_entries=10))


def metrics_of(result):
    return [json.loads(line) for line in METRIC.findall(result.stderr)]


def test_default_is_one_metric_per_request(small):
    result = run_tap(make_config(small)).assert_ok()
    timers = [m for m in metrics_of(result) if m["metric"] == "http_request_duration"]
    assert len(timers) == len([r for r in small.requests if r["path"] != "oauth2/token"])


def test_streams_is_one_record_count_per_stream(small):
    result = run_tap(make_config(small, metrics="streams")).assert_ok()
    found = metrics_of(result)
    assert {m["metric"] for m in found} == {"record_count"}
    counts = {m["tags"]["endpoint"]: m["value"] for m in found}
    assert len(found) == len(counts) and result.streams <= set(counts) <= set(STREAMS)  # one line a stream
    assert all(counts[s] == len(result.records(s)) for s in counts)
    assert counts["chats"] == len(result.records("chats")) == 35


def test_none_writes_no_metric_line(small):
    result = run_tap(make_config(small, metrics="none")).assert_ok()
    assert "METRIC" not in result.stderr
    assert len(result.records("chats")) == 35
