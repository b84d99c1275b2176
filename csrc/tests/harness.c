#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include "harness.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#if defined(_WIN32)
#include <windows.h>
#include <process.h>
#else
#include <pthread.h>
#include <time.h>
#include <unistd.h>
#endif

/* ---- threads ---- */

typedef struct { test_thread_fn fn; void *arg; } trampoline;

#if defined(_WIN32)
static unsigned __stdcall thread_main(void *p)
{
    trampoline t = *(trampoline *)p;
    free(p);
    t.fn(t.arg);
    return 0;
}

void test_thread_start(test_thread *t, test_thread_fn fn, void *arg)
{
    trampoline *tr = (trampoline *)malloc(sizeof *tr);
    if (tr == NULL) { fputs("out of memory\n", stderr); exit(2); }
    tr->fn = fn;
    tr->arg = arg;
    t->handle = (void *)_beginthreadex(NULL, 0, thread_main, tr, 0, NULL);
    if (t->handle == NULL) { fputs("cannot start a thread\n", stderr); exit(2); }
}

void test_thread_join(test_thread *t)
{
    WaitForSingleObject((HANDLE)t->handle, INFINITE);
    CloseHandle((HANDLE)t->handle);
    t->handle = NULL;
}

void test_sleep_ms(int ms) { Sleep((DWORD)ms); }
#else
void test_thread_start(test_thread *t, test_thread_fn fn, void *arg)
{
    pthread_t *th = (pthread_t *)malloc(sizeof *th);
    if (th == NULL || pthread_create(th, NULL, fn, arg) != 0) {
        fputs("cannot start a thread\n", stderr);
        exit(2);
    }
    t->handle = th;
}

void test_thread_join(test_thread *t)
{
    pthread_join(*(pthread_t *)t->handle, NULL);
    free(t->handle);
    t->handle = NULL;
}

void test_sleep_ms(int ms)
{
    struct timespec ts;
    int64_t end = fs_monotonic_ns() + MS(ms);
    for (;;) {   /* signals may cut nanosleep short */
        int64_t left = end - fs_monotonic_ns();
        if (left <= 0)
            return;
        ts.tv_sec = (time_t)(left / 1000000000);
        ts.tv_nsec = (long)(left % 1000000000);
        nanosleep(&ts, NULL);
    }
}
#endif

int test_wait_for_u32(fs_atomic_u32 *a, uint32_t target, int timeout_ms)
{
    int64_t end = fs_monotonic_ns() + MS(timeout_ms);
    while (fs_load_u32(a) < target) {
        if (fs_monotonic_ns() >= end)
            return 0;
        test_sleep_ms(1);
    }
    return 1;
}

double test_ms_since(int64_t start_ns)
{ return (double)(fs_monotonic_ns() - start_ns) / 1e6; }

/* ---- checks ---- */

static fs_atomic_u32 current_failures;

void test_fail(const char *file, int line, const char *what)
{
    test_add_u32(&current_failures, 1);
    printf("    %s:%d: check failed: %s\n", file, line, what);
    fflush(stdout);
}

void test_fail_values(const char *file, int line, const char *what,
                      long long got, long long want)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s == %.0f, expected %.0f", what,
             (double)got, (double)want);   /* %lld is not portable to old msvcrt */
    test_fail(file, line, buf);
}

void test_note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("    ", stdout);
    vprintf(fmt, ap);
    fputs("\n", stdout);
    va_end(ap);
    fflush(stdout);
}

/* ---- running, with a watchdog ---- */

static int passed, failed;
static fs_atomic_uptr current_name;      /* const char * */
static fs_atomic_u32 current_budget_ms;  /* 0: no test running */
static fs_atomic_u32 current_serial;     /* bumped for every test */

static void *watchdog(void *arg)
{
    uint32_t serial = 0;
    int64_t started = 0;
    (void)arg;
    for (;;) {
        uint32_t budget, now_serial;
        test_sleep_ms(50);
        budget = fs_load_u32(&current_budget_ms);
        now_serial = fs_load_u32(&current_serial);
        if (now_serial != serial) {
            serial = now_serial;
            started = fs_monotonic_ns();
        }
        if (budget != 0 && fs_monotonic_ns() - started > MS(budget)) {
            printf("FAIL %s: still running after %u s (watchdog)\n",
                   (const char *)fs_load_uptr_relaxed(&current_name),
                   (unsigned)(budget / 1000));
            printf("%d passed, %d failed\n", passed, failed + 1);
            fflush(stdout);
#if defined(_WIN32)
            ExitProcess(3);
#else
            _exit(3);
#endif
        }
    }
    return NULL;
}

void test_run(const char *name, test_fn fn, int budget_s)
{
    int64_t start;
    fs_store_u32(&current_failures, 0);
    fs_store_uptr_relaxed(&current_name, (uintptr_t)name);
    test_add_u32(&current_serial, 1);
    fs_store_u32(&current_budget_ms, (uint32_t)budget_s * 1000);
    start = fs_monotonic_ns();
    fn();
    fs_store_u32(&current_budget_ms, 0);
    if (fs_load_u32(&current_failures) == 0) {
        passed++;
        printf("PASS %s (%.1f ms)\n", name, test_ms_since(start));
    } else {
        failed++;
        printf("FAIL %s (%.1f ms)\n", name, test_ms_since(start));
    }
    fflush(stdout);
}

void test_skip(const char *name, const char *why)
{
    printf("SKIP %s (%s)\n", name, why);
    fflush(stdout);
}

/* ---- shared helpers ---- */

int64_t test_spin_ns = 0;

fs_result test_lock_acquire_counted(fs_lock *lock, int64_t deadline_ns,
                                    fs_atomic_u32 *interruptions)
{
    fs_result r;
    if (fs_lock_try_acquire(lock))
        return FS_OK;
    while ((r = fs_lock_acquire_until(lock, deadline_ns, test_spin_ns)) == FS_INTERRUPTED)
        if (interruptions != NULL)
            test_add_u32(interruptions, 1);
    return r;
}

static void *lock_sleeper_main(void *arg)
{
    test_lock_sleeper *s = (test_lock_sleeper *)arg;
    int64_t deadline = fs_deadline_after(s->timeout_ns);
    fs_store_u32(&s->asleep, 1);
    s->result = fs_lock_wait_until(s->lock, &s->waiting_since, deadline, 0);
    fs_store_u32(&s->done, 1);
    return NULL;
}

void test_lock_sleeper_start(test_lock_sleeper *s, fs_lock *lock, int64_t waiting_since,
                             int64_t timeout_ns)
{
    s->lock = lock;
    s->waiting_since = waiting_since;
    s->timeout_ns = timeout_ns;
    fs_store_u32(&s->asleep, 0);
    fs_store_u32(&s->done, 0);
    test_thread_start(&s->thread, lock_sleeper_main, s);
    EXPECT(test_wait_for_u32(&s->asleep, 1, 5000));
    test_sleep_ms(20);   /* asleep on the lock by now */
}

void test_lock_release_and_retake(fs_lock *lock)
{
    fs_store_u32(&lock->state, FS_LOCK_HELD);
    fs_wake_one(&lock->state);
}

void test_lock_sleeper_expect_woken(test_lock_sleeper *s, fs_lock *lock)
{
    EXPECT_EQ_INT(fs_lock_release(lock), 1);
    if (!test_wait_for_u32(&s->done, 1, 5000)) {
        EXPECT(!"the waiter was never woken");
        fs_wake_all(&lock->state);   /* let it finish, so that the join returns */
    }
    test_thread_join(&s->thread);
    EXPECT_EQ_INT(s->result, FS_OK);
    EXPECT_EQ_INT(fs_lock_release(lock), 1);
}

fs_result test_event_wait_counted(fs_event *event, int64_t deadline_ns,
                                  fs_atomic_u32 *interruptions)
{
    fs_result r;
    uint32_t observed = fs_event_state(event);
    if (observed & FS_EVENT_SET)
        return FS_OK;
    while ((r = fs_event_wait_until(event, observed, deadline_ns, test_spin_ns)) == FS_INTERRUPTED)
        if (interruptions != NULL)
            test_add_u32(interruptions, 1);
    return r;
}

static test_thread dog;

int main(void)
{
    int64_t start = fs_monotonic_ns();
    setvbuf(stdout, NULL, _IOLBF, 1 << 12);
    printf("fastsync C tests, wait backend: %s\n", FS_WAIT_BACKEND_NAME);
    test_thread_start(&dog, watchdog, NULL);   /* never joined */
    run_core_tests();
    run_rwlock_tests();
    run_posix_tests();
    run_win32_tests();
    printf("total %.1f s\n", test_ms_since(start) / 1000.0);
    printf("%d passed, %d failed\n", passed, failed);
    fflush(stdout);
    return failed ? 1 : 0;   /* exit() ends the watchdog thread too */
}
