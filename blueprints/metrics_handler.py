"""``<prefix>/metrics``: the Prometheus scrape (only with ``--metrics``).

Renders what :mod:`app.runtime.metrics` recorded, every worker's when gunicorn's master set up the
multiprocess directory, in the format the scraper asks for (``Accept``). Needs no login
(``login_exempt``); with ``--metrics-token`` it needs ``Authorization: Bearer <token>``,
compared in constant time, and answers 401 otherwise. The token is never logged.
"""
from __future__ import annotations

import hmac
from typing import Any

from flask import Response, request
from flask.views import View

from ..app.sessions.errors import HTTPError
from ..app.sessions.server import ServerCore
from .views import error_response


def bearer_matches(header: str | None, token: str) -> bool:
    """Whether an ``Authorization`` header carries ``Bearer <token>`` (scheme in any case)."""
    scheme, _, sent = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(sent.strip().encode(), token.encode())


class MetricsHandler(View):
    methods = ["GET"]
    login_exempt = True

    def __init__(self, core: ServerCore, **options: Any) -> None:
        self.core = core

    def dispatch_request(self, **kwargs: Any) -> Response:
        from prometheus_client.exposition import choose_encoder

        token = self.core.settings.metrics_token
        if token is not None and not bearer_matches(request.headers.get("Authorization"), token):
            response = error_response(HTTPError(401, "Unauthorized: /metrics needs the header "
                                                     "'Authorization: Bearer <the --metrics-token>'"))
            response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
        self.core.ensure_started()
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        return Response(encoder(self.core.metrics.registry()), content_type=content_type,
                        headers={"Cache-Control": "no-store"})
