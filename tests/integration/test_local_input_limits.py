"""Local input that would crash, hang or exhaust the tap is refused at once (issue 17, case 11): exit 2, one
CRITICAL paragraph, nothing on stdout, no request, and never the secret that was refused."""
import os
import resource
import shlex
import subprocess

import pytest

from tap_zendesk_chat.discover import build_catalog
from tap_zendesk_chat.errors import ConfigError
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


def test_config_state_and_catalog_through_process_substitution(simulator, tiny, tmp_path):
    """`--config <(vault read ...)`: each of the three read from a pipe its writer closes (they were refused
    as FIFOs), and the sync runs as from files."""
    sim = simulator(tiny)
    plain = tap_command(make_config(sim), catalog=build_catalog(), state={"bookmarks": {}}, workdir=str(tmp_path))
    piped = list(plain)
    for flag in ("--config", "--catalog", "--state"):
        at = piped.index(flag) + 1
        piped[at] = f"<(sleep 0.2; cat {shlex.quote(piped[at])})"  # a writer that takes a moment, then closes
    script = " ".join(part if part.startswith("<(") else shlex.quote(part) for part in piped)
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert '"type":"RECORD"' in proc.stdout.replace(" ", "") and "Traceback" not in proc.stderr


@pytest.mark.parametrize("what", ["config", "state", "catalog"])
def test_a_fifo_nobody_writes_to_is_refused_after_the_pipe_deadline(monkeypatch, tmp_path, what):
    """A named FIFO nobody writes to blocked the tap for ever: it waits PIPE_SECONDS (30) for the pipe's end,
    then refuses it with one clear message."""
    from tap_zendesk_chat import config as config_module
    fifo = tmp_path / f"{what}.fifo"
    os.mkfifo(fifo)
    monkeypatch.setattr(config_module, "PIPE_SECONDS", 0.3)
    with pytest.raises(ConfigError, match=rf"The {what} file .* is a pipe that delivered no end of file within 0 s"):
        config_module.read_json_file(str(fifo), what)


def test_a_pipe_longer_than_the_limit_is_refused():
    """A pipe is read up to the limit of its kind of file, not until memory runs out."""
    import threading
    from tap_zendesk_chat.config import read_json_file
    read_end, write_end = os.pipe()

    def write():
        try:
            os.write(write_end, b" " * (2 << 20))  # 2 MiB: blocks until read, stops when the reader goes
        except OSError:
            pass
        finally:
            os.close(write_end)
    writer = threading.Thread(target=write)
    writer.start()
    try:
        with pytest.raises(ConfigError, match="larger than 1 MiB"):
            read_json_file(f"/dev/fd/{read_end}", "config")
    finally:
        os.close(read_end)
        writer.join(10)


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
