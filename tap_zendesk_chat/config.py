"""The validated config, from one table: SETTINGS.

Each `Setting` declares one key of the config file: its kind, default, range, when it is required, whether
it is a secret or a legacy key (accepted and ignored), and, for what a range cannot say, a small named check.
From the table come the `Config` dataclass (a field per setting that is not legacy), `parse_config` (coercion,
ranges, required-unless rules, the unknown-key hint, every problem at once) and `--about` (about.py).
CONTRIBUTING.md says how to add a setting."""
import dataclasses
import datetime as dt
import difflib
import json
import os
import re
import select
import stat
import tempfile
import time
import urllib.parse
from typing import Callable

from tap_zendesk_chat.errors import ConfigError
from tap_zendesk_chat.dates import format_datetime, parse_datetime, utcnow

DEFAULT_TOKEN_URL = "https://www.zopim.com/oauth2/token"
# The Python type of a value of each kind, once parsed (Config's field types).
# RFC 3339 (a space for the T, as it allows; seconds and the zone optional, a missing zone taken as UTC),
# or a plain date: nothing a reader could take for another day.
RFC3339_OR_DATE = re.compile(r"\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}:\d{2})?)?")
KINDS = {"string": str, "integer": int, "number": float, "boolean": bool, "date_iso8601": dt.datetime}
# Keys that orchestrators add to a tap's config on their own.
PLATFORM_KEYS = frozenset({"tap_id", "frequency_in_minutes", "auth_type", "anchor_time"})


@dataclasses.dataclass(frozen=True)
class Setting:
    """One key of the config. Only name, kind and description are needed: the rest make an optional setting
    with no default, no range and no rule."""
    name: str
    kind: str                      # a key of KINDS; strings are stripped, dates parsed, numbers read from strings
    default: object = None         # the value when absent, as --about shows it
    description: str = ""          # --about's description (README and meltano.yml repeat it)
    secret: bool = False           # kept out of logs and repr; Config.secrets holds the values given
    required: bool = False         # required, with no alternative
    required_unless: tuple = ()    # required unless every one of these settings is given
    alternative: str = ""          # that alternative in words ("'base_url' is given" when left empty)
    example: str = ""              # what to write, in the "is required" message
    needs: tuple = ()              # when this setting is given, these must be given too
    low: float | None = None       # range, both ends included (None: no bound)
    high: float | None = None
    legacy: str = ""               # a legacy key: accepted, checked for its kind, then ignored, and this note is
                                   # logged after its quoted name; not a field of Config
    check: Callable | None = None  # check(name, value, context) -> the value Config gets; for what a range cannot
                                   # say; reports with context.problem(...)
    default_from: Callable | None = None  # default_from(context) -> the value Config gets when absent, for a
                                          # default that depends on the run (now, the version)

    @property
    def unless(self):
        """The alternative that makes this setting optional, in words (empty when there is none)."""
        if not self.required_unless:
            return ""
        verb = "is" if len(self.required_unless) == 1 else "are"
        return self.alternative or f"{_names(self.required_unless)} {verb} given"

    @property
    def missing_message(self):
        example = f" ({self.example})" if self.example else ""
        unless = f", unless {self.unless}" if self.unless else ""
        return f"'{self.name}' is required{example}{unless}"

    @property
    def has_range(self):
        return self.low is not None or self.high is not None

    def out_of_range(self, value):
        """The problem with `value` against low/high, or None."""
        if (self.low is None or self.low <= value) and (self.high is None or value <= self.high):
            return None
        if self.low is not None and self.high is not None:
            return f"'{self.name}' must be between {self.low} and {self.high}, not {value}"
        if self.low is not None:
            return f"'{self.name}' must be at least {self.low}, not {value}"
        return f"'{self.name}' must be at most {self.high}, not {value}"


def _names(names):
    return " and ".join(f"'{n}'" for n in names)


@dataclasses.dataclass(frozen=True)
class Context:
    """What a check or a default_from sees: every value given (coerced), the time of the run, the tap's version;
    problem() adds to the problems reported together."""
    values: dict
    now: dt.datetime
    version: str
    problems: list

    def problem(self, text):
        self.problems.append(text)


# -- what a range cannot say: the checks (check=) and run-dependent defaults (default_from=) of SETTINGS --
_SUBDOMAIN = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z", re.IGNORECASE)


def zendesk_subdomain(name, value, context):
    """Only the name before .zendesk.com, lowercased; unused (None) when base_url is given."""
    if "base_url" in context.values:
        return None
    if "." in value or "/" in value or ":" in value:
        guess = re.sub(r"^[a-z]+://", "", value, flags=re.IGNORECASE).split(".")[0]
        context.problem(f"'{name}' must be only the name before .zendesk.com: write \"{guess}\", not {value!r}")
    elif not _SUBDOMAIN.match(value):
        context.problem(f"'{name}' {value!r} is not a valid Zendesk subdomain (letters, digits and hyphens)")
    return value.lower()


EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def not_in_the_future(name, value, context):
    """Between 1970 (the exports count time from it; an earlier start would be a negative start_time)
    and now."""
    if value > context.now:
        context.problem(f"'{name}' {format_datetime(value)} is in the future")
    elif value < EPOCH:
        context.problem(f"'{name}' {format_datetime(value)} is before 1970; Zendesk Chat has no data that old")
    return value


def a_year_before_the_run(context):
    return context.now - dt.timedelta(days=365)


def http_url(name, value, context):
    """A plain http(s) URL without credentials, query or fragment, without its trailing slashes."""
    try:
        parts = urllib.parse.urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        context.problem(f"'{name}' must be an http(s) URL such as https://acme.zendesk.com/api/v2/chat, not {value!r}")
    elif parts.username or parts.password or parts.query or parts.fragment:
        context.problem(f"'{name}' must not carry credentials, a query or a fragment")
    return value.rstrip("/")


_QUOTES = frozenset("\u2018\u2019\u201a\u201b\u201c\u201d\u201e\u201f\u00ab\u00bb")


def sendable_token(name, value, context):
    """Printable ASCII without spaces, as an OAuth token or client credential is: one pasted with typographic
    quotes or a line break would fail only at the first request (http.client cannot send it), after a STATE.
    The message says where the odd character is, never what the value holds."""
    for index, char in enumerate(value):
        if not "!" <= char <= "~":
            what = ("a typographic quote" if char in _QUOTES else "a space" if char == " " else
                    "a line break or other control character" if char < " " or char == "\x7f" else
                    "a character outside ASCII")
            context.problem(f"'{name}' has {what} at character {index + 1} of {len(value)}; it can only be printable "
                            "ASCII without spaces: copy it again, without quotes or line breaks")
            break
    return value


def header_text(name, value, context):
    """Text an HTTP header can carry (Latin-1, no control characters)."""
    bad = next((char for char in value if not (" " <= char <= "~" or "\xa0" <= char <= "\xff")), None)
    if bad is not None:
        context.problem(f"'{name}' {value!r} has a character an HTTP header cannot carry ({bad!r}); use Latin-1 "
                        "text without control characters")
    return value


METRIC_LEVELS = ("requests", "streams", "none")


def metric_level(name, value, context):
    """How many METRIC lines the run logs (see the setting)."""
    value = value.lower()
    if value not in METRIC_LEVELS:
        context.problem(f"'{name}' must be one of {', '.join(METRIC_LEVELS)}, not {value!r}")
    return value


def tap_user_agent(context):
    return f"tap-zendesk-chat/{context.version}"


_NO_LONGER_NEEDED = ("is a setting of the older tap and is no longer needed: chats are read from the incremental "
                     "export, which catches every change without search windows or periodic full syncs.")

SETTINGS = (
    Setting("access_token", "string", None, "Chat OAuth access token (Chat dashboard → Settings → Account → API). "
            "Required unless client_id and client_secret (and optionally refresh_token) are given.", secret=True,
            required_unless=("client_id", "client_secret"), example="a Chat OAuth token",
            alternative="'client_id' and 'client_secret' (and optionally 'refresh_token') are given "
                        "so the tap can obtain one", check=sendable_token),
    Setting("subdomain", "string", None, "Your Zendesk subdomain: `acme` for acme.zendesk.com. Required unless base_url is given.",
            required_unless=("base_url",), example='e.g. "acme" for acme.zendesk.com', check=zendesk_subdomain),
    Setting("start_date", "date_iso8601", None, "Earliest data to replicate (RFC 3339 or YYYY-MM-DD). Default: one year before the run.",
            check=not_in_the_future, default_from=a_year_before_the_run),
    Setting("base_url", "string", None, "API root override, e.g. https://www.zopim.com/api/v2 (legacy host) or a proxy.",
            check=http_url),
    Setting("user_agent", "string", None, "User-Agent header to send (default: tap-zendesk-chat/<version>).",
            check=header_text, default_from=tap_user_agent),
    Setting("request_timeout", "number", 60.0, "Seconds a whole request may take (connecting, the answer's headers and body) before it is retried; connecting alone gets at most 5 s.",
            low=1, high=3600),
    Setting("max_requests_per_minute", "integer", 200, "Client-side request budget; keeps a healthy run free of 429s.",
            low=1, high=100000),
    Setting("max_parallel_requests", "integer", 8, "Requests in flight at once. Once pages take 0.2 s or more to "
            "arrive, an export's backfill is read in time slices by this many fetchers, so the rate limit, not the "
            "round trip, sets the pace; narrowed by itself if the API answers 429 to concurrent requests. "
            "1: one request at a time.", low=1, high=16),
    Setting("agents_page_limit", "integer", 100, "Page size for /agents (1-100; the API rejects larger pages).",
            low=1, high=100),
    Setting("bans_page_limit", "integer", 500, "Page size for /bans (1-1000).", low=1, high=1000),
    Setting("max_retries", "integer", 8, "Retries of one request on 429, 5xx, timeouts, resets and broken bodies.",
            low=0, high=100),
    Setting("max_retry_wait", "number", 300.0, "Longest wait before one retry, in seconds; a longer Retry-After is capped to it.",
            low=0, high=86400),
    Setting("metrics", "string", "requests", "METRIC log lines: `requests`, one per request as singer-python "
            "writes them (what Singer tooling reads); `streams`, one record_count per stream at its end; `none`.",
            check=metric_level),
    Setting("rejects_path", "string", None, "File where records the tap cannot write as RECORDs (no key a target "
            "could upsert them by) are appended, one JSON line each. Default: tap-zendesk-chat-rejects.jsonl beside "
            "the state file (without --state, beside the config file); made only when a record is rejected."),
    Setting("stitch_table_names", "boolean", False, "Name the streams as Stitch's Zendesk Chat integration names "
            "its tables (zopim_chats, zopim_agents, zopim_triggers, …: every stream gets the prefix zopim_) and key "
            "zopim_triggers by name, as it does. Bookmarks keep the streams' own names, so turning it on needs no "
            "new backfill."),
    Setting("flattening_enabled", "boolean", False, "Flatten nested objects into columns, as the Singer SDK does: "
            "`visitor.email` becomes `visitor__email`; arrays, and objects deeper than flattening_max_depth, become JSON "
            "text. The SCHEMA, the catalog, field selection and `_unexpected_values` use the flattened names."),
    Setting("flattening_max_depth", "integer", 10, "Levels of nested objects flattened when flattening_enabled "
            "(1: `visitor__email`, an object inside `visitor` stays JSON text).", low=1, high=100),
    Setting("activate_version", "boolean", True, "Write versioned records and ACTIVATE_VERSION for full-table streams, "
            "so targets can drop rows deleted upstream."),
    Setting("refresh_token", "string", None, "OAuth refresh token; with client_id/client_secret the tap renews expired access tokens.",
            secret=True, needs=("client_id", "client_secret"), check=sendable_token),
    Setting("client_id", "string", None, "OAuth client id of your Chat API client.", check=sendable_token),
    Setting("client_secret", "string", None, "OAuth client secret of your Chat API client.", secret=True,
            check=sendable_token),
    Setting("token_url", "string", DEFAULT_TOKEN_URL, "OAuth token endpoint.", check=http_url),
    Setting("chat_search_interval_days", "integer", None, "Older tap's setting; accepted and no longer needed.",
            legacy=_NO_LONGER_NEEDED),
    Setting("chats_full_sync_days", "integer", None, "Older tap's setting; accepted and no longer needed.",
            legacy=_NO_LONGER_NEEDED),
)


# The most the tap reads of each file the user gives: a config is a few hundred bytes, a STATE a few KB
# (a few MB with an export's time slices), a catalog about 300 KB.
READ_LIMITS = {"config": 1 << 20, "state": 64 << 20, "catalog": 64 << 20}
_FILE_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a device"),
               (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket"))


PIPE_SECONDS = 30.0  # how long a pipe (`--config <(vault read ...)`, a named FIFO) may take to deliver its file


def read_json_file(path, what):
    """Read a JSON file the user gave; any problem becomes one clear message.

    A regular file, or a pipe (process substitution, `/dev/stdin` fed by a pipe, a named FIFO), and at most
    READ_LIMITS[what] bytes of it. A pipe is read until its writer closes it, within PIPE_SECONDS: a FIFO
    nobody writes to would block the tap for ever (opening one waits for a writer, hence O_NONBLOCK), and
    /dev/zero, or a device, would be read until memory runs out."""
    limit = READ_LIMITS[what]
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise ConfigError(f"The {what} file {path} does not exist.") from None
    except OSError as exc:
        raise ConfigError(f"The {what} file {path} cannot be read: {exc.strerror or exc}.") from None
    try:
        with os.fdopen(fd, "rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            if stat.S_ISFIFO(mode):
                data = _read_pipe(handle.fileno(), limit, path, what)
            elif not stat.S_ISREG(mode):
                kind = next((name for test, name in _FILE_KINDS if test(mode)), "not a regular file")
                raise ConfigError(f"The {what} file {path} cannot be read: it is {kind}. The tap reads the {what} "
                                  "from a regular file or a pipe only; write it to a file and pass that.")
            else:
                data = handle.read(limit + 1)
    except OSError as exc:
        raise ConfigError(f"The {what} file {path} cannot be read: {exc.strerror or exc}.") from None
    if len(data) > limit:
        raise ConfigError(f"The {what} file {path} is larger than {limit >> 20} MiB, the most the tap reads for a "
                          f"{what}; it is not a {what} file the tap or its orchestrator wrote.")
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"The {what} file {path} cannot be read: {exc}.") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"The {what} file {path} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}).") from None
    except RecursionError:
        raise ConfigError(f"The {what} file {path} nests its JSON too deeply to read.") from None


def _read_pipe(fd, limit, path, what):
    """A pipe's content up to its end (its writer closed it) or `limit` + 1 bytes, within PIPE_SECONDS."""
    deadline, chunks, size = time.monotonic() + PIPE_SECONDS, [], 0
    while size <= limit:
        left = deadline - time.monotonic()
        ready = select.select([fd], [], [], max(0.0, left))[0] if left > 0 else []
        if not ready:
            raise ConfigError(f"The {what} file {path} is a pipe that delivered no end of file within "
                              f"{PIPE_SECONDS:.0f} s ({size} bytes came): nothing writes to it, or its writer is "
                              "stuck. Write the file first, or pass a regular file.")
        try:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
        except BlockingIOError:  # woken without data: wait again
            continue
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def save_refresh_token(path, token):
    """Write a refresh token the token endpoint rotated into the config file it replaces, atomically,
    keeping every other key and the file's permissions. Returns None, or why it could not (no secret)."""
    try:
        if os.path.exists(path) and not os.path.isfile(path):
            return "the config was read from a pipe, not a file the tap can rewrite"
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


def _coerce(setting, value, problems):
    """The value of `setting`'s kind, from the typed value or its string form (UIs and env vars pass strings).
    None when absent (null, or a string left empty once stripped) or wrong, which adds to `problems`."""
    name, kind = setting.name, setting.kind
    if value is None:
        return None
    if setting.secret:  # a secret given wrongly is still a secret: the message shows its type only
        shown = {str: "a string", bool: "a boolean", list: "an array", dict: "an object"}.get(type(value), "a number")
    else:
        shown = json.dumps(value)
    if kind in ("string", "date_iso8601"):
        if not isinstance(value, str):
            problems.append(f"'{name}' must be a string, not {shown}")
            return None
        value = value.strip()
        if not value or kind == "string":
            return value or None
        try:
            if not RFC3339_OR_DATE.fullmatch(value):
                raise ValueError(value)
            return parse_datetime(value)
        except ValueError:
            problems.append(f"'{name}' {value!r} is not a date in an accepted form: RFC 3339 "
                            "(2024-01-31T00:00:00Z, 2024-01-31T09:30:00+02:00) or a plain date (2024-01-31). "
                            "Other forms (01/02/2024, 20240101, 2024, 1 Jan 2024) are refused: some read "
                            "one way or the other, day first or month first")
    elif value == "":
        return None
    elif kind == "integer":
        if isinstance(value, bool):
            problems.append(f"'{name}' must be a whole number, not {shown}")
        elif isinstance(value, int):
            return value
        elif isinstance(value, float) and value.is_integer():
            return int(value)
        elif isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
            return int(value)
        else:
            problems.append(f"'{name}' must be a whole number, not {shown}")
    elif kind == "number":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        problems.append(f"'{name}' must be a number, not {shown}")
    elif kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.strip().lower() in ("true", "1", "yes")
        problems.append(f"'{name}' must be true or false, not {shown}")
    return None


# Config's own attributes besides its fields: no setting may take these names.
_RESERVED = frozenset({"notes", "api_root", "secrets", "can_obtain_tokens", "SETTINGS"})


def check_table(settings):
    """Raise ValueError when the table contradicts itself (run on SETTINGS at import, and on any table given)."""
    names = [s.name for s in settings]
    errors = [f"'{n}' is declared twice" for n in sorted({n for n in names if names.count(n) > 1})]
    for s in settings:
        if s.name in _RESERVED:
            errors.append(f"'{s.name}' is a name Config uses for something else")
        if s.kind not in KINDS:
            errors.append(f"'{s.name}' has kind {s.kind!r}, not one of {sorted(KINDS)}")
            continue
        errors += [f"'{s.name}' refers to '{n}', which is not a setting"
                   for n in (*s.required_unless, *s.needs) if n not in names]
        if s.name in s.required_unless or s.name in s.needs:
            errors.append(f"'{s.name}' refers to itself")
        if s.required and s.required_unless:
            errors.append(f"'{s.name}' is both required and required unless something else")
        if s.legacy and (s.required or s.required_unless or s.needs or s.check or s.default_from):
            errors.append(f"'{s.name}' is legacy (ignored) and yet has a rule")
        if s.has_range and s.kind not in ("integer", "number"):
            errors.append(f"'{s.name}' has a range but is not a number")
        if s.low is not None and s.high is not None and s.low > s.high:
            errors.append(f"'{s.name}' has low above high")
        if s.default is not None:
            problems = []
            value = _coerce(s, s.default, problems)
            # As --about shows it: a JSON value of the kind (a date as its string), which Config gets coerced.
            as_json = str if s.kind == "date_iso8601" else KINDS[s.kind]
            if problems or value is None or type(s.default) is not as_json:
                errors.append(f"'{s.name}' has a default that is not of its kind {s.kind}: {s.default!r}")
            elif s.has_range and s.out_of_range(value):
                errors.append(f"'{s.name}' has a default outside its range")
        if s.default is not None and s.default_from:
            errors.append(f"'{s.name}' has both a default and a default_from")
    if errors:
        raise ValueError("The settings table is inconsistent: " + "; ".join(errors))


class _ConfigBase:
    """What a Config has besides one field per setting."""
    SETTINGS = ()  # the table the class was made from

    @property
    def api_root(self):
        return self.base_url or f"https://{self.subdomain}.zendesk.com/api/v2/chat"

    @property
    def secrets(self):
        """The values of the secret settings that were given, in the table's order."""
        return tuple(value for s in self.SETTINGS if s.secret and not s.legacy
                     for value in (getattr(self, s.name),) if value)

    @property
    def can_obtain_tokens(self):
        return bool(self.client_id and self.client_secret)


def config_class(settings, name="Config"):
    """A frozen dataclass with a field per setting that is not legacy (its kind's type; secrets kept out of
    repr), then `notes`: the messages about legacy keys given."""
    check_table(settings)
    fields = [(s.name, KINDS[s.kind] if s.default is not None or s.default_from else KINDS[s.kind] | None,
               dataclasses.field(repr=not s.secret))
              for s in settings if not s.legacy]
    fields.append(("notes", tuple, dataclasses.field(default=())))
    return dataclasses.make_dataclass(name, fields, bases=(_ConfigBase,), frozen=True,
                                      namespace={"SETTINGS": tuple(settings), "__module__": __name__,
                                                 "__doc__": "The validated config (see SETTINGS)."})


Config = config_class(SETTINGS)


def parse_config(raw, version="1.0.0", now=None, settings=SETTINGS):
    """Validate a config dict against the table `settings`; every problem is reported at once in one ConfigError.

    For each key given: unknown keys get a "did you mean" hint (keys starting with _ and PLATFORM_KEYS pass),
    values are coerced to their kind. Then, for each setting in the table's order: legacy keys given add a
    note; an absent setting is checked against required/required_unless and gets its default (or default_from);
    a given one is checked against needs, its range, then its check."""
    if not isinstance(raw, dict):
        raise ConfigError("The config must be a JSON object such as {\"access_token\": \"...\", \"subdomain\": \"acme\"}.")
    config = Config if settings is SETTINGS else config_class(settings)
    by_name = {s.name: s for s in settings}
    context = Context(values={}, now=now or utcnow(), version=version, problems=[])
    refused = set()
    for key, value in raw.items():
        setting = by_name.get(key)
        if setting is None:
            if key.startswith("_") or key in PLATFORM_KEYS:
                continue
            close = difflib.get_close_matches(key, list(by_name), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            context.problem(f"unknown key '{key}'{hint}")
            continue
        coerced = _coerce(setting, value, context.problems)
        if coerced is not None:
            context.values[key] = coerced
        elif value is not None and not (isinstance(value, str) and not value.strip()):
            refused.add(key)  # its problem is said already: not "required" as well

    notes, fields = [], {}
    for s in settings:
        if s.legacy:
            if s.name in context.values:
                notes.append(f"'{s.name}' {s.legacy}")
            continue
        if s.name not in context.values:
            if s.name in refused:
                continue
            if s.required or (s.required_unless and not all(n in context.values for n in s.required_unless)):
                context.problem(s.missing_message)
            fields[s.name] = s.default_from(context) if s.default_from else _coerce(s, s.default, [])
            continue
        value = context.values[s.name]
        if not all(n in context.values for n in s.needs):
            context.problem(f"'{s.name}' needs {_names(s.needs)} too")
        problem = s.out_of_range(value) if s.has_range else None
        if problem:
            context.problem(problem)
        elif s.check:
            value = s.check(s.name, value, context)
        fields[s.name] = value

    problems = context.problems
    if problems:
        raise ConfigError("The config has " + ("a problem: " if len(problems) == 1 else f"{len(problems)} problems: ")
                          + "; ".join(problems) + ".")
    return config(**fields, notes=tuple(notes))
