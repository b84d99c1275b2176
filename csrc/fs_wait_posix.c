/* Generic POSIX backend (macOS, the BSDs; on Linux only when FS_WAIT_POSIX is
 * defined): the parking lot of fs_parking.h, with pthread mutexes for bucket
 * locks and a pipe per thread for sleeping and waking.
 *
 * A parked thread sleeps in poll() on the read end of its own pipe, and a
 * waker unlinks it and writes one byte to the write end.  Not a condition
 * variable: pthread_cond_wait does not return when a signal handler runs, and
 * Python needs exactly that (its handlers are installed without SA_RESTART;
 * poll() fails with EINTR on every Unix whatever the flag says).
 *
 * Exactly one byte per wake-up, written after the waker has unlocked the
 * bucket; a waiter that gives up after a waker chose it waits for that byte
 * (fs_parking.h says why).  So the pipe is always empty when a wait starts,
 * and no waker ever writes to a thread that has moved on (its pipe could be
 * closed and the descriptor number reused).  A stray byte (should never
 * happen) costs one extra loop, not a wrong result.
 *
 * Pipes are per thread, created on the first wait that blocks (O_CLOEXEC,
 * O_NONBLOCK) and closed by a pthread_key destructor when the thread exits:
 * two descriptors for every live thread that has ever blocked.
 *
 * fork(): only the forking thread survives in the child, and the child must
 * not keep any pipe it shares with the parent (a byte written for one would be
 * read by the other).  pthread_atfork handlers take all our locks around
 * fork(); in the child, the handler empties the buckets (every waiter was
 * another thread, now gone) and closes every inherited pipe; the forking
 * thread gets a new one on its next wait.  fs_wait_after_fork_child() (the
 * Python layer's hook) does nothing more after that, and recovers the same
 * state if a fork ever bypassed pthread_atfork.
 *
 * Known limit: a signal that arrives after the caller's last look at the word
 * but before poll() starts only runs its handler; the wait goes on until woken
 * or the deadline.  The futex backend and CPython's own locks share it. */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE   /* pipe2(); with -std=c99 also the POSIX declarations */
#endif
#include "fs_wait.h"
#include "fs_time.h"

#if defined(FS_WAIT_POSIX)

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* ---- the parking lot ------------------------------------------------------ */

typedef pthread_mutex_t fs_bucket_lock;
typedef int fs_wake_token;      /* write end of the waiter's pipe */
#include "fs_parking.h"

static void bucket_lock_acquire(fs_bucket_lock *lock) { pthread_mutex_lock(lock); }
static void bucket_lock_release(fs_bucket_lock *lock) { pthread_mutex_unlock(lock); }

static void wake_token_send(fs_wake_token fd)
{
    const char byte = 0;
    /* The pipe holds at most the one byte we owe, so this never blocks;
     * EAGAIN would mean a byte is already there, which wakes the waiter too. */
    while (write(fd, &byte, 1) < 0 && errno == EINTR) {}
}

/* ---- per-thread pipes ----------------------------------------------------- */

typedef struct fs_pipe fs_pipe;
struct fs_pipe {
    int read_fd, write_fd;      /* -1 until created */
    fs_pipe *next, *prev;       /* in `pipes` while the descriptors are open */
};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int initialized;         /* written once, inside init_once */
static int have_key;
static pthread_key_t pipe_key;
/* Every open pipe of the process, so a forked child can close the ones it
 * inherited from threads it does not have. */
static pthread_mutex_t pipes_mutex = PTHREAD_MUTEX_INITIALIZER;
static fs_pipe *pipes;

static void close_pipe_locked(fs_pipe *p)
{
    if (p->read_fd < 0)
        return;
    if (p->prev) p->prev->next = p->next; else pipes = p->next;
    if (p->next) p->next->prev = p->prev;
    close(p->read_fd);
    close(p->write_fd);
    p->read_fd = p->write_fd = -1;
}

static void pipe_destructor(void *value)   /* thread exit */
{
    fs_pipe *p = (fs_pipe *)value;
    pthread_mutex_lock(&pipes_mutex);
    close_pipe_locked(p);
    pthread_mutex_unlock(&pipes_mutex);
    free(p);
}

static int set_fd_flags(int fd)
{
    int flags = fcntl(fd, F_GETFL);
    return flags == -1
        || fcntl(fd, F_SETFL, flags | O_NONBLOCK) == -1
        || fcntl(fd, F_SETFD, FD_CLOEXEC) == -1 ? -1 : 0;
}

static int open_pipe(int fds[2])
{
#if defined(__linux__)
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0)
        return 0;
    if (errno != ENOSYS)
        return -1;
#endif
    /* fork() waits for pipes_mutex (held here), but vfork/posix_spawn in
     * another thread could pass these two descriptors to an exec'd program
     * before FD_CLOEXEC is set: a leak, nothing worse. */
    if (pipe(fds) != 0)
        return -1;
    if (set_fd_flags(fds[0]) != 0 || set_fd_flags(fds[1]) != 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    return 0;
}

/* The calling thread's pipe, or NULL when none can be had (no descriptors
 * left, no memory). */
static fs_pipe *thread_pipe(void)
{
    fs_pipe *p;
    int fds[2];
    if (!have_key)
        return NULL;
    p = (fs_pipe *)pthread_getspecific(pipe_key);
    if (p != NULL && p->read_fd >= 0)
        return p;
    if (p == NULL) {
        p = (fs_pipe *)malloc(sizeof *p);
        if (p == NULL)
            return NULL;
        p->read_fd = p->write_fd = -1;
        p->next = p->prev = NULL;
        if (pthread_setspecific(pipe_key, p) != 0) {
            free(p);
            return NULL;
        }
    }
    /* The list lock also keeps a concurrent fork() from splitting the
     * creation and the registration. */
    pthread_mutex_lock(&pipes_mutex);
    if (open_pipe(fds) == 0) {
        p->read_fd = fds[0];
        p->write_fd = fds[1];
        p->prev = NULL;
        p->next = pipes;
        if (pipes) pipes->prev = p;
        pipes = p;
    }
    pthread_mutex_unlock(&pipes_mutex);
    return p->read_fd >= 0 ? p : NULL;
}

/* ---- fork ----------------------------------------------------------------- */

/* The prepare handler takes every lock of this file (pipes first, then the
 * buckets in order; no code path nests them the other way), so the child
 * inherits consistent lists and locks that its only thread owns.  Buckets are
 * never held across a blocking call, so this cannot deadlock. */
static pid_t reset_done_in;     /* the child whose state was last reset */

static void lock_everything(void)
{
    size_t i;
    pthread_mutex_lock(&pipes_mutex);
    for (i = 0; i < PARKING_BUCKETS; i++)
        pthread_mutex_lock(&parking_buckets[i].lock);
}

static void unlock_everything(void)
{
    size_t i;
    for (i = 0; i < PARKING_BUCKETS; i++)
        pthread_mutex_unlock(&parking_buckets[i].lock);
    pthread_mutex_unlock(&pipes_mutex);
}

/* In the child, with every lock held by the calling (only) thread. */
static void forget_parent_threads(void)
{
    size_t i;
    fs_pipe *mine = have_key ? (fs_pipe *)pthread_getspecific(pipe_key) : NULL;
    for (i = 0; i < PARKING_BUCKETS; i++)     /* all were other threads */
        parking_buckets[i].head = parking_buckets[i].tail = NULL;
    while (pipes != NULL) {
        fs_pipe *p = pipes;
        close_pipe_locked(p);       /* unlinks p; the parent keeps its copy */
        if (p != mine)
            free(p);                /* its thread exists only in the parent */
    }
    reset_done_in = getpid();
}

static void before_fork(void) { lock_everything(); }
static void after_fork_parent(void) { unlock_everything(); }
static void after_fork_child(void)
{
    forget_parent_threads();
    unlock_everything();
}

void fs_wait_after_fork_child(void)
{
    size_t i;
    /* Normally our atfork child handler has already done the work.  If the
     * fork bypassed pthread_atfork, the locks may be held by threads that do
     * not exist here: re-create them (the child is single-threaded now). */
    if (!initialized || reset_done_in == getpid())
        return;
    pthread_mutex_init(&pipes_mutex, NULL);
    for (i = 0; i < PARKING_BUCKETS; i++)
        pthread_mutex_init(&parking_buckets[i].lock, NULL);
    lock_everything();
    forget_parent_threads();
    unlock_everything();
}

static void initialize(void)
{
    size_t i;
    for (i = 0; i < PARKING_BUCKETS; i++) {
        pthread_mutex_init(&parking_buckets[i].lock, NULL);
        parking_buckets[i].head = parking_buckets[i].tail = NULL;
    }
    have_key = pthread_key_create(&pipe_key, pipe_destructor) == 0;
    pthread_atfork(before_fork, after_fork_parent, after_fork_child);
    initialized = 1;
}

/* ---- waiting -------------------------------------------------------------- */

/* Empties the (non-blocking) pipe; returns 1 if it held anything. */
static int drain(int fd)
{
    char buf[16];
    int got = 0;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n > 0) {
            got = 1;
            if ((size_t)n < sizeof buf)
                return got;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            return got;             /* EAGAIN: empty */
        }
    }
}

/* A waker has unlinked us and writes our byte right after releasing the
 * bucket mutex: wait for it, signals or not. */
static void await_byte(int fd)
{
    struct pollfd pfd;
    while (!drain(fd)) {
        pfd.fd = fd;
        pfd.events = POLLIN;
        pfd.revents = 0;
        if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
            return;                 /* cannot happen with a valid fd */
        if (pfd.revents & POLLNVAL)
            return;
    }
}

/* Fallback when the thread has no pipe: sleep briefly (signals interrupt it)
 * and report a spurious wake-up, so the caller's loop polls the word.  Only
 * for descriptor or memory exhaustion. */
static fs_result wait_without_pipe(fs_atomic_u32 *addr, uint32_t expected,
                                   int64_t deadline_ns)
{
    struct timespec pause = { 0, 1000000 };
    if (fs_load_u32(addr) != expected)
        return FS_OK;
    if (deadline_ns != FS_NO_DEADLINE) {
        int64_t remaining = deadline_ns - fs_monotonic_ns();
        if (remaining <= 0)
            return FS_TIMED_OUT;
        if (remaining < pause.tv_nsec)
            pause.tv_nsec = (long)remaining;
    }
    if (nanosleep(&pause, NULL) != 0 && errno == EINTR)
        return FS_INTERRUPTED;
    if (deadline_ns != FS_NO_DEADLINE && fs_monotonic_ns() >= deadline_ns)
        return FS_TIMED_OUT;
    return FS_OK;
}

static fs_result park(fs_pipe *p, fs_waiter *w, int64_t deadline_ns)
{
    fs_result outcome;
    for (;;) {
        struct pollfd pfd;
        int64_t timeout_ms;
        int n;
        if (!parking_sleep_ms(deadline_ns, INT_MAX, &timeout_ms)) {
            outcome = FS_TIMED_OUT;
            break;
        }
        pfd.fd = p->read_fd;
        pfd.events = POLLIN;
        pfd.revents = 0;
        n = poll(&pfd, 1, (int)timeout_ms);     /* -1: no deadline */
        if (n > 0) {
            int got = drain(p->read_fd);
            if (fs_load_u32(&w->woken))
                return FS_OK;           /* the usual way out */
            if (!got && (pfd.revents & (POLLNVAL | POLLERR | POLLHUP))) {
                outcome = FS_OK;        /* broken pipe: give up, callers recheck */
                break;
            }
            continue;                           /* a stray byte */
        }
        if (n == 0)
            continue;                           /* the clock decides at the top */
        if (errno == EINTR) {
            outcome = FS_INTERRUPTED;
            break;
        }
        outcome = FS_OK;                /* ENOMEM and the like: spurious */
        break;
    }

    if (parking_withdraw(w))
        return outcome;
    await_byte(p->read_fd);
    return FS_OK;
}

fs_result fs_wait(fs_atomic_u32 *addr, uint32_t expected, int64_t deadline_ns)
{
    fs_pipe *p;
    fs_waiter w;
    fs_result result = FS_OK;
    int cancel_state;

    if (fs_load_u32(addr) != expected)
        return FS_OK;
    pthread_once(&init_once, initialize);
    p = thread_pipe();
    if (p == NULL)
        return wait_without_pipe(addr, expected, deadline_ns);

    /* poll() is a cancellation point; a thread cancelled while parked would
     * leave its (stack) record in the bucket.  Defer cancellation instead. */
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
    if (parking_enqueue(&w, addr, expected, p->write_fd))
        result = park(p, &w, deadline_ns);
    pthread_setcancelstate(cancel_state, NULL);
    return result;
}

/* ---- waking ----------------------------------------------------------------- */

static void wake(fs_atomic_u32 *addr, int all)
{
    int cancel_state;
    pthread_once(&init_once, initialize);
    /* write() is a cancellation point too. */
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
    parking_wake(addr, all);
    pthread_setcancelstate(cancel_state, NULL);
}

void fs_wake_one(fs_atomic_u32 *addr) { wake(addr, 0); }
void fs_wake_all(fs_atomic_u32 *addr) { wake(addr, 1); }

#endif /* FS_WAIT_POSIX */
