"""Session ids and session tokens, per Bokeh's format (``bokeh.util.token``).

Bokeh's token helpers capture ``BOKEH_SECRET_KEY`` and ``BOKEH_SIGN_SESSIONS`` as default
arguments at import time; everything here passes both explicitly from :class:`Settings`.
A token's signature is checked before any part of its payload is decoded, and decoding
failures of any kind become :class:`TokenError`, never a traceback. A token is bounded
twice before it costs memory: its length, then its payload, inflated by steps that stop at
:data:`MAX_TOKEN_PAYLOAD` (Bokeh's ``get_token_payload`` inflates a zlib bomb whole).
"""
from __future__ import annotations

import base64
import binascii
import calendar
import datetime as dt
import hashlib
import hmac
import json
import logging
import zlib
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from bokeh.core.types import ID
from bokeh.util.token import generate_jwt_token, generate_session_id

from ..auth.providers import AuthenticatedRequest
from ..config.settings import Settings
from .errors import HTTPError
from .requests import RequestInfo, last_argument

log = logging.getLogger(__name__)

_ZLIB_KEY = "__bk__zlib_"

#: The longest token accepted, in characters. A token carries the page request's headers
#: and cookies (zlib-compressed, then base64 twice): a 7 KiB cookie jar makes a token of
#: about 10 KB, so 32 KiB leaves three times that. A request whose token would be longer
#: is refused when the token is minted (431), so no page gets a token its websocket cannot use.
MAX_TOKEN_LENGTH = 32 * 1024
#: The most a token's compressed payload may inflate to, in bytes: above what the longest
#: token carries at the compression of typical headers and cookies (about 3:1), and small
#: enough that many tokens decoded at once cost a worker nothing it would notice.
#: Inflating stops here.
MAX_TOKEN_PAYLOAD = 64 * 1024


class TokenError(ValueError):
    """A token or session id that must be refused; the message is safe to log (no secrets)."""


class TokenTooLarge(TokenError):
    """A token over :data:`MAX_TOKEN_LENGTH` or whose payload inflates past
    :data:`MAX_TOKEN_PAYLOAD`: refused with a warning, since no page of ours made it."""


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(text: str, key: bytes) -> str:
    digest = hmac.new(key, text.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _signature_matches(text: str, signature: str, key: bytes) -> bool:
    """Constant-time comparison of bytes (``compare_digest`` refuses non-ASCII str)."""
    expected = _signature(text, key).encode("ascii")
    return hmac.compare_digest(expected, signature.encode("utf-8", "surrogatepass"))


def now_seconds() -> int:
    return calendar.timegm(dt.datetime.now(tz=dt.timezone.utc).timetuple())


@dataclass(frozen=True)
class TokenService:
    """Mints and checks session ids and tokens with one server's signing settings."""

    sign: bool
    secret_key: bytes | None
    expiration: int

    @classmethod
    def from_settings(cls, settings: Settings) -> "TokenService":
        key = settings.secret_key.encode("utf-8") if settings.secret_key else None
        return cls(settings.sign_sessions, key, settings.session_token_expiration)

    def new_session_id(self) -> str:
        return generate_session_id(secret_key=self.secret_key, signed=self.sign)

    def new_token(self, session_id: str, extra_payload: Mapping[str, Any] | None = None) -> str:
        """A token for ``session_id``; :class:`TokenTooLarge` when it would be refused on
        its way back (the request's headers and cookies are too large to carry)."""
        token = generate_jwt_token(
            ID(session_id),
            secret_key=self.secret_key,
            signed=self.sign,
            extra_payload=dict(extra_payload) if extra_payload else None,
            expiration=self.expiration,
        )
        _check_length(token)
        if extra_payload and len(json.dumps(extra_payload, default=_bytes_json).encode("utf-8")) > MAX_TOKEN_PAYLOAD:
            raise TokenTooLarge(f"token payload is over the limit of {MAX_TOKEN_PAYLOAD} bytes")
        return token

    def session_id_valid(self, session_id: str) -> bool:
        if not self.sign:
            return True
        assert self.secret_key is not None
        base, dot, sig = session_id.partition(".")
        return bool(dot) and _signature_matches(base, sig, self.secret_key)

    def verify(self, token: str, *, check_expiry: bool) -> tuple[str, dict[str, Any]]:
        """Check a token and return ``(session_id, payload)``.

        Order: signature (when signing), then decoding, then the embedded id's signature,
        then expiry. Raises :class:`TokenError` with a loggable reason.
        """
        if not token:
            raise TokenError("empty token")
        _check_length(token)
        if self.sign:
            assert self.secret_key is not None
            base, dot, sig = token.partition(".")
            if not dot or not _signature_matches(base, sig, self.secret_key):
                raise TokenError("token has an invalid signature")
        session_id, payload = decode_token(token)
        problem = session_id_problem(session_id)
        if problem:
            raise TokenError(f"session id in token {problem}")
        if not self.session_id_valid(session_id):
            raise TokenError("session id in token has an invalid signature")
        if check_expiry and token_expired(payload):
            raise TokenError(EXPIRED)
        return session_id, payload


#: The longest session id a client may choose (generated ids are 44 characters, signed 88).
MAX_SESSION_ID = 256
#: What a client-chosen session id may contain: what ``bokeh.client`` users pick, and what
#: Bokeh generates (base64url, and a ``.`` before a signature).
_ID_CHARACTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


def session_id_problem(session_id: str) -> str | None:
    """Why a session id a client chose is refused (None: it is fine). Ids end up in logs,
    in apps' hands and as keys: no path separators, ``..``, control characters or NUL
    (``bokeh serve`` accepts ``../../etc/passwd`` as a live session)."""
    if not session_id:
        return "must not be empty"
    if len(session_id) > MAX_SESSION_ID:
        return f"is longer than {MAX_SESSION_ID} characters"
    if ".." in session_id or not _ID_CHARACTERS.issuperset(session_id):
        return "may only contain letters, digits, '-', '_' and single '.'"
    return None


def short_id(session_id: str) -> str:
    """Enough of a session id to correlate log lines, never a signature."""
    return session_id.split(".", 1)[0][:8] + "…"


#: Why an expired token is refused (Bokeh's advice, in our flag's words).
EXPIRED = "token is expired; configure a larger --session-token-expiration if needed"


def token_expired(payload: Mapping[str, Any]) -> bool:
    """Whether a verified token's payload is past its ``session_expiry`` (or has none)."""
    expiry = payload.get("session_expiry")
    return not isinstance(expiry, int) or now_seconds() >= expiry


def _check_length(token: str) -> None:
    if len(token) > MAX_TOKEN_LENGTH:
        raise TokenTooLarge(f"token is {len(token)} characters long, over the limit of {MAX_TOKEN_LENGTH}")


def decode_token(token: str) -> tuple[str, dict[str, Any]]:
    """Read ``(session_id, payload)`` from a token without checking its signature.

    Bokeh's format: the base64 JSON head holds the id, the expiry and, under ``__bk__zlib_``,
    the rest of the payload as base64 zlib-compressed JSON (``{"bytes": ...}`` for bytes).
    """
    _check_length(token)
    try:
        head = json.loads(_b64decode(token.split(".", 1)[0]))
        session_id = head["session_id"]
        if not isinstance(session_id, str) or not session_id:
            raise TokenError("token has no session id")
        payload = {k: v for k, v in head.items() if k not in ("session_id", _ZLIB_KEY)}
        if _ZLIB_KEY in head:
            extra = json.loads(_inflate(_b64decode(head[_ZLIB_KEY])), object_hook=_bytes_hook)
            if not isinstance(extra, dict):
                raise TokenError("token payload is not an object")
            payload.update(extra)
    except TokenError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error, zlib.error, UnicodeError,
            RecursionError):
        raise TokenError("token could not be decoded") from None
    return session_id, payload


def _inflate(data: bytes) -> bytes:
    """Inflate a zlib stream, stopping one byte past :data:`MAX_TOKEN_PAYLOAD`."""
    inflater = zlib.decompressobj()
    out = inflater.decompress(data, MAX_TOKEN_PAYLOAD + 1)
    if len(out) > MAX_TOKEN_PAYLOAD:
        raise TokenTooLarge(f"token payload inflates past the limit of {MAX_TOKEN_PAYLOAD} bytes")
    if not inflater.eof:
        raise TokenError("token could not be decoded")
    return out


def _bytes_json(value: Any) -> Any:
    """Bokeh's JSON for ``bytes`` in a payload (``_BytesEncoder``), as long as Bokeh's."""
    if isinstance(value, bytes):
        return {"bytes": base64.urlsafe_b64encode(value).rstrip(b"=").decode("ascii")}
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _bytes_hook(obj: dict[str, Any]) -> Any:
    """Bokeh's encoding of ``bytes`` in a payload: ``{"bytes": <base64>}``."""
    return _b64decode(obj["bytes"]) if obj.keys() == {"bytes"} else obj


def payload_to_json(payload: Mapping[str, Any]) -> str:
    """A token payload as JSON, ``bytes`` (request arguments) as Bokeh encodes them."""
    return json.dumps(payload, default=_bytes_json)


def payload_from_json(text: str | bytes) -> Any:
    """The inverse of :func:`payload_to_json`."""
    return json.loads(text, object_hook=_bytes_hook)


#: Headers that carry credentials: with authentication on, never in a token.
CREDENTIAL_HEADERS = ("Cookie", "Authorization", "Proxy-Authorization")


def build_extra_payload(request: RequestInfo, settings: Settings) -> dict[str, Any]:
    """The request facts a token carries, so any worker can rebuild the session (3.4).

    A token is readable by every script on the page. With authentication on it carries
    neither the login cookies (the provider's, ``login_cookies``, and those the auth
    module's ``get_user`` read for this request) nor the raw ``Cookie`` and credential
    headers, so it cannot be replayed as a login; ``session_context.user`` says who it is.
    """
    headers = _select(request.headers, settings.include_headers, settings.exclude_headers)
    cookies = _select(request.cookies, settings.include_cookies, settings.exclude_cookies)
    if request.cookies and "Cookie" in headers and "Cookie" not in settings.include_headers:
        # the cookies travel parsed (and filtered); the raw header would carry excluded ones
        del headers["Cookie"]
    if isinstance(request, AuthenticatedRequest) and request.user is not None:
        secret = request.login_cookies | set(settings.login_cookies)
        cookies = {k: v for k, v in cookies.items() if k not in secret}
        for name in CREDENTIAL_HEADERS:
            headers.pop(name, None)
    return {"headers": headers, "cookies": cookies, "arguments": request.arguments}


def _select(values: Mapping[str, str], include: tuple[str, ...], exclude: tuple[str, ...]) -> dict[str, str]:
    if include:
        return {k: v for k, v in values.items() if k in include}
    return {k: v for k, v in values.items() if k not in exclude}


#: The token payload key of the reference to the page's request facts kept on the server
#: (see :mod:`.request_context`).
CONTEXT_KEY = "bokeh_flask_context"
#: Stores a session's page facts (session id, payload) and returns their reference.
KeepFacts = Callable[[str, dict[str, Any]], str]


def resolve_session_request(
    request: RequestInfo, tokens: TokenService, settings: Settings, extra: Mapping[str, Any] | None,
    carried: Mapping[str, Any] | None = None, keep: KeepFacts | None = None,
) -> tuple[str, str]:
    """Bokeh's SessionHandler decision order (``bokeh.server.views.session_handler``):
    return ``(session_id, token)``.

    The token comes from the ``bokeh-token`` argument or, as Bokeh 4's pages send it to
    ``embed.json``, the ``Bokeh-Token`` header (both: 403). ``extra`` is what the app's
    ``process_request`` added: with the request's headers,
    cookies and arguments, the page's facts, which ``keep`` stores on the server (the token
    then holds their reference; without ``keep`` the token carries them, as Bokeh's do).
    ``carried`` always travels in the token (the user, the owning worker: checked before any
    session is built). Raises :class:`HTTPError` 403 for conflicting or invalid ids and
    tokens; an empty id or an oversized token is a 400 (Bokeh answers 500, or inflates it), a
    request too large to mint a token for a 431.
    """
    token = last_argument(request.arguments, "bokeh-token")
    header_token = request.headers.get("Bokeh-Token")
    if header_token is not None:
        if token is not None:
            raise HTTPError(403, "session token was provided as an argument and header")
        token = header_token.strip()
    session_id = last_argument(request.arguments, "bokeh-session-id")
    header_id = request.headers.get("Bokeh-Session-Id")
    if header_id is not None:
        if session_id is not None:
            raise HTTPError(403, "session ID was provided as an argument and header")
        session_id = header_id.strip()
    if token is not None:
        if session_id is not None:
            raise HTTPError(403, "Both token and session ID were provided")
        try:
            session_id, _ = tokens.verify(token, check_expiry=False)
        except TokenTooLarge as exc:
            log.warning("Refusing bokeh-token argument: %s", exc)
            raise HTTPError(400, f"Bad Request: {exc}") from None
        except TokenError:
            raise HTTPError(403, "Invalid token or session ID") from None
        return session_id, token
    if session_id is None:
        if not settings.generate_session_ids:
            raise HTTPError(403, "No bokeh-session-id provided")
        session_id = tokens.new_session_id()
    else:
        problem = session_id_problem(session_id)
        if problem:
            raise HTTPError(400, f"bokeh-session-id {problem}")
    if not tokens.session_id_valid(session_id):
        raise HTTPError(403, "Invalid token or session ID")
    payload = build_extra_payload(request, settings)
    if extra:
        payload.update(extra)
    payload.pop("session_id", None)
    try:
        if keep is not None:
            # the same bound as in a token, so a request cannot store more than it could carry
            if len(payload_to_json(payload).encode("utf-8")) > MAX_TOKEN_PAYLOAD:
                raise TokenTooLarge(f"token payload is over the limit of {MAX_TOKEN_PAYLOAD} bytes")
            payload = {CONTEXT_KEY: keep(session_id, payload)}
        payload.update(carried or {})
        return session_id, tokens.new_token(session_id, payload)
    except TokenTooLarge as exc:
        log.warning("Refusing a page request: its headers and cookies are too large to keep for its session "
                    "(%s); leave some out with --exclude-headers or --exclude-cookies", exc)
        raise HTTPError(431, "Request Header Fields Too Large: the headers and cookies are too large "
                             "to keep for a session") from None
