"""gunicorn options for many open sessions: worker_connections and the open-files limit.

Each open session holds a websocket, so a worker holding 10,000 sessions needs more than
10,000 connections and file descriptors. The limit is checked in a child process: lowering
the test process's own limit could starve the rest of the suite of descriptors.
"""
from __future__ import annotations

import json
import resource
import subprocess
import sys
import textwrap

from gunicorn.config import Config

from bokeh_flask.app.process.gunicorn_config import SPARE_FILE_DESCRIPTORS, gunicorn_options

CHILD = textwrap.dedent("""
    import json, logging, resource, sys, types
    from gunicorn.config import Config
    from bokeh_flask.app.process.gunicorn_config import gunicorn_options

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if len(sys.argv) > 2:
        hard = int(sys.argv[2])
    resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[1]), hard))
    cfg = Config()
    for key, value in gunicorn_options().items():
        cfg.set(key, value)
    if len(sys.argv) > 3:
        cfg.set("worker_connections", int(sys.argv[3]))
    warnings = []

    class Log:
        def warning(self, msg, *args):
            warnings.append(msg % args)

    cfg.on_starting(types.SimpleNamespace(cfg=cfg, log=Log(), LISTENERS=['bound']))
    print(json.dumps({"soft": resource.getrlimit(resource.RLIMIT_NOFILE)[0], "hard": hard,
                      "warnings": warnings, "worker_connections": cfg.worker_connections}))
""")


def run_hook(soft: int, hard: int | None = None, worker_connections: int | None = None) -> dict:
    args = [str(soft)] + ([str(hard)] if hard is not None else [])
    args += [str(worker_connections)] if worker_connections is not None else []
    done = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True,
                          text=True, timeout=60, check=True)
    return json.loads(done.stdout)


def test_options_hold_ten_thousand_sessions_and_gunicorn_accepts_them():
    options = gunicorn_options()
    assert options["worker_connections"] > 10_000
    cfg = Config()
    for key, value in options.items():
        cfg.set(key, value)
    assert cfg.worker_connections == options["worker_connections"]
    assert cfg.on_starting is options["on_starting"]


def test_on_starting_raises_the_soft_limit_to_the_hard_limit():
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    result = run_hook(256)
    assert result["soft"] > 256
    if hard != resource.RLIM_INFINITY:
        assert result["soft"] == hard
    needed = gunicorn_options()["worker_connections"] + SPARE_FILE_DESCRIPTORS
    if result["soft"] < needed:  # capped to what the descriptors allow, quietly: plenty
        assert result["worker_connections"] == result["soft"] - SPARE_FILE_DESCRIPTORS
    assert result["warnings"] == []


def test_a_hard_limit_too_low_to_matter_caps_the_pool_and_says_so():
    result = run_hook(1000, hard=1000)
    assert result["soft"] == 1000
    assert result["worker_connections"] == 1000 - SPARE_FILE_DESCRIPTORS
    assert len(result["warnings"]) == 1
    assert "open-files limit 1000 lets each worker hold only about 900 connections" in result["warnings"][0]


def test_a_pool_size_the_operator_chose_is_kept_with_a_warning():
    result = run_hook(1000, hard=1000, worker_connections=5000)
    assert result["worker_connections"] == 5000
    assert len(result["warnings"]) == 1
    assert "open-files limit 1000 is below worker_connections 5000" in result["warnings"][0]
