"""The tap piped into target-stitch 4.0.3, the client Stitch runs, posting to a local stand-in for Stitch's batch
endpoint (tests/e2e/stitch_gate.py): every record arrives in a batch of its table with the tap's key names;
target-stitch passes a STATE on only once the batches before it were accepted, so a refused batch stops the
pipeline without advancing the state, and a rerun from the last state it emitted delivers everything. Its
own dry run (Draft 4 validation and key checks) passes on data full of types the schemas did not foresee."""
from tap_zendesk_chat.discover import build_catalog
from tap_zendesk_chat.streams import STREAMS
from tests.e2e.stitch_gate import StitchGate
from tests.e2e.test_unexpected_values import odd_dataset
from tests.e2e.tools import expected_keys, key_of, run_pipeline, small_dataset, tool
from tests.harness import TOKEN, catalog_selecting, make_config
from tests.simulator import Simulator

STITCH_TOKEN = "stitch-import-token"
BATCH_RECORDS = 20  # small batches, so a sync is many posts and a STATE follows several of them


def target_command():
    return [tool("target-stitch", "target-stitch"), "--max-batch-records", str(BATCH_RECORDS)]


def target_config(gate):
    return {"token": STITCH_TOKEN, "client_id": 4242, "batch_size_preferences": {}, "disable_collection": True,
            "small_batch_url": gate.url, "big_batch_url": gate.url}


def batched_keys(gate):
    """Each table's keys as the accepted batches carried them."""
    keys = {}
    for table, _, data in gate.records():
        keys.setdefault(table, set()).add(key_of(table, data))
    return keys


def records_before(messages, state):
    """The keys of every record the tap wrote before its STATE message `state`, by stream."""
    keys = {}
    for message in messages:
        if message["type"] == "STATE" and message["value"] == state:
            return keys
        if message["type"] == "RECORD":
            keys.setdefault(message["stream"], set()).add(key_of(message["stream"], message["record"]))
    raise AssertionError("the target emitted a STATE the tap never wrote")


def test_full_sync_through_target_stitch(tmp_path):
    dataset = small_dataset(seed=41)
    with Simulator(dataset, token=TOKEN) as sim, StitchGate(STITCH_TOKEN) as gate:
        result = run_pipeline(make_config(sim), target_command(), target_config(gate),
                              workdir=tmp_path / "run").assert_ok()
    assert gate.foreign == [], "target-stitch posted something that is not an authorised batch"
    assert len(gate.accepted) > 10
    schemas = result.schemas()
    for batch in gate.accepted:
        assert batch["key_names"] == schemas[batch["table_name"]]["key_properties"], batch["table_name"]
        assert batch["schema"] == schemas[batch["table_name"]]["schema"], batch["table_name"]
    keys = batched_keys(gate)
    for stream in STREAMS:
        assert keys.get(stream, set()) == expected_keys(dataset, stream), stream
        sent = [m for m in result.messages if m["type"] == "RECORD" and m["stream"] == stream]
        assert sum(1 for table, _, _ in gate.records(stream)) == len(sent), f"{stream}: records lost or doubled"
    # Every STATE the target passes on is one of the tap's, in the tap's order, ending with its last.
    tap_states = [m["value"] for m in result.messages if m["type"] == "STATE"]
    emitted = result.target_states
    assert emitted and emitted[-1] == tap_states[-1]
    positions = [tap_states.index(state) for state in emitted]
    assert positions == sorted(positions)


# The child streams of chats are left out of the refused-batch test: their rows (about twenty a chat) would put the
# refusal inside the chats walk's one page, before any STATE names chats. The full sync above carries them.
PARENTS = {name for name, stream in STREAMS.items() if not getattr(stream, "parent", None)}


def test_a_refused_batch_stops_the_pipeline_without_advancing_the_state_and_a_rerun_delivers_everything(tmp_path):
    dataset = small_dataset(seed=43)
    catalog = catalog_selecting(build_catalog(), PARENTS)
    with Simulator(dataset, token=TOKEN) as sim, StitchGate(STITCH_TOKEN) as gate:
        gate.refuse_after(12, 503)  # after chats; target-stitch retries a 5xx four times (about 15 s), then stops
        first = run_pipeline(make_config(sim), target_command(), target_config(gate), workdir=tmp_path / "first",
                             catalog=catalog)
        assert first.target_returncode != 0, first.describe()
        assert "Error persisting data to Stitch: 503" in first.target_stderr
        assert gate.refused >= 5
        accepted = batched_keys(gate)
        emitted = first.target_states
        for state in emitted:  # nothing it passed on covers a record the gate did not accept
            for stream, keys in records_before(first.messages, state).items():
                assert keys <= accepted.get(stream, set()), f"{stream}: a STATE was emitted past a refused batch"
        assert set(accepted) != PARENTS or any(
            accepted[s] != expected_keys(dataset, s) for s in PARENTS), "the failure came too late to test anything"

        resume = emitted[-1]
        assert "chats" in resume["bookmarks"], "the rerun should resume past a bookmarked stream"
        gate.refuse_after(None, 503)
        second = run_pipeline(make_config(sim), target_command(), target_config(gate), state=resume,
                              workdir=tmp_path / "second", catalog=catalog).assert_ok()
    keys = batched_keys(gate)
    assert set(keys) == PARENTS
    for stream in PARENTS:
        assert keys.get(stream, set()) == expected_keys(dataset, stream), f"{stream}: lost across the failure"
    assert second.target_states[-1] == second.last_state


def test_target_stitch_dry_run_validates_odd_types(tmp_path):
    """--dry-run is target-stitch's own check: Draft 4 validation of every record and its key properties."""
    dataset = odd_dataset(seed=45)
    with Simulator(dataset, token=TOKEN) as sim:
        result = run_pipeline(make_config(sim), target_command() + ["--dry-run"], workdir=tmp_path / "run")
    assert result.target_returncode == 0 and result.tap_returncode == 0, result.describe()
    valid = [line for line in result.target_stderr.splitlines() if "Batch is valid" in line]
    assert {line.split("INFO ")[-1].split(" (")[0] for line in valid} == set(STREAMS)
    assert result.target_states[-1] == result.last_state


def test_stitch_table_names_reach_stitch_with_the_trigger_without_id(tmp_path):
    """stitch_table_names: the batches carry the tables of Stitch's integration, zopim_triggers keyed by name,
    and the trigger a real account recorded without an id is among them."""
    dataset = small_dataset(seed=47)
    dataset.add_real_shapes()
    with Simulator(dataset, token=TOKEN) as sim, StitchGate(STITCH_TOKEN) as gate:
        run_pipeline(make_config(sim, stitch_table_names=True), target_command(), target_config(gate),
                     workdir=tmp_path / "run").assert_ok()
    assert {b["table_name"] for b in gate.accepted} == {f"zopim_{name}" for name in STREAMS}
    assert {tuple(b["key_names"]) for b in gate.accepted if b["table_name"] == "zopim_triggers"} == {("name",)}
    names = {data["name"] for _, _, data in gate.records("zopim_triggers")}
    assert dataset.real_shapes["trigger_without_id"] in names
    assert len(gate.records("zopim_chats")) == len(dataset.chats)
