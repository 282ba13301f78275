"""The one HTTP client: session, timeouts, budget, one retry loop, error mapping. Only this module sleeps.
The token itself is auth.Authenticator's; the error types are errors.py's; a request's deadline is kept by
watch.py, its body read with a cap by body.py."""
import collections
import contextlib
import datetime
import email.utils
import logging
import socket
import ssl
import threading
import time
import urllib.parse
import zlib

import backoff
import requests
import urllib3
import singer
from singer import metrics

from tap_zendesk_chat import fastjson
from tap_zendesk_chat.auth import PREREQUISITES, Authenticator
from tap_zendesk_chat.body import PAGE_LIMIT, SMALL_LIMIT, Answer, BodyTooLargeError, read_body
from tap_zendesk_chat.errors import (ApiError, AuthError, EndpointError, ForbiddenError, Interrupted,
                                     UnexpectedResponseError, UnreachableError, api_message)
from tap_zendesk_chat.watch import WatchedAdapter, Watcher

LOGGER = singer.get_logger()
RETRYABLE_STATUS = frozenset({500, 502, 503, 504})
WINDOW_MARGIN = 0.25  # seconds: a request reaches the API a little after it is counted here, more so on a new connection
MAX_BACKOFF = 60.0  # longest wait between retries of our own choosing (Retry-After may ask for more)
TOKEN_ENDPOINT = "OAuth token endpoint"  # how the token endpoint is named in logs and counters
CONNECT_TIMEOUT = 5.0  # seconds to accept a connection (at most request_timeout); a healthy host takes far less
START_TRIES = 2  # tries to connect to a host not yet heard from in this run, before saying why it cannot be
API_SETTING = "subdomain (acme for acme.zendesk.com) or base_url"  # what sets the API's host, for advice


class _Retry(Exception):
    def __init__(self, reason, wait=None, rate_limited=False, too_big=False, unusable=False, unreachable=None):
        super().__init__(reason)
        self.reason = reason
        self.wait = wait
        self.rate_limited = rate_limited  # a 429
        self.too_big = too_big  # a timeout, 502 or 504: what a page too big to serve in time gets
        self.unusable = unusable  # a 200 whose body is not JSON: the endpoint's failure, if it persists
        self.unreachable = unreachable  # why a host that has never answered cannot be connected to


def _rate_limited(answer):
    """A 429's retry; a Retry-After date is read against the server's clock (its Date), not ours."""
    wait = parse_retry_after(answer.headers.get("Retry-After"), _server_time(answer.headers.get("Date")))
    return _Retry("rate limited (429)" + (f", Retry-After {wait:g} s" if wait is not None else ""), wait,
                  rate_limited=True)


def _server_time(date):
    """The epoch time of a Date header; None when absent or unreadable."""
    try:
        when = email.utils.parsedate_to_datetime(date)
    except (TypeError, ValueError):
        return None
    return (when if when.tzinfo else when.replace(tzinfo=datetime.timezone.utc)).timestamp()


def _origin(url):
    """scheme://host[:port] of a URL: no user, no path, no query."""
    parts = urllib.parse.urlsplit(url)
    host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


def _connect_failure(exc, timeout):
    """Why no connection could be made (kind, what happened), from requests' exception; None when the failure
    came once connected (a reset, a body cut short)."""
    if isinstance(exc, requests.exceptions.ProxyError):
        return "proxy", "the proxy could not be reached, or would not connect to it"
    if isinstance(exc, requests.ConnectTimeout):
        return "timeout", f"it did not accept a connection within {timeout:g} s"
    causes, seen = [], exc
    while seen is not None and len(causes) < 10:
        causes.append(seen)
        seen = seen.reason if isinstance(seen, urllib3.exceptions.MaxRetryError) else (
            seen.__cause__ or seen.__context__)
    for cause in causes:
        if isinstance(cause, socket.gaierror):
            return "dns", f"its host name was not found (DNS: {cause.strerror or cause})"
        if isinstance(cause, ConnectionRefusedError):
            return "refused", "it refused the connection (nothing listens on that port)"
        if isinstance(cause, ssl.SSLError):
            return "tls", f"the TLS handshake failed ({getattr(cause, 'reason', None) or type(cause).__name__})"
    if isinstance(exc, requests.exceptions.SSLError):
        return "tls", "the TLS handshake failed"
    if any(isinstance(c, urllib3.exceptions.NewConnectionError) for c in causes):
        error = next((c for c in causes if isinstance(c, OSError) and c.strerror), None)
        return "network", f"no connection could be made ({error.strerror if error else 'unknown cause'})"
    return None


_ADVICE = {
    "dns": "Check {setting}, and the machine's DNS and network settings.",
    "refused": "Check {setting} (the host and the port), and any proxy in between.",
    "tls": "Check {setting} (https only to a host that serves it), and any proxy or firewall that intercepts "
           "TLS (its certificate authority then goes in REQUESTS_CA_BUNDLE).",
    "timeout": "Check {setting}, and the network: a firewall, or a proxy this machine must use (HTTPS_PROXY).",
    "proxy": "Check the proxy settings (HTTPS_PROXY, HTTP_PROXY, NO_PROXY).",
    "network": "Check {setting}, and the machine's network and proxy settings.",
}


class _Gate:
    """At most `limit` requests at once. A 429 answered to a request sent while others were in flight
    narrows it below that crowd (an API that refuses concurrent requests then runs one at a time after
    a few 429s); a minute without one widens it again by one, up to the setting."""

    QUIET = 60.0

    def __init__(self, limit):
        self.most = self.limit = limit
        self.in_flight = 0  # holding a slot: sending, or waiting for the budget or a Retry-After
        self.sending = 0
        self._narrowed_at = None
        self._changed = threading.Condition()

    @contextlib.contextmanager
    def slot(self):
        """Held from before the budget's wait until the answer."""
        with self._changed:
            self._widen()
            while self.in_flight >= self.limit:
                self._changed.wait()
            self.in_flight += 1
        try:
            yield
        finally:
            with self._changed:
                self.in_flight -= 1
                self._changed.notify_all()

    @contextlib.contextmanager
    def send(self):
        """Held while a request is on the wire; gives how many were, this one included, when it was sent."""
        with self._changed:
            self.sending += 1
            crowd = self.sending
        try:
            yield crowd
        finally:
            with self._changed:
                self.sending -= 1

    def narrow(self, crowd):
        """A 429 to a request sent among `crowd`; the new limit when it narrowed."""
        with self._changed:
            if crowd <= 1 or self.limit < crowd:
                return None
            self.limit, self._narrowed_at = crowd - 1, time.monotonic()
            return self.limit

    def _widen(self):
        if self._narrowed_at is not None and time.monotonic() - self._narrowed_at >= self.QUIET:
            self.limit += 1
            self._narrowed_at = time.monotonic() if self.limit < self.most else None
            LOGGER.info("No 429 for a minute: up to %d requests at once", self.limit)


def parse_retry_after(value, now=None):
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); None if absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000" means UTC with no zone given; never the machine's local time
        when = when.replace(tzinfo=datetime.timezone.utc)
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


class _Untimed:
    """Where the metrics setting asks for no METRIC line a request: a timer that logs nothing."""

    def __init__(self):
        self.tags = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class Client:
    """Talks to the API root of the config. Every URL is built from that root: the bearer token goes to no
    other host (next_page links are never followed, redirects are not followed).

    Threads may share it (an export's time slices): the request budget, a Retry-After and the token are
    the run's, keep-alive sessions are pooled (one per request at once), and at most
    max_parallel_requests requests are in flight at once (fewer after 429s to concurrent requests)."""

    def __init__(self, config, stop_event=None, save_refresh_token=None):
        self.config = config
        self.auth = Authenticator(config, save_refresh_token)
        self.root = config.api_root
        self._stop = stop_event or threading.Event()
        self._sent = collections.deque()
        self._resume_at = 0.0  # no request before this (monotonic): a Retry-After holds every thread
        self._exchanges = threading.local()  # per thread: how long its last answer took to come (answer_seconds)
        self._budget_told_at = None  # when the log last said the request budget holds the run
        self._lock = threading.Lock()
        self._token_lock = threading.Lock()
        self._gate = _Gate(config.max_parallel_requests)
        self._idle = []  # sessions no request is using
        self._watcher = Watcher(self._stop)
        # urllib3 logs headers it cannot parse (a hostile or cut answer) with a traceback; the retry says enough
        logging.getLogger("urllib3.connection").setLevel(logging.ERROR)
        self._answered = set()  # origins that sent an answer (any status) in this run
        self._unusable_streak = False  # an endpoint failed on unusable 200s, and no usable answer came since
        self.requests_by_endpoint = collections.Counter()
        self.retries_by_endpoint = collections.Counter()

    @contextlib.contextmanager
    def _session(self):
        """A keep-alive session of the run's, for one request: one per request at once, reused by whichever
        thread sends next (a requests.Session is not for two threads at a time)."""
        with self._lock:
            session = self._idle.pop() if self._idle else None
        if session is None:
            session = requests.Session()
            # gzip only: the one encoding body.py decompresses with a cap
            session.headers.update({"User-Agent": self.config.user_agent, "Accept": "application/json",
                                    "Accept-Encoding": "gzip"})
            adapter = WatchedAdapter()
            session.mount("https://", adapter)
            session.mount("http://", adapter)
        try:
            yield session
        finally:
            with self._lock:
                self._idle.append(session)

    def close(self):
        self._watcher.close()
        with self._lock:
            sessions, self._idle = self._idle, []
        for session in sessions:
            session.close()

    # -- public ---------------------------------------------------------------------------------
    def get(self, path, params=None, decode=fastjson.loads, page_size=None):
        """GET a path under the API root and return the body as `decode(bytes)` gives it.

        `decode` raises ValueError for a body that is not JSON; that is retried like a cut-off body.
        `page_size` (a PageSize): params["limit"] is its size at each try, smaller after timeouts and
        502/504s; on return, params hold the limit the answer was given for."""
        return self._request(path, params, decode, page_size)

    def sleep(self, seconds):
        """Wait, but wake at once (raising Interrupted) when a stop was asked for."""
        if seconds > 0 and self._stop.wait(seconds):
            raise Interrupted()
        if self._stop.is_set():
            raise Interrupted()

    # -- internals ------------------------------------------------------------------------------
    def _wait_for_budget(self):
        """Until the run may send: past any Retry-After, and within the budget of the last minute."""
        window, budget = 60.0 + WINDOW_MARGIN, self.config.max_requests_per_minute
        while True:
            with self._lock:
                now = time.monotonic()
                while self._sent and self._sent[0] <= now - window:
                    self._sent.popleft()
                wait = self._resume_at - now
                if wait <= 0 and len(self._sent) >= budget:
                    wait = self._sent[0] + window - now
                    # One line for the run's threads, again at most once a minute while the budget sets the pace.
                    if self._budget_told_at is None or now - self._budget_told_at >= 60:
                        self._budget_told_at = now
                        LOGGER.info("Request budget of %d a minute reached: the next request waits %.1f s, and "
                                    "requests go at the budget's pace from now (this line at most once a minute)",
                                    budget, wait)
                if wait <= 0:
                    self._sent.append(now)
                    return
            self.sleep(wait)

    def _hold_all(self, seconds):
        """Nobody sends for `seconds` (the API's Retry-After holds every thread of the run). True when this
        starts the hold or makes it a second or more longer; False for a 429 inside a hold already under way."""
        with self._lock:
            now = time.monotonic()
            until = now + seconds
            new = self._resume_at <= now or until >= self._resume_at + 1.0
            self._resume_at = max(self._resume_at, until)
            return new

    def _ensure_token(self):
        if self.auth.token is None:
            with self._token_lock:
                if self.auth.token is None:
                    self.auth.obtain(self._post_token)

    def _renew_token(self, refused):
        """A new token, unless another thread already replaced the one that was refused."""
        with self._token_lock:
            if self.auth.token == refused:
                self.auth.obtain(self._post_token)

    def _post_token(self, url, data):
        """The token endpoint, through the same retry loop as the API (its failures are AuthErrors)."""
        def attempt():
            with self._lock:
                self.requests_by_endpoint[TOKEN_ENDPOINT] += 1
            answer = self._exchange(TOKEN_ENDPOINT, "POST", url, SMALL_LIMIT, "token_url", data=data)
            if answer.status_code == 429:
                raise _rate_limited(answer)
            if answer.status_code in RETRYABLE_STATUS:
                raise _Retry(f"HTTP {answer.status_code}")
            return answer
        try:
            return self._retrying(TOKEN_ENDPOINT, attempt)
        except ApiError as exc:
            reason = str(exc).removeprefix(f"{TOKEN_ENDPOINT}: ")
            raise AuthError(f"Could not reach the OAuth token endpoint {url}: {reason}") from None

    def _request(self, endpoint, params, decode, page_size=None):
        url = f"{self.root}/{endpoint}"
        self._ensure_token()

        def attempt():
            if page_size is not None:
                params["limit"] = page_size.current
            return self._send_once(endpoint, url, params, decode)
        refused = self.auth.token
        try:
            body = self._retrying(endpoint, attempt, page_size)
        except AuthError:
            if not self.auth.can_renew:
                raise
            LOGGER.info("%s: the access token was refused; obtaining a new one", endpoint)
            self._renew_token(refused)
            body = self._retrying(endpoint, attempt, page_size)
        if page_size is not None:
            grown = page_size.succeeded()
            if grown is not None:
                LOGGER.info("%s: answers come again; asking for %d records a page", endpoint, grown)
        return body

    def _retrying(self, endpoint, attempt, page_size=None):
        """The one retry loop: the request budget before each try, then `attempt()` until it returns; a
        _Retry waits (Retry-After when the API gave one, for every thread, else backoff) and counts, up
        to max_retries. A 429 to a request sent among others narrows how many go at once; a page that
        keeps timing out or answering 502/504 is asked for again smaller (`page_size`), at once, its
        tries counted afresh (the halving has a floor, so this ends)."""
        delays = backoff.expo(base=2, factor=1, max_value=min(MAX_BACKOFF, self.config.max_retry_wait))
        next(delays)  # backoff's generators start with a None priming value
        attempts = 0
        while True:
            if self._stop.is_set():
                raise Interrupted()
            with self._gate.slot():
                self._wait_for_budget()
                with self._gate.send() as crowd:
                    try:
                        return attempt()
                    except _Retry as caught:
                        retry = caught
            with self._lock:
                self.retries_by_endpoint[endpoint] += 1
            if retry.rate_limited:
                narrowed = self._gate.narrow(crowd)
                if narrowed is not None:
                    LOGGER.warning("%s: the API refused a request sent with %d others in flight (429); %d at once "
                                   "from now", endpoint, crowd - 1, narrowed)
            before = page_size.current if page_size is not None else None
            smaller = page_size.failed() if page_size is not None and retry.too_big else None
            if smaller is not None:
                LOGGER.warning("%s: %s again; asking for %d records a page instead of %d", endpoint, retry.reason,
                               smaller, before)
                attempts = 0
                continue
            attempts += 1
            if retry.unreachable is not None and attempts >= min(START_TRIES, self.config.max_retries + 1):
                raise UnreachableError(f"{endpoint}: {retry.unreachable}") from None
            if attempts > self.config.max_retries:
                raise self._given_up(endpoint, attempts, retry) from None
            wait = retry.wait if retry.wait is not None else next(delays)
            if wait > self.config.max_retry_wait:
                LOGGER.warning("%s: the API asked to wait %.0f s; capped to max_retry_wait=%.0f s",
                               endpoint, wait, self.config.max_retry_wait)
                wait = self.config.max_retry_wait
            # A Retry-After holds every thread: said once per hold, not once per thread it caught in flight.
            if retry.wait is None or self._hold_all(wait):
                LOGGER.warning("%s: %s; retry %d of %d in %.1f s", endpoint, retry.reason, attempts,
                               self.config.max_retries, wait)
            self.sleep(wait)

    def _given_up(self, endpoint, attempts, retry):
        """The error of a request that failed `attempts` times. Unusable 200s fail their endpoint only (the
        other streams go on), unless the endpoint that last failed so did too with no usable answer since:
        then the API host as a whole is not answering as the API (a maintenance page, a proxy), and the run
        stops rather than spend every endpoint's retries on it."""
        reason = f"{endpoint}: gave up after {attempts} attempts; the last one failed with {retry.reason}."
        if retry.unusable:
            with self._lock:
                streak, self._unusable_streak = self._unusable_streak, True
            if not streak:
                return UnexpectedResponseError(f"{reason} Only this endpoint is skipped: its last STATE is kept "
                                               "for the next run.")
            return ApiError(f"{reason} The endpoint before it failed so too, with no usable answer since: "
                            "something other than the API answers (a maintenance page, a proxy, a wrong host). "
                            f"Check {API_SETTING}; rerun later and the tap resumes from its last STATE.")
        return ApiError(f"{reason} The API or the network is not healthy right now; rerun later and the tap "
                        "resumes from its last STATE.")

    def _exchange(self, endpoint, method, url, limit, setting, **kwargs):
        """One request, its answer read whole (an Answer), all within request_timeout: the watcher cuts it at
        its deadline (a timeout, retried) or on a stop (Interrupted). A 200's body is read up to `limit`
        (past it, an UnexpectedResponseError), any other's up to SMALL_LIMIT, for its message. Failures are
        _Retry; a host never answered that cannot be connected to carries why, and what `setting` to check."""
        timeout, origin = self.config.request_timeout, _origin(url)
        sent = time.monotonic()
        with self._watcher.watch(timeout) as watch, self._session() as session:
            session.get_adapter(url).watch = watch
            try:
                # stream=True and one read of the whole body: half the CPU of requests' chunked .content
                response = session.request(method, url, stream=True, allow_redirects=False,
                                           timeout=(min(CONNECT_TIMEOUT, timeout), timeout), **kwargs)
            except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
                raise self._failure(watch, exc, origin, setting) from None
            with self._lock:
                self._answered.add(origin)
            status, whole = response.status_code, False
            gzipped = response.headers.get("Content-Encoding", "").strip().lower() == "gzip"
            try:
                body = read_body(response.raw, gzipped, limit if status == 200 else SMALL_LIMIT)
                if watch.cut_by is not None:  # what came may be cut short (a body to the connection's end looks whole)
                    raise self._failure(watch, None, origin, setting, connected=True)
                whole = True
            except BodyTooLargeError as exc:
                if status == 200:
                    raise UnexpectedResponseError(f"{endpoint}: the answer was not read further: {exc}; no real "
                                                  "page comes near it, so something else answered.") from None
                body = b""  # an error's message too long to read: its status says enough
            except zlib.error:
                if status == 200:
                    raise _Retry("a gzip body cut short or corrupt") from None
                body = b""
            except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
                raise self._failure(watch, exc, origin, setting, connected=True) from None
            finally:
                if whole:
                    response.raw.release_conn()  # kept alive for the next request
                else:
                    response.close()  # the rest of the body is unread: the connection cannot serve another
        self._exchanges.seconds = time.monotonic() - sent
        return Answer(status, response.reason, response.headers, response.url, body)

    def answer_seconds(self):
        """How long the calling thread's last answer took, from sending the request to its last byte: the
        network's time alone, none of the waits for the request budget, a Retry-After or a backoff before
        it (None before any answer)."""
        return getattr(self._exchanges, "seconds", None)

    def _failure(self, watch, exc, origin, setting, connected=False):
        """What a request that raised `exc` means: Interrupted, or a _Retry saying why."""
        if watch.cut_by == "stop":
            return Interrupted()
        timeout = self.config.request_timeout
        failure = None if connected else _connect_failure(exc, min(CONNECT_TIMEOUT, timeout))
        if failure is None:
            if watch.cut_by == "deadline":
                return _Retry(f"no complete answer within {timeout:g} s", too_big=True)
            if isinstance(exc, (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError)):
                return _Retry(f"no response within {timeout:g} s", too_big=True)
            return _Retry(f"connection failed or body cut short ({type(exc).__name__})")
        kind, what = failure
        with self._lock:
            answered = origin in self._answered
        why = None if answered else (
            f"cannot connect to {origin}: {what}. {_ADVICE[kind].format(setting=setting)} Nothing has answered "
            "from that host in this run, so the tap stops here rather than retry for minutes.")
        return _Retry(f"could not connect to {origin}: {what}", unreachable=why)

    def _send_once(self, endpoint, url, params, decode):
        with self._lock:
            self.requests_by_endpoint[endpoint] += 1
        with (metrics.http_request_timer(endpoint) if self.config.metrics == "requests" else _Untimed()) as timer:
            timer.tags[metrics.Tag.http_status_code] = 0
            answer = self._exchange(endpoint, "GET", url, PAGE_LIMIT, API_SETTING, params=params,
                                    headers=self.auth.headers())
            status = timer.tags[metrics.Tag.http_status_code] = answer.status_code
            if status == 200:
                try:
                    body = decode(answer.body)
                except ValueError:
                    kind = answer.headers.get("Content-Type", "unknown type").split(";")[0]
                    raise _Retry(f"a 200 response that is not valid JSON ({kind}, {len(answer.body)} bytes)",
                                 unusable=True) from None
                self._unusable_streak = False
                return body
            if status == 429:
                raise _rate_limited(answer)
            if status in RETRYABLE_STATUS:
                raise _Retry(f"HTTP {status} {api_message(answer)}".rstrip(), too_big=status in (502, 504))
            raise self._permanent_error(endpoint, answer)

    def _permanent_error(self, endpoint, response):
        status, message = response.status_code, api_message(response)
        where = urllib.parse.urlsplit(response.url)._replace(query="", fragment="").geturl()
        if status == 401:
            return AuthError(f"{endpoint}: the API rejected the access token (HTTP 401 {message}). The token is "
                             f"invalid, expired or revoked. {PREREQUISITES}", 401)
        if status == 403:
            return ForbiddenError(f"{endpoint}: access denied (HTTP 403 {message}). The account's plan or the "
                                  "token's user does not allow this endpoint: the user who authorized the token must "
                                  "be an Owner and the plan must include REST API access.", status)
        if 300 <= status < 400:
            return ApiError(f"{endpoint}: the API answered a redirect (HTTP {status}) from {where}; the tap does not "
                            "follow redirects, to keep the token on the API host. Check subdomain/base_url.")
        if 400 <= status < 500:
            return EndpointError(f"{endpoint}: HTTP {status} from {where}: {message or 'no message'}.", status)
        return ApiError(f"{endpoint}: HTTP {status} from {where}: {message or 'no message'}.")
