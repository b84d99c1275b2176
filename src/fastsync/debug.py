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
from typing import List, Optional

from . import _debug_state as shared
from ._debug_deadlocks import DeadlockedThread, _deadlocks
from ._debug_profile import LockStats, Profile
from ._debug_state import _nodes, _profiles, _reported
from ._debug_tracker import LockOrderError, LockOrderWarning, _apply
from ._debug_tracker import _attach as _attach  # the backends call fastsync.debug._attach
from ._env import DEBUG as ENVIRONMENT_VARIABLE

__all__ = [
    "DeadlockedThread", "LockOrderError", "LockOrderWarning", "LockStats", "Profile",
    "STALL_SECONDS", "disable", "enable", "enabled", "find_deadlocks", "process_profile", "profile",
]

# The code lives in private modules, one part each: _debug_state (the
# switches, the lock graph, each thread's state), _debug_frames (frames and
# report text), _debug_tracker (the backends' hooks, lock-order reports),
# _debug_deadlocks, _debug_profile.  This module is the public face: it
# defines the functions and holds the settings.

# How long a thread blocks before it looks for a cycle of blocked threads.
STALL_SECONDS = 5.0


def find_deadlocks() -> List[List[DeadlockedThread]]:
    """The cycles of threads that wait, each for a fastsync lock the next one
    holds, now.  Needs debugging on (enable(), FASTSYNC_DEBUG or a profile):
    only then does fastsync know who holds what."""
    if not shared._tracking:
        raise RuntimeError("fastsync.debug is not enabled: call fastsync.debug.enable() "
                           f"or set {ENVIRONMENT_VARIABLE} before the locks are used")
    return _deadlocks()


def profile() -> Profile:
    """A new profile, collecting while its with block runs."""
    return Profile()


def process_profile() -> Optional[Profile]:
    """The profile enable(profile=True) started, if on."""
    return shared._process_profile


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
