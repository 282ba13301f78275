"""The benchmarks of issues 6 and 18: `make bench` (or .venv/bin/python bench/run.py --chats 50000 200000).

For each N: the simulator starts in its own process (its own core when there are two) with N chats of
realistic size; the tap syncs `chats` to /dev/null pinned to one core; the raw reference fetches the
same pages and does only json.loads + json.dumps; the tap syncs every other stream. Each child's wall
time, CPU (user+sys) and peak RSS come from os.wait4 on that very child, HTTP requests per endpoint
from the simulator's /_sim/stats (difference before/after each run). See bench/README.md.

This driver imports only the tap's STREAMS registry (which streams there are, and how each pages); the
tap itself always runs in a child process of its own.
"""
import argparse
import datetime
import hashlib
import json
import math
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tap_zendesk_chat.config import SETTINGS  # noqa: E402
from tap_zendesk_chat.discover import build_catalog  # noqa: E402
from tap_zendesk_chat.streams import STREAMS  # noqa: E402
RESULTS = ROOT / "bench" / "results"
PYTHON = sys.executable
TOKEN = "bench-token"
START_DATE = "2000-01-01T00:00:00Z"
START_TIME = 946684800  # START_DATE in epoch seconds, for the raw reference
EXPORT_LIMIT = 1000
DEFAULT_PARALLEL = next(s.default for s in SETTINGS if s.name == "max_parallel_requests")
OFFLINE_SHARE = 0.01  # offline messages among the N records of the chats export
# The simulator's other data (its defaults) and the tap's page sizes: minimum pages follow from them.
AGENTS, IP_BANS, VISITOR_BANS, TIMELINE = 250, 120, 80, 400
AGENTS_PAGE, BANS_PAGE = 100, 500
# Targets of issue 6.
TARGET_RATE = 10_000
TARGET_CHILDREN_RATE = 5_000  # issue 19: chats with every child stream selected, chats per CPU second
TARGET_RAW_FACTOR = 2.0
TARGET_RSS_MB = 100
RSS_FLAT_MB = 10  # "flat": peak RSS at the largest N within this of the smallest
SUMMARY_LINE = re.compile(r"(\w+): (\w+), (\d+) records, (\d+) requests, (\d+) retries")


def minimum_pages(records):
    """Fewest requests each endpoint of the other streams can take for the records its streams delivered
    (a full page means one more GET), for every stream of the tap's STREAMS but those of the chats walk."""
    pages = {}
    for name, stream in STREAMS.items():
        if stream.walk == "chats":
            continue
        count = records.get(name, 0)
        if stream.replication_method == "INCREMENTAL":
            size = EXPORT_LIMIT
        elif hasattr(stream, "page_limit_setting"):  # an id-cursor walk, shared by the streams of one path
            size = {"agents_page_limit": AGENTS_PAGE, "bans_page_limit": BANS_PAGE}[stream.page_limit_setting]
        else:
            pages[stream.path] = 1
            continue
        pages[stream.path] = max(pages.get(stream.path, 0), math.ceil((count + 1) / size))
    return pages


# -- processes ------------------------------------------------------------------------------------------
def pinned(command, core):
    """The command pinned to one core with taskset (so no fork of this process carries over into it)."""
    if core is None:
        return command
    if shutil.which("taskset"):
        return ["taskset", "-c", str(core)] + command
    raise SystemExit("taskset not found; install util-linux or run with --no-pin")


def measure(command, core, stdout=subprocess.DEVNULL, stderr=None, env=None):
    """Run to completion; wall seconds, user/sys CPU seconds and peak RSS of exactly that child."""
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    proc = subprocess.Popen(pinned(command, core), cwd=ROOT, stdout=stdout, stderr=stderr, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"returncode": proc.returncode, "wall_s": wall, "user_s": usage.ru_utime, "sys_s": usage.ru_stime,
            "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mb": usage.ru_maxrss / 1024,
            # Other work on the machine shows here; wall figures are only clean when this stays near 1.
            "loadavg_1min": [load_before, os.getloadavg()[0]]}


class SimulatorProcess:
    """`python -m tests.simulator` in its own process; ready once it wrote its base URL to a file."""

    def __init__(self, chats, workdir, core, gzip=False, timeout=900, extra=()):
        offline = int(chats * OFFLINE_SHARE)
        self.chats = chats
        self.ready_file = workdir / f"sim-{chats}.ready"
        self.ready_file.unlink(missing_ok=True)  # a simulator of an earlier run wrote it
        self.log = open(workdir / f"sim-{chats}.log", "w")
        command = [PYTHON, "-m", "tests.simulator", "--port", "0", "--token", TOKEN,
                   "--chats", str(chats - offline), "--offline-msgs", str(offline), "--agents", str(AGENTS),
                   "--ip-bans", str(IP_BANS), "--visitor-bans", str(VISITOR_BANS),
                   "--timeline-entries", str(TIMELINE), "--ready-file", str(self.ready_file)]
        if gzip:
            command.append("--gzip")
        command += list(extra)
        started = time.perf_counter()
        self.proc = subprocess.Popen(pinned(command, core), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=self.log)
        while not self.ready_file.exists():
            if self.proc.poll() is not None:
                raise SystemExit(f"the simulator exited with {self.proc.returncode}; see {self.log.name}")
            if time.perf_counter() - started > timeout:
                self.stop()
                raise SystemExit(f"the simulator was not ready within {timeout} s")
            time.sleep(0.2)
        self.base_url = self.ready_file.read_text().strip()
        self.host_url = self.base_url.split("/api/")[0]
        self.startup_s = time.perf_counter() - started
        self.stats()  # answers: ready

    def stats(self):
        with urllib.request.urlopen(self.host_url + "/_sim/stats", timeout=30) as response:
            return json.loads(response.read())["requests_by_path"]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def requests_during(sim, run):
    before = sim.stats()
    result = run()
    after = sim.stats()
    result["requests"] = {path: after[path] - before.get(path, 0) for path in after
                          if after[path] != before.get(path, 0)}
    return result


# -- the tap ---------------------------------------------------------------------------------------------
def write_json(path, value):
    path.write_text(json.dumps(value))
    return str(path)


def tap_config(sim, workdir):
    return write_json(workdir / "config.json", {
        "access_token": TOKEN, "base_url": sim.base_url, "start_date": START_DATE,
        # The client-side budget (200 a minute by default) would sleep past N = 200,000; this measures the tap.
        "max_requests_per_minute": 100000,
        "agents_page_limit": AGENTS_PAGE, "bans_page_limit": BANS_PAGE})


def discover(config, workdir):
    proc = subprocess.run([PYTHON, "-m", "tap_zendesk_chat", "--config", config, "--discover"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise SystemExit(f"discovery failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout)


def catalog_selecting(catalog, workdir, name, wanted):
    selected = json.loads(json.dumps(catalog))
    for entry in selected["streams"]:
        for item in entry["metadata"]:
            if item["breadcrumb"] == []:
                item["metadata"]["selected"] = wanted(entry["tap_stream_id"])
    return write_json(workdir / f"catalog-{name}.json", selected)


def careful_catalog(catalog, workdir):
    """The chats catalog retyped so that no chat passes the probe: `type` is declared integer (one value of
    every record does not fit: null, and kept in `_unexpected_values`) and `history` may also be a string
    (a union the probe does not walk), so each record is split, each field checked on its own, its
    history decoded and conformed in Python, and the record re-encoded: the careful path."""
    careful = json.loads(json.dumps(catalog))
    for entry in careful["streams"]:
        for item in entry["metadata"]:
            if item["breadcrumb"] == []:
                item["metadata"]["selected"] = entry["tap_stream_id"] == "chats"
        if entry["tap_stream_id"] == "chats":
            properties = entry["schema"]["properties"]
            properties["type"] = {"type": ["null", "integer"]}
            properties["history"]["type"] = ["null", "array", "string"]
    return write_json(workdir / "catalog-careful.json", careful)


def run_tap(config, catalog, core, workdir, label):
    """The tap to /dev/null; its stderr kept, its closing summary parsed for record counts."""
    log_path = workdir / f"tap-{label}.log"
    fingerprint = tap_fingerprint()
    with open(log_path, "w") as log:
        result = measure([PYTHON, "-m", "tap_zendesk_chat", "--config", config, "--catalog", catalog], core,
                         stderr=log)
    text = log_path.read_text()
    if result["returncode"] != 0:
        raise SystemExit(f"the tap exited with {result['returncode']}:\n{text[-3000:]}")
    result["records"] = {m.group(1): int(m.group(3)) for m in SUMMARY_LINE.finditer(text)}
    result["retries"] = sum(int(m.group(5)) for m in SUMMARY_LINE.finditer(text))
    result["tap_fingerprint"] = fingerprint if fingerprint == tap_fingerprint() else "changed during the run"
    return result


def run_raw(sim, core, workdir, use_orjson=False):
    summary = workdir / "raw-summary.json"
    result = measure([PYTHON, str(ROOT / "bench" / "raw_reference.py"), "--base-url", sim.base_url,
                      "--token", TOKEN, "--start-time", str(START_TIME), "--summary", str(summary)]
                     + (["--orjson"] if use_orjson else []), core)
    if result["returncode"] != 0:
        raise SystemExit(f"the raw reference exited with {result['returncode']}")
    result.update(json.loads(summary.read_text()))
    return result


def profile_tap(config, catalog, core, workdir, chats):
    """One more chats sync under cProfile (slower; not part of the figures); prints the top entries."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"profile-chats-{chats}.prof"
    with open(workdir / "tap-profile.log", "w") as log:
        result = measure([PYTHON, "-m", "cProfile", "-o", str(out), "-m", "tap_zendesk_chat", "--config", config,
                          "--catalog", catalog], core, stderr=log)
    if result["returncode"] != 0:
        raise SystemExit(f"the profiled tap exited with {result['returncode']}")
    print(f"\nProfile of the chats sync at N={chats:,} (cProfile, {result['cpu_s']:.1f} CPU s under the "
          f"profiler): {out.relative_to(ROOT)}")
    script = ("import pstats, sys; s = pstats.Stats(sys.argv[1]); s.sort_stats('tottime').print_stats(25); "
              "s.sort_stats('cumulative').print_stats(30)")
    subprocess.run([PYTHON, "-c", script, str(out)], cwd=ROOT, check=False)


# -- one N -------------------------------------------------------------------------------------------------
def best(runs):
    """Each figure at its best over the runs (other work on the machine only ever adds): wall figures from
    the fastest run, CPU from the cheapest, peak RSS the highest of all (memory is not noise)."""
    fastest, cheapest = min(runs, key=lambda r: r["wall_s"]), min(runs, key=lambda r: r["cpu_s"])
    result = dict(fastest)
    result.update({key: cheapest[key] for key in ("cpu_s", "user_s", "sys_s")})
    result["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
    result["chats_requests_all_runs"] = [r["requests"].get("incremental/chats", 0) for r in runs]
    return result


def bench_one(chats, args, workdir, catalog_cache):
    print(f"\n== N = {chats:,}: starting the simulator (load average {os.getloadavg()[0]:.2f}) ...", flush=True)
    sim = SimulatorProcess(chats, workdir, args.sim_core, args.gzip)
    try:
        print(f"   simulator ready in {sim.startup_s:.1f} s at {sim.base_url}", flush=True)
        config = tap_config(sim, workdir)
        if "catalog" not in catalog_cache:
            catalog_cache["catalog"] = discover(config, workdir)
        catalog = catalog_cache["catalog"]
        chats_catalog = catalog_selecting(catalog, workdir, "chats", lambda name: name == "chats")
        chats_walk = {name for name, stream in STREAMS.items() if stream.walk == "chats"}
        others_catalog = catalog_selecting(catalog, workdir, "others", lambda name: name not in chats_walk)
        children_catalog = catalog_selecting(catalog, workdir, "children", lambda name: name in chats_walk)

        tap_runs, raw_runs, floor_runs = [], [], []
        for attempt in range(args.repeat):
            run = requests_during(sim, lambda: run_tap(config, chats_catalog, args.core, workdir, "chats"))
            tap_runs.append(run)
            print(f"   tap  chats #{attempt + 1}: {run['wall_s']:.2f} s wall, {run['cpu_s']:.2f} s CPU, "
                  f"{run['peak_rss_mb']:.0f} MB peak RSS, load {run['loadavg_1min'][1]:.2f}", flush=True)
            if not args.no_raw:
                raw = requests_during(sim, lambda: run_raw(sim, args.core, workdir))
                raw_runs.append(raw)
                print(f"   raw  chats #{attempt + 1}: {raw['wall_s']:.2f} s wall, {raw['cpu_s']:.2f} s CPU, "
                      f"{raw['peak_rss_mb']:.0f} MB peak RSS, load {raw['loadavg_1min'][1]:.2f}", flush=True)
            if args.floor:
                floor = requests_during(sim, lambda: run_raw(sim, args.core, workdir, use_orjson=True))
                floor_runs.append(floor)
                print(f"   raw orjson #{attempt + 1}: {floor['wall_s']:.2f} s wall, {floor['cpu_s']:.2f} s CPU, "
                      f"{floor['peak_rss_mb']:.0f} MB peak RSS, load {floor['loadavg_1min'][1]:.2f}", flush=True)
        careful = None
        if not args.no_careful:
            careful = run_tap(config, careful_catalog(catalog, workdir), args.core, workdir, "careful")
            print(f"   tap  chats, every record on the careful path: {careful['wall_s']:.2f} s wall, "
                  f"{chats / careful['wall_s']:,.0f} chats/s, {careful['cpu_s'] / chats * 10_000:.3f} CPU s/10k, "
                  f"{careful['peak_rss_mb']:.0f} MB peak RSS", flush=True)
        children = requests_during(sim, lambda: run_tap(config, children_catalog, args.core, workdir, "children"))
        print(f"   tap  chats and every child stream: {children['wall_s']:.2f} s wall, {children['cpu_s']:.2f} s CPU, "
              f"{chats / children['cpu_s']:,.0f} chats/CPU-s, {sum(v for k, v in children['records'].items() if k != 'total'):,} records, "
              f"{children['peak_rss_mb']:.0f} MB peak RSS", flush=True)
        others = requests_during(sim, lambda: run_tap(config, others_catalog, args.core, workdir, "others"))
        print(f"   tap  others : {others['wall_s']:.2f} s wall, {others['cpu_s']:.2f} s CPU, "
              f"{others['peak_rss_mb']:.0f} MB peak RSS", flush=True)
        if args.profile:
            profile_tap(config, chats_catalog, args.core, workdir, chats)
    finally:
        sim.stop()

    tap = best(tap_runs)
    raw = best(raw_runs) if raw_runs else None
    return {"chats": chats, "simulator_startup_s": sim.startup_s, "tap": tap, "tap_runs": tap_runs,
            "raw": raw, "raw_runs": raw_runs, "floor": best(floor_runs) if floor_runs else None,
            "floor_runs": floor_runs, "careful": careful, "children": children, "others": others}


# -- figures -----------------------------------------------------------------------------------------------
def derive(result):
    """Rates, CPU per 10k and the checks, added to one N's result."""
    n = result["chats"]
    tap, raw = result["tap"], result["raw"]
    expected_requests = math.ceil((n + 1) / EXPORT_LIMIT)
    checks = []
    for who, run in (("tap", tap), ("raw", raw), ("raw orjson", result["floor"])):
        if run is None:
            continue
        run["chats_per_s"] = n / run["wall_s"]
        run["cpu_s_per_10k"] = run["cpu_s"] / n * 10_000
        run["chats_per_cpu_s"] = n / run["cpu_s"]
        got = run["chats_requests_all_runs"]
        checks.append((f"{who}: incremental/chats requests {'/'.join(map(str, got))} == ceil((N+1)/1000) = "
                       f"{expected_requests}", all(g == expected_requests for g in got), True))
    records = tap["records"].get("chats")
    checks.append((f"tap: {records} chats records == N", records == n, True))
    for who, run in (("raw", raw), ("raw orjson", result["floor"])):
        if run is not None:
            checks.append((f"{who}: {run['records']} chats records == N", run["records"] == n, True))
    if raw is not None:
        result["avg_chat_bytes"] = raw["record_bytes"] / max(1, raw["records"])
        result["tap_vs_raw"] = tap["wall_s"] / raw["wall_s"]
        result["tap_vs_raw_cpu"] = tap["cpu_s"] / raw["cpu_s"]
    children = result["children"]
    children["chats_per_cpu_s"] = n / children["cpu_s"]
    checks.append((f"chats with every child stream: incremental/chats requests "
                   f"{children['requests'].get('incremental/chats', 0)} == {expected_requests} (none of their own)",
                   children["requests"].get("incremental/chats", 0) == expected_requests, True))
    checks.append((f"chats with every child stream: {children['chats_per_cpu_s']:,.0f} chats/CPU-s >= "
                   f"{TARGET_CHILDREN_RATE:,}", children["chats_per_cpu_s"] >= TARGET_CHILDREN_RATE, False))
    others = result["others"]
    minimum = minimum_pages(others["records"])
    others["requests_vs_minimum"] = {path: [others["requests"].get(path, 0), pages] for path, pages in minimum.items()}
    for path, (got, pages) in others["requests_vs_minimum"].items():
        checks.append((f"others: {path} requests {got} == minimum {pages}", got == pages, True))
    checks.append((f"tap: {tap['chats_per_s']:,.0f} chats/s >= {TARGET_RATE:,}", tap["chats_per_s"] >= TARGET_RATE,
                   False))
    if raw is not None:
        checks.append((f"tap: wall {result['tap_vs_raw']:.2f}x the raw reference's <= {TARGET_RAW_FACTOR:g}x",
                       result["tap_vs_raw"] <= TARGET_RAW_FACTOR, False))
    if n >= 200_000:
        checks.append((f"tap: peak RSS {tap['peak_rss_mb']:.0f} MB < {TARGET_RSS_MB} MB at N={n:,}",
                       tap["peak_rss_mb"] < TARGET_RSS_MB, False))
    result["checks"] = [{"check": text, "ok": ok, "hard": hard} for text, ok, hard in checks]
    return result


def linear_fit(points):
    """Least squares y = a + b·x; (a, b)."""
    if len(points) < 2:
        return None
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        return None
    b = sum((x - mx) * (y - my) for x, y in points) / sxx
    return my - b * mx, b


def print_report(results):
    print("\nchats stream (tap pinned to one core; stdout to /dev/null)")
    head = (f"{'N':>9} {'KB/chat':>7} | {'tap wall s':>10} {'chats/s':>8} {'CPU s':>7} {'CPU s/10k':>9} "
            f"{'chats/CPUs':>10} {'RSS MB':>6} {'reqs':>5} | {'raw wall s':>10} {'chats/s':>8} {'CPU s/10k':>9} "
            f"{'chats/CPUs':>10} {'RSS MB':>6} | {'tap/raw wall':>12} {'CPU':>5}")
    print(head)
    print("-" * len(head))
    for r in results:
        t, w = r["tap"], r["raw"]
        size = f"{r['avg_chat_bytes'] / 1000:>7.2f}" if "avg_chat_bytes" in r else f"{'-':>7}"
        line = (f"{r['chats']:>9,} {size} | {t['wall_s']:>10.2f} "
                f"{t['chats_per_s']:>8,.0f} {t['cpu_s']:>7.2f} {t['cpu_s_per_10k']:>9.3f} "
                f"{t['chats_per_cpu_s']:>10,.0f} {t['peak_rss_mb']:>6.0f} {t['requests'].get('incremental/chats', 0):>5} |")
        if w:
            line += (f" {w['wall_s']:>10.2f} {w['chats_per_s']:>8,.0f} {w['cpu_s_per_10k']:>9.3f} "
                     f"{w['chats_per_cpu_s']:>10,.0f} {w['peak_rss_mb']:>6.0f} | {r['tap_vs_raw']:>11.2f}x "
                     f"{r['tap_vs_raw_cpu']:>4.2f}x")
        print(line)

    for r in results:
        f = r.get("floor")
        if f:
            print(f"raw reference with orjson (the C-speed floor) at N={r['chats']:,}: {f['wall_s']:.2f} s wall, "
                  f"{f['chats_per_s']:,.0f} chats/s, {f['cpu_s_per_10k']:.3f} CPU s/10k, {f['peak_rss_mb']:.0f} MB; "
                  f"tap/floor CPU {r['tap']['cpu_s'] / f['cpu_s']:.2f}x")
    sizes = [f"{r['avg_chat_bytes']:,.0f} B at N={r['chats']:,}" for r in results if "avg_chat_bytes" in r]
    if sizes:
        print(f"average chat (compact JSON as served, measured by the raw reference): {'; '.join(sizes)}")
    for who in ("tap", "raw"):
        points = [(r["chats"], r[who]["wall_s"]) for r in results if r.get(who)]
        cpu_points = [(r["chats"], r[who]["cpu_s"]) for r in results if r.get(who)]
        fit, cpu_fit = linear_fit(points), linear_fit(cpu_points)
        if fit and cpu_fit:
            print(f"{who}: wall = {fit[0]:.2f} s + {fit[1] * 1e6:.1f} µs × N  (marginal {1 / fit[1]:,.0f} chats/s); "
                  f"CPU = {cpu_fit[0]:.2f} s + {cpu_fit[1] * 1e6:.1f} µs × N")
            steps = [f"{a[0]:,}→{b[0]:,}: {(b[1] - a[1]) / (b[0] - a[0]) * 1e6:.1f} µs wall, "
                     f"{(d[1] - c[1]) / (d[0] - c[0]) * 1e6:.1f} µs CPU"
                     for a, b, c, d in zip(points, points[1:], cpu_points, cpu_points[1:])]
            print(f"{who}: per extra chat (linear when these agree): {'; '.join(steps)}")
    rss = [r["tap"]["peak_rss_mb"] for r in results]
    if len(rss) > 1:
        print(f"tap peak RSS over N: {min(rss):.0f}–{max(rss):.0f} MB "
              f"({'flat' if max(rss) - min(rss) <= RSS_FLAT_MB else 'NOT flat'}: within {RSS_FLAT_MB} MB)")

    print("\nother streams (one tap run selecting every stream but chats)")
    for r in results:
        o = r["others"]
        print(f"  N={r['chats']:,}: {o['wall_s']:.2f} s wall, {o['cpu_s']:.2f} s CPU, {o['peak_rss_mb']:.0f} MB peak "
              f"RSS, {sum(v for k, v in o['records'].items() if k != 'total'):,} records")
    o = results[-1]["others"]
    print(f"  {'endpoint':<28} {'requests':>8} {'minimum':>8}   records by stream")
    by_path = {}
    for stream, count in sorted(o["records"].items()):
        if stream in STREAMS:
            by_path.setdefault(STREAMS[stream].path, []).append(f"{stream} {count}")
    for path, (got, pages) in o["requests_vs_minimum"].items():
        print(f"  {path:<28} {got:>8} {pages:>8}   {', '.join(by_path.get(path, []))}")

    print("\nchecks (hard: the run fails; targets of issue 6: reported)")
    failed_hard = False
    for r in results:
        for c in r["checks"]:
            mark = "ok  " if c["ok"] else ("FAIL" if c["hard"] else "miss")
            failed_hard |= c["hard"] and not c["ok"]
            print(f"  [{mark}] N={r['chats']:,}: {c['check']}")
    if len(rss) > 1:
        flat = max(rss) - min(rss) <= RSS_FLAT_MB
        print(f"  [{'ok  ' if flat else 'miss'}] tap peak RSS flat in N (spread {max(rss) - min(rss):.0f} MB)")
    return failed_hard




def parse_args(argv):
    parser = argparse.ArgumentParser(prog="bench/run.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chats", type=int, nargs="+", default=None, metavar="N",
                        help="records in the chats export, one run each (default 50000; the network bench's uniform "
                             "data: 200000)")
    parser.add_argument("--quick", action="store_true",
                        help="one small run (N=5000) to check the bench works; no network bench")
    parser.add_argument("--repeat", type=int, default=1, help="runs of tap and raw per N; each figure is reported "
                                                               "at its best: least wall, least CPU, highest RSS "
                                                               "(default 1)")
    parser.add_argument("--core", type=int, default=0, help="core the tap and the raw reference are pinned to")
    parser.add_argument("--sim-core", type=int, default=None,
                        help="core for the simulator (default: another core than --core when there is one)")
    parser.add_argument("--no-pin", action="store_true", help="pin nothing")
    parser.add_argument("--no-raw", action="store_true", help="skip the raw reference")
    parser.add_argument("--no-careful", action="store_true",
                        help="skip the run where every chat takes the careful path (a catalog no chat fits)")
    parser.add_argument("--floor", action="store_true",
                        help="also the raw reference with orjson instead of the standard library (the C-speed floor)")
    parser.add_argument("--gzip", action="store_true",
                        help="the simulator gzips its bodies for clients that accept it (the tap does; whether the real "
                             "API compresses is not documented): the tap and the references then pay for "
                             "decompression too")
    parser.add_argument("--profile", action="store_true",
                        help="after the figures, one more chats sync under cProfile at each N; prints its top entries")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target of issue 6 is missed too")
    parser.add_argument("--latency", type=float, nargs="+", default=None, metavar="S",
                        help="only the network bench: the chats backfill against a server taking S seconds per "
                             "answer and enforcing 200 requests a minute (429 + Retry-After), one run per S and data "
                             f"set (without it: the CPU bench, then the network bench at {DEFAULT_LATENCIES})")
    parser.add_argument("--data", nargs="+", choices=("uniform", "bursty"), default=["uniform", "bursty"],
                        help="the network bench's data sets: uniform (N chats over 30 days) and bursty "
                             f"({BURSTY_CHATS:,} chats: {BURSTY_SECOND:,} in one second, {BURSTY_DAY:,} more that day, "
                             f"{BURSTY_CHATS - BURSTY_SECOND - BURSTY_DAY:,} over a quiet year that ended a year ago)")
    parser.add_argument("--no-network", action="store_true", help="the CPU bench only")
    parser.add_argument("--bytes-per-second", type=float, default=None,
                        help="with --latency: the body's size over this bandwidth is added to each answer")
    parser.add_argument("--parallel", type=int, nargs="+", default=[None], metavar="P",
                        help="with --latency: the tap's max_parallel_requests, one run per P (default: the tap's default)")
    args = parser.parse_args(argv)
    if args.quick:
        args.chats, args.no_network = [5_000], True
    args.network_chats = args.chats or [NETWORK_CHATS]
    args.chats = args.chats or [50_000]
    cores = sorted(os.sched_getaffinity(0))
    if args.no_pin:
        args.core = args.sim_core = None
    elif args.sim_core is None:
        others = [c for c in cores if c != args.core]
        args.sim_core = others[0] if others else args.core
    return args


def tap_fingerprint():
    """A hash of the tap's package as it is on disk now: others may change it while the bench runs."""
    digest = hashlib.sha1()
    for path in sorted((ROOT / "tap_zendesk_chat").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def tap_version():
    """The commit measured, and whether the tap's package differs from it."""
    def git(*command):
        proc = subprocess.run(["git", *command], cwd=ROOT, capture_output=True, text=True)
        return proc.stdout.strip() if proc.returncode == 0 else ""
    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + (" + local changes" if git("status", "--porcelain", "--", "tap_zendesk_chat") else "")


API_BUDGET = 200  # requests a minute: the API's rate limit, answered with 429 + Retry-After beyond it
DEFAULT_LATENCIES = [0, 0.3, 1.5]
NETWORK_CHATS = 200_000  # uniform data: enough for the budget, not the latency, to set the pace (a minute and more)
# The bursty data set (issue 18): a bulk update, a busy day, a quiet year, and an empty year until now.
BURSTY_CHATS, BURSTY_SECOND, BURSTY_DAY = 20_000, 12_000, 6_000
TARGET_OF_CEILING = 0.9  # uniform data at 1.5 s a page, N >= NETWORK_CHATS: at least this share of the ceiling


def data_sets(args):
    """(name, N, the simulator's base chats, its extra arguments) of each data set of the network bench."""
    sets = [("uniform", n, n, []) for n in args.network_chats] if "uniform" in args.data else []
    if "bursty" in args.data:
        quiet = BURSTY_CHATS - BURSTY_SECOND - BURSTY_DAY
        ended = int(time.time()) - 365 * 86400
        sets.append(("bursty", BURSTY_CHATS, quiet, ["--same-second-chats", str(BURSTY_SECOND), "--busy-day-chats",
                                                     str(BURSTY_DAY), "--span-days", "365", "--end", str(ended)]))
    return sets


def sequential_requests(chats):
    """The requests of one page after another: every full page, and the short (or empty) last one."""
    return math.ceil((chats + 1) / EXPORT_LIMIT)


def network_run(args, workdir, data, latency, parallel):
    """One chats backfill against a simulator answering in `latency` s, limited to API_BUDGET a minute."""
    name, chats, base, data_extra = data
    extra = ["--latency", str(latency), "--rate-limit", str(API_BUDGET)] + data_extra
    if args.bytes_per_second:
        extra += ["--bytes-per-second", str(args.bytes_per_second)]
    sim = SimulatorProcess(base, workdir, args.sim_core, args.gzip, extra=extra)
    try:
        settings = {"access_token": TOKEN, "base_url": sim.base_url, "start_date": START_DATE,
                    "max_requests_per_minute": API_BUDGET}
        if parallel is not None:
            settings["max_parallel_requests"] = parallel
        config = write_json(workdir / "config-net.json", settings)
        # The catalog discovery would write, built without requests: they would count in the server's minute.
        catalog = catalog_selecting(build_catalog(), workdir, "chats", lambda n: n == "chats")
        run = requests_during(sim, lambda: run_tap(config, catalog, args.core, workdir, "net"))
    finally:
        sim.stop()
    requests = run["requests"].get("incremental/chats", 0)
    ceiling = API_BUDGET * EXPORT_LIMIT / 60
    if args.bytes_per_second:
        ceiling = min(ceiling, args.bytes_per_second / 6048)
    rate = chats / run["wall_s"]
    parallel = parallel or DEFAULT_PARALLEL
    sequential = sequential_requests(chats)
    log = (workdir / "tap-net.log").read_text()
    row = {"data": name, "chats": chats, "latency_s": latency, "parallel": parallel, "wall_s": run["wall_s"],
           "chats_per_s": rate, "requests": requests, "sequential_requests": sequential,
           "bound": sequential + parallel, "http_429": run["retries"], "ceiling_chats_per_s": ceiling,
           "of_ceiling": rate / ceiling, "peak_rss_mb": run["peak_rss_mb"],
           "records": run["records"].get("chats", 0), "slices": _slices(log),
           "blocked_on_stdout": _blocked(log), "dense_note": "never splits a second" in log}
    print(f"   {name} N={chats:,} latency {latency:g} s, max_parallel_requests {parallel}: {run['wall_s']:.1f} s wall, "
          f"{rate:,.0f} chats/s, {requests} requests (sequential {sequential}, bound {row['bound']}), {row['slices']} "
          f"slices, {run['retries']} retries (429s), {rate / ceiling:.0%} of the ceiling {ceiling:,.0f} chats/s, "
          f"{run['peak_rss_mb']:.0f} MB", flush=True)
    return row


def _slices(log):
    found = re.search(r"read in (\d+) time slices", log)
    return int(found.group(1)) if found else 1


def _blocked(log):
    found = re.search(r"blocked on stdout: ([\d.]+) s", log)
    return float(found.group(1)) if found else None


def network_checks(rows):
    """(text, ok, hard): every chat written; requests within the bound (hard); uniform data at 1.5 s a page
    and N >= NETWORK_CHATS (where the budget sets the pace) at TARGET_OF_CEILING of the ceiling or more."""
    checks = []
    for r in rows:
        where = f"{r['data']} N={r['chats']:,} at {r['latency_s']:g} s"
        checks.append((f"{where}: {r['records']:,} chats written == N", r["records"] == r["chats"], True))
        checks.append((f"{where}: {r['requests']} requests <= sequential {r['sequential_requests']} + "
                       f"max_parallel_requests {r['parallel']}", r["requests"] <= r["bound"], True))
        if r["data"] == "uniform" and r["latency_s"] == 1.5 and r["chats"] >= NETWORK_CHATS:
            checks.append((f"{where}: {r['of_ceiling']:.0%} of the ceiling >= {TARGET_OF_CEILING:.0%}",
                           r["of_ceiling"] >= TARGET_OF_CEILING, False))
    return checks


def bench_network(args):
    """The chats backfill against a server on a real network's terms: `--latency` seconds per answer (and
    the body over `--bytes-per-second`), 200 requests a minute enforced with 429 + Retry-After, the tap at
    its default budget, on each data set. Reports wall time, chats/s, requests beside the sequential walk's
    and the bound (sequential + max_parallel_requests), 429s, the ratio to the ceiling min(200 requests a
    minute x 1,000 chats, bandwidth) and peak RSS; returns the rows and the checks."""
    latencies = args.latency or DEFAULT_LATENCIES
    sets = data_sets(args)
    print(f"\nnetwork bench: {', '.join(f'{name} N={n:,}' for name, n, _, _ in sets)}; latency {latencies} s per page; "
          f"bandwidth {args.bytes_per_second or 'unlimited'} B/s; server limit {API_BUDGET} requests/min", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="tap-bench-net-") as tmp:
        workdir = pathlib.Path(tmp)
        for data in sets:
            for latency in latencies:
                for parallel in args.parallel:
                    rows.append(network_run(args, workdir, data, latency, parallel))
    print(f"\n{'data':<8} {'N':>8} {'latency s':>9} {'parallel':>8} {'wall s':>7} {'chats/s':>8} {'requests':>8} "
          f"{'sequential':>10} {'bound':>5} {'slices':>6} {'429s':>5} {'of ceiling':>10} {'peak RSS':>8}")
    for r in rows:
        print(f"{r['data']:<8} {r['chats']:>8,} {r['latency_s']:>9g} {r['parallel']:>8} {r['wall_s']:>7.1f} "
              f"{r['chats_per_s']:>8,.0f} {r['requests']:>8} {r['sequential_requests']:>10} {r['bound']:>5} "
              f"{r['slices']:>6} {r['http_429']:>5} {r['of_ceiling']:>10.0%} {r['peak_rss_mb']:>5.0f} MB")
    checks = network_checks(rows)
    print("\nchecks (hard: the run fails; targets of issue 18: reported)")
    for text, ok, hard in checks:
        print(f"  [{'ok  ' if ok else ('FAIL' if hard else 'miss')}] {text}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"bench-network-{datetime.datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"argv": sys.argv[1:], "tap": tap_version(), "rows": rows,
                               "checks": [{"check": t, "ok": ok, "hard": hard} for t, ok, hard in checks]}, indent=2))
    print(f"\nresults: {out.relative_to(ROOT)}")
    return rows, checks


def network_failed(checks, strict):
    return any(not ok and (hard or strict) for _, ok, hard in checks)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.latency:
        _, checks = bench_network(args)
        return 1 if network_failed(checks, args.strict) else 0
    version = tap_version()
    print(f"bench: N = {', '.join(f'{n:,}' for n in args.chats)}; tap {version}; tap and raw on core {args.core}, "
          f"simulator on core {args.sim_core}; {os.cpu_count()} cores; Python {sys.version.split()[0]}")
    results, catalog_cache = [], {}
    with tempfile.TemporaryDirectory(prefix="tap-bench-") as tmp:
        for chats in args.chats:
            results.append(derive(bench_one(chats, args, pathlib.Path(tmp), catalog_cache)))
    failed_hard = print_report(results)
    fingerprints = {run["tap_fingerprint"] for r in results for run in r["tap_runs"] + [r["others"]]}
    if len(fingerprints) > 1:
        print(f"\nWARNING: the tap's code changed while the bench ran ({', '.join(sorted(fingerprints))}); "
              "the figures mix versions: run it again.")
    missed = any(not c["ok"] for r in results for c in r["checks"])
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = RESULTS / f"bench-{stamp}.json"
    out.write_text(json.dumps({"when": stamp, "tap": version, "argv": sys.argv[1:], "python": sys.version, "cores": os.cpu_count(),
                               "tap_core": args.core, "simulator_core": args.sim_core,
                               "targets": {"chats_per_s": TARGET_RATE, "tap_vs_raw": TARGET_RAW_FACTOR,
                                           "peak_rss_mb_at_200k": TARGET_RSS_MB},
                               "results": results}, indent=2))
    print(f"\nresults: {out.relative_to(ROOT)}")
    failed = failed_hard or (args.strict and missed)
    if not args.no_network:
        _, checks = bench_network(args)
        failed = network_failed(checks, args.strict) or failed
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
