/* A minimal test harness for the C layer: a thread shim (pthreads or Win32),
 * sleeping, a few atomic helpers, EXPECT and a watchdog that ends the run if
 * a test hangs.  Tests never return early while their threads run: EXPECT
 * records a failure and carries on, and every blocking call in a test has a
 * deadline, so joins always finish. */
#ifndef FASTSYNC_TEST_HARNESS_H
#define FASTSYNC_TEST_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include "fastsync.h"
#include "fs_wait.h"

/* ---- threads ---- */
typedef void *(*test_thread_fn)(void *arg);
typedef struct { void *handle; } test_thread;   /* pthread_t* or HANDLE */

void test_thread_start(test_thread *t, test_thread_fn fn, void *arg);
void test_thread_join(test_thread *t);
void test_sleep_ms(int ms);

/* ---- atomics for test bookkeeping ---- */
static inline uint32_t test_add_u32(fs_atomic_u32 *a, uint32_t n)
{
    uint32_t seen = fs_load_u32(a);
    while (!fs_cas_u32(a, &seen, seen + n)) {}
    return seen + n;
}

/* Counts the calling thread in and spins until `threads` have arrived, so a
 * test's workers start contending at the same moment. */
static inline void test_start_together(fs_atomic_u32 *ready, uint32_t threads)
{
    test_add_u32(ready, 1);
    while (fs_load_u32(ready) < threads) {}
}

/* Spins (sleeping 1 ms) until a->value >= target or timeout_ms passes;
 * returns 1 on success. */
int test_wait_for_u32(fs_atomic_u32 *a, uint32_t target, int timeout_ms);

/* ---- time ---- */
#define MS(n) ((int64_t)(n) * 1000000)
double test_ms_since(int64_t start_ns);

/* ---- checks ---- */
void test_fail(const char *file, int line, const char *what);
#define EXPECT(cond) \
    do { if (!(cond)) test_fail(__FILE__, __LINE__, #cond); } while (0)
#define EXPECT_EQ_INT(got, want) \
    do { long long g_ = (long long)(got), w_ = (long long)(want); \
         if (g_ != w_) test_fail_values(__FILE__, __LINE__, #got, g_, w_); \
    } while (0)
void test_fail_values(const char *file, int line, const char *what,
                      long long got, long long want);
void test_note(const char *fmt, ...);   /* an indented info line */

/* ---- running ---- */
typedef void (*test_fn)(void);
void test_run(const char *name, test_fn fn, int budget_s);
void test_skip(const char *name, const char *why);
#define RUN(fn, budget_s) test_run(#fn, fn, budget_s)

/* Helpers shared by the suites: retry on FS_INTERRUPTED like the Python layer
 * does (same deadline, same observed state), counting the retries in
 * *interruptions unless it is NULL. */
/* The spin budget the helpers below (and the suites' own blocking calls) pass;
 * run_core_tests runs its concurrent tests once without spinning and once
 * with. */
extern int64_t test_spin_ns;
fs_result test_lock_acquire_counted(fs_lock *lock, int64_t deadline_ns,
                                    fs_atomic_u32 *interruptions);
fs_result test_event_wait_counted(fs_event *event, int64_t deadline_ns,
                                  fs_atomic_u32 *interruptions);
static inline fs_result test_lock_acquire(fs_lock *lock, int64_t deadline_ns)
{ return test_lock_acquire_counted(lock, deadline_ns, NULL); }
static inline fs_result test_event_wait(fs_event *event, int64_t deadline_ns)
{ return test_event_wait_counted(event, deadline_ns, NULL); }

/* A thread in one fs_lock_wait_until call, as the compiled Lock's blocking
 * path makes.  waiting_since is passed as given: a time in the future keeps
 * the thread from asking for a hand-off until then. */
typedef struct {
    fs_lock *lock;
    int64_t waiting_since, timeout_ns;
    fs_atomic_u32 asleep, done;
    fs_result result;
    test_thread thread;
} test_lock_sleeper;
/* Starts it and returns once it sleeps on the lock (held by the caller). */
void test_lock_sleeper_start(test_lock_sleeper *s, fs_lock *lock, int64_t waiting_since,
                             int64_t timeout_ns);
/* What a release followed at once by a retake leaves: the lock held, the
 * waiters' mark cleared, one sleeper woken (the first to sleep, on a FIFO). */
void test_lock_release_and_retake(fs_lock *lock);
/* Releases the lock and expects s, still asleep, to be woken and take it;
 * then releases it again and joins s. */
void test_lock_sleeper_expect_woken(test_lock_sleeper *s, fs_lock *lock);

/* ---- interrupts ----
 * The scenarios of test_interrupt.c run on every platform; what interrupting
 * a thread means is provided by the platform suite (test_posix.c: SIGUSR1 to
 * that thread; test_win32.c: the registered interrupt event, which
 * interrupts every waiter). */
void test_interrupt_thread(test_thread *t);
/* Interrupts t, blocked or about to block in the wait layer, as often as the
 * platform needs until *done is nonzero (returns 1) or timeout_ms has passed
 * (returns 0), and checks what the platform can tell about it (POSIX: the
 * handler ran; Windows: the waiter consumed the event). */
int test_interrupt_until_done(test_thread *t, fs_atomic_u32 *done, int timeout_ms);
/* Around a storm of test_interrupt_thread calls; _end, once no thread waits
 * any more, checks the interrupts arrived where the platform can tell, and
 * leaves none pending for the next test. */
void test_interrupt_storm_begin(void);
void test_interrupt_storm_end(void);
/* Around starting a thread that test_interrupt_thread must not reach
 * (Windows: its waits then ignore the interrupt event; POSIX: nothing). */
void test_interrupt_exempt_begin(void);
void test_interrupt_exempt_end(void);

/* The suites. */
void run_core_tests(void);
void run_rwlock_tests(void);      /* the readers-writer lock (test_rwlock.c) */
void run_interrupt_tests(void);   /* run by the platform suite, set up for interrupts */
void run_posix_tests(void);       /* signals, fork: POSIX only */
void run_win32_tests(void);       /* interrupt event: Windows only */

#endif
