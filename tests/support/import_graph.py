"""The import graph of bokeh-flask's own modules, and the layer rules it must keep.

``python -m tests.support.import_graph`` (from the checkout) prints, for each package, the
packages its modules import at module level, then any module-level import cycle and any
import a package's rule forbids; it exits 1 when there is one. ``tests/core/test_layers.py``
runs the same checks. Imports inside functions (done at call time, after every module has
loaded) and under ``TYPE_CHECKING`` are not edges: they cannot make a cycle at import time.
"""
from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Where each installed package lives in the checkout.
PACKAGES = {"bokeh_flask.app": ROOT / "app", "bokeh_flask.blueprints": ROOT / "blueprints"}

#: What each layer may import at module level (besides itself), from the package docstrings.
ALLOWED: dict[str, set[str]] = {
    "app.config": set(),
    "app.runtime": {"app.config"},
    "app.apps": {"app.config", "app.runtime", "app.sessions.errors", "app.sessions.requests"},
    "app.auth": {"app.config", "app.runtime", "app.sessions.errors", "app.sessions.requests"},
    "app.sessions": {"app.config", "app.runtime", "app.apps", "app.auth"},
    "app.process": {"app.config", "app.runtime", "app.apps", "app.auth"},
    "app": {"app"},
    "blueprints": {"app", "blueprints"},
}


def modules() -> dict[str, Path]:
    """Every module, by its name relative to ``bokeh_flask`` (``app.sessions.server``)."""
    found = {}
    for package, folder in PACKAGES.items():
        short = package.removeprefix("bokeh_flask.")
        for path in sorted(folder.rglob("*.py")):
            parts = path.relative_to(folder).with_suffix("").parts
            name = ".".join((short, *parts)).removesuffix(".__init__")
            found[name] = path
    return found


def _module_level(tree: ast.Module) -> list[ast.stmt]:
    """Top-level statements, into ``if``/``try`` blocks but not ``if TYPE_CHECKING``."""
    out: list[ast.stmt] = []
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            out += node.orelse
        elif isinstance(node, (ast.If, ast.Try)):
            out += [n for block in (node.body, getattr(node, "orelse", []), getattr(node, "finalbody", []))
                    for n in block]
            out += [n for handler in getattr(node, "handlers", []) for n in handler.body]
        else:
            out.append(node)
    return out


def edges() -> dict[str, set[str]]:
    """Module -> the modules of ours it imports at module level."""
    known = modules()
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        is_package = path.name == "__init__.py"
        base = name.split(".") if is_package else name.split(".")[:-1]
        targets: set[str] = set()
        for node in _module_level(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    anchor = base[: len(base) - node.level + 1]
                    target = ".".join(anchor + ([node.module] if node.module else []))
                elif (node.module or "").startswith("bokeh_flask."):
                    target = node.module.removeprefix("bokeh_flask.")
                else:
                    continue
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    targets.add(sub if sub in known else target)
            elif isinstance(node, ast.Import):
                targets.update(a.name.removeprefix("bokeh_flask.") for a in node.names
                               if a.name.startswith("bokeh_flask."))
        graph[name] = {t for t in targets if t in known and t != name}
    return graph


#: Old paths kept for gunicorn configurations: each re-exports its new home.
SHIMS = {"app.settings", "app.gunicorn_config", "app.worker"}


def layer(module: str) -> str:
    parts = module.split(".")
    if module in SHIMS:
        return "app"
    return ".".join(parts[:2]) if parts[0] == "app" else parts[0]


def violations(graph: dict[str, set[str]]) -> list[str]:
    """Imports a layer's rule forbids."""
    found = []
    for module, targets in graph.items():
        own = layer(module)
        allowed = ALLOWED.get(own, set())
        for target in targets:
            if layer(target) == own or target == "app":
                continue
            if not any(target == a or target.startswith(a + ".") for a in allowed):
                rule = ", ".join(sorted(allowed)) or "nothing of ours"
                found.append(f"{module} -> {target} ({own} may import {rule})")
    return sorted(found)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Module-level import cycles (each as the list of modules around it)."""
    found: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                found.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def main() -> int:
    graph = edges()
    by_layer: dict[str, set[str]] = defaultdict(set)
    for module, targets in graph.items():
        by_layer[layer(module)].update(layer(t) for t in targets if layer(t) != layer(module))
    for name in sorted(by_layer):
        print(f"{name:16} -> {', '.join(sorted(by_layer[name])) or '(nothing of ours)'}")
    problems = [f"cycle: {' -> '.join(c)}" for c in cycles(graph)] + violations(graph)
    for problem in problems:
        print(problem)
    print(f"{len(graph)} modules, {sum(map(len, graph.values()))} module-level imports, "
          f"{len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
