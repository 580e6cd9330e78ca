"""bokeh_flask.app.runtime.periodic: jobs run on one reused timer, never overlapping."""
from __future__ import annotations

import logging

import gevent
import gevent.event
import pytest

from bokeh_flask.app.runtime.periodic import PeriodicCallback
from tests.support.core import wait_until


def test_runs_every_interval_until_stopped():
    runs: list[int] = []
    job = PeriodicCallback(lambda: runs.append(1), 0.01)
    job.start()
    try:
        assert wait_until(lambda: len(runs) >= 3)
    finally:
        job.stop()
    n = len(runs)
    gevent.sleep(0.05)
    assert len(runs) == n and not job.started


def test_a_tick_during_a_slow_run_is_skipped():
    release = gevent.event.Event()
    started: list[int] = []

    def slow() -> None:
        started.append(1)
        release.wait(5)

    job = PeriodicCallback(slow, 0.01)
    job.start()
    try:
        assert wait_until(lambda: started)
        gevent.sleep(0.06)                     # several ticks while the run blocks
        assert len(started) == 1
        release.set()
        assert wait_until(lambda: len(started) >= 2)
    finally:
        job.stop()


def test_a_failing_run_is_logged_and_the_next_tick_runs_again(caplog):
    runs: list[int] = []

    def flaky() -> None:
        runs.append(1)
        raise RuntimeError("boom")

    job = PeriodicCallback(flaky, 0.01, name="flaky job")
    with caplog.at_level(logging.ERROR, logger="bokeh_flask.app.runtime.periodic"):
        job.start()
        try:
            assert wait_until(lambda: len(runs) >= 2)
        finally:
            job.stop()
    assert "periodic job flaky job failed" in caplog.text and "boom" in caplog.text


def test_stop_kills_a_run_in_progress():
    started: list[bool] = []
    killed: list[bool] = []

    def blocking() -> None:
        started.append(True)
        try:
            gevent.sleep(5)
        except gevent.GreenletExit:
            killed.append(True)
            raise

    job = PeriodicCallback(blocking, 0.01)
    job.start()
    assert wait_until(lambda: started)
    job.stop()
    assert wait_until(lambda: killed)


def test_interval_must_be_positive():
    with pytest.raises(ValueError, match="interval must be positive"):
        PeriodicCallback(lambda: None, 0)
