"""Hostile networks and broken API contracts (issue 17): a whole request has a deadline and a signal stops
the tap at any phase of one; memory stays bounded whatever the body; one endpoint's unusable 200s fail that
endpoint only; a Retry-After date is read on the server's clock; an API that cannot be reached at start is
diagnosed in seconds, not retried for minutes.

The tap runs as a subprocess against tests/hostile_server.py (or the simulator), every run bounded by a
timeout. Nothing but 127.0.0.1 is ever contacted."""
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

import pytest

from tap_zendesk_chat.client import CONNECT_TIMEOUT
from tap_zendesk_chat.discover import build_catalog
from tap_zendesk_chat.streams import STREAMS
from tests import hostile_server as hostile
from tests.harness import (ROOT, SECRETS, TOKEN, catalog_selecting, finish_tap, kill, make_config, run_tap,
                           start_tap, tap_command)
from tests.integration.test_faults import assert_nothing_after_last_state
from tests.simulator import Dataset, Fault

CRITICAL_LINE = re.compile(r"^CRITICAL (.*)$", re.MULTILINE)
DEPARTMENTS_AND_GOALS = catalog_selecting(build_catalog(), {"departments", "goals"})
MIB = 1 << 20


def config_for(server, **overrides):
    return make_config(server, **{"max_retry_wait": 0.1, **overrides})


def the_critical_line(result):
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    critical = CRITICAL_LINE.findall(result.stderr)
    assert len(critical) == 1, result.stderr[-3000:]
    assert not any(secret in result.stderr for secret in SECRETS)
    return critical[0]


# Forks the tap from a small process and reports its peak RSS: a child forked from pytest itself would count
# pytest's own pages (a few hundred MB late in a suite) in its ru_maxrss, as exec records the old memory's peak.
_MEASURE = """
import os, resource, sys
limit, report = int(sys.argv[1]), sys.argv[2]
pid = os.fork()
if pid == 0:
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    os.execv(sys.argv[3], sys.argv[3:])
_, status, usage = os.wait4(pid, 0)
with open(report, "w") as out:
    out.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status) & 0xFF)
"""


def run_measured(config, catalog=None, args=(), timeout=60, address_space=4 << 30):
    """Run the tap to its end; (TapResult, its own peak RSS in MB). Its address space is limited, so a tap
    that does read a bomb whole fails the test instead of exhausting the machine."""
    report = tempfile.NamedTemporaryFile(suffix=".maxrss", delete=False).name
    stderr = tempfile.TemporaryFile()
    command = [sys.executable, "-c", _MEASURE, str(address_space), report] + tap_command(config, catalog, None, args)
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, cwd=ROOT, start_new_session=True)
    proc.stderr_file = stderr
    timer = threading.Timer(timeout, os.killpg, [proc.pid, signal.SIGKILL])
    timer.start()
    try:
        out = proc.stdout.read()
        proc.wait()
    finally:
        timer.cancel()
    result = finish_tap(proc, [out])
    with open(report) as measured:
        peak = int(measured.read() or 0) / 1024
    os.unlink(report)
    return result, peak


# -- case 4: a whole request has a deadline --------------------------------------------------------------
@pytest.mark.parametrize("behaviour", [hostile.trickle_body(size=1000, interval=0.5),
                                       hostile.trickle_headers(interval=0.5)], ids=["body", "headers"])
def test_an_answer_that_trickles_is_cut_at_the_request_deadline(behaviour):
    """One byte every 0.5 s never trips a 2 s socket timeout: only a deadline on the whole request ends it."""
    with hostile.HostileServer({"departments": behaviour}) as server:
        started = time.monotonic()
        result = run_tap(config_for(server, request_timeout=2, max_retries=1), catalog=DEPARTMENTS_AND_GOALS,
                         timeout=30)
        took = time.monotonic() - started
    assert result.returncode == 1
    assert "departments: no complete answer within 2 s; retry 1 of 1" in result.stderr
    critical = the_critical_line(result)
    assert "departments: gave up after 2 attempts" in critical and "no complete answer within 2 s" in critical
    assert took < 15, f"two 2 s attempts took {took:.1f} s"
    assert len(server.asked("departments")) == 2
    assert_nothing_after_last_state(result)


def _sigterm_once_asked(server, proc, path="departments", settle=1.0):
    """SIGTERM the tap `settle` s after its request for `path` arrived; (seconds to its exit, TapResult)."""
    try:
        deadline = time.monotonic() + 30
        while not server.asked(path):
            assert time.monotonic() < deadline and proc.poll() is None, f"the tap never asked for {path}"
            time.sleep(0.02)
        time.sleep(settle)
        assert proc.poll() is None, "the tap ended before the signal"
        return _seconds_to_obey_sigterm(proc, 20), finish_tap(proc, timeout=10)
    finally:
        kill(proc)


def _seconds_to_obey_sigterm(proc, timeout):
    """Send SIGTERM; the seconds until the tap ended (SIGKILL after `timeout`)."""
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    finally:
        kill(proc)
    return time.monotonic() - sent


def assert_stopped_with_its_state(result):
    assert result.returncode == 143, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert result.messages and result.messages[-1]["type"] == "STATE"
    assert result.last_state["currently_syncing"] == "departments"
    assert_nothing_after_last_state(result)


@pytest.mark.parametrize("behaviour", [hostile.trickle_body(size=100_000, interval=0.5),
                                       hostile.trickle_headers(interval=0.5), hostile.stall],
                         ids=["body trickles", "headers trickle", "no answer"])
def test_sigterm_stops_the_tap_at_once_while_an_answer_is_awaited(behaviour):
    """request_timeout is 60 s: the signal must not wait for it (nor for a body that never times out)."""
    with hostile.HostileServer({"departments": behaviour}) as server:
        proc = start_tap(config_for(server, request_timeout=60), catalog=DEPARTMENTS_AND_GOALS)
        seconds, result = _sigterm_once_asked(server, proc)
    assert seconds < 3, f"the tap took {seconds:.1f} s to obey SIGTERM"
    assert_stopped_with_its_state(result)


def test_sigterm_while_connecting_waits_at_most_the_connect_timeout():
    """A host that never accepts (a firewall dropping packets): the connect is bounded by CONNECT_TIMEOUT,
    whatever request_timeout says, and the signal is obeyed when it ends."""
    with hostile.Unaccepting() as listener:
        config = {"access_token": TOKEN, "base_url": f"http://127.0.0.1:{listener.port}/api/v2/chat",
                  "request_timeout": 60}
        proc = start_tap(config, catalog=DEPARTMENTS_AND_GOALS)
        first = proc.stdout.readline()  # the STATE written before the first request
        assert b'"STATE"' in first or b'"SCHEMA"' in first, first
        time.sleep(1)
        seconds = _seconds_to_obey_sigterm(proc, 30)
        result = finish_tap(proc, [first], timeout=10)
    assert seconds < CONNECT_TIMEOUT + 2, f"the tap took {seconds:.1f} s to obey SIGTERM"
    assert_stopped_with_its_state(result)


# -- case 5: memory stays bounded whatever the body ------------------------------------------------------
def test_a_gzip_bomb_fails_its_endpoint_with_bounded_memory():
    """1 MB on the wire, 1 GiB decompressed: the tap stops at 256 MiB, names the limit, and goes on."""
    with hostile.HostileServer({"departments": hostile.gzip_bomb(200)}) as server:
        result, peak = run_measured(config_for(server, max_retries=1), DEPARTMENTS_AND_GOALS)
    assert result.returncode == 1, result.stderr[-3000:]
    critical = the_critical_line(result)
    assert "1 stream(s) failed" in critical and "departments" in critical and "256 MiB" in critical, critical
    assert "decompressed" in critical
    assert len(server.asked("departments")) == 1, "a body over the limit is not asked for again"
    assert result.records("goals") == hostile.ONE_RECORD, "the other stream was not synced"
    assert peak < 400, f"peak RSS {peak:.0f} MB"


def test_a_gzip_bomb_in_an_error_answer_is_read_only_a_little():
    """An error's body is only read for its message: at most 64 KiB of it."""
    with hostile.HostileServer({"departments": hostile.gzip_bomb(503)}) as server:
        result, peak = run_measured(config_for(server, max_retries=2), DEPARTMENTS_AND_GOALS)
    assert result.returncode == 1
    critical = the_critical_line(result)
    assert "departments: gave up after 3 attempts" in critical and "HTTP 503" in critical
    assert len(server.asked("departments")) == 3
    assert peak < 200, f"peak RSS {peak:.0f} MB"


@pytest.mark.parametrize("behaviour, phrase", [
    (hostile.huge_length, "its Content-Length of 10,995,116,277,760 bytes is over the tap's limit of 256 MiB"),
    (hostile.endless, "it went on past the tap's limit of 256 MiB"),
], ids=["Content-Length of 10 TiB", "a body that never ends"])
def test_a_body_too_big_to_be_a_page_fails_its_endpoint_with_bounded_memory(behaviour, phrase):
    with hostile.HostileServer({"departments": behaviour}) as server:
        result, peak = run_measured(config_for(server, max_retries=1, request_timeout=30), DEPARTMENTS_AND_GOALS)
    assert result.returncode == 1, result.stderr[-3000:]
    critical = the_critical_line(result)
    assert "1 stream(s) failed" in critical and phrase in critical, critical
    assert result.records("goals") == hostile.ONE_RECORD
    assert peak < 400, f"peak RSS {peak:.0f} MB"


# -- case 7: one endpoint's unusable 200s fail that endpoint only ------------------------------------------
@pytest.fixture(scope="module")
def small():
    return Dataset.generate(seed=71, chats=40, offline_msgs=4, agents=12, timeline_entries=20, history_events=2)


@pytest.mark.parametrize("kind", [Fault.HTML_200, Fault.INVALID_JSON])
def test_an_endpoint_answering_unusable_200s_fails_alone(simulator, small, kind):
    sim = simulator(small)
    sim.inject(kind, times=50, path="departments")
    result = run_tap(config_for(sim, max_retries=2), timeout=60)
    assert result.returncode == 1, result.stderr[-3000:]
    critical = the_critical_line(result)
    assert "1 stream(s) failed and were not synced in full: departments" in critical, critical
    assert "departments: gave up after 3 attempts" in critical and "not valid JSON" in critical
    assert sim.count("departments") == 3
    after = [name for name in list(STREAMS)[list(STREAMS).index("departments") + 1:]]
    assert {"goals", "triggers"} <= set(after)
    assert all(sim.count(STREAMS[name].path) >= 1 for name in after), "streams after departments not asked for"
    assert {"goals", "triggers"} <= result.streams
    assert "departments" not in result.streams
    assert_nothing_after_last_state(result)


def test_unusable_200s_from_every_endpoint_stop_the_run_at_the_second():
    """A maintenance page for everything: not every endpoint's retries, the run stops at the second."""
    catalog = catalog_selecting(build_catalog(), {"departments", "goals", "roles", "skills"})
    html = hostile.html_page()
    with hostile.HostileServer({name: html for name in ("departments", "goals", "roles", "skills")}) as server:
        result = run_tap(config_for(server, max_retries=1), catalog=catalog, timeout=60)
    assert result.returncode == 1
    critical = the_critical_line(result)
    assert critical.startswith("goals: gave up after 2 attempts") and "The endpoint before it failed so too" in critical
    assert "departments: failed, the other streams go on" in result.stderr
    assert not server.asked("roles") and not server.asked("skills")


# -- case 9: a Retry-After date is read on the server's clock -----------------------------------------------
@pytest.mark.parametrize("wait, max_retry_wait, expected", [(2, 5, 2.0), (100, 1, 1.0)])
def test_a_retry_after_date_is_read_against_the_servers_date(wait, max_retry_wait, expected):
    """The server's clock is an hour behind ours; its Retry-After date is `wait` s ahead of its Date."""
    routes = {"departments": hostile.rate_limited_by_date(wait=wait, skew=-3600)}
    with hostile.HostileServer(routes) as server:
        result = run_tap(config_for(server, max_retry_wait=max_retry_wait), catalog=DEPARTMENTS_AND_GOALS,
                         timeout=60).assert_ok()
    first, second = server.asked("departments")
    assert expected - 0.1 <= second.time - first.time < expected + 3
    assert f"departments: rate limited (429), Retry-After {wait:g} s; retry 1 of 8 in {expected:.1f} s" \
        in result.stderr
    if wait > max_retry_wait:
        assert f"the API asked to wait {wait} s; capped to max_retry_wait={max_retry_wait} s" in result.stderr
    assert result.records("departments") == hostile.ONE_RECORD


# -- case 12: an API that cannot be reached at start is diagnosed --------------------------------------------
# RFC 6761: a resolver answers NXDOMAIN for .invalid itself. This machine's resolver is another host, so the
# tap runs with getaddrinfo refusing .invalid names before any query goes out.
NO_INVALID_NAMES = """
import runpy, socket, sys
real = socket.getaddrinfo
def getaddrinfo(host, *args, **kwargs):
    name = host.decode() if isinstance(host, bytes) else str(host)
    if name.rstrip(".").endswith(".invalid"):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return real(host, *args, **kwargs)
socket.getaddrinfo = getaddrinfo
sys.argv = ["tap-zendesk-chat"] + sys.argv[1:]
runpy.run_module("tap_zendesk_chat", run_name="__main__")
"""


def run_discovery(base_url, timeout=40, **settings):
    """--discover with the default retry settings (8 retries, waits up to 300 s), as a user would run it."""
    config = {"access_token": TOKEN, "base_url": base_url, **settings}
    command = tap_command(config, args=["--discover"])
    assert command[1:3] == ["-m", "tap_zendesk_chat"]
    command[1:3] = ["-c", NO_INVALID_NAMES]
    started = time.monotonic()
    stderr = tempfile.TemporaryFile()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, cwd=ROOT)
    proc.stderr_file = stderr
    try:
        proc.wait(timeout=timeout)
    finally:
        kill(proc)
    return finish_tap(proc, timeout=10), time.monotonic() - started


def test_name_lookups_of_invalid_names_fail_at_once_here():
    lookup = 'try:\n    socket.getaddrinfo("nonexistent.invalid", 80)\nexcept socket.gaierror:\n    print("nx")'
    script = NO_INVALID_NAMES.replace('runpy.run_module("tap_zendesk_chat", run_name="__main__")', lookup)
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=20)
    assert proc.stdout.strip() == "nx" and time.monotonic() - started < 10


def assert_diagnosed(result, seconds, phrases):
    assert result.returncode == 1, result.stderr[-3000:]
    critical = the_critical_line(result)
    for phrase in phrases:
        assert phrase in critical, f"{phrase!r} not in {critical!r}"
    assert "rerun later" not in critical and "gave up" not in critical
    assert "Nothing has answered from that host in this run" in critical
    assert seconds < 15, f"diagnosed after {seconds:.1f} s"
    assert result.stdout == ""


def test_a_host_name_that_does_not_exist_is_diagnosed():
    result, seconds = run_discovery("http://nonexistent.invalid/api/v2/chat")
    assert_diagnosed(result, seconds, ["cannot connect to http://nonexistent.invalid:", "host name was not found",
                                       "Check subdomain (acme for acme.zendesk.com) or base_url",
                                       "DNS and network settings"])


def test_a_closed_port_is_diagnosed():
    port = hostile.closed_port()
    result, seconds = run_discovery(f"http://127.0.0.1:{port}/api/v2/chat")
    assert_diagnosed(result, seconds, [f"cannot connect to http://127.0.0.1:{port}: it refused the connection",
                                       "or base_url (the host and the port)"])


def test_a_host_that_does_not_speak_tls_is_diagnosed():
    with hostile.NotTLS() as plain:
        result, seconds = run_discovery(f"https://127.0.0.1:{plain.port}/api/v2/chat")
    assert_diagnosed(result, seconds, [f"cannot connect to https://127.0.0.1:{plain.port}: the TLS handshake failed",
                                       "REQUESTS_CA_BUNDLE"])


def test_a_host_that_never_accepts_is_diagnosed():
    with hostile.Unaccepting() as listener:
        result, seconds = run_discovery(f"http://127.0.0.1:{listener.port}/api/v2/chat", request_timeout=2)
    assert_diagnosed(result, seconds, ["it did not accept a connection within 2 s", "a firewall, or a proxy"])


def test_a_host_that_answered_and_then_refuses_is_retried_patiently():
    """Network loss in the middle of a run is not a wrong address: today's retries, then 'rerun later'."""
    with hostile.HostileServer({"departments": hostile.answer_then_go_down(hostile.ONE_RECORD)}) as server:
        result = run_tap(config_for(server, max_retries=3), catalog=DEPARTMENTS_AND_GOALS, timeout=60)
    assert result.returncode == 1
    critical = the_critical_line(result)
    assert critical.startswith("goals: gave up after 4 attempts") and "it refused the connection" in critical
    assert "rerun later" in critical
    assert result.stderr.count("goals: could not connect to") == 3
    assert result.records("departments") == hostile.ONE_RECORD
