"""fastsync.debug's state: the switches, the lock graph and each thread's
state.

Everything below is read and changed with _guard held, except the switches
(read by the hooks before they take it).  The names that are rebound (the
switches, _generation, and _guard after a fork) are read and set as
attributes of this module by the other _debug modules; the containers are
never rebound, so they can be imported by name.
"""

from __future__ import annotations

import _thread
import os
import weakref
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Set, Tuple

from ._frames import Frame

if TYPE_CHECKING:
    from . import Profile

_guard = _thread.allocate_lock()
_tracking = False          # the backends call the hooks
_lock_order = False        # check the order of acquires
_raise = False             # report with LockOrderError
_stall_ns = 0              # see STALL_SECONDS; 0 while lock-order checking is off
_generation = 0            # changes when tracking starts: older thread states are void
_enabled = False           # by enable()
_process_profile: Optional[Profile] = None
_profiles: List[Profile] = []


class _LockRef(weakref.ref):
    __slots__ = ("lock_id",)
    lock_id: int


class _Edge:
    """First time a lock was acquired while another was held."""

    __slots__ = ("stack", "thread")

    def __init__(self, stack: Tuple[Frame, ...], thread: str) -> None:
        self.stack = stack
        self.thread = thread


class _Node:
    __slots__ = ("ref", "site", "first_use", "after", "before")

    def __init__(self, ref: _LockRef) -> None:
        self.ref = ref
        self.site: Optional[str] = None        # file:line where it was created
        self.first_use: Optional[str] = None   # where first acquired, if site is unknown
        self.after: Dict[int, _Edge] = {}      # locks taken while this one was held
        self.before: Set[int] = set()          # locks held while this one was taken

    def label(self) -> str:
        if self.site is not None:
            return self.site
        if self.first_use is not None:
            return f"{self.first_use} (first acquired here; created before debugging began)"
        return "(created before debugging began)"


class _ThreadState:
    __slots__ = ("ident", "generation", "held", "waiting_for", "waiting_since")

    def __init__(self, ident: int, generation: int) -> None:
        self.ident = ident
        self.generation = generation
        self.held: List[int] = []              # lock ids, oldest first
        self.waiting_for: Optional[int] = None
        self.waiting_since = 0                 # time.monotonic_ns() when that wait began


_nodes: Dict[int, _Node] = {}                  # by id(lock)
_holders: Dict[int, _ThreadState] = {}         # lock id -> the thread that took it
_threads: Dict[int, _ThreadState] = {}         # by ident, for find_deadlocks
_reported: Set[Tuple[Any, ...]] = set()        # cycles already reported
_dead: List[_LockRef] = []                     # refs of collected locks, not yet forgotten
_local = _thread._local()


def _state() -> _ThreadState:
    """This thread's state; call without _guard held."""
    state = getattr(_local, "state", None)
    if state is None or state.generation != _generation:
        # A new thread, or tracking restarted: what it held before is unknown.
        # Registering replaces the state of an ended thread with the same ident.
        state = _ThreadState(_thread.get_ident(), _generation)
        _local.state = state
        with _guard:
            _threads[state.ident] = state
    return state


def _drain() -> None:
    """Forget the locks collected since the last call (their weakref
    callbacks only queue them: a callback can run while _guard is held)."""
    while _dead:
        ref = _dead.pop()
        node = _nodes.get(ref.lock_id)
        if node is not None and node.ref is ref:
            _forget(ref.lock_id, node)


def _forget(lock_id: int, node: _Node) -> None:
    del _nodes[lock_id]
    for other in node.after:
        _nodes[other].before.discard(lock_id)
    for other in node.before:
        _nodes[other].after.pop(lock_id, None)
    holder = _holders.pop(lock_id, None)
    if holder is not None:
        _remove_held(holder, lock_id)
    stale = [key for key in _reported if lock_id in key[1]]
    _reported.difference_update(stale)


def _node_for(lock: Any) -> _Node:
    lock_id = id(lock)
    node = _nodes.get(lock_id)
    if node is not None:
        if node.ref() is lock:
            return node
        _forget(lock_id, node)   # an earlier lock at the same address
    ref = _LockRef(lock, _dead.append)
    ref.lock_id = lock_id
    node = _nodes[lock_id] = _Node(ref)
    return node


def _remove_held(state: _ThreadState, lock_id: int) -> None:
    held = state.held
    for index in range(len(held) - 1, -1, -1):
        if held[index] == lock_id:
            del held[index]
            return


def _take(state: _ThreadState, lock: Any) -> _Node:
    node = _node_for(lock)
    lock_id = id(lock)
    state.held.append(lock_id)
    _holders[lock_id] = state
    return node


def _after_fork_in_child() -> None:
    # Only the forking thread lives on; _guard may have been held by another.
    global _guard
    _guard = _thread.allocate_lock()
    me = _thread.get_ident()
    for ident, state in list(_threads.items()):
        if ident != me:
            del _threads[ident]
            for lock_id in state.held:
                if _holders.get(lock_id) is state:
                    del _holders[lock_id]
    for state in _threads.values():
        state.waiting_for = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

