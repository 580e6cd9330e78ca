"""The worker process's machinery: the asyncio loop on the gevent hub (:mod:`.asyncio_loop`),
timers (:mod:`.periodic`), memory (:mod:`.memory`), Prometheus metrics (:mod:`.metrics`),
the stats files of ``--admin`` (:mod:`.worker_stats`), and which worker of a host owns a
session (:mod:`.handover`).

May import :mod:`bokeh_flask.app.config`; gevent, never Flask or Bokeh. The master uses
``metrics``, ``worker_stats`` and ``handover`` too, so none of them imports gevent at
module level.
"""
