/* fastsync's primitives in plain C: Lock, RLock and Event.
 *
 * Each primitive is a 32-bit state word changed with atomics (fs_atomic.h)
 * plus the platform's wait/wake layer (fs_wait.h).  The uncontended paths are
 * static inline and make no system call; everything that may block lives in
 * fastsync.c and takes an absolute deadline on the monotonic clock
 * (FS_NO_DEADLINE for none).  Blocking calls return FS_INTERRUPTED when a
 * signal arrived, so a caller that runs signal handlers (the Python layer) can
 * do so and call again with the same deadline.
 *
 * No Python.h here: the caller passes its own thread identity to the RLock
 * functions. */
#ifndef FASTSYNC_H
#define FASTSYNC_H

#include <stdint.h>
#include <limits.h>
#include "fs_atomic.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FS_NO_DEADLINE ((int64_t)-1)

typedef enum {
    FS_ACQUIRED = 0,     /* the lock is ours / the event was set */
    FS_TIMED_OUT = 1,    /* the deadline passed first */
    FS_INTERRUPTED = 2   /* a signal arrived; nothing was acquired */
} fs_result;

/* Monotonic time in nanoseconds (CLOCK_MONOTONIC, QueryPerformanceCounter). */
int64_t fs_monotonic_ns(void);

/* Deadline for a relative timeout, saturating to "no deadline" when the sum
 * would not fit (a timeout of centuries never expires in practice). */
int64_t fs_deadline_after(int64_t timeout_ns);

/* ---- Lock ----------------------------------------------------------------
 * 0: unlocked, 1: locked, 2: locked and a thread may be waiting.
 * Any thread may release (threading.Lock semantics). */
enum { FS_LOCK_FREE = 0, FS_LOCK_HELD = 1, FS_LOCK_CONTENDED = 2 };

typedef struct { fs_atomic_u32 state; } fs_lock;

void fs_lock_wake_one(fs_lock *lock);
fs_result fs_lock_acquire_until(fs_lock *lock, int64_t deadline_ns);

static inline void fs_lock_init(fs_lock *lock)
{ fs_store_u32(&lock->state, FS_LOCK_FREE); }

static inline int fs_lock_try_acquire(fs_lock *lock)
{
    uint32_t expected = FS_LOCK_FREE;
    return fs_cas_u32(&lock->state, &expected, FS_LOCK_HELD);
}

static inline int fs_lock_is_locked(const fs_lock *lock)
{ return fs_load_u32(&lock->state) != FS_LOCK_FREE; }

/* Returns 0 when the lock was not held (the caller reports the error).  One
 * exchange, so of two threads racing to release, exactly one succeeds. */
static inline int fs_lock_release(fs_lock *lock)
{
    uint32_t previous = fs_exchange_u32(&lock->state, FS_LOCK_FREE);
    if (previous == FS_LOCK_CONTENDED)
        fs_lock_wake_one(lock);
    return previous != FS_LOCK_FREE;
}

/* ---- RLock ---------------------------------------------------------------
 * A Lock plus the owner's thread id and the recursion count.  Only the owner
 * writes owner/count while it holds the lock; others read them only to compare
 * with their own id (which they can never see there unless they wrote it) or
 * for repr, so relaxed atomics suffice. */
#define FS_RLOCK_COUNT_MAX ULONG_MAX

typedef struct {
    fs_lock lock;
    fs_atomic_uptr owner;
    fs_atomic_uptr count;
} fs_rlock;

static inline void fs_rlock_init(fs_rlock *r)
{
    fs_lock_init(&r->lock);
    fs_store_uptr_relaxed(&r->owner, 0);
    fs_store_uptr_relaxed(&r->count, 0);
}

static inline int fs_rlock_is_owned(const fs_rlock *r, uintptr_t me)
{
    return fs_load_uptr_relaxed(&r->count) != 0
        && fs_load_uptr_relaxed(&r->owner) == me;
}

/* Called right after the caller acquired r->lock. */
static inline void fs_rlock_take(fs_rlock *r, uintptr_t me, uintptr_t count)
{
    fs_store_uptr_relaxed(&r->owner, me);
    fs_store_uptr_relaxed(&r->count, count);
}

/* Releases everything; the caller checked ownership. */
static inline void fs_rlock_release_all(fs_rlock *r)
{
    fs_store_uptr_relaxed(&r->count, 0);
    fs_store_uptr_relaxed(&r->owner, 0);
    fs_lock_release(&r->lock);
}

/* ---- Event ---------------------------------------------------------------
 * bit 0: the flag; bit 1: a thread may be waiting; bits 2..31: a generation
 * bumped by every set() that found waiters, so a waiter woken by set() reports
 * success even if clear() ran before it looked (threading.Event does too). */
enum { FS_EVENT_SET = 1u, FS_EVENT_WAITERS = 2u, FS_EVENT_GENERATION = 4u };

typedef struct { fs_atomic_u32 state; } fs_event;

void fs_event_set_slow(fs_event *event);
/* observed_state: the state the caller saw when it decided to wait.  A caller
 * that is interrupted and calls again passes the same value, so a set() that
 * happened in between still counts. */
fs_result fs_event_wait_until(fs_event *event, uint32_t observed_state,
                              int64_t deadline_ns);

static inline uint32_t fs_event_state(const fs_event *event)
{ return fs_load_u32(&event->state); }

static inline void fs_event_init(fs_event *event, int is_set)
{ fs_store_u32(&event->state, is_set ? FS_EVENT_SET : 0); }

static inline int fs_event_is_set(const fs_event *event)
{ return (fs_load_u32(&event->state) & FS_EVENT_SET) != 0; }

static inline void fs_event_set(fs_event *event)
{
    uint32_t expected = fs_load_u32(&event->state);
    if (expected & FS_EVENT_SET)
        return;
    if (!(expected & FS_EVENT_WAITERS)
            && fs_cas_u32(&event->state, &expected, expected | FS_EVENT_SET))
        return;
    fs_event_set_slow(event);
}

static inline void fs_event_clear(fs_event *event)
{
    uint32_t expected = fs_load_u32(&event->state);
    while (expected & FS_EVENT_SET) {
        /* While set there are no waiters, so only the flag changes. */
        if (fs_cas_u32(&event->state, &expected, expected & ~FS_EVENT_SET))
            return;
    }
}

/* Keeps the flag, forgets waiters: for the child after fork(). */
static inline void fs_event_reinit_after_fork(fs_event *event)
{ fs_event_init(event, fs_event_is_set(event)); }

#ifdef __cplusplus
}
#endif
#endif /* FASTSYNC_H */
