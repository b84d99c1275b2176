# ---------------------------------------------------------------------------
# fastsync.debug's hooks: lock-order checking, deadlock finding, profiles
#
# While debugging is off, a Lock or RLock pays one test of a C flag on each
# acquire and release (read relaxed: it only chooses a path).  While it is
# on, the operations take the paths below, which tell fastsync.debug's
# tracker (pure Python, shared with the fallback) what happens.  They read the
# tracker through current_tracker(), which orders that read after its assignment.

cdef extern from *:
    """
    static fs_atomic_uptr fastsync_debug_flag;   /* nonzero while fastsync.debug watches */
    #if defined(__GNUC__) || defined(__clang__)
    #  define fastsync_debugging() __builtin_expect(fs_load_uptr_relaxed(&fastsync_debug_flag) != 0, 0)
    #else
    #  define fastsync_debugging() (fs_load_uptr_relaxed(&fastsync_debug_flag) != 0)
    #endif
    /* 1 once debug_tracker is assigned: stored with release ordering after it. */
    static fs_atomic_u32 fastsync_debug_tracker_ready;
    """
    fs_atomic_uptr fastsync_debug_flag
    fs_atomic_u32 fastsync_debug_tracker_ready
    bint debugging "fastsync_debugging"() noexcept nogil

cdef extern from "fs_atomic.h":
    void fs_cpu_relax() noexcept nogil

# Assigned once and never changed or cleared: a thread that saw the flag on
# may still be using it after the flag goes off.
cdef object debug_tracker = None


def _set_debug_tracker(tracker):
    """fastsync.debug switches the hooks on (its tracker) or off (None)."""
    global debug_tracker
    if tracker is not None and tracker is not debug_tracker:
        if debug_tracker is not None:
            raise RuntimeError("fastsync.debug's tracker is set only once")
        debug_tracker = tracker
        fs_store_u32(&fastsync_debug_tracker_ready, 1)
    fs_store_uptr_relaxed(&fastsync_debug_flag, tracker is not None)


cdef inline object current_tracker():
    """The tracker, for a thread that saw the flag on.  The flag is read
    relaxed, so the acquire load here is what makes the assignment visible;
    on a weakly ordered CPU the flag may be seen first, for an instant."""
    while not fs_load_u32(&fastsync_debug_tracker_ready):
        fs_cpu_relax()
    return debug_tracker


cdef int debug_created(object lock) except -1:
    current_tracker().created(lock)
    return 0


cdef int debug_releasing(object lock) except -1:
    """Before the release that frees `lock`, by whichever thread."""
    current_tracker().released(lock)
    return 0


cdef int debug_restored(object lock) except -1:
    """After Condition.wait() or _acquire_restore took `lock` back."""
    current_tracker().restored(lock)
    return 0


cdef bint debug_acquire(object lock, fs_lock *raw, int64_t timeout_ns) except -1:
    """Lock.acquire, or an RLock's first level (`raw` is its fs_lock); the
    order is checked before anything is taken, so LockOrderError leaves the
    lock free."""
    tracker = current_tracker()
    if timeout_ns != 0:
        tracker.check_order(lock)
    if fs_lock_try_acquire(raw):
        tracker.acquired(lock)
        return True
    if timeout_ns == 0:
        return False
    started = tracker.begin_wait(lock)
    acquired = False
    try:
        acquired = debug_block(tracker, lock, raw, timeout_ns)
    finally:
        tracker.end_wait(lock, started, acquired)
    return acquired


cdef bint debug_block(object tracker, object lock, fs_lock *raw, int64_t timeout_ns) except -1:
    """Wait for the lock, telling the tracker each time the thread has waited
    its stall time (it looks for a deadlock then), as fastsync.debug's
    _Tracker._block does for the fallback."""
    cdef int64_t stall_ns = tracker.stall_ns
    cdef int64_t deadline, left
    if stall_ns <= 0:
        return lock_acquire_blocking(raw, timeout_ns, lock)
    deadline = -1 if timeout_ns < 0 else fs_monotonic_ns() + timeout_ns
    while True:
        if deadline >= 0:
            left = deadline - fs_monotonic_ns()
            if left <= stall_ns:
                return fs_lock_try_acquire(raw) or (left > 0 and lock_acquire_blocking(raw, left, lock))
        if lock_acquire_blocking(raw, stall_ns, lock):
            return True
        tracker.stalled(lock)
