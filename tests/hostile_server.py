"""A small HTTP server on 127.0.0.1 for what the simulator's http.server cannot send: answers whose headers or
body trickle, stall or never end, gzip bombs, a Content-Length of terabytes, a clock an hour behind. Each path
under the API root answers with a behaviour, a function (server, conn, request) that writes raw bytes and
returns whether the connection stays open; every other path answers a one-record JSON list.

Also: `closed_port()` (nothing listens there) and `Unaccepting` (a listener whose queue is full, so a connect
hangs as behind a firewall that drops packets)."""
import dataclasses
import email.utils
import json
import socket
import struct
import threading
import time
import urllib.parse
import zlib

ROOT = "/api/v2/chat/"
ONE_RECORD = [{"id": 1, "name": "one"}]


@dataclasses.dataclass
class Request:
    method: str
    path: str  # under the API root, e.g. "departments"
    headers: dict
    time: float  # monotonic, when its head had arrived


class HostileServer:
    def __init__(self, routes=None):
        self.routes = dict(routes or {})
        self.requests = []
        self.stopping = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._conns = set()
        self._lock = threading.Lock()

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.port}{ROOT.rstrip('/')}"

    def asked(self, path):
        return [r for r in self.requests if r.path == path]

    def __enter__(self):
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self.stopping.set()
        self.close_listener()
        with self._lock:
            conns, self._conns = self._conns, set()
        for conn in conns:
            _shut(conn)

    def close_listener(self):
        """Stop accepting: new connections are refused, as when a host goes down."""
        _shut(self._listener)
        self._listener.close()

    def _accept(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._conns.add(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        reader = conn.makefile("rb")
        try:
            while not self.stopping.is_set():
                request = _read_request(reader)
                if request is None:
                    return
                self.requests.append(request)
                behaviour = self.routes.get(request.path, json_answer(ONE_RECORD))
                if not behaviour(self, conn, request):
                    return
        except (OSError, ValueError):  # gone, or not HTTP
            pass
        finally:
            _shut(conn)
            conn.close()


def _read_request(reader):
    line = reader.readline()
    if not line:
        return None
    method, target, _ = line.decode("latin-1").split(" ", 2)
    headers = {}
    while True:
        line = reader.readline().decode("latin-1").rstrip("\r\n")
        if not line:
            break
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    reader.read(int(headers.get("content-length") or 0))
    path = urllib.parse.urlsplit(target).path
    return Request(method, path[len(ROOT):] if path.startswith(ROOT) else path.lstrip("/"), headers, time.monotonic())


def _shut(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _head(status, headers):
    headers = {"Date": email.utils.formatdate(usegmt=True), **headers}
    lines = [f"HTTP/1.1 {status} Status"] + [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


# -- behaviours ---------------------------------------------------------------------------------------------
def json_answer(value, status=200, headers=None):
    body = json.dumps(value).encode()

    def answer(server, conn, request):
        conn.sendall(_head(status, {"Content-Type": "application/json", "Content-Length": len(body),
                                    **(headers or {})}) + body)
        return True
    return answer


def html_page(status=200):
    """A web page where JSON is due: a maintenance page, a captive portal."""
    body = b"<!DOCTYPE html><html><body><h1>Down for maintenance</h1></body></html>"

    def answer(server, conn, request):
        conn.sendall(_head(status, {"Content-Type": "text/html", "Content-Length": len(body)}) + body)
        return True
    return answer


def answer_then_go_down(value):
    """The value, on a connection then closed, and the server stops listening: the next connect is refused."""
    body = json.dumps(value).encode()

    def answer(server, conn, request):
        conn.sendall(_head(200, {"Content-Type": "application/json", "Content-Length": len(body),
                                 "Connection": "close"}) + body)
        server.close_listener()
        return False
    return answer


def trickle_body(size=1000, interval=0.5):
    """A 200 whose body comes one byte every `interval` seconds."""
    def answer(server, conn, request):
        conn.sendall(_head(200, {"Content-Type": "application/json", "Content-Length": size}))
        for _ in range(size):
            if server.stopping.wait(interval):
                return False
            conn.sendall(b" ")
        return True
    return answer


def trickle_headers(interval=0.5):
    """A status line, then header bytes one every `interval` seconds, for ever."""
    def answer(server, conn, request):
        conn.sendall(b"HTTP/1.1 200 OK\r\n")
        while not server.stopping.wait(interval):
            conn.sendall(b"X")
        return False
    return answer


def stall(server, conn, request):
    """The request is read, and never answered."""
    server.stopping.wait()
    return False


def gzip_bomb(status=200, gigabytes=1):
    """A single gzip member of `gigabytes` GiB of zeros: about 1 MB a GiB on the wire."""
    body = bomb(gigabytes)

    def answer(server, conn, request):
        conn.sendall(_head(status, {"Content-Type": "application/json", "Content-Encoding": "gzip",
                                    "Content-Length": len(body)}) + body)
        return True
    return answer


def huge_length(server, conn, request):
    """A Content-Length of 10 TiB, then zeros as fast as they are read."""
    conn.sendall(_head(200, {"Content-Type": "application/json", "Content-Length": 10 << 40}))
    zeros = bytes(1 << 20)
    while not server.stopping.is_set():
        conn.sendall(zeros)
    return False


def endless(server, conn, request):
    """A chunked body that never ends (1 MiB chunks as fast as they are read)."""
    conn.sendall(_head(200, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}))
    chunk = b"100000\r\n" + b"[" * (1 << 20) + b"\r\n"
    while not server.stopping.is_set():
        conn.sendall(chunk)
    return False


def rate_limited_by_date(wait=2, skew=-3600):
    """The first request: 429 with Retry-After as an HTTP date `wait` seconds ahead of the server's clock,
    which is `skew` seconds off ours (its Date says so); then the one-record list."""
    later = json_answer(ONE_RECORD)

    def answer(server, conn, request):
        if len(server.asked(request.path)) > 1:
            return later(server, conn, request)
        now = time.time() + skew
        conn.sendall(_head(429, {"Date": email.utils.formatdate(now, usegmt=True),
                                 "Retry-After": email.utils.formatdate(now + wait, usegmt=True),
                                 "Content-Type": "application/json", "Content-Length": 2}) + b"{}")
        return True
    return answer


def bomb(gigabytes=1):
    """gzip of `gigabytes` GiB of zeros, built in a fraction of a second: one compressed MiB repeated (a full
    flush ends each on a byte boundary), with the trailer's CRC and size computed."""
    mib, count = bytes(1 << 20), gigabytes << 10
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    first = compressor.compress(mib) + compressor.flush(zlib.Z_FULL_FLUSH)
    again = compressor.compress(mib) + compressor.flush(zlib.Z_FULL_FLUSH)
    end = compressor.flush()[:-8]  # the last block; its trailer counted two MiB
    crc = 0
    for _ in range(count):
        crc = zlib.crc32(mib, crc)
    return first + again * (count - 1) + end + struct.pack("<II", crc, (count << 20) & 0xFFFFFFFF)


# -- hosts that do not answer ---------------------------------------------------------------------------------
def closed_port():
    """A port of 127.0.0.1 nothing listens on (just bound and closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Unaccepting:
    """A listener that never accepts, its queue filled: a connect to it hangs until its timeout."""

    def __enter__(self):
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=0)
        self.port = self._listener.getsockname()[1]
        self._fill = []
        for _ in range(3):
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", self.port))
            self._fill.append(sock)
        time.sleep(0.1)
        return self

    def __exit__(self, *exc):
        for sock in self._fill + [self._listener]:
            sock.close()


class NotTLS:
    """A listener that answers every connection with plain HTTP at once: a TLS handshake with it fails."""

    def __enter__(self):
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._answer, daemon=True).start()
        return self

    def _answer(self):
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                _shut(conn)

    def __exit__(self, *exc):
        _shut(self._listener)
        self._listener.close()
