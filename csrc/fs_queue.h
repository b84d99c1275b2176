/* A queue of waiting threads, each waiting for another thread to choose it:
 * the Lock's askers and the Condition's waiters (fastsync.c), and the
 * parking lot's buckets (fs_parking.c).  An entry lives as long as its
 * thread's wait, and the queue's owner guards the queue with a lock of its
 * own, held around every call below.
 *
 * Fork.  A forked child has only the thread that called fork(), so the
 * entries it inherits are those of threads it doesn't have, and the child
 * empties the queue.  One may be its own: a thread that forks in a signal
 * handler while it waits resumes its wait when the handler returns.  So a
 * queue belongs to a fork generation, and each entry records the one it
 * joined in: an entry from an older generation is in no list of the child's,
 * and must not unlink itself (its links are the parent's).  It keeps what it
 * was chosen for before the fork; anything the parent's threads had yet to
 * do for it never comes. */
#ifndef FASTSYNC_QUEUE_H
#define FASTSYNC_QUEUE_H

#include <stdint.h>
#include "fs_atomic.h"
#include "fs_list.h"

/* The process's fork generation.  A new one starts in a forked child before
 * any other thread does: in the parking lot's atfork handler, which empties
 * its buckets there and then, and in fs_after_fork_child, after which each
 * Lock's and Condition's queue is emptied when next used.  So a fork may
 * start two; what counts is that the child's differs from every generation
 * before the fork. */
uint32_t fs_fork_generation(void);
uint32_t fs_fork_start_generation(void);   /* returns the new generation */

typedef struct {
    fs_list entries;
    fs_atomic_u32 generation;   /* the fork generation the entries belong to */
} fs_queue;

typedef struct {
    fs_list_node node;
    /* Set by the thread that takes the entry off the queue for its owner.
     * Atomic: the owner reads it without the queue's lock, and may wait on
     * it. */
    fs_atomic_u32 chosen;
    uint32_t generation;        /* the queue's when the entry joined it */
} fs_queue_entry;

/* Empties the queue and moves it to `generation`: when it is made, and in a
 * forked child, with the queue's lock held or its holder gone. */
static inline void fs_queue_reset(fs_queue *queue, uint32_t generation)
{
    fs_list_init(&queue->entries);
    fs_store_u32(&queue->generation, generation);
}

static inline void fs_queue_init(fs_queue *queue)
{ fs_queue_reset(queue, fs_fork_generation()); }

static inline void fs_queue_join(fs_queue *queue, fs_queue_entry *entry)
{
    fs_store_u32(&entry->chosen, 0);
    entry->generation = fs_load_u32(&queue->generation);
    fs_list_push_back(&queue->entries, &entry->node);
}

/* Takes an entry off the queue for its owner, whom the caller then wakes. */
static inline void fs_queue_choose(fs_queue *queue, fs_queue_entry *entry)
{
    fs_list_remove(&queue->entries, &entry->node);
    fs_store_u32(&entry->chosen, 1);
}

/* Whether a fork has emptied the queue since the entry joined it. */
static inline int fs_queue_forgot(const fs_queue *queue, const fs_queue_entry *entry)
{ return entry->generation != fs_load_u32(&queue->generation); }

/* How the entry's owner left the queue when it gave up waiting. */
typedef enum {
    FS_QUEUE_LEFT,          /* it was in the queue, and has left */
    FS_QUEUE_FORGOTTEN,     /* a fork emptied the queue: it was in no list */
    FS_QUEUE_CHOSEN         /* another thread chose it first: it must take
                             * what it was chosen for */
} fs_queue_exit;

static inline fs_queue_exit fs_queue_withdraw(fs_queue *queue, fs_queue_entry *entry)
{
    if (fs_load_u32(&entry->chosen))
        return FS_QUEUE_CHOSEN;
    if (fs_queue_forgot(queue, entry))
        return FS_QUEUE_FORGOTTEN;
    fs_list_remove(&queue->entries, &entry->node);
    return FS_QUEUE_LEFT;
}

/* A queue's guard, a small lock of the queue's owner (fastsync.c): 0 free,
 * 1 held, 2 held and a thread may sleep on it.  It guards a few pointer
 * moves, so it doesn't spin or hand over, and a signal doesn't make a thread
 * give up on it. */
void fs_guard_acquire(fs_atomic_u32 *guard);
void fs_guard_release(fs_atomic_u32 *guard);

/* Before a thread takes a queue's guard: in a forked child, the first thread
 * to use a queue from before the fork empties it, since its entries, and
 * whoever held its guard, are the parent's other threads, which the child
 * doesn't have.  reset_owner resets the rest of the queue's owner (its guard
 * first). */
void fs_queue_adopt_after_fork(fs_queue *queue, void (*reset_owner)(void *), void *owner);

#endif /* FASTSYNC_QUEUE_H */
