# The C layer (csrc/) as the compiled backend sees it.

from libc.stdint cimport int64_t, uint32_t, uint64_t, uintptr_t

cdef extern from "Python.h":
    unsigned long PyLong_AsUnsignedLongMask(object) except? -1
    Py_ssize_t PyLong_AsSsize_t(object) except? -1

cdef extern from "fs_wait.h":
    const char *FS_WAIT_BACKEND_NAME
    ctypedef struct fs_atomic_u32:
        pass
    ctypedef struct fs_atomic_u64:
        pass
    ctypedef enum fs_result:
        FS_OK
        FS_TIMED_OUT
        FS_INTERRUPTED
        FS_RETRY
    fs_result fs_wait(fs_atomic_u32 *addr, uint32_t expected, int64_t deadline_ns) nogil
    void fs_wake_one(fs_atomic_u32 *addr) nogil
    uint32_t fs_load_u32(const fs_atomic_u32 *addr) nogil
    void fs_store_u32(fs_atomic_u32 *addr, uint32_t value) nogil
    uint64_t fs_load_u64(const fs_atomic_u64 *addr) nogil
    void fs_store_u64(fs_atomic_u64 *addr, uint64_t value) nogil

cdef extern from "fastsync.h" nogil:
    int64_t FS_NO_DEADLINE
    int64_t fs_deadline_after(int64_t timeout_ns)
    int64_t fs_monotonic_ns()
    fs_result fs_spin_then_wait(fs_atomic_u32 *addr, uint32_t expected,
                                int64_t deadline_ns, int64_t spin_ns)
    bint fs_spin_while(const fs_atomic_u32 *addr, uint32_t expected,
                       int64_t deadline_ns, int64_t spin_ns)
    void fs_spin_watch(const fs_atomic_u32 *watched)
    bint fs_wait_can_watch()
    void fs_spin_set_limit(uint32_t threads)
    uint32_t fs_spinning_threads()
    void fs_after_fork_child()

    ctypedef struct fs_lock:
        pass
    void fs_lock_init(fs_lock *lock)
    bint fs_lock_try_acquire(fs_lock *lock)
    bint fs_lock_is_locked(const fs_lock *lock)
    bint fs_lock_release(fs_lock *lock)
    bint fs_lock_try_acquire_contended(fs_lock *lock)
    void fs_lock_note_owner_awaits_gil(fs_lock *lock)
    bint fs_lock_note_owner_has_gil(fs_lock *lock)
    bint fs_lock_take_from_gil_waiter(fs_lock *lock)
    fs_result fs_lock_wait_until(fs_lock *lock, int64_t *waiting_since,
                                 int64_t deadline_ns, int64_t spin_ns)
    fs_result fs_lock_wait_for_release(fs_lock *lock, int64_t *waiting_since,
                                       int64_t deadline_ns, int64_t spin_ns)

    unsigned long FS_RLOCK_COUNT_MAX
    ctypedef struct fs_atomic_uptr:
        pass
    ctypedef struct fs_rlock:
        fs_lock lock
        fs_atomic_uptr owner
    uintptr_t fs_load_uptr_relaxed(const fs_atomic_uptr *a)
    void fs_store_uptr_relaxed(fs_atomic_uptr *a, uintptr_t v)
    void fs_rlock_init(fs_rlock *r)
    uintptr_t fs_rlock_owned_count(const fs_rlock *r, uintptr_t me)
    bint fs_rlock_is_owned(const fs_rlock *r, uintptr_t me)
    uintptr_t fs_rlock_count(const fs_rlock *r)
    void fs_rlock_set_count(fs_rlock *r, uintptr_t count)
    void fs_rlock_take_first(fs_rlock *r, uintptr_t me)
    void fs_rlock_take(fs_rlock *r, uintptr_t me, uintptr_t count)
    bint fs_rlock_release_one(fs_rlock *r, uintptr_t me)
    void fs_rlock_release_all(fs_rlock *r)

    uint32_t FS_EVENT_SET
    ctypedef struct fs_event:
        pass
    uint32_t fs_event_state(const fs_event *event)
    bint fs_event_is_set(const fs_event *event)
    void fs_event_set(fs_event *event)
    void fs_event_clear(fs_event *event)
    fs_result fs_event_wait_until(fs_event *event, uint32_t observed_state,
                                  int64_t deadline_ns, int64_t spin_ns)
    void fs_event_reinit_after_fork(fs_event *event)

    ctypedef struct fs_semaphore:
        pass
    void fs_semaphore_init(fs_semaphore *sem, uint64_t value)
    bint fs_semaphore_try_acquire(fs_semaphore *sem)
    bint fs_semaphore_release(fs_semaphore *sem, uint64_t n, uint64_t limit)
    fs_result fs_semaphore_acquire_until(fs_semaphore *sem, int64_t deadline_ns,
                                         int64_t spin_ns)
    uint64_t fs_semaphore_value(const fs_semaphore *sem)

    ctypedef struct fs_cond_waiter:
        pass
    ctypedef struct fs_cond:
        pass
    void fs_cond_init(fs_cond *cond)
    fs_cond_waiter *fs_cond_enqueue(fs_cond *cond)
    bint fs_cond_dequeue(fs_cond *cond, fs_cond_waiter *waiter)
    uint64_t fs_cond_notify(fs_cond *cond, uint64_t n)
    uint64_t fs_cond_length(fs_cond *cond)
    fs_result fs_cond_wait_notified(fs_cond_waiter *waiter, int64_t deadline_ns,
                                     int64_t spin_ns)

cdef extern from "fs_rwlock.h" nogil:
    ctypedef struct fs_rwlock:
        fs_atomic_uptr writer
    ctypedef enum fs_rw_status:
        FS_RW_OK
        FS_RW_NOT_HELD
        FS_RW_UPGRADE
        FS_RW_WRITING
        FS_RW_TOO_MANY
        FS_RW_NO_MEMORY
    void fs_rwlock_init(fs_rwlock *rw)
    uintptr_t fs_rwlock_read_depth(const fs_rwlock *rw)
    int fs_rwlock_try_read(fs_rwlock *rw, uintptr_t me)
    int fs_rwlock_read_until(fs_rwlock *rw, int64_t *waiting_since, int64_t deadline_ns,
                             int64_t spin_ns, bint retry_when_free)
    fs_rw_status fs_rwlock_read_release(fs_rwlock *rw)
    int fs_rwlock_try_write(fs_rwlock *rw, uintptr_t me)
    fs_result fs_rwlock_write_until(fs_rwlock *rw, uintptr_t me, int64_t *waiting_since,
                                    int64_t deadline_ns, int64_t spin_ns, bint retry_when_free)
    fs_rw_status fs_rwlock_write_release(fs_rwlock *rw)
    fs_rw_status fs_rwlock_downgrade(fs_rwlock *rw, uintptr_t me)
    bint fs_rwlock_is_written(const fs_rwlock *rw)
    uint32_t fs_rwlock_readers(const fs_rwlock *rw)
    uintptr_t fs_rwlock_writer(const fs_rwlock *rw)
    size_t fs_rwlock_count_writers_waiting(fs_rwlock *rw)
    uint32_t fs_rwlock_count_readers_waiting(fs_rwlock *rw)
