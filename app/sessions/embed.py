"""What Bokeh 4's ``<app>/embed.json`` answers, apart from HTTP: the session and the body.

BokehJS 4 asks ``embed.json`` for a session token before it opens ``<app>/ws``: a host
page built with ``server_document()`` (no token: a session is made, as autoload.js makes
one) and Bokeh 4's own app page (the ``Bokeh-Token`` header: the page's session). The
session rules are :meth:`ServerCore.session_for_request`'s (ids, tokens, signing, the
user), with two of Bokeh 4's own: a token in the query string is refused, and the
resource policy is settled before any session is made (a conflict makes none).

Handover: the app page's session was made by whichever worker rendered the page, and its
token names that worker. When ``embed.json`` reaches another worker of this host while the
owner still lives, no second session is built here: the answer carries the token, and the
websocket that follows is handed to the owner (:mod:`..runtime.handover`), as a page's is.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bokeh.resources import Resources

from ..apps import bokeh_compat
from .errors import HTTPError
from .handshake import check_token_user, owner_of
from .requests import RequestInfo, last_argument
from .session import ServerSession, SessionDestroyed
from .tokens import TokenError, TokenTooLarge

if TYPE_CHECKING:
    from .contexts import ApplicationContext
    from .server import ServerCore

#: The request headers a page sends ``embed.json`` (what a CORS preflight is granted when
#: it names none).
EMBED_HEADERS = "Bokeh-Session-Id, Bokeh-Token, Bokeh-Resource-Mode, Bokeh-Resource-Minified, Content-Type"


@dataclass(frozen=True)
class EmbedSession:
    """The session an ``embed.json`` request names: its token, and the session when it
    lives in this worker (None: another worker of this host owns it)."""

    token: str
    session: ServerSession | None


def resource_policy(default: Resources, request: RequestInfo, root_url: str) -> Resources:
    """The policy the page asks for; :class:`HTTPError` 409 with Bokeh's reason when it
    cannot be served. Decided before any session exists."""
    try:
        return bokeh_compat.embed_policy(default, request.headers.get("Bokeh-Resource-Mode"),
                                         request.headers.get("Bokeh-Resource-Minified"), root_url)
    except ValueError as error:
        raise HTTPError(409, str(error)) from None


def embed_session(core: ServerCore, context: ApplicationContext, request: RequestInfo,
                  user: str | None) -> EmbedSession:
    """Find or make the request's session (403 for a bad token or id, as a page gets)."""
    if last_argument(request.arguments, "bokeh-token") is not None:
        raise HTTPError(403, "session tokens are not accepted in the embed endpoint query string")
    token = request.headers.get("Bokeh-Token")
    if token is not None and core.worker_key is not None and _owned_elsewhere(core, context, request,
                                                                              token.strip(), user):
        return EmbedSession(token.strip(), None)
    page = core.session_for_request(context, request)
    return EmbedSession(page.token, page.session)


def _owned_elsewhere(core: ServerCore, context: ApplicationContext, request: RequestInfo, token: str,
                     user: str | None) -> bool:
    """Whether a valid page token names a session another live worker of this host owns."""
    if last_argument(request.arguments, "bokeh-session-id") is not None or "Bokeh-Session-Id" in request.headers:
        raise HTTPError(403, "Both token and session ID were provided")
    try:
        session_id, payload = core.tokens.verify(token, check_expiry=False)
    except TokenTooLarge as exc:
        raise HTTPError(400, f"Bad Request: {exc}") from None
    except TokenError:
        raise HTTPError(403, "Invalid token or session ID") from None
    check_token_user(payload, user)
    return owner_of(core, context, session_id, token, user) is not None


def bootstrap(embed: EmbedSession, policy: Resources, root_url: str) -> dict[str, Any]:
    """``embed.json``'s body; :class:`HTTPError` 409 when an extension's assets cannot be
    delivered under ``policy`` (403 when the session ended meanwhile)."""
    session = embed.session
    try:
        if session is not None and bokeh_compat.policy_reads_document(policy):
            model_types = session.with_document_locked(bokeh_compat.embed_model_types, policy, session.document)
        else:
            model_types = bokeh_compat.embed_model_types(policy, None)
        return bokeh_compat.embed_bootstrap(embed.token, policy, model_types, root_url)
    except SessionDestroyed:
        raise HTTPError(403, "Session no longer available") from None
    except ValueError as error:
        raise HTTPError(409, str(error)) from None
