/* Interrupted waits, on every platform: an interrupt ends a blocked wait,
 * lock acquisition or event wait, a storm of them loses no wake-up, and a
 * waiter that quits on an interrupt does not swallow a wake-up meant for the
 * next one.  How a thread is interrupted is the platform suite's business
 * (see harness.h): POSIX sends it SIGUSR1 (test_posix.c); Windows signals
 * the registered interrupt event, CPython's SIGINT event in real use
 * (test_win32.c).  The platform suite sets that up, then calls
 * run_interrupt_tests(). */
#include "harness.h"

#include <string.h>

/* ---- an interrupt ends a blocked call --------------------------------------- */

enum { BLOCK_IN_WAIT, BLOCK_IN_LOCK, BLOCK_IN_EVENT };

typedef struct {
    int kind;
    fs_atomic_u32 word;
    fs_lock lock;
    fs_event event;
    fs_atomic_u32 started, done;
    int result;            /* fs_result or fs_result */
    double waited_ms;
} block_job;

static void block_job_init(block_job *job, int kind)
{
    job->kind = kind;
    fs_store_u32(&job->word, 0);
    fs_lock_init(&job->lock);
    fs_event_init(&job->event, 0);
}

static void *blocker(void *p)
{
    block_job *job = (block_job *)p;
    int64_t deadline = fs_deadline_after(MS(10000)), start;
    uint32_t observed = fs_event_state(&job->event);
    test_add_u32(&job->started, 1);
    start = fs_monotonic_ns();
    switch (job->kind) {
    case BLOCK_IN_WAIT:
        /* Loop over spurious wake-ups only. */
        do job->result = fs_wait(&job->word, 0, deadline);
        while (job->result == FS_OK && fs_load_u32(&job->word) == 0);
        break;
    case BLOCK_IN_LOCK:
        job->result = fs_lock_acquire_until(&job->lock, deadline, 0);
        break;
    default:
        job->result = fs_event_wait_until(&job->event, observed, deadline, 0);
        break;
    }
    job->waited_ms = test_ms_since(start);
    test_add_u32(&job->done, 1);
    return NULL;
}

/* Starts a thread that blocks, lets it park, and interrupts it (as the
 * platform needs) until it returns. */
static void run_blocker(block_job *job)
{
    test_thread t;
    int returned;
    fs_store_u32(&job->started, 0);
    fs_store_u32(&job->done, 0);
    test_thread_start(&t, blocker, job);
    EXPECT(test_wait_for_u32(&job->started, 1, 3000));
    test_sleep_ms(50);
    EXPECT_EQ_INT(fs_load_u32(&job->done), 0);
    returned = test_interrupt_until_done(&t, &job->done, 3000);
    EXPECT(returned);
    if (!returned) {
        /* Don't leave it blocked on our stack: wake it the ordinary way. */
        fs_store_u32(&job->word, 1);
        fs_wake_all(&job->word);
        fs_lock_release(&job->lock);
        fs_event_set(&job->event);
    }
    test_thread_join(&t);
    EXPECT(job->waited_ms < 3000);
}

static void test_interrupt_ends_wait(void)
{
    block_job job;
    block_job_init(&job, BLOCK_IN_WAIT);
    run_blocker(&job);
    EXPECT_EQ_INT(job.result, FS_INTERRUPTED);
}

static void test_interrupt_ends_lock_acquire(void)
{
    block_job job;
    block_job_init(&job, BLOCK_IN_LOCK);
    EXPECT(fs_lock_try_acquire(&job.lock));
    run_blocker(&job);
    EXPECT_EQ_INT(job.result, FS_INTERRUPTED);
    /* Nothing was acquired: still ours, and free after one release. */
    EXPECT(fs_lock_is_locked(&job.lock));
    EXPECT_EQ_INT(fs_lock_release(&job.lock), 1);
    EXPECT(fs_lock_try_acquire(&job.lock));
    EXPECT_EQ_INT(fs_lock_release(&job.lock), 1);
}

static void test_interrupt_ends_event_wait(void)
{
    block_job job;
    uint32_t observed;
    block_job_init(&job, BLOCK_IN_EVENT);
    observed = fs_event_state(&job.event);
    run_blocker(&job);
    EXPECT_EQ_INT(job.result, FS_INTERRUPTED);
    EXPECT(!fs_event_is_set(&job.event));
    /* The interrupted caller retries with its first observation; a set()
     * and clear() in between still count. */
    fs_event_set(&job.event);
    fs_event_clear(&job.event);
    EXPECT_EQ_INT(fs_event_wait_until(&job.event, observed, fs_deadline_after(MS(10)), 0),
                  FS_OK);
}

/* ---- no wake-up is lost to an interrupt --------------------------------------- */

/* Lock workers and an event ping-pong while another thread keeps
 * interrupting them: every interrupted call is retried like the Python layer
 * does (same deadline, same observed state), and nothing may be lost. */
#define STORM_LOCK_THREADS 3
#define STORM_TARGETS (STORM_LOCK_THREADS + 2)
#if defined(_WIN32)
/* Smaller: threads switch much more slowly under wine. */
#define STORM_ITERATIONS 30000
#define STORM_PING_ROUNDS 6000
#else
#define STORM_ITERATIONS 50000
#define STORM_PING_ROUNDS 10000
#endif

typedef struct {
    fs_lock lock;
    long counter;
    fs_event ping, pong, exit_gate;
    fs_atomic_u32 finished, stop_interrupts, interruptions;
    long thread_failures[STORM_TARGETS];
} storm_state;

typedef struct { storm_state *s; int index; } storm_arg;

static void storm_finish(storm_state *s, int index)
{
    test_add_u32(&s->finished, 1);
    /* Stay alive (and interruptible) until main stops the interrupts. */
    if (test_event_wait_counted(&s->exit_gate, fs_deadline_after(MS(15000)),
                                &s->interruptions) != FS_OK)
        s->thread_failures[index]++;
}

static void *storm_locker(void *p)
{
    storm_arg *a = (storm_arg *)p;
    storm_state *s = a->s;
    int i;
    for (i = 0; i < STORM_ITERATIONS; i++) {
        if (test_lock_acquire_counted(&s->lock, fs_deadline_after(MS(5000)),
                                      &s->interruptions) != FS_OK) {
            s->thread_failures[a->index]++;
            break;
        }
        s->counter++;
        fs_lock_release(&s->lock);
    }
    storm_finish(s, a->index);
    return NULL;
}

/* The pinger sets ping and waits for pong; the ponger waits for ping and
 * answers with pong. */
static void *storm_ping_ponger(void *p)
{
    storm_arg *a = (storm_arg *)p;
    storm_state *s = a->s;
    int pinger = a->index == STORM_LOCK_THREADS, i;
    fs_event *in = pinger ? &s->pong : &s->ping, *out = pinger ? &s->ping : &s->pong;
    for (i = 0; i < STORM_PING_ROUNDS; i++) {
        if (pinger)
            fs_event_set(out);
        if (test_event_wait_counted(in, fs_deadline_after(MS(5000)),
                                    &s->interruptions) != FS_OK) {
            s->thread_failures[a->index]++;
            break;
        }
        fs_event_clear(in);
        if (!pinger)
            fs_event_set(out);
    }
    storm_finish(s, a->index);
    return NULL;
}

typedef struct { storm_state *s; test_thread *targets; } interrupter_arg;

static void *storm_interrupter(void *p)
{
    interrupter_arg *a = (interrupter_arg *)p;
    int i = 0;
    while (!fs_load_u32(&a->s->stop_interrupts)) {
        test_interrupt_thread(&a->targets[i]);
        i = (i + 1) % STORM_TARGETS;
        if (i == 0)
            test_sleep_ms(1);
    }
    return NULL;
}

static void test_interrupt_storm_loses_no_wakeups(void)
{
    static storm_state s;
    storm_arg args[STORM_TARGETS];
    test_thread targets[STORM_TARGETS], interrupter;
    interrupter_arg ia;
    int i;
    memset(&s, 0, sizeof s);
    fs_lock_init(&s.lock);
    fs_event_init(&s.ping, 0);
    fs_event_init(&s.pong, 0);
    fs_event_init(&s.exit_gate, 0);
    test_interrupt_storm_begin();
    for (i = 0; i < STORM_TARGETS; i++) {
        args[i].s = &s;
        args[i].index = i;
        test_thread_start(&targets[i],
                          i < STORM_LOCK_THREADS ? storm_locker : storm_ping_ponger,
                          &args[i]);
    }
    ia.s = &s;
    ia.targets = targets;
    test_thread_start(&interrupter, storm_interrupter, &ia);
    EXPECT(test_wait_for_u32(&s.finished, STORM_TARGETS, 20000));
    fs_store_u32(&s.stop_interrupts, 1);
    test_thread_join(&interrupter);
    fs_event_set(&s.exit_gate);
    for (i = 0; i < STORM_TARGETS; i++) {
        test_thread_join(&targets[i]);
        EXPECT_EQ_INT(s.thread_failures[i], 0);
    }
    EXPECT_EQ_INT(s.counter, (long)STORM_LOCK_THREADS * STORM_ITERATIONS);
    test_interrupt_storm_end();
    test_note("%u waits interrupted", (unsigned)fs_load_u32(&s.interruptions));
}

/* ---- an interrupted waiter keeps its wake-up ------------------------------------ */

/* A wake-up that races with an interruption must not be lost.  A waiter
 * that gives up when interrupted (as a Python thread does when
 * KeyboardInterrupt propagates) must not swallow the one wake-up that
 * fs_lock_release sends: if the backend picked it, it reports WOKEN, retries
 * and takes the lock.  Otherwise the worker queued behind it would sleep to
 * its deadline.  Each round parks the quitters, then the worker (last, so a
 * FIFO wake-up picks a quitter), then interrupts the quitters and at once
 * releases the lock, so the wake-up tends to land while a quitter is on its
 * way out. */
#define ABANDON_ROUNDS 150
#define ABANDON_QUITTERS 3

typedef struct {
    fs_lock *lock;
    int quitter;
    fs_atomic_u32 *arrived;
    fs_result result;
    double waited_ms;
} abandon_job;

static void *abandon_thread(void *p)
{
    abandon_job *job = (abandon_job *)p;
    int64_t start = fs_monotonic_ns(), deadline = fs_deadline_after(MS(5000));
    fs_result r;
    test_add_u32(job->arrived, 1);
    r = fs_lock_acquire_until(job->lock, deadline, 0);
    while (r == FS_INTERRUPTED && !job->quitter)
        r = fs_lock_acquire_until(job->lock, deadline, 0);
    job->waited_ms = test_ms_since(start);
    job->result = r;
    if (r == FS_OK)
        fs_lock_release(job->lock);
    return NULL;
}

static void test_interrupted_waiter_keeps_its_wakeup(void)
{
    int round, i, interrupted = 0, slow = 0;
    double worst = 0;
    test_interrupt_storm_begin();
    for (round = 0; round < ABANDON_ROUNDS; round++) {
        fs_lock lock;
        fs_atomic_u32 arrived;
        abandon_job jobs[1 + ABANDON_QUITTERS];
        test_thread threads[1 + ABANDON_QUITTERS];
        fs_lock_init(&lock);
        fs_store_u32(&arrived, 0);
        EXPECT(fs_lock_try_acquire(&lock));
        for (i = 0; i <= ABANDON_QUITTERS; i++) {
            jobs[i].lock = &lock;
            jobs[i].quitter = i > 0;
            jobs[i].arrived = &arrived;
            jobs[i].result = (fs_result)-1;
        }
        for (i = 1; i <= ABANDON_QUITTERS; i++)
            test_thread_start(&threads[i], abandon_thread, &jobs[i]);
        EXPECT(test_wait_for_u32(&arrived, ABANDON_QUITTERS, 3000));
        test_sleep_ms(2);
        test_interrupt_exempt_begin();
        test_thread_start(&threads[0], abandon_thread, &jobs[0]);
        EXPECT(test_wait_for_u32(&arrived, 1 + ABANDON_QUITTERS, 3000));
        test_sleep_ms(2);
        test_interrupt_exempt_end();
        for (i = 1; i <= ABANDON_QUITTERS; i++)
            test_interrupt_thread(&threads[i]);
        fs_lock_release(&lock);
        for (i = 0; i <= ABANDON_QUITTERS; i++)
            test_thread_join(&threads[i]);
        EXPECT_EQ_INT(jobs[0].result, FS_OK);
        if (jobs[0].waited_ms > worst)
            worst = jobs[0].waited_ms;
        if (jobs[0].waited_ms > 2000)
            slow++;
        for (i = 1; i <= ABANDON_QUITTERS; i++) {
            EXPECT(jobs[i].result == FS_OK || jobs[i].result == FS_INTERRUPTED);
            interrupted += jobs[i].result == FS_INTERRUPTED;
        }
        EXPECT(!fs_lock_is_locked(&lock));
        if (slow)
            break;
    }
    test_interrupt_storm_end();   /* a quitter that took the lock left its interrupt */
    EXPECT_EQ_INT(slow, 0);
    test_note("%d quitters interrupted, worker waited at most %.1f ms", interrupted, worst);
}

/* A waiter woken by a release that finds the lock retaken, and may not ask
 * for a hand-off yet, sleeps on without the waiters' mark (the release
 * cleared it).  Interrupted there, it must pass the wake-up on, or the
 * waiter asleep behind it sleeps on while the lock goes free. */
static void test_interrupted_dozer_passes_the_wakeup_on(void)
{
    fs_lock lock;
    test_lock_sleeper first, second;
    fs_lock_init(&lock);
    EXPECT(fs_lock_try_acquire(&lock));
    /* The first may not ask for a minute: its wait "began" in the future. */
    test_lock_sleeper_start(&first, &lock, fs_monotonic_ns() + MS(60000), MS(60000));
    test_interrupt_exempt_begin();
    test_lock_sleeper_start(&second, &lock, 0, MS(60000));
    test_interrupt_exempt_end();
    test_lock_release_and_retake(&lock);
    test_sleep_ms(20);
    EXPECT(test_interrupt_until_done(&first.thread, &first.done, 3000));
    test_thread_join(&first.thread);
    EXPECT_EQ_INT(first.result, FS_INTERRUPTED);
    test_lock_sleeper_expect_woken(&second, &lock);
}

void run_interrupt_tests(void)
{
    RUN(test_interrupt_ends_wait, 10);
    RUN(test_interrupt_ends_lock_acquire, 10);
    RUN(test_interrupt_ends_event_wait, 10);
    RUN(test_interrupt_storm_loses_no_wakeups, 30);
    RUN(test_interrupted_waiter_keeps_its_wakeup, 30);
    RUN(test_interrupted_dozer_passes_the_wakeup_on, 20);
}
