"""Barrier, written once over a backend's Condition and Lock.

Both backends build their Barrier here, so its logic exists in one place; the
compiled backend's speed comes from its native Condition, and one hand-off per
cycle fewer than threading's comes from _Cycle.
"""

import threading
from time import monotonic

from ._common import raise_as_threading, type_name

# threading.BrokenBarrierError itself, so existing except clauses keep working.
BrokenBarrierError = threading.BrokenBarrierError

# How a cycle (one filling of the barrier) ended; threading's _state numbers.
# Negative outcomes make its waiters raise.
_FILLING = 0     # threads are still arriving
_TRIPPED = 1     # the last one arrived: every waiter returns its index
_RESET = -1      # reset() was called while threads waited
_BROKEN = -2     # abort(), a timeout, or an exception from the action


class _Cycle:
    """One filling of the barrier.  Its waiters keep a reference and read the
    outcome from it, so the next cycle can start the moment this one trips:
    unlike threading.Barrier, an arriving thread never waits for the previous
    cycle's waiters to leave, which saves one thread hand-off per cycle."""

    __slots__ = ("state",)

    def __init__(self):
        self.state = _FILLING


def make_barrier_class(Condition, Lock, module):
    class Barrier:
        """Barrier(parties, action=None, timeout=None): `parties` threads wait
        until all have arrived, like threading.Barrier; then one of them calls
        `action`, if given.  `timeout` is wait()'s default."""

        def __init__(self, parties, action=None, timeout=None):
            if parties < 1:
                # threading's error where it has one (from 3.13); none at all
                # would make a barrier that never trips.
                raise_as_threading("Barrier", (parties, action, timeout), None)
                raise ValueError("parties must be > 0")
            self._cond = Condition(Lock())
            self._action = action
            self._timeout = timeout
            self._parties = parties
            self._cycle = _Cycle()
            self._count = 0     # threads waiting in the current cycle
            # The cycle that tripped last.  Until its waiters have left, abort()
            # breaks it too, as threading's does while its barrier drains.
            self._tripped = None

        def __repr__(self):
            if self.broken:
                return f"<{type_name(self)} at {id(self):#x}: broken>"
            return (f"<{type_name(self)} at {id(self):#x}: "
                    f"waiters={self.n_waiting}/{self._parties}>")

        def wait(self, timeout=None):
            """Wait until `parties` threads have called wait(); returns this
            thread's arrival index (0 .. parties-1).  Raises BrokenBarrierError
            if the barrier is or becomes broken, or on timeout (which breaks it)."""
            if timeout is None:
                timeout = self._timeout
            with self._cond:
                cycle = self._cycle
                if cycle.state == _BROKEN:
                    raise BrokenBarrierError
                index = self._count
                self._count = index + 1
                try:
                    if index + 1 == self._parties:
                        self._trip()
                    else:
                        self._wait_for_end(cycle, timeout)
                except BaseException:
                    # Broken, timed out or interrupted: leave the cycle, as
                    # threading's waiter does, unless reset() ended it.
                    if cycle is self._cycle:
                        self._count -= 1
                    raise
                return index

        def _trip(self):
            try:
                if self._action is not None:
                    self._action()
            except BaseException:
                self._break()
                raise
            self._cycle.state = _TRIPPED
            self._tripped = self._cycle
            self._start_cycle()

        def _start_cycle(self):
            self._cycle = _Cycle()
            self._count = 0
            self._cond.notify_all()

        def _wait_for_end(self, cycle, timeout):
            # Called with the cycle still filling.
            cond = self._cond
            if timeout is None:
                while cycle.state == _FILLING:
                    cond.wait()
            else:
                # The steps of threading's Condition.wait_for: the deadline
                # first, then a first wait given the caller's timeout itself,
                # so a timeout that threading rejects fails here in the same
                # place with the same error, and the barrier stays unbroken.
                deadline = monotonic() + timeout
                cond.wait(timeout)
                while cycle.state == _FILLING:
                    remaining = deadline - monotonic()
                    if remaining <= 0:
                        self._break()    # a filling cycle is the current one
                        raise BrokenBarrierError
                    if remaining != remaining:
                        # A NaN deadline never passes, and each wait(NaN)
                        # returns at once: threading spins until the cycle
                        # ends.  Sleep until then instead; spinning on the
                        # compiled Condition keeps the lock from the parties
                        # that would end the cycle.
                        cond.wait()
                    else:
                        cond.wait(remaining)
            if cycle.state != _TRIPPED:
                raise BrokenBarrierError

        def _break(self):
            # The broken cycle stays current: later wait() calls raise too.
            self._cycle.state = _BROKEN
            self._cond.notify_all()

        def reset(self):
            """Return to the initial state; threads waiting now get BrokenBarrierError."""
            with self._cond:
                if self._cycle.state == _FILLING:   # a broken one's waiters raise already
                    self._cycle.state = _RESET
                self._start_cycle()

        def abort(self):
            """Break the barrier: current and future wait() calls raise
            BrokenBarrierError until reset()."""
            with self._cond:
                if self._tripped is not None:   # waiters that haven't left raise
                    self._tripped.state = _BROKEN
                self._break()

        @property
        def parties(self):
            """The number of threads that must call wait()."""
            return self._parties

        @property
        def n_waiting(self):
            """The number of threads waiting now."""
            return self._count if self._cycle.state == _FILLING else 0

        @property
        def broken(self):
            """True if the barrier is broken."""
            return self._cycle.state == _BROKEN

        @property
        def _state(self):
            # threading.Barrier's attribute: 0 filling, -2 broken.
            return self._cycle.state

        def __reduce_ex__(self, protocol):
            raise TypeError(f"cannot pickle {type_name(self)!r} object")

    Barrier.__module__ = module
    Barrier.__qualname__ = "Barrier"
    # Error messages for wrong arguments name the function by its qualified
    # name, which must be threading's ("Barrier.__init__").
    for attribute in vars(Barrier).values():
        function = getattr(attribute, "fget", attribute)
        if hasattr(function, "__code__"):
            function.__qualname__ = f"Barrier.{function.__name__}"
    return Barrier

