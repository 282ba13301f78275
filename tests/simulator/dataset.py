"""Deterministic Zendesk Chat data for the simulator: generation, storage and mutations.

Chats are stored pre-serialised (compact JSON bytes) next to a sorted list of
``(update_timestamp_epoch, id)`` keys, so the server builds an export page by joining
bytes. Everything else is small and kept as plain dicts/lists, exactly as served.
"""

import bisect
import datetime
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
            chat["proactive"] = r.random() < 0.5  # a field no schema lists (reference §4.3)
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
        # A quarter come without webpath (nothing promises one); chosen by id so no random draw shifts.
        if zlib.crc32(str(chat_id).encode()) % 4 == 0:
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
        self._keys = []          # sorted [(update_ts, id)]
        self._key_of = {}        # id -> (update_ts, id)
        self._blobs = {}         # id -> compact JSON bytes
        self._meta = {}          # id -> (type, timestamp_epoch, end_timestamp_epoch or None)
        self._deleted = set()
        self._timeline_keys = []  # sorted [(start_us, agent_id)], parallel to agent_timeline
        self._timeline_blobs = []
        self._version = 0
        self._chats_cache = (None, None)
        self._live_sorted = (None, None)
        self._max_ts = 0
        self._stamps = _Stamps()
        self._factory = None
        self._mrng = random.Random(1)

    # ---------------------------------------------------------------- generation
    @classmethod
    def generate(cls, seed=0, chats=300, offline_msgs=60, agents=250, ip_bans=120, visitor_bans=80,
                 departments=6, goals=3, roles=4, skills=6, shortcuts=12, triggers=8, timeline_entries=400,
                 history_events=20, end=None, span_days=30, same_second_chats=0):
        ds = cls()
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
        templates = min(TEMPLATE_COUNT, max(32, (chats + same_second_chats) // 4))
        ds._factory = _ChatFactory(st, ds.agents, ds.departments, history_events, templates)
        ds._generate_chats(r, chats, offline_msgs, start, same_second_chats)
        ds._generate_timeline(r, timeline_entries, start)
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

    def _generate_chats(self, r, n_chats, n_offline, start, same_second):
        total = n_chats + n_offline
        kinds = [False] * n_chats + [True] * n_offline
        r.shuffle(kinds)
        span = self.end - start
        stamps = sorted(start + r.randrange(span + 1) for _ in range(total))
        if same_second:
            self.same_second = start + span // 2
            stamps += [self.same_second] * same_second
            kinds += [False] * same_second
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
        entries.sort()
        self._keys = entries
        self._max_ts = self._keys[-1][0] if self._keys else self.end

    def _unique_id(self, r, ts):
        while True:
            cid = self._factory.new_id(r, ts)
            if cid not in self._blobs and cid not in self._key_of:
                self._key_of[cid] = None  # reserve
                return cid

    def _store_chat(self, chat, ts):
        cid = chat["id"]
        self._blobs[cid] = _dumps(chat)
        self._key_of[cid] = (ts, cid)
        end = chat.get("end_timestamp")
        self._meta[cid] = (chat["type"], iso_to_epoch(chat["timestamp"]), iso_to_epoch(end) if end else None)

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

    def _append_timeline(self, r, us, agent_id):
        entry = {"agent_id": agent_id, "start_time": self._stamps.iso_us(us), "status": r.choice(STATUSES),
                 "duration": round(r.uniform(1, 14400), 6), "engagement_count": r.choice([0, 0, 0, 1, 2, 5])}
        self.agent_timeline.append(entry)
        self._timeline_keys.append((us, agent_id))
        self._timeline_blobs.append(_dumps(entry))
        return entry

    # ---------------------------------------------------------------- read access
    @property
    def chats(self):
        """Every chat as the export serves it (deleted ones included), sorted by (update_timestamp, id)."""
        with self.lock:
            version, cached = self._chats_cache
            if version != self._version:
                cached = [json.loads(self._blobs[cid]) for _, cid in self._keys]
                self._chats_cache = (self._version, cached)
            return cached

    def chat(self, chat_id):
        with self.lock:
            return json.loads(self._blobs[chat_id])

    def chat_ids(self):
        """All chat ids in export order (update_timestamp, id), deleted ones included."""
        with self.lock:
            return [cid for _, cid in self._keys]

    def live_chat_ids(self):
        with self.lock:
            return [cid for _, cid in self._keys if cid not in self._deleted]

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
        """Keys of the export page: (update_ts, id) after the cursor, at most `limit`."""
        if start_id is None:
            i = bisect.bisect_left(self._keys, (start_time,))
        elif inclusive:
            i = bisect.bisect_left(self._keys, (start_time, start_id))
        else:
            i = bisect.bisect_right(self._keys, (start_time, start_id))
        return self._keys[i:i + limit]

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
        return self._keys[index][1] if -len(self._keys) <= index < len(self._keys) else None

    def sorted_live_ids(self):
        """Ids of chats not deleted, sorted by id (the order of the old /chats listing)."""
        version, ids = self._live_sorted
        if version != self._version:
            ids = sorted(cid for cid in self._blobs if cid not in self._deleted)
            self._live_sorted = (self._version, ids)
        return ids

    def is_deleted(self, chat_id):
        return chat_id in self._deleted

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
        self._keys.append((ts, cid))
        self._version += 1
        return chat

    def update_chat(self, chat_id, **fields):
        """Change a chat after it ended (tags, rating, zendesk_ticket_id...); it moves to the end of the export."""
        with self.lock:
            chat = json.loads(self._blobs[chat_id])
            chat.update(fields)
            return self._replace_chat(chat)

    def delete_chat(self, chat_id):
        """Mark deleted: stays in the export with deleted=true, leaves the search/list endpoints."""
        with self.lock:
            chat = json.loads(self._blobs[chat_id])
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
                self._key_of[cid] = (ts, cid)
                self._keys.append((ts, cid))
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
            self.triggers[:] = [t for t in self.triggers if t["id"] != trigger_id]

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

    def mutate(self, seed=0):
        """A realistic mix of changes between two syncs; returns what changed."""
        with self.lock:
            self._mrng = r = random.Random(f"mutate-{seed}")
            live = [cid for cid in self.live_chat_ids()]
            picked = r.sample(live, min(len(live), 8))
            to_update, to_delete = picked[:6], picked[6:]
            updated = []
            for cid in to_update:
                chat = self.chat(cid)
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
            removed_triggers = [self.triggers[-1]["id"]] if self.triggers else []
            for tid in removed_triggers:
                self.remove_trigger(tid)
            all_bans = [b["id"] for arr in self.bans.values() for b in arr]
            removed_bans = r.sample(all_bans, min(1, len(all_bans)))
            for bid in removed_bans:
                self.remove_ban(bid)
            new_bans = self.add_bans(ip=2, visitor=2)
            new_timeline = self.add_timeline_entries(20) if self.agents else []
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
            }


def _ascending_ids(r, n, base, max_gap):
    ids = []
    current = base
    for _ in range(n):
        current += r.randint(1, max_gap)
        ids.append(current)
    return ids
