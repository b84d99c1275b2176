/* The monotonic clock (fs_time.h). */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include "fs_time.h"

#if defined(_WIN32)
#include <windows.h>

int64_t fs_monotonic_ns(void)
{
    static LARGE_INTEGER frequency;   /* constant since boot; racing writers agree */
    LARGE_INTEGER now;
    if (frequency.QuadPart == 0)
        QueryPerformanceFrequency(&frequency);
    QueryPerformanceCounter(&now);
    /* Split to avoid overflowing 64 bits for long uptimes. */
    return (int64_t)(now.QuadPart / frequency.QuadPart) * 1000000000
         + (int64_t)(now.QuadPart % frequency.QuadPart) * 1000000000
           / frequency.QuadPart;
}
#else
#include <time.h>

int64_t fs_monotonic_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}
#endif

int64_t fs_deadline_after(int64_t timeout_ns)
{
    int64_t now = fs_monotonic_ns();
    if (timeout_ns < 0 || timeout_ns > INT64_MAX - now)
        return FS_NO_DEADLINE;
    return now + timeout_ns;
}
