/* Spinning (fs_spin.h): the limit on spinners and each thread's record of
 * whether spinning pays for it. */
#include <stddef.h>
#include "fs_spin.h"
#include "fs_time.h"

static fs_atomic_u32 spinning_threads;
static fs_atomic_u32 spinner_limit = { UINT32_MAX };

void fs_spin_set_limit(uint32_t threads)
{ fs_store_u32(&spinner_limit, threads); }

uint32_t fs_spinning_threads(void)
{ return fs_load_u32(&spinning_threads); }

void fs_spin_after_fork_child(void)
{ fs_store_u32(&spinning_threads, 0); }

#if defined(_MSC_VER)
#  define FS_THREAD_LOCAL __declspec(thread)
#else
#  define FS_THREAD_LOCAL __thread
#endif

/* fs_spin_watch's word, or NULL. */
static FS_THREAD_LOCAL const fs_atomic_u32 *watched_word;

void fs_spin_watch(const fs_atomic_u32 *watched)
{ watched_word = watched; }

/* The clock is read once per batch of looks: a look is a load and a pause,
 * far cheaper than a clock read.  Returns 1 if the word changed, -1 if the
 * watched word was set, 0 if the time ran out. */
#define LOOKS_PER_CLOCK_READ 16

static int look_until(const fs_atomic_u32 *addr, uint32_t expected, int64_t end_ns)
{
    const fs_atomic_u32 *watched = watched_word;
    do {
        int look;
        for (look = 0; look < LOOKS_PER_CLOCK_READ; look++) {
            if (fs_load_u32(addr) != expected)
                return 1;
            if (watched != NULL && fs_load_u32(watched) != 0)
                return -1;   /* fs_sleep sees it at once */
            fs_cpu_relax();
        }
    } while (fs_monotonic_ns() < end_ns);
    return 0;
}

/* Each thread learns whether spinning pays for it: after FAILS_BEFORE_PAUSE
 * spins in a row that ran out, it spins only on every PROBE_EVERY-th call
 * until one succeeds again, and each probe that fails doubles that interval
 * (up to MAX_PROBE_DOUBLINGS times).  A thread that is handed things quickly
 * (a ping-pong partner) keeps spinning; one that waits long (one of many
 * consumers of a queue), or whose partner cannot run while it spins (both on
 * one CPU of a busy machine), stops burning a CPU that other threads need. */
#define FAILS_BEFORE_PAUSE 2
#define PROBE_EVERY 16
#define MAX_PROBE_DOUBLINGS 6

static FS_THREAD_LOCAL uint32_t spins_failed_in_a_row;
static FS_THREAD_LOCAL uint32_t spins_skipped;

static int spin_pays_for_this_thread(void)
{
    uint32_t failed_probes, probe_every;
    if (spins_failed_in_a_row < FAILS_BEFORE_PAUSE)
        return 1;
    failed_probes = spins_failed_in_a_row - FAILS_BEFORE_PAUSE;
    if (failed_probes > MAX_PROBE_DOUBLINGS)
        failed_probes = MAX_PROBE_DOUBLINGS;
    probe_every = (uint32_t)PROBE_EVERY << failed_probes;
    if (++spins_skipped < probe_every)
        return 0;
    spins_skipped = 0;
    return 1;
}

int fs_spin_while(const fs_atomic_u32 *addr, uint32_t expected,
                  int64_t deadline_ns, int64_t spin_ns)
{
    int changed = 0;
    /* A word that has already changed needed no spin, so it says nothing
     * about whether spinning pays: the counters are left alone. */
    if (fs_load_u32(addr) != expected)
        return 1;
    if (spin_ns <= 0 || !spin_pays_for_this_thread())
        return 0;
    /* Spinners beyond the CPUs would only take CPU time from the threads
     * they wait for. */
    if (fs_fetch_add_u32(&spinning_threads, 1) < fs_load_u32(&spinner_limit)) {
        int64_t end_ns = fs_monotonic_ns() + spin_ns;
        if (deadline_ns != FS_NO_DEADLINE && deadline_ns < end_ns)
            end_ns = deadline_ns;
        changed = look_until(addr, expected, end_ns);
        /* A spin cut short by the watched word says nothing either way. */
        if (changed > 0)
            spins_failed_in_a_row = 0;
        else if (changed == 0 && spins_failed_in_a_row < UINT32_MAX)
            spins_failed_in_a_row++;
    }
    fs_fetch_add_u32(&spinning_threads, (uint32_t)-1);
    return changed > 0;
}

fs_result fs_spin_then_wait(fs_atomic_u32 *addr, uint32_t expected,
                            int64_t deadline_ns, int64_t spin_ns)
{
    if (fs_spin_while(addr, expected, deadline_ns, spin_ns))
        return FS_OK;
    return fs_sleep(addr, expected, deadline_ns);
}

fs_result fs_sleep(fs_atomic_u32 *addr, uint32_t expected, int64_t deadline_ns)
{
    const fs_atomic_u32 *watched = watched_word;
    if (watched != NULL)
        return fs_wait_watching(addr, expected, watched, deadline_ns);
    return fs_wait(addr, expected, deadline_ns);
}
