"""Lock diagnostics: lock-order checking, deadlock finding, blocked threads,
contention profiles.

Lock-order checking and profiles are off until enable() is called (or
FASTSYNC_DEBUG is set when fastsync is imported: a comma-separated list of
``lock-order``, ``raise``, ``profile``, ``report-on=SIGNAL``).  What a program
that already hangs needs is always there on the compiled backend:
find_deadlocks(), blocked_threads(), and report_on_signal() to print both
when a signal arrives.

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
  The compiled backend always knows who waits for what and who holds each
  Lock and RLock, so this needs no enable() there; the pure-Python backend
  knows it only while debugging is on.
- blocked_threads(): every thread blocked in a fastsync wait now, what for,
  since when, who holds it.  report_on_signal(): both, printed on a signal.
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
from typing import Dict, List, NamedTuple, Optional, TextIO

from . import _state as shared
from ._deadlocks import _blocked_threads, _deadlocks
from ._report import UNKNOWABLE, _install, _report_text, _uninstall
from ._state import _nodes, _profiles, _reported
from ._tracker import _apply
from ._tracker import _attach as _attach  # the backends call fastsync.debug._attach
from ._waits import _knowable
from .._env import DEBUG as ENVIRONMENT_VARIABLE

__all__ = [
    "BlockedThread", "DeadlockedThread", "LockOrderError", "LockOrderWarning", "LockStats", "Profile",
    "STALL_SECONDS", "blocked_threads", "cancel_report_on_signal", "disable", "enable", "enabled",
    "find_deadlocks", "process_profile", "profile", "report", "report_on_signal",
]

# The machinery lives in private modules: _state (the switches, the
# lock graph, each thread's state), _frames (frames and report text),
# _tracker (the backends' hooks, lock-order reports, profile counts),
# _waits (who waits for what now, from the compiled backend and the
# tracker), _deadlocks and _report.  This module defines the public names (their source
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
    waiting_for: str         #: The lock it waits for: its repr, and where it was created if known.
    holding: List[str]       #: The fastsync locks it holds, oldest first (see find_deadlocks()).
    stack: List[str]         #: Its stack as formatted frames, outermost first.


class BlockedThread(NamedTuple):
    """A thread blocked in a fastsync wait, as blocked_threads() found it."""

    thread: int              #: The thread's ident.
    name: str                #: The thread's name.
    waiting_for: str         #: What it waits for: its repr, and where it was created if known.
    waited: float            #: How long it has waited so far, in seconds.
    held_by: Optional[int]   #: The ident of the thread holding the lock, if known.
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
    holds, now.

    The compiled backend always knows who waits for which Lock or RLock and
    who holds it, so this works on a program that already hangs.  The
    pure-Python backend knows it only while debugging is on (enable(),
    FASTSYNC_DEBUG or a profile) for locks created meanwhile: with nothing
    to go by, RuntimeError.  A thread's `holding` lists every lock it holds
    while debugging is on, else those that other blocked threads wait for."""
    _check_knowable()
    return _deadlocks()


def blocked_threads() -> List[BlockedThread]:
    """Every thread blocked in a fastsync wait now (an acquire, Event.wait(),
    Condition.wait(), ...), the longest waiting first: what it waits for,
    for how long, which thread holds it (a Lock or RLock), its stack.  Same
    sources, and RuntimeError, as find_deadlocks()."""
    _check_knowable()
    return _blocked_threads()


def report() -> str:
    """blocked_threads() and find_deadlocks() as the text report_on_signal()
    prints."""
    return _report_text()


def report_on_signal(signum: int, file: Optional[TextIO] = None, chain: bool = False) -> None:
    """Print report() to `file` (sys.stderr when it arrives, by default)
    whenever signal `signum` arrives, as faulthandler.register does for
    tracebacks: ``report_on_signal(signal.SIGUSR1)``, then ``kill -USR1 PID``.
    fastsync's waits run signal handlers, so it works when every thread, the
    main one included, is blocked in one.  Call from the main thread (the
    handler is a Python signal handler); chain: call the handler it replaces
    afterwards."""
    _install(signum, file, chain)


def cancel_report_on_signal(signum: int) -> bool:
    """Undo report_on_signal(signum): the handler it replaced is back.
    Returns whether one was installed."""
    return _uninstall(signum)


def _check_knowable() -> None:
    if not _knowable():
        raise RuntimeError(f"fastsync.debug is not enabled, and {UNKNOWABLE}")


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


REPORT_ON = "report-on="


def _enable_from_environment() -> None:
    words = [w.strip() for w in os.environ.get(ENVIRONMENT_VARIABLE, "").split(",") if w.strip()]
    signals = [w[len(REPORT_ON):] for w in words if w.startswith(REPORT_ON)]
    words = [w for w in words if not w.startswith(REPORT_ON)]
    unknown = sorted(set(words) - {"lock-order", "raise", "profile"})
    if unknown:
        warnings.warn(f"{ENVIRONMENT_VARIABLE}: unknown words {', '.join(unknown)} (known: "
                      "lock-order, raise, profile, report-on=SIGNAL)", RuntimeWarning, stacklevel=3)
    for name in signals:
        _report_on_signal_named(name)
    if not words:
        return
    lock_order = "lock-order" in words or "raise" in words
    enable(lock_order=lock_order, on_inversion="raise" if "raise" in words else "warn",
           profile="profile" in words)
    if "profile" in words:
        atexit.register(_print_process_profile)


def _report_on_signal_named(name: str) -> None:
    """report-on=USR1 (or SIGUSR1, or a number)."""
    import signal

    try:
        signum = int(name) if name.isdigit() else getattr(signal, name if name.startswith("SIG")
                                                          else "SIG" + name)
        report_on_signal(signum)
    except (AttributeError, ValueError, TypeError, OSError) as error:
        warnings.warn(f"{ENVIRONMENT_VARIABLE}: {REPORT_ON}{name}: no report on that signal ({error})",
                      RuntimeWarning, stacklevel=4)


def _print_process_profile() -> None:
    if shared._process_profile is not None:
        sys.stderr.write("fastsync contention profile:\n" + shared._process_profile.report())
