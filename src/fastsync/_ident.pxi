# ---------------------------------------------------------------------------
# Thread ids: who owns an RLock, who took a Lock, who waits

cdef extern from *:
    """
    /* threading.get_ident() without the call into libpython: CPython's
     * PyThread_get_thread_ident is exactly this on both families. */
    #if defined(_WIN32)
    #  define fastsync_thread_ident() ((unsigned long)GetCurrentThreadId())
    #else
    #  include <pthread.h>
    #  if defined(__x86_64__) && defined(__linux__) && defined(__GLIBC__)
    /* x86-64 keeps the thread pointer at %fs:0, and glibc's pthread_self()
     * returns it (its thread descriptor starts at the thread pointer).
     * Reading it inline saves a call through the PLT, twice per RLock
     * acquire+release, and deciding here rather than at load time saves a
     * test of a flag in each.  The module checks the two agree when it loads.
     * Other C libraries (musl, Android's) take the call. */
    #    define FASTSYNC_FS_SELF 1
    static inline unsigned long fastsync_thread_ident(void)
    {
        unsigned long self;
        __asm__ ("mov %%fs:0, %0" : "=r" (self));
        return self;
    }
    #  else
    #    define fastsync_thread_ident() ((unsigned long)pthread_self())
    #  endif
    #endif

    /* 1: the id is read inline and agrees with pthread_self(); 0: it comes
     * from a call; -1: read inline but it disagrees, which the module
     * refuses to load with. */
    static int fastsync_thread_ident_check(void)
    {
    #if defined(FASTSYNC_FS_SELF)
        return fastsync_thread_ident() == (unsigned long)pthread_self() ? 1 : -1;
    #else
        return 0;
    #endif
    }
    """
    unsigned long fastsync_thread_ident() nogil
    int fastsync_thread_ident_check()


cdef inline unsigned long thread_id() noexcept nogil:
    return fastsync_thread_ident()
