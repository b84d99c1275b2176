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

void fs_wake_one(fs_atomic_u32 *addr)
{ futex(addr, FUTEX_WAKE_BITSET, 1, NULL); }

void fs_wake_all(fs_atomic_u32 *addr)
{ futex(addr, FUTEX_WAKE_BITSET, INT_MAX, NULL); }

void fs_wait_after_fork_child(void) { /* the kernel keeps no state for us */ }

#endif /* FS_WAIT_FUTEX */
