"""``bokeh-flask``: ``serve`` (a drop-in for ``bokeh serve``) and ``secret``.

``bokeh-flask serve`` takes ``bokeh serve``'s flag names and meanings, validates every
setting and app path in the master process (a bad value is one clear line and exit code 2,
not a worker traceback), then runs gunicorn with the gevent worker. Settings reach the
workers as ``BOKEH_FLASK_SETTINGS`` (JSON) and the apps as ``BOKEH_APPS``, which is what
``create_app`` reads; gunicorn's options come from :mod:`.gunicorn_config`, shared with
``gunicorn.conf.py``.

This module must not import Flask or Bokeh at import time: gunicorn's gevent workers
monkey-patch after the fork, and the master should not have the web stack loaded.
"""
from __future__ import annotations

import argparse
import glob
import json
import logging
import os
import sys
from typing import Any, Sequence

from ..apps.app_keys import ADMIN_KEY, EXAMPLE_APPS, key_for_path, refuse_admin_key
from ..apps.load_errors import describe
from ..apps.versions import check_supported
from ..config import state_dir
from ..config.settings import SESSION_ID_MODES, Settings, SettingsError, build_settings
from .dev_reload import watched_files
from .gunicorn_config import gunicorn_options

log = logging.getLogger(__name__)

#: Where ``--dev`` listens without ``--address``: its error pages show tracebacks, and an app
#: in development is no service for other machines.
DEV_ADDRESS = "127.0.0.1"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bokeh-flask",
                                     description="Serve Bokeh apps with Flask, gunicorn and gevent.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("secret", help="print a new secret key for BOKEH_SECRET_KEY")

    serve = commands.add_parser("serve", help="serve Bokeh apps (flags as `bokeh serve`)")
    serve.add_argument("files", nargs="*", metavar="APP_PATH",
                       help="scripts, notebooks or directories (default: the bundled examples)")
    serve.add_argument("--address", default=None, help="interface to listen on (default: all)")
    serve.add_argument("--port", type=int, default=None, help="port to listen on (default 5006)")
    serve.add_argument("--unix-socket", default=None, help="listen on a Unix socket instead")
    serve.add_argument("--allow-websocket-origin", action="append", default=[], metavar="HOST[:PORT]",
                       help="allow websockets from this origin (repeatable)")
    serve.add_argument("--prefix", default=None, help="URL prefix for every route")
    serve.add_argument("--index", default=None, help="Jinja2 (or Tornado) template for the index page")
    serve.add_argument("--disable-index", action="store_true", default=None)
    serve.add_argument("--disable-index-redirect", action="store_true", default=None)
    serve.add_argument("--keep-alive", type=int, default=None, metavar="MS", help="ping interval (0: off)")
    serve.add_argument("--check-unused-sessions", type=int, default=None, metavar="MS")
    serve.add_argument("--unused-session-lifetime", type=int, default=None, metavar="MS")
    serve.add_argument("--session-token-expiration", type=int, default=None, metavar="SECONDS")
    serve.add_argument("--reattach-expired-tokens", action=argparse.BooleanOptionalAction, default=None,
                       help="let a tab whose token expired reconnect to its live session (default: on)")
    serve.add_argument("--websocket-max-message-size", type=int, default=None, metavar="BYTES")
    serve.add_argument("--websocket-compression-level", type=int, default=None, metavar="LEVEL",
                       help="accept permessage-deflate with this zlib level, 0-9 (default: off)")
    serve.add_argument("--websocket-compression-mem-level", type=int, default=None, metavar="LEVEL",
                       help="accept permessage-deflate with this zlib memory level, 1-9 (default: off)")
    serve.add_argument("--session-ids", choices=SESSION_ID_MODES, default=None)
    serve.add_argument("--include-headers", nargs="+", default=None)
    serve.add_argument("--exclude-headers", nargs="+", default=None)
    serve.add_argument("--include-cookies", nargs="+", default=None)
    serve.add_argument("--exclude-cookies", nargs="+", default=None)
    serve.add_argument("--login-cookies", nargs="+", default=None, metavar="NAME",
                       help="cookies that carry the login: never put into session tokens")
    serve.add_argument("--ico-path", default=None, help="favicon file, or 'none'")
    serve.add_argument("--log-level", default=None, choices=("trace", "debug", "info", "warning", "error", "critical"))
    serve.add_argument("--log-file", default=None, help="write the log here instead of stderr")
    serve.add_argument("--log-format", default=None, metavar="FORMAT",
                       help="Python logging format of the server's log lines (gunicorn's own keep theirs)")
    serve.add_argument("--use-config", default=None, metavar="CONFIG",
                       help="a YAML file of Bokeh settings (secret_key, sign_sessions, resources, ...)")
    serve.add_argument("--stats-log-frequency", type=int, default=None, metavar="MS",
                       help="log session and connection counts (debug level)")
    serve.add_argument("--mem-log-frequency", type=int, default=None, metavar="MS",
                       help="log memory use (0: off)")
    serve.add_argument("--workers", type=int, default=None, help="worker processes (default 1)")
    serve.add_argument("--num-procs", type=int, default=None, help="as --workers; 0 means one per core")
    serve.add_argument("--glob", action="store_true", help="expand APP_PATH wildcards")
    serve.add_argument("--show", action="store_true", help="open the (first) app in a browser once serving")
    serve.add_argument("--dev", nargs="*", default=None,
                       help="reload workers when files change; listens on 127.0.0.1 unless --address is given")
    serve.add_argument("--use-xheaders", action="store_true", help="trust X-Forwarded-* from proxies")
    serve.add_argument("--ssl-certfile", default=os.environ.get("BOKEH_SSL_CERTFILE"))
    serve.add_argument("--ssl-keyfile", default=os.environ.get("BOKEH_SSL_KEYFILE"))
    serve.add_argument("--auth-module", default=None, metavar="PATH",
                       help="a bokeh serve auth module (get_user, login_url, LoginHandler, ...)")
    serve.add_argument("--enable-xsrf-cookies", action="store_true", default=None,
                       help="require Tornado XSRF tokens on the auth module's POST handlers")
    serve.add_argument("--cookie-secret", default=None, metavar="SECRET",
                       help="secret for signed cookies (Tornado secure cookies, Flask's session)")
    serve.add_argument("--cookie-secret-file", default=None, metavar="PATH",
                       help="read --cookie-secret from this file (it then shows in no command line)")
    serve.add_argument("--cookie-samesite", default=None, choices=("Lax", "Strict", "None"),
                       help="SameSite of the login cookies (default Lax; None needs HTTPS)")
    serve.add_argument("--login-store", default=None, metavar="URL",
                       help="live logins, shared by workers: sqlite:///path (default) or redis://host:port/db")
    serve.add_argument("--redis-url", default=None, metavar="URL",
                       help="Redis shared by every host (redis://host:port/db): carries logouts "
                            "between hosts and is the login store unless --login-store is given")
    serve.add_argument("--state-dir", default=None, metavar="DIR",
                       help="private directory (mode 0700) for the server's files and sockets "
                            "(default: $XDG_RUNTIME_DIR/bokeh-flask, else <temp dir>/bokeh-flask-<uid>)")
    serve.add_argument("--login-idle-timeout", type=int, default=None, metavar="SECONDS",
                       help="end a login after this long without a request (default 8 h; 0: never)")
    serve.add_argument("--login-attempts", type=int, default=None, metavar="N",
                       help="failed logins of one user from one address per window (default 5)")
    serve.add_argument("--login-address-attempts", type=int, default=None, metavar="N",
                       help="failed logins from one address, any users, per window (default 20)")
    serve.add_argument("--login-attempt-window", type=int, default=None, metavar="SECONDS",
                       help="how long a failed login counts (default 300)")
    serve.add_argument("--metrics", action="store_true", default=None,
                       help="Prometheus metrics of every worker at <prefix>/metrics")
    serve.add_argument("--metrics-token", default=None, metavar="TOKEN",
                       help="/metrics answers only 'Authorization: Bearer TOKEN'")
    serve.add_argument("--metrics-token-file", default=None, metavar="PATH",
                       help="read --metrics-token from this file (it then shows in no command line)")
    serve.add_argument("--admin", action="store_true", default=None,
                       help="a live admin page at <prefix>/admin: sessions, messages/s and memory per worker")
    serve.add_argument("--args", nargs=argparse.REMAINDER, default=[], help="sys.argv for the apps")
    return parser


def _settings_from_args(ns: argparse.Namespace) -> tuple[Settings, dict[str, Any]]:
    workers = ns.workers
    if ns.num_procs is not None:
        workers = ns.num_procs or os.cpu_count() or 1
    if ns.dev is not None:
        if not ns.files:
            # as bokeh serve: `--dev app.py` takes app.py as a file to watch, not as the app
            raise SettingsError("--dev option requires an app script or directory be provided "
                                "(give the app's path before --dev: serve app.py --dev [FILES])")
        if workers not in (None, 1):
            print("bokeh-flask: Running in --dev mode. --num-procs is limited to 1.", file=sys.stderr)
        workers = 1
    address = ns.address
    if ns.dev is not None and address is None and not ns.unix_socket:
        address = DEV_ADDRESS
    overrides = {
        "address": address, "port": ns.port, "prefix": ns.prefix,
        "allow_websocket_origin": ns.allow_websocket_origin or None,
        "index": ns.index, "disable_index": ns.disable_index,
        "disable_index_redirect": ns.disable_index_redirect, "keep_alive": ns.keep_alive,
        "check_unused_sessions": ns.check_unused_sessions,
        "unused_session_lifetime": ns.unused_session_lifetime,
        "session_token_expiration": ns.session_token_expiration,
        "reattach_expired_tokens": ns.reattach_expired_tokens,
        "websocket_max_message_size": ns.websocket_max_message_size,
        "websocket_compression_level": ns.websocket_compression_level,
        "websocket_compression_mem_level": ns.websocket_compression_mem_level,
        "session_ids": ns.session_ids, "include_headers": ns.include_headers,
        "exclude_headers": ns.exclude_headers, "include_cookies": ns.include_cookies,
        "exclude_cookies": ns.exclude_cookies, "login_cookies": ns.login_cookies,
        "ico_path": ns.ico_path,
        "log_level": ns.log_level, "workers": workers,
        "stats_log_frequency": ns.stats_log_frequency, "mem_log_frequency": ns.mem_log_frequency,
        "auth_module": os.path.abspath(ns.auth_module) if ns.auth_module else None,
        "enable_xsrf_cookies": ns.enable_xsrf_cookies, "cookie_secret": ns.cookie_secret,
        "cookie_secret_file": os.path.abspath(ns.cookie_secret_file) if ns.cookie_secret_file else None,
        "cookie_samesite": ns.cookie_samesite, "login_store": ns.login_store,
        "redis_url": ns.redis_url,
        "state_dir": os.path.abspath(ns.state_dir) if ns.state_dir else None,
        "login_idle_timeout": ns.login_idle_timeout,
        "login_attempts": ns.login_attempts, "login_address_attempts": ns.login_address_attempts,
        "login_attempt_window": ns.login_attempt_window,
        "use_xheaders": ns.use_xheaders or None,
        "dev": True if ns.dev is not None else None,
        "use_config": os.path.abspath(ns.use_config) if ns.use_config else None,
        "metrics": ns.metrics, "metrics_token": ns.metrics_token, "admin": ns.admin,
        "metrics_token_file": os.path.abspath(ns.metrics_token_file) if ns.metrics_token_file else None,
    }
    overrides = {k: v for k, v in overrides.items() if v is not None}
    settings = build_settings(overrides=overrides)
    if settings.auth_module:
        # load it here, in the master, so a bad module is one line and exit 2 instead of
        # a worker that fails to boot (its code runs again in each worker)
        from ..auth.providers import AuthModule

        AuthModule(settings.auth_module)
    return settings, overrides


def _app_paths(ns: argparse.Namespace) -> list[str]:
    paths: list[str] = []
    for pattern in ns.files:
        matches = sorted(glob.glob(pattern)) if ns.glob else [pattern]
        if ns.glob and not matches:
            raise SettingsError(f"no files match {pattern!r}")
        paths.extend(matches)
    for path in paths:
        if not os.path.exists(path):
            raise SettingsError(f"app path does not exist: {path}")
        if os.path.isfile(path) and not path.endswith((".py", ".ipynb")):
            raise SettingsError(f"app path must be a .py script, a .ipynb notebook or a directory: {path}")
    return [os.path.abspath(p) for p in paths]


def serve(ns: argparse.Namespace) -> int:
    settings, overrides = _settings_from_args(ns)
    paths = _app_paths(ns)
    if ns.unix_socket and (ns.port is not None or ns.address is not None):
        raise SettingsError("--unix-socket cannot be combined with --port or --address")
    if settings.admin:
        refuse_admin_key(_keys(paths))
    state_dir.prepare(settings.state_dir)  # one that is not private: one line, before anything starts
    _check_apps_load(paths)
    bind = f"unix:{ns.unix_socket}" if ns.unix_socket else None
    options = gunicorn_options(settings, bind)
    if ns.log_file:
        options["errorlog"] = ns.log_file
    if ns.dev is not None:
        # gunicorn's reloader restarts the worker on a save; the worker then loads every
        # module fresh and serves an error page for an app that fails (settings.dev)
        options["reload"] = True
        options["reload_extra_files"] = watched_files(paths, ns.dev)
    if ns.use_xheaders:
        options["forwarded_allow_ips"] = "*"
    if ns.ssl_certfile:
        options["certfile"] = ns.ssl_certfile
        options["keyfile"] = ns.ssl_keyfile
    os.environ["BOKEH_FLASK_SETTINGS"] = json.dumps(overrides)
    if paths:
        os.environ["BOKEH_APPS"] = os.pathsep.join(paths)
    if ns.args:
        os.environ["BOKEH_FLASK_ARGS"] = json.dumps(ns.args)
    options["when_ready"] = _announce(settings, paths, "https" if ns.ssl_certfile else "http", ns.show)
    _GunicornApp(options).run()
    return 0


def _check_apps_load(paths: list[str]) -> None:
    """Build each app once, before any server starts: one that fails stops the CLI with
    ``AppLoadError``'s block (the app, file and line, message, traceback), as ``bokeh
    serve`` does, instead of a worker that fails to boot. The build runs in a forked child,
    so the master never imports Bokeh or the apps (the gevent workers patch after fork)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report and leave without running anything of the parent's
        os.close(read_end)
        status = 2
        try:
            from ..apps.sources import build_applications, default_app_paths

            build_applications(paths or default_app_paths())
            status = 0
        except SettingsError as exc:
            os.write(write_end, describe(exc).encode())
        finally:
            os._exit(status)  # whatever happened: never return into the CLI
    os.close(write_end)
    with os.fdopen(read_end, "rb") as reader:
        report = reader.read().decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SettingsError(report.rstrip("\n") or "the apps could not be loaded")


def _keys(paths: list[str]) -> list[str]:
    """The URL keys of the apps ``paths`` name (the bundled examples' when none)."""
    return [key_for_path(p) for p in paths or EXAMPLE_APPS]


def _announce(settings: Settings, paths: list[str], scheme: str, show: bool) -> Any:
    """gunicorn's ``when_ready`` hook: once the port is bound (``--port 0`` included), one
    ``Bokeh app running at: <url>`` line per app, as ``bokeh serve`` prints, and with
    ``--show`` the first app in the browser."""
    keys = _keys(paths) + ([ADMIN_KEY] if settings.admin else [])

    def when_ready(server: Any) -> None:
        listener = server.LISTENERS[0]
        address = listener.sock.getsockname()
        if isinstance(address, tuple):
            host = settings.address if settings.address not in ("", "0.0.0.0", "::") else "localhost"
            base = f"{scheme}://{host}:{address[1]}"
        else:
            base = f"{scheme}+unix://{address}"
        urls = [base + settings.prefix + key for key in keys]
        for url in urls:
            print(f"bokeh-flask: Bokeh app running at: {url}", file=sys.stderr, flush=True)
        if settings.dev and isinstance(address, tuple):
            where = ("this machine only; --address to serve others" if settings.address == DEV_ADDRESS
                     else "error pages show tracebacks to clients on this machine only")
            print(f"bokeh-flask: --dev: listening on {settings.address or 'all interfaces'} port {address[1]} "
                  f"({where})", file=sys.stderr, flush=True)
        if show:
            import webbrowser

            webbrowser.open(urls[0])

    return when_ready


class _GunicornApp:
    """Runs gunicorn in-process with our options; workers import ``wsgi:app``."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options

    def run(self) -> None:
        from gunicorn.app.base import BaseApplication

        options = self.options

        class Application(BaseApplication):
            def load_config(self) -> None:
                for key, value in options.items():
                    if key in self.cfg.settings:  # older gunicorn lacks some settings
                        self.cfg.set(key, value)

            def load(self) -> Any:
                from bokeh_flask import create_app

                try:
                    return create_app()
                except SettingsError as exc:  # e.g. an app broken since the master checked it
                    print(f"bokeh-flask: error: {describe(exc)}", file=sys.stderr, end="")
                    sys.exit(3)  # gunicorn's "worker failed to boot": the master stops

        Application().run()


#: Our log lines at the terminal, unless ``--log-format`` says otherwise.
LOG_FORMAT = "bokeh-flask: %(message)s"


def _configure_logging(log_format: str | None) -> None:
    """The root handler the workers inherit: ``--log-format`` as ``bokeh serve``'s."""
    try:
        formatter = logging.Formatter(log_format or LOG_FORMAT, validate=True)
        formatter.format(logging.makeLogRecord({"msg": "check"}))
    except (ValueError, TypeError, KeyError) as exc:
        logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
        raise SettingsError(f"--log-format: {exc}") from None
    logging.basicConfig(level=logging.INFO)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(formatter)


def main(argv: Sequence[str] | None = None) -> int:
    ns = _parser().parse_args(argv)
    if ns.command == "serve":
        try:
            _configure_logging(ns.log_format)
        except SettingsError as exc:
            print(f"bokeh-flask: error: {exc}", file=sys.stderr)
            return 2
    else:
        logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    if ns.command == "secret":
        from bokeh.util.token import generate_secret_key

        print(generate_secret_key())
        return 0
    try:
        check_supported()
        return serve(ns)
    except SettingsError as exc:
        print(f"bokeh-flask: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
