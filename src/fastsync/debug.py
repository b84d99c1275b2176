"""Lock diagnostics: lock-order checking, deadlock finding, contention profiles.

Off until enable() is called (or FASTSYNC_DEBUG is set when fastsync is
imported: a comma-separated list of ``lock-order``, ``raise``, ``profile``).

- Lock-order checking: each blocking or timed acquire of a Lock or RLock (the
  locks inside a Condition included) by a thread that holds other fastsync
  locks records the edges "held -> acquired".  An acquire that would close a
  cycle is reported before it blocks, whether or not the deadlock would have
  happened this time: LockOrderWarning, or LockOrderError (the lock is then
  not taken) with on_inversion="raise".  Each cycle is reported once.  Not
  recorded: acquire(blocking=False) (or a zero timeout), an RLock's re-entry,
  Condition.wait() retaking its lock.  A lock released by another thread is
  no longer held by the thread that took it.  The edges of a lock that is
  garbage-collected are forgotten.  A thread blocked for STALL_SECONDS on an
  actual cycle of threads reports it once (LockOrderWarning), predicted or not.
- find_deadlocks(): the cycles of threads blocked on each other's locks now.
- profile(): per lock, acquisitions, contended ones, total and longest wait.

What is watched, on each backend:

- compiled: every Lock and RLock, whenever they were created.  Each acquire
  and release tests one C flag, read with relaxed ordering, which is all that
  is paid while debugging is off.  A lock created before enable() has no
  creation site: reports name it by where it was first acquired.
- pure-Python: the fallback's Lock() is the interpreter's own lock and its
  RLock acquires in _thread's code, which fastsync can't watch.  While
  debugging is on, Lock() and RLock() return watching versions instead
  (same methods and reprs); locks created before enable(), and instances of
  user subclasses of its RLock, are not watched at all.  Off, only Lock()
  and RLock() themselves test a flag.
- A threading.Condition (not fastsync's) over a compiled fastsync Lock retakes
  the lock after wait() with a plain acquire(), which counts as a new one.

The bookkeeping is guarded by one _thread lock (a fastsync lock would watch
itself); reports are formatted and issued after it is released.
"""

from __future__ import annotations

import _thread
import atexit
import os
import sys
import threading
import time
import traceback
import warnings
import weakref
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Set, Tuple

from ._env import DEBUG as ENVIRONMENT_VARIABLE

__all__ = [
    "DeadlockedThread", "LockOrderError", "LockOrderWarning", "LockStats", "Profile",
    "STALL_SECONDS", "disable", "enable", "enabled", "find_deadlocks", "process_profile", "profile",
]


# How long a thread blocks before it looks for a cycle of blocked threads.
STALL_SECONDS = 5.0


class LockOrderWarning(RuntimeWarning):
    """Locks were taken in an order that can deadlock, or threads deadlocked."""


class LockOrderError(RuntimeError):
    """Raised instead of LockOrderWarning with on_inversion="raise"; the lock
    being acquired was not taken."""


class DeadlockedThread(NamedTuple):
    """One thread of a cycle that find_deadlocks() found."""

    thread: int              # its ident
    name: str
    waiting_for: str         # the lock's repr and creation site
    holding: List[str]       # the fastsync locks it holds, oldest first
    stack: List[str]         # formatted frames, outermost first


class LockStats(NamedTuple):
    """A profile's figures for the locks created at one site."""

    site: str
    acquisitions: int
    contended: int           # acquires that found the lock taken and waited
    total_wait: float        # seconds
    longest_wait: float      # seconds


Frame = Tuple[str, int, str]   # file, line, function


# ---------------------------------------------------------------------------
# State.  Everything below is read and changed with _guard held, except the
# switches (module globals, read by the hooks before they take it).

_guard = _thread.allocate_lock()
_tracking = False          # the backends call the hooks
_lock_order = False        # check the order of acquires
_raise = False             # report with LockOrderError
_stall_ns = 0              # see STALL_SECONDS; 0 while lock-order checking is off
_generation = 0            # changes when tracking starts: older thread states are void
_enabled = False           # by enable()
_process_profile: Optional["Profile"] = None
_profiles: List["Profile"] = []

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


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
    __slots__ = ("ident", "generation", "held", "waiting_for")

    def __init__(self, ident: int, generation: int) -> None:
        self.ident = ident
        self.generation = generation
        self.held: List[int] = []              # lock ids, oldest first
        self.waiting_for: Optional[int] = None


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


# ---------------------------------------------------------------------------
# Frames

def _outside_frame(frame: Any) -> Any:
    """The first frame from `frame` outwards that isn't fastsync's own code."""
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
    return frame


def _caller() -> Any:
    return _outside_frame(sys._getframe(2))


def _stack(frame: Any, limit: int = 64) -> Tuple[Frame, ...]:
    frames: List[Frame] = []
    while frame is not None and len(frames) < limit:
        frames.append((frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name))
        frame = frame.f_back
    frames.reverse()
    return tuple(frames)


def _site(frame: Any) -> str:
    if frame is None:
        return "(unknown site)"
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"


def _format_stack(frames: Tuple[Frame, ...], indent: str) -> List[str]:
    summary = traceback.StackSummary.from_list([(f, n, name, None) for f, n, name in frames])
    return [indent + line.rstrip("\n").replace("\n", "\n" + indent) for line in summary.format()]


def _thread_name(ident: int) -> str:
    thread = getattr(threading, "_active", {}).get(ident)   # a lookup that creates none
    return thread.name if thread is not None else "(not started by threading)"


def _thread_label(ident: int) -> str:
    return f"{_thread_name(ident)!r} ({ident})"


def _stacklevel() -> int:
    """warnings.warn's stacklevel, called from the function that warns, that
    points at the first frame outside fastsync."""
    level = 1
    frame: Any = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
        level += 1
    return level


def _describe(lock: Any, node: _Node) -> str:
    text = "a collected lock" if lock is None else repr(lock)
    return f"{text} created at {node.label()}"


# ---------------------------------------------------------------------------
# The hooks the backends call while tracking.  None of them is called with
# _guard held, and only check_order and stalled may raise.

class _Tracker:
    @property
    def stall_ns(self) -> int:
        return _stall_ns

    def created(self, lock: Any) -> None:
        if not _tracking:
            return
        site = _site(_caller())
        with _guard:
            _drain()
            _node_for(lock).site = site

    def check_order(self, lock: Any) -> None:
        """Before a blocking or timed acquire of a lock this thread doesn't hold."""
        if not _lock_order:
            return
        state = _state()
        if not state.held:
            return
        frame = _caller()
        thread = _thread_label(state.ident)
        with _guard:
            report = _record_order(state, lock, frame, thread)
        if report is not None:
            _report(report)

    def acquired(self, lock: Any) -> None:
        """After an acquire that didn't wait."""
        self._count(lock, None, True)

    def begin_wait(self, lock: Any) -> int:
        """Before a wait for the lock; returns the clock for end_wait."""
        if _tracking:
            state = _state()
            with _guard:
                _drain()
                _node_for(lock)
                state.waiting_for = id(lock)
        return time.monotonic_ns()

    def end_wait(self, lock: Any, started: int, acquired: bool) -> None:
        self._count(lock, time.monotonic_ns() - started, acquired)

    def _count(self, lock: Any, waited: Optional[int], acquired: bool) -> None:
        """After an acquire (waited: ns, None if it didn't wait)."""
        if not _tracking:
            return
        state = _state()
        frame = _caller() if _profiles else None
        with _guard:
            _drain()
            state.waiting_for = None
            node = _take(state, lock) if acquired else _node_for(lock)
            if _profiles:
                _profile_acquire(node, frame, waited, acquired)

    def released(self, lock: Any) -> None:
        """Before the release that frees the lock, by whichever thread."""
        if not _tracking:
            return
        with _guard:
            lock_id = id(lock)
            holder = _holders.pop(lock_id, None)
            if holder is not None:
                _remove_held(holder, lock_id)

    def restored(self, lock: Any) -> None:
        """After Condition.wait() (or _acquire_restore) took the lock back:
        held again, with no new order."""
        if not _tracking:
            return
        state = _state()
        with _guard:
            _drain()
            _take(state, lock)

    def stalled(self, lock: Any) -> None:
        """A thread has waited STALL_SECONDS for the lock: report the cycle of
        blocked threads it is in, once."""
        if not _lock_order:
            return
        me = _thread.get_ident()
        for cycle in _deadlocks():
            if not any(entry.thread == me for entry in cycle):
                continue
            with _guard:
                locks = tuple(sorted(_threads[e.thread].waiting_for or 0 for e in cycle
                                     if e.thread in _threads))
                key = ("deadlock", locks)
                if key in _reported:
                    continue
                _reported.add(key)
            lines = [f"fastsync: {len(cycle)} threads are deadlocked, each waiting for a lock "
                     f"the next one holds:"]
            for entry in cycle:
                lines.append(f"  thread {entry.name!r} ({entry.thread}) waits for {entry.waiting_for}")
                lines.extend("    holding " + held for held in entry.holding)
                lines.extend("    " + line for line in entry.stack)
            warnings.warn("\n".join(lines), LockOrderWarning, stacklevel=_stacklevel())

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
        stall = _stall_ns / 1e9
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
    if cycles and _raise:
        return cycles                        # not acquired: no new edges
    for held in new:
        _nodes[held].after[target_id] = _Edge(stack, thread)
        target.before.add(held)
    return cycles or None


def _report(cycles: List[Any]) -> None:
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
    if _raise:
        raise LockOrderError(message)
    warnings.warn(message, LockOrderWarning, stacklevel=_stacklevel())


# ---------------------------------------------------------------------------
# find_deadlocks

def find_deadlocks() -> List[List[DeadlockedThread]]:
    """The cycles of threads that wait, each for a fastsync lock the next one
    holds, now.  Needs debugging on (enable(), FASTSYNC_DEBUG or a profile):
    only then does fastsync know who holds what."""
    if not _tracking:
        raise RuntimeError("fastsync.debug is not enabled: call fastsync.debug.enable() "
                           f"or set {ENVIRONMENT_VARIABLE} before the locks are used")
    return _deadlocks()


def _deadlocks() -> List[List[DeadlockedThread]]:
    """find_deadlocks(), empty once debugging is off (a thread that stalled
    may ask just after disable())."""
    with _guard:
        _drain()
        waiting = {ident: state for ident, state in _threads.items() if state.waiting_for is not None}
        cycles: List[List[Tuple[int, int, List[int]]]] = []
        seen: Set[int] = set()
        for ident in waiting:
            path: List[int] = []
            on_path: Dict[int, int] = {}
            current: Optional[int] = ident
            while current is not None and current not in seen and current not in on_path:
                on_path[current] = len(path)
                path.append(current)
                lock_id = waiting[current].waiting_for if current in waiting else None
                holder = _holders.get(lock_id) if lock_id is not None else None
                current = holder.ident if holder is not None and waiting.get(holder.ident) is holder else None
            if current is not None and current in on_path:
                cycles.append([(t, waiting[t].waiting_for or 0, list(waiting[t].held))
                               for t in path[on_path[current]:]])
            seen.update(path)
        described = [[(t, _lock_and_node(w), [_lock_and_node(h) for h in held if h in _nodes])
                      for t, w, held in cycle] for cycle in cycles]
    frames = sys._current_frames()
    result = []
    for cycle in described:
        entries = []
        for ident, waited, held in cycle:
            frame = frames.get(ident)
            stack = _format_stack(_stack(_outside_frame(frame)), "") if frame is not None else []
            entries.append(DeadlockedThread(
                thread=ident, name=_thread_name(ident),
                waiting_for=_describe(*waited), holding=[_describe(*h) for h in held], stack=stack))
        result.append(entries)
    return result


def _lock_and_node(lock_id: int) -> Tuple[Any, _Node]:
    node = _nodes[lock_id]
    return node.ref(), node


# ---------------------------------------------------------------------------
# Profiles

class Profile:
    """Contention figures per lock creation site, collected while the
    profile is active (``with fastsync.debug.profile() as prof:``)."""

    def __init__(self) -> None:
        self._rows: Dict[str, List[int]] = {}    # site -> acquisitions, contended, total ns, longest ns
        self._folded: Dict[str, int] = {}        # folded waiting stack -> ns

    def __enter__(self) -> "Profile":
        _start_profile(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        _stop_profile(self)

    def stats(self) -> List[LockStats]:
        """The figures, the longest total wait first."""
        with _guard:
            rows = [(site, list(row)) for site, row in self._rows.items()]
        rows.sort(key=lambda item: (-item[1][2], item[0]))
        return [LockStats(site, acq, contended, total / 1e9, longest / 1e9)
                for site, (acq, contended, total, longest) in rows]

    def report(self) -> str:
        """A table of stats(), as text."""
        lines = [f"{'total wait ms':>14} {'longest ms':>11} {'contended':>10} {'acquired':>10}  "
                 "lock created at"]
        for row in self.stats():
            lines.append(f"{row.total_wait * 1e3:14.3f} {row.longest_wait * 1e3:11.3f} "
                         f"{row.contended:10d} {row.acquisitions:10d}  {row.site}")
        return "\n".join(lines) + "\n"

    def write_collapsed(self, path: "str | os.PathLike[str]") -> None:
        """Write the waiting call stacks, one line each with the nanoseconds
        waited there (folded stacks, as flamegraph.pl and speedscope read)."""
        with _guard:
            folded = sorted(self._folded.items())
        with open(path, "w", encoding="utf-8") as out:
            for stack, ns in folded:
                out.write(f"{stack} {ns}\n")


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


def profile() -> Profile:
    """A new profile, collecting while its with block runs."""
    return Profile()


def process_profile() -> Optional[Profile]:
    """The profile enable(profile=True) started, if on."""
    return _process_profile


def _start_profile(prof: Profile) -> None:
    with _guard:
        if prof not in _profiles:
            _profiles.append(prof)
        _apply()


def _stop_profile(prof: Profile) -> None:
    with _guard:
        if prof in _profiles:
            _profiles.remove(prof)
        _apply()


# ---------------------------------------------------------------------------
# Switching

def enable(lock_order: bool = True, on_inversion: str = "warn", profile: bool = False) -> None:
    """Start watching fastsync's locks.  lock_order: check the order of
    acquires; on_inversion: "warn" (LockOrderWarning) or "raise"
    (LockOrderError); profile: collect a process-wide profile
    (process_profile()).  Calling it again changes the settings."""
    global _enabled, _lock_order, _raise, _stall_ns, _process_profile
    if on_inversion not in ("warn", "raise"):
        raise ValueError(f"on_inversion must be 'warn' or 'raise', not {on_inversion!r}")
    with _guard:
        _enabled = True
        if not lock_order:
            _clear_order()
        _lock_order = bool(lock_order)
        _raise = on_inversion == "raise"
        _stall_ns = int(STALL_SECONDS * 1e9) if lock_order else 0
        if profile and _process_profile is None:
            _process_profile = Profile()
            _profiles.append(_process_profile)
        elif not profile and _process_profile is not None:
            _profiles.remove(_process_profile)
            _process_profile = None
        _apply()


def disable() -> None:
    """Stop lock-order checking and the process-wide profile, and forget what
    was recorded.  Profiles in a with block go on until it ends."""
    global _enabled, _lock_order, _raise, _stall_ns, _process_profile
    with _guard:
        _enabled = _lock_order = _raise = False
        _stall_ns = 0
        if _process_profile is not None:
            _profiles.remove(_process_profile)
            _process_profile = None
        _clear_order()
        _apply()


def enabled() -> bool:
    """Whether enable() (or FASTSYNC_DEBUG) is in force."""
    return _enabled


def _clear_order() -> None:
    for node in _nodes.values():
        node.after.clear()
        node.before.clear()
    _reported.clear()


def _apply() -> None:
    """With _guard held: switch the backends' hooks to match the settings."""
    global _tracking, _generation
    tracking = _enabled or bool(_profiles)
    if tracking == _tracking:
        return
    if tracking:
        _generation += 1
    else:
        _nodes.clear()
        _holders.clear()
        _threads.clear()
        _reported.clear()
        del _dead[:]
    _tracking = tracking
    for module in _backend_modules():
        module._set_debug_tracker(_TRACKER if tracking else None)


def _backend_modules() -> List[Any]:
    from ._common import BACKEND_MODULES

    return [sys.modules[name] for name in BACKEND_MODULES.values() if sys.modules.get(name) is not None]


def _attach(module: Any) -> None:
    """Called by a backend module at the end of its import."""
    with _guard:
        if _tracking:
            module._set_debug_tracker(_TRACKER)


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


def _enable_from_environment() -> None:
    words = [w.strip() for w in os.environ.get(ENVIRONMENT_VARIABLE, "").split(",") if w.strip()]
    if not words:
        return
    unknown = sorted(set(words) - {"lock-order", "raise", "profile"})
    if unknown:
        warnings.warn(f"{ENVIRONMENT_VARIABLE}: unknown words {', '.join(unknown)} (known: "
                      "lock-order, raise, profile)", RuntimeWarning, stacklevel=3)
    lock_order = "lock-order" in words or "raise" in words
    enable(lock_order=lock_order, on_inversion="raise" if "raise" in words else "warn",
           profile="profile" in words)
    if "profile" in words:
        atexit.register(_print_process_profile)


def _print_process_profile() -> None:
    if _process_profile is not None:
        sys.stderr.write("fastsync contention profile:\n" + _process_profile.report())
