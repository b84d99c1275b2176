/* The wait/wake layer: block while a 32-bit word holds an expected value.
 *
 * Exactly one implementation is compiled, chosen here and nowhere else:
 *   FS_WAIT_FUTEX  Linux futex (default on Linux): fs_wait_futex.c
 *   FS_WAIT_WIN32  Windows (default on Windows): the parking lot
 *                  (fs_parking.c) over fs_platform_win32.c
 *   FS_WAIT_POSIX  pthreads, for every other Unix (and on Linux on request):
 *                  the parking lot over fs_platform_posix.c
 * Define one of them on the compiler command line to override the default. */
#ifndef FASTSYNC_WAIT_H
#define FASTSYNC_WAIT_H

#include <stdint.h>
#include "fs_atomic.h"
#include "fs_time.h"

#if !defined(FS_WAIT_FUTEX) && !defined(FS_WAIT_POSIX) && !defined(FS_WAIT_WIN32)
#  if defined(_WIN32)
#    define FS_WAIT_WIN32 1
#  elif defined(__linux__)
#    define FS_WAIT_FUTEX 1
#  else
#    define FS_WAIT_POSIX 1
#  endif
#endif

#if defined(FS_WAIT_FUTEX)
#  define FS_WAIT_BACKEND_NAME "futex"
#elif defined(FS_WAIT_WIN32)
#  define FS_WAIT_BACKEND_NAME "win32"
#else
#  define FS_WAIT_BACKEND_NAME "posix"
#endif

/* How a wait ended, at every level: the wait layer's below, and the
 * primitives' in fastsync.h. */
typedef enum {
    FS_OK = 0,           /* the wait is over: here, woken (the word changed,
                          * or spuriously); for a primitive, it got what it
                          * waited for (the lock, the set event, the notice) */
    FS_TIMED_OUT = 1,    /* the deadline passed first */
    FS_INTERRUPTED = 2,  /* a signal arrived; nothing was taken */
    FS_RETRY = 3         /* fs_lock_wait_for_release, and the rwlock's
                          * waits when asked: the lock was released, and
                          * not taken; try again */
} fs_result;

/* Blocks while addr->value == expected, until woken, until the absolute
 * monotonic deadline_ns (FS_NO_DEADLINE: none), or until a signal arrives.
 * Returns at once if the value already differs.  Callers recheck their
 * condition after every return. */
fs_result fs_wait(fs_atomic_u32 *addr, uint32_t expected, int64_t deadline_ns);

/* fs_wait that also ends, with FS_INTERRUPTED, once *watched is nonzero.
 * The kernel compares both words with what the caller expects (expected, and
 * 0) as it puts the thread to sleep, so a change of either just before that
 * is never slept through; nobody needs to wake the watched word.  Only where
 * fs_wait_can_watch() returns 1; elsewhere it is fs_wait and ignores
 * watched.  The main thread watches the interpreter's "a signal awaits its
 * handlers" word with it (csrc/DESIGN.md, "Watching for signals"). */
fs_result fs_wait_watching(fs_atomic_u32 *addr, uint32_t expected,
                           const fs_atomic_u32 *watched, int64_t deadline_ns);

/* 1 if fs_wait_watching watches here (Linux 5.16+ and a seccomp policy that
 * allows futex_waitv), else 0.  Asks the kernel each time: call it once. */
int fs_wait_can_watch(void);

/* Wakes one / every thread blocked in fs_wait on addr. */
void fs_wake_one(fs_atomic_u32 *addr);
void fs_wake_all(fs_atomic_u32 *addr);

/* Called in the child after fork() (pthread_atfork or the caller's own hook):
 * forget any per-thread or global wait state inherited from the parent. */
void fs_wait_after_fork_child(void);

/* Windows has no signals that interrupt a wait; instead CPython sets an event
 * (_PyOS_SigintEvent()) when Ctrl-C trips SIGINT.  Pass that handle here and
 * every blocked fs_wait returns FS_INTERRUPTED when it becomes signalled
 * (NULL: stop watching).  The event is manual-reset; csrc/DESIGN.md says
 * who resets it.  Elsewhere signals interrupt waits and this is a no-op. */
#if defined(FS_WAIT_WIN32)
void fs_wait_set_interrupt_event(void *event_handle);
#else
static inline void fs_wait_set_interrupt_event(void *event_handle)
{ (void)event_handle; }
#endif

#endif /* FASTSYNC_WAIT_H */
