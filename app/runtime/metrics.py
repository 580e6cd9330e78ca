"""Prometheus metrics of a worker: the names, and the calls the core makes at each event.

``ServerCore.metrics`` is a :class:`Metrics` and each ``ApplicationContext.metrics`` an
:class:`AppMetrics`. With metrics off those are the base classes, whose methods do nothing
(prometheus_client is not even imported); with ``--metrics`` they are the ``Live``
subclasses. The hot path (a message in, its reply out) only adds to plain per-app tallies,
written to prometheus_client every :data:`FLUSH_INTERVAL` and before a scrape: in
multiprocess mode each write is a locked mmap update, and five of them per round trip were
a measurable share of its CPU.

Under gunicorn, prometheus_client runs in its multiprocess mode: the master makes a fresh
``PROMETHEUS_MULTIPROC_DIR`` in the server's private directory at start
(:func:`prepare_multiprocess_dir`, from the ``on_starting`` hook), marks each exited worker
dead there (:func:`worker_exited`, so its live gauges stop counting) and removes the
directory when it stops (:func:`remove_multiprocess_dir`); any worker's scrape then covers them all. Without that
variable (``flask run``, a host's own gunicorn) each process reports only itself.

This module stays import-light (no Flask, no Bokeh): the gunicorn master uses its hooks.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from bisect import bisect_left
from typing import TYPE_CHECKING

from ..config import state_dir
from ..config.settings import SettingsError

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

#: The environment variable prometheus_client's multiprocess mode reads.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Set in the master when the directory is ours to remove (not the operator's own).
OWNED_DIR_ENV = "BOKEH_FLASK_METRICS_DIR"
#: Seconds a worker's message counts may wait before they reach the metric files.
FLUSH_INTERVAL = 1.0
#: Seconds between updates of a worker's memory and descriptor gauges.
PROCESS_UPDATE_INTERVAL = 5.0
#: Buckets (s) of the message, page and document-build histograms: a round trip on an
#: idle worker is ~1 ms, a page of a small app ~10 ms, a heavy app's build seconds.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class AppMetrics:
    """What one app's events record. This base records nothing: metrics are off."""

    def session_created(self) -> None:
        pass

    def session_discarded(self, reason: str, count: int = 1) -> None:
        pass

    def document_built(self, seconds: float) -> None:
        pass

    def page_served(self, seconds: float) -> None:
        pass

    def connection_opened(self) -> None:
        pass

    def connection_closed(self) -> None:
        pass

    def message_in(self, msgtype: str, seconds: float) -> None:
        pass

    def message_out(self, msgtype: str) -> None:
        pass

    def error(self, kind: str) -> None:
        pass


class Metrics:
    """The worker's metrics. This base records nothing: metrics are off."""

    enabled = False

    def app(self, key: str) -> AppMetrics:
        return _NO_APP_METRICS

    def websocket_refused(self, reason: str) -> None:
        pass

    def page_refused(self, app: str, reason: str) -> None:
        pass

    def capacity(self, max_sessions: int) -> None:
        pass

    def update_process(self) -> None:
        pass

    def flush(self) -> None:
        pass

    def registry(self) -> CollectorRegistry:
        raise RuntimeError("metrics are off")


_NO_APP_METRICS = AppMetrics()


class _Instruments:
    """The metric objects, made once per process (prometheus_client's registry is global)."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.sessions = Gauge("bokeh_flask_sessions", "Live sessions", ["app"], multiprocess_mode="livesum")
        self.sessions_created = Counter("bokeh_flask_sessions_created", "Sessions created", ["app"])
        self.sessions_discarded = Counter("bokeh_flask_sessions_discarded",
                                          "Sessions discarded, by why (unused, logout, shutdown)",
                                          ["app", "reason"])
        self.connections = Gauge("bokeh_flask_websocket_connections", "Open websocket connections",
                                 ["app"], multiprocess_mode="livesum")
        self.refused = Counter("bokeh_flask_websocket_refused",
                               "Websocket handshakes refused, by why", ["reason"])
        self.pages_refused = Counter("bokeh_flask_pages_refused",
                                     "Pages refused before any session was made, by why (capacity)",
                                     ["app", "reason"])
        self.max_sessions = Gauge("bokeh_flask_max_sessions",
                                  "Live sessions a worker holds at most (--max-sessions; 0: no limit)",
                                  multiprocess_mode="liveall")
        self.messages = Counter("bokeh_flask_messages", "Bokeh protocol messages",
                                ["app", "msgtype", "direction"])
        self.message_seconds = Histogram("bokeh_flask_message_seconds",
                                         "From a client message's receipt to its reply",
                                         ["app", "msgtype"], buckets=BUCKETS)
        self.build_seconds = Histogram("bokeh_flask_document_build_seconds",
                                       "The app's code building a session's document", ["app"],
                                       buckets=BUCKETS)
        self.page_seconds = Histogram("bokeh_flask_page_seconds", "Serving a page (doc or autoload.js)",
                                      ["app"], buckets=BUCKETS)
        self.errors = Counter("bokeh_flask_errors", "Errors, by kind", ["app", "kind"])
        # per worker (a pid label in multiprocess mode), gone with the worker
        self.memory = Gauge("bokeh_flask_process_resident_memory_bytes", "Resident memory of a worker",
                            multiprocess_mode="liveall")
        self.fds = Gauge("bokeh_flask_process_open_fds", "Open file descriptors of a worker",
                         multiprocess_mode="liveall")


_instruments: _Instruments | None = None


def _get_instruments() -> _Instruments:
    global _instruments
    if _instruments is None:
        _instruments = _Instruments()
    return _instruments


class _Tally:
    """A message type's count, summed seconds and histogram buckets since the last flush."""

    __slots__ = ("count", "seconds", "buckets")

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0
        self.buckets = [0] * (len(BUCKETS) + 1)  # the last one is +Inf


class LiveAppMetrics(AppMetrics):
    """One app's labelled children; messages are tallied, and written by :meth:`flush`."""

    def __init__(self, instruments: _Instruments, key: str) -> None:
        self._i = instruments
        self.key = key
        self._sessions = instruments.sessions.labels(key)
        self._created = instruments.sessions_created.labels(key)
        self._build = instruments.build_seconds.labels(key)
        self._page = instruments.page_seconds.labels(key)
        self._connections = instruments.connections.labels(key)
        self._in: dict[str, _Tally] = {}
        self._out: dict[str, int] = {}

    def session_created(self) -> None:
        self._created.inc()
        self._sessions.inc()

    def session_discarded(self, reason: str, count: int = 1) -> None:
        if count:
            self._i.sessions_discarded.labels(self.key, reason).inc(count)
            self._sessions.dec(count)

    def document_built(self, seconds: float) -> None:
        self._build.observe(seconds)

    def page_served(self, seconds: float) -> None:
        self._page.observe(seconds)

    def connection_opened(self) -> None:
        self._connections.inc()

    def connection_closed(self) -> None:
        self._connections.dec()

    def message_in(self, msgtype: str, seconds: float) -> None:
        tally = self._in.get(msgtype)
        if tally is None:
            tally = self._in[msgtype] = _Tally()
        tally.count += 1
        tally.seconds += seconds
        tally.buckets[bisect_left(BUCKETS, seconds)] += 1

    def message_out(self, msgtype: str) -> None:
        self._out[msgtype] = self._out.get(msgtype, 0) + 1

    def flush(self) -> None:
        """Write the tallies since the last flush. The histogram's bucket and sum values are
        prometheus_client's own (``_buckets``, ``_sum``): one write per bucket touched instead
        of one ``observe`` per message."""
        tallies, self._in = self._in, {}
        for msgtype, tally in tallies.items():
            self._i.messages.labels(self.key, msgtype, "in").inc(tally.count)
            histogram = self._i.message_seconds.labels(self.key, msgtype)
            for bucket, count in zip(histogram._buckets, tally.buckets):
                if count:
                    bucket.inc(count)
            histogram._sum.inc(tally.seconds)
        counts, self._out = self._out, {}
        for msgtype, count in counts.items():
            self._i.messages.labels(self.key, msgtype, "out").inc(count)

    def error(self, kind: str) -> None:
        self._i.errors.labels(self.key, kind).inc()


class LiveMetrics(Metrics):
    """Metrics on: instruments in prometheus_client (multiprocess when the master set it up)."""

    enabled = True

    def __init__(self) -> None:
        self._i = _get_instruments()
        self._apps: list[LiveAppMetrics] = []

    def app(self, key: str) -> AppMetrics:
        app_metrics = LiveAppMetrics(self._i, key)
        self._apps.append(app_metrics)
        return app_metrics

    def flush(self) -> None:
        for app_metrics in self._apps:
            app_metrics.flush()

    def websocket_refused(self, reason: str) -> None:
        self._i.refused.labels(reason).inc()

    def page_refused(self, app: str, reason: str) -> None:
        self._i.pages_refused.labels(app, reason).inc()

    def capacity(self, max_sessions: int) -> None:
        self._i.max_sessions.set(max_sessions)

    def update_process(self) -> None:
        """This worker's memory and descriptors, from the client's standard process collector."""
        from prometheus_client import ProcessCollector

        for family in ProcessCollector(registry=None).collect():
            for sample in family.samples:
                if sample.name == "process_resident_memory_bytes":
                    self._i.memory.set(sample.value)
                elif sample.name == "process_open_fds":
                    self._i.fds.set(sample.value)

    def registry(self) -> CollectorRegistry:
        """What a scrape renders: every worker's files in multiprocess mode, else this process."""
        from prometheus_client import REGISTRY, CollectorRegistry
        from prometheus_client.multiprocess import MultiProcessCollector

        self.flush()
        self.update_process()
        if not os.environ.get(MULTIPROC_ENV):
            return REGISTRY
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # unannotated in prometheus_client
        return registry


def for_settings(enabled: bool) -> Metrics:
    return LiveMetrics() if enabled else Metrics()


# -- the gunicorn master's side ----------------------------------------------------------

def prepare_multiprocess_dir(directory: str) -> str:
    """A fresh directory for this master's workers inside the private ``directory``, unless
    the operator set one: theirs is used as it is (and left in place at exit) if it is
    private to this user, else refused. One the workers could not write to stops the start
    with a :class:`SettingsError` naming it (not a failure in every worker)."""
    existing = os.environ.get(MULTIPROC_ENV)
    try:
        if existing:
            os.makedirs(existing, mode=0o700, exist_ok=True)
            path = state_dir.ensure_private_dir(existing, MULTIPROC_ENV)
        else:
            path = tempfile.mkdtemp(prefix="metrics-", dir=directory)
        tempfile.TemporaryFile(dir=path).close()  # the workers will write files here
    except state_dir.PrivateDirError as exc:
        raise SettingsError(f"--metrics: the metrics directory {exc}") from None
    except OSError as exc:
        where = existing or f"a new directory in {directory}"
        raise SettingsError(f"--metrics: cannot write the metrics directory ({MULTIPROC_ENV}) {where}: "
                            f"{exc.strerror or exc}") from None
    if not existing:
        os.environ[MULTIPROC_ENV] = path
        os.environ[OWNED_DIR_ENV] = path
    return path


def worker_exited(pid: int) -> None:
    """Drop an exited worker's live gauges (its counters and histograms stay in the totals)."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]  # unannotated in prometheus_client


def remove_multiprocess_dir() -> None:
    """Remove the directory :func:`prepare_multiprocess_dir` made (the master is stopping)."""
    path = os.environ.get(OWNED_DIR_ENV)
    if path and path == os.environ.get(MULTIPROC_ENV):
        shutil.rmtree(path, ignore_errors=True)

