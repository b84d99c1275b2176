"""fastsync.debug's view of the threads blocked now, and what each waits for.

Two sources, merged: the compiled backend's own bookkeeping, kept whether
or not debugging is on (every wait of every primitive, and who holds each
Lock and RLock), and, while debugging is on, the tracker's (the locks of the
pure-Python backend too, the locks each thread holds, creation sites).
"""

from __future__ import annotations

import sys
import time
from typing import Any, Dict, List, Optional, Tuple

from .._common import BACKEND_MODULES
from . import _state as shared
from ._state import _drain, _holders, _Node, _nodes, _threads


class _Wait:
    """One thread's wait.  key: id() of the object waited for; holder: the
    thread holding it, None if it is free, held by no one in particular, or
    unknown; held: the locks the thread holds, as far as known."""

    __slots__ = ("thread", "obj", "node", "key", "since", "waited_ns", "holder", "held")

    def __init__(self, thread: int, obj: Any, node: Optional[_Node], key: int,
                 since: int, waited_ns: int, holder: Optional[int]) -> None:
        self.thread = thread
        self.obj = obj
        self.node = node
        self.key = key
        self.since = since          # when the wait began (its source's clock)
        self.waited_ns = waited_ns
        self.holder = holder
        self.held: List[Tuple[Any, Optional[_Node]]] = []

    def same(self, other: "_Wait") -> bool:
        """The same wait, with the same holder (seen at another moment)."""
        return (self.thread, self.key, self.since, self.holder) == (
            other.thread, other.key, other.since, other.holder)


# How long to wait for the tracker's guard (see _waits).
GUARD_SECONDS = 1.0


def _compiled() -> Any:
    return sys.modules.get(BACKEND_MODULES["cython"])


def _knowable() -> bool:
    """Whether anything is known of who waits for what: the compiled backend
    always keeps it, the pure-Python one only while debugging is on."""
    return _compiled() is not None or shared._tracking


def _waits() -> Dict[int, _Wait]:
    """Every thread blocked in a fastsync wait now (that fastsync can know
    of), by ident."""
    waits: Dict[int, _Wait] = {}
    compiled = _compiled()
    if compiled is not None:
        # Longest first: a thread listed twice waits in a signal handler that
        # interrupted its first wait, and is blocked on the later one.
        blocked = compiled._blocked()
        now = compiled._monotonic_ns()
        for ident, obj, since, holder in blocked:
            waits[ident] = _Wait(ident, obj, None, id(obj), since, now - since, holder)
    tracked: Dict[int, List[int]] = {}
    held: Dict[int, List[Tuple[Any, Optional[_Node]]]] = {}
    guard = shared._guard
    # A signal handler runs this in the main thread, which may have been in
    # the tracker holding the guard: then without the tracker's part.
    if shared._tracking and guard.acquire(timeout=GUARD_SECONDS):
        try:
            now = time.monotonic_ns()
            _drain()
            for ident, state in _threads.items():
                tracked[ident] = list(state.held)
                if state.waiting_for is None or ident in waits:
                    continue
                node = _nodes.get(state.waiting_for)
                holder = _holders.get(state.waiting_for)
                holder_ident = None
                if holder is not None and _threads.get(holder.ident) is holder:
                    holder_ident = holder.ident
                waits[ident] = _Wait(ident, node.ref() if node is not None else None, node,
                                     state.waiting_for, state.waiting_since,
                                     now - state.waiting_since, holder_ident)
            for wait in waits.values():
                node = _nodes.get(wait.key)
                if node is not None and node.ref() is wait.obj:
                    wait.node = node
            held = {ident: [(_nodes[i].ref(), _nodes[i]) for i in ids if i in _nodes]
                    for ident, ids in tracked.items()}
        finally:
            guard.release()
    for wait in waits.values():
        if wait.thread in tracked:
            wait.held = held[wait.thread]
    # Without the tracker, a thread is known to hold the locks others wait for.
    for wait in waits.values():
        owner = waits.get(wait.holder) if wait.holder is not None else None
        if owner is not None and owner.thread not in tracked:
            held_obj, held_node = _held_for(wait, compiled)
            if not any(lock is held_obj for lock, _ in owner.held):
                owner.held.append((held_obj, held_node))
    return waits


def _held_for(wait: _Wait, compiled: Any) -> Tuple[Any, Optional[_Node]]:
    """What the holder of wait's object holds: the object itself, except
    for an RWLock's side, whose known holder is its writer."""
    side = getattr(compiled, "_RWLockSide", None)
    if side is not None and isinstance(wait.obj, side):
        return wait.obj.rwlock.writer, None
    return wait.obj, wait.node


# How long a cycle must last to count: the records are read while threads
# run, and a thread that has just got its lock and is about to say so can
# look like part of a cycle for a moment.  A deadlock lasts.
CONFIRM_SECONDS = 0.01


def _deadlocked() -> List[List[_Wait]]:
    """The cycles of _cycles(_waits()) that are there again, with the same
    waits, after CONFIRM_SECONDS (the GIL released meanwhile)."""
    first = _waits()
    if not _cycles(first):
        return []
    time.sleep(CONFIRM_SECONDS)
    again = _waits()
    return [cycle for cycle in _cycles(again)
            if all(wait.thread in first and first[wait.thread].same(wait) for wait in cycle)]


def _cycles(waits: Dict[int, _Wait]) -> List[List[_Wait]]:
    """The cycles of threads each waiting for what the next one holds."""
    cycles: List[List[_Wait]] = []
    seen: set = set()
    for ident in waits:
        path: List[int] = []
        on_path: Dict[int, int] = {}
        current: Optional[int] = ident
        while current is not None and current not in seen and current not in on_path:
            on_path[current] = len(path)
            path.append(current)
            holder = waits[current].holder
            current = holder if holder in waits else None
        if current is not None and current in on_path:
            cycles.append([waits[t] for t in path[on_path[current]:]])
        seen.update(path)
    return cycles
