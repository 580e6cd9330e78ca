"""Single sign-on for the tests: providers on loopback ports, each in a process of its own,
and bokeh-flask servers that log in through them.

- :func:`start_provider`: oidc-provider-mock, a real OpenID Connect provider (discovery,
  PKCE, signed ID tokens, refresh tokens, RP-initiated logout); the tests give its users
  their claims over its HTTP API (:func:`set_user`).
- :func:`start_rogue_provider`: ``tests/oauth/apps/rogue_provider.py``, whose ID tokens
  break one rule at a time (audience, issuer, expiry, key, nonce): the refusals only a
  provider can provoke.
- :func:`sso_login`: the whole login with ``requests``, as a browser follows it.
"""
from __future__ import annotations

import html as html_lib
import importlib.util
import os
import re
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote, urljoin, urlsplit

import pytest
import requests

from tests.support.servers import IN_CI, ROOT, Server, free_port, launch, spawn

OAUTH_APPS = ROOT / "tests" / "oauth" / "apps"
CLAIMS_APP = OAUTH_APPS / "claims.py"
CLIENT_ID = "bokeh-flask-test"
CLIENT_SECRET = "client-secret-" + "s" * 24
COOKIE_SECRET = "cookie-secret-" + "c" * 24
TIMEOUT = 10.0


def require_mock() -> None:
    """oidc-provider-mock is in the test extra; without it: skip locally, fail under CI=true."""
    if importlib.util.find_spec("oidc_provider_mock") is None:
        if IN_CI:
            pytest.fail("oidc-provider-mock is not installed: the test extra (pip install -e '.[test]') brings it")
        pytest.skip("oidc-provider-mock is not installed (pip install -e '.[test]')")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOKEH_", "FLASK_"))}
    env.update({"PYTHONUNBUFFERED": "1", "AUTHLIB_INSECURE_TRANSPORT": "1"})
    return env


def start_provider(token_max_age: int = 3600, refresh: bool = True) -> Server:
    require_mock()
    port = free_port()
    command = [sys.executable, str(OAUTH_APPS / "mock_provider.py"), str(port), str(token_max_age),
               "1" if refresh else "0"]
    return spawn("oidc-provider", command, port, _env(), ready=lambda status: status == 200,
                 ready_path="/.well-known/openid-configuration")


def start_rogue_provider() -> Server:
    require_mock()  # it signs with joserfc, which comes with Authlib
    port = free_port()
    command = [sys.executable, str(OAUTH_APPS / "rogue_provider.py"), str(port)]
    return spawn("rogue-provider", command, port, _env(), ready=lambda status: status == 200,
                 ready_path="/.well-known/openid-configuration")


def set_user(provider: Server, sub: str, **claims: object) -> None:
    answer = requests.put(f"{provider.url}/users/{quote(sub)}", json=claims, timeout=TIMEOUT)
    assert answer.status_code == 204, answer.text


def secret_file(secret: str) -> str:
    handle, path = tempfile.mkstemp(prefix="bokeh-flask-test-secret-")
    with os.fdopen(handle, "w") as file:
        file.write(secret + "\n")
    return path


def sso_args(provider: Server) -> list[str]:
    """The flags of a server logging in through ``provider``, with a login store of its own."""
    store = tempfile.mkstemp(prefix="bokeh-flask-test-logins-", suffix=".sqlite3")[1]
    return ["--oauth-provider", "oidc", "--oauth-issuer", provider.url, "--oauth-key", CLIENT_ID,
            "--oauth-secret-file", secret_file(CLIENT_SECRET), "--cookie-secret-file", secret_file(COOKIE_SECRET),
            "--login-store", f"sqlite:///{store}"]


def launch_sso_server(provider: Server, args: list[str] | None = None, apps: list[Path] | None = None) -> Server:
    return launch("cli", apps=apps or [CLAIMS_APP], args=[*sso_args(provider), *(args or [])])


def start_login(session: requests.Session, url: str) -> str:
    """GET an app page while logged out and follow our redirects: the provider's authorize URL."""
    ours = urlsplit(url).netloc
    answer = session.get(url, allow_redirects=False, timeout=TIMEOUT)
    while answer.status_code == 302:
        target = urljoin(answer.url, answer.headers["Location"])
        if urlsplit(target).netloc != ours:
            return target
        answer = session.get(target, allow_redirects=False, timeout=TIMEOUT)
    raise AssertionError((answer.status_code, answer.text[:300]))


def authorize(session: requests.Session, authorize_url: str, sub: str) -> str:
    """Log in at the provider's form as ``sub``: the callback URL it sends the browser to."""
    answer = session.post(authorize_url, data={"sub": sub}, allow_redirects=False, timeout=TIMEOUT)
    assert answer.status_code == 302, (answer.status_code, answer.text[:300])
    return answer.headers["Location"]


def sso_login(url: str, sub: str) -> requests.Session:
    """Log in as ``sub`` starting from the app page ``url``; the session ends on that page."""
    session = requests.Session()
    callback = authorize(session, start_login(session, url), sub)
    answer = session.get(callback, allow_redirects=False, timeout=TIMEOUT)
    assert answer.status_code == 302, (answer.status_code, answer.text[:300])
    return session


_MESSAGE_RE = re.compile(r'id="sso-message">([^<]*)<')


def page_message(html: str) -> str:
    """The message of a single sign-on page (a refusal, the logged-out page)."""
    found = _MESSAGE_RE.search(html)
    return html_lib.unescape(found.group(1)) if found else html[:300]
