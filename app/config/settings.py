"""Typed server settings: the one home of every option, its default and its validation.

Values come from four places, strongest first: explicit overrides (CLI flags or keyword
arguments to ``BokehServer``), Flask config (``BOKEH_<NAME>`` keys), Bokeh's own
``BOKEH_*`` environment variables, then the defaults below (Bokeh's defaults).
Everything is validated once at start-up; a bad value raises :class:`SettingsError` with
a message naming the option and where it came from.

This module must stay import-light (no Flask, no Bokeh): the CLI validates settings in the
gunicorn master before any worker imports the web stack.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, fields
from typing import Any, Mapping

#: Bokeh's default port for ``bokeh serve``.
DEFAULT_PORT = 5006
#: Keep-alive ping interval (ms); Bokeh's default. 0 disables pings.
DEFAULT_KEEP_ALIVE_MS = 37_000
#: How often unused sessions are looked for (ms); Bokeh's default.
DEFAULT_CHECK_UNUSED_MS = 17_000
#: How long a session with no connection lives (ms); Bokeh's default.
DEFAULT_UNUSED_LIFETIME_MS = 15_000
#: Lifetime of a session token (s); Bokeh's default. Reconnects after it fail.
DEFAULT_TOKEN_EXPIRATION_S = 300
#: Largest incoming websocket message (bytes); Bokeh's default of 20 MiB.
DEFAULT_MAX_MESSAGE_SIZE = 20 * 1024 * 1024
#: zlib settings of permessage-deflate when only one of the two options is given:
#: Tornado's (``GZipContentEncoding.GZIP_LEVEL`` and zlib's default memory level).
DEFAULT_COMPRESSION_LEVEL = 6
DEFAULT_COMPRESSION_MEM_LEVEL = 8

_TRUE = {"1", "yes", "true", "on", "y", "t"}
_FALSE = {"0", "no", "false", "off", "n", "f", ""}

SESSION_ID_MODES = ("unsigned", "signed", "external-signed")
LOG_LEVELS = ("trace", "debug", "info", "warning", "error", "critical")


class SettingsError(ValueError):
    """A configuration value is invalid; the message says which and why."""


def parse_bool(value: Any, name: str) -> bool:
    """Read a boolean the way a user means it.

    Bokeh itself treats any non-empty ``BOKEH_SIGN_SESSIONS`` as true (so ``no`` enables
    signing); we read ``no``, ``false``, ``0`` and ``off`` as false and reject nonsense.
    """
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise SettingsError(f"{name}: expected yes/no (true/false, 1/0), got {value!r}")


def _parse_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v).strip() for v in value if str(v).strip()]


def normalize_prefix(prefix: str | None) -> str:
    """Bokeh's prefix rule: strip slashes, then one leading slash if anything is left."""
    stripped = (prefix or "").strip("/")
    return f"/{stripped}" if stripped else ""


@dataclass(frozen=True)
class Settings:
    """Every option of the server, with Bokeh's defaults.

    Field names follow ``bokeh serve``'s flags (``--keep-alive`` -> ``keep_alive``).
    """

    #: Interface to listen on (CLI only); empty means all interfaces, as ``bokeh serve``.
    address: str = ""
    #: Port to listen on (CLI only); the default websocket origin is ``localhost:<the port a
    #: connection reached>``, and ``localhost:<port>`` where that is unknown (a Unix socket).
    port: int = DEFAULT_PORT
    #: URL prefix for every route but ``/favicon.ico``.
    prefix: str = ""
    #: Websocket origins allowed (``host[:port]``, ``*`` wildcards).
    allow_websocket_origin: tuple[str, ...] = ()
    #: Path to a Jinja2 template that replaces the built-in index page.
    index: str | None = None
    #: Serve no index page at ``<prefix>/``.
    disable_index: bool = False
    #: Always list the apps on the index, even when there is only one.
    disable_index_redirect: bool = False
    #: Keep-alive ping interval in ms (0 disables).
    keep_alive: int = DEFAULT_KEEP_ALIVE_MS
    #: How often to look for unused sessions, in ms.
    check_unused_sessions: int = DEFAULT_CHECK_UNUSED_MS
    #: How long a session without connections lives, in ms.
    unused_session_lifetime: int = DEFAULT_UNUSED_LIFETIME_MS
    #: Session token lifetime in seconds.
    session_token_expiration: int = DEFAULT_TOKEN_EXPIRATION_S
    #: A websocket whose token expired (every other check passed) may re-attach to its
    #: session while that session is alive in this worker, for the same user: a tab open
    #: longer than the token's lifetime comes back after its socket drops (Bokeh issue
    #: 14416). Creating a session still needs an unexpired token.
    reattach_expired_tokens: bool = True
    #: Largest websocket message accepted, in bytes.
    websocket_max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    #: zlib level (0-9) of permessage-deflate. With this or the memory level set, a
    #: client's permessage-deflate offer is accepted; with neither, none is (Bokeh's
    #: default: compressing large binary buffers costs more CPU than it saves).
    websocket_compression_level: int | None = None
    #: zlib memory level (1-9) of permessage-deflate.
    websocket_compression_mem_level: int | None = None
    #: Sign session ids and tokens with ``secret_key``.
    sign_sessions: bool = False
    #: HMAC key for signing (``BOKEH_SECRET_KEY``).
    secret_key: str | None = dataclasses.field(default=None, repr=False)
    #: Generate session ids (off in ``external-signed`` mode).
    generate_session_ids: bool = True
    #: Request headers to put in the session token (all when empty).
    include_headers: tuple[str, ...] = ()
    #: Request headers to leave out of the session token.
    exclude_headers: tuple[str, ...] = ()
    #: Cookies to put in the session token (all when empty).
    include_cookies: tuple[str, ...] = ()
    #: Cookies to leave out of the session token.
    exclude_cookies: tuple[str, ...] = ()
    #: Cookies that carry a login (with authentication on, never in a session token; the
    #: provider's own and those an auth module's ``get_user`` reads are found without it).
    login_cookies: tuple[str, ...] = ()
    #: Favicon file; ``"none"`` disables ``/favicon.ico``; None uses Bokeh's icon.
    ico_path: str | None = None
    #: Log level for the server's loggers.
    log_level: str = "info"
    #: How often each worker logs its own session and connection counts, in ms (debug
    #: level, ``[pid N]`` first; 0 disables).
    stats_log_frequency: int = 15_000
    #: How often each worker logs its own memory use, in ms (info level, ``[pid N]``
    #: first; 0 disables).
    mem_log_frequency: int = 0
    #: Auth module file (Bokeh's ``--auth-module``).
    auth_module: str | None = None
    #: Require an XSRF token on state-changing requests (login/logout forms).
    enable_xsrf_cookies: bool = False
    #: Trust the proxy's ``X-Forwarded-For`` and ``X-Forwarded-Proto`` (one proxy in
    #: front): ``session_context.request.remote_ip`` and ``protocol`` are the browser's.
    use_xheaders: bool = False
    #: Secret for signed cookies (Flask's ``SECRET_KEY`` when unset).
    cookie_secret: str | None = dataclasses.field(default=None, repr=False)
    #: A file holding ``cookie_secret`` (so the secret shows in no command line).
    cookie_secret_file: str | None = None
    #: ``SameSite`` of the login cookies: ``Lax``, ``Strict``, or ``None`` (cross-site
    #: embedding; the cookies are then ``Secure`` and need HTTPS).
    cookie_samesite: str = "Lax"
    #: Where live logins are kept, so a logout ends them in every worker: ``sqlite:///path``
    #: (one host; default: ``logins.sqlite3`` in ``state_dir``) or ``redis://host:port/db``.
    login_store: str | None = None
    #: Redis shared by every host (``redis://host:port/db``): logouts travel through it,
    #: so a user who logs out on one host loses their tabs on all of them, and it is the
    #: login store too unless ``login_store`` names another.
    redis_url: str | None = None
    #: A login ends after this many seconds without a request (0: only at logout).
    login_idle_timeout: int = 8 * 3600
    #: Failed logins of one user name allowed from one client address in
    #: ``login_attempt_window`` seconds; once a user name has failed this often from all
    #: addresses together, an address that failed for it gets no more guesses (429) until
    #: its failure leaves the window. An address that has not failed is always checked.
    login_attempts: int = 5
    #: Failed logins allowed from one client address, whatever the user names, in the window.
    login_address_attempts: int = 20
    login_attempt_window: int = 300
    #: The server's private directory (mode 0700) for the files and sockets it makes on the
    #: host; default ``$XDG_RUNTIME_DIR/bokeh-flask``, else ``<temp dir>/bokeh-flask-<uid>``
    #: (see :mod:`.state_dir`).
    state_dir: str | None = None
    #: Worker processes (CLI only).
    workers: int = 1
    #: ``--use-config``: a YAML file of Bokeh settings (``secret_key: ...``, ``resources:
    #: cdn``), as ``bokeh serve``'s; it ranks below the environment and flags.
    use_config: str | None = None
    #: ``--dev``: an app that fails to load gets an error page instead of stopping the
    #: server, and its pages reload themselves when the worker restarts on a save.
    dev: bool = False
    #: ``--metrics``: Prometheus metrics at ``<prefix>/metrics`` (off: nothing is recorded).
    metrics: bool = False
    #: ``--metrics-token``: ``<prefix>/metrics`` answers only ``Authorization: Bearer <it>``.
    metrics_token: str | None = dataclasses.field(default=None, repr=False)
    #: A file holding ``metrics_token`` (so the token shows in no command line).
    metrics_token_file: str | None = None
    #: ``--admin``: a live admin page at ``<prefix>/admin`` (sessions, messages and memory of
    #: every worker of this host), itself an app, so behind the apps' login when auth is on.
    admin: bool = False

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


#: Environment variables (Bokeh's, and bokeh-flask's ``BOKEH_FLASK_*``) and the field each one sets.
ENV_VARS: dict[str, str] = {
    "BOKEH_ALLOW_WS_ORIGIN": "allow_websocket_origin",
    "BOKEH_SECRET_KEY": "secret_key",
    "BOKEH_SIGN_SESSIONS": "sign_sessions",
    "BOKEH_ICO_PATH": "ico_path",
    "BOKEH_PY_LOG_LEVEL": "log_level",
    "BOKEH_DEFAULT_SERVER_PORT": "port",
    "BOKEH_AUTH_MODULE": "auth_module",
    "BOKEH_XSRF_COOKIES": "enable_xsrf_cookies",
    "BOKEH_COOKIE_SECRET": "cookie_secret",
    "BOKEH_USE_XHEADERS": "use_xheaders",
    "BOKEH_REATTACH_EXPIRED_TOKENS": "reattach_expired_tokens",
    "BOKEH_LOGIN_COOKIES": "login_cookies",
    "BOKEH_COOKIE_SECRET_FILE": "cookie_secret_file",
    "BOKEH_COOKIE_SAMESITE": "cookie_samesite",
    "BOKEH_LOGIN_STORE": "login_store",
    "BOKEH_FLASK_REDIS_URL": "redis_url",
    "BOKEH_LOGIN_IDLE_TIMEOUT": "login_idle_timeout",
    "BOKEH_LOGIN_ATTEMPTS": "login_attempts",
    "BOKEH_LOGIN_ADDRESS_ATTEMPTS": "login_address_attempts",
    "BOKEH_LOGIN_ATTEMPT_WINDOW": "login_attempt_window",
    "BOKEH_FLASK_METRICS": "metrics",
    "BOKEH_FLASK_METRICS_TOKEN": "metrics_token",
    "BOKEH_FLASK_METRICS_TOKEN_FILE": "metrics_token_file",
    "BOKEH_FLASK_ADMIN": "admin",
    "BOKEH_FLASK_STATE_DIR": "state_dir",
}

#: Keys of a ``--use-config`` file (Bokeh's setting names) that set a field here; the
#: file's other Bokeh settings (``resources``, ``minified`` ...) reach Bokeh itself.
CONFIG_FILE_KEYS: dict[str, str] = {
    "allowed_ws_origin": "allow_websocket_origin",
    "auth_module": "auth_module",
    "cookie_secret": "cookie_secret",
    "default_server_host": "address",
    "default_server_port": "port",
    "ico_path": "ico_path",
    "py_log_level": "log_level",
    "secret_key": "secret_key",
    "sign_sessions": "sign_sessions",
    "xsrf_cookies": "enable_xsrf_cookies",
}

_FIELD_TYPES = {f.name: f.type for f in fields(Settings)}


def _coerce(name: str, value: Any, source: str) -> Any:
    kind = _FIELD_TYPES[name]
    label = f"{name.replace('_', '-')} (from {source})"
    if kind == "bool":
        return parse_bool(value, label)
    if kind in ("int", "int | None"):
        if isinstance(value, bool):
            raise SettingsError(f"{label}: expected an integer, got {value!r}")
        try:
            return int(str(value).strip())
        except ValueError:
            raise SettingsError(f"{label}: expected an integer, got {value!r}") from None
    if kind == "tuple[str, ...]":
        return tuple(_parse_list(value))
    if kind == "str | None":
        return None if value is None else str(value)
    return str(value)


def build_settings(
    overrides: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Merge overrides, Flask config and environment over the defaults, then validate.

    ``config`` is a Flask config mapping: keys ``BOKEH_<FIELD>`` (for example
    ``BOKEH_PREFIX``, ``BOKEH_KEEP_ALIVE``) and Bokeh's own variable names
    (``BOKEH_ALLOW_WS_ORIGIN`` ...). ``overrides`` uses field names. A special
    ``session_ids`` key (unsigned / signed / external-signed) sets the signing fields.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}

    def take(name: str, value: Any, source: str) -> None:
        if name == "session_ids":
            values.update(_session_mode(value, source))
            return
        if name not in _FIELD_TYPES:
            raise SettingsError(f"unknown setting {name!r} (from {source})")
        coerced = _coerce(name, value, source)
        if name == "allow_websocket_origin" and source.startswith(("BOKEH_ALLOW_WS_ORIGIN", "allowed_ws_origin")):
            # Bokeh reads its allowed_ws_origin setting verbatim: no port means any port.
            coerced = tuple(o if ":" in o or o == "*" else f"{o}:*" for o in coerced)
        values[name] = coerced

    for var, name in ENV_VARS.items():
        if environ.get(var, "") != "":
            take(name, environ[var], var)
    for key, value in (config or {}).items():
        if not key.startswith("BOKEH_") or value is None:
            continue
        name = ENV_VARS.get(key) or key[len("BOKEH_"):].lower()
        if name in _FIELD_TYPES or name == "session_ids":
            take(name, value, f"Flask config {key}")
    for name, value in (overrides or {}).items():
        if value is not None:
            take(name, value, "argument")

    if values.get("use_config"):
        for name, (value, source) in read_config_file(values["use_config"]).items():
            if name not in values:  # the file ranks below the environment, config and flags
                take(name, value, source)
    values["prefix"] = normalize_prefix(values.get("prefix"))
    if values.get("cookie_secret_file"):
        values["cookie_secret"] = _read_secret(values["cookie_secret_file"], "--cookie-secret-file")
    if values.get("metrics_token_file"):
        values["metrics_token"] = _read_secret(values["metrics_token_file"], "--metrics-token-file")
    settings = Settings(**values)
    validate(settings)
    return settings


def read_config_file(path: str) -> dict[str, tuple[Any, str]]:
    """The fields a ``--use-config`` YAML file sets: ``{field: (value, source)}``."""
    import yaml

    try:
        with open(path, encoding="utf-8") as file:
            content = yaml.safe_load(file)
    except OSError as exc:
        raise SettingsError(f"--use-config: cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise SettingsError(f"--use-config: {path} is not valid YAML: {' '.join(str(exc).split())}") from None
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise SettingsError(f"--use-config: {path} must hold 'key: value' lines (Bokeh setting names)")
    source = f"--use-config {path}"
    return {CONFIG_FILE_KEYS[key]: (value, f"{key} in {source}")
            for key, value in content.items() if key in CONFIG_FILE_KEYS and value is not None}


def _read_secret(path: str, flag: str) -> str:
    """The secret a ``flag`` file holds (surrounding whitespace and the newline dropped)."""
    try:
        with open(path, encoding="utf-8") as file:
            secret = file.read().strip()
    except OSError as exc:
        raise SettingsError(f"{flag}: cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise SettingsError(f"{flag}: {path} is not UTF-8 text") from None
    if not secret:
        raise SettingsError(f"{flag}: {path} is empty")
    return secret


def _session_mode(value: Any, source: str) -> dict[str, bool]:
    mode = str(value).strip().lower()
    if mode not in SESSION_ID_MODES:
        raise SettingsError(
            f"session-ids (from {source}): expected one of {', '.join(SESSION_ID_MODES)}, got {value!r}"
        )
    return {"sign_sessions": mode != "unsigned", "generate_session_ids": mode != "external-signed"}


def validate(settings: Settings) -> None:
    """Refuse settings ``bokeh serve`` would refuse, with the flag's name in the message."""
    positive = {
        "check_unused_sessions": settings.check_unused_sessions,
        "unused_session_lifetime": settings.unused_session_lifetime,
        "session_token_expiration": settings.session_token_expiration,
        "websocket_max_message_size": settings.websocket_max_message_size,
        "workers": settings.workers,
    }
    positive.update(login_attempts=settings.login_attempts, login_attempt_window=settings.login_attempt_window,
                    login_address_attempts=settings.login_address_attempts)
    for name, value in positive.items():
        if value <= 0:
            raise SettingsError(f"--{name.replace('_', '-')} must be greater than 0, got {value}")
    for name in ("stats_log_frequency", "mem_log_frequency"):
        if getattr(settings, name) < 0:
            raise SettingsError(f"--{name.replace('_', '-')} must be 0 (off) or more")
    if settings.auth_module is not None and not os.path.isfile(settings.auth_module):
        raise SettingsError(f"--auth-module: no such file: {settings.auth_module}")
    if settings.login_idle_timeout < 0:
        raise SettingsError(f"--login-idle-timeout must be 0 (off) or more, got {settings.login_idle_timeout}")
    if settings.cookie_samesite not in ("Lax", "Strict", "None"):
        raise SettingsError(f"--cookie-samesite must be Lax, Strict or None, got {settings.cookie_samesite!r}")
    if settings.keep_alive < 0:
        raise SettingsError(f"--keep-alive must be 0 (off) or more, got {settings.keep_alive}")
    for name, low in (("websocket_compression_level", 0), ("websocket_compression_mem_level", 1)):
        value = getattr(settings, name)
        if value is not None and not low <= value <= 9:
            raise SettingsError(f"--{name.replace('_', '-')} must be between {low} and 9 (a zlib "
                                f"{'level' if low == 0 else 'memory level'}), got {value}")
    if not 0 <= settings.port <= 65535:
        raise SettingsError(f"--port must be between 0 and 65535, got {settings.port}")
    if settings.sign_sessions and not settings.secret_key:
        raise SettingsError(
            "session signing is on but no secret key is set: set BOKEH_SECRET_KEY "
            "(make one with `bokeh-flask secret`)"
        )
    for kind in ("headers", "cookies"):
        if getattr(settings, f"include_{kind}") and getattr(settings, f"exclude_{kind}"):
            raise SettingsError(f"--include-{kind} and --exclude-{kind} cannot be used together")
    if settings.metrics_token is not None:
        flag = "--metrics-token-file" if settings.metrics_token_file else "--metrics-token"
        if not settings.metrics:
            raise SettingsError(f"{flag} needs --metrics (BOKEH_FLASK_METRICS=1): "
                                "without it there is no /metrics to protect")
        if not settings.metrics_token or not all(" " < ch < "\x7f" for ch in settings.metrics_token):
            raise SettingsError(f"{flag}: the token must be printable ASCII without spaces "
                                "(it travels in an Authorization header)")
    from urllib.parse import urlsplit  # local, as below

    for flag, url, schemes in (("--redis-url", settings.redis_url, ("redis", "rediss", "unix")),
                               ("--login-store", settings.login_store, ("sqlite", "redis", "rediss", "unix"))):
        scheme = urlsplit(url).scheme if url is not None else None
        if url is not None and scheme not in schemes:  # the URL itself may hold a password: not echoed
            raise SettingsError(f"{flag} must be a {' or '.join(f'{s}://' for s in schemes)} URL, "
                                f"got {f'a {scheme}:// URL' if scheme else 'no scheme'}")
    if settings.log_level.lower() not in LOG_LEVELS:
        raise SettingsError(f"--log-level must be one of {', '.join(LOG_LEVELS)}, got {settings.log_level!r}")
    if settings.index is not None and not os.path.isfile(settings.index):
        raise SettingsError(f"--index: no such template file: {settings.index}")
    if settings.ico_path not in (None, "") and settings.ico_path.lower() != "none":
        if not os.path.isfile(settings.ico_path):
            raise SettingsError(f"--ico-path: no such file: {settings.ico_path}")
    from .origins import OriginAllowlist  # local: keeps this module's import surface tiny

    OriginAllowlist.parse(settings.allow_websocket_origin, settings.port)
