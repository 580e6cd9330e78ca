"""Every setting of the server, declared once: its field here holds its type, default, CLI
flag, environment variables, ``--use-config`` key, check and help (see :mod:`.declare`).

``bokeh-flask serve``'s flags, the reading of the environment and Flask config
(:mod:`.settings`) and the README's settings table (:mod:`.reference`) are made from these
declarations; adding a setting is adding its field. Field names follow ``bokeh serve``'s
flags (``--keep-alive`` -> ``keep_alive``) and defaults are Bokeh's.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .checks import between, existing_file, greater_than_zero, header_token, one_of, url, zero_or_more
from .declare import Option, SettingsError, declared, option

#: zlib settings of permessage-deflate when only one of the two options is given:
#: Tornado's (``GZipContentEncoding.GZIP_LEVEL`` and zlib's default memory level).
DEFAULT_COMPRESSION_LEVEL = 6
DEFAULT_COMPRESSION_MEM_LEVEL = 8

SESSION_ID_MODES = ("unsigned", "signed", "external-signed")
LOG_LEVELS = ("trace", "debug", "info", "warning", "error", "critical")
SAMESITE_VALUES = ("Lax", "Strict", "None")


def normalize_prefix(prefix: str | None) -> str:
    """Bokeh's prefix rule: strip slashes, then one leading slash if anything is left."""
    stripped = (prefix or "").strip("/")
    return f"/{stripped}" if stripped else ""


def _any_port(origins: tuple[str, ...]) -> tuple[str, ...]:
    """Bokeh reads its ``allowed_ws_origin`` setting verbatim: no port means any port."""
    return tuple(o if ":" in o or o == "*" else f"{o}:*" for o in origins)


def _session_mode(value: str, label: str) -> dict[str, bool]:
    mode = value.strip().lower()
    if mode not in SESSION_ID_MODES:
        raise SettingsError(f"{label}: expected one of {', '.join(SESSION_ID_MODES)}, got {value!r}")
    return {"sign_sessions": mode != "unsigned", "generate_session_ids": mode != "external-signed"}


_MS = {"metavar": "MS"}
_SECONDS = {"metavar": "SECONDS"}


@dataclass(frozen=True)
class Settings:
    """Every option of the server, with Bokeh's defaults; build with ``build_settings``."""

    address: str = option(
        "", "interface to listen on (bokeh-flask serve only)", config_file_key="default_server_host",
        shown_default="all interfaces; 127.0.0.1 with --dev")
    port: int = option(
        5006, "port to listen on (bokeh-flask serve and gunicorn.conf.py)", env=("BOKEH_DEFAULT_SERVER_PORT",),
        config_file_key="default_server_port", check=between(0, 65535), master=True)
    prefix: str = option("", "URL prefix for every route but /favicon.ico", normalize=normalize_prefix)
    allow_websocket_origin: tuple[str, ...] = option(
        (), "allow websockets from this origin (host[:port], * wildcards; repeatable); an entry "
        "without a port means port 80/443, in BOKEH_ALLOW_WS_ORIGIN any port",
        cli={"action": "append", "metavar": "HOST[:PORT]"}, env=("BOKEH_ALLOW_WS_ORIGIN",),
        config_file_key="allowed_ws_origin", bokeh_reading=_any_port,
        shown_default="localhost:<the port a connection reached>, and same-origin pages")
    index: str | None = option(
        None, "Jinja2 (or Tornado) template that replaces the built-in index page",
        cli={"metavar": "PATH"}, check=existing_file("template file"), shown_default="the built-in listing")
    disable_index: bool = option(False, "serve no index page at <prefix>/")
    disable_index_redirect: bool = option(False, "always list the apps on the index, even when there is only one")
    keep_alive: int = option(37_000, "keep-alive ping interval in ms (0: off)", cli=_MS, check=zero_or_more)
    check_unused_sessions: int = option(
        17_000, "how often to look for unused sessions, in ms", cli=_MS, check=greater_than_zero)
    unused_session_lifetime: int = option(
        15_000, "how long a session without connections lives, in ms", cli=_MS, check=greater_than_zero)
    session_token_expiration: int = option(
        300, "lifetime of a session token in seconds; creating a session needs an unexpired one",
        cli=_SECONDS, check=greater_than_zero)
    reattach_expired_tokens: bool = option(
        True, "a websocket whose token expired (every other check passed) may re-attach to its "
        "session while that session is alive in this worker, for the same user: a tab open "
        "longer than the token's lifetime comes back after its socket drops (Bokeh issue 14416)",
        env=("BOKEH_REATTACH_EXPIRED_TOKENS",))
    websocket_max_message_size: int = option(
        20 * 1024 * 1024, "largest websocket message accepted, in bytes", cli={"metavar": "BYTES"},
        check=greater_than_zero, shown_default="20971520 = 20 MiB")
    websocket_compression_level: int | None = option(
        None, "accept a client's permessage-deflate with this zlib level, 0-9 (the memory level "
        f"then defaults to {DEFAULT_COMPRESSION_MEM_LEVEL}); with neither compression setting none "
        "is accepted: compressing large binary buffers costs more CPU than it saves",
        cli={"metavar": "LEVEL"}, check=between(0, 9, "a zlib level"), shown_default="none: no compression")
    websocket_compression_mem_level: int | None = option(
        None, "accept permessage-deflate with this zlib memory level, 1-9 (the level then "
        f"defaults to {DEFAULT_COMPRESSION_LEVEL})", cli={"metavar": "LEVEL"},
        check=between(1, 9, "a zlib memory level"), shown_default="none: no compression")
    sign_sessions: bool = option(
        False, "sign session ids and tokens with secret_key (set by --session-ids); no, false, 0 "
        "and off mean off", flag=False, env=("BOKEH_SIGN_SESSIONS",), config_file_key="sign_sessions")
    secret_key: str | None = option(
        None, "HMAC key for signing (make one with `bokeh-flask secret`)", flag=False, secret=True,
        env=("BOKEH_SECRET_KEY",), config_file_key="secret_key", shown_default="none: required when signing")
    generate_session_ids: bool = option(
        True, "generate session ids (off in external-signed mode; set by --session-ids)", flag=False)
    include_headers: tuple[str, ...] = option(
        (), "request headers to put in the session token", cli={"nargs": "+", "metavar": "HEADER"},
        shown_default="all headers")
    exclude_headers: tuple[str, ...] = option(
        (), "request headers to leave out of the session token", cli={"nargs": "+", "metavar": "HEADER"})
    include_cookies: tuple[str, ...] = option(
        (), "cookies to put in the session token", cli={"nargs": "+", "metavar": "COOKIE"},
        shown_default="all cookies")
    exclude_cookies: tuple[str, ...] = option(
        (), "cookies to leave out of the session token", cli={"nargs": "+", "metavar": "COOKIE"})
    login_cookies: tuple[str, ...] = option(
        (), "cookies that carry a login: with authentication on, never in a session token",
        cli={"nargs": "+", "metavar": "NAME"}, env=("BOKEH_LOGIN_COOKIES",),
        shown_default="the provider's own and those an auth module's get_user reads")
    ico_path: str | None = option(
        None, "favicon file; 'none' disables /favicon.ico", cli={"metavar": "PATH"},
        env=("BOKEH_ICO_PATH",), config_file_key="ico_path", check=existing_file(unless=("none", "")),
        shown_default="Bokeh's icon")
    log_level: str = option(
        "info", "log level of the server's loggers", cli={"choices": LOG_LEVELS},
        env=("BOKEH_PY_LOG_LEVEL",), config_file_key="py_log_level",
        check=one_of(*LOG_LEVELS, ignore_case=True), master=True)
    stats_log_frequency: int = option(
        15_000, "how often each worker logs its own session and connection counts, in ms (debug "
        "level; 0: off)", cli=_MS, check=zero_or_more)
    mem_log_frequency: int = option(
        0, "how often each worker logs its own memory use, in ms (info level; 0: off)",
        cli=_MS, check=zero_or_more)
    auth_module: str | None = option(
        None, "a bokeh serve auth module (get_user, login_url, LoginHandler, ...)", cli={"metavar": "PATH"},
        env=("BOKEH_AUTH_MODULE",), config_file_key="auth_module", check=existing_file(), path=True,
        shown_default="none: no login")
    enable_xsrf_cookies: bool = option(
        False, "require an XSRF token on the auth module's state-changing requests",
        env=("BOKEH_XSRF_COOKIES",), config_file_key="xsrf_cookies")
    use_xheaders: bool = option(
        False, "trust one proxy's X-Forwarded-For and X-Forwarded-Proto: the session context's "
        "remote_ip and protocol are the browser's", env=("BOKEH_USE_XHEADERS",))
    cookie_secret: str | None = option(
        None, "secret for signed cookies (Tornado secure cookies, Flask's session)",
        cli={"metavar": "SECRET"}, env=("BOKEH_COOKIE_SECRET",), config_file_key="cookie_secret",
        secret=True, shown_default="the Flask app's SECRET_KEY")
    cookie_secret_file: str | None = option(
        None, "a file holding the cookie secret (it then shows in no command line)", cli={"metavar": "PATH"},
        env=("BOKEH_COOKIE_SECRET_FILE",), path=True, reads_into="cookie_secret")
    cookie_samesite: str = option(
        "Lax", "SameSite of the login cookies; None (cross-site embedding) makes them Secure, so it needs HTTPS",
        cli={"choices": SAMESITE_VALUES}, env=("BOKEH_COOKIE_SAMESITE",), check=one_of(*SAMESITE_VALUES))
    login_store: str | None = option(
        None, "where live logins are kept, so a logout ends them in every worker: sqlite:///path "
        "(one host) or redis://host:port/db", cli={"metavar": "URL"}, env=("BOKEH_LOGIN_STORE",),
        check=url("sqlite", "redis", "rediss", "unix"), master=True,
        shown_default="logins.sqlite3 in the state directory, or the Redis of --redis-url")
    redis_url: str | None = option(
        None, "Redis shared by every host (redis://host:port/db): logouts travel through it, so a "
        "user who logs out on one host loses their tabs on all of them; it is the login store "
        "too unless --login-store names another", cli={"metavar": "URL"}, env=("BOKEH_FLASK_REDIS_URL",),
        check=url("redis", "rediss", "unix"), master=True, shown_default="none: logouts reach one host's workers")
    login_idle_timeout: int = option(
        8 * 3600, "a login ends after this many seconds without a request (0: only at logout)",
        cli=_SECONDS, env=("BOKEH_LOGIN_IDLE_TIMEOUT",), check=zero_or_more, shown_default="28800 = 8 h")
    login_attempts: int = option(
        5, "failed logins of one user name allowed from one client address per window; once a name "
        "has failed this often from all addresses together, an address that failed for it waits (429) "
        "until its failure leaves the window", cli={"metavar": "N"}, env=("BOKEH_LOGIN_ATTEMPTS",),
        check=greater_than_zero)
    login_address_attempts: int = option(
        20, "failed logins allowed from one client address per window, whatever the user names",
        cli={"metavar": "N"}, env=("BOKEH_LOGIN_ADDRESS_ATTEMPTS",), check=greater_than_zero)
    login_attempt_window: int = option(
        300, "how long a failed login counts, in seconds", cli=_SECONDS,
        env=("BOKEH_LOGIN_ATTEMPT_WINDOW",), check=greater_than_zero)
    state_dir: str | None = option(
        None, "the server's private directory (mode 0700) for the files and sockets it makes on the host",
        cli={"metavar": "DIR"}, env=("BOKEH_FLASK_STATE_DIR",), path=True, master=True,
        shown_default="$XDG_RUNTIME_DIR/bokeh-flask, else <temp dir>/bokeh-flask-<uid>")
    max_sessions: int = option(
        0, "live sessions a worker holds at most: past it, a page that would make a new session "
        "answers 503 with Retry-After (so a load balancer sends the visitor elsewhere) and /readyz "
        "says the worker is full, while its sessions keep working (0: no limit)", cli={"metavar": "N"},
        env=("BOKEH_FLASK_MAX_SESSIONS",), check=zero_or_more, shown_default="0: no limit")
    workers: int = option(
        1, "worker processes (bokeh-flask serve and gunicorn.conf.py)", cli={"metavar": "N"},
        env=("BOKEH_FLASK_WORKERS",), check=greater_than_zero, master=True)
    use_config: str | None = option(
        None, "a YAML file of Bokeh settings (secret_key, sign_sessions, resources: cdn, ...), as "
        "bokeh serve's; it ranks below the environment and flags", cli={"metavar": "CONFIG"}, path=True)
    dev: bool = option(
        False, "reload the worker when a file of the app, or one of FILES, changes; an app that "
        "fails to load gets an error page instead of stopping the server; one worker, listening on "
        "127.0.0.1 unless --address is given", cli={"nargs": "*", "metavar": "FILES"},
        from_cli=lambda files: True)
    metrics: bool = option(
        False, "Prometheus metrics of every worker at <prefix>/metrics (off: nothing is recorded)",
        env=("BOKEH_FLASK_METRICS",), master=True)
    metrics_token: str | None = option(
        None, "<prefix>/metrics answers only 'Authorization: Bearer TOKEN'", cli={"metavar": "TOKEN"},
        env=("BOKEH_FLASK_METRICS_TOKEN",), check=header_token, secret=True,
        shown_default="none: /metrics open to all")
    metrics_token_file: str | None = option(
        None, "a file holding the metrics token (it then shows in no command line)", cli={"metavar": "PATH"},
        env=("BOKEH_FLASK_METRICS_TOKEN_FILE",), path=True, reads_into="metrics_token")
    admin: bool = option(
        False, "a live admin page at <prefix>/admin (sessions, messages and memory of every worker of "
        "this host), itself an app, so behind the apps' login when auth is on",
        env=("BOKEH_FLASK_ADMIN",), master=True)

    @property
    def websocket_compression(self) -> tuple[int, int] | None:
        """permessage-deflate's zlib (level, memory level), or None when it is off."""
        if self.websocket_compression_level is None and self.websocket_compression_mem_level is None:
            return None
        level = self.websocket_compression_level
        mem_level = self.websocket_compression_mem_level
        return (DEFAULT_COMPRESSION_LEVEL if level is None else level,
                DEFAULT_COMPRESSION_MEM_LEVEL if mem_level is None else mem_level)

    @property
    def session_ids(self) -> str:
        """The ``--session-ids`` mode these settings amount to."""
        if not self.sign_sessions:
            return "unsigned"
        return "signed" if self.generate_session_ids else "external-signed"

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **changes)


#: Every setting by name, in declaration order, and ``session_ids``: an input that is no
#: field but sets ``sign_sessions`` and ``generate_session_ids``.
OPTIONS: dict[str, Option] = declared(Settings, Option(
    "unsigned: the server makes session ids; signed: ids and tokens are signed with "
    "BOKEH_SECRET_KEY; external-signed: as signed, and only ids made elsewhere are accepted",
    cli={"choices": SESSION_ID_MODES}, name="session_ids", kind=str, default="unsigned",
    expands=_session_mode))
