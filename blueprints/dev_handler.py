"""``<prefix>/_dev/boot`` (``--dev`` only): the worker's boot id, which ``--dev`` pages poll
to reload themselves after a save restarts the worker (see :mod:`app.process.dev_reload`)."""
from __future__ import annotations

from flask import Response

from .views import BokehView


class DevBootHandler(BokehView):
    def get(self) -> Response:
        return Response(self.core.boot_id, content_type="text/plain; charset=utf-8",
                        headers={"Cache-Control": "no-store"})
