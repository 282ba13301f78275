"""The simulator keeps the API contract of docs/zendesk-chat-api reference; these pin it down."""

import datetime
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse

import pytest
import requests

from tests.simulator import Dataset, Fault, Simulator

TOKEN = "sim-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# The data's anchor, pinned: what the data hold must not depend on the day the suite runs
# (test_quirks_hold_for_any_anchor checks other anchors).
OLD = int(datetime.datetime(2026, 6, 15, 12, 0, tzinfo=datetime.timezone.utc).timestamp())


@pytest.fixture(scope="module")
def dataset():
    return Dataset.generate(seed=3, chats=900, offline_msgs=200, agents=250, ip_bans=120, visitor_bans=80,
                            timeline_entries=450, same_second_chats=1100, end=OLD)


@pytest.fixture(scope="module")
def sim(dataset):
    with Simulator(dataset) as s:
        yield s


@pytest.fixture()
def fresh():
    """A private simulator whose settings or data a test may change."""
    made = []

    def make(dataset=None, **kwargs):
        ds = dataset or Dataset.generate(seed=5, chats=120, offline_msgs=20, agents=30, timeline_entries=50, end=OLD)
        s = Simulator(ds, **kwargs).start()
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


def get(url, **params):
    return requests.get(url, params=params, headers=AUTH, timeout=10)


def walk_export(base_url, limit=1000, start_time=0):
    url = f"{base_url}/incremental/chats?fields=chats(*)&limit={limit}&start_time={start_time}"
    pages = []
    while True:
        body = requests.get(url, headers=AUTH, timeout=10).json()
        pages.append(body)
        assert body["next_page"]
        if body["count"] < limit:
            return pages
        url = body["next_page"]


# ------------------------------------------------------------------ roots and auth
def test_both_roots_serve_the_same_endpoints(sim):
    for path in ("account", "departments", "goals", "roles", "skills", "shortcuts", "triggers", "agents", "bans",
                 "routing_settings/account"):
        current, legacy = get(f"{sim.base_url}/{path}"), get(f"{sim.legacy_base_url}/{path}")
        assert current.status_code == legacy.status_code == 200, path
        assert current.json() == legacy.json(), path
    assert get(f"{sim.legacy_base_url}/incremental/chats", start_time=0, limit=5).json()["next_page"].startswith(
        sim.legacy_base_url + "/incremental/chats?")
    assert get(f"{sim.base_url}/incremental/chats", start_time=0, limit=5).json()["next_page"].startswith(
        sim.base_url + "/incremental/chats?")


def test_config_shapes(sim, dataset):
    assert get(f"{sim.base_url}/routing_settings/account").json() == {"data": dataset.routing_settings}
    account = get(f"{sim.base_url}/account").json()
    assert account["account_key"] and isinstance(account["plan"]["price"], float)
    assert "unlimited" in account["plan"].values() and "billing" in account
    trigger = get(f"{sim.base_url}/triggers").json()[0]
    assert isinstance(trigger["definition"]["condition"], list) and isinstance(trigger["definition"]["actions"][0], list)
    assert all(s["id"] == s["name"] for s in get(f"{sim.base_url}/shortcuts").json())
    perms = get(f"{sim.base_url}/roles").json()[0]["permissions"]
    assert {type(v) for v in perms.values()} == {bool, str}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {TOKEN}"}])
def test_unauthorized(sim, headers):
    resp = requests.get(f"{sim.base_url}/agents", headers=headers, timeout=5)
    assert resp.status_code == 401
    assert resp.json() == {"error": "Unauthorized", "description": "The server could not verify that you are "
                                                                  "authorized to access the requested resource"}


def test_unknown_path_404_and_access_flags(sim, fresh):
    resp = get(f"{sim.base_url}/nope")
    assert resp.status_code == 404 and resp.json()["error"] == "Not Found"
    integrated = fresh(integrated_account=True)
    assert get(f"{integrated.base_url}/account").status_code == 403
    assert get(f"{integrated.base_url}/agents").status_code == 200
    no_api = fresh(api_access=False)
    resp = get(f"{no_api.base_url}/departments")
    assert resp.status_code == 403 and "REST API" in resp.json()["description"]


# ------------------------------------------------------------------ agents and bans
def test_agents_since_id_paging(sim, dataset):
    ids, since, sizes = [], 0, []
    while True:
        page = get(f"{sim.base_url}/agents", since_id=since, limit=100).json()
        sizes.append(len(page))
        if not page:
            break
        ids += [a["id"] for a in page]
        since = page[-1]["id"] + 1
    assert sizes == [100, 100, 50, 0]
    assert ids == sorted(ids) == [a["id"] for a in dataset.agents]
    first = dataset.agents[7]["id"]
    assert get(f"{sim.base_url}/agents", since_id=first, limit=1).json()[0]["id"] == first
    assert [a["id"] for a in get(f"{sim.base_url}/agents", max_id=first, limit=3).json()] == \
        [a["id"] for a in dataset.agents[5:8]]
    assert get(f"{sim.base_url}/agents", limit=500).status_code == 400
    assert len(get(f"{sim.base_url}/agents").json()) == 100


def test_agents_exact_multiple(fresh):
    s = fresh(Dataset.generate(seed=1, chats=0, offline_msgs=0, agents=200, end=OLD))
    sizes, since = [], 0
    while True:
        page = get(f"{s.base_url}/agents", since_id=since, limit=100).json()
        sizes.append(len(page))
        if not page:
            break
        since = page[-1]["id"] + 1
    assert sizes == [100, 100, 0]


@pytest.mark.parametrize("mode", ["total", "per_array"])
def test_bans_paging(fresh, dataset, mode):
    s = fresh(dataset, bans_limit_mode=mode)
    every = sorted(b["id"] for arr in dataset.bans.values() for b in arr)
    first = get(f"{s.base_url}/bans", limit=50).json()
    got = [b["id"] for b in first["ip_address"] + first["visitor"]]
    if mode == "total":
        assert sorted(got) == every[:50]
    else:
        assert len(first["ip_address"]) == 50 and len(first["visitor"]) == 50
    assert all(b["type"] == "ip_address" for b in first["ip_address"])
    assert all(b["type"] == "visitor" for b in first["visitor"])
    assert get(f"{s.base_url}/bans", limit=1001).status_code == 400
    assert any("created_at" not in b or b["created_at"] is None for arr in dataset.bans.values() for b in arr)
    if mode == "total":
        seen, since = [], 0
        while True:
            page = get(f"{s.base_url}/bans", since_id=since, limit=40).json()
            ids = [b["id"] for b in page["ip_address"] + page["visitor"]]
            if not ids:
                break
            seen += ids
            since = max(ids) + 1
        assert sorted(seen) == every


# ------------------------------------------------------------------ incremental chats
def test_export_walks_everything_once_in_order(sim, dataset):
    pages = walk_export(sim.base_url)
    chats = [c for p in pages for c in p["chats"]]
    keys = [(c["update_timestamp"], c["id"]) for c in chats]
    assert keys == sorted(keys)
    assert [c["id"] for c in chats] == dataset.chat_ids()
    assert chats == dataset.chats
    assert pages[-1]["count"] < 1000 and pages[-1]["next_page"]
    # the same-second block is larger than a page, yet (start_time, start_id) gets through it
    assert sum(1 for c in chats if _epoch(c["update_timestamp"]) == dataset.same_second) >= 1100


def test_export_page_cursor_fields(sim, dataset):
    body = get(f"{sim.base_url}/incremental/chats", start_time=0, limit=3, fields="chats(*)").json()
    assert body["count"] == 3
    assert body["end_id"] == body["chats"][-1]["id"]
    assert body["end_time"] == _epoch(body["chats"][-1]["update_timestamp"])
    assert body["next_page"] == (f"{sim.base_url}/incremental/chats?fields=chats%28%2A%29&limit=3"
                                 f"&start_time={body['end_time']}&start_id={body['end_id']}")
    ids_only = get(f"{sim.base_url}/incremental/chats", start_time=0, limit=3).json()
    assert ids_only["chats"] == [{"id": c["id"]} for c in body["chats"]]


def test_export_same_second_with_and_without_start_id(sim, dataset):
    t = dataset.same_second
    block = [cid for cid in dataset.chat_ids() if dataset.update_epoch(cid) == t]
    assert len(block) >= 1100
    by_time = get(f"{sim.base_url}/incremental/chats", start_time=t, limit=1000).json()
    assert [c["id"] for c in by_time["chats"]] == block[:1000]
    # start_time alone re-reads the same page: the infinite loop the reference warns about
    again = get(f"{sim.base_url}/incremental/chats", start_time=by_time["end_time"], limit=1000).json()
    assert again["chats"] == by_time["chats"]
    after = get(f"{sim.base_url}/incremental/chats", start_time=t, start_id=block[999], limit=1000).json()
    assert [c["id"] for c in after["chats"]][:len(block) - 1000] == block[1000:]


def test_export_exact_multiple_and_empty_end(fresh):
    ds = Dataset.generate(seed=2, chats=40, offline_msgs=0, agents=5, end=OLD)
    s = fresh(ds)
    pages = walk_export(s.base_url, limit=20)
    assert [p["count"] for p in pages] == [20, 20, 0]
    last = pages[-1]
    assert last["chats"] == [] and last["next_page"]
    assert last["end_time"] == pages[-2]["end_time"] and last["end_id"] == pages[-2]["end_id"]
    empty = get(f"{s.base_url}/incremental/chats", start_time=OLD - 10).json()
    assert empty["count"] == 0 and empty["end_time"] == OLD - 10 and empty["next_page"]


def test_export_start_id_inclusive_flag(fresh):
    ds = Dataset.generate(seed=2, chats=10, offline_msgs=0, agents=5, end=OLD)
    first = ds.chat_ids()[3]
    t = ds.update_epoch(first)
    exclusive = fresh(ds)
    inclusive = fresh(ds, start_id_inclusive=True)
    assert get(f"{exclusive.base_url}/incremental/chats", start_time=t, start_id=first).json()["chats"][0]["id"] != first
    assert get(f"{inclusive.base_url}/incremental/chats", start_time=t, start_id=first).json()["chats"][0]["id"] == first


def test_export_validation(sim):
    assert get(f"{sim.base_url}/incremental/chats", start_time=0, limit=1001).status_code == 400
    for start in (int(time.time()) - 60, int(time.time()) + 3600):
        resp = get(f"{sim.base_url}/incremental/chats", start_time=start)
        assert resp.status_code == 400 and set(resp.json()) == {"error", "description"}
    assert get(f"{sim.base_url}/incremental/chats", start_time=int(time.time()) - 400).status_code == 200


def assert_chat_quirks(dataset):
    """The shapes of chats that the tests rely on being served."""
    chats = dataset.chats
    real = [c for c in chats if c["type"] == "chat"]
    offline = [c for c in chats if c["type"] == "offline_msg"]
    assert offline and all("end_timestamp" not in c for c in offline)
    assert any("webpath" not in c for c in offline) and any("webpath" in c for c in offline)
    assert all(c["timestamp"] <= c["end_timestamp"] <= c["update_timestamp"] for c in real)
    assert {type(c["unread"]) for c in chats} == {bool, int}
    assert any(isinstance(w, list) for c in chats for w in c.get("webpath", ()))
    assert any(c["session"]["start_date"].endswith("+00:00Z") for c in chats)
    assert all(isinstance(a, str) for c in real for a in c["agent_ids"])
    msg_ids = {type(e["msg_id"]) for c in real for e in c["history"] if e["type"] == "chat.msg"}
    assert msg_ids == {int, str}
    sizes = [len(json.dumps(c, separators=(",", ":"))) for c in real[:200]]
    assert 4000 < sum(sizes) / len(sizes) < 8000
    assert {type(a["enabled"]) for a in dataset.agents} == {bool, int}
    assert any(a["last_login"] is None for a in dataset.agents)


def test_chat_quirks(dataset):
    assert_chat_quirks(dataset)


def _shape(dataset):
    """What the data hold, without the values that move with the anchor: each record's fields (and which
    webpath items are pairs), chats in their served order."""
    return [(c["type"], sorted(c), [type(w).__name__ for w in c.get("webpath", ())]) for c in dataset.chats]


@pytest.mark.parametrize("anchor", ["2024-02-29T12:00:00", "2024-05-06T00:00:00", "2024-12-31T23:59:59",
                                    "2025-03-01T00:00:01", "2025-09-16T08:30:00", "2028-02-29T23:00:00"])
def test_quirks_hold_for_any_anchor(dataset, anchor):
    """Which fields and records exist does not depend on the date the data are generated for: a leap day,
    a month's or a year's end, any day of the year (the suite once failed on some dates, the webpath-less
    offline messages being chosen by an id that starts with the month)."""
    end = int(datetime.datetime.fromisoformat(anchor).replace(tzinfo=datetime.timezone.utc).timestamp())
    other = Dataset.generate(seed=3, chats=900, offline_msgs=200, agents=250, ip_bans=120, visitor_bans=80,
                             timeline_entries=450, same_second_chats=1100, end=end)
    assert_chat_quirks(other)
    assert _shape(other) == _shape(dataset)


def test_agent_timeline_paging(sim, dataset):
    url = f"{sim.base_url}/incremental/agent_timeline?fields=agent_timeline(*)&limit=100&start_time=0"
    seen = []
    while True:
        body = requests.get(url, headers=AUTH, timeout=5).json()
        assert "end_id" not in body
        seen += body["agent_timeline"]
        if body["count"] < 100:
            break
        url = body["next_page"]
    unique = {(e["agent_id"], e["start_time"]): e for e in seen}
    assert len(unique) == len(dataset.agent_timeline)
    assert get(f"{sim.base_url}/incremental/agent_timeline", start_time=0, limit=1001).status_code == 400


# ------------------------------------------------------------------ old chat endpoints
def test_search_and_ids(sim, dataset):
    q = "type:chat AND end_timestamp:[2000-01-01T00:00:00Z TO 2100-01-01T00:00:00Z]"
    body = get(f"{sim.base_url}/chats/search", q=q).json()
    live_chats = [c for c in dataset.chats if c["type"] == "chat"]
    assert body["count"] == len(live_chats) and len(body["results"]) == 40
    assert set(body["results"][0]) == {"id", "type", "timestamp", "preview", "url"}
    assert body["next_url"].startswith(sim.base_url + "/chats/search?")
    ids = [r["id"] for r in body["results"][:3]]
    docs = get(f"{sim.base_url}/chats", ids=",".join(ids)).json()
    assert docs["count"] == 3 and set(docs["docs"]) == set(ids)
    listing = get(f"{sim.base_url}/chats").json()
    assert len(listing["chats"]) == 40 and "cursor=" in listing["next_url"]
    assert get(f"{sim.base_url}/chats/search", q=q, page=251).status_code == 400


# ------------------------------------------------------------------ faults, limits, tokens
def test_every_fault_kind(fresh):
    s = fresh(stall_seconds=0.3)
    url = f"{s.base_url}/departments"
    s.inject("429", retry_after=7)
    resp = get(url)
    assert resp.status_code == 429 and resp.headers["Retry-After"] == "7"
    for code in ("500", "502", "503", "504"):
        s.inject(code)
        resp = get(url)
        assert resp.status_code == int(code) and "error" in resp.json()
    s.inject("reset")
    with pytest.raises(requests.ConnectionError):
        get(url)
    s.inject("truncate")
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.ConnectionError)):
        get(url)
    s.inject("invalid_json")
    resp = get(url)
    assert resp.status_code == 200
    with pytest.raises(ValueError):
        resp.json()
    s.inject("html_200")
    resp = get(url)
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/html")
    s.inject("stall")
    with pytest.raises(requests.Timeout):
        requests.get(url, headers=AUTH, timeout=0.1)
    s.inject("stall")
    started = time.monotonic()
    assert get(url).status_code == 200 and time.monotonic() - started >= 0.3
    assert get(url).status_code == 200
    faults = [r["fault"] for r in s.requests]
    assert [f for f in faults if f] == ["429", "500", "502", "503", "504", "reset", "truncate", "invalid_json",
                                        "html_200", "stall", "stall"]
    assert set(faults) - {None} == set(Fault.ALL)


def test_fault_targeting_outage_and_random(fresh):
    s = fresh()
    s.inject("500", times=2, path="agents")
    assert get(f"{s.base_url}/departments").status_code == 200
    assert [get(f"{s.base_url}/agents").status_code for _ in range(3)] == [500, 500, 200]
    s.outage(True)
    assert get(f"{s.base_url}/goals").status_code == 503
    s.outage(False)
    assert get(f"{s.base_url}/goals").status_code == 200
    assert s.count("goals") == 2
    noisy = fresh(fault_rate=0.5, fault_kinds=("500", "503"), fault_seed=4)
    codes = [get(f"{noisy.base_url}/skills").status_code for _ in range(40)]
    assert set(codes) == {200, 500, 503}
    token = requests.post(noisy.token_url, data={"grant_type": "client_credentials", "client_id": "sim-client",
                                                 "client_secret": "sim-secret"}, timeout=5)
    assert token.status_code == 200


def test_rate_limit(fresh):
    s = fresh(rate_limit_per_minute=3, rate_limit_window=1.5)
    codes = [get(f"{s.base_url}/skills") for _ in range(4)]
    assert [r.status_code for r in codes] == [200, 200, 200, 429]
    assert int(codes[-1].headers["Retry-After"]) >= 1
    time.sleep(float(codes[-1].headers["Retry-After"]))
    assert get(f"{s.base_url}/skills").status_code == 200


def test_oauth_and_expiry(fresh):
    s = fresh(token_ttl=1.0)
    resp = requests.post(s.token_url, data={"grant_type": "refresh_token", "client_id": "sim-client",
                                            "client_secret": "sim-secret", "refresh_token": "sim-refresh"}, timeout=5)
    body = resp.json()
    assert resp.status_code == 200 and body["token_type"] == "Bearer" and body["scope"] == "read"
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert requests.get(f"{s.base_url}/goals", headers=headers, timeout=5).status_code == 200
    time.sleep(1.1)
    assert requests.get(f"{s.base_url}/goals", headers=headers, timeout=5).status_code == 401
    bad = requests.post(s.token_url, data={"grant_type": "refresh_token", "client_id": "sim-client",
                                           "client_secret": "sim-secret", "refresh_token": "wrong"}, timeout=5)
    assert bad.status_code == 400
    s.inject("503", path="oauth2/token")
    assert requests.post(s.token_url, data={}, timeout=5).status_code == 503
    forever = s.issue_token(ttl=None)
    s.revoke(forever)
    assert requests.get(f"{s.base_url}/goals", headers={"Authorization": f"Bearer {forever}"}, timeout=5).status_code == 401


def test_hostile_flags(fresh):
    s = fresh()
    s.hostile = {"next_page_to_trap", "agents_object", "record_without_key"}
    body = get(f"{s.base_url}/incremental/chats", start_time=0, limit=5, fields="chats(*)").json()
    assert body["next_page"].startswith(f"http://127.0.0.1:{s.trap.port}/api/v2/chat/")
    assert sum(1 for c in body["chats"] if "id" not in c) == 1
    agents = get(f"{s.base_url}/agents").json()
    assert isinstance(agents, dict)
    assert sum(1 for a in agents["agents"] if "id" not in a) == 1
    requests.get(body["next_page"], timeout=5)
    assert s.trap.requests[0]["path"] == "/api/v2/chat/incremental/chats"
    stats = requests.get(f"{s.host_url}/_sim/stats", timeout=5).json()
    assert stats["requests_by_path"] == {"incremental/chats": 1, "agents": 1} and stats["total"] == 2


def test_hostile_export_flags(fresh):
    """unsorted_pages: an honest page's records in another order, its envelope unchanged; end_time_in_future
    and end_time_past_9999: only the envelope's end_time changes; cursor_cycle: the chats page asked for at
    the end of the second full page ends where the second began, CURSOR_CYCLES times."""
    from tests.simulator.server import CURSOR_CYCLES, YEAR_10000
    s = fresh()
    chats = f"{s.base_url}/incremental/chats"
    timeline = f"{s.base_url}/incremental/agent_timeline"
    honest = get(chats, start_time=0, limit=50, fields="chats(*)").json()
    honest_timeline = get(timeline, start_time=0, limit=20, fields="agent_timeline(*)").json()
    s.hostile = {"unsorted_pages"}
    for url, name, page in ((chats, "chats", honest), (timeline, "agent_timeline", honest_timeline)):
        shuffled = get(url, start_time=0, limit=len(page[name]), fields=f"{name}(*)").json()
        assert shuffled[name] != page[name]
        assert sorted(map(json.dumps, shuffled[name])) == sorted(map(json.dumps, page[name]))
        assert {k: v for k, v in shuffled.items() if k != name} == {k: v for k, v in page.items() if k != name}
    s.hostile = {"end_time_in_future"}
    ahead = get(chats, start_time=0, limit=50, fields="chats(*)").json()
    assert ahead["end_time"] > time.time() + 29 * 86400 and ahead["end_id"] == honest["end_id"]
    assert ahead["chats"] == honest["chats"]
    assert get(timeline, start_time=0, limit=20).json()["end_time"] > (time.time() + 29 * 86400) * 1_000_000
    s.hostile = {"end_time_past_9999"}
    assert get(chats, start_time=0, limit=50, fields="chats(*)").json()["end_time"] == YEAR_10000
    s.hostile = {"cursor_cycle"}
    first = get(chats, start_time=0, limit=40, fields="chats(*)").json()
    second = get(chats, start_time=first["end_time"], start_id=first["end_id"], limit=40).json()
    for _ in range(CURSOR_CYCLES):
        third = get(chats, start_time=second["end_time"], start_id=second["end_id"], limit=40).json()
        assert (third["end_time"], third["end_id"]) == (first["end_time"], first["end_id"])
        assert third["count"] == 40 and third["chats"] != second["chats"]
    third = get(chats, start_time=second["end_time"], start_id=second["end_id"], limit=40).json()
    assert (third["end_time"], third["end_id"]) != (first["end_time"], first["end_id"])


def test_redirect_fault_points_at_the_trap(fresh):
    """inject("redirect"): a 3xx whose Location is the same path and query on the trap; the trap records
    what follows it, body included. Not a transient fault: never in Fault.ALL or the random mix."""
    s = fresh()
    assert Fault.REDIRECT not in Fault.ALL and Fault.REDIRECT not in Fault.RANDOM_DEFAULT
    with pytest.raises(ValueError):
        s.inject("redirect", status=200)
    s.inject("redirect", path="departments")
    s.inject("redirect", path="oauth2/token", status=307)
    resp = requests.get(f"{s.base_url}/departments?x=1", headers=AUTH, timeout=5, allow_redirects=False)
    assert resp.status_code == 302
    assert resp.headers["Location"] == f"http://127.0.0.1:{s.trap.port}/api/v2/chat/departments?x=1"
    assert s.trap.requests == []
    resp = requests.post(s.token_url, data={"client_secret": "shh"}, timeout=5)  # followed: 307 keeps the body
    assert resp.status_code == 200 and resp.url.startswith(s.trap.base_url)
    (followed,) = s.trap.requests
    assert followed["method"] == "POST" and followed["path"] == "/oauth2/token" and followed["body"] == "client_secret=shh"
    assert [r["fault"] for r in s.requests] == ["redirect", "redirect"]
    assert get(f"{s.base_url}/departments").status_code == 200  # one answer each, as injected


# ------------------------------------------------------------------ mutations
def test_mutations_show_up_after_the_bookmark(fresh):
    ds = Dataset.generate(seed=9, chats=200, offline_msgs=20, agents=20, timeline_entries=30, end=OLD)
    s = fresh(ds)
    first = walk_export(s.base_url)
    bookmark = (first[-1]["end_time"], first[-1]["end_id"])
    target, gone = ds.chat_ids()[5], ds.chat_ids()[6]
    ds.update_chat(target, tags=["changed"], rating="bad")
    ds.delete_chat(gone)
    new_ids = ds.add_chats(3) + ds.add_chats(1, offline=True)
    summary = ds.mutate(seed=1)
    assert set(summary) >= {"updated_chats", "new_chats", "deleted_chats", "removed_agents"}
    body = get(f"{s.base_url}/incremental/chats", start_time=bookmark[0], start_id=bookmark[1],
               fields="chats(*)").json()
    changed = {c["id"]: c for c in body["chats"]}
    assert changed[target]["tags"] == ["changed"] and changed[gone]["deleted"] is True
    assert set(new_ids + summary["new_chats"] + summary["updated_chats"]) <= set(changed)
    assert all(_epoch(c["update_timestamp"]) > bookmark[0] for c in body["chats"])
    assert max(_epoch(c["update_timestamp"]) for c in body["chats"]) < time.time() - 600
    assert gone not in get(f"{s.base_url}/chats", ids=gone).json()["docs"]
    agent_ids = [a["id"] for a in get(f"{s.base_url}/agents").json()]
    assert not set(summary["removed_agents"]) & set(agent_ids)
    assert set(summary["new_agents"]) <= set(agent_ids)
    assert len([c for c in ds.chats if c["id"] == target]) == 1


def test_standalone_process(tmp_path):
    ready = tmp_path / "ready"
    proc = subprocess.Popen([sys.executable, "-m", "tests.simulator", "--port", "0", "--token", "demo-token",
                             "--chats", "50", "--offline-msgs", "5", "--agents", "10", "--seed", "1",
                             "--ready-file", str(ready)],
                            cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                            stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("http://127.0.0.1:") and line.endswith("/api/v2/chat")
        assert ready.read_text().strip() == line
        resp = requests.get(f"{line}/agents", headers={"Authorization": "Bearer demo-token"}, timeout=5)
        assert len(resp.json()) == 10
        host = line[: -len("/api/v2/chat")]
        summary = requests.post(f"{host}/_sim/mutate?seed=2", timeout=5).json()
        assert len(summary["new_chats"]) == 13
        assert requests.get(f"{host}/_sim/stats", timeout=5).json()["total"] == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0


def _epoch(iso):
    from datetime import datetime
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp())


# ------------------------------------------------------------------ same-second order
def walk_timeline(base_url, limit):
    """Every agent_timeline entry once, in served order (start_time is inclusive, so page edges come back)."""
    url = f"{base_url}/incremental/agent_timeline?fields=agent_timeline(*)&limit={limit}&start_time=0"
    seen = {}
    while True:
        body = requests.get(url, headers=AUTH, timeout=5).json()
        for e in body["agent_timeline"]:
            seen.setdefault((e["agent_id"], json.dumps(e["start_time"])), e)
        if body["count"] < limit:
            return list(seen.values())
        url = body["next_page"]


ORDER_ARGS = dict(seed=4, chats=3000, offline_msgs=100, agents=20, ip_bans=10, visitor_bans=10, span_days=1,
                  same_second_chats=40, timeline_entries=60, same_microsecond_entries=6, real_shapes=True, end=OLD)


@pytest.fixture(scope="module", params=["reversed", "scrambled"])
def ordered(request):
    ds = Dataset.generate(same_second_order=request.param, **ORDER_ARGS)
    with Simulator(ds) as s, Simulator(ds, start_id_inclusive=True) as inclusive:
        yield request.param, ds, s, inclusive


def _by_second(ds):
    groups = {}
    for cid in ds.chat_ids():
        groups.setdefault(ds.update_epoch(cid), []).append(cid)
    return groups


def test_default_order_is_id_order(dataset):
    args = dict(seed=5, chats=120, offline_msgs=20, agents=30, timeline_entries=50, end=OLD)
    default, explicit = Dataset.generate(**args), Dataset.generate(same_second_order="id", **args)
    assert default.chats == explicit.chats and default.agent_timeline == explicit.agent_timeline
    keys = [(dataset.update_epoch(cid), cid) for cid in dataset.chat_ids()]
    assert keys == sorted(keys)
    with pytest.raises(ValueError):
        Dataset.generate(chats=1, same_second_order="random", end=OLD)


@pytest.fixture(scope="module")
def id_ordered():
    return Dataset.generate(**ORDER_ARGS)


def test_same_second_order_same_chats_other_order(ordered, id_ordered):
    mode, ds, _, _ = ordered
    plain = id_ordered
    assert sorted(ds.chats, key=lambda c: c["id"]) == sorted(plain.chats, key=lambda c: c["id"])
    assert {cid: ds.update_epoch(cid) for cid in ds.chat_ids()} == {cid: plain.update_epoch(cid) for cid in plain.chat_ids()}
    groups = [g for g in _by_second(ds).values() if len(g) > 1]
    assert len(groups) > 30 and {2, 3} <= {len(g) for g in groups} and max(len(g) for g in groups) >= 40
    assert all(g != sorted(g) for g in groups)
    if mode == "reversed":
        assert all(g == sorted(g, reverse=True) for g in groups)
    assert [c["id"] for c in ds.chats] == ds.chat_ids()
    seconds = [ds.update_epoch(cid) for cid in ds.chat_ids()]
    assert seconds == sorted(seconds)


def test_same_second_order_export_walk(ordered):
    _, ds, s, _ = ordered
    pages = walk_export(s.base_url, limit=13)
    served = [c["id"] for p in pages for c in p["chats"]]
    assert served == ds.chat_ids() and len(set(served)) == len(served)
    inside = 0
    for page, following in zip(pages, pages[1:]):
        assert page["end_id"] == page["chats"][-1]["id"] and page["end_time"] == _epoch(page["chats"][-1]["update_timestamp"])
        assert f"&start_time={page['end_time']}&start_id={page['end_id']}" in page["next_page"]
        if following["chats"] and _epoch(following["chats"][0]["update_timestamp"]) == page["end_time"]:
            inside += 1  # the cursor fell inside a second of 2+ chats
    assert inside >= 5


def test_same_second_order_start_id_positions(ordered):
    mode, ds, s, inclusive = ordered
    t = ds.same_second
    block = _by_second(ds)[t]
    assert len(block) >= 40 and block != sorted(block)
    assert [c["id"] for c in get(f"{s.base_url}/incremental/chats", start_time=t, limit=10).json()["chats"]] == block[:10]
    every = ds.chat_ids()
    for k in (0, 7, len(block) - 1):
        pos = every.index(block[k])
        after = get(f"{s.base_url}/incremental/chats", start_time=t, start_id=block[k], limit=20).json()
        assert [c["id"] for c in after["chats"]] == every[pos + 1:pos + 21]
        assert [c["id"] for c in after["chats"]][:len(block) - k - 1] == block[k + 1:k + 21]
        at = get(f"{inclusive.base_url}/incremental/chats", start_time=t, start_id=block[k], limit=20).json()
        assert [c["id"] for c in at["chats"]] == every[pos:pos + 20]
    # an id that is no chat still has one well-defined position in the second
    for unknown in ("0000.0.none", "zzzz.9.none", block[3] + "x"):
        got = [c["id"] for c in get(f"{s.base_url}/incremental/chats", start_time=t, start_id=unknown, limit=60).json()["chats"]]
        i = every.index(got[0])
        assert got == every[i:i + 60] and ds.update_epoch(got[0]) >= t
        if mode == "reversed" and unknown.startswith("0000"):
            assert ds.update_epoch(got[0]) > t  # sorts after every id of the second


def test_same_second_order_survives_mutations():
    for mode in ("reversed", "scrambled"):
        ds = Dataset.generate(seed=8, chats=400, offline_msgs=20, agents=10, span_days=1, same_second_chats=30,
                              timeline_entries=10, end=OLD, same_second_order=mode)
        t = ds.same_second
        block = _by_second(ds)[t]
        moved, gone = block[4], block[9]
        ds.update_chat(moved, tags=["moved"])
        ds.delete_chat(gone)
        new = ds.add_chats(3)
        summary = ds.mutate(seed=2)
        # leaving a second never reshuffles the chats that stay
        assert _by_second(ds)[t] == [cid for cid in block if cid not in {moved, gone} | set(summary["updated_chats"])
                                     | set(summary["deleted_chats"])]
        ids = ds.chat_ids()
        assert ids[-len(summary["new_chats"]):] == summary["new_chats"] and set(new) <= set(ids)
        assert len(ids) == len(set(ids)) == 400 + 20 + 30 + 3 + len(summary["new_chats"])
        assert [c["id"] for c in ds.chats] == ids
        cursor = (t, block[2])
        rest, start_time, start_id = [], *cursor
        while True:
            page = ds.export_slice(start_time, start_id, False, 11)
            rest += [cid for _, cid in page]
            if len(page) < 11:
                break
            start_time, start_id = page[-1]
        assert rest == ids[ids.index(block[2]) + 1:], mode
        assert moved in rest and gone in rest and ds.chat(gone)["deleted"] is True


def test_same_microsecond_timeline_order(ordered):
    mode, ds, s, _ = ordered
    group = [e["agent_id"] for e in ds.agent_timeline if e["start_time"] == ds._stamps.iso_us(ds.same_microsecond)]
    assert len(group) == 6 and group != sorted(group)
    if mode == "reversed":
        assert group == sorted(group, reverse=True)
    seen = walk_timeline(s.base_url, limit=10)
    assert [(e["agent_id"], e["start_time"]) for e in seen] == [(e["agent_id"], e["start_time"]) for e in ds.agent_timeline]
    assert [e["agent_id"] for e in seen if e["start_time"] == ds._stamps.iso_us(ds.same_microsecond)] == group


def test_standalone_same_second_order_and_real_shapes(tmp_path):
    ready = tmp_path / "ready"
    proc = subprocess.Popen([sys.executable, "-m", "tests.simulator", "--port", "0", "--chats", "40", "--offline-msgs",
                             "5", "--agents", "10", "--seed", "2", "--same-second-chats", "25", "--same-second-order",
                             "reversed", "--same-microsecond-entries", "3", "--real-shapes", "--ready-file", str(ready)],
                            cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        chats = get(f"{line}/incremental/chats", start_time=0, fields="chats(*)").json()["chats"]
        seconds = {}
        for c in chats:
            seconds.setdefault(c["update_timestamp"], []).append(c["id"])
        block = max(seconds.values(), key=len)
        assert len(block) >= 25 and block == sorted(block, reverse=True)
        host = line[: -len("/api/v2/chat")]
        shapes = requests.get(f"{host}/_sim/real_shapes", timeout=5).json()
        assert shapes["chat_string_types"] in block
        assert any("id" not in t and t["name"] == shapes["trigger_without_id"] for t in get(f"{line}/triggers").json())
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert "real shapes: {" in proc.stderr.read()


# ------------------------------------------------------------------ recorded real-API shapes
REAL_NAMES = {"trigger_without_id", "timeline_start_time_seconds", "timeline_start_time_micros", "ban_type_I",
              "ban_type_missing", "chat_long_history", "chat_webpath_arrays", "chat_conversions",
              "offline_msg_odd_dates", "chat_string_types", "account_plan_unlimited", "agent_int_enabled"}


@pytest.fixture(scope="module")
def real():
    ds = Dataset.generate(seed=6, chats=300, offline_msgs=40, agents=120, ip_bans=30, visitor_bans=30,
                          timeline_entries=200, same_second_chats=30, end=OLD, real_shapes=True)
    with Simulator(ds) as s:
        yield ds, s


def test_real_shapes_description(real):
    ds, _ = real
    assert set(ds.real_shapes) == REAL_NAMES
    with pytest.raises(RuntimeError):
        ds.add_real_shapes()
    plain = Dataset.generate(seed=6, chats=300, offline_msgs=40, agents=120, ip_bans=30, visitor_bans=30,
                             timeline_entries=200, same_second_chats=30, end=OLD)
    added = plain.add_real_shapes()
    assert added == plain.real_shapes == ds.real_shapes and plain.chats == ds.chats
    # the rest of the data is what it is without real shapes
    bare = Dataset.generate(seed=6, chats=300, offline_msgs=40, agents=120, ip_bans=30, visitor_bans=30,
                            timeline_entries=200, same_second_chats=30, end=OLD)
    shaped = {v for k, v in ds.real_shapes.items() if k.startswith(("chat_", "offline_"))}
    assert [c for c in ds.chats if c["id"] not in shaped] == bare.chats


def test_real_shapes_config(real):
    ds, s = real
    shapes = ds.real_shapes
    triggers = get(f"{s.base_url}/triggers").json()
    keyless = [t for t in triggers if "id" not in t]
    assert [t["name"] for t in keyless] == [shapes["trigger_without_id"]]
    assert set(keyless[0]) == set(triggers[0]) - {"id"} and isinstance(keyless[0]["definition"]["actions"][0], list)
    plan = get(f"{s.base_url}/account").json()["plan"]
    assert all(plan[k] == "unlimited" for k in ("max_agents", "max_departments", "max_concurrent_chats",
                                                 "max_history_search_days"))
    agents, since = [], 0
    while True:
        page = get(f"{s.base_url}/agents", since_id=since, limit=100).json()
        if not page:
            break
        agents += page
        since = page[-1]["id"] + 1
    assert [a["id"] for a in agents] == sorted(a["id"] for a in ds.agents) and len(agents) == 121
    agent = next(a for a in agents if a["id"] == shapes["agent_int_enabled"])
    assert agent["enabled"] == 0 and type(agent["enabled"]) is int
    assert len(agent["departments"]) >= 2 and all(type(d) is int for d in agent["departments"])
    assert set(agent) == set(agents[0])


@pytest.mark.parametrize("mode", ["total", "per_array"])
def test_real_shapes_bans(real, mode, fresh):
    ds, _ = real
    s = fresh(ds, bans_limit_mode=mode)
    seen, since = {"ip_address": [], "visitor": []}, 0
    while True:  # per_array: one page holds everything (walking by max id would skip bans by design)
        page = get(f"{s.base_url}/bans", since_id=since, limit=7 if mode == "total" else 1000).json()
        ids = [b["id"] for arr in page.values() for b in arr]
        if not ids:
            break
        for kind in seen:
            seen[kind] += page[kind]
        since = max(ids) + 1
    by_id = {b["id"]: (kind, b) for kind, arr in seen.items() for b in arr}
    assert by_id[ds.real_shapes["ban_type_I"]][0] == "ip_address" and by_id[ds.real_shapes["ban_type_I"]][1]["type"] == "I"
    kind, ban = by_id[ds.real_shapes["ban_type_missing"]]
    assert kind == "visitor" and "type" not in ban and ban["visitor_id"]
    if mode == "total":
        assert sorted(by_id) == sorted(b["id"] for arr in ds.bans.values() for b in arr) == \
            sorted(b["id"] for arr in seen.values() for b in arr)


def test_real_shapes_timeline(real):
    ds, s = real
    seen = walk_timeline(s.base_url, limit=20)

    def micros(value):
        if isinstance(value, int):
            return value if value > 10**14 else value * 1_000_000
        secs, frac = value[:-1].split(".")
        return _epoch(secs + "Z") * 1_000_000 + int(frac)

    instants = [micros(e["start_time"]) for e in seen]
    assert instants == sorted(instants) and len(seen) == len(ds.agent_timeline) == 202
    found = {(e["agent_id"], e["start_time"]): e for e in seen}
    agent, seconds = ds.real_shapes["timeline_start_time_seconds"]
    assert type(found[(agent, seconds)]["start_time"]) is int and 10**9 < seconds < 10**10
    agent, us = ds.real_shapes["timeline_start_time_micros"]
    assert type(found[(agent, us)]["start_time"]) is int and us > 10**15
    starts = [e for e in seen if isinstance(e["start_time"], str)]
    assert micros(starts[0]["start_time"]) < seconds * 1_000_000 < us < micros(starts[-1]["start_time"])


def test_real_shapes_chats(real):
    ds, s = real
    shapes = ds.real_shapes
    pages = walk_export(s.base_url, limit=25)
    chats = {c["id"]: c for p in pages for c in p["chats"]}
    assert [c["id"] for p in pages for c in p["chats"]] == ds.chat_ids() and len(chats) == 300 + 40 + 30 + 5
    for name in ("chat_long_history", "chat_webpath_arrays", "chat_conversions", "offline_msg_odd_dates",
                 "chat_string_types"):
        chat = chats[shapes[name]]
        assert _epoch(chat["update_timestamp"]) == ds.update_epoch(chat["id"])
        assert set(chat) >= {"id", "type", "timestamp", "update_timestamp", "visitor", "session", "department_id",
                             "unread", "tags", "zendesk_ticket_id", "deleted"}
        if chat["type"] == "chat":
            assert set(chat) == set(chats[shapes["chat_long_history"]])
            assert chat["timestamp"] <= chat["end_timestamp"] <= chat["update_timestamp"]
        assert get(f"{s.base_url}/chats/{chat['id']}").json() == chat
    history = chats[shapes["chat_long_history"]]["history"]
    assert len(history) >= 20
    assert any(e.get("skills_name") == ["Billing", "VIP"] for e in history)
    assert {type(e["msg_id"]) for e in history if e["type"] == "chat.msg"} == {int, str}
    assert any(isinstance(e.get("department_id"), str) for e in history)
    webpath = chats[shapes["chat_webpath_arrays"]]["webpath"]
    arrays = [w for w in webpath if isinstance(w, list)]
    assert any(isinstance(w, dict) for w in webpath) and sorted(len(w) for w in arrays) == [2, 2, 3]
    assert [type(x) for x in arrays[0]] == [int, str] and all(isinstance(x, str) for x in arrays[1])
    conversion = chats[shapes["chat_conversions"]]["conversions"][0]
    assert set(conversion) == {"id", "goal_id", "goal_name", "timestamp", "attribution"}
    assert set(conversion["attribution"]) == {"agent_id", "agent_name", "chat_timestamp", "department_id",
                                              "department_name"}
    assert isinstance(conversion["attribution"]["agent_id"], int) and conversion["goal_id"] in {g["id"] for g in ds.goals}
    offline = chats[shapes["offline_msg_odd_dates"]]
    assert offline["type"] == "offline_msg" and "end_timestamp" not in offline and offline["message"]
    assert offline["session"]["start_date"].endswith("+00:00Z") and offline["session"]["end_date"].endswith("+00:00Z")
    typed = chats[shapes["chat_string_types"]]
    assert typed["unread"] == 1 and type(typed["unread"]) is int
    assert len(typed["agent_ids"]) == 2 and all(isinstance(a, str) for a in typed["agent_ids"])
    assert all(isinstance(e["agent_id"], str) for e in typed["engagements"])
    assert ds.update_epoch(typed["id"]) == ds.same_second
    # the other real-shape chats share their second with a generated chat
    assert all(len(_by_second(ds)[ds.update_epoch(shapes[n])]) >= 2 for n in ("chat_long_history", "chat_conversions"))


def test_real_shapes_survive_mutations(fresh):
    ds = Dataset.generate(seed=7, chats=100, offline_msgs=10, agents=15, timeline_entries=20, end=OLD, real_shapes=True)
    s = fresh(ds)
    last = walk_export(s.base_url)[-1]
    target = ds.real_shapes["chat_long_history"]
    ds.update_chat(target, tags=["refund"])
    summary = ds.mutate(seed=3)
    assert summary["removed_triggers"] and all(isinstance(t, int) for t in summary["removed_triggers"])
    body = get(f"{s.base_url}/incremental/chats", start_time=last["end_time"], start_id=last["end_id"],
               fields="chats(*)").json()
    changed = {c["id"]: c for c in body["chats"]}
    assert changed[target]["tags"] == ["refund"] and len(changed[target]["history"]) >= 20
    assert any("id" not in t for t in get(f"{s.base_url}/triggers").json())


# ------------------------------------------------------------------ arbitrary values (set_field)
def test_set_field_every_stream(fresh):
    ds = Dataset.generate(seed=5, chats=120, offline_msgs=20, agents=30, timeline_entries=50, end=OLD)
    s = fresh(ds)
    order = ds.chat_ids()
    cid = order[3]
    second = ds.update_epoch(cid)
    ds.set_field("chats", cid, ["update_timestamp"], "1999-01-01T00:00:00Z")
    ds.set_field("chats", 3, ["visitor", "email"], None)
    ds.set_field("chats", cid, ["history", 0, "msg_id"], ["a", 1])
    ds.set_field("chats", order[5], ["unread"], "yes")
    ds.set_field("chats", order[6], ["id"], 12345)
    served = get(f"{s.base_url}/incremental/chats", start_time=0, limit=4, fields="chats(*)").json()
    assert [c["id"] for c in served["chats"]] == order[:4] == ds.chat_ids()[:4]  # the API's order is its own
    chat = served["chats"][3]
    assert chat["update_timestamp"] == "1999-01-01T00:00:00Z" and chat["visitor"]["email"] is None
    assert chat["history"][0]["msg_id"] == ["a", 1]
    assert served["end_id"] == cid and served["end_time"] == second
    assert get(f"{s.base_url}/chats/{cid}").json() == chat == ds.chat(cid)
    assert get(f"{s.base_url}/chats", ids=cid).json()["docs"][cid] == chat
    more = get(f"{s.base_url}/incremental/chats", start_time=served["end_time"], start_id=served["end_id"], limit=3).json()
    assert more["chats"] == [{"id": order[4]}, {"id": order[5]}, {"id": 12345}] and more["end_id"] == order[6]
    assert [c["id"] for c in walk_export(s.base_url, limit=1000)[0]["chats"]] == [i if i != order[6] else 12345 for i in order]

    ds.set_field("agent_timeline", 0, ["start_time"], 1607918912)
    first = get(f"{s.base_url}/incremental/agent_timeline", start_time=0, limit=1, fields="agent_timeline(*)").json()
    assert first["agent_timeline"][0]["start_time"] == 1607918912
    agent = ds.agents[4]["id"]
    ds.set_field("agents", agent, ["id"], "abc")
    ds.set_field("agents", 5, ["roles", "owner"], "yes")
    agents = get(f"{s.base_url}/agents", since_id=0, limit=100).json()
    assert agents[4]["id"] == "abc" and agents[5]["roles"]["owner"] == "yes" and len(agents) == 30
    assert [a["id"] for a in get(f"{s.base_url}/agents", since_id=agent, limit=2).json()] == ["abc", ds.agents[5]["id"]]
    ban = ds.bans["ip_address"][0]["id"]
    ds.set_field("bans", ban, ["type"], None)
    ds.set_field("bans.visitor", 0, ["reason"], {"text": "spam"})
    bans = get(f"{s.base_url}/bans", limit=1000).json()
    assert next(b for b in bans["ip_address"] if b["id"] == ban)["type"] is None
    assert bans["visitor"][0]["reason"] == {"text": "spam"}
    ds.set_field("departments", 0, ["members", 0], "not-an-int")
    ds.set_field("goals", ds.goals[1]["id"], ["settings", "conditions", 0, "value"], 42)
    ds.set_field("roles", 0, ["permissions", "manage_bans"], "true")
    ds.set_field("skills", 0, ["members"], Dataset.REMOVE)
    ds.set_field("shortcuts", ds.shortcuts[2]["name"], ["tags"], "vip")
    ds.set_field("triggers", ds.triggers[0]["id"], ["definition", "actions"], "wait")
    ds.set_field("account", None, ["plan", "price"], "59.00")
    ds.set_field("routing_settings", None, ["chat_limit", "limit"], "3")
    if ds.departments[0]["members"]:
        assert get(f"{s.base_url}/departments").json()[0]["members"][0] == "not-an-int"
    assert get(f"{s.base_url}/goals").json()[1]["settings"]["conditions"][0]["value"] == 42
    assert get(f"{s.base_url}/roles").json()[0]["permissions"]["manage_bans"] == "true"
    assert "members" not in get(f"{s.base_url}/skills").json()[0] and "members" in ds.skills[0]
    assert get(f"{s.base_url}/shortcuts").json()[2]["tags"] == "vip"
    assert get(f"{s.base_url}/triggers").json()[0]["definition"]["actions"] == "wait"
    assert get(f"{s.base_url}/account").json()["plan"]["price"] == "59.00"
    assert get(f"{s.base_url}/routing_settings/account").json()["data"]["chat_limit"]["limit"] == "3"
    assert ds.served("account")["plan"]["price"] == "59.00" and ds.account["plan"]["price"] == 59.0


def test_set_field_pins_over_mutations_and_rejects_bad_paths(fresh):
    ds = Dataset.generate(seed=5, chats=60, offline_msgs=5, agents=10, timeline_entries=20, end=OLD, real_shapes=True)
    s = fresh(ds)
    cid = ds.chat_ids()[2]
    ds.set_field("chats", cid, ["tags"], "odd")
    ds.set_field("chats", cid, ["tags"], 7)  # the same path again replaces the earlier override
    ds.update_chat(cid, rating="bad")
    assert ds.chat_ids()[-1] == cid
    chat = get(f"{s.base_url}/chats/{cid}").json()
    assert chat["tags"] == 7 and chat["rating"] == "bad"
    ds.mutate(seed=4)  # reads the chats' own values underneath
    ds.set_field("triggers", ds.real_shapes["trigger_without_id"], ["enabled"], 1)
    assert next(t for t in get(f"{s.base_url}/triggers").json() if "id" not in t)["enabled"] == 1
    agent, start = ds.real_shapes["timeline_start_time_micros"]
    ds.set_field("agent_timeline", (agent, start), ["status"], None)
    assert next(e for e in ds.served("agent_timeline") if e["agent_id"] == agent and e["start_time"] == start)["status"] is None
    whole = ds.chat_ids()[0]
    ds.set_field("chats", whole, [], {"id": whole})
    assert get(f"{s.base_url}/incremental/chats", start_time=0, limit=1, fields="chats(*)").json()["chats"] == [{"id": whole}]
    with pytest.raises(ValueError):
        ds.set_field("chats", cid, ["visitor", "nope", "deeper"], 1)
    with pytest.raises(ValueError):
        ds.set_field("tickets", 0, ["id"], 1)
    with pytest.raises(KeyError):
        ds.set_field("agents", "no such agent", ["id"], 1)
    with pytest.raises(TypeError):
        ds.set_field("goals", 0, ["name"], object())
    assert get(f"{s.base_url}/chats/{cid}").json()["tags"] == 7  # a rejected override leaves the others alone
    ds.clear_fields()
    assert get(f"{s.base_url}/chats/{cid}").json()["tags"] != 7 and ds.chat(cid) == json.loads(ds.blob(cid))
    search = get(f"{s.base_url}/chats/search", q="type:chat AND timestamp:[* TO *]").json()
    assert search["count"] > 0


# ------------------------------------------------------------------ event exports: conversions, department_events, agent_events
EVENTS = ("conversions", "department_events", "agent_events")
EVENT_ARGS = dict(seed=12, chats=150, offline_msgs=10, agents=25, timeline_entries=20, conversions=90,
                  department_events=70, agent_events=110, same_second_events=23, end=OLD)


@pytest.fixture(scope="module")
def events_ds():
    return Dataset.generate(**EVENT_ARGS)


@pytest.fixture(scope="module")
def events_sims(events_ds):
    with Simulator(events_ds) as exclusive, Simulator(events_ds, start_id_inclusive=True) as inclusive:
        yield exclusive, inclusive


def walk_events(base_url, name, limit, start_time=0, inclusive=False, fields="*", unit=1):
    """Every record of an event export in served order, following next_page; with start_id inclusive the
    first record of a page repeats the last of the one before (checked, then dropped)."""
    query = f"fields={name}({fields})&" if fields else ""
    url = f"{base_url}/incremental/{name}?{query}limit={limit}&start_time={start_time * unit}"
    pages, seen = [], []
    while True:
        body = requests.get(url, headers=AUTH, timeout=10).json()
        assert body["count"] == len(body[name]) and body["next_page"]
        items = body[name]
        if inclusive and pages and pages[-1][name] and items:
            assert items[0] == pages[-1][name][-1]
            items = items[1:]
        pages.append(body)
        seen += items
        if body["count"] < limit:
            return pages, seen
        url = body["next_page"]


def _micros(iso):
    secs, _, frac = iso[:-1].partition(".")
    return _epoch(secs + "Z") * 1_000_000 + int(frac or 0)


def test_event_shapes(events_ds):
    ds = events_ds
    chats = {c["id"]: c for c in ds.chats}
    conversions = ds.conversions
    assert len(conversions) == 90 + 23 and ds.event_ids("conversions") == [c["id"] for c in conversions]
    goals = {g["id"]: g["name"] for g in ds.goals}
    attributed = [c for c in conversions if c["attribution"] is not None]
    assert 0 < len(attributed) < len(conversions)
    for c in conversions:
        assert list(c) == ["id", "goal_id", "goal_name", "timestamp", "attribution"]
        assert isinstance(c["id"], str) and goals[c["goal_id"]] == c["goal_name"]
        assert c["timestamp"].endswith("Z") and "." not in c["timestamp"]
    for c in attributed:
        a, chat = c["attribution"], chats[c["attribution"]["chat_id"]]
        assert set(a) == {"agent_id", "agent_name", "chat_id", "chat_timestamp", "department_id", "department_name"}
        assert a["chat_timestamp"] == chat["timestamp"] and a["department_id"] == chat["department_id"]
        assert chat["type"] == "chat" and _epoch(chat["end_timestamp"]) + 30 <= _epoch(c["timestamp"])
        assert a["agent_id"] is None or str(a["agent_id"]) == chat["agent_ids"][0]
    departments = {d["id"] for d in ds.departments}
    dept = ds.department_events
    assert len(dept) == 70 + 23 and {e["field_name"] for e in dept} == {"status", "members"}
    for e in dept:
        assert list(e) == ["department_id", "field_name", "id", "previous_value", "timestamp", "value"]
        assert e["department_id"] in departments and e["id"].split(".")[1] == f"department:{e['department_id']}"
        kind = str if e["field_name"] == "status" else dict
        assert type(e["value"]) is kind and type(e["previous_value"]) is kind and e["value"] != e["previous_value"]
        assert len(e["timestamp"]) == len("2018-10-19T12:33:50.140101Z")
    agents = {a["id"] for a in ds.agents}
    events = ds.agent_events
    assert len(events) == 110 + 23 and {e["field_name"] for e in events} == {"status", "engagements"}
    for e in events:
        assert list(e) == ["account_id", "agent_id", "field_name", "id", "previous_value", "timestamp", "value"]
        assert e["agent_id"] in agents and e["account_id"] == ds.chat_account_id
        assert e["id"].split(".")[1] == f"agent:{e['agent_id']}"
        kind = str if e["field_name"] == "status" else int
        assert type(e["value"]) is kind and type(e["previous_value"]) is kind
        assert _micros(e["timestamp"]) == ds.event_instant("agent_events", e["id"])
    # previous_value follows each agent's own chain, in time order
    last = {}
    for e in sorted(events, key=lambda e: _micros(e["timestamp"])):
        key = (e["agent_id"], e["field_name"])
        assert e["previous_value"] == last.get(key, "offline" if e["field_name"] == "status" else 0)
        last[key] = e["value"]
    for name in EVENTS:
        ids = ds.event_ids(name)
        assert len(set(ids)) == len(ids)
        seconds = [ds.event_second(name, i) for i in ids]
        assert seconds == sorted(seconds)
        assert [(s, i) for s, i in zip(seconds, ids)] == sorted(zip(seconds, ids))  # default order: ids
        groups = {}
        for s in seconds:
            groups[s] = groups.get(s, 0) + 1
        assert groups[ds.same_second_events] >= 23 and sum(1 for n in groups.values() if n > 1) >= 5


def test_event_exports_change_nothing_else():
    base = dict(seed=9, chats=200, offline_msgs=20, agents=20, timeline_entries=30, end=OLD)
    plain = Dataset.generate(conversions=0, department_events=0, agent_events=0, **base)
    full = Dataset.generate(**base)
    assert [full.event_count(n) for n in EVENTS] == [120, 80, 150] and [plain.event_count(n) for n in EVENTS] == [0, 0, 0]
    for stream in ("chats", "agent_timeline", "agents", "bans", "departments", "goals", "triggers", "account"):
        assert full.served(stream) == plain.served(stream), stream
    a, b = plain.mutate(seed=3), full.mutate(seed=3)
    assert {k: v for k, v in b.items() if k not in ("new_conversions", "new_department_events", "new_agent_events")} \
        == {k: v for k, v in a.items() if k not in ("new_conversions", "new_department_events", "new_agent_events")}
    assert full.chats == plain.chats and full.agent_timeline == plain.agent_timeline and full.agents == plain.agents
    assert [len(a[f"new_{n}"]) for n in EVENTS] == [len(b[f"new_{n}"]) for n in EVENTS] == [4, 3, 6]


@pytest.mark.parametrize("name", EVENTS)
@pytest.mark.parametrize("inclusive", [False, True])
def test_event_export_walks_everything_once(events_sims, events_ds, name, inclusive):
    ds, sim = events_ds, events_sims[inclusive]
    pages, seen = walk_events(sim.base_url, name, limit=7, inclusive=inclusive)
    assert [r["id"] for r in seen] == ds.event_ids(name) and seen == ds.served(name)
    assert pages[-1]["count"] < 7
    inside = 0
    for page, following in zip(pages, pages[1:]):
        last = page[name][-1]
        assert page["end_id"] == last["id"] and page["end_time"] == ds.event_second(name, last["id"])
        assert page["next_page"] == (f"{sim.base_url}/incremental/{name}?fields={name}%28%2A%29&limit=7"
                                     f"&start_time={page['end_time']}&start_id={urllib.parse.quote(page['end_id'], safe='')}")
        nxt = following[name][1:] if inclusive else following[name]  # inclusive: [0] repeats the cursor
        if nxt and ds.event_second(name, nxt[0]["id"]) == page["end_time"]:
            inside += 1  # the cursor fell inside a second of 2+ records
    assert inside >= 3  # the 23-record second alone spans pages
    # start_time alone re-reads the second: the page after a cursor inside a second needs start_id
    t = ds.same_second_events
    block = [i for i in ds.event_ids(name) if ds.event_second(name, i) == t]
    first = get(f"{sim.base_url}/incremental/{name}", start_time=t, limit=10, fields=f"{name}(*)").json()
    assert [r["id"] for r in first[name]] == block[:10]
    again = get(f"{sim.base_url}/incremental/{name}", start_time=first["end_time"], limit=10, fields=f"{name}(*)").json()
    assert again[name] == first[name]
    after = get(f"{sim.base_url}/incremental/{name}", start_time=t, start_id=block[9], limit=10,
                fields=f"{name}(*)").json()
    assert [r["id"] for r in after[name]] == (block[9:19] if inclusive else block[10:20])


def test_event_export_envelopes_and_fields(events_sims, events_ds):
    sim = events_sims[0]
    for name in EVENTS:
        body = get(f"{sim.base_url}/incremental/{name}", start_time=0, limit=3, fields=f"{name}(*)").json()
        assert list(body) == [name, "count", "end_time", "end_id", "next_page"]
        legacy = get(f"{sim.legacy_base_url}/incremental/{name}", start_time=0, limit=3, fields=f"{name}(*)").json()
        assert legacy[name] == body[name] and legacy["next_page"].startswith(f"{sim.legacy_base_url}/incremental/{name}?")
        bare = get(f"{sim.base_url}/incremental/{name}", start_time=0, limit=3).json()
        some = get(f"{sim.base_url}/incremental/{name}", start_time=0, limit=3, fields=f"{name}(id,timestamp)").json()
        if name == "agent_events":  # "Resource Expansion: Not applicable": whole records whatever fields says
            assert bare[name] == some[name] == body[name]
            assert "fields" not in bare["next_page"]
        else:
            assert bare[name] == [{"id": r["id"]} for r in body[name]]
            assert some[name] == [{"id": r["id"], "timestamp": r["timestamp"]} for r in body[name]]
            assert get(f"{sim.base_url}/incremental/{name}", start_time=0, fields="chats(*)").status_code == 400
        empty = get(f"{sim.base_url}/incremental/{name}", start_time=OLD - 10).json()
        assert empty[name] == [] and empty["count"] == 0 and empty["end_time"] == OLD - 10 and empty["end_id"] is None
        assert empty["next_page"]
        held = get(f"{sim.base_url}/incremental/{name}", start_time=OLD - 10, start_id="abc").json()
        assert held["end_id"] == "abc" and "start_id=abc" in held["next_page"]


@pytest.mark.parametrize("name", EVENTS)
def test_event_export_validation(events_sims, name):
    sim = events_sims[0]
    url = f"{sim.base_url}/incremental/{name}"
    assert get(url).status_code == 400  # start_time is required
    assert get(url, start_time=0, limit=1001).status_code == 400
    assert get(url, start_time=0, limit=0).status_code == 400
    assert get(url, start_time="soon").status_code == 400
    for start in (int(time.time()) - 60, int(time.time()) + 3600):
        resp = get(url, start_time=start)
        assert resp.status_code == 400 and set(resp.json()) == {"error", "description"}
    assert get(url, start_time=int(time.time()) - 400).status_code == 200
    assert len(get(url, start_time=0).json()[name]) == min(1000, {"conversions": 113, "department_events": 93,
                                                                   "agent_events": 133}[name])


def test_agent_events_unavailable(fresh, events_ds):
    for status, options in ((403, {}), (403, {"agent_events_unavailable_status": 403}),
                            (404, {"agent_events_unavailable_status": 404})):
        s = fresh(events_ds, agent_events_available=False, **options)
        resp = get(f"{s.base_url}/incremental/agent_events", start_time=0, fields="agent_events(*)")
        assert resp.status_code == status and set(resp.json()) == {"error", "description"}
        assert get(f"{s.legacy_base_url}/incremental/agent_events", start_time=0).status_code == status
        for other in ("conversions", "department_events", "chats"):
            assert get(f"{s.base_url}/incremental/{other}", start_time=0).status_code == 200
    with pytest.raises(ValueError):
        Simulator(events_ds, agent_events_unavailable_status=500)


def test_agent_events_in_microseconds_and_without_end_id(fresh, events_ds):
    ds = events_ds
    s = fresh(ds, agent_events_time_unit="microseconds", events_end_id=False)
    pages, seen = walk_events(s.base_url, "agent_events", limit=9, unit=1_000_000)
    assert [e["id"] for e in seen] == ds.event_ids("agent_events")
    for page in pages[:-1]:
        last = page["agent_events"][-1]
        assert "end_id" not in page and page["end_time"] == _micros(last["timestamp"]) > 10**15
        assert f"start_time={page['end_time']}&start_id=" in page["next_page"]
    soon = (int(time.time()) - 60) * 1_000_000
    assert get(f"{s.base_url}/incremental/agent_events", start_time=soon).status_code == 400
    assert get(f"{s.base_url}/incremental/agent_events", start_time=(int(time.time()) - 400) * 1_000_000).status_code == 200
    # the other two keep seconds, without end_id too
    body = get(f"{s.base_url}/incremental/conversions", start_time=0, limit=2, fields="conversions(*)").json()
    assert "end_id" not in body and body["end_time"] == ds.event_second("conversions", body["conversions"][-1]["id"])
    with pytest.raises(ValueError):
        Simulator(ds, agent_events_time_unit="ms")


def test_event_exports_after_mutations(fresh):
    ds = Dataset.generate(seed=14, chats=100, offline_msgs=10, agents=15, timeline_entries=10, end=OLD)
    s = fresh(ds)
    bookmarks = {}
    for name in EVENTS:
        last = walk_events(s.base_url, name, limit=1000)[0][-1]
        bookmarks[name] = (last["end_time"], last["end_id"])
    before = {name: ds.served(name) for name in EVENTS}
    summary = ds.mutate(seed=2)
    again = ds.mutate(seed=3)
    assert [len(summary[f"new_{n}"]) for n in EVENTS] == [4, 3, 6]
    for name in EVENTS:
        new = summary[f"new_{name}"] + again[f"new_{name}"]
        start_time, start_id = bookmarks[name]
        body = get(f"{s.base_url}/incremental/{name}", start_time=start_time, start_id=start_id,
                   fields=f"{name}(*)").json()
        assert [r["id"] for r in body[name]] == ds.event_ids(name)[-len(new):] and set(new) == {r["id"] for r in body[name]}
        assert all(ds.event_second(name, i) > start_time for i in new)
        assert max(ds.event_second(name, i) for i in new) < time.time() - 600
        assert ds.served(name)[:len(before[name])] == before[name]  # nothing old moved or changed
    assert ds.event_second("conversions", again["new_conversions"][0]) > ds.max_update_timestamp - 100
    chats = {c["id"] for c in ds.chats}
    assert all(c["attribution"] is None or c["attribution"]["chat_id"] in chats for c in ds.conversions)
    # agent events keep each agent's chain going across mutations
    last = {}
    for e in sorted(ds.agent_events, key=lambda e: _micros(e["timestamp"])):
        key = (e["agent_id"], e["field_name"])
        assert e["previous_value"] == last.get(key, "offline" if e["field_name"] == "status" else 0)
        last[key] = e["value"]
    assert ds.add_events("conversions", 2) and len(ds.conversions) == 120 + 8 + 2
    with pytest.raises(ValueError):
        ds.add_events("tickets", 1)
    summary_http = requests.post(f"{s.host_url}/_sim/mutate?seed=7", timeout=5).json()
    assert len(summary_http["new_agent_events"]) == 6


def test_event_exports_same_second_orders():
    for mode in ("reversed", "scrambled"):
        ds = Dataset.generate(same_second_order=mode, **EVENT_ARGS)
        plain = Dataset.generate(**EVENT_ARGS)
        with Simulator(ds) as s, Simulator(ds, start_id_inclusive=True) as inclusive:
            for name in EVENTS:
                assert sorted(ds.event_ids(name)) == sorted(plain.event_ids(name))
                groups = {}
                for i in ds.event_ids(name):
                    groups.setdefault(ds.event_second(name, i), []).append(i)
                multi = [g for g in groups.values() if len(g) > 1]
                assert multi and all(g != sorted(g) for g in multi), (mode, name)
                if mode == "reversed":
                    assert all(g == sorted(g, reverse=True) for g in multi)
                assert [r["id"] for r in walk_events(s.base_url, name, limit=6)[1]] == ds.event_ids(name)
                assert [r["id"] for r in walk_events(inclusive.base_url, name, limit=6, inclusive=True)[1]] == \
                    ds.event_ids(name)
                new = ds.add_events(name, 8)
                tail = ds.event_ids(name)[-len(new):]
                assert set(tail) == set(new)
                seconds = [ds.event_second(name, i) for i in ds.event_ids(name)]
                assert seconds == sorted(seconds)
                for second in {ds.event_second(name, i) for i in new}:
                    group = [i for i in ds.event_ids(name) if ds.event_second(name, i) == second]
                    assert len(group) < 2 or group != sorted(group), (mode, name)


def test_event_exports_set_field(fresh):
    ds = Dataset.generate(seed=15, chats=60, offline_msgs=5, agents=12, timeline_entries=5, end=OLD)
    s = fresh(ds)
    order = {name: ds.event_ids(name) for name in EVENTS}
    conv = order["conversions"][2]
    ds.set_field("conversions", conv, ["goal_id"], "70001")
    ds.set_field("conversions", 3, ["attribution"], ["not", "an", "object"])
    ds.set_field("department_events", 0, ["value"], {"nested": [1, 2]})
    ds.set_field("agent_events", order["agent_events"][4], ["timestamp"], 1539952430)
    ds.set_field("agent_events", 5, ["id"], 12345)
    ds.set_field("agent_events", 6, ["previous_value"], Dataset.REMOVE)
    conversions = walk_events(s.base_url, "conversions", limit=1000)[1]
    assert [c["id"] for c in conversions] == order["conversions"]  # the API's order is its own
    assert conversions[2]["goal_id"] == "70001" and conversions[3]["attribution"] == ["not", "an", "object"]
    assert walk_events(s.base_url, "department_events", limit=1000)[1][0]["value"] == {"nested": [1, 2]}
    pages, events = walk_events(s.base_url, "agent_events", limit=5)
    assert events[4]["timestamp"] == 1539952430 and events[5]["id"] == 12345 and "previous_value" not in events[6]
    assert pages[1]["end_id"] == order["agent_events"][9]  # envelopes come from the records' own values
    assert ds.served("agent_events")[5]["id"] == 12345 and ds.agent_events == events
    ids_only = get(f"{s.base_url}/incremental/conversions", start_time=0, limit=4).json()["conversions"]
    assert ids_only == [{"id": i} for i in order["conversions"][:4]]
    ds.mutate(seed=1)  # overrides stay pinned; new records come after
    assert ds.served("conversions")[2]["goal_id"] == "70001"
    with pytest.raises(KeyError):
        ds.set_field("agent_events", "no such event", ["value"], 1)
    with pytest.raises(ValueError):
        ds.set_field("conversions", conv, ["attribution", "nope", "deeper"], 1)
    ds.clear_fields("agent_events")
    assert ds.served("agent_events")[5]["id"] == order["agent_events"][5]
    assert ds.served("conversions")[2]["goal_id"] == "70001"
    ds.clear_fields()
    assert ds.served("conversions")[2]["goal_id"] != "70001"


def test_event_exports_record_without_key(fresh, events_ds):
    s = fresh(events_ds)
    s.hostile = {"record_without_key"}
    for name in EVENTS:
        body = get(f"{s.base_url}/incremental/{name}", start_time=0, limit=5, fields=f"{name}(*)").json()
        missing = [r for r in body[name] if "id" not in r]
        assert len(missing) == 1 and body["end_id"] == events_ds.event_ids(name)[4]
        assert s.keyless_event_id(name) == events_ds.event_ids(name)[1]


def test_standalone_event_options(tmp_path):
    ready = tmp_path / "ready"
    proc = subprocess.Popen([sys.executable, "-m", "tests.simulator", "--port", "0", "--chats", "20", "--offline-msgs",
                             "2", "--agents", "6", "--seed", "3", "--conversions", "7", "--department-events", "5",
                             "--agent-events", "9", "--same-second-events", "4", "--no-agent-events", "404",
                             "--no-events-end-id", "--ready-file", str(ready)],
                            cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                            stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        body = get(f"{line}/incremental/conversions", start_time=0, fields="conversions(*)").json()
        assert body["count"] == 11 and "end_id" not in body
        assert get(f"{line}/incremental/department_events", start_time=0).json()["count"] == 9
        assert get(f"{line}/incremental/agent_events", start_time=0).status_code == 404
        host = line[: -len("/api/v2/chat")]
        summary = requests.post(f"{host}/_sim/mutate?seed=2", timeout=5).json()
        assert len(summary["new_conversions"]) == 4
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0


def test_latency_and_bandwidth_delay_every_api_answer(fresh):
    s = fresh(latency=0.2, bytes_per_second=1_000_000, token="tok")
    started = time.monotonic()
    resp = requests.get(f"{s.base_url}/incremental/chats?fields=chats(*)&limit=100&start_time=0",
                        headers={"Authorization": "Bearer tok"}, timeout=10)
    took = time.monotonic() - started
    assert resp.status_code == 200
    assert took >= 0.2 + len(resp.content) / 1_000_000 * 0.9
    started = time.monotonic()
    requests.get(f"{s.host_url}/_sim/stats", timeout=10)  # the simulator's own controls are not delayed
    assert time.monotonic() - started < 0.15
