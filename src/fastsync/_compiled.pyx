# cython: language_level=3, binding=False, embedsignature=True, embedsignature.format=clinic
# cython: boundscheck=False, wraparound=False, auto_pickle=False
"""The compiled backend: a thin skin over csrc/fastsync.h.

Every uncontended operation is one atomic instruction done while holding the
GIL.  The GIL is released only around a wait that must block; when a signal
interrupts that wait we take the GIL back, run the Python signal handlers
(which may raise, e.g. KeyboardInterrupt) and otherwise wait again until the
same deadline.

Arguments are checked in C for the common types.  Anything our checks reject
is handed to a fresh threading lock, so the caller gets exactly the exception
and message the running Python's threading would give.
"""

cimport cython
from cpython.exc cimport PyErr_CheckSignals
from cpython.float cimport PyFloat_Check, PyFloat_AS_DOUBLE
from cpython.long cimport PyLong_Check, PyLong_AsLongLongAndOverflow
from libc.math cimport ceil, floor, isnan
from libc.stdint cimport int64_t, uint32_t, uintptr_t

import _thread
import os
import sys
import warnings

from fastsync._common import ISSET_WARNING, ISSET_WARNS, cannot_pickle, type_name

cdef extern from "pythread.h":
    unsigned long PyThread_get_thread_ident() nogil

cdef extern from "Python.h":
    unsigned long PyLong_AsUnsignedLongMask(object) except? -1

cdef extern from "fs_wait.h":
    const char *FS_WAIT_BACKEND_NAME
    void fs_wait_after_fork_child() nogil

cdef extern from "fastsync.h" nogil:
    int64_t FS_NO_DEADLINE
    ctypedef enum fs_result:
        FS_ACQUIRED
        FS_TIMED_OUT
        FS_INTERRUPTED
    int64_t fs_deadline_after(int64_t timeout_ns)

    ctypedef struct fs_lock:
        pass
    void fs_lock_init(fs_lock *lock)
    bint fs_lock_try_acquire(fs_lock *lock)
    bint fs_lock_is_locked(const fs_lock *lock)
    bint fs_lock_release(fs_lock *lock)
    fs_result fs_lock_acquire_until(fs_lock *lock, int64_t deadline_ns)

    unsigned long FS_RLOCK_COUNT_MAX
    ctypedef struct fs_atomic_uptr:
        pass
    ctypedef struct fs_rlock:
        fs_lock lock
        fs_atomic_uptr owner
        fs_atomic_uptr count
    uintptr_t fs_load_uptr_relaxed(const fs_atomic_uptr *a)
    void fs_store_uptr_relaxed(fs_atomic_uptr *a, uintptr_t v)
    void fs_rlock_init(fs_rlock *r)
    bint fs_rlock_is_owned(const fs_rlock *r, uintptr_t me)
    void fs_rlock_take(fs_rlock *r, uintptr_t me, uintptr_t count)
    void fs_rlock_release_all(fs_rlock *r)

    uint32_t FS_EVENT_SET
    ctypedef struct fs_event:
        pass
    uint32_t fs_event_state(const fs_event *event)
    bint fs_event_is_set(const fs_event *event)
    void fs_event_set(fs_event *event)
    void fs_event_clear(fs_event *event)
    fs_result fs_event_wait_until(fs_event *event, uint32_t observed_state,
                                  int64_t deadline_ns)
    void fs_event_reinit_after_fork(fs_event *event)


__all__ = ["Event", "Lock", "RLock"]

WAIT_BACKEND = FS_WAIT_BACKEND_NAME.decode("ascii")

# ---------------------------------------------------------------------------
# Arguments

# acquire()'s "wait forever": -1 seconds, compared in nanoseconds as CPython does.
cdef int64_t INFINITE_NS = -1000000000
# The largest timeout threading accepts (TIMEOUT_MAX seconds), in nanoseconds.
cdef int64_t TIMEOUT_MAX_NS = min(int(_thread.TIMEOUT_MAX * 1e6) * 1000, 2**63 - 1)
# Before 3.12 `blocking` had to be an int; since then any object's truth counts.
cdef bint BLOCKING_IS_ANY_OBJECT = sys.version_info >= (3, 12)
_stdlib_allocate_lock = _thread.allocate_lock
_index = __import__("operator").index


cdef int raise_stdlib_error(object blocking, object timeout) except -1:
    """Raise what threading raises for acquire(blocking, timeout).

    Returns 0 if threading accepts the arguments after all (only for the
    __int__-only types that 3.9 still takes with a DeprecationWarning)."""
    probe = _stdlib_allocate_lock()
    if probe.acquire(blocking, timeout):   # never blocks: the lock is new
        probe.release()
    return 0


cdef int64_t seconds_to_ns(object timeout) except? -2:
    """timeout in seconds -> nanoseconds, rounded away from zero like CPython.

    Returns -2 (with no exception set) when the value does not fit."""
    cdef double seconds, ns
    cdef long long whole
    cdef int overflow
    if PyFloat_Check(timeout):
        seconds = PyFloat_AS_DOUBLE(timeout)
        if isnan(seconds):
            return -2
        ns = seconds * 1e9
        ns = ceil(ns) if ns >= 0 else floor(ns)
        if not (-9.223372036854775808e18 <= ns < 9.223372036854775808e18):
            return -2
        return <int64_t>ns
    if not PyLong_Check(timeout):
        try:
            timeout = _index(timeout)
        except TypeError:
            raise_stdlib_error(True, timeout)
            timeout = int(timeout)   # 3.9 accepted it through __int__
    whole = PyLong_AsLongLongAndOverflow(timeout, &overflow)
    if overflow or not (-9223372036 <= whole <= 9223372036):
        return -2
    return whole * 1000000000


cdef bint blocking_flag(object blocking) except -1:
    cdef long long value
    cdef int overflow
    if blocking is True:
        return True
    if blocking is False:
        return False
    if BLOCKING_IS_ANY_OBJECT:
        return bool(blocking)
    try:
        value = PyLong_AsLongLongAndOverflow(_index(blocking), &overflow)
    except TypeError:
        raise_stdlib_error(blocking, -1)
        return int(blocking) != 0    # 3.9 accepted it through __int__
    if overflow or not (-2147483648 <= value <= 2147483647):
        raise_stdlib_error(blocking, -1)
    return value != 0


cdef int64_t acquire_timeout_ns(object blocking, object timeout) except -2:
    """acquire()'s arguments -> -1 (wait forever), 0 (don't wait) or a timeout in ns."""
    cdef bint block = blocking_flag(blocking)
    cdef int64_t ns = seconds_to_ns(timeout)
    if ns == -2 or (not block and ns != INFINITE_NS) or (ns < 0 and ns != INFINITE_NS) \
            or ns > TIMEOUT_MAX_NS:
        raise_stdlib_error(blocking, timeout)
        raise AssertionError(f"fastsync rejected acquire({blocking!r}, {timeout!r}) "
                             "but threading accepts it")
    if not block:
        return 0
    return -1 if ns == INFINITE_NS else ns


cdef inline bint is_wait_forever(object timeout) except -1:
    """True for the default timeout, -1 (int or float), without a full parse."""
    return (type(timeout) is int or type(timeout) is float) and timeout == -1


cdef inline int64_t deadline_for(int64_t timeout_ns) noexcept:
    return FS_NO_DEADLINE if timeout_ns < 0 else fs_deadline_after(timeout_ns)


# ---------------------------------------------------------------------------
# Blocking: the only places the GIL is released

cdef bint lock_acquire_blocking(fs_lock *lock, int64_t timeout_ns) except -1:
    cdef int64_t deadline = deadline_for(timeout_ns)
    cdef fs_result result
    while True:
        with nogil:
            result = fs_lock_acquire_until(lock, deadline)
        if result != FS_INTERRUPTED:
            return result == FS_ACQUIRED
        PyErr_CheckSignals()    # raises what a handler raised; nothing is held


cdef bint event_wait_blocking(fs_event *event, uint32_t observed_state,
                              int64_t timeout_ns) except -1:
    cdef int64_t deadline = deadline_for(timeout_ns)
    cdef fs_result result
    while True:
        with nogil:
            result = fs_event_wait_until(event, observed_state, deadline)
        if result != FS_INTERRUPTED:
            return result == FS_ACQUIRED
        PyErr_CheckSignals()


# ---------------------------------------------------------------------------
# Lock

@cython.final
cdef class Lock:
    """A primitive lock, like threading.Lock; any thread may release it."""

    cdef fs_lock _lock   # all-zero (unlocked) from allocation
    cdef object __weakref__

    def __init__(self):
        pass

    def acquire(self, blocking=True, timeout=-1):
        """Acquire the lock, blocking or not, with an optional timeout in seconds.

        Returns True if the lock was acquired, False if not."""
        cdef int64_t timeout_ns = -1
        if blocking is not True or not is_wait_forever(timeout):
            timeout_ns = acquire_timeout_ns(blocking, timeout)
        if fs_lock_try_acquire(&self._lock):
            return True
        if timeout_ns == 0:
            return False
        return lock_acquire_blocking(&self._lock, timeout_ns)

    def __enter__(self):
        if not fs_lock_try_acquire(&self._lock):
            lock_acquire_blocking(&self._lock, -1)
        return True

    def release(self):
        """Release the lock; RuntimeError if it is not locked."""
        if not fs_lock_release(&self._lock):
            raise RuntimeError("release unlocked lock")

    def __exit__(self, *exc_info):
        if not fs_lock_release(&self._lock):
            raise RuntimeError("release unlocked lock")

    def locked(self):
        """True if the lock is held by some thread."""
        return fs_lock_is_locked(&self._lock)

    def _at_fork_reinit(self):
        fs_lock_init(&self._lock)

    def __repr__(self):
        state = "locked" if fs_lock_is_locked(&self._lock) else "unlocked"
        return f"<{state} {type_name(self)} object at {id(self):#x}>"

    def __reduce_ex__(self, protocol):
        raise cannot_pickle(self)


# ---------------------------------------------------------------------------
# RLock

cdef unsigned long thread_id() noexcept nogil:
    return PyThread_get_thread_ident()


cdef class RLock:
    """A reentrant lock, like threading.RLock; only its owner may release it."""

    cdef fs_rlock _rlock   # all-zero (unlocked, no owner) from allocation
    cdef object __weakref__

    def __init__(self):
        pass

    @cython.final
    cdef inline bint _enter_owned(self, uintptr_t me) except -1:
        """Count one more level if `me` holds the lock already."""
        cdef uintptr_t count
        if not fs_rlock_is_owned(&self._rlock, me):
            return False
        count = fs_load_uptr_relaxed(&self._rlock.count)
        if count >= FS_RLOCK_COUNT_MAX:
            raise OverflowError("Internal lock count overflowed")
        fs_store_uptr_relaxed(&self._rlock.count, count + 1)
        return True

    def acquire(self, blocking=True, timeout=-1):
        """Acquire the lock, or count one more level if this thread holds it.

        Returns True if the lock was acquired, False if not."""
        cdef int64_t timeout_ns = -1
        cdef uintptr_t me = thread_id()
        if blocking is not True or not is_wait_forever(timeout):
            timeout_ns = acquire_timeout_ns(blocking, timeout)
        if self._enter_owned(me):
            return True
        if not fs_lock_try_acquire(&self._rlock.lock):
            if timeout_ns == 0 or not lock_acquire_blocking(&self._rlock.lock, timeout_ns):
                return False
        fs_rlock_take(&self._rlock, me, 1)
        return True

    def __enter__(self):
        cdef uintptr_t me = thread_id()
        if self._enter_owned(me):
            return True
        if not fs_lock_try_acquire(&self._rlock.lock):
            lock_acquire_blocking(&self._rlock.lock, -1)
        fs_rlock_take(&self._rlock, me, 1)
        return True

    @cython.final
    cdef inline int _release_one(self) except -1:
        cdef uintptr_t count
        if not fs_rlock_is_owned(&self._rlock, thread_id()):
            raise RuntimeError("cannot release un-acquired lock")
        count = fs_load_uptr_relaxed(&self._rlock.count)
        if count > 1:
            fs_store_uptr_relaxed(&self._rlock.count, count - 1)
        else:
            fs_rlock_release_all(&self._rlock)
        return 0

    def release(self):
        """Undo one acquire(); RuntimeError unless this thread holds the lock."""
        self._release_one()

    def __exit__(self, *exc_info):
        self._release_one()

    def locked(self):
        """True if the lock is held by some thread (as RLock.locked() in 3.14)."""
        return fs_lock_is_locked(&self._rlock.lock)

    def _is_owned(self):
        return fs_rlock_is_owned(&self._rlock, thread_id())

    def _recursion_count(self):
        if fs_rlock_is_owned(&self._rlock, thread_id()):
            return fs_load_uptr_relaxed(&self._rlock.count)
        return 0

    def _release_save(self):
        # Like CPython, this checks only that the lock is held, not by whom;
        # threading.Condition checks ownership before calling it.
        cdef uintptr_t count = fs_load_uptr_relaxed(&self._rlock.count)
        cdef uintptr_t owner = fs_load_uptr_relaxed(&self._rlock.owner)
        if count == 0:
            raise RuntimeError("cannot release un-acquired lock")
        fs_rlock_release_all(&self._rlock)
        return (count, owner)

    def _acquire_restore(self, state, /):
        cdef unsigned long count, owner
        if not (isinstance(state, (tuple, list)) and len(state) == 2):
            raise TypeError("_acquire_restore() argument 1 must be a 2-item "
                            f"sequence, not {type(state).__name__}")
        count = PyLong_AsUnsignedLongMask(_index(state[0]))
        owner = PyLong_AsUnsignedLongMask(_index(state[1]))
        if not fs_lock_try_acquire(&self._rlock.lock):
            lock_acquire_blocking(&self._rlock.lock, -1)
        fs_rlock_take(&self._rlock, owner, count)

    def _at_fork_reinit(self):
        fs_rlock_init(&self._rlock)

    def __repr__(self):
        count = fs_load_uptr_relaxed(&self._rlock.count)
        owner = fs_load_uptr_relaxed(&self._rlock.owner)
        state = "locked" if count else "unlocked"
        return (f"<{state} {type_name(self)} object owner={owner} count={count} "
                f"at {id(self):#x}>")

    def __reduce_ex__(self, protocol):
        raise cannot_pickle(self)


# ---------------------------------------------------------------------------
# Event

cdef class Event:
    """A flag threads can wait for, like threading.Event."""

    cdef fs_event _event   # all-zero (clear) from allocation
    cdef object __weakref__

    def __init__(self):
        pass

    def is_set(self):
        """True if the flag is set."""
        return fs_event_is_set(&self._event)

    def isSet(self):
        """Deprecated alias of is_set()."""
        if ISSET_WARNS:
            warnings.warn(ISSET_WARNING, DeprecationWarning, stacklevel=2)
        return fs_event_is_set(&self._event)

    def set(self):
        """Set the flag and wake every waiting thread."""
        fs_event_set(&self._event)

    def clear(self):
        """Clear the flag."""
        fs_event_clear(&self._event)

    def wait(self, timeout=None):
        """Block until the flag is set or the timeout (seconds) passes.

        Returns True if the flag was set, False on timeout."""
        cdef uint32_t observed = fs_event_state(&self._event)
        cdef int64_t timeout_ns = -1
        if observed & FS_EVENT_SET:
            return True
        if timeout is not None:
            # threading.Event compares with 0 first: same errors, same results
            # for NaN and negative values.
            if not timeout > 0:
                return fs_event_is_set(&self._event)
            timeout_ns = acquire_timeout_ns(True, timeout)
        return event_wait_blocking(&self._event, observed, timeout_ns)

    def _at_fork_reinit(self):
        fs_event_reinit_after_fork(&self._event)

    def __repr__(self):
        state = "set" if fs_event_is_set(&self._event) else "unset"
        return f"<{type_name(self)} at {id(self):#x}: {state}>"

    def __reduce_ex__(self, protocol):
        raise cannot_pickle(self)


def _after_fork_in_child():
    fs_wait_after_fork_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


# ---------------------------------------------------------------------------
# The benchmark's floor: methods of the same shapes that do nothing, so
# bench/ can show the cost of the Python call itself, which no lock can beat.

@cython.final
cdef class _CallFloor:
    """Not a lock: every method returns at once.  For bench/ only."""

    def acquire(self, blocking=True, timeout=-1):
        return True

    def release(self):
        pass

    def __enter__(self):
        return True

    def __exit__(self, *exc_info):
        pass

    def is_set(self):
        return True

    def set(self):
        pass

    def clear(self):
        pass

    def wait(self, timeout=None):
        return True
