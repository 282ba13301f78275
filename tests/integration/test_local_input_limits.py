"""Local input that would crash, hang or exhaust the tap is refused at once (issue 17, case 11): exit 2, one
CRITICAL paragraph, nothing on stdout, no request, and never the secret that was refused."""
import os
import resource
import subprocess

import pytest

from tests.harness import CLIENT_ID, CLIENT_SECRET, ROOT, TOKEN, make_config, run_tap, tap_command
from tests.integration.test_bad_input import assert_one_clear_line
from tests.simulator import Dataset


@pytest.fixture(scope="module")
def tiny():
    return Dataset.generate(seed=21, chats=5, offline_msgs=1, agents=2, ip_bans=1, visitor_bans=1,
                            timeline_entries=2, history_events=1)


def _assert_refused(sim, result, phrases, secret=None):
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stdout == "", "something was written to stdout before the input was refused"
    assert sim.requests == [], "the tap sent a request despite bad input"
    line = assert_one_clear_line(result, phrases)
    if secret is not None:
        assert secret not in result.stderr and secret[4:-4] not in result.stderr, "the refused secret was printed"
    return line


@pytest.mark.parametrize("key, value, what", [
    ("access_token", f"\u201c{TOKEN}\u201d", "a typographic quote at character 1"),
    ("access_token", f"{TOKEN[:8]}\n{TOKEN[8:]}", "a line break or other control character at character 9"),
    ("access_token", f"{TOKEN[:5]}\u00e9{TOKEN[5:]}", "a character outside ASCII at character 6"),
    ("client_secret", f"\u2018{CLIENT_SECRET}\u2019", "a typographic quote at character 1"),
])
def test_a_secret_that_cannot_be_sent_is_refused_before_anything_is_written(simulator, tiny, key, value, what):
    """A token pasted with curly quotes crashed with a UnicodeEncodeError traceback at the first request,
    after a STATE was on stdout."""
    sim = simulator(tiny)
    config = make_config(sim, **{key: value})
    if key == "client_secret":
        config.update(access_token=None, client_id=CLIENT_ID)
    result = run_tap(config, timeout=30, parse=False)
    _assert_refused(sim, result, [f"'{key}' has {what}", "printable ASCII"], secret=value.strip("\u201c\u201d\u2018\u2019"))


def test_a_user_agent_a_header_cannot_carry_is_refused(simulator, tiny):
    sim = simulator(tiny)
    result = run_tap(make_config(sim, user_agent="acme \u2192 warehouse"), timeout=30, parse=False)
    _assert_refused(sim, result, ["'user_agent'", "HTTP header cannot carry"])


@pytest.mark.parametrize("what", ["config", "state", "catalog"])
def test_a_fifo_is_refused_instead_of_waiting_for_a_writer(simulator, tiny, tmp_path, what):
    """Opening a FIFO nobody writes to blocked the tap for ever."""
    sim = simulator(tiny)
    fifo = tmp_path / f"{what}.fifo"
    os.mkfifo(fifo)
    config = None if what == "config" else make_config(sim)
    result = run_tap(config, args=[f"--{what}", str(fifo)], timeout=20, parse=False)
    _assert_refused(sim, result, [f"{what} file", str(fifo), "a named pipe (FIFO)", "regular file"])


def _limited_memory():
    limit = 1 << 30  # the unfixed tap reads /dev/zero until MemoryError: keep that from the machine's memory
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


@pytest.mark.parametrize("what", ["state", "catalog"])
def test_a_file_that_never_ends_is_refused(simulator, tiny, tmp_path, what):
    sim = simulator(tiny)
    command = tap_command(make_config(sim), args=[f"--{what}", "/dev/zero"], workdir=str(tmp_path))
    proc = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=ROOT, preexec_fn=_limited_memory)
    result = type("Result", (), {"returncode": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr})
    _assert_refused(sim, result, [f"{what} file /dev/zero", "a device", "regular file"])


@pytest.mark.parametrize("what, limit", [("config", "1 MiB"), ("state", "64 MiB"), ("catalog", "64 MiB")])
def test_a_file_larger_than_its_limit_is_refused_naming_the_limit(simulator, tiny, tmp_path, what, limit):
    sim = simulator(tiny)
    big = tmp_path / f"{what}.json"
    size = (1 << 20) if what == "config" else (64 << 20)
    with open(big, "wb") as handle:
        handle.write(b'{"_padding": "')
        handle.truncate(size + 1)  # sparse: nothing of it is on disk
    config = None if what == "config" else make_config(sim)
    result = run_tap(config, args=[f"--{what}", str(big)], timeout=60, parse=False)
    _assert_refused(sim, result, [f"{what} file", f"larger than {limit}"])
