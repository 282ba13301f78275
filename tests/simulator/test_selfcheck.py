"""The simulator keeps the API contract of docs/zendesk-chat-api reference; these pin it down."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import requests

from tests.simulator import Dataset, Fault, Simulator

TOKEN = "sim-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
OLD = int(time.time()) - 86400


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


def test_chat_quirks(dataset):
    chats = dataset.chats
    real = [c for c in chats if c["type"] == "chat"]
    offline = [c for c in chats if c["type"] == "offline_msg"]
    assert offline and all("end_timestamp" not in c for c in offline)
    assert all(c["timestamp"] <= c["end_timestamp"] <= c["update_timestamp"] for c in real)
    assert {type(c["unread"]) for c in chats} == {bool, int}
    assert any(isinstance(w, list) for c in chats for w in c["webpath"])
    assert any(c["session"]["start_date"].endswith("+00:00Z") for c in chats)
    assert all(isinstance(a, str) for c in real for a in c["agent_ids"])
    msg_ids = {type(e["msg_id"]) for c in real for e in c["history"] if e["type"] == "chat.msg"}
    assert msg_ids == {int, str}
    sizes = [len(json.dumps(c, separators=(",", ":"))) for c in real[:200]]
    assert 4000 < sum(sizes) / len(sizes) < 8000
    assert {type(a["enabled"]) for a in dataset.agents} == {bool, int}
    assert any(a["last_login"] is None for a in dataset.agents)


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
