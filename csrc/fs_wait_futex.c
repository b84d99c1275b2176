/* Linux: the word itself is the futex.  FUTEX_WAIT_BITSET takes an absolute
 * CLOCK_MONOTONIC deadline, so a wait can never end early and the deadline
 * needs no recomputation after an interruption. */
#if !defined(_GNU_SOURCE)
#define _GNU_SOURCE   /* syscall() */
#endif
#include "fs_wait.h"

#if defined(FS_WAIT_FUTEX)

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long futex(fs_atomic_u32 *addr, int op, uint32_t value,
                  const struct timespec *deadline)
{
    return syscall(SYS_futex, &addr->value, op | FUTEX_PRIVATE_FLAG, value,
                   deadline, NULL, FUTEX_BITSET_MATCH_ANY);
}

fs_result fs_wait(fs_atomic_u32 *addr, uint32_t expected, int64_t deadline_ns)
{
    struct timespec deadline, *deadline_ptr = NULL;
    if (deadline_ns != FS_NO_DEADLINE) {
        deadline.tv_sec = (time_t)(deadline_ns / 1000000000);
        deadline.tv_nsec = (long)(deadline_ns % 1000000000);
        deadline_ptr = &deadline;
    }
    if (futex(addr, FUTEX_WAIT_BITSET, expected, deadline_ptr) == 0)
        return FS_OK;
    switch (errno) {
    case ETIMEDOUT: return FS_TIMED_OUT;
    case EINTR:     return FS_INTERRUPTED;
    default:        return FS_OK;   /* EAGAIN: the value had changed */
    }
}

#if defined(SYS_futex_waitv) && defined(FUTEX_WAITV_MAX)

static long futex_waitv2(fs_atomic_u32 *addr, uint32_t expected,
                         const fs_atomic_u32 *watched, const struct timespec *deadline)
{
    struct futex_waitv waiters[2];
    memset(waiters, 0, sizeof waiters);
    waiters[0].val = expected;
    waiters[0].uaddr = (uintptr_t)&addr->value;
    waiters[0].flags = FUTEX_32 | FUTEX_PRIVATE_FLAG;
    waiters[1].val = 0;
    waiters[1].uaddr = (uintptr_t)&watched->value;
    waiters[1].flags = FUTEX_32 | FUTEX_PRIVATE_FLAG;
    /* The deadline is absolute, on the clock named last. */
    return syscall(SYS_futex_waitv, waiters, 2, 0, deadline, CLOCK_MONOTONIC);
}

fs_result fs_wait_watching(fs_atomic_u32 *addr, uint32_t expected,
                           const fs_atomic_u32 *watched, int64_t deadline_ns)
{
    struct timespec deadline, *deadline_ptr = NULL;
    long woken;
    if (deadline_ns != FS_NO_DEADLINE) {
        deadline.tv_sec = (time_t)(deadline_ns / 1000000000);
        deadline.tv_nsec = (long)(deadline_ns % 1000000000);
        deadline_ptr = &deadline;
    }
    woken = futex_waitv2(addr, expected, watched, deadline_ptr);
    if (woken < 0) {
        switch (errno) {
        case ETIMEDOUT: return FS_TIMED_OUT;
        case EINTR:     return FS_INTERRUPTED;
        default:        break;   /* EAGAIN: one of the words had changed */
        }
    }
    return fs_load_u32(watched) != 0 ? FS_INTERRUPTED : FS_OK;
}

int fs_wait_can_watch(void)
{
    /* A watched word that is already nonzero: a kernel that knows the call
     * returns at once with EAGAIN. */
    fs_atomic_u32 word = { 0 }, set = { 1 };
    return futex_waitv2(&word, 0, &set, NULL) < 0 && errno == EAGAIN;
}

#else   /* headers older than Linux 5.16 */

fs_result fs_wait_watching(fs_atomic_u32 *addr, uint32_t expected,
                           const fs_atomic_u32 *watched, int64_t deadline_ns)
{ (void)watched; return fs_wait(addr, expected, deadline_ns); }

int fs_wait_can_watch(void) { return 0; }

#endif

void fs_wake_one(fs_atomic_u32 *addr)
{ futex(addr, FUTEX_WAKE_BITSET, 1, NULL); }

void fs_wake_all(fs_atomic_u32 *addr)
{ futex(addr, FUTEX_WAKE_BITSET, INT_MAX, NULL); }

void fs_wait_after_fork_child(void) { /* the kernel keeps no state for us */ }

#endif /* FS_WAIT_FUTEX */
