"""fastsync.debug's tracker: the hooks the backends call while debugging is
on, lock-order checking and its reports, the profiles' counts, and
switching the hooks on and off."""

from __future__ import annotations

import _thread
import sys
import time
import warnings
from typing import Any, Callable, Dict, List, Optional

from . import _state as shared
from ._deadlocks import _deadlock_cycles
from ._frames import (
    _caller, _cycle_lines, _describe, _format_stack, _site, _stack, _stacklevel, _thread_label,
)
from ._state import (
    _dead, _drain, _Edge, _holders, _Node, _node_for, _nodes, _profiles, _remove_held,
    _reported, _state, _take, _ThreadState, _threads,
)


# The hooks the backends call while tracking.  None of them is called with
# _guard held, and only check_order and stalled may raise.

class _Tracker:
    @property
    def stall_ns(self) -> int:
        return shared._stall_ns

    def created(self, lock: Any) -> None:
        if not shared._tracking:
            return
        site = _site(_caller())
        with shared._guard:
            _drain()
            _node_for(lock).site = site

    def check_order(self, lock: Any) -> None:
        """Before a blocking or timed acquire of a lock this thread doesn't hold."""
        if not shared._lock_order:
            return
        state = _state()
        if not state.held:
            return
        frame = _caller()
        thread = _thread_label(state.ident)
        with shared._guard:
            report = _record_order(state, lock, frame, thread)
        if report is not None:
            _report(report)

    def acquired(self, lock: Any) -> None:
        """After an acquire that didn't wait."""
        self._count(lock, None, True)

    def begin_wait(self, lock: Any) -> int:
        """Before a wait for the lock; returns the clock for end_wait."""
        started = time.monotonic_ns()
        if shared._tracking:
            state = _state()
            with shared._guard:
                _drain()
                _node_for(lock)
                state.waiting_for = id(lock)
                state.waiting_since = started
        return started

    def end_wait(self, lock: Any, started: int, acquired: bool) -> None:
        self._count(lock, time.monotonic_ns() - started, acquired)

    def _count(self, lock: Any, waited: Optional[int], acquired: bool) -> None:
        """After an acquire (waited: ns, None if it didn't wait)."""
        if not shared._tracking:
            return
        state = _state()
        frame = _caller() if _profiles else None
        with shared._guard:
            _drain()
            state.waiting_for = None
            node = _take(state, lock) if acquired else _node_for(lock)
            if _profiles:
                _profile_acquire(node, frame, waited, acquired)

    def released(self, lock: Any) -> None:
        """Before the release that frees the lock, by whichever thread."""
        if not shared._tracking:
            return
        with shared._guard:
            lock_id = id(lock)
            holder = _holders.pop(lock_id, None)
            if holder is not None:
                _remove_held(holder, lock_id)

    def released_here(self, lock: Any) -> None:
        """Before this thread's last release of a lock several threads may
        hold at once (an RWLock's reader side): only this thread stops
        holding it."""
        if not shared._tracking:
            return
        state = _state()
        with shared._guard:
            lock_id = id(lock)
            _remove_held(state, lock_id)
            if _holders.get(lock_id) is state:
                del _holders[lock_id]

    def restored(self, lock: Any) -> None:
        """After Condition.wait() (or _acquire_restore) took the lock back:
        held again, with no new order."""
        if not shared._tracking:
            return
        state = _state()
        with shared._guard:
            _drain()
            _take(state, lock)

    def stalled(self, lock: Any) -> None:
        """A thread has waited STALL_SECONDS for the lock: report the cycle of
        blocked threads it is in, once."""
        if not shared._lock_order:
            return
        me = _thread.get_ident()
        # The key comes from the moment the cycle was found: read again now, a
        # thread the cycle has just let go would make it look like another.
        for locks, cycle in _deadlock_cycles():
            if not any(entry.thread == me for entry in cycle):
                continue
            with shared._guard:
                key = ("deadlock", locks)
                if key in _reported:
                    continue
                _reported.add(key)
            from . import LockOrderWarning   # late: fastsync.debug imports this module

            warnings.warn("\n".join(_cycle_lines(cycle, stacks=True)), LockOrderWarning,
                          stacklevel=_stacklevel())

    def acquire(self, lock: Any, acquire: Callable[..., bool], blocking: Any, timeout: Any) -> bool:
        """acquire(blocking, timeout) of the pure-Python backend's watching
        locks (first level of an RLock); `acquire` is the plain lock's."""
        waits = _waits(blocking, timeout)
        if waits:
            self.check_order(lock)
        if acquire(False):
            self.acquired(lock)
            return True
        if not waits:
            return False
        started = self.begin_wait(lock)
        got = False
        try:
            got = self._block(lock, acquire, -1 if timeout == -1 else float(timeout))
        finally:
            self.end_wait(lock, started, got)
        return got

    def _block(self, lock: Any, acquire: Callable[..., bool], timeout: float) -> bool:
        """Wait for the lock, asking every STALL_SECONDS whether this thread
        is in a deadlock (as the compiled backend's debug_block does)."""
        stall = shared._stall_ns / 1e9
        if not stall:
            return acquire(True, timeout)
        deadline = None if timeout < 0 else time.monotonic() + timeout
        while True:
            step = stall
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= stall:
                    return acquire(True, max(left, 0))
            if acquire(True, step):
                return True
            self.stalled(lock)


_TRACKER = _Tracker()


def _waits(blocking: Any, timeout: Any) -> bool:
    """Whether acquire(blocking, timeout) may wait; raises what threading's
    acquire raises for arguments it refuses, before anything is recorded."""
    if not ((blocking is True or blocking is False) and (timeout == -1 and type(timeout) in (int, float))):
        probe = _thread.allocate_lock()
        if probe.acquire(blocking, timeout):   # never waits: the lock is new
            probe.release()
    return bool(blocking) and timeout != 0


def _record_order(state: _ThreadState, lock: Any, frame: Any, thread: str) -> Optional[List[Any]]:
    """With _guard held: add the edges held -> lock; returns the data of the
    cycles they close that were not reported before, or None."""
    _drain()
    target = _node_for(lock)
    target_id = id(lock)
    new = [held for held in dict.fromkeys(state.held)
           if held != target_id and held in _nodes and target_id not in _nodes[held].after]
    if not new:
        return None
    # Every lock reachable from the one being acquired, with the step that
    # reached it first: a held lock among them closes a cycle.
    came_from: Dict[int, int] = {target_id: target_id}
    frontier = [target_id]
    while frontier:
        following = []
        for lock_id in frontier:
            for other in _nodes[lock_id].after:
                if other not in came_from:
                    came_from[other] = lock_id
                    following.append(other)
        frontier = following
    stack = _stack(frame)
    cycles = []
    for held in new:
        if held not in came_from:
            continue
        path = [held]
        while path[-1] != target_id:
            path.append(came_from[path[-1]])
        path.reverse()                       # target ... held; then held -> target
        start = path.index(min(path))
        key = ("order", tuple(path[start:] + path[:start]))
        if key in _reported:
            continue
        _reported.add(key)
        locks = [(_nodes[i].ref(), _nodes[i]) for i in path]
        edges = [_nodes[a].after[b] for a, b in zip(path[:-1], path[1:], strict=True)]
        edges.append(_Edge(stack, thread))
        cycles.append((locks, edges))
    if cycles and shared._raise:
        return cycles                        # not acquired: no new edges
    for held in new:
        _nodes[held].after[target_id] = _Edge(stack, thread)
        target.before.add(held)
    return cycles or None


def _report(cycles: List[Any]) -> None:
    from . import LockOrderError, LockOrderWarning   # late: fastsync.debug imports this module

    lines = []
    for locks, edges in cycles:
        acquiring, holding = locks[0], locks[-1]
        lines.append(f"fastsync: lock-order inversion, a possible deadlock: acquiring "
                     f"{_describe(*acquiring)} while holding {_describe(*holding)} closes a "
                     f"cycle of {len(locks)} locks:")
        for index, (lock, node) in enumerate(locks, 1):
            lines.append(f"  lock {index}: {_describe(lock, node)}")
        for index, edge in enumerate(edges):
            first, then = index + 1, (index + 1) % len(locks) + 1
            seen = "now" if index == len(edges) - 1 else "first"
            lines.append(f"  lock {first} held while acquiring lock {then}: {seen} in thread "
                         f"{edge.thread}, at:")
            lines.extend(_format_stack(edge.stack, "    "))
    message = "\n".join(lines)
    if shared._raise:
        raise LockOrderError(message)
    warnings.warn(message, LockOrderWarning, stacklevel=_stacklevel())


def _profile_acquire(node: _Node, frame: Any, waited: Optional[int], acquired: bool) -> None:
    """With _guard held: count an acquire (waited: ns, or None if it didn't wait)."""
    if node.site is None and node.first_use is None and frame is not None:
        node.first_use = _site(frame)
    label = node.label()
    folded = ""
    if waited is not None:
        parts = [f"{name} ({file}:{line})".replace(";", ",") for file, line, name in _stack(frame)]
        parts.append(f"waiting for the lock created at {label}".replace(";", ","))
        folded = ";".join(parts)
    for prof in _profiles:
        row = prof._rows.get(label)
        if row is None:
            row = prof._rows[label] = [0, 0, 0, 0]
        if acquired:
            row[0] += 1
        if waited is not None:
            row[1] += 1
            row[2] += waited
            row[3] = max(row[3], waited)
            prof._folded[folded] = prof._folded.get(folded, 0) + waited


def _apply() -> None:
    """With _guard held: switch the backends' hooks to match the settings."""
    tracking = shared._enabled or bool(_profiles)
    if tracking == shared._tracking:
        return
    if tracking:
        shared._generation += 1
    else:
        _nodes.clear()
        _holders.clear()
        _threads.clear()
        _reported.clear()
        del _dead[:]
    shared._tracking = tracking
    for module in _backend_modules():
        module._set_debug_tracker(_TRACKER if tracking else None)


def _backend_modules() -> List[Any]:
    from .._common import BACKEND_MODULES

    return [sys.modules[name] for name in BACKEND_MODULES.values() if sys.modules.get(name) is not None]


def _attach(module: Any) -> None:
    """Called by a backend module at the end of its import."""
    with shared._guard:
        if shared._tracking:
            module._set_debug_tracker(_TRACKER)
