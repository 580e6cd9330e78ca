"""``bokeh-flask``: ``serve`` (a drop-in for ``bokeh serve``) and ``secret``.

``bokeh-flask serve`` takes ``bokeh serve``'s flag names and meanings (a setting's flag is
made from its declaration in :mod:`..config.options`), validates every setting and app
path in the master process (a bad value is one clear line and exit code 2, not a worker
traceback), then runs gunicorn with the gevent worker. Settings reach the
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
import typing
from typing import Any, Sequence

from ..apps.app_keys import ADMIN_KEY, EXAMPLE_APPS, key_for_path, refuse_admin_key
from ..apps.load_errors import describe
from ..apps.versions import check_supported
from ..auth.logins import check_reachable
from ..auth.oauth_config import check_provider
from ..config import state_dir
from ..config.declare import Option
from ..config.settings import OPTIONS, Settings, SettingsError, build_settings
from . import preflight
from .dev_reload import Watcher, watched_files
from .gunicorn_config import gunicorn_options

log = logging.getLogger(__name__)

#: Where ``--dev`` listens without ``--address``: its error pages show tracebacks, and an app
#: in development is no service for other machines.
DEV_ADDRESS = "127.0.0.1"
#: Our log lines, unless ``--log-format`` says otherwise: ``bokeh serve``'s default.
LOG_FORMAT = "%(asctime)s %(message)s"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bokeh-flask",
                                     description="Serve Bokeh apps with Flask, gunicorn and gevent.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {versions_line()}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("secret", help="print a new secret key for BOKEH_SECRET_KEY")

    serve = commands.add_parser("serve", help="serve Bokeh apps (flags as `bokeh serve`)")
    serve.add_argument("files", nargs="*", metavar="APP_PATH",
                       help="scripts, notebooks or directories (default: the bundled examples)")
    for declaration in OPTIONS.values():
        if declaration.flag:
            serve.add_argument(*declaration.flags, **_argument(declaration))
    # flags of the command itself, not of a setting
    serve.add_argument("--unix-socket", default=None, metavar="PATH",
                       help="listen on this Unix socket instead of --address and --port (default: none)")
    serve.add_argument("--num-procs", type=int, default=None, metavar="N",
                       help="as --workers; 0 means one per core (default: --workers)")
    serve.add_argument("--glob", action="store_true", help="expand APP_PATH wildcards (default: off)")
    serve.add_argument("--show", action="store_true",
                       help="open every app in a browser once serving (default: off)")
    serve.add_argument("--log-file", default=None, metavar="PATH",
                       help="write the log here instead of stderr (default: stderr)")
    serve.add_argument("--log-format", default=None, metavar="FORMAT",
                       help="Python logging format of the server's log lines; gunicorn's own keep "
                            f"theirs (default: {LOG_FORMAT.replace('%', '%%')!r})")
    serve.add_argument("--ssl-certfile", default=os.environ.get("BOKEH_SSL_CERTFILE"), metavar="CERTFILE",
                       help="serve HTTPS with this certificate (default: $BOKEH_SSL_CERTFILE, else HTTP)")
    serve.add_argument("--ssl-keyfile", default=os.environ.get("BOKEH_SSL_KEYFILE"), metavar="KEYFILE",
                       help="the certificate's private key (default: $BOKEH_SSL_KEYFILE)")
    serve.add_argument("--oauth-secret", dest="oauth_secret_flag", default=None, metavar="SECRET",
                       help="Panel's flag, refused: a secret on the command line shows in `ps`; use "
                            "--oauth-secret-file PATH or BOKEH_FLASK_OAUTH_SECRET (default: none)")
    serve.add_argument("--args", nargs=argparse.REMAINDER, default=[],
                       help="sys.argv for the apps: everything after it (default: none)")
    return parser


def _argument(declaration: Option) -> dict[str, Any]:
    """``add_argument``'s keywords for a setting's flag: its declared argparse details, the
    rest from its type. Absent, a flag is None: the setting's other sources apply."""
    kind = declaration.kind
    arguments: dict[str, Any] = {"dest": declaration.name, "default": None,
                                 "help": declaration.help_text.replace("%", "%%")}
    if kind is bool and "nargs" not in declaration.cli:
        arguments["action"] = argparse.BooleanOptionalAction if declaration.default else "store_true"
    elif declaration.path:
        arguments["type"] = _absolute
    elif int in (kind, *typing.get_args(kind)):
        arguments["type"] = int
    if typing.get_origin(kind) is tuple and "action" not in declaration.cli:
        arguments["nargs"] = "+"
    return {**arguments, **declaration.cli}


def _absolute(path: str) -> str | None:
    """A path flag's value made absolute: the workers need not share the CLI's directory."""
    return os.path.abspath(path) if path else None


def _settings_from_args(ns: argparse.Namespace) -> tuple[Settings, dict[str, Any]]:
    """The settings, and the flags' values (``BOKEH_FLASK_SETTINGS`` of the workers)."""
    overrides: dict[str, Any] = {}
    for name, declaration in OPTIONS.items():
        value = getattr(ns, name) if declaration.flag else None
        if value is not None:
            overrides[name] = value if declaration.from_cli is None else declaration.from_cli(value)
    if ns.num_procs is not None:
        if ns.num_procs < 0:
            raise SettingsError(f"--num-procs must be 0 (one worker per core) or more, got {ns.num_procs}")
        procs = ns.num_procs or os.cpu_count() or 1
        if ns.workers is not None and ns.workers != procs:
            raise SettingsError(f"--num-procs {ns.num_procs} and --workers {ns.workers} disagree: give one "
                                "of them (--num-procs is bokeh serve's name for --workers)")
        overrides["workers"] = procs
    if ns.dev is not None:
        if not ns.files:
            # as bokeh serve: `--dev app.py` takes app.py as a file to watch, not as the app
            raise SettingsError("--dev option requires an app script or directory be provided "
                                "(give the app's path before --dev: serve app.py --dev [FILES])")
        if overrides.get("workers", 1) != 1:
            log.warning("Running in --dev mode. --num-procs is limited to 1.")
        overrides["workers"] = 1
        if ns.address is None and not ns.unix_socket:
            overrides["address"] = DEV_ADDRESS
    if ns.oauth_secret_flag is not None:  # Panel's flag, which shows the secret to every user of the host
        raise SettingsError("--oauth-secret would show the client secret in `ps` to every user of this "
                            "machine: put it in a file for --oauth-secret-file PATH, or in BOKEH_FLASK_OAUTH_SECRET")
    settings = build_settings(overrides=overrides)
    if settings.auth_module:
        # load it here, in the master, so a bad module is one line and exit 2 instead of
        # a worker that fails to boot (its code runs again in each worker)
        from ..auth.providers import provider_from

        provider_from(None, settings)
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
    check_reachable(settings)  # a Redis flag without the package or the server: one line too
    check_provider(settings)  # single sign-on: Authlib installed, the issuer's metadata answers
    _check_apps_load(paths)
    bind = f"unix:{ns.unix_socket}" if ns.unix_socket else None
    if bind is None:  # before gunicorn's first line (its on_starting hook checks again)
        preflight.check_binds([(settings.address or "0.0.0.0", settings.port)])
    options = gunicorn_options(settings, bind)
    if ns.log_file:
        options["errorlog"] = ns.log_file
    watcher = Watcher(watched_files(paths, ns.dev)) if ns.dev is not None else None
    if settings.use_xheaders:
        options["forwarded_allow_ips"] = "*"
    if ns.ssl_certfile:
        options["certfile"] = ns.ssl_certfile
        options["keyfile"] = ns.ssl_keyfile
    os.environ["BOKEH_FLASK_SETTINGS"] = json.dumps(overrides)
    if paths:
        os.environ["BOKEH_APPS"] = os.pathsep.join(paths)
    if ns.args:
        os.environ["BOKEH_FLASK_ARGS"] = json.dumps(ns.args)
    options["when_ready"] = _announce(settings, paths, "https" if ns.ssl_certfile else "http", ns.show, watcher)
    log.info("Starting bokeh-flask %s", versions_line())
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


def _announce(settings: Settings, paths: list[str], scheme: str, show: bool, watcher: Watcher | None) -> Any:
    """gunicorn's ``when_ready`` hook: once the port is bound (``--port 0`` included), one
    ``Bokeh app running at: <url>`` line per app, as ``bokeh serve`` prints, with ``--show``
    every app in the browser, and with ``--dev`` the watch over the app's files."""
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
            log.info("Bokeh app running at: %s", url)
        if settings.dev and isinstance(address, tuple):
            where = ("this machine only; --address to serve others" if settings.address == DEV_ADDRESS
                     else "error pages show tracebacks to clients on this machine only")
            log.info("--dev: listening on %s port %d (%s)", settings.address or "all interfaces", address[1], where)
        if show:
            import webbrowser

            for url in urls:
                webbrowser.open_new_tab(url)
        if watcher is not None:
            watcher.start()

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

                return create_app()  # a SettingsError: our worker class reports it

        Application().run()


def _configure_logging(log_format: str | None, log_file: str | None) -> None:
    """The root handler the workers inherit, as ``bokeh serve``'s: ``--log-format`` (with
    timestamps by default), written to ``--log-file`` when given, else stderr."""
    try:
        formatter = logging.Formatter(log_format or LOG_FORMAT, validate=True)
        formatter.format(logging.makeLogRecord({"msg": "check"}))
    except (ValueError, TypeError, KeyError) as exc:
        raise SettingsError(f"--log-format: {exc}") from None
    try:
        handler: logging.Handler = logging.FileHandler(log_file) if log_file else logging.StreamHandler()
    except OSError as exc:
        raise SettingsError(f"--log-file: cannot write {log_file}: {exc.strerror}") from None
    handler.setFormatter(formatter)
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)


def versions_line() -> str:
    """bokeh-flask's version and what it runs on (``--version``, the start banner)."""
    from importlib.metadata import PackageNotFoundError, version

    def of(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    python = ".".join(map(str, sys.version_info[:3]))
    return f"{of('bokeh-flask')} (Bokeh {of('bokeh')}, gunicorn {of('gunicorn')}, Python {python})"


def main(argv: Sequence[str] | None = None) -> int:
    ns = _parser().parse_args(argv)
    if ns.command == "serve":
        try:
            _configure_logging(ns.log_format, ns.log_file)
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
