# ---------------------------------------------------------------------------
# Condition

# What a Condition needs of its lock, chosen once by the lock's type when
# the Condition is made: fastsync's Lock and RLock are reached in C, any other
# lock through its methods, as threading.Condition reaches it.
ctypedef struct LockAdapter:
    object (*enter)(object lock)
    # __exit__ with the three arguments of a `with`, which it ignores; NULL:
    # the lock's own __exit__ is called.
    fastsync_exit_fn exit
    bint (*owned)(object condition) except -1
    # For wait(): let go of the lock entirely (an RLock's levels are noted in
    # `levels`, any other lock's state returned), then take it back for sure.
    object (*release_save)(object condition, RLockLevels *levels)
    int (*acquire_restore)(object condition, object saved, const RLockLevels *levels) except -1


cdef bint fs_lock_owned(object condition) except -1:
    # A Lock has no owner; like threading, "held by someone" counts.
    return fs_lock_is_locked(&(<Lock>(<Condition>condition)._lock)._lock)

cdef object fs_lock_release_save(object condition, RLockLevels *levels):
    lock_exit((<Condition>condition)._lock)
    return None

cdef int fs_lock_acquire_restore(object condition, object saved, const RLockLevels *levels) except -1:
    cdef Lock lock = <Lock>(<Condition>condition)._lock
    if not fs_lock_try_acquire(&lock._lock):
        lock_acquire_deferring_signals(&lock._lock, lock)
    lock_taken(lock)
    if debugging():   # held again, with no new order (fs_lock_release_save told it)
        debug_restored((<Condition>condition)._lock)
    return 0

cdef LockAdapter FS_LOCK_ADAPTER = LockAdapter(
    enter=lock_enter, exit=lock_exit, owned=fs_lock_owned,
    release_save=fs_lock_release_save, acquire_restore=fs_lock_acquire_restore)


cdef bint fs_rlock_owned(object condition) except -1:
    return (<RLock>(<Condition>condition)._lock)._owned(thread_id())

cdef object fs_rlock_release_save(object condition, RLockLevels *levels):
    (<RLock>(<Condition>condition)._lock)._release_levels(levels)
    return None

cdef int fs_rlock_acquire_restore(object condition, object saved, const RLockLevels *levels) except -1:
    return (<RLock>(<Condition>condition)._lock)._restore_levels(levels, True)

cdef LockAdapter FS_RLOCK_ADAPTER = LockAdapter(
    enter=rlock_enter, exit=rlock_exit, owned=fs_rlock_owned,
    release_save=fs_rlock_release_save, acquire_restore=fs_rlock_acquire_restore)


cdef object foreign_lock_enter(object lock):
    return lock.__enter__()

cdef bint foreign_lock_owned(object condition) except -1:
    cdef Condition self = <Condition>condition
    if self._lock_is_owned is not None:
        return self._lock_is_owned()
    if self._lock.acquire(False):
        self._lock.release()
        return False
    return True

cdef object foreign_lock_release_save(object condition, RLockLevels *levels):
    return condition._release_save()

cdef int foreign_lock_acquire_restore(object condition, object saved,
                                      const RLockLevels *levels) except -1:
    condition._acquire_restore(saved)
    return 0

cdef LockAdapter FOREIGN_LOCK_ADAPTER = LockAdapter(
    enter=foreign_lock_enter, exit=NULL, owned=foreign_lock_owned,
    release_save=foreign_lock_release_save, acquire_restore=foreign_lock_acquire_restore)


_threading_condition = __import__("threading").Condition   # taken before fastsync.patch() can replace it


cdef class Condition:
    """Condition(lock=None)
--

Condition(lock=None): lets threads wait until notified, like
threading.Condition, over `lock`, by default a new fastsync RLock."""

    cdef readonly object _lock
    cdef const LockAdapter *_adapter
    cdef fs_cond _queue
    # The lock's own methods where it has them, as threading.Condition takes them.
    cdef object _lock_is_owned, _lock_release_save, _lock_acquire_restore
    cdef object __weakref__

    def __init__(self, lock=None):
        """Wait and notify over `lock` (by default a new RLock)."""
        if lock is None:
            lock = RLock()
        self._lock = lock
        fs_cond_init(&self._queue)
        if type(lock) is Lock:
            self._adapter = &FS_LOCK_ADAPTER
        elif type(lock) is RLock:
            self._adapter = &FS_RLOCK_ADAPTER
        else:
            # threading's checks of a lock it doesn't know (which methods
            # it must have varies by version), errors included.
            _threading_condition(lock)
            self._adapter = &FOREIGN_LOCK_ADAPTER
        self._lock_is_owned = getattr(lock, "_is_owned", None)
        self._lock_release_save = getattr(lock, "_release_save", None)
        self._lock_acquire_restore = getattr(lock, "_acquire_restore", None)

    # -- the lock ------------------------------------------------------------

    def acquire(self, *args, **kwargs):
        """The lock's acquire()."""
        return self._lock.acquire(*args, **kwargs)

    def release(self):
        """The lock's release()."""
        return self._lock.release()

    def __enter__(self):
        return self._adapter.enter(self._lock)

    def __exit__(self, *args):
        # Other than three arguments: whatever the lock's own __exit__ says
        # (since 3.15 _thread's, and so ours, refuse them).
        if len(args) == 3 and self._adapter.exit != NULL:
            return self._adapter.exit(self._lock)
        return self._lock.__exit__(*args)

    def locked(self):
        """The lock's locked() (threading's Condition has it since 3.14)."""
        return self._lock.locked()

    def _is_owned(self):
        return self._owned()

    @cython.final
    cdef inline bint _owned(self) except -1:
        return self._adapter.owned(self)

    def _release_save(self):
        if self._lock_release_save is not None:
            return self._lock_release_save()
        self._lock.release()
        return None

    @cython.always_allow_keywords(True)   # threading's takes x=... too
    def _acquire_restore(self, x):
        # threading.Condition names the saved state `x`.
        if self._lock_acquire_restore is not None:
            self._lock_acquire_restore(x)
        else:
            self._lock.acquire()

    # -- waiting -------------------------------------------------------------

    def wait(self, timeout=None):
        """Release the lock, wait until notified or the timeout (seconds)
        passes, take the lock back.  Returns False on timeout, else True."""
        cdef fs_cond_waiter *waiter
        cdef int64_t timeout_ns = -1
        cdef RLockLevels levels
        cdef bint notified = False
        if not self._owned():
            raise RuntimeError("cannot wait on un-acquired lock")
        if timeout is not None:
            timeout_ns = acquire_timeout_ns(True, timeout) if is_positive(timeout) else 0
        waiter = fs_cond_enqueue(&self._queue)
        if waiter == NULL:
            raise MemoryError()
        try:
            saved = self._adapter.release_save(self, &levels)   # all levels of an RLock
            try:
                notified = timeout_ns != 0 and condition_wait_blocking(waiter, timeout_ns, self)
            finally:
                # Take it back whatever happened, as threading does.
                self._adapter.acquire_restore(self, saved, &levels)
        finally:
            # A notify that raced with a timeout still counts.
            notified = fs_cond_dequeue(&self._queue, waiter)
        return notified

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
