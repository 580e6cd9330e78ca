"""``--dev``: what a save restarts, and how open pages notice.

The gunicorn master watches the files ``bokeh serve --dev`` watches (a script; a directory
app's ``*.py``, ``*.html``, ``*.css``, ``*.yaml`` files) plus the files given to ``--dev``
(:class:`Watcher`), and on a change reloads as ``kill -HUP`` does: a new worker loads the
app's code and every module it imports fresh, as under ``bokeh serve --dev``, while the old
one still serves; once the new one is ready the old closes its websockets and exits (see
:mod:`.worker`), so nothing waits for a worker to boot after the old one is gone. An app
that then fails to load gets an error page (see :mod:`..apps.load_errors`) rather than a
dead worker.

Each worker has a boot id. A ``--dev`` page asks ``<prefix>/_dev/boot`` every
:data:`POLL_INTERVAL_MS` for it and reloads itself when it changes: a good save brings
every open tab of the app back on any Bokeh version, and a bad one shows the error page.
"""
from __future__ import annotations

import glob
import json
import logging
import os
import signal
import threading
import time
from typing import Iterable

log = logging.getLogger(__name__)

#: Files of a directory app that ``bokeh serve --dev`` watches.
WATCHED_SUFFIXES = (".py", ".html", ".css", ".yaml")
#: How often a page asks whether its worker was replaced (a request to this machine).
POLL_INTERVAL_MS = 250
#: How often the master looks at the watched files' modification times.
WATCH_INTERVAL = 0.2
#: After a change, how long the files must stay unchanged before the reload: an editor's
#: save can be several writes.
SETTLE = 0.1
#: The boot-id route under the prefix.
BOOT_PATH = "/_dev/boot"


def watched_files(app_paths: Iterable[str], extra: Iterable[str]) -> list[str]:
    """Absolute paths to watch: each app's files, then ``extra`` (glob patterns allowed)."""
    found: list[str] = []
    for path in app_paths:
        if os.path.isdir(path):
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
                found.extend(os.path.join(root, f) for f in sorted(files) if f.endswith(WATCHED_SUFFIXES))
        else:
            found.append(path)
    for pattern in extra:
        found.extend(sorted(glob.glob(pattern, recursive=True)) or [pattern])
    return list(dict.fromkeys(os.path.abspath(p) for p in found))


def reload_script(boot_url: str, boot_id: str) -> str:
    """A ``<script>`` that reloads the page once the worker behind it has been replaced."""
    return (
        "<script>(function () {"
        f"var url = {json.dumps(boot_url)}, boot = {json.dumps(boot_id)};"
        "function poll() {"
        "fetch(url, {cache: 'no-store'}).then(function (r) { return r.ok ? r.text() : boot; })"
        ".then(function (id) { if (id !== boot) { location.reload(); } else { later(); } }, later);"
        "}"
        f"function later() {{ setTimeout(poll, {POLL_INTERVAL_MS}); }}"
        "later();"
        "})();</script>"
    )


def with_reload_script(html: str, boot_url: str, boot_id: str) -> str:
    """``html`` with :func:`reload_script` before ``</body>`` (or at the end)."""
    script = reload_script(boot_url, boot_id)
    index = html.rfind("</body>")
    return html + script if index < 0 else html[:index] + script + html[index:]


class Watcher:
    """The master's watch over the app's files: a change reloads the workers (``SIGHUP``
    to the master itself, which gunicorn handles as a rolling restart)."""

    def __init__(self, paths: list[str]) -> None:
        self.paths = paths
        self._seen = self._stamps()

    def _stamps(self) -> dict[str, float]:
        stamps = {}
        for path in self.paths:
            try:
                stamps[path] = os.stat(path).st_mtime
            except OSError:
                stamps[path] = -1.0  # missing for now (a file an editor replaces)
        return stamps

    def start(self) -> None:
        """Watch from a thread of the master until it exits."""
        threading.Thread(target=self._run, name="bokeh-flask --dev watcher", daemon=True).start()

    def _run(self) -> None:
        while True:
            time.sleep(WATCH_INTERVAL)
            now = self._stamps()
            changed = [path for path, stamp in now.items() if stamp != self._seen.get(path)]
            if not changed:
                continue
            time.sleep(SETTLE)
            self._seen = self._stamps()
            log.info("Reloading: %s changed", changed[0] if len(changed) == 1 else f"{len(changed)} files")
            os.kill(os.getpid(), signal.SIGHUP)
