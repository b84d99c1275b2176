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
                notified = timeout_ns != 0 and condition_wait_blocking(waiter, timeout_ns)
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
