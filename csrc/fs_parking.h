/* The parking lot shared by the two wait backends that need one: the generic
 * POSIX one (fs_wait_posix.c) and the Windows one (fs_wait_win32.c).  This
 * file knows which threads wait on which address and which of them a wake-up
 * picks; how a parked thread sleeps, and how it is roused, is the backend's.
 *
 * Addresses hash into a fixed table of buckets, each a lock and a list of the
 * threads parked there.  A waiter compares the word with the expected value
 * while holding its bucket's lock and links itself in before letting go
 * (parking_enqueue); a waker changes the word first and then takes the same
 * lock (parking_wake), so it either finds the waiter in the list or the
 * waiter saw the new value.  Nothing is lost in between.  Wakers use the
 * address only as a key and never read the word.
 *
 * Exactly one wake-up signal per wake-up.  A waker unlinks the waiter and
 * sets its `woken` flag under the bucket lock, then sends the signal after
 * unlocking (it must not hold a bucket lock across a system call).  A waiter
 * that gives up (deadline, interruption) takes the lock again
 * (parking_withdraw): if it is still linked it unlinks itself and reports the
 * timeout or interruption; if a waker got there first it waits for that
 * signal and reports a wake-up instead, because the waker counted on it
 * (fs_wake_one gave its one wake-up to us; to report an interruption then
 * would strand the next waiter).  So every signal is consumed by exactly one
 * wait, each wait starts with nothing pending, and no waker ever signals a
 * thread that has moved on (whose pipe or event could be gone by then).
 *
 * What differs between the backends is a parameter.  A backend includes this
 * file once, inside its own #if, after declaring
 *     typedef ... fs_bucket_lock;   the lock of one bucket
 *     typedef ... fs_wake_token;    what a waker needs to rouse one thread
 * and defines, before or after the #include,
 *     static void bucket_lock_acquire(fs_bucket_lock *lock);
 *     static void bucket_lock_release(fs_bucket_lock *lock);
 *     static void wake_token_send(fs_wake_token token);  (no lock held)
 * It initialises the bucket locks itself (all-zero is an unlocked SRWLOCK;
 * pthread mutexes need pthread_mutex_init). */
#ifndef FASTSYNC_PARKING_H
#define FASTSYNC_PARKING_H

#include <stddef.h>
#include <stdint.h>
#include "fs_atomic.h"
#include "fs_time.h"

typedef struct fs_waiter fs_waiter;
struct fs_waiter {              /* on the waiting thread's stack */
    fs_waiter *next, *prev;
    const fs_atomic_u32 *addr;
    fs_wake_token token;        /* how to rouse the waiter */
    /* Set under the bucket lock when a waker unlinks the waiter.  Atomic
     * because the POSIX backend also reads it without the lock, after
     * draining its pipe, to tell its own wake-up from a stray byte. */
    fs_atomic_u32 woken;
};

typedef struct {
    fs_bucket_lock lock;
    fs_waiter *head, *tail;
} fs_bucket;

#define PARKING_BUCKET_BITS 8
#define PARKING_BUCKETS (1u << PARKING_BUCKET_BITS)
static fs_bucket parking_buckets[PARKING_BUCKETS];

static void bucket_lock_acquire(fs_bucket_lock *lock);
static void bucket_lock_release(fs_bucket_lock *lock);
static void wake_token_send(fs_wake_token token);

static inline fs_bucket *parking_bucket_of(const fs_atomic_u32 *addr)
{
    /* Fibonacci hashing: the top bits of the product mix every address bit. */
    uint64_t h = (uint64_t)(uintptr_t)addr * UINT64_C(0x9E3779B97F4A7C15);
    return &parking_buckets[h >> (64 - PARKING_BUCKET_BITS)];
}

static inline void parking_link(fs_bucket *b, fs_waiter *w)
{
    w->next = NULL;
    w->prev = b->tail;
    if (b->tail) b->tail->next = w; else b->head = w;
    b->tail = w;
}

static inline void parking_unlink(fs_bucket *b, fs_waiter *w)
{
    if (w->prev) w->prev->next = w->next; else b->head = w->next;
    if (w->next) w->next->prev = w->prev; else b->tail = w->prev;
}

/* Parks the calling thread's record w on addr, unless the word no longer
 * holds expected (returns 0: nothing was linked, report a wake-up).
 * Returns 1 once linked: from then on the backend sleeps until its token is
 * sent, or gives up through parking_withdraw. */
static inline int parking_enqueue(fs_waiter *w, const fs_atomic_u32 *addr,
                                  uint32_t expected, fs_wake_token token)
{
    fs_bucket *b = parking_bucket_of(addr);
    bucket_lock_acquire(&b->lock);
    if (fs_load_u32(addr) != expected) {
        bucket_lock_release(&b->lock);
        return 0;
    }
    w->addr = addr;
    w->token = token;
    fs_store_u32(&w->woken, 0);
    parking_link(b, w);
    bucket_lock_release(&b->lock);
    return 1;
}

/* A parked waiter gives up (deadline, interruption).  Returns 1 if it was
 * still linked and has now left: report the timeout or interruption.
 * Returns 0 if a waker unlinked it first: its signal is on the way, and the
 * caller must wait for it and report a wake-up (see the top of the file). */
static inline int parking_withdraw(fs_waiter *w)
{
    fs_bucket *b = parking_bucket_of(w->addr);
    int linked;
    bucket_lock_acquire(&b->lock);
    linked = !fs_load_u32(&w->woken);
    if (linked)
        parking_unlink(b, w);
    bucket_lock_release(&b->lock);
    return linked;
}

/* Wakes the first waiter parked on addr (all = 0), or every one (all = 1):
 * unlinks and marks them under the bucket lock, then sends their tokens
 * with no lock held. */
static inline void parking_wake(const fs_atomic_u32 *addr, int all)
{
    fs_bucket *b = parking_bucket_of(addr);
    fs_waiter *w, *next, *chosen = NULL;

    bucket_lock_acquire(&b->lock);
    for (w = b->head; w != NULL; w = next) {
        next = w->next;
        if (w->addr == addr) {
            parking_unlink(b, w);
            fs_store_u32(&w->woken, 1);
            w->next = chosen;       /* the waiter no longer reads its links */
            chosen = w;
            if (!all)
                break;
        }
    }
    bucket_lock_release(&b->lock);
    for (w = chosen; w != NULL; w = next) {
        fs_wake_token token = w->token;
        next = w->next;             /* read both before the signal frees w */
        wake_token_send(token);     /* never touch w again: it may be gone */
    }
}

/* How long a parked thread may sleep before deadline_ns: 0 when the deadline
 * has passed (report a timeout), else 1 with *ms set to the time left in
 * milliseconds, rounded up so that the platform's sleep never ends before the
 * deadline by its own clock (the caller still rechecks ours on waking), and
 * at most max_ms; *ms = -1 when there is no deadline. */
static inline int parking_sleep_ms(int64_t deadline_ns, int64_t max_ms, int64_t *ms)
{
    int64_t remaining;
    *ms = -1;
    if (deadline_ns == FS_NO_DEADLINE)
        return 1;
    remaining = deadline_ns - fs_monotonic_ns();
    if (remaining <= 0)
        return 0;
    *ms = remaining / 1000000 + (remaining % 1000000 != 0);
    if (*ms > max_ms)
        *ms = max_ms;
    return 1;
}

#endif /* FASTSYNC_PARKING_H */
