"""An answer's body, read with a cap: whatever the server sends (a gzip bomb, a Content-Length of terabytes,
a body that never ends), the tap holds at most the cap of it, decompressed."""
import dataclasses
import json
import zlib

PAGE_LIMIT = 256 << 20  # a 200's body, decompressed: far above the largest real page (1,000 chats are tens of MB)
SMALL_LIMIT = 64 << 10  # an error's body or the token endpoint's: only its message is read
READ_STEP = 1 << 20  # a body of unknown length is read in pieces this big, joined once
# compressed bytes fed, and most bytes made, per call: big (64 KiB and 1 MiB cost a gzip sync 8% more CPU)
GUNZIP_IN, GUNZIP_OUT = 4 << 20, 16 << 20


class BodyTooLargeError(Exception):
    """A body over its cap (the client says what that means for the endpoint)."""


@dataclasses.dataclass
class Answer:
    """A response, its body read (capped): what the client and its callers ask of a response."""
    status_code: int
    reason: str
    headers: object  # requests' case-insensitive headers
    url: str
    body: bytes

    def json(self):
        return json.loads(self.body)


def read_body(raw, gzipped, limit):
    """The whole body of urllib3 response `raw`, decompressed when `gzipped`, at most `limit` bytes
    (BodyTooLargeError past it). A declared length is read in one go, as fast as a plain read."""
    length = raw.length_remaining  # Content-Length; None when chunked or delimited by the connection's end
    if length is not None and length > limit:
        raise BodyTooLargeError(f"its Content-Length of {length:,} bytes is over the tap's limit of "
                                f"{_size(limit)} for one answer")
    data = raw.read(decode_content=False) if length is not None else _read_at_most(raw, limit)
    return gunzip(data, limit) if gzipped else data


def _read_at_most(raw, limit):
    parts, size = [], 0
    while True:
        part = raw.read(min(READ_STEP, limit + 1 - size), decode_content=False)
        if not part:
            return parts[0] if len(parts) == 1 else b"".join(parts)
        parts.append(part)
        size += len(part)
        if size > limit:
            raise BodyTooLargeError(f"it went on past the tap's limit of {_size(limit)} for one answer")


def gunzip(data, limit):
    """A gzip body, decompressed a piece at a time so that no more than `limit` bytes are ever made
    (BodyTooLargeError past it); several members are joined, as gzip does, and zero padding after the last
    is allowed. zlib.error when the body is cut short or corrupt. (urllib3's own decoder copies a page twice
    more.)"""
    parts, size = [], 0
    view, at, pending = memoryview(data), 0, b""
    decoder = zlib.decompressobj(wbits=31)
    while True:
        if not pending and at < len(view):
            pending, at = view[at:at + GUNZIP_IN], at + GUNZIP_IN
        step = min(GUNZIP_OUT, limit + 1 - size)
        part = decoder.decompress(pending, step)
        size += len(part)
        if size > limit:
            raise BodyTooLargeError(f"decompressed, it is larger than the tap's limit of {_size(limit)} for one "
                                    f"answer (a compressed body of {len(data):,} bytes)")
        parts.append(part)
        if decoder.eof:
            pending = decoder.unused_data
            if not pending.strip(b"\0") and not bytes(view[at:]).strip(b"\0"):
                return parts[0] if len(parts) == 1 else b"".join(parts)
            decoder = zlib.decompressobj(wbits=31)
        else:
            pending = decoder.unconsumed_tail
            if not pending and len(part) < step and at >= len(view):
                raise zlib.error("gzip stream cut short")


def _size(limit):
    for unit, shift in (("MiB", 20), ("KiB", 10)):
        if limit >= 1 << shift:
            return f"{limit / (1 << shift):g} {unit}"
    return f"{limit} bytes"
