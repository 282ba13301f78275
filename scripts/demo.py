"""`make demo`: the simulator up, discovery, a full sync into DuckDB, a report from SQL over the tables, changes
upstream, an incremental sync from the saved state, and what it changed in the tables.

Runs the real tap as a subprocess against the bundled local Zendesk Chat simulator (no network), piped into
target-duckdb from its own virtualenv (.e2e-venvs/target-duckdb, built by `make demo`) through
scripts/run_target_duckdb.py; the report is scripts/demo_report.py, run by that venv's Python.

    python scripts/demo.py                 # DuckDB: demo-output/zendesk.duckdb and a report
    python scripts/demo.py --target jsonl  # target-jsonl: demo-output/sync1/<stream>.jsonl, sync2/, line counts

The logs of the tap and the target go to demo-output/logs/."""
import argparse
import collections
import json
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.simulator import Dataset, Simulator  # noqa: E402

OUT = ROOT / "demo-output"
LOGS = OUT / "logs"
VENVS = ROOT / ".e2e-venvs"
DUCKDB_PYTHON = VENVS / "target-duckdb" / "bin" / "python"
DATABASE = OUT / "zendesk.duckdb"  # not zendesk_chat.duckdb: its catalog would share the schema's name
BEFORE_SECOND_SYNC = OUT / "after-sync1.duckdb"
TOTAL_LINE = re.compile(r"^INFO\s+total\s+(\d+)\s+(\d+)\s+(\d+)\s+([\d.]+)", re.MULTILINE)


class DuckDB:
    """target-duckdb into one DuckDB file, upserting on each stream's key; the report reads the file."""
    name = "target-duckdb"
    command = [str(DUCKDB_PYTHON), str(ROOT / "scripts" / "run_target_duckdb.py")]

    def start(self):
        for old in (DATABASE, BEFORE_SECOND_SYNC):
            old.unlink(missing_ok=True)

    def config(self, run):
        # routing_settings has no key: without primary_key_required false the target refuses the stream.
        return {"path": str(DATABASE), "default_target_schema": "zendesk_chat", "primary_key_required": False}

    def after_first_sync(self):
        shutil.copyfile(DATABASE, BEFORE_SECOND_SYNC)
        print()
        report("first", DATABASE.relative_to(ROOT))

    def after_second_sync(self, requests):
        print()
        report("changes", DATABASE.relative_to(ROOT), BEFORE_SECOND_SYNC.relative_to(ROOT))
        print(f"\nThe database: {DATABASE.relative_to(ROOT)} (and {BEFORE_SECOND_SYNC.name}, as it was before the "
              f"second sync). Query it with\n  {DUCKDB_PYTHON.relative_to(ROOT)} -c \"import duckdb; "
              f"print(duckdb.connect('{DATABASE.relative_to(ROOT)}').sql('FROM zendesk_chat.chats LIMIT 5'))\"")


class Jsonl:
    """target-jsonl: one file per stream and run."""
    name = "target-jsonl"
    command = [str(VENVS / "target-jsonl" / "bin" / "target-jsonl")]

    def start(self):
        pass

    def config(self, run):
        run_dir = OUT / run
        run_dir.mkdir(parents=True, exist_ok=True)
        for old in run_dir.glob("*.jsonl"):
            old.unlink()
        return {"destination_path": str(run_dir), "do_timestamp_file": False}

    def after_first_sync(self):
        pass

    def after_second_sync(self, requests):
        counts, counts2 = count_lines(OUT / "sync1"), count_lines(OUT / "sync2")
        print("\n== What landed")
        print(f"{'stream':<18}{'first sync':>12}{'second sync':>13}")
        for stream in sorted(set(counts) | set(counts2)):
            print(f"{stream:<18}{counts[stream]:>12}{counts2[stream]:>13}")
        print("\nHTTP requests of the first sync, by endpoint:")
        for path, n in sorted(requests.items()):
            print(f"  {path:<32}{n:>4}")
        print(f"\nWhere it landed: target-jsonl wrote {OUT}/sync1/<stream>.jsonl (first sync) and "
              f"{OUT}/sync2/<stream>.jsonl (second sync)")


TARGETS = {"duckdb": DuckDB, "jsonl": Jsonl}


def report(*args):
    proc = subprocess.run([str(DUCKDB_PYTHON), str(ROOT / "scripts" / "demo_report.py"), *map(str, args)], cwd=ROOT)
    if proc.returncode:
        sys.exit(f"the report exited {proc.returncode}")


def run_tap(args, stdout_path):
    """The tap alone (discovery), its stdout to a file, its log to demo-output/logs."""
    with open(stdout_path, "w", encoding="utf-8") as out:
        proc = subprocess.run([sys.executable, "-m", "tap_zendesk_chat", *args], stdout=out, stderr=subprocess.PIPE,
                              text=True, cwd=ROOT)
    (LOGS / "discover-tap.log").write_text(proc.stderr)
    if proc.returncode:
        sys.exit(f"the tap exited {proc.returncode}; its log: {LOGS / 'discover-tap.log'}\n{proc.stderr[-2000:]}")


def run_pipeline(args, target, run, tmp):
    """tap | target; the logs go to demo-output/logs/<run>-{tap,target}.log. Returns the last state the target
    emitted."""
    target_config = tmp / f"target-{run}.json"
    target_config.write_text(json.dumps(target.config(run)))
    tap_log, target_log = LOGS / f"{run}-tap.log", LOGS / f"{run}-target.log"
    with open(tap_log, "w", encoding="utf-8") as tap_err, open(target_log, "w", encoding="utf-8") as target_err:
        tap = subprocess.Popen([sys.executable, "-m", "tap_zendesk_chat", *args], stdout=subprocess.PIPE,
                               stderr=tap_err, cwd=ROOT)
        loaded = subprocess.run([*target.command, "--config", str(target_config)], stdin=tap.stdout,
                                stdout=subprocess.PIPE, stderr=target_err, text=True, cwd=ROOT)
        tap.stdout.close()
        tap.wait()
    if tap.returncode or loaded.returncode:
        sys.exit(f"the tap exited {tap.returncode}, {target.name} {loaded.returncode}; the end of their logs:\n"
                 f"{tap_log.read_text()[-1500:]}\n{target_log.read_text()[-2500:]}")
    total = TOTAL_LINE.search(tap_log.read_text())
    if total:
        records, requests, retries, seconds = total.groups()
        print(f"{int(records):,} records from {requests} requests ({retries} retries) in {seconds} s; "
              f"logs: {tap_log.relative_to(ROOT)}, {target_log.relative_to(ROOT)}")
    states = [line for line in loaded.stdout.splitlines() if line.strip()]
    return json.loads(states[-1]) if states else None


def count_lines(run_dir):
    return collections.Counter({path.stem: sum(1 for _ in path.open()) for path in run_dir.glob("*.jsonl")})


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", choices=sorted(TARGETS), default="duckdb",
                        help="where the records land (default: duckdb)")
    target = TARGETS[parser.parse_args().target]()
    LOGS.mkdir(parents=True, exist_ok=True)
    missing = pathlib.Path(target.command[0])
    if not missing.exists():
        sys.exit(f"{missing} is missing: build it with `bash scripts/e2e_venvs.sh {target.name}` (make demo does)")
    target.start()
    dataset = Dataset.generate(seed=1, chats=2500, offline_msgs=400)
    with Simulator(dataset, token="demo-token") as sim, tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        config = tmp / "config.json"
        config.write_text(json.dumps({"access_token": "demo-token", "base_url": sim.base_url,
                                      "start_date": "2000-01-01T00:00:00Z"}))
        print(f"Simulator: {sim.base_url}\n\n== Discovery")
        run_tap(["--config", str(config), "--discover"], OUT / "catalog.json")
        catalog = json.loads((OUT / "catalog.json").read_text())
        print(f"{len(catalog['streams'])} streams: {', '.join(s['stream'] for s in catalog['streams'])}")
        sim.clear_requests()

        print(f"\n== First sync (everything): tap-zendesk-chat | {target.name}")
        state = run_pipeline(["--config", str(config), "--catalog", str(OUT / "catalog.json")], target, "sync1", tmp)
        (OUT / "state.json").write_text(json.dumps(state, indent=2))
        requests = collections.Counter(r["path"] for r in sim.requests)
        target.after_first_sync()

        changes = dataset.mutate(seed=7)
        # Two chats lose tags, so that the report shows how the child tables tell stale rows from current ones.
        untagged = [c for c in dataset.served("chats") if len(c.get("tags") or []) >= 2][:2]
        for chat in untagged:
            dataset.update_chat(chat["id"], tags=chat["tags"][:1])
        changes["chats_that_lost_tags"] = len(untagged)
        sim.clear_requests()
        print("\n== Changes upstream: " + ", ".join(
            f"{k} {v if isinstance(v, int) else len(v)}" for k, v in changes.items() if v))
        print(f"\n== Second sync (from the saved state {(OUT / 'state.json').relative_to(ROOT)})")
        run_pipeline(["--config", str(config), "--catalog", str(OUT / "catalog.json"), "--state",
                      str(OUT / "state.json")], target, "sync2", tmp)
    target.after_second_sync(requests)


if __name__ == "__main__":
    main()
