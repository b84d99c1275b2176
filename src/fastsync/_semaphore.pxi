# ---------------------------------------------------------------------------
# Semaphore and BoundedSemaphore

_monotonic = __import__("time").monotonic


cdef class Semaphore:
    """Semaphore(value=1)
--

Semaphore(value=1): a counter of available slots, like
threading.Semaphore, starting at `value`."""

    cdef fs_semaphore _sem
    cdef uint64_t _limit      # the most release() may bring the count to
    cdef object __weakref__

    def __init__(self, value=1):
        """Start with `value` slots."""
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
        return semaphore_acquire_blocking(&self._sem, timeout_ns, self)

    def __enter__(self, blocking=True, timeout=None):
        # threading's Semaphore.__enter__ is its acquire, arguments and all.
        if blocking is True and timeout is None:
            if not fs_semaphore_try_acquire(&self._sem):
                semaphore_acquire_blocking(&self._sem, -1, self)
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


cdef class BoundedSemaphore(Semaphore):
    """BoundedSemaphore(value=1)
--

BoundedSemaphore(value=1): a semaphore that can't be released above
its initial `value`."""

    def __init__(self, value=1):
        """Start with `value` slots, the most there can be."""
        Semaphore.__init__(self, value)
        self._limit = fs_semaphore_value(&self._sem)

    @property
    def _initial_value(self):
        return self._limit

    def __repr__(self):
        return (f"<{type_name(self)} at {id(self):#x}: "
                f"value={self._value}/{self._initial_value}>")
