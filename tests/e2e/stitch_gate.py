"""A local stand-in for Stitch's import API batch endpoint (what target-stitch posts to), on 127.0.0.1.

target-stitch posts each batch as JSON: {table_name, schema, key_names, [bookmark_names], [table_version],
messages: [{action: upsert, data, sequence} | {action: activate_version, sequence}]}, with the Stitch token
as a bearer token. The gate records every batch it accepts, in order, and can be told to refuse: after
`accept` batches it answers `status` (a 4xx or 5xx) to every later one."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BATCH_PATH = "/v2/import/batch"


class StitchGate:
    def __init__(self, token):
        self.token = token
        self.accepted = []  # the batches answered 2xx, in the order they were answered
        self.refused = 0
        self.foreign = []  # requests that were not a well-formed, authorised batch
        self.accept = None  # None: accept every batch; N: accept N, then answer `status`
        self.status = 503
        self._lock = threading.Lock()
        self._server = None

    @property
    def url(self):
        host, port = self._server.server_address
        return f"http://{host}:{port}{BATCH_PATH}"

    def refuse_after(self, accept, status):
        with self._lock:
            self.accept, self.status = accept, status

    def records(self, table=None):
        """Every upserted record, as the batches carried them: (table_name, key_names, data)."""
        with self._lock:
            return [(b["table_name"], b["key_names"], m["data"]) for b in self.accepted for m in b["messages"]
                    if m["action"] == "upsert" and (table is None or b["table_name"] == table)]

    def start(self):
        gate = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, answer = gate._answer(self.path, self.headers.get("Authorization", ""), body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _answer(self, path, authorization, body):
        try:
            batch = json.loads(body)
        except ValueError:
            batch = None
        with self._lock:
            if path != BATCH_PATH or authorization != f"Bearer {self.token}" or not isinstance(batch, dict):
                self.foreign.append(path)
                return 400, {"status": "error", "message": "not a batch of this client"}
            if self.accept is not None and len(self.accepted) >= self.accept:
                self.refused += 1
                return self.status, {"status": "error", "message": f"simulated failure ({self.status})"}
            self.accepted.append(batch)
            return 201, {"status": "ok", "message": "Batch accepted"}
