/* Tests every backend must pass: Lock, RLock helpers, Event, the raw wait
 * layer and the clock helpers. */
#include "harness.h"

#include <stddef.h>
#if !defined(_WIN32)
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#endif

/* ---- clock and deadlines ---------------------------------------------------- */

static void test_deadline_after_saturates(void)
{
    int64_t before, after, d;
    EXPECT_EQ_INT(fs_deadline_after(-1), FS_NO_DEADLINE);
    EXPECT_EQ_INT(fs_deadline_after(-MS(5)), FS_NO_DEADLINE);
    EXPECT_EQ_INT(fs_deadline_after(INT64_MAX), FS_NO_DEADLINE);
    EXPECT_EQ_INT(fs_deadline_after(INT64_MAX - 1), FS_NO_DEADLINE);
    EXPECT_EQ_INT(fs_deadline_after(INT64_MAX - fs_monotonic_ns() + 1000), FS_NO_DEADLINE);

    before = fs_monotonic_ns();
    d = fs_deadline_after(0);
    after = fs_monotonic_ns();
    EXPECT(before <= d && d <= after);

    before = fs_monotonic_ns();
    d = fs_deadline_after(MS(1500));
    after = fs_monotonic_ns();
    EXPECT(before + MS(1500) <= d && d <= after + MS(1500));

    /* Large but representable: a real deadline, not "none". */
    d = fs_deadline_after(INT64_MAX / 2);
    EXPECT(d != FS_NO_DEADLINE && d > INT64_MAX / 2);
}

static void test_monotonic_clock(void)
{
    int64_t last = fs_monotonic_ns(), start = last;
    int i;
    EXPECT(last > 0);
    for (i = 0; i < 100000; i++) {
        int64_t now = fs_monotonic_ns();
        if (now < last) {
            EXPECT(now >= last);
            break;
        }
        last = now;
    }
    test_sleep_ms(5);
    EXPECT(fs_monotonic_ns() - start >= MS(5));
}

/* ---- the raw wait layer ------------------------------------------------------ */

static void test_wait_returns_when_value_differs(void)
{
    fs_atomic_u32 word;
    int64_t start = fs_monotonic_ns();
    fs_store_u32(&word, 7);
    EXPECT_EQ_INT(fs_wait(&word, 8, FS_NO_DEADLINE), FS_OK);
    EXPECT_EQ_INT(fs_wait(&word, 0, FS_NO_DEADLINE), FS_OK);
    EXPECT(fs_monotonic_ns() - start < MS(500));
    /* Waking an address nobody waits on is harmless. */
    fs_wake_one(&word);
    fs_wake_all(&word);
}

/* Waits until TIMED_OUT (tolerating spurious wake-ups) and checks the clock
 * had reached the deadline. */
static void expect_wait_times_out(fs_atomic_u32 *word, int64_t deadline)
{
    int i;
    int64_t start = fs_monotonic_ns();
    int64_t latest = (deadline > start ? deadline : start) + MS(500);
    for (i = 0; i < 10000; i++) {
        fs_result r = fs_wait(word, fs_load_u32(word), deadline);
        int64_t now = fs_monotonic_ns();
        if (r == FS_TIMED_OUT) {
            EXPECT(now >= deadline);
            EXPECT(now < latest);
            return;
        }
        EXPECT(r == FS_OK);
        EXPECT(now < latest);
    }
    EXPECT(!"fs_wait never timed out");
}

static void test_wait_timeout_not_early(void)
{
    static const int64_t timeouts[] = { 0, 1000, 300000, MS(1), MS(2), MS(5), MS(12), MS(30) };
    fs_atomic_u32 word;
    size_t i;
    fs_store_u32(&word, 0);
    for (i = 0; i < sizeof timeouts / sizeof timeouts[0]; i++)
        expect_wait_times_out(&word, fs_deadline_after(timeouts[i]));
    /* A deadline already in the past. */
    expect_wait_times_out(&word, fs_monotonic_ns() - MS(1000));
}

typedef struct {
    fs_atomic_u32 *word;
    int64_t deadline;
    int delay_ms;           /* for wakers */
    fs_atomic_u32 *arrived, *returned;
    fs_result result;
} wait_job;

static void *waiter_once(void *p)
{
    wait_job *job = (wait_job *)p;
    test_add_u32(job->arrived, 1);
    job->result = fs_wait(job->word, 0, job->deadline);
    test_add_u32(job->returned, 1);
    return NULL;
}

static void *change_and_wake_later(void *p)
{
    wait_job *job = (wait_job *)p;
    test_sleep_ms(job->delay_ms);
    fs_store_u32(job->word, 1);
    fs_wake_all(job->word);
    return NULL;
}

static void test_wait_far_deadline(void)
{
    /* A deadline near INT64_MAX must not overflow into "already past". */
    fs_atomic_u32 word, arrived, returned;
    wait_job job;
    test_thread t;
    int64_t start = fs_monotonic_ns();
    fs_result r;
    fs_store_u32(&word, 0);
    fs_store_u32(&arrived, 0);
    fs_store_u32(&returned, 0);
    job.word = &word;
    job.delay_ms = 30;
    job.arrived = &arrived;
    job.returned = &returned;
    test_thread_start(&t, change_and_wake_later, &job);
    do r = fs_wait(&word, 0, INT64_MAX - 1);
    while (r == FS_OK && fs_load_u32(&word) == 0);
    test_thread_join(&t);
    EXPECT_EQ_INT(r, FS_OK);
    EXPECT(fs_monotonic_ns() - start >= MS(20));
}

#define N_WAITERS 4

static void test_wake_one_wakes_exactly_one(void)
{
    fs_atomic_u32 word, arrived, returned;
    wait_job jobs[N_WAITERS];
    test_thread threads[N_WAITERS];
    int i, attempts, woken = 0;
    fs_store_u32(&word, 0);
    fs_store_u32(&arrived, 0);
    fs_store_u32(&returned, 0);
    for (i = 0; i < N_WAITERS; i++) {
        jobs[i].word = &word;
        jobs[i].deadline = fs_deadline_after(MS(8000));
        jobs[i].arrived = &arrived;
        jobs[i].returned = &returned;
        jobs[i].result = (fs_result)-1;
        test_thread_start(&threads[i], waiter_once, &jobs[i]);
    }
    EXPECT(test_wait_for_u32(&arrived, N_WAITERS, 3000));
    test_sleep_ms(100);        /* let them all park */
    EXPECT_EQ_INT(fs_load_u32(&returned), 0);

    /* A wake-up can miss only if no waiter had parked yet; then try again.
     * Each call wakes at most one, so "exactly one" is still tested. */
    for (attempts = 0; attempts < 20 && !woken; attempts++) {
        fs_wake_one(&word);
        woken = test_wait_for_u32(&returned, 1, 200);
    }
    EXPECT(woken);
    test_sleep_ms(150);
    EXPECT_EQ_INT(fs_load_u32(&returned), 1);

    fs_wake_all(&word);
    EXPECT(test_wait_for_u32(&returned, N_WAITERS, 3000));
    test_sleep_ms(20);
    EXPECT_EQ_INT(fs_load_u32(&returned), N_WAITERS);
    for (i = 0; i < N_WAITERS; i++) {
        test_thread_join(&threads[i]);
        EXPECT_EQ_INT(jobs[i].result, FS_OK);
    }
}

static void test_wake_is_per_address(void)
{
    /* Waiters on a few words; wake-ups aimed at hundreds of other words (so
     * some surely share a bucket with them) must leave them asleep. */
    static fs_atomic_u32 words[4 + 300];
    fs_atomic_u32 arrived, returned;
    wait_job jobs[N_WAITERS];
    test_thread threads[N_WAITERS];
    size_t i;
    for (i = 0; i < sizeof words / sizeof words[0]; i++)
        fs_store_u32(&words[i], 0);
    fs_store_u32(&arrived, 0);
    fs_store_u32(&returned, 0);
    for (i = 0; i < N_WAITERS; i++) {
        jobs[i].word = &words[i];
        jobs[i].deadline = fs_deadline_after(MS(8000));
        jobs[i].arrived = &arrived;
        jobs[i].returned = &returned;
        test_thread_start(&threads[i], waiter_once, &jobs[i]);
    }
    EXPECT(test_wait_for_u32(&arrived, N_WAITERS, 3000));
    test_sleep_ms(100);
    for (i = N_WAITERS; i < sizeof words / sizeof words[0]; i++) {
        fs_wake_one(&words[i]);
        fs_wake_all(&words[i]);
    }
    test_sleep_ms(150);
    EXPECT_EQ_INT(fs_load_u32(&returned), 0);
    for (i = 0; i < N_WAITERS; i++)
        fs_wake_all(&words[i]);
    EXPECT(test_wait_for_u32(&returned, N_WAITERS, 3000));
    for (i = 0; i < N_WAITERS; i++) {
        test_thread_join(&threads[i]);
        EXPECT_EQ_INT(jobs[i].result, FS_OK);
    }
}

/* ---- helpers for the Lock and Event tests --------------------------------------- */

/* A blocking call that gave up at deadline: it timed out, not before the
 * deadline and not long after it. */
static void expect_timed_out_on_time(fs_result r, int64_t deadline)
{
    int64_t now = fs_monotonic_ns();
    EXPECT_EQ_INT(r, FS_TIMED_OUT);
    EXPECT(now >= deadline);
    EXPECT(now - deadline < MS(500));
}

/* ---- relays ------------------------------------------------------------------ */

/* Two threads pass a turn back and forth over two channels, `rounds` times:
 * main gives on channel 0 and takes on 1, its partner takes on 0 and gives
 * on 1.  Each take is a blocking wait (3 s deadline) that needs the other
 * side's give to wake it.  A failed take or give stops both sides. */
typedef struct relay relay;
struct relay {
    int (*give)(relay *r, int channel);   /* 1 on success */
    int (*take)(relay *r, int channel);
    int rounds;
    fs_atomic_u32 stop;
    long failures[2];                     /* main's, the partner's */
};

/* Side 0 (main) gives on 0 and takes on 1; side 1 takes on 0, gives on 1. */
static void relay_play(relay *r, int side)
{
    int i;
    for (i = 0; i < r->rounds && !fs_load_u32(&r->stop); i++) {
        int ok = side == 0 ? r->give(r, 0) && r->take(r, 1)
                           : r->take(r, 0) && r->give(r, 1);
        if (!ok) {
            r->failures[side]++;
            fs_store_u32(&r->stop, 1);
            break;
        }
    }
}

static void *relay_partner(void *p)
{
    relay_play((relay *)p, 1);
    return NULL;
}

static void run_relay(relay *r, int rounds)
{
    test_thread t;
    r->rounds = rounds;
    fs_store_u32(&r->stop, 0);
    r->failures[0] = r->failures[1] = 0;
    test_thread_start(&t, relay_partner, r);
    relay_play(r, 0);
    test_thread_join(&t);
    EXPECT_EQ_INT(r->failures[0], 0);
    EXPECT_EQ_INT(r->failures[1], 0);
}

/* ---- Lock ------------------------------------------------------------------- */

static void test_lock_basics(void)
{
    fs_lock lock;
    fs_lock_init(&lock);
    EXPECT(!fs_lock_is_locked(&lock));
    EXPECT(fs_lock_try_acquire(&lock));
    EXPECT(fs_lock_is_locked(&lock));
    EXPECT(!fs_lock_try_acquire(&lock));
    EXPECT_EQ_INT(fs_lock_release(&lock), 1);
    EXPECT(!fs_lock_is_locked(&lock));
    EXPECT_EQ_INT(fs_lock_release(&lock), 0);          /* not held */
    EXPECT_EQ_INT(fs_lock_acquire_until(&lock, FS_NO_DEADLINE, 0), FS_OK);
    EXPECT_EQ_INT(fs_lock_acquire_until(&lock, fs_monotonic_ns(), 0), FS_TIMED_OUT);
    EXPECT_EQ_INT(fs_lock_release(&lock), 1);
    EXPECT_EQ_INT(fs_lock_acquire_until(&lock, fs_monotonic_ns() - MS(10), 0), FS_OK);
    EXPECT_EQ_INT(fs_lock_release(&lock), 1);
}

static void test_lock_timeout_not_early(void)
{
    static const int64_t timeouts[] = { 0, 1000, 500000, MS(1), MS(3), MS(10), MS(25) };
    fs_lock lock;
    size_t i;
    fs_lock_init(&lock);
    EXPECT(fs_lock_try_acquire(&lock));
    for (i = 0; i < sizeof timeouts / sizeof timeouts[0]; i++) {
        int64_t deadline = fs_deadline_after(timeouts[i]);
        expect_timed_out_on_time(fs_lock_acquire_until(&lock, deadline, test_spin_ns),
                                 deadline);
    }
    EXPECT(fs_lock_is_locked(&lock));
    EXPECT_EQ_INT(fs_lock_release(&lock), 1);
    /* The contended mark left behind costs nothing but a spare wake-up. */
    EXPECT(fs_lock_try_acquire(&lock));
    EXPECT_EQ_INT(fs_lock_release(&lock), 1);
}

/* A holder that releases and at once retakes the lock, never pausing, must
 * not keep a waiter out for ever: once the waiter has waited past the
 * threshold, a release hands the lock to it. */
typedef struct {
    fs_lock lock;
    fs_atomic_u32 waiter_started;
    fs_atomic_u32 waiter_done;
    int64_t waited_ns;
} barging;

static void *barging_waiter(void *arg)
{
    barging *b = (barging *)arg;
    int64_t start;
    test_add_u32(&b->waiter_started, 1);
    start = fs_monotonic_ns();
    EXPECT_EQ_INT(test_lock_acquire(&b->lock, fs_deadline_after(MS(5000))), FS_OK);
    b->waited_ns = fs_monotonic_ns() - start;
    EXPECT_EQ_INT(fs_lock_release(&b->lock), 1);
    test_add_u32(&b->waiter_done, 1);
    return NULL;
}

static void test_lock_waiter_is_handed_the_lock(void)
{
    barging b;
    test_thread t;
    int64_t give_up;
    fs_lock_init(&b.lock);
    fs_store_u32(&b.waiter_started, 0);
    fs_store_u32(&b.waiter_done, 0);
    EXPECT(fs_lock_try_acquire(&b.lock));
    test_thread_start(&t, barging_waiter, &b);
    EXPECT(test_wait_for_u32(&b.waiter_started, 1, 5000));
    give_up = fs_deadline_after(MS(5000));
    while (!fs_load_u32(&b.waiter_done) && fs_monotonic_ns() < give_up) {
        EXPECT_EQ_INT(fs_lock_release(&b.lock), 1);
        /* Retake at once, as a busy loop would; a hand-off makes this wait. */
        EXPECT_EQ_INT(test_lock_acquire(&b.lock, FS_NO_DEADLINE), FS_OK);
    }
    EXPECT_EQ_INT(fs_lock_release(&b.lock), 1);
    test_thread_join(&t);
    EXPECT(fs_load_u32(&b.waiter_done));
    test_note("the waiter waited %.1f ms", b.waited_ns / 1e6);
    /* The threshold plus a scheduler's turn or two, with room for a busy machine. */
    EXPECT(b.waited_ns < MS(1000));
}

/* fs_lock_wait_for_release: a waiter that has just begun returns FS_RETRY,
 * holding nothing, when the lock is released; one that has waited past the
 * threshold takes the lock itself. */
typedef struct {
    fs_lock lock;
    int64_t waiting_since;
    fs_atomic_u32 started;
    fs_result result;
} release_watcher;

static void *watch_for_release(void *arg)
{
    release_watcher *w = (release_watcher *)arg;
    fs_store_u32(&w->started, 1);
    w->result = fs_lock_wait_for_release(&w->lock, &w->waiting_since,
                                         fs_deadline_after(MS(5000)), 0);
    return NULL;
}

static fs_result released_to_watcher(int64_t waiting_since)
{
    release_watcher w;
    test_thread t;
    fs_lock_init(&w.lock);
    w.waiting_since = waiting_since;
    fs_store_u32(&w.started, 0);
    EXPECT(fs_lock_try_acquire(&w.lock));
    test_thread_start(&t, watch_for_release, &w);
    EXPECT(test_wait_for_u32(&w.started, 1, 5000));
    test_sleep_ms(20);                   /* asleep on the lock, most likely */
    EXPECT_EQ_INT(fs_lock_release(&w.lock), 1);
    test_thread_join(&t);
    /* Retried: free, and the caller takes it; taken: held. */
    EXPECT_EQ_INT(fs_lock_is_locked(&w.lock), w.result == FS_OK);
    return w.result;
}

static void test_lock_wait_for_release(void)
{
    /* A wait that counts as begun a second from now can't pass the
     * threshold while the test sleeps. */
    EXPECT_EQ_INT(released_to_watcher(fs_monotonic_ns() + MS(1000)), FS_RETRY);
    EXPECT_EQ_INT(released_to_watcher(fs_monotonic_ns() - 2 * FS_LOCK_HANDOFF_AFTER_NS), FS_OK);
}

/* A waiter that has asked for a hand-off (woken after the threshold with the
 * lock still held), and that gives up when its deadline passes. */
typedef struct {
    fs_lock lock;
    fs_atomic_u32 asleep;
    fs_result result;
} asker;

static void *ask_until_deadline(void *arg)
{
    asker *a = (asker *)arg;
    int64_t waiting_since = 0, deadline = fs_deadline_after(MS(300));
    fs_store_u32(&a->asleep, 1);
    /* Woken with the lock held, past the threshold: it asks. */
    a->result = fs_lock_wait_until(&a->lock, &waiting_since, deadline, 0);
    return NULL;
}

/* Holds a->lock and starts a thread that asks for it. */
static void start_asker(asker *a, test_thread *t)
{
    fs_lock_init(&a->lock);
    fs_store_u32(&a->asleep, 0);
    EXPECT(fs_lock_try_acquire(&a->lock));
    EXPECT(fs_lock_try_acquire_contended(&a->lock) == 0);   /* marks a waiter */
    test_thread_start(t, ask_until_deadline, a);
    EXPECT(test_wait_for_u32(&a->asleep, 1, 5000));
    test_sleep_ms(20);                   /* past the threshold, asleep */
    fs_wake_one(&a->lock.state);         /* it wakes, finds the lock held, asks */
    test_sleep_ms(20);
    EXPECT(fs_load_u32(&a->lock.state) & FS_LOCK_HANDOFF_ASKED);
}

/* An asker that times out withdraws: the next release frees the lock rather
 * than handing it to nobody. */
static void test_lock_handoff_ask_withdrawn(void)
{
    asker a;
    test_thread t;
    start_asker(&a, &t);
    test_thread_join(&t);
    EXPECT_EQ_INT(a.result, FS_TIMED_OUT);
    EXPECT(!(fs_load_u32(&a.lock.state) & FS_LOCK_HANDOFF_ASKED));
    EXPECT_EQ_INT(fs_lock_release(&a.lock), 1);
    EXPECT(!fs_lock_is_locked(&a.lock));
}

/* A lock handed over belongs to the asker, which has not yet run: another
 * release then is refused (as of an unlocked lock, released before the asker
 * took it) rather than free the lock under the asker, who would then never
 * be told.  Set up directly, as no thread can be kept from taking it. */
static void test_lock_release_refused_while_handed(void)
{
    fs_lock lock;
    fs_lock_init(&lock);
    fs_store_u32(&lock.state, FS_LOCK_HELD | FS_LOCK_WAITERS | FS_LOCK_HANDED);
    EXPECT_EQ_INT(fs_lock_release(&lock), 0);
    EXPECT_EQ_INT(fs_load_u32(&lock.state), FS_LOCK_HELD | FS_LOCK_WAITERS | FS_LOCK_HANDED);
}

/* A waiter woken by a release, that finds the lock retaken and may not ask
 * yet, sleeps without the waiters' mark, which that release cleared.  If its
 * deadline passes there, the thread still asleep behind it must not be left
 * asleep, unmarked, while the lock goes free.  (test_interrupt.c has the same
 * for an interrupt.) */
static void test_lock_dozer_that_gives_up_passes_the_wake_on(void)
{
    fs_lock lock;
    test_lock_sleeper first, second;
    fs_lock_init(&lock);
    EXPECT(fs_lock_try_acquire(&lock));
    /* The first may not ask for a long time (its wait "began" in the future);
     * its deadline comes first.  The second is an ordinary waiter. */
    test_lock_sleeper_start(&first, &lock, fs_monotonic_ns() + MS(60000), MS(100));
    test_lock_sleeper_start(&second, &lock, 0, MS(60000));
    test_lock_release_and_retake(&lock);
    test_thread_join(&first.thread);
    EXPECT_EQ_INT(first.result, FS_TIMED_OUT);
    test_lock_sleeper_expect_woken(&second, &lock);
}

/* Several waiters that have all waited past the threshold queue for the lock,
 * and each release hands it to the one that asked first. */
#define QUEUED_ASKERS 3
typedef struct {
    fs_lock lock;
    fs_atomic_u32 served;                 /* how many askers have had the lock */
    int order[QUEUED_ASKERS];             /* who had it, written by the holder */
} asker_queue;

typedef struct {
    asker_queue *queue;
    int index;
    int64_t deadline_ns;
    fs_result result;
    test_thread thread;
} queued_asker;

static void *ask_in_queue(void *arg)
{
    queued_asker *me = (queued_asker *)arg;
    /* Its wait "began" past the threshold, so it asks at once. */
    int64_t waiting_since = fs_monotonic_ns() - 2 * FS_LOCK_HANDOFF_AFTER_NS;
    me->result = fs_lock_wait_until(&me->queue->lock, &waiting_since, me->deadline_ns, 0);
    if (me->result == FS_OK) {
        uint32_t slot = fs_load_u32(&me->queue->served);
        if (slot < QUEUED_ASKERS)
            me->queue->order[slot] = me->index;
        fs_store_u32(&me->queue->served, slot + 1);
        EXPECT_EQ_INT(fs_lock_release(&me->queue->lock), 1);
    }
    return NULL;
}

/* Starts askers one after another, each queued before the next starts;
 * the lock must be held. */
static void queue_askers(asker_queue *queue, queued_asker *askers, int count)
{
    int i;
    for (i = 0; i < count; i++) {
        int64_t started = fs_monotonic_ns();
        test_thread_start(&askers[i].thread, ask_in_queue, &askers[i]);
        while (fs_lock_count_askers(&queue->lock) < (size_t)i + 1 && test_ms_since(started) < 5000)
            test_sleep_ms(1);
        EXPECT_EQ_INT(fs_lock_count_askers(&queue->lock), i + 1);
    }
}

static void asker_queue_init(asker_queue *queue, queued_asker *askers, int64_t deadline_ns)
{
    int i;
    fs_lock_init(&queue->lock);
    fs_store_u32(&queue->served, 0);
    for (i = 0; i < QUEUED_ASKERS; i++) {
        queue->order[i] = -1;
        askers[i].queue = queue;
        askers[i].index = i;
        askers[i].deadline_ns = deadline_ns;
        askers[i].result = FS_INTERRUPTED;
    }
    EXPECT(fs_lock_try_acquire(&queue->lock));
}

static void test_lock_askers_served_in_order(void)
{
    asker_queue queue;
    queued_asker askers[QUEUED_ASKERS];
    int i;
    asker_queue_init(&queue, askers, fs_deadline_after(MS(10000)));
    queue_askers(&queue, askers, QUEUED_ASKERS);
    EXPECT_EQ_INT(fs_lock_release(&queue.lock), 1);   /* to the first; each passes it on */
    for (i = 0; i < QUEUED_ASKERS; i++) {
        test_thread_join(&askers[i].thread);
        EXPECT_EQ_INT(askers[i].result, FS_OK);
        EXPECT_EQ_INT(queue.order[i], i);
    }
    EXPECT_EQ_INT(fs_lock_count_askers(&queue.lock), 0);
    EXPECT(!(fs_load_u32(&queue.lock.state) & FS_LOCK_HANDOFF_ASKED));
    EXPECT(fs_lock_try_acquire(&queue.lock));
}

/* An asker in the middle of the queue that gives up leaves it; the ones
 * before and after it are still served in order. */
static void test_lock_asker_withdrawn_from_middle(void)
{
    asker_queue queue;
    queued_asker askers[QUEUED_ASKERS];
    asker_queue_init(&queue, askers, fs_deadline_after(MS(10000)));
    askers[1].deadline_ns = fs_deadline_after(MS(500));
    queue_askers(&queue, askers, QUEUED_ASKERS);
    test_thread_join(&askers[1].thread);
    EXPECT_EQ_INT(askers[1].result, FS_TIMED_OUT);
    EXPECT_EQ_INT(fs_lock_count_askers(&queue.lock), 2);
    EXPECT_EQ_INT(fs_lock_release(&queue.lock), 1);
    test_thread_join(&askers[0].thread);
    test_thread_join(&askers[2].thread);
    EXPECT_EQ_INT(askers[0].result, FS_OK);
    EXPECT_EQ_INT(askers[2].result, FS_OK);
    EXPECT_EQ_INT(fs_load_u32(&queue.served), 2);
    EXPECT_EQ_INT(queue.order[0], 0);
    EXPECT_EQ_INT(queue.order[1], 2);
    EXPECT(fs_lock_try_acquire(&queue.lock));
}

#if !defined(_WIN32)
/* In a forked child, a hand-off asked for by a thread of the parent's (which
 * the child doesn't have) is dropped: the release frees the lock.  In the
 * parent the asker is handed the lock as usual. */
static void test_lock_handoff_dropped_after_fork(void)
{
    asker a;
    test_thread t;
    int status = -1;
    pid_t pid;
    start_asker(&a, &t);
    pid = fork();
    if (pid == 0) {
        int ok;
        fs_after_fork_child();
        ok = fs_lock_release(&a.lock) && !fs_lock_is_locked(&a.lock)
             && fs_lock_try_acquire(&a.lock);
        _exit(ok ? 0 : 1);
    }
    EXPECT(pid > 0);
    if (pid > 0) {
        EXPECT(waitpid(pid, &status, 0) == pid);
        EXPECT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    EXPECT_EQ_INT(fs_lock_release(&a.lock), 1);    /* hands it to the asker */
    test_thread_join(&t);
    EXPECT_EQ_INT(a.result, FS_OK);
    EXPECT_EQ_INT(fs_lock_release(&a.lock), 1);
}
#endif

/* ---- Condition queue -------------------------------------------------------- */

static void test_cond_queue_order(void)
{
    fs_cond cond;
    fs_cond_waiter *first, *second;
    fs_cond_init(&cond);
    first = fs_cond_enqueue(&cond);
    second = fs_cond_enqueue(&cond);
    EXPECT(first != NULL && second != NULL);
    EXPECT_EQ_INT(fs_cond_length(&cond), 2);
    EXPECT_EQ_INT(fs_cond_notify(&cond, 1), 1);
    EXPECT_EQ_INT(fs_cond_wait_notified(first, fs_monotonic_ns(), 0), FS_OK);
    EXPECT_EQ_INT(fs_cond_wait_notified(second, fs_monotonic_ns(), 0), FS_TIMED_OUT);
    EXPECT_EQ_INT(fs_cond_dequeue(&cond, first), 1);
    EXPECT_EQ_INT(fs_cond_dequeue(&cond, second), 0);
    EXPECT_EQ_INT(fs_cond_length(&cond), 0);
    EXPECT_EQ_INT(fs_cond_notify(&cond, 1), 0);
}

#define MX_THREADS 4
#define MX_ITERATIONS 100000

typedef struct {
    fs_lock *lock;
    fs_atomic_u32 *ready;          /* start together, so they contend */
    long *counter;                 /* deliberately not atomic */
    int index;
    int64_t short_timeout;         /* 0: block with a generous deadline */
    long failures, timeouts;
} mx_job;

static void *mx_worker(void *p)
{
    mx_job *job = (mx_job *)p;
    int i;
    test_start_together(job->ready, MX_THREADS);
    for (i = 0; i < MX_ITERATIONS; i++) {
        fs_result r;
        volatile int spin;
        if (job->short_timeout) {
            /* Give up and retry often: exercises the give-up path racing
             * with the holder's wake-up. */
            do {
                r = fs_lock_try_acquire(job->lock) ? FS_OK
                    : fs_lock_acquire_until(job->lock, fs_deadline_after(job->short_timeout),
                                            test_spin_ns);
                if (r == FS_TIMED_OUT)
                    job->timeouts++;
            } while (r == FS_TIMED_OUT);
        } else if ((i + job->index) % 2) {
            r = test_lock_acquire(job->lock, fs_deadline_after(MS(5000)));
        } else {
            r = test_lock_acquire(job->lock, FS_NO_DEADLINE);
        }
        if (r != FS_OK) {
            job->failures++;
            break;
        }
        ++*job->counter;
        for (spin = 0; spin < (job->short_timeout ? 400 : 20); spin++) {}
        if (!fs_lock_release(job->lock)) {
            job->failures++;
            break;
        }
    }
    return NULL;
}

static void run_mutual_exclusion(int64_t short_timeout)
{
    fs_lock lock;
    fs_atomic_u32 ready;
    long counter = 0, timeouts = 0;
    mx_job jobs[MX_THREADS];
    test_thread threads[MX_THREADS];
    int i;
    fs_lock_init(&lock);
    fs_store_u32(&ready, 0);
    for (i = 0; i < MX_THREADS; i++) {
        jobs[i].lock = &lock;
        jobs[i].ready = &ready;
        jobs[i].counter = &counter;
        jobs[i].index = i;
        jobs[i].short_timeout = short_timeout;
        jobs[i].failures = jobs[i].timeouts = 0;
        test_thread_start(&threads[i], mx_worker, &jobs[i]);
    }
    for (i = 0; i < MX_THREADS; i++) {
        test_thread_join(&threads[i]);
        EXPECT_EQ_INT(jobs[i].failures, 0);
        timeouts += jobs[i].timeouts;
    }
    EXPECT_EQ_INT(counter, (long)MX_THREADS * MX_ITERATIONS);
    EXPECT(!fs_lock_is_locked(&lock));
    if (short_timeout)
        test_note("%ld timed-out attempts", timeouts);
}

static void test_lock_mutual_exclusion(void) { run_mutual_exclusion(0); }
static void test_lock_mutual_exclusion_short_timeouts(void) { run_mutual_exclusion(5000); }

/* Two held locks used as binary semaphores (any thread may release, as with
 * threading.Lock): every round is a blocking acquire that needs a wake-up. */
#define HANDOFF_ROUNDS 20000

typedef struct {
    relay r;                /* first: the callbacks get &state->r */
    fs_lock locks[2];
} handoff_state;

static int handoff_give(relay *r, int channel)
{ return fs_lock_release(&((handoff_state *)r)->locks[channel]); }

static int handoff_take(relay *r, int channel)
{
    return test_lock_acquire(&((handoff_state *)r)->locks[channel],
                             fs_deadline_after(MS(3000))) == FS_OK;
}

static void test_lock_handoff(void)
{
    handoff_state s;
    s.r.give = handoff_give;
    s.r.take = handoff_take;
    fs_lock_init(&s.locks[0]);
    fs_lock_init(&s.locks[1]);
    EXPECT(fs_lock_try_acquire(&s.locks[0]));
    EXPECT(fs_lock_try_acquire(&s.locks[1]));
    run_relay(&s.r, HANDOFF_ROUNDS);
}

/* ---- RLock helpers ------------------------------------------------------------ */

static void test_rlock_helpers(void)
{
    fs_rlock r;
    const uintptr_t me = 0x1234, other = 0x5678;
    fs_rlock_init(&r);
    EXPECT(!fs_rlock_is_owned(&r, me));
    EXPECT_EQ_INT(fs_rlock_count(&r), 0);
    EXPECT(!fs_lock_is_locked(&r.lock));

    /* A first acquire writes only the owner: a free lock's depth reads 1. */
    EXPECT(fs_lock_try_acquire(&r.lock));
    fs_rlock_take_first(&r, me);
    EXPECT(fs_rlock_is_owned(&r, me));
    EXPECT(!fs_rlock_is_owned(&r, other));
    EXPECT_EQ_INT(fs_rlock_owned_count(&r, me), 1);
    EXPECT_EQ_INT(fs_rlock_owned_count(&r, other), 0);
    EXPECT_EQ_INT(fs_rlock_count(&r), 1);
    EXPECT_EQ_INT(fs_load_uptr_relaxed(&r.owner), me);

    /* Re-entry is the caller's bookkeeping: the depth goes up, owner stays. */
    fs_rlock_set_count(&r, 3);
    EXPECT_EQ_INT(fs_rlock_owned_count(&r, me), 3);
    EXPECT_EQ_INT(fs_rlock_count(&r), 3);
    EXPECT(!fs_lock_try_acquire(&r.lock));

    /* One level at a time, by the owner only; the last one frees the lock. */
    EXPECT(!fs_rlock_release_one(&r, other));
    EXPECT(fs_rlock_release_one(&r, me));
    EXPECT_EQ_INT(fs_rlock_owned_count(&r, me), 2);
    EXPECT(fs_rlock_release_one(&r, me));
    EXPECT_EQ_INT(fs_rlock_owned_count(&r, me), 1);
    EXPECT(fs_lock_is_locked(&r.lock));
    EXPECT(fs_rlock_release_one(&r, me));
    EXPECT(!fs_lock_is_locked(&r.lock));
    EXPECT(!fs_rlock_release_one(&r, me));
    EXPECT_EQ_INT(fs_rlock_count(&r), 0);
    EXPECT(fs_lock_try_acquire(&r.lock));
    fs_rlock_take(&r, me, 3);

    /* Releasing every level leaves the depth as a first acquire expects it. */
    fs_rlock_release_all(&r);
    EXPECT(!fs_rlock_is_owned(&r, me));
    EXPECT_EQ_INT(fs_rlock_count(&r), 0);
    EXPECT_EQ_INT(fs_load_uptr_relaxed(&r.owner), 0);
    EXPECT(!fs_lock_is_locked(&r.lock));

    /* Another thread can take it now, and finds depth 1. */
    EXPECT(fs_lock_try_acquire(&r.lock));
    fs_rlock_take_first(&r, other);
    EXPECT_EQ_INT(fs_rlock_owned_count(&r, other), 1);
    EXPECT(!fs_rlock_is_owned(&r, me));
    fs_rlock_release_last(&r);
    EXPECT_EQ_INT(fs_rlock_count(&r), 0);
    EXPECT(!fs_lock_is_locked(&r.lock));

    /* Any depth can be restored, 0 included (owned by nobody then), and the
     * largest; after either, a first acquire still finds depth 1. */
    EXPECT(fs_lock_try_acquire(&r.lock));
    fs_rlock_take(&r, me, 0);
    EXPECT(!fs_rlock_is_owned(&r, me));
    EXPECT_EQ_INT(fs_rlock_count(&r), 0);
    EXPECT(!fs_rlock_release_one(&r, me));
    EXPECT(fs_lock_is_locked(&r.lock));
    fs_rlock_release_all(&r);
    EXPECT(fs_lock_try_acquire(&r.lock));
    fs_rlock_take(&r, me, FS_RLOCK_COUNT_MAX);
    EXPECT(fs_rlock_owned_count(&r, me) == FS_RLOCK_COUNT_MAX);
    fs_rlock_release_all(&r);
    EXPECT(fs_lock_try_acquire(&r.lock));
    fs_rlock_take_first(&r, me);
    EXPECT_EQ_INT(fs_rlock_owned_count(&r, me), 1);
    fs_rlock_release_last(&r);
    EXPECT((unsigned long)FS_RLOCK_COUNT_MAX == ULONG_MAX);
}

/* ---- Semaphore ---------------------------------------------------------------- */

static void test_semaphore_counts(void)
{
    const uint64_t top_of_fast_adds = FS_SEMAPHORE_ADD_FREELY_BELOW;
    fs_semaphore sem;
    fs_semaphore_init(&sem, 2);
    EXPECT(fs_semaphore_try_acquire(&sem));
    EXPECT(fs_semaphore_try_acquire(&sem));
    EXPECT(!fs_semaphore_try_acquire(&sem));
    EXPECT(fs_semaphore_release(&sem, 1, UINT64_MAX));
    EXPECT(fs_semaphore_release(&sem, 3, UINT64_MAX));
    EXPECT(fs_semaphore_value(&sem) == 4);

    /* Bounded: a release that would pass the limit changes nothing. */
    fs_semaphore_init(&sem, 1);
    EXPECT(!fs_semaphore_release(&sem, 1, 1));
    EXPECT(fs_semaphore_try_acquire(&sem));
    EXPECT(fs_semaphore_release(&sem, 1, 1));
    EXPECT(!fs_semaphore_release(&sem, 2, 1));
    EXPECT(fs_semaphore_value(&sem) == 1);
    fs_semaphore_init(&sem, 0);
    EXPECT(!fs_semaphore_release(&sem, 1, 0));
    EXPECT(fs_semaphore_value(&sem) == 0);

    /* Unbounded: release(1) takes the plain add below 2^63 and the checked
     * exchange from there; only a count that would pass UINT64_MAX is refused. */
    fs_semaphore_init(&sem, top_of_fast_adds - 1);
    EXPECT(fs_semaphore_release(&sem, 1, UINT64_MAX));
    EXPECT(fs_semaphore_value(&sem) == top_of_fast_adds);
    EXPECT(fs_semaphore_release(&sem, 1, UINT64_MAX));
    EXPECT(fs_semaphore_value(&sem) == top_of_fast_adds + 1);
    fs_semaphore_init(&sem, UINT64_MAX - 1);
    EXPECT(fs_semaphore_release(&sem, 1, UINT64_MAX));
    EXPECT(fs_semaphore_value(&sem) == UINT64_MAX);
    EXPECT(!fs_semaphore_release(&sem, 1, UINT64_MAX));
    EXPECT(!fs_semaphore_release(&sem, UINT64_MAX, UINT64_MAX));
    EXPECT(fs_semaphore_value(&sem) == UINT64_MAX);
}

/* Threads take a slot (blocking or with a short deadline), count themselves
 * in and out while they hold it, and give it back with release(1): never more
 * holders than slots, and every slot comes back. */
#define SEM_THREADS 4
#define SEM_SLOTS 2
#define SEM_ITERATIONS 20000

typedef struct {
    fs_semaphore *sem;
    fs_atomic_u32 *ready, *holders;
    uint32_t most_holders;
    long failures;
    int index;
} sem_job;

static void *sem_worker(void *p)
{
    sem_job *job = (sem_job *)p;
    int i;
    test_start_together(job->ready, SEM_THREADS);
    for (i = 0; i < SEM_ITERATIONS; i++) {
        uint32_t holders;
        volatile int spin;
        fs_result r = FS_OK;
        if (!fs_semaphore_try_acquire(job->sem)) {
            do {
                int64_t deadline = (i + job->index) % 2 ? fs_deadline_after(5000) : FS_NO_DEADLINE;
                r = fs_semaphore_acquire_until(job->sem, deadline, test_spin_ns);
            } while (r == FS_TIMED_OUT);
        }
        if (r != FS_OK) {
            job->failures++;
            break;
        }
        holders = test_add_u32(job->holders, 1);
        if (holders > job->most_holders)
            job->most_holders = holders;
        for (spin = 0; spin < 20; spin++) {}
        test_add_u32(job->holders, (uint32_t)-1);
        if (!fs_semaphore_release(job->sem, 1, UINT64_MAX)) {
            job->failures++;
            break;
        }
    }
    return NULL;
}

static void test_semaphore_slots(void)
{
    fs_semaphore sem;
    fs_atomic_u32 ready, holders;
    sem_job jobs[SEM_THREADS];
    test_thread threads[SEM_THREADS];
    int i;
    fs_semaphore_init(&sem, SEM_SLOTS);
    fs_store_u32(&ready, 0);
    fs_store_u32(&holders, 0);
    for (i = 0; i < SEM_THREADS; i++) {
        jobs[i].sem = &sem;
        jobs[i].ready = &ready;
        jobs[i].holders = &holders;
        jobs[i].most_holders = 0;
        jobs[i].failures = 0;
        jobs[i].index = i;
        test_thread_start(&threads[i], sem_worker, &jobs[i]);
    }
    for (i = 0; i < SEM_THREADS; i++) {
        test_thread_join(&threads[i]);
        EXPECT_EQ_INT(jobs[i].failures, 0);
        EXPECT(jobs[i].most_holders <= SEM_SLOTS);
    }
    EXPECT(fs_semaphore_value(&sem) == SEM_SLOTS);
    EXPECT_EQ_INT(fs_load_u32(&sem.sleepers), 0);
}

/* ---- Event -------------------------------------------------------------------- */

static void test_event_basics(void)
{
    static const int64_t timeouts[] = { 0, 1000, MS(1), MS(4), MS(15) };
    fs_event e;
    size_t i;
    fs_event_init(&e, 0);
    EXPECT(!fs_event_is_set(&e));
    fs_event_set(&e);
    EXPECT(fs_event_is_set(&e));
    fs_event_set(&e);                        /* idempotent */
    EXPECT(fs_event_is_set(&e));
    EXPECT_EQ_INT(test_event_wait(&e, fs_monotonic_ns()), FS_OK);
    EXPECT_EQ_INT(fs_event_wait_until(&e, fs_event_state(&e), FS_NO_DEADLINE, 0), FS_OK);
    fs_event_clear(&e);
    EXPECT(!fs_event_is_set(&e));
    fs_event_clear(&e);                      /* idempotent */
    EXPECT(!fs_event_is_set(&e));
    for (i = 0; i < sizeof timeouts / sizeof timeouts[0]; i++) {
        int64_t deadline = fs_deadline_after(timeouts[i]);
        expect_timed_out_on_time(test_event_wait(&e, deadline), deadline);
    }
    /* A timed-out waiter left the waiters bit; set() must still work. */
    fs_event_set(&e);
    EXPECT(fs_event_is_set(&e));
    EXPECT_EQ_INT(test_event_wait(&e, fs_monotonic_ns()), FS_OK);

    fs_event_init(&e, 1);
    EXPECT(fs_event_is_set(&e));
    fs_event_reinit_after_fork(&e);
    EXPECT(fs_event_is_set(&e));
}

static void test_event_generation_rule_single_thread(void)
{
    /* A caller that stopped waiting (deadline, signal) and calls again with
     * its first observed state still sees a set() that came in between, even
     * if clear() followed. */
    fs_event e;
    uint32_t observed;
    fs_event_init(&e, 0);
    observed = fs_event_state(&e);
    EXPECT_EQ_INT(fs_event_wait_until(&e, observed, fs_deadline_after(MS(5)), 0), FS_TIMED_OUT);
    fs_event_set(&e);
    fs_event_clear(&e);
    EXPECT(!fs_event_is_set(&e));
    EXPECT_EQ_INT(fs_event_wait_until(&e, observed, fs_deadline_after(MS(5)), 0), FS_OK);
    /* A fresh look does not see it any more. */
    EXPECT_EQ_INT(test_event_wait(&e, fs_deadline_after(MS(5))), FS_TIMED_OUT);
}

#define EV_WAITERS 4

typedef struct {
    fs_event *event;
    fs_atomic_u32 *arrived, *returned;
    fs_result result;
    double waited_ms;
} event_job;

static void *event_waiter(void *p)
{
    event_job *job = (event_job *)p;
    uint32_t observed = fs_event_state(job->event);
    int64_t start = fs_monotonic_ns();
    test_add_u32(job->arrived, 1);
    if (observed & FS_EVENT_SET)
        job->result = FS_OK;
    else
        job->result = fs_event_wait_until(job->event, observed, fs_deadline_after(MS(5000)),
                                          test_spin_ns);
    job->waited_ms = test_ms_since(start);
    test_add_u32(job->returned, 1);
    return NULL;
}

static void run_event_waiters(int clear_right_away)
{
    fs_event e;
    fs_atomic_u32 arrived, returned;
    event_job jobs[EV_WAITERS];
    test_thread threads[EV_WAITERS];
    int i;
    fs_event_init(&e, 0);
    fs_store_u32(&arrived, 0);
    fs_store_u32(&returned, 0);
    for (i = 0; i < EV_WAITERS; i++) {
        jobs[i].event = &e;
        jobs[i].arrived = &arrived;
        jobs[i].returned = &returned;
        jobs[i].result = (fs_result)-1;
        test_thread_start(&threads[i], event_waiter, &jobs[i]);
    }
    EXPECT(test_wait_for_u32(&arrived, EV_WAITERS, 3000));
    /* Once one waiter has announced itself, set() takes the path that bumps
     * the generation, which every waiter that looked before set() honours. */
    for (i = 0; i < 3000 && !(fs_event_state(&e) & FS_EVENT_WAITERS); i++)
        test_sleep_ms(1);
    EXPECT(fs_event_state(&e) & FS_EVENT_WAITERS);
    test_sleep_ms(30);
    EXPECT_EQ_INT(fs_load_u32(&returned), 0);
    fs_event_set(&e);
    if (clear_right_away)
        fs_event_clear(&e);
    EXPECT(test_wait_for_u32(&returned, EV_WAITERS, 3000));
    for (i = 0; i < EV_WAITERS; i++) {
        test_thread_join(&threads[i]);
        EXPECT_EQ_INT(jobs[i].result, FS_OK);
        EXPECT(jobs[i].waited_ms < 3000);
    }
    EXPECT_EQ_INT(fs_event_is_set(&e), !clear_right_away);
}

static void test_event_set_wakes_all_waiters(void) { run_event_waiters(0); }
static void test_event_set_then_clear_still_wakes(void) { run_event_waiters(1); }

/* Ping-pong: each round needs a blocking wait and a wake-up on both sides. */
#define PING_ROUNDS 20000

typedef struct {
    relay r;                /* first: the callbacks get &state->r */
    fs_event events[2];     /* ping, pong */
} ping_state;

static int ping_give(relay *r, int channel)
{
    fs_event_set(&((ping_state *)r)->events[channel]);
    return 1;
}

static int ping_take(relay *r, int channel)
{
    fs_event *e = &((ping_state *)r)->events[channel];
    if (test_event_wait(e, fs_deadline_after(MS(3000))) != FS_OK)
        return 0;
    fs_event_clear(e);
    return 1;
}

static void test_event_ping_pong(void)
{
    ping_state s;
    int64_t start = fs_monotonic_ns();
    s.r.give = ping_give;
    s.r.take = ping_take;
    fs_event_init(&s.events[0], 0);
    fs_event_init(&s.events[1], 0);
    run_relay(&s.r, PING_ROUNDS);
    test_note("%.0f round trips/s", PING_ROUNDS / (test_ms_since(start) / 1000.0));
}

/* ---- spinning ---------------------------------------------------------------- */

#define SPIN_BUDGET MS(1000)

typedef struct {
    fs_atomic_u32 *word;
    int64_t deadline, spin_ns;
    fs_result result;
    double waited_ms;
    fs_atomic_u32 *arrived;
} spin_job;

static void *spin_then_wait_job(void *p)
{
    spin_job *job = (spin_job *)p;
    int64_t start = fs_monotonic_ns();
    test_add_u32(job->arrived, 1);
    job->result = fs_spin_then_wait(job->word, 0, job->deadline, job->spin_ns);
    job->waited_ms = test_ms_since(start);
    return NULL;
}

static void test_spin_sees_a_change_nobody_wakes(void)
{
    /* A plain store, no fs_wake: only a spinning waiter can notice it
     * before its deadline. */
    fs_atomic_u32 word, arrived;
    spin_job job;
    test_thread t;
    fs_store_u32(&word, 0);
    fs_store_u32(&arrived, 0);
    job.word = &word;
    job.deadline = fs_deadline_after(MS(3000));
    job.spin_ns = SPIN_BUDGET * 2;
    job.arrived = &arrived;
    test_thread_start(&t, spin_then_wait_job, &job);
    EXPECT(test_wait_for_u32(&arrived, 1, 2000));
    test_sleep_ms(20);
    fs_store_u32(&word, 1);
    test_thread_join(&t);
    EXPECT_EQ_INT(job.result, FS_OK);
    EXPECT(job.waited_ms < 2500);
}

static void test_spin_ends_at_the_deadline(void)
{
    fs_atomic_u32 word;
    int64_t deadline = fs_deadline_after(MS(15));
    fs_store_u32(&word, 0);
    EXPECT_EQ_INT(fs_spin_then_wait(&word, 0, deadline, SPIN_BUDGET), FS_TIMED_OUT);
    EXPECT(fs_monotonic_ns() >= deadline);
    EXPECT(fs_monotonic_ns() - deadline < MS(500));   /* not the whole budget */
}

/* Each thread keeps its own record of failed spins (see fs_spin.c); these
 * tests run in a fresh thread so that earlier tests don't decide it. */
static void *spin_budget_job(void *unused)
{
    fs_atomic_u32 word;
    int64_t start = fs_monotonic_ns();
    (void)unused;
    fs_store_u32(&word, 0);
    EXPECT(!fs_spin_while(&word, 0, FS_NO_DEADLINE, MS(10)));
    EXPECT(fs_monotonic_ns() - start >= MS(10));
    fs_store_u32(&word, 1);
    EXPECT(fs_spin_while(&word, 0, FS_NO_DEADLINE, MS(10)));
    EXPECT(!fs_spin_while(&word, 1, FS_NO_DEADLINE, 0));     /* 0: no spin at all */
    return NULL;
}

static void test_spin_runs_for_its_budget(void)
{
    test_thread t;
    test_thread_start(&t, spin_budget_job, NULL);
    test_thread_join(&t);
}

static void test_spin_limit(void)
{
    fs_atomic_u32 word;
    int64_t start = fs_monotonic_ns();
    fs_store_u32(&word, 0);
    fs_spin_set_limit(0);
    EXPECT(!fs_spin_while(&word, 0, FS_NO_DEADLINE, SPIN_BUDGET));
    fs_spin_set_limit(UINT32_MAX);
    EXPECT(fs_monotonic_ns() - start < MS(500));
}

/* How long one fs_spin_while call on an unchanging word took, in ms. */
static double failing_spin_ms(fs_atomic_u32 *word, int64_t spin_ns)
{
    int64_t start = fs_monotonic_ns();
    EXPECT(!fs_spin_while(word, 0, FS_NO_DEADLINE, spin_ns));
    return test_ms_since(start);
}

/* Changes the word once some thread spins on it. */
static void *change_while_spun_on(void *word)
{
    while (fs_spinning_threads() == 0)
        fs_cpu_relax();
    fs_store_u32((fs_atomic_u32 *)word, 1);
    return NULL;
}

static void *spin_pause_job(void *unused)
{
    fs_atomic_u32 word;
    test_thread changer;
    int i, calls = 0;
    (void)unused;
    fs_store_u32(&word, 0);
    EXPECT(failing_spin_ms(&word, MS(5)) >= 5);
    EXPECT(failing_spin_ms(&word, MS(5)) >= 5);
    for (i = 1; i < 16; i++)                      /* two failures: a pause */
        EXPECT(failing_spin_ms(&word, MS(5)) < 4);
    EXPECT(failing_spin_ms(&word, MS(5)) >= 5);   /* every 16th call tries */
    /* A word found already changed is reported at once, paused or not, and
     * needed no spin, so the pause goes on. */
    fs_store_u32(&word, 1);
    EXPECT(fs_spin_while(&word, 0, FS_NO_DEADLINE, MS(5)));
    fs_store_u32(&word, 0);
    EXPECT(failing_spin_ms(&word, MS(5)) < 4);
    /* The try failed, so the next comes after twice as many calls; it
     * spins, sees the change, and so ends the pause.  That try's budget is
     * long so that a changer the scheduler runs late still comes in time. */
    test_thread_start(&changer, change_while_spun_on, &word);
    while (!fs_spin_while(&word, 0, FS_NO_DEADLINE, MS(500)) && calls < 100)
        calls++;
    test_thread_join(&changer);
    EXPECT_EQ_INT(calls, 30);
    fs_store_u32(&word, 0);
    EXPECT(failing_spin_ms(&word, MS(5)) >= 5);
    return NULL;
}

static void test_spin_pauses_after_failures(void)
{
    test_thread t;
    test_thread_start(&t, spin_pause_job, NULL);
    test_thread_join(&t);
}

/* The concurrent tests again, with waiters that spin first. */
static void run_spinning(test_fn fn)
{
    test_spin_ns = MS(1) / 20;
    fn();
    test_spin_ns = 0;
}
static void test_lock_timeout_not_early_spinning(void) { run_spinning(test_lock_timeout_not_early); }
static void test_lock_mutual_exclusion_spinning(void) { run_spinning(test_lock_mutual_exclusion); }
static void test_lock_mutual_exclusion_short_timeouts_spinning(void)
{ run_spinning(test_lock_mutual_exclusion_short_timeouts); }
static void test_lock_handoff_spinning(void) { run_spinning(test_lock_handoff); }
static void test_event_basics_spinning(void) { run_spinning(test_event_basics); }
static void test_event_set_wakes_all_waiters_spinning(void)
{ run_spinning(test_event_set_wakes_all_waiters); }
static void test_event_set_then_clear_still_wakes_spinning(void)
{ run_spinning(test_event_set_then_clear_still_wakes); }
static void test_event_ping_pong_spinning(void) { run_spinning(test_event_ping_pong); }
static void test_semaphore_slots_spinning(void) { run_spinning(test_semaphore_slots); }

void run_core_tests(void)
{
    RUN(test_monotonic_clock, 5);
    RUN(test_deadline_after_saturates, 5);
    RUN(test_wait_returns_when_value_differs, 5);
    RUN(test_wait_timeout_not_early, 10);
    RUN(test_wait_far_deadline, 5);
    RUN(test_wake_one_wakes_exactly_one, 15);
    RUN(test_wake_is_per_address, 15);
    RUN(test_lock_basics, 5);
    RUN(test_lock_timeout_not_early, 10);
    RUN(test_lock_mutual_exclusion, 20);
    RUN(test_lock_mutual_exclusion_short_timeouts, 20);
    RUN(test_lock_handoff, 20);
    RUN(test_lock_waiter_is_handed_the_lock, 20);
    RUN(test_lock_wait_for_release, 15);
    RUN(test_lock_handoff_ask_withdrawn, 5);
    RUN(test_lock_release_refused_while_handed, 5);
    RUN(test_lock_askers_served_in_order, 15);
    RUN(test_lock_asker_withdrawn_from_middle, 15);
    RUN(test_lock_dozer_that_gives_up_passes_the_wake_on, 5);
#if !defined(_WIN32)
    RUN(test_lock_handoff_dropped_after_fork, 5);
#endif
    RUN(test_cond_queue_order, 5);
    RUN(test_rlock_helpers, 5);
    RUN(test_semaphore_counts, 5);
    RUN(test_semaphore_slots, 20);
    RUN(test_event_basics, 10);
    RUN(test_event_generation_rule_single_thread, 5);
    RUN(test_event_set_wakes_all_waiters, 15);
    RUN(test_event_set_then_clear_still_wakes, 15);
    RUN(test_event_ping_pong, 20);
    RUN(test_spin_sees_a_change_nobody_wakes, 10);
    RUN(test_spin_ends_at_the_deadline, 5);
    RUN(test_spin_runs_for_its_budget, 5);
    RUN(test_spin_limit, 5);
    RUN(test_spin_pauses_after_failures, 10);
    RUN(test_lock_timeout_not_early_spinning, 10);
    RUN(test_lock_mutual_exclusion_spinning, 20);
    RUN(test_lock_mutual_exclusion_short_timeouts_spinning, 20);
    RUN(test_lock_handoff_spinning, 20);
    RUN(test_event_basics_spinning, 10);
    RUN(test_event_set_wakes_all_waiters_spinning, 15);
    RUN(test_event_set_then_clear_still_wakes_spinning, 15);
    RUN(test_event_ping_pong_spinning, 20);
    RUN(test_semaphore_slots_spinning, 20);
}
