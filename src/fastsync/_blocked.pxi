# ---------------------------------------------------------------------------
# Who waits for what: kept always, for fastsync.debug
#
# fastsync.debug's find_deadlocks() and blocked_threads() must answer for a
# program that already hangs, with nothing switched on beforehand.  So a
# thread about to block (the slow path only, before a wait that costs far
# more) links a record of what it waits for, and since when, into one list,
# and unlinks it before the wait returns.  The record lives on the waiting
# thread's C stack; who holds a Lock is kept by the Lock itself (_lock.pxi),
# an RLock's owner by the RLock, an RWLock's writer by the RWLock.
#
# The list has a named guard, not the GIL, so the free-threaded build is
# covered: waiters link and unlink under it, and the reader takes a
# reference to each object under it.  That is safe because an object stays
# alive while it is listed (the waiting call holds a reference to it, and
# unlinks before it returns).  Nothing under the guard runs Python code or
# allocates, so no finalizer or signal handler can try to take it again.
#
# The reader also reads who holds each lock under the guard.  A waiter that
# got its lock writes itself as the owner only after it has unlinked, so a
# listed waiter never shows as the holder of the lock it waits for, unless
# it really took that Lock before (a thread that deadlocks on itself).

cdef extern from *:
    """
    typedef struct fastsync_blocked {
        struct fastsync_blocked *prev, *next;
        PyObject *object;        /* what the thread waits for */
        unsigned long thread;
        int64_t since_ns;        /* fs_monotonic_ns() when it began */
        /* For a Lock or RLock: its state and owner; for an RWLock's side,
         * no state and its writer word (0 while nobody writes); else NULL.
         * A copy holds the owner then, 0 if the lock was free or had none. */
        const fs_lock *lock;
        const fs_atomic_uptr *owner;
        uintptr_t holder;
    } fastsync_blocked;

    /* The list's head: a circle, empty when it points at itself. */
    static fastsync_blocked fastsync_blocked_head = {
        &fastsync_blocked_head, &fastsync_blocked_head, NULL, 0, 0, NULL, NULL, 0};
    /* 0 free, 1 held, 2 held and a thread may sleep on it. */
    static fs_atomic_u32 fastsync_blocked_guard;

    static void fastsync_blocked_lock(void)
    {
        uint32_t expected = 0;
        if (fs_cas_u32(&fastsync_blocked_guard, &expected, 1))
            return;
        while (fs_exchange_u32(&fastsync_blocked_guard, 2) != 0)
            fs_wait(&fastsync_blocked_guard, 2, FS_NO_DEADLINE);
    }

    static void fastsync_blocked_unlock(void)
    {
        if (fs_exchange_u32(&fastsync_blocked_guard, 0) == 2)
            fs_wake_one(&fastsync_blocked_guard);
    }

    static void fastsync_blocked_link(fastsync_blocked *record, PyObject *object,
                                      const fs_lock *lock, const fs_atomic_uptr *owner,
                                      unsigned long thread, int64_t now)
    {
        record->object = object;
        record->lock = lock;
        record->owner = owner;
        record->thread = thread;
        record->since_ns = now;
        fastsync_blocked_lock();
        record->prev = fastsync_blocked_head.prev;
        record->next = &fastsync_blocked_head;
        fastsync_blocked_head.prev->next = record;
        fastsync_blocked_head.prev = record;
        fastsync_blocked_unlock();
    }

    static void fastsync_blocked_unlink(fastsync_blocked *record)
    {
        fastsync_blocked_lock();
        record->prev->next = record->next;
        record->next->prev = record->prev;
        fastsync_blocked_unlock();
    }

    /* Copies up to `capacity` records into `out`, each object with a new
     * reference; returns how many are listed, which may be more. */
    static Py_ssize_t fastsync_blocked_copy(fastsync_blocked *out, Py_ssize_t capacity)
    {
        Py_ssize_t count = 0;
        fastsync_blocked *record;
        fastsync_blocked_lock();
        for (record = fastsync_blocked_head.next; record != &fastsync_blocked_head;
                record = record->next) {
            if (count < capacity) {
                out[count] = *record;
                out[count].holder = record->owner != NULL
                                    && (record->lock == NULL || fs_lock_is_locked(record->lock))
                                    ? fs_load_uptr_relaxed(record->owner) : 0;
                Py_INCREF(record->object);
            }
            count++;
        }
        fastsync_blocked_unlock();
        return count;
    }

    /* Drops the references fastsync_blocked_copy took. */
    static void fastsync_blocked_release(fastsync_blocked *copies, Py_ssize_t count)
    {
        Py_ssize_t i;
        for (i = 0; i < count; i++)
            Py_DECREF(copies[i].object);
    }

    /* In a forked child only the forking thread lives on (it may be in a
     * wait, if it forked from a signal handler): the others' records go, and
     * the guard is free whoever held it. */
    static void fastsync_blocked_after_fork(unsigned long me)
    {
        fastsync_blocked *record = fastsync_blocked_head.next, *next;
        fs_store_u32(&fastsync_blocked_guard, 0);
        fastsync_blocked_head.next = fastsync_blocked_head.prev = &fastsync_blocked_head;
        for (; record != &fastsync_blocked_head; record = next) {
            next = record->next;
            if (record->thread == me) {
                record->prev = fastsync_blocked_head.prev;
                record->next = &fastsync_blocked_head;
                fastsync_blocked_head.prev->next = record;
                fastsync_blocked_head.prev = record;
            }
        }
    }
    """
    ctypedef struct blocked_record "fastsync_blocked":
        void *object "object"
        unsigned long thread
        int64_t since_ns
        uintptr_t holder
    void blocked_link "fastsync_blocked_link"(blocked_record *record, void *object,
                                               const fs_lock *lock, const fs_atomic_uptr *owner,
                                               unsigned long thread, int64_t now) nogil
    void blocked_unlink "fastsync_blocked_unlink"(blocked_record *record) nogil
    Py_ssize_t blocked_copy "fastsync_blocked_copy"(blocked_record *out, Py_ssize_t capacity)
    void blocked_release "fastsync_blocked_release"(blocked_record *copies, Py_ssize_t count)
    void blocked_after_fork "fastsync_blocked_after_fork"(unsigned long me) nogil


cdef bint wait_with_gil_released(wait_step wait, void *target, int64_t timeout_ns, object waited,
                                 keep_step keep=NULL, retry_step retry=NULL) except -1:
    """wait_loop (_waiting.pxi), listed as waiting for `waited` meanwhile."""
    cdef blocked_record record
    cdef const fs_lock *lock = NULL
    cdef const fs_atomic_uptr *owner = NULL
    if type(waited) is Lock:
        lock, owner = &(<Lock>waited)._lock, &(<Lock>waited)._owner
    elif isinstance(waited, RLock):
        lock, owner = &(<RLock>waited)._rlock.lock, &(<RLock>waited)._rlock.owner
    elif isinstance(waited, _RWLockSide):
        # Only a writer is known: readers are counted, not named.
        owner = &(<_RWLockSide>waited)._rw.writer
    blocked_link(&record, <void *>waited, lock, owner, thread_id(), fs_monotonic_ns())
    try:
        return wait_loop(wait, target, timeout_ns, keep, retry)
    finally:
        blocked_unlink(&record)


def _blocked():
    """[(thread id, object, since, holder's thread id or None)] for each
    thread blocked in a wait of this backend now, the longest waiting first;
    since: _monotonic_ns() when the wait began.  The holder is known for a
    Lock (the thread that took it), an RLock (its owner) and an RWLock's
    side while a thread writes (the writer).  For
    fastsync.debug; not part of the API."""
    cdef Py_ssize_t capacity = 16, count, copied = 0, i
    cdef blocked_record *records = NULL
    result = []
    try:
        while True:
            records = <blocked_record *>PyMem_Realloc(records, capacity * sizeof(blocked_record))
            if records == NULL:
                raise MemoryError()
            count = blocked_copy(records, capacity)
            copied = min(count, capacity)
            if count <= capacity:
                break
            blocked_release(records, copied)
            copied = 0
            capacity = count + 16
        for i in range(count):
            result.append((records[i].thread, <object>records[i].object, records[i].since_ns,
                           records[i].holder if records[i].holder != 0 else None))
    finally:
        blocked_release(records, copied)
        PyMem_Free(records)
    result.sort(key=lambda entry: entry[2])
    return result


def _monotonic_ns():
    """The clock of _blocked()'s times."""
    return fs_monotonic_ns()
