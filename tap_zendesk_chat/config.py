"""The validated config: defaults, start_date, the API root from subdomain or base_url."""
import dataclasses
import datetime as dt
import difflib
import json
import os
import re
import tempfile
import urllib.parse

from tap_zendesk_chat.dates import format_datetime, parse_datetime, utcnow

DEFAULT_TOKEN_URL = "https://www.zopim.com/oauth2/token"


class ConfigError(Exception):
    """The config cannot be used; the message says what to change."""


@dataclasses.dataclass(frozen=True)
class Setting:
    name: str
    kind: str  # string, integer, number, boolean, date_iso8601
    default: object
    description: str
    secret: bool = False
    required: bool = False


SETTINGS = (
    Setting("access_token", "string", None, "Chat OAuth access token (Chat dashboard → Settings → Account → API). "
            "Required unless client_id and client_secret (and optionally refresh_token) are given.", secret=True),
    Setting("subdomain", "string", None, "Your Zendesk subdomain: `acme` for acme.zendesk.com. Required unless base_url is given."),
    Setting("start_date", "date_iso8601", None, "Earliest data to replicate (RFC 3339 or YYYY-MM-DD). Default: one year before the run."),
    Setting("base_url", "string", None, "API root override, e.g. https://www.zopim.com/api/v2 (legacy host) or a proxy."),
    Setting("user_agent", "string", None, "User-Agent header to send (default: tap-zendesk-chat/<version>)."),
    Setting("request_timeout", "number", 60.0, "Seconds to wait for a connection or a response before retrying."),
    Setting("max_requests_per_minute", "integer", 200, "Client-side request budget; keeps a healthy run free of 429s."),
    Setting("agents_page_limit", "integer", 100, "Page size for /agents (1-100; the API rejects larger pages)."),
    Setting("bans_page_limit", "integer", 500, "Page size for /bans (1-1000)."),
    Setting("max_retries", "integer", 8, "Retries of one request on 429, 5xx, timeouts, resets and broken bodies."),
    Setting("max_retry_wait", "number", 300.0, "Longest wait before one retry, in seconds; a longer Retry-After is capped to it."),
    Setting("activate_version", "boolean", True, "Write versioned records and ACTIVATE_VERSION for full-table streams, "
            "so targets can drop rows deleted upstream."),
    Setting("refresh_token", "string", None, "OAuth refresh token; with client_id/client_secret the tap renews expired access tokens.", secret=True),
    Setting("client_id", "string", None, "OAuth client id of your Chat API client."),
    Setting("client_secret", "string", None, "OAuth client secret of your Chat API client.", secret=True),
    Setting("token_url", "string", DEFAULT_TOKEN_URL, "OAuth token endpoint."),
    Setting("chat_search_interval_days", "integer", None, "Older tap's setting; accepted and no longer needed."),
    Setting("chats_full_sync_days", "integer", None, "Older tap's setting; accepted and no longer needed."),
)
_BY_NAME = {s.name: s for s in SETTINGS}
LEGACY_KEYS = ("chat_search_interval_days", "chats_full_sync_days")
# Keys that orchestrators add to a tap's config on their own.
PLATFORM_KEYS = frozenset({"tap_id", "frequency_in_minutes", "auth_type", "anchor_time"})
_SUBDOMAIN = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z", re.IGNORECASE)


@dataclasses.dataclass(frozen=True)
class Config:
    api_root: str
    start_date: dt.datetime
    access_token: str | None
    user_agent: str
    request_timeout: float
    max_requests_per_minute: int
    agents_page_limit: int
    bans_page_limit: int
    max_retries: int
    max_retry_wait: float
    activate_version: bool
    refresh_token: str | None
    client_id: str | None
    client_secret: str | None
    token_url: str
    notes: tuple = ()

    @property
    def secrets(self):
        return tuple(v for v in (self.access_token, self.refresh_token, self.client_secret) if v)

    @property
    def can_obtain_tokens(self):
        return bool(self.client_id and self.client_secret)


def read_json_file(path, what):
    """Read a JSON file the user gave; any problem becomes one clear message."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"The {what} file {path} does not exist.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"The {what} file {path} cannot be read: {exc}.") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"The {what} file {path} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}).") from None
    except RecursionError:
        raise ConfigError(f"The {what} file {path} nests its JSON too deeply to read.") from None


def save_refresh_token(path, token):
    """Write a refresh token the token endpoint rotated into the config file it replaces, atomically,
    keeping every other key and the file's permissions. Returns None, or why it could not (no secret)."""
    try:
        path = os.path.realpath(path)
        raw = read_json_file(path, "config")
        if not isinstance(raw, dict) or not isinstance(raw.get("refresh_token"), str):
            return "the config file does not hold the refresh_token"
        raw["refresh_token"] = token
        mode = os.stat(path).st_mode & 0o7777
        handle, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".config-", suffix=".json")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(raw, out, indent=2)
                out.write("\n")
                out.flush()
                os.fsync(out.fileno())
            os.chmod(temporary, mode)
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise
    except ConfigError as exc:
        return str(exc)
    except OSError as exc:
        return f"{exc.strerror or type(exc).__name__}"
    return None


def load_config(path, version="1.0.0"):
    return parse_config(read_json_file(path, "config"), version)


def _coerce(name, kind, value, problems):
    """Accept the typed value or its string form (UIs and env vars pass strings)."""
    if kind in ("string", "date_iso8601"):
        if isinstance(value, str):
            return value.strip()
        problems.append(f"'{name}' must be a string, not {json.dumps(value)}")
    elif kind == "integer":
        if isinstance(value, bool):
            problems.append(f"'{name}' must be a whole number, not {json.dumps(value)}")
        elif isinstance(value, int):
            return value
        elif isinstance(value, float) and value.is_integer():
            return int(value)
        elif isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
            return int(value)
        else:
            problems.append(f"'{name}' must be a whole number, not {json.dumps(value)}")
    elif kind == "number":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        problems.append(f"'{name}' must be a number, not {json.dumps(value)}")
    elif kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.strip().lower() in ("true", "1", "yes")
        problems.append(f"'{name}' must be true or false, not {json.dumps(value)}")
    return None


def _check_range(values, name, low, high, problems):
    value = values.get(name)
    if value is not None and not low <= value <= high:
        problems.append(f"'{name}' must be between {low} and {high}, not {value}")


def _check_url(name, value, problems):
    try:
        parts = urllib.parse.urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        problems.append(f"'{name}' must be an http(s) URL such as https://acme.zendesk.com/api/v2/chat, not {value!r}")
        return None
    if parts.username or parts.password or parts.query or parts.fragment:
        problems.append(f"'{name}' must not carry credentials, a query or a fragment")
        return None
    return value.rstrip("/")


def parse_config(raw, version="1.0.0", now=None):
    """Validate a config dict; every problem is reported at once in one ConfigError."""
    if not isinstance(raw, dict):
        raise ConfigError("The config must be a JSON object such as {\"access_token\": \"...\", \"subdomain\": \"acme\"}.")
    now = now or utcnow()
    problems, notes, values = [], [], {}
    for key, value in raw.items():
        setting = _BY_NAME.get(key)
        if setting is None:
            if key.startswith("_") or key in PLATFORM_KEYS:
                continue
            close = difflib.get_close_matches(key, list(_BY_NAME), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            problems.append(f"unknown key '{key}'{hint}")
            continue
        if value is None or value == "":
            continue
        coerced = _coerce(key, setting.kind, value, problems)
        if coerced is not None:
            values[key] = coerced
    for key in LEGACY_KEYS:
        if key in values:
            notes.append(f"'{key}' is a setting of the older tap and is no longer needed: chats are read from the "
                         "incremental export, which catches every change without search windows or periodic full syncs.")

    subdomain, base_url = values.get("subdomain"), values.get("base_url")
    api_root = None
    if base_url:
        api_root = _check_url("base_url", base_url, problems)
    elif subdomain:
        if "." in subdomain or "/" in subdomain or ":" in subdomain:
            guess = re.sub(r"^[a-z]+://", "", subdomain, flags=re.IGNORECASE).split(".")[0]
            problems.append(f"'subdomain' must be only the name before .zendesk.com: write \"{guess}\", not {subdomain!r}")
        elif not _SUBDOMAIN.match(subdomain):
            problems.append(f"'subdomain' {subdomain!r} is not a valid Zendesk subdomain (letters, digits and hyphens)")
        else:
            api_root = f"https://{subdomain.lower()}.zendesk.com/api/v2/chat"
    else:
        problems.append("'subdomain' is required (e.g. \"acme\" for acme.zendesk.com), unless 'base_url' is given")

    if not values.get("access_token") and not (values.get("client_id") and values.get("client_secret")):
        problems.append("'access_token' is required (a Chat OAuth token), unless 'client_id' and 'client_secret' "
                        "(and optionally 'refresh_token') are given so the tap can obtain one")
    if values.get("refresh_token") and not (values.get("client_id") and values.get("client_secret")):
        problems.append("'refresh_token' needs 'client_id' and 'client_secret' too")

    start_date = now - dt.timedelta(days=365)
    if "start_date" in values:
        try:
            start_date = parse_datetime(values["start_date"])
        except ValueError:
            problems.append(f"'start_date' {values['start_date']!r} is not a date; use RFC 3339 "
                            "(2024-01-31T00:00:00Z) or a plain date (2024-01-31)")
        else:
            if start_date > now:
                problems.append(f"'start_date' {format_datetime(start_date)} is in the future")

    for name, low, high in (("request_timeout", 1, 3600), ("max_requests_per_minute", 1, 100000),
                            ("agents_page_limit", 1, 100), ("bans_page_limit", 1, 1000),
                            ("max_retries", 0, 100), ("max_retry_wait", 0, 86400)):
        _check_range(values, name, low, high, problems)
    token_url = DEFAULT_TOKEN_URL
    if "token_url" in values:
        token_url = _check_url("token_url", values["token_url"], problems) or DEFAULT_TOKEN_URL

    if problems:
        raise ConfigError("The config has " + ("a problem: " if len(problems) == 1 else f"{len(problems)} problems: ")
                          + "; ".join(problems) + ".")

    def get(name):
        return values.get(name, _BY_NAME[name].default)

    return Config(
        api_root=api_root,
        start_date=start_date,
        access_token=values.get("access_token"),
        user_agent=values.get("user_agent") or f"tap-zendesk-chat/{version}",
        request_timeout=get("request_timeout"),
        max_requests_per_minute=get("max_requests_per_minute"),
        agents_page_limit=get("agents_page_limit"),
        bans_page_limit=get("bans_page_limit"),
        max_retries=get("max_retries"),
        max_retry_wait=get("max_retry_wait"),
        activate_version=get("activate_version"),
        refresh_token=values.get("refresh_token"),
        client_id=values.get("client_id"),
        client_secret=values.get("client_secret"),
        token_url=token_url,
        notes=tuple(notes),
    )
