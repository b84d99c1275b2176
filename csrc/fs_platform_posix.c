/* The generic POSIX platform (fs_platform.h): pthread mutexes for the
 * parking lot's buckets, and a pipe per thread as its token.  Compiled on
 * macOS and the BSDs, and on Linux when FS_WAIT_POSIX is defined.
 * csrc/DESIGN.md says why pipes and how fork() is handled. */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE   /* pipe2(); with -std=c99 also the POSIX declarations */
#endif
#include "fs_wait.h"

#if defined(FS_WAIT_POSIX)

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include "fs_list.h"
#include "fs_parking.h"
#include "fs_platform.h"
#include "fs_time.h"

void fs_platform_mutex_lock(fs_platform_mutex *mutex) { pthread_mutex_lock(mutex); }
void fs_platform_mutex_unlock(fs_platform_mutex *mutex) { pthread_mutex_unlock(mutex); }

/* ---- per-thread pipes ----------------------------------------------------- */

typedef struct fs_thread_pipe fs_thread_pipe;
struct fs_thread_pipe {
    int read_fd, write_fd;      /* -1 until created */
    fs_list_node node;          /* in `pipes` while the descriptors are open */
};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int initialized;         /* written once, inside init_once */
static int have_key;
static pthread_key_t pipe_key;
/* Every open pipe of the process, so a forked child can close the ones it
 * inherited from threads it does not have. */
static pthread_mutex_t pipes_mutex = PTHREAD_MUTEX_INITIALIZER;
static fs_list pipes;

static void close_pipe_locked(fs_thread_pipe *p)
{
    if (p->read_fd < 0)
        return;
    fs_list_remove(&pipes, &p->node);
    close(p->read_fd);
    close(p->write_fd);
    p->read_fd = p->write_fd = -1;
}

static void pipe_destructor(void *value)   /* thread exit */
{
    fs_thread_pipe *p = (fs_thread_pipe *)value;
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

/* The calling thread's pipe, or NULL when none can be had. */
static fs_thread_pipe *thread_pipe(void)
{
    fs_thread_pipe *p;
    int fds[2];
    if (!have_key)
        return NULL;
    p = (fs_thread_pipe *)pthread_getspecific(pipe_key);
    if (p != NULL && p->read_fd >= 0)
        return p;
    if (p == NULL) {
        p = (fs_thread_pipe *)malloc(sizeof *p);
        if (p == NULL)
            return NULL;
        p->read_fd = p->write_fd = -1;
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
        fs_list_push_back(&pipes, &p->node);
    }
    pthread_mutex_unlock(&pipes_mutex);
    return p->read_fd >= 0 ? p : NULL;
}

int fs_token_of_this_thread(fs_token *token)
{
    fs_thread_pipe *p = thread_pipe();
    if (p == NULL)
        return 0;
    token->pipe = p;
    token->write_fd = p->write_fd;
    return 1;
}

/* ---- fork ----------------------------------------------------------------- */

/* The prepare handler takes every lock of the wait layer (pipes first, then
 * the buckets in order; no code path nests them the other way), so the child
 * inherits consistent lists and locks that its only thread owns.  Buckets are
 * never held across a blocking call, so this cannot deadlock. */
static pid_t reset_done_in;     /* the child whose state was last reset */

static void lock_everything(void)
{
    pthread_mutex_lock(&pipes_mutex);
    fs_parking_for_each_mutex(fs_platform_mutex_lock);
}

static void unlock_everything(void)
{
    fs_parking_for_each_mutex(fs_platform_mutex_unlock);
    pthread_mutex_unlock(&pipes_mutex);
}

/* In the child, with every lock held by the calling (only) thread. */
static void forget_parent_threads(void)
{
    fs_thread_pipe *mine =
        have_key ? (fs_thread_pipe *)pthread_getspecific(pipe_key) : NULL;
    fs_parking_forget_waiters();
    while (pipes.head != NULL) {
        fs_thread_pipe *p = FS_LIST_ENTRY(pipes.head, fs_thread_pipe, node);
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

static void reinit_mutex(fs_platform_mutex *mutex) { pthread_mutex_init(mutex, NULL); }

void fs_wait_after_fork_child(void)
{
    /* Normally our atfork child handler has already done the work.  If the
     * fork bypassed pthread_atfork, the locks may be held by threads that do
     * not exist here: re-create them (the child is single-threaded now). */
    if (!initialized || reset_done_in == getpid())
        return;
    pthread_mutex_init(&pipes_mutex, NULL);
    fs_parking_for_each_mutex(reinit_mutex);
    lock_everything();
    forget_parent_threads();
    unlock_everything();
}

static void initialize(void)
{
    have_key = pthread_key_create(&pipe_key, pipe_destructor) == 0;
    pthread_atfork(before_fork, after_fork_parent, after_fork_child);
    initialized = 1;
}

int fs_platform_enter(void)
{
    int cancel_state;
    pthread_once(&init_once, initialize);
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
    return cancel_state;
}

void fs_platform_leave(int saved)
{ pthread_setcancelstate(saved, NULL); }

/* ---- sleeping and waking -------------------------------------------------- */

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

fs_token_sleep_result fs_token_sleep(fs_token *token, int64_t timeout_ms)
{
    struct pollfd pfd;
    int n;
    pfd.fd = token->pipe->read_fd;
    if (pfd.fd < 0)
        return FS_TOKEN_BROKEN;     /* a fork in a signal handler closed it */
    pfd.events = POLLIN;
    pfd.revents = 0;
    n = poll(&pfd, 1, timeout_ms > INT_MAX ? INT_MAX : (int)timeout_ms);
    if (n > 0) {
        if (drain(pfd.fd))
            return FS_TOKEN_SENT;
        if (pfd.revents & (POLLNVAL | POLLERR | POLLHUP))
            return FS_TOKEN_BROKEN;
        return FS_TOKEN_AGAIN;
    }
    if (n == 0)
        return FS_TOKEN_AGAIN;
    if (errno == EINTR)
        return FS_TOKEN_INTERRUPTED;
    return FS_TOKEN_BROKEN;         /* ENOMEM and the like */
}

void fs_token_await_send(const fs_token *token)
{
    struct pollfd pfd;
    int fd = token->pipe->read_fd;
    if (fd < 0)
        return;                     /* closed by a fork: the send went to the parent */
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

void fs_token_send(fs_token token)
{
    const char byte = 0;
    /* The pipe holds at most the one byte we owe, so this never blocks;
     * EAGAIN would mean a byte is already there, which wakes the waiter too. */
    while (write(token.write_fd, &byte, 1) < 0 && errno == EINTR) {}
}

void fs_token_interruption_reported(fs_token *token)
{ (void)token; /* a signal needs no consuming */ }

fs_result fs_platform_nap(int64_t deadline_ns)
{
    struct timespec pause = { 0, 1000000 };
    if (deadline_ns != FS_NO_DEADLINE) {
        int64_t remaining = deadline_ns - fs_monotonic_ns();
        if (remaining <= 0)
            return FS_OK;
        if (remaining < pause.tv_nsec)
            pause.tv_nsec = (long)remaining;
    }
    if (nanosleep(&pause, NULL) != 0 && errno == EINTR)
        return FS_INTERRUPTED;
    return FS_OK;
}

#endif /* FS_WAIT_POSIX */
