"""The pure-Python backend: the same API as fastsync._compiled, built on the
standard library's _thread and threading modules.

It serves where the extension can't be built (no compiler, PyPy) or where
FASTSYNC_NO_EXTENSIONS=1 asks for it.  Lock() returns _thread's own lock and
RLock subclasses _thread's RLock, so arguments, errors and blocking are
exactly threading's.  Event is reimplemented without threading.Condition,
which makes it cheaper than threading.Event while keeping its semantics.
"""

from __future__ import annotations

import _thread
import threading
import warnings
from operator import index as _index
from typing import Any, NoReturn, Optional, Tuple

from . import _cooperative
from ._barrier import make_barrier_class
from ._pyrwlock import RWLock
from ._pyrwlock import _set_debug_tracker as _set_rwlock_tracker
from ._common import (ISSET_WARNING, ISSET_WARNS, RLOCK_SHOWS_PARAMETERS, WAIT_TESTS_LE, ClassSignature,
                      cannot_pickle, check_rlock_arguments, raise_as_threading, type_name)

__all__ = ["Barrier", "BoundedSemaphore", "Condition", "Event", "Lock", "RLock", "RWLock", "Semaphore"]

_allocate_lock = _thread.allocate_lock
_LockType = _thread.LockType   # taken now: monkey-patching replaces it later
_StdRLock = _thread.RLock


# fastsync.debug's tracker while it watches (see _set_debug_tracker), and
# the one it used last: the watching locks made meanwhile keep calling it.
_watch_new_locks = False
_tracker: Any = None


def _set_debug_tracker(tracker: Any) -> None:
    """fastsync.debug switches watching on (its tracker) or off (None).  The
    interpreter's locks can't be watched, so Lock() and RLock() return
    watching versions while it is on; those made before are not watched."""
    global _watch_new_locks, _tracker
    if tracker is not None:
        _tracker = tracker
    _watch_new_locks = tracker is not None
    _set_rwlock_tracker(tracker)


class _InterpretersLockType(type):
    """Makes isinstance(x, Lock) true for the interpreter's own locks (and
    for the watching ones made while fastsync.debug is on)."""

    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, (_LockType, _WatchedLock))

    def __subclasscheck__(cls, subclass: Any) -> bool:
        return issubclass(subclass, (_LockType, _WatchedLock))


class Lock(metaclass=_InterpretersLockType):
    """A primitive lock, like threading.Lock: here, the interpreter's own.
    Lock() takes no arguments.

    Lock() returns what threading.Lock() returns, so everything about it is
    threading's: arguments, errors, repr, pickling, speed, and what
    `with lock as x` binds (True on CPython, the lock itself on PyPy).  Any
    Python class of ours in between would cost speed (on 3.11 a method read
    from an instance costs about 1.5x threading's acquire+release), and only
    the lock's own methods run no frame of ours after the lock changes hands,
    where a signal handler's exception (KeyboardInterrupt) could leave it
    held.  isinstance(lock, fastsync.Lock) is true for every such lock."""

    # Takes any arguments, to refuse them with threading's own error; to
    # inspect and help() it takes none.
    __signature__ = ClassSignature(takes_anything=False)

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        if args or kwargs:
            raise_as_threading("Lock", args, kwargs)
        if _watch_new_locks:
            return _WatchedLock()
        # Looked up each time: under gevent or eventlet it is theirs.
        return _thread.allocate_lock()

    def __init_subclass__(cls, **kwargs: Any) -> NoReturn:
        # threading.Lock can't be subclassed, nor can the compiled Lock.
        raise TypeError("type 'fastsync.Lock' is not an acceptable base type")


# The class offers the lock type's methods too, as the compiled Lock does: for
# help() and signatures, and for calls such as fastsync.Lock.acquire(lock).
# When gevent or eventlet patched _thread before this import, LockType is
# theirs and lacks some of these; fastsync.Lock() then returns their locks.
for _name in ("acquire", "release", "locked", "__enter__", "__exit__", "_at_fork_reinit",
              "acquire_lock", "release_lock", "locked_lock"):
    if hasattr(_LockType, _name):
        setattr(Lock, _name, getattr(_LockType, _name))
del _name


class _WatchedLock:
    """Lock() while fastsync.debug is on: the interpreter's lock, with each
    operation told to fastsync.debug."""

    __slots__ = ("_lock", "__weakref__")

    def __init__(self) -> None:
        self._lock = _thread.allocate_lock()
        _tracker.created(self)

    def _plain_acquire(self, blocking: Any = True, timeout: Any = -1) -> bool:
        return self._lock.acquire(blocking, timeout)

    def acquire(self, blocking: Any = True, timeout: Any = -1) -> bool:
        """Acquire the lock, blocking or not, with an optional timeout in seconds."""
        return _tracker.acquire(self, self._plain_acquire, blocking, timeout)

    def release(self) -> None:
        """Release the lock; RuntimeError if it is not locked."""
        _tracker.released(self)
        self._lock.release()

    def locked(self) -> bool:
        """True if the lock is held by some thread."""
        return self._lock.locked()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    # threading.Condition.wait() lets go of its lock and takes it back with
    # these when the lock has them: taking it back is no new acquire.
    def _release_save(self) -> None:
        self.release()

    def _acquire_restore(self, state: object) -> None:
        self._lock.acquire()
        _tracker.restored(self)

    def _at_fork_reinit(self) -> None:
        _tracker.released(self)      # a free lock again, whoever held it
        self._lock._at_fork_reinit()  # type: ignore[attr-defined]  # private, 3.9+

    acquire_lock = acquire
    release_lock = release
    locked_lock = locked

    def __repr__(self) -> str:
        state = "locked" if self._lock.locked() else "unlocked"
        return f"<{state} fastsync.Lock object at {id(self):#x}>"

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise TypeError("cannot pickle 'fastsync.Lock' object")


class _Switched:
    """Base of the classes below: once gevent or eventlet has monkey-patched
    threading, their constructors return threading's cooperative primitive
    instead (see _cooperative)."""

    __slots__ = ()

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        if _thread.allocate_lock is not _cooperative.NATIVE_ALLOCATE_LOCK:
            return _cooperative.construct(cls, args, kwargs)
        return super().__new__(cls)


class RLock(_Switched, _StdRLock):  # type: ignore[misc]  # typeshed marks it final; it isn't
    """A reentrant lock, like threading.RLock; only its owner may release it.
    RLock() takes no arguments (those given are treated as threading treats
    them: ignored, warned about or refused, by version).

    A subclass of the interpreter's own RLock, so acquire/release run at its
    speed; this class adds what it lacks on older Pythons and our repr."""

    __slots__ = ()   # the base class already supports weak references
    # threading.RLock's parameters: (*args, **kwargs), or none from 3.15.
    __signature__ = ClassSignature(takes_anything=RLOCK_SHOWS_PARAMETERS)

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        if _watch_new_locks and cls is RLock:
            cls = _WatchedRLock
        return super().__new__(cls, *args, **kwargs)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if args or kwargs:
            check_rlock_arguments(args, kwargs, stacklevel=2)

    # acquire, release, __enter__, __exit__, _is_owned, _release_save,
    # _acquire_restore and _at_fork_reinit are the base class's own.

    if not hasattr(_StdRLock, "locked"):   # added in 3.14
        def locked(self) -> bool:
            """True if the lock is held by some thread."""
            return _owner_and_count(self)[1] > 0

    if not hasattr(_StdRLock, "_recursion_count"):   # added in 3.11
        def _recursion_count(self) -> int:
            if not _StdRLock._is_owned(self):  # type: ignore[attr-defined]  # private
                return 0
            return _owner_and_count(self)[1]

    def __repr__(self) -> str:
        owner, count = _owner_and_count(self)
        # Since 3.14 a lock can be held at count 0 (_acquire_restore((0, me))),
        # and the base class's repr then says "locked", as locked() does.
        state = "locked" if count or self.locked() else "unlocked"
        return (f"<{state} {type_name(self)} object owner={owner} count={count} "
                f"at {id(self):#x}>")

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise cannot_pickle(self)


class _WatchedRLock(RLock):  # type: ignore[misc]  # RLock isn't final
    """RLock() while fastsync.debug is on: each operation is told to it.
    Its name and so its repr are RLock's."""

    __slots__ = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if args or kwargs:
            check_rlock_arguments(args, kwargs, stacklevel=2)
        _tracker.created(self)

    def _plain_acquire(self, blocking: Any = True, timeout: Any = -1) -> bool:
        return _StdRLock.acquire(self, blocking, timeout)

    def acquire(self, blocking: Any = True, timeout: Any = -1) -> bool:
        """Acquire the lock, or count one more level if this thread holds it."""
        if _StdRLock._is_owned(self):  # type: ignore[attr-defined]  # private
            return _StdRLock.acquire(self, blocking, timeout)   # a re-entry is no acquire
        return _tracker.acquire(self, self._plain_acquire, blocking, timeout)

    def release(self) -> None:
        """Undo one acquire(); RuntimeError unless this thread holds the lock."""
        if _StdRLock._is_owned(self) and self._recursion_count() == 1:  # type: ignore[attr-defined]
            _tracker.released(self)
        _StdRLock.release(self)

    __enter__ = acquire   # as _thread.RLock's

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def _release_save(self) -> Any:
        if _StdRLock._is_owned(self):  # type: ignore[attr-defined]  # private
            _tracker.released(self)
        return _StdRLock._release_save(self)  # type: ignore[attr-defined]  # private

    def _acquire_restore(self, state: Any) -> None:
        _StdRLock._acquire_restore(self, state)  # type: ignore[attr-defined]  # private
        _tracker.restored(self)

    def _at_fork_reinit(self) -> None:
        _tracker.released(self)      # a free lock again, whoever held it
        _StdRLock._at_fork_reinit(self)  # type: ignore[attr-defined]  # private, 3.9+


_WatchedRLock.__name__ = _WatchedRLock.__qualname__ = "RLock"


def _owner_and_count(rlock: RLock) -> Tuple[int, int]:
    """Read owner and count from the base class's repr, the only place every
    supported interpreter exposes them ("... owner=N count=N at ...")."""
    text = _StdRLock.__repr__(rlock)
    owner = text.split(" owner=", 1)[1].split(" ", 1)[0]
    count = text.split(" count=", 1)[1].split(" ", 1)[0]
    return int(owner), int(count)


class Event(_Switched):
    """A flag threads can wait for, like threading.Event.  Event() takes no
    arguments; the flag starts clear."""

    __slots__ = ("_flag", "_mutex", "_waiters", "__weakref__")

    def __init__(self) -> None:
        self._mutex = _allocate_lock()   # guards _flag's changes and _waiters
        self._flag = False
        self._waiters: list = []         # a locked lock per waiting thread

    def is_set(self) -> bool:
        """True if the flag is set."""
        return self._flag

    def isSet(self) -> bool:
        """Deprecated alias of is_set()."""
        if ISSET_WARNS:
            warnings.warn(ISSET_WARNING, DeprecationWarning, stacklevel=2)
        return self._flag

    def set(self) -> None:
        """Set the flag and wake every waiting thread."""
        with self._mutex:
            self._flag = True
            waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.release()

    def clear(self) -> None:
        """Clear the flag."""
        with self._mutex:
            self._flag = False

    # threading's test of the timeout before waiting (see WAIT_TESTS_LE), chosen
    # here once: wait() on a set event and wait(0) pay for no other choice.
    if WAIT_TESTS_LE:
        def wait(self, timeout: Optional[float] = None) -> bool:
            """Block until the flag is set or the timeout (seconds) passes.

            Returns True if the flag was set, False on timeout."""
            if self._flag:
                return True
            if timeout is not None and timeout <= 0:
                return self._flag
            return self._wait(timeout)    # NaN too: the lock refuses it
    else:
        def wait(self, timeout: Optional[float] = None) -> bool:
            """Block until the flag is set or the timeout (seconds) passes.

            Returns True if the flag was set, False on timeout."""
            if self._flag:
                return True
            if timeout is not None and not timeout > 0:
                return self._flag
            return self._wait(timeout)

    def _wait(self, timeout: Optional[float]) -> bool:
        waiter = _allocate_lock()
        waiter.acquire()
        with self._mutex:
            if self._flag:
                return True
            self._waiters.append(waiter)
        woken = False
        try:
            if timeout is None:
                woken = waiter.acquire()
            else:
                woken = waiter.acquire(True, timeout)
        finally:
            if not woken:
                # Timed out, refused the timeout, or a signal handler raised:
                # leave the list, unless set() already took us off it (then
                # we were woken).
                with self._mutex:
                    try:
                        self._waiters.remove(waiter)
                    except ValueError:
                        woken = True
        return woken

    def _at_fork_reinit(self) -> None:
        self._mutex._at_fork_reinit()  # type: ignore[attr-defined]  # private, 3.9+
        self._waiters = []

    def __repr__(self) -> str:
        state = "set" if self._flag else "unset"
        return f"<{type_name(self)} at {id(self):#x}: {state}>"

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise cannot_pickle(self)


# threading's own classes, captured before fastsync.patch() can replace them.
_StdCondition = threading.Condition
_StdSemaphore = threading.Semaphore


class Condition(_Switched, _StdCondition):
    """Condition(lock=None): lets threads wait until notified, like
    threading.Condition (whose code this is), over `lock`, by default a new
    fastsync RLock."""

    def __init__(self, lock: Any = None) -> None:
        super().__init__(RLock() if lock is None else lock)

    # threading's Condition has locked() since 3.14 (an attribute set in
    # __init__, which takes precedence); fastsync's has it everywhere, as its
    # RLock has.
    def locked(self) -> bool:
        """The lock's locked()."""
        return self._lock.locked()  # type: ignore[attr-defined]  # private

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise cannot_pickle(self)


_ONE = 1


def _release_count(n: Any) -> int:
    """release()'s n, checked as threading checks it, and then, as the
    compiled backend does, refused unless it is an integer."""
    if n < 1:
        raise ValueError("n must be one or more")
    return _index(n)


class Semaphore(_Switched, _StdSemaphore):
    """Semaphore(value=1): a counter of available slots, like
    threading.Semaphore, starting at `value`."""

    _cond: threading.Condition   # the base class's; typeshed leaves private names out

    def __init__(self, value: int = 1) -> None:
        if value < 0:
            raise ValueError("semaphore initial value must be >= 0")
        # The compiled backend counts in 64 bits; both refuse non-integers.
        value = _index(value)
        if value >= 2**64:
            raise OverflowError("semaphore value too large")
        super().__init__(value)
        # The most release() may bring the count to: the compiled backend's
        # 64-bit counter (BoundedSemaphore: its initial value).  An instance
        # attribute, which is quicker to read than a class one.
        self._max_value = 2**64 - 1

    # acquire and release are threading's own steps, written out here rather
    # than calling the base class's: one Python frame less per call (about
    # 10% of acquire+release), and NaN can't make acquire wait for ever.

    def acquire(self, blocking: bool = True, timeout: Optional[float] = None) -> bool:
        """Take a slot, waiting for one unless blocking is false.

        Returns True if a slot was taken, False if not (timeout in seconds)."""
        if not blocking and timeout is not None:
            raise ValueError("can't specify timeout for non-blocking acquire")
        if timeout is not None and timeout != timeout and not WAIT_TESTS_LE:
            # NaN: threading up to 3.13 would wait for ever; don't wait at all.
            # Later ones refuse it in Condition.wait, as wait_for below does.
            timeout = 0
        cond = self._cond
        with cond:
            if self._value == 0:
                # threading's loop is this wait_for's: the same deadline, and
                # one wait even when the timeout is already over.
                if not blocking or not cond.wait_for(self._has_slot, timeout):
                    return False
            self._value -= 1
            return True

    def _has_slot(self) -> bool:
        return self._value != 0

    __enter__ = acquire

    def release(self, n: int = 1) -> None:
        """Return n slots, waking as many waiting threads."""
        if n is not _ONE:   # the default needs no checks
            n = _release_count(n)
        cond = self._cond
        with cond:
            value = self._value + n
            if value > self._max_value:
                self._refuse_release()
            self._value = value
            cond.notify(n)

    def __exit__(self, t: Any, v: Any, tb: Any) -> None:
        self.release()

    def _refuse_release(self) -> NoReturn:
        raise OverflowError("semaphore value too large")

    def __repr__(self) -> str:
        return f"<{type_name(self)} at {id(self):#x}: value={self._value}>"

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise cannot_pickle(self)


class BoundedSemaphore(Semaphore):
    """BoundedSemaphore(value=1): a semaphore that can't be released above
    its initial `value`."""

    def __init__(self, value: int = 1) -> None:
        super().__init__(value)
        self._initial_value = self._max_value = self._value

    def _refuse_release(self) -> NoReturn:
        raise ValueError("Semaphore released too many times")

    def __repr__(self) -> str:
        return (f"<{type_name(self)} at {id(self):#x}: "
                f"value={self._value}/{self._initial_value}>")


Barrier = make_barrier_class(Condition, Lock, __name__)


def _attach_debug() -> None:
    import sys

    debug = sys.modules.get("fastsync.debug")
    if debug is not None:
        debug._attach(sys.modules[__name__])


_attach_debug()
