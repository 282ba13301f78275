"""The fast per-record path emits exactly what the obvious reference transformation gives (issue 6)."""
import pytest

from bench.reference_transform import reference_transform
from tap_zendesk_chat.discover import build_catalog
from tap_zendesk_chat.schemas import load_schema
from tap_zendesk_chat.streams import STREAMS
from tests.harness import catalog_selecting, make_config, run_tap
from tests.integration.expected import expected_records
from tests.simulator import Dataset

DESELECTED = {"chats": ["comment", "webpath"], "agents": ["email"], "triggers": ["description"]}


@pytest.fixture(scope="module")
def synced(request):
    from tests.harness import TOKEN
    from tests.simulator import Simulator
    dataset = Dataset.generate(seed=31, chats=1500, offline_msgs=400, agents=150, timeline_entries=500)
    catalog = catalog_selecting(build_catalog(), set(STREAMS), deselect_fields=DESELECTED)
    with Simulator(dataset, token=TOKEN) as sim:
        yield dataset, run_tap(make_config(sim), catalog=catalog).assert_ok()


@pytest.mark.parametrize("stream", list(STREAMS))
def test_records_equal_the_reference_transformation(synced, stream):
    dataset, result = synced
    schema = load_schema(stream)
    want = [reference_transform(r, schema, DESELECTED.get(stream, ()), stream) for r in expected_records(dataset, stream)]
    got = result.records(stream)
    key = STREAMS[stream].key_properties
    if key:
        got = sorted(got, key=lambda r: [str(r[k]) for k in key])
        want = sorted(want, key=lambda r: [str(r[k]) for k in key])
    assert got == want
