"""Shared helpers for the core tests: a recording Transport and ServerCore builders."""
from __future__ import annotations

import time
from typing import Any, Callable

import gevent

from bokeh_flask.app.config.settings import build_settings
from bokeh_flask.app.sessions.requests import RequestInfo
from bokeh_flask.app.sessions.server import ServerCore


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
        import json

        return [json.loads(m[0])["msgtype"] for m in self.messages]


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
