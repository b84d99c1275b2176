/* Windows backend: the parking lot of fs_parking.h, with SRWLOCKs for bucket
 * locks and an event per thread, whose waits can also end on an interrupt
 * event.
 *
 * WaitOnAddress would be the natural primitive, but it cannot wait for a
 * handle at the same time, and a Python program blocked on a lock must wake
 * up for Ctrl-C.  So a parked thread sleeps in WaitForMultipleObjects on its
 * own auto-reset event (created on its first blocking wait, closed by a
 * fiber-local-storage callback when the thread exits) and, if one was
 * registered, the interrupt event.  A waker unlinks it under the bucket lock
 * and calls SetEvent after unlocking; a waiter that gives up after a waker
 * chose it waits for that SetEvent and reports a wake-up (fs_parking.h says
 * why).  Every SetEvent is thus consumed by exactly one wait, and each wait
 * starts with its event clear.  Timeouts are whole milliseconds rounded up,
 * and TIMED_OUT is only reported once fs_monotonic_ns() has reached the
 * deadline.
 *
 * The interrupt event (CPython's SIGINT event) is manual-reset: it stays
 * signalled until someone calls ResetEvent, and a wait that merely reported it
 * would then return at once forever, a busy loop.  So whoever reports
 * FS_INTERRUPTED resets it first: a Ctrl-C interrupts the waits that are
 * blocked when it arrives (SetEvent releases every thread waiting on a
 * manual-reset event at once), and the caller's retry blocks again.  This is
 * safe because the event is only a doorbell: CPython records the signal
 * itself (the tripped flag, set before SetEvent) and the caller runs the
 * handlers after we return.  Consequences:
 *   - an event left signalled by an earlier Ctrl-C that nobody consumed (the
 *     main thread was running Python code then) makes the next blocking wait
 *     return FS_INTERRUPTED once; the caller finds no handler to run and
 *     waits again.
 *   - every thread watches the event, not only Python's main thread, so a
 *     Ctrl-C also sends blocked worker threads round their retry loop once.
 *   - if a worker resets the event before the main thread has started its own
 *     wait, the main thread misses that Ctrl-C (and waits until woken, or
 *     until the next Ctrl-C): a window of a few instructions between releasing
 *     the GIL and blocking.  CPython's own waits, which reset the event before
 *     blocking, have a similar window.
 *   - a wait that was woken for real does not reset the event, so the
 *     caller's next wait, if any, still reports the interruption.
 *   - CPython's time.sleep() and friends reset the event themselves before
 *     blocking; that can only make us see fewer stale interruptions. */
#if defined(_WIN32) && !defined(_WIN32_WINNT)
#define _WIN32_WINNT 0x0600     /* SRWLOCK, InitOnce, FlsAlloc: Vista */
#endif
#include "fs_wait.h"
#include "fs_time.h"

#if defined(FS_WAIT_WIN32)

#include <windows.h>

/* ---- the parking lot ------------------------------------------------------ */

typedef SRWLOCK fs_bucket_lock;     /* all-zero is SRWLOCK_INIT */
typedef HANDLE fs_wake_token;       /* the waiter's own auto-reset event */
#include "fs_parking.h"

static void bucket_lock_acquire(fs_bucket_lock *lock) { AcquireSRWLockExclusive(lock); }
static void bucket_lock_release(fs_bucket_lock *lock) { ReleaseSRWLockExclusive(lock); }
static void wake_token_send(fs_wake_token event) { SetEvent(event); }

/* ---- per-thread events ---------------------------------------------------- */

static INIT_ONCE fls_once = INIT_ONCE_STATIC_INIT;
static DWORD fls_index = FLS_OUT_OF_INDEXES;

static VOID WINAPI close_thread_event(PVOID event)   /* thread exit */
{
    if (event != NULL)
        CloseHandle((HANDLE)event);
}

static BOOL CALLBACK allocate_fls(PINIT_ONCE once, PVOID parameter, PVOID *context)
{
    (void)once; (void)parameter; (void)context;
    fls_index = FlsAlloc(close_thread_event);
    return TRUE;
}

/* The calling thread's event, or NULL when none can be had. */
static HANDLE thread_event(void)
{
    HANDLE event;
    InitOnceExecuteOnce(&fls_once, allocate_fls, NULL, NULL);
    if (fls_index == FLS_OUT_OF_INDEXES)
        return NULL;
    event = (HANDLE)FlsGetValue(fls_index);
    if (event == NULL) {
        event = CreateEventW(NULL, FALSE, FALSE, NULL);   /* auto-reset, clear */
        if (event != NULL && !FlsSetValue(fls_index, event)) {
            CloseHandle(event);
            event = NULL;
        }
    }
    return event;
}

/* ---- the interrupt event ---------------------------------------------------- */

static PVOID volatile interrupt_event;

void fs_wait_set_interrupt_event(void *event_handle)
{
    InterlockedExchangePointer(&interrupt_event, event_handle);
}

static HANDLE current_interrupt_event(void)
{
    return (HANDLE)InterlockedCompareExchangePointer(&interrupt_event, NULL, NULL);
}

/* ---- waiting -------------------------------------------------------------- */

/* Fallback when the thread has no event (handle or FLS exhaustion): sleep a
 * little, watching the interrupt event, and report a spurious wake-up so the
 * caller's loop polls the word. */
static fs_result wait_without_event(fs_atomic_u32 *addr, uint32_t expected,
                                    int64_t deadline_ns)
{
    HANDLE interrupt = current_interrupt_event();
    DWORD ms = 1;
    if (fs_load_u32(addr) != expected)
        return FS_OK;
    if (deadline_ns != FS_NO_DEADLINE && fs_monotonic_ns() >= deadline_ns)
        return FS_TIMED_OUT;
    if (interrupt != NULL) {
        if (WaitForSingleObject(interrupt, ms) == WAIT_OBJECT_0) {
            ResetEvent(interrupt);
            return FS_INTERRUPTED;
        }
    } else {
        Sleep(ms);
    }
    if (deadline_ns != FS_NO_DEADLINE && fs_monotonic_ns() >= deadline_ns)
        return FS_TIMED_OUT;
    return FS_OK;
}

fs_result fs_wait(fs_atomic_u32 *addr, uint32_t expected, int64_t deadline_ns)
{
    fs_waiter w;
    HANDLE handles[2];
    DWORD count;
    fs_result outcome;

    if (fs_load_u32(addr) != expected)
        return FS_OK;
    handles[0] = thread_event();
    if (handles[0] == NULL)
        return wait_without_event(addr, expected, deadline_ns);
    handles[1] = current_interrupt_event();
    count = handles[1] != NULL ? 2 : 1;

    if (!parking_enqueue(&w, addr, expected, handles[0]))
        return FS_OK;

    for (;;) {
        int64_t ms;
        DWORD rc;
        /* Below INFINITE when there is a deadline. */
        if (!parking_sleep_ms(deadline_ns, (int64_t)INFINITE - 1, &ms)) {
            outcome = FS_TIMED_OUT;
            break;
        }
        /* With bWaitAll FALSE the lowest signalled index wins, so a wake-up
         * that races with an interrupt is reported as a wake-up. */
        rc = WaitForMultipleObjects(count, handles, FALSE, ms < 0 ? INFINITE : (DWORD)ms);
        if (rc == WAIT_OBJECT_0)
            return FS_OK;               /* a waker unlinked us */
        if (rc == WAIT_TIMEOUT)
            continue;                           /* the clock decides at the top */
        if (rc == WAIT_OBJECT_0 + 1) {
            outcome = FS_INTERRUPTED;
            break;
        }
        if (count == 2) {
            count = 1;      /* WAIT_FAILED: most likely a bad interrupt handle */
            continue;
        }
        Sleep(1);           /* cannot happen; never spin if it does */
        outcome = FS_OK;
        break;
    }

    if (parking_withdraw(&w)) {
        if (outcome == FS_INTERRUPTED)
            ResetEvent(handles[1]);   /* consumed; see the top of the file */
        return outcome;
    }
    /* A waker got here first and its SetEvent is on the way: take it. */
    WaitForSingleObject(handles[0], INFINITE);
    return FS_OK;
}

/* ---- waking ----------------------------------------------------------------- */

void fs_wake_one(fs_atomic_u32 *addr) { parking_wake(addr, 0); }
void fs_wake_all(fs_atomic_u32 *addr) { parking_wake(addr, 1); }

void fs_wait_after_fork_child(void) { /* no fork() on Windows */ }

#endif /* FS_WAIT_WIN32 */
