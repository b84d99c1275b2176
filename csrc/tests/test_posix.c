/* POSIX only (futex and posix backends): signals interrupt blocked waits, no
 * wake-up is lost to a signal, fork() leaves a working child, and threads give
 * their wait resources back when they exit. */
#if !defined(_WIN32)
#if !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include "harness.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__SANITIZE_THREAD__)
#  define UNDER_TSAN 1
#elif defined(__has_feature)
#  if __has_feature(thread_sanitizer)
#    define UNDER_TSAN 1
#  endif
#endif

static fs_atomic_u32 signals_handled;

static void on_sigusr1(int sig)
{
    (void)sig;
    test_add_u32(&signals_handled, 1);   /* lock-free atomics: signal-safe */
}

static void install_handler(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigusr1;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;                     /* no SA_RESTART, as Python does */
    sigaction(SIGUSR1, &sa, NULL);
}

static pthread_t tid_of(test_thread *t) { return *(pthread_t *)t->handle; }

void test_interrupt_thread(test_thread *t) { pthread_kill(tid_of(t), SIGUSR1); }
void test_interrupt_exempt_begin(void) {}
void test_interrupt_exempt_end(void) {}

/* ---- a signal interrupts a blocked wait ------------------------------------- */

enum { BLOCK_IN_WAIT, BLOCK_IN_LOCK, BLOCK_IN_EVENT };

typedef struct {
    int kind;
    fs_atomic_u32 word;
    fs_lock lock;
    fs_event event;
    fs_atomic_u32 started, done;
    int result;            /* fs_wait_result or fs_result */
    double waited_ms;
    uint32_t handled_before;
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
        /* Loop over spurious wake-ups only. */
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

/* Starts a blocked thread and signals it (again every 20 ms, in case the
 * first signal came before it blocked) until it returns. */
static void run_blocker(block_job *job)
{
    test_thread t;
    int64_t give_up;
    fs_store_u32(&job->started, 0);
    fs_store_u32(&job->done, 0);
    job->handled_before = fs_load_u32(&signals_handled);
    test_thread_start(&t, blocker, job);
    EXPECT(test_wait_for_u32(&job->started, 1, 3000));
    test_sleep_ms(30);
    EXPECT_EQ_INT(fs_load_u32(&job->done), 0);
    give_up = fs_monotonic_ns() + MS(4000);
    while (!fs_load_u32(&job->done) && fs_monotonic_ns() < give_up) {
        pthread_kill(tid_of(&t), SIGUSR1);
        test_wait_for_u32(&job->done, 1, 20);
    }
    test_thread_join(&t);
    EXPECT(fs_load_u32(&signals_handled) > job->handled_before);
    EXPECT(job->waited_ms < 4000);
}

static void test_signal_interrupts_wait(void)
{
    block_job job;
    job.kind = BLOCK_IN_WAIT;
    fs_store_u32(&job.word, 0);
    run_blocker(&job);
    EXPECT_EQ_INT(job.result, FS_WAIT_INTERRUPTED);
}

static void test_signal_interrupts_lock_acquire(void)
{
    block_job job;
    job.kind = BLOCK_IN_LOCK;
    fs_lock_init(&job.lock);
    EXPECT(fs_lock_try_acquire(&job.lock));
    run_blocker(&job);
    EXPECT_EQ_INT(job.result, FS_INTERRUPTED);
    /* Nothing was acquired: still ours, and free after one release. */
    EXPECT(fs_lock_is_locked(&job.lock));
    EXPECT_EQ_INT(fs_lock_release(&job.lock), 1);
    EXPECT(fs_lock_try_acquire(&job.lock));
    EXPECT_EQ_INT(fs_lock_release(&job.lock), 1);
}

static void test_signal_interrupts_event_wait(void)
{
    block_job job;
    uint32_t observed;
    job.kind = BLOCK_IN_EVENT;
    fs_event_init(&job.event, 0);
    observed = fs_event_state(&job.event);
    run_blocker(&job);
    EXPECT_EQ_INT(job.result, FS_INTERRUPTED);
    EXPECT(!fs_event_is_set(&job.event));
    /* The interrupted caller retries with its first observation; a set()
     * and clear() in between still count. */
    fs_event_set(&job.event);
    fs_event_clear(&job.event);
    EXPECT_EQ_INT(fs_event_wait_until(&job.event, observed, fs_deadline_after(MS(10))),
                  FS_ACQUIRED);
}

/* ---- no wake-up is lost to a signal ----------------------------------------- */

#define STORM_LOCK_THREADS 3
#define STORM_ITERATIONS 50000
#define STORM_PING_ROUNDS 10000
#define STORM_TARGETS (STORM_LOCK_THREADS + 2)

typedef struct {
    fs_lock lock;
    long counter;
    fs_event ping, pong, exit_gate;
    fs_atomic_u32 finished, stop_signals, interruptions;
    long failures;           /* written by main only after joins */
    long thread_failures[STORM_TARGETS];
} storm_state;

typedef struct { storm_state *s; int index; } storm_arg;

/* Like the Python layer: on FS_INTERRUPTED, call again with the same
 * deadline (and, for events, the same observed state). */
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

static void storm_finish(storm_state *s, int index)
{
    test_add_u32(&s->finished, 1);
    /* Stay alive (and signalable) until main stops the signals. */
    if (storm_event_wait(s, &s->exit_gate, fs_deadline_after(MS(15000))) != FS_ACQUIRED)
        s->thread_failures[index]++;
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
    storm_finish(s, a->index);
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
    storm_finish(s, a->index);
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
    storm_finish(s, a->index);
    return NULL;
}

typedef struct { storm_state *s; test_thread *targets; } signaller_arg;

static void *storm_signaller(void *p)
{
    signaller_arg *a = (signaller_arg *)p;
    int i = 0;
    while (!fs_load_u32(&a->s->stop_signals)) {
        pthread_kill(tid_of(&a->targets[i]), SIGUSR1);
        i = (i + 1) % STORM_TARGETS;
        if (i == 0)
            test_sleep_ms(1);
    }
    return NULL;
}

static void test_signal_storm_loses_no_wakeups(void)
{
    static storm_state s;
    storm_arg args[STORM_TARGETS];
    test_thread targets[STORM_TARGETS], signaller;
    signaller_arg sa;
    uint32_t handled_before = fs_load_u32(&signals_handled);
    int i;
    memset(&s, 0, sizeof s);
    fs_lock_init(&s.lock);
    fs_event_init(&s.ping, 0);
    fs_event_init(&s.pong, 0);
    fs_event_init(&s.exit_gate, 0);
    for (i = 0; i < STORM_TARGETS; i++) {
        args[i].s = &s;
        args[i].index = i;
        test_thread_start(&targets[i],
                          i < STORM_LOCK_THREADS ? storm_locker
                          : i == STORM_LOCK_THREADS ? storm_pinger : storm_ponger,
                          &args[i]);
    }
    sa.s = &s;
    sa.targets = targets;
    test_thread_start(&signaller, storm_signaller, &sa);
    EXPECT(test_wait_for_u32(&s.finished, STORM_TARGETS, 20000));
    fs_store_u32(&s.stop_signals, 1);
    test_thread_join(&signaller);
    fs_event_set(&s.exit_gate);
    for (i = 0; i < STORM_TARGETS; i++) {
        test_thread_join(&targets[i]);
        EXPECT_EQ_INT(s.thread_failures[i], 0);
    }
    EXPECT_EQ_INT(s.counter, (long)STORM_LOCK_THREADS * STORM_ITERATIONS);
    EXPECT(fs_load_u32(&signals_handled) > handled_before);
    test_note("%u signals handled, %u waits interrupted",
              (unsigned)(fs_load_u32(&signals_handled) - handled_before),
              (unsigned)fs_load_u32(&s.interruptions));
}

/* ---- fork ------------------------------------------------------------------- */

/* The parent keeps two threads ping-ponging through fork() (so a bucket lock
 * may be held at that moment); the child re-initialises the same events, so
 * they hash to the same buckets, and ping-pongs on them with a new thread
 * while its main thread blocks; meanwhile the parent's main thread blocks
 * too.  A pipe shared between the two processes would make one of them steal
 * the other's wake-ups. */
typedef struct {
    fs_event ping, pong;
    fs_atomic_u32 stop;      /* main -> pinger: finish after this round */
    fs_atomic_u32 quit;      /* pinger -> ponger, sent with a last ping */
    fs_atomic_u32 failures;
} fork_ping;

static void *fork_ponger(void *p)
{
    fork_ping *s = (fork_ping *)p;
    for (;;) {
        if (test_event_wait(&s->ping, fs_deadline_after(MS(3000))) != FS_ACQUIRED) {
            test_add_u32(&s->failures, 1);
            break;
        }
        if (fs_load_u32(&s->quit))
            break;
        fs_event_clear(&s->ping);
        fs_event_set(&s->pong);
    }
    return NULL;
}

static int fork_pinger_round(fork_ping *s)
{
    fs_event_set(&s->ping);
    if (test_event_wait(&s->pong, fs_deadline_after(MS(3000))) != FS_ACQUIRED)
        return 0;
    fs_event_clear(&s->pong);
    return 1;
}

static void fork_ping_quit(fork_ping *s)
{
    fs_store_u32(&s->quit, 1);
    fs_event_set(&s->ping);
}

static void *fork_pinger(void *p)
{
    fork_ping *s = (fork_ping *)p;
    while (!fs_load_u32(&s->stop)) {
        if (!fork_pinger_round(s)) {
            test_add_u32(&s->failures, 1);
            break;
        }
    }
    fork_ping_quit(s);
    return NULL;
}

static void fork_ping_init(fork_ping *s)
{
    fs_event_init(&s->ping, 0);
    fs_event_init(&s->pong, 0);
    fs_store_u32(&s->stop, 0);
    fs_store_u32(&s->quit, 0);
    fs_store_u32(&s->failures, 0);
}

static int child_work(fork_ping *s, int call_hook)
{
    test_thread t;
    int i, ok = 1;
    fs_atomic_u32 word;
    int64_t deadline;
    alarm(5);                        /* the parent's watchdog does not cover us */
    /* The backend's own atfork handler must suffice; calling the hook as well
     * (as the Python layer does) must be harmless. */
    if (call_hook)
        fs_wait_after_fork_child();
    fork_ping_init(s);
    test_thread_start(&t, fork_ponger, s);
    for (i = 0; i < 200 && ok; i++)
        ok = fork_pinger_round(s);
    fork_ping_quit(s);
    test_thread_join(&t);
    ok = ok && fs_load_u32(&s->failures) == 0;
    fs_store_u32(&word, 0);
    deadline = fs_deadline_after(MS(5));
    while (fs_wait(&word, 0, deadline) == FS_WAIT_WOKEN) {}
    return ok && fs_monotonic_ns() >= deadline;
}

static void test_fork_child_can_wait(void)
{
    static fork_ping s;
    test_thread pinger, ponger;
    fs_atomic_u32 idle;
    int round, forks = 12;
    fs_store_u32(&idle, 0);
    fork_ping_init(&s);
    test_thread_start(&ponger, fork_ponger, &s);
    test_thread_start(&pinger, fork_pinger, &s);
    for (round = 0; round < forks; round++) {
        int status = -1, reaped = 0;
        int64_t give_up;
        pid_t pid;
        /* Make sure this thread owns wait resources before forking. */
        while (fs_wait(&idle, 0, fs_deadline_after(MS(1))) == FS_WAIT_WOKEN) {}
        pid = fork();
        if (pid == 0)
            _exit(child_work(&s, round % 2) ? 0 : 1);
        EXPECT(pid > 0);
        if (pid < 0)
            break;
        give_up = fs_monotonic_ns() + MS(6000);
        while (fs_monotonic_ns() < give_up) {
            pid_t got = waitpid(pid, &status, WNOHANG);
            if (got == pid) {
                reaped = 1;
                break;
            }
            /* Block in fs_wait meanwhile, on this thread's own resources. */
            while (fs_wait(&idle, 0, fs_deadline_after(MS(2))) == FS_WAIT_WOKEN) {}
        }
        if (!reaped) {
            test_note("child %d still running: killing it", (int)pid);
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
        }
        EXPECT(reaped);
        EXPECT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        if (!reaped || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
            break;
    }
    fs_store_u32(&s.stop, 1);
    test_thread_join(&pinger);
    test_thread_join(&ponger);
    EXPECT_EQ_INT(fs_load_u32(&s.failures), 0);
}

/* ---- threads give back what they used --------------------------------------- */

static int lowest_free_fd(void)
{
    int fd = dup(0);
    if (fd >= 0)
        close(fd);
    return fd;
}

static void *block_briefly(void *p)
{
    fs_atomic_u32 word;
    int64_t deadline = fs_deadline_after(MS(2));
    (void)p;
    fs_store_u32(&word, 0);
    while (fs_wait(&word, 0, deadline) == FS_WAIT_WOKEN) {}
    return NULL;
}

static void test_thread_exit_releases_resources(void)
{
    test_thread threads[16];
    int i, round, before = lowest_free_fd();
    for (round = 0; round < 5; round++) {
        for (i = 0; i < 16; i++)
            test_thread_start(&threads[i], block_briefly, NULL);
        for (i = 0; i < 16; i++)
            test_thread_join(&threads[i]);
    }
    EXPECT_EQ_INT(lowest_free_fd(), before);
}

void run_posix_tests(void)
{
    install_handler();
    RUN(test_signal_interrupts_wait, 10);
    RUN(test_signal_interrupts_lock_acquire, 10);
    RUN(test_signal_interrupts_event_wait, 10);
    RUN(test_signal_storm_loses_no_wakeups, 30);
    RUN(test_interrupted_waiter_keeps_its_wakeup, 30);
#if defined(UNDER_TSAN)
    (void)test_fork_child_can_wait;
    test_skip("test_fork_child_can_wait", "ThreadSanitizer cannot start threads in a forked child");
#else
    RUN(test_fork_child_can_wait, 30);
#endif
    RUN(test_thread_exit_releases_resources, 10);
}

#else
#include "harness.h"
void run_posix_tests(void) {}
#endif
