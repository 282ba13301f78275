"""A request's deadline and the run's stop, kept at any phase of the request: one watcher thread shuts down
the socket of a request whose deadline has passed, or of every request once a stop is asked for. A socket
read then returns at once, so no stalled or trickling answer (its headers or its body) holds the tap past
either, and the body can still be read in one go."""
import contextlib
import socket
import threading
import time

import requests

POLL = 0.1  # seconds between looks at the stop event while requests are in flight


class Watch:
    """One request's: its deadline (monotonic), its socket once the request is sent, and `cut_by`, why it
    was cut ("deadline", "stop") or None."""

    def __init__(self, deadline):
        self.deadline = deadline
        self.cut_by = None
        self._sock = None
        self._lock = threading.Lock()

    def attach(self, sock):
        with self._lock:
            self._sock = sock
            cut = self.cut_by is not None
        if cut:
            _shut(sock)

    def cut(self, why):
        with self._lock:
            self.cut_by = self.cut_by or why
            sock = self._sock
        if sock is not None:
            _shut(sock)


def _shut(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # closed already
        pass


class Watcher:
    """Cuts the requests whose deadline has passed, and all of them once `stop` is set. Its thread starts
    with the first request and only wakes while requests are in flight."""

    def __init__(self, stop):
        self._stop = stop
        self._watches = set()
        self._changed = threading.Condition()
        self._thread = None
        self._closed = False

    @contextlib.contextmanager
    def watch(self, seconds):
        """A Watch for one request that must be over within `seconds`."""
        watch = Watch(time.monotonic() + seconds)
        with self._changed:
            self._watches.add(watch)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="request-watcher", daemon=True)
                self._thread.start()
            self._changed.notify()
        try:
            yield watch
        finally:
            with self._changed:
                self._watches.discard(watch)

    def close(self):
        with self._changed:
            self._closed = True
            self._changed.notify()

    def _run(self):
        with self._changed:
            while not self._closed:
                if not self._watches:
                    self._changed.wait()
                    continue
                now, stopping = time.monotonic(), self._stop.is_set()
                for watch in self._watches:
                    if watch.cut_by is None and (stopping or now >= watch.deadline):
                        watch.cut("stop" if stopping else "deadline")
                nearest = min((w.deadline for w in self._watches if w.cut_by is None), default=now + POLL)
                self._changed.wait(min(POLL, max(0.0, nearest - now)))


class WatchedAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter, whose connections hand their socket to `self.watch` (the Watch of the request
    being sent; a session sends one at a time) before awaiting the answer. Proxies' pools too."""

    def __init__(self):
        self.watch = None
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self._watch_pools(self.poolmanager)

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        self._watch_pools(manager)
        return manager

    def _watch_pools(self, manager):
        manager.pool_classes_by_scheme = {scheme: self._watched(pool)
                                          for scheme, pool in manager.pool_classes_by_scheme.items()}

    def _watched(self, pool_class):
        if getattr(pool_class, "watched_by", None) is self:
            return pool_class
        adapter = self

        class Connection(pool_class.ConnectionCls):
            def getresponse(self, *args, **kwargs):
                if adapter.watch is not None:
                    adapter.watch.attach(self.sock)
                return super().getresponse(*args, **kwargs)

        return type(pool_class.__name__, (pool_class,), {"ConnectionCls": Connection, "watched_by": self})
