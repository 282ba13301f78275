"""The one HTTP client: session, timeouts, budget, one retry loop, error mapping. Only this module sleeps.
The token itself is auth.Authenticator's; the error types are errors.py's."""
import collections
import contextlib
import datetime
import email.utils
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
from tap_zendesk_chat.errors import ApiError, AuthError, EndpointError, ForbiddenError, Interrupted, api_message

LOGGER = singer.get_logger()
RETRYABLE_STATUS = frozenset({500, 502, 503, 504})
WINDOW_MARGIN = 0.25  # seconds: a request reaches the API a little after it is counted here, more so on a new connection
MAX_BACKOFF = 60.0  # longest wait between retries of our own choosing (Retry-After may ask for more)
TOKEN_ENDPOINT = "OAuth token endpoint"  # how the token endpoint is named in logs and counters


class _Retry(Exception):
    def __init__(self, reason, wait=None, rate_limited=False, too_big=False):
        super().__init__(reason)
        self.reason = reason
        self.wait = wait
        self.rate_limited = rate_limited  # a 429
        self.too_big = too_big  # a timeout, 502 or 504: what a page too big to serve in time gets


def _rate_limited(response):
    wait = parse_retry_after(response.headers.get("Retry-After"))
    return _Retry("rate limited (429)" + (f", Retry-After {wait:g} s" if wait is not None else ""), wait,
                  rate_limited=True)


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


def gunzip(data):
    """A gzip body, decompressed in one go (urllib3's own decoder copies a page twice more). Several
    members are joined, as gzip does; zlib.error when the body is cut short or corrupt."""
    parts = []
    while True:
        decoder = zlib.decompressobj(wbits=31)
        parts.append(decoder.decompress(data))
        if not decoder.eof:
            raise zlib.error("gzip stream cut short")
        data = decoder.unused_data
        if not data.strip(b"\0"):  # trailing zero padding after the last member, as gzip allows
            return parts[0] if len(parts) == 1 else b"".join(parts)


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
        self._lock = threading.Lock()
        self._token_lock = threading.Lock()
        self._gate = _Gate(config.max_parallel_requests)
        self._local = threading.local()
        self._idle = []  # sessions no request is using
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
            session.headers.update({"User-Agent": self.config.user_agent, "Accept": "application/json"})
        try:
            yield session
        finally:
            with self._lock:
                self._idle.append(session)

    def close(self):
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
                    if not getattr(self._local, "told", False):
                        LOGGER.info("Request budget of %d a minute reached; waiting %.1f s", budget, wait)
                    self._local.told = True
                if wait <= 0:
                    self._sent.append(now)
                    self._local.told = False
                    return
            self.sleep(wait)

    def _hold_all(self, seconds):
        """Nobody sends for `seconds` (the API's Retry-After holds every thread of the run)."""
        with self._lock:
            self._resume_at = max(self._resume_at, time.monotonic() + seconds)

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
            try:
                with self._session() as session:
                    response = session.post(url, data=data, timeout=self.config.request_timeout,
                                            allow_redirects=False)
            except requests.RequestException as exc:
                raise _Retry(f"connection failed ({type(exc).__name__})") from None
            if response.status_code == 429:
                raise _rate_limited(response)
            if response.status_code in RETRYABLE_STATUS:
                raise _Retry(f"HTTP {response.status_code}")
            return response
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
            if attempts > self.config.max_retries:
                raise ApiError(f"{endpoint}: gave up after {attempts} attempts; the last one failed with "
                               f"{retry.reason}. The API or the network is not healthy right now; "
                               "rerun later and the tap resumes from its last STATE.") from None
            wait = retry.wait if retry.wait is not None else next(delays)
            if wait > self.config.max_retry_wait:
                LOGGER.warning("%s: the API asked to wait %.0f s; capped to max_retry_wait=%.0f s",
                               endpoint, wait, self.config.max_retry_wait)
                wait = self.config.max_retry_wait
            LOGGER.warning("%s: %s; retry %d of %d in %.1f s", endpoint, retry.reason, attempts,
                           self.config.max_retries, wait)
            if retry.wait is not None:
                self._hold_all(wait)
            self.sleep(wait)

    def _send_once(self, endpoint, url, params, decode):
        with self._lock:
            self.requests_by_endpoint[endpoint] += 1
        headers = self.auth.headers()
        with metrics.http_request_timer(endpoint) as timer:
            timer.tags[metrics.Tag.http_status_code] = 0
            try:
                with self._session() as session:
                    # stream=True and one read of the whole body: half the CPU of requests' chunked .content
                    response = session.get(url, params=params, headers=headers, stream=True,
                                           timeout=self.config.request_timeout, allow_redirects=False)
                    status = response.status_code
                    timer.tags[metrics.Tag.http_status_code] = status
                    gzipped = status == 200 and response.headers.get("Content-Encoding", "").strip().lower() == "gzip"
                    body = response.raw.read(decode_content=not gzipped) if status == 200 else response.content
                    response.raw.release_conn()
            except (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError):
                raise _Retry(f"no response within {self.config.request_timeout:g} s", too_big=True) from None
            except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
                raise _Retry(f"connection failed or body cut short ({type(exc).__name__})") from None
            if gzipped:
                try:
                    body = gunzip(body)
                except zlib.error:
                    raise _Retry("a gzip body cut short or corrupt") from None
            if status == 200:
                try:
                    return decode(body)
                except ValueError:
                    kind = response.headers.get("Content-Type", "unknown type").split(";")[0]
                    raise _Retry(f"a 200 response that is not valid JSON ({kind}, {len(body)} bytes)") from None
            if status == 429:
                raise _rate_limited(response)
            if status in RETRYABLE_STATUS:
                raise _Retry(f"HTTP {status} {api_message(response)}".rstrip(), too_big=status in (502, 504))
            raise self._permanent_error(endpoint, response)

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
