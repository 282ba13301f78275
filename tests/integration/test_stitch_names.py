"""stitch_table_names: the streams named as the tables of Stitch's Zendesk Chat integration (zopim_<name>) in
the catalog and every message, zopim_triggers keyed by name, so a trigger recorded without an id (a real
account's, 2017) is delivered; bookmarks keep the streams' own names, so turning the setting on is no backfill."""
import json

from tap_zendesk_chat.streams import STREAMS
from tests.harness import TOKEN, make_config, run_tap, validate_records
from tests.integration.expected import expected_records
from tests.simulator import Dataset, Simulator

STITCH_TABLES = {"zopim_account", "zopim_agents", "zopim_banned_ips", "zopim_banned_visitors", "zopim_chats",
                 "zopim_departments", "zopim_shortcuts", "zopim_triggers"}


def test_stitch_table_names_and_the_trigger_without_id(tmp_path):
    dataset = Dataset.generate(seed=52, chats=80, offline_msgs=10, agents=30, timeline_entries=40, real_shapes=True)
    keyless = dataset.real_shapes["trigger_without_id"]
    with Simulator(dataset, token=TOKEN) as sim:
        config = make_config(sim, stitch_table_names=True)
        discovered = run_tap(config, args=["--discover"], parse=False)
        assert discovered.returncode == 0, discovered.stderr
        catalog = json.loads(discovered.stdout)
        entries = {e["tap_stream_id"]: e for e in catalog["streams"]}
        assert {e["stream"] for e in entries.values()} == {f"zopim_{name}" for name in STREAMS}
        assert entries["triggers"]["key_properties"] == ["name"]
        root = next(m["metadata"] for m in entries["triggers"]["metadata"] if m["breadcrumb"] == [])
        assert root["table-key-properties"] == ["name"]
        result = run_tap(config, catalog=catalog).assert_ok()
        plain = run_tap(make_config(sim), catalog=catalog).assert_ok()  # the same catalog, the setting off

    validate_records(result)
    assert STITCH_TABLES <= result.streams and result.streams == {f"zopim_{name}" for name in STREAMS}
    schemas = result.schemas()
    assert schemas["zopim_triggers"]["key_properties"] == ["name"]
    assert schemas["zopim_chats"]["key_properties"] == ["id"]
    triggers = result.records("zopim_triggers")
    assert keyless in {t["name"] for t in triggers} and len(triggers) == len(expected_records(dataset, "triggers"))
    assert "could not be written" not in result.stderr
    assert len(result.records("zopim_chats")) == len(dataset.chats)
    assert set(result.last_state["bookmarks"]) >= {"chats", "agent_timeline"}, "bookmarks keep the streams' names"
    # Off, a catalog of Stitch's names selects the same streams under their own names, triggers keyed by id.
    assert plain.streams == set(STREAMS) and plain.schemas()["triggers"]["key_properties"] == ["id"]
