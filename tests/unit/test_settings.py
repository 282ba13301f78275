"""SETTINGS is the one source of the config: Config's fields, parse_config's validation and --about all come
from it, so a setting added to the table (here, to a copy of it) is validated, coerced, range-checked, listed
and kept in Config without any other edit."""
import dataclasses
import datetime as dt
import json

import pytest

from tap_zendesk_chat import about
from tap_zendesk_chat.config import (KINDS, SETTINGS, Config, ConfigError, Setting, check_table, config_class,
                                     parse_config)

UTC = dt.timezone.utc
NOW = dt.datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
BASE = {"access_token": "tok", "subdomain": "acme"}
FIELDS = {f.name: f for f in dataclasses.fields(Config)}
ABOUT = {s["name"]: s for s in about.get_about()["settings"]}


def parse(raw, settings=SETTINGS):
    return parse_config(raw, "1.2.3", now=NOW, settings=settings)


def problems_of(raw, settings=SETTINGS):
    with pytest.raises(ConfigError) as caught:
        parse(raw, settings)
    return str(caught.value)


def markdown_row(name, settings=SETTINGS):
    [row] = [line for line in about.format_about("markdown", settings).splitlines() if line.startswith(f"| {name} |")]
    return [cell.strip() for cell in row.strip("|").split(" | ")]


# -- every setting: in Config and in --about, with its kind and default ----------------------------------
def test_config_has_one_field_per_setting_that_is_not_legacy_then_notes():
    assert list(FIELDS) == [s.name for s in SETTINGS if not s.legacy] + ["notes"]
    assert not {s.name for s in SETTINGS if s.legacy} & set(FIELDS)


def test_config_keeps_its_attribute_names():
    config = parse(BASE)
    for name in ("api_root", "start_date", "access_token", "user_agent", "request_timeout",
                 "max_requests_per_minute", "agents_page_limit", "bans_page_limit", "max_retries", "max_retry_wait",
                 "activate_version", "refresh_token", "client_id", "client_secret", "token_url", "notes", "secrets",
                 "can_obtain_tokens"):
        assert hasattr(config, name), name
    # client.py renews the refresh token with dataclasses.replace
    assert dataclasses.replace(config, refresh_token="r").refresh_token == "r"


def test_about_lists_every_setting_in_the_tables_order():
    assert [s["name"] for s in about.get_about()["settings"]] == [s.name for s in SETTINGS]
    assert json.loads(about.format_about("json")) == about.get_about()


@pytest.mark.parametrize("setting", SETTINGS, ids=[s.name for s in SETTINGS])
def test_every_settings_default_and_kind_are_in_about_and_in_config(setting):
    entry = ABOUT[setting.name]
    assert entry["kind"] == entry["type"] == setting.kind
    assert entry["default"] == setting.default and type(entry["default"]) is type(setting.default)
    assert entry["description"] == setting.description
    name, kind, default = markdown_row(setting.name)[:3]
    assert (name, kind) == (setting.name, setting.kind)
    assert default == ("" if setting.default is None else json.dumps(setting.default))
    if setting.legacy:
        assert setting.name not in FIELDS
        return
    field = FIELDS[setting.name]
    optional = setting.default is None and setting.default_from is None
    assert field.type == (KINDS[setting.kind] | None if optional else KINDS[setting.kind])
    value = getattr(parse(BASE), setting.name)
    if setting.name in BASE:
        assert value == BASE[setting.name]
    elif setting.default is not None:
        assert value == setting.default and type(value) is KINDS[setting.kind]
    elif setting.default_from is not None:
        assert type(value) is KINDS[setting.kind]
    else:
        assert value is None


def test_defaults_that_depend_on_the_run():
    config = parse(BASE)
    assert config.start_date == NOW - dt.timedelta(days=365)
    assert config.user_agent == "tap-zendesk-chat/1.2.3"


@pytest.mark.parametrize("setting", [s for s in SETTINGS if s.has_range], ids=lambda s: s.name)
def test_ranges_are_in_about_and_enforced(setting):
    assert ABOUT[setting.name]["range"] == {"low": setting.low, "high": setting.high}
    assert markdown_row(setting.name)[4] == f"{setting.low}–{setting.high}"
    assert parse({**BASE, setting.name: setting.low}) and parse({**BASE, setting.name: setting.high})
    for outside in (setting.low - 1, setting.high + 1):
        assert f"'{setting.name}' must be between {setting.low} and {setting.high}" in problems_of(
            {**BASE, setting.name: outside})


def test_settings_without_a_range_say_so_in_about():
    assert {n for n, s in ABOUT.items() if s["range"] is None} == {s.name for s in SETTINGS if not s.has_range}


# -- a setting added to the table needs no other edit ----------------------------------------------------
WIDGETS = Setting("widgets_page_limit", "integer", 50, "Page size for /widgets (1-200).", low=1, high=200)
EXTRA = (WIDGETS,
         Setting("widget_timeout", "number", 2.5, "Seconds.", low=0.5, high=30),
         Setting("include_archived", "boolean", False, "Also archived widgets."),
         Setting("widgets_since", "date_iso8601", None, "Earliest widget."),
         Setting("widget_label", "string", "plain", "A label."))
TABLE = SETTINGS + EXTRA


def test_an_extra_setting_gets_its_default_in_config():
    config = parse(BASE, TABLE)
    assert (config.widgets_page_limit, config.widget_timeout, config.include_archived, config.widgets_since,
            config.widget_label) == (50, 2.5, False, None, "plain")
    assert config.api_root == "https://acme.zendesk.com/api/v2/chat"  # the rest of the table still applies
    assert not hasattr(parse(BASE), "widgets_page_limit")  # SETTINGS itself is untouched


@pytest.mark.parametrize("key, given, expected", [
    ("widgets_page_limit", "70", 70), ("widgets_page_limit", 70.0, 70), ("widgets_page_limit", " 7 ", 7),
    ("widget_timeout", "2", 2.0), ("widget_timeout", 3, 3.0),
    ("include_archived", "yes", True), ("include_archived", "0", False),
    ("widgets_since", "2024-01-31", dt.datetime(2024, 1, 31, tzinfo=UTC)),
    ("widget_label", "  fancy ", "fancy"), ("widget_label", "", "plain"),
])
def test_an_extra_setting_is_coerced_to_its_kind(key, given, expected):
    value = getattr(parse({**BASE, key: given}, TABLE), key)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("key, given, fragment", [
    ("widgets_page_limit", 0, "'widgets_page_limit' must be between 1 and 200, not 0"),
    ("widgets_page_limit", "201", "'widgets_page_limit' must be between 1 and 200, not 201"),
    ("widget_timeout", 0.1, "'widget_timeout' must be between 0.5 and 30, not 0.1"),
    ("widgets_page_limit", "many", "'widgets_page_limit' must be a whole number, not \"many\""),
    ("widgets_page_limit", True, "'widgets_page_limit' must be a whole number, not true"),
    ("widget_timeout", "soon", "'widget_timeout' must be a number"),
    ("include_archived", "maybe", "'include_archived' must be true or false"),
    ("widgets_since", "last week", "'widgets_since' 'last week' is not a date"),
    ("widget_label", 5, "'widget_label' must be a string, not 5"),
])
def test_an_extra_setting_is_validated_and_range_checked(key, given, fragment):
    assert fragment in problems_of({**BASE, key: given}, TABLE)


def test_an_extra_settings_problems_are_reported_with_the_others():
    message = problems_of({"subdomain": "acme", "widgets_page_limit": 500, "widget_timout": 1}, TABLE)
    assert message.startswith("The config has 3 problems: ")
    for fragment in ("'widgets_page_limit' must be between 1 and 200", "'access_token' is required",
                     "unknown key 'widget_timout' (did you mean 'widget_timeout'?)"):
        assert fragment in message
    assert "unknown key 'widget_timout'" in problems_of({**BASE, "widget_timout": 1})  # unknown to SETTINGS


def test_an_extra_setting_is_in_about():
    entry = {s["name"]: s for s in about.get_about(TABLE)["settings"]}["widgets_page_limit"]
    assert entry == {"name": "widgets_page_limit", "kind": "integer", "type": "integer", "default": 50,
                     "secret": False, "required": False, "required_unless": None, "needs": [],
                     "range": {"low": 1, "high": 200}, "legacy": False,
                     "description": "Page size for /widgets (1-200)."}
    assert markdown_row("widgets_page_limit", TABLE) == [
        "widgets_page_limit", "integer", "50", "no", "1–200", "no", "Page size for /widgets (1-200)."]


def test_a_check_declared_on_the_setting_runs_with_the_others_and_may_convert():
    def even(name, value, context):
        if value % 2:
            context.problem(f"'{name}' must be even, not {value}")
        return value // 2

    table = SETTINGS + (Setting("pairs", "integer", None, "An even count.", low=0, high=10, check=even),)
    assert parse({**BASE, "pairs": "8"}, table).pairs == 4
    message = problems_of({"subdomain": "acme", "pairs": 7}, table)
    assert "2 problems" in message and "'pairs' must be even, not 7" in message
    assert "must be even" not in problems_of({**BASE, "pairs": 11}, table)  # out of range: the check is not run


def test_a_default_that_depends_on_the_run():
    table = SETTINGS + (Setting("until", "date_iso8601", None, "Latest.", default_from=lambda context: context.now),)
    assert parse(BASE, table).until == NOW


def test_a_legacy_setting_is_accepted_checked_for_its_kind_noted_and_not_kept():
    table = SETTINGS + (Setting("old_knob", "integer", None, "Older.", legacy="is ignored now."),)
    config = parse({**BASE, "old_knob": "3"}, table)
    assert config.notes == ("'old_knob' is ignored now.",)
    assert not hasattr(config, "old_knob")
    assert "'old_knob' must be a whole number" in problems_of({**BASE, "old_knob": "x"}, table)
    assert {s["name"]: s for s in about.get_about(table)["settings"]}["old_knob"]["legacy"] is True


def test_legacy_settings_of_the_table_are_the_ones_noted():
    given = {s.name: 1 for s in SETTINGS if s.legacy}
    assert [n.split("'")[1] for n in parse({**BASE, **given}).notes] == list(given)
    assert [n for n, s in ABOUT.items() if s["legacy"]] == list(given)


# -- required, required unless, needs --------------------------------------------------------------------
RULES = (Setting("api_key", "string", None, "Key.", secret=True, required_unless=("user", "password"),
                 example="a key from the console"),
         Setting("user", "string", None, "User."),
         Setting("password", "string", None, "Password.", secret=True),
         Setting("region", "string", None, "Region.", required=True),
         Setting("proxy", "string", None, "Proxy.", needs=("user",)))


def test_required_and_required_unless_are_reported_together():
    message = problems_of({}, RULES)
    assert message == ("The config has 2 problems: 'api_key' is required (a key from the console), unless 'user' "
                       "and 'password' are given; 'region' is required.")


@pytest.mark.parametrize("raw", [{"region": "eu"}, {"region": "eu", "user": "u"}, {"region": "eu", "password": "p"},
                                 {"region": "eu", "user": "", "password": "p"}])
def test_required_unless_needs_every_alternative(raw):
    assert problems_of(raw, RULES) == ("The config has a problem: 'api_key' is required (a key from the console), "
                                       "unless 'user' and 'password' are given.")


@pytest.mark.parametrize("raw", [{"region": "eu", "api_key": "k"}, {"region": "eu", "user": "u", "password": "p"}])
def test_either_the_setting_or_its_alternative(raw):
    assert parse(raw, RULES).region == "eu"


def test_needs():
    assert problems_of({"region": "eu", "api_key": "k", "proxy": "x"}, RULES) == (
        "The config has a problem: 'proxy' needs 'user' too.")
    assert parse({"region": "eu", "api_key": "k", "proxy": "x", "user": "u"}, RULES).proxy == "x"


def test_an_alternative_by_one_name_reads_is_given():
    table = (Setting("a", "string", None, "A.", required_unless=("b",)), Setting("b", "string", None, "B."))
    assert problems_of({}, table) == "The config has a problem: 'a' is required, unless 'b' is given."


def test_about_says_what_is_required_and_what_instead():
    entries = {s["name"]: s for s in about.get_about(RULES)["settings"]}
    assert entries["region"]["required"] is True and entries["region"]["required_unless"] is None
    assert entries["api_key"]["required"] is False
    assert entries["api_key"]["required_unless"] == {
        "settings": ["user", "password"], "description": "required unless 'user' and 'password' are given"}
    assert entries["proxy"]["needs"] == ["user"]
    assert [markdown_row(n, RULES)[3] for n in ("api_key", "user", "region")] == [
        "unless user and password", "no", "yes"]


def test_about_the_real_required_settings():
    # Nothing is required without an alternative: `required` is false for all, and the alternatives are listed.
    assert [n for n, s in ABOUT.items() if s["required"]] == [s.name for s in SETTINGS if s.required] == []
    assert {n: s["required_unless"]["settings"] for n, s in ABOUT.items() if s["required_unless"]} == {
        "access_token": ["client_id", "client_secret"], "subdomain": ["base_url"]}
    assert ABOUT["access_token"]["required_unless"]["description"] == (
        "required unless 'client_id' and 'client_secret' (and optionally 'refresh_token') are given so the tap "
        "can obtain one")
    assert ABOUT["subdomain"]["required_unless"]["description"] == "required unless 'base_url' is given"
    assert ABOUT["refresh_token"]["needs"] == ["client_id", "client_secret"]
    assert markdown_row("access_token")[3] == "unless client_id and client_secret"
    assert markdown_row("subdomain")[3] == "unless base_url"


def test_the_real_required_messages_word_for_word():
    assert problems_of({}) == (
        "The config has 2 problems: 'access_token' is required (a Chat OAuth token), unless 'client_id' and "
        "'client_secret' (and optionally 'refresh_token') are given so the tap can obtain one; 'subdomain' is "
        "required (e.g. \"acme\" for acme.zendesk.com), unless 'base_url' is given.")


# -- secrets ---------------------------------------------------------------------------------------------
SECRET_NAMES = {s.name for s in SETTINGS if s.secret}


def test_the_secret_settings():
    assert SECRET_NAMES == {"access_token", "refresh_token", "client_secret"}
    assert {n for n, s in ABOUT.items() if s["secret"]} == SECRET_NAMES
    assert {markdown_row(s.name)[0] for s in SETTINGS if markdown_row(s.name)[5] == "yes"} == SECRET_NAMES


def test_config_secrets_are_exactly_the_secret_settings_values():
    raw = {"subdomain": "acme", "access_token": "A-1", "refresh_token": "R-2", "client_id": "id-3",
           "client_secret": "S-4", "user_agent": "ua-5", "token_url": "https://auth.example/token"}
    config = parse(raw)
    assert config.secrets == tuple(raw[s.name] for s in SETTINGS if s.secret)
    assert set(config.secrets) == {raw[n] for n in SECRET_NAMES}
    for name in SECRET_NAMES:
        assert raw[name] not in repr(config)
    assert "id-3" in repr(config)


def test_secrets_holds_only_what_was_given():
    assert parse(BASE).secrets == ("tok",)


def test_a_secret_added_to_the_table_is_among_the_secrets():
    table = SETTINGS + (Setting("webhook_secret", "string", None, "Signs webhooks.", secret=True),)
    assert parse({**BASE, "webhook_secret": "W"}, table).secrets == ("tok", "W")
    assert {s["name"] for s in about.get_about(table)["settings"] if s["secret"]} == SECRET_NAMES | {"webhook_secret"}


# -- the table checks itself -----------------------------------------------------------------------------
def test_the_table_is_consistent():
    check_table(SETTINGS)


@pytest.mark.parametrize("extra, fragment", [
    (Setting("widgets", "list", None, "?"), "has kind 'list'"),
    (Setting("base_url", "string", None, "again"), "'base_url' is declared twice"),
    (Setting("widgets", "string", None, "?", required_unless=("nothing",)), "refers to 'nothing'"),
    (Setting("widgets", "string", None, "?", needs=("widgets",)), "refers to itself"),
    (Setting("widgets", "integer", "5", "?"), "default that is not of its kind"),
    (Setting("widgets", "integer", 500, "?", low=1, high=100), "default outside its range"),
    (Setting("widgets", "string", None, "?", low=1, high=2), "range but is not a number"),
    (Setting("widgets", "integer", None, "?", low=5, high=2), "low above high"),
    (Setting("widgets", "integer", None, "?", legacy="old.", required=True), "legacy (ignored) and yet has a rule"),
    (Setting("widgets", "string", None, "?", required=True, required_unless=("base_url",)), "both required"),
    (Setting("notes", "string", None, "?"), "'notes' is a name Config uses"),
])
def test_an_inconsistent_table_is_refused(extra, fragment):
    with pytest.raises(ValueError, match="The settings table is inconsistent") as caught:
        config_class(SETTINGS + (extra,))
    assert fragment in str(caught.value)
    with pytest.raises(ValueError):
        parse(BASE, SETTINGS + (extra,))
