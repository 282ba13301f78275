"""The soak: 200,000 chats plus every full-table stream, 10% faults, three forced outages.

Each run that an outage ends is resumed from the last STATE it wrote, until a run finishes. Then:
nothing lost (every record the simulator serves arrived), and duplicates of the incremental streams
bounded by one page per resume. Prints a table of the runs and exits non-zero if a guarantee broke.

    make soak                        # or: .venv/bin/python soak/run_soak.py --chats 20000 (a quick one)
"""
import argparse
import collections
import json
import pathlib
import re
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tap_zendesk_chat.streams import STREAMS  # noqa: E402
from tests.harness import RETRY_LINE, TOKEN, kill, make_config, start_tap  # noqa: E402
from tests.integration.expected import expected_keys, key_of  # noqa: E402
from tests.simulator import Dataset, Fault, Simulator  # noqa: E402

PAGE = 1000  # the export's page: the most a resume may read twice
INCREMENTAL = tuple(name for name, stream in STREAMS.items() if stream.replication_method == "INCREMENTAL")
RUN_TIMEOUT = 1800


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chats", type=int, default=200_000, help="chats and offline messages in all")
    parser.add_argument("--timeline", type=int, default=20_000, help="agent_timeline entries")
    parser.add_argument("--fault-rate", type=float, default=0.10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--max-runs", type=int, default=12, help="give up (and fail) after this many runs")
    parser.add_argument("--latency", type=float, default=0.0,
                        help="seconds the simulator adds to every answer (0.2 or more: the exports are read in time "
                             "slices by several fetchers)")
    return parser.parse_args(argv)


class Outages:
    """Three forced outages: two in the chats export, one in agent_timeline; each ends the run it hits."""

    def __init__(self, sim, total_chats):
        self.sim = sim
        self.plan = [("chats", total_chats * 3 // 10), ("chats", total_chats * 6 // 10), ("agent_timeline", 2 * PAGE)]
        self.forced = []
        self.down = False

    def check(self, delivered):
        """Called at each STATE; switches the API off when the next planned point is passed."""
        if len(self.forced) < len(self.plan) and not self.down:
            stream, at = self.plan[len(self.forced)]
            if sum(delivered[stream].values()) >= at:
                self.sim.outage(True)
                self.down = True
                self.forced.append(f"{stream} at {at:,}")
                return True
        return False

    def end(self):
        self.sim.outage(False)
        self.down = False


def run_once(config, state, delivered, outages):
    """One tap run, streamed: counts record keys into `delivered`; returns its row of the table."""
    requests_before = len(outages.sim.requests)
    started = time.monotonic()
    proc = start_tap(config, state=state)
    run_keys = collections.defaultdict(collections.Counter)
    last_state, last_type, outage = None, None, None
    try:
        for raw in proc.stdout:
            if not raw.endswith(b"\n"):
                break  # a cut last line is not a message a target would read
            message = json.loads(raw)
            last_type = message["type"]
            if last_type == "RECORD":
                run_keys[message["stream"]][key_of(message["stream"], message["record"])] += 1
            elif last_type == "STATE":
                last_state = message["value"]
                # Records count as delivered once a STATE covers them: that is what a target commits.
                for name, keys in run_keys.items():
                    delivered[name].update(keys)
                run_keys.clear()
                if outage is None and outages.check(delivered):
                    outage = outages.forced[-1]
        proc.wait(timeout=RUN_TIMEOUT)
    finally:
        kill(proc)
    uncovered = sum(sum(c.values()) for c in run_keys.values())
    proc.stderr_file.seek(0)
    stderr = proc.stderr_file.read().decode(errors="replace")
    proc.stderr_file.close()
    if outage:
        outages.end()
    requests = outages.sim.requests[requests_before:]
    critical = re.findall(r"^CRITICAL (.*)$", stderr, re.MULTILINE)
    return {
        "exit": proc.returncode, "state": last_state, "outage": outage or "", "uncovered": uncovered,
        "requests": len(requests), "faults": sum(1 for r in requests if r["fault"]),
        "outage_503": sum(1 for r in requests if r["status"] == 503 and not r["fault"]),
        "retries": len(RETRY_LINE.findall(stderr)), "seconds": time.monotonic() - started,
        "critical": critical[0][:100] if critical else "", "traceback": "Traceback" in stderr,
        "ahead": "reading ahead" in stderr,
        "slices": sum(int(n) for n in re.findall(r"read in (\d+) time slices", stderr)),
        "smaller": len(re.findall(r"records a page instead of", stderr)),
    }


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    print(f"Generating {args.chats:,} chats, {args.timeline:,} timeline entries ...", flush=True)
    started = time.monotonic()
    offline = args.chats // 10
    ds = Dataset.generate(seed=args.seed, chats=args.chats - offline, offline_msgs=offline, agents=1000,
                          ip_bans=600, visitor_bans=400, timeline_entries=args.timeline, history_events=10)
    expected = expected_keys(ds)
    print(f"  done in {time.monotonic() - started:.0f} s", flush=True)

    sim = Simulator(ds, token=TOKEN, fault_rate=args.fault_rate, fault_kinds=Fault.ALL, fault_seed=args.seed,
                    stall_seconds=2, latency=args.latency).start()
    try:
        config = make_config(sim, request_timeout=1, max_retry_wait=0.5)
        outages = Outages(sim, ds.chat_count())
        delivered = collections.defaultdict(collections.Counter)
        rows, state = [], None
        while len(rows) < args.max_runs:
            row = run_once(config, state, delivered, outages)
            rows.append(row)
            print(f"  run {len(rows)}: exit {row['exit']}, {row['outage'] or 'no outage'}, "
                  f"{row['seconds']:.0f} s", flush=True)
            if row["exit"] == 0:
                break
            state = row["state"]
    finally:
        sim.stop()
    return report(args, ds, expected, delivered, rows, outages)


def report(args, ds, expected, delivered, rows, outages):
    print()
    print(f"Soak: {ds.chat_count():,} chats, {args.fault_rate:.0%} faults (all kinds), "
          f"{len(outages.forced)} forced outages")
    head = f"{'run':>3}  {'exit':>4}  {'outage forced':<22} {'requests':>8} {'faults':>6} {'503 outage':>10} " \
           f"{'retries':>7} {'seconds':>7}  resumed from"
    print(head)
    print("-" * len(head))
    previous = None
    for number, row in enumerate(rows, 1):
        where = "start" if previous is None else _describe(previous)
        print(f"{number:>3}  {row['exit']:>4}  {row['outage']:<22} {row['requests']:>8} {row['faults']:>6} "
              f"{row['outage_503']:>10} {row['retries']:>7} {row['seconds']:>7.0f}  {where}")
        previous = row["state"]
    print()

    failures = []
    resumes = len(rows) - 1
    print(f"{'stream':<17} {'expected':>9} {'delivered':>9} {'lost':>6} {'duplicates':>10}  bound")
    for name in STREAMS:
        lost = sum((expected[name] - delivered[name]).values())
        duplicates = sum((delivered[name] - expected[name]).values())
        unique = len(set(delivered[name]) & set(expected[name]))
        bound = (f"<= {PAGE * resumes:,} (one page per resume)" if name in INCREMENTAL
                 else "full table: re-read by design")
        print(f"{name:<17} {sum(expected[name].values()):>9,} {unique:>9,} {lost:>6,} {duplicates:>10,}  {bound}")
        if lost:
            failures.append(f"{name}: {lost} records lost")
        if name in INCREMENTAL and duplicates > PAGE * resumes:
            failures.append(f"{name}: {duplicates} duplicates > {PAGE * resumes}")
        stray = set(delivered[name]) - set(expected[name])
        if stray:
            failures.append(f"{name}: {len(stray)} records the API never served")
    if rows[-1]["exit"] != 0:
        failures.append(f"no run finished within {args.max_runs} runs")
    if len(outages.forced) != len(outages.plan):
        failures.append(f"only {len(outages.forced)} of {len(outages.plan)} outages were forced")
    for number, row in enumerate(rows, 1):
        if row["traceback"]:
            failures.append(f"run {number}: a traceback on stderr")
        if row["uncovered"] and row["exit"] == 0:
            failures.append(f"run {number}: {row['uncovered']} records after the last STATE")
        if row["exit"] not in (0, 1):
            failures.append(f"run {number}: exit {row['exit']}")
        if row["exit"] == 1 and not row["critical"]:
            failures.append(f"run {number}: failed without a CRITICAL line")
    total_faults = sum(r["faults"] for r in rows)
    total_retries = sum(r["retries"] for r in rows)
    print()
    print(f"faults injected {total_faults:,}, outage 503s {sum(r['outage_503'] for r in rows):,}, "
          f"retries {total_retries:,}, requests {sum(r['requests'] for r in rows):,}, "
          f"{sum(r['seconds'] for r in rows):.0f} s in {len(rows)} runs ({resumes} resumes)")
    print(f"runs whose exports read ahead in threads: {sum(r['ahead'] for r in rows)} of {len(rows)}; walks finished "
          f"in time slices: {sum(r['slices'] for r in rows)} slices in all; page size halvings: "
          f"{sum(r['smaller'] for r in rows)}")
    for number, row in enumerate(rows, 1):
        if row["critical"]:
            print(f"  run {number} ended: {row['critical']}")
    if failures:
        print("\nFAILED:\n  " + "\n  ".join(failures))
        return 1
    print("\nOK: nothing lost; duplicates within one page per resume.")
    return 0


def _describe(state):
    if not state:
        return "(no STATE)"
    current = state.get("currently_syncing")
    bookmark = state.get("bookmarks", {}).get(current or "", {})
    cursor = bookmark.get("cursor") or ({"since_id": bookmark["since_id"]} if "since_id" in bookmark else "")
    return f"{current or '-'} {json.dumps(cursor)[:40]}"


if __name__ == "__main__":
    sys.exit(main())
