# ---------------------------------------------------------------------------
# Spinning: a thread that must block keeps looking for a while before it sleeps
#
# A hand-off (a lock, an event, a notification) to a thread that slept costs
# the kernel waking it, often on an idle CPU; to a thread still looking it
# costs a few cache misses (docs/design.md, "Spinning").  A wait that outlasts the
# spin costs that CPU time once.

# Long enough to cover the Python code a partner runs between two hand-offs,
# short enough that a thread which then sleeps has used little CPU.
DEFAULT_SPIN_NS = 20_000

# Atomic: _set_spin_ns may change it while other threads start waits.
cdef fs_atomic_u64 spin_budget_ns
# CPython runs signal handlers in the main thread only, and a signal that
# arrives while a thread spins doesn't end the sleep that follows (only a
# sleep in progress is interrupted).  So the main thread never spins, and
# Ctrl-C keeps ending its waits at once.  Set at import and in a fork's child.
cdef fs_atomic_uptr signal_thread_ident


def _usable_cpus():
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _set_spin_ns(ns):
    """Set how long a blocked thread (other than the main thread) looks before
    it sleeps, in nanoseconds (0: never); returns the previous value.  On by
    default where more than one CPU is usable, unless FASTSYNC_NO_SPIN is set.
    For tests and measurements; not part of the API."""
    previous = fs_load_u64(&spin_budget_ns)
    ns = _index(ns)
    if not 0 <= ns <= 10**9:
        raise ValueError("spin time must be between 0 and 10**9 ns")
    fs_store_u64(&spin_budget_ns, ns)
    return previous


def _spin_ns():
    """How long a blocked thread (other than the main thread) looks before it
    sleeps, in nanoseconds.  For the benchmark's floor, which spins as long;
    not part of the API."""
    return fs_load_u64(&spin_budget_ns)


def _spinning_threads():
    """How many threads spin right now.  For tests; not part of the API."""
    return fs_spinning_threads()


cdef inline int64_t spin_ns_for_this_thread() noexcept nogil:
    if thread_id() == fs_load_uptr_relaxed(&signal_thread_ident):
        return 0
    return <int64_t>fs_load_u64(&spin_budget_ns)


# The GIL.  A woken thread still has to take the GIL, and the thread that woke
# it usually holds it for a little longer (it returns from set() or notify()
# and runs on until it blocks itself).  A thread that asks for the GIL then
# sleeps in CPython's own wait, and pays the wake-up the spin avoided.  So a
# thread that was handed something keeps looking, for up to its spin time,
# until some thread releases the GIL in one of our waits, and only then asks.
# The flag is only a hint (the GIL also changes hands elsewhere, unseen): a
# wrong hint costs at most the spin time, never correctness.
cdef fs_atomic_u32 gil_released_in_wait   # 1: released by a waiter, not yet retaken here

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

# Without a GIL the hint means nothing, and every wait writing one word
# shared by all threads would only move its cache line between CPUs.
cdef inline void note_gil_released() noexcept nogil:
    if not GIL_DISABLED:
        fs_store_u32(&gil_released_in_wait, 1)

cdef inline void note_gil_taken() noexcept nogil:
    if not GIL_DISABLED:
        fs_store_u32(&gil_released_in_wait, 0)

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


# From 3.15, threading's locks refuse a wait that must block while the
# interpreter is being finalized (no other thread can run then, so nothing
# could end the wait): PythonFinalizationError, where earlier versions wait
# for ever.  The waits built on them (Event, Condition, Semaphore, Barrier)
# raise it too, and so do ours, each from the one blocking loop below.
cdef extern from *:
    """
    #if !defined(PYPY_VERSION) && PY_VERSION_HEX >= 0x030F0000
    #  define FASTSYNC_FINALIZATION_REFUSES_WAITS 1
    #else
    #  define FASTSYNC_FINALIZATION_REFUSES_WAITS 0
    #endif
    """
    const bint FINALIZATION_REFUSES_WAITS "FASTSYNC_FINALIZATION_REFUSES_WAITS"

# Taken now: module globals may be gone when a finalizer needs it.
cdef object finalization_error_type = getattr(__import__("builtins"), "PythonFinalizationError", None)

cdef int refuse_wait_at_finalization() except -1:
    raise finalization_error_type("cannot acquire lock at interpreter finalization")


# One wait of a primitive, with the GIL released: FS_OK (got it, was
# set, was notified), FS_TIMED_OUT or FS_INTERRUPTED (a signal).
ctypedef fs_result (*wait_step)(void *target, int64_t deadline_ns,
                                int64_t spin_ns) noexcept nogil
# Run, with the GIL still released, after a wait_step that got its object:
# whether to keep it (false: it was given back, wait again).
ctypedef bint (*keep_step)(void *target) noexcept nogil
# Run with the GIL held after a wait_step that returned FS_RETRY: whether it
# got the object now (false: wait again).
ctypedef bint (*retry_step)(void *target) noexcept


cdef bint wait_loop(wait_step wait, void *target, int64_t timeout_ns,
                    keep_step keep, retry_step retry) except -1:
    """The blocking loop of every primitive: wait with the GIL released; after
    a signal, run the handlers (which may raise) and wait again until the same
    deadline.  Returns whether the wait got its object.  Run by
    wait_with_gil_released (_blocked.pxi), which notes what it waits for."""
    cdef int64_t deadline = deadline_for(timeout_ns)
    cdef int64_t spin_ns = spin_ns_for_this_thread()
    cdef fs_result result
    cdef bint kept
    if FINALIZATION_REFUSES_WAITS and fastsync_is_finalizing():
        refuse_wait_at_finalization()
    while True:
        kept = True
        with nogil:
            note_gil_released()
            result = wait(target, deadline, spin_ns)
            if result == FS_OK or result == FS_RETRY:
                await_gil_release(spin_ns)
                if result == FS_OK and keep != NULL:
                    kept = keep(target)
        note_gil_taken()
        if not kept:
            continue
        if result == FS_RETRY:
            if retry(target):
                return True
            continue
        if result != FS_INTERRUPTED:
            return result == FS_OK
        PyErr_CheckSignals()    # raises what a handler raised; nothing is held


# Lock.  A woken waiter takes the GIL first and then tries the lock where
# threading's waiters do (CPython 3.13 and later, whose lock is PyMutex),
# and the lock first elsewhere (see fs_lock_wait_for_release and
# fs_lock_wait_until).  Without a GIL there is nothing to take first.
# If the interpreter is finalized while a thread that took the lock waits
# for the GIL, that thread never gets the GIL: it gives the lock back if it
# can still tell in time, and the finalizing thread takes it over if not (see
# fs_lock_note_owner_awaits_gil).

cdef extern from *:
    """
    #if defined(PYPY_VERSION) || PY_VERSION_HEX < 0x030D0000 || defined(Py_GIL_DISABLED)
    #  define FASTSYNC_LOCK_WAITERS_TAKE_GIL_FIRST 0
    #else
    #  define FASTSYNC_LOCK_WAITERS_TAKE_GIL_FIRST 1
    #endif
    """
    const bint LOCK_WAITERS_TAKE_GIL_FIRST "FASTSYNC_LOCK_WAITERS_TAKE_GIL_FIRST"

cdef struct lock_wait:
    fs_lock *lock
    int64_t waiting_since   # kept across the waits that signals interrupt

cdef fs_result lock_wait_step(void *target, int64_t deadline_ns, int64_t spin_ns) noexcept nogil:
    cdef lock_wait *w = <lock_wait *>target
    if LOCK_WAITERS_TAKE_GIL_FIRST:
        return fs_lock_wait_for_release(w.lock, &w.waiting_since, deadline_ns, spin_ns)
    return fs_lock_wait_until(w.lock, &w.waiting_since, deadline_ns, spin_ns)

cdef bint lock_retry_step(void *target) noexcept:
    # Marked, as any lock taken after a wait: other waiters may sleep on it.
    return fs_lock_try_acquire_contended((<lock_wait *>target).lock)

cdef bint lock_keep_step(void *target) noexcept nogil:
    cdef fs_lock *lock = (<lock_wait *>target).lock
    fs_lock_note_owner_awaits_gil(lock)
    if finalizing_elsewhere() and fs_lock_note_owner_has_gil(lock):
        fs_lock_release(lock)
        return False    # not ended after all: wait again
    return True

cdef bint lock_acquire_blocking(fs_lock *lock, int64_t timeout_ns, object waited) except -1:
    """Wait for the lock; the caller's uncontended attempt has failed."""
    cdef lock_wait w
    if finalizing_here() and fs_lock_take_from_gil_waiter(lock):
        return True
    w.lock = lock
    w.waiting_since = 0
    if not wait_with_gil_released(lock_wait_step, &w, timeout_ns, waited, lock_keep_step,
                                  lock_retry_step):
        return False
    # Had the lock been taken over, this thread would not be here.
    fs_lock_note_owner_has_gil(lock)
    return True


cdef int lock_acquire_deferring_signals(fs_lock *lock, object waited) except -1:
    """Acquire for sure, then raise what a signal handler raised meanwhile:
    code after Condition.wait() must hold the lock even when interrupted."""
    pending = None
    while True:
        try:
            lock_acquire_blocking(lock, -1, waited)
            break
        except BaseException as error:
            if FINALIZATION_REFUSES_WAITS and isinstance(error, finalization_error_type):
                raise   # every later attempt would be refused too
            if pending is None:
                pending = error
    if pending is not None:
        raise pending
    return 0


# Event

cdef struct event_wait:
    fs_event *event
    uint32_t observed_state

cdef fs_result event_wait_step(void *target, int64_t deadline_ns, int64_t spin_ns) noexcept nogil:
    cdef event_wait *w = <event_wait *>target
    return fs_event_wait_until(w.event, w.observed_state, deadline_ns, spin_ns)

cdef bint event_wait_blocking(fs_event *event, uint32_t observed_state,
                              int64_t timeout_ns, object waited) except -1:
    cdef event_wait w
    w.event = event
    w.observed_state = observed_state
    return wait_with_gil_released(event_wait_step, &w, timeout_ns, waited)


# Semaphore

cdef fs_result semaphore_wait_step(void *target, int64_t deadline_ns, int64_t spin_ns) noexcept nogil:
    return fs_semaphore_acquire_until(<fs_semaphore *>target, deadline_ns, spin_ns)

cdef bint semaphore_acquire_blocking(fs_semaphore *sem, int64_t timeout_ns, object waited) except -1:
    return wait_with_gil_released(semaphore_wait_step, sem, timeout_ns, waited)


# Condition: a waiter's own wait for its notification

cdef fs_result condition_wait_step(void *target, int64_t deadline_ns, int64_t spin_ns) noexcept nogil:
    return fs_cond_wait_notified(<fs_cond_waiter *>target, deadline_ns, spin_ns)

cdef bint condition_wait_blocking(fs_cond_waiter *waiter, int64_t timeout_ns, object waited) except -1:
    return wait_with_gil_released(condition_wait_step, waiter, timeout_ns, waited)
