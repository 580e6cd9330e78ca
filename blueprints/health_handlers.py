"""``<prefix>/healthz`` and ``<prefix>/readyz``: probes for load balancers and orchestrators.

Both answer plain text, need no login (the host's login hooks skip them: ``login_exempt``)
and are never cached. ``healthz`` is liveness: answered by the worker's loop, it touches no
session and no Bokeh code, so it stays cheap under load. ``readyz`` is readiness: 200 once
every app has loaded here, 503 with the reason while the worker drains or when an app
failed to load (``--dev``), so a balancer sends its traffic elsewhere.
"""
from __future__ import annotations

from typing import Any

from flask import Response
from flask.views import View

from ..app.sessions.server import ServerCore

#: Probe answers must reflect the worker now, never a proxy's copy.
HEADERS = {"Cache-Control": "no-store"}


def _text(body: str, status: int = 200) -> Response:
    return Response(body + "\n", status=status, content_type="text/plain; charset=utf-8", headers=HEADERS)


class HealthzHandler(View):
    """Liveness: the worker answers."""

    methods = ["GET", "HEAD"]
    login_exempt = True

    def __init__(self, core: ServerCore, **options: Any) -> None:
        self.core = core

    def dispatch_request(self, **kwargs: Any) -> Response:
        return _text("ok")


class ReadyzHandler(HealthzHandler):
    """Readiness: every app loaded, and the worker is not draining."""

    def dispatch_request(self, **kwargs: Any) -> Response:
        self.core.ensure_started()  # a worker's first request runs the apps' on_server_loaded
        reason = self.core.not_ready()
        return _text("ok") if reason is None else _text(reason, 503)
