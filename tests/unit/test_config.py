import datetime as dt
import json
import os

import pytest

from tap_zendesk_chat.config import ConfigError, parse_config, read_json_file, save_refresh_token

UTC = dt.timezone.utc
NOW = dt.datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
BASE = {"access_token": "tok", "subdomain": "acme"}


def parse(**overrides):
    raw = dict(BASE)
    raw.update(overrides)
    return parse_config(raw, "1.2.3", now=NOW)


def problems_of(raw):
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, "1.2.3", now=NOW)
    return str(caught.value)


def test_defaults():
    config = parse()
    assert config.api_root == "https://acme.zendesk.com/api/v2/chat"
    assert config.start_date == NOW - dt.timedelta(days=365)
    assert config.request_timeout == 60
    assert config.max_requests_per_minute == 200
    assert config.agents_page_limit == 100
    assert config.bans_page_limit == 500
    assert config.user_agent == "tap-zendesk-chat/1.2.3"
    assert config.activate_version is True
    assert config.notes == ()


def test_subdomain_is_lowercased_into_the_api_root():
    assert parse(subdomain="AcMe-2").api_root == "https://acme-2.zendesk.com/api/v2/chat"


def test_empty_strings_count_as_absent():
    assert parse(start_date="", user_agent="").start_date == NOW - dt.timedelta(days=365)


def test_blank_strings_count_as_absent():
    config = parse(start_date="  ", user_agent=" ", token_url="\t", client_id=" ")
    assert config.start_date == NOW - dt.timedelta(days=365)
    assert config.user_agent == "tap-zendesk-chat/1.2.3"
    assert config.token_url == "https://www.zopim.com/oauth2/token"
    assert config.client_id is None
    assert "'subdomain' is required" in problems_of({"access_token": "t", "subdomain": "   "})


@pytest.mark.parametrize("base_url", ["https://www.zopim.com/api/v2/", "https://www.zopim.com/api/v2",
                                      "https://www.zopim.com/api/v2///"])
def test_base_url_overrides_subdomain_and_loses_trailing_slashes(base_url):
    assert parse(base_url=base_url).api_root == "https://www.zopim.com/api/v2"
    only_base = parse_config({"access_token": "t", "base_url": base_url}, now=NOW)
    assert only_base.api_root == "https://www.zopim.com/api/v2"


@pytest.mark.parametrize("base_url", ["www.zopim.com/api/v2", "ftp://host/x", "https://u:p@host/x",
                                      "https://host/x?q=1"])
def test_base_url_must_be_a_plain_http_url(base_url):
    assert "'base_url'" in problems_of({"access_token": "t", "base_url": base_url})


@pytest.mark.parametrize("subdomain", ["acme.zendesk.com", "https://acme.zendesk.com", "https://acme.zendesk.com/",
                                       "ACME.zendesk.com"])
def test_subdomain_given_as_a_host_tells_what_to_write(subdomain):
    message = problems_of({"access_token": "t", "subdomain": subdomain})
    assert "'subdomain'" in message
    assert 'write "acme"' in message.lower()


def test_subdomain_or_base_url_is_required():
    assert "'subdomain' is required" in problems_of({"access_token": "t"})


def test_misspelled_key_gets_a_did_you_mean_hint():
    message = problems_of({**BASE, "acces_token": "x"})
    assert "unknown key 'acces_token'" in message
    assert "did you mean 'access_token'" in message


def test_unknown_key_without_a_close_match_has_no_hint():
    message = problems_of({**BASE, "zzzzqqq": 1})
    assert "unknown key 'zzzzqqq'" in message
    assert "did you mean" not in message


def test_private_and_platform_keys_are_ignored():
    config = parse(_comment="hi", tap_id="x", frequency_in_minutes=5)
    assert config.api_root.startswith("https://acme.")


@pytest.mark.parametrize("key, value, fragment", [
    ("request_timeout", "soon", "'request_timeout' must be a number"),
    ("request_timeout", True, "'request_timeout' must be a number"),
    ("max_requests_per_minute", 1.5, "'max_requests_per_minute' must be a whole number"),
    ("max_requests_per_minute", True, "'max_requests_per_minute' must be a whole number"),
    ("agents_page_limit", [100], "'agents_page_limit' must be a whole number"),
    ("bans_page_limit", "5e2", "'bans_page_limit' must be a whole number"),
    ("activate_version", "maybe", "'activate_version' must be true or false"),
    ("activate_version", 1, "'activate_version' must be true or false"),
    ("access_token", 123, "'access_token' must be a string"),
    ("start_date", 20240101, "'start_date' must be a string"),
])
def test_wrong_types_are_named(key, value, fragment):
    assert fragment in problems_of({**BASE, key: value})


@pytest.mark.parametrize("key, value", [("agents_page_limit", 500), ("agents_page_limit", 0),
                                        ("bans_page_limit", 1001), ("request_timeout", "0"),
                                        ("max_requests_per_minute", -1)])
def test_out_of_range_numbers(key, value):
    assert f"'{key}' must be between" in problems_of({**BASE, key: value})


def test_string_forms_of_numbers_and_booleans_are_accepted():
    config = parse(request_timeout="30.5", max_requests_per_minute=" 50 ", agents_page_limit="10",
                   bans_page_limit=1000.0, max_retries="0", activate_version="false")
    assert config.request_timeout == 30.5
    assert config.max_requests_per_minute == 50 and type(config.max_requests_per_minute) is int
    assert config.agents_page_limit == 10 and type(config.agents_page_limit) is int
    assert config.bans_page_limit == 1000 and type(config.bans_page_limit) is int
    assert config.max_retries == 0
    assert config.activate_version is False


@pytest.mark.parametrize("text, expected", [("true", True), ("TRUE", True), ("yes", True), ("1", True),
                                            ("False", False), ("no", False), ("0", False)])
def test_boolean_strings(text, expected):
    assert parse(activate_version=text).activate_version is expected


@pytest.mark.parametrize("value", ["not a date", "2024-13-01", "31/01/2024x"])
def test_unparseable_start_date(value):
    message = problems_of({**BASE, "start_date": value})
    assert "'start_date'" in message and "is not a date" in message


def test_start_date_in_the_future():
    message = problems_of({**BASE, "start_date": "2024-06-02T00:00:00Z"})
    assert "'start_date' 2024-06-02T00:00:00Z is in the future" in message


def test_start_date_now_is_not_in_the_future():
    assert parse(start_date="2024-06-01T12:00:00Z").start_date == NOW


def test_plain_date_start_date_is_midnight_utc():
    assert parse(start_date="2024-01-31").start_date == dt.datetime(2024, 1, 31, tzinfo=UTC)


def test_start_date_with_offset_is_converted_to_utc():
    start = parse(start_date="2024-01-31T02:00:00+02:00").start_date
    assert start == dt.datetime(2024, 1, 31, tzinfo=UTC)
    assert start.utcoffset() == dt.timedelta(0)


def test_legacy_keys_are_accepted_with_a_note():
    config = parse(chat_search_interval_days=14, chats_full_sync_days="30")
    assert len(config.notes) == 2
    assert "chat_search_interval_days" in config.notes[0]
    assert "chats_full_sync_days" in config.notes[1]


def test_no_notes_without_legacy_keys():
    assert parse(max_retries=3).notes == ()


def test_every_problem_is_reported_in_one_error():
    message = problems_of({"subdomain": "acme.zendesk.com", "acces_token": "x", "request_timeout": "soon",
                           "start_date": "garbage", "bans_page_limit": 5000})
    assert message.startswith("The config has 6 problems: ")
    for fragment in ("unknown key 'acces_token'", "'request_timeout' must be a number", 'write "acme"',
                     "'access_token' is required", "'start_date' 'garbage' is not a date",
                     "'bans_page_limit' must be between 1 and 1000"):
        assert fragment in message


def test_one_problem_is_phrased_as_one():
    assert problems_of({"subdomain": "acme"}).startswith("The config has a problem: 'access_token' is required")


def test_access_token_optional_with_client_credentials():
    config = parse_config({"subdomain": "acme", "client_id": "id", "client_secret": "s"}, now=NOW)
    assert config.access_token is None
    assert config.can_obtain_tokens
    with_refresh = parse_config({"subdomain": "acme", "client_id": "id", "client_secret": "s",
                                 "refresh_token": "r"}, now=NOW)
    assert with_refresh.refresh_token == "r"
    assert set(with_refresh.secrets) == {"s", "r"}


@pytest.mark.parametrize("extra", [{}, {"client_id": "id"}, {"client_secret": "s"}])
def test_access_token_required_without_both_client_credentials(extra):
    assert "'access_token' is required" in problems_of({"subdomain": "acme", **extra})


@pytest.mark.parametrize("extra", [{}, {"client_id": "id"}, {"client_secret": "s"}])
def test_refresh_token_needs_client_credentials(extra):
    message = problems_of({**BASE, "refresh_token": "r", **extra})
    assert "'refresh_token' needs 'client_id' and 'client_secret'" in message


@pytest.mark.parametrize("raw", [[], "config", None, 3])
def test_config_must_be_an_object(raw):
    with pytest.raises(ConfigError, match="must be a JSON object"):
        parse_config(raw, now=NOW)


def test_read_json_file_reads_json(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(BASE))
    assert read_json_file(path, "config") == BASE


def test_read_json_file_missing(tmp_path):
    path = tmp_path / "nope.json"
    with pytest.raises(ConfigError) as caught:
        read_json_file(str(path), "config")
    assert str(path) in str(caught.value)
    assert "does not exist" in str(caught.value)


def test_read_json_file_on_a_directory(tmp_path):
    with pytest.raises(ConfigError) as caught:
        read_json_file(str(tmp_path), "state")
    assert str(tmp_path) in str(caught.value)
    assert "state file" in str(caught.value)


@pytest.mark.parametrize("content", [b"{not json", b"", b'{"a": 1}\n{"b": 2}', b"\xff\xfe\x00garbage"])
def test_read_json_file_not_json(tmp_path, content):
    path = tmp_path / "catalog.json"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        read_json_file(str(path), "catalog")
    assert str(path) in str(caught.value)
    assert "catalog file" in str(caught.value)


# -- a refresh token the token endpoint rotated, saved for the next run ---------------------------------
def test_save_refresh_token_rewrites_only_that_key_through_a_symlink(tmp_path):
    real = tmp_path / "real.json"
    real.write_text(json.dumps({"refresh_token": "old", "client_id": "c", "start_date": "2024-01-01T00:00:00Z"}))
    real.chmod(0o600)
    link = tmp_path / "config.json"
    link.symlink_to(real)
    assert save_refresh_token(str(link), "new") is None
    assert link.is_symlink() and json.loads(real.read_text()) == {
        "refresh_token": "new", "client_id": "c", "start_date": "2024-01-01T00:00:00Z"}
    assert real.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "real.json"]


def test_a_rotated_refresh_token_is_not_written_into_a_pipe():
    read_end, write_end = os.pipe()
    try:
        assert "read from a pipe" in save_refresh_token(f"/dev/fd/{read_end}", "new-SECRET")
    finally:
        os.close(read_end)
        os.close(write_end)


@pytest.mark.parametrize("content, why", [
    (None, "does not exist"),
    ("[1]", "does not hold the refresh_token"),
    ('{"access_token": "x"}', "does not hold the refresh_token"),
    ("{oops", "not valid JSON"),
])
def test_save_refresh_token_says_why_it_could_not(tmp_path, content, why):
    path = tmp_path / "config.json"
    if content is not None:
        path.write_text(content)
    problem = save_refresh_token(str(path), "new-SECRET")
    assert why in problem and "new-SECRET" not in problem
    assert content is None or path.read_text() == content


@pytest.mark.parametrize("token, shown", [(["tok-SECRET-9876"], "an array"), ({"t": "tok-SECRET-9876"}, "an object"),
                                          (98769876, "a number"), (True, "a boolean")])
def test_a_secret_of_the_wrong_type_is_not_shown_in_the_error(token, shown):
    with pytest.raises(ConfigError) as caught:
        parse_config({"access_token": token, "subdomain": "acme"})
    message = str(caught.value)
    assert "SECRET" not in message and "9876" not in message and "True" not in message and "true" not in message
    assert f"'access_token' must be a string, not {shown}" in message
    assert "required" not in message  # one problem for one mistake


def test_a_start_date_before_1970_is_refused():
    with pytest.raises(ConfigError, match="before 1970"):
        parse_config({"access_token": "t", "subdomain": "acme", "start_date": "1960-01-01"})
    assert parse_config({"access_token": "t", "subdomain": "acme", "start_date": "1970-01-01"}).start_date.year == 1970


@pytest.mark.parametrize("value", ["01/02/2025", "2025", "20250101", "1 Jan 2025", "2025-01", "2025/01/02",
                                   "Jan 2, 2025", "2025-01-02T10", "2025-W01-1", "2025-002"])
def test_an_ambiguous_or_unusual_start_date_is_refused_with_the_accepted_forms(value):
    message = problems_of({**BASE, "start_date": value})
    assert f"'start_date' {value!r} is not a date in an accepted form" in message
    assert "2024-01-31T00:00:00Z" in message and "(2024-01-31)" in message


@pytest.mark.parametrize("value, expected", [
    ("2024-01-31", dt.datetime(2024, 1, 31, tzinfo=UTC)),
    ("2024-01-31T10:20:30Z", dt.datetime(2024, 1, 31, 10, 20, 30, tzinfo=UTC)),
    ("2024-01-31 10:20:30z", dt.datetime(2024, 1, 31, 10, 20, 30, tzinfo=UTC)),
    ("2024-01-31T10:20", dt.datetime(2024, 1, 31, 10, 20, tzinfo=UTC)),
    ("2024-01-31T10:20:30.123456789+02:00", dt.datetime(2024, 1, 31, 8, 20, 30, 123456, tzinfo=UTC)),
])
def test_rfc3339_and_plain_dates_are_accepted(value, expected):
    assert parse(start_date=value).start_date == expected
