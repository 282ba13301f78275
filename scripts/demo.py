"""`make demo`: the simulator up, discovery, a full sync into target-jsonl, changes upstream, an incremental
sync from the saved state, and what landed where.

Runs the real tap as a subprocess against the bundled local Zendesk Chat simulator (no network), piped into
target-jsonl from its own virtualenv (.e2e-venvs/target-jsonl, built by `make demo`)."""
import collections
import json
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.simulator import Dataset, Simulator  # noqa: E402

OUT = ROOT / "demo-output"
TARGET_JSONL = ROOT / ".e2e-venvs" / "target-jsonl" / "bin" / "target-jsonl"


def run_tap(args, stdout_path):
    """The tap alone (discovery), its stdout to a file; its log without METRIC lines to the terminal."""
    with open(stdout_path, "w", encoding="utf-8") as out:
        proc = subprocess.run([sys.executable, "-m", "tap_zendesk_chat", *args], stdout=out, stderr=subprocess.PIPE,
                              text=True, cwd=ROOT)
    show_log(proc.stderr)
    if proc.returncode:
        sys.exit(f"the tap exited {proc.returncode}")


def show_log(stderr):
    sys.stderr.write("".join(line + "\n" for line in stderr.splitlines() if "METRIC" not in line))


def run_pipeline(args, run_dir, tmp):
    """tap | target-jsonl: records land in run_dir/<stream>.jsonl; returns the state target-jsonl emitted."""
    run_dir.mkdir(parents=True, exist_ok=True)
    for old in run_dir.glob("*.jsonl"):
        old.unlink()
    target_config = tmp / "target.json"
    target_config.write_text(json.dumps({"destination_path": str(run_dir), "do_timestamp_file": False}))
    tap = subprocess.Popen([sys.executable, "-m", "tap_zendesk_chat", *args], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, cwd=ROOT)
    target = subprocess.run([str(TARGET_JSONL), "--config", str(target_config)], stdin=tap.stdout,
                            capture_output=True, text=True)
    tap.stdout.close()
    tap_log = tap.stderr.read().decode()
    tap.wait()
    show_log(tap_log)
    if tap.returncode or target.returncode:
        sys.exit(f"the tap exited {tap.returncode}, target-jsonl {target.returncode}: {target.stderr[-2000:]}")
    states = [line for line in target.stdout.splitlines() if line.strip()]
    return json.loads(states[-1]) if states else None


def count_lines(run_dir):
    return collections.Counter({path.stem: sum(1 for _ in path.open()) for path in run_dir.glob("*.jsonl")})


def main():
    OUT.mkdir(exist_ok=True)
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

        print("\n== First sync (everything): tap-zendesk-chat | target-jsonl")
        state = run_pipeline(["--config", str(config), "--catalog", str(OUT / "catalog.json")], OUT / "sync1", tmp)
        counts = count_lines(OUT / "sync1")
        (OUT / "state.json").write_text(json.dumps(state, indent=2))
        requests = collections.Counter(r["path"] for r in sim.requests)

        changes = dataset.mutate(seed=7)
        sim.clear_requests()
        print("\n== Changes upstream: " + ", ".join(
            f"{k} {v if isinstance(v, int) else len(v)}" for k, v in changes.items() if v))
        print("\n== Second sync (from the saved state)")
        run_pipeline(["--config", str(config), "--catalog", str(OUT / "catalog.json"), "--state",
                      str(OUT / "state.json")], OUT / "sync2", tmp)
        counts2 = count_lines(OUT / "sync2")

    print("\n== What landed")
    print(f"{'stream':<18}{'first sync':>12}{'second sync':>13}")
    for stream in sorted(set(counts) | set(counts2)):
        print(f"{stream:<18}{counts[stream]:>12}{counts2[stream]:>13}")
    print("\nHTTP requests of the first sync, by endpoint:")
    for path, n in sorted(requests.items()):
        print(f"  {path:<32}{n:>4}")
    print(f"\nWhere it landed: target-jsonl wrote {OUT}/sync1/<stream>.jsonl (first sync) and "
          f"{OUT}/sync2/<stream>.jsonl (second sync); the state between them: {OUT}/state.json; "
          f"the catalog: {OUT}/catalog.json")


if __name__ == "__main__":
    main()
