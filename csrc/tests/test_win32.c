/* Windows only: the interrupt event registered with
 * fs_wait_set_interrupt_event (CPython's SIGINT event in real use) interrupts
 * blocked waits, is consumed so the next wait blocks again, and never makes a
 * waiter lose a wake-up. */
#if defined(_WIN32)
#include "harness.h"

#include <string.h>
#include <windows.h>

static HANDLE interrupt;   /* manual-reset, like CPython's */

void test_interrupt_thread(test_thread *t) { (void)t; SetEvent(interrupt); }
/* A wait reads the registered event when it starts, so a thread that starts
 * waiting while none is registered ignores it for that wait. */
void test_interrupt_exempt_begin(void) { fs_wait_set_interrupt_event(NULL); }
void test_interrupt_exempt_end(void) { fs_wait_set_interrupt_event(interrupt); }

static int event_is_signalled(HANDLE h)
{ return WaitForSingleObject(h, 0) == WAIT_OBJECT_0; }

enum { BLOCK_IN_WAIT, BLOCK_IN_LOCK, BLOCK_IN_EVENT };

typedef struct {
    int kind;
    fs_atomic_u32 word;
    fs_lock lock;
    fs_event event;
    fs_atomic_u32 started, done;
    int result;
    double waited_ms;
} block_job;

static void *blocker(void *p)
{
    block_job *job = (block_job *)p;
    int64_t deadline = fs_deadline_after(MS(10000)), start;
    uint32_t observed = fs_event_state(&job->event);
    test_add_u32(&job->started, 1);
    start = fs_monotonic_ns();
    switch (job->kind) {
    case BLOCK_IN_WAIT:
        do job->result = fs_wait(&job->word, 0, deadline);
        while (job->result == FS_WAIT_WOKEN && fs_load_u32(&job->word) == 0);
        break;
    case BLOCK_IN_LOCK:
        job->result = fs_lock_acquire_until(&job->lock, deadline);
        break;
    default:
        job->result = fs_event_wait_until(&job->event, observed, deadline);
        break;
    }
    job->waited_ms = test_ms_since(start);
    test_add_u32(&job->done, 1);
    return NULL;
}

/* Starts a blocked thread, lets it park, signals the interrupt event once. */
static void run_blocker(block_job *job)
{
    test_thread t;
    fs_store_u32(&job->started, 0);
    fs_store_u32(&job->done, 0);
    test_thread_start(&t, blocker, job);
    EXPECT(test_wait_for_u32(&job->started, 1, 3000));
    test_sleep_ms(50);
    EXPECT_EQ_INT(fs_load_u32(&job->done), 0);
    SetEvent(interrupt);
    EXPECT(test_wait_for_u32(&job->done, 1, 3000));
    if (!fs_load_u32(&job->done)) {
        /* Don't leave it blocked on our stack: wake it the ordinary way. */
        fs_store_u32(&job->word, 1);
        fs_wake_all(&job->word);
        fs_lock_release(&job->lock);
        fs_event_set(&job->event);
    }
    test_thread_join(&t);
    EXPECT(job->waited_ms < 3000);
    EXPECT(!event_is_signalled(interrupt));    /* consumed by the waiter */
}

static void test_interrupt_event_interrupts_wait(void)
{
    block_job job;
    job.kind = BLOCK_IN_WAIT;
    fs_store_u32(&job.word, 0);
    fs_lock_init(&job.lock);
    fs_event_init(&job.event, 0);
    run_blocker(&job);
    EXPECT_EQ_INT(job.result, FS_WAIT_INTERRUPTED);
}

static void test_interrupt_event_interrupts_lock_acquire(void)
{
    block_job job;
    job.kind = BLOCK_IN_LOCK;
    fs_store_u32(&job.word, 0);
    fs_lock_init(&job.lock);
    fs_event_init(&job.event, 0);
    EXPECT(fs_lock_try_acquire(&job.lock));
    run_blocker(&job);
    EXPECT_EQ_INT(job.result, FS_INTERRUPTED);
    EXPECT(fs_lock_is_locked(&job.lock));
    EXPECT_EQ_INT(fs_lock_release(&job.lock), 1);
    EXPECT(fs_lock_try_acquire(&job.lock));
    EXPECT_EQ_INT(fs_lock_release(&job.lock), 1);
}

static void test_interrupt_event_interrupts_event_wait(void)
{
    block_job job;
    uint32_t observed;
    job.kind = BLOCK_IN_EVENT;
    fs_store_u32(&job.word, 0);
    fs_lock_init(&job.lock);
    fs_event_init(&job.event, 0);
    observed = fs_event_state(&job.event);
    run_blocker(&job);
    EXPECT_EQ_INT(job.result, FS_INTERRUPTED);
    EXPECT(!fs_event_is_set(&job.event));
    fs_event_set(&job.event);
    fs_event_clear(&job.event);
    EXPECT_EQ_INT(fs_event_wait_until(&job.event, observed, fs_deadline_after(MS(10))),
                  FS_ACQUIRED);
}

static void test_stale_interrupt_reported_once(void)
{
    /* Left signalled by an earlier Ctrl-C: one FS_WAIT_INTERRUPTED, then the
     * next wait really blocks (no busy loop). */
    fs_atomic_u32 word;
    int64_t deadline, start;
    fs_store_u32(&word, 0);
    SetEvent(interrupt);
    start = fs_monotonic_ns();
    EXPECT_EQ_INT(fs_wait(&word, 0, fs_deadline_after(MS(2000))), FS_WAIT_INTERRUPTED);
    EXPECT(fs_monotonic_ns() - start < MS(1000));
    EXPECT(!event_is_signalled(interrupt));
    deadline = fs_deadline_after(MS(50));
    EXPECT_EQ_INT(fs_wait(&word, 0, deadline), FS_WAIT_TIMED_OUT);
    EXPECT(fs_monotonic_ns() >= deadline);
    /* Not consulted when the word already differs. */
    SetEvent(interrupt);
    EXPECT_EQ_INT(fs_wait(&word, 1, fs_deadline_after(MS(50))), FS_WAIT_WOKEN);
    EXPECT(event_is_signalled(interrupt));
    ResetEvent(interrupt);
}

static void test_unregistered_event_is_ignored(void)
{
    fs_atomic_u32 word;
    int64_t deadline;
    fs_store_u32(&word, 0);
    fs_wait_set_interrupt_event(NULL);
    SetEvent(interrupt);
    deadline = fs_deadline_after(MS(40));
    EXPECT_EQ_INT(fs_wait(&word, 0, deadline), FS_WAIT_TIMED_OUT);
    EXPECT(fs_monotonic_ns() >= deadline);
    EXPECT(event_is_signalled(interrupt));      /* left alone */
    ResetEvent(interrupt);
    fs_wait_set_interrupt_event(interrupt);
}

/* Lock workers and an event ping-pong while another thread keeps signalling
 * the interrupt event: every interrupted call is retried like the Python
 * layer does, and nothing may be lost. */
#define STORM_LOCK_THREADS 3
#define STORM_ITERATIONS 30000
#define STORM_PING_ROUNDS 6000
#define STORM_THREADS (STORM_LOCK_THREADS + 2)

typedef struct {
    fs_lock lock;
    long counter;
    fs_event ping, pong;
    fs_atomic_u32 finished, stop, interruptions;
    long thread_failures[STORM_THREADS];
} storm_state;

typedef struct { storm_state *s; int index; } storm_arg;

static fs_result storm_lock(storm_state *s, int64_t deadline)
{
    fs_result r;
    if (fs_lock_try_acquire(&s->lock))
        return FS_ACQUIRED;
    while ((r = fs_lock_acquire_until(&s->lock, deadline)) == FS_INTERRUPTED)
        test_add_u32(&s->interruptions, 1);
    return r;
}

static fs_result storm_event_wait(storm_state *s, fs_event *e, int64_t deadline)
{
    fs_result r;
    uint32_t observed = fs_event_state(e);
    if (observed & FS_EVENT_SET)
        return FS_ACQUIRED;
    while ((r = fs_event_wait_until(e, observed, deadline)) == FS_INTERRUPTED)
        test_add_u32(&s->interruptions, 1);
    return r;
}

static void *storm_locker(void *p)
{
    storm_arg *a = (storm_arg *)p;
    storm_state *s = a->s;
    int i;
    for (i = 0; i < STORM_ITERATIONS; i++) {
        if (storm_lock(s, fs_deadline_after(MS(5000))) != FS_ACQUIRED) {
            s->thread_failures[a->index]++;
            break;
        }
        s->counter++;
        fs_lock_release(&s->lock);
    }
    test_add_u32(&s->finished, 1);
    return NULL;
}

static void *storm_pinger(void *p)
{
    storm_arg *a = (storm_arg *)p;
    storm_state *s = a->s;
    int i;
    for (i = 0; i < STORM_PING_ROUNDS; i++) {
        fs_event_set(&s->ping);
        if (storm_event_wait(s, &s->pong, fs_deadline_after(MS(5000))) != FS_ACQUIRED) {
            s->thread_failures[a->index]++;
            break;
        }
        fs_event_clear(&s->pong);
    }
    test_add_u32(&s->finished, 1);
    return NULL;
}

static void *storm_ponger(void *p)
{
    storm_arg *a = (storm_arg *)p;
    storm_state *s = a->s;
    int i;
    for (i = 0; i < STORM_PING_ROUNDS; i++) {
        if (storm_event_wait(s, &s->ping, fs_deadline_after(MS(5000))) != FS_ACQUIRED) {
            s->thread_failures[a->index]++;
            break;
        }
        fs_event_clear(&s->ping);
        fs_event_set(&s->pong);
    }
    test_add_u32(&s->finished, 1);
    return NULL;
}

static void *storm_ringer(void *p)
{
    storm_state *s = (storm_state *)p;
    while (!fs_load_u32(&s->stop)) {
        SetEvent(interrupt);
        Sleep(1);
    }
    return NULL;
}

static void test_interrupt_storm_loses_no_wakeups(void)
{
    static storm_state s;
    storm_arg args[STORM_THREADS];
    test_thread threads[STORM_THREADS], ringer;
    int i;
    memset(&s, 0, sizeof s);
    fs_lock_init(&s.lock);
    fs_event_init(&s.ping, 0);
    fs_event_init(&s.pong, 0);
    for (i = 0; i < STORM_THREADS; i++) {
        args[i].s = &s;
        args[i].index = i;
        test_thread_start(&threads[i],
                          i < STORM_LOCK_THREADS ? storm_locker
                          : i == STORM_LOCK_THREADS ? storm_pinger : storm_ponger,
                          &args[i]);
    }
    test_thread_start(&ringer, storm_ringer, &s);
    EXPECT(test_wait_for_u32(&s.finished, STORM_THREADS, 20000));
    fs_store_u32(&s.stop, 1);
    test_thread_join(&ringer);
    for (i = 0; i < STORM_THREADS; i++) {
        test_thread_join(&threads[i]);
        EXPECT_EQ_INT(s.thread_failures[i], 0);
    }
    EXPECT_EQ_INT(s.counter, (long)STORM_LOCK_THREADS * STORM_ITERATIONS);
    ResetEvent(interrupt);
    test_note("%u waits interrupted", (unsigned)fs_load_u32(&s.interruptions));
}

void run_win32_tests(void)
{
    interrupt = CreateEventW(NULL, TRUE, FALSE, NULL);   /* manual-reset */
    if (interrupt == NULL) {
        test_skip("win32 interrupt tests", "CreateEvent failed");
        return;
    }
    fs_wait_set_interrupt_event(interrupt);
    RUN(test_interrupt_event_interrupts_wait, 10);
    RUN(test_interrupt_event_interrupts_lock_acquire, 10);
    RUN(test_interrupt_event_interrupts_event_wait, 10);
    RUN(test_stale_interrupt_reported_once, 10);
    RUN(test_unregistered_event_is_ignored, 10);
    RUN(test_interrupt_storm_loses_no_wakeups, 30);
    RUN(test_interrupted_waiter_keeps_its_wakeup, 30);
    ResetEvent(interrupt);
    fs_wait_set_interrupt_event(NULL);
    CloseHandle(interrupt);
}

#else
#include "harness.h"
void run_win32_tests(void) {}
#endif
