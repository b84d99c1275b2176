/* POSIX only (futex and posix backends): SIGUSR1 interrupts blocked waits
 * (the scenarios are in test_interrupt.c; this file says how to send the
 * signal and how to tell it arrived), fork() leaves a working child, and
 * threads give their wait resources back when they exit. */
#if !defined(_WIN32)
#if !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include "harness.h"

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

/* ---- the interrupt hooks of test_interrupt.c -------------------------------- */

void test_interrupt_thread(test_thread *t) { pthread_kill(tid_of(t), SIGUSR1); }
void test_interrupt_exempt_begin(void) {}
void test_interrupt_exempt_end(void) {}

int test_interrupt_until_done(test_thread *t, fs_atomic_u32 *done, int timeout_ms)
{
    uint32_t handled_before = fs_load_u32(&signals_handled);
    int64_t give_up = fs_monotonic_ns() + MS(timeout_ms);
    /* Again every 20 ms: a signal that lands before the thread blocks only
     * runs the handler (a known limit of both POSIX backends; see
     * csrc/DESIGN.md). */
    while (!fs_load_u32(done) && fs_monotonic_ns() < give_up) {
        test_interrupt_thread(t);
        test_wait_for_u32(done, 1, 20);
    }
    EXPECT(fs_load_u32(&signals_handled) > handled_before);
    return fs_load_u32(done) != 0;
}

static uint32_t storm_handled_before;

void test_interrupt_storm_begin(void)
{
    storm_handled_before = fs_load_u32(&signals_handled);
}

void test_interrupt_storm_end(void)
{
    uint32_t handled = fs_load_u32(&signals_handled) - storm_handled_before;
    EXPECT(handled > 0);
    test_note("%u signals handled", (unsigned)handled);
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
        if (test_event_wait(&s->ping, fs_deadline_after(MS(3000))) != FS_OK) {
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
    if (test_event_wait(&s->pong, fs_deadline_after(MS(3000))) != FS_OK)
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
        fs_after_fork_child();
    fork_ping_init(s);
    test_thread_start(&t, fork_ponger, s);
    for (i = 0; i < 200 && ok; i++)
        ok = fork_pinger_round(s);
    fork_ping_quit(s);
    test_thread_join(&t);
    ok = ok && fs_load_u32(&s->failures) == 0;
    fs_store_u32(&word, 0);
    deadline = fs_deadline_after(MS(5));
    while (fs_wait(&word, 0, deadline) == FS_OK) {}
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
        while (fs_wait(&idle, 0, fs_deadline_after(MS(1))) == FS_OK) {}
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
            while (fs_wait(&idle, 0, fs_deadline_after(MS(2))) == FS_OK) {}
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

/* ---- fork() in a signal handler, while the thread is parked ----------------- */

/* A thread blocked in fs_wait gets a signal whose handler forks.  In the
 * child its wait resumes when the handler returns, although the child's
 * after-fork handling has already dropped every waiter of the parent's,
 * this one included: the wait must end sanely without unlinking itself from
 * a list it is no longer in, and the child's waits must work afterwards.
 * Formally the handler may not fork here, since the wait layer's atfork
 * handlers take mutexes, which is not async-signal-safe; but no mutex of
 * the wait layer is held while a thread is blocked, so it works, and it is
 * what a program that forks from a handler (as crash reporters do) does. */
typedef struct {
    fs_atomic_u32 word;             /* what every thread here waits on */
    int wait_for_wake;              /* the handler forks only once woken */
    fs_atomic_u32 in_handler, woken, in_child;
    fs_atomic_u32 child_pid;
    fs_atomic_u32 parking, done;
    fs_result result;               /* the forking thread's wait, in the parent */
    test_thread thread;
} handler_fork;

static handler_fork *handler_fork_now;   /* the handler's only way in */

static void fork_in_handler(int sig)
{
    handler_fork *s = handler_fork_now;
    pid_t pid;
    (void)sig;
    fs_store_u32(&s->in_handler, 1);
    while (s->wait_for_wake && !fs_load_u32(&s->woken)) {}
    pid = fork();
    if (pid == 0) {
        fs_store_u32(&s->in_child, 1);
        alarm(5);                   /* the parent's watchdog does not cover us */
    } else {
        fs_store_u32(&s->child_pid, pid > 0 ? (uint32_t)pid : 0);
    }
}

static void *child_waker(void *p)
{
    handler_fork *s = (handler_fork *)p;
    while (!fs_load_u32(&s->done)) {
        fs_wake_one(&s->word);
        test_sleep_ms(1);
    }
    return NULL;
}

/* In the child, once the forking thread's wait has ended with `resumed`.
 * Returns the child's exit status. */
static int handler_fork_child_checks(handler_fork *s, fs_result resumed, fs_result expected)
{
    test_thread waker;
    fs_result fresh;
    if (resumed != expected)
        return 10 + (int)resumed;
    /* A fresh wait on the same word, in the same bucket: a thread of the
     * child's keeps waking it until it returns, which it does only if the
     * wait was linked where the waker looks. */
    fs_store_u32(&s->done, 0);
    test_thread_start(&waker, child_waker, s);
    fresh = fs_wait(&s->word, 0, fs_deadline_after(MS(2000)));
    fs_store_u32(&s->done, 1);
    test_thread_join(&waker);
    return fresh == FS_OK ? 0 : 20 + (int)fresh;
}

typedef struct { handler_fork *fork; fs_result expected_in_child; } forker_args;

static void *wait_then_fork(void *p)
{
    forker_args *args = (forker_args *)p;
    handler_fork *s = args->fork;
    fs_result result;
    fs_store_u32(&s->parking, 1);
    result = fs_wait(&s->word, 0, fs_deadline_after(MS(5000)));
    if (fs_load_u32(&s->in_child))
        _exit(handler_fork_child_checks(s, result, args->expected_in_child));
    s->result = result;
    fs_store_u32(&s->done, 1);
    return NULL;
}

static void *wait_on_word(void *p)
{
    handler_fork *s = (handler_fork *)p;
    int64_t deadline = fs_deadline_after(MS(10000));
    while (fs_wait(&s->word, 0, deadline) == FS_OK && fs_load_u32(&s->word) == 0) {}
    return NULL;
}

/* Expects the child to exit with status 0 within a few seconds. */
static void expect_child_exits_cleanly(pid_t pid)
{
    int status = -1, reaped = 0;
    int64_t give_up = fs_monotonic_ns() + MS(8000);
    while (!reaped && fs_monotonic_ns() < give_up) {
        reaped = waitpid(pid, &status, WNOHANG) == pid;
        if (!reaped)
            test_sleep_ms(2);
    }
    if (!reaped) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    EXPECT(reaped);
    if (WIFEXITED(status))
        EXPECT_EQ_INT(WEXITSTATUS(status), 0);
    else
        test_note("child ended by signal %d", WIFSIGNALED(status) ? WTERMSIG(status) : -1);
    EXPECT(WIFEXITED(status));
}

/* Runs the scenario: optionally another thread parks on the word first, the
 * forking thread parks after it, and gets the signal.  With wake_first, a
 * waker chooses the forking thread while its handler runs, before the fork,
 * so the child inherits a waiter that was woken but whose wake-up, sent to
 * a pipe the child closes, it will never see. */
static void run_handler_fork(int other_waiter_first, int wake_first,
                             fs_result expected_in_child, fs_result expected_in_parent)
{
    static handler_fork s;
    forker_args args;
    test_thread other;
    struct sigaction sa, old;
    memset(&s, 0, sizeof s);
    s.wait_for_wake = wake_first;
    handler_fork_now = &s;
    args.fork = &s;
    args.expected_in_child = expected_in_child;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fork_in_handler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR2, &sa, &old);

    if (other_waiter_first) {
        test_thread_start(&other, wait_on_word, &s);
        test_sleep_ms(50);          /* parked by now */
    }
    test_thread_start(&s.thread, wait_then_fork, &args);
    EXPECT(test_wait_for_u32(&s.parking, 1, 5000));
    test_sleep_ms(50);              /* parked by now, behind the other */
    pthread_kill(tid_of(&s.thread), SIGUSR2);
    if (wake_first) {
        EXPECT(test_wait_for_u32(&s.in_handler, 1, 5000));
        fs_wake_one(&s.word);
        fs_store_u32(&s.woken, 1);
    }
    EXPECT(test_wait_for_u32(&s.done, 1, 8000));
    test_thread_join(&s.thread);
    EXPECT_EQ_INT(s.result, expected_in_parent);
    EXPECT(fs_load_u32(&s.child_pid) != 0);
    if (fs_load_u32(&s.child_pid) != 0)
        expect_child_exits_cleanly((pid_t)fs_load_u32(&s.child_pid));

    fs_store_u32(&s.word, 1);
    fs_wake_all(&s.word);
    if (other_waiter_first)
        test_thread_join(&other);
    sigaction(SIGUSR2, &old, NULL);
}

/* The parent's list held another waiter before the forking thread: had the
 * resumed wait unlinked itself from the child's emptied list, it would have
 * left the list's tail pointing at the other thread's dead node, and the
 * child's next waiter there would never be found. */
static void test_fork_in_handler_while_parked(void)
{
    run_handler_fork(1, 0, FS_INTERRUPTED, FS_INTERRUPTED);
}

/* Woken before the fork: in the parent, the wait takes its wake-up; in the
 * child it must not wait for one that will never come.  The parking lot
 * reports the wake-up, as the Lock's asker and the Condition's waiter report
 * what they were given before a fork; a futex forgets a waiter when a
 * signal interrupts it, so there the wake finds nobody and the wait reports
 * the interruption. */
static void test_fork_in_handler_after_wakeup(void)
{
#if defined(FS_WAIT_FUTEX)
    run_handler_fork(0, 1, FS_INTERRUPTED, FS_INTERRUPTED);
#else
    run_handler_fork(0, 1, FS_OK, FS_OK);
#endif
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
    while (fs_wait(&word, 0, deadline) == FS_OK) {}
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

/* ---- a watched word: no window for a signal ---------------------------------
 * As CPython's C-level handler records a signal in a word, this handler sets
 * one; a thread that watches it must see every signal, whether it lands
 * before the wait, while the thread spins, or while it sleeps, and must never
 * sleep through one. */

static fs_atomic_u32 signal_recorded;

static void on_sigusr2(int sig)
{
    (void)sig;
    fs_store_u32(&signal_recorded, 1);
}

typedef struct {
    fs_atomic_u32 never;          /* nobody changes it: only a signal ends a wait */
    fs_atomic_u32 round, answered;
    fs_atomic_u32 quit;
    int bad;                      /* a wait that ended otherwise */
} watch_job;

enum { WATCH_ROUNDS = 1000 };

static void *watcher(void *p)
{
    watch_job *job = (watch_job *)p;
    fs_spin_watch(&signal_recorded);
    while (!fs_load_u32(&job->quit)) {
        uint32_t round = fs_load_u32(&job->round);
        fs_result r = fs_spin_then_wait(&job->never, 0, fs_deadline_after(MS(5000)), MS(1) / 2);
        if (r != FS_INTERRUPTED)
            job->bad++;
        fs_store_u32(&signal_recorded, 0);   /* "the handlers ran" */
        fs_store_u32(&job->answered, round + 1);
        test_wait_for_u32(&job->round, round + 1, 5000);
    }
    fs_spin_watch(NULL);
    return NULL;
}

static void test_watched_word_leaves_no_window(void)
{
    watch_job job;
    test_thread t;
    int n, late = 0;
    struct sigaction sa;
    memset(&job, 0, sizeof job);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigusr2;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR2, &sa, NULL);
    if (!fs_wait_can_watch()) {
        test_note("this wait layer or kernel can't watch a second word: nothing to test");
        return;
    }
    test_thread_start(&t, watcher, &job);
    for (n = 0; n < WATCH_ROUNDS; n++) {
        /* A moment spread over before the wait, the spin (0.5 ms), and the
         * sleep after it. */
        int64_t at = fs_monotonic_ns() + (int64_t)((unsigned)n * 7919u % 1000u) * 1000;
        while (fs_monotonic_ns() < at)
            fs_cpu_relax();
        pthread_kill(tid_of(&t), SIGUSR2);
        if (!test_wait_for_u32(&job.answered, (uint32_t)n + 1, 2000)) {
            late++;
            break;
        }
        if (n + 1 == WATCH_ROUNDS)
            fs_store_u32(&job.quit, 1);
        fs_store_u32(&job.round, (uint32_t)n + 1);
    }
    EXPECT_EQ_INT(late, 0);
    if (late)
        _exit(1);   /* the watcher sleeps for 5 s more: don't wait for it */
    test_thread_join(&t);
    EXPECT_EQ_INT(job.bad, 0);
}

void run_posix_tests(void)
{
    install_handler();
    run_interrupt_tests();
#if defined(UNDER_TSAN)
    (void)test_fork_child_can_wait;
    test_skip("test_fork_child_can_wait", "ThreadSanitizer cannot start threads in a forked child");
#else
    RUN(test_fork_child_can_wait, 30);
#endif
#if defined(UNDER_TSAN)
    (void)test_fork_in_handler_while_parked;
    (void)test_fork_in_handler_after_wakeup;
    test_skip("test_fork_in_handler_while_parked", "ThreadSanitizer cannot start threads in a forked child");
    test_skip("test_fork_in_handler_after_wakeup", "ThreadSanitizer cannot start threads in a forked child");
#else
    RUN(test_fork_in_handler_while_parked, 30);
    RUN(test_fork_in_handler_after_wakeup, 30);
#endif
    RUN(test_thread_exit_releases_resources, 10);
    RUN(test_watched_word_leaves_no_window, 60);
}

#else
#include "harness.h"
void run_posix_tests(void) {}
#endif
