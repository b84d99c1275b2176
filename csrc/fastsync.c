/* The parts of fastsync's primitives that may block. */
#include <stdlib.h>
#include "fastsync.h"

/* ---- Fork ---- */

void fs_after_fork_child(void)
{
    fs_wait_after_fork_child();
    fs_spin_after_fork_child();
    fs_fork_start_generation();
}

/* ---- Guards ---- */

/* Guards and fork adoption are declared in fs_queue.h: a Lock's askers, a
 * Condition's waiters and a readers-writer lock's writers (fs_rwlock.c) use
 * them.  A signal doesn't make a thread give up on a guard: the handler runs
 * when the caller is done. */
void fs_guard_acquire(fs_atomic_u32 *guard)
{
    uint32_t expected = 0;
    if (fs_cas_u32(guard, &expected, 1))
        return;
    while (fs_exchange_u32(guard, 2) != 0)
        fs_wait(guard, 2, FS_NO_DEADLINE);
}

void fs_guard_release(fs_atomic_u32 *guard)
{
    if (fs_exchange_u32(guard, 0) == 2)
        fs_wake_one(guard);
}

/* A queue's generation while one thread resets it after a fork. */
#define QUEUE_RESETTING UINT32_MAX

void fs_queue_adopt_after_fork(fs_queue *queue, void (*reset_owner)(void *),
                               void *owner)
{
    uint32_t current = fs_fork_generation();
    uint32_t seen = fs_load_u32(&queue->generation);
    while (seen != current) {
        if (seen != QUEUE_RESETTING
                && fs_cas_u32(&queue->generation, &seen, QUEUE_RESETTING)) {
            reset_owner(owner);
            fs_queue_reset(queue, current);   /* the generation goes last */
            return;
        }
        fs_cpu_relax();   /* another new thread is resetting it */
        seen = fs_load_u32(&queue->generation);
    }
}

/* ---- Lock ---- */

/* A waiter that asked for a hand-off, on its own stack.  It leaves the queue
 * before fs_lock_wait_until returns, however the wait ends, so no entry
 * outlives its wait. */
struct fs_lock_asker {
    fs_queue_entry entry;   /* chosen: the lock is the asker's */
};

static void askers_reset(void *owner)
{ fs_store_u32(&((fs_lock *)owner)->askers_guard, 0); }

static void askers_lock(fs_lock *lock)
{
    fs_queue_adopt_after_fork(&lock->askers, askers_reset, lock);
    fs_guard_acquire(&lock->askers_guard);
}

static void askers_unlock(fs_lock *lock)
{ fs_guard_release(&lock->askers_guard); }

size_t fs_lock_count_askers(fs_lock *lock)
{
    size_t count = 0;
    const fs_list_node *asker;
    askers_lock(lock);
    for (asker = lock->askers.entries.head; asker != NULL; asker = asker->next)
        count++;
    askers_unlock(lock);
    return count;
}

/* Hands a held lock to the first asker.  Returns 1 if it did, -1 if the
 * lock was not the caller's to release (not held, or handed already), 0 if
 * nobody asks any more (the caller releases it as usual). */
static int lock_hand_to_first_asker(fs_lock *lock)
{
    fs_list_node *first;
    uint32_t state, next;
    askers_lock(lock);
    first = lock->askers.entries.head;
    state = fs_load_u32(&lock->state);
    do {
        if (!(state & FS_LOCK_HELD) || (state & FS_LOCK_HANDED)) {
            askers_unlock(lock);
            return -1;
        }
        /* Still held: it passes to the asker, which takes it when it runs. */
        next = first ? state | FS_LOCK_HANDED : state;
        if (first == NULL || first->next == NULL)
            next &= ~(uint32_t)FS_LOCK_HANDOFF_ASKED;
    } while (!fs_cas_u32(&lock->state, &state, next));
    if (first != NULL) {
        fs_lock_asker *asker = FS_LIST_ENTRY(first, fs_lock_asker, entry.node);
        fs_queue_choose(&lock->askers, &asker->entry);
        /* The asker may see the flag and return before this wake: the wait
         * layers use the address only as a key, so a late wake is harmless. */
        fs_wake_one(&asker->entry.chosen);
    }
    askers_unlock(lock);
    return first != NULL;
}

int fs_lock_release_slow(fs_lock *lock, uint32_t state)
{
    for (;;) {
        /* A lock handed over is the asker's, though it has not yet run: as
         * if it had taken the lock, and this release had come before. */
        if (!(state & FS_LOCK_HELD) || (state & FS_LOCK_HANDED))
            return 0;
        if (state & FS_LOCK_HANDOFF_ASKED) {
            int handed = lock_hand_to_first_asker(lock);
            if (handed != 0)
                return handed > 0;
            state = fs_load_u32(&lock->state);
        } else if (fs_cas_u32(&lock->state, &state, FS_LOCK_FREE)) {
            if (state & FS_LOCK_WAITERS)
                fs_wake_one(&lock->state);
            return 1;
        }
    }
}

/* Joins the askers' queue, unless the lock is free by now (returns 0). */
static int lock_ask(fs_lock *lock, fs_lock_asker *me)
{
    uint32_t state;
    askers_lock(lock);
    state = fs_load_u32(&lock->state);
    do {
        if (!(state & FS_LOCK_HELD)) {
            askers_unlock(lock);
            return 0;
        }
    } while (!fs_cas_u32(&lock->state, &state,
                         state | FS_LOCK_WAITERS | FS_LOCK_HANDOFF_ASKED));
    fs_queue_join(&lock->askers, &me->entry);
    askers_unlock(lock);
    return 1;
}

/* Leaves the queue.  Returns 0 if too late: the lock was handed over first,
 * and the caller must take it. */
static int lock_withdraw_ask(fs_lock *lock, fs_lock_asker *me)
{
    int withdrawn;
    askers_lock(lock);
    /* After a fork from a signal handler the child's queue was emptied, and
     * the asker is not in it: it has left all the same. */
    withdrawn = fs_queue_withdraw(&lock->askers, &me->entry) != FS_QUEUE_CHOSEN;
    if (lock->askers.entries.head == NULL)
        fs_fetch_and_u32(&lock->state, ~(uint32_t)FS_LOCK_HANDOFF_ASKED);
    askers_unlock(lock);
    return withdrawn;
}

/* Takes a lock that was handed to the caller: it stays held.  If nobody else
 * asks, the next sleeper in line is woken to ask in turn, so hand-offs go
 * round the waiters in the order they slept rather than among the few
 * awake. */
static void lock_take_handed(fs_lock *lock)
{
    uint32_t state = fs_fetch_and_u32(&lock->state, ~(uint32_t)FS_LOCK_HANDED);
    if ((state & FS_LOCK_WAITERS) && !(state & FS_LOCK_HANDOFF_ASKED))
        fs_wake_one(&lock->state);
}

/* The asker's wait: until the lock is handed over, the deadline, or a signal.
 * Returns FS_OK, or FS_TIMED_OUT / FS_INTERRUPTED having withdrawn.  A
 * signal that comes too late to withdraw stays pending for the caller. */
static fs_result lock_await_handoff(fs_lock *lock, fs_lock_asker *me,
                                    int64_t deadline_ns, int64_t spin_ns)
{
    for (;;) {
        fs_result waited;
        if (fs_load_u32(&me->entry.chosen))
            break;
        waited = fs_spin_then_wait(&me->entry.chosen, 0, deadline_ns, spin_ns);
        if (waited == FS_OK)
            continue;
        if (!lock_withdraw_ask(lock, me))
            break;   /* too late: handed over meanwhile */
        return waited;
    }
    lock_take_handed(lock);
    return FS_OK;
}

/* A waiter that has waited longer than FS_LOCK_HANDOFF_AFTER_NS no longer
 * leaves it to chance: it joins the askers, and each release hands the lock
 * to the first of them.  A waiter looks when it starts to wait and whenever
 * it is woken, and the kernel wakes sleepers in the order they slept, so the
 * askers queue up roughly in the order they came. */
static int lock_waited_long(const int64_t *waiting_since)
{ return fs_monotonic_ns() - *waiting_since >= FS_LOCK_HANDOFF_AFTER_NS; }

/* A waiter that was woken but found the lock retaken (the releasing thread
 * held the GIL and ran on) and that may not ask yet sleeps until it may,
 * without marking the lock, so that the holder's releases in the meantime
 * make no system call.  It sleeps on a word of its own that nobody wakes, so
 * it can't take a wake meant for the marked sleepers.  But it took the wake
 * that released it, and the release cleared the mark: until it takes the
 * lock (marked) or asks (which marks), the others depend on it.  So if it
 * gives up instead, it passes the wake on.
 * Returns FS_OK when it is time to look again. */
static fs_result lock_doze_until_may_ask(fs_lock *lock, const int64_t *waiting_since,
                                         int64_t deadline_ns)
{
    fs_atomic_u32 dozing = { 0 };
    int64_t may_ask_at = *waiting_since + FS_LOCK_HANDOFF_AFTER_NS;
    int deadline_first = deadline_ns != FS_NO_DEADLINE && deadline_ns <= may_ask_at;
    fs_result waited = fs_wait(&dozing, 0, deadline_first ? deadline_ns : may_ask_at);
    if (waited == FS_TIMED_OUT && !deadline_first)
        return FS_OK;
    if (waited != FS_OK)
        fs_wake_one(&lock->state);
    return waited;
}

/* retry_when_released: see fs_lock_wait_for_release. */
static fs_result lock_wait(fs_lock *lock, int64_t *waiting_since, int64_t deadline_ns,
                           int64_t spin_ns, int retry_when_released)
{
    uint32_t state = fs_load_u32(&lock->state);
    if (*waiting_since == 0)
        *waiting_since = fs_monotonic_ns();
    for (;;) {
        fs_result waited;
        if (!(state & FS_LOCK_HELD)) {
            if (retry_when_released && !lock_waited_long(waiting_since))
                return FS_RETRY;
            if (fs_lock_try_acquire_contended(lock))
                return FS_OK;
            state = fs_load_u32(&lock->state);
            continue;
        }
        if (lock_waited_long(waiting_since)) {
            fs_lock_asker me;
            if (lock_ask(lock, &me))
                return lock_await_handoff(lock, &me, deadline_ns, spin_ns);
            state = fs_load_u32(&lock->state);
            continue;
        }
        if (!(state & FS_LOCK_WAITERS)) {
            /* Retaken without the mark since we looked: set it, or the next
             * release would not wake us. */
            if (!fs_cas_u32(&lock->state, &state, state | FS_LOCK_WAITERS))
                continue;
            state |= FS_LOCK_WAITERS;
        }
        waited = fs_spin_then_wait(&lock->state, state, deadline_ns, spin_ns);
        state = fs_load_u32(&lock->state);
        if (waited == FS_OK && (state & FS_LOCK_HELD)
                && !lock_waited_long(waiting_since)) {
            /* Woken, and the lock retaken.  The retrying caller stays awake
             * and marks the lock again if its try fails, so nobody is
             * forgotten. */
            if (retry_when_released)
                return FS_RETRY;
            waited = lock_doze_until_may_ask(lock, waiting_since, deadline_ns);
        }
        if (waited == FS_INTERRUPTED)
            return FS_INTERRUPTED;
        if (waited == FS_TIMED_OUT)   /* one last try */
            return fs_lock_try_acquire_contended(lock) ? FS_OK : FS_TIMED_OUT;
        state = fs_load_u32(&lock->state);
    }
}

fs_result fs_lock_wait_until(fs_lock *lock, int64_t *waiting_since,
                             int64_t deadline_ns, int64_t spin_ns)
{ return lock_wait(lock, waiting_since, deadline_ns, spin_ns, 0); }

fs_result fs_lock_wait_for_release(fs_lock *lock, int64_t *waiting_since,
                                   int64_t deadline_ns, int64_t spin_ns)
{ return lock_wait(lock, waiting_since, deadline_ns, spin_ns, 1); }

fs_result fs_lock_acquire_until(fs_lock *lock, int64_t deadline_ns, int64_t spin_ns)
{
    int64_t waiting_since = 0;
    return fs_lock_wait_until(lock, &waiting_since, deadline_ns, spin_ns);
}

/* ---- Event ---- */

#define GENERATION_OF(state) ((state) >> 2)

void fs_event_set_slow(fs_event *event)
{
    uint32_t state = fs_load_u32(&event->state);
    for (;;) {
        uint32_t next;
        if (state & FS_EVENT_SET)
            return;
        next = ((state + FS_EVENT_GENERATION) & ~FS_EVENT_WAITERS) | FS_EVENT_SET;
        if (fs_cas_u32(&event->state, &state, next))
            break;
    }
    if (state & FS_EVENT_WAITERS)
        fs_wake_all(&event->state);
}

fs_result fs_event_wait_until(fs_event *event, uint32_t observed_state,
                              int64_t deadline_ns, int64_t spin_ns)
{
    const uint32_t generation = GENERATION_OF(observed_state);
    uint32_t state = fs_load_u32(&event->state);
    for (;;) {
        fs_result waited;
        if ((state & FS_EVENT_SET) || GENERATION_OF(state) != generation)
            return FS_OK;
        if (!(state & FS_EVENT_WAITERS)) {
            if (!fs_cas_u32(&event->state, &state, state | FS_EVENT_WAITERS))
                continue;   /* state now holds the fresh value */
            state |= FS_EVENT_WAITERS;
        }
        waited = fs_spin_then_wait(&event->state, state, deadline_ns, spin_ns);
        state = fs_load_u32(&event->state);
        if ((state & FS_EVENT_SET) || GENERATION_OF(state) != generation)
            return FS_OK;
        if (waited != FS_OK)
            return waited;
    }
}

/* ---- Semaphore ---- */

void fs_semaphore_wake(fs_semaphore *sem, uint64_t released)
{
    fs_fetch_add_u32(&sem->sequence, 1);
    if (released == 1)
        fs_wake_one(&sem->sequence);
    else
        fs_wake_all(&sem->sequence);
}

fs_result fs_semaphore_acquire_until(fs_semaphore *sem, int64_t deadline_ns,
                                     int64_t spin_ns)
{
    fs_result result = FS_TIMED_OUT;
    fs_fetch_add_u32(&sem->sleepers, 1);
    for (;;) {
        uint32_t sequence = fs_load_u32(&sem->sequence);
        fs_result waited;
        if (fs_semaphore_try_acquire(sem)) {
            result = FS_OK;
            break;
        }
        waited = fs_spin_then_wait(&sem->sequence, sequence, deadline_ns, spin_ns);
        if (waited != FS_OK) {   /* after a timeout, one last try */
            result = waited == FS_TIMED_OUT && fs_semaphore_try_acquire(sem) ? FS_OK : waited;
            break;
        }
    }
    fs_fetch_add_u32(&sem->sleepers, (uint32_t)-1);
    return result;
}

/* ---- Condition waiter queue ---- */

static void cond_reset(void *owner)
{
    fs_cond *cond = (fs_cond *)owner;
    fs_store_u32(&cond->guard, 0);
    cond->length = 0;
}

void fs_cond_init(fs_cond *cond)
{
    cond_reset(cond);
    fs_queue_init(&cond->waiters);
}

static void cond_lock(fs_cond *cond)
{
    fs_queue_adopt_after_fork(&cond->waiters, cond_reset, cond);
    fs_guard_acquire(&cond->guard);
}

static void cond_unlock(fs_cond *cond)
{ fs_guard_release(&cond->guard); }

fs_cond_waiter *fs_cond_enqueue(fs_cond *cond)
{
    fs_cond_waiter *waiter = (fs_cond_waiter *)malloc(sizeof *waiter);
    if (waiter == NULL)
        return NULL;
    cond_lock(cond);
    fs_queue_join(&cond->waiters, &waiter->entry);
    cond->length++;
    cond_unlock(cond);
    return waiter;
}

uint64_t fs_cond_length(fs_cond *cond)
{
    uint64_t length;
    cond_lock(cond);
    length = cond->length;
    cond_unlock(cond);
    return length;
}

int fs_cond_dequeue(fs_cond *cond, fs_cond_waiter *waiter)
{
    fs_queue_exit how;
    cond_lock(cond);
    /* A waiter whose thread forked (from a signal handler) is not in the
     * child's emptied queue, nor in its length. */
    how = fs_queue_withdraw(&cond->waiters, &waiter->entry);
    if (how == FS_QUEUE_LEFT)
        cond->length--;
    cond_unlock(cond);
    free(waiter);
    return how == FS_QUEUE_CHOSEN;
}

uint64_t fs_cond_notify(fs_cond *cond, uint64_t n)
{
    uint64_t woken = 0;
    cond_lock(cond);
    while (woken < n && cond->waiters.entries.head != NULL) {
        fs_cond_waiter *waiter =
            FS_LIST_ENTRY(cond->waiters.entries.head, fs_cond_waiter, entry.node);
        fs_queue_choose(&cond->waiters, &waiter->entry);
        cond->length--;
        /* The waiter can't return before it takes the queue lock we hold,
         * so its memory is still valid for the wake. */
        fs_wake_one(&waiter->entry.chosen);
        woken++;
    }
    cond_unlock(cond);
    return woken;
}

fs_result fs_cond_wait_notified(fs_cond_waiter *waiter, int64_t deadline_ns,
                                int64_t spin_ns)
{
    for (;;) {
        fs_result waited;
        if (fs_load_u32(&waiter->entry.chosen))
            return FS_OK;
        waited = fs_spin_then_wait(&waiter->entry.chosen, 0, deadline_ns, spin_ns);
        if (fs_load_u32(&waiter->entry.chosen))
            return FS_OK;
        if (waited != FS_OK)
            return waited;
    }
}
