"""The layers of ``app/`` and ``blueprints/`` as their package docstrings state them: no
module-level import cycle, and no module-level import a layer's rule forbids (the same
checks as ``python -m tests.support.import_graph``)."""
from __future__ import annotations

import sys

from tests.support import import_graph


def test_no_module_level_import_cycle():
    assert import_graph.cycles(import_graph.edges()) == []


def test_every_layer_keeps_its_rule():
    assert import_graph.violations(import_graph.edges()) == []


def test_the_rules_see_every_module():
    graph = import_graph.edges()
    assert {import_graph.layer(m) for m in graph} <= set(import_graph.ALLOWED)
    assert "app.sessions.server" in graph and "blueprints.websocket.ws_handler" in graph


def test_the_master_side_loads_neither_flask_nor_bokeh():
    """What the gunicorn master imports (the CLI, gunicorn's settings and hooks, the worker
    class) leaves the web stack to the workers."""
    import subprocess

    code = ("import sys, bokeh_flask.app.process.cli, bokeh_flask.app.process.gunicorn_config, "
            "bokeh_flask.app.process.worker; "
            "print(sorted(m for m in ('flask', 'bokeh', 'tornado') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stderr
