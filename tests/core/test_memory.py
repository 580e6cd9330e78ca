"""bokeh_flask.app.memory: the collector's frozen generation, rescans and arena reclaim."""
from __future__ import annotations

import gc
import sys
import weakref

from bokeh_flask.app import memory


class Node:
    pass


def cycle() -> weakref.ref:
    node = Node()
    node.self = node
    return weakref.ref(node)


def scanned(obj: object) -> bool:
    """Whether the collector's generations (not the frozen one) hold ``obj``."""
    return any(o is obj for o in gc.get_objects())


def test_survivors_of_a_full_collection_are_frozen_until_a_rescan():
    """A session's objects that lived through one full collection are not scanned by the
    next ones; a cycle among them becomes garbage for a rescan (or a reclaim) to find."""
    memory.tune_collector()
    node = Node()
    node.self = node
    ref = weakref.ref(node)
    gc.collect()
    assert not scanned(node)  # frozen: full collections no longer scan it
    del node
    gc.collect()
    assert ref() is not None
    assert memory.rescan() >= 1
    assert ref() is None


def test_thawed_shows_frozen_objects_and_freezes_them_again():
    memory.tune_collector()
    node = Node()
    gc.collect()
    assert not scanned(node)
    with memory.thawed():
        assert scanned(node)
        gc.collect()  # a collection inside the block does not freeze
        assert scanned(node)
    assert not scanned(node)


def test_rescan_waits_for_both_the_interval_and_growth(monkeypatch):
    memory.tune_collector()
    rescans: list[int] = []
    monkeypatch.setattr(memory, "rescan", lambda: rescans.append(1))
    clock = [1000.0]
    monkeypatch.setattr(memory.time, "monotonic", lambda: clock[0])
    frozen = gc.get_freeze_count()
    monkeypatch.setattr(memory, "_last_rescan", (1000.0, frozen))
    monkeypatch.setattr(memory.gc, "get_freeze_count", lambda: frozen * 2)
    clock[0] += memory.RESCAN_INTERVAL - 1
    assert not memory.rescan_if_due() and rescans == []   # grown, too soon
    clock[0] += 1
    assert memory.rescan_if_due() and rescans == [1]
    monkeypatch.setattr(memory, "_last_rescan", (clock[0], frozen * 2))
    clock[0] += 10 * memory.RESCAN_INTERVAL
    assert not memory.rescan_if_due() and rescans == [1]  # late, but not grown


def test_reclaim_arenas_frees_cycles_frozen_ones_and_method_cache_names():
    memory.tune_collector()
    old = cycle()
    gc.collect()  # frozen now
    enabled = gc.isenabled()
    gc.disable()
    try:
        young = cycle()
        # a fresh string, as C code's getattr makes: the method cache keeps a reference
        name = "".join(["no_such_", "attribute"])
        assert getattr(Node, name, None) is None
        cached = sys.getrefcount(name)
        memory.reclaim_arenas()
        assert young() is None and old() is None
        assert sys.getrefcount(name) < cached
    finally:
        if enabled:
            gc.enable()
