"""`make test` and `make e2e` must run the end-to-end tests: a missing tool fails them there (and in CI), while a
plain `pytest tests/unit` (or `pytest tests` on a workstation without the tools) skips them."""
import re

import pytest

from tests.e2e import tools
from tests.harness import ROOT


@pytest.fixture
def plain_env(monkeypatch):
    for name in tools.REQUIRED_BY:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def outcome(reason):
    """What unavailable(reason) does: "skip" or "fail" (caught here, so a skip cannot pass for this test's own)."""
    with pytest.raises((pytest.skip.Exception, pytest.fail.Exception)) as raised:
        tools.unavailable(reason)
    assert reason in str(raised.value)
    return "skip" if raised.type is pytest.skip.Exception else "fail"


def test_a_missing_tool_skips_under_a_plain_pytest(plain_env):
    assert outcome("initdb is missing") == "skip"


@pytest.mark.parametrize("name, value", [("TAP_E2E_REQUIRED", "1"), ("CI", "true"), ("CI", "1")])
def test_a_missing_tool_fails_where_the_end_to_end_tests_are_required(plain_env, name, value):
    plain_env.setenv(name, value)
    assert outcome("initdb is missing") == "fail"


@pytest.mark.parametrize("value", ["", "0", "false"])
def test_an_empty_or_false_setting_does_not_require_them(plain_env, value):
    plain_env.setenv("TAP_E2E_REQUIRED", value)
    assert outcome("initdb is missing") == "skip"


def recipe(makefile, target):
    """The recipe lines of `target` in a Makefile (the tab-indented lines after its rule)."""
    lines = makefile.splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(rf"{re.escape(target)}\s*:(?!=)", line))
    body = []
    for line in lines[start + 1:]:
        if not line.startswith("\t"):
            break
        body.append(line.strip())
    return body


@pytest.mark.parametrize("target", ["test", "e2e"])
def test_make_test_and_make_e2e_require_the_end_to_end_tests(target):
    makefile = (ROOT / "Makefile").read_text()
    runs = [line for line in recipe(makefile, target) if "-m pytest" in line]
    assert runs, f"`make {target}` runs no pytest"
    for line in runs:
        assert re.match(r"(\S+=\S+\s+)*TAP_E2E_REQUIRED=1\s", line), \
            f"`make {target}` runs pytest without TAP_E2E_REQUIRED=1, so a missing tool only skips: {line}"
