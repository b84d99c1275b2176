"""Who is compared: fastsync's two backends, threading, fastrlock and the floor.

Each implementation maps a kind ("Lock", "Event", ..., "Queue") to a
constructor.  The fastsync backends' classes are looked up by name, so a
primitive a backend doesn't have yet is simply absent, and benchmarked as soon
as it exists, without touching this file.
"""

from __future__ import annotations

import importlib
import os
import queue
import threading
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

from .cases import Case, NativeHandoffs

# Every kind a case may ask for, by its name in threading.
KINDS = ("Lock", "RLock", "Event", "Condition", "Semaphore", "BoundedSemaphore", "Barrier")
# fastsync's own kinds, which threading lacks: threading's column is what
# users do without them.
EXTRA_KINDS = ("RWLock",)

BASELINE = "threading"
FLOOR = "floor"
# Set by --patched, for the worker processes too: adds the classes that
# fastsync.patch() installs in threading for its Python classes.
PATCHED_VARIABLE = "FASTSYNC_BENCH_PATCHED"


def fastsync_backends() -> Dict[str, str]:
    """fastsync's backends, each name with its module: the package's own map.

    Read when asked, not when bench is imported, so that --list and the
    "cannot import fastsync" message still work where fastsync is missing."""
    from fastsync._common import BACKEND_MODULES

    return BACKEND_MODULES


@dataclass(frozen=True)
class Implementation:
    name: str     # id: JSON keys and column order
    label: str    # column header
    constructors: Dict[str, Callable] = field(default_factory=dict)
    # The floor: _CallFloor for single-thread calls, NativeHandoffs for the
    # cases that hand off between threads, nothing for the other thread cases.
    native_handoffs: Optional[NativeHandoffs] = None

    @property
    def is_floor(self) -> bool:
        return self.name == FLOOR

    def constructor_for(self, case: Case) -> Optional[Callable]:
        if self.is_floor and not case.uncontended:
            # The native floor's C threads go where the scheduler puts them.
            return self.native_handoffs if case.handoffs and case.placement is None else None
        return self.constructors.get(case.kind)


def discover() -> Tuple[List[Implementation], List[str]]:
    """The implementations importable here, and a note for each one missing."""
    found: List[Implementation] = []
    notes: List[str] = []
    found.append(Implementation(BASELINE, "threading", _threading_constructors()))
    for name, module_name in fastsync_backends().items():
        label = f"fastsync ({name})"
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            notes.append(f"{label}: not available ({error})")
            continue
        constructors = {kind: getattr(module, kind) for kind in KINDS + EXTRA_KINDS
                        if hasattr(module, kind)}
        queue_constructor, why_not = patched_queue(name)
        if queue_constructor is None:
            notes.append(f"{label} in queue.Queue: {why_not}")
        else:
            constructors["Queue"] = queue_constructor
        found.append(Implementation(name, label, constructors))
    try:
        from fastrlock.rlock import FastRLock
    except ImportError:
        notes.append("fastrlock: not installed (pip install fastrlock to compare RLock with it)")
    else:
        found.append(Implementation("fastrlock", "fastrlock", {"RLock": FastRLock}))
    if os.environ.get(PATCHED_VARIABLE):
        found.append(patched_classes())
    try:
        from readerwriterlock import rwlock
    except ImportError:
        notes.append("readerwriterlock: not installed (pip install readerwriterlock to compare "
                     "RWLock with its fair lock)")
    else:
        found.append(Implementation("readerwriterlock", "readerwriterlock (fair)",
                                    {"RWLock": _sides_of(rwlock.RWLockFair)}))
    floor, why_not = bench_floor()
    if floor is None:
        notes.append(f"floor: {why_not}")
    else:
        found.append(floor)
    return found, notes


def patched_classes() -> Implementation:
    """What threading.Event() and the others make while fastsync.patch() is
    on, where threading's class is a Python class: a subclass of fastsync's
    whose attributes can be set (see fastsync._patch)."""
    import fastsync
    from fastsync._patch import PYTHON_CLASS_NAMES

    with fastsync.patched():
        constructors = {kind: getattr(threading, kind) for kind in PYTHON_CLASS_NAMES}
    return Implementation("patched", f"patch() ({fastsync.BACKEND})", constructors)


# How to get the floor where it is missing; the Makefile's test and bench
# targets set the switch.
BUILD_FLOOR_HINT = "reinstall fastsync with FASTSYNC_BENCH_FLOOR=1 set (as `make bench` does) to build it"


def bench_floor() -> Tuple[Optional[Implementation], str]:
    """The floor, from the extension setup.py builds for the benchmark, or
    None and why it is missing."""
    try:
        from fastsync import _compiled
    except ImportError:
        return None, "needs the compiled backend"
    try:
        from fastsync import _bench_floor
    except ImportError as error:
        return None, f"not built ({error}); {BUILD_FLOOR_HINT}"
    floors = {kind: _bench_floor._CallFloor for kind in KINDS}
    # Semaphore.release takes n: its floor must parse an argument too.
    floors.update(Semaphore=_bench_floor._SemaphoreCallFloor,
                  BoundedSemaphore=_bench_floor._SemaphoreCallFloor)
    spin_ns = _compiled._spin_ns()   # the floor's threads spin as fastsync's do

    def native_handoffs(count: int) -> int:
        return _bench_floor._native_handoffs(count, spin_ns)

    return Implementation(FLOOR, "floor", floors, native_handoffs=NativeHandoffs(native_handoffs)), ""


def _threading_constructors() -> Dict[str, Callable]:
    constructors = {kind: getattr(threading, kind) for kind in KINDS}
    constructors["Queue"] = queue.Queue
    constructors["RWLock"] = _LockForBothSides
    return constructors


class _LockForBothSides:
    """Without a readers-writer lock, one threading.Lock serves readers and
    writers alike."""

    __slots__ = ("reader", "writer")

    def __init__(self) -> None:
        self.reader = self.writer = threading.Lock()


def _sides_of(make_rwlock: Callable) -> Callable:
    """readerwriterlock's lock with a reader and a writer attribute, as
    fastsync's.  Its lock objects record their own state, so each thread
    needs its own: made at a thread's first use, then kept."""
    class Sides:
        __slots__ = ("_rw", "_mine")

        def __init__(self) -> None:
            self._rw = make_rwlock()
            self._mine = threading.local()

        def _own(self) -> threading.local:
            mine = self._mine
            if not hasattr(mine, "reader"):
                mine.reader, mine.writer = self._rw.gen_rlock(), self._rw.gen_wlock()
            return mine

        @property
        def reader(self):  # type: ignore[no-untyped-def]
            return self._own().reader

        @property
        def writer(self):  # type: ignore[no-untyped-def]
            return self._own().writer

    return Sides


# ---------------------------------------------------------------------------
# queue.Queue, through fastsync.patch()

def patched_queue(backend: str) -> Tuple[Optional[Callable], str]:
    """A constructor of queue.Queue running on fastsync, or None and why not.

    queue.Queue builds its Lock and Conditions through the threading module,
    which only fastsync.patch() changes, and only to the default backend."""
    import fastsync

    if not hasattr(fastsync, "patched"):
        return None, "fastsync.patch() doesn't exist yet"
    if backend != fastsync.BACKEND:
        return None, f"fastsync.patch() installs the default backend ({fastsync.BACKEND}) only"

    def make_queue(maxsize: int = 0) -> queue.Queue:
        with fastsync.patched():
            return queue.Queue(maxsize)   # keeps fastsync's primitives once unpatched

    return make_queue, ""


def why_missing(kind: str) -> str:
    """Why no fastsync backend takes part in cases of this kind."""
    if kind == "Queue":
        return "queue.Queue runs on threading's own primitives until fastsync.patch() exists"
    return f"fastsync has no {kind} yet"
