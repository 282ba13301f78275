"""`make demo`: the simulator up, discovery, a full sync, a second incremental sync, and what landed where.

Runs the real tap as a subprocess against the bundled local Zendesk Chat simulator (no network)."""
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


def run_tap(args, stdout_path):
    with open(stdout_path, "w", encoding="utf-8") as out:
        proc = subprocess.run([sys.executable, "-m", "tap_zendesk_chat", *args], stdout=out, stderr=subprocess.PIPE,
                              text=True, cwd=ROOT)
    sys.stderr.write("".join(line + "\n" for line in proc.stderr.splitlines() if "METRIC" not in line))
    if proc.returncode:
        sys.exit(f"the tap exited {proc.returncode}")


def split_output(messages_path, run_dir):
    """Write each stream's records to <stream>.jsonl, as a target would; return counts and the last state."""
    run_dir.mkdir(parents=True, exist_ok=True)
    counts, files, last_state = collections.Counter(), {}, None
    with open(messages_path, encoding="utf-8") as handle:
        for line in handle:
            message = json.loads(line)
            if message["type"] == "RECORD":
                stream = message["stream"]
                if stream not in files:
                    files[stream] = open(run_dir / f"{stream}.jsonl", "w", encoding="utf-8")
                files[stream].write(json.dumps(message["record"]) + "\n")
                counts[stream] += 1
            elif message["type"] == "STATE":
                last_state = message["value"]
    for handle in files.values():
        handle.close()
    return counts, last_state


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

        print("\n== First sync (everything)")
        run_tap(["--config", str(config), "--catalog", str(OUT / "catalog.json")], OUT / "sync1.singer")
        counts, state = split_output(OUT / "sync1.singer", OUT / "sync1")
        (OUT / "state.json").write_text(json.dumps(state, indent=2))
        requests = collections.Counter(r["path"] for r in sim.requests)

        changes = dataset.mutate(seed=7)
        sim.clear_requests()
        print("\n== Changes upstream: " + ", ".join(
            f"{k} {v if isinstance(v, int) else len(v)}" for k, v in changes.items() if v))
        print("\n== Second sync (from the saved state)")
        run_tap(["--config", str(config), "--catalog", str(OUT / "catalog.json"), "--state", str(OUT / "state.json")],
                OUT / "sync2.singer")
        counts2, _ = split_output(OUT / "sync2.singer", OUT / "sync2")

    print("\n== What landed")
    print(f"{'stream':<18}{'first sync':>12}{'second sync':>13}")
    for stream in sorted(set(counts) | set(counts2)):
        print(f"{stream:<18}{counts[stream]:>12}{counts2[stream]:>13}")
    print("\nHTTP requests of the first sync, by endpoint:")
    for path, n in sorted(requests.items()):
        print(f"  {path:<32}{n:>4}")
    print(f"\nRecords per stream: {OUT}/sync1/*.jsonl and {OUT}/sync2/*.jsonl; "
          f"raw Singer messages: {OUT}/sync1.singer; state: {OUT}/state.json")


if __name__ == "__main__":
    main()
