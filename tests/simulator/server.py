"""A local Zendesk Chat REST API: both API roots, OAuth token endpoint, rate limit and faults.

Standard library only. Pages of the incremental chat export are assembled by joining the
dataset's pre-serialised chat bytes, so a 1,000-chat page costs a few milliseconds.
"""

import base64
import bisect
import gzip
import collections
import json
import math
import random
import re
import secrets
import socket
import struct
import threading
import time
import urllib.parse
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CURRENT_ROOT = "/api/v2/chat"
LEGACY_ROOT = "/api/v2"
TOKEN_PATH = "/oauth2/token"
STATS_PATH = "/_sim/stats"
MUTATE_PATH = "/_sim/mutate"  # POST ?seed=N: Dataset.mutate, for demos against the standalone process
REAL_SHAPES_PATH = "/_sim/real_shapes"  # GET: Dataset.real_shapes (what add_real_shapes added)

UNAUTHORIZED = {"error": "Unauthorized",
                "description": "The server could not verify that you are authorized to access the requested resource"}
NO_API_ACCESS = {"error": "Forbidden",
                 "description": "Your account's plan does not include REST API access. Upgrade to a plan with REST API access."}
INTEGRATED_ACCOUNT = {"error": "Forbidden",
                      "description": "This endpoint is not available for Chat accounts integrated with Zendesk Support."}
AGENT_EVENTS_UNAVAILABLE = {
    403: {"error": "Forbidden", "description": "The Agent Events API is not available for this account."},
    404: {"error": "Not Found", "description": "The requested resource 'incremental/agent_events' does not exist"},
}
# The newer incremental exports: name -> whether `fields` expands records (the agent events page says
# "Resource Expansion: Not applicable": full records whatever `fields` says).
EVENT_EXPORTS = {"conversions": True, "department_events": True, "agent_events": False}
TIME_UNITS = ("seconds", "microseconds")

EXPORT_LIMIT = 1000
AGENTS_LIMIT = 100
BANS_LIMIT = 1000
SEARCH_PAGE = 40
SEARCH_MAX_PAGES = 250
LIST_PAGE = 40
FIVE_MINUTES = 300
NEVER_EXPIRES_IN = 10 * 365 * 86400
# Hostile flags of the exports (Simulator.hostile): unsorted_pages shuffles each page's records (the
# envelope stays the API's); end_time_in_future and end_time_past_9999 put every page's end_time 30 days
# ahead of now or at the year 10000; cursor_cycle answers the request at the end of the chats export's
# second page with that page's own start as its end (A -> B -> A), CURSOR_CYCLES times, then honestly.
FUTURE_SECONDS = 30 * 86400
YEAR_10000 = 253402300800  # 10000-01-01T00:00:00Z in epoch seconds
CURSOR_CYCLES = 20


class Fault:
    """Fault kinds understood by Simulator.inject and fault_kinds."""

    RATE_LIMIT = "429"
    SERVER_ERROR = "500"
    BAD_GATEWAY = "502"
    UNAVAILABLE = "503"
    GATEWAY_TIMEOUT = "504"
    RESET = "reset"
    STALL = "stall"
    TRUNCATE = "truncate"
    INVALID_JSON = "invalid_json"
    HTML_200 = "html_200"
    ALL = ("429", "500", "502", "503", "504", "reset", "stall", "truncate", "invalid_json", "html_200")
    # stall is left out of the random mix: it costs stall_seconds of wall time per hit
    RANDOM_DEFAULT = ("429", "500", "502", "503", "504", "reset", "truncate", "invalid_json", "html_200")
    # Hostile answers, for inject() only (never in ALL or the random mix: a client must not retry them).
    # redirect: a 3xx (inject's `status`, default 302) whose Location is the same path and query on the
    # trap, another host; the trap records whatever follows it (headers and body).
    REDIRECT = "redirect"
    HOSTILE = ("redirect",)
    REDIRECT_STATUSES = (301, 302, 303, 307, 308)


class _BadRequest(Exception):
    def __init__(self, description, status=400, error="Bad Request"):
        super().__init__(description)
        self.status = status
        self.body = {"error": error, "description": description}


class _Response:
    __slots__ = ("status", "body", "content_type", "headers")

    def __init__(self, status, body, content_type="application/json; charset=UTF-8", headers=None):
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers or {}


def _json(status, obj, headers=None):
    return _Response(status, json.dumps(obj, separators=(",", ":")).encode(), headers=headers)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ZendeskChatSimulator/1.0"
    sys_version = ""

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format, *args):
        pass

    def _dispatch(self):
        try:
            self.server.owner.handle_request(self)
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _dispatch


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, owner):
        super().__init__(address, _Handler)
        self.owner = owner
        self._connections = set()
        self._connections_lock = threading.Lock()

    def process_request(self, request, client_address):
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_all(self):
        """Stop listening and drop kept-alive connections, so no stale handler answers for a stopped server."""
        self.shutdown()
        self.server_close()
        with self._connections_lock:
            connections, self._connections = self._connections, set()
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _read_body(handler):
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length > 0 else b""


def _write(handler, resp, truncate=False):
    """Send a response; a list body goes out with scatter/gather writes and is never joined."""
    chunks = resp.body if isinstance(resp.body, list) else [resp.body]
    if getattr(handler.server.owner, "gzip_bodies", False) and "gzip" in handler.headers.get("Accept-Encoding", "") and chunks:
        # As many APIs do for a client that accepts it (whether Zendesk Chat does is not documented);
        # a truncated body is then cut-off gzip.
        chunks = [gzip.compress(b"".join(chunks), compresslevel=1)]
        resp.headers = {**resp.headers, "Content-Encoding": "gzip", "Vary": "Accept-Encoding"}
    length = sum(len(c) for c in chunks)
    head = [f"HTTP/1.1 {resp.status} {_reason(resp.status)}",
            f"Content-Type: {resp.content_type}",
            f"Content-Length: {length}",
            f"Date: {handler.date_time_string()}",
            "Server: ZendeskChatSimulator/1.0"]
    for k, v in resp.headers.items():
        head.append(f"{k}: {v}")
    if truncate or handler.close_connection:
        head.append("Connection: close")
        handler.close_connection = True
    else:
        head.append("Connection: keep-alive")
    data = [("\r\n".join(head) + "\r\n\r\n").encode("latin-1")]
    if handler.command == "HEAD":
        pass
    elif truncate:
        body = b"".join(chunks)
        data.append(body[: max(1, len(body) // 2)])
    else:
        data.extend(chunks)
    _send_all(handler.connection, data)
    if truncate:
        handler.connection.shutdown(socket.SHUT_RDWR)


def _send_all(sock, chunks):
    """sendmsg in batches below IOV_MAX, resuming after partial sends."""
    chunks = [c for c in chunks if c]
    i = 0
    while i < len(chunks):
        batch = chunks[i:i + 1000]
        sent = sock.sendmsg(batch)
        for c in batch:
            if sent >= len(c):
                sent -= len(c)
                i += 1
            else:
                chunks[i] = memoryview(c)[sent:]
                break


def _reason(status):
    return BaseHTTPRequestHandler.responses.get(status, ("Unknown",))[0]


class _Trap:
    """A second server on another port that records whatever reaches it, body included (a foreign host for
    next_page and redirect tests)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._requests = []
        self._server = None
        self._thread = None
        self.port = None

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests(self):
        with self._lock:
            return list(self._requests)

    def clear_requests(self):
        with self._lock:
            self._requests.clear()

    def handle_request(self, handler):
        body = _read_body(handler)
        parsed = urllib.parse.urlsplit(handler.path)
        with self._lock:
            self._requests.append({"method": handler.command, "path": parsed.path, "raw_path": handler.path,
                                   "query": dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True)),
                                   "headers": dict(handler.headers.items()), "body": body.decode("utf-8", "replace"),
                                   "time": time.monotonic()})
        _write(handler, _json(200, {}))

    def start(self):
        self._server = _Server(("127.0.0.1", 0), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="zendesk-chat-sim-trap", daemon=True)
        self._thread.start()

    def stop(self):
        if self._server:
            self._server.close_all()
            self._thread.join(5)
            self._server = None


class Simulator:
    """The Zendesk Chat REST API over a Dataset, on 127.0.0.1.

    Serves every endpoint under both API roots (`/api/v2/chat/...` and the legacy `/api/v2/...`),
    plus `POST /oauth2/token` and the unauthenticated, unrecorded `GET /_sim/stats`, `POST /_sim/mutate`
    and `GET /_sim/real_shapes`. Records are served as `Dataset.served` gives them (set_field overrides applied).
    """

    def __init__(self, dataset, token="sim-token", rate_limit_per_minute=None, rate_limit_window=60.0,
                 integrated_account=False, api_access=True, start_id_inclusive=False, bans_limit_mode="total",
                 token_ttl=None, client_id="sim-client", client_secret="sim-secret", refresh_token="sim-refresh",
                 rotate_refresh_tokens=False, gzip_bodies=False, fault_rate=0.0, fault_kinds=Fault.RANDOM_DEFAULT, fault_seed=0, stall_seconds=5.0, port=0,
                 agent_events_available=True, agent_events_unavailable_status=403, agent_events_time_unit="seconds",
                 events_end_id=True, latency=0.0, bytes_per_second=None, refuse_concurrency=False,
                 max_page_bytes=None, oversize_fault="504"):
        """Options of the event exports (/incremental/conversions, /department_events, /agent_events):

        agent_events_available: False answers /incremental/agent_events with agent_events_unavailable_status
          (403, as for a plan-limited endpoint, or 404) -- the API is "in limited availability".
        agent_events_time_unit: "seconds" (like every export but agent_timeline) or "microseconds" (what
          the agent events page's parameter table says): the unit of its start_time and end_time.
        events_end_id: False leaves end_id out of the three event exports' envelopes (whether they send
          it is not documented; chats always do).
        start_id_inclusive applies to them as to chats.

        Network and server limits (latency and bytes_per_second are added to every API answer):
        refuse_concurrency: an API request that arrives while another is in flight gets 429 with
          Retry-After: 1 (an API, or a proxy, that serves one request at a time).
        max_page_bytes: an API answer whose body is larger is a page too big to serve in time:
          oversize_fault "504" answers 504 Gateway Timeout instead, "timeout" first waits stall_seconds
          (longer than the client's timeout, so it sees none) and then answers 504.
        """
        if bans_limit_mode not in ("total", "per_array"):
            raise ValueError("bans_limit_mode must be 'total' or 'per_array'")
        if agent_events_unavailable_status not in AGENT_EVENTS_UNAVAILABLE:
            raise ValueError("agent_events_unavailable_status must be 403 or 404")
        if agent_events_time_unit not in TIME_UNITS:
            raise ValueError(f"agent_events_time_unit must be one of {TIME_UNITS}")
        unknown = set(fault_kinds) - set(Fault.ALL)
        if unknown:
            raise ValueError(f"unknown fault kinds: {sorted(unknown)}")
        self.dataset = dataset
        self.token = token
        self.rate_limit_per_minute = rate_limit_per_minute
        self.latency = latency  # seconds added to every API answer (a real network's round trip)
        self.bytes_per_second = bytes_per_second  # and the body's size over this bandwidth, when given
        self.rate_limit_window = rate_limit_window
        if oversize_fault not in ("504", "timeout"):
            raise ValueError("oversize_fault must be '504' or 'timeout'")
        self.refuse_concurrency = refuse_concurrency
        self.max_page_bytes = max_page_bytes
        self.oversize_fault = oversize_fault
        self._in_flight = 0
        self.integrated_account = integrated_account
        self.api_access = api_access
        self.start_id_inclusive = start_id_inclusive
        self.bans_limit_mode = bans_limit_mode
        self.token_ttl = token_ttl
        self.client_id = client_id
        self.client_secret = client_secret
        self.refresh_token = refresh_token
        self.rotate_refresh_tokens = rotate_refresh_tokens  # each refresh grant replaces the refresh token
        self.gzip_bodies = gzip_bodies  # compress bodies for clients that send Accept-Encoding: gzip
        self.agent_events_available = agent_events_available
        self.agent_events_unavailable_status = agent_events_unavailable_status
        self.agent_events_time_unit = agent_events_time_unit
        self.events_end_id = events_end_id
        self._rotations = 0
        self.fault_rate = fault_rate
        self.fault_kinds = tuple(fault_kinds)
        self.stall_seconds = stall_seconds
        self.port = port
        self.hostile = set()
        self._cycle_pages = []  # cursor_cycle: (asked, (end_time, end_id)) of the chats export's first two pages
        self._cycles = 0
        self.trap = _Trap()
        self._lock = threading.Lock()
        self._requests = []
        self._faults = []          # queued: [kind, remaining, path, retry_after, status]
        self._fault_rng = random.Random(fault_seed)
        self._outage = False
        self._window = collections.deque()
        self._tokens = {}          # issued token -> expiry (monotonic) or None
        self._revoked = set()
        self._server = None
        self._thread = None
        self._routes = {
            "account": self._account,
            "routing_settings/account": self._routing_settings,
            "departments": lambda q, ctx: self._plain(self.dataset.served("departments")),
            "goals": lambda q, ctx: self._plain(self.dataset.served("goals")),
            "roles": lambda q, ctx: self._plain(self.dataset.served("roles")),
            "skills": lambda q, ctx: self._plain(self.dataset.served("skills")),
            "shortcuts": lambda q, ctx: self._plain(self.dataset.served("shortcuts")),
            "triggers": lambda q, ctx: self._plain(self.dataset.served("triggers")),
            "agents": self._agents,
            "bans": self._bans,
            "incremental/chats": self._incremental_chats,
            "incremental/agent_timeline": self._agent_timeline,
            "incremental/conversions": lambda q, ctx: self._event_export("conversions", q, ctx),
            "incremental/department_events": lambda q, ctx: self._event_export("department_events", q, ctx),
            "incremental/agent_events": lambda q, ctx: self._event_export("agent_events", q, ctx),
            "chats/search": self._chats_search,
            "chats": self._chats_list,
        }

    # ---------------------------------------------------------------- lifecycle
    def start(self):
        self.trap.start()
        self._server = _Server(("127.0.0.1", self.port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="zendesk-chat-sim", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server:
            self._server.close_all()
            self._thread.join(5)
            self._server = None
        self.trap.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def host_url(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self):
        return self.host_url + CURRENT_ROOT

    @property
    def legacy_base_url(self):
        return self.host_url + LEGACY_ROOT

    @property
    def token_url(self):
        return self.host_url + TOKEN_PATH

    # ---------------------------------------------------------------- test controls
    @property
    def requests(self):
        """A snapshot of the request records, oldest first."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self):
        with self._lock:
            self._requests.clear()

    def count(self, path):
        with self._lock:
            return sum(1 for r in self._requests if r["path"] == path)

    def inject(self, kind, times=1, path=None, retry_after=None, status=None):
        """Queue `kind` for the next `times` matching requests (path None: any API request; the token
        endpoint is path "oauth2/token"). `status` overrides the answer's status (a redirect's 3xx)."""
        if kind not in Fault.ALL + Fault.HOSTILE:
            raise ValueError(f"unknown fault kind {kind!r}")
        if kind == Fault.REDIRECT and (status or 302) not in Fault.REDIRECT_STATUSES:
            raise ValueError(f"a redirect's status must be one of {Fault.REDIRECT_STATUSES}")
        with self._lock:
            self._faults.append([kind, times, path, retry_after, status])

    def clear_faults(self):
        with self._lock:
            self._faults.clear()

    def outage(self, on=True):
        self._outage = bool(on)

    def issue_token(self, ttl="default"):
        """A new access token; expires after `ttl` seconds (default token_ttl, None: never)."""
        ttl = self.token_ttl if ttl == "default" else ttl
        token = "sim-" + secrets.token_urlsafe(18)
        with self._lock:
            self._tokens[token] = None if ttl is None else time.monotonic() + ttl
        return token

    def revoke(self, token):
        with self._lock:
            self._revoked.add(token)
            self._tokens.pop(token, None)

    def keyless_agent_id(self):
        """The agent served without "id" under hostile flag record_without_key."""
        agents = self.dataset.agents
        return agents[min(1, len(agents) - 1)]["id"] if agents else None

    def keyless_chat_id(self):
        """The chat served without "id" under hostile flag record_without_key."""
        ds = self.dataset
        return ds.chat_id_at(min(1, ds.chat_count() - 1)) if ds.chat_count() else None

    def keyless_event_id(self, name):
        """The record of event export `name` served without "id" under hostile flag record_without_key."""
        ds = self.dataset
        ids = ds.event_ids(name)
        return ids[min(1, len(ids) - 1)] if ids else None

    # ---------------------------------------------------------------- request handling
    def handle_request(self, handler):
        """One request; counts the API requests in flight (refuse_concurrency answers by that count)."""
        is_api = handler.path.startswith((CURRENT_ROOT + "/", LEGACY_ROOT + "/"))
        with self._lock:
            crowded = self._in_flight > 0
            self._in_flight += is_api
        try:
            self._handle(handler, crowded)
        finally:
            with self._lock:
                self._in_flight -= is_api

    def _handle(self, handler, crowded):
        arrived = time.monotonic()
        body = _read_body(handler)
        parsed = urllib.parse.urlsplit(handler.path)
        raw_path = parsed.path
        query = dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True))
        if raw_path == STATS_PATH:
            _write(handler, self._stats())
            return
        if raw_path == MUTATE_PATH and handler.command == "POST":
            seed = query.get("seed", "0")
            if not seed.isdigit():
                _write(handler, _json(400, {"error": "Bad Request", "description": "seed must be an integer"}))
                return
            _write(handler, _json(200, self.dataset.mutate(seed=int(seed))))
            return
        if raw_path == REAL_SHAPES_PATH:
            _write(handler, _json(200, self.dataset.real_shapes))
            return
        if raw_path.startswith(CURRENT_ROOT + "/"):
            root, path, is_api = CURRENT_ROOT, raw_path[len(CURRENT_ROOT) + 1:], True
        elif raw_path.startswith(LEGACY_ROOT + "/"):
            root, path, is_api = LEGACY_ROOT, raw_path[len(LEGACY_ROOT) + 1:], True
        else:
            root, path, is_api = None, raw_path.lstrip("/"), False
        path = path.rstrip("/")
        record = {"method": handler.command, "path": path, "raw_path": handler.path, "query": query,
                  "headers": dict(handler.headers.items()), "status": None, "time": arrived, "fault": None,
                  "peer": handler.client_address[1]}  # the client's port: one per connection it keeps alive
        with self._lock:
            self._requests.append(record)

        fault = self._take_fault(path, is_api)
        record["fault"] = fault[0] if fault else None
        kind = fault[0] if fault else None
        if kind == "reset":
            self._reset(handler)
            return
        if kind == "stall":
            time.sleep(self.stall_seconds)
        if kind in ("429", "500", "502", "503", "504", "invalid_json", "html_200"):
            resp = self._fault_response(kind, fault[3], fault[4])
        elif kind == Fault.REDIRECT:
            resp = _json(fault[4] or 302, {"error": "Moved", "description": "See Location"},
                         headers={"Location": self.trap.base_url + handler.path})
        elif crowded and self.refuse_concurrency and is_api:
            resp = _json(429, {"error": "Too Many Requests", "description": "One request at a time"},
                         headers={"Retry-After": "1"})
        elif self._outage and is_api:
            resp = _json(503, {"error": "Service Unavailable", "description": "The service is temporarily unavailable."})
        elif raw_path == TOKEN_PATH:
            resp = self._oauth(handler, body)
        elif not is_api:
            resp = _json(404, {"error": "Not Found", "description": f"No route for {raw_path}"})
        else:
            resp = self._api(handler, root, path, query)
        if is_api and self.max_page_bytes and resp.status == 200 and self._size(resp) > self.max_page_bytes:
            if self.oversize_fault == "timeout":
                time.sleep(self.stall_seconds)
            resp = _json(504, {"error": "Gateway Timeout", "description": "The upstream took too long"})
            record["fault"] = "oversize"
        record["status"] = resp.status
        if is_api and (self.latency or self.bytes_per_second):
            # A real server's time: a round trip, plus the body at the network's speed.
            size = self._size(resp)
            time.sleep(self.latency + (size / self.bytes_per_second if self.bytes_per_second else 0.0))
        _write(handler, resp, truncate=(kind == "truncate"))

    @staticmethod
    def _size(resp):
        return sum(len(c) for c in resp.body) if isinstance(resp.body, list) else len(resp.body)

    def _take_fault(self, path, is_api):
        """The queued fault for this request if one matches, else maybe a random one (API requests only)."""
        with self._lock:
            for entry in self._faults:
                kind, remaining, fpath, retry_after, status = entry
                if fpath is None and not is_api:
                    continue
                if fpath is not None and fpath.strip("/") != path:
                    continue
                entry[1] -= 1
                if entry[1] <= 0:
                    self._faults.remove(entry)
                return kind, remaining, fpath, retry_after, status
            if is_api and self.fault_rate and self.fault_kinds and self._fault_rng.random() < self.fault_rate:
                return self._fault_rng.choice(self.fault_kinds), 1, None, None, None
        return None

    @staticmethod
    def _reset(handler):
        handler.close_connection = True
        try:
            handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            handler.connection.close()
        except OSError:
            pass

    @staticmethod
    def _fault_response(kind, retry_after, status):
        if kind == "429":
            seconds = 1 if retry_after is None else retry_after
            return _json(status or 429, {"error": "Too Many Requests", "description": "Rate limit exceeded"},
                         headers={"Retry-After": str(int(math.ceil(seconds)))})
        if kind == "invalid_json":
            return _Response(status or 200, b'{"chats": [{"id": "2310.1041.QHgVx6SOrRuSx", "type": "chat", "hist')
        if kind == "html_200":
            page = (b"<!DOCTYPE html><html><head><title>Service Unavailable</title></head><body>"
                    b"<h1>Oops! Something went wrong</h1><p>Please try again in a few minutes.</p></body></html>")
            return _Response(status or 200, page, content_type="text/html; charset=UTF-8")
        code = int(kind)
        return _json(status or code, {"error": _reason(code), "description": "Simulated upstream failure"})

    def _api(self, handler, root, path, query):
        if handler.command not in ("GET", "HEAD"):
            return _json(405, {"error": "Method Not Allowed", "description": f"{handler.command} is not supported here"})
        if not self._authorized(handler.headers.get("Authorization", "")):
            return _json(401, UNAUTHORIZED)
        if self.rate_limit_per_minute:
            wait = self._admit()
            if wait is not None:
                return _json(429, {"error": "Too Many Requests", "description": "Rate limit exceeded"},
                             headers={"Retry-After": str(wait)})
        if not self.api_access:
            return _json(403, NO_API_ACCESS)
        if "echo_authorization" in self.hostile and not path.startswith("incremental/"):
            # Hostile flag (not on the exports): a proxy or API error that echoes the request's headers.
            return _json(400, {"error": "Bad Request", "description": "Rejected request with headers: Authorization: "
                               + handler.headers.get("Authorization", "")})
        route = self._routes.get(path)
        chat_id = None
        if route is None and path.startswith("chats/") and path.count("/") == 1:
            route, chat_id = self._chat_by_id, path[len("chats/"):]
        if route is None:
            return _json(404, {"error": "Not Found", "description": f"The requested resource {path!r} does not exist"})
        host = handler.headers.get("Host") or f"127.0.0.1:{self.port}"
        if "next_page_to_trap" in self.hostile:
            host = f"127.0.0.1:{self.trap.port}"
        ctx = {"root": f"http://{host}{root}", "chat_id": chat_id}
        try:
            return route(query, ctx)
        except _BadRequest as exc:
            return _json(exc.status, exc.body)

    def _authorized(self, header):
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        token = token.strip()
        with self._lock:
            if token in self._revoked:
                return False
            if token == self.token:
                return True
            if token not in self._tokens:
                return False
            expiry = self._tokens[token]
            return expiry is None or time.monotonic() < expiry

    def _admit(self):
        """Sliding-window rate limit; None when admitted, else whole seconds until a slot frees."""
        now = time.monotonic()
        with self._lock:
            window = self._window
            while window and window[0] <= now - self.rate_limit_window:
                window.popleft()
            if len(window) >= self.rate_limit_per_minute:
                return max(1, int(math.ceil(window[0] + self.rate_limit_window - now)))
            window.append(now)
        return None

    def _stats(self):
        with self._lock:
            counts = collections.Counter(r["path"] for r in self._requests)
            total = len(self._requests)
        return _json(200, {"requests_by_path": dict(counts), "total": total})

    # ---------------------------------------------------------------- oauth
    def _oauth(self, handler, body):
        if handler.command != "POST":
            return _json(405, {"error": "Method Not Allowed", "description": "Use POST"})
        form = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        auth = handler.headers.get("Authorization", "")
        if auth.lower().startswith("basic ") and not client_id:
            try:
                client_id, _, client_secret = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                pass
        grant = form.get("grant_type")
        if grant not in ("refresh_token", "client_credentials"):
            return _json(400, {"error": "unsupported_grant_type", "error_description": f"grant_type {grant!r} is not supported"})
        if client_id != self.client_id or client_secret != self.client_secret:
            return _json(401, {"error": "invalid_client", "error_description": "Client authentication failed"})
        if grant == "refresh_token" and form.get("refresh_token") != self.refresh_token:
            return _json(400, {"error": "invalid_grant", "error_description": "The refresh token is invalid or revoked"})
        token = self.issue_token()
        if grant == "refresh_token" and self.rotate_refresh_tokens:
            with self._lock:
                self._rotations += 1
                self.refresh_token = f"{self.refresh_token.split('~')[0]}~{self._rotations}"
        return _json(200, {"access_token": token, "token_type": "Bearer",
                           "expires_in": int(self.token_ttl) if self.token_ttl is not None else NEVER_EXPIRES_IN,
                           "refresh_token": self.refresh_token, "scope": "read"})

    # ---------------------------------------------------------------- endpoints
    @staticmethod
    def _plain(obj):
        return _json(200, obj)

    def _account(self, query, ctx):
        if self.integrated_account:
            return _json(403, INTEGRATED_ACCOUNT)
        return _json(200, self.dataset.served("account"))

    def _routing_settings(self, query, ctx):
        return _json(200, {"data": self.dataset.served("routing_settings")})

    def _agents(self, query, ctx):
        limit = _int_param(query, "limit", AGENTS_LIMIT, 1, AGENTS_LIMIT)
        since_id = _int_param(query, "since_id", None)
        max_id = _int_param(query, "max_id", None)
        with self.dataset.lock:
            agents = list(self.dataset.agents)
            page = _id_window(agents, since_id, max_id, limit)
            served = self.dataset.patch_records("agents", page)
        if "record_without_key" in self.hostile:
            keyless = self.keyless_agent_id()
            served = [({k: v for k, v in s.items() if k != "id"} if a["id"] == keyless and isinstance(s, dict) else s)
                      for a, s in zip(page, served)]
        page = served
        if "agents_object" in self.hostile:
            return _json(200, {"agents": page, "count": len(page)})
        return _json(200, page)

    def _bans(self, query, ctx):
        limit = _int_param(query, "limit", 100, 1, BANS_LIMIT)
        since_id = _int_param(query, "since_id", None)
        max_id = _int_param(query, "max_id", None)
        ds = self.dataset
        with ds.lock:
            ip = list(ds.bans["ip_address"])
            visitor = list(ds.bans["visitor"])
            if self.bans_limit_mode == "per_array":
                return _json(200, {"ip_address": ds.patch_records("bans", _id_window(ip, since_id, max_id, limit)),
                                   "visitor": ds.patch_records("bans", _id_window(visitor, since_id, max_id, limit))})
            union = sorted(ip + visitor, key=lambda b: b["id"])
            page = _id_window(union, since_id, max_id, limit)
            # a ban goes out in the array it is stored in, whatever its "type" says (real bans carry "I" or none)
            in_ip = {id(b) for b in ip}
            return _json(200, {"ip_address": ds.patch_records("bans", [b for b in page if id(b) in in_ip]),
                               "visitor": ds.patch_records("bans", [b for b in page if id(b) not in in_ip])})

    def _incremental_chats(self, query, ctx):
        if "start_time" not in query:
            raise _BadRequest("start_time is required")
        start_time = _int_param(query, "start_time", None)
        if start_time > time.time() - FIVE_MINUTES:
            raise _BadRequest("start_time must be more than 5 minutes in the past")
        limit = _int_param(query, "limit", EXPORT_LIMIT, 1, EXPORT_LIMIT)
        start_id = query.get("start_id") or None
        fields = query.get("fields")
        selected = _parse_fields(fields, "chats")
        ds = self.dataset
        keyless = self.keyless_chat_id() if "record_without_key" in self.hostile else None
        with ds.lock:
            keys = ds.export_slice(start_time, start_id, self.start_id_inclusive, limit)
            if selected == "*":
                items = [ds.blob(cid) for _, cid in keys]
            elif selected is None:
                patched = ds.overridden("chats")
                items = [b'{"id":' + json.dumps(cid).encode() + b"}" if cid not in patched
                         else _ids_only(json.loads(ds.blob(cid))) for _, cid in keys]
            else:
                items = [_dumps(_select(json.loads(ds.blob(cid)), selected)) for _, cid in keys]
        if keyless is not None:
            for i, (_, cid) in enumerate(keys):
                if cid == keyless:
                    items[i] = _dumps(_select(json.loads(items[i]), None, drop="id"))
        end_time = keys[-1][0] if keys else start_time
        end_id = keys[-1][1] if keys else start_id
        if keys:
            items = self._hostile_order(items, (start_time, start_id))
            end_time, end_id = self._hostile_envelope("chats", (start_time, start_id), (end_time, end_id), 1,
                                                      len(keys) == limit)
        next_page = _next_page(ctx, "chats", fields, limit, end_time, end_id)
        tail = {"count": len(keys), "end_time": end_time, "end_id": end_id, "next_page": next_page}
        return _Response(200, _json_array_body("chats", items, tail))

    def _agent_timeline(self, query, ctx):
        if "start_time" not in query:
            raise _BadRequest("start_time is required")
        start_time = _int_param(query, "start_time", None)
        limit = _int_param(query, "limit", EXPORT_LIMIT, 1, EXPORT_LIMIT)
        fields = query.get("fields")
        selected = _parse_fields(fields, "agent_timeline")
        with self.dataset.lock:
            keys, blobs = self.dataset.timeline_slice(start_time, limit)
        if selected == "*":
            items = blobs
        else:
            keep = selected or ("agent_id", "start_time")
            items = [_dumps(_select(json.loads(b), keep)) for b in blobs]
        end_time = keys[-1][0] if keys else start_time
        if keys:
            items = self._hostile_order(items, (start_time, None))
            end_time, _ = self._hostile_envelope("agent_timeline", (start_time, None), (end_time, None), 1_000_000)
        next_page = _next_page(ctx, "agent_timeline", fields, limit, end_time)
        tail = {"count": len(keys), "end_time": end_time, "next_page": next_page}
        return _Response(200, _json_array_body("agent_timeline", items, tail))

    def _event_export(self, name, query, ctx):
        """/incremental/<name> for the event exports: the chats export's envelope and paging rules."""
        if name == "agent_events" and not self.agent_events_available:
            status = self.agent_events_unavailable_status
            return _json(status, AGENT_EVENTS_UNAVAILABLE[status])
        if "start_time" not in query:
            raise _BadRequest("start_time is required")
        start_time = _int_param(query, "start_time", None)
        micro = name == "agent_events" and self.agent_events_time_unit == "microseconds"
        start_second = start_time // 1_000_000 if micro else start_time
        if start_second > time.time() - FIVE_MINUTES:
            raise _BadRequest("start_time must be more than 5 minutes in the past")
        limit = _int_param(query, "limit", EXPORT_LIMIT, 1, EXPORT_LIMIT)
        start_id = query.get("start_id") or None
        fields = query.get("fields")
        selected = _parse_fields(fields, name) if EVENT_EXPORTS[name] else "*"
        ds = self.dataset
        keyless = self.keyless_event_id(name) if "record_without_key" in self.hostile else None
        with ds.lock:
            rows = ds.event_slice(name, start_second, start_id, self.start_id_inclusive, limit)
            if selected == "*":
                items = [blob for _, _, _, blob in rows]
            elif selected is None:
                patched = ds.overridden(name)
                items = [b'{"id":' + json.dumps(rid).encode() + b"}" if rid not in patched
                         else _ids_only(json.loads(blob)) for _, rid, _, blob in rows]
            else:
                items = [_dumps(_select(json.loads(blob), selected)) for _, _, _, blob in rows]
        if keyless is not None:
            for i, (_, rid, _, _) in enumerate(rows):
                if rid == keyless:
                    items[i] = _dumps(_select(json.loads(items[i]), None, drop="id"))
        if rows:
            end_time = rows[-1][2] if micro else rows[-1][0]
            end_id = rows[-1][1]
            items = self._hostile_order(items, (start_time, start_id))
            end_time, end_id = self._hostile_envelope(name, (start_time, start_id), (end_time, end_id),
                                                      1_000_000 if micro else 1)
        else:
            end_time, end_id = start_time, start_id
        next_page = _next_page(ctx, name, fields, limit, end_time, end_id)
        tail = {"count": len(rows), "end_time": end_time}
        if self.events_end_id:
            tail["end_id"] = end_id
        tail["next_page"] = next_page
        return _Response(200, _json_array_body(name, items, tail))

    def _hostile_order(self, items, asked):
        """A page's records in the API's order, or shuffled under hostile flag unsorted_pages (the same for
        the same request)."""
        if "unsorted_pages" not in self.hostile:
            return items
        items = list(items)
        random.Random(repr(asked)).shuffle(items)
        return items

    def _hostile_envelope(self, name, asked, end, per_second, full=False):
        """A non-empty page's (end_time, end_id) as the hostile flags have it (see FUTURE_SECONDS);
        `per_second`: the export's time unit, 1 or 1_000_000; `full`: the page holds `limit` records (the
        pages cursor_cycle counts)."""
        if "end_time_in_future" in self.hostile:
            end = ((int(time.time()) + FUTURE_SECONDS) * per_second, end[1])
        if "end_time_past_9999" in self.hostile:
            end = (YEAR_10000 * per_second, end[1])
        if "cursor_cycle" in self.hostile and name == "chats" and full:
            with self._lock:
                served = self._cycle_pages
                if len(served) < 2:
                    if asked not in [a for a, _ in served]:
                        served.append((asked, end))
                elif asked == served[1][1] and self._cycles < CURSOR_CYCLES:
                    self._cycles += 1
                    end = served[1][0]
        return end

    def _chats_search(self, query, ctx):
        q = query.get("q")
        if not q:
            raise _BadRequest("q is required")
        kind, field, low, high, low_inc, high_inc = _parse_search(q)
        page = _int_param(query, "page", 1, 1, None)
        if page > SEARCH_MAX_PAGES:
            raise _BadRequest("Search results are limited to 10000; narrow the query")
        ds = self.dataset
        with ds.lock:
            ids = ds.search(kind, field, low, high, low_inc, high_inc)
            chunk = ids[(page - 1) * SEARCH_PAGE: page * SEARCH_PAGE]
            chats = [(cid, json.loads(ds.blob(cid))) for cid in chunk]
        results = []
        for cid, c in chats:
            c = c if isinstance(c, dict) else {}
            results.append({"id": c.get("id"), "type": c.get("type"), "timestamp": c.get("timestamp"),
                            "preview": _preview(c), "url": f"{ctx['root']}/chats/{cid}"})
        more = len(ids) > page * SEARCH_PAGE and page < SEARCH_MAX_PAGES
        next_url = None
        if more:
            next_url = f"{ctx['root']}/chats/search?{urllib.parse.urlencode({'q': q, 'page': page + 1})}"
        return _json(200, {"results": results, "count": len(ids), "next_url": next_url})

    def _chats_list(self, query, ctx):
        ds = self.dataset
        if "ids" in query:
            wanted = [i for i in query["ids"].split(",") if i]
            with ds.lock:
                docs = {cid: json.loads(ds.blob(cid)) for cid in wanted
                        if ds.has_chat(cid) and not ds.is_deleted(cid)}
            return _json(200, {"docs": docs, "count": len(docs)})
        cursor = query.get("cursor")
        after = urllib.parse.unquote(cursor) if cursor else None
        with ds.lock:
            ids = ds.sorted_live_ids()
            i = bisect.bisect_right(ids, after) if after is not None else 0
            chunk = ids[i:i + LIST_PAGE]
            body_items = [ds.blob(cid) for cid in chunk]
            total = len(ids)
            more = i + LIST_PAGE < len(ids)
        next_url = f"{ctx['root']}/chats?{urllib.parse.urlencode({'cursor': chunk[-1]})}" if more and chunk else None
        tail = {"count": total, "next_url": next_url}
        return _Response(200, _json_array_body("chats", body_items, tail))

    def _chat_by_id(self, query, ctx):
        ds = self.dataset
        cid = urllib.parse.unquote(ctx["chat_id"])
        with ds.lock:
            if not ds.has_chat(cid) or ds.is_deleted(cid):
                return _json(404, {"error": "Not Found", "description": f"Chat {cid} does not exist"})
            return _Response(200, ds.blob(cid))


def _next_page(ctx, name, fields, limit, end_time, end_id=None):
    """An export's next_page: the same query from the page's end (never null, as the API sends it)."""
    params = {"fields": fields} if fields is not None else {}
    params.update(limit=limit, start_time=end_time)
    if end_id is not None:
        params["start_id"] = end_id
    return f"{ctx['root']}/incremental/{name}?{urllib.parse.urlencode(params)}"


def _json_array_body(name, items, tail):
    """Chunks of `{"<name>": [items...], **tail}` with the items' bytes untouched."""
    head, end = b'{"' + name.encode() + b'":[', b"]," + _dumps(tail)[1:]
    if not items:
        return [head, end]
    chunks = [None] * (2 * len(items) + 1)
    chunks[0], chunks[-1] = head, end
    chunks[1:-1:2] = items
    chunks[2:-1:2] = [b","] * (len(items) - 1)
    return chunks


def _dumps(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


def _int_param(query, name, default, low=None, high=None):
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        try:
            value = int(float(raw))
        except ValueError:
            raise _BadRequest(f"{name} must be an integer") from None
    if (low is not None and value < low) or (high is not None and value > high):
        raise _BadRequest(f"{name} must be between {low} and {high}" if high else f"{name} must be at least {low}")
    return value


def _id_window(items, since_id, max_id, limit):
    """Items (ascending id) with since_id <= id <= max_id; walks back from max_id when only max_id is given."""
    selected = [x for x in items if (since_id is None or x["id"] >= since_id) and (max_id is None or x["id"] <= max_id)]
    if max_id is not None and since_id is None:
        return selected[-limit:]
    return selected[:limit]


def _parse_fields(fields, name):
    """None: ids only; "*": everything; else the set of named top-level fields."""
    if not fields:
        return None
    m = re.fullmatch(rf"{re.escape(name)}\((.*)\)", fields.strip())
    if not m:
        raise _BadRequest(f"fields must look like {name}(*) or {name}(field,field)")
    inner = m.group(1).strip()
    if inner == "*":
        return "*"
    return {f.strip() for f in inner.split(",") if f.strip()}


_SEARCH_RE = re.compile(r"^\s*type:(\w+)\s+AND\s+(\w+):([\[{])\s*(\S+)\s+TO\s+(\S+)\s*([\]}])\s*$")


def _parse_search(q):
    m = _SEARCH_RE.match(q)
    if not m:
        raise _BadRequest("Unsupported search query; expected 'type:<type> AND <field>:[A TO B]'")
    kind, field, lo_b, lo, hi, hi_b = m.groups()
    if field not in ("timestamp", "end_timestamp"):
        raise _BadRequest(f"Unsupported search field {field}")
    return kind, field, _search_time(lo), _search_time(hi), lo_b == "[", hi_b == "]"


def _search_time(value):
    if value == "*":
        return None
    if re.fullmatch(r"\d+", value):
        return int(value)
    text = value.replace("Z", "+00:00") if value.endswith("Z") else value
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise _BadRequest(f"Cannot parse date {value}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp())


def _preview(chat):
    if chat.get("type") == "offline_msg":
        message = chat.get("message") or ""
        return message[:100] if isinstance(message, str) else ""
    history = chat.get("history")
    for ev in history if isinstance(history, list) else []:
        if isinstance(ev, dict) and ev.get("type") == "chat.msg":
            msg = ev.get("msg") or ""
            return msg[:100] if isinstance(msg, str) else ""
    return ""


def _select(record, keep, drop=None):
    """The fields of `record` named in `keep` (all when None) minus `drop`; a record set_field made a non-object stays as is."""
    if not isinstance(record, dict):
        return record
    return {k: v for k, v in record.items() if (keep is None or k in keep) and k != drop}


def _ids_only(record):
    """The ids-only export item of a chat whose served form set_field changed."""
    return _dumps({"id": record["id"]} if isinstance(record, dict) and "id" in record else {})
