"""The one place that knows how the installed Bokeh differs from the others we support.

Core side: no Flask, no sockets. Everything else imports the names below instead of
testing versions itself. Differences are detected by feature where Bokeh offers one, and
each says which releases it concerns:

- Bokeh 3.10 keeps ``curdoc()``'s stack in a ``ContextVar`` (3.6-3.9: a module-level list
  that :mod:`app.apps.curdoc` replaces with a context-local one).
- Bokeh 3.10's ``SessionContext`` has an abstract ``document`` property (our
  ``SessionContext`` implements it on every version).
- Lifecycle hooks: Bokeh 3.6-3.9's ``LifecycleHandler.on_session_created`` returns an
  ``async def`` hook's coroutine unawaited, 3.10's calls the hook in a thread (and a
  coroutine it returns is never awaited either); :func:`session_hook` gives the module's
  own function, which the server calls and awaits itself (see :mod:`app.runtime.asyncio_loop`).
- Bokeh 3.9 sends a pulled or pushed document's arrays as binary buffers after the JSON
  (``Message.add_buffers``); 3.6-3.8 inline them in it as base64: more bytes, the same
  document. The server writes whatever the message holds; clients read both.
- Bokeh 3.8 added ``DocumentConfig`` (``doc.config``: ``reconnect_session``,
  ``notify_connection_status``), and BokehJS 3.8 reconnects a dropped websocket with the
  same token; before 3.8 a document has no config and BokehJS never reconnects.
- Bokeh 4 renamed where a model keeps the defaults it made (``_unstable_default_values``,
  ``_unstable_themed_values``: ``_materialized_defaults``, ``_materialized_themed_defaults``).
- Bokeh 4 (the 4.0 pre-releases) sends each websocket message as one JSON text envelope
  (``{"header", "content", "buffers": [ids]}``) and one binary frame per buffer, where 3.x
  sends header, metadata and content text frames and an ``{"id"}`` text frame before each
  buffer; it has no ``bokeh.protocol.Protocol`` (a function per message type instead), its
  ``Receiver`` is synchronous, and ``SYNC`` (answered ``OK``) replaces ``SERVER-INFO-REQ``
  as the client's round trip. The functions under "Protocol" below speak whichever the
  installed Bokeh speaks.
- Bokeh 4 mounts every page, its own app page included, through ``<app>/embed.json``
  (``bokeh.server.views.embed_json_handler``) and has no ``<app>/autoload.js``, no
  ``bokeh.embed.bundle`` and no ``AUTOLOAD_JS`` template; its ``Resources`` is a frozen
  dataclass built with ``Resources.build``. The functions under "Pages" below render with
  whichever the installed Bokeh has.

Names only one line of releases has are reached through :func:`_bokeh`, so mypy checks this
module the same against either.
"""
from __future__ import annotations

import json
from importlib import import_module
from importlib.util import find_spec
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable, Mapping, Union

import bokeh
import bokeh.io.doc
import bokeh.protocol
from bokeh.application.handlers.directory import DirectoryHandler
from bokeh.application.handlers.document_lifecycle import DocumentLifecycleHandler
from bokeh.application.handlers.handler import Handler
from bokeh.application.handlers.lifecycle import LifecycleHandler
from bokeh.core.has_props import HasProps
from bokeh.protocol.exceptions import ProtocolError
from bokeh.protocol.message import Message
from bokeh.resources import Resources

if TYPE_CHECKING:
    from bokeh.document import Document
    from bokeh.document.events import DocumentPatchedEvent
    from bokeh.model import Model

    from ..sessions.session import PageSession

from . import panel_support
from .versions import version_tuple

BOKEH_VERSION = version_tuple(bokeh.__version__)

#: Bokeh <= 3.9: ``bokeh.io.doc._PATCHED_CURDOCS`` is a plain list shared by every greenlet.
CURDOC_STACK_IS_LIST = isinstance(bokeh.io.doc._PATCHED_CURDOCS, list)

#: Pulled and pushed documents carry their arrays as binary buffers (Bokeh >= 3.9; Bokeh 4's
#: envelope messages always do).
DOCUMENT_BUFFERS = hasattr(Message, "add_buffers") or not hasattr(bokeh.protocol, "Protocol")

#: BokehJS reconnects a dropped websocket with the same token (Bokeh >= 3.8).
BOKEHJS_RECONNECTS = BOKEH_VERSION >= (3, 8)

#: Bokeh 4's wire format: one JSON envelope per message, then its buffers (no ``Protocol``).
ENVELOPE_PROTOCOL = not hasattr(bokeh.protocol, "Protocol")

#: Bokeh 4's pages: mounted through ``<app>/embed.json``; no ``<app>/autoload.js``.
EMBED_JSON = find_spec("bokeh.embed.resources") is not None


def _bokeh(module: str) -> ModuleType:
    """A Bokeh module whose names only some releases have (typed loosely on purpose)."""
    return import_module(module)


#: Where a model keeps the mutable defaults it made, and its themed ones (see
#: :func:`app.sessions.session.drop_unused_defaults`).
DEFAULT_VALUE_CACHES = (("_materialized_defaults", "_materialized_themed_defaults")
                        if "_materialized_defaults" in HasProps.__annotations__
                        else ("_unstable_default_values", "_unstable_themed_values"))


def default_values(model: HasProps) -> dict[str, Any]:
    """The defaults ``model`` made (and will make again when asked for one it lost)."""
    values: dict[str, Any] = getattr(model, DEFAULT_VALUE_CACHES[0])
    return values


def config_models(document: Document) -> list[Model]:
    """The models a document's ``DocumentConfig`` holds (none before Bokeh 3.8)."""
    config = getattr(document, "_config", None)
    return list(config.references()) if config is not None else []


def reconnect_session(document: Document) -> bool:
    """Whether BokehJS will reconnect this document's websocket when it drops."""
    if not BOKEHJS_RECONNECTS:
        return False
    config = getattr(document, "config", None)
    return bool(getattr(config, "reconnect_session", True))


def session_hook(handler: Handler, name: str) -> Callable[[Any], Any] | None:
    """What to call for a handler's ``on_session_created`` / ``on_session_destroyed``: the
    hook module's own function for lifecycle handlers (so an ``async def`` hook can be
    awaited, on every Bokeh), the handler's method otherwise. None for Bokeh's
    ``DocumentLifecycleHandler`` (the server runs the document's destroy callbacks itself,
    without its full ``gc.collect()`` per session) and for hooks a handler does not define:
    each coroutine costs a trip through the asyncio loop, and discarding thousands of
    sessions under load must not wait for that many."""
    inner = getattr(handler, "_lifecycle_handler", handler) if isinstance(handler, DirectoryHandler) else handler
    if isinstance(inner, DocumentLifecycleHandler):
        return None
    if isinstance(inner, LifecycleHandler):
        hook = getattr(inner, f"_{name}")
        return None if getattr(hook, "__name__", "") == "_do_nothing" else hook
    if getattr(type(inner), name) is getattr(Handler, name):
        return None  # Bokeh's no-op: skip it rather than run a coroutine for nothing
    method: Callable[[Any], Any] = getattr(inner, name)
    return method


# -- Protocol --------------------------------------------------------------------------------

#: One websocket message's frames: ``str`` for text frames, bytes (or a view) for binary ones.
Frame = Union[str, bytes, memoryview]

if ENVELOPE_PROTOCOL:
    _messages = _bokeh("bokeh.protocol.messages")
    #: The client's round trip (``bokeh.client``'s ``force_roundtrip``), answered by
    #: :func:`roundtrip_reply`.
    ROUNDTRIP_REQUEST = "SYNC"
else:
    _protocol = _bokeh("bokeh.protocol").Protocol()
    ROUNDTRIP_REQUEST = "SERVER-INFO-REQ"


def ack() -> Message[Any]:
    """The first message of every connection."""
    reply: Message[Any] = _messages.ack() if ENVELOPE_PROTOCOL else _protocol.create("ACK")
    return reply


def ok(request: Message[Any]) -> Message[Any]:
    reply: Message[Any] = (_messages.ok(request.header["msgid"]) if ENVELOPE_PROTOCOL
                           else _protocol.create("OK", request.header["msgid"]))
    return reply


def error(request: Message[Any], text: str) -> Message[Any]:
    """An ERROR reply without a traceback (Bokeh 3's reads ``sys.exc_info``: the server's)."""
    if ENVELOPE_PROTOCOL:
        reply: Message[Any] = _messages.error(request.header["msgid"], text, traceback=None)
        return reply
    reply = _protocol.create("ERROR", request.header["msgid"], text)
    reply.content["traceback"] = None
    return reply


def roundtrip_reply(request: Message[Any]) -> Message[Any]:
    """The answer to :data:`ROUNDTRIP_REQUEST`: Bokeh 4 answers ``SYNC`` with ``OK``."""
    if ENVELOPE_PROTOCOL:
        return ok(request)
    reply: Message[Any] = _protocol.create("SERVER-INFO-REPLY", request.header["msgid"])
    return reply


def pull_doc_reply(request_id: str, document: Document) -> Message[Any]:
    reply: Message[Any] = (_messages.pull_doc_reply(request_id, document) if ENVELOPE_PROTOCOL
                           else _protocol.create("PULL-DOC-REPLY", request_id, document))
    return reply


def patch_doc(events: list[DocumentPatchedEvent]) -> Message[Any]:
    message: Message[Any] = (_messages.patch_doc(events) if ENVELOPE_PROTOCOL
                             else _protocol.create("PATCH-DOC", events))
    return message


def push_to_document(message: Message[Any], document: Document) -> None:
    """Replace ``document``'s content with a PUSH-DOC's."""
    if ENVELOPE_PROTOCOL:
        _messages.replace_document(message, document)
    else:
        pushed: Any = message  # Bokeh 3's Receiver makes a push_doc
        pushed.push_to_document(document)


def apply_patch(message: Message[Any], document: Document, setter: object) -> None:
    """Apply a PATCH-DOC; changes it causes carry ``setter`` (so they are not echoed to it)."""
    if ENVELOPE_PROTOCOL:
        _messages.apply_patch(message, document, setter)
    else:
        patch: Any = message  # Bokeh 3's Receiver makes a patch_doc
        patch.apply_to_document(document, setter=setter)


class MessageReceiver:
    """Bokeh's ``Receiver`` with one synchronous :meth:`consume` on every release (Bokeh 3's
    is a coroutine that never awaits; Bokeh 4's a plain method)."""

    def __init__(self) -> None:
        receiver = _bokeh("bokeh.protocol.receiver").Receiver
        self.receiver: Any = receiver() if ENVELOPE_PROTOCOL else receiver(_protocol)

    def consume(self, fragment: str | bytes) -> Message[Any] | None:
        """Feed one websocket message; the completed Bokeh message, or None for more.
        Raises Bokeh's ``ProtocolError`` (or its subclasses) for a malformed message."""
        if ENVELOPE_PROTOCOL:
            message: Message[Any] | None = self.receiver.consume(fragment)
            return message
        coro = self.receiver.consume(fragment)
        try:
            coro.send(None)
        except StopIteration as done:
            completed: Message[Any] | None = done.value
            return completed
        coro.close()
        raise ProtocolError("message assembly did not complete")

    def release(self) -> None:
        """Let go of the receiver's current state, a bound method of its own: without that
        cycle the receiver (and a message Bokeh 3's keeps until the next one arrives,
        megabytes for a patched column) is freed by reference counting at once."""
        vars(self.receiver).pop("_current_consumer", None)


def message_frames(message: Message[Any], *, views: bool = False) -> list[Frame]:
    """The message's websocket frames. Buffers are ``bytes`` (what Bokeh's ``Receiver``
    accepts back); with ``views`` they stay byte views of the serialised arrays, which saves
    a copy of every buffer when the frames are only written out."""
    raw: Any = message
    frames: list[Frame]
    if ENVELOPE_PROTOCOL:
        frames = [raw.envelope_json]
        for buffer in message.buffers:
            frames.append(_byte_view(buffer.data) if views else buffer.to_bytes())
        return frames
    frames = [raw.header_json, raw.metadata_json, raw.content_json]
    for buffer in message.buffers:
        frames.append(json.dumps(buffer.ref))
        frames.append(_byte_view(buffer.data) if views else buffer.to_bytes())
    return frames


def _byte_view(data: bytes | memoryview) -> bytes | memoryview:
    """``data`` as one-byte items, so its length is its size in bytes; copied only when
    it is not contiguous (a socket write needs one block of memory)."""
    if not isinstance(data, memoryview):
        return data
    return data.cast("B") if data.c_contiguous else data.tobytes()


# -- Pages -----------------------------------------------------------------------------------

if EMBED_JSON:
    _embed_util = _bokeh("bokeh.embed._util")
    _embed_resources = _bokeh("bokeh.embed.resources")
else:
    _bundle = _bokeh("bokeh.embed.bundle")
    _elements = _bokeh("bokeh.embed.elements")
    _embed_util = _bokeh("bokeh.embed.util")
    _AUTOLOAD_JS = _bokeh("bokeh.core.templates").AUTOLOAD_JS


def server_resources(mode: str, root_url: str, versioner: Callable[[str], str]) -> Resources:
    """BokehJS resources in ``mode`` (a ``BOKEH_RESOURCES`` value): for ``server`` and
    ``server-dev``, served from ``<root_url>static/`` with ``versioner``'s ``?v=``."""
    resources: Any = Resources  # its signature differs between the releases
    if EMBED_JSON:
        built: Resources = resources.build(mode)
        if built.mode != "server":
            return built
        server: Resources = resources.build(built, root_url=root_url, path_versioner=versioner)
        return server
    if mode in ("server", "server-dev"):
        server = resources(mode=mode, root_url=root_url, path_versioner=versioner)
        return server
    other: Resources = resources(mode=mode)
    return other


def extension_dirs() -> Mapping[str, str | Path]:
    """Extension package name -> its ``dist`` folder, as Bokeh registers them while it
    bundles resources (what ``<prefix>/static/extensions/`` serves)."""
    module = _embed_resources if EMBED_JSON else _bundle
    dirs: Mapping[str, str | Path] = module.extension_dirs
    return dirs


_bundles: dict[tuple[int, int], Any] = {}


def _bundle_for(resources: Resources | None) -> Any:
    """Bokeh 3: a copy of the BokehJS bundle for ``resources``, built once.

    Bokeh rebuilds it for every page (collecting external resources and scanning every
    model class for extensions: a fifth of a page's CPU). It depends only on the resources
    and the set of model classes, so it is cached until an app defines a new model class.
    """
    key = (id(resources), len(HasProps.model_class_reverse_map))
    bundle = _bundles.get(key)
    if bundle is None:
        bundle = _bundles[key] = panel_support.serve_bundle_locally(
            _bundle.bundle_for_objs_and_resources(None, resources), resources)
    return _bundle.Bundle(bundle.js_files, bundle.js_raw, bundle.css_files, bundle.css_raw, bundle.hashes)


def doc_page(page: PageSession, resources: Resources) -> str:
    """The app page; honours ``doc.template``, ``doc.template_variables`` and the title.
    Bokeh 4's page fetches ``<app>/embed.json`` with the page's token before it opens the
    websocket; Bokeh 3's carries everything in the page."""
    doc = page.document
    html: str
    if EMBED_JSON:
        html = _embed_util.server_page_for_session(page, resources=resources, title=doc.title,
                                                   template=doc.template,
                                                   template_variables=doc.template_variables)
        return html
    item = _embed_util.RenderItem(token=page.token, roots=doc.roots, use_for_title=True)
    bundle = panel_support.page_bundle(doc, resources) or _bundle_for(resources)
    html = _elements.html_page_for_render_items(bundle, {}, [item], doc.title,
                                                template=doc.template,
                                                template_variables=doc.template_variables or {})
    return html


def autoload_script(token: str, element_id: str, app_path: str, absolute_url: str | None,
                    resources: Resources | None) -> str:
    """Bokeh 3's ``<app>/autoload.js``: BokehJS, then the session's render item."""
    bundle = _bundle_for(resources)
    items = [_embed_util.RenderItem(token=token, elementid=element_id, use_for_title=False)]
    bundle.add(_bundle.Script(_elements.script_for_render_items({}, items, app_path=app_path,
                                                                absolute_url=absolute_url)))
    script: str = _AUTOLOAD_JS.render(bundle=bundle, elementid=element_id)
    return script


# -- Bokeh 4's <app>/embed.json --------------------------------------------------------------

#: What ``embed.json``'s body says it is (BokehJS refuses any other schema).
EMBED_SCHEMA = "bokeh.embed-server/v1"


def embed_policy(default: Resources, mode: str | None, minified: str | None, root_url: str) -> Resources:
    """The resource policy a page asks ``embed.json`` for (its ``Bokeh-Resource-Mode`` and
    ``Bokeh-Resource-Minified`` headers; neither: the server's own ``default``). Raises
    ``ValueError`` with Bokeh's reason for a policy it cannot serve (a 409)."""
    policy: Resources = _embed_resources.server_extension_resources(
        default, mode=mode, minified=minified, root_url=root_url)
    return policy


def policy_reads_document(policy: Resources) -> bool:
    """Whether the extensions ``policy`` needs follow the session's document (inline and
    offline policies deliver only what the document uses) rather than every model class
    this process has registered."""
    return policy.mode in ("inline", "offline")


def embed_model_types(policy: Resources, document: Document | None) -> tuple[type[HasProps], ...]:
    """The model classes whose extensions the page must load. Call with the document
    locked when :func:`policy_reads_document`; ``document`` None (the session lives in
    another worker) falls back to every registered class."""
    mode: str = policy.mode
    if document is None or not policy_reads_document(policy):
        return () if mode == "none" else tuple(HasProps.model_class_reverse_map.values())
    types: tuple[type[HasProps], ...] = _embed_resources.server_extension_model_types(policy, document)
    return types


def embed_bootstrap(token: str, policy: Resources, model_types: tuple[type[HasProps], ...],
                    root_url: str) -> dict[str, Any]:
    """``embed.json``'s body, as Bokeh 4's ``EmbedJsonHandler`` writes it: the session's
    token, the extensions the page needs and where their assets are. Raises ``ValueError``
    (a 409) when ``policy`` cannot deliver an extension's assets."""
    extensions = _embed_resources.resolve_server_extensions(policy, model_types)
    return {
        "schema": EMBED_SCHEMA,
        "bokeh_version": bokeh.__version__,
        "token": token,
        "requires": extensions.requirements.to_dict(),
        "resources": {
            "mode": "resolved",
            "root_url": root_url,
            "assets": [asset.to_dict() for asset in extensions.assets],
        },
    }
