"""app/runtime/asyncio_loop.py: the worker's asyncio loop on the gevent hub, and how greenlets and
coroutines wait for each other."""
from __future__ import annotations

import asyncio
import logging
import time

import gevent
import pytest
from bokeh.document import Document
from gevent.monkey import get_original

from bokeh_flask.app.runtime import asyncio_loop
from bokeh_flask.app.runtime.asyncio_loop import TaskOwner, owned_by, resolve
from tests.support.core import make_core, new_session, wait_until

RealThread = get_original("threading", "Thread")


async def sleepy(value, delay=0.01):
    await asyncio.sleep(delay)
    return value


def test_resolve_runs_a_coroutine_on_the_loop_and_returns_its_value():
    assert resolve(sleepy(42)) == 42
    assert resolve(7) == 7


def test_running_loop_is_the_workers_loop_in_every_greenlet():
    loop = asyncio_loop.get_loop()

    def look():
        from tornado.ioloop import IOLoop

        return asyncio.get_running_loop(), asyncio.get_event_loop(), IOLoop.current().asyncio_loop

    assert gevent.spawn(look).get(timeout=5) == (loop, loop, loop)


def test_many_greenlets_wait_for_coroutines_at_once():
    """Fifty greenlets, each awaiting twenty coroutines in turn: none waits on another."""
    def worker(n):
        return sum(resolve(sleepy(1, 0.001)) for _ in range(20)) + n

    greenlets = [gevent.spawn(worker, n) for n in range(50)]
    gevent.joinall(greenlets, timeout=20, raise_error=True)
    assert [g.value for g in greenlets] == [20 + n for n in range(50)]


def test_call_soon_and_call_at_from_a_greenlet_wake_an_idle_loop():
    loop = asyncio_loop.get_loop()
    resolve(sleepy(None, 0))  # the loop is running and now idle in its selector
    ran = []
    loop.call_soon(ran.append, "soon")
    assert wait_until(lambda: ran == ["soon"], timeout=1)
    started = time.monotonic()
    loop.call_later(0.05, ran.append, "later")
    assert wait_until(lambda: ran == ["soon", "later"], timeout=1)
    assert time.monotonic() - started < 0.5


def test_call_soon_threadsafe_from_a_native_thread():
    loop = asyncio_loop.get_loop()
    ran = []
    thread = RealThread(target=lambda: loop.call_soon_threadsafe(ran.append, "thread"))
    thread.start()
    thread.join()
    assert wait_until(lambda: ran == ["thread"], timeout=2)


def test_to_greenlet_waits_for_blocking_code_while_the_loop_runs_on():
    ticks = []

    async def ticker():
        for _ in range(5):
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)

    def blocking():
        gevent.sleep(0.1)
        return "done"

    async def main():
        task = asyncio.create_task(ticker())
        result = await asyncio_loop.to_greenlet(blocking)
        await task
        return result

    assert resolve(main()) == "done"
    assert len(ticks) == 5


def test_task_owner_cancels_its_tasks_and_timers():
    owner = TaskOwner()
    loop = asyncio_loop.get_loop()
    fired = []

    def start():
        with owned_by(owner):
            task = loop.create_task(asyncio.sleep(30))
            loop.call_later(30, fired.append, 1)
        return task

    task = gevent.spawn(start).get()
    assert len(owner) == 2
    assert owner.cancel_all() == 2
    assert wait_until(task.cancelled, timeout=2)
    with owned_by(owner):  # a closed owner cancels what it is given
        late = loop.create_task(asyncio.sleep(30))
    assert wait_until(late.cancelled, timeout=2)
    assert fired == []


def test_destroyed_session_cancels_a_coroutine_that_never_finishes():
    core = make_core({"/x": lambda doc: None})
    session = new_session(core)
    started, finished = [], []

    async def forever():
        started.append(1)
        try:
            await asyncio.get_running_loop().create_future()
        finally:
            finished.append(1)

    session.document.add_next_tick_callback(forever)
    assert wait_until(lambda: started == [1])
    assert len(session.tasks) == 1
    session.destroy()
    assert wait_until(lambda: finished == [1])
    assert len(session.tasks) == 0


def test_locked_coroutine_callback_holds_the_lock_across_awaits():
    core = make_core({"/x": lambda doc: None})
    session = new_session(core)
    order = []

    async def slow():
        order.append("slow start")
        await asyncio.sleep(0.05)
        order.append("slow end")

    def quick():
        order.append("quick")

    session.document.add_next_tick_callback(slow)
    assert wait_until(lambda: order == ["slow start"])
    session.document.add_next_tick_callback(quick)
    assert wait_until(lambda: len(order) == 3)
    assert order == ["slow start", "slow end", "quick"]
    session.destroy()


def test_coroutine_that_raises_is_logged_with_its_traceback(caplog):
    core = make_core({"/x": lambda doc: None})
    session = new_session(core)

    async def broken():
        await asyncio.sleep(0)
        raise ZeroDivisionError("boom in a coroutine")

    with caplog.at_level(logging.ERROR):
        session.document.add_next_tick_callback(broken)
        assert wait_until(lambda: any("boom in a coroutine" in (r.exc_text or "") or
                                      (r.exc_info and "boom" in str(r.exc_info[1])) for r in caplog.records))
    record = next(r for r in caplog.records if r.exc_info)
    assert record.exc_info[0] is ZeroDivisionError
    # the loop and the session go on
    assert resolve(sleepy("still running")) == "still running"
    session.destroy()


def test_threads_add_next_tick_callbacks_while_coroutines_run():
    core = make_core({"/x": lambda doc: None})
    session = new_session(core)
    doc = session.document
    counted = []

    async def busy():
        for _ in range(20):
            await asyncio.sleep(0.002)

    def from_thread():
        for i in range(50):
            doc.add_next_tick_callback(lambda i=i: counted.append(i))
            time.sleep(0.001)

    doc.add_next_tick_callback(busy)
    threads = [RealThread(target=from_thread) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wait_until(lambda: len(counted) == 150, timeout=10)
    session.destroy()


def test_curdoc_inside_a_coroutine_callback_is_the_sessions_document():
    from bokeh.io import curdoc

    core = make_core({"/x": lambda doc: None})
    session = new_session(core)
    seen = []

    async def look():
        seen.append(curdoc())
        await asyncio.sleep(0.01)
        seen.append(curdoc())

    session.document.add_next_tick_callback(look)
    assert wait_until(lambda: len(seen) == 2)
    assert seen == [session.document, session.document]
    session.destroy()


def test_with_locked_document_accepts_coroutine_functions():
    core = make_core({"/x": lambda doc: None})
    session = new_session(core)

    async def change(doc):
        await asyncio.sleep(0.01)
        doc.title = "changed in a coroutine"
        return "ok"

    assert resolve(session.context.with_locked_document(change)) == "ok"
    assert session.document.title == "changed in a coroutine"
    session.destroy()


@pytest.mark.skipif(not hasattr(Document, "locked_callback"), reason="Bokeh 3.10 added locked callbacks")
def test_bokeh_310_locked_callback_from_a_thread_changes_the_document():
    """``doc.locked_callback`` (Bokeh 3.10): a thread calls it, it runs under the lock."""
    from bokeh.models import Div

    core = make_core({"/x": lambda doc: doc.add_root(Div(text="0", name="div"))})
    session = new_session(core)
    doc = session.document
    div = doc.get_model_by_name("div")

    @doc.locked_callback
    def bump(n):
        div.text = str(int(div.text) + n)

    thread = RealThread(target=lambda: [bump(1) for _ in range(10)])
    thread.start()
    thread.join()
    assert wait_until(lambda: div.text == "10")
    session.destroy()


def test_queues_and_async_generators_in_session_coroutines():
    core = make_core({"/x": lambda doc: None})
    session = new_session(core)
    got = []

    async def numbers():
        for n in range(3):
            await asyncio.sleep(0.001)
            yield n

    async def producer_consumer():
        queue: asyncio.Queue[int] = asyncio.Queue()

        async def produce():
            async for n in numbers():
                await queue.put(n)
            await queue.put(-1)

        task = asyncio.create_task(produce())
        while (n := await queue.get()) != -1:
            got.append(n)
        await task

    session.document.add_next_tick_callback(producer_consumer)
    assert wait_until(lambda: got == [0, 1, 2])
    session.destroy()
