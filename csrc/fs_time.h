/* Time for every layer: deadlines are absolute nanoseconds on the monotonic
 * clock, and FS_NO_DEADLINE means "wait for ever". */
#ifndef FASTSYNC_TIME_H
#define FASTSYNC_TIME_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FS_NO_DEADLINE ((int64_t)-1)

/* Monotonic time in nanoseconds (CLOCK_MONOTONIC, QueryPerformanceCounter). */
int64_t fs_monotonic_ns(void);

/* Deadline for a relative timeout, saturating to "no deadline" when the sum
 * would not fit (a timeout of centuries never expires in practice). */
int64_t fs_deadline_after(int64_t timeout_ns);

#ifdef __cplusplus
}
#endif
#endif /* FASTSYNC_TIME_H */
