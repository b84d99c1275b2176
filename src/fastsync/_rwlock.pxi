# ---------------------------------------------------------------------------
# RWLock: a readers-writer lock, with a lock-like object for each side
#
# The C lock (csrc/fs_rwlock.h) lives in the RWLock; its reader and writer
# are the objects code takes and releases, each behaving like a
# threading.Lock.  The policy and the per-thread read counts are the C
# layer's.

cdef str UPGRADE_MESSAGE = ("cannot acquire the writer side while this thread holds the reader side: "
                            "upgrading is not supported (release the read first)")
cdef str WRITING_MESSAGE = ("cannot acquire the reader side while this thread holds the writer side: "
                            "use downgrade() to turn the write into a read")


cdef int rw_refuse(int status) except -1:
    if status == FS_RW_UPGRADE:
        raise RuntimeError(UPGRADE_MESSAGE)
    if status == FS_RW_WRITING:
        raise RuntimeError(WRITING_MESSAGE)
    if status == FS_RW_TOO_MANY:
        raise OverflowError("too many reads of one RWLock")
    if status == FS_RW_NO_MEMORY:
        raise MemoryError()
    return 0


# A woken waiter that has not waited long takes the GIL first and then tries
# the lock, where there is a GIL (see fs_rwlock_read_until); without one it
# tries at once.
cdef struct rw_wait:
    fs_rwlock *rw
    uintptr_t me
    bint write
    int64_t waiting_since   # kept across the waits that signals interrupt
    int status    # an fs_rw_status that ended the wait, else 0

cdef fs_result rw_read_step(void *target, int64_t deadline_ns, int64_t spin_ns) noexcept nogil:
    cdef rw_wait *w = <rw_wait *>target
    cdef int result = fs_rwlock_read_until(w.rw, &w.waiting_since, deadline_ns, spin_ns,
                                           not GIL_DISABLED)
    if result < 0:
        w.status = result
        return FS_TIMED_OUT
    return <fs_result>result

cdef fs_result rw_write_step(void *target, int64_t deadline_ns, int64_t spin_ns) noexcept nogil:
    cdef rw_wait *w = <rw_wait *>target
    return fs_rwlock_write_until(w.rw, w.me, &w.waiting_since, deadline_ns, spin_ns,
                                 not GIL_DISABLED)

cdef bint rw_retry_step(void *target) noexcept:
    cdef rw_wait *w = <rw_wait *>target
    cdef int got = fs_rwlock_try_write(w.rw, w.me) if w.write else fs_rwlock_try_read(w.rw, w.me)
    if got < 0:
        w.status = got   # raised by rw_acquire
    return got != 0


# A side handed to a thread while another finalizes the interpreter would be
# held for ever: that thread never gets the GIL back.  It gives the side
# back, so the finalizing thread (a finalizer, say) can still take it.  A
# side handed over just before finalization began, to a thread that then
# waits for the GIL, stays held: unlike a Lock's, it isn't taken over.
cdef bint rw_keep_step(void *target) noexcept nogil:
    cdef rw_wait *w = <rw_wait *>target
    if not finalizing_elsewhere():
        return True
    if w.write:
        fs_rwlock_write_release(w.rw)
    else:
        fs_rwlock_read_release(w.rw)
    return False    # wait again


cdef bint rw_acquire(object side, fs_rwlock *rw, bint write, int64_t timeout_ns) except -1:
    """One side's acquire without the debug hooks: try, then wait (listed
    meanwhile as waiting for that side, for fastsync.debug)."""
    cdef rw_wait w
    cdef int got
    w.rw = rw
    w.me = thread_id()
    w.write = write
    w.waiting_since = 0
    w.status = 0
    got = fs_rwlock_try_write(rw, w.me) if write else fs_rwlock_try_read(rw, w.me)
    if got == 1:
        return True
    if got < 0:
        return rw_refuse(got)
    if timeout_ns == 0:
        return False
    got = wait_with_gil_released(rw_write_step if write else rw_read_step, &w, timeout_ns, side,
                                 rw_keep_step, rw_retry_step)
    rw_refuse(w.status)
    return got


cdef bint rw_debug_acquire(object side, fs_rwlock *rw, bint write, int64_t timeout_ns) except -1:
    """An acquire told to fastsync.debug, as debug_acquire does for Lock; a
    thread that reads already reads again unrecorded, as an RLock's re-entry.
    fastsync.debug knows both sides as one lock, the RWLock: a cycle through
    either side can deadlock, since a reader waits behind a waiting writer."""
    cdef int64_t stall_ns, deadline, left
    cdef object waited = side
    if fs_rwlock_read_depth(rw) != 0:
        # A read again, or an upgrade, refused before anything is recorded.
        return rw_acquire(waited, rw, write, 0)
    tracker = current_tracker()
    side = (<_RWLockSide>side)._owner   # what the tracker knows
    if timeout_ns != 0:
        tracker.check_order(side)
    if rw_acquire(waited, rw, write, 0):
        tracker.acquired(side)
        return True
    if timeout_ns == 0:
        return False
    started = tracker.begin_wait(side)
    acquired = False
    try:
        stall_ns = tracker.stall_ns
        if stall_ns <= 0:
            acquired = rw_acquire(waited, rw, write, timeout_ns)
        else:
            deadline = -1 if timeout_ns < 0 else fs_monotonic_ns() + timeout_ns
            while True:
                if deadline >= 0:
                    left = deadline - fs_monotonic_ns()
                    if left <= stall_ns:
                        acquired = rw_acquire(waited, rw, write, left if left > 0 else 0)
                        break
                if rw_acquire(waited, rw, write, stall_ns):
                    acquired = True
                    break
                tracker.stalled(side)
    finally:
        tracker.end_wait(side, started, acquired)
    return acquired


@cython.final
cdef class RWLock:
    """A readers-writer lock: many threads may hold its reader side at once,
    or one thread its writer side.  Phase-fair: a waiting writer keeps new
    readers out, and readers that waited through a write go in before the
    next writer.  A thread that reads may read again at any time; it may
    not take the writer side until it has released its reads."""

    cdef fs_rwlock _rw
    cdef readonly object reader
    cdef readonly object writer
    cdef object __weakref__

    def __cinit__(self):
        fs_rwlock_init(&self._rw)

    def __init__(self):
        # Made once: code keeps them (Condition(rw.writer)).
        if self.reader is None:
            self.reader = _RWLockReader.__new__(_RWLockReader, self)
            self.writer = _RWLockWriter.__new__(_RWLockWriter, self)
        if debugging():
            debug_created(self)

    def downgrade(self):
        """Turn this thread's write into a read, letting in the readers that
        wait but no writer; RuntimeError unless this thread writes."""
        # fastsync.debug sees no change: the thread still holds the RWLock.
        cdef fs_rw_status status = fs_rwlock_downgrade(&self._rw, thread_id())
        if status == FS_RW_NOT_HELD:
            raise RuntimeError("downgrade() needs the writer side held by this thread")
        rw_refuse(status)

    def _readers(self):
        """How many threads read now.  For tests; not part of the API."""
        return fs_rwlock_readers(&self._rw)

    def _waiting(self):
        """(readers, writers) waiting now.  For tests; not part of the API."""
        return (fs_rwlock_count_readers_waiting(&self._rw),
                fs_rwlock_count_writers_waiting(&self._rw))

    def __repr__(self):
        if fs_rwlock_is_written(&self._rw):
            state = "write-locked"
        elif fs_rwlock_readers(&self._rw):
            state = f"read-locked by {fs_rwlock_readers(&self._rw)}"
        else:
            state = "unlocked"
        return f"<{state} {type_name(self)} object at {id(self):#x}>"

    def __reduce_ex__(self, protocol):
        raise cannot_pickle(self)


cdef class _RWLockSide:
    cdef RWLock _owner
    cdef fs_rwlock *_rw
    cdef object __weakref__

    def __cinit__(self, RWLock owner):
        self._owner = owner
        self._rw = &owner._rw

    def __init__(self, *args, **kwargs):
        raise TypeError(f"cannot create '{type(self).__name__}' instances: use RWLock().{self._side}")

    @property
    def rwlock(self):
        """The RWLock this side belongs to."""
        return self._owner

    def __reduce_ex__(self, protocol):
        raise TypeError(f"cannot pickle 'fastsync.RWLock.{self._side}' object")


@cython.final
cdef class _RWLockReader(_RWLockSide):
    """The reader side of an RWLock: acquire, release, locked and `with`, as
    threading.Lock's.  Only a thread that reads may release its read."""

    _side = "reader"

    def acquire(self, blocking=True, timeout=-1):
        """Acquire a read, blocking or not, with an optional timeout in seconds.

        Returns True if acquired, False if not."""
        cdef int64_t timeout_ns = timeout_for(blocking, timeout)
        cdef int got
        if debugging():
            return rw_debug_acquire(self, self._rw, False, timeout_ns)
        got = fs_rwlock_try_read(self._rw, thread_id())
        if got == 1:
            return True
        return rw_acquire(self, self._rw, False, timeout_ns)

    def __enter__(self):
        return reader_enter(self)

    def release(self):
        """Release one read of this thread; RuntimeError if it holds none."""
        reader_exit(self)

    # __exit__: reader_exit, installed below the class.

    def locked(self):
        """True if some thread holds the lock for reading."""
        return fs_rwlock_readers(self._rw) != 0

    def _is_owned(self):
        """Whether this thread reads (for threading.Condition)."""
        return fs_rwlock_read_depth(self._rw) != 0

    def __repr__(self):
        state = "locked" if fs_rwlock_readers(self._rw) else "unlocked"
        return f"<{state} reader of fastsync.RWLock object at {id(self._owner):#x}>"


cdef object reader_enter(object self):
    cdef _RWLockReader side = <_RWLockReader>self
    if debugging():
        return rw_debug_acquire(self, side._rw, False, -1)
    if fs_rwlock_try_read(side._rw, thread_id()) != 1:
        rw_acquire(side, side._rw, False, -1)
    return True


cdef object reader_exit(object self):
    cdef _RWLockReader side = <_RWLockReader>self
    if debugging() and fs_rwlock_read_depth(side._rw) == 1:
        current_tracker().released_here(side._owner)
    if fs_rwlock_read_release(side._rw) != FS_RW_OK:
        raise RuntimeError("cannot release un-acquired lock")


@cython.final
cdef class _RWLockWriter(_RWLockSide):
    """The writer side of an RWLock: acquire, release, locked and `with`, as
    threading.Lock's (so any thread may release it)."""

    _side = "writer"

    def acquire(self, blocking=True, timeout=-1):
        """Acquire the write, blocking or not, with an optional timeout in seconds.

        Returns True if acquired, False if not."""
        cdef int64_t timeout_ns = timeout_for(blocking, timeout)
        if debugging():
            return rw_debug_acquire(self, self._rw, True, timeout_ns)
        if fs_rwlock_try_write(self._rw, thread_id()) == 1:
            return True
        return rw_acquire(self, self._rw, True, timeout_ns)

    def __enter__(self):
        return writer_enter(self)

    def release(self):
        """Release the write; RuntimeError if nobody writes."""
        writer_exit(self)

    # __exit__: writer_exit, installed below the class.

    def locked(self):
        """True if some thread holds the lock for writing."""
        return fs_rwlock_is_written(self._rw)

    def __repr__(self):
        state = "locked" if fs_rwlock_is_written(self._rw) else "unlocked"
        return f"<{state} writer of fastsync.RWLock object at {id(self._owner):#x}>"


cdef object writer_enter(object self):
    cdef _RWLockWriter side = <_RWLockWriter>self
    if debugging():
        return rw_debug_acquire(self, side._rw, True, -1)
    if fs_rwlock_try_write(side._rw, thread_id()) != 1:
        rw_acquire(side, side._rw, True, -1)
    return True


cdef object writer_exit(object self):
    cdef _RWLockWriter side = <_RWLockWriter>self
    if debugging() and fs_rwlock_is_written(side._rw):
        debug_releasing(side._owner)
    if fs_rwlock_write_release(side._rw) != FS_RW_OK:
        raise RuntimeError("release unlocked lock")


# As Lock's (see _lock.pxi): each side gets an acquire written in C that
# answers acquire(), acquire(True) and acquire(False) when the side can be had
# at once, or not at all without waiting, and hands every other call (and
# every call while fastsync.debug watches) to the Cython method above.

cdef extern from *:
    """
    static fastsync_fastcall_kw fastsync_rw_acquire_parsed[2];
    static Py_ssize_t fastsync_rw_side_offset;   /* of a side's fs_rwlock pointer */

    static PyObject *fastsync_rw_acquire(int write, PyObject *self, PyObject *const *args,
                                         Py_ssize_t nargs, PyObject *kwnames)
    {
        if (kwnames == NULL && nargs <= 1 && !fastsync_debugging()) {
            PyObject *blocking = nargs ? args[0] : Py_True;
            if (blocking == Py_True || blocking == Py_False) {
                fs_rwlock *rw = *(fs_rwlock **)((char *)self + fastsync_rw_side_offset);
                uintptr_t me = fastsync_thread_ident();
                int got = write ? fs_rwlock_try_write(rw, me) : fs_rwlock_try_read(rw, me);
                if (got == 1)
                    Py_RETURN_TRUE;
                if (got == 0 && blocking == Py_False)
                    Py_RETURN_FALSE;
            }
        }
        /* Errors, waits and arguments: the Cython method. */
        return fastsync_rw_acquire_parsed[write](self, args, nargs, kwnames);
    }

    static PyObject *fastsync_reader_acquire(PyObject *self, PyObject *const *args,
                                             Py_ssize_t nargs, PyObject *kwnames)
    { return fastsync_rw_acquire(0, self, args, nargs, kwnames); }

    static PyObject *fastsync_writer_acquire(PyObject *self, PyObject *const *args,
                                             Py_ssize_t nargs, PyObject *kwnames)
    { return fastsync_rw_acquire(1, self, args, nargs, kwnames); }

    static PyMethodDef fastsync_rw_acquire_defs[2] = {
        {"acquire", (PyCFunction)(void (*)(void))fastsync_reader_acquire,
         METH_FASTCALL | METH_KEYWORDS, NULL},
        {"acquire", (PyCFunction)(void (*)(void))fastsync_writer_acquire,
         METH_FASTCALL | METH_KEYWORDS, NULL},
    };

    /* Puts the side's C acquire in place (see fastsync_install_c_acquire). */
    static int fastsync_install_rw_acquire(PyObject *type, int write, Py_ssize_t side_offset)
    {
        fastsync_rw_side_offset = side_offset;
        return fastsync_install_c_acquire(type, &fastsync_rw_acquire_defs[write],
                                          &fastsync_rw_acquire_parsed[write], NULL);
    }
    """
    int fastsync_install_rw_acquire(object type, int write, Py_ssize_t side_offset) except -1


cdef Py_ssize_t rw_side_offset():
    cdef RWLock sample = RWLock()
    cdef _RWLockSide side = <_RWLockSide>sample.reader
    return <char *>&side._rw - <char *><void *>side
