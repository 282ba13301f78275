"""Run the simulator on its own: python -m tests.simulator --port 8765 --token demo-token ..."""

import argparse
import json
import os
import signal
import sys
import threading

from .dataset import SAME_SECOND_ORDERS, Dataset
from .server import Simulator


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m tests.simulator", description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", default="sim-token")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chats", type=int, default=300)
    parser.add_argument("--offline-msgs", type=int, default=60)
    parser.add_argument("--agents", type=int, default=250)
    parser.add_argument("--ip-bans", type=int, default=120)
    parser.add_argument("--visitor-bans", type=int, default=80)
    parser.add_argument("--timeline-entries", type=int, default=400)
    parser.add_argument("--same-second-chats", type=int, default=0)
    parser.add_argument("--busy-day-chats", type=int, default=0,
                        help="extra chats in the one day around the middle of the span (the same second's among them)")
    parser.add_argument("--span-days", type=int, default=30, help="days the chats are spread over")
    parser.add_argument("--end", default=None,
                        help="the time the data end (ISO-8601 or epoch seconds; default: a day ago)")
    parser.add_argument("--same-second-order", choices=SAME_SECOND_ORDERS, default="id",
                        help="order of chats sharing an update second in the export (and of timeline entries "
                             "sharing a microsecond): id (ascending ids, the default), reversed, scrambled")
    parser.add_argument("--same-microsecond-entries", type=int, default=0,
                        help="extra agent_timeline entries that all start at one microsecond")
    parser.add_argument("--conversions", type=int, default=120, help="records of /incremental/conversions")
    parser.add_argument("--department-events", type=int, default=80, help="records of /incremental/department_events")
    parser.add_argument("--agent-events", type=int, default=150, help="records of /incremental/agent_events")
    parser.add_argument("--same-second-events", type=int, default=0,
                        help="extra records of each of those three exports that all fall in one second")
    parser.add_argument("--no-agent-events", type=int, nargs="?", const=403, default=None, choices=(403, 404),
                        metavar="STATUS", help="answer /incremental/agent_events with 403 (default) or 404")
    parser.add_argument("--agent-events-time-unit", choices=("seconds", "microseconds"), default="seconds",
                        help="unit of start_time and end_time of /incremental/agent_events")
    parser.add_argument("--no-events-end-id", action="store_true",
                        help="leave end_id out of the conversions, department_events and agent_events envelopes")
    parser.add_argument("--real-shapes", action="store_true",
                        help="add records with shapes real accounts have sent (listed on stderr and at GET /_sim/real_shapes)")
    parser.add_argument("--integrated-account", action="store_true")
    parser.add_argument("--rate-limit", type=int, default=None,
                        help="requests per minute; more get 429 with Retry-After, as the API answers")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every API answer")
    parser.add_argument("--bytes-per-second", type=float, default=None,
                        help="and the body's size over this bandwidth (e.g. 5e6), added to every API answer")
    parser.add_argument("--refuse-concurrency", action="store_true",
                        help="answer 429 (Retry-After: 1) to an API request that arrives while another is in flight")
    parser.add_argument("--max-page-bytes", type=int, default=None,
                        help="answer 504 (after --stall-seconds with --oversize-fault timeout) instead of a larger body")
    parser.add_argument("--oversize-fault", choices=("504", "timeout"), default="504")
    parser.add_argument("--stall-seconds", type=float, default=5.0, help="how long a stall or an oversize timeout lasts")
    parser.add_argument("--token-ttl", type=float, default=None)
    parser.add_argument("--client-id", default="sim-client")
    parser.add_argument("--client-secret", default="sim-secret")
    parser.add_argument("--refresh-token", default="sim-refresh")
    parser.add_argument("--gzip", action="store_true", help="gzip bodies for clients that accept it")
    parser.add_argument("--ready-file", default=None, help="written with the base URL once listening")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    dataset = Dataset.generate(seed=args.seed, chats=args.chats, offline_msgs=args.offline_msgs, agents=args.agents,
                               ip_bans=args.ip_bans, visitor_bans=args.visitor_bans,
                               timeline_entries=args.timeline_entries, same_second_chats=args.same_second_chats,
                               busy_day_chats=args.busy_day_chats, span_days=args.span_days,
                               end=int(args.end) if args.end and args.end.isdigit() else args.end,
                               same_second_order=args.same_second_order,
                               same_microsecond_entries=args.same_microsecond_entries, real_shapes=args.real_shapes,
                               conversions=args.conversions, department_events=args.department_events,
                               agent_events=args.agent_events, same_second_events=args.same_second_events)
    sim = Simulator(dataset, token=args.token, rate_limit_per_minute=args.rate_limit,
                    integrated_account=args.integrated_account, token_ttl=args.token_ttl, client_id=args.client_id,
                    client_secret=args.client_secret, refresh_token=args.refresh_token, gzip_bodies=args.gzip,
                    port=args.port, agent_events_available=args.no_agent_events is None,
                    agent_events_unavailable_status=args.no_agent_events or 403,
                    agent_events_time_unit=args.agent_events_time_unit, events_end_id=not args.no_events_end_id,
                    latency=args.latency, bytes_per_second=args.bytes_per_second,
                    refuse_concurrency=args.refuse_concurrency, max_page_bytes=args.max_page_bytes,
                    oversize_fault=args.oversize_fault, stall_seconds=args.stall_seconds)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    sim.start()
    if args.ready_file:
        tmp = args.ready_file + ".tmp"
        with open(tmp, "w") as fh:
            fh.write(sim.base_url + "\n")
        os.replace(tmp, args.ready_file)
    print(sim.base_url, flush=True)
    print(f"legacy API root {sim.legacy_base_url}, token URL {sim.token_url}", file=sys.stderr, flush=True)
    if args.real_shapes:
        print(f"real shapes: {json.dumps(dataset.real_shapes)}", file=sys.stderr, flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
