/* Spinning: looking at a word for a while before asking the kernel to put
 * the thread to sleep.
 *
 * Every call in fastsync.h that may block takes spin_ns: for how long to keep
 * looking at the word it waits on (with the CPU's pause hint) before it
 * sleeps; 0 sleeps at once.  A hand-off that completes within the spin needs
 * no sleep and no wake-up, and where an idle CPU halts (a virtual machine's
 * vCPU, say) a wake-up is most of what a hand-off costs.  A spin ends at the
 * deadline.  A signal that arrives while the thread spins only runs its
 * handler, and a plain sleep that follows doesn't end early; so a thread that
 * must see signals at once (CPython's main thread) first names the word that
 * records them (fs_spin_watch), or passes 0. */
#ifndef FASTSYNC_SPIN_H
#define FASTSYNC_SPIN_H

#include <stdint.h>
#include "fs_atomic.h"
#include "fs_wait.h"

#ifdef __cplusplus
extern "C" {
#endif

/* At most this many threads spin at once (default: no limit); the rest sleep
 * at once.  Set it to the number of CPUs the process may use. */
void fs_spin_set_limit(uint32_t threads);

/* How many threads spin right now (for tests). */
uint32_t fs_spinning_threads(void);

/* Looks at the word while it holds expected, for up to spin_ns and never past
 * deadline_ns.  Returns 1 if the word changed, 0 if the time ran out or there
 * was no spin: spin_ns is 0, the limit above left no room, or this thread's
 * last spins ran out and it is pausing (fs_spin.c says when). */
int fs_spin_while(const fs_atomic_u32 *addr, uint32_t expected,
                  int64_t deadline_ns, int64_t spin_ns);

/* fs_spin_while, then fs_sleep unless the word changed; returns what
 * fs_sleep returns (FS_OK if the spin saw the change, FS_INTERRUPTED if it
 * saw the watched word set). */
fs_result fs_spin_then_wait(fs_atomic_u32 *addr, uint32_t expected,
                            int64_t deadline_ns, int64_t spin_ns);

/* fs_wait, or fs_wait_watching with this thread's watched word if it has
 * one. */
fs_result fs_sleep(fs_atomic_u32 *addr, uint32_t expected, int64_t deadline_ns);

/* For the calling thread, until it calls again with NULL: its spins also end
 * when *watched is nonzero, and fs_sleep watches it (fs_wait_watching), so
 * that a blocking call returns FS_INTERRUPTED once it is set.  Only where
 * fs_wait_can_watch() says so. */
void fs_spin_watch(const fs_atomic_u32 *watched);

/* In the child after fork(): the threads that were spinning in the parent
 * don't exist there, so none counts against the limit. */
void fs_spin_after_fork_child(void);

#ifdef __cplusplus
}
#endif
#endif /* FASTSYNC_SPIN_H */
