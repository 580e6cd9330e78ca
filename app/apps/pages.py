"""HTML and JavaScript the server renders: doc pages, autoload scripts, the index.

All from ``bokeh.embed`` and Jinja2, with BokehJS URLs pointing at our own ``/static``.
``Resources`` objects and their bundles are cached, so no page re-hashes or re-bundles files.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable
from urllib.parse import urlsplit

import jinja2
from bokeh.core.has_props import HasProps
from bokeh.core.templates import AUTOLOAD_JS
from bokeh.core.types import ID
from bokeh.embed.bundle import Bundle, Script, bundle_for_objs_and_resources
from bokeh.embed.elements import html_page_for_render_items, script_for_render_items
from bokeh.embed.util import RenderItem
from bokeh.resources import Resources
from bokeh.settings import settings as bokeh_settings

from . import panel_support
from .load_errors import AppLoadError
from .static_files import versioned

if TYPE_CHECKING:
    from ..sessions.session import PageSession

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"


@lru_cache(maxsize=64)
def resources_for(root_url: str) -> Resources:
    """BokehJS resources served from ``<root_url>static/`` (``BOKEH_RESOURCES`` may override)."""
    mode = bokeh_settings.resources(default="server")
    if mode in ("server", "server-dev"):
        return Resources(mode=mode, root_url=root_url, path_versioner=versioned)
    return Resources(mode=mode)


def root_url(prefix: str, absolute_url: str | None = None) -> str:
    base = "/"
    if absolute_url:
        parts = urlsplit(absolute_url)
        if parts.scheme and parts.netloc:
            base = f"{parts.scheme}://{parts.netloc}/"
    return base + (prefix.strip("/") + "/" if prefix.strip("/") else "")


_bundles: dict[tuple[int, int], Bundle] = {}


def bundle_for(resources: Resources | None) -> Bundle:
    """A copy of the BokehJS bundle for ``resources``, built once.

    Bokeh rebuilds it for every page (collecting external resources and scanning every
    model class for extensions: a fifth of a page's CPU). It depends only on the resources
    and the set of model classes, so it is cached until an app defines a new model class.
    """
    key = (id(resources), len(HasProps.model_class_reverse_map))
    bundle = _bundles.get(key)
    if bundle is None:
        bundle = _bundles[key] = panel_support.serve_bundle_locally(
            bundle_for_objs_and_resources(None, resources), resources)
    return Bundle(bundle.js_files, bundle.js_raw, bundle.css_files, bundle.css_raw, bundle.hashes)


def doc_page(page: PageSession, resources: Resources) -> str:
    """The app page; honours ``doc.template``, ``doc.template_variables`` and the title."""
    doc = page.document
    item = RenderItem(token=page.token, roots=doc.roots, use_for_title=True)
    bundle = panel_support.page_bundle(doc, resources) or bundle_for(resources)
    return html_page_for_render_items(bundle, {}, [item], doc.title,
                                      template=doc.template,
                                      template_variables=doc.template_variables or {})


def autoload_script(token: str, element_id: str, app_path: str, absolute_url: str | None,
                    resources: Resources | None) -> str:
    bundle = bundle_for(resources)
    items = [RenderItem(token=token, elementid=ID(element_id), use_for_title=False)]
    bundle.add(Script(script_for_render_items({}, items, app_path=app_path, absolute_url=absolute_url)))
    return AUTOLOAD_JS.render(bundle=bundle, elementid=element_id)


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
