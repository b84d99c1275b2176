/* What a platform provides to the parking lot (fs_parking.c): a mutex for
 * its buckets, and a token per thread to sleep on until another thread sends
 * it, a deadline or an interruption.  Everything else about waiting is
 * written once, in the parking lot.  fs_platform_posix.c and
 * fs_platform_win32.c implement this; the futex wait layer needs neither.
 * csrc/DESIGN.md says how the pieces fit. */
#ifndef FASTSYNC_PLATFORM_H
#define FASTSYNC_PLATFORM_H

#include <stdint.h>
#include "fs_wait.h"

#if defined(FS_WAIT_POSIX)
#include <pthread.h>
typedef pthread_mutex_t fs_platform_mutex;
#define FS_PLATFORM_MUTEX_INIT PTHREAD_MUTEX_INITIALIZER
/* The thread's pipe: it sleeps in poll() on the read end, a waker writes
 * one byte to the write end it was given.  The sleeper looks up its read end
 * afresh each time, because a fork() in a signal handler closes it in the
 * child. */
typedef struct { struct fs_thread_pipe *pipe; int write_fd; } fs_token;

#elif defined(FS_WAIT_WIN32)
#if !defined(_WIN32_WINNT)
#define _WIN32_WINNT 0x0600     /* SRWLOCK, InitOnce, FlsAlloc: Vista */
#endif
#include <windows.h>
typedef SRWLOCK fs_platform_mutex;
#define FS_PLATFORM_MUTEX_INIT SRWLOCK_INIT
/* The thread's auto-reset event, and the interrupt event that last ended
 * one of its sleeps (see fs_token_interruption_reported). */
typedef struct { HANDLE event, interrupted_by; } fs_token;
#endif

#if defined(FS_WAIT_POSIX) || defined(FS_WAIT_WIN32)

void fs_platform_mutex_lock(fs_platform_mutex *mutex);
void fs_platform_mutex_unlock(fs_platform_mutex *mutex);

/* Around every sleep or wake of the parking lot: sets the platform up on
 * first use, and keeps the thread from being cancelled in between (POSIX:
 * poll() and write() are cancellation points, and a thread cancelled while
 * parked would leave its record in a bucket).  fs_platform_enter returns
 * what fs_platform_leave restores. */
int fs_platform_enter(void);
void fs_platform_leave(int saved);

/* Fills in the calling thread's token, made on first use; returns 0 when
 * none can be had (no descriptors or handles left, no memory). */
int fs_token_of_this_thread(fs_token *token);

typedef enum {
    FS_TOKEN_SENT,          /* something was sent: the caller checks it was
                             * its wake-up, and sleeps again if not */
    FS_TOKEN_AGAIN,         /* the time ran out, or nothing happened: the
                             * caller looks at its clock and sleeps again */
    FS_TOKEN_INTERRUPTED,   /* a signal, or the interrupt event */
    FS_TOKEN_BROKEN         /* the token can't be slept on: give up */
} fs_token_sleep_result;

/* Sleeps until the token is sent, timeout_ms milliseconds pass (-1: no
 * limit; the platform may sleep less, never more), or an interruption. */
fs_token_sleep_result fs_token_sleep(fs_token *token, int64_t timeout_ms);

/* Sleeps until the token is sent, whatever else happens: for a waiter that
 * gave up after a waker chose it, and must take the waker's send. */
void fs_token_await_send(const fs_token *token);

/* Rouses the token's thread.  Called with no lock held. */
void fs_token_send(fs_token token);

/* The parking lot is about to report the interruption that ended the last
 * sleep on this token (Win32: reset the interrupt event it saw). */
void fs_token_interruption_reported(fs_token *token);

/* The fallback for a thread without a token: sleeps for about a
 * millisecond, never past deadline_ns on POSIX, and returns FS_INTERRUPTED
 * if an interruption cut it short, else FS_OK. */
fs_result fs_platform_nap(int64_t deadline_ns);

#endif
#endif /* FASTSYNC_PLATFORM_H */
