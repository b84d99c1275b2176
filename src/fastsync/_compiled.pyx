"""The compiled backend: the Python types over csrc/fastsync.h.

The C layer's declarations are in _compiled.pxd; the parts of this module
are the .pxi files included below, in the order they are needed; the
module's start-up is at the end, in one place.  Cython's directives are in
setup.py, shared with the benchmark's floor.

Every uncontended operation is one atomic instruction done while holding the
GIL.  The GIL is released only around a wait that must block; when a signal
interrupts that wait we take the GIL back, run the Python signal handlers
(which may raise, e.g. KeyboardInterrupt) and otherwise wait again until the
same deadline.

Arguments are checked in C for the common types.  Anything our checks reject
is handed to a fresh threading lock, so the caller gets exactly the exception
and message the running Python's threading would give.
"""

cimport cython
from cpython.exc cimport PyErr_CheckSignals
from cpython.mem cimport PyMem_Free, PyMem_Realloc
from cpython.float cimport PyFloat_Check, PyFloat_AS_DOUBLE
from cpython.long cimport PyLong_Check, PyLong_AsLongLongAndOverflow
from libc.math cimport ceil, floor, isnan
from libc.stdint cimport UINT64_MAX, int64_t, uint32_t, uint64_t, uintptr_t

import _thread
import atexit
import os
import sys
import warnings

from fastsync._barrier import BrokenBarrierError, make_barrier_class
from fastsync._common import (ISSET_WARNING, ISSET_WARNS, NOTIFYALL_WARNING, RLOCK_SHOWS_PARAMETERS, WAIT_TESTS_LE,
                              cannot_pickle, check_rlock_arguments, raise_as_threading, semaphore_exit_arguments,
                              type_name)
from fastsync._env import NO_SPIN, env_flag

__all__ = ["Barrier", "BoundedSemaphore", "Condition", "Event", "Lock", "RLock", "RWLock", "Semaphore"]

WAIT_BACKEND = FS_WAIT_BACKEND_NAME.decode("ascii")

include "_exit.pxi"            # __exit__ without an argument tuple
include "_arguments.pxi"       # __enter__ with arguments, timeouts, blocking
include "_ident.pxi"           # thread ids
include "_waiting.pxi"         # spinning, the GIL hint, the blocking loops
include "_blocked.pxi"         # who waits for what, for fastsync.debug
include "_debug.pxi"           # fastsync.debug's hooks, behind one flag
include "_lock.pxi"
include "_rlock.pxi"
include "_rwlock.pxi"          # RWLock and its two sides
include "_event.pxi"
include "_semaphore.pxi"
include "_condition.pxi"       # Condition, and Barrier over it
include "_under_gevent.pxi"    # threading's cooperative primitives under gevent
include "_installed.pxi"       # what fastsync.patch() installs in threading


# ---------------------------------------------------------------------------
# Start-up and process life: fork, exit, Ctrl-C on Windows

cdef extern from *:
    """
    /* Windows has no signal that interrupts a wait: CPython sets this event
     * when Ctrl-C trips SIGINT, and the Win32 wait layer watches it.  The
     * declaration repeats CPython's own (exported, not in every version's
     * public headers).  Not built or run on this project's CI machine. */
    #if defined(_WIN32)
    PyAPI_FUNC(void *) _PyOS_SigintEvent(void);
    static void fastsync_watch_sigint(void)
    { fs_wait_set_interrupt_event(_PyOS_SigintEvent()); }
    #else
    static void fastsync_watch_sigint(void) {}
    #endif
    """
    void fastsync_watch_sigint()


def _after_fork_in_child():
    fs_after_fork_child()
    blocked_after_fork(thread_id())
    fs_store_uptr_relaxed(&signal_thread_ident, thread_id())   # the forking thread is the child's main


fastsync_lock_exit_takes_three = _lock_exit_takes_three()
fastsync_install_exit(Lock, 0, lock_exit)
fastsync_install_exit(RLock, 1, rlock_exit)
fastsync_install_semaphore_exit(Semaphore, 2, semaphore_exit, semaphore_exit_arguments)
fastsync_install_exit(_RWLockReader, 4, reader_exit)   # 3 is the benchmark floor's
fastsync_install_exit(_RWLockWriter, 5, writer_exit)
fastsync_install_rw_acquire(_RWLockReader, 0, rw_side_offset())
fastsync_install_rw_acquire(_RWLockWriter, 1, rw_side_offset())
fastsync_install_lock_acquire(Lock, lock_state_offset(), lock_owner_offset())
fastsync_install_rlock_acquire(RLock, rlock_state_offset())
if _enter_takes_acquire_arguments(_thread.allocate_lock):
    fastsync_install_enter_taking_arguments(Lock, 0, NULL)
if _enter_takes_acquire_arguments(_thread.RLock):
    fastsync_install_enter_taking_arguments(RLock, 1, rlock_enter)
for _slot, _cls in enumerate((Lock, Event, Condition, Semaphore, BoundedSemaphore)):
    fastsync_install_init(_cls, _slot, _cls.__name__, raise_as_threading)
del _slot, _cls
if not RLOCK_SHOWS_PARAMETERS:   # RLock's signature is threading.RLock's: ()
    rlock_doc_without_parameters = ("RLock()\n--\n\n" + RLock.__doc__).encode()
    fastsync_set_type_doc(RLock, rlock_doc_without_parameters)
_ident_check = fastsync_thread_ident_check()
if _ident_check < 0:
    # Owners would be recorded under ids threading.get_ident() never returns.
    raise ImportError("fastsync._compiled: the thread id read from %fs:0 is not "
                      "pthread_self() on this C library; please report this")
# True where the thread id is read inline (x86-64 Linux with glibc); elsewhere
# it comes from a call.  Tests check it.
THREAD_IDENT_INLINE = _ident_check == 1
del _ident_check

# Both need thread_id(), so they are set once it is ready.
fs_store_uptr_relaxed(&signal_thread_ident, __import__("threading").main_thread().ident)
_watch_signals()
_cpus = _usable_cpus()
if _cpus > 1 and not env_flag(NO_SPIN):
    _set_spin_ns(DEFAULT_SPIN_NS)
    # No more spinners than CPUs.  Not one fewer (a CPU kept for the GIL's
    # holder): a thread that starts to wait while its partner is still
    # leaving its spin would find no room and sleep.
    fs_spin_set_limit(_cpus)
del _cpus

fastsync_watch_sigint()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_note_exiting_thread)
_switch_constructors()
if sys.modules.get("fastsync.debug") is not None:
    sys.modules["fastsync.debug"]._attach(sys.modules[__name__])
