# ---------------------------------------------------------------------------
# fastsync.debug's hooks: lock-order checking, deadlock finding, profiles
#
# While debugging is off, a Lock or RLock pays one test of a C flag on each
# acquire and release (read relaxed: it only chooses a path, and the tracker
# it leads to is set before it and never unset).  While it is on, the
# operations take the paths below, which tell fastsync.debug's tracker (pure
# Python, shared with the fallback) what happens.

cdef extern from *:
    """
    static fs_atomic_uptr fastsync_debug_flag;   /* nonzero while fastsync.debug watches */
    #if defined(__GNUC__) || defined(__clang__)
    #  define fastsync_debugging() __builtin_expect(fs_load_uptr_relaxed(&fastsync_debug_flag) != 0, 0)
    #else
    #  define fastsync_debugging() (fs_load_uptr_relaxed(&fastsync_debug_flag) != 0)
    #endif
    """
    fs_atomic_uptr fastsync_debug_flag
    bint debugging "fastsync_debugging"() noexcept nogil

cdef object debug_tracker = None


def _set_debug_tracker(tracker):
    """fastsync.debug switches the hooks on (its tracker) or off (None)."""
    global debug_tracker
    if tracker is not None:
        debug_tracker = tracker
    fs_store_uptr_relaxed(&fastsync_debug_flag, tracker is not None)


cdef int debug_created(object lock) except -1:
    debug_tracker.created(lock)
    return 0


cdef int debug_releasing(object lock) except -1:
    """Before the release that frees `lock`, by whichever thread."""
    debug_tracker.released(lock)
    return 0


cdef int debug_restored(object lock) except -1:
    """After Condition.wait() or _acquire_restore took `lock` back."""
    debug_tracker.restored(lock)
    return 0


cdef bint debug_acquire(object lock, fs_lock *raw, int64_t timeout_ns) except -1:
    """Lock.acquire, or an RLock's first level (`raw` is its fs_lock); the
    order is checked before anything is taken, so LockOrderError leaves the
    lock free."""
    tracker = debug_tracker
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
