# cython: language_level=3, binding=False, embedsignature=True, embedsignature.format=clinic
# cython: boundscheck=False, wraparound=False, auto_pickle=False
# cython: always_allow_keywords=False
# (That makes methods without arguments METH_NOARGS and those with one
# required argument METH_O: the interpreter calls them on its cheapest paths.)
"""The compiled backend: the Python types over csrc/fastsync.h.

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
from cpython.pythread cimport PyThread_start_new_thread
from libc.math cimport ceil, floor, isnan
from libc.stdint cimport UINT64_MAX, int64_t, uint32_t, uint64_t, uintptr_t

import _thread
import atexit
import os
import sys
import warnings

from fastsync._barrier import BrokenBarrierError, make_barrier_class
from fastsync._common import (ISSET_WARNING, ISSET_WARNS, NOTIFYALL_WARNING, WAIT_TESTS_LE, cannot_pickle,
                              check_rlock_arguments, type_name)
from fastsync._env import NO_SPIN, env_flag

cdef extern from "Python.h":
    unsigned long PyLong_AsUnsignedLongMask(object) except? -1
    Py_ssize_t PyLong_AsSsize_t(object) except? -1

cdef extern from "fs_wait.h":
    const char *FS_WAIT_BACKEND_NAME
    ctypedef struct fs_atomic_u32:
        pass
    ctypedef enum fs_wait_result:
        pass
    fs_wait_result fs_wait(fs_atomic_u32 *addr, uint32_t expected, int64_t deadline_ns) nogil
    void fs_wake_one(fs_atomic_u32 *addr) nogil
    uint32_t fs_load_u32(const fs_atomic_u32 *addr) nogil
    void fs_store_u32(fs_atomic_u32 *addr, uint32_t value) nogil

cdef extern from "fastsync.h" nogil:
    int64_t FS_NO_DEADLINE
    ctypedef enum fs_result:
        FS_ACQUIRED
        FS_TIMED_OUT
        FS_INTERRUPTED
    int64_t fs_deadline_after(int64_t timeout_ns)
    int64_t fs_monotonic_ns()
    fs_wait_result fs_spin_then_wait(fs_atomic_u32 *addr, uint32_t expected,
                                     int64_t deadline_ns, int64_t spin_ns)
    bint fs_spin_while(const fs_atomic_u32 *addr, uint32_t expected,
                       int64_t deadline_ns, int64_t spin_ns)
    void fs_spin_set_limit(uint32_t threads)
    uint32_t fs_spinning_threads()
    void fs_after_fork_child()

    ctypedef struct fs_lock:
        pass
    void fs_lock_init(fs_lock *lock)
    bint fs_lock_try_acquire(fs_lock *lock)
    bint fs_lock_is_locked(const fs_lock *lock)
    bint fs_lock_release(fs_lock *lock)
    bint fs_lock_try_acquire_contended(fs_lock *lock)
    void fs_lock_note_owner_awaits_gil(fs_lock *lock)
    bint fs_lock_note_owner_has_gil(fs_lock *lock)
    bint fs_lock_take_from_gil_waiter(fs_lock *lock)
    fs_result fs_lock_wait_until(fs_lock *lock, int64_t *waiting_since,
                                 int64_t deadline_ns, int64_t spin_ns)

    unsigned long FS_RLOCK_COUNT_MAX
    ctypedef struct fs_atomic_uptr:
        pass
    ctypedef struct fs_rlock:
        fs_lock lock
        fs_atomic_uptr owner
    uintptr_t fs_load_uptr_relaxed(const fs_atomic_uptr *a)
    void fs_store_uptr_relaxed(fs_atomic_uptr *a, uintptr_t v)
    void fs_rlock_init(fs_rlock *r)
    uintptr_t fs_rlock_owned_count(const fs_rlock *r, uintptr_t me)
    bint fs_rlock_is_owned(const fs_rlock *r, uintptr_t me)
    uintptr_t fs_rlock_count(const fs_rlock *r)
    void fs_rlock_set_count(fs_rlock *r, uintptr_t count)
    void fs_rlock_take_first(fs_rlock *r, uintptr_t me)
    void fs_rlock_take(fs_rlock *r, uintptr_t me, uintptr_t count)
    bint fs_rlock_release_one(fs_rlock *r, uintptr_t me)
    void fs_rlock_release_all(fs_rlock *r)

    uint32_t FS_EVENT_SET
    ctypedef struct fs_event:
        pass
    uint32_t fs_event_state(const fs_event *event)
    bint fs_event_is_set(const fs_event *event)
    void fs_event_set(fs_event *event)
    void fs_event_clear(fs_event *event)
    fs_result fs_event_wait_until(fs_event *event, uint32_t observed_state,
                                  int64_t deadline_ns, int64_t spin_ns)
    void fs_event_reinit_after_fork(fs_event *event)

    ctypedef struct fs_semaphore:
        pass
    void fs_semaphore_init(fs_semaphore *sem, uint64_t value)
    bint fs_semaphore_try_acquire(fs_semaphore *sem)
    bint fs_semaphore_release(fs_semaphore *sem, uint64_t n, uint64_t limit)
    fs_result fs_semaphore_acquire_until(fs_semaphore *sem, int64_t deadline_ns,
                                         int64_t spin_ns)
    uint64_t fs_semaphore_value(const fs_semaphore *sem)

    ctypedef struct fs_cond_waiter:
        pass
    ctypedef struct fs_cond:
        pass
    void fs_cond_init(fs_cond *cond)
    fs_cond_waiter *fs_cond_enqueue(fs_cond *cond)
    bint fs_cond_dequeue(fs_cond *cond, fs_cond_waiter *waiter)
    uint64_t fs_cond_notify(fs_cond *cond, uint64_t n)
    uint64_t fs_cond_length(fs_cond *cond)
    fs_result fs_cond_wait_notified(fs_cond_waiter *waiter, int64_t deadline_ns,
                                     int64_t spin_ns)


# ---------------------------------------------------------------------------
# __exit__ without an argument tuple
#
# threading's __exit__ takes any arguments, (*exc_info).  A Cython def with
# *args makes CPython build a tuple on every `with` exit, which costs about a
# third of an uncontended `with lock:`.  So the classes below get an __exit__
# written as a METH_FASTCALL C function with the same signature, which ignores
# its arguments and calls the class's release code (registered per slot).

cdef extern from *:
    """
    typedef PyObject *(*fastsync_exit_fn)(PyObject *self);
    static fastsync_exit_fn fastsync_exit_impl[4];

    /* Since 3.15 the __exit__ of _thread's locks takes exactly three
     * arguments; Lock's and RLock's (slots 0 and 1) then do too.  A `with`
     * passes three, so it never reaches the flag. */
    static int fastsync_exit_strict[4];
    static int fastsync_lock_exit_takes_three;

    static PyObject *fastsync_exit_refuse(Py_ssize_t nargs)
    {
        PyErr_Format(PyExc_TypeError, "__exit__ expected 3 arguments, got %zd", nargs);
        return NULL;
    }

    #define FASTSYNC_EXIT(n) \
        static PyObject *fastsync_exit_##n(PyObject *self, PyObject *const *args, \
                                           Py_ssize_t nargs) \
        { (void)args; \
          if (nargs != 3 && fastsync_exit_strict[n]) return fastsync_exit_refuse(nargs); \
          return fastsync_exit_impl[n](self); }
    FASTSYNC_EXIT(0)
    FASTSYNC_EXIT(1)
    FASTSYNC_EXIT(2)
    FASTSYNC_EXIT(3)

    #define FASTSYNC_EXIT_DEF(n) \
        {"__exit__", (PyCFunction)(void (*)(void))fastsync_exit_##n, METH_FASTCALL, \
         "__exit__($self, /, *exc_info)\\n--\\n\\nRelease; the arguments are ignored."}
    static PyMethodDef fastsync_exit_defs[4] = {
        FASTSYNC_EXIT_DEF(0), FASTSYNC_EXIT_DEF(1), FASTSYNC_EXIT_DEF(2), FASTSYNC_EXIT_DEF(3)
    };
    #define FASTSYNC_EXIT3_DEF(n) \
        {"__exit__", (PyCFunction)(void (*)(void))fastsync_exit_##n, METH_FASTCALL, \
         "__exit__($self, exc_type, exc_value, exc_tb, /)\\n--\\n\\nRelease; the arguments are ignored."}
    static PyMethodDef fastsync_exit3_defs[2] = { FASTSYNC_EXIT3_DEF(0), FASTSYNC_EXIT3_DEF(1) };

    static int fastsync_install_exit(PyObject *type, int slot, fastsync_exit_fn impl)
    {
        PyTypeObject *tp = (PyTypeObject *)type;
        PyObject *method;
        int failed;
        fastsync_exit_impl[slot] = impl;
        fastsync_exit_strict[slot] = slot < 2 && fastsync_lock_exit_takes_three;
        method = PyDescr_NewMethod(tp, fastsync_exit_strict[slot] ? &fastsync_exit3_defs[slot]
                                                                  : &fastsync_exit_defs[slot]);
        if (method == NULL)
            return -1;
        failed = PyDict_SetItemString(tp->tp_dict, "__exit__", method);
        Py_DECREF(method);
        PyType_Modified(tp);
        return failed;
    }
    """
    ctypedef object (*fastsync_exit_fn)(object)
    int fastsync_install_exit(object type, int slot, fastsync_exit_fn impl) except -1
    int fastsync_lock_exit_takes_three


def _lock_exit_takes_three():
    lock = _thread.allocate_lock()
    lock.acquire()
    try:
        lock.__exit__(None, None, None, None)
    except TypeError:
        return True
    return False

fastsync_lock_exit_takes_three = _lock_exit_takes_three()


__all__ = ["Barrier", "BoundedSemaphore", "Condition", "Event", "Lock", "RLock", "Semaphore"]

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

    Returns 0 if threading accepts the arguments after all (a timeout that
    has only __float__, which 3.15 takes)."""
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
            return seconds_to_ns(float(timeout))   # accepted through __float__ (3.15)
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


# CPython's cached small ints: an identity test is the cheapest look at a value.
cdef object MINUS_ONE = -1
cdef object ZERO = 0
cdef object ONE = 1


cdef inline bint is_wait_forever(object timeout) except -1:
    """True for the default timeout, -1 (int or float), without a full parse."""
    if timeout is MINUS_ONE:
        return True
    return (type(timeout) is int or type(timeout) is float) and timeout == -1


cdef inline int64_t timeout_for(object blocking, object timeout) except -2:
    """acquire_timeout_ns with the two common calls, acquire() and
    acquire(False), answered without a full parse."""
    if is_wait_forever(timeout):
        if blocking is True:
            return -1
        if blocking is False:
            return 0
    return acquire_timeout_ns(blocking, timeout)


# How threading's Condition.wait tells a timeout to wait for from one that
# only asks for a try: `timeout > 0` up to 3.13, `not timeout <= 0` since,
# which lets NaN through to the lock's refusal (see fastsync._common).
cdef bint WAIT_TESTS_LE_C = WAIT_TESTS_LE


cdef inline bint is_positive(object timeout) except -1:
    """Whether threading's Condition.wait would wait for `timeout`, without
    the generic comparison for int and float.  The two cheapest answers stay
    inline at the call site (wait(0) is timed against an empty call); the
    rest is a call.  NaN counts as positive where threading then refuses it."""
    if timeout is ZERO:
        return False
    if type(timeout) is float:
        if PyFloat_AS_DOUBLE(timeout) > 0:
            return True
        return WAIT_TESTS_LE_C and isnan(PyFloat_AS_DOUBLE(timeout))
    return is_positive_other(timeout)


cdef bint is_positive_other(object timeout) except -1:
    cdef int overflow
    if type(timeout) is int:
        return PyLong_AsLongLongAndOverflow(timeout, &overflow) > 0 or overflow > 0
    if WAIT_TESTS_LE_C:
        return not timeout <= 0
    return timeout > 0


cdef inline int64_t deadline_for(int64_t timeout_ns) noexcept:
    return FS_NO_DEADLINE if timeout_ns < 0 else fs_deadline_after(timeout_ns)


# ---------------------------------------------------------------------------
# Spinning: a thread that must block keeps looking for a while before it sleeps
#
# Handing a lock, an event or a notification from one Python thread to another
# costs about 20 us here when the receiver slept, almost all of it the kernel
# waking an idle CPU, and 1-3 us when the receiver was still looking (README.md,
# "Spinning").  A wait that outlasts the spin costs that CPU time once.

# Long enough to cover the Python code a partner runs between two hand-offs,
# short enough that a thread which then sleeps has used little CPU.
DEFAULT_SPIN_NS = 20_000

cdef int64_t spin_budget_ns = 0
# CPython runs signal handlers in the main thread only, and a signal that
# arrives while a thread spins doesn't end the sleep that follows (only a
# sleep in progress is interrupted).  So the main thread never spins, and
# Ctrl-C keeps ending its waits at once.
cdef unsigned long signal_thread_ident = 0


def _usable_cpus():
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _set_spin_ns(ns):
    """Set how long a blocked thread (other than the main thread) looks before
    it sleeps, in nanoseconds (0: never); returns the previous value.  On by
    default where more than one CPU is usable, unless FASTSYNC_NO_SPIN is set.
    For tests and measurements; not part of the API."""
    global spin_budget_ns
    previous = spin_budget_ns
    ns = _index(ns)
    if not 0 <= ns <= 10**9:
        raise ValueError("spin time must be between 0 and 10**9 ns")
    spin_budget_ns = ns
    return previous


def _spinning_threads():
    """How many threads spin right now.  For tests; not part of the API."""
    return fs_spinning_threads()


cdef inline int64_t spin_ns_for_this_thread() noexcept nogil:
    return 0 if thread_id() == signal_thread_ident else spin_budget_ns


# The GIL.  A woken thread still has to take the GIL, and the thread that woke
# it usually holds it for a little longer (it returns from set() or notify()
# and runs on until it blocks itself).  A thread that asks for the GIL then
# sleeps in CPython's own wait, and pays the wake-up the spin avoided.  So a
# thread that was handed something keeps looking, for up to its spin time,
# until some thread releases the GIL in one of our waits, and only then asks.
# The flag is only a hint (the GIL also changes hands elsewhere, unseen): a
# wrong hint costs at most the spin time, never correctness.
cdef fs_atomic_u32 gil_released_in_wait   # 1: released by a waiter, not yet retaken here

cdef inline void note_gil_released() noexcept nogil:
    fs_store_u32(&gil_released_in_wait, 1)

cdef inline void note_gil_taken() noexcept nogil:
    fs_store_u32(&gil_released_in_wait, 0)

cdef extern from *:
    """
    /* A free-threaded build has no GIL to wait for. */
    #if defined(Py_GIL_DISABLED)
    #define FASTSYNC_GIL_DISABLED 1
    #else
    #define FASTSYNC_GIL_DISABLED 0
    #endif
    """
    const bint GIL_DISABLED "FASTSYNC_GIL_DISABLED"

cdef inline void await_gil_release(int64_t spin_ns) noexcept nogil:
    """Before asking for the GIL after a wait that was ended by another thread."""
    if not GIL_DISABLED:
        fs_spin_while(&gil_released_in_wait, 0, FS_NO_DEADLINE, spin_ns)


# ---------------------------------------------------------------------------
# Blocking: the only places the GIL is released

cdef extern from *:
    """
    #if defined(PYPY_VERSION)
    #  define fastsync_is_finalizing() 0
    #elif PY_VERSION_HEX >= 0x030D0000
    #  define fastsync_is_finalizing() Py_IsFinalizing()
    #else
    #  define fastsync_is_finalizing() _Py_IsFinalizing()
    #endif
    """
    bint fastsync_is_finalizing() nogil

# The thread that runs the interpreter's exit (atexit callbacks, then
# finalization), once it has begun; 0 before.
cdef fs_atomic_uptr exiting_thread_ident

def _note_exiting_thread():
    fs_store_uptr_relaxed(&exiting_thread_ident, thread_id())

cdef inline bint finalizing_here() noexcept nogil:
    """Whether the interpreter is being finalized by this thread."""
    cdef uintptr_t exiting = fs_load_uptr_relaxed(&exiting_thread_ident)
    return exiting == thread_id() and fastsync_is_finalizing()

cdef inline bint finalizing_elsewhere() noexcept nogil:
    """Whether the interpreter is being finalized by another thread: then
    this thread never gets the GIL back (it is ended, or parked for ever)."""
    cdef uintptr_t exiting = fs_load_uptr_relaxed(&exiting_thread_ident)
    return exiting != 0 and exiting != thread_id() and fastsync_is_finalizing()


cdef bint lock_acquire_blocking(fs_lock *lock, int64_t timeout_ns) except -1:
    """Wait for the lock; the caller's uncontended attempt has failed.

    A woken waiter takes the lock before it asks for the GIL (see
    fs_lock_wait_until).  If the interpreter is finalized meanwhile by
    another thread, this one never gets the GIL: it gives the lock back
    if it can still tell in time, and the finalizing thread takes it over
    if not (see fs_lock_note_owner_awaits_gil)."""
    cdef int64_t deadline = deadline_for(timeout_ns)
    cdef int64_t spin_ns = spin_ns_for_this_thread()
    cdef int64_t waiting_since = 0
    cdef fs_result result
    cdef bint gave_back
    if finalizing_here() and fs_lock_take_from_gil_waiter(lock):
        return True
    while True:
        gave_back = False
        with nogil:
            note_gil_released()
            result = fs_lock_wait_until(lock, &waiting_since, deadline, spin_ns)
            if result == FS_ACQUIRED:
                await_gil_release(spin_ns)
                fs_lock_note_owner_awaits_gil(lock)
                if finalizing_elsewhere() and fs_lock_note_owner_has_gil(lock):
                    fs_lock_release(lock)
                    gave_back = True
        note_gil_taken()
        if gave_back:
            continue   # not ended after all: wait again
        if result == FS_ACQUIRED:
            # Had the lock been taken over, this thread would not be here.
            fs_lock_note_owner_has_gil(lock)
            return True
        if result == FS_TIMED_OUT:
            return False
        PyErr_CheckSignals()    # raises what a handler raised; nothing is held


cdef bint event_wait_blocking(fs_event *event, uint32_t observed_state,
                              int64_t timeout_ns) except -1:
    cdef int64_t deadline = deadline_for(timeout_ns)
    cdef int64_t spin_ns = spin_ns_for_this_thread()
    cdef fs_result result
    while True:
        with nogil:
            note_gil_released()
            result = fs_event_wait_until(event, observed_state, deadline, spin_ns)
            if result == FS_ACQUIRED:
                await_gil_release(spin_ns)
        note_gil_taken()
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
        cdef int64_t timeout_ns = timeout_for(blocking, timeout)
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

    # __exit__: lock_exit, installed below the class.

    def locked(self):
        """True if the lock is held by some thread."""
        return fs_lock_is_locked(&self._lock)

    def _at_fork_reinit(self):
        fs_lock_init(&self._lock)

    # threading.Lock's obsolete synonyms, which its objects still have.
    acquire_lock = acquire
    release_lock = release
    locked_lock = locked

    def __repr__(self):
        state = "locked" if fs_lock_is_locked(&self._lock) else "unlocked"
        return f"<{state} {type_name(self)} object at {id(self):#x}>"

    def __reduce_ex__(self, protocol):
        raise cannot_pickle(self)


cdef object lock_exit(object self):
    if not fs_lock_release(&(<Lock>self)._lock):
        raise RuntimeError("release unlocked lock")

fastsync_install_exit(Lock, 0, lock_exit)


# Lock.acquire() and acquire(False) are the calls that count, and on the
# newest Pythons threading's own call costs no more than Cython's argument
# parsing.  So Lock gets an acquire written in C that answers those calls
# (no keywords, blocking given as True or False or not at all) when the lock
# is free, or held and not to be waited for, and hands every other call to
# the Cython method above, which parses the arguments and blocks.

cdef extern from *:
    """
    typedef PyObject *(*fastsync_fastcall_kw)(PyObject *, PyObject *const *,
                                              Py_ssize_t, PyObject *);
    static fastsync_fastcall_kw fastsync_lock_acquire_parsed;
    static Py_ssize_t fastsync_lock_offset;   /* of a Lock's fs_lock */

    static PyObject *fastsync_lock_acquire(PyObject *self, PyObject *const *args,
                                           Py_ssize_t nargs, PyObject *kwnames)
    {
        if (kwnames == NULL && nargs <= 1) {
            PyObject *blocking = nargs ? args[0] : Py_True;
            if (blocking == Py_True || blocking == Py_False) {
                if (fs_lock_try_acquire((fs_lock *)((char *)self + fastsync_lock_offset)))
                    Py_RETURN_TRUE;
                if (blocking == Py_False)
                    Py_RETURN_FALSE;
            }
        }
        return fastsync_lock_acquire_parsed(self, args, nargs, kwnames);
    }

    static PyMethodDef fastsync_lock_acquire_def = {
        "acquire", (PyCFunction)(void (*)(void))fastsync_lock_acquire,
        METH_FASTCALL | METH_KEYWORDS, NULL
    };

    /* Puts fastsync_lock_acquire in place of the type's acquire (and its
     * alias acquire_lock), with its docstring.  Leaves the type alone where
     * Cython did not make acquire METH_FASTCALL | METH_KEYWORDS (PyPy). */
    static int fastsync_install_lock_acquire(PyObject *type, Py_ssize_t lock_offset)
    {
        PyTypeObject *tp = (PyTypeObject *)type;
        PyMethodDef *def = tp->tp_methods;
        PyObject *method;
        int failed;
        while (def != NULL && def->ml_name != NULL && strcmp(def->ml_name, "acquire") != 0)
            def++;
        if (def == NULL || def->ml_name == NULL
                || def->ml_flags != (METH_FASTCALL | METH_KEYWORDS))
            return 0;
        fastsync_lock_acquire_parsed = (fastsync_fastcall_kw)(void (*)(void))def->ml_meth;
        fastsync_lock_offset = lock_offset;
        fastsync_lock_acquire_def.ml_doc = def->ml_doc;
        method = PyDescr_NewMethod(tp, &fastsync_lock_acquire_def);
        if (method == NULL)
            return -1;
        failed = PyDict_SetItemString(tp->tp_dict, "acquire", method) < 0
                 || PyDict_SetItemString(tp->tp_dict, "acquire_lock", method) < 0;
        Py_DECREF(method);
        PyType_Modified(tp);
        return failed ? -1 : 0;
    }
    """
    int fastsync_install_lock_acquire(object type, Py_ssize_t lock_offset) except -1


cdef Py_ssize_t lock_state_offset():
    cdef Lock sample = Lock()
    return <char *>&sample._lock - <char *><void *>sample

fastsync_install_lock_acquire(Lock, lock_state_offset())


# ---------------------------------------------------------------------------
# RLock

cdef extern from *:
    """
    /* threading.get_ident() without the call into libpython: CPython's
     * PyThread_get_thread_ident is exactly this on both families. */
    #if defined(_WIN32)
    #  define fastsync_thread_ident() ((unsigned long)GetCurrentThreadId())
    #else
    #  include <pthread.h>
    #  if defined(__x86_64__) && defined(__linux__) && defined(__GLIBC__)
    /* x86-64 keeps the thread pointer at %fs:0, and glibc's pthread_self()
     * returns it (its thread descriptor starts at the thread pointer).
     * Reading it inline saves a call through the PLT, twice per RLock
     * acquire+release, and deciding here rather than at load time saves a
     * test of a flag in each.  The module checks the two agree when it loads.
     * Other C libraries (musl, Android's) take the call. */
    #    define FASTSYNC_FS_SELF 1
    static inline unsigned long fastsync_thread_ident(void)
    {
        unsigned long self;
        __asm__ ("mov %%fs:0, %0" : "=r" (self));
        return self;
    }
    #  else
    #    define fastsync_thread_ident() ((unsigned long)pthread_self())
    #  endif
    #endif

    /* 1: the id is read inline and agrees with pthread_self(); 0: it comes
     * from a call; -1: read inline but it disagrees, which the module
     * refuses to load with. */
    static int fastsync_thread_ident_check(void)
    {
    #if defined(FASTSYNC_FS_SELF)
        return fastsync_thread_ident() == (unsigned long)pthread_self() ? 1 : -1;
    #else
        return 0;
    #endif
    }
    """
    unsigned long fastsync_thread_ident() nogil
    int fastsync_thread_ident_check()


_ident_check = fastsync_thread_ident_check()
if _ident_check < 0:
    # Owners would be recorded under ids threading.get_ident() never returns.
    raise ImportError("fastsync._compiled: the thread id read from %fs:0 is not "
                      "pthread_self() on this C library; please report this")
# True where the thread id is read inline (x86-64 Linux with glibc); elsewhere
# it comes from a call.  Tests check it.
THREAD_IDENT_INLINE = _ident_check == 1
del _ident_check

# Both need thread_id(), so they are set once it is ready.
signal_thread_ident = __import__("threading").main_thread().ident
_cpus = _usable_cpus()
if _cpus > 1 and not env_flag(NO_SPIN):
    _set_spin_ns(DEFAULT_SPIN_NS)
    # No more spinners than CPUs.  One fewer (a CPU kept for the GIL's
    # holder) made two-thread hand-offs 2-5x slower at times: a thread that
    # starts to wait while its partner is still leaving its spin found no room
    # and slept.
    fs_spin_set_limit(_cpus)
del _cpus


cdef inline unsigned long thread_id() noexcept nogil:
    return fastsync_thread_ident()


# 3.14 rebuilt _thread.RLock on a recursive mutex whose depth beyond the
# first level is a size_t, like our `extra`: whoever is recorded as owner owns
# it even at depth 0 (which _acquire_restore((0, me)) makes), the depth wraps
# around instead of overflowing, _acquire_restore reads the count as a
# Py_ssize_t, and _release_save refuses unless the caller owns the lock.
# Asked of _thread: a count above sys.maxsize is refused only by the new one.
def _rlock_is_recursive_mutex():
    probe = _thread.RLock()
    try:
        probe._acquire_restore((sys.maxsize + 1, 1))
    except OverflowError:
        return True
    return False

cdef bint RLOCK_IS_RECURSIVE_MUTEX = _rlock_is_recursive_mutex()
_stdlib_rlock = _thread.RLock


cdef class RLock:
    """A reentrant lock, like threading.RLock; only its owner may release it."""

    cdef fs_rlock _rlock   # all-zero (unlocked, no owner) from allocation
    cdef object __weakref__

    def __init__(self, *args, **kwargs):
        if args or kwargs:
            check_rlock_arguments(args, kwargs, stacklevel=1)   # Cython adds no frame

    @cython.final
    cdef inline bint _acquire(self, int64_t timeout_ns) except -1:
        """Take the lock, or count one more level if this thread holds it;
        timeout_ns: -1 waits for ever, 0 doesn't wait."""
        cdef uintptr_t me = thread_id()
        # A free lock can't be ours: the uncontended case never looks at the owner.
        if fs_lock_try_acquire(&self._rlock.lock):
            fs_rlock_take_first(&self._rlock, me)
            return True
        return self._acquire_held(me, timeout_ns)

    @cython.final
    cdef bint _acquire_held(self, uintptr_t me, int64_t timeout_ns) except -1:
        """_acquire when the lock is held: by this thread, or another one."""
        cdef uintptr_t count = fs_rlock_owned_count(&self._rlock, me)
        if RLOCK_IS_RECURSIVE_MUTEX:
            if fs_load_uptr_relaxed(&self._rlock.owner) == me:
                fs_rlock_set_count(&self._rlock, count + 1)   # wraps, as 3.14's does
                return True
        elif count != 0:
            if count >= FS_RLOCK_COUNT_MAX:
                raise OverflowError("Internal lock count overflowed")
            fs_rlock_set_count(&self._rlock, count + 1)
            return True
        if timeout_ns == 0 or not lock_acquire_blocking(&self._rlock.lock, timeout_ns):
            return False
        fs_rlock_take_first(&self._rlock, me)
        return True

    def acquire(self, blocking=True, timeout=-1):
        """Acquire the lock, or count one more level if this thread holds it.

        Returns True if the lock was acquired, False if not."""
        return self._acquire(timeout_for(blocking, timeout))

    def __enter__(self):
        self._acquire(-1)
        return True

    @cython.final
    cdef inline int _release_one(self) except -1:
        if not fs_rlock_release_one(&self._rlock, thread_id()):
            return self._release_unowned()
        return 0

    @cython.final
    cdef int _release_unowned(self) except -1:
        """release() when fs_rlock_release_one refused: the owner at depth 0
        counts down from it on 3.14+ (wrapping); anyone else may not."""
        if RLOCK_IS_RECURSIVE_MUTEX and self._owned(thread_id()):
            fs_rlock_set_count(&self._rlock, <uintptr_t>0 - 1)
            return 0
        raise RuntimeError("cannot release un-acquired lock")

    @cython.final
    cdef bint _owned(self, uintptr_t me) noexcept:
        if RLOCK_IS_RECURSIVE_MUTEX:
            return fs_load_uptr_relaxed(&self._rlock.owner) == me
        return fs_rlock_is_owned(&self._rlock, me)

    def release(self):
        """Undo one acquire(); RuntimeError unless this thread holds the lock."""
        self._release_one()

    # __exit__: rlock_exit, installed below the class.

    def locked(self):
        """True if the lock is held by some thread (as RLock.locked() in 3.14)."""
        return fs_lock_is_locked(&self._rlock.lock)

    def _is_owned(self):
        return self._owned(thread_id())

    def _recursion_count(self):
        return fs_rlock_owned_count(&self._rlock, thread_id())

    def _release_save(self):
        # Up to 3.13, like CPython's, this checks only that the lock is held,
        # not by whom; since then only the owner may.
        cdef uintptr_t count = fs_rlock_count(&self._rlock)
        cdef uintptr_t owner = fs_load_uptr_relaxed(&self._rlock.owner)
        if RLOCK_IS_RECURSIVE_MUTEX:
            if owner != thread_id():
                raise RuntimeError("cannot release un-acquired lock")
        elif count == 0:
            raise RuntimeError("cannot release un-acquired lock")
        fs_rlock_release_all(&self._rlock)
        if RLOCK_IS_RECURSIVE_MUTEX:
            return (<Py_ssize_t>count, owner)   # 3.14+ hands the count back signed
        return (count, owner)

    def _acquire_restore(self, state, /):
        cdef unsigned long count, owner
        try:
            if not (isinstance(state, (tuple, list)) and len(state) == 2):
                raise TypeError
            if RLOCK_IS_RECURSIVE_MUTEX:
                count = <unsigned long>PyLong_AsSsize_t(_index(state[0]))
            else:
                count = PyLong_AsUnsignedLongMask(_index(state[0]))
            owner = PyLong_AsUnsignedLongMask(_index(state[1]))
        except (TypeError, OverflowError):
            # The interpreter's own lock raises the error threading gives.
            _stdlib_rlock()._acquire_restore(state)
            raise
        if not fs_lock_try_acquire(&self._rlock.lock):
            lock_acquire_blocking(&self._rlock.lock, -1)
        fs_rlock_take(&self._rlock, owner, count)

    def _at_fork_reinit(self):
        fs_rlock_init(&self._rlock)

    def __repr__(self):
        count = fs_rlock_count(&self._rlock)
        owner = fs_load_uptr_relaxed(&self._rlock.owner)
        if RLOCK_IS_RECURSIVE_MUTEX:   # held at depth 0 reads as locked too
            state = "locked" if fs_lock_is_locked(&self._rlock.lock) else "unlocked"
        else:
            state = "locked" if count else "unlocked"
        return (f"<{state} {type_name(self)} object owner={owner} count={count} "
                f"at {id(self):#x}>")

    def __reduce_ex__(self, protocol):
        raise cannot_pickle(self)


cdef object rlock_exit(object self):
    (<RLock>self)._release_one()

fastsync_install_exit(RLock, 1, rlock_exit)


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
        if observed & FS_EVENT_SET:
            return True
        if timeout is ZERO:
            return fs_event_is_set(&self._event)
        # Everything else in a function of its own: this one then needs few
        # registers, which saves wait() and wait(0) a stack frame's worth of
        # saving and restoring them.
        return self._wait_unset(observed, timeout)

    @cython.final
    cdef bint _wait_unset(self, uint32_t observed, object timeout) except -1:
        cdef int64_t timeout_ns = -1
        if timeout is not None:
            # threading.Event compares with 0 first: same errors, same results
            # for NaN (refused by acquire_timeout_ns where it counts as
            # positive) and negative values.
            if not is_positive(timeout):
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


cdef extern from *:
    """
    /* Windows has no signal that interrupts a wait: CPython sets this event
     * when Ctrl-C trips SIGINT, and the Win32 wait layer watches it.  The
     * declaration repeats CPython's own (exported, not in every version's
     * public headers).  Not built or run on this project's CI machine. */
    #if defined(_WIN32)
    PyAPI_FUNC(void *) _PyOS_SigintEvent(void);
    static void fastsync_watch_sigint(void)
    { fs_wait_set_interrupt_event(_PyOS_SigintEvent()); }
    #else
    static void fastsync_watch_sigint(void) {}
    #endif
    """
    void fastsync_watch_sigint()

fastsync_watch_sigint()


def _after_fork_in_child():
    global signal_thread_ident
    fs_after_fork_child()
    signal_thread_ident = thread_id()   # the forking thread is the child's main


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_note_exiting_thread)


# ---------------------------------------------------------------------------
# Semaphore and BoundedSemaphore

cdef bint semaphore_acquire_blocking(fs_semaphore *sem, int64_t timeout_ns) except -1:
    cdef int64_t deadline = deadline_for(timeout_ns)
    cdef int64_t spin_ns = spin_ns_for_this_thread()
    cdef fs_result result
    while True:
        with nogil:
            note_gil_released()
            result = fs_semaphore_acquire_until(sem, deadline, spin_ns)
            if result == FS_ACQUIRED:
                await_gil_release(spin_ns)
        note_gil_taken()
        if result != FS_INTERRUPTED:
            return result == FS_ACQUIRED
        PyErr_CheckSignals()


_monotonic = __import__("time").monotonic


cdef class Semaphore:
    """A counter of available slots, like threading.Semaphore."""

    cdef fs_semaphore _sem
    cdef uint64_t _limit      # the most release() may bring the count to
    cdef object __weakref__

    def __init__(self, value=1):
        if value < 0:
            raise ValueError("semaphore initial value must be >= 0")
        fs_semaphore_init(&self._sem, _index(value))
        self._limit = UINT64_MAX

    def acquire(self, blocking=True, timeout=None):
        """Take a slot, waiting for one unless blocking is false.

        Returns True if a slot was taken, False if not (timeout in seconds)."""
        # The common call stays here; the rest is a function of its own, so
        # this one needs few registers and saves and restores few (see Event.wait).
        if blocking is True and timeout is None and fs_semaphore_try_acquire(&self._sem):
            return True
        return self._acquire(blocking, timeout)

    @cython.final
    cdef bint _acquire(self, object blocking, object timeout) except -1:
        cdef int64_t timeout_ns = -1
        if not blocking and timeout is not None:
            raise ValueError("can't specify timeout for non-blocking acquire")
        if fs_semaphore_try_acquire(&self._sem):
            return True
        if not blocking:
            return False
        if timeout is not None:
            _monotonic() + timeout          # threading's TypeError for non-numbers
            if not is_positive(timeout):   # negative, zero (or NaN before 3.14): don't wait
                return fs_semaphore_try_acquire(&self._sem)
            timeout_ns = acquire_timeout_ns(True, timeout)
        return semaphore_acquire_blocking(&self._sem, timeout_ns)

    def __enter__(self, blocking=True, timeout=None):
        # threading's Semaphore.__enter__ is its acquire, arguments and all.
        if blocking is True and timeout is None:
            if not fs_semaphore_try_acquire(&self._sem):
                semaphore_acquire_blocking(&self._sem, -1)
            return True
        return self.acquire(blocking, timeout)

    def release(self, n=1):
        """Return n slots, waking as many waiting threads."""
        if n is ONE:
            self._release(1)
            return
        self._release_any(n)   # not inline, as in acquire

    @cython.final
    cdef int _release_any(self, object n) except -1:
        if n is ONE or (type(n) is int and n == 1):
            return self._release(1)
        if n < 1:
            raise ValueError("n must be one or more")
        n = _index(n)
        if n > UINT64_MAX:   # more than any count can take: the usual refusal
            return self._refuse_release()
        return self._release(n)

    # __exit__: semaphore_exit, installed below the class.

    @cython.final
    cdef inline int _release(self, uint64_t n) except -1:
        # Inline: release() and __exit__ pay no call when the count has room.
        if fs_semaphore_release(&self._sem, n, self._limit):
            return 0
        return self._refuse_release()

    @cython.final
    cdef int _refuse_release(self) except -1:
        if self._limit != UINT64_MAX:
            raise ValueError("Semaphore released too many times")
        raise OverflowError("semaphore value too large")

    @property
    def _value(self):
        return fs_semaphore_value(&self._sem)

    def __repr__(self):
        return f"<{type_name(self)} at {id(self):#x}: value={self._value}>"

    def __reduce_ex__(self, protocol):
        raise cannot_pickle(self)


cdef object semaphore_exit(object self):
    (<Semaphore>self)._release(1)

fastsync_install_exit(Semaphore, 2, semaphore_exit)


cdef class BoundedSemaphore(Semaphore):
    """A semaphore that can't be released above its initial value."""

    def __init__(self, value=1):
        Semaphore.__init__(self, value)
        self._limit = fs_semaphore_value(&self._sem)

    @property
    def _initial_value(self):
        return self._limit

    def __repr__(self):
        return (f"<{type_name(self)} at {id(self):#x}: "
                f"value={self._value}/{self._initial_value}>")


# ---------------------------------------------------------------------------
# Condition

# How a Condition reaches its lock: fastsync's own locks natively, any other
# lock through the methods threading.Condition uses.
cdef enum LockKind:
    FOREIGN_LOCK, FS_LOCK, FS_RLOCK


cdef int lock_acquire_deferring_signals(fs_lock *lock) except -1:
    """Acquire for sure, then raise what a signal handler raised meanwhile:
    code after Condition.wait() must hold the lock even when interrupted."""
    pending = None
    while True:
        try:
            lock_acquire_blocking(lock, -1)
            break
        except BaseException as error:
            if pending is None:
                pending = error
    if pending is not None:
        raise pending
    return 0


cdef class Condition:
    """Lets threads wait until notified, like threading.Condition."""

    cdef readonly object _lock
    cdef LockKind _kind
    cdef fs_cond _queue
    cdef object _foreign_is_owned, _foreign_release_save, _foreign_acquire_restore
    cdef object __weakref__

    def __init__(self, lock=None):
        if lock is None:
            lock = RLock()
        self._lock = lock
        fs_cond_init(&self._queue)
        if type(lock) is Lock:
            self._kind = FS_LOCK
        elif type(lock) is RLock:
            self._kind = FS_RLOCK
        else:
            self._kind = FOREIGN_LOCK
            self._foreign_is_owned = getattr(lock, "_is_owned", None)
            self._foreign_release_save = getattr(lock, "_release_save", None)
            self._foreign_acquire_restore = getattr(lock, "_acquire_restore", None)

    # -- the lock ------------------------------------------------------------

    def acquire(self, *args, **kwargs):
        """The lock's acquire()."""
        return self._lock.acquire(*args, **kwargs)

    def release(self):
        """The lock's release()."""
        return self._lock.release()

    def __enter__(self):
        if self._kind == FS_LOCK:
            if not fs_lock_try_acquire(&(<Lock>self._lock)._lock):
                lock_acquire_blocking(&(<Lock>self._lock)._lock, -1)
            return True
        if self._kind == FS_RLOCK:
            return (<RLock>self._lock)._acquire(-1)
        return self._lock.__enter__()

    def __exit__(self, *args):
        # Other than three arguments: whatever the lock's own __exit__ says
        # (since 3.15 _thread's, and so ours, refuse them).
        if len(args) == 3:
            if self._kind == FS_LOCK:
                return lock_exit(self._lock)
            if self._kind == FS_RLOCK:
                return rlock_exit(self._lock)
        return self._lock.__exit__(*args)

    def locked(self):
        """The lock's locked() (threading's Condition has it since 3.14)."""
        return self._lock.locked()

    def _is_owned(self):
        return self._owned()

    @cython.final
    cdef bint _owned(self) except -1:
        if self._kind == FS_RLOCK:
            return (<RLock>self._lock)._owned(thread_id())
        if self._kind == FS_LOCK:
            # A Lock has no owner; like threading, "held by someone" counts.
            return fs_lock_is_locked(&(<Lock>self._lock)._lock)
        if self._foreign_is_owned is not None:
            return self._foreign_is_owned()
        if self._lock.acquire(False):
            self._lock.release()
            return False
        return True

    def _release_save(self):
        if self._foreign_release_save is not None:
            return self._foreign_release_save()
        if self._kind == FS_RLOCK:
            return (<RLock>self._lock)._release_save()
        self._lock.release()
        return None

    @cython.always_allow_keywords(True)   # threading's takes x=... too
    def _acquire_restore(self, x):
        # threading.Condition names the saved state `x`.
        if self._foreign_acquire_restore is not None:
            self._foreign_acquire_restore(x)
        elif self._kind == FS_RLOCK:
            (<RLock>self._lock)._acquire_restore(x)
        else:
            self._lock.acquire()

    # -- waiting -------------------------------------------------------------

    def wait(self, timeout=None):
        """Release the lock, wait until notified or the timeout (seconds)
        passes, take the lock back.  Returns False on timeout, else True."""
        cdef fs_cond_waiter *waiter
        cdef int64_t timeout_ns = -1
        cdef uintptr_t count = 0, owner = 0
        cdef bint notified = False
        if not self._owned():
            raise RuntimeError("cannot wait on un-acquired lock")
        if timeout is not None:
            timeout_ns = acquire_timeout_ns(True, timeout) if is_positive(timeout) else 0
        waiter = fs_cond_enqueue(&self._queue)
        if waiter == NULL:
            raise MemoryError()
        saved = None
        try:
            # Let go of the lock (all levels of an RLock).
            if self._kind == FS_RLOCK:
                count = fs_rlock_count(&(<RLock>self._lock)._rlock)
                owner = fs_load_uptr_relaxed(&(<RLock>self._lock)._rlock.owner)
                fs_rlock_release_all(&(<RLock>self._lock)._rlock)
            elif self._kind == FS_LOCK:
                if not fs_lock_release(&(<Lock>self._lock)._lock):
                    raise RuntimeError("release unlocked lock")
            else:
                saved = self._release_save()
            try:
                notified = self._sleep(waiter, timeout_ns)
            finally:
                # Take it back whatever happened, as threading does.
                if self._kind == FS_RLOCK:
                    lock_acquire_deferring_signals(&(<RLock>self._lock)._rlock.lock)
                    fs_rlock_take(&(<RLock>self._lock)._rlock, owner, count)
                elif self._kind == FS_LOCK:
                    lock_acquire_deferring_signals(&(<Lock>self._lock)._lock)
                else:
                    self._acquire_restore(saved)
        finally:
            # A notify that raced with a timeout still counts.
            notified = fs_cond_dequeue(&self._queue, waiter)
        return notified

    @cython.final
    cdef bint _sleep(self, fs_cond_waiter *waiter, int64_t timeout_ns) except -1:
        cdef int64_t deadline, spin_ns
        cdef fs_result result
        if timeout_ns == 0:
            return False
        deadline = deadline_for(timeout_ns)
        spin_ns = spin_ns_for_this_thread()
        while True:
            with nogil:
                note_gil_released()
                result = fs_cond_wait_notified(waiter, deadline, spin_ns)
                if result == FS_ACQUIRED:
                    await_gil_release(spin_ns)
            note_gil_taken()
            if result != FS_INTERRUPTED:
                return result == FS_ACQUIRED
            PyErr_CheckSignals()

    def wait_for(self, predicate, timeout=None):
        """Wait until predicate() is true or the timeout passes; returns the
        predicate's last value."""
        deadline = None
        result = predicate()
        while not result:
            if timeout is not None:
                if deadline is None:
                    deadline = _monotonic() + timeout
                else:
                    timeout = deadline - _monotonic()
                    if timeout <= 0:
                        break
            self.wait(timeout)
            result = predicate()
        return result

    def notify(self, n=1):
        """Wake up to n waiting threads, longest waiting first."""
        if not self._owned():
            raise RuntimeError("cannot notify on un-acquired lock")
        if type(n) is int:
            if n > 0:
                fs_cond_notify(&self._queue, n if n < UINT64_MAX else UINT64_MAX)
            return
        while n > 0:      # threading counts down whatever number type n is
            if fs_cond_notify(&self._queue, 1) == 0:
                break
            n -= 1

    def notify_all(self):
        """Wake every waiting thread."""
        if not self._owned():
            raise RuntimeError("cannot notify on un-acquired lock")
        fs_cond_notify(&self._queue, UINT64_MAX)

    def notifyAll(self):
        """Deprecated alias of notify_all()."""
        if ISSET_WARNS:
            warnings.warn(NOTIFYALL_WARNING, DeprecationWarning, stacklevel=2)
        self.notify_all()

    def _at_fork_reinit(self):
        self._lock._at_fork_reinit()
        fs_cond_init(&self._queue)

    def __repr__(self):
        return f"<Condition({self._lock!r}, {fs_cond_length(&self._queue)})>"

    def __reduce_ex__(self, protocol):
        raise cannot_pickle(self)


Barrier = make_barrier_class(Condition, Lock, __name__)


# ---------------------------------------------------------------------------
# Under gevent or eventlet: threading's cooperative primitives instead
#
# Each class's constructor first checks, in C, whether _thread.allocate_lock
# is still the interpreter's own (fastsync/_cooperative.py says why); only
# when it isn't does it go to Python.  A dictionary look-up per construction,
# nothing at all on the methods.

cdef extern from *:
    """
    #define FASTSYNC_SWITCHED_TYPES 6
    static newfunc fastsync_native_new[FASTSYNC_SWITCHED_TYPES];
    static PyObject *fastsync_thread_namespace;   /* _thread.__dict__ */
    static PyObject *fastsync_allocate_lock_name;
    static PyObject *fastsync_native_allocate;    /* Py_None if replaced before import */
    static PyObject *fastsync_construct;          /* _cooperative.construct */

    static PyObject *fastsync_switched_new(int n, PyTypeObject *type, PyObject *args,
                                           PyObject *kwargs)
    {
        PyObject *current = PyDict_GetItemWithError(fastsync_thread_namespace,
                                                    fastsync_allocate_lock_name);
        if (current == fastsync_native_allocate)
            return fastsync_native_new[n](type, args, kwargs);
        if (current == NULL && PyErr_Occurred())
            return NULL;
        return PyObject_CallFunctionObjArgs(fastsync_construct, (PyObject *)type, args,
                                            kwargs != NULL ? kwargs : Py_None, NULL);
    }

    /* Cython also gives the types a vectorcall constructor, which the
     * interpreter prefers to tp_new: it is switched the same way. */
    static vectorcallfunc fastsync_native_vectorcall[FASTSYNC_SWITCHED_TYPES];

    static PyObject *fastsync_switched_vectorcall(int n, PyObject *type, PyObject *const *args,
                                                  size_t nargsf, PyObject *kwnames)
    {
        PyObject *current = PyDict_GetItemWithError(fastsync_thread_namespace,
                                                    fastsync_allocate_lock_name);
        Py_ssize_t nargs = PyVectorcall_NARGS(nargsf), i;
        PyObject *tuple, *kwargs = NULL, *result;
        if (current == fastsync_native_allocate)
            return fastsync_native_vectorcall[n](type, args, nargsf, kwnames);
        if (current == NULL && PyErr_Occurred())
            return NULL;
        tuple = PyTuple_New(nargs);
        if (tuple == NULL)
            return NULL;
        for (i = 0; i < nargs; i++) {
            Py_INCREF(args[i]);
            PyTuple_SET_ITEM(tuple, i, args[i]);
        }
        if (kwnames != NULL && PyTuple_GET_SIZE(kwnames) > 0) {
            kwargs = PyDict_New();
            for (i = 0; kwargs != NULL && i < PyTuple_GET_SIZE(kwnames); i++) {
                if (PyDict_SetItem(kwargs, PyTuple_GET_ITEM(kwnames, i), args[nargs + i]) < 0)
                    Py_CLEAR(kwargs);
            }
            if (kwargs == NULL) {
                Py_DECREF(tuple);
                return NULL;
            }
        }
        result = PyObject_CallFunctionObjArgs(fastsync_construct, type, tuple,
                                              kwargs != NULL ? kwargs : Py_None, NULL);
        Py_DECREF(tuple);
        Py_XDECREF(kwargs);
        return result;
    }

    #define FASTSYNC_SWITCHED_NEW(n) \
        static PyObject *fastsync_switched_new_##n(PyTypeObject *t, PyObject *a, PyObject *k) \
        { return fastsync_switched_new(n, t, a, k); } \
        static PyObject *fastsync_switched_vectorcall_##n(PyObject *t, PyObject *const *a, \
                                                          size_t nargsf, PyObject *kwnames) \
        { return fastsync_switched_vectorcall(n, t, a, nargsf, kwnames); }
    FASTSYNC_SWITCHED_NEW(0)
    FASTSYNC_SWITCHED_NEW(1)
    FASTSYNC_SWITCHED_NEW(2)
    FASTSYNC_SWITCHED_NEW(3)
    FASTSYNC_SWITCHED_NEW(4)
    FASTSYNC_SWITCHED_NEW(5)
    static newfunc fastsync_switched_new_fns[FASTSYNC_SWITCHED_TYPES] = {
        fastsync_switched_new_0, fastsync_switched_new_1, fastsync_switched_new_2,
        fastsync_switched_new_3, fastsync_switched_new_4, fastsync_switched_new_5,
    };
    static vectorcallfunc fastsync_switched_vectorcall_fns[FASTSYNC_SWITCHED_TYPES] = {
        fastsync_switched_vectorcall_0, fastsync_switched_vectorcall_1,
        fastsync_switched_vectorcall_2, fastsync_switched_vectorcall_3,
        fastsync_switched_vectorcall_4, fastsync_switched_vectorcall_5,
    };

    static int fastsync_switch_setup(PyObject *thread_namespace, PyObject *native_allocate,
                                     PyObject *construct)
    {
        fastsync_allocate_lock_name = PyUnicode_InternFromString("allocate_lock");
        if (fastsync_allocate_lock_name == NULL)
            return -1;
        Py_INCREF(thread_namespace);
        Py_INCREF(native_allocate);
        Py_INCREF(construct);
        fastsync_thread_namespace = thread_namespace;
        fastsync_native_allocate = native_allocate;
        fastsync_construct = construct;
        return 0;
    }

    /* Subclasses created later inherit the switched constructor too, and
     * construct() refuses them under monkey-patching. */
    static int fastsync_switch_new(PyObject *type, int n)
    {
        PyTypeObject *tp = (PyTypeObject *)type;
        fastsync_native_new[n] = tp->tp_new;
        tp->tp_new = fastsync_switched_new_fns[n];
        fastsync_native_vectorcall[n] = tp->tp_vectorcall;
        if (tp->tp_vectorcall != NULL)
            tp->tp_vectorcall = fastsync_switched_vectorcall_fns[n];
        PyType_Modified(tp);
        return 0;
    }
    """
    int fastsync_switch_setup(object thread_namespace, object native_allocate,
                              object construct) except -1
    int fastsync_switch_new(object type, int n) except -1


def _switch_constructors():
    from fastsync import _cooperative

    native = _cooperative.NATIVE_ALLOCATE_LOCK
    fastsync_switch_setup(_thread.__dict__, native, _cooperative.construct)
    for n, cls in enumerate((Lock, RLock, Event, Condition, Semaphore, BoundedSemaphore)):
        fastsync_switch_new(cls, n)

_switch_constructors()


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

    # __exit__: floor_exit, installed below the class.

    def is_set(self):
        return True

    def set(self):
        pass

    def clear(self):
        pass

    def wait(self, timeout=None):
        return True


cdef object floor_exit(object self):
    return None

fastsync_install_exit(_CallFloor, 3, floor_exit)


@cython.final
cdef class _SemaphoreCallFloor:
    """The floor in Semaphore's shapes (release takes n).  For bench/ only."""

    def acquire(self, blocking=True, timeout=None):
        return True

    def release(self, n=1):
        pass

    def __enter__(self, blocking=True, timeout=None):
        return True

    # __exit__: floor_exit, installed below the class.

fastsync_install_exit(_SemaphoreCallFloor, 3, floor_exit)   # the same empty __exit__


# The floor of the benchmark's hand-off cases (ping-pong, Barrier): the same
# hand-offs between two C threads over the same wait layer, spinning as
# fastsync's threads do, with no Python and no GIL, so bench/ can show how much
# of a round trip the hand-off itself takes.

ctypedef struct Handoffs:
    fs_atomic_u32 turn       # hand-offs so far; the partner moves on even turns
    fs_atomic_u32 finished   # set by the partner thread as its last act
    uint32_t limit
    int64_t spin_ns


cdef void take_turns(Handoffs *run, uint32_t parity) noexcept nogil:
    cdef uint32_t turn
    while True:
        turn = fs_load_u32(&run.turn)
        if turn >= run.limit:
            return
        if turn % 2 != parity:
            # Woken, changed, or a signal: look again.
            fs_spin_then_wait(&run.turn, turn, FS_NO_DEADLINE, run.spin_ns)
        else:
            fs_store_u32(&run.turn, turn + 1)
            fs_wake_one(&run.turn)


cdef void handoff_partner(void *arg) noexcept nogil:
    cdef Handoffs *run = <Handoffs *>arg
    take_turns(run, 0)
    fs_store_u32(&run.finished, 1)
    fs_wake_one(&run.finished)


def _native_handoffs(long count):
    """Nanoseconds for `count` hand-offs between this thread and a C thread,
    each side sleeping in the wait layer until the other passes it the turn.
    For bench/ only: the GIL is released throughout and Ctrl-C is ignored."""
    cdef Handoffs run
    cdef int64_t start, elapsed
    if not 0 < count < 2**30:
        raise ValueError("count must be between 1 and 2**30 - 1")
    fs_store_u32(&run.turn, 0)
    fs_store_u32(&run.finished, 0)
    run.limit = <uint32_t>count + 1
    run.spin_ns = spin_budget_ns    # as in any thread but the main one
    if PyThread_start_new_thread(handoff_partner, &run) == <unsigned long>-1:
        raise RuntimeError("can't start a thread")
    with nogil:
        while fs_load_u32(&run.turn) == 0:          # the partner's first move: it runs
            fs_wait(&run.turn, 0, FS_NO_DEADLINE)
        start = fs_monotonic_ns()
        take_turns(&run, 1)
        elapsed = fs_monotonic_ns() - start
        while fs_load_u32(&run.finished) == 0:      # no thread outlives the call
            fs_wait(&run.finished, 0, FS_NO_DEADLINE)
    return elapsed

