"""Drive Bokeh's coroutine APIs on gevent, without an asyncio event loop.

Bokeh declares some methods ``async`` that never really suspend (``Receiver.consume``,
``Application.on_session_created``), and lets user callbacks be ``async def``. Under
gevent, blocking calls inside such code already cooperate, so we step the coroutine
to completion in the calling greenlet. A bare ``await asyncio.sleep(0)``-style yield is
turned into a gevent yield. Awaiting a real asyncio future cannot work without a loop;
that raises :class:`AsyncioNotSupported` with advice instead of hanging.
"""
from __future__ import annotations

import inspect
from typing import Any

import gevent


class AsyncioNotSupported(RuntimeError):
    """App code awaited an asyncio future, which needs an asyncio loop we do not run."""


def resolve(value: Any) -> Any:
    """Return ``value``, or the result of awaiting it if it is awaitable."""
    if not inspect.isawaitable(value):
        return value
    coro = value.__await__() if not inspect.iscoroutine(value) else value
    try:
        while True:
            yielded = coro.send(None)
            if yielded is not None:
                coro.close()
                raise AsyncioNotSupported(
                    "bokeh-flask runs callbacks on gevent: use blocking calls (they cooperate) "
                    "or gevent.sleep() instead of awaiting asyncio futures"
                )
            gevent.sleep(0)
    except StopIteration as stop:
        return stop.value
    except RuntimeError as exc:
        if "no running event loop" in str(exc):
            raise AsyncioNotSupported(
                "bokeh-flask runs callbacks on gevent without an asyncio loop: replace "
                "`await asyncio.sleep(...)` with `gevent.sleep(...)`"
            ) from exc
        raise
