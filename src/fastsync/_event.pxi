# ---------------------------------------------------------------------------
# Event

cdef class Event:
    """Event()
--

A flag threads can wait for, like threading.Event.  Event() takes no
arguments; the flag starts clear."""

    cdef fs_event _event   # all-zero (clear) from allocation
    cdef object __weakref__

    def __init__(self):
        """A new flag, clear."""
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
        return event_wait_blocking(&self._event, observed, timeout_ns, self)

    def _at_fork_reinit(self):
        fs_event_reinit_after_fork(&self._event)

    def __repr__(self):
        state = "set" if fs_event_is_set(&self._event) else "unset"
        return f"<{type_name(self)} at {id(self):#x}: {state}>"

    def __reduce_ex__(self, protocol):
        raise cannot_pickle(self)
