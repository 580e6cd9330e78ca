"""HTML and JavaScript the server renders: doc pages, autoload scripts, the index.

All from ``bokeh.embed`` (through :mod:`.bokeh_compat`: Bokeh 3 and 4 render pages
differently) and Jinja2, with BokehJS URLs pointing at our own ``/static``. ``Resources``
objects and Bokeh 3's bundles are cached, so no page re-hashes or re-bundles files.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable
from urllib.parse import urlsplit

import jinja2
from bokeh.resources import Resources
from bokeh.settings import settings as bokeh_settings

from . import bokeh_compat
from .bokeh_compat import autoload_script, doc_page
from .load_errors import AppLoadError
from .static_files import versioned

__all__ = ["app_error_page", "autoload_script", "doc_page", "index_page", "resources_for", "root_url"]

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"


@lru_cache(maxsize=64)
def resources_for(root_url: str) -> Resources:
    """BokehJS resources served from ``<root_url>static/`` (``BOKEH_RESOURCES`` may override)."""
    return bokeh_compat.server_resources(bokeh_settings.resources(default="server"), root_url, versioned)


def root_url(prefix: str, absolute_url: str | None = None) -> str:
    base = "/"
    if absolute_url:
        parts = urlsplit(absolute_url)
        if parts.scheme and parts.netloc:
            base = f"{parts.scheme}://{parts.netloc}/"
    return base + (prefix.strip("/") + "/" if prefix.strip("/") else "")


_env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)), autoescape=True)


def index_page(prefix: str, keys: Iterable[str], template_path: str | None) -> str:
    """The app listing. A custom ``--index`` template may be Jinja2 or, as ``bokeh serve``
    actually requires despite its docs, Tornado template syntax; both are accepted."""
    items = sorted(keys)
    if template_path is None:
        return _env.get_template("index.html").render(prefix=prefix, items=items)
    return _custom_index(template_path)(prefix=prefix, items=items)


@lru_cache(maxsize=8)
def _custom_index(template_path: str) -> Callable[..., str]:
    source = Path(template_path).read_text(encoding="utf-8")
    try:
        template = jinja2.Environment(autoescape=True).from_string(source)
        return template.render
    except jinja2.TemplateSyntaxError:
        import tornado.template

        tornado_template = tornado.template.Template(source)
        return lambda **kw: tornado_template.generate(**kw).decode("utf-8")


def app_error_page(error: AppLoadError, detailed: bool) -> str:
    """``--dev``'s page for an app that failed to load: where, what, the traceback. Only
    text: nothing on it runs code. Without ``detailed`` (a client on another machine) it
    says only that the app failed: a traceback's text can hold secrets (a database URL)."""
    if not detailed:
        return _env.get_template("app_error.html").render(detailed=False)
    return _env.get_template("app_error.html").render(
        detailed=True, app=error.app_path, where=error.where(), message=error.message,
        traceback=error.traceback_text)
