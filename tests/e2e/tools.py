"""What the end-to-end tests share: the tools' virtualenvs, tap | target pipelines, a throwaway PostgreSQL
server, and what the simulator's dataset says each stream must hold."""
import dataclasses
import glob
import json
import os
import pathlib
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
import uuid

import pytest

from tap_zendesk_chat.dates import parse_datetime
from tap_zendesk_chat.streams import STREAMS
from tests.harness import ROOT, RUN_LOG_DIR, parse_messages, tap_command
from tests.integration.expected import expected_records
from tests.simulator import Dataset

VENVS = ROOT / ".e2e-venvs"
VENV_SCRIPT = ROOT / "scripts" / "e2e_venvs.sh"
# Either one set to true/1/yes: a missing tool fails the end-to-end tests instead of skipping them.
# `make test` and `make e2e` set TAP_E2E_REQUIRED=1; CI sets CI=true. A plain `pytest` sets neither.
REQUIRED_BY = ("CI", "TAP_E2E_REQUIRED")


def required():
    """Whether the end-to-end tests must run here (read when asked, so a test can change the environment)."""
    return any(os.environ.get(name, "").strip().lower() in ("true", "1", "yes") for name in REQUIRED_BY)


def unavailable(reason):
    """Skip on a workstation that cannot get a tool (a plain `pytest`); under `make test`, `make e2e` or in CI
    the end-to-end tests must run, so fail."""
    if required():
        pytest.fail(f"{reason} (the end-to-end tests must run under `make test`, `make e2e` and CI: "
                    "`make e2e-venvs` installs the tools, .ci/run PostgreSQL)")
    pytest.skip(reason)


def tool(venv, executable):
    """Path of `executable` in .e2e-venvs/<venv>, building that venv first if it is missing."""
    path = VENVS / venv / "bin" / executable
    if not (VENVS / venv / ".installed").exists():
        proc = subprocess.run(["bash", str(VENV_SCRIPT), venv], capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            unavailable(f"cannot build .e2e-venvs/{venv} with {VENV_SCRIPT.name}: {proc.stderr.strip()[-600:]}")
    if not path.exists():
        unavailable(f"{path} is missing after building .e2e-venvs/{venv}")
    return str(path)


def small_dataset(seed=21, **sizes):
    """A small account with every quirk of the API in it, ending two days ago so that mutate() fits."""
    params = dict(chats=60, offline_msgs=12, agents=25, ip_bans=8, visitor_bans=6, departments=4, goals=3,
                  roles=3, skills=4, shortcuts=6, triggers=5, timeline_entries=40, history_events=8,
                  end=time.time() - 2 * 86400, span_days=20)
    params.update(sizes)
    return Dataset.generate(seed=seed, **params)


def keep_log(name, text):
    """Keep what a tool printed next to the harness's run logs (the secret scan reads them all)."""
    RUN_LOG_DIR.mkdir(parents=True, exist_ok=True)
    (RUN_LOG_DIR / f"{time.time_ns()}-{os.getpid()}-e2e-{name}").write_text(text)


# ---------------------------------------------------------------------------------------------- pipelines
@dataclasses.dataclass
class PipelineResult:
    tap_returncode: int
    target_returncode: int
    messages: list      # what the tap wrote, as the target read it
    tap_stderr: str
    target_stdout: str
    target_stderr: str

    @property
    def target_states(self):
        """The STATE values the target emitted (it emits one once the data before it is safe)."""
        return [json.loads(line) for line in self.target_stdout.split("\n") if line.strip()]

    @property
    def last_state(self):
        """The last STATE value the tap wrote: where its next run starts."""
        return [m["value"] for m in self.messages if m["type"] == "STATE"][-1]

    def records(self, stream):
        return [m["record"] for m in self.messages if m["type"] == "RECORD" and m["stream"] == stream]

    def schemas(self):
        return {m["stream"]: m for m in self.messages if m["type"] == "SCHEMA"}

    def describe(self):
        return (f"tap exited {self.tap_returncode}, target exited {self.target_returncode}\n"
                f"--- tap stderr (end) ---\n{self.tap_stderr[-2500:]}\n"
                f"--- target stderr (end) ---\n{self.target_stderr[-6000:]}")

    def assert_ok(self):
        assert self.tap_returncode == 0 and self.target_returncode == 0, self.describe()
        return self


def run_pipeline(config, target, target_config=None, state=None, workdir=None, timeout=300, catalog=None):
    """`tap | tee tap.out | target [--config ...]` through a real shell pipe, as a user runs it. `target` is the
    target's executable, or its command as a list (a script run by the Python of the target's venv)."""
    workdir = pathlib.Path(workdir or tempfile.mkdtemp(prefix="tzc-e2e-"))
    workdir.mkdir(parents=True, exist_ok=True)
    target = [target] if isinstance(target, str) else list(target)
    target_command = shlex.join(target)
    if target_config is not None:
        (workdir / "target_config.json").write_text(json.dumps(target_config))
        target_command += " --config target_config.json"
    tap = shlex.join(tap_command(config, catalog=catalog, state=state, workdir=str(workdir)))
    # tee -p keeps the copy complete even when the target stops reading early.
    script = (f"{tap} 2>tap.err | tee -p tap.out | {target_command} >target.out 2>target.err; "
              "echo \"${PIPESTATUS[0]} ${PIPESTATUS[2]}\" >status")
    subprocess.run(["bash", "-c", script], cwd=workdir, timeout=timeout, check=True)
    tap_code, target_code = (int(x) for x in (workdir / "status").read_text().split())
    read = lambda name: (workdir / name).read_text()  # noqa: E731
    tap_out = read("tap.out")
    complete = tap_out[: tap_out.rfind("\n") + 1]  # a tap killed by SIGPIPE can leave half a line
    result = PipelineResult(tap_code, target_code, parse_messages(complete), read("tap.err"),
                            read("target.out"), read("target.err"))
    keep_log(f"{pathlib.Path(target[-1]).name}.out", result.tap_stderr + result.target_stdout + result.target_stderr)
    return result


# ---------------------------------------------------------------------------------------------- expectations
def expected_counts(dataset):
    """Rows per stream after a full sync of `dataset` (deleted chats stay in the export, marked deleted)."""
    return {stream: len(expected_records(dataset, stream)) for stream in STREAMS}


def expected_keys(dataset, stream):
    """The primary keys the stream must deliver, as tuples (timestamps as naive UTC datetimes)."""
    return {key_of(stream, row) for row in expected_records(dataset, stream)}


def key_of(stream, row):
    """The row's primary key; a timestamp in it (agent_timeline's start_time) as a naive UTC datetime."""
    stream = STREAMS[stream]
    return tuple(_naive_utc(row[k]) if k == stream.replication_key else row[k] for k in stream.key_properties)


def _naive_utc(value):
    return parse_datetime(value).replace(tzinfo=None) if isinstance(value, str) else value


def loading_blockers(schemas):
    """Columns of the tap's schemas that no SQL column type can hold as declared (see test_target_postgres)."""
    mixed_scalars, mixed_items = [], []
    for stream, message in sorted(schemas.items()):
        for name, prop in message["schema"].get("properties", {}).items():
            types = set(_types(prop)) - {"null"}
            if types == {"boolean", "integer"}:
                mixed_scalars.append(f"{stream}.{name}")
            items = prop.get("items") if "array" in types else None
            if isinstance(items, dict) and "array" in _types(items) and len(set(_types(items)) - {"null"}) > 1:
                mixed_items.append(f"{stream}.{name}")
    found = []
    if mixed_scalars:
        found.append("boolean-or-integer columns, which become BIGINT and refuse true/false: "
                     + ", ".join(mixed_scalars))
    if mixed_items:
        found.append("arrays whose items may be arrays too, which a Postgres array takes for a second dimension: "
                     + ", ".join(mixed_items))
    return found


def _types(schema):
    kind = schema.get("type", [])
    return [kind] if isinstance(kind, str) else list(kind)


# ---------------------------------------------------------------------------------------------- PostgreSQL
def find_postgres_bin():
    """The directory holding initdb, pg_ctl and psql: on PATH, or Debian's /usr/lib/postgresql/<version>/bin."""
    initdb = shutil.which("initdb")
    if initdb:
        candidate = pathlib.Path(os.path.realpath(initdb)).parent
        if (candidate / "pg_ctl").exists():
            return candidate
    found = [pathlib.Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    found.sort(key=lambda bindir: int(bindir.parent.name) if bindir.parent.name.isdigit() else 0)
    return found[-1] if found else None


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """A PostgreSQL server of our own: initdb into a temp dir, pg_ctl start on 127.0.0.1, stop and delete after.

    initdb refuses to run as root, so as root the server runs as the `postgres` user (or `nobody`)."""

    user = "postgres"  # the database superuser's name, with trust authentication on loopback

    def __init__(self, bindir):
        self.bindir = pathlib.Path(bindir)
        self.port = None
        self.dir = None
        self._as = []

    def _run_as(self):
        if os.geteuid() != 0:
            return []
        for name in ("postgres", "nobody"):
            try:
                pwd.getpwnam(name)
            except KeyError:
                continue
            return ["runuser", "-u", name, "--"]
        raise RuntimeError("running as root and neither a 'postgres' nor a 'nobody' user exists for initdb")

    def start(self):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="tzc-e2e-pg-"))
        self._as = self._run_as()
        if self._as:
            shutil.chown(self.dir, user=self._as[2])
        data = self.dir / "data"
        self._call([self.bindir / "initdb", "-D", data, "-U", self.user, "-A", "trust", "-E", "UTF8",
                    "--locale=C", "--no-sync"], "initdb")
        for attempt in range(3):
            self.port = free_port()
            options = (f"-h 127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off -c synchronous_commit=off "
                       "-c full_page_writes=off -c max_connections=40 -c timezone=UTC")
            proc = self._call([self.bindir / "pg_ctl", "-D", data, "-l", self.dir / "server.log", "-w", "-t", "60",
                               "-o", options, "start"], "pg_ctl start", check=False)
            if proc.returncode == 0:
                return self
        raise RuntimeError(f"PostgreSQL did not start:\n{self.log_tail()}")

    def stop(self):
        if self.dir is None:
            return
        self._call([self.bindir / "pg_ctl", "-D", self.dir / "data", "-m", "immediate", "-w", "stop"], "pg_ctl stop",
                   check=False)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None

    def _call(self, command, what, check=True):
        proc = subprocess.run(self._as + [str(c) for c in command], capture_output=True, text=True, timeout=120,
                              cwd=self.dir)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{what} failed ({proc.returncode}): {proc.stderr or proc.stdout}")
        return proc

    def log_tail(self):
        log = self.dir / "server.log" if self.dir else None
        return log.read_text()[-3000:] if log and log.exists() else "(no server log)"

    def psql(self, sql, database="postgres"):
        proc = subprocess.run([str(self.bindir / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                               "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, "-d", database, "-c", sql],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, f"psql failed: {proc.stderr}\n{sql}"
        return proc.stdout.strip()

    def rows(self, sql, database):
        """The rows of a query as dicts (through json_agg, so JSON columns come back as JSON)."""
        text = self.psql(f"SELECT coalesce(json_agg(q), '[]'::json) FROM ({sql}) AS q", database)
        return json.loads(text)

    def create_database(self, name):
        self.psql(f'CREATE DATABASE "{name}"')
        return name

    def target_config(self, database, schema, **extra):
        return {"host": "127.0.0.1", "port": self.port, "user": self.user, "password": "unused", "database": database,
                "default_target_schema": schema, **extra}

    def fresh_target(self, prefix, schema):
        """A new database and the target-postgres config every e2e test loads with: deletes applied
        (ACTIVATE_VERSION, hard_delete), _sdc metadata columns. Returns (database, target config)."""
        database = self.create_database(f"{prefix}_{uuid.uuid4().hex[:12]}")
        return database, self.target_config(database, schema, hard_delete=True, add_record_metadata=True,
                                            activate_version=True)
