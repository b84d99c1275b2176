# ---------------------------------------------------------------------------
# RLock

# 3.14 rebuilt _thread.RLock on a recursive mutex whose depth beyond the
# first level is a size_t, like our `depth_minus_one`: whoever is recorded as owner
# owns it even at depth 0 (which _acquire_restore((0, me)) makes), the depth wraps
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


# What _release_save lets go of and _acquire_restore takes back: every level.
ctypedef struct RLockLevels:
    uintptr_t count
    uintptr_t owner


cdef class RLock:
    """RLock(*args, **kwargs)
--

A reentrant lock, like threading.RLock; only its owner may release it.
RLock() takes no arguments (those given are treated as threading treats
them: ignored, warned about or refused, by version)."""

    cdef fs_rlock _rlock   # all-zero (unlocked, no owner) from allocation
    cdef object __weakref__

    def __init__(self, *args, **kwargs):
        """A new lock, unlocked; arguments are treated as threading treats them."""
        if args or kwargs:
            check_rlock_arguments(args, kwargs, stacklevel=1)   # Cython adds no frame
        if debugging():
            debug_created(self)

    @cython.final
    cdef inline bint _acquire(self, int64_t timeout_ns) except -1:
        """Take the lock, or count one more level if this thread holds it;
        timeout_ns: -1 waits for ever, 0 doesn't wait."""
        cdef uintptr_t me = thread_id()
        if debugging():
            return self._acquire_debugged(me, timeout_ns)
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
        if timeout_ns == 0 or not lock_acquire_blocking(&self._rlock.lock, timeout_ns, self):
            return False
        fs_rlock_take_first(&self._rlock, me)
        return True

    @cython.final
    cdef bint _acquire_debugged(self, uintptr_t me, int64_t timeout_ns) except -1:
        """_acquire while fastsync.debug watches: a re-entry is not an acquire."""
        if self._owned(me):
            return self._acquire_held(me, timeout_ns)
        if not debug_acquire(self, &self._rlock.lock, timeout_ns):
            return False
        fs_rlock_take_first(&self._rlock, me)
        return True

    def acquire(self, blocking=True, timeout=-1):
        """Acquire the lock, or count one more level if this thread holds it.

        Returns True if the lock was acquired, False if not."""
        return self._acquire(timeout_for(blocking, timeout))

    def __enter__(self):
        return rlock_enter(self)

    @cython.final
    cdef inline int _release_one(self) except -1:
        if debugging() and fs_rlock_owned_count(&self._rlock, thread_id()) == 1:
            debug_releasing(self)
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
        cdef RLockLevels levels
        self._release_levels(&levels)
        if RLOCK_IS_RECURSIVE_MUTEX:
            return (<Py_ssize_t>levels.count, levels.owner)   # 3.14+ hands the count back signed
        return (levels.count, levels.owner)

    @cython.final
    cdef int _release_levels(self, RLockLevels *levels) except -1:
        """_release_save without the tuple (Condition.wait uses it too)."""
        # Up to 3.13, like CPython's, this checks only that the lock is held,
        # not by whom; since then only the owner may.
        levels.count = fs_rlock_count(&self._rlock)
        levels.owner = fs_load_uptr_relaxed(&self._rlock.owner)
        if RLOCK_IS_RECURSIVE_MUTEX:
            if levels.owner != thread_id():
                raise RuntimeError("cannot release un-acquired lock")
        elif levels.count == 0:
            raise RuntimeError("cannot release un-acquired lock")
        if debugging():
            debug_releasing(self)
        fs_rlock_release_all(&self._rlock)
        return 0

    def _acquire_restore(self, state, /):
        cdef RLockLevels levels
        try:
            if not (isinstance(state, (tuple, list)) and len(state) == 2):
                raise TypeError
            if RLOCK_IS_RECURSIVE_MUTEX:
                levels.count = <unsigned long>PyLong_AsSsize_t(_index(state[0]))
            else:
                levels.count = PyLong_AsUnsignedLongMask(_index(state[0]))
            levels.owner = PyLong_AsUnsignedLongMask(_index(state[1]))
        except (TypeError, OverflowError):
            # The interpreter's own lock raises the error threading gives.
            _stdlib_rlock()._acquire_restore(state)
            raise
        self._restore_levels(&levels, False)

    @cython.final
    cdef int _restore_levels(self, const RLockLevels *levels, bint defer_signals) except -1:
        """_acquire_restore without the tuple.  With defer_signals the lock is
        taken for sure, as Condition.wait must (lock_acquire_deferring_signals);
        without, a signal handler's exception stops the wait."""
        if not fs_lock_try_acquire(&self._rlock.lock):
            if defer_signals:
                lock_acquire_deferring_signals(&self._rlock.lock, self)
            else:
                lock_acquire_blocking(&self._rlock.lock, -1, self)
        fs_rlock_take(&self._rlock, levels.owner, levels.count)
        if debugging():
            debug_restored(self)
        return 0

    def _at_fork_reinit(self):
        if debugging():
            debug_releasing(self)   # a free lock again, whoever held it
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


# As Lock's (see _lock.pxi): RLock gets an acquire written in C that answers
# acquire() and acquire(False) when the lock is free, and hands every other
# call (a re-entry, a held lock, arguments to parse, fastsync.debug) to the
# Cython method above.

cdef extern from *:
    """
    static fastsync_fastcall_kw fastsync_rlock_acquire_parsed;
    static Py_ssize_t fastsync_rlock_offset;   /* of an RLock's fs_rlock */

    static PyObject *fastsync_rlock_acquire(PyObject *self, PyObject *const *args,
                                            Py_ssize_t nargs, PyObject *kwnames)
    {
        if (kwnames == NULL && nargs <= 1 && !fastsync_debugging()) {
            PyObject *blocking = nargs ? args[0] : Py_True;
            fs_rlock *r = (fs_rlock *)((char *)self + fastsync_rlock_offset);
            /* A free lock can't be ours: the owner needs no look. */
            if ((blocking == Py_True || blocking == Py_False) && fs_lock_try_acquire(&r->lock)) {
                fs_rlock_take_first(r, fastsync_thread_ident());
                Py_RETURN_TRUE;
            }
        }
        return fastsync_rlock_acquire_parsed(self, args, nargs, kwnames);
    }

    static PyMethodDef fastsync_rlock_acquire_def = {
        "acquire", (PyCFunction)(void (*)(void))fastsync_rlock_acquire,
        METH_FASTCALL | METH_KEYWORDS, NULL
    };

    static int fastsync_install_rlock_acquire(PyObject *type, Py_ssize_t rlock_offset)
    {
        fastsync_rlock_offset = rlock_offset;
        return fastsync_install_c_acquire(type, &fastsync_rlock_acquire_def,
                                          &fastsync_rlock_acquire_parsed, NULL);
    }
    """
    int fastsync_install_rlock_acquire(object type, Py_ssize_t rlock_offset) except -1


cdef Py_ssize_t rlock_state_offset():
    cdef RLock sample = RLock()
    return <char *>&sample._rlock - <char *><void *>sample


cdef inline object rlock_enter(object self):
    (<RLock>self)._acquire(-1)
    return True


cdef object rlock_exit(object self):
    (<RLock>self)._release_one()
