"""Barrier, written once over a backend's Condition and Lock.

Both backends build their Barrier here, so the state machine exists in one
place; the compiled backend's speed comes from its native Condition.
"""

import threading
from time import monotonic

from ._common import type_name

# threading.BrokenBarrierError itself, so existing except clauses keep working.
BrokenBarrierError = threading.BrokenBarrierError

# What the barrier is doing.  Negative states make waiters raise.
_FILLING = 0     # threads are arriving
_DRAINING = 1    # the last one arrived; the others are leaving wait()
_RESETTING = -1  # reset() was called while threads were inside
_BROKEN = -2     # abort(), a timeout, or an exception from the action


def make_barrier_class(Condition, Lock, module):
    class Barrier:
        """A fixed number of threads wait until all have arrived, like threading.Barrier."""

        def __init__(self, parties, action=None, timeout=None):
            if parties < 1:
                raise ValueError("parties must be > 0")
            self._cond = Condition(Lock())
            self._action = action
            self._timeout = timeout
            self._parties = parties
            self._state = _FILLING
            self._count = 0     # threads inside wait()

        def __repr__(self):
            if self._state == _BROKEN:
                return f"<{type_name(self)} at {id(self):#x}: broken>"
            return (f"<{type_name(self)} at {id(self):#x}: "
                    f"waiters={self.n_waiting}/{self._parties}>")

        def wait(self, timeout=None):
            """Wait until `parties` threads have called wait(); returns this
            thread's arrival index (0 .. parties-1).  Raises BrokenBarrierError
            if the barrier is or becomes broken, or on timeout (which breaks it)."""
            if timeout is None:
                timeout = self._timeout
            cond = self._cond
            with cond:
                # Threads of the previous cycle may still be leaving.
                while self._state in (_DRAINING, _RESETTING):
                    cond.wait()
                if self._state == _BROKEN:
                    raise BrokenBarrierError
                index = self._count
                self._count += 1
                try:
                    if index + 1 == self._parties:
                        self._trip()
                    else:
                        self._wait_for_trip(timeout)
                    return index
                finally:
                    self._count -= 1
                    if self._count == 0 and self._state in (_DRAINING, _RESETTING):
                        self._state = _FILLING
                        cond.notify_all()

        def _trip(self):
            try:
                if self._action is not None:
                    self._action()
                self._state = _DRAINING
                self._cond.notify_all()
            except BaseException:
                self._break()
                raise

        def _wait_for_trip(self, timeout):
            cond = self._cond
            deadline = None if timeout is None else monotonic() + timeout
            while self._state == _FILLING:
                if deadline is None:
                    cond.wait()
                    continue
                remaining = deadline - monotonic()
                if remaining <= 0:
                    self._break()
                    raise BrokenBarrierError
                cond.wait(remaining)
            if self._state < 0:
                raise BrokenBarrierError

        def _break(self):
            self._state = _BROKEN
            self._cond.notify_all()

        def reset(self):
            """Return to the initial state; threads waiting now get BrokenBarrierError."""
            with self._cond:
                if self._count > 0:
                    if self._state in (_FILLING, _BROKEN):
                        self._state = _RESETTING
                    # Draining or resetting: the last thread out sets FILLING.
                else:
                    self._state = _FILLING
                self._cond.notify_all()

        def abort(self):
            """Break the barrier: current and future wait() calls raise
            BrokenBarrierError until reset()."""
            with self._cond:
                self._break()

        @property
        def parties(self):
            """The number of threads that must call wait()."""
            return self._parties

        @property
        def n_waiting(self):
            """The number of threads waiting now."""
            return self._count if self._state == _FILLING else 0

        @property
        def broken(self):
            """True if the barrier is broken."""
            return self._state == _BROKEN

        def __reduce_ex__(self, protocol):
            raise TypeError(f"cannot pickle {type_name(self)!r} object")

    Barrier.__module__ = module
    Barrier.__qualname__ = "Barrier"
    return Barrier

