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

import atexit
import os
import sys
import warnings
from typing import Dict, List, NamedTuple, Optional

from . import _debug_state as shared
from ._debug_deadlocks import _deadlocks
from ._debug_state import _nodes, _profiles, _reported
from ._debug_tracker import _apply
from ._debug_tracker import _attach as _attach  # the backends call fastsync.debug._attach
from ._env import DEBUG as ENVIRONMENT_VARIABLE

__all__ = [
    "DeadlockedThread", "LockOrderError", "LockOrderWarning", "LockStats", "Profile",
    "STALL_SECONDS", "disable", "enable", "enabled", "find_deadlocks", "process_profile", "profile",
]

# The machinery lives in private modules: _debug_state (the switches, the
# lock graph, each thread's state), _debug_frames (frames and report text),
# _debug_tracker (the backends' hooks, lock-order reports, profile counts)
# and _debug_deadlocks.  This module defines the public names (their source
# here is what the docs and inspect read) and the settings; the private
# modules import the public classes from it when they need them.

# How long a thread blocks before it looks for a cycle of blocked threads.
STALL_SECONDS = 5.0


class LockOrderWarning(RuntimeWarning):
    """Locks were taken in an order that can deadlock, or threads deadlocked."""


class LockOrderError(RuntimeError):
    """Raised instead of LockOrderWarning with on_inversion="raise"; the lock
    being acquired was not taken."""


class DeadlockedThread(NamedTuple):
    """One thread of a cycle that find_deadlocks() found."""

    thread: int              #: The thread's ident.
    name: str                #: The thread's name.
    waiting_for: str         #: The lock it waits for: its repr and where it was created.
    holding: List[str]       #: The fastsync locks it holds, oldest first.
    stack: List[str]         #: Its stack as formatted frames, outermost first.


class LockStats(NamedTuple):
    """A profile's figures for the locks created at one site."""

    site: str                #: Where the locks were created (or first acquired).
    acquisitions: int        #: How many times those locks were acquired.
    contended: int           #: The acquires that found the lock taken and waited.
    total_wait: float        #: The time those waited, in seconds.
    longest_wait: float      #: The longest of those waits, in seconds.



def find_deadlocks() -> List[List[DeadlockedThread]]:
    """The cycles of threads that wait, each for a fastsync lock the next one
    holds, now.  Needs debugging on (enable(), FASTSYNC_DEBUG or a profile):
    only then does fastsync know who holds what."""
    if not shared._tracking:
        raise RuntimeError("fastsync.debug is not enabled: call fastsync.debug.enable() "
                           f"or set {ENVIRONMENT_VARIABLE} before the locks are used")
    return _deadlocks()


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
        with shared._guard:
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
        with shared._guard:
            folded = sorted(self._folded.items())
        with open(path, "w", encoding="utf-8") as out:
            for stack, ns in folded:
                out.write(f"{stack} {ns}\n")


def profile() -> Profile:
    """A new profile, collecting while its with block runs."""
    return Profile()


def process_profile() -> Optional[Profile]:
    """The profile enable(profile=True) started, if on."""
    return shared._process_profile


def _start_profile(prof: Profile) -> None:
    with shared._guard:
        if prof not in _profiles:
            _profiles.append(prof)
        _apply()


def _stop_profile(prof: Profile) -> None:
    with shared._guard:
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
    if on_inversion not in ("warn", "raise"):
        raise ValueError(f"on_inversion must be 'warn' or 'raise', not {on_inversion!r}")
    with shared._guard:
        shared._enabled = True
        if not lock_order:
            _clear_order()
        shared._lock_order = bool(lock_order)
        shared._raise = on_inversion == "raise"
        shared._stall_ns = int(STALL_SECONDS * 1e9) if lock_order else 0
        if profile and shared._process_profile is None:
            shared._process_profile = Profile()
            _profiles.append(shared._process_profile)
        elif not profile and shared._process_profile is not None:
            _profiles.remove(shared._process_profile)
            shared._process_profile = None
        _apply()


def disable() -> None:
    """Stop lock-order checking and the process-wide profile, and forget what
    was recorded.  Profiles in a with block go on until it ends."""
    with shared._guard:
        shared._enabled = shared._lock_order = shared._raise = False
        shared._stall_ns = 0
        if shared._process_profile is not None:
            _profiles.remove(shared._process_profile)
            shared._process_profile = None
        _clear_order()
        _apply()


def enabled() -> bool:
    """Whether enable() (or FASTSYNC_DEBUG) is in force."""
    return shared._enabled


def _clear_order() -> None:
    for node in _nodes.values():
        node.after.clear()
        node.before.clear()
    _reported.clear()


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
    if shared._process_profile is not None:
        sys.stderr.write("fastsync contention profile:\n" + shared._process_profile.report())
