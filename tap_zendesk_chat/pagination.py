"""One generator per paging style, pure over a `fetch(params) -> body` callable.

Each yields `Page`s: the records to emit and the cursor to resume from once they are emitted."""
import dataclasses
import queue
import threading
import time

from tap_zendesk_chat.errors import UnexpectedResponseError


@dataclasses.dataclass
class Page:
    records: list
    cursor: object = None  # resume point after this page; None for single-request streams
    parts: list = None  # the records by the array of the body they came in (streams sharing an endpoint)


def _require_list(value, what):
    if not isinstance(value, list):
        raise UnexpectedResponseError(f"{what}: expected a JSON array, the API sent {type(value).__name__}.")
    return value


def _id_of(record):
    """The integer id an id cursor pages by, or None (such a record is delivered, never paged by)."""
    if record.__class__ is dict:
        ident = record.get("id")
        if ident.__class__ is int:
            return ident
    return None


def _paged_by(record, since_id):
    """Where a record stands in the walk: its id, or the walk's since_id for one without an integer id."""
    ident = _id_of(record)
    return since_id if ident is None else ident


def iter_single(fetch, extract):
    """One GET, one page: `extract(body)` gives its records."""
    yield Page(extract(fetch(None)))


def iter_since_id(fetch, since_id, limit, split, what):
    """Id-cursor paging (`since_id` inclusive, ascending ids), as /agents and /bans do.

    `split(body)` returns the body's record arrays (one for /agents, two for /bans); each Page keeps them
    apart in `parts`, so a stream can take the records of one array. Whether `limit` caps each array or
    their union is not documented, so a page is only trusted up to the lowest id where some array may have
    been cut off; records past it come again on the next page, once. A record without an integer id is
    delivered with its page (the transform reports it) but never moves the cursor."""
    while True:
        arrays = [_require_list(a, what) for a in split(fetch({"since_id": since_id, "limit": limit}))]
        total = sum(len(a) for a in arrays)
        ids = [[i for i in map(_id_of, a) if i is not None] for a in arrays]
        full = [max(i) for a, i in zip(arrays, ids) if len(a) >= limit and i]
        if full:
            frontier = min(full) + 1
        elif total >= limit and any(ids):
            frontier = max(max(i) for i in ids if i) + 1
        elif total >= limit:
            raise UnexpectedResponseError(f"{what}: a full page of records without integer ids; the tap cannot "
                                          "page past it.")
        else:
            frontier = None  # nothing was cut off: this is the last page
        parts = [[r for r in a if frontier is None or _paged_by(r, since_id) < frontier] for a in arrays]
        records = parts[0] if len(parts) == 1 else sorted((r for p in parts for r in p),
                                                           key=lambda r: _paged_by(r, since_id))
        if frontier is None:
            yield Page(records, max((i + 1 for a in ids for i in a), default=since_id), parts)
            return
        if frontier <= since_id:
            raise UnexpectedResponseError(f"{what}: ids went backwards (since_id={since_id}); stopping rather than loop.")
        yield Page(records, frontier, parts)
        since_id = frontier


def _past_cursor(items, cursor, key_of):
    """How many leading items the API's own order puts at or before `cursor`: the cursor record itself and
    what precedes it in the page (and what is older than the cursor's instant, which the API should not
    have sent). Never an assumed order of ids: if the cursor record is not in the page (an API whose
    start_id is exclusive), records of the cursor's instant are kept."""
    before = 0
    for index, item in enumerate(items):
        key = key_of(item)
        if key is None:
            continue
        if key[0] < cursor[0]:
            before = index + 1
        elif cursor[1] is not None and key == cursor:
            return index + 1
        elif key[0] > cursor[0]:
            break
    return before


def iter_export(fetch, records_key, cursor, limit, key_of, send_start_id, stop_at, what):
    """Zendesk's incremental export: (start_time, start_id) cursor, stop on `count < limit`.

    `next_page` is never null, so the count decides. The cursor of a page is the API's (end_time, end_id)
    when it gives both, else the key of the last record with a readable one (`key_of` gives None for a
    record without: it is delivered all the same) unless it is past the envelope's end_time, which then
    wins (its instant is read again). Records the API puts at or before the cursor (an API
    treating start_id as inclusive) are dropped so a boundary never repeats.
    Paging stops early once the cursor is at or past `stop_at` (the API refuses the last 5 minutes)."""
    while cursor[0] < stop_at:
        params = {"start_time": cursor[0], "limit": limit, "fields": f"{records_key}(*)"}
        if send_start_id and cursor[1] is not None:
            params["start_id"] = cursor[1]
        body = fetch(params)
        if not isinstance(body, dict):
            raise UnexpectedResponseError(f"{what}: expected a JSON object, the API sent {type(body).__name__}.")
        items = _require_list(body.get(records_key), what)
        count = body.get("count", len(items))
        if type(count) is not int:
            raise UnexpectedResponseError(f"{what}: 'count' is {count!r}, not a number.")
        skip = _past_cursor(items, cursor, key_of)
        records = items[skip:] if skip else items
        new_cursor = cursor
        if records:
            end_time, end_id = body.get("end_time"), body.get("end_id")
            envelope_time = end_time if type(end_time) is int else None
            if send_start_id and envelope_time is not None and end_id.__class__ in (int, str):
                new_cursor = (end_time, end_id)  # the API's own cursor
            else:
                last = next((key for key in map(key_of, reversed(records)) if key is not None), None)
                if last is not None and (envelope_time is None or last[0] <= envelope_time):
                    new_cursor = last
                elif envelope_time is not None:
                    new_cursor = (envelope_time, None)  # no record to trust: the envelope's instant, re-read
        if new_cursor[0] < cursor[0]:  # never backwards, whatever the envelope says
            new_cursor = cursor
        # A full page that does not move the cursor would be asked for again and again.
        advanced = new_cursor != cursor
        yield Page(records, new_cursor)
        body = items = records = None  # let the emitted page go before the next is fetched
        if count < limit:
            return
        if not advanced:
            raise UnexpectedResponseError(f"{what}: a full page did not move the cursor past {cursor}; "
                                          "stopping rather than read the same page forever.")
        cursor = new_cursor


_END = object()


def prefetched(pages, min_round_trip=0.2):
    """The pages of `pages`, the next one fetched while the caller writes the current one once a page has
    taken `min_round_trip` seconds or more to arrive: on a real network the round trip of each request then
    hides behind the work on the page before it. Against a fast server (a local one, a benchmark) it stays
    sequential: a thread would gain nothing there and cost memory.

    At most two pages are held: the one the caller has and the one being fetched (the next fetch starts only
    when the caller asks for the page after). An exception of the walk (an API error, Interrupted) reaches
    the caller where it would have without prefetching: when it asks for the page that failed."""
    while True:
        started = time.monotonic()
        page = next(pages, _END)
        if page is _END:
            return
        slow = time.monotonic() - started >= min_round_trip
        yield page
        page = None
        if slow:
            break
    yield from _prefetch(pages)


def _prefetch(pages):
    handoff = queue.Queue(maxsize=1)
    wanted = threading.Semaphore(1)  # the caller's leave to fetch one more page
    cancelled = threading.Event()

    def produce():
        try:
            while True:
                wanted.acquire()
                if cancelled.is_set():
                    return
                page = next(pages, _END)
                handoff.put((page, None))
                if page is _END:
                    return
        except BaseException as exc:  # handed to the caller, raised there
            handoff.put((None, exc))

    worker = threading.Thread(target=produce, name="page-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            page, error = handoff.get()
            if error is not None:
                raise error
            if page is _END:
                return
            wanted.release()  # fetch the next page while this one is written
            yield page
            page = None
    finally:
        cancelled.set()
        wanted.release()
        worker.join()
