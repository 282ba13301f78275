"""The "raw" reference: the least work any tap must do for the chats export.

Fetches the same pages as the tap (GET incremental/chats, 1,000 a page, following the API's
(end_time, end_id) as the next (start_time, start_id), stopping on count < limit), and per page does
only `json.loads` of the body and `json.dumps` of each record, written to /dev/null. No schema, no
dates, no Singer envelope. bench/run.py runs it as its own process, pinned to the tap's core, and
reads the summary it writes to --summary.
"""
import argparse
import json
import sys
import time

import requests

LIMIT = 1000


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base-url", required=True, help="API root, e.g. http://127.0.0.1:PORT/api/v2/chat")
    parser.add_argument("--token", required=True)
    parser.add_argument("--start-time", type=int, required=True, help="epoch seconds, as the tap's start_date")
    parser.add_argument("--out", default="/dev/null")
    parser.add_argument("--summary", required=True, help="JSON file for records, requests and bytes")
    parser.add_argument("--orjson", action="store_true",
                        help="orjson.loads/orjson.dumps instead of the standard library: the C-speed floor")
    args = parser.parse_args(argv)

    if args.orjson:
        import orjson
        loads, dumps = orjson.loads, lambda value: orjson.dumps(value).decode()
    else:
        loads, dumps = json.loads, json.JSONEncoder(separators=(",", ":")).encode
    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {args.token}", "Accept": "application/json"})
    url = f"{args.base_url}/incremental/chats"
    params = {"start_time": args.start_time, "limit": LIMIT, "fields": "chats(*)"}
    records = requests_sent = body_bytes = record_bytes = 0
    started = time.perf_counter()
    with open(args.out, "w", encoding="utf-8") as out:
        while True:
            response = session.get(url, params=params, timeout=60)
            requests_sent += 1
            response.raise_for_status()
            body_bytes += len(response.content)
            page = loads(response.content)
            chats = page["chats"]
            lines = [dumps(chat) + "\n" for chat in chats]
            out.write("".join(lines))
            records += len(chats)
            record_bytes += sum(len(line) - 1 for line in lines)
            last_page = page["count"] < LIMIT
            params = {"start_time": page["end_time"], "start_id": page["end_id"], "limit": LIMIT,
                      "fields": "chats(*)"}
            response = page = chats = lines = None  # one page in memory at a time: a floor for peak RSS too
            if last_page:
                break
    seconds = time.perf_counter() - started
    with open(args.summary, "w", encoding="utf-8") as handle:
        json.dump({"records": records, "requests": requests_sent, "body_bytes": body_bytes,
                   "record_bytes": record_bytes, "loop_seconds": seconds}, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
