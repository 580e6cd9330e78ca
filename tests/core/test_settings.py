"""bokeh_flask.app.config.settings: defaults, precedence, parsing and validation."""
from __future__ import annotations

import os

import pytest

from bokeh_flask.app.config.origins import OriginAllowlist
from bokeh_flask.app.config.settings import Settings, SettingsError, build_settings, normalize_prefix, parse_bool

KEY = "k" * 44


def build(overrides=None, config=None, environ=None):
    return build_settings(overrides=overrides, config=config, environ=environ or {})


# -- defaults -----------------------------------------------------------------------------

def test_defaults_equal_bokeh_serve():
    s = build()
    assert s.keep_alive == 37000
    assert s.check_unused_sessions == 17000
    assert s.unused_session_lifetime == 15000
    assert s.session_token_expiration == 300
    assert s.websocket_max_message_size == 20 * 1024 * 1024 == 20971520
    assert s.port == 5006
    assert s.prefix == ""
    assert s.allow_websocket_origin == ()
    assert s.sign_sessions is False and s.generate_session_ids is True
    assert s.session_ids == "unsigned"
    assert s.secret_key is None
    assert s == Settings()


def test_environ_none_reads_os_environ(monkeypatch):
    monkeypatch.setenv("BOKEH_DEFAULT_SERVER_PORT", "5123")
    assert build_settings().port == 5123


def test_secret_not_in_repr():
    s = build(environ={"BOKEH_SECRET_KEY": KEY})
    assert KEY not in repr(s)


# -- precedence ---------------------------------------------------------------------------

def test_precedence_overrides_then_config_then_environ():
    environ = {"BOKEH_DEFAULT_SERVER_PORT": "1111", "BOKEH_PY_LOG_LEVEL": "debug"}
    config = {"BOKEH_PORT": 2222, "BOKEH_KEEP_ALIVE": "1000", "BOKEH_LOG_LEVEL": "warning"}
    overrides = {"port": 3333}
    assert build(environ=environ).port == 1111
    assert build(environ=environ).log_level == "debug"
    assert build(config=config, environ=environ).port == 2222
    assert build(config=config, environ=environ).log_level == "warning"
    s = build(overrides, config, environ)
    assert s.port == 3333
    assert s.keep_alive == 1000  # from config, not overridden
    assert s.log_level == "warning"


def test_config_keys_are_bokeh_field_names():
    s = build(config={"BOKEH_PREFIX": "apps", "BOKEH_UNUSED_SESSION_LIFETIME": "500",
                      "BOKEH_INCLUDE_HEADERS": "User-Agent, X-A", "SECRET_KEY": "flask's own",
                      "BOKEH_NOT_A_SETTING": "ignored", "BOKEH_KEEP_ALIVE": None})
    assert s.prefix == "/apps"
    assert s.unused_session_lifetime == 500
    assert s.include_headers == ("User-Agent", "X-A")
    assert s.secret_key is None  # Flask's SECRET_KEY is not Bokeh's
    assert s.keep_alive == 37000  # None in config means "not set"


def test_config_accepts_bokeh_env_names():
    s = build(config={"BOKEH_SECRET_KEY": KEY, "BOKEH_SIGN_SESSIONS": "yes",
                      "BOKEH_ALLOW_WS_ORIGIN": "a.com:81,b.com:82"})
    assert s.sign_sessions is True and s.secret_key == KEY
    assert set(s.allow_websocket_origin) == {"a.com:81", "b.com:82"}


def test_override_none_means_not_given():
    assert build({"port": None}, {"BOKEH_PORT": 4444}).port == 4444


@pytest.mark.parametrize("stronger", ["overrides", "config"])
def test_origin_allowlist_from_a_stronger_source_replaces_weaker(stronger):
    """'strongest first' (settings docstring, README) also for the origin list: a stronger
    source replaces the weaker one's entries instead of being merged with them."""
    environ = {"BOKEH_ALLOW_WS_ORIGIN": "*"}
    if stronger == "overrides":
        s = build(overrides={"allow_websocket_origin": ["dash.example.com"]}, environ=environ)
    else:
        s = build(config={"BOKEH_ALLOW_WS_ORIGIN": "dash.example.com:80"}, environ=environ)
    allow = OriginAllowlist.parse(s.allow_websocket_origin, s.port)
    assert allow.allows("http://dash.example.com")
    assert not allow.allows("http://attacker.example.org"), s.allow_websocket_origin


def test_override_origins_replace_config_origins():
    s = build(overrides={"allow_websocket_origin": ["b.com:80"]},
              config={"BOKEH_ALLOW_WS_ORIGIN": "a.com:80"})
    assert s.allow_websocket_origin == ("b.com:80",)


# -- booleans -----------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["no", "false", "0", "off", "No", " FALSE ", "OFF"])
def test_sign_sessions_false_words_turn_signing_off(value):
    s = build(environ={"BOKEH_SIGN_SESSIONS": value})  # no secret needed when off
    assert s.sign_sessions is False
    assert s.session_ids == "unsigned"


@pytest.mark.parametrize("value", ["yes", "true", "1", "on", "YES"])
def test_sign_sessions_true_words_turn_signing_on(value):
    s = build(environ={"BOKEH_SIGN_SESSIONS": value, "BOKEH_SECRET_KEY": KEY})
    assert s.sign_sessions is True
    assert s.session_ids == "signed"


@pytest.mark.parametrize("value", ["maybe", "2", "nope", "yes please"])
def test_sign_sessions_nonsense_is_an_error(value):
    with pytest.raises(SettingsError) as err:
        build(environ={"BOKEH_SIGN_SESSIONS": value, "BOKEH_SECRET_KEY": KEY})
    assert "BOKEH_SIGN_SESSIONS" in str(err.value) or "sign" in str(err.value)


def test_empty_environment_value_is_unset():
    assert build(environ={"BOKEH_SIGN_SESSIONS": "", "BOKEH_DEFAULT_SERVER_PORT": ""}) == Settings()


def test_parse_bool_passes_bools_through():
    assert parse_bool(True, "x") is True and parse_bool(False, "x") is False
    with pytest.raises(SettingsError):
        parse_bool("sure", "x")


@pytest.mark.parametrize("value", ["yes", True])
def test_disable_index_boolean_from_config(value):
    assert build(config={"BOKEH_DISABLE_INDEX": value}).disable_index is True


# -- signing ------------------------------------------------------------------------------

@pytest.mark.parametrize("how", [
    {"environ": {"BOKEH_SIGN_SESSIONS": "yes"}},
    {"overrides": {"session_ids": "signed"}},
    {"overrides": {"session_ids": "external-signed"}},
    {"config": {"BOKEH_SESSION_IDS": "signed"}},
])
def test_signing_without_secret_is_an_error(how):
    with pytest.raises(SettingsError) as err:
        build(**how)
    assert "BOKEH_SECRET_KEY" in str(err.value)


@pytest.mark.parametrize("mode,sign,generate", [
    ("unsigned", False, True), ("signed", True, True), ("external-signed", True, False),
    ("SIGNED", True, True),
])
def test_session_ids_modes(mode, sign, generate):
    s = build({"session_ids": mode}, environ={"BOKEH_SECRET_KEY": KEY})
    assert (s.sign_sessions, s.generate_session_ids) == (sign, generate)
    assert s.session_ids == mode.lower()


def test_session_ids_unsigned_overrides_environment_signing():
    s = build({"session_ids": "unsigned"}, environ={"BOKEH_SIGN_SESSIONS": "yes", "BOKEH_SECRET_KEY": KEY})
    assert s.sign_sessions is False


def test_bad_session_ids_mode():
    with pytest.raises(SettingsError, match="session-ids"):
        build({"session_ids": "sometimes"})


# -- numbers ------------------------------------------------------------------------------

@pytest.mark.parametrize("field,flag", [
    ("check_unused_sessions", "--check-unused-sessions"),
    ("unused_session_lifetime", "--unused-session-lifetime"),
    ("session_token_expiration", "--session-token-expiration"),
    ("websocket_max_message_size", "--websocket-max-message-size"),
    ("workers", "--workers"),
    ("login_attempts", "--login-attempts"),
    ("login_address_attempts", "--login-address-attempts"),
    ("login_attempt_window", "--login-attempt-window"),
])
@pytest.mark.parametrize("value", [0, -1, "-5"])
def test_non_positive_values_are_errors_naming_the_flag(field, flag, value):
    with pytest.raises(SettingsError) as err:
        build({field: value})
    assert flag in str(err.value)


def test_keep_alive_zero_disables_negative_is_error():
    assert build({"keep_alive": 0}).keep_alive == 0
    with pytest.raises(SettingsError, match="--keep-alive"):
        build({"keep_alive": -5})


@pytest.mark.parametrize("port", [-1, 65536])
def test_port_out_of_range(port):
    with pytest.raises(SettingsError, match="--port"):
        build({"port": port})


@pytest.mark.parametrize("value", ["abc", "1.5", True, ""])
def test_non_integer_is_error_naming_field(value):
    with pytest.raises(SettingsError, match="keep-alive"):
        build({"keep_alive": value})


def test_string_integers_accepted():
    assert build({"keep_alive": " 1200 "}).keep_alive == 1200


def test_login_throttle_settings_from_every_source(monkeypatch):
    from bokeh_flask.app.process.cli import _parser, _settings_from_args

    defaults = build()
    assert (defaults.login_attempts, defaults.login_address_attempts, defaults.login_attempt_window) == (5, 20, 300)
    assert build(environ={"BOKEH_LOGIN_ADDRESS_ATTEMPTS": "50"}).login_address_attempts == 50
    with pytest.raises(SettingsError, match="login-address-attempts .*BOKEH_LOGIN_ADDRESS_ATTEMPTS"):
        build(environ={"BOKEH_LOGIN_ADDRESS_ATTEMPTS": "many"})
    for name in [k for k in os.environ if k.startswith("BOKEH_")]:
        monkeypatch.delenv(name)
    settings, _ = _settings_from_args(_parser().parse_args(
        ["serve", "--login-attempts", "3", "--login-address-attempts", "9", "--login-attempt-window", "60"]))
    assert (settings.login_attempts, settings.login_address_attempts, settings.login_attempt_window) == (3, 9, 60)


# -- lists, logs, files -------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["headers", "cookies"])
def test_include_and_exclude_together_is_error(kind):
    with pytest.raises(SettingsError) as err:
        build({f"include_{kind}": ["a"], f"exclude_{kind}": ["b"]})
    assert f"--include-{kind}" in str(err.value) and f"--exclude-{kind}" in str(err.value)


def test_include_headers_from_list_or_comma_string():
    assert build({"include_headers": ["A", " B "]}).include_headers == ("A", "B")
    assert build({"include_headers": "A, B,,"}).include_headers == ("A", "B")


@pytest.mark.parametrize("level", ["loud", "verbose", "5"])
def test_bad_log_level(level):
    with pytest.raises(SettingsError, match="--log-level"):
        build({"log_level": level})


def test_bad_log_level_from_environment_names_it():
    with pytest.raises(SettingsError) as err:
        build(environ={"BOKEH_PY_LOG_LEVEL": "chatty"})
    assert "log-level" in str(err.value)


def test_missing_index_and_ico_files(tmp_path):
    with pytest.raises(SettingsError, match="--index"):
        build({"index": str(tmp_path / "nope.html")})
    with pytest.raises(SettingsError, match="--ico-path"):
        build({"ico_path": str(tmp_path / "nope.ico")})
    assert build({"ico_path": "none"}).ico_path == "none"
    assert build({"ico_path": "NONE"}).ico_path == "NONE"


# -- prefix -------------------------------------------------------------------------------

@pytest.mark.parametrize("raw,expected", [
    ("pre", "/pre"), ("/pre", "/pre"), ("/pre/", "/pre"), ("pre/", "/pre"), ("//pre//", "/pre"),
    ("a/b", "/a/b"), ("/a/b/", "/a/b"), ("", ""), ("/", ""), ("//", ""), (None, ""),
])
def test_prefix_normalisation(raw, expected):
    assert normalize_prefix(raw) == expected
    assert build({"prefix": raw}).prefix == expected


def test_prefix_from_config():
    assert build(config={"BOKEH_PREFIX": "/pre/"}).prefix == "/pre"


# -- origins in settings ------------------------------------------------------------------

def test_env_origins_without_port_match_any_port():
    s = build(environ={"BOKEH_ALLOW_WS_ORIGIN": "a.com, b.com:8080"})
    allow = OriginAllowlist.parse(s.allow_websocket_origin, s.port)
    assert allow.allows("http://a.com:1234")
    assert allow.allows("http://a.com")
    assert allow.allows("https://a.com")
    assert allow.allows("http://b.com:8080")
    assert not allow.allows("http://b.com:8081")
    assert not allow.allows("http://c.com")


def test_override_origins_without_port_mean_default_port():
    s = build({"allow_websocket_origin": ["a.com"]})
    allow = OriginAllowlist.parse(s.allow_websocket_origin, s.port)
    assert allow.allows("http://a.com")
    assert allow.allows("https://a.com")
    assert not allow.allows("http://a.com:1234")


def test_bad_origin_is_settings_error():
    with pytest.raises(SettingsError, match="allow-websocket-origin"):
        build({"allow_websocket_origin": ["a:b:c"]})


def test_unknown_override_key():
    with pytest.raises(SettingsError, match="no_such_option"):
        build({"no_such_option": 1})



def test_reattach_expired_tokens_is_on_by_default_and_set_from_every_source():
    assert build_settings(environ={}).reattach_expired_tokens is True
    assert build_settings(environ={"BOKEH_REATTACH_EXPIRED_TOKENS": "no"}).reattach_expired_tokens is False
    assert build_settings(config={"BOKEH_REATTACH_EXPIRED_TOKENS": False}, environ={}).reattach_expired_tokens is False
    with pytest.raises(SettingsError, match="BOKEH_REATTACH_EXPIRED_TOKENS"):
        build_settings(environ={"BOKEH_REATTACH_EXPIRED_TOKENS": "sometimes"})


@pytest.mark.parametrize("flag, expected", [([], True), (["--no-reattach-expired-tokens"], False),
                                            (["--reattach-expired-tokens"], True)])
def test_reattach_expired_tokens_cli_flag(flag, expected, monkeypatch):
    from bokeh_flask.app.process.cli import _parser, _settings_from_args

    for name in [k for k in os.environ if k.startswith("BOKEH_")]:
        monkeypatch.delenv(name)
    settings, _ = _settings_from_args(_parser().parse_args(["serve", *flag]))
    assert settings.reattach_expired_tokens is expected


# -- websocket compression --------------------------------------------------------------------

def test_compression_is_off_by_default():
    assert build().websocket_compression is None


@pytest.mark.parametrize("given,expected", [
    ({"websocket_compression_level": 1}, (1, 8)),
    ({"websocket_compression_level": "0"}, (0, 8)),
    ({"websocket_compression_mem_level": 9}, (6, 9)),
    ({"websocket_compression_level": 9, "websocket_compression_mem_level": 1}, (9, 1)),
])
def test_compression_levels_with_tornado_defaults_for_the_other(given, expected):
    assert build(overrides=given).websocket_compression == expected


def test_compression_from_flask_config():
    config = {"BOKEH_WEBSOCKET_COMPRESSION_LEVEL": "4", "BOKEH_WEBSOCKET_COMPRESSION_MEM_LEVEL": 5}
    assert build(config=config).websocket_compression == (4, 5)


@pytest.mark.parametrize("field,value,needle", [
    ("websocket_compression_level", 10, "--websocket-compression-level must be between 0 and 9"),
    ("websocket_compression_level", -1, "--websocket-compression-level must be between 0 and 9"),
    ("websocket_compression_mem_level", 0, "--websocket-compression-mem-level must be between 1 and 9"),
    ("websocket_compression_mem_level", 10, "--websocket-compression-mem-level must be between 1 and 9"),
    ("websocket_compression_level", "fast", "expected an integer"),
])
def test_bad_compression_levels_are_errors(field, value, needle):
    with pytest.raises(SettingsError, match=needle):
        build(overrides={field: value})


@pytest.mark.parametrize(("name", "url", "expected"), [
    ("BOKEH_FLASK_REDIS_URL", "foo://:hunter2@x/0",
     "--redis-url must be a redis:// or rediss:// or unix:// URL, got a foo:// URL"),
    ("BOKEH_LOGIN_STORE", "/tmp/logins.db",
     "--login-store must be a sqlite:// or redis:// or rediss:// or unix:// URL, got no scheme"),
])
def test_a_store_url_of_the_wrong_kind_is_refused_without_echoing_it(name, url, expected):
    with pytest.raises(SettingsError) as err:
        build(environ={name: url})
    assert str(err.value) == expected  # the URL may carry a password: it is not repeated


def test_store_urls_of_the_right_kind_are_accepted():
    settings = build(environ={"BOKEH_FLASK_REDIS_URL": "redis://127.0.0.1:6379/0",
                              "BOKEH_LOGIN_STORE": "sqlite:////tmp/logins.db"})
    assert settings.redis_url == "redis://127.0.0.1:6379/0"


# -- the metrics token from a file (issue 21, item 7) ------------------------------------------

def test_metrics_token_file_sets_the_token(tmp_path):
    path = tmp_path / "token"
    path.write_text("  scrape-0123456789\n")
    for s in (build({"metrics": True, "metrics_token_file": str(path)}),
              build(environ={"BOKEH_FLASK_METRICS": "1", "BOKEH_FLASK_METRICS_TOKEN_FILE": str(path)})):
        assert s.metrics_token == "scrape-0123456789"
        assert "scrape-0123456789" not in repr(s)


@pytest.mark.parametrize("content, needle", [
    (None, "cannot read"), (b"", "is empty"), (b" \n", "is empty"), (b"\xff\xfe", "is not UTF-8 text"),
    (b"with space", "printable ASCII"), (b"t\x01k", "printable ASCII"), ("tökén".encode(), "printable ASCII"),
])
def test_bad_metrics_token_files_name_the_flag(tmp_path, content, needle):
    path = tmp_path / "token"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SettingsError, match=needle) as error:
        build({"metrics": True, "metrics_token_file": str(path)})
    assert str(error.value).startswith("--metrics-token-file")


def test_metrics_token_file_needs_metrics(tmp_path):
    path = tmp_path / "token"
    path.write_text("scrape-0123456789")
    with pytest.raises(SettingsError, match="--metrics-token-file needs --metrics"):
        build({"metrics_token_file": str(path)})


def test_a_directory_is_no_metrics_token_file(tmp_path):
    with pytest.raises(SettingsError, match="--metrics-token-file: cannot read"):
        build({"metrics": True, "metrics_token_file": str(tmp_path)})


@pytest.mark.parametrize("overrides, message", [
    ({"cookie_samesite": "lax"}, "--cookie-samesite must be one of Lax, Strict, None, got 'lax'"),
    ({"stats_log_frequency": -1}, "--stats-log-frequency must be 0 (off) or more, got -1"),
    ({"login_idle_timeout": -1}, "--login-idle-timeout must be 0 (off) or more, got -1"),
    ({"log_level": "loud"}, "--log-level must be one of trace, debug, info, warning, error, critical, got 'loud'"),
])
def test_each_problem_is_one_line_naming_the_flag(overrides, message):
    with pytest.raises(SettingsError) as err:
        build(overrides)
    assert str(err.value) == message


def test_a_setting_without_a_flag_is_named_by_its_environment_variable():
    with pytest.raises(SettingsError, match=r"^session signing is on but no secret key is set: set BOKEH_SECRET_KEY"):
        build(environ={"BOKEH_SIGN_SESSIONS": "1"})
    with pytest.raises(SettingsError) as err:
        build(config={"BOKEH_SIGN_SESSIONS": "perhaps"})
    assert str(err.value).startswith("sign-sessions (from Flask config BOKEH_SIGN_SESSIONS): expected yes/no")


@pytest.mark.parametrize("value", [[8], 8.0, "8.5"])
def test_int_settings_refuse_what_is_no_integer_from_flask_config(value):
    with pytest.raises(SettingsError, match=r"keep-alive \(from Flask config BOKEH_KEEP_ALIVE\): expected an integer"):
        build(config={"BOKEH_KEEP_ALIVE": value})


def test_optional_int_settings_read_strings_and_ints():
    assert build(config={"BOKEH_WEBSOCKET_COMPRESSION_LEVEL": " 4 "}).websocket_compression_level == 4
    assert build(environ={}, config={"BOKEH_WEBSOCKET_COMPRESSION_LEVEL": None}).websocket_compression_level is None
