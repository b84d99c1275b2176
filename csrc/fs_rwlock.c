/* The readers-writer lock (fs_rwlock.h). */
#include <stdlib.h>
#include <string.h>
#include "fs_rwlock.h"
#include "fs_spin.h"

/* ---- Each thread's reads ----
 * A few slots in thread-local storage, kept dense (the first few_used are
 * taken) so that a thread that reads nothing looks at none, and a heap array
 * beyond them for a thread that reads many locks at once (freed when it
 * empties again; a thread that ends while it reads more than FEW_SLOTS locks
 * leaves it). */

#if defined(_MSC_VER)
#  define FS_THREAD_LOCAL __declspec(thread)
#else
#  define FS_THREAD_LOCAL __thread
#endif

#define FEW_SLOTS 8

typedef struct {
    uint64_t serial;    /* the lock's */
    uintptr_t depth;
} read_slot;

/* One thread's reads.  The functions below find the calling thread's once
 * (in a shared library each look-up of thread-local storage is a call) and
 * pass it on. */
typedef struct {
    size_t few_used;
    read_slot few[FEW_SLOTS];
    read_slot *more;
    size_t more_length, more_used;
} read_table;

static FS_THREAD_LOCAL read_table this_thread;

static inline read_table *my_reads(void)
{
    read_table *mine = &this_thread;
#if defined(__GNUC__) || defined(__clang__)
    /* Else the compiler may look the address up again at each use rather
     * than keep it in a register. */
    __asm__("" : "+r"(mine));
#endif
    return mine;
}

static fs_atomic_u64 last_serial;

static read_slot *find_slot(read_table *t, uint64_t serial)
{
    size_t i;
    for (i = 0; i < t->few_used; i++) {
        if (t->few[i].serial == serial)
            return &t->few[i];
    }
    for (i = 0; i < t->more_used; i++) {
        if (t->more[i].serial == serial)
            return &t->more[i];
    }
    return NULL;
}

/* A slot for `serial` at depth 0, or NULL when out of memory. */
static read_slot *new_slot(read_table *t, uint64_t serial)
{
    read_slot *slot;
    if (t->few_used < FEW_SLOTS) {
        slot = &t->few[t->few_used++];
    } else {
        if (t->more_used == t->more_length) {
            size_t length = t->more_length ? 2 * t->more_length : FEW_SLOTS;
            read_slot *grown = (read_slot *)realloc(t->more, length * sizeof *grown);
            if (grown == NULL)
                return NULL;
            t->more = grown;
            t->more_length = length;
        }
        slot = &t->more[t->more_used++];
    }
    slot->serial = serial;
    slot->depth = 0;
    return slot;
}

/* The last slot moves into the hole, so both arrays stay dense.  Usually
 * the slot is the last: nothing moves (a copy of the slot just written
 * would wait for those writes). */
static void free_slot(read_table *t, read_slot *slot)
{
    read_slot *last;
    if (slot >= t->few && slot < t->few + FEW_SLOTS) {
        last = &t->few[--t->few_used];
        if (slot != last)
            *slot = *last;
        return;
    }
    last = &t->more[--t->more_used];
    if (slot != last)
        *slot = *last;
    if (t->more_used == 0) {
        free(t->more);
        t->more = NULL;
        t->more_length = 0;
    }
}

uintptr_t fs_rwlock_read_depth(const fs_rwlock *rw)
{
    read_slot *slot = find_slot(my_reads(), rw->serial);
    return slot ? slot->depth : 0;
}

/* ---- The guarded part ---- */

static void rw_reset(void *owner)
{
    fs_rwlock *rw = (fs_rwlock *)owner;
    fs_store_u32(&rw->guard, 0);
    rw->readers_waiting = 0;
}

void fs_rwlock_init(fs_rwlock *rw)
{
    fs_store_u32(&rw->state, 0);
    fs_store_u32(&rw->gate, 0);
    fs_store_u32(&rw->wake_dozers, 0);
    rw_reset(rw);
    fs_queue_init(&rw->writers);
    rw->serial = fs_fetch_add_u64(&last_serial, 1) + 1;
    fs_store_uptr_relaxed(&rw->writer, 0);
}

static void rw_guard(fs_rwlock *rw)
{
    fs_queue_adopt_after_fork(&rw->writers, rw_reset, rw);
    fs_guard_acquire(&rw->guard);
}

static void rw_unguard(fs_rwlock *rw)
{ fs_guard_release(&rw->guard); }

/* ---- Dozing ----
 * A dozer sets FS_RW_DOZERS (only while the lock is not free for it) and
 * sleeps on wake_dozers.  Whoever frees the lock with the bit set clears it,
 * then bumps wake_dozers and wakes them all; each tries again, and dozes
 * again (setting the bit again) if it loses. */

/* Whether a thread that doesn't read yet could read, or write, in `state`. */
static int free_for(uint32_t state, int write)
{
    if (write)
        return (state & ~(uint32_t)FS_RW_DOZERS) == 0;
    return !(state & (FS_RW_WRITER | FS_RW_WRITERS_WAIT));
}

static void wake_dozers(fs_rwlock *rw)
{
    fs_fetch_add_u32(&rw->wake_dozers, 1);
    fs_wake_all(&rw->wake_dozers);
}

/* After a last read release that queued nobody: wakes the dozers, if any
 * (writers among them may go now). */
static void wake_dozers_if_any(fs_rwlock *rw)
{
    uint32_t state = fs_load_u32(&rw->state);
    while (state & FS_RW_DOZERS) {
        if (fs_cas_u32(&rw->state, &state, state & ~(uint32_t)FS_RW_DOZERS)) {
            wake_dozers(rw);
            return;
        }
    }
}

static int waited_long(const int64_t *waiting_since)
{ return fs_monotonic_ns() - *waiting_since >= FS_RW_QUEUE_AFTER_NS; }

/* Sleeps until the lock may be free for the caller, FS_RW_QUEUE_AFTER_NS
 * after the wait began, or the deadline: FS_OK (look again), FS_TIMED_OUT
 * (the deadline passed) or FS_INTERRUPTED. */
static fs_result doze(fs_rwlock *rw, int write, const int64_t *waiting_since,
                      int64_t deadline_ns, int64_t spin_ns)
{
    int64_t queue_at = *waiting_since + FS_RW_QUEUE_AFTER_NS;
    int deadline_first = deadline_ns != FS_NO_DEADLINE && deadline_ns <= queue_at;
    uint32_t wake = fs_load_u32(&rw->wake_dozers);
    uint32_t state = fs_load_u32(&rw->state);
    fs_result waited;
    for (;;) {
        if (free_for(state, write))
            return FS_OK;
        if ((state & FS_RW_DOZERS)
                || fs_cas_u32(&rw->state, &state, state | FS_RW_DOZERS))
            break;
    }
    waited = fs_spin_then_wait(&rw->wake_dozers, wake, deadline_first ? deadline_ns : queue_at,
                               spin_ns);
    if (waited == FS_TIMED_OUT && !deadline_first)
        return FS_OK;   /* time to queue */
    return waited;
}

/* With the guard held: brings the state word in line with the waiters, and
 * lets in whoever's turn it is.
 *   writer_leaves:  the caller writes, and stops (release or downgrade);
 *   readers_first:  sleeping readers go before a queued writer (a write
 *                   phase ends), rather than after (a read phase ends);
 *   new_readers:    readers the caller adds (1 for a downgrade).
 * The CAS loop is there because readers leave without the guard. */
static void rw_settle(fs_rwlock *rw, int writer_leaves, int readers_first,
                      uint32_t new_readers)
{
    uint32_t state = fs_load_u32(&rw->state);
    fs_list_node *first = rw->writers.entries.head;
    uint32_t admitted;
    int hand, dozers;
    for (;;) {
        uint32_t next = state;
        admitted = 0;
        hand = 0;
        dozers = 0;
        if (writer_leaves)
            next &= ~(uint32_t)FS_RW_WRITER;
        next += new_readers * FS_RW_READER;
        if (!(next & FS_RW_WRITER)) {
            if (rw->readers_waiting != 0 && (readers_first || first == NULL)) {
                admitted = rw->readers_waiting;
                next += admitted * FS_RW_READER;
            } else if (first != NULL && next / FS_RW_READER == 0) {
                hand = 1;
                next |= FS_RW_WRITER;
            }
        }
        next &= ~(uint32_t)(FS_RW_WRITERS_WAIT | FS_RW_READERS_WAIT);
        if (first != NULL && (!hand || first->next != NULL))
            next |= FS_RW_WRITERS_WAIT;
        if (rw->readers_waiting != admitted)
            next |= FS_RW_READERS_WAIT;
        if ((next & FS_RW_DOZERS) && (state & (FS_RW_WRITER | FS_RW_WRITERS_WAIT))
                && !(next & (FS_RW_WRITER | FS_RW_WRITERS_WAIT))) {
            dozers = 1;   /* freed: readers may come in now, or a writer */
            next &= ~(uint32_t)FS_RW_DOZERS;
        }
        if (next == state || fs_cas_u32(&rw->state, &state, next))
            break;
    }
    if (admitted) {
        rw->readers_waiting = 0;
        fs_fetch_add_u32(&rw->gate, 1);
        fs_wake_all(&rw->gate);
    }
    if (hand) {
        fs_queue_entry *entry = FS_LIST_ENTRY(first, fs_queue_entry, node);
        fs_queue_choose(&rw->writers, entry);
        /* The writer can't return before it takes the guard we hold, or
         * sees `chosen`; a late wake of a thread that moved on is harmless. */
        fs_wake_one(&entry->chosen);
    }
    if (dozers)
        wake_dozers(rw);
}

size_t fs_rwlock_count_writers_waiting(fs_rwlock *rw)
{
    size_t count = 0;
    const fs_list_node *node;
    rw_guard(rw);
    for (node = rw->writers.entries.head; node != NULL; node = node->next)
        count++;
    rw_unguard(rw);
    return count;
}

uint32_t fs_rwlock_count_readers_waiting(fs_rwlock *rw)
{
    uint32_t count;
    rw_guard(rw);
    count = rw->readers_waiting;
    rw_unguard(rw);
    return count;
}

/* ---- Reading ---- */

/* A first read by this thread, if no writer holds or waits: 1 if it reads
 * now, 0 if not, or a negative fs_rw_status; *seen is the state it saw. */
static inline int first_read(fs_rwlock *rw, read_table *mine, uint32_t *seen)
{
    uint32_t state = fs_load_u32(&rw->state);
    read_slot *slot;
    while (!(state & (FS_RW_WRITER | FS_RW_WRITERS_WAIT))) {
        if (state / FS_RW_READER == FS_RW_MAX_READERS)
            return FS_RW_TOO_MANY;
        if (fs_cas_u32(&rw->state, &state, state + FS_RW_READER)) {
            slot = new_slot(mine, rw->serial);
            if (slot == NULL) {
                rw_guard(rw);
                fs_fetch_add_u32(&rw->state, (uint32_t)-FS_RW_READER);
                rw_settle(rw, 0, 0, 0);
                rw_unguard(rw);
                return FS_RW_NO_MEMORY;
            }
            slot->depth = 1;
            return 1;
        }
    }
    *seen = state;
    return 0;
}

int fs_rwlock_try_read(fs_rwlock *rw, uintptr_t me)
{
    read_table *mine = my_reads();
    read_slot *slot = find_slot(mine, rw->serial);
    uint32_t state;
    int got;
    if (slot != NULL) {
        /* A thread that reads reads again, whoever waits. */
        if (slot->depth == UINTPTR_MAX)
            return FS_RW_TOO_MANY;
        slot->depth++;
        return 1;
    }
    got = first_read(rw, mine, &state);
    if (got == 0 && (state & FS_RW_WRITER) && fs_rwlock_writer(rw) == me)
        return FS_RW_WRITING;
    return got;
}

int fs_rwlock_read_until(fs_rwlock *rw, int64_t *waiting_since, int64_t deadline_ns,
                         int64_t spin_ns, int retry_when_free)
{
    uint32_t state, gate, generation;
    fs_result waited = FS_OK;
    read_table *mine = my_reads();
    read_slot *slot;
    if (*waiting_since == 0)
        *waiting_since = fs_monotonic_ns();
    while (!waited_long(waiting_since)) {
        int got;
        waited = doze(rw, 0, waiting_since, deadline_ns, spin_ns);
        if (waited == FS_INTERRUPTED)
            return FS_INTERRUPTED;
        if (waited == FS_OK && retry_when_free && !waited_long(waiting_since))
            return FS_RETRY;
        got = first_read(rw, mine, &state);
        if (got != 0)
            return got == 1 ? FS_OK : got;
        if (waited == FS_TIMED_OUT)
            return FS_TIMED_OUT;
    }
    /* Taken first, so that nothing fails once the read is granted. */
    slot = new_slot(mine, rw->serial);
    if (slot == NULL)
        return FS_RW_NO_MEMORY;
    rw_guard(rw);
    rw_settle(rw, 0, 0, 0);   /* after a fork, forgets the parent's waiters */
    state = fs_load_u32(&rw->state);
    for (;;) {
        if (!(state & (FS_RW_WRITER | FS_RW_WRITERS_WAIT))) {
            if (fs_cas_u32(&rw->state, &state, state + FS_RW_READER)) {
                rw_unguard(rw);
                slot->depth = 1;
                return FS_OK;
            }
        } else if (fs_cas_u32(&rw->state, &state, state | FS_RW_READERS_WAIT)) {
            break;
        }
    }
    rw->readers_waiting++;
    gate = fs_load_u32(&rw->gate);
    generation = fs_load_u32(&rw->writers.generation);
    rw_unguard(rw);
    while (fs_load_u32(&rw->gate) == gate) {
        waited = fs_spin_then_wait(&rw->gate, gate, deadline_ns, spin_ns);
        if (waited == FS_OK || fs_load_u32(&rw->gate) != gate)
            continue;
        rw_guard(rw);
        if (fs_load_u32(&rw->gate) != gate) {
            rw_unguard(rw);   /* admitted as it gave up: it reads */
            break;
        }
        if (fs_load_u32(&rw->writers.generation) == generation) {
            rw->readers_waiting--;
            rw_settle(rw, 0, 0, 0);
        }   /* else a fork forgot it already */
        rw_unguard(rw);
        free_slot(mine, slot);
        return waited;
    }
    slot->depth = 1;
    return FS_OK;
}

fs_rw_status fs_rwlock_read_release(fs_rwlock *rw)
{
    read_table *mine = my_reads();
    read_slot *slot = find_slot(mine, rw->serial);
    uint32_t before;
    if (slot == NULL)
        return FS_RW_NOT_HELD;
    if (--slot->depth != 0)
        return FS_RW_OK;
    free_slot(mine, slot);
    before = fs_fetch_add_u32(&rw->state, (uint32_t)-FS_RW_READER);
    if (before / FS_RW_READER == 1) {
        if (before & FS_RW_WRITERS_WAIT) {
            /* The last reader of a phase: the first writer's turn. */
            rw_guard(rw);
            rw_settle(rw, 0, 0, 0);
            rw_unguard(rw);
        } else if (before & FS_RW_DOZERS) {
            wake_dozers_if_any(rw);
        }
    }
    return FS_RW_OK;
}

/* ---- Writing ---- */

int fs_rwlock_try_write(fs_rwlock *rw, uintptr_t me)
{
    /* A thread that reads is counted in the word, so a free lock is one
     * that this thread doesn't read: the look for its reads can wait. */
    uint32_t state = 0;
    if (!fs_cas_u32(&rw->state, &state, FS_RW_WRITER)
            && !(state == FS_RW_DOZERS
                 && fs_cas_u32(&rw->state, &state, FS_RW_DOZERS | FS_RW_WRITER)))
        return find_slot(my_reads(), rw->serial) != NULL ? FS_RW_UPGRADE : 0;
    fs_store_uptr_relaxed(&rw->writer, me);
    return 1;
}

fs_result fs_rwlock_write_until(fs_rwlock *rw, uintptr_t me, int64_t *waiting_since,
                                int64_t deadline_ns, int64_t spin_ns, int retry_when_free)
{
    fs_queue_entry entry;
    uint32_t state;
    if (*waiting_since == 0)
        *waiting_since = fs_monotonic_ns();
    while (!waited_long(waiting_since)) {
        fs_result waited = doze(rw, 1, waiting_since, deadline_ns, spin_ns);
        if (waited == FS_INTERRUPTED)
            return FS_INTERRUPTED;
        if (waited == FS_OK && retry_when_free && !waited_long(waiting_since))
            return FS_RETRY;
        if (fs_rwlock_try_write(rw, me) == 1)
            return FS_OK;
        if (waited == FS_TIMED_OUT)
            return FS_TIMED_OUT;
    }
    rw_guard(rw);
    rw_settle(rw, 0, 0, 0);   /* after a fork, forgets the parent's waiters */
    state = fs_load_u32(&rw->state);
    for (;;) {
        if (!(state & FS_RW_WRITER) && state / FS_RW_READER == 0
                && rw->writers.entries.head == NULL) {
            if (fs_cas_u32(&rw->state, &state, state | FS_RW_WRITER)) {
                rw_unguard(rw);
                fs_store_uptr_relaxed(&rw->writer, me);
                return FS_OK;
            }
        } else if (fs_cas_u32(&rw->state, &state, state | FS_RW_WRITERS_WAIT)) {
            break;
        }
    }
    fs_queue_join(&rw->writers, &entry);
    rw_unguard(rw);
    while (!fs_load_u32(&entry.chosen)) {
        fs_result waited = fs_spin_then_wait(&entry.chosen, 0, deadline_ns, spin_ns);
        fs_queue_exit how;
        if (waited == FS_OK)
            continue;
        rw_guard(rw);
        how = fs_queue_withdraw(&rw->writers, &entry);
        if (how != FS_QUEUE_CHOSEN)
            rw_settle(rw, 0, 0, 0);   /* the next in line may go now */
        rw_unguard(rw);
        if (how != FS_QUEUE_CHOSEN)
            return waited;
        break;   /* handed the lock as it gave up: it writes */
    }
    fs_store_uptr_relaxed(&rw->writer, me);
    return FS_OK;
}

fs_rw_status fs_rwlock_write_release(fs_rwlock *rw)
{
    uint32_t state = fs_load_u32(&rw->state);
    if (!(state & FS_RW_WRITER))
        return FS_RW_NOT_HELD;
    fs_store_uptr_relaxed(&rw->writer, 0);
    state = FS_RW_WRITER;
    if (fs_cas_u32(&rw->state, &state, 0))
        return FS_RW_OK;
    rw_guard(rw);
    state = fs_load_u32(&rw->state);
    if (!(state & FS_RW_WRITER)) {   /* another thread released it first */
        rw_unguard(rw);
        return FS_RW_NOT_HELD;
    }
    rw_settle(rw, 1, 1, 0);
    rw_unguard(rw);
    return FS_RW_OK;
}

fs_rw_status fs_rwlock_downgrade(fs_rwlock *rw, uintptr_t me)
{
    read_slot *slot;
    if (!fs_rwlock_is_written(rw) || fs_rwlock_writer(rw) != me)
        return FS_RW_NOT_HELD;
    slot = new_slot(my_reads(), rw->serial);
    if (slot == NULL)
        return FS_RW_NO_MEMORY;
    slot->depth = 1;
    fs_store_uptr_relaxed(&rw->writer, 0);
    rw_guard(rw);
    rw_settle(rw, 1, 1, 1);
    rw_unguard(rw);
    return FS_RW_OK;
}
