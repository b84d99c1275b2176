/* A readers-writer lock: many readers at once, or one writer.
 *
 * Policy: phase-fair.  While a writer waits, readers that arrive wait too;
 * when a writer releases, every reader that waited meanwhile goes in
 * together, before the next writer; when the last reader of a phase
 * releases, the longest-waiting writer is handed the lock.  So a reader
 * waits at most for the writer ahead of it, and a writer for the readers
 * in at the time plus one reader phase per writer queued before it.
 * csrc/DESIGN.md, "The readers-writer lock", says more.
 *
 * Waiters queue only once they have waited FS_RW_QUEUE_AFTER_NS.  Until
 * then a waiter dozes: it holds no place in line, keeps nobody out, and is
 * woken to try again whenever the lock may have become free for it.  So a
 * short wait costs the others nothing; a long one gets the lock by the
 * policy above.  (Under a GIL this matters most: a thread handed the lock
 * while it waits for the GIL holds it until it gets the GIL, and the thread
 * that runs meanwhile usually wants the lock back at once.)
 *
 * The state word:
 *   FS_RW_WRITER          a writer holds the lock (or was handed it);
 *   FS_RW_WRITERS_WAIT    at least one writer is queued: new readers wait;
 *   FS_RW_READERS_WAIT    at least one reader sleeps on the gate;
 *   FS_RW_DOZERS          at least one waiter dozes on the wake-up word;
 *   bits 4..31            how many threads hold it for reading.
 * A free lock is 0.  The uncontended paths are one compare-and-swap (read
 * or write acquire, write release) or one atomic add (read release); every
 * transition that involves a queued waiter takes the guard, which guards
 * the queue of writers, the count of sleeping readers and the gate.
 *
 * Reads are counted per thread, so a thread that holds a read may read
 * again even while a writer waits (otherwise it would wait for the writer,
 * which waits for it).  The per-thread counts live in thread-local storage
 * keyed by the lock's serial number, never its address, so a lock freed
 * while read and another made at its address are not confused.  Only the
 * first read of a thread and its last release change the state word.
 *
 * No Python.h here: the caller passes its thread identity where a writer's
 * owner matters (downgrade, and refusing a read by the writing thread). */
#ifndef FASTSYNC_RWLOCK_H
#define FASTSYNC_RWLOCK_H

#include <stddef.h>
#include <stdint.h>
#include "fs_atomic.h"
#include "fs_queue.h"
#include "fs_time.h"
#include "fs_wait.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
    FS_RW_WRITER = 1u,
    FS_RW_WRITERS_WAIT = 2u,
    FS_RW_READERS_WAIT = 4u,
    FS_RW_DOZERS = 8u,
    FS_RW_READER = 16u
};
/* How long a waiter dozes before it queues (the same as a Lock's waiter
 * waits before it asks to be handed the lock). */
#define FS_RW_QUEUE_AFTER_NS ((int64_t)1000000)
/* The most threads that may read at once. */
#define FS_RW_MAX_READERS ((uint32_t)(UINT32_MAX / FS_RW_READER))

typedef struct {
    fs_atomic_u32 state;
    fs_atomic_u32 guard;        /* guards what follows */
    fs_atomic_u32 gate;         /* sleeping readers wait for it to change */
    fs_atomic_u32 wake_dozers;  /* dozers wait for it to change */
    fs_queue writers;           /* of waiting writers, oldest first */
    uint32_t readers_waiting;   /* sleeping on the gate */
    uint64_t serial;            /* names the lock in the per-thread counts */
    fs_atomic_uptr writer;      /* the writing thread's id, 0 if none (relaxed) */
} fs_rwlock;

/* What an acquire or release reports, beyond fs_result's. */
typedef enum {
    FS_RW_OK = 0,
    FS_RW_NOT_HELD = -1,        /* release of a side the caller doesn't hold */
    FS_RW_UPGRADE = -2,         /* a write asked for while reading */
    FS_RW_WRITING = -3,         /* a read asked for by the writing thread */
    FS_RW_TOO_MANY = -4,        /* a count would overflow */
    FS_RW_NO_MEMORY = -5
} fs_rw_status;

void fs_rwlock_init(fs_rwlock *rw);

/* ---- this thread's reads ---- */

/* How many times the calling thread holds the lock for reading. */
uintptr_t fs_rwlock_read_depth(const fs_rwlock *rw);

/* Reading: tries without waiting.  Returns 1 if the caller now reads, 0 if
 * it must wait, or a negative fs_rw_status (FS_RW_WRITING: `me` is the
 * writer). */
int fs_rwlock_try_read(fs_rwlock *rw, uintptr_t me);

/* Waits for a read (after fs_rwlock_try_read returned 0), until the
 * deadline or a signal: FS_OK (the caller reads), FS_TIMED_OUT or
 * FS_INTERRUPTED (it doesn't).  A read granted as the wait gave up counts
 * as granted.  Returns a negative fs_rw_status for out of memory.
 *
 * waiting_since: the caller's own variable, 0 before its first call; the
 * time the wait began, from which FS_RW_QUEUE_AFTER_NS counts.  A caller
 * that waits again after FS_INTERRUPTED or FS_RETRY passes it unchanged.
 * retry_when_free: a dozing waiter that is woken returns FS_RETRY, holding
 * nothing, rather than try the lock itself; its caller takes the GIL, tries
 * fs_rwlock_try_read, and calls again if that fails.  Under the GIL the
 * thread that freed the lock runs on, and a waiter that took the lock
 * before the GIL would soon make it wait. */
int fs_rwlock_read_until(fs_rwlock *rw, int64_t *waiting_since, int64_t deadline_ns,
                         int64_t spin_ns, int retry_when_free);

/* Undoes one read of the calling thread: FS_RW_OK or FS_RW_NOT_HELD. */
fs_rw_status fs_rwlock_read_release(fs_rwlock *rw);

/* ---- writing ---- */

/* Tries without waiting.  Returns 1 if the caller now writes, 0 if not, or
 * FS_RW_UPGRADE if it reads. */
int fs_rwlock_try_write(fs_rwlock *rw, uintptr_t me);

/* Waits for the write (after fs_rwlock_try_write returned 0): FS_OK,
 * FS_TIMED_OUT, FS_INTERRUPTED or FS_RETRY, as fs_rwlock_read_until (a
 * retrying caller tries fs_rwlock_try_write). */
fs_result fs_rwlock_write_until(fs_rwlock *rw, uintptr_t me, int64_t *waiting_since,
                                int64_t deadline_ns, int64_t spin_ns, int retry_when_free);

/* Releases the write, by whichever thread (threading.Lock's rule):
 * FS_RW_OK, or FS_RW_NOT_HELD if nobody writes. */
fs_rw_status fs_rwlock_write_release(fs_rwlock *rw);

/* The writer `me` becomes a reader, and readers that waited go in with it;
 * no writer can come in between.  FS_RW_OK, or FS_RW_NOT_HELD unless `me`
 * writes. */
fs_rw_status fs_rwlock_downgrade(fs_rwlock *rw, uintptr_t me);

/* ---- looking ---- */

static inline int fs_rwlock_is_written(const fs_rwlock *rw)
{ return (fs_load_u32(&rw->state) & FS_RW_WRITER) != 0; }

static inline uint32_t fs_rwlock_readers(const fs_rwlock *rw)
{ return fs_load_u32(&rw->state) / FS_RW_READER; }

/* The writing thread's id, or 0 (may be stale; for repr and checks by
 * that thread itself). */
static inline uintptr_t fs_rwlock_writer(const fs_rwlock *rw)
{ return fs_load_uptr_relaxed(&rw->writer); }

/* How many writers are queued now (for tests). */
size_t fs_rwlock_count_writers_waiting(fs_rwlock *rw);
/* How many readers sleep now (for tests). */
uint32_t fs_rwlock_count_readers_waiting(fs_rwlock *rw);

#ifdef __cplusplus
}
#endif
#endif /* FASTSYNC_RWLOCK_H */
