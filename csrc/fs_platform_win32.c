/* The Windows platform (fs_platform.h): SRWLOCKs for the parking lot's
 * buckets, and an auto-reset event per thread as its token, whose sleeps
 * also end on the interrupt event (CPython's SIGINT event).  csrc/DESIGN.md
 * says why not WaitOnAddress, and who resets the interrupt event. */
#include "fs_wait.h"

#if defined(FS_WAIT_WIN32)

#include "fs_platform.h"

void fs_platform_mutex_lock(fs_platform_mutex *mutex) { AcquireSRWLockExclusive(mutex); }
void fs_platform_mutex_unlock(fs_platform_mutex *mutex) { ReleaseSRWLockExclusive(mutex); }

/* Nothing to set up, and no cancellation to keep out. */
int fs_platform_enter(void) { return 0; }
void fs_platform_leave(int saved) { (void)saved; }

void fs_wait_after_fork_child(void) { /* no fork() on Windows */ }

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

int fs_token_of_this_thread(fs_token *token)
{
    HANDLE event;
    InitOnceExecuteOnce(&fls_once, allocate_fls, NULL, NULL);
    if (fls_index == FLS_OUT_OF_INDEXES)
        return 0;
    event = (HANDLE)FlsGetValue(fls_index);
    if (event == NULL) {
        event = CreateEventW(NULL, FALSE, FALSE, NULL);   /* auto-reset, clear */
        if (event == NULL)
            return 0;
        if (!FlsSetValue(fls_index, event)) {
            CloseHandle(event);
            return 0;
        }
    }
    token->event = event;
    token->interrupted_by = NULL;
    return 1;
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

/* ---- sleeping and waking -------------------------------------------------- */

fs_token_sleep_result fs_token_sleep(fs_token *token, int64_t timeout_ms)
{
    HANDLE handles[2];
    DWORD count, ms, rc;
    handles[0] = token->event;
    handles[1] = current_interrupt_event();
    count = handles[1] != NULL ? 2 : 1;
    /* Below INFINITE when there is a limit. */
    if (timeout_ms < 0)
        ms = INFINITE;
    else if (timeout_ms > (int64_t)INFINITE - 1)
        ms = INFINITE - 1;
    else
        ms = (DWORD)timeout_ms;
    for (;;) {
        /* With bWaitAll FALSE the lowest signalled index wins, so a wake-up
         * that races with an interrupt is reported as a wake-up. */
        rc = WaitForMultipleObjects(count, handles, FALSE, ms);
        if (rc == WAIT_OBJECT_0)
            return FS_TOKEN_SENT;
        if (rc == WAIT_TIMEOUT)
            return FS_TOKEN_AGAIN;
        if (rc == WAIT_OBJECT_0 + 1) {
            token->interrupted_by = handles[1];
            return FS_TOKEN_INTERRUPTED;
        }
        if (count == 2) {
            count = 1;      /* WAIT_FAILED: most likely a bad interrupt handle */
            continue;
        }
        Sleep(1);           /* cannot happen; never spin if it does */
        return FS_TOKEN_BROKEN;
    }
}

void fs_token_await_send(const fs_token *token)
{ WaitForSingleObject(token->event, INFINITE); }

void fs_token_send(fs_token token)
{ SetEvent(token.event); }

/* The interrupt event is manual-reset: whoever reports the interruption
 * resets it (csrc/DESIGN.md says why that is safe). */
void fs_token_interruption_reported(fs_token *token)
{
    if (token->interrupted_by != NULL)
        ResetEvent(token->interrupted_by);
}

fs_result fs_platform_nap(int64_t deadline_ns)
{
    HANDLE interrupt = current_interrupt_event();
    DWORD ms = 1;
    (void)deadline_ns;      /* a millisecond is the timer's finest step */
    if (interrupt != NULL) {
        if (WaitForSingleObject(interrupt, ms) == WAIT_OBJECT_0) {
            ResetEvent(interrupt);
            return FS_INTERRUPTED;
        }
    } else {
        Sleep(ms);
    }
    return FS_OK;
}

#endif /* FS_WAIT_WIN32 */
