"""singer-check-tap (singer-tools 0.4.1) over a full sync of every stream, then over a run from that sync's
state: it checks the message order and validates every record against its schema, date-time formats included.

The tap's output is piped in (`tap | singer-check-tap`), which is what its `--tap` mode does as well, minus a
race of 0.4.1: in `--tap` mode it returns as soon as the tap exits, before its reader thread has validated
everything, and then crashes on the missing summary ('NoneType' object has no attribute 'num_messages')."""
import re

from tap_zendesk_chat.streams import STREAMS
from tests.e2e.tools import expected_counts, run_pipeline, small_dataset, tool
from tests.harness import TOKEN, make_config
from tests.simulator import Simulator


def summary_table(output):
    """The records per stream singer-check-tap reports."""
    assert "The output is valid." in output, output
    block = output.split("Details by stream:")[1]
    rows = re.findall(r"^\| (\w+)\s+\| (\d+)\s+\| (\d+)\s+\|$", block, flags=re.MULTILINE)
    return {stream: int(records) for stream, records, _schemas in rows}


def test_singer_check_tap_passes_on_every_stream(tmp_path):
    check = tool("singer-tools", "singer-check-tap")
    # Larger than the other e2e datasets, so that every quirk (array webpath items, odd dates) shows up.
    dataset = small_dataset(seed=41, chats=250, offline_msgs=50, agents=60, history_events=12)
    # singer-check-tap 0.4.1 crashes on a null object whose schema declares date-time properties (its
    # set_defaults calls .get on None): a conversion without attribution, valid JSON Schema that target-jsonl,
    # target-postgres and the tests' own Draft 4/7 validators accept. Give those an (empty) attribution here.
    for index, conversion in enumerate(dataset.served("conversions")):
        if conversion.get("attribution") is None:
            dataset.set_field("conversions", index, ["attribution"], {}, by="index")
    with Simulator(dataset, token=TOKEN) as sim:
        config = make_config(sim)
        first = run_pipeline(config, check, workdir=tmp_path / "first").assert_ok()
        second = run_pipeline(config, check, state=first.last_state, workdir=tmp_path / "second")
        second.assert_ok()

    counts = expected_counts(dataset)
    assert summary_table(first.target_stdout) == counts
    assert set(first.schemas()) == set(STREAMS)
    # From the first run's state the exports have nothing new, and full tables come whole again.
    incremental = {name for name, stream in STREAMS.items() if stream.replication_method == "INCREMENTAL"}
    assert summary_table(second.target_stdout) == {name: 0 if name in incremental else n for name, n in counts.items()}
