"""The Meltano plugin definition is generated from SETTINGS and about.py: the checked-in file is what the generator
prints, every setting is declared as Meltano wants it, and settings_group_validation lists exactly the minimal sets
of settings that parse_config accepts."""
import datetime as dt
import itertools
import pathlib

import pytest

from tap_zendesk_chat import about, meltano_plugin
from tap_zendesk_chat.config import SETTINGS, ConfigError, Setting, parse_config

ROOT = pathlib.Path(__file__).resolve().parents[2]
NOW = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.timezone.utc)
REGENERATE = f"python -m tap_zendesk_chat.meltano_plugin > {meltano_plugin.OUTPUT}"
# A value parse_config accepts for each setting a valid-config group can name.
SAMPLE = {"access_token": "tok", "subdomain": "acme", "base_url": "https://chat.example.com/api/v2",
          "client_id": "cid", "client_secret": "secret", "refresh_token": "refresh"}


def test_the_checked_in_definition_is_what_the_generator_prints():
    checked_in = (ROOT / meltano_plugin.OUTPUT).read_text(encoding="utf-8")
    assert checked_in == meltano_plugin.project_file(), (
        f"{meltano_plugin.OUTPUT} differs from the settings table (tap_zendesk_chat/config.py SETTINGS): "
        f"regenerate it with `{REGENERATE}`")


def test_the_example_project_includes_it():
    project = (ROOT / "examples" / "meltano" / "meltano.yml").read_text(encoding="utf-8")
    assert f"include_paths:\n- ./{pathlib.Path(meltano_plugin.OUTPUT).name}\n" in project
    assert "extractors:" not in project, "the extractor is declared only in the generated file"


def test_every_setting_in_the_tables_order_as_meltano_declares_it():
    definition = meltano_plugin.plugin_definition()
    assert [s["name"] for s in definition["settings"]] == [s.name for s in SETTINGS]
    for setting, declared in zip(SETTINGS, definition["settings"]):
        assert declared["kind"] == {"number": "string"}.get(setting.kind, setting.kind), setting.name
        assert declared.get("sensitive", False) is setting.secret, setting.name
        assert declared.get("value") == setting.default, setting.name
        assert declared["description"] == setting.description, setting.name
        assert declared["label"] and ("legacy" in declared["label"]) == bool(setting.legacy), setting.name
    assert definition["capabilities"] == about.get_about()["capabilities"]
    assert (definition["name"], definition["executable"], definition["namespace"]) == \
        ("tap-zendesk-chat", "tap-zendesk-chat", "tap_zendesk_chat")


def test_labels():
    labels = {s["name"]: s["label"] for s in meltano_plugin.plugin_definition()["settings"]}
    assert labels["access_token"] == "Access token"
    assert labels["client_id"] == "Client ID"
    assert labels["base_url"] == "Base URL"
    assert labels["chats_full_sync_days"] == "Chats full sync days (legacy, ignored)"


def test_the_groups_of_settings_that_make_a_valid_config():
    assert meltano_plugin.settings_groups() == [
        ["access_token", "subdomain"], ["access_token", "base_url"],
        ["client_id", "client_secret", "subdomain"], ["client_id", "client_secret", "base_url"]]


def accepted(names):
    try:
        parse_config({name: SAMPLE[name] for name in names}, now=NOW)
    except ConfigError:
        return False
    return True


def test_each_group_is_a_valid_config_and_none_has_a_setting_too_many():
    for group in meltano_plugin.settings_groups():
        assert accepted(group), group
        for name in group:
            assert not accepted([n for n in group if n != name]), (group, name)


def test_no_valid_config_of_those_settings_is_missing_from_the_groups():
    groups = [set(g) for g in meltano_plugin.settings_groups()]
    for size in range(1, len(SAMPLE) + 1):
        for names in itertools.combinations(SAMPLE, size):
            if accepted(names):
                assert any(group <= set(names) for group in groups), names


def test_groups_follow_the_rules_of_any_table():
    table = (
        Setting("key", "string", required=True),
        Setting("token", "string", required_unless=("user", "password")),
        Setting("user", "string", needs=("realm",)),
        Setting("password", "string", secret=True),
        Setting("realm", "string"),
        Setting("host", "string", required_unless=("url",)),
        Setting("url", "string"),
    )
    assert meltano_plugin.settings_groups(table) == [
        ["key", "token", "host"], ["key", "token", "url"],
        ["key", "user", "password", "host", "realm"], ["key", "user", "password", "url", "realm"]]
    assert meltano_plugin.settings_groups(table[:1]) == [["key"]]


def test_a_new_setting_reaches_the_definition_without_another_edit():
    table = SETTINGS + (Setting("widgets_page_limit", "integer", 100, "Page size for /widgets (1-500).",
                                low=1, high=500),)
    text = meltano_plugin.project_file(settings=table)
    assert ("    - name: widgets_page_limit\n      kind: integer\n      value: 100\n"
            "      label: Widgets page limit\n      description: Page size for /widgets (1-500).\n") in text


@pytest.mark.parametrize("text, written", [
    ("plain words", "plain words"),
    ("yes", '"yes"'), ("Off", '"Off"'), ("null", '"null"'), ("", '""'),
    ("-e ../..", '"-e ../.."'),
    ("a: b", '"a: b"'), ("# not a comment", '"# not a comment"'), ("x #y", '"x #y"'),
    ("say \"hi\"", '"say \\"hi\\""'), ("Settings → API", '"Settings → API"'), ("12", '"12"'), ("1e3", '"1e3"'),
    ("line\nbreak", '"line\\nbreak"'), ("trailing ", '"trailing "'),
])
def test_strings_are_quoted_whenever_yaml_could_read_them_otherwise(text, written):
    assert meltano_plugin.to_yaml({"k": text}) == f"k: {written}\n"


def test_values_and_nesting():
    assert meltano_plugin.to_yaml({"a": [{"b": 1, "c": [True, 2.5, None]}], "d": [["x", "z"]], "e": []}) == (
        "a:\n- b: 1\n  c: [true, 2.5, null]\nd:\n- [x, z]\ne: []\n")


def test_the_command_prints_the_project_file(capsys):
    meltano_plugin.main([])
    assert capsys.readouterr().out == meltano_plugin.project_file()
    meltano_plugin.main(["--pip-url", "git+https://example.com/tap-zendesk-chat.git"])
    assert 'pip_url: "git+https://example.com/tap-zendesk-chat.git"' in capsys.readouterr().out

