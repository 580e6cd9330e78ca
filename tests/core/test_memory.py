"""bokeh_flask.app.runtime.memory: the collector's frozen generation, rescans and arena reclaim."""
from __future__ import annotations

import gc
import sys
import weakref

from bokeh_flask.app.runtime import memory


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


def test_rescan_is_due_once_memory_grew_at_a_burst_or_after_the_interval(monkeypatch):
    memory.tune_collector()
    clock, blocks = [1000.0], [100_000]
    monkeypatch.setattr(memory.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(memory.sys, "getallocatedblocks", lambda: blocks[0])
    monkeypatch.setattr(memory, "_last_rescan", (1000.0, 100_000))
    blocks[0] = 124_000  # not grown enough
    clock[0] += 10 * memory.RESCAN_INTERVAL
    assert not memory.rescan_due(after_discards=True) and not memory.rescan_due(after_discards=False)
    blocks[0] = 125_000
    assert memory.rescan_due(after_discards=True) and memory.rescan_due(after_discards=False)
    clock[0] = 1000.0 + memory.RESCAN_INTERVAL - 1  # grown, too soon without a burst
    assert memory.rescan_due(after_discards=True) and not memory.rescan_due(after_discards=False)


def test_rescan_starts_counting_growth_again(monkeypatch):
    memory.tune_collector()
    monkeypatch.setattr(memory.sys, "getallocatedblocks", lambda: 500_000)
    monkeypatch.setattr(memory, "_last_rescan", (0.0, 100_000))
    assert memory.rescan_due(after_discards=True)
    memory.rescan()
    assert memory._last_rescan[1] == 500_000 and not memory.rescan_due(after_discards=True)


def test_reclaim_arenas_frees_cycles_frozen_ones_and_method_cache_names():
    memory.tune_collector()
    node = Node()
    node.self = node
    old = weakref.ref(node)
    gc.collect()  # frozen now
    del node
    enabled = gc.isenabled()
    gc.disable()
    try:
        young = cycle()
        # a fresh string, as C code's getattr makes: the method cache keeps a reference
        name = "".join(["no_such_", "attribute"])
        assert getattr(Node, name, None) is None
        cached = sys.getrefcount(name)
        memory.reclaim_arenas(rescan_frozen=False)
        assert young() is None and old() is not None  # only what is not frozen
        memory.reclaim_arenas()
        assert old() is None
        assert sys.getrefcount(name) < cached
    finally:
        if enabled:
            gc.enable()
