"""``--dev``: what a save restarts, and how open pages notice.

gunicorn's reloader restarts the worker when a watched file changes, so the app's code and
every module it imports load fresh, as under ``bokeh serve --dev``. Watched: the files
``bokeh serve --dev`` watches (a script; a directory app's ``*.py``, ``*.html``, ``*.css``,
``*.yaml`` files) plus the files given to ``--dev``. An app that then fails to load gets an
error page (see :mod:`..apps.load_errors`) rather than a dead worker.

Each worker has a boot id. A ``--dev`` page asks ``<prefix>/_dev/boot`` once a second for
it and reloads itself when it changes: a good save brings every open tab of the app back
on any Bokeh version, and a bad one shows the error page.
"""
from __future__ import annotations

import glob
import json
import os
from typing import Iterable

#: Files of a directory app that ``bokeh serve --dev`` watches.
WATCHED_SUFFIXES = (".py", ".html", ".css", ".yaml")
#: How often a page asks whether its worker was replaced.
POLL_INTERVAL_MS = 1000
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
