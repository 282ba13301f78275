"""One generator per paging style, pure over a `fetch(params) -> body` callable.

Each yields `Page`s: the records to emit and the cursor to resume from once they are emitted."""
import dataclasses

from tap_zendesk_chat.client import UnexpectedResponseError


@dataclasses.dataclass
class Page:
    records: list
    cursor: object = None  # resume point after this page; None for single-request streams


def _require_list(value, what):
    if not isinstance(value, list):
        raise UnexpectedResponseError(f"{what}: expected a JSON array, the API sent {type(value).__name__}.")
    return value


def _require_id(record, what):
    if not isinstance(record, dict) or type(record.get("id")) is not int:
        raise UnexpectedResponseError(f"{what}: a record without an integer 'id' ({str(record)[:120]}); "
                                      "the tap cannot page past it safely.")
    return record["id"]


def iter_single(fetch, extract):
    """One GET, one page: `extract(body)` gives its records."""
    yield Page(extract(fetch(None)))


def iter_since_id(fetch, since_id, limit, split, what):
    """Id-cursor paging (`since_id` inclusive, ascending ids), as /agents and /bans do.

    `split(body)` returns the body's record arrays (one for /agents, two for /bans). Whether `limit`
    caps each array or their union is not documented, so a page is only trusted up to the lowest id
    where some array may have been cut off; records past it come again on the next page, once."""
    while True:
        arrays = [_require_list(a, what) for a in split(fetch({"since_id": since_id, "limit": limit}))]
        total = sum(len(a) for a in arrays)
        ids = [[_require_id(r, what) for r in a] for a in arrays]
        full = [max(i) for i in ids if len(i) >= limit]
        if full:
            frontier = min(full) + 1
        elif total >= limit:
            frontier = max(max(i) for i in ids if i) + 1
        else:
            frontier = None  # nothing was cut off: this is the last page
        records = [r for a in arrays for r in a if frontier is None or r["id"] < frontier]
        if len(arrays) > 1:
            records.sort(key=lambda r: r["id"])
        if frontier is None:
            yield Page(records, max((r["id"] + 1 for r in records), default=since_id))
            return
        if frontier <= since_id:
            raise UnexpectedResponseError(f"{what}: ids went backwards (since_id={since_id}); stopping rather than loop.")
        yield Page(records, frontier)
        since_id = frontier


def _after(key, cursor):
    """True when `key` comes strictly after `cursor`; a cursor without id covers none of its instant."""
    if cursor[1] is None:
        return key[0] >= cursor[0]
    return key > cursor


def iter_export(fetch, records_key, cursor, limit, key_of, send_start_id, stop_at, what):
    """Zendesk's incremental export: (start_time, start_id) cursor, stop on `count < limit`.

    `next_page` is never null, so the count decides. The cursor of a page is the API's
    (end_time, end_id) when it gives both, else the last record's key; records at or before the
    cursor (an API treating start_id as inclusive) are dropped so a boundary never repeats.
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
        skip = 0
        while skip < len(items) and not _after(key_of(items[skip]), cursor):
            skip += 1
        records = items[skip:] if skip else items
        if records:
            new_cursor = key_of(records[-1])
            end_time, end_id = body.get("end_time"), body.get("end_id")
            if send_start_id and type(end_time) is int and end_id is not None and (end_time, end_id) >= new_cursor:
                new_cursor = (end_time, end_id)
        else:
            new_cursor = cursor
        # Records kept after the filter are all past the cursor, so a page with any moves it forward;
        # a full page with none would be asked for again and again.
        advanced = bool(records)
        yield Page(records, new_cursor)
        body = items = records = None  # let the emitted page go before the next is fetched
        if count < limit:
            return
        if not advanced:
            raise UnexpectedResponseError(f"{what}: a full page did not move the cursor past {cursor}; "
                                          "stopping rather than read the same page forever.")
        cursor = new_cursor
