"""StaticHandler: BokehJS, per-app ``static/`` folders, extension bundles, and the favicon.

GET and HEAD only. Versioned URLs (any ``v`` argument, as Bokeh) get ten-year cache headers;
every file has a strong ETag (SHA-512, as Bokeh) and answers 304 to a matching
``If-None-Match``; text bodies are brotli- (with the ``brotli`` package) or gzip-compressed
when the client's ``Accept-Encoding`` allows it (``q=0`` refuses a coding).
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from flask import Response, request

from ..app.apps import static_files
from ..app.sessions.errors import HTTPError
from .views import BokehView

#: Cache lifetime for versioned URLs: ten years, as Bokeh.
VERSIONED_MAX_AGE = 315_360_000


def file_response(root: Path, subpath: str) -> Response:
    entry = static_files.load(static_files.safe_join(root, subpath))
    etag = f'"{entry.etag}"'
    headers = {"ETag": etag, "Vary": "Accept-Encoding"}
    if "v" in request.args:
        headers["Cache-Control"] = f"public, max-age={VERSIONED_MAX_AGE}, immutable"
    else:
        headers["Cache-Control"] = "no-cache"
    if etag in request.headers.get("If-None-Match", ""):
        return Response(status=304, headers=headers)
    body, encoding = entry.negotiate(request.accept_encodings.quality)
    if encoding is not None:
        headers["Content-Encoding"] = encoding
    response = Response(body, content_type=entry.content_type, headers=headers)
    response.last_modified = datetime.fromtimestamp(entry.mtime, timezone.utc)
    return response


class StaticHandler(BokehView):
    """Files under one root: ``options['root']`` (a Path) or an extension's dist folder."""

    def head(self, **kwargs: str) -> Response:
        return self.get(**kwargs)  # the route's <filename>

    def get(self, filename: str) -> Response:
        root = self.route_options.get("root")
        if root is None:  # extension bundles: /static/extensions/<package>/<file>
            name, _, rest = filename.partition("/")
            root = static_files.extension_root(name) if rest else None
            if root is None:
                raise HTTPError(404, "Not Found")
            filename = rest
        return file_response(Path(root), filename)


class IcoHandler(BokehView):
    """``/favicon.ico`` (never prefixed, as Bokeh)."""

    def get(self) -> Response:
        path = Path(self.route_options["ico_path"])
        return Response(static_files.load(path).body, content_type="image/x-icon")
