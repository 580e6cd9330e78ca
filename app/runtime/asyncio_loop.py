"""An asyncio event loop on the gevent hub, one per worker process (core side: no Flask).

Bokeh app code is asyncio code: coroutine callbacks, ``asyncio.sleep``, executors, Tornado's
``IOLoop.current()``, and Bokeh 3.10's own handlers (``asyncio.to_thread``). Under ``bokeh
serve`` all of it runs on one asyncio loop. Here the session layer stays in greenlets and
coroutines run on a real asyncio loop that lives in one greenlet of the worker:

- The loop is the standard ``SelectorEventLoop`` over gevent's selector: while no coroutine
  is ready it waits in the hub like any greenlet, so other greenlets run; a coroutine that
  blocks (CPU, a call gevent does not patch, ``gevent.sleep``) delays other coroutines as it
  would under Tornado, never the greenlets.
- ``asyncio.get_running_loop()`` answers this loop in every greenlet of the worker's thread
  (the running loop is per OS thread), and so do ``get_event_loop()`` and ``IOLoop.current()``.
  asyncio assumes ``call_soon``/``call_at``/``create_task`` come from the code the loop is
  running; from another greenlet they would wait until the loop woke for something else.
  :class:`HubEventLoop` wakes its selector when they come from another greenlet. That also
  delivers executor results on CPython >= 3.13.12 (gevent issue 2213), and is what
  ``asyncio-gevent``'s loop (the same selector loop) lacks.
- A greenlet waits for a coroutine with :func:`resolve`; a coroutine waits for blocking
  greenlet code (the session lock) with :func:`to_greenlet`, so the loop itself never
  waits on a gevent primitive that only the loop could release.
- Tasks and timers started by a session's code belong to that session (a context variable
  that tasks inherit, read by the task factory): :meth:`TaskOwner.cancel_all` ends them
  when the session is destroyed, so no coroutine outlives its session.
"""
from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import os
import weakref
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Coroutine, Generator, Iterator

import gevent
from gevent.event import AsyncResult
from gevent.monkey import get_original
from gevent.selectors import GeventSelector

if TYPE_CHECKING:
    from typing_extensions import TypeVarTuple, Unpack

    _Ts = TypeVarTuple("_Ts")

log = logging.getLogger(__name__)

_real_get_ident = get_original("_thread", "get_ident")


class TaskOwner:
    """The asyncio tasks and timers one session's code started, held weakly (a timer that
    fired or a task that finished drops out by itself). Its sets are made on first use:
    most sessions never start a task."""

    __slots__ = ("_tasks", "_timers", "closed", "__weakref__")

    def __init__(self) -> None:
        self._tasks: weakref.WeakSet[asyncio.Future[Any]] | None = None
        self._timers: weakref.WeakSet[asyncio.TimerHandle] | None = None
        self.closed = False

    def add_task(self, task: asyncio.Future[Any]) -> None:
        if self.closed:
            task.cancel()
            return
        if self._tasks is None:
            self._tasks = weakref.WeakSet()
        self._tasks.add(task)

    def add_timer(self, timer: asyncio.TimerHandle) -> None:
        if self.closed:
            timer.cancel()
            return
        if self._timers is None:
            self._timers = weakref.WeakSet()
        self._timers.add(timer)

    def __len__(self) -> int:
        """How many tasks and timers are still pending."""
        return (sum(1 for t in self._tasks or () if not t.done())
                + sum(1 for h in self._timers or () if not h.cancelled()))

    def cancel_all(self) -> int:
        """Cancel what is still pending and refuse more; returns how many were pending."""
        self.closed = True
        pending = [t for t in self._tasks or () if not t.done()]
        timers = [h for h in self._timers or () if not h.cancelled()]
        for task in pending:
            task.cancel()
        for timer in timers:
            timer.cancel()
        self._tasks = self._timers = None
        return len(pending) + len(timers)


#: The session whose code is running here; tasks and handles inherit it.
_owner: contextvars.ContextVar[TaskOwner | None] = contextvars.ContextVar("bokeh_flask_task_owner", default=None)


@contextmanager
def owned_by(owner: TaskOwner) -> Iterator[None]:
    """Count tasks and timers started in this block (and by them) as ``owner``'s."""
    token = _owner.set(owner)
    try:
        yield
    finally:
        _owner.reset(token)


class HubEventLoop(asyncio.SelectorEventLoop):
    """asyncio's selector loop on gevent's selector, woken by work from other greenlets."""

    def __init__(self) -> None:
        super().__init__(GeventSelector())
        #: the greenlet running the loop (None while it is not running)
        self.greenlet: gevent.Greenlet[[HubEventLoop], None] | None = None
        self._os_thread = _real_get_ident()
        self._wake_pending = False
        self.set_task_factory(_owned_task)

    def call_soon(self, callback: Callable[[Unpack[_Ts]], object], *args: Unpack[_Ts],
                  context: contextvars.Context | None = None) -> asyncio.Handle:
        handle = super().call_soon(callback, *args, context=context)
        self._wake()
        return handle

    def call_at(self, when: float, callback: Callable[[Unpack[_Ts]], object], *args: Unpack[_Ts],
                context: contextvars.Context | None = None) -> asyncio.TimerHandle:
        handle = super().call_at(when, callback, *args, context=context)
        owner = _owner.get() if context is None else context.get(_owner)
        if owner is not None:
            owner.add_timer(handle)
        self._wake()
        return handle

    def _wake(self) -> None:
        """Wake the selector when work arrives from a greenlet other than the loop's."""
        if self.greenlet is not None and not self._wake_pending and gevent.getcurrent() is not self.greenlet:
            self._wake_pending = True
            self._write_to_self()  # type: ignore[attr-defined]  # asyncio's private API: not in typeshed

    def _read_from_self(self) -> None:
        self._wake_pending = False
        super()._read_from_self()  # type: ignore[misc]  # asyncio's private API: not in typeshed

    def _check_thread(self) -> None:
        """Debug mode's check, by OS thread: every greenlet of this thread may call in
        (monkey-patching makes ``threading.get_ident`` name the greenlet)."""
        running = self._thread_id is not None  # type: ignore[attr-defined]  # private: not in typeshed
        if running and _real_get_ident() != self._os_thread:
            raise RuntimeError("Non-thread-safe operation invoked on an event loop other than the current one")


def _owned_task(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any] | Generator[Any, None, Any],
                **kwargs: Any) -> asyncio.Task[Any]:
    """The loop's task factory: a plain Task, counted as its session's when it has one."""
    task = asyncio.Task(coro, loop=loop, **kwargs)
    context = kwargs.get("context")
    owner = _owner.get() if context is None else context.get(_owner)
    if owner is not None:
        owner.add_task(task)
    return task


class _LoopState:
    loop: HubEventLoop | None = None
    pid: int | None = None


_state = _LoopState()


def get_loop() -> HubEventLoop:
    """This process's loop, started on first use (after gunicorn forks, never before)."""
    loop = _state.loop
    if loop is None or _state.pid != os.getpid():
        loop = _state.loop = HubEventLoop()
        _state.pid = os.getpid()
        asyncio.set_event_loop(loop)
    if loop.greenlet is None:
        # first use, or its greenlet was killed (a worker killing all greenlets): waiting
        # for a loop that nobody runs would hang every coroutine
        loop.greenlet = gevent.spawn(_run_forever, loop)
    return loop


def _run_forever(loop: HubEventLoop) -> None:
    loop.set_exception_handler(_log_loop_error)
    try:
        loop.run_forever()
    finally:
        loop.greenlet = None


def _log_loop_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """asyncio's report of an error nothing awaited (a task's exception never retrieved, a
    failing ``call_soon`` callback): one log record with the traceback, the loop goes on."""
    exc = context.get("exception")
    message = context.get("message", "error in the asyncio loop")
    log.error("%s", message, exc_info=(type(exc), exc, exc.__traceback__) if exc is not None else None)


def running_here() -> bool:
    """True in code the loop itself is running (a coroutine step, a loop callback)."""
    loop = _state.loop
    return loop is not None and loop.greenlet is not None and gevent.getcurrent() is loop.greenlet


def resolve(value: Any) -> Any:
    """``value``, or, when it is awaitable, what awaiting it on the loop gives.

    A greenlet waits for the result; the coroutine runs as a task of the loop in a copy of
    this greenlet's context (``curdoc()``, the owning session). Killing the waiting
    greenlet cancels the task. In code the loop is running, waiting would stop the loop,
    so an awaitable is stepped here instead and must not need the loop (await it there).
    """
    if not inspect.isawaitable(value):
        return value
    if running_here():
        return _step(value)
    loop = get_loop()
    task = asyncio.ensure_future(value, loop=loop)
    done: AsyncResult[asyncio.Future[Any]] = AsyncResult()
    task.add_done_callback(done.set)
    try:
        done.get()
    except BaseException:
        task.cancel()
        raise
    return task.result()


def pending_tasks() -> int:
    """The asyncio tasks not yet done in this process's loop (0 before it starts)."""
    loop = _state.loop
    if loop is None or _state.pid != os.getpid() or loop.is_closed():
        return 0
    return sum(1 for task in asyncio.all_tasks(loop) if not task.done())


def _step(value: Awaitable[Any]) -> Any:
    coro = value if inspect.iscoroutine(value) else value.__await__()
    try:
        yielded = coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise RuntimeError(
        f"{yielded!r} was awaited from synchronous code that the asyncio loop is running; "
        "await the coroutine instead of calling it synchronously")


async def to_greenlet(func: Callable[..., Any], *args: Any) -> Any:
    """Run blocking greenlet code (a lock, a request) from a coroutine without stopping the
    loop meanwhile: ``func(*args)`` runs in a new greenlet, in a copy of this context."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def run() -> None:
        try:
            result = func(*args)
        except BaseException as exc:  # delivered to the awaiting coroutine
            if not future.done():
                future.set_exception(exc)
        else:
            if not future.done():
                future.set_result(result)

    greenlet = gevent.spawn(contextvars.copy_context().run, run)
    try:
        return await future
    except asyncio.CancelledError:
        greenlet.kill(block=False)
        raise


def stop(timeout: float = 5.0) -> None:
    """Cancel what is pending and stop this process's loop (the worker is exiting)."""
    loop = _state.loop
    if loop is None or _state.pid != os.getpid() or loop.greenlet is None:
        return

    async def shutdown() -> None:
        tasks = [t for t in asyncio.all_tasks(loop) if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await loop.shutdown_asyncgens()

    try:
        with gevent.Timeout(timeout):
            resolve(shutdown())
    except gevent.Timeout:
        log.warning("asyncio tasks did not finish within %.0f s of shutdown", timeout)
    except (Exception, SystemExit) as exc:  # a quick exit (Ctrl-C): the worker's own exit
        # reaches this wait, or the hub can no longer wait; the process is ending either way
        log.debug("asyncio tasks not cancelled cleanly at exit: %r", exc)
    try:
        loop.call_soon_threadsafe(loop.stop)
        greenlet = loop.greenlet
        if greenlet is not None:
            greenlet.join(timeout)
    except (Exception, SystemExit) as exc:
        log.debug("asyncio loop not stopped cleanly at exit: %r", exc)
    if not loop.is_running():
        loop.close()
        asyncio.set_event_loop(None)
    _state.loop = None

