# ---------------------------------------------------------------------------
# Lock

@cython.final
cdef class Lock:
    """Lock()
--

A primitive lock, like threading.Lock; any thread may release it.
Lock() takes no arguments."""

    cdef fs_lock _lock   # all-zero (unlocked) from allocation
    # The thread that took it last, for fastsync.debug: every acquire writes
    # it (relaxed: read only to report), no release clears it.
    cdef fs_atomic_uptr _owner
    cdef object __weakref__

    def __init__(self):
        """A new lock, unlocked."""
        if debugging():
            debug_created(self)

    def acquire(self, blocking=True, timeout=-1):
        """Acquire the lock, blocking or not, with an optional timeout in seconds.

        Returns True if the lock was acquired, False if not."""
        cdef int64_t timeout_ns = timeout_for(blocking, timeout)
        if debugging():
            return debug_acquire(self, &self._lock, timeout_ns) and lock_taken(self)
        if fs_lock_try_acquire(&self._lock):
            return lock_taken(self)
        if timeout_ns == 0:
            return False
        return lock_acquire_blocking(&self._lock, timeout_ns, self) and lock_taken(self)

    def __enter__(self):
        return lock_enter(self)

    def release(self):
        """Release the lock; RuntimeError if it is not locked."""
        if debugging():
            debug_releasing(self)
        if not fs_lock_release(&self._lock):
            raise RuntimeError("release unlocked lock")

    # __exit__: lock_exit, installed below the class.

    def locked(self):
        """True if the lock is held by some thread."""
        return fs_lock_is_locked(&self._lock)

    def _at_fork_reinit(self):
        if debugging():
            debug_releasing(self)   # a free lock again, whoever held it
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


cdef inline bint lock_taken(Lock lock) noexcept nogil:
    fs_store_uptr_relaxed(&lock._owner, thread_id())
    return True


cdef inline object lock_enter(object self):
    cdef fs_lock *lock = &(<Lock>self)._lock
    if debugging():
        return debug_acquire(self, lock, -1) and lock_taken(<Lock>self)
    if not fs_lock_try_acquire(lock):
        lock_acquire_blocking(lock, -1, self)
    lock_taken(<Lock>self)
    return True


cdef object lock_exit(object self):
    if debugging():
        debug_releasing(self)
    if not fs_lock_release(&(<Lock>self)._lock):
        raise RuntimeError("release unlocked lock")


# Lock.acquire() and acquire(False) are the calls that count, and on the
# newest Pythons threading's own call costs no more than Cython's argument
# parsing.  So Lock gets an acquire written in C that answers those calls
# (no keywords, blocking given as True or False or not at all) when the lock
# is free, or held and not to be waited for, and hands every other call to
# the Cython method above, which parses the arguments and blocks (and every
# call while fastsync.debug watches).

cdef extern from *:
    """
    static fastsync_fastcall_kw fastsync_lock_acquire_parsed;
    static Py_ssize_t fastsync_lock_offset;         /* of a Lock's fs_lock */
    static Py_ssize_t fastsync_lock_owner_offset;   /* of its owner */

    static PyObject *fastsync_lock_acquire(PyObject *self, PyObject *const *args,
                                           Py_ssize_t nargs, PyObject *kwnames)
    {
        if (kwnames == NULL && nargs <= 1 && !fastsync_debugging()) {
            PyObject *blocking = nargs ? args[0] : Py_True;
            fs_lock *lock = (fs_lock *)((char *)self + fastsync_lock_offset);
            /* acquire(False) looks before it writes: a failed compare-and-swap
             * costs more than a load, and polling threads then share the
             * lock's cache line instead of taking it from each other. */
            if (blocking == Py_False && fs_lock_is_locked(lock))
                Py_RETURN_FALSE;
            if (blocking == Py_True || blocking == Py_False) {
                if (fs_lock_try_acquire(lock)) {
                    fs_store_uptr_relaxed((fs_atomic_uptr *)((char *)self + fastsync_lock_owner_offset),
                                          fastsync_thread_ident());
                    Py_RETURN_TRUE;
                }
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

    /* Puts fastsync_lock_acquire in place of Lock's acquire and its alias. */
    static int fastsync_install_lock_acquire(PyObject *type, Py_ssize_t lock_offset,
                                             Py_ssize_t owner_offset)
    {
        fastsync_lock_offset = lock_offset;
        fastsync_lock_owner_offset = owner_offset;
        return fastsync_install_c_acquire(type, &fastsync_lock_acquire_def,
                                          &fastsync_lock_acquire_parsed, "acquire_lock");
    }
    """
    int fastsync_install_lock_acquire(object type, Py_ssize_t lock_offset,
                                      Py_ssize_t owner_offset) except -1


cdef Py_ssize_t lock_state_offset():
    cdef Lock sample = Lock()
    return <char *>&sample._lock - <char *><void *>sample


cdef Py_ssize_t lock_owner_offset():
    cdef Lock sample = Lock()
    return <char *>&sample._owner - <char *><void *>sample
