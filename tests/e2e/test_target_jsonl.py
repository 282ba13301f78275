"""The tap piped into target-jsonl 0.1.4 (singer-python 5): one file per stream, every row the simulator holds."""
import json

from tap_zendesk_chat.streams import STREAMS
from tests.e2e.tools import expected_counts, expected_keys, key_of, run_pipeline, small_dataset, tool
from tests.harness import TOKEN, make_config
from tests.simulator import Simulator


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().split("\n") if line.strip()]


def test_full_sync_into_target_jsonl(tmp_path):
    target = tool("target-jsonl", "target-jsonl")
    dataset = small_dataset(seed=31)
    out = tmp_path / "out"
    with Simulator(dataset, token=TOKEN) as sim:
        result = run_pipeline(make_config(sim), target, {"destination_path": str(out), "do_timestamp_file": False},
                              workdir=tmp_path / "run").assert_ok()

    files = {path.stem: read_jsonl(path) for path in out.glob("*.jsonl")}
    assert set(files) == set(STREAMS), "one file per stream"
    counts = expected_counts(dataset)
    assert {name: len(rows) for name, rows in files.items()} == counts

    for name, rows in files.items():
        # Every row is a record of the simulator's, once, and the file holds exactly what the tap sent.
        keys = [key_of(name, row) for row in rows]
        assert set(keys) == expected_keys(dataset, name), name
        if STREAMS[name].key_properties:
            assert len(set(keys)) == len(keys), f"{name}: duplicate rows"
        assert rows == result.records(name), f"{name}: the file differs from the tap's records"

    chats = {chat["id"]: chat for chat in files["chats"]}
    for want in dataset.chats:
        got = chats[want["id"]]
        assert got["type"] == want["type"]
        assert got["tags"] == want["tags"]
        assert got.get("visitor", {}).get("email") == want["visitor"]["email"]
        assert got["deleted"] == want["deleted"]
    tagged = [c for c in dataset.chats if c["tags"]]
    assert tagged, "the dataset should hold tagged chats"
    assert {a["id"]: a["email"] for a in files["agents"]} == {a["id"]: a["email"] for a in dataset.agents}
    ips = sorted(b["ip_address"] for b in dataset.bans["ip_address"])
    assert sorted(b["ip_address"] for b in files["banned_ips"]) == ips
    assert files["account"][0]["account_key"] == dataset.account["account_key"]
    assert files["routing_settings"][0]["routing_mode"] == dataset.routing_settings["routing_mode"]
    assert [s["name"] for s in files["shortcuts"]] == [s["name"] for s in dataset.shortcuts]

    # target-jsonl echoes the tap's last STATE: what the next run starts from.
    assert result.target_states[-1] == result.last_state
    assert result.target_states[-1]["bookmarks"]["chats"]["update_timestamp"]


def test_the_trigger_without_id_reaches_target_jsonl_under_stitch_table_names(tmp_path):
    target = tool("target-jsonl", "target-jsonl")
    dataset = small_dataset(seed=33)
    dataset.add_real_shapes()
    out = tmp_path / "out"
    with Simulator(dataset, token=TOKEN) as sim:
        run_pipeline(make_config(sim, stitch_table_names=True), target,
                     {"destination_path": str(out), "do_timestamp_file": False}, workdir=tmp_path / "run").assert_ok()
    assert {p.stem for p in out.glob("*.jsonl")} == {f"zopim_{name}" for name in STREAMS}
    names = {t["name"] for t in read_jsonl(out / "zopim_triggers.jsonl")}
    assert dataset.real_shapes["trigger_without_id"] in names and len(names) == len(dataset.served("triggers"))
