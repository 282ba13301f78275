"""A chat's arrays as rows of their own: the child streams of chats (chat_history, chat_tags, ...).

They are read in the same pass over the chats export as chats (no request of their own): each page's
chats give each child stream its rows. A row is keyed by the chat's id (`chat_id`) and the item's place
in the chat's array (`position`, from 0), and carries `chat_update_timestamp`, the chat's
`update_timestamp` in the version the row was read from: a chat that comes again with a shorter array
leaves its old rows of higher positions in an upserting target, and a row is current only while its
`chat_update_timestamp` equals the chat's `update_timestamp` (README, "Child tables").

An object item's fields become the row's fields, as the API sent them (the stream's RecordPlan then
conforms them to its schema, as for any record). An item that is not an object (the API sent a string
where an event object belongs) is kept, as sent, in the row's UNEXPECTED_FIELD under its path in the
chat (`history[3]`); a null item is a row with its keys only, so that positions stay the chat's. An
array that is not an array is one row at position 0 keeping the value the same way. Nothing is dropped.

Rows come in two forms, like chats: from a chat still in the page's bytes (msgspec.Raw), rows whose values
are slices of those bytes, encoded at C speed into a Raw the RecordPlan's probe reads; from a decoded chat
(a dict), rows of Python values."""
import copy
import functools

import msgspec

from tap_zendesk_chat.fastjson import TooDeep
from tap_zendesk_chat.transform import UNEXPECTED_FIELD

Raw = msgspec.Raw
KEYS = ("chat_id", "position", "chat_update_timestamp")
_encode = msgspec.json.Encoder().encode
_item_fields = msgspec.json.Decoder(dict[str, Raw]).decode
_items = msgspec.json.Decoder(list[Raw]).decode
_NULL = b"null"


ARRAYS = ("history", "tags", "agent_ids", "agent_names", "webpath", "engagements", "conversions")
_ChatArrays = msgspec.defstruct("ChatArrays", [("id", Raw, None), ("update_timestamp", Raw, None)]
                                + [(name, Raw, None) for name in ARRAYS], gc=False)
_decode_chat = msgspec.json.Decoder(_ChatArrays).decode
# An object item whose bytes hold no key of a row's key's name (nor an escape that could spell one) goes into its
# row as it came, the row's keys put in front of its fields; one that may is decoded first.
# (`"chat_` stands for chat_id and chat_update_timestamp; a \\u escape could spell any of them.)
_UNEXPECTED_KEY = b'"' + UNEXPECTED_FIELD.encode() + b'"'
_POSITIONS = [str(position).encode() for position in range(1000)]


def decoded_chats(records, memo):
    """Each record's ChatArrays (its id, update_timestamp and arrays as slices of the page's bytes), the
    record itself when decoded (a dict), or None (not an object): decoded once per page for all the child
    streams (`memo`, the page's)."""
    out = []
    for record in records:
        if record.__class__ is Raw:
            chat = memo.get(id(record))
            if chat is None:
                try:
                    chat = _decode_chat(record)
                except msgspec.ValidationError:  # not an object: the chats stream reports it
                    chat = False
                memo[id(record)] = chat
            out.append(chat or None)
        else:
            out.append(record if record.__class__ is dict else None)
    return out


def _bytes(raw):
    return _NULL if raw is None else bytes(raw)


def _digits_id(raw):
    """An id the API sends as a string of digits ("360001"), as the number it is: the agents stream's key type."""
    text = bytes(raw)
    inner = text[1:-1]
    if text[:1] == b'"' and inner.isdigit() and inner.isascii() and (inner[:1] != b"0" or inner == b"0") \
            and len(inner) <= 18:
        return inner
    return text


class _Value:
    """How values of one form are read: slices of the page's bytes, or decoded Python values."""

    @staticmethod
    def is_null(value):
        return value is None


class _RawValues(_Value):
    @staticmethod
    def is_null(value):
        return value is None or (len(value) == 4 and bytes(value) == _NULL)  # no copy of a long array to compare

    @staticmethod
    def items(value):
        """The array's items, or None when the value is not an array."""
        try:
            return _items(value)
        except msgspec.ValidationError:
            return None

    @staticmethod
    def fields(item):
        """An object item's fields, or None when it is not an object."""
        try:
            return _item_fields(item)
        except msgspec.ValidationError:
            return None

    @staticmethod
    def sent(value):
        """The value as kept in UNEXPECTED_FIELD."""
        return value

    @staticmethod
    def finish(row):
        return Raw(_encode(row))


class _DecodedValues(_Value):
    @staticmethod
    def items(value):
        return value if value.__class__ is list else None

    @staticmethod
    def fields(item):
        """A copy: the page's chat stays as it came for the other streams of the walk."""
        return copy.deepcopy(item) if item.__class__ is dict else None

    @staticmethod
    def sent(value):
        return value.text if value.__class__ is TooDeep else value

    @staticmethod
    def finish(row):
        return row


RAW, DECODED = _RawValues(), _DecodedValues()


def each_chat(records, memo):
    """(form, id, update_timestamp, field) of each chat of a page that is an object; field(name) is its field."""
    for chat in decoded_chats(records, memo):
        if chat is None:
            continue
        if chat.__class__ is dict:
            yield DECODED, chat.get("id"), chat.get("update_timestamp"), chat.get
        else:
            yield RAW, chat.id, chat.update_timestamp, functools.partial(getattr, chat)


class Child:
    """One child stream's rows from a page of chats: one row per item of the chat's field `array` (an object
    item's fields, or the item as `value_field` for an array of scalars)."""

    def __init__(self, name, array, value_field=None, webpath=False):
        self.name = name
        self.array = array
        self.value_field = value_field  # an array of scalars: each item is this field of its row
        self.webpath = webpath  # non-object items are {"values": item}, as the chats stream has them

    def rows(self, records, memo):
        out = []
        for form, ident, updated, field in each_chat(records, memo):
            value = field(self.array)
            if form.is_null(value):
                continue
            if form is RAW:
                self.add_raw_rows(out, ident, updated, value)
            else:
                self.add_rows(out, form, ident, updated, value)
        return out

    def add_raw_rows(self, out, ident, updated, value):
        """Rows made from the page's bytes: an object item's bytes behind the row's keys; else the careful way."""
        items = RAW.items(value)
        if items is None:
            return self.add_rows(out, RAW, ident, updated, value)
        head = b'{"chat_id":' + _bytes(ident) + b',"position":'
        tail = b',"chat_update_timestamp":' + _bytes(updated)
        value_field = None if self.value_field is None else b',"' + self.value_field.encode() + b'":'
        append = out.append
        for position, item in enumerate(items):
            text = bytes(item)
            prefix = head + (_POSITIONS[position] if position < 1000 else str(position).encode()) + tail
            if value_field is not None:
                append(Raw(prefix + value_field + text + b"}"))
            elif text[:1] == b"{" and b'"chat_' not in text and b"\\u" not in text and b'"position"' not in text \
                    and _UNEXPECTED_KEY not in text:
                body = text[1:]
                append(Raw(prefix + (b"}" if body.lstrip()[:1] == b"}" else b"," + body)))
            else:
                append(RAW.finish(self._item_row(RAW, ident, position, updated, item)))

    def add_rows(self, out, form, ident, updated, value):
        items = form.items(value)
        if items is None:  # not an array: kept whole
            out.append(form.finish(self._row(ident, 0, updated, {UNEXPECTED_FIELD: {self.array: form.sent(value)}})))
            return
        for position, item in enumerate(items):
            out.append(form.finish(self._item_row(form, ident, position, updated, item)))

    def _row(self, ident, position, updated, fields):
        row = {"chat_id": ident, "position": position, "chat_update_timestamp": updated}
        row.update(fields)
        return row

    def _item_row(self, form, ident, position, updated, item):
        if self.value_field is not None:
            return self._row(ident, position, updated, {self.value_field: copy.deepcopy(item)})
        if form.is_null(item):
            return self._row(ident, position, updated, {})
        fields = form.fields(item)
        if fields is None:
            if self.webpath:  # as Chats.fix_record makes it
                return self._row(ident, position, updated, {"values": item})
            return self._row(ident, position, updated, {UNEXPECTED_FIELD: {f"{self.array}[{position}]": form.sent(item)}})
        clashes = [key for key in KEYS if key in fields]
        if clashes or UNEXPECTED_FIELD in fields:
            # The item's own field of a key's name: kept, as sent, under its path; the key is the row's.
            kept = {f"{self.array}[{position}].{key}": form.sent(fields.pop(key)) for key in clashes}
            if UNEXPECTED_FIELD in fields:
                kept[f"{self.array}[{position}].{UNEXPECTED_FIELD}"] = form.sent(fields.pop(UNEXPECTED_FIELD))
            fields[UNEXPECTED_FIELD] = kept
        return self._row(ident, position, updated, fields)


class AgentsChild(Child):
    """`agent_ids` and `agent_names` side by side: the agents of a chat, in order, one row each."""

    def __init__(self, name):
        super().__init__(name, "agent_ids")

    def rows(self, records, memo):
        out = []
        for form, ident, updated, field in each_chat(records, memo):
            ids, names = field("agent_ids"), field("agent_names")
            id_items = [] if form.is_null(ids) else form.items(ids)
            name_items = [] if form.is_null(names) else form.items(names)
            if form is RAW and id_items is not None and name_items is not None:
                head = b'{"chat_id":' + _bytes(ident) + b',"position":'
                tail = b',"chat_update_timestamp":' + _bytes(updated)
                for position in range(max(len(id_items), len(name_items))):
                    agent = _digits_id(id_items[position]) if position < len(id_items) else _NULL
                    name = bytes(name_items[position]) if position < len(name_items) else _NULL
                    out.append(Raw(head + str(position).encode() + tail + b',"agent_id":' + agent
                                   + b',"agent_name":' + name + b"}"))
                continue
            kept = {}
            if id_items is None:
                kept["agent_ids"], id_items = form.sent(ids), []
            if name_items is None:
                kept["agent_names"], name_items = form.sent(names), []
            for position in range(max(len(id_items), len(name_items), 1 if kept else 0)):
                fields = {"agent_id": id_items[position] if position < len(id_items) else None,
                          "agent_name": name_items[position] if position < len(name_items) else None}
                if kept and position == 0:
                    fields[UNEXPECTED_FIELD] = kept
                out.append(form.finish(self._row(ident, position, updated, fields)))
        return out


CHILDREN = {child.name: child for child in (
    Child("chat_history", "history"),
    Child("chat_tags", "tags", value_field="tag"),
    AgentsChild("chat_agents"),
    Child("chat_webpath", "webpath", webpath=True),
    Child("chat_engagements", "engagements"),
    Child("chat_conversions", "conversions"),
)}
