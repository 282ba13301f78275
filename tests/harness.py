"""Runs the real tap as a subprocess against the simulator, and reads what it wrote.

Every run's stdout and stderr are also kept under RUN_LOG_DIR so that a last test can scan everything
the test session wrote for secrets."""
import dataclasses
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import tempfile
import time

import fastjsonschema
import jsonschema

ROOT = pathlib.Path(__file__).resolve().parent.parent
RUN_LOG_DIR = pathlib.Path(os.environ.get("TAP_TEST_RUN_LOG", tempfile.gettempdir())) / "tap-zendesk-chat-test-runs"
# Distinctive secrets, so a leak anywhere is found by a plain substring scan.
TOKEN = "tok-SECRET-7f3a9c1e5b"
REFRESH_TOKEN = "refresh-SECRET-2d8e4b6a"
CLIENT_SECRET = "client-SECRET-9c4f1a7e"
CLIENT_ID = "sim-client"
SECRETS = (TOKEN, REFRESH_TOKEN, CLIENT_SECRET)
# A retry the tap logged: endpoint, attempt, of how many.
RETRY_LINE = re.compile(r"^WARNING (\S+): .*; retry (\d+) of (\d+) in [\d.]+ s$", re.MULTILINE)


@dataclasses.dataclass
class TapResult:
    returncode: int
    stdout: str
    stderr: str
    messages: list

    def records(self, stream):
        return [m["record"] for m in self.messages if m["type"] == "RECORD" and m["stream"] == stream]

    def record_messages(self, stream=None):
        return [m for m in self.messages if m["type"] == "RECORD" and (stream is None or m["stream"] == stream)]

    @property
    def streams(self):
        return {m["stream"] for m in self.messages if m["type"] == "RECORD"}

    @property
    def states(self):
        return [m["value"] for m in self.messages if m["type"] == "STATE"]

    @property
    def last_state(self):
        states = self.states
        return states[-1] if states else None

    def schemas(self):
        return {m["stream"]: m for m in self.messages if m["type"] == "SCHEMA"}

    def activate_versions(self, stream=None):
        return [m for m in self.messages if m["type"] == "ACTIVATE_VERSION" and (stream is None or m["stream"] == stream)]

    def assert_ok(self):
        assert self.returncode == 0, f"tap exited {self.returncode}:\n{self.stderr[-4000:]}"
        return self


def make_config(sim, **overrides):
    config = {"access_token": TOKEN, "base_url": sim.base_url, "start_date": "2000-01-01T00:00:00Z",
              "max_retry_wait": 2}
    config.update(overrides)
    return {k: v for k, v in config.items() if v is not None}


def _write(directory, name, value):
    if value is None:
        return None
    path = pathlib.Path(directory) / name
    path.write_text(value if isinstance(value, str) else json.dumps(value))
    return str(path)


def tap_command(config, catalog=None, state=None, args=(), workdir=None):
    workdir = workdir or tempfile.mkdtemp(prefix="tap-run-")
    command = [sys.executable, "-m", "tap_zendesk_chat"]
    if config is not None:
        command += ["--config", _write(workdir, "config.json", config)]
    if catalog is not None:
        command += ["--catalog", _write(workdir, "catalog.json", catalog)]
    if state is not None:
        command += ["--state", _write(workdir, "state.json", state)]
    return command + list(args)


def parse_messages(stdout):
    messages = []
    for line in stdout.split("\n"):  # Singer lines end at \n only; a value may hold \x85 or \u2028
        if line.strip():
            messages.append(json.loads(line))
    return messages


def _keep(stdout, stderr):
    RUN_LOG_DIR.mkdir(parents=True, exist_ok=True)
    stamp = f"{time.time_ns()}-{os.getpid()}"
    (RUN_LOG_DIR / f"{stamp}.stdout").write_text(stdout)
    (RUN_LOG_DIR / f"{stamp}.stderr").write_text(stderr)


def run_tap(config, catalog=None, state=None, args=(), timeout=300, parse=True):
    """Run the tap to completion; returns a TapResult (stdout parsed into messages when `parse`)."""
    proc = subprocess.run(tap_command(config, catalog, state, args), capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)
    _keep(proc.stdout, proc.stderr)
    return TapResult(proc.returncode, proc.stdout, proc.stderr, parse_messages(proc.stdout) if parse else [])


def start_tap(config, catalog=None, state=None, args=()):
    """Start the tap without waiting; stdout is a pipe of bytes (read it with proc.stdout.readline()).

    stderr goes to a file, so a chatty tap never blocks on a full pipe while the test reads stdout."""
    stderr = tempfile.TemporaryFile()
    proc = subprocess.Popen(tap_command(config, catalog, state, args), stdout=subprocess.PIPE, stderr=stderr,
                            cwd=ROOT)
    proc.stderr_file = stderr
    return proc


def finish_tap(proc, stdout_lines=(), timeout=120):
    """Collect what a started tap wrote (after it ended or was killed), as a TapResult."""
    # Read through the buffered reader: readline() may hold bytes that a raw read of the pipe would skip.
    rest = proc.stdout.read()
    proc.wait(timeout=timeout)
    proc.stderr_file.seek(0)
    stderr = proc.stderr_file.read().decode()
    proc.stderr_file.close()
    stdout = "".join(line.decode() for line in stdout_lines) + rest.decode()
    _keep(stdout, stderr)
    # A SIGKILL can cut the last line: what a target would have read is the complete lines.
    complete = stdout if stdout.endswith("\n") else stdout[: stdout.rfind("\n") + 1]
    return TapResult(proc.returncode, stdout, stderr, parse_messages(complete))


def read_then_kill(proc, count):
    """Read up to `count` lines of a started tap's stdout, then SIGKILL it; the lines read (for finish_tap)."""
    lines = []
    while len(lines) < count:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
    kill(proc)
    return lines


def kill(proc, sig=signal.SIGKILL):
    try:
        proc.send_signal(sig)
    except ProcessLookupError:
        pass


class RecordValidator:
    """A stream's SCHEMA as validating targets check it: Draft 4 (target-jsonl) and Draft 7 (the Meltano SDK
    targets), date-time formats checked, with real JSON Schema validators."""

    def __init__(self, schema):
        self.checks = [fastjsonschema.compile(dict(schema, **{"$schema": draft}), formats={})
                       for draft in ("http://json-schema.org/draft-04/schema#", "http://json-schema.org/draft-07/schema#")]
        self.draft4 = jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())

    def errors(self, record):
        found = []
        for check in self.checks:
            try:
                check(record)
            except fastjsonschema.JsonSchemaValueException as exc:
                found.append(exc.message)
        found += [error.message for error in self.draft4.iter_errors(record)]
        return found


def validate_records(result):
    """Every RECORD validates against the SCHEMA emitted before it for its stream, and no stream's SCHEMA
    changes in the middle of a run (SQL targets cannot alter a column's type)."""
    schemas, validators = {}, {}
    for message in result.messages:
        if message["type"] == "SCHEMA":
            stream = message["stream"]
            assert schemas.setdefault(stream, message["schema"]) == message["schema"], f"{stream}: SCHEMA changed mid-run"
            validators[stream] = RecordValidator(message["schema"])
        elif message["type"] == "RECORD":
            errors = validators[message["stream"]].errors(message["record"])
            assert not errors, f"{message['stream']}: {errors[0]} in {json.dumps(message['record'])[:300]}"


def catalog_selecting(discovered, streams, deselect_fields=None, replication_method=None):
    """A copy of a discovered catalog where only `streams` are selected (and some fields deselected)."""
    catalog = json.loads(json.dumps(discovered))
    for entry in catalog["streams"]:
        for item in entry["metadata"]:
            if item["breadcrumb"] == []:
                item["metadata"]["selected"] = entry["tap_stream_id"] in streams
                if replication_method and entry["tap_stream_id"] in replication_method:
                    item["metadata"]["replication-method"] = replication_method[entry["tap_stream_id"]]
            elif deselect_fields and item["breadcrumb"][1] in deselect_fields.get(entry["tap_stream_id"], ()):
                item["metadata"]["selected"] = False
    return catalog
