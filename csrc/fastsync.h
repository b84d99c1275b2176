/* fastsync's primitives in plain C: the Lock, RLock, Event and Semaphore,
 * and the Condition's queue of waiters; the Python layer builds Condition,
 * Semaphore, BoundedSemaphore and Barrier on them.
 *
 * Each primitive's state is a word changed with atomics (fs_atomic.h), plus,
 * for a Lock and a Condition, a queue of waiters, over the platform's
 * wait/wake layer (fs_wait.h).  The uncontended paths are static inline and
 * make no system call; everything that may block lives in fastsync.c and
 * takes an absolute deadline on the monotonic clock (fs_time.h;
 * FS_NO_DEADLINE for none) and a spin budget (fs_spin.h).  Blocking calls
 * return FS_INTERRUPTED when a signal arrived, so a caller that runs signal
 * handlers (the Python layer) can do so and call again with the same
 * deadline.
 *
 * No Python.h here: the caller passes its own thread identity to the RLock
 * functions. */
#ifndef FASTSYNC_H
#define FASTSYNC_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include "fs_atomic.h"
#include "fs_list.h"
#include "fs_queue.h"
#include "fs_spin.h"
#include "fs_time.h"
#include "fs_wait.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Fork ----------------------------------------------------------------
 * State that names threads (a waiter asking for a hand-off, a Condition's
 * queue of waiters) is kept in queues of the fork generation they were made
 * in (fs_queue.h); a forked child sees they are stale and forgets them,
 * since those threads don't exist there. */

/* Call in the child after fork(), before any other thread is started:
 * forgets the parent's spinners and wait-layer state, and starts a new
 * generation. */
void fs_after_fork_child(void);

/* ---- Lock ----------------------------------------------------------------
 * The state word:
 *   FS_LOCK_HELD      someone holds the lock (any thread may release it,
 *                     threading.Lock semantics);
 *   FS_LOCK_WAITERS   a thread may be asleep on the word: a release wakes one;
 *   FS_LOCK_HANDOFF_ASKED
 *                     at least one waiter has waited longer than
 *                     FS_LOCK_HANDOFF_AFTER_NS and is queued as an asker:
 *                     the next release gives the lock to the first asker
 *                     instead of freeing it;
 *   FS_LOCK_HANDED    the lock was given to that asker, which has not yet
 *                     taken it; it stays held meanwhile;
 *   FS_LOCK_OWNER_AWAITS_GIL
 *                     the owner took the lock with the GIL released and now
 *                     waits for the GIL (see fs_lock_take_from_gil_waiter).
 * A free lock is 0.  Without hand-offs, a thread that releases and at once
 * retakes the lock always beats the thread it woke, which first needs the
 * CPU (and, in Python, the GIL); with them, no thread waits much longer than
 * the threshold plus one turn of each waiter before it.
 *
 * The askers queue in order, each on its own word, so a waiter that has
 * waited long never goes back to the end of the kernel's queue because
 * another asked first.  The queue has its own guard, and it belongs to the
 * fork generation it was made in: a forked child forgets its parent's
 * askers, threads the child doesn't have.  An all-zero fs_lock is a free
 * lock. */
enum {
    FS_LOCK_FREE = 0,
    FS_LOCK_HELD = 1u,
    FS_LOCK_WAITERS = 2u,
    FS_LOCK_HANDOFF_ASKED = 4u,
    FS_LOCK_HANDED = 8u,
    FS_LOCK_OWNER_AWAITS_GIL = 16u
};
#define FS_LOCK_HANDOFF_AFTER_NS ((int64_t)1000000)

typedef struct fs_lock_asker fs_lock_asker;   /* fastsync.c */

typedef struct {
    fs_atomic_u32 state;
    fs_atomic_u32 askers_guard;       /* guards the queue below */
    fs_queue askers;                  /* of fs_lock_asker, oldest first */
} fs_lock;

/* Releases a lock whose word is not just FS_LOCK_HELD (`state`, as seen). */
int fs_lock_release_slow(fs_lock *lock, uint32_t state);

/* How many waiters are queued for a hand-off now (for tests). */
size_t fs_lock_count_askers(fs_lock *lock);

/* Blocks until the lock can be had or the deadline passes.  spin_ns: see
 * fs_spin.h.  Returns FS_OK, FS_TIMED_OUT or FS_INTERRUPTED. */
fs_result fs_lock_acquire_until(fs_lock *lock, int64_t deadline_ns, int64_t spin_ns);

/* fs_lock_acquire_until for a caller that waits with the GIL released and,
 * when interrupted, runs signal handlers and waits again: it keeps
 * waiting_since across the calls.  A woken waiter takes a free lock here
 * before it asks for the GIL, as threading.Lock's waiters do up to CPython
 * 3.12.  A waiter that has waited longer than FS_LOCK_HANDOFF_AFTER_NS asks
 * to be handed the lock.
 *
 * waiting_since: the caller's own variable, 0 before its first call; the
 * time the wait began, from which that threshold counts.  A caller that
 * handles FS_INTERRUPTED and waits again passes it unchanged.
 * Returns FS_OK (the lock is the caller's), FS_TIMED_OUT or
 * FS_INTERRUPTED (nothing is held). */
fs_result fs_lock_wait_until(fs_lock *lock, int64_t *waiting_since,
                             int64_t deadline_ns, int64_t spin_ns);

/* fs_lock_wait_until for a caller that takes the GIL before the lock, as
 * threading.Lock's waiters do from CPython 3.13: a waiter that has not yet
 * waited FS_LOCK_HANDOFF_AFTER_NS returns FS_RETRY, holding nothing, when
 * the lock is released (or it is woken and finds the lock retaken).  Its
 * caller then takes the GIL and tries fs_lock_try_acquire_contended, and
 * waits again (with the same waiting_since) if that fails.  Under the GIL,
 * the thread that released the lock usually runs on and wants it back at
 * once: a waiter that took it without the GIL would make that thread wait
 * for it, and the two would trade the lock and the GIL on every turn.  A
 * waiter that has waited long still takes the lock, or is handed it, before
 * it asks for the GIL, so that it is not passed over for ever.
 * Also returns FS_OK, FS_TIMED_OUT or FS_INTERRUPTED, as fs_lock_wait_until. */
fs_result fs_lock_wait_for_release(fs_lock *lock, int64_t *waiting_since,
                                   int64_t deadline_ns, int64_t spin_ns);

/* A waiter that took the lock with the GIL released marks it before it
 * asks for the GIL, and unmarks it once it has the GIL.  While the
 * interpreter is finalized, a thread other than the finalizing one that asks
 * for the GIL never gets it (it is ended or parked), so the lock would stay
 * held for ever; the finalizing thread takes such a lock over instead. */
static inline void fs_lock_note_owner_awaits_gil(fs_lock *lock)
{
    uint32_t state = fs_load_u32(&lock->state);
    while (!fs_cas_u32(&lock->state, &state, state | FS_LOCK_OWNER_AWAITS_GIL)) {}
}

/* Returns 0 if the finalizing thread took the lock over meanwhile. */
static inline int fs_lock_note_owner_has_gil(fs_lock *lock)
{
    return (fs_fetch_and_u32(&lock->state, ~(uint32_t)FS_LOCK_OWNER_AWAITS_GIL)
            & FS_LOCK_OWNER_AWAITS_GIL) != 0;
}

/* For the thread finalizing the interpreter only: takes over a lock whose
 * owner waits for the GIL.  Returns 1 if it did. */
static inline int fs_lock_take_from_gil_waiter(fs_lock *lock)
{
    return fs_lock_note_owner_has_gil(lock);
}

static inline void fs_lock_init(fs_lock *lock)
{
    fs_store_u32(&lock->state, FS_LOCK_FREE);
    fs_store_u32(&lock->askers_guard, 0);
    fs_queue_init(&lock->askers);
}

static inline int fs_lock_try_acquire(fs_lock *lock)
{
    /* No plain look first: on a free lock, the case that counts, it only adds
     * a load and a branch.  Waiting threads look without writing: see
     * fs_spin_while. */
    uint32_t expected = FS_LOCK_FREE;
    return fs_cas_u32(&lock->state, &expected, FS_LOCK_HELD);
}

/* Takes the lock if it is free, else marks it as having a waiter; either way
 * the word is left with FS_LOCK_WAITERS, so a thread that slept before is
 * never forgotten by the next release. */
static inline int fs_lock_try_acquire_contended(fs_lock *lock)
{
    uint32_t state = fs_load_u32(&lock->state);
    for (;;) {
        uint32_t next = state | FS_LOCK_HELD | FS_LOCK_WAITERS;
        if (next == state)
            return 0;
        if (fs_cas_u32(&lock->state, &state, next))
            return !(state & FS_LOCK_HELD);
    }
}

static inline int fs_lock_is_locked(const fs_lock *lock)
{ return fs_load_u32(&lock->state) != FS_LOCK_FREE; }

/* Returns 0 when the lock was not held (the caller reports the error).  Of
 * two threads racing to release, exactly one succeeds. */
static inline int fs_lock_release(fs_lock *lock)
{
    uint32_t state = FS_LOCK_HELD;
    if (fs_cas_u32(&lock->state, &state, FS_LOCK_FREE))
        return 1;
    return fs_lock_release_slow(lock, state);
}

/* ---- RLock ---------------------------------------------------------------
 * A Lock plus the owner's thread id and the recursion depth.  The depth is
 * stored minus one, so that it is 0 whenever the lock is free: a first
 * acquire and a last release write only the owner, the common case costs no
 * store of the depth, and a zeroed struct is a free lock.  (Depth 0, which
 * only _acquire_restore can ask for, wraps to UINTPTR_MAX and reads back as
 * 0.)  Only the owner writes owner/depth_minus_one while it holds the lock;
 * others read them only to compare with their own id (which they can never
 * see there unless they wrote it) or for repr, so relaxed atomics suffice.
 * Thread ids passed in (`me`) are never 0, the owner of a free lock. */
#define FS_RLOCK_COUNT_MAX ULONG_MAX

typedef struct {
    fs_lock lock;
    fs_atomic_uptr owner;
    fs_atomic_uptr depth_minus_one;
} fs_rlock;

static inline void fs_rlock_init(fs_rlock *r)
{
    fs_lock_init(&r->lock);
    fs_store_uptr_relaxed(&r->owner, 0);
    fs_store_uptr_relaxed(&r->depth_minus_one, 0);
}

/* The recursion depth if `me` holds the lock, else 0. */
static inline uintptr_t fs_rlock_owned_count(const fs_rlock *r, uintptr_t me)
{
    return fs_load_uptr_relaxed(&r->owner) == me ? fs_load_uptr_relaxed(&r->depth_minus_one) + 1 : 0;
}

static inline int fs_rlock_is_owned(const fs_rlock *r, uintptr_t me)
{ return fs_rlock_owned_count(r, me) != 0; }

/* The depth whoever holds the lock has, 0 if it is free: for repr and for
 * _release_save, which (as in CPython) doesn't ask who holds it. */
static inline uintptr_t fs_rlock_count(const fs_rlock *r)
{ return fs_lock_is_locked(&r->lock) ? fs_load_uptr_relaxed(&r->depth_minus_one) + 1 : 0; }

/* The owner changes the depth of a lock it holds. */
static inline void fs_rlock_set_count(fs_rlock *r, uintptr_t count)
{ fs_store_uptr_relaxed(&r->depth_minus_one, count - 1); }

/* Called right after the caller acquired r->lock, which was free, so its
 * depth already reads 1. */
static inline void fs_rlock_take_first(fs_rlock *r, uintptr_t me)
{ fs_store_uptr_relaxed(&r->owner, me); }

/* As fs_rlock_take_first, with any depth (for _acquire_restore). */
static inline void fs_rlock_take(fs_rlock *r, uintptr_t me, uintptr_t count)
{
    fs_store_uptr_relaxed(&r->owner, me);
    fs_rlock_set_count(r, count);
}

/* Releases a lock held at depth 1; the caller checked ownership and depth. */
static inline void fs_rlock_release_last(fs_rlock *r)
{
    fs_store_uptr_relaxed(&r->owner, 0);
    fs_lock_release(&r->lock);
}

/* Undoes one level if `me` holds the lock; returns 0, changing nothing, if
 * it doesn't.  The common case, depth 1, is the first test. */
static inline int fs_rlock_release_one(fs_rlock *r, uintptr_t me)
{
    uintptr_t depth_minus_one;
    if (fs_load_uptr_relaxed(&r->owner) != me)
        return 0;
    depth_minus_one = fs_load_uptr_relaxed(&r->depth_minus_one);
    if (depth_minus_one == 0) {
        fs_rlock_release_last(r);
        return 1;
    }
    if (depth_minus_one == UINTPTR_MAX)    /* depth 0: held, but owned by nobody */
        return 0;
    fs_store_uptr_relaxed(&r->depth_minus_one, depth_minus_one - 1);
    return 1;
}

/* Releases every level; the caller checked ownership. */
static inline void fs_rlock_release_all(fs_rlock *r)
{
    fs_store_uptr_relaxed(&r->depth_minus_one, 0);
    fs_rlock_release_last(r);
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
                              int64_t deadline_ns, int64_t spin_ns);

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

/* One atomic AND of the flag bit, with no loop: it leaves a waiter's bit and
 * the generation alone even if the event was cleared and waited on since the
 * look. */
static inline void fs_event_clear(fs_event *event)
{
    if (fs_load_u32(&event->state) & FS_EVENT_SET)
        fs_fetch_and_u32(&event->state, ~(uint32_t)FS_EVENT_SET);
}

/* Keeps the flag, forgets waiters: for the child after fork(). */
static inline void fs_event_reinit_after_fork(fs_event *event)
{ fs_event_init(event, fs_event_is_set(event)); }

/* ---- Semaphore -----------------------------------------------------------
 * A 64-bit counter, the number of threads that may be sleeping, and a
 * sequence word they sleep on.  A waiter registers itself before its last look
 * at the counter and a releaser looks for waiters after adding to it, so one of
 * the two always sees the other (sequentially consistent atomics). */
typedef struct {
    fs_atomic_u64 count;
    fs_atomic_u32 sleepers;
    fs_atomic_u32 sequence;
} fs_semaphore;

fs_result fs_semaphore_acquire_until(fs_semaphore *sem, int64_t deadline_ns,
                                     int64_t spin_ns);
void fs_semaphore_wake(fs_semaphore *sem, uint64_t released);

static inline void fs_semaphore_init(fs_semaphore *sem, uint64_t value)
{
    fs_store_u64(&sem->count, value);
    fs_store_u32(&sem->sleepers, 0);
    fs_store_u32(&sem->sequence, 0);
}

static inline uint64_t fs_semaphore_value(const fs_semaphore *sem)
{ return fs_load_u64(&sem->count); }

static inline int fs_semaphore_try_acquire(fs_semaphore *sem)
{
    uint64_t count = fs_load_u64(&sem->count);
    while (count > 0) {
        if (fs_cas_u64(&sem->count, &count, count - 1))
            return 1;
    }
    return 0;
}

/* Below this count an unbounded semaphore's release(1) adds without a check:
 * every thread that saw the count below it adds only 1, so together they can't
 * carry it past UINT64_MAX. */
#define FS_SEMAPHORE_ADD_FREELY_BELOW ((uint64_t)1 << 63)

/* Adds n unless the count would pass `limit`; returns 0 (and changes
 * nothing) in that case.  Pass UINT64_MAX for an unbounded semaphore. */
static inline int fs_semaphore_release(fs_semaphore *sem, uint64_t n, uint64_t limit)
{
    uint64_t count = fs_load_u64(&sem->count);
    if (n == 1 && limit == UINT64_MAX && count < FS_SEMAPHORE_ADD_FREELY_BELOW) {
        /* The common release: one atomic add, which unlike a compare-exchange
         * doesn't wait for the load above. */
        fs_fetch_add_u64(&sem->count, 1);
    } else {
        do {
            if (n > limit || count > limit - n)
                return 0;
        } while (!fs_cas_u64(&sem->count, &count, count + n));
    }
    if (fs_load_u32(&sem->sleepers) != 0)
        fs_semaphore_wake(sem, n);
    return 1;
}

/* ---- Condition waiter queue ----------------------------------------------
 * A FIFO of waiters, each with its own word to sleep on, so notify(n) wakes
 * exactly the n longest waiting threads and a late arrival can't steal a
 * wake-up meant for an earlier one.  The queue has its own small lock, so it
 * stays consistent even if callers misuse the condition's lock.
 *
 * Waiters live on the heap, not on their threads' stacks.  A thread can end
 * in the middle of a wait without leaving the queue (CPython ends daemon
 * threads that wake during interpreter shutdown), and a forked child has
 * none of its parent's other threads; either way the entry it leaves behind
 * stays valid memory, never reused under a notifier.  A child forgets the
 * parent's queue (see "Fork"): those waiters don't exist there. */
typedef struct fs_cond_waiter {
    fs_queue_entry entry;       /* chosen: notified */
} fs_cond_waiter;

typedef struct {
    fs_atomic_u32 guard;        /* a lock of its own, as the Lock's askers' */
    fs_queue waiters;           /* of fs_cond_waiter, oldest first */
    uint64_t length;
} fs_cond;

void fs_cond_init(fs_cond *cond);

/* How many threads wait (for repr; may be stale by the time it's used). */
uint64_t fs_cond_length(fs_cond *cond);

/* Queues a new waiter for the calling thread; NULL when out of memory. */
fs_cond_waiter *fs_cond_enqueue(fs_cond *cond);
/* Takes the waiter off the queue unless a notify did, and frees it; returns
 * whether it was notified.  Every waiter that fs_cond_enqueue returned must
 * end here, unless its thread ends first. */
int fs_cond_dequeue(fs_cond *cond, fs_cond_waiter *waiter);
/* Wakes up to n waiters, oldest first; returns how many. */
uint64_t fs_cond_notify(fs_cond *cond, uint64_t n);
/* Sleeps until notified, the deadline, or a signal (queue lock not held). */
fs_result fs_cond_wait_notified(fs_cond_waiter *waiter, int64_t deadline_ns,
                                int64_t spin_ns);

#ifdef __cplusplus
}
#endif
#endif /* FASTSYNC_H */
