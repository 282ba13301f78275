"""Deterministic Zendesk Chat data for the simulator: generation, storage and mutations.

Chats are stored pre-serialised (compact JSON bytes) next to a sorted list of export-order
keys, so the server builds an export page by joining bytes. A key is
``(update_timestamp_epoch, id)`` in the default ``same_second_order="id"`` and
``(update_timestamp_epoch, rank, id)`` in the other orders (see ``Dataset.generate``); its first
item is always the second and its last the chat id. The three event exports (conversions,
department_events, agent_events) are kept the same way, each in an ``_EventExport``. Everything
else is small and kept as plain dicts/lists; ``Dataset.set_field`` overrides are applied on the
way out (see there).
"""

import bisect
import datetime
import hashlib
import json
import operator
import random
import re
import string
import threading
import time
import zlib

ALNUM = string.ascii_letters + string.digits
MUTATION_MARGIN_SECONDS = 600  # mutated data stays this far behind real now (the API's 5-minute rule)

FIRST_NAMES = [
    "Ada", "Ben", "Chloe", "Dmitri", "Elena", "Farah", "Goran", "Hana", "Ivan", "Jun", "Kofi", "Lena",
    "Marta", "Nils", "Olga", "Pedro", "Qing", "Rosa", "Sven", "Tara", "Uma", "Viktor", "Wen", "Yara", "Zoe",
]
LAST_NAMES = [
    "Abbott", "Becker", "Castro", "Dubois", "Eriksen", "Fischer", "Garcia", "Horvat", "Ito", "Jansen",
    "Kowalski", "Larsen", "Moreau", "Novak", "Okafor", "Petrov", "Quinn", "Rossi", "Sato", "Tanaka",
]
PLACES = [
    ("Berlin", "DE", "Germany", "Berlin"), ("Paris", "FR", "France", "Ile-de-France"),
    ("Austin", "US", "United States", "Texas"), ("Toronto", "CA", "Canada", "Ontario"),
    ("Sydney", "AU", "Australia", "New South Wales"), ("Osaka", "JP", "Japan", "Osaka"),
    ("Lagos", "NG", "Nigeria", "Lagos"), ("Lima", "PE", "Peru", "Lima"),
    ("Krakow", "PL", "Poland", "Lesser Poland"), ("Pune", "IN", "India", "Maharashtra"),
]
BROWSERS = [
    ("Chrome", "Windows",
     "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/118.0.0.0 Safari/537.36"),
    ("Safari", "Mac OS",
     "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15"),
    ("Firefox", "Linux", "Mozilla/5.0 (X11; Linux x86_64; rv:119.0) Gecko/20100101 Firefox/119.0"),
    ("Mobile Safari", "iOS",
     "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148"),
    ("Chrome Mobile", "Android",
     "Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/118.0 Mobile Safari/537.36"),
]
PAGES = [
    ("https://shop.example.com/", "Example Shop - Home"),
    ("https://shop.example.com/products/blue-kettle", "Blue Kettle | Example Shop"),
    ("https://shop.example.com/cart", "Your cart"),
    ("https://shop.example.com/checkout/payment", "Checkout - Payment"),
    ("https://shop.example.com/help/returns", "Returns and refunds"),
    ("https://shop.example.com/account/orders", "My orders"),
    ("https://www.example.org/blog/winter-sale", "Winter sale is on!"),
]
VISITOR_LINES = [
    "Hi, where is my order 48213?",
    "Hello",
    "Is the blue kettle available in 2 litres?",
    "I was charged twice for one order",
    "ok thanks",
    "How long do refunds take?",
    "The password reset email never arrives",
    "Do you ship to Norway?",
    "Great, that solved it. Thanks!",
    "Can I change the delivery address?",
    "yes",
    "Code WINTER20 says invalid at checkout",
]
AGENT_LINES = [
    "Hi there, let me look into that for you.",
    "It ships tomorrow with DHL.",
    "I've refunded the duplicate payment.",
    "Refunds take 3-5 business days.",
    "Could you confirm your email address?",
    "Yes, we ship to Norway.",
    "I've updated the delivery address.",
    "Anything else I can help with?",
    "WINTER20 applies to full-priced items only.",
    "I've sent a new reset link.",
]
OFFLINE_LINES = [
    "Hi, I'd like to know whether you offer gift wrapping for orders shipped to a different address. Thanks!",
    "Please call me back about my warranty claim, the kettle stopped heating after two weeks of use.",
    "Your chat was offline so leaving a message: I need an invoice with my company VAT number for order 51120.",
    "Hello, do you have a physical store in Berlin where I can pick up my order?",
]
TAGS = ["shipping", "refund", "vip", "returns", "billing", "login", "discount", "sales", "follow_up", "bug"]
STATUSES = ["online", "away", "invisible", "offline"]
SEARCH_ENGINES = [("", ""), ("", ""), ("google", "blue kettle 2l"), ("bing", "example shop returns")]


class _Stamps:
    """Fast epoch -> ISO-8601 formatting: a per-day prefix cache and a table of the day's seconds."""

    def __init__(self):
        self._days = {}
        self._hms = [f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)]

    def _day(self, day):
        entry = self._days.get(day)
        if entry is None:
            d = datetime.date(1970, 1, 1) + datetime.timedelta(days=day)
            entry = (d.strftime("%Y-%m-%dT"), d.strftime("%y%m"))
            self._days[day] = entry
        return entry

    def iso(self, ts):
        day, sod = divmod(ts, 86400)
        entry = self._days.get(day) or self._day(day)
        return f"{entry[0]}{self._hms[sod]}Z"

    def iso_us(self, us):
        secs, frac = divmod(us, 1_000_000)
        day, sod = divmod(secs, 86400)
        entry = self._days.get(day) or self._day(day)
        return f"{entry[0]}{self._hms[sod]}.{frac:06d}Z"

    def yymm(self, ts):
        return self._day(ts // 86400)[1]

    def day_prefix(self, day):
        return self._day(day)[0]

    @property
    def hms(self):
        return self._hms


def _to_epoch(value):
    if value is None:
        return int(time.time()) - 86400
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, str):
        value = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.timezone.utc)
    return int(value.timestamp())


def iso_to_epoch(value):
    """Parse the simulator's own ISO strings (and the odd '+00:00Z' form) to epoch seconds."""
    if value.endswith("+00:00Z"):
        value = value[:-1]
    return int(datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())


TEMPLATE_COUNT = 1024
TOKEN_POOL_BITS = 12
TOKEN_POOL = 1 << TOKEN_POOL_BITS
_SLOT_RE = re.compile(r'"@([A-Z]+[0-9]*)@"')
_SLOT_SECONDS, _SLOT_MICROS, _SLOT_ODD = range(3)
VALUE_NAMES = ("ID", "UPDATE", "SID", "UNREAD", "TAGS", "RATING", "COMMENT", "TICKET", "DELETED", "CONV", "ENG1", "ENG2")
STARTED_BY = ["visitor", "visitor", "visitor", "agent", "trigger"]
UNREAD_JSON = ["false", "false", "true", "0", "1"]
RATING_JSON = [("null", "null")] * 6 + [('"good"', "null"), ('"good"', '"Very helpful, thanks"'), ('"bad"', "null"),
                                        ('"bad"', '"Took too long"')]
TAGS_JSON = ["[]", "[]", "[]"] + [json.dumps(sorted({a, b}), separators=(",", ":")) for a in TAGS[:5] for b in TAGS[3:]]


def _dumps(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


SAME_SECOND_ORDERS = ("id", "reversed", "scrambled")
_REVERSE_BYTES = bytes(255 - b for b in range(256))


def _reversed_rank(text):
    """A key that sorts strings in descending order: bytewise complement plus a 0xFF terminator.

    UTF-8 bytes sort like code points, so complementing them reverses the order; the terminator
    puts a string after every longer string it prefixes ("ab" after "abc"). Ids holding NUL are
    not supported (never seen).
    """
    return text.encode("utf-8", "surrogatepass").translate(_REVERSE_BYTES) + b"\xff"


def _hash_rank(salt, text):
    """A stable 8-byte pseudo-random rank for `text` (blake2b of "salt:text")."""
    return hashlib.blake2b(f"{salt}:".encode() + str(text).encode("utf-8", "surrogatepass"), digest_size=8).digest()


def _pick_salt(members, first=0):
    """The first salt >= `first` whose hash order of `members` (2+ distinct ids) is not their natural order."""
    natural = sorted(members)
    for salt in range(first, first + 10_000):
        if sorted(members, key=lambda m: (_hash_rank(salt, m), m)) != natural:
            return salt
    raise RuntimeError("no salt scrambles this group")  # impossible for 2+ distinct members


class _Remove:
    def __repr__(self):
        return "Dataset.REMOVE"


REMOVE = _Remove()  # set_field value that deletes the field instead of replacing it
EVENT_EXPORTS = ("conversions", "department_events", "agent_events")  # the newer /incremental/<name> exports
OVERRIDE_TABLES = ("chats", "agent_timeline", "agents", "bans", "departments", "goals", "roles", "skills",
                   "shortcuts", "triggers", "account", "routing_settings") + EVENT_EXPORTS
SET_FIELD_STREAMS = OVERRIDE_TABLES + ("bans.ip_address", "bans.visitor")


def _json_copy(value):
    return json.loads(json.dumps(value))


def _apply_override(obj, path, value):
    """`obj` with the value at `path` (keys for objects, int indices for arrays) replaced; may return a new root."""
    if not path:
        if value is REMOVE:
            raise ValueError("cannot REMOVE the whole record; give a path")
        return _json_copy(value)
    cur = obj
    for depth, step in enumerate(path[:-1]):
        cur = _step_into(cur, step, path[:depth + 1])
    last = path[-1]
    if isinstance(cur, dict):
        if not isinstance(last, str):
            raise ValueError(f"path {list(path)!r}: object keys are strings, got {last!r}")
        if value is REMOVE:
            cur.pop(last, None)
        else:
            cur[last] = _json_copy(value)
    elif isinstance(cur, list):
        if not isinstance(last, int) or isinstance(last, bool) or not -len(cur) <= last <= len(cur):
            raise ValueError(f"path {list(path)!r}: index {last!r} is outside an array of {len(cur)}")
        if value is REMOVE:
            if last == len(cur):
                raise ValueError(f"path {list(path)!r}: nothing to remove at index {last}")
            del cur[last]
        elif last == len(cur):
            cur.append(_json_copy(value))
        else:
            cur[last] = _json_copy(value)
    else:
        raise ValueError(f"path {list(path)!r}: {type(cur).__name__} value has no fields")
    return obj


def _step_into(cur, step, where):
    if isinstance(cur, dict) and isinstance(step, str) and step in cur:
        return cur[step]
    if isinstance(cur, list) and isinstance(step, int) and not isinstance(step, bool) and -len(cur) <= step < len(cur):
        return cur[step]
    raise ValueError(f"path {list(where)!r} does not exist in the record")


def _record_key(table, rec):
    """How overrides find a config record again: its id (shortcuts: name; a trigger without id: its name)."""
    if not isinstance(rec, dict):
        return None
    if table == "shortcuts":
        return rec.get("name")
    if table == "triggers" and "id" not in rec:
        return ("name", rec.get("name"))
    return rec.get("id")


class _EventExport:
    """One of the event-like exports (EVENT_EXPORTS): its records in export order, parallel to their
    order keys, their instants and their bytes as served.

    A key is `(second, id)` in the default same_second_order "id" and `(second, rank, id)` in the others
    (see Dataset._event_key); its first item is always the record's second and its last its own id.
    """

    __slots__ = ("name", "records", "keys", "instants", "blobs", "salts", "key_of")

    def __init__(self, name):
        self.name = name
        self.records = []   # the records' own values (set_field overrides not applied), export order
        self.keys = []      # sorted export keys
        self.instants = []  # each record's own instant in epoch microseconds
        self.blobs = []     # compact JSON bytes as served (overrides applied)
        self.salts = {}     # "scrambled": second -> hash salt
        self.key_of = {}    # own id -> key

    def __len__(self):
        return len(self.keys)

    def index_of(self, rid):
        key = self.key_of.get(rid)
        if key is None:
            raise KeyError(rid)
        return bisect.bisect_left(self.keys, key)

    def max_second(self):
        return self.keys[-1][0] if self.keys else None


STATUS_VALUES = ["online", "away", "invisible", "offline"]
DEPARTMENT_STATUSES = ["online", "away", "offline"]


class _ChatFactory:
    """Builds realistic chats; all randomness comes from the rng passed in.

    "chat" chats are stamped out of TEMPLATE_COUNT pre-serialised conversations: a template is
    the chat's JSON with quoted placeholders ("@T3@", "@ID@", ...) for its id, every timestamp
    (kept as an offset from the chat's start) and the fields that vary per chat. Filling one in
    is a string join, which is what lets 200,000 chats generate in seconds.
    """

    def __init__(self, stamps, agents, departments, history_events, template_count=TEMPLATE_COUNT):
        self.template_count = template_count
        self.st = stamps
        self.agents = agents
        self.departments = departments
        self.history_events = history_events
        self._templates = []
        self._tokens = []

    def _token(self, r):
        """A 13-character base62 token; drawn from a pool because r.choices per id dominated generation time."""
        if not self._tokens:
            self._tokens = ["".join(r.choices(ALNUM, k=13)) for _ in range(TOKEN_POOL)]
        return self._tokens[r.getrandbits(TOKEN_POOL_BITS)]

    def new_id(self, r, ts):
        return f"{self.st.yymm(ts)}.{r.randint(1000, 99999999)}.{self._token(r)}"

    def _visitor(self, r):
        first, last = r.choice(FIRST_NAMES), r.choice(LAST_NAMES)
        num = r.randint(1000000, 99999999)
        named = r.random() < 0.6
        return {
            "id": f"{r.randint(1000000, 19999999)}.{''.join(r.choices(ALNUM, k=13))}",
            "name": f"{first} {last}" if named else f"Visitor {num}",
            "email": f"{first.lower()}.{last.lower()}@example.net" if named else "",
            "phone": f"+1555{r.randint(1000000, 9999999)}" if r.random() < 0.2 else "",
            "notes": "Returning customer" if r.random() < 0.1 else "",
        }

    def _session(self, r, session_id, stamp, begin, end, odd_dates):
        city, cc, country, region = r.choice(PLACES)
        browser, platform, ua = r.choice(BROWSERS)
        return {
            "id": session_id,
            "browser": browser,
            "city": city,
            "country_code": cc,
            "country_name": country,
            "region": region,
            "ip": f"198.51.{r.randint(0, 255)}.{r.randint(1, 254)}",
            "platform": platform,
            "user_agent": ua,
            "start_date": stamp(begin, odd_dates),
            "end_date": stamp(end, odd_dates),
        }

    def _session_id(self, r, ts):
        return f"{self.st.yymm(ts)}{r.randint(10, 28)}.{r.randint(1000000, 19999999)}.{self._token(r)}"

    def _webpath(self, r, stamp):
        items = []
        t = -r.randint(30, 900)
        for _ in range(r.randint(1, 4)):
            url, title = r.choice(PAGES)
            prev = items[-1]["to"] if items and isinstance(items[-1], dict) else ""
            if r.random() < 0.08:
                items.append([prev or "https://www.example.org/", url])
            else:
                items.append({"from": prev, "to": url, "title": title, "timestamp": stamp(t)})
            t += r.randint(5, 240)
        return items

    def _department(self, r):
        if not self.departments or r.random() < 0.15:
            return None, None
        dept = r.choice(self.departments)
        return dept["id"], dept["name"]

    def _template(self, r):
        if not self._templates:
            self._templates = [self._build_template(r, i) for i in range(self.template_count)]
        return r.choice(self._templates)

    def _build_template(self, r, index):
        slots = {}

        def stamp(offset_seconds, odd=False):
            name = f"T{len(slots)}"
            slots[name] = (_SLOT_ODD if odd else _SLOT_SECONDS, offset_seconds)
            return f"@{name}@"

        def stamp_us(offset_us):
            name = f"T{len(slots)}"
            slots[name] = (_SLOT_MICROS, offset_us)
            return f"@{name}@"

        duration = r.randint(60, 1800)
        visitor = self._visitor(r)
        agents = r.sample(self.agents, min(len(self.agents), 1 if r.random() < 0.8 else 2)) if self.agents else []
        dept_id, dept_name = self._department(r)
        first_rt = r.randint(3, 120)
        engine, terms = r.choice(SEARCH_ENGINES)
        chat = {
            "id": "@ID@",
            "type": "chat",
            "timestamp": stamp(0),
            "end_timestamp": stamp(duration),
            "update_timestamp": "@UPDATE@",
            "duration": duration,
            "started_by": r.choice(STARTED_BY),
            "visitor": visitor,
            "session": self._session(r, "@SID@", stamp, -r.randint(0, 600), duration, index % 41 == 3),
            "webpath": self._webpath(r, stamp),
            "count": None,
            "response_time": {"first": first_rt, "avg": round(r.uniform(first_rt, 200), 4), "max": r.randint(first_rt, 400)},
            "agent_names": [a["display_name"] for a in agents],
            "agent_ids": [str(a["id"]) for a in agents],
            "department_id": dept_id,
            "department_name": dept_name,
            "triggered": r.random() < 0.3,
            "triggered_response": r.random() < 0.1,
            "unread": "@UNREAD@",
            "missed": r.random() < 0.05,
            "history": [],
            "conversions": [] if r.random() < 0.9 else [{
                "id": "@CONV@",
                "goal_id": 1,
                "goal_name": "Checkout",
                "timestamp": stamp(duration),
                "attribution": {"agent_id": agents[0]["id"] if agents else None,
                                "agent_name": agents[0]["display_name"] if agents else None,
                                "chat_timestamp": stamp(0),
                                "department_id": dept_id, "department_name": dept_name},
            }],
            "engagements": [self._engagement(r, i, a, dept_id, duration, stamp) for i, a in enumerate(agents)],
            "tags": "@TAGS@",
            "rating": "@RATING@",
            "comment": "@COMMENT@",
            "referrer_search_engine": engine,
            "referrer_search_terms": terms,
            "zendesk_ticket_id": "@TICKET@",
            "deleted": "@DELETED@",
        }
        chat["history"], chat["count"] = self._history(r, duration, visitor["name"], agents, dept_id, stamp_us)
        if r.random() < 0.25:
            chat["proactive"] = r.random() < 0.5
            # A field no schema lists (reference §4.3): it must reach the output as it came.
            chat["visitor_sentiment"] = {"score": round(r.uniform(-1, 1), 2), "label": r.choice(["pos", "neg"])}
        pieces = _SLOT_RE.split(json.dumps(chat, separators=(",", ":")).replace("%", "%%"))
        names = pieces[1::2]
        # fills are computed grouped (micro stamps, second stamps, odd stamps, values), then put in
        # template order by one itemgetter over the concatenation
        micros = [slots[n][1] for n in names if n in slots and slots[n][0] == _SLOT_MICROS]
        seconds = [slots[n][1] for n in names if n in slots and slots[n][0] == _SLOT_SECONDS]
        odds = [slots[n][1] for n in names if n in slots and slots[n][0] == _SLOT_ODD]
        counters = {_SLOT_MICROS: 0, _SLOT_SECONDS: len(micros), _SLOT_ODD: len(micros) + len(seconds)}
        values_at = len(micros) + len(seconds) + len(odds)
        order = []
        for n in names:
            if n in slots:
                kind = slots[n][0]
                order.append(counters[kind])
                counters[kind] += 1
            else:
                order.append(values_at + VALUE_NAMES.index(n))
        fmt = "".join(p + "%s" for p in pieces[0:-1:2]) + pieces[-1]
        return {"duration": duration, "format": fmt, "micros": micros, "min_micro": min(micros, default=0),
                "max_micro": max(micros, default=0), "seconds": seconds, "odds": odds,
                "min_second": min(seconds, default=0), "max_second": max(seconds, default=0),
                "order": operator.itemgetter(*order)}

    def _engagement(self, r, i, agent, dept_id, duration, stamp):
        first_rt = r.randint(3, 90)
        return {
            "id": f"@ENG{i + 1}@",
            "agent_id": str(agent["id"]),
            "agent_name": agent["display_name"],
            "agent_full_name": f"{agent['first_name']} {agent['last_name']}",
            "department_id": dept_id,
            "timestamp": stamp(i * 30),
            "duration": round(r.uniform(30, max(31, duration)), 6),
            "accepted": r.random() < 0.95,
            "assigned": r.random() < 0.5,
            "started_by": "visitor" if i == 0 else "agent",
            "rating": None,
            "comment": None,
            "count": {"agent": r.randint(1, 8), "total": r.randint(2, 16), "visitor": r.randint(1, 8)},
            "response_time": {"first": first_rt, "avg": round(r.uniform(first_rt, 120), 4), "max": r.randint(first_rt, 300)},
            "skills_requested": [],
            "skills_fulfilled": r.random() < 0.9,
        }

    def make(self, r, chat_id, update_ts, offline=False, deleted=False, recent=False):
        return json.loads(self.make_blob(r, chat_id, update_ts, offline, deleted, recent)[0])

    def make_blob(self, r, chat_id, update_ts, offline=False, deleted=False, recent=False):
        """Serialised chat plus (type, timestamp epoch, end_timestamp epoch or None)."""
        delay = r.randint(0, 90) if recent or r.random() < 0.85 else r.randint(600, 3 * 86400)
        end_ts = update_ts - delay
        if offline:
            chat = self._offline(r, chat_id, end_ts, update_ts, deleted)
            return _dumps(chat), ("offline_msg", end_ts, None)
        t = self._template(r)
        start = end_ts - t["duration"]
        base_us = start * 1_000_000
        st = self.st
        rating, comment = r.choice(RATING_JSON)
        values = [
            f'"{chat_id}"',
            f'"{st.iso(update_ts)}"',
            f'"{self._session_id(r, start)}"',
            r.choice(UNREAD_JSON),
            r.choice(TAGS_JSON),
            rating,
            comment,
            str(r.randint(10000, 999999)) if r.random() < 0.3 else "null",
            "true" if deleted else "false",
            f'"{chat_id}.conv"',
            f'"{chat_id}.1"',
            f'"{chat_id}.2"',
        ]
        iso, iso_us = st.iso, st.iso_us
        day = start // 86400
        rel = base_us - day * 86_400_000_000
        if rel + t["min_micro"] >= 0 and rel + t["max_micro"] < 86_400_000_000:
            # the whole conversation falls on one UTC day: format inline
            prefix = '"' + st.day_prefix(day)
            hms = st.hms
            fills = [f'{prefix}{hms[(rel + o) // 1_000_000]}.{(rel + o) % 1_000_000:06d}Z"' for o in t["micros"]]
        else:
            fills = [f'"{iso_us(base_us + o)}"' for o in t["micros"]]
        rel_s = start - day * 86400
        if rel_s + t["min_second"] >= 0 and rel_s + t["max_second"] < 86400:
            prefix = '"' + st.day_prefix(day)
            hms = st.hms
            fills += [f'{prefix}{hms[rel_s + o]}Z"' for o in t["seconds"]]
        else:
            fills += [f'"{iso(start + o)}"' for o in t["seconds"]]
        fills += [f'"{iso(start + o)[:-1]}+00:00Z"' for o in t["odds"]]
        fills += values
        return (t["format"] % t["order"](fills)).encode(), ("chat", start, end_ts)

    def _offline(self, r, chat_id, ts, update_ts, deleted):
        visitor = self._visitor(r)
        if not visitor["email"]:
            visitor["email"] = f"visitor{r.randint(1000, 99999)}@example.net"
        dept_id, dept_name = self._department(r)
        iso = self.st.iso

        def stamp(offset, odd=False):
            text = iso(ts + offset)
            return text[:-1] + "+00:00Z" if odd else text

        message = {
            "id": chat_id,
            "type": "offline_msg",
            "timestamp": iso(ts),
            "update_timestamp": iso(update_ts),
            "message": r.choice(OFFLINE_LINES),
            "visitor": visitor,
            "session": self._session(r, self._session_id(r, ts), stamp, -r.randint(0, 600), 0, r.random() < 0.25),
            "department_id": dept_id,
            "department_name": dept_name,
            "unread": r.choice([True, False, 1, 0]),
            "webpath": self._webpath(r, stamp),
            "tags": r.sample(TAGS, r.randint(0, 2)),
            "zendesk_ticket_id": r.randint(10000, 999999) if r.random() < 0.5 else None,
            "deleted": deleted,
        }
        # A quarter come without webpath (nothing promises one); chosen by the id's random part (not its
        # leading yymm, which would make the choice depend on the date the data are generated for), so no
        # random draw shifts.
        if zlib.crc32(str(chat_id).partition(".")[2].encode()) % 4 == 0:
            del message["webpath"]
        return message

    def _history(self, r, duration, visitor_name, agents, dept_id, stamp_us):
        """History events (timestamps from stamp_us(offset from start)) and the chat's message counts."""
        target = self.history_events
        if target <= 0:
            return [], {"agent": 0, "total": 0, "visitor": 0}
        n = max(4, target + r.randint(-(target // 5), target // 5))
        offsets = sorted(r.randrange(max(1, duration * 1_000_000)) for _ in range(n))
        msg_base = r.randint(1_600_000_000_000, 1_700_000_000_000)
        agent = agents[0] if agents else None
        agent_nick = f"agent:{agent['id']}" if agent else "agent:0"
        agent_name = agent["display_name"] if agent else "Agent"
        n_agent = n_visitor = 0
        events = []
        for i, off in enumerate(offsets):
            ts = stamp_us(off)
            if i == 0:
                ev = {"name": visitor_name, "nick": "visitor", "channel": "#", "type": "chat.memberjoin", "timestamp": ts}
            elif i == n - 1:
                ev = {"name": visitor_name, "nick": "visitor", "channel": "#", "type": "chat.memberleave", "timestamp": ts}
            elif i == 2 and agent:
                ev = {"name": agent_name, "nick": agent_nick, "channel": "#", "type": "chat.memberjoin", "timestamp": ts}
            elif i == n - 2 and agent:
                ev = {"name": agent_name, "nick": agent_nick, "channel": "#", "type": "chat.memberleave",
                      "timestamp": ts, "reason": "user_leave_chat"}
            else:
                roll = r.random()
                if roll < 0.82 or i == 1:
                    from_visitor = i == 1 or r.random() < 0.5 or not agent
                    if from_visitor:
                        n_visitor += 1
                    else:
                        n_agent += 1
                    msg_id = msg_base + off // 1000
                    ev = {
                        "name": visitor_name if from_visitor else agent_name,
                        "nick": "visitor" if from_visitor else agent_nick,
                        "channel": "#",
                        "type": "chat.msg",
                        "timestamp": ts,
                        "msg": r.choice(VISITOR_LINES if from_visitor else AGENT_LINES),
                        "msg_id": msg_id if r.random() < 0.5 else str(msg_id),
                        "options": "",
                        "sender_type": "Visitor" if from_visitor else "Agent",
                    }
                    if dept_id and r.random() < 0.3:
                        ev["department_id"] = r.choice([dept_id, str(dept_id)])
                elif roll < 0.87:
                    tags = r.sample(TAGS, 2)
                    ev = {"name": agent_name, "nick": agent_nick, "channel": "#", "type": "chat.tag",
                          "timestamp": ts, "tags": tags[:1], "new_tags": tags, "deleted_tags": []}
                elif roll < 0.91:
                    ev = {"name": agent_name, "nick": agent_nick, "channel": "#", "type": "chat.comment",
                          "timestamp": ts, "new_comment": "Customer confirmed the fix", "comment": ""}
                elif roll < 0.96:
                    ev = {"name": visitor_name, "nick": "visitor", "channel": "#", "type": "chat.rating",
                          "timestamp": ts, "new_rating": r.choice(["good", "bad"]), "rating": None}
                else:
                    dept = r.choice(self.departments) if self.departments else {"id": 0, "name": "General"}
                    ev = {"name": agent_name, "nick": agent_nick, "channel": "#", "type": "chat.transfer",
                          "timestamp": ts, "department_id": r.choice([dept["id"], str(dept["id"])]),
                          "department_name": dept["name"], "msg": f"Chat transferred to {dept['name']}"}
            events.append(ev)
        return events, {"agent": n_agent, "total": n_agent + n_visitor, "visitor": n_visitor}


class Dataset:
    """All data one simulated Zendesk Chat account serves; thread-safe for one writer and many readers."""

    def __init__(self):
        self.lock = threading.RLock()
        self.end = 0
        self.span_days = 0
        self.same_second = None
        self.busy_day = None
        self.agents = []
        self.bans = {"ip_address": [], "visitor": []}
        self.departments = []
        self.goals = []
        self.roles = []
        self.skills = []
        self.shortcuts = []
        self.triggers = []
        self.account = {}
        self.routing_settings = {}
        self.agent_timeline = []
        self.same_second_order = "id"
        self.same_microsecond = None
        self.real_shapes = {}    # what add_real_shapes added: name -> how to find it
        self._seed = 0
        self._keys = []          # sorted export keys: (update_ts, id), or (update_ts, rank, id) in other orders
        self._key_of = {}        # id -> its key
        self._blobs = {}         # id -> compact JSON bytes, as served (set_field overrides applied)
        self._raw_blobs = {}     # id -> the chat's bytes without overrides, only for chats that have some
        self._meta = {}          # id -> (type, timestamp_epoch, end_timestamp_epoch or None)
        self._deleted = set()
        self._salts = {}         # "scrambled": second -> hash salt, for seconds whose salt 0 order was id order
        self._timeline_keys = []  # sorted [(start_us, agent_id)] (or (start_us, rank, agent_id)), parallel to agent_timeline
        self._timeline_blobs = []  # as served (set_field overrides applied)
        self._timeline_salts = {}
        self._overrides = {}     # table -> {record key: [(path tuple, value), ...]}
        self._version = 0
        self._chats_cache = (None, None)
        self._live_sorted = (None, None)
        self._max_ts = 0
        self._stamps = _Stamps()
        self._factory = None
        self._mrng = random.Random(1)
        self._exports = {name: _EventExport(name) for name in EVENT_EXPORTS}
        self._erngs = {name: random.Random(f"{name}-mutations-0") for name in EVENT_EXPORTS}
        self.same_second_events = None  # the second of the same_second_events block, when generated with one
        self.chat_account_id = 1        # "account_id" of agent events

    # ---------------------------------------------------------------- generation
    @classmethod
    def generate(cls, seed=0, chats=300, offline_msgs=60, agents=250, ip_bans=120, visitor_bans=80,
                 departments=6, goals=3, roles=4, skills=6, shortcuts=12, triggers=8, timeline_entries=400,
                 history_events=20, end=None, span_days=30, same_second_chats=0, same_second_order="id",
                 same_microsecond_entries=0, real_shapes=False, conversions=120, department_events=80,
                 agent_events=150, same_second_events=0, busy_day_chats=0):
        """A deterministic account: the same arguments give the same bytes.

        same_second_order: the order the export serves chats that share an update second in.
          "id" (default): ascending id strings, i.e. keys (update_timestamp, id).
          "reversed": descending id strings; every second with 2+ chats differs from id order,
            also after mutations thin it out.
          "scrambled": a stable hash of the id (blake2b, salted per second), the salt picked so that
            every second holding 2+ chats when generated (or when add_real_shapes put a chat there)
            is not in id order. Mutations only ever move chats out of a second (into a new second of
            their own) and never reshuffle the rest, so a thinned-out second may end up in id order
            by chance; use "reversed" when that must never happen.
          Both other orders are a pure function of (second, id), so any start_id, also that of a chat
          that moved on or of no chat at all, has a well-defined position. The data are the same as
          with "id" (same seed, same chats); only the order within a second differs. The same rule
          orders agent_timeline entries that share a microsecond (by agent_id).
        same_microsecond_entries: extra agent_timeline entries (distinct agents) that all start at one
          microsecond, `ds.same_microsecond`; drawn from their own random stream.
        real_shapes: call add_real_shapes() once the data are generated (see there).
        conversions, department_events, agent_events: how many records each of those exports holds
          (GET /incremental/<name>; see _generate_conversions and the others for their shapes). Each
          is drawn from its own random stream (random.Random(f"<name>-{seed}")), so these parameters
          never change the bytes of any other endpoint. About one record in five shares its second
          with the one before; same_second_order orders a second's records as it orders chats.
        same_second_events: extra records of each of the three exports that all fall in one second,
          `ds.same_second_events` (to page through a second holding more than a page).
        busy_day_chats: extra chats in the one day around the middle of the span (`ds.busy_day`, its first
          second), the same_second_chats' second among them: a busy day in a quiet span (with few `chats`),
          or one busy day and empty months (with none).
        """
        if same_second_order not in SAME_SECOND_ORDERS:
            raise ValueError(f"same_second_order must be one of {SAME_SECOND_ORDERS}, not {same_second_order!r}")
        ds = cls()
        ds.same_second_order = same_second_order
        ds._seed = seed
        r = random.Random(seed)
        ds._mrng = random.Random(f"mutations-{seed}")
        ds.end = _to_epoch(end)
        ds.span_days = span_days
        st = ds._stamps
        start = ds.end - span_days * 86400
        ds.agents = [ds._make_agent(r, i, aid, start) for i, aid in enumerate(_ascending_ids(r, agents, 360000000000, 50_000_000))]
        dept_ids = _ascending_ids(r, departments, 360000100000, 5000)
        ds.departments = [ds._make_department(r, i, did) for i, did in enumerate(dept_ids)]
        for a in ds.agents:
            a["departments"] = sorted(r.sample(dept_ids, min(len(dept_ids), r.randint(0, 2))))
            a["enabled_departments"] = [d for d in a["departments"] if r.random() < 0.8]
        ds.skills = [ds._make_skill(r, i, sid) for i, sid in enumerate(_ascending_ids(r, skills, 1000100, 100))]
        for a in ds.agents:
            a["skills"] = sorted(r.sample([s["id"] for s in ds.skills], min(len(ds.skills), r.randint(0, 2))))
        ds.roles = [ds._make_role(r, i, rid) for i, rid in enumerate(_ascending_ids(r, roles, 360000200000, 1000))]
        for a in ds.agents:
            a["role_id"] = r.choice(ds.roles)["id"] if ds.roles else None
        for role in ds.roles:
            role["members_count"] = sum(1 for a in ds.agents if a["role_id"] == role["id"])
        ds.goals = [ds._make_goal(r, i, gid) for i, gid in enumerate(_ascending_ids(r, goals, 70000, 100))]
        ds.shortcuts = [ds._make_shortcut(r, i) for i in range(shortcuts)]
        ds.triggers = [ds._make_trigger(r, i, tid) for i, tid in enumerate(_ascending_ids(r, triggers, 66052600, 1000))]
        ds.account = ds._make_account(r, start)
        ds.routing_settings = {
            "routing_mode": "assigned",
            "chat_limit": {"enabled": True, "limit": 3, "limit_type": "account", "allow_agent_override": False},
            "skill_routing": {"enabled": True, "max_wait_time": 30},
            "reassignment": {"enabled": True, "timeout": 30},
            "auto_idle": {"enabled": False, "reassignments_before_idle": 3, "new_status": "away"},
            "auto_accept": {"enabled": False},
        }
        ds._generate_bans(r, ip_bans, visitor_bans, start)
        templates = min(TEMPLATE_COUNT, max(32, (chats + same_second_chats + busy_day_chats) // 4))
        ds._factory = _ChatFactory(st, ds.agents, ds.departments, history_events, templates)
        ds._generate_chats(r, chats, offline_msgs, start, same_second_chats, busy_day_chats)
        ds._generate_timeline(r, timeline_entries, start)
        if same_microsecond_entries:
            ds._generate_same_microsecond(same_microsecond_entries, start)
        ds._generate_events(start, conversions, department_events, agent_events, same_second_events)
        if real_shapes:
            ds.add_real_shapes()
        return ds

    def _make_agent(self, r, i, aid, start):
        first, last = r.choice(FIRST_NAMES), r.choice(LAST_NAMES)
        created = start - r.randint(86400, 900 * 86400)
        never = r.random() < 0.1
        enabled = r.random() < 0.9
        return {
            "id": aid,
            "first_name": first,
            "last_name": last,
            "display_name": f"{first} {last[0]}.",
            "email": f"{first.lower()}.{last.lower()}.{i}@example.com",
            "enabled": int(enabled) if i % 17 == 5 else enabled,
            "role_id": None,
            "roles": {"administrator": i % 10 == 0, "owner": i == 0},
            "departments": [],
            "enabled_departments": [],
            "skills": [],
            "create_date": self._stamps.iso(created),
            "last_login": None if never else self._stamps.iso(self.end - r.randint(600, 40 * 86400)),
            "login_count": 0 if never else r.randint(1, 3000),
            "scope": "all",
        }

    def _make_department(self, r, i, did):
        names = ["Sales", "Support", "Billing", "Returns", "VIP", "Partners", "Wholesale", "Tech"]
        members = sorted(a["id"] for a in r.sample(self.agents, min(len(self.agents), r.randint(0, 12))))
        return {
            "id": did,
            "name": names[i % len(names)] + ("" if i < len(names) else f" {i}"),
            "description": f"{names[i % len(names)]} team",
            "enabled": r.random() < 0.85,
            "members": members,
            "settings": {"chat_enabled": True, "support_group_id": r.randint(360000000, 369999999)},
        }

    def _make_skill(self, r, i, sid):
        names = ["English", "German", "French", "Spanish", "Returns", "Billing", "Hardware", "Japanese"]
        return {
            "id": sid,
            "name": names[i % len(names)] + ("" if i < len(names) else f" {i}"),
            "description": f"Can handle {names[i % len(names)].lower()} chats",
            "enabled": r.random() < 0.9,
            "members": sorted(a["id"] for a in r.sample(self.agents, min(len(self.agents), r.randint(0, 10)))),
        }

    def _make_role(self, r, i, rid):
        names = ["Administrator", "Agent", "Supervisor", "Viewer", "Trainee"]
        return {
            "id": rid,
            "name": names[i % len(names)] + ("" if i < len(names) else f" {i}"),
            "description": "Role for " + names[i % len(names)].lower() + "s",
            "enabled": True,
            "members_count": 0,
            "permissions": {
                "visitors_seen": r.choice(["account", "department", "own"]),
                "proactive_chatting": r.choice(["listen-join", "listen", "none"]),
                "edit_visitor_information": r.random() < 0.5,
                "edit_visitor_notes": True,
                "view_past_chats": r.choice(["account", "department"]),
                "edit_chat_tags": r.random() < 0.7,
                "manage_bans": i == 0,
                "access_analytics": r.choice(["account", "none"]),
                "view_monitor": i != 3,
                "edit_department_agents": i == 0,
                "set_agent_chat_limit": False,
                "manage_shortcuts": r.random() < 0.5,
            },
        }

    def _make_goal(self, r, i, gid):
        return {
            "id": gid,
            "name": ["Checkout", "Newsletter", "Upgrade", "Demo request"][i % 4],
            "description": "Visitor reached the goal page",
            "enabled": r.random() < 0.8,
            "attribution_model": r.choice(["first_touch", "last_touch"]),
            "attribution_period": r.choice([1, 7, 30]),
            "settings": {"conditions": [{"operator": "equals", "type": "url",
                                         "value": r.choice(PAGES)[0] + "thanks"}]},
        }

    def _make_shortcut(self, r, i):
        name = ["hi", "bye", "refund", "returns", "shipping", "vat", "hold", "thanks"][i % 8] + ("" if i < 8 else str(i))
        return {
            "name": name,
            "id": name,
            "message": r.choice(AGENT_LINES),
            "options": r.choice(["", "Yes/No", "Order number/Email"]),
            "tags": r.sample(TAGS, r.randint(0, 2)),
            "scope": r.choice(["all", "all", "department", "agent"]),
            "departments": [],
            "agents": [],
        }

    def _make_trigger(self, r, i, tid):
        wait = r.randint(1, 60)
        return {
            "id": tid,
            "name": ["First Reply", "Proactive cart help", "After hours", "VIP greeting"][i % 4] + ("" if i < 4 else f" {i}"),
            "enabled": r.random() < 0.8,
            "description": "Greets visitors automatically",
            "definition": {
                "event": r.choice(["chat_requested", "page_enter", "chat_message"]),
                "condition": ["and", ["eq", "@visitor_requesting_chat", True],
                              ["not", ["firedBefore"]], ["icontains", "@visitor_page_url", "/cart"]],
                "actions": [["wait", wait], ["sendMessageToVisitor", "Customer Service", "Thanks for waiting, we'll be right with you."]],
                "version": 1,
                "editor": r.choice(["advanced", "simple"]),
            },
        }

    def _make_account(self, r, start):
        return {
            "account_key": "".join(r.choices(ALNUM, k=32)),
            "status": "active",
            "create_date": self._stamps.iso(start - 1200 * 86400),
            "plan": {
                "name": "premium",
                "price": 59.0,
                "max_agents": 300,
                "max_departments": "unlimited",
                "max_concurrent_chats": "unlimited",
                "max_basic_triggers": "unlimited",
                "max_advanced_triggers": "unlimited",
                "max_history_search_days": "unlimited",
                "goals": 5,
                "file_upload": True,
                "rest_api": True,
                "agent_leaderboard": True,
                "agent_reports": True,
                "analytics": True,
                "chat_reports": True,
                "daily_reports": True,
                "email_reports": True,
                "high_load": True,
                "integrations": True,
                "ip_restriction": True,
                "monitoring": True,
                "operating_hours": True,
                "sla": True,
                "support_integration": True,
                "unbranding": True,
                "widget_customization": "full",
                "long_desc": "Premium plan",
                "short_desc": "Premium",
            },
            "billing": {
                "first_name": "Erin",
                "last_name": "Owner",
                "email": "billing@example.com",
                "company": "Example Shop GmbH",
                "phone": "+4930123456",
                "address1": "Musterstrasse 1",
                "address2": "",
                "city": "Berlin",
                "state": "",
                "postal_code": "10115",
                "country_code": "DE",
                "additional_info": "",
                "cycle": 1,
            },
        }

    def _generate_bans(self, r, n_ip, n_visitor, start):
        kinds = ["ip_address"] * n_ip + ["visitor"] * n_visitor
        r.shuffle(kinds)
        ids = _ascending_ids(r, len(kinds), 70519000, 40000)
        for i, (bid, kind) in enumerate(zip(ids, kinds)):
            self._append_ban(r, bid, kind, start + (i * (self.end - start)) // max(1, len(kinds)), old=i < len(kinds) // 10)

    def _append_ban(self, r, bid, kind, created, old=False):
        if kind == "ip_address":
            ban = {"id": bid, "type": "ip_address", "ip_address": f"203.0.{r.randint(0, 255)}.{r.randint(1, 254)}",
                   "reason": r.choice(["Spammer", "Abusive", "Bot traffic", ""])}
        else:
            num = r.randint(10000000, 99999999)
            ban = {"id": bid, "type": "visitor", "visitor_id": f"{r.randint(10000000, 19999999)}.{''.join(r.choices(ALNUM, k=13))}",
                   "visitor_name": f"Visitor {num}", "reason": r.choice(["Spammer", "Abusive", ""])}
        if old and r.random() < 0.5:
            pass  # very old bans carry no created_at at all
        elif old:
            ban["created_at"] = None
        else:
            ban["created_at"] = self._stamps.iso(created)
        self.bans[kind].append(ban)
        return ban

    def _generate_chats(self, r, n_chats, n_offline, start, same_second, busy_day=0):
        total = n_chats + n_offline
        kinds = [False] * n_chats + [True] * n_offline
        r.shuffle(kinds)
        span = self.end - start
        stamps = sorted(start + r.randrange(span + 1) for _ in range(total))
        if same_second:
            self.same_second = start + span // 2
            stamps += [self.same_second] * same_second
            kinds += [False] * same_second
        if busy_day:
            self.busy_day = start + span // 2 - 43200
            stamps += sorted(self.busy_day + r.randrange(86400) for _ in range(busy_day))
            kinds += [False] * busy_day
        entries = []
        factory = self._factory
        for ts, offline in zip(stamps, kinds):
            cid = self._unique_id(r, ts)
            blob, meta = factory.make_blob(r, cid, ts, offline=offline)
            self._blobs[cid] = blob
            self._meta[cid] = meta
            key = (ts, cid)
            self._key_of[cid] = key
            entries.append(key)
        if self.same_second_order != "id":
            if self.same_second_order == "scrambled":
                groups = {}
                for ts, cid in entries:
                    groups.setdefault(ts, []).append(cid)
                for ts, cids in groups.items():
                    if len(cids) > 1:
                        salt = _pick_salt(cids)
                        if salt:
                            self._salts[ts] = salt
            entries = [self._key(ts, cid) for ts, cid in entries]
            for key in entries:
                self._key_of[key[-1]] = key
        entries.sort()
        self._keys = entries
        self._max_ts = self._keys[-1][0] if self._keys else self.end

    def _unique_id(self, r, ts):
        while True:
            cid = self._factory.new_id(r, ts)
            if cid not in self._blobs and cid not in self._key_of:
                self._key_of[cid] = None  # reserve
                return cid

    def _key(self, ts, cid):
        """The export-order key of chat `cid` updated in second `ts` (any id: also for start_id cursors)."""
        mode = self.same_second_order
        if mode == "id":
            return (ts, cid)
        if mode == "reversed":
            return (ts, _reversed_rank(cid), cid)
        return (ts, _hash_rank(self._salts.get(ts, 0), cid), cid)

    def _tkey(self, us, agent_id):
        """The agent_timeline order key: (start_us, agent_id), with the same-second rule applied per microsecond."""
        mode = self.same_second_order
        if mode == "id":
            return (us, agent_id)
        if mode == "reversed":
            return (us, -agent_id if isinstance(agent_id, int) else _reversed_rank(str(agent_id)), agent_id)
        return (us, _hash_rank(self._timeline_salts.get(us, 0), agent_id), agent_id)

    def _store_chat(self, chat, ts):
        """Store a chat's raw (override-free) content at update second `ts`; overrides are re-applied."""
        cid = chat["id"]
        raw = _dumps(chat)
        overrides = self._overrides.get("chats", {}).get(cid)
        if overrides:
            self._raw_blobs[cid] = raw
            self._blobs[cid] = _dumps(self._patched(chat, overrides, strict=False))
        else:
            self._blobs[cid] = raw
        self._key_of[cid] = self._key(ts, cid)
        end = chat.get("end_timestamp")
        self._meta[cid] = (chat["type"], iso_to_epoch(chat["timestamp"]), iso_to_epoch(end) if end else None)

    def _raw_blob(self, cid):
        return self._raw_blobs.get(cid) or self._blobs[cid]

    def _insert_chat(self, chat, ts):
        """Store a new chat at second `ts`, anywhere in the export (generation-time placement)."""
        self._store_chat(chat, ts)
        cid = chat["id"]
        bisect.insort(self._keys, self._key_of[cid])
        self._max_ts = max(self._max_ts, ts)
        if self.same_second_order == "scrambled":
            self._rescramble_second(ts)
        self._version += 1

    def _rescramble_second(self, ts):
        """After a chat joined second `ts`: if the second now reads in id order, pick a new salt for it."""
        lo, hi = bisect.bisect_left(self._keys, (ts,)), bisect.bisect_left(self._keys, (ts + 1,))
        cids = [k[-1] for k in self._keys[lo:hi]]
        if len(cids) < 2 or cids != sorted(cids):
            return
        self._salts[ts] = _pick_salt(cids, self._salts.get(ts, 0) + 1)
        keys = sorted(self._key(ts, cid) for cid in cids)
        self._keys[lo:hi] = keys
        for key in keys:
            self._key_of[key[-1]] = key

    def _generate_timeline(self, r, n, start):
        if not self.agents:
            return
        seen = set()
        rows = []
        span_us = (self.end - start) * 1_000_000
        for _ in range(n):
            while True:
                agent_id = r.choice(self.agents)["id"]
                us = start * 1_000_000 + r.randrange(span_us)
                if (us, agent_id) not in seen:
                    break
            seen.add((us, agent_id))
            rows.append((us, agent_id))
        rows.sort()
        for us, agent_id in rows:
            self._append_timeline(r, us, agent_id)
        if self.same_second_order != "id":
            groups = {}
            for key in self._timeline_keys:
                groups.setdefault(key[0], []).append(key[-1])
            for us, members in groups.items():
                if len(members) > 1 and self.same_second_order == "scrambled":
                    salt = _pick_salt(members)
                    if salt:
                        self._timeline_salts[us] = salt
            rows = sorted(zip((self._tkey(k[0], k[-1]) for k in self._timeline_keys), self._timeline_blobs,
                              self.agent_timeline), key=operator.itemgetter(0))
            self._timeline_keys = [row[0] for row in rows]
            self._timeline_blobs = [row[1] for row in rows]
            self.agent_timeline = [row[2] for row in rows]

    def _generate_same_microsecond(self, n, start):
        """`n` timeline entries of distinct agents starting at one microsecond, from their own random stream."""
        if not self.agents:
            return
        r = random.Random(f"same-microsecond-{self._seed}")
        us = (start + (self.end - start) // 2) * 1_000_000 + 424242
        self.same_microsecond = us
        for agent in r.sample(self.agents, min(n, len(self.agents))):
            entry = self._timeline_entry(r, us, agent["id"])
            self._insert_timeline(us, agent["id"], entry)

    def _timeline_entry(self, r, us, agent_id):
        return {"agent_id": agent_id, "start_time": self._stamps.iso_us(us), "status": r.choice(STATUSES),
                "duration": round(r.uniform(1, 14400), 6), "engagement_count": r.choice([0, 0, 0, 1, 2, 5])}

    def _append_timeline(self, r, us, agent_id):
        entry = self._timeline_entry(r, us, agent_id)
        self.agent_timeline.append(entry)
        self._timeline_keys.append(self._tkey(us, agent_id))
        self._timeline_blobs.append(_dumps(entry))
        return entry

    def _insert_timeline(self, us, agent_id, entry):
        """Put `entry` in time order at microsecond `us` (its real instant, whatever its start_time looks like)."""
        key = self._tkey(us, agent_id)
        i = bisect.bisect_left(self._timeline_keys, key)
        if i < len(self._timeline_keys) and self._timeline_keys[i] == key:
            raise ValueError(f"a timeline entry of agent {agent_id} already starts at {us}")
        self._timeline_keys.insert(i, key)
        self._timeline_blobs.insert(i, _dumps(entry))
        self.agent_timeline.insert(i, entry)
        if self.same_second_order == "scrambled":
            lo = bisect.bisect_left(self._timeline_keys, (us,))
            hi = bisect.bisect_left(self._timeline_keys, (us + 1,))
            members = [k[-1] for k in self._timeline_keys[lo:hi]]
            if len(members) > 1 and members == sorted(members):
                self._timeline_salts[us] = _pick_salt(members, self._timeline_salts.get(us, 0) + 1)
                rows = sorted(zip((self._tkey(us, m) for m in members), self._timeline_blobs[lo:hi],
                                  self.agent_timeline[lo:hi]), key=operator.itemgetter(0))
                self._timeline_keys[lo:hi] = [row[0] for row in rows]
                self._timeline_blobs[lo:hi] = [row[1] for row in rows]
                self.agent_timeline[lo:hi] = [row[2] for row in rows]
        return entry

    # ---------------------------------------------------------------- event exports: generation
    def _event_key(self, exp, second, rid):
        """The export-order key of record `rid` of export `exp` in `second` (any id: also for start_id
        cursors), by the same_second_order rule chats follow."""
        mode = self.same_second_order
        if mode == "id":
            return (second, rid)
        if mode == "reversed":
            return (second, _reversed_rank(str(rid)), rid)
        return (second, _hash_rank(exp.salts.get(second, 0), rid), rid)

    def _generate_events(self, start, n_conversions, n_department, n_agent, same_second):
        """The three event exports, each from its own random stream (the rest of the data never changes)."""
        span = max(1, self.end - start)
        if same_second:
            self.same_second_events = start + span // 2 + 1
        for name, n in (("conversions", n_conversions), ("department_events", n_department),
                        ("agent_events", n_agent)):
            r = random.Random(f"{name}-{self._seed}")
            self._erngs[name] = random.Random(f"{name}-mutations-{self._seed}")
            if name == "agent_events":
                self.chat_account_id = r.randint(100000, 9999999)
            seconds = sorted(start + r.randrange(span + 1) for _ in range(n))
            for i in range(1, len(seconds)):
                if r.random() < 0.2:
                    seconds[i] = seconds[i - 1]  # runs of records in one second: the cursor's start_id matters
            if same_second:
                seconds = sorted(seconds + [self.same_second_events] * same_second)
            if name == "conversions":
                instants = [s * 1_000_000 for s in seconds]
            else:
                instants = sorted(s * 1_000_000 + r.randrange(1_000_000) for s in seconds)
            state = self._event_state(name)
            rows = []
            for us in instants:
                record = self._make_event(name, r, us, state)
                if record is not None:
                    rows.append((us, record))
            self._load_events(self._exports[name], rows)

    def _load_events(self, exp, rows):
        """Store generated (instant_us, record) rows in export order (salting seconds in "scrambled")."""
        if self.same_second_order == "scrambled":
            groups = {}
            for us, record in rows:
                groups.setdefault(us // 1_000_000, []).append(record["id"])
            for second, ids in groups.items():
                if len(ids) > 1:
                    salt = _pick_salt(ids)
                    if salt:
                        exp.salts[second] = salt
        keyed = sorted(((self._event_key(exp, us // 1_000_000, record["id"]), us, record) for us, record in rows),
                       key=operator.itemgetter(0))
        exp.keys = [k for k, _, _ in keyed]
        exp.instants = [us for _, us, _ in keyed]
        exp.records = [record for _, _, record in keyed]
        exp.blobs = [self._event_blob(exp.name, record) for record in exp.records]
        exp.key_of = {k[-1]: k for k in exp.keys}

    def _event_blob(self, name, record):
        overrides = self._overrides.get(name, {}).get(record["id"])
        return _dumps(self._patched(record, overrides, strict=False) if overrides else record)

    def _event_state(self, name):
        """What the next record of export `name` follows from: ids taken, and for agent and department
        events each one's current values (replayed from the records in time order)."""
        exp = self._exports[name]
        state = {"taken": set(exp.key_of), "values": {}}
        if name == "conversions":
            goals = [(g["id"], g["name"]) for g in self.goals if isinstance(g, dict) and "id" in g]
            state["goals"] = goals or [(70001, "Checkout")]
            ends = sorted((meta[2], cid) for cid, meta in self._meta.items() if meta[0] == "chat" and meta[2] is not None)
            state["chat_ends"] = ends
            state["end_seconds"] = [e for e, _ in ends]
            state["agents"] = {a["id"]: a for a in self.agents}
            return state
        owner = "agent_id" if name == "agent_events" else "department_id"
        for _, record in sorted(zip(exp.instants, exp.records), key=operator.itemgetter(0)):
            state["values"][(record[owner], record["field_name"])] = record["value"]
        return state

    def _make_event(self, name, r, us, state):
        """One record of export `name` at instant `us`, following `state`; None when nothing fits."""
        if name == "conversions":
            record = self._conversion(r, us // 1_000_000, state)
        elif name == "department_events":
            record = self._department_event(r, us, state) if self.departments else None
        else:
            record = self._agent_event(r, us, state) if self.agents else None
        if record is not None:
            state["taken"].add(record["id"])
        return record

    def _event_id(self, r, kind, owner, taken):
        while True:
            rid = f"{''.join(r.choices(ALNUM, k=7))}.{kind}:{owner}.{''.join(r.choices(ALNUM, k=6))}"
            if rid not in taken:
                return rid

    def _conversion(self, r, second, state):
        """Shape: the chats' "conversions" items plus attribution.chat_id (docs/schema-evidence.md); about
        one in ten (and every one before the first chat ended) has "attribution": null."""
        while True:
            rid = f"{self._stamps.yymm(second)}.{r.randint(100000, 99999999)}.{''.join(r.choices(ALNUM, k=13))}"
            if rid not in state["taken"]:
                break
        goal_id, goal_name = r.choice(state["goals"])
        i = bisect.bisect_right(state["end_seconds"], second - 30)
        attribution = None
        if i and r.random() < 0.9:
            cid = state["chat_ends"][r.randrange(max(0, i - 200), i)][1]
            chat = json.loads(self._raw_blob(cid))
            agent_ids = chat.get("agent_ids") or []
            agent_id = int(agent_ids[0]) if agent_ids else None
            agent = state["agents"].get(agent_id)
            attribution = {
                "agent_id": agent_id,
                "agent_name": agent["display_name"] if agent else (chat.get("agent_names") or [None])[0],
                "chat_id": cid,
                "chat_timestamp": chat.get("timestamp"),
                "department_id": chat.get("department_id"),
                "department_name": chat.get("department_name"),
            }
        return {"id": rid, "goal_id": goal_id, "goal_name": goal_name, "timestamp": self._stamps.iso(second),
                "attribution": attribution}

    def _department_event(self, r, us, state):
        """Shape: id, department_id, field_name, previous_value, value, timestamp (docs/schema-evidence.md):
        mostly "status" changes (strings), some "members" changes whose values are objects."""
        dept = r.choice(self.departments)
        did = dept["id"]
        values = state["values"]
        if r.random() < 0.85 or not self.agents:
            field = "status"
            previous = values.get((did, field), "offline")
            value = r.choice([s for s in DEPARTMENT_STATUSES if s != previous])
        else:
            field = "members"
            before = values.get((did, field))
            before = before["agent_ids"] if isinstance(before, dict) else (dept.get("members") or [])
            previous = {"agent_ids": list(before)}
            value = {"agent_ids": sorted(set(before) ^ {r.choice(self.agents)["id"]})}
        values[(did, field)] = value
        return {"department_id": did, "field_name": field, "id": self._event_id(r, "department", did, state["taken"]),
                "previous_value": previous, "timestamp": self._stamps.iso_us(us), "value": value}

    def _agent_event(self, r, us, state):
        """Shape of the documented example: account_id, agent_id, field_name ("status": strings,
        "engagements": integers), id, previous_value, timestamp (6-digit fraction), value."""
        aid = r.choice(self.agents)["id"]
        values = state["values"]
        if r.random() < 0.7:
            field = "status"
            previous = values.get((aid, field), "offline")
            value = r.choice([s for s in STATUS_VALUES if s != previous])
        else:
            field = "engagements"
            previous = values.get((aid, field), 0)
            previous = previous if isinstance(previous, int) else 0
            value = previous + 1 if previous == 0 or r.random() < 0.55 else previous - 1
        values[(aid, field)] = value
        return {"account_id": self.chat_account_id, "agent_id": aid, "field_name": field,
                "id": self._event_id(r, "agent", aid, state["taken"]), "previous_value": previous,
                "timestamp": self._stamps.iso_us(us), "value": value}

    def _insert_event(self, exp, us, record):
        """Put a new record of `exp` in export order at instant `us` (re-salting its second in "scrambled")."""
        second = us // 1_000_000
        key = self._event_key(exp, second, record["id"])
        i = bisect.bisect_right(exp.keys, key)
        exp.keys.insert(i, key)
        exp.instants.insert(i, us)
        exp.records.insert(i, record)
        exp.blobs.insert(i, self._event_blob(exp.name, record))
        exp.key_of[record["id"]] = key
        if self.same_second_order == "scrambled":
            lo, hi = bisect.bisect_left(exp.keys, (second,)), bisect.bisect_left(exp.keys, (second + 1,))
            ids = [k[-1] for k in exp.keys[lo:hi]]
            if len(ids) > 1 and ids == sorted(ids):
                exp.salts[second] = _pick_salt(ids, exp.salts.get(second, 0) + 1)
                rows = sorted(zip((self._event_key(exp, second, rid) for rid in ids), exp.instants[lo:hi],
                                  exp.records[lo:hi], exp.blobs[lo:hi]), key=operator.itemgetter(0))
                exp.keys[lo:hi] = [row[0] for row in rows]
                exp.instants[lo:hi] = [row[1] for row in rows]
                exp.records[lo:hi] = [row[2] for row in rows]
                exp.blobs[lo:hi] = [row[3] for row in rows]
                for row in rows:
                    exp.key_of[row[0][-1]] = row[0]

    # ---------------------------------------------------------------- read access
    @property
    def chats(self):
        """Every chat as the export serves it (deleted ones included, set_field overrides applied), in export
        order: by update second, then by the same_second_order rule (default: id)."""
        with self.lock:
            version, cached = self._chats_cache
            if version != self._version:
                cached = [json.loads(self._blobs[k[-1]]) for k in self._keys]
                self._chats_cache = (self._version, cached)
            return cached

    def chat(self, chat_id):
        """One chat as served (set_field overrides applied)."""
        with self.lock:
            return json.loads(self._blobs[chat_id])

    def chat_ids(self):
        """All chat ids in export order (update second, then the same_second_order rule), deleted ones included."""
        with self.lock:
            return [k[-1] for k in self._keys]

    def live_chat_ids(self):
        with self.lock:
            return [k[-1] for k in self._keys if k[-1] not in self._deleted]

    def deleted_chat_ids(self):
        with self.lock:
            return sorted(self._deleted)

    def chat_count(self):
        return len(self._keys)

    def update_epoch(self, chat_id):
        return self._key_of[chat_id][0]

    @property
    def max_update_timestamp(self):
        return self._max_ts

    # --- used by the server (callers hold self.lock)
    def export_slice(self, start_time, start_id, inclusive, limit):
        """The export page as (update_ts, id) pairs: export positions after the cursor, at most `limit`.

        The cursor (start_time, start_id) is the position of that key in export order (see _key), so
        with a same_second_order other than "id" it follows that order, for any start_id.
        """
        if start_id is None:
            i = bisect.bisect_left(self._keys, (start_time,))
        elif inclusive:
            i = bisect.bisect_left(self._keys, self._key(start_time, start_id))
        else:
            i = bisect.bisect_right(self._keys, self._key(start_time, start_id))
        if self.same_second_order == "id":
            return self._keys[i:i + limit]
        return [(k[0], k[-1]) for k in self._keys[i:i + limit]]

    def blob(self, chat_id):
        return self._blobs[chat_id]

    def timeline_slice(self, start_us, limit):
        i = bisect.bisect_left(self._timeline_keys, (start_us,))
        return self._timeline_keys[i:i + limit], self._timeline_blobs[i:i + limit]

    def search(self, kind, field, low, high, low_inclusive=True, high_inclusive=True):
        """Live chat ids of one type whose `field` epoch lies in the range, ordered by (field, id)."""
        idx = 1 if field == "timestamp" else 2
        hits = []
        for cid, meta in self._meta.items():
            if cid in self._deleted or (kind and meta[0] != kind):
                continue
            v = meta[idx]
            if v is None:
                continue
            if low is not None and (v < low or (v == low and not low_inclusive)):
                continue
            if high is not None and (v > high or (v == high and not high_inclusive)):
                continue
            hits.append((v, cid))
        hits.sort()
        return [cid for _, cid in hits]

    def has_chat(self, chat_id):
        return chat_id in self._blobs

    def chat_id_at(self, index):
        """The id at `index` in export order, or None when there are fewer chats."""
        return self._keys[index][-1] if -len(self._keys) <= index < len(self._keys) else None

    def sorted_live_ids(self):
        """Ids of chats not deleted, sorted by id (the order of the old /chats listing)."""
        version, ids = self._live_sorted
        if version != self._version:
            ids = sorted(cid for cid in self._blobs if cid not in self._deleted)
            self._live_sorted = (self._version, ids)
        return ids

    def is_deleted(self, chat_id):
        return chat_id in self._deleted

    # --- the event exports (conversions, department_events, agent_events)
    @property
    def conversions(self):
        """Every record of /incremental/conversions as served (set_field overrides applied), in export order:
        by second, then by the same_second_order rule (default: id)."""
        return self.served("conversions")

    @property
    def department_events(self):
        """Every record of /incremental/department_events as served, in export order."""
        return self.served("department_events")

    @property
    def agent_events(self):
        """Every record of /incremental/agent_events as served, in export order."""
        return self.served("agent_events")

    def event_ids(self, name):
        """The own ids of export `name` (one of EVENT_EXPORTS) in export order."""
        with self.lock:
            return [k[-1] for k in self._exports[name].keys]

    def event_count(self, name):
        return len(self._exports[name])

    def event_second(self, name, rid):
        """The second (epoch) that places record `rid` of export `name` in the export."""
        return self._exports[name].key_of[rid][0]

    def event_instant(self, name, rid):
        """The record's own instant in epoch microseconds (its timestamp, fraction included)."""
        with self.lock:
            exp = self._exports[name]
            return exp.instants[exp.index_of(rid)]

    def event_slice(self, name, start_second, start_id, inclusive, limit):
        """An export page of `name` (callers hold self.lock): (second, id, instant_us, served bytes) of the
        records after the cursor (start_second, start_id), at most `limit`; like export_slice for chats."""
        exp = self._exports[name]
        if start_id is None:
            i = bisect.bisect_left(exp.keys, (start_second,))
        elif inclusive:
            i = bisect.bisect_left(exp.keys, self._event_key(exp, start_second, start_id))
        else:
            i = bisect.bisect_right(exp.keys, self._event_key(exp, start_second, start_id))
        j = min(len(exp.keys), i + limit)
        return [(exp.keys[k][0], exp.keys[k][-1], exp.instants[k], exp.blobs[k]) for k in range(i, j)]

    # ---------------------------------------------------------------- mutations
    def _next_ts(self):
        ts = self._max_ts + 1
        if ts > time.time() - MUTATION_MARGIN_SECONDS:
            raise ValueError("mutation would put update_timestamp within 10 minutes of now; generate with an older `end`")
        self._max_ts = ts
        return ts

    def _replace_chat(self, chat):
        cid = chat["id"]
        old = self._key_of[cid]
        i = bisect.bisect_left(self._keys, old)
        del self._keys[i]
        ts = self._next_ts()
        chat["update_timestamp"] = self._stamps.iso(ts)
        self._store_chat(chat, ts)
        self._keys.append(self._key_of[cid])
        self._version += 1
        return chat

    def update_chat(self, chat_id, **fields):
        """Change a chat after it ended (tags, rating, zendesk_ticket_id...); it moves to the end of the export.

        Works on the chat's own content; set_field overrides stay pinned on top of it. Returns the raw chat.
        """
        with self.lock:
            chat = json.loads(self._raw_blob(chat_id))
            chat.update(fields)
            return self._replace_chat(chat)

    def delete_chat(self, chat_id):
        """Mark deleted: stays in the export with deleted=true, leaves the search/list endpoints."""
        with self.lock:
            chat = json.loads(self._raw_blob(chat_id))
            chat["deleted"] = True
            self._deleted.add(chat_id)
            return self._replace_chat(chat)

    def add_chats(self, n, offline=False):
        with self.lock:
            r = self._mrng
            ids = []
            for _ in range(n):
                ts = self._next_ts()
                cid = self._unique_id(r, ts)
                blob, meta = self._factory.make_blob(r, cid, ts, offline=offline, recent=True)
                self._blobs[cid] = blob
                self._meta[cid] = meta
                key = self._key(ts, cid)
                self._key_of[cid] = key
                self._keys.append(key)
                ids.append(cid)
            self._version += 1
            return ids

    def add_agents(self, n):
        with self.lock:
            r = self._mrng
            base = self.agents[-1]["id"] if self.agents else 360000000000
            ids = []
            for aid in _ascending_ids(r, n, base + 1, 50_000_000):
                agent = self._make_agent(r, len(self.agents), aid, self.end - self.span_days * 86400)
                agent["role_id"] = self.roles[0]["id"] if self.roles else None
                self.agents.append(agent)
                ids.append(aid)
            return ids

    def remove_agent(self, agent_id):
        with self.lock:
            self.agents[:] = [a for a in self.agents if a["id"] != agent_id]

    def update_agent(self, agent_id, **fields):
        with self.lock:
            for a in self.agents:
                if a["id"] == agent_id:
                    a.update(fields)
                    return a
            raise KeyError(agent_id)

    def remove_trigger(self, trigger_id):
        with self.lock:
            self.triggers[:] = [t for t in self.triggers if t.get("id") != trigger_id]

    def add_bans(self, ip=0, visitor=0):
        with self.lock:
            r = self._mrng
            top = max([b["id"] for arr in self.bans.values() for b in arr] or [70519000])
            kinds = ["ip_address"] * ip + ["visitor"] * visitor
            r.shuffle(kinds)
            ids = []
            for bid, kind in zip(_ascending_ids(r, len(kinds), top + 1, 40000), kinds):
                self._append_ban(r, bid, kind, self._max_ts)
                ids.append(bid)
            return ids

    def remove_ban(self, ban_id):
        with self.lock:
            for kind in self.bans:
                self.bans[kind][:] = [b for b in self.bans[kind] if b["id"] != ban_id]

    def add_timeline_entries(self, n):
        with self.lock:
            r = self._mrng
            last = self._timeline_keys[-1][0] if self._timeline_keys else self.end * 1_000_000
            limit = int((time.time() - MUTATION_MARGIN_SECONDS) * 1_000_000)
            added = []
            for _ in range(n):
                last += r.randint(1, 120_000_000)
                if last > limit:
                    raise ValueError("timeline entry would start within 10 minutes of now")
                added.append(self._append_timeline(r, last, r.choice(self.agents)["id"]))
            return added

    def add_events(self, name, n):
        """`n` new records of export `name` (one of EVENT_EXPORTS), later than every record it holds and
        every chat update; a few share a second. Draws from the export's own random stream (so chats,
        agents... are not affected). Returns their ids."""
        if name not in EVENT_EXPORTS:
            raise ValueError(f"unknown export {name!r}; one of {EVENT_EXPORTS}")
        with self.lock:
            exp = self._exports[name]
            r = self._erngs[name]
            state = self._event_state(name)
            second = max(exp.max_second() or self.end, self._max_ts)
            last_us = 0
            limit = time.time() - MUTATION_MARGIN_SECONDS
            ids = []
            for k in range(n):
                second += r.randint(1, 20) if k == 0 else r.choice((0, 0, 1, 3, 12))
                if second > limit:
                    raise ValueError(f"a new {name} record would fall within 10 minutes of now")
                us = second * 1_000_000 + (0 if name == "conversions" else r.randrange(1_000_000))
                if name != "conversions" and us <= last_us:
                    us = last_us + 1
                    second = us // 1_000_000
                last_us = us
                record = self._make_event(name, r, us, state)
                if record is None:
                    continue
                self._insert_event(exp, us, record)
                ids.append(record["id"])
            return ids

    def mutate(self, seed=0):
        """A realistic mix of changes between two syncs; returns what changed."""
        with self.lock:
            self._mrng = r = random.Random(f"mutate-{seed}")
            live = [cid for cid in self.live_chat_ids()]
            picked = r.sample(live, min(len(live), 8))
            to_update, to_delete = picked[:6], picked[6:]
            updated = []
            for cid in to_update:
                chat = json.loads(self._raw_blob(cid))
                change = r.choice(["tags", "rating", "ticket"])
                if change == "tags":
                    self.update_chat(cid, tags=sorted(set(chat.get("tags", [])) | {"follow_up"}))
                elif change == "rating" and chat["type"] == "chat":
                    self.update_chat(cid, rating="good", comment="Changed my mind, great help")
                else:
                    self.update_chat(cid, zendesk_ticket_id=r.randint(1000000, 9999999))
                updated.append(cid)
            for cid in to_delete:
                self.delete_chat(cid)
            new_chats = self.add_chats(10)
            new_offline = self.add_chats(3, offline=True)
            removed_agents = [a["id"] for a in r.sample(self.agents, min(1, len(self.agents)))]
            for aid in removed_agents:
                self.remove_agent(aid)
            updated_agents = []
            if self.agents:
                agent = r.choice(self.agents)
                self.update_agent(agent["id"], last_login=self._stamps.iso(self._max_ts), login_count=agent["login_count"] + 1)
                updated_agents.append(agent["id"])
            new_agents = self.add_agents(2)
            with_id = [t["id"] for t in self.triggers if "id" in t]
            removed_triggers = with_id[-1:]
            for tid in removed_triggers:
                self.remove_trigger(tid)
            all_bans = [b["id"] for arr in self.bans.values() for b in arr]
            removed_bans = r.sample(all_bans, min(1, len(all_bans)))
            for bid in removed_bans:
                self.remove_ban(bid)
            new_bans = self.add_bans(ip=2, visitor=2)
            new_timeline = self.add_timeline_entries(20) if self.agents else []
            # the event exports: each from its own stream, so the changes above are what they were without them
            new_events = {}
            for name, n in (("conversions", 4), ("department_events", 3), ("agent_events", 6)):
                self._erngs[name] = random.Random(f"mutate-{name}-{seed}")
                new_events[f"new_{name}"] = self.add_events(name, n)
            return {
                "updated_chats": updated,
                "new_chats": new_chats + new_offline,
                "deleted_chats": list(to_delete),
                "new_agents": new_agents,
                "removed_agents": removed_agents,
                "updated_agents": updated_agents,
                "removed_triggers": removed_triggers,
                "new_bans": new_bans,
                "removed_bans": removed_bans,
                "new_timeline_entries": len(new_timeline),
                **new_events,
            }

    # ---------------------------------------------------------------- arbitrary values (set_field)
    REMOVE = REMOVE

    def set_field(self, stream, record, path, value, *, by="auto"):
        """Serve `value` (any JSON value, or Dataset.REMOVE to drop the field) at `path` of one record.

        stream: one of SET_FIELD_STREAMS: "chats", "agent_timeline", "agents", "bans" (both arrays),
          "bans.ip_address", "bans.visitor", "departments", "goals", "roles", "skills", "shortcuts",
          "triggers", "account", "routing_settings", "conversions", "department_events", "agent_events".
        record: which record (ignored for account and routing_settings). by="auto" tries, in order, the
          record's key -- chats: id; agent_timeline: (agent_id, start_time) as stored; shortcuts: name;
          triggers: id, or name for a trigger without id; others: id -- and then an int index into the
          stream's order (chats and the event exports: export order; agent_timeline: time order; "bans":
          the id-sorted union; otherwise list order). by="index" or by="id" forces one reading.
        path: list of object keys (str) and array indices (int); setting index == len appends; an empty
          path replaces the whole record.

        The override is applied on the way out and stays pinned: the dataset keeps the record's own
        values underneath, so mutations (update_chat, mutate...) keep working on sane data and the
        override is re-applied to their result; several overrides of one record apply in the order
        set (setting the same path again replaces the earlier one). Served bytes change at once
        (chats and agent_timeline are re-serialised into their pre-serialised blobs). What does NOT
        change is where the API itself puts the record: export order and cursors, the agent/ban
        since_id windows, the chat search index and `end_time`/`end_id`/`next_page` all come from the
        record's own values (likewise for the event exports: their order, end_time and end_id). In particular overriding a chat's "update_timestamp" (or "id") does not
        move the chat in the export order: the API's order is its own. Returns the record as now served.
        """
        if stream not in SET_FIELD_STREAMS:
            raise ValueError(f"unknown stream {stream!r}; one of {SET_FIELD_STREAMS}")
        if by not in ("auto", "index", "id"):
            raise ValueError("by must be 'auto', 'index' or 'id'")
        path = tuple(path)
        if value is not REMOVE:
            _dumps(value)  # JSON-serialisable or TypeError now, not at serve time
        with self.lock:
            table = stream.split(".")[0]
            key, raw = self._locate(stream, record, by)
            entries = self._overrides.setdefault(table, {}).setdefault(key, [])
            previous = list(entries)
            entries[:] = [e for e in entries if e[0] != path] + [(path, value)]
            try:
                served = self._patched(raw, entries)
            except ValueError:
                entries[:] = previous
                if not entries:
                    del self._overrides[table][key]
                raise
            if table == "chats":
                self._raw_blobs.setdefault(key, self._blobs[key])
                self._blobs[key] = _dumps(served)
                self._version += 1
            elif table == "agent_timeline":
                i = self._timeline_index(key)
                self._timeline_blobs[i] = _dumps(served)
            elif table in EVENT_EXPORTS:
                exp = self._exports[table]
                exp.blobs[exp.index_of(key)] = _dumps(served)
            return served

    def clear_fields(self, stream=None):
        """Drop set_field overrides (of one stream, or all); served bytes go back to the records' own."""
        with self.lock:
            tables = [stream.split(".")[0]] if stream else list(self._overrides)
            for table in tables:
                self._overrides.pop(table, None)
                if table == "chats":
                    for cid, raw in self._raw_blobs.items():
                        self._blobs[cid] = raw
                    self._raw_blobs.clear()
                    self._version += 1
                elif table == "agent_timeline":
                    self._timeline_blobs = [_dumps(e) for e in self.agent_timeline]
                elif table in EVENT_EXPORTS:
                    exp = self._exports[table]
                    exp.blobs = [_dumps(record) for record in exp.records]

    def served(self, stream):
        """What the endpoint serves for `stream` right now, overrides applied (a list, or a dict for account,
        routing_settings and bans). Without overrides this is the dataset's own object."""
        with self.lock:
            if stream in ("account", "routing_settings"):
                obj = getattr(self, stream)
                entries = self._overrides.get(stream, {}).get(None)
                return self._patched(obj, entries) if entries else obj
            if stream == "bans":
                return {kind: self.patch_records("bans", self.bans[kind]) for kind in ("ip_address", "visitor")}
            if stream in ("bans.ip_address", "bans.visitor"):
                return self.patch_records("bans", self.bans[stream.split(".")[1]])
            if stream == "chats":
                return self.chats
            if stream == "agent_timeline":
                return [json.loads(b) for b in self._timeline_blobs]
            if stream in EVENT_EXPORTS:
                return [json.loads(b) for b in self._exports[stream].blobs]
            return self.patch_records(stream, getattr(self, stream))

    def patch_records(self, table, records):
        """`records` (the dataset's own dicts of one config table) as served: overridden ones replaced by copies."""
        overrides = self._overrides.get(table)
        if not overrides:
            return records
        out = []
        for rec in records:
            entries = overrides.get(_record_key(table, rec))
            out.append(self._patched(rec, entries) if entries else rec)
        return out

    def overridden(self, table):
        """The record keys of `table` that have set_field overrides (a mapping; empty when none)."""
        return self._overrides.get(table) or {}

    @staticmethod
    def _patched(raw, entries, strict=True):
        """A copy of `raw` with the overrides applied; strict=False skips one whose path a mutation removed."""
        obj = _json_copy(raw)
        for path, value in entries:
            try:
                obj = _apply_override(obj, path, value)
            except ValueError:
                if strict:
                    raise
        return obj

    def _timeline_index(self, key):
        us, agent_id = key
        lo, hi = bisect.bisect_left(self._timeline_keys, (us,)), bisect.bisect_left(self._timeline_keys, (us + 1,))
        for i in range(lo, hi):
            if self._timeline_keys[i][-1] == agent_id:
                return i
        raise KeyError(key)

    def _locate(self, stream, record, by):
        """(override key, the record's own value) for set_field."""
        table = stream.split(".")[0]
        is_index = isinstance(record, int) and not isinstance(record, bool)
        if table in ("account", "routing_settings"):
            return None, getattr(self, table)
        if table == "chats":
            if by != "index" and isinstance(record, str) and record in self._blobs:
                return record, json.loads(self._raw_blob(record))
            if by != "id" and is_index and -len(self._keys) <= record < len(self._keys):
                cid = self._keys[record][-1]
                return cid, json.loads(self._raw_blob(cid))
            raise KeyError(f"no chat {record!r}")
        if table == "agent_timeline":
            if by != "index" and isinstance(record, (tuple, list)) and len(record) == 2:
                for i, entry in enumerate(self.agent_timeline):
                    if entry.get("agent_id") == record[0] and entry.get("start_time") == record[1]:
                        k = self._timeline_keys[i]
                        return (k[0], k[-1]), entry
            if by != "id" and is_index and -len(self._timeline_keys) <= record < len(self._timeline_keys):
                k = self._timeline_keys[record]
                return (k[0], k[-1]), self.agent_timeline[record]
            raise KeyError(f"no agent_timeline entry {record!r}")
        if table in EVENT_EXPORTS:
            exp = self._exports[table]
            if by != "index" and isinstance(record, str) and record in exp.key_of:
                return record, exp.records[exp.index_of(record)]
            if by != "id" and is_index and -len(exp) <= record < len(exp):
                own = exp.records[record]
                return own["id"], own
            raise KeyError(f"no {table} record {record!r}")
        if stream == "bans":
            records = sorted((b for arr in self.bans.values() for b in arr), key=lambda b: b["id"])
        elif table == "bans":
            records = self.bans[stream.split(".")[1]]
        else:
            records = getattr(self, table)
        if by != "index":
            for rec in records:
                key = _record_key(table, rec)
                if key == record or (isinstance(key, tuple) and key[1] == record):
                    return key, rec
        if by != "id" and is_index and -len(records) <= record < len(records):
            rec = records[record]
            return _record_key(table, rec), rec
        raise KeyError(f"no {stream} record {record!r}")

    # ---------------------------------------------------------------- recorded real-API shapes
    def add_real_shapes(self):
        """Add records shaped like ones real Zendesk Chat accounts have sent (reference §4), each otherwise
        complete like the generated ones, served by the normal endpoints; call it before serving (it is
        data generation: it may join chats to existing seconds and, in "scrambled" order, re-salt such a
        second). Draws from its own random stream, so the rest of the data do not change.

        Returns (and keeps in `self.real_shapes`) name -> how to find the record:
          trigger_without_id: the trigger's name (it has no "id"; the legacy API addressed triggers by name)
          timeline_start_time_seconds: (agent_id, start_time) of an entry whose start_time is epoch seconds (int)
          timeline_start_time_micros: (agent_id, start_time) of one whose start_time is epoch microseconds (int)
              (both sit in the timeline at their real instant, so export pages stay in time order)
          ban_type_I: ban id; "type": "I" (the docs' own example), in the ip_address array
          ban_type_missing: ban id; no "type" at all, in the visitor array
          chat_long_history: chat id; 24 history events, one with skills_name ["Billing", "VIP"],
              msg_id int in one chat.msg and str in another, department_id as a string in one
          chat_webpath_arrays: chat id; webpath mixes objects with [epoch, url], [url, url] and
              [epoch, url, title] arrays
          chat_conversions: chat id; conversions with goal_id/goal_name/timestamp/attribution{...}
          offline_msg_odd_dates: chat id; type offline_msg, no end_timestamp, session dates "...+00:00Z"
          chat_string_types: chat id; unread 1 (int), agent_ids strings, engagements with string agent_id
              (it joins the same-second block when the dataset has one)
          account_plan_unlimited: account_key; plan max_agents, max_departments, max_concurrent_chats,
              max_history_search_days ... are "unlimited"
          agent_int_enabled: agent id; "enabled": 0 (int), departments a list of several int ids (one of
              a department that no longer exists)
        """
        with self.lock:
            if self.real_shapes:
                raise RuntimeError("add_real_shapes() was already called on this dataset")
            r = random.Random(f"real-shapes-{self._seed}")
            start = self.end - self.span_days * 86400
            span = max(1, self.end - start)
            added = {}
            added["trigger_without_id"] = self._real_trigger(r)
            added.update(self._real_timeline(r, start, span))
            added.update(self._real_bans(r, start, span))
            added.update(self._real_chats(r, start, span))
            added["account_plan_unlimited"] = self._real_account()
            added["agent_int_enabled"] = self._real_agent(r, start)
            self.real_shapes = added
            self._version += 1
            return dict(added)

    def _real_trigger(self, r):
        trigger = self._make_trigger(r, 0, 0)
        del trigger["id"]
        trigger["name"] = "Legacy offline greeting"
        trigger["description"] = "Created with the legacy dashboard; addressed by name"
        trigger["definition"]["event"] = "chat_requested"
        self.triggers.append(trigger)
        return trigger["name"]

    def _real_timeline(self, r, start, span):
        agents = self.agents or [{"id": 360001234567}]
        out = {}
        second = start + span // 3
        a1 = agents[len(agents) // 3]["id"]
        while any(k[0] == second * 1_000_000 and k[-1] == a1 for k in self._timeline_keys):
            second += 1
        entry = {"agent_id": a1, "start_time": second, "status": "invisible", "duration": 459.213926,
                 "engagement_count": 0}
        self._insert_timeline(second * 1_000_000, a1, entry)
        out["timeline_start_time_seconds"] = (a1, second)
        us = (start + 2 * span // 3) * 1_000_000 + 301292
        a2 = agents[2 * len(agents) // 3]["id"]
        while any(k[0] == us and k[-1] == a2 for k in self._timeline_keys):
            us += 1
        entry = {"agent_id": a2, "start_time": us, "status": "online", "duration": round(r.uniform(1, 14400), 6),
                 "engagement_count": 2}
        self._insert_timeline(us, a2, entry)
        out["timeline_start_time_micros"] = (a2, us)
        return out

    def _real_bans(self, r, start, span):
        taken = sorted(b["id"] for arr in self.bans.values() for b in arr)
        created = self._stamps.iso(start + span // 2)
        ip_id = _free_id(taken, len(taken) // 2, 70519881)
        taken = sorted(taken + [ip_id])
        visitor_id = _free_id(taken, (len(taken) * 3) // 4, ip_id + 1)
        ip_ban = {"id": ip_id, "type": "I", "ip_address": f"192.0.2.{r.randint(2, 254)}", "reason": "Spammer",
                  "created_at": created}
        visitor_ban = {"id": visitor_id, "visitor_id": f"{r.randint(10000000, 19999999)}.{''.join(r.choices(ALNUM, k=13))}",
                       "visitor_name": f"Visitor {r.randint(10000000, 99999999)}", "reason": "Spammer",
                       "created_at": created}
        for kind, ban in (("ip_address", ip_ban), ("visitor", visitor_ban)):
            arr = self.bans[kind]
            arr.insert(bisect.bisect_left([b["id"] for b in arr], ban["id"]), ban)
        return {"ban_type_I": ip_id, "ban_type_missing": visitor_id}

    def _real_account(self):
        plan = self.account.setdefault("plan", {})
        for limit in ("max_agents", "max_departments", "max_concurrent_chats", "max_basic_triggers",
                      "max_advanced_triggers", "max_history_search_days"):
            plan[limit] = "unlimited"
        return self.account.get("account_key")

    def _real_agent(self, r, start):
        ids = [a["id"] for a in self.agents]
        aid = _free_id(ids, len(ids) // 2, 360000000001)
        agent = self._make_agent(r, len(self.agents), aid, start)
        dept_ids = [d["id"] for d in self.departments]
        gone = (max(dept_ids) if dept_ids else 360000100000) + 7919  # a department deleted since
        agent["enabled"] = 0
        agent["role_id"] = self.roles[0]["id"] if self.roles else None
        agent["departments"] = sorted(dept_ids[:3] + [gone])
        agent["enabled_departments"] = dept_ids[:1]
        agent["skills"] = [s["id"] for s in self.skills[:2]]
        self.agents.insert(bisect.bisect_left(ids, aid), agent)
        return aid

    def _real_chats(self, r, start, span):
        seconds = sorted({k[0] for k in self._keys} - {self.same_second})

        def second_at(fraction):
            """An update second shared with a generated chat (so real shapes meet the same-second rule)."""
            if seconds:
                return seconds[min(len(seconds) - 1, int(len(seconds) * fraction))]
            return start + int(span * fraction)

        plan = [("chat_long_history", 0.2), ("chat_webpath_arrays", 0.35), ("chat_conversions", 0.5),
                ("offline_msg_odd_dates", 0.65), ("chat_string_types", 0.8)]
        out = {}
        for name, fraction in plan:
            ts = second_at(fraction)
            if name == "chat_string_types" and self.same_second is not None:
                ts = self.same_second
            cid = self._unique_id(r, ts)
            chat = getattr(self, "_shape_" + name)(r, cid, ts)
            self._insert_chat(chat, ts)
            out[name] = cid
        return out

    def _real_agents(self, k):
        agents = self.agents[:k] or [{"id": 360001234567, "display_name": "Ann B.", "first_name": "Ann",
                                      "last_name": "Baker"}]
        return agents[:k]

    def _real_chat_base(self, r, cid, update_ts, n_agents=1, duration=600, history=None):
        """A complete "chat" chat ended 45 s before `update_ts`, like the generated ones."""
        f, st = self._factory, self._stamps
        end_ts = update_ts - 45
        begin = end_ts - duration
        agents = self._real_agents(n_agents)
        dept = self.departments[0] if self.departments else {"id": 360000100001, "name": "Sales"}
        visitor = f._visitor(r)

        def stamp(offset, odd=False):
            text = st.iso(begin + offset)
            return text[:-1] + "+00:00Z" if odd else text

        def stamp_us(offset_us):
            return st.iso_us(begin * 1_000_000 + offset_us)

        events, count = history if history is not None else f._history(r, duration, visitor["name"], agents,
                                                                         dept["id"], stamp_us)
        chat = {
            "id": cid,
            "type": "chat",
            "timestamp": stamp(0),
            "end_timestamp": stamp(duration),
            "update_timestamp": st.iso(update_ts),
            "duration": duration,
            "started_by": "visitor",
            "visitor": visitor,
            "session": f._session(r, f._session_id(r, begin), stamp, -r.randint(0, 600), duration, False),
            "webpath": [{"from": "", "to": PAGES[0][0], "title": PAGES[0][1], "timestamp": stamp(-120)}],
            "count": count,
            "response_time": {"first": 12, "avg": 31.5, "max": 64},
            "agent_names": [a["display_name"] for a in agents],
            "agent_ids": [str(a["id"]) for a in agents],
            "department_id": dept["id"],
            "department_name": dept["name"],
            "triggered": False,
            "triggered_response": False,
            "unread": False,
            "missed": False,
            "history": events,
            "conversions": [],
            "engagements": [],
            "tags": ["billing"],
            "rating": "good",
            "comment": None,
            "referrer_search_engine": "",
            "referrer_search_terms": "",
            "zendesk_ticket_id": None,
            "deleted": False,
        }
        for i, agent in enumerate(agents):
            eng = f._engagement(r, i, agent, dept["id"], duration, stamp)
            eng["id"] = f"{cid}.{i + 1}"
            chat["engagements"].append(eng)
        return chat, begin, stamp, agents, dept

    def _shape_chat_long_history(self, r, cid, ts):
        st = self._stamps
        duration = 900
        begin = ts - 45 - duration
        visitor_name = "Marta Novak"
        agent = self._real_agents(1)[0]
        nick = f"agent:{agent['id']}"
        dept = self.departments[0] if self.departments else {"id": 360000100001, "name": "Sales"}
        other = self.departments[1] if len(self.departments) > 1 else dept
        msg_base = 1_650_000_000_000 + r.randint(0, 10**9)
        lines = [("visitor", "Hi, I was charged twice for one order"), ("agent", "Hi there, let me look into that for you."),
                 ("visitor", "Order 48213"), ("agent", "Could you confirm your email address?"),
                 ("visitor", "marta.novak@example.net"), ("agent", "Thanks, one moment please."),
                 ("visitor", "sure"), ("agent", "I've refunded the duplicate payment."),
                 ("visitor", "How long do refunds take?"), ("agent", "Refunds take 3-5 business days."),
                 ("visitor", "Great, thanks!"), ("agent", "Anything else I can help with?"),
                 ("visitor", "Can I get an invoice for the order?"), ("agent", "Sure, it is on its way by email."),
                 ("visitor", "No, that's all"), ("agent", "Have a nice day!")]
        events = []

        def ev(offset_s, **fields):
            base = {"name": visitor_name if fields.get("nick", "visitor") == "visitor" else agent["display_name"],
                    "nick": "visitor", "channel": "#"}
            base.update(fields)
            base["timestamp"] = st.iso_us((begin + offset_s) * 1_000_000 + r.randint(0, 999_999))
            events.append(base)

        ev(0, type="chat.memberjoin")
        ev(20, type="chat.memberjoin", nick=nick, skills_name=["Billing", "VIP"])
        t = 40
        n_agent = n_visitor = 0
        for i, (who, text) in enumerate(lines):
            msg_id = msg_base + t * 1000
            fields = {"type": "chat.msg", "msg": text, "options": "",
                      "msg_id": msg_id if i % 2 == 0 else str(msg_id),
                      "sender_type": "Visitor" if who == "visitor" else "Agent"}
            if who == "agent":
                fields["nick"] = nick
                n_agent += 1
            else:
                n_visitor += 1
            if i == 3:
                fields["department_id"] = str(dept["id"])
            ev(t, **fields)
            t += 45
            if i == 5:
                ev(t, type="chat.tag", nick=nick, tags=["billing"], new_tags=["billing", "refund"], deleted_tags=[])
                t += 5
            if i == 7:
                ev(t, type="chat.transfer", nick=nick, department_id=other["id"], department_name=other["name"],
                   msg=f"Chat transferred to {other['name']}")
                t += 5
            if i == 9:
                ev(t, type="chat.comment", nick=nick, new_comment="Duplicate charge refunded", comment="")
                t += 5
        ev(t, type="chat.rating", new_rating="good", rating=None)
        ev(t + 10, type="chat.memberleave", nick=nick, reason="user_leave_chat")
        ev(t + 20, type="chat.memberleave")
        count = {"agent": n_agent, "total": n_agent + n_visitor, "visitor": n_visitor}
        chat = self._real_chat_base(r, cid, ts, duration=duration, history=(events, count))[0]
        chat["visitor"].update(name=visitor_name, email="marta.novak@example.net")
        return chat

    def _shape_chat_webpath_arrays(self, r, cid, ts):
        chat, begin, stamp, _, _ = self._real_chat_base(r, cid, ts)
        chat["webpath"] = [
            {"from": "", "to": "https://example.com/", "title": "Example - Home", "timestamp": stamp(-300)},
            [begin - 240, "https://example.com/pricing"],
            ["https://a.example/x", "https://a.example/y"],
            [begin - 120, "https://example.com/pricing", "Pricing - Example"],
            {"from": "https://example.com/pricing", "to": "https://example.com/signup", "title": "Sign up",
             "timestamp": stamp(-60)},
        ]
        chat["unread"] = 0
        return chat

    def _shape_chat_conversions(self, r, cid, ts):
        chat, begin, stamp, agents, dept = self._real_chat_base(r, cid, ts)
        goals = self.goals or [{"id": 70001, "name": "Purchase"}]
        agent = agents[0]
        chat["conversions"] = [{
            "id": f"{cid}.conv{i + 1}",
            "goal_id": goal["id"],
            "goal_name": goal["name"],
            "timestamp": stamp(chat["duration"] + 60 * (i + 1)),
            "attribution": {"agent_id": agent["id"], "agent_name": agent["display_name"], "chat_timestamp": stamp(0),
                            "department_id": dept["id"], "department_name": dept["name"]},
        } for i, goal in enumerate(goals[:2])]
        return chat

    def _shape_offline_msg_odd_dates(self, r, cid, ts):
        message = self._factory._offline(r, cid, ts - 30, ts, False)
        odd = self._stamps.iso(ts - 30 - 95)[:-1] + "+00:00Z"
        message["session"]["start_date"] = odd
        message["session"]["end_date"] = self._stamps.iso(ts - 30)[:-1] + "+00:00Z"
        message["webpath"] = [{"from": "", "to": PAGES[4][0], "title": PAGES[4][1], "timestamp": odd}]
        message["unread"] = 1
        return message

    def _shape_chat_string_types(self, r, cid, ts):
        chat = self._real_chat_base(r, cid, ts, n_agents=2)[0]
        chat["unread"] = 1
        chat["agent_ids"] = [str(a) for a in chat["agent_ids"]]
        for eng in chat["engagements"]:
            eng["agent_id"] = str(eng["agent_id"])
        return chat


def _ascending_ids(r, n, base, max_gap):
    ids = []
    current = base
    for _ in range(n):
        current += r.randint(1, max_gap)
        ids.append(current)
    return ids


def _free_id(taken, near, fallback):
    """An unused int id next to taken[near] (taken sorted), scanning upwards; fallback when taken is empty."""
    if not taken:
        return fallback
    taken_set = set(taken)
    for i in range(min(max(near, 0), len(taken) - 1), len(taken)):
        if taken[i] + 1 not in taken_set:
            return taken[i] + 1
    return taken[-1] + 1
