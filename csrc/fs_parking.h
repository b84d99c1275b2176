/* The parking lot: fs_wait, fs_wake_one and fs_wake_all (fs_wait.h) for the
 * wait layers without a futex, the generic POSIX one and the Windows one,
 * written once over the platform's tokens (fs_platform.h).  It knows which
 * threads wait on which address and which of them a wake-up picks; how a
 * thread sleeps and is roused is the platform's.  csrc/DESIGN.md describes
 * the protocol.
 *
 * Below, what a platform with fork() needs to keep the buckets consistent
 * across it. */
#ifndef FASTSYNC_PARKING_H
#define FASTSYNC_PARKING_H

#include "fs_platform.h"

#if defined(FS_WAIT_POSIX) || defined(FS_WAIT_WIN32)

/* Applies `apply` to every bucket's mutex, always in the same order. */
void fs_parking_for_each_mutex(void (*apply)(fs_platform_mutex *mutex));

/* In a forked child, with every bucket mutex held: forgets every parked
 * waiter, and starts a new fork generation (fs_queue.h).  The waiters were
 * the parent's other threads, which the child doesn't have, or the forking
 * thread itself, when it forked in a signal handler while parked: its wait
 * resumes when the handler returns, and finds it was forgotten. */
void fs_parking_forget_waiters(void);

#endif
#endif /* FASTSYNC_PARKING_H */
