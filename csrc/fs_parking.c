/* The parking lot (fs_parking.h); csrc/DESIGN.md describes the protocol. */
#include "fs_parking.h"

#if defined(FS_WAIT_POSIX) || defined(FS_WAIT_WIN32)

#include <stddef.h>
#include "fs_list.h"
#include "fs_queue.h"
#include "fs_time.h"

typedef struct {                /* on the waiting thread's stack */
    /* In its bucket while parked.  Chosen when a waker unlinks the waiter:
     * the waiter also reads that without the mutex, to tell its own wake-up
     * from a stray send. */
    fs_queue_entry entry;
    const fs_atomic_u32 *addr;
    fs_token token;             /* how to rouse the waiter */
} waiter;

typedef struct {
    fs_platform_mutex mutex;
    fs_queue waiters;
} bucket;

#define BUCKET_BITS 8
#define BUCKETS (1u << BUCKET_BITS)

/* Every bucket starts unlocked and empty, without a run-time set-up: 4^4
 * initializers, one for each of the 2^8 buckets (an all-zero pthread mutex
 * is not an unlocked one everywhere). */
#define BUCKET_INIT { FS_PLATFORM_MUTEX_INIT, { { NULL, NULL }, { 0 } } }
#define FOUR(x) x, x, x, x
typedef char one_initializer_per_bucket[BUCKET_BITS == 8 ? 1 : -1];
static bucket buckets[BUCKETS] = { FOUR(FOUR(FOUR(FOUR(BUCKET_INIT)))) };

void fs_parking_for_each_mutex(void (*apply)(fs_platform_mutex *mutex))
{
    size_t i;
    for (i = 0; i < BUCKETS; i++)
        apply(&buckets[i].mutex);
}

void fs_parking_forget_waiters(void)
{
    size_t i;
    uint32_t generation = fs_fork_start_generation();
    for (i = 0; i < BUCKETS; i++)
        fs_queue_reset(&buckets[i].waiters, generation);
}

static bucket *bucket_of(const fs_atomic_u32 *addr)
{
    /* Fibonacci hashing: the top bits of the product mix every address bit. */
    uint64_t h = (uint64_t)(uintptr_t)addr * UINT64_C(0x9E3779B97F4A7C15);
    return &buckets[h >> (64 - BUCKET_BITS)];
}

/* Links w in on addr, unless the word no longer holds expected (returns 0:
 * nothing was linked, report a wake-up). */
static int enqueue(waiter *w, const fs_atomic_u32 *addr, uint32_t expected)
{
    bucket *b = bucket_of(addr);
    fs_platform_mutex_lock(&b->mutex);
    if (fs_load_u32(addr) != expected) {
        fs_platform_mutex_unlock(&b->mutex);
        return 0;
    }
    w->addr = addr;
    fs_queue_join(&b->waiters, &w->entry);
    fs_platform_mutex_unlock(&b->mutex);
    return 1;
}

/* Whether a fork (in a signal handler that ran while w was parked) has
 * emptied w's bucket since: then w is in no list, and the waker that chose
 * it, if one did, is in the parent, as is its send. */
static int forgotten(const waiter *w)
{ return fs_queue_forgot(&bucket_of(w->addr)->waiters, &w->entry); }

/* A parked waiter gives up.  Returns 1 if it has left (or a fork dropped
 * it): report the timeout or interruption.  Returns 0 if a waker unlinked it
 * first: report a wake-up. */
static int withdraw(waiter *w)
{
    bucket *b = bucket_of(w->addr);
    fs_queue_exit how;
    fs_platform_mutex_lock(&b->mutex);
    how = fs_queue_withdraw(&b->waiters, &w->entry);
    fs_platform_mutex_unlock(&b->mutex);
    return how != FS_QUEUE_CHOSEN;
}

/* How long the thread may sleep before deadline_ns: 0 when the deadline has
 * passed, else 1 with *ms set to the time left in milliseconds, rounded up so
 * that the platform's sleep never ends before the deadline by its own clock
 * (the caller still looks at ours on waking); *ms = -1 with no deadline. */
static int sleep_ms(int64_t deadline_ns, int64_t *ms)
{
    int64_t remaining;
    *ms = -1;
    if (deadline_ns == FS_NO_DEADLINE)
        return 1;
    remaining = deadline_ns - fs_monotonic_ns();
    if (remaining <= 0)
        return 0;
    *ms = remaining / 1000000 + (remaining % 1000000 != 0);
    return 1;
}

/* Sleeps until a waker has chosen w (returns 1), or until the wait must give
 * up (returns 0, with *outcome what to report if it can withdraw). */
static int sleep_until_chosen(waiter *w, int64_t deadline_ns, fs_result *outcome)
{
    for (;;) {
        int64_t ms;
        if (forgotten(w)) {
            *outcome = FS_OK;           /* nobody here will wake it */
            return 0;
        }
        if (!sleep_ms(deadline_ns, &ms)) {
            *outcome = FS_TIMED_OUT;
            return 0;
        }
        switch (fs_token_sleep(&w->token, ms)) {
        case FS_TOKEN_SENT:
            if (fs_load_u32(&w->entry.chosen))
                return 1;
            break;                      /* a stray send */
        case FS_TOKEN_AGAIN:
            break;                      /* the clock decides at the top */
        case FS_TOKEN_INTERRUPTED:
            *outcome = FS_INTERRUPTED;
            return 0;
        default:
            *outcome = FS_OK;           /* broken: callers recheck their word */
            return 0;
        }
    }
}

/* For a thread without a token: a short nap, then a spurious wake-up, so the
 * caller's loop polls the word.  Only when descriptors, handles or memory
 * have run out. */
static fs_result wait_without_token(fs_atomic_u32 *addr, uint32_t expected,
                                    int64_t deadline_ns)
{
    if (fs_load_u32(addr) != expected)
        return FS_OK;
    if (deadline_ns != FS_NO_DEADLINE && fs_monotonic_ns() >= deadline_ns)
        return FS_TIMED_OUT;
    if (fs_platform_nap(deadline_ns) == FS_INTERRUPTED)
        return FS_INTERRUPTED;
    if (deadline_ns != FS_NO_DEADLINE && fs_monotonic_ns() >= deadline_ns)
        return FS_TIMED_OUT;
    return FS_OK;
}

static fs_result park(fs_atomic_u32 *addr, uint32_t expected, int64_t deadline_ns)
{
    waiter w;
    fs_result outcome;
    if (!fs_token_of_this_thread(&w.token))
        return wait_without_token(addr, expected, deadline_ns);
    if (!enqueue(&w, addr, expected))
        return FS_OK;
    if (sleep_until_chosen(&w, deadline_ns, &outcome))
        return FS_OK;
    if (withdraw(&w)) {
        if (outcome == FS_INTERRUPTED)
            fs_token_interruption_reported(&w.token);
        return outcome;
    }
    /* A waker chose us first and counts on its send being taken: take it,
     * and report the wake-up.  After a fork the send, if any, went to the
     * parent's pipe. */
    if (!forgotten(&w))
        fs_token_await_send(&w.token);
    return FS_OK;
}

fs_result fs_wait(fs_atomic_u32 *addr, uint32_t expected, int64_t deadline_ns)
{
    fs_result result;
    int saved;
    if (fs_load_u32(addr) != expected)
        return FS_OK;
    saved = fs_platform_enter();
    result = park(addr, expected, deadline_ns);
    fs_platform_leave(saved);
    return result;
}

/* A parked thread sleeps on its own token, which a signal handler does not
 * touch: the parking lot can't watch a second word. */
fs_result fs_wait_watching(fs_atomic_u32 *addr, uint32_t expected,
                           const fs_atomic_u32 *watched, int64_t deadline_ns)
{ (void)watched; return fs_wait(addr, expected, deadline_ns); }

int fs_wait_can_watch(void) { return 0; }

/* Wakes the first waiter parked on addr (all = 0), or every one (all = 1):
 * unlinks and marks them under the bucket mutex, then sends their tokens
 * with no lock held. */
static void wake(const fs_atomic_u32 *addr, int all)
{
    bucket *b = bucket_of(addr);
    fs_list chosen;
    fs_list_node *node, *next;
    int saved = fs_platform_enter();

    fs_list_init(&chosen);
    fs_platform_mutex_lock(&b->mutex);
    for (node = b->waiters.entries.head; node != NULL; node = next) {
        waiter *w = FS_LIST_ENTRY(node, waiter, entry.node);
        next = node->next;
        if (w->addr == addr) {
            fs_queue_choose(&b->waiters, &w->entry);
            fs_list_push_back(&chosen, node);   /* the waiter no longer reads its links */
            if (!all)
                break;
        }
    }
    fs_platform_mutex_unlock(&b->mutex);
    for (node = chosen.head; node != NULL; node = next) {
        fs_token token = FS_LIST_ENTRY(node, waiter, entry.node)->token;
        next = node->next;              /* read both before the send frees it */
        fs_token_send(token);           /* never touch the waiter again */
    }
    fs_platform_leave(saved);
}

void fs_wake_one(fs_atomic_u32 *addr) { wake(addr, 0); }
void fs_wake_all(fs_atomic_u32 *addr) { wake(addr, 1); }

#endif /* FS_WAIT_POSIX || FS_WAIT_WIN32 */
