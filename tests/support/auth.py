"""Helpers for the auth tests: launchers for Flask app modules (gunicorn's gevent worker or
``flask run``), login with ``requests``, tokens from doc pages, and reading Bokeh models
in the browser."""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter

from tests.support.bokeh_version import BOKEH4, text_frames
from tests.support.servers import BIN, ROOT, Server, free_port, spawn

APPS = ROOT / "tests" / "auth" / "apps"
WHOAMI = APPS / "whoami.py"
LOGIN_SERVER = APPS / "login_server.py"
BOKEH_EXAMPLE_AUTH = APPS / "server_auth" / "auth.py"
SIGNED_AUTH = APPS / "signed_auth.py"
COOKIE_SECRET = "x" * 32
TIMEOUT = 10.0
TIMEOUT_MS = 15_000
USERS = {"alice": "alice-pw", "bob": "bob-pw"}

_TOKEN_RE = re.compile(r'\\?"token\\?"\s*:\s*\\?"([A-Za-z0-9_\-.]+)\\?"')
_CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def launch_flask_app(module: Path, kind: str = "gunicorn", env: dict | None = None,
                     timeout: float = 60.0, workers: int = 1) -> Server:
    """Run a Flask app module as its users would: ``gunicorn -k gevent --chdir DIR
    module:app`` or ``flask --app FILE run``; wait until ``/health`` answers. Each start
    gets a login store of its own, so failed logins of one test never throttle another's."""
    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("BOKEH_", "FLASK_"))}
    store = tempfile.mkstemp(prefix="bokeh-flask-test-logins-", suffix=".sqlite3")[1]
    full_env.update({"PYTHONUNBUFFERED": "1", "BOKEH_LOGIN_STORE": f"sqlite:///{store}", **(env or {})})
    if kind == "gunicorn":
        command = [str(BIN / "gunicorn"), "-k", "gevent", "-w", str(workers), "-b", f"127.0.0.1:{port}",
                   "--chdir", str(module.parent), f"{module.stem}:app"]
    else:
        command = [str(BIN / "flask"), "--app", str(module), "run", "--host", "127.0.0.1",
                   "--port", str(port)]
    return spawn(f"auth-{kind}", command, port, full_env, ready=lambda status: status == 200,
                 ready_path="/health", timeout=timeout)


def logout(session: requests.Session, base: str, logout_path: str = "/logout") -> requests.Response:
    """Log out as a user does: GET the confirmation page, POST its form (CSRF token)."""
    page = session.get(base + logout_path, timeout=TIMEOUT, allow_redirects=False)
    assert page.status_code == 200, (page.status_code, page.text[:300])
    token = _CSRF_RE.search(page.text).group(1)
    return session.post(base + logout_path, data={"csrf_token": token}, timeout=TIMEOUT,
                        allow_redirects=False)


def browser_logout(page, url: str) -> None:
    """Open the logout page and confirm."""
    page.goto(url)
    page.click("#logout-button")


def login(base: str, user: str, password: str | None = None, login_path: str = "/login") -> requests.Session:
    """Log in through the standalone login form like a browser (CSRF token included)."""
    session = requests.Session()
    answer = try_login(session, base, user, password or USERS[user], login_path)
    assert answer.status_code == 302, answer.text[:300]
    return session


def login_form_token(session: requests.Session, base: str, login_path: str = "/login") -> str:
    """GET the login form; its CSRF token (the session keeps the cookie it goes with)."""
    form = session.get(base + login_path, timeout=TIMEOUT)
    assert form.status_code == 200, form.text[:300]
    return _CSRF_RE.search(form.text).group(1)


def try_login(session: requests.Session, base: str, user: str, password: str,
              login_path: str = "/login", token: str | None = None) -> requests.Response:
    """Submit the login form once (with ``token``, or a fresh form's); the answer, not followed."""
    return session.post(base + login_path, allow_redirects=False, timeout=TIMEOUT, data={
        "csrf_token": token or login_form_token(session, base, login_path),
        "username": user, "password": password})


class _FromAddress(HTTPAdapter):
    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, source_address=(self.address, 0), **kwargs)


def client_at(address: str) -> requests.Session:
    """A client whose connections come from ``address`` (any of 127/8 on Linux: each is a
    client address of its own to the server)."""
    session = requests.Session()
    session.mount("http://", _FromAddress(address))
    return session


def token_from_page(html: str) -> str:
    match = _TOKEN_RE.search(html)
    assert match, "no session token in the page"
    return match.group(1)


def page_token(session: requests.Session, url: str, cookie: str | None = None) -> str:
    """The session token of the doc page at ``url`` (``cookie``: a verbatim Cookie header)."""
    headers = {"Cookie": cookie} if cookie else {}
    response = session.get(url, timeout=TIMEOUT, allow_redirects=False, headers=headers)
    assert response.status_code == 200, (response.status_code, response.text[:300])
    return token_from_page(response.text)


def cookie_header(session: requests.Session) -> str:
    return "; ".join(f"{c.name}={c.value}" for c in session.cookies)


# -- browser ----------------------------------------------------------------------------

_READ = ("const m = Bokeh.documents[0].get_model_by_name(name);"
         " if (m == null) return undefined; return m.text;")


def model_text(page, name: str):
    return page.evaluate(f"(name) => {{ {_READ} }}", name)


def wait_for_text(page, name: str, expected: str, timeout: int = TIMEOUT_MS) -> None:
    """Wait until the Bokeh model ``name`` (pulled over the websocket) has this text."""
    page.wait_for_function(
        "([name, expected]) => { if (!window.Bokeh || Bokeh.documents.length === 0) return false;"
        f" const read = () => {{ {_READ} }}; return read() === expected; }}",
        arg=[name, expected], timeout=timeout)


def browser_login(page, user: str, password: str | None = None) -> None:
    """Fill and submit the login form the page currently shows."""
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password or USERS[user])
    page.click("button[type=submit]")


# -- raw websocket ----------------------------------------------------------------------

def handshake_status(ws_url: str, token: str, cookie: str | None = None) -> tuple[int, str]:
    """Try the websocket handshake; (status, body). 101 means it upgraded (then closed)."""
    import websocket

    header = [f"Cookie: {cookie}"] if cookie else []
    try:
        ws = websocket.create_connection(ws_url, subprotocols=["bokeh", token], header=header,
                                         timeout=TIMEOUT)
    except websocket.WebSocketBadStatusException as exc:
        return exc.status_code, (exc.resp_body or b"").decode("utf-8", "replace")
    ws.close()
    return 101, ""


class BokehSocket:
    """A minimal Bokeh protocol client: connect, read ACK, PULL-DOC, wait for the close."""

    def __init__(self, ws_url: str, token: str, cookie: str | None = None) -> None:
        import websocket

        self.ws = websocket.create_connection(
            ws_url, subprotocols=["bokeh", token], timeout=TIMEOUT,
            header=[f"Cookie: {cookie}"] if cookie else [])
        assert self.recv()[0]["msgtype"] == "ACK"

    def recv(self) -> tuple[dict, dict]:
        """One message's header and content, as the installed Bokeh frames it; buffers skipped."""
        import json

        if BOKEH4:
            envelope = json.loads(self.ws.recv())
            for _ in envelope["buffers"]:
                self.ws.recv()
            return envelope["header"], envelope["content"]
        header = json.loads(self.ws.recv())
        self.ws.recv()  # metadata
        content = json.loads(self.ws.recv())
        for _ in range(header.get("num_buffers", 0)):
            self.ws.recv()
        return header, content

    def texts(self) -> dict[str, str]:
        """``{model name: text}`` of the session's document (PULL-DOC)."""
        for part in text_frames("PULL-DOC-REQ", "pull"):
            self.ws.send(part)
        header, content = self.recv()
        assert header["msgtype"] == "PULL-DOC-REPLY", header
        found: dict[str, str] = {}

        def walk(value) -> None:
            if isinstance(value, dict):
                attrs = value.get("attributes")
                if isinstance(attrs, dict) and "name" in attrs and "text" in attrs:
                    found[attrs["name"]] = attrs["text"]
                for item in value.values():
                    walk(item)
            elif isinstance(value, list):
                for item in value:
                    walk(item)

        walk(content["doc"])
        return found

    def wait_closed(self) -> tuple[int | None, str]:
        """Block until the server closes; its (code, reason)."""
        import websocket

        while True:
            opcode, data = self.ws.recv_data(control_frame=True)
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                code = int.from_bytes(data[:2], "big") if len(data) >= 2 else None
                return code, data[2:].decode("utf-8", "replace")

    def close(self) -> None:
        self.ws.close()
