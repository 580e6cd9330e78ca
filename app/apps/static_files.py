"""Static file resolution: BokehJS, per-app ``static/`` folders and extension bundles.

Paths are resolved strictly inside a root: any spelling of ``..``, absolute paths,
backslashes and NUL bytes are refused before touching the filesystem, and the resolved
real path must still lie under the root's real path (so symlinks cannot escape either).
File facts (SHA-512 version, ETag, compressed bodies) are computed once per file version
and cached, never per request.

Compressed bodies: gzip, and brotli when the ``brotli`` package is installed (the
``bokeh-flask[brotli]`` extra). Brotli's best quality takes about 2 s for bokeh.min.js, too
long to hold a request or the worker's event loop, so the first request gets a fast
quality at once and the best one is computed in a worker thread (brotli releases the GIL)
and replaces it when done.
"""
from __future__ import annotations

import gzip
import hashlib
import mimetypes
import os
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable

import gevent
from bokeh.settings import settings as bokeh_settings

from ..sessions.errors import HTTPError

mimetypes.add_type("text/javascript", ".js")
mimetypes.add_type("text/css", ".css")
mimetypes.add_type("application/json", ".map")

#: Compress text responses larger than this when the client accepts it.
COMPRESS_MIN_BYTES = 1024
_COMPRESSIBLE = ("text/", "application/javascript", "application/json", "image/svg+xml")
#: Brotli qualities: served at once (about gzip's speed, 10% smaller), then the best.
BROTLI_FAST, BROTLI_BEST = 5, 11

try:
    import brotli
except ImportError:  # optional: gzip only
    brotli = None


def bokehjs_root() -> Path:
    return Path(bokeh_settings.bokehjs_path()).resolve()


def safe_join(root: Path, subpath: str) -> Path:
    """The file ``subpath`` names under ``root``; HTTPError 404/403 otherwise."""
    if not subpath or "\x00" in subpath or "\\" in subpath or subpath.startswith("/"):
        raise HTTPError(404, "Not Found")
    parts = subpath.split("/")
    if any(part in ("..", ".") or ":" in part for part in parts):
        raise HTTPError(404, "Not Found")
    candidate = (root / subpath)
    try:
        real = Path(os.path.realpath(candidate))
    except (OSError, ValueError):
        raise HTTPError(404, "Not Found") from None
    real_root = Path(os.path.realpath(root))
    if real != real_root and real_root not in real.parents:
        raise HTTPError(403, "Forbidden")
    if real.is_dir():
        raise HTTPError(403, "Forbidden")
    if not real.is_file():
        raise HTTPError(404, "Not Found")
    return real


@dataclass
class StaticFile:
    """One file's bytes and headers, read once per (path, mtime, size)."""

    path: Path
    body: bytes
    mtime: float
    content_type: str
    etag: str
    _gzip: bytes | None = field(default=None, repr=False)
    _brotli: bytes | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def compressible(self) -> bool:
        return len(self.body) >= COMPRESS_MIN_BYTES and self.content_type.startswith(_COMPRESSIBLE)

    def gzipped(self) -> bytes:
        if self._gzip is None:
            self._gzip = gzip.compress(self.body, compresslevel=6, mtime=0)
        return self._gzip

    def brotlied(self) -> bytes:
        """The brotli body (only with the ``brotli`` package: see :meth:`negotiate`)."""
        if self._brotli is None:
            with self._lock:
                if self._brotli is None:
                    self._brotli = brotli.compress(self.body, quality=BROTLI_FAST)
                    gevent.get_hub().threadpool.spawn(self._compress_best)
        return self._brotli

    def negotiate(self, quality: Callable[[str], float]) -> tuple[bytes, str | None]:
        """The body and its ``Content-Encoding`` for a client that rates codings with
        ``quality`` (its Accept-Encoding q-values): brotli, then gzip, else as it is."""
        if self.compressible:
            if brotli is not None and quality("br") > 0:
                return self.brotlied(), "br"
            if quality("gzip") > 0:
                return self.gzipped(), "gzip"
        return self.body, None

    def _compress_best(self) -> None:
        self._brotli = brotli.compress(self.body, quality=BROTLI_BEST)


_cache: dict[Path, StaticFile] = {}


def load(path: Path) -> StaticFile:
    stat = path.stat()
    cached = _cache.get(path)
    if cached is not None and cached.mtime == stat.st_mtime and len(cached.body) == stat.st_size:
        return cached
    body = path.read_bytes()
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if content_type.startswith("text/") or content_type == "application/javascript":
        content_type += "; charset=utf-8"
    entry = StaticFile(path, body, stat.st_mtime, content_type, hashlib.sha512(body).hexdigest())
    _cache[path] = entry
    return entry


@lru_cache(maxsize=None)
def bokehjs_version(relpath: str) -> str:
    """The ``?v=`` of a BokehJS file: SHA-512 of its content, as Bokeh computes it."""
    return load(safe_join(bokehjs_root(), relpath)).etag


@lru_cache(maxsize=None)
def versioned(relpath: str) -> str:
    """Bokeh's ``path_versioner``: append ``?v=<sha512>`` (nothing in dev mode).

    Cached: called for every script URL of every page, and neither the BokehJS files nor
    ``BOKEH_DEV`` change while a worker runs.
    """
    if bokeh_settings.dev:
        return relpath
    try:
        return f"{relpath}?v={bokehjs_version(relpath)}"
    except HTTPError:
        return relpath


def extension_root(name: str) -> Path | None:
    """The dist folder of a custom-extension package, registered while bundling."""
    from .bokeh_compat import extension_dirs

    root = extension_dirs().get(name)
    return Path(root) if root is not None else None
