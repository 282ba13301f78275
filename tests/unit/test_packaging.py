"""The package as installed: every schema file shipped, no setuptools warning, the licence it declares."""
import pathlib
import subprocess
import sys

from tests.harness import ROOT


def test_the_build_ships_every_schema_without_warnings(tmp_path):
    """setuptools once warned twice per install that the schema folders 'would be ignored' as packages."""
    built = subprocess.run([sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(tmp_path)],
                           cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr[-2000:]
    output = built.stdout + built.stderr
    assert "would be ignored" not in output and "Warning" not in output, output[-2000:]
    source = ROOT / "tap_zendesk_chat" / "schemas"
    schemas = sorted(p.relative_to(source) for p in source.rglob("*.json"))
    assert schemas and sorted(p.relative_to(tmp_path / "tap_zendesk_chat" / "schemas")
                              for p in (tmp_path / "tap_zendesk_chat" / "schemas").rglob("*.json")) == schemas


def test_the_licence_file_is_the_one_setup_declares():
    setup = (ROOT / "setup.py").read_text()
    assert 'license="AGPL-3.0"' in setup and 'license_files=["LICENSE"]' in setup
    text = pathlib.Path(ROOT / "LICENSE").read_text()
    assert text.split("\n", 2)[:2] == ["                    GNU AFFERO GENERAL PUBLIC LICENSE",
                                       "                       Version 3, 19 November 2007"]
    assert "singer-io" not in setup, "setup.py points at the classic tap's repository"
