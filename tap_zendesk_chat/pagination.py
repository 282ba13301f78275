"""One generator per paging style, pure over a `fetch(params) -> body` callable.

Each yields `Page`s: the records to emit and the cursor to resume from once they are emitted."""
import ctypes
import dataclasses
import json
import queue
import threading
import time

from tap_zendesk_chat.errors import UnexpectedResponseError


@dataclasses.dataclass
class Page:
    records: list
    cursor: object = None  # resume point after this page; None for single-request streams
    parts: list = None  # the records by the array of the body they came in (streams sharing an endpoint)
    memo: dict = None  # what the streams of its walk read from its records once for all of them (children.py)


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
    delivered with its page (the transform reports it) but never moves the cursor, and only once: the API may
    send it again on later pages (an id "429946125" the API pages by as a number)."""
    odd_seen = set()

    def fresh(record):
        if _id_of(record) is not None:
            return True
        text = json.dumps(record, sort_keys=True, default=repr)
        if text in odd_seen:
            return False
        odd_seen.add(text)
        return True

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
        parts = [[r for r in a if (frontier is None or _paged_by(r, since_id) < frontier) and fresh(r)]
                 for a in arrays]
        records = parts[0] if len(parts) == 1 else sorted((r for p in parts for r in p),
                                                           key=lambda r: _paged_by(r, since_id))
        if frontier is None:
            yield Page(records, max((i + 1 for a in ids for i in a), default=since_id), parts)
            return
        if frontier <= since_id:
            raise UnexpectedResponseError(f"{what}: ids went backwards (since_id={since_id}); stopping rather than loop.")
        yield Page(records, frontier, parts)
        since_id = frontier


def _placeable(keys, floor):
    """The keys of a page, with None for a record whose time is before `floor`, the earliest time the walk
    started from: no page of this run or an earlier one held it where its time says (the API sends it here;
    a time such as 0 is not its place), so it is delivered where it comes and never moves a cursor."""
    if floor is None:
        return keys
    return [None if key is not None and key[0] < floor else key for key in keys]


def _unseen(items, keys, cursor, seen, by_page_order):
    """The records of a page not yet delivered, and their keys. Each record is judged by its own key,
    wherever the page has it: one older than the cursor's instant goes (it was delivered, or belongs to
    an earlier time slice), and so does one of `seen`, the keys at or after that instant the walk has
    delivered (the cursor record an inclusive start_id sends again, an instant an API given only the
    time sends again, what an envelope behind its records sends again). A resumed walk does not know
    them: then the cursor record goes and, for an API given only the time (`by_page_order`), what the
    page has before it of its instant. A record without a readable key is kept."""
    instant, head = cursor[0], -1
    if seen is None:
        seen = () if cursor[1] is None else (cursor,)
        if by_page_order and cursor[1] is not None:
            head = next((index for index, key in enumerate(keys) if key == cursor), -1)
    records, kept = [], []
    for index, (item, key) in enumerate(zip(items, keys)):
        if index < head and (key is None or key[0] == instant):
            continue
        if key is not None and (key[0] < instant or key in seen):
            continue
        records.append(item)
        kept.append(key)
    return records, kept


def _cursor_after(cursor, keys, body, send_start_id, ceiling):
    """The cursor after a page's records (`keys`: all of them, in the page's order) and what its envelope
    and records disagree on, as (kind, text).

    The API's (end_time, end_id) is trusted only where its records confirm it: at the instant of its
    latest record (the last there, in the page's order, when there is no end_id). An end_time past that
    record would skip what the API did not send; one before it is read on from (what follows comes
    again). Never past `ceiling` (the sync's start: a later time is a clock's error, and a bookmark there
    would make every later run skip what it holds), never backwards."""
    end_time, end_id = body.get("end_time"), body.get("end_id")
    end_time = end_time if type(end_time) is int else None
    api_id = end_id if send_start_id and end_id.__class__ in (int, str) else None
    times = [key[0] for key in keys if key is not None]
    doubts = []
    if times:
        latest = max(times)
        last = next(key for key in reversed(keys) if key is not None and key[0] == latest)
        if end_time is None or (end_time == latest and api_id is None):
            new = last
        elif end_time == latest:
            new = (end_time, api_id)
        elif end_time > latest:
            new = last
            doubts.append(("ahead", f"a page's end_time {end_time} is past its last record's time {latest}: the tap "
                                    "reads on from the last record it received, not from end_time"))
        else:
            new = (end_time, api_id)
            doubts.append(("behind", f"a page's end_time {end_time} is before its last record's time {latest}: the "
                                     "tap reads on from end_time, and drops the records it already has"))
        if any(a > b for a, b in zip(times, times[1:])):
            doubts.append(("order", "a page's records are not in time order, as the API promises: each one is placed "
                                    "by its own time, and none is dropped for it"))
    elif keys and end_time is not None:
        new = (end_time, api_id)  # records without a readable time: the envelope is all there is
    else:
        new = cursor
    if ceiling is not None and new[0] > ceiling:
        doubts.append(("future", f"a page reaches time {new[0]}, after this sync started ({ceiling}): the bookmark "
                                 "stops at the sync's start, and the next run reads on from there"))
        new = (ceiling, None)
    return (cursor if new[0] < cursor[0] else new), doubts


@dataclasses.dataclass
class ExportPage:
    """One answer of an export, read: its records not yet delivered and their keys (None for a record
    without a readable one), the cursor to resume from after them, whether it was the last (`count`
    below the limit asked for) and that limit (the records a full page holds). `seen`: the keys at or
    after the cursor's instant delivered so far, which the next page must not deliver again; `latest`:
    the latest time of its records; `in_order`: their times ascend, as the API promises; `doubts`:
    (kind, text) where its envelope and its records disagree; `seconds`: how long the answer took to come
    (the request alone: none of the tap's work on the page, none of the time the page waits to be
    written)."""
    records: list
    keys: list
    cursor: tuple
    last: bool
    limit: int = 1
    seen: frozenset = frozenset()
    latest: int | None = None
    in_order: bool = True
    doubts: tuple = ()
    seconds: float = 0.0


def fetch_export_page(fetch, records_key, cursor, page_size, key_of, send_start_id, what, seen=None,
                      ceiling=None, floor=None, took=None):
    """One request of Zendesk's incremental export from `cursor` = (start_time, start_id or None).

    `next_page` is never null, so the count decides the end: `count` below the `limit` the request was
    answered with (`fetch` may lower params["limit"] while it retries a page too big to serve; the params
    it returns with are those of the answer). Every record is placed by its own key (`key_of`; None for a
    record without a readable one: it is delivered all the same), never by its place in the page: see
    _unseen for what is dropped (`seen`: the previous page's ExportPage.seen, None for a resumed cursor)
    and _cursor_after for the cursor (`ceiling`: the sync's start in the API's unit; `floor`: the earliest time
    the walk started from, see _placeable; `took()`: how long the answer took, when the fetcher can tell it
    apart from the waits before it (else the whole call is timed)."""
    params = {"start_time": cursor[0], "limit": page_size, "fields": f"{records_key}(*)"}
    if send_start_id and cursor[1] is not None:
        params["start_id"] = cursor[1]
    asked = time.monotonic()
    body = fetch(params)
    seconds = took() if took is not None else None  # the answer alone, without the client's waits before it
    if seconds is None:
        seconds = time.monotonic() - asked
    if not isinstance(body, dict):
        raise UnexpectedResponseError(f"{what}: expected a JSON object, the API sent {type(body).__name__}.")
    items = _require_list(body.get(records_key), what)
    count = body.get("count", len(items))
    if type(count) is not int:
        raise UnexpectedResponseError(f"{what}: 'count' is {count!r}, not a number.")
    keys = _placeable([key_of(item) for item in items], floor)
    records, kept = _unseen(items, keys, cursor, seen, not send_start_id)
    new_cursor, doubts = _cursor_after(cursor, keys, body, send_start_id, ceiling)
    last_page = count < params["limit"]
    if not last_page and new_cursor == cursor:
        # A full page that does not move the cursor would be asked for again and again.
        raise UnexpectedResponseError(f"{what}: a full page did not move the cursor past {cursor}; "
                                      "stopping rather than read the same page forever.")
    times = [key[0] for key in kept if key is not None]
    carried = seen if seen is not None else (() if cursor[1] is None else (cursor,))
    later = frozenset(key for part in (carried, kept, (new_cursor,)) for key in part
                      if key is not None and key[1] is not None and key[0] >= new_cursor[0])
    return ExportPage(records, kept, new_cursor, last_page, params["limit"], later, max(times, default=None),
                      not any(kind == "order" for kind, _ in doubts), tuple(doubts), seconds)


SPLIT_PAGES = 3  # pages a range must still have after its current second, by its density, to be split in two


@dataclasses.dataclass(eq=False)
class Range:
    """A stretch of an export's time line, read on its own: from `cursor`, the (time, id) after its
    last written record, up to `end` (exclusive; None: the open end, this run's stop_at and then the
    next run's). A run reads one or more, in time order, the last one open.

    Its density is what its pages held, over their whole history: `counted` records from the time of its
    first record (`first`) up to its current second (`reach`), leaving out the current second (a page
    inside one second says nothing of what follows it) and any second that held a full page by itself (a
    bulk update or a migration, not the pace of the export). A range split off another also has that
    one's history (`prior`: records and time), so a busy first page of its own does not make the rest of
    it look as busy."""
    cursor: tuple
    end: int | None = None
    fetched: tuple = None  # the cursor after its last fetched page: ahead of `cursor` while pages wait
    seen: frozenset | None = None  # that page's ExportPage.seen (None: not fetched yet, a resumed cursor)
    reach: int | None = None  # the latest time of a record fetched in it: its current second
    first: int | None = None  # the earliest time of a record fetched in it
    counted: int = 0  # records fetched in it before `reach`, but those of seconds that held a full page
    at_reach: int = 0  # records fetched in it at `reach`
    prior: tuple = (0, 0)  # (records, time) of the history of the range it was split from
    page_size: int | None = None  # the records a full page of it holds
    dense: bool = False  # its last page was full and all in one second
    exhausted: bool = False  # its last page was fetched: nothing left in it to split
    claimed: bool = False  # a fetcher reads it
    done: bool = False  # every record of it is written (the open range stays listed, its cursor the bookmark)

    def __post_init__(self):
        if self.fetched is None:
            self.fetched = self.cursor
        if self.reach is None:
            self.reach = self.cursor[0]

    def count(self, page):
        """What a fetched page tells of the range's density."""
        self.page_size = page.limit
        if page.last:
            self.exhausted = True
        times = [key[0] for key in page.keys if key is not None]
        if not times:
            return
        latest, earliest = max(times), min(times)
        self.first = earliest if self.first is None else min(self.first, earliest)
        self.dense = not page.last and earliest == latest
        if latest > self.reach:
            left = self.at_reach + times.count(self.reach)  # the second it leaves, whole
            self.counted += (left if left < page.limit else 0) + sum(
                1 for t in times if t < latest and t != self.reach)
            self.at_reach = times.count(latest)
            self.reach = latest
        else:
            self.counted += sum(1 for t in times if t < self.reach)
            self.at_reach += times.count(self.reach)

    def history(self):
        """(records, time) its density is read from: its own pages' and those of the range it came from."""
        own = self.reach - self.first if self.first is not None else 0
        return self.counted + self.prior[0], own + self.prior[1]

    def rate(self):
        """Records per unit of time after its current second, as its history tells (None: it cannot)."""
        records, spent = self.history()
        return records / spent if records and spent > 0 else None


def ranges_snapshot(ranges):
    """Where each range stands, as a STATE keeps it: ((time, id, end), ...)."""
    return tuple((r.cursor[0], r.cursor[1], r.end) for r in ranges)


def share_done(snapshot, start, stop_at):
    """The share of an export walk's time span, `start` to `stop_at`, its written pages cover: all of it but
    what its ranges ((time, id, end), ...: a snapshot) still hold, from each one's cursor to its end."""
    total = stop_at - start
    if total <= 0:
        return 1.0
    left = sum(max(0, min(stop_at, stop_at if end is None else end) - max(start, time)) for time, _, end in snapshot)
    return max(0.0, 1.0 - left / total)


def _before(records, keys, end):
    """The records of a page in time order that come before `end`; one without a readable key goes with
    the record before it (the API's order is all that places it)."""
    kept, placed = [], True
    for record, key in zip(records, keys):
        if key is not None:
            placed = key[0] < end
        if placed:
            kept.append(record)
    return kept


class _RangeWalk:
    """The ranges of one export walk and what the fetchers and the writer know of them, under one lock.

    Fetchers (threads, or the caller's own thread while pages come fast) claim a range and fetch its
    pages in order; the writer (the caller of iter_export_ranges) takes the pages as they come and moves
    a range's cursor only over records it is handed to write. A fetcher with nothing to claim may split
    a range in two (see _split), at most `most_splits` times in the walk, and only while the writer waits
    for pages (`starved`): a fetcher held up by a slow writer is not idle, and a split then only adds
    requests.

    What a split costs: a range ends with the first page holding a record at or past its end (or a short
    one), so the records of a walk cut in k + 1 ranges take at most k requests more than the same
    records read in one: requests <= the sequential walk's + most_splits, whatever the data.

    Each record is written by the range its own time falls in, from a page that range fetched: a range
    drops what its pages hold before its cursor's instant (fetch_export_page) and at or past its end
    (here: the split may have happened after the page was asked for), wherever the page has it, so a
    page out of time order costs nothing. A page holding a record past the range's end holds all the
    range still had (the API sends what follows the cursor), so it finishes the range. A page whose
    cursor goes back to a request the walk already sent is refused (a cursor that cycles)."""

    def __init__(self, ranges, stop_at, warn=None, what="export", most_splits=0, note=None, show_time=str):
        self.ranges = [Range((time, ident), end) for time, ident, end in ranges]
        self.stop_at = stop_at
        self.warn = warn
        self.what = what
        self.most_splits = most_splits
        self.note = note
        self.show_time = show_time
        self.splits = 0
        self.starved = False  # the writer waits for a page
        self.unoccupied = 0  # fetchers reading no range
        self.reading_ahead = False  # fetchers read the pages (not the caller's thread)
        self.told_dense = False
        self.asked = set()  # every cursor requested in this walk
        self.warned = set()  # the kinds of ExportPage.doubts logged
        self.lock = threading.Condition()

    def limit(self, r):
        return self.stop_at if r.end is None else r.end

    def finished(self):
        return all(r.done for r in self.ranges)

    def claim(self, split):
        """The range to read next: the first one nobody reads, else (`split`, the writer waiting for pages
        and splits left) a new range split off another; None when there is none now."""
        for r in self.ranges:
            if not r.claimed and not r.done:
                r.claimed = True
                return r
        if split and self.starved and self.splits < self.most_splits:
            return self._split()
        return None

    def released(self):
        """A fetcher fetched all of the range it claimed: it reads none now."""
        with self.lock:
            self.unoccupied += 1

    def _after(self, r):
        """The first time a split of r may start at: after its current second, never inside it."""
        return max(r.fetched[0], r.reach) + 1

    def _pages_after(self, r):
        """The pages r holds after its current second, by its density (0 when unknown)."""
        rate = r.rate()
        if r.done or r.exhausted or not rate or not r.page_size:
            return 0.0
        return max(0, self.limit(r) - self._after(r)) * rate / r.page_size

    def _split(self):
        """A new range split off another, starting after that one's current second, never inside it (with
        no id: every record of its first second); None when no range is worth it. A range whose last page
        was full and all in one second (a bulk update) gives away all the time after that second: its
        fetcher pages through the second while another reads what follows. Else the range with the most
        pages after its current second, SPLIT_PAGES or more by its density, gives away a share of that time:
        the second half, or, while n fetchers read nothing, the last 1/(n + 1) (so that fetchers starting
        together get equal slices, not halves of halves; no slice under half of SPLIT_PAGES). (Each split costs at most one request, its range's last page cut short, and requests are
        what the API's rate limit counts; but a range left long is read page after page at the end of a
        backfill while the other fetchers idle.)"""
        best = next((r for r in self.ranges if r.dense and not r.done and not r.exhausted
                     and self.limit(r) > self._after(r)), None)
        if best is not None:
            cut = self._after(best)
        else:
            most = float(SPLIT_PAGES)
            for r in self.ranges:
                pages = self._pages_after(r)
                if pages >= most:
                    best, most = r, pages
            if best is None:
                return None
            after = self._after(best)
            shares = max(2, min(self.unoccupied + 1, int(most / (SPLIT_PAGES / 2))))
            cut = self.limit(best) - (self.limit(best) - after) // shares
        self.splits += 1
        second = Range((cut, None), best.end, prior=best.history(), page_size=best.page_size, claimed=True)
        best.end = cut
        self.ranges.insert(self.ranges.index(best) + 1, second)
        return second

    def busy(self):
        """Whether some range is still being fetched (it may become worth splitting)."""
        return any(r.claimed and not r.done for r in self.ranges)

    def waiting(self, starved):
        """The writer starts (True) or stops waiting for a page; an idle fetcher may now split."""
        with self.lock:
            self.starved = starved
            if starved:
                self.lock.notify_all()

    def next_request(self, r):
        """Where to fetch r from, as (cursor, seen) for fetch_page, or None: r needs no more requests."""
        with self.lock:
            if r.done or r.fetched[0] >= self.limit(r):
                return None
            self.asked.add(r.fetched)
            return r.fetched, r.seen

    def fetched(self, r, page):
        """r's next page arrived. UnexpectedResponseError when it would make the walk ask for a cursor it
        asked for before: the API's cursor cycles (A, B, A, ...; fetch_export_page sees only A, A)."""
        with self.lock:
            if not page.last and page.cursor[0] < self.limit(r) and page.cursor in self.asked:
                at = f"start_time={page.cursor[0]}" + (f", start_id={page.cursor[1]}" if page.cursor[1] is not None
                                                       else "")
                raise UnexpectedResponseError(f"{self.what}: the API's cursor went back to {at}, a page this sync "
                                              "already asked for (a cursor that cycles); stopping rather than read "
                                              "the same pages again and again.")
            r.fetched, r.seen = page.cursor, page.seen
            r.count(page)
            if r.dense and self.reading_ahead and self.most_splits and self.note and not self.told_dense:
                self.told_dense = True
                self.note(f"{r.at_reach} records so far share the second {self.show_time(r.reach)}: a time slice "
                          "never splits a second, so they are read one page after another (said once)")
            self.lock.notify_all()  # an idle fetcher may now split it

    def take(self, r, page):
        """The records of a fetched page that are r's to write (None: r is finished, its page not needed),
        with the snapshot of the ranges once they are written."""
        with self.lock:
            if r.done:
                return None
            for kind, text in page.doubts:
                if self.warn and kind not in self.warned:
                    self.warned.add(kind)
                    self.warn(f"{text} (said once per run)")
            if r.end is not None and page.latest is not None and page.latest >= r.end:
                records = page.records
                if page.in_order:
                    records = _before(records, page.keys, r.end)
                else:  # a record without a readable key has no place in it: kept (a repeat rather than a loss)
                    records = [rec for rec, key in zip(records, page.keys) if key is None or key[0] < r.end]
                self._finish(r)
                return records, ranges_snapshot(self.ranges)
            r.cursor = page.cursor
            return page.records, ranges_snapshot(self.ranges)

    def finish(self, r):
        """r needs no more requests: once its pages are written it is done. The snapshot, if it changed."""
        with self.lock:
            if r.done:
                return None
            before = ranges_snapshot(self.ranges)
            self._finish(r)
            after = ranges_snapshot(self.ranges)
            return after if after != before else None

    def _finish(self, r):
        r.done = True
        if r.end is not None:
            self.ranges.remove(r)
        self.lock.notify_all()


def iter_export_ranges(fetch_page, ranges, stop_at, parallel=1, min_round_trip=0.2, note=None, warn=None,
                       what="export", show_time=str):
    """An export walk over `ranges` ((time, id, end) each, in time order, the last one open: see Range),
    as Pages whose cursor is the snapshot of the ranges once the page is written; `fetch_page(cursor,
    seen)` reads one page (fetch_export_page's ExportPage).

    While answers come fast (under `min_round_trip` seconds, ExportPage.seconds: the request alone, not the
    time a page waits to be written; a local server, a benchmark) the walk reads one page at a time in the
    caller's thread. Once one is slow (a real network), `parallel` fetchers read ahead while the caller
    writes: with 1, the next page of the walk; with more, the walk splits into time slices read at once
    (see _RangeWalk), so the round trips overlap and the request budget, not the latency, sets the pace;
    at most `parallel` splits, so at most `parallel` requests more than one page after another. At most
    `parallel` + 1 pages are held, however many slices there are. The pages of a slice come in order; the
    slices' pages interleave, and each STATE keeps every range's cursor, so a resume repeats at most the
    page written before it. `note(text)` is told when the walk starts reading ahead, when records too
    dense to split are read one page after another, and at its end into how many slices it split (times
    shown with `show_time`); `warn(text)` once per kind of disagreement between the API's envelopes and
    its records (ExportPage.doubts)."""
    walk = _RangeWalk(ranges, stop_at, warn, what, most_splits=parallel if parallel > 1 else 0, note=note,
                      show_time=show_time)
    # In the caller's thread while pages come fast.
    while True:
        r = walk.claim(split=False)
        if r is None:
            return
        more, slow, wrote = True, False, 0.0
        while more and not slow:
            at = walk.next_request(r)
            if at is None:
                more = False
                break
            page = fetch_page(*at)
            took = page.seconds
            slow = took >= min_round_trip
            walk.fetched(r, page)
            more = not page.last
            taken = walk.take(r, page)
            page = None
            if taken is not None:
                handed = time.monotonic()
                yield Page(*taken)
                wrote = time.monotonic() - handed  # the caller's time on it: never counted as the network's
                taken = None
            more = more and not r.done
        if more:  # slow: fetchers take it from here
            r.claimed = False
            if note:
                note(f"a page took {took:.1f} s to arrive: reading ahead, " + (
                    f"up to {parallel} requests at once in time slices" if parallel > 1 else "one page at a time"))
            break
        snapshot = walk.finish(r)
        if snapshot is not None:
            yield Page([], snapshot)
    yield from _iter_fetched(walk, fetch_page, parallel, wrote < took)
    if note and walk.splits:
        note(f"read in {walk.splits + 1} time slices")


M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter


def _map_big_buffers():
    """From now on buffers of 1 MiB or more (response bodies, a page's output) get pages of their own, given
    back to the system when freed. Without it glibc raises that threshold as big buffers come and go and
    keeps them in a heap per thread: with six fetchers the peak RSS went from 96 MB to 171 MB. Only once
    threads fetch: a single thread reuses its heap well, and mapping costs it 10% more CPU. Not glibc
    (macOS, musl): nothing to do."""
    try:
        ctypes.CDLL(None).mallopt(M_MMAP_THRESHOLD, 1 << 20)
    except (OSError, AttributeError):
        pass


def _iter_fetched(walk, fetch_page, parallel, starved):
    """The fetchers' pages, written by the caller. `starved`: the caller wrote the last page faster than it
    came, so its wait for the first page here is one more fetcher could shorten; after that, each time it
    has to wait for a page is."""
    _map_big_buffers()
    walk.reading_ahead = True
    walk.unoccupied = parallel
    handoff = queue.Queue()  # (range, ExportPage) | (range, None): it needs no more requests | (None, error)
    slots = threading.Semaphore(parallel + 1)  # pages held: fetching, waiting, or being written
    cancelled = threading.Event()

    def read(r):
        while True:
            while not slots.acquire(timeout=0.1):
                if cancelled.is_set():
                    return
            at = None if cancelled.is_set() else walk.next_request(r)
            if at is None:
                slots.release()
                break
            page = fetch_page(*at)
            if cancelled.is_set():
                return
            walk.fetched(r, page)
            handoff.put((r, page))
            if page.last:
                break
            page = None  # the writer has it: holding it here too would keep its body while the next one comes
        handoff.put((r, None))

    def fetcher():
        try:
            while not cancelled.is_set():
                with walk.lock:
                    r = walk.claim(split=parallel > 1)
                    while r is None:
                        if cancelled.is_set() or not walk.busy():
                            return
                        walk.lock.wait()
                        r = walk.claim(split=parallel > 1)
                    walk.unoccupied -= 1
                read(r)
                walk.released()
        except BaseException as exc:  # handed to the writer, raised there
            handoff.put((None, exc))

    threads = [threading.Thread(target=fetcher, name=f"export-fetch-{n}", daemon=True) for n in range(parallel)]
    for thread in threads:
        thread.start()
    try:
        while not walk.finished():
            try:
                r, item = handoff.get_nowait()
            except queue.Empty:
                walk.waiting(starved)
                try:
                    r, item = handoff.get()
                finally:
                    walk.waiting(False)
            if r is None:
                raise item
            if item is None:
                snapshot = walk.finish(r)
                if snapshot is not None:
                    yield Page([], snapshot)
                continue
            taken = walk.take(r, item)
            item = None
            if taken is not None:
                yield Page(*taken)
                taken = None
                starved = True
            slots.release()
    finally:
        # A fetcher stops at its next step; one waiting for an answer (or a retry) ends when it comes.
        cancelled.set()
        with walk.lock:
            walk.lock.notify_all()
        deadline = time.monotonic() + 2
        for thread in threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))


class PageSize:
    """The `limit` of one walk's requests: the most the API serves, halved (down to `floor`) when a
    request keeps timing out or answering 502/504, the mark of a page too big to serve in time; doubled
    back after `grow_after` answers in a row, a wait that doubles each time a grown size fails again."""

    def __init__(self, most, floor=50, grow_after=5):
        self.most, self.floor = most, min(floor, most)
        self.current = most
        self._grow_after = grow_after
        self._failures = self._successes = 0
        self._grown = False
        self._lock = threading.Lock()

    def failed(self):
        """A too-big sign at the current size; the new size when it shrinks (the second in a row)."""
        with self._lock:
            self._successes = 0
            self._failures += 1
            if self._failures < 2 or self.current <= self.floor:
                return None
            if self._grown:
                self._grow_after *= 2  # it grew into trouble: wait longer before the next try
            self._failures, self._grown = 0, False
            self.current = max(self.floor, self.current // 2)
            return self.current

    def succeeded(self):
        """An answer at the current size; the new size when it grows back."""
        with self._lock:
            self._failures = 0
            if self.current >= self.most:
                return None
            self._successes += 1
            if self._successes < self._grow_after:
                return None
            self._successes, self._grown = 0, True
            self.current = min(self.most, self.current * 2)
            return self.current


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


# -- what streams sharing an export walk each still need ------------------------------------------------
# Streams read in one walk of an export (chats and its child streams) keep a bookmark each: the slices
# ((time, id, end), ...) they still need. They agree but when a stream was added to the selection or
# left out of a run; then the walk reads what any of them needs (`union_slices`), each keeps from a page
# only what it needs (`pending`), and each one's bookmark after a page is what it needed then and the
# walk still needs (`intersect_slices`). A slice holds every record of its time from its cursor's
# second on, but the cursor record itself (the API's order within a second is not known here: a record
# of the cursor's second may come again, never go missing), up to `end`, exclusive (None: open).

def pending(key, slices):
    """Whether a record of `key` ((time, id); None: unreadable) is inside `slices`: not yet written."""
    if key is None:
        return True
    when = key[0]
    for start, ident, end in slices:
        if (end is None or when < end) and (when > start or (when == start and (ident is None or key[1] != ident))):
            return True
    return False


def _lower(a, b, pick):
    """The start of a union (pick=min) or an intersection (pick=max) of two slices' starts (time, id). At one
    second with two different ids, the whole second (id None): more is read again, nothing is missed."""
    if a[0] != b[0]:
        return pick(a, b, key=lambda start: start[0])
    return a if a[1] == b[1] else (a[0], None) if pick is min or a[1] is not None and b[1] is not None \
        else (a if a[1] is not None else b)


def _end_key(end):
    return float("inf") if end is None else end


def union_slices(*sets):
    """The slices holding everything any of `sets` holds, in time order, the last one open."""
    merged = []
    for start, ident, end in sorted((s for slices in sets for s in slices), key=lambda s: s[0]):
        if merged and start <= _end_key(merged[-1][2]):
            last = merged[-1]
            lower = _lower((last[0], last[1]), (start, ident), min)
            merged[-1] = (*lower, None if last[2] is None or end is None else max(last[2], end))
        else:
            merged.append((start, ident, end))
    return tuple(merged)


def intersect_slices(a, b):
    """The slices holding what both `a` and `b` hold, in time order."""
    out = []
    for a_start, a_id, a_end in a:
        for b_start, b_id, b_end in b:
            lower = _lower((a_start, a_id), (b_start, b_id), max)
            end = None if a_end is None and b_end is None else min(_end_key(a_end), _end_key(b_end))
            if end is None or lower[0] < end:
                out.append((*lower, end))
    return tuple(sorted(out, key=lambda s: s[0]))
