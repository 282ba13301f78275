"""stdout that cannot be written is one clear line and a non-zero exit (issue 17, case 10): a target that
stops reading (EPIPE) or a full disk (ENOSPC, here /dev/full) gave a traceback, and Python's "Exception
ignored ... BrokenPipeError" at exit."""
import subprocess
import tempfile

import pytest

from tests.harness import ROOT, make_config, parse_messages, tap_command
from tests.integration.test_bad_input import CRITICAL_LINE
from tests.simulator import Dataset


@pytest.fixture(scope="module")
def small():
    return Dataset.generate(seed=21, chats=300, offline_msgs=20, agents=30, ip_bans=5, visitor_bans=5,
                            timeline_entries=20, history_events=3)


def assert_one_output_error(returncode, stderr, words):
    assert returncode == 1, stderr[-3000:]
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr[-3000:]
    critical = CRITICAL_LINE.findall(stderr)
    assert len(critical) == 1, stderr[-3000:]
    assert critical[0].startswith("Could not write to stdout: ") and words in critical[0], critical[0]


@pytest.mark.parametrize("args", [[], ["--discover"], ["--about"]], ids=["sync", "discover", "about"])
def test_a_full_disk_is_one_line_and_exit_1(simulator, small, args):
    sim = simulator(small)
    command = tap_command(make_config(sim), args=args)
    with open("/dev/full", "w") as full:
        proc = subprocess.run(command, stdout=full, stderr=subprocess.PIPE, text=True, timeout=60, cwd=ROOT)
    assert_one_output_error(proc.returncode, proc.stderr, "no space left")
    if not args:
        assert sim.requests == [], "the sync went on asking the API after its first STATE could not be written"


@pytest.mark.parametrize("args", [[], ["--discover"]], ids=["sync", "discover"])
def test_a_target_that_stops_reading_is_one_line_and_exit_1(simulator, small, args):
    """The reader takes a few lines and closes the pipe while the tap has more to write (each answer of the
    simulator takes 50 ms, so the sync is still running; the catalog is larger than a pipe holds)."""
    sim = simulator(small, latency=0.05)
    with tempfile.TemporaryFile() as stderr:
        proc = subprocess.Popen(tap_command(make_config(sim), args=args), stdout=subprocess.PIPE, stderr=stderr,
                                cwd=ROOT)
        lines = [proc.stdout.readline() for _ in range(3)]
        proc.stdout.close()
        proc.wait(timeout=60)
        stderr.seek(0)
        text = stderr.read().decode()
    assert_one_output_error(proc.returncode, text, "stopped reading (broken pipe)")
    if not args:
        messages = parse_messages(b"".join(lines).decode())
        assert messages[0]["type"] == "STATE"
        assert "chats: done" not in text, "the sync went on after the target stopped reading"
