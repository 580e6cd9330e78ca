"""The websocket handshake's checks, in Bokeh's order, as one decision: admit or refuse.

The transport (``WSHandler``) parses the handshake request into a :class:`Handshake` and
calls :func:`admit`; every check that can refuse it runs here, before the upgrade, so a
refused client gets a plain HTTP answer (a :class:`Refusal`, whose ``why`` labels the
refusal metric, which the transport counts in one place). What is admitted is an
:class:`Admission`: the session the token names, whether the token had expired (it may
then only re-attach), the user, and the worker of this host that owns the session when
that is another one (the transport hands the connection over).

Order: a websocket handshake at all (400), version 13 (426), the origin (403), a worker
that is draining (503), the login (the transport's ``authenticate``: 403), the ``bokeh,
<token>`` subprotocols (400), then the token: size (400), signature and decoding (403),
its user and a session its user's logout ended (403), expiry (403, unless it may
re-attach). Origin comes before the login, so a foreign page learns nothing of it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from ..auth.providers import TOKEN_USER_KEY
from ..runtime import handover
from .errors import HTTPError
from .tokens import EXPIRED, TokenError, TokenTooLarge, decode_token, short_id, token_expired

if TYPE_CHECKING:
    from .contexts import ApplicationContext
    from .server import ServerCore

log = logging.getLogger(__name__)


class Refusal(HTTPError):
    """A handshake refused before the upgrade: its HTTP answer, the refusal metric's label
    (``why``) and any headers the answer must carry."""

    def __init__(self, why: str, status: int, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(status, reason, headers)
        self.why = why


@dataclass(frozen=True)
class Handshake:
    """What the checks read of a handshake request (parsed by the transport)."""

    app_key: str
    upgrade: str = ""
    connection: str = ""
    version: str | None = None
    origin: str | None = None
    host: str | None = None
    #: the local address the client reached (the default origin follows it)
    served: tuple[str, int] | None = None
    subprotocols: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Admission:
    """A handshake every check passed."""

    context: ApplicationContext
    session_id: str
    token: str
    #: the token had expired: it may re-attach to its live session, never build one
    expired: bool
    #: the login's identity (None: authentication is off)
    user: str | None
    #: the worker of this host that owns the session, when another one holds it
    owner: str | None
    #: the token's payload with its page facts, read once here for a session built here
    payload: dict[str, Any] | None = None


def parse_subprotocols(header: str | None) -> list[str]:
    """The offered values of ``Sec-WebSocket-Protocol`` (``bokeh, <token>`` from BokehJS)."""
    return [p.strip() for p in (header or "").split(",") if p.strip()]


def select_subprotocol(subprotocols: list[str]) -> str | None:
    """Bokeh's rule: exactly ``bokeh`` then the token; ``bokeh`` is selected."""
    return "bokeh" if subprotocols[:1] == ["bokeh"] and len(subprotocols) == 2 else None


def admit(core: ServerCore, handshake: Handshake, authenticate: Callable[[], str | None]) -> Admission:
    """Run every check in order; the :class:`Admission`, or :class:`Refusal`.
    ``authenticate`` is the transport's login check: the user's identity (None with
    authentication off), or :class:`HTTPError` for a request without a login."""
    if handshake.upgrade.lower() != "websocket":
        raise Refusal("protocol", 400, 'Can "Upgrade" only to "WebSocket".')
    if "upgrade" not in handshake.connection.lower():
        raise Refusal("protocol", 400, '"Connection" must be "Upgrade".')
    if handshake.version != "13":
        raise Refusal("version", 426, "Upgrade Required", {"Sec-WebSocket-Version": "13"})
    if not core.origins.allows(handshake.origin or "", handshake.host, handshake.served):
        log.warning("Refusing websocket connection from Origin %r; allow it with "
                    "--allow-websocket-origin=%s or BOKEH_ALLOW_WS_ORIGIN",
                    handshake.origin, _netloc(handshake.origin or ""))
        raise Refusal("origin", 403, "Cross origin websockets not allowed")
    if core.draining:  # this worker is exiting: BokehJS tries again, elsewhere
        raise Refusal("draining", 503, "Service Unavailable: the server is restarting")
    try:
        user = authenticate()
    except HTTPError as error:
        raise Refusal("login", error.status, error.reason) from None
    if select_subprotocol(handshake.subprotocols) is None:
        raise Refusal("protocol", 400, "Subprotocol header is not 'bokeh, <token>'")
    token = handshake.subprotocols[1]
    context = core.application_context(handshake.app_key)  # 404, not a refusal: no such app
    session_id, expired = _check_token(core, context, token, user)
    owner = owner_of(core, context, session_id, token, user)
    rebuilt_here = owner is None and context.get_session(session_id, user) is None
    if expired and rebuilt_here:
        log.info("Refusing websocket: %s", EXPIRED)
        raise Refusal("expired", 403, f"Invalid session token: {EXPIRED}")
    payload = None
    if rebuilt_here:  # its page facts must be this session's, before the upgrade
        try:
            payload = core.facts.expand(session_id, user, decode_token(token)[1])
        except HTTPError as error:
            log.warning("Refusing websocket of session %s: %s", short_id(session_id), error.reason)
            raise Refusal("token", error.status, error.reason) from None
    return Admission(context, session_id, token, expired, user, owner, payload)


def _check_token(core: ServerCore, context: ApplicationContext, token: str, user: str | None) -> tuple[str, bool]:
    """``(session_id, expired)`` of a token that may serve ``user``.

    An expired token is refused (Bokeh's rule) unless ``reattach_expired_tokens`` is on:
    then it may re-attach to the session it already had, where that session lives (here,
    or in its owner, which decides after the handover). It stays as readable to the
    page's scripts as before, and it cannot make a new session, join one that has ended,
    or serve another user; what it adds is the lifetime of the live session.
    """
    try:
        session_id, payload = core.tokens.verify(token, check_expiry=False)
    except TokenTooLarge as exc:  # no page of ours made it: worth a warning
        log.warning("Refusing websocket: %s", exc)
        raise Refusal("token", 400, f"Bad Request: {exc}") from None
    except TokenError as exc:
        log.info("Refusing websocket: %s", exc)
        raise Refusal("token", 403, f"Invalid session token: {exc}") from None
    try:
        check_token_user(payload, user)
        refuse_ended(context, session_id, user)
    except HTTPError as error:
        raise Refusal("user", error.status, error.reason) from None
    if not token_expired(payload):
        return session_id, False
    if not core.settings.reattach_expired_tokens:
        log.info("Refusing websocket: %s", EXPIRED)
        raise Refusal("expired", 403, f"Invalid session token: {EXPIRED}")
    if context.get_session(session_id, user) is not None:
        log.debug("websocket with an expired token re-attaches to live session %s", short_id(session_id))
    return session_id, True


def owner_of(core: ServerCore, context: ApplicationContext, session_id: str, token: str,
             user: str | None) -> str | None:
    """The worker of this host that owns the session a verified token names, when that is
    not this one (see :mod:`..runtime.handover`)."""
    if core.worker_key is None:
        return None
    here = context.get_session(session_id, user) is not None
    return handover.owner_to_hand_to(core.worker_key, decode_token(token)[1], here)


def check_token_user(payload: dict[str, Any], user: str | None) -> None:
    """Refuse (403) a token minted for another user. ``user`` None means auth is off.
    Another user's live session cannot be named at all: with authentication on, session
    ids are looked up within the requesting user's own (:func:`.contexts.session_key`)."""
    if user is None:
        return
    token_user = payload.get(TOKEN_USER_KEY)
    if token_user is not None and token_user != user:
        raise HTTPError(403, "Forbidden: the session token belongs to another user")


def refuse_ended(context: ApplicationContext, session_id: str, user: str | None) -> None:
    """Refuse (403) to serve a session its user's logout ended: it lives on until the
    cleanup job's next pass, but no token (re-attaching or not, the same user logged in
    again or not) may bring a page or a websocket back to it."""
    session = context.get_session(session_id, user)
    if session is not None and session.expiration_requested:
        raise HTTPError(403, "Forbidden: this session ended when its user logged out; reload the page")


def _netloc(origin: str) -> str:
    return origin.split("://", 1)[-1].rstrip("/") or origin
