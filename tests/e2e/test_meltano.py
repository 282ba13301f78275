"""examples/meltano: the tap as a custom Meltano extractor, run by Meltano 4.4.1 against the simulator.

Meltano Hub is never needed: every plugin is a custom one with its pip_url (the extractor in the file generated from
the settings table, tap-zendesk-chat.meltano.yml, which meltano.yml includes), and the tests point Meltano's hub
settings at a closed port so that any attempt to reach it would fail."""
import json
import os
import shutil
import subprocess

from tap_zendesk_chat import meltano_plugin
from tests.e2e.tools import ROOT, expected_counts, expected_keys, keep_log, key_of, small_dataset, tool
from tests.harness import TOKEN, run_tap
from tests.integration.expected import FULL_TABLE
from tests.simulator import Simulator

PROJECT = ROOT / "examples" / "meltano"
PROJECT_FILES = ("meltano.yml", "tap-zendesk-chat.meltano.yml")
# Meltano's setting kinds for the tap's own (tap_zendesk_chat/config.py SETTINGS). Numbers are `string`:
# Meltano 4.4.1 cannot write a `decimal` setting that came from the environment (see meltano.yml).
MELTANO_KIND = {"string": "string", "integer": "integer", "number": "string", "boolean": "boolean",
                "date_iso8601": "date_iso8601"}
NOWHERE = "http://127.0.0.1:9"


def meltano_python(script, *args):
    """Run `script` with the Meltano venv's Python (it has PyYAML and jsonschema; the tap's venv has neither)."""
    python = os.path.join(os.path.dirname(tool("meltano", "meltano")), "python")
    proc = subprocess.run([python, "-c", script, *map(str, args)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def load_yaml(path):
    return meltano_python("import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))", path)


def load_project():
    """meltano.yml with the plugins of the files it includes."""
    project = load_yaml(PROJECT / "meltano.yml")
    assert project["include_paths"] == [f"./{PROJECT_FILES[1]}"]
    included = load_yaml(PROJECT / PROJECT_FILES[1])
    assert set(included) == {"plugins"}
    for kind, plugins in included["plugins"].items():
        project["plugins"].setdefault(kind, []).extend(plugins)
    return project


def test_meltano_yml_is_valid_for_meltano():
    for name in PROJECT_FILES:
        errors = meltano_python(
            "import json, sys, yaml, jsonschema, importlib.resources as r\n"
            "schema = json.loads(r.files('meltano').joinpath('schemas/meltano.schema.json').read_text())\n"
            "project = yaml.safe_load(open(sys.argv[1]))\n"
            "v = jsonschema.Draft202012Validator(schema)\n"
            "print(json.dumps([f'{list(e.absolute_path)}: {e.message}' for e in v.iter_errors(project)]))",
            PROJECT / name)
        assert errors == [], name


def test_the_generated_file_reads_as_the_definition_in_yaml():
    """The generator writes YAML by hand: PyYAML must read back exactly the definition it was given."""
    assert load_yaml(PROJECT / PROJECT_FILES[1]) == {"plugins": {"extractors": [meltano_plugin.plugin_definition()]}}


def test_the_extractor_declares_what_the_tap_says_about_itself():
    about = json.loads(run_tap(None, args=["--about"], parse=False).stdout)
    project = load_project()
    [extractor] = project["plugins"]["extractors"]
    assert extractor["name"] == about["name"] == extractor["executable"]
    assert extractor["namespace"] == "tap_zendesk_chat"
    assert extractor["pip_url"] == "-e ../.."
    assert extractor["capabilities"] == about["capabilities"]
    declared = {s["name"]: s for s in extractor["settings"]}
    assert list(declared) == [s["name"] for s in about["settings"]], "every setting, in the tap's order"
    for setting in about["settings"]:
        got = declared[setting["name"]]
        name = setting["name"]
        assert got["kind"] == MELTANO_KIND[setting["kind"]], name
        assert got.get("sensitive", False) == setting["secret"], name
        assert got.get("value") == setting["default"], name
        assert got["description"] == setting["description"], name
    assert {"access_token", "refresh_token", "client_secret"} == {n for n, s in declared.items() if s.get("sensitive")}


def test_the_loaders_the_mapper_and_the_schedule():
    project = load_project()
    jsonl, duckdb = project["plugins"]["loaders"]
    assert jsonl["name"] == jsonl["executable"] == "target-jsonl"
    assert jsonl["pip_url"] == "target-jsonl==0.1.4"
    # target-duckdb and the mapper come from the pinned lists the e2e tests use, the loader with its fixes.
    assert duckdb["name"] == "target-duckdb" and duckdb["executable"] == "target-duckdb-fixed"
    assert duckdb["pip_url"] == ("-r ../../tests/e2e/requirements/target-duckdb.txt "
                                 "-e ../../loaders/target-duckdb-fixed")
    [mapper] = project["plugins"]["mappers"]
    assert mapper["pip_url"] == "-r ../../tests/e2e/requirements/meltano-map-transform.txt"
    assert [m["name"] for m in mapper["mappings"]] == ["hide-personal-data"]
    for pip_url in (duckdb["pip_url"], mapper["pip_url"]):
        for path in pip_url.split()[1::2]:
            assert (PROJECT / path).exists(), path
    [job] = project["jobs"]
    assert job["tasks"] == ["tap-zendesk-chat target-jsonl"]
    [schedule] = project["schedules"]
    assert schedule == {"name": schedule["name"], "interval": "*/30 * * * *", "job": job["name"]}
    assert project["send_anonymous_usage_stats"] is False


def read_outputs(directory):
    return {path.stem: [json.loads(line) for line in path.read_text().split("\n") if line.strip()]
            for path in directory.glob("*.jsonl")}


def copy_project(directory):
    """The example project copied into `directory`, its plugins installed from this checkout: the example
    names the tap and the loader package by paths relative to examples/meltano (../..)."""
    project = directory / "project"
    shutil.copytree(PROJECT, project, ignore=shutil.ignore_patterns(".meltano", "output", ".env"))
    definition = project / PROJECT_FILES[1]
    text = definition.read_text()
    assert text.count('pip_url: "-e ../.."') == 1
    definition.write_text(text.replace('pip_url: "-e ../.."', f'pip_url: "-e {ROOT}"'))
    main = project / PROJECT_FILES[0]
    main.write_text(main.read_text().replace(" ../../", f" {ROOT}/"))
    return project


def meltano_env(sim, **extra):
    """Meltano's environment for a run against `sim`: nothing inherited that names a plugin, Meltano Hub a closed
    port, no usage stats."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MELTANO_", "TAP_", "TARGET_"))}
    env.update({
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "MELTANO_HUB_URL": NOWHERE,
        "MELTANO_HUB_API_ROOT": f"{NOWHERE}/meltano/api/v1",
        "TAP_ZENDESK_CHAT_BASE_URL": sim.base_url,
        "TAP_ZENDESK_CHAT_ACCESS_TOKEN": TOKEN,
        "TAP_ZENDESK_CHAT_START_DATE": "2000-01-01T00:00:00Z",
        "TAP_ZENDESK_CHAT_MAX_RETRY_WAIT": "2.5",  # a number from the environment, as users set them
    }, **extra)
    return env


def run_meltano(project, env, *args, timeout=300):
    proc = subprocess.run([tool("meltano", "meltano"), *args], cwd=project, env=env, capture_output=True, text=True,
                          timeout=timeout)
    keep_log("meltano", proc.stdout + proc.stderr)
    assert proc.returncode == 0, f"meltano {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-6000:]}"
    return proc


def test_meltano_install_and_two_runs_against_the_simulator(tmp_path):
    project = copy_project(tmp_path)
    dataset = small_dataset(seed=61)
    with Simulator(dataset, token=TOKEN) as sim:
        env = meltano_env(sim)

        def meltano_cmd(*args, output=None, timeout=300):
            return run_meltano(project, dict(env, TARGET_JSONL_DESTINATION_PATH=output) if output else env, *args,
                               timeout=timeout)

        meltano_cmd("install", "--plugin-type", "extractor", "tap-zendesk-chat", timeout=600)
        meltano_cmd("install", "--plugin-type", "loader", "target-jsonl", timeout=600)
        meltano_cmd("run", "tap-zendesk-chat", "target-jsonl", output="out1")
        first = read_outputs(project / "out1")
        assert {name: len(rows) for name, rows in first.items()} == expected_counts(dataset)
        for name, rows in first.items():
            assert {key_of(name, row) for row in rows} == expected_keys(dataset, name), name
        chats = {chat["id"]: chat for chat in first["chats"]}
        assert all(chats[c["id"]]["tags"] == c["tags"] for c in dataset.chats)

        changes = dataset.mutate(seed=2)
        meltano_cmd("run", "tap-zendesk-chat", "target-jsonl", output="out2")
        second = read_outputs(project / "out2")

    # The second run starts from the state Meltano saved: only the chats that changed come again.
    changed = set(changes["updated_chats"]) | set(changes["deleted_chats"]) | set(changes["new_chats"])
    assert {chat["id"] for chat in second["chats"]} == changed
    assert len(second["chats"]) < len(first["chats"])
    assert all(chat["deleted"] for chat in second["chats"] if chat["id"] in changes["deleted_chats"])
    assert len(second["agent_timeline"]) == changes["new_timeline_entries"]
    # Full-table streams come whole, as they are now.
    assert {agent["id"] for agent in second["agents"]} == {agent["id"] for agent in dataset.agents}
    assert {name: len(rows) for name, rows in second.items() if name in FULL_TABLE} == \
        {name: n for name, n in expected_counts(dataset).items() if name in FULL_TABLE}

