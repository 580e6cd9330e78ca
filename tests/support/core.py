"""Shared helpers for the core tests: a recording Transport and ServerCore builders."""
from __future__ import annotations

import json
import time
from typing import Any, Callable

import gevent

from bokeh_flask.app.config.settings import build_settings
from bokeh_flask.app.sessions.requests import RequestInfo
from bokeh_flask.app.sessions.server import ServerCore
from tests.support.bokeh_version import BOKEH4


class FakeTransport:
    """A Transport that records frames, closes and pings (``alive=False`` simulates a dead socket)."""

    def __init__(self, alive: bool = True) -> None:
        self.messages: list[list[Any]] = []
        self.closed: list[tuple[int, str]] = []
        self.pings: list[bytes] = []
        self.alive = alive

    def write_frames(self, frames: list[Any]) -> bool:
        self.messages.append(list(frames))
        return self.alive

    def close(self, code: int, reason: str) -> None:
        self.closed.append((code, reason))

    def ping(self, payload: bytes) -> None:
        self.pings.append(payload)

    def msgtypes(self) -> list[str]:
        return [message_header(m)["msgtype"] for m in self.messages]


def message_header(frames: list[Any]) -> dict[str, Any]:
    """A written message's header, from Bokeh 3's header frame or Bokeh 4's envelope."""
    head: dict[str, Any] = json.loads(frames[0])
    return head["header"] if BOKEH4 else head


def message_content(frames: list[Any]) -> str:
    """A written message's content as JSON text, compact as Bokeh writes it (Bokeh 4: taken
    out of the envelope)."""
    if BOKEH4:
        return json.dumps(json.loads(frames[0])["content"], separators=(",", ":"))
    content = frames[2]
    return content if isinstance(content, str) else bytes(content).decode()


def make_core(apps: Any, **overrides: Any) -> ServerCore:
    return ServerCore(build_settings(overrides=overrides, environ={}), apps=apps)


def new_session(core: ServerCore, key: str = "/x", session_id: str | None = None,
                payload: dict | None = None, request: RequestInfo | None = None):
    context = core.applications[key]
    sid = session_id or core.tokens.new_session_id()
    token = core.tokens.new_token(sid, payload)
    return context.create_session_if_needed(sid, token, request or RequestInfo())


def wait_until(predicate: Callable[[], bool], timeout: float = 3.0, step: float = 0.005) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        gevent.sleep(step)
    return True
