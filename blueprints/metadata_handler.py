"""MetadataHandler: ``<prefix>/<app>/metadata`` as JSON ``{"url": key, "data": metadata}``."""
from __future__ import annotations

import json

from flask import Response

from .auth.users import AuthRequestHandler
from .views import BokehView


class MetadataHandler(AuthRequestHandler, BokehView):
    """No session is created: this only describes the app."""

    def get(self) -> Response:
        context = self.core.application_context(self.route_options["app_key"])
        data = context.application.metadata
        if callable(data):
            data = data()
        body = json.dumps({"url": context.url, "data": data or {}})
        return Response(body, content_type="application/json")
