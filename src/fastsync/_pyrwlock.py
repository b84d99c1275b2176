"""The pure-Python backend's RWLock: the compiled one's policy and rules
(csrc/fs_rwlock.h), over _thread's locks.

A guard lock protects the state; each waiting thread sleeps on a lock of its
own, which the thread whose turn it gives releases.  _thread.allocate_lock is
looked up at each use, so under gevent or eventlet the waits cooperate (the
compiled backend's RWLock() returns this class then)."""

from __future__ import annotations

import _thread
import os
import sys
from collections import deque
from typing import Any, Deque, Dict, List, NoReturn, Optional, Tuple

UPGRADE_MESSAGE = ("cannot acquire the writer side while this thread holds the reader side: "
                   "upgrading is not supported (release the read first)")
WRITING_MESSAGE = ("cannot acquire the reader side while this thread holds the writer side: "
                   "use downgrade() to turn the write into a read")

# fastsync.debug's tracker while it watches (see _fallback._set_debug_tracker).
_tracker: Any = None


def _set_debug_tracker(tracker: Any) -> None:
    global _tracker
    _tracker = tracker


# A forked child forgets its parent's waiters, threads it doesn't have (and
# whoever held a guard), as the compiled RWLock does; their reads stay counted,
# as a Lock another thread holds stays held.
_fork_generation = 0


def _after_fork_in_child() -> None:
    global _fork_generation
    _fork_generation += 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _timeout(blocking: Any, timeout: Any) -> Optional[float]:
    """acquire()'s arguments -> None (wait forever), 0.0 (don't wait) or
    seconds; raises what threading's Lock.acquire raises for the ones it
    refuses."""
    if blocking is True and timeout == -1 and type(timeout) in (int, float):
        return None
    probe = _thread.allocate_lock()
    if probe.acquire(blocking, timeout):   # never waits: the lock is new
        probe.release()
    if not blocking:
        return 0.0
    return None if timeout == -1 else float(timeout)


class RWLock:
    """A readers-writer lock: many threads may hold its reader side at once,
    or one thread its writer side.  Phase-fair: a waiting writer keeps new
    readers out, and readers that waited through a write go in before the
    next writer.  A thread that reads may read again at any time; it may
    not take the writer side until it has released its reads."""

    __slots__ = ("_generation", "_guard", "_depths", "_writing", "_writer", "_writers", "_sleepers",
                 "reader", "writer", "__weakref__")

    def __init__(self) -> None:
        self._generation = _fork_generation
        self._guard = _thread.allocate_lock()
        self._depths: Dict[int, int] = {}      # reading thread -> its reads
        self._writing = False
        self._writer: Optional[int] = None     # the writing thread, if known
        # Waiting threads, each with a held lock it sleeps on; releasing it
        # grants what the thread waits for.
        self._writers: Deque[Tuple[Any, int]] = deque()
        self._sleepers: List[Tuple[Any, int]] = []
        self.reader = _Reader(self)
        self.writer = _Writer(self)
        if _tracker is not None:
            _tracker.created(self)   # both sides are one lock to fastsync.debug

    # A class attribute: module globals may be gone by the time a finalizer
    # releases a side.
    _is_finalizing = staticmethod(sys.is_finalizing)

    def _lock(self) -> None:
        """Take _guard (after a fork, a new one, and no waiters)."""
        if self._generation != _fork_generation:
            self._generation = _fork_generation
            self._guard = _thread.allocate_lock()
            self._writers.clear()
            self._sleepers.clear()
            self._settle(False)
        self._guard.acquire()

    # With _guard held: whoever's turn it is goes in (see fs_rwlock.c's rw_settle).
    def _settle(self, readers_first: bool) -> None:
        if self._writing:
            return
        if self._is_finalizing():
            # The waiting threads never run again: a grant would stay held
            # for ever, and so would a place in the queue.  The lock is left
            # to the thread that finalizes (a finalizer may still take it).
            self._writers.clear()
            self._sleepers.clear()
            return
        if self._sleepers and (readers_first or not self._writers):
            sleepers = list(self._sleepers)
            self._sleepers.clear()   # in place: the waiters look in this list
            for waiter, ident in sleepers:
                self._depths[ident] = 1
                waiter.release()
        elif self._writers and not self._depths:
            waiter, ident = self._writers.popleft()
            self._writing = True
            self._writer = ident
            waiter.release()

    def _wait(self, queue: Any, timeout: Optional[float], undo: Any) -> bool:
        """Sleep on a new lock in `queue` (_guard held on entry, released on
        return) until granted; undo() gives back a grant that came with an
        exception."""
        me = _thread.get_ident()
        waiter = _thread.allocate_lock()
        waiter.acquire()
        entry = (waiter, me)
        queue.append(entry)
        self._guard.release()
        try:
            got = waiter.acquire() if timeout is None else waiter.acquire(True, timeout)
        except BaseException:
            # A signal handler raised: leave nothing held or queued.
            with self._guard:
                if entry in queue:
                    queue.remove(entry)
                    self._settle(False)
                else:
                    undo()
            raise
        if not got:
            with self._guard:
                if entry in queue:
                    queue.remove(entry)
                    self._settle(False)
                else:
                    got = True   # granted as it gave up
        return got

    def _read(self, timeout: Optional[float]) -> bool:
        me = _thread.get_ident()
        self._lock()
        depth = self._depths.get(me)
        if depth:
            self._depths[me] = depth + 1
            self._guard.release()
            return True
        if not self._writing and not self._writers:
            self._depths[me] = 1
            self._guard.release()
            return True
        if self._writing and self._writer == me:
            self._guard.release()
            raise RuntimeError(WRITING_MESSAGE)
        if timeout == 0:
            self._guard.release()
            return False
        return self._wait(self._sleepers, timeout, self._unread)

    def _unread(self) -> bool:
        """With _guard held: undo one read of this thread; False if none."""
        me = _thread.get_ident()
        depth = self._depths.get(me)
        if not depth:
            return False
        if depth > 1:
            self._depths[me] = depth - 1
        else:
            del self._depths[me]
            if not self._depths:
                self._settle(False)
        return True

    def _write(self, timeout: Optional[float]) -> bool:
        me = _thread.get_ident()
        self._lock()
        if me in self._depths:
            self._guard.release()
            raise RuntimeError(UPGRADE_MESSAGE)
        if not self._writing and not self._depths and not self._writers:
            self._writing = True
            self._writer = me
            self._guard.release()
            return True
        if timeout == 0:
            self._guard.release()
            return False
        return self._wait(self._writers, timeout, self._unwrite)

    def _unwrite(self) -> bool:
        """With _guard held: release the write; False if nobody writes."""
        if not self._writing:
            return False
        self._writing = False
        self._writer = None
        self._settle(True)
        return True

    def downgrade(self) -> None:
        """Turn this thread's write into a read, letting in the readers that
        wait but no writer; RuntimeError unless this thread writes."""
        me = _thread.get_ident()
        self._lock()
        try:
            if not (self._writing and self._writer == me):
                raise RuntimeError("downgrade() needs the writer side held by this thread")
            self._writing = False
            self._writer = None
            self._depths[me] = 1
            self._settle(True)
        finally:
            self._guard.release()

    def _readers(self) -> int:
        """How many threads read now.  For tests; not part of the API."""
        return len(self._depths)

    def _waiting(self) -> Tuple[int, int]:
        """(readers, writers) waiting now.  For tests; not part of the API."""
        with self._guard:
            return len(self._sleepers), len(self._writers)

    def __repr__(self) -> str:
        if self._writing:
            state = "write-locked"
        elif self._depths:
            state = f"read-locked by {len(self._depths)}"
        else:
            state = "unlocked"
        return f"<{state} fastsync.RWLock object at {id(self):#x}>"

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise TypeError("cannot pickle 'fastsync.RWLock' object")


class _Side:
    __slots__ = ("_rw", "__weakref__")
    _side = ""

    def __init__(self, rw: RWLock) -> None:
        self._rw = rw

    @property
    def rwlock(self) -> RWLock:
        """The RWLock this side belongs to."""
        return self._rw

    def _plain_acquire(self, blocking: Any = True, timeout: Any = -1) -> bool:
        raise NotImplementedError

    def acquire(self, blocking: Any = True, timeout: Any = -1) -> bool:
        """Acquire this side, blocking or not, with an optional timeout in
        seconds.  Returns True if acquired, False if not."""
        tracker = _tracker
        if tracker is not None and not self._reentry():
            return bool(tracker.acquire(self._rw, self._plain_acquire, blocking, timeout))
        return self._plain_acquire(blocking, timeout)

    def _reentry(self) -> bool:
        return False

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def release(self) -> None:
        raise NotImplementedError

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise TypeError(f"cannot pickle 'fastsync.RWLock.{self._side}' object")


class _Reader(_Side):
    """The reader side of an RWLock: acquire, release, locked and `with`, as
    threading.Lock's.  Only a thread that reads may release its read."""

    __slots__ = ()
    _side = "reader"

    def _plain_acquire(self, blocking: Any = True, timeout: Any = -1) -> bool:
        return self._rw._read(_timeout(blocking, timeout))

    def _reentry(self) -> bool:
        return _thread.get_ident() in self._rw._depths or bool(self._rw._writing
                                                               and self._rw._writer == _thread.get_ident())

    def release(self) -> None:
        """Release one read of this thread; RuntimeError if it holds none."""
        rw = self._rw
        tracker = _tracker
        rw._lock()
        try:
            last = rw._depths.get(_thread.get_ident()) == 1
            if not rw._unread():
                raise RuntimeError("cannot release un-acquired lock")
        finally:
            rw._guard.release()
        if last and tracker is not None:
            tracker.released_here(rw)

    def locked(self) -> bool:
        """True if some thread holds the lock for reading."""
        return bool(self._rw._depths)

    def _is_owned(self) -> bool:
        """Whether this thread reads (for threading.Condition)."""
        return _thread.get_ident() in self._rw._depths

    def __repr__(self) -> str:
        state = "locked" if self._rw._depths else "unlocked"
        return f"<{state} reader of fastsync.RWLock object at {id(self._rw):#x}>"


class _Writer(_Side):
    """The writer side of an RWLock: acquire, release, locked and `with`, as
    threading.Lock's (so any thread may release it)."""

    __slots__ = ()
    _side = "writer"

    def _plain_acquire(self, blocking: Any = True, timeout: Any = -1) -> bool:
        return self._rw._write(_timeout(blocking, timeout))

    def _reentry(self) -> bool:
        return _thread.get_ident() in self._rw._depths   # refused before anything is recorded

    def release(self) -> None:
        """Release the write; RuntimeError if nobody writes."""
        rw = self._rw
        if _tracker is not None and rw._writing:
            _tracker.released(rw)
        rw._lock()
        try:
            if not rw._unwrite():
                raise RuntimeError("release unlocked lock")
        finally:
            rw._guard.release()

    def locked(self) -> bool:
        """True if some thread holds the lock for writing."""
        return self._rw._writing

    def __repr__(self) -> str:
        state = "locked" if self._rw._writing else "unlocked"
        return f"<{state} writer of fastsync.RWLock object at {id(self._rw):#x}>"
