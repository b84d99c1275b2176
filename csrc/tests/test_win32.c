/* Windows only: the interrupt event registered with
 * fs_wait_set_interrupt_event (CPython's SIGINT event in real use) interrupts
 * blocked waits (the scenarios are in test_interrupt.c; this file says how to
 * signal the event and how to tell it was consumed), is consumed so the next
 * wait blocks again, and is ignored once unregistered. */
#if defined(_WIN32)
#include "harness.h"

#include <windows.h>

static HANDLE interrupt;   /* manual-reset, like CPython's */

void test_interrupt_thread(test_thread *t) { (void)t; SetEvent(interrupt); }
/* A wait reads the registered event when it starts, so a thread that starts
 * waiting while none is registered ignores it for that wait. */
void test_interrupt_exempt_begin(void) { fs_wait_set_interrupt_event(NULL); }
void test_interrupt_exempt_end(void) { fs_wait_set_interrupt_event(interrupt); }

static int event_is_signalled(HANDLE h)
{ return WaitForSingleObject(h, 0) == WAIT_OBJECT_0; }

int test_interrupt_until_done(test_thread *t, fs_atomic_u32 *done, int timeout_ms)
{
    int returned;
    /* Once: the event stays signalled until a waiter consumes it, so it
     * cannot be missed, and a second could outlive the wait it was for. */
    test_interrupt_thread(t);
    returned = test_wait_for_u32(done, 1, timeout_ms);
    EXPECT(!event_is_signalled(interrupt));    /* consumed by the waiter */
    return returned;
}

void test_interrupt_storm_begin(void) {}
/* The waiters consumed the interrupts they saw; the last ones may have come
 * after every thread had stopped waiting. */
void test_interrupt_storm_end(void) { ResetEvent(interrupt); }

static void test_stale_interrupt_reported_once(void)
{
    /* Left signalled by an earlier Ctrl-C: one FS_INTERRUPTED, then the
     * next wait really blocks (no busy loop). */
    fs_atomic_u32 word;
    int64_t deadline, start;
    fs_store_u32(&word, 0);
    SetEvent(interrupt);
    start = fs_monotonic_ns();
    EXPECT_EQ_INT(fs_wait(&word, 0, fs_deadline_after(MS(2000))), FS_INTERRUPTED);
    EXPECT(fs_monotonic_ns() - start < MS(1000));
    EXPECT(!event_is_signalled(interrupt));
    deadline = fs_deadline_after(MS(50));
    EXPECT_EQ_INT(fs_wait(&word, 0, deadline), FS_TIMED_OUT);
    EXPECT(fs_monotonic_ns() >= deadline);
    /* Not consulted when the word already differs. */
    SetEvent(interrupt);
    EXPECT_EQ_INT(fs_wait(&word, 1, fs_deadline_after(MS(50))), FS_OK);
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
    EXPECT_EQ_INT(fs_wait(&word, 0, deadline), FS_TIMED_OUT);
    EXPECT(fs_monotonic_ns() >= deadline);
    EXPECT(event_is_signalled(interrupt));      /* left alone */
    ResetEvent(interrupt);
    fs_wait_set_interrupt_event(interrupt);
}

void run_win32_tests(void)
{
    interrupt = CreateEventW(NULL, TRUE, FALSE, NULL);   /* manual-reset */
    if (interrupt == NULL) {
        test_skip("win32 interrupt tests", "CreateEvent failed");
        return;
    }
    fs_wait_set_interrupt_event(interrupt);
    RUN(test_stale_interrupt_reported_once, 10);
    RUN(test_unregistered_event_is_ignored, 10);
    run_interrupt_tests();
    ResetEvent(interrupt);
    fs_wait_set_interrupt_event(NULL);
    CloseHandle(interrupt);
}

#else
#include "harness.h"
void run_win32_tests(void) {}
#endif
