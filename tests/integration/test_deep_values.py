"""No value crashes the run (issue 17, case 6): a field nested 5,000 levels deep ended the whole run with a
RecursionError traceback (chats: msgspec splitting the page; other streams: a body the tap called "not valid
JSON" and retried until it gave up), and every rerun met the same page. The record is kept: the field goes
out as null and the JSON text the API sent is kept in `_unexpected_values` (as text: no target reads a value
that deep back)."""
import json
import re
import sys

import pytest

from tests.harness import make_config, run_tap, validate_records
from tests.simulator import Dataset

DEPTH = 5000


def nested_arrays(depth):
    value = []
    for _ in range(depth - 1):
        value = [value]
    return value


def nested_objects(depth):
    value = {"a": 1}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


@pytest.fixture
def deep_enough():
    """The simulator runs in this process and serves the value with the standard json module: let it."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(4 * DEPTH)
    yield
    sys.setrecursionlimit(limit)


@pytest.fixture
def dataset():
    return Dataset.generate(seed=21, chats=30, offline_msgs=3, agents=5, ip_bans=2, visitor_bans=2,
                            timeline_entries=5, history_events=2)


def _text(value):
    return json.dumps(value, separators=(",", ":"))


def _assert_kept(result, stream, key_field, key, field, value):
    record = next(r for r in result.records(stream) if r[key_field] == key)
    assert record[field] is None
    assert record["_unexpected_values"] == {field: _text(value)}, "the value is not kept as the API sent it"
    assert re.search(rf"^WARNING {stream}: {field} is declared .* but the API sent a value nested more than 512 "
                     "levels deep", result.stderr, re.MULTILINE), result.stderr[-3000:]


def test_chats_with_fields_nested_5000_deep_are_kept_and_the_run_goes_on(simulator, dataset, deep_enough):
    first, second = dataset.chat_id_at(0), dataset.chat_id_at(1)
    dataset.set_field("chats", first, ["tags"], nested_arrays(DEPTH))  # declared: an array of strings
    dataset.set_field("chats", second, ["not_in_the_schema"], nested_objects(DEPTH))
    sim = simulator(dataset)
    result = run_tap(make_config(sim), timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "RecursionError" not in result.stderr
    assert len(result.records("chats")) == dataset.chat_count(), "chats were lost"
    _assert_kept(result, "chats", "id", first, "tags", nested_arrays(DEPTH))
    _assert_kept(result, "chats", "id", second, "not_in_the_schema", nested_objects(DEPTH))
    assert {"agents", "departments", "agent_timeline"} <= result.streams, "the other streams were not synced"
    validate_records(result)


def test_a_department_with_a_field_nested_5000_deep_is_kept_and_the_run_goes_on(simulator, dataset, deep_enough):
    department = dataset.departments[0]["id"]
    dataset.set_field("departments", department, ["description"], nested_objects(DEPTH))
    sim = simulator(dataset)
    result = run_tap(make_config(sim), timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "retry" not in result.stderr
    assert len(result.records("departments")) == len(dataset.departments)
    _assert_kept(result, "departments", "id", department, "description", nested_objects(DEPTH))
    assert sim.count("departments") == 1, "the page was asked for again"
    validate_records(result)
