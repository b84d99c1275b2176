"""The benchmark's floor: what no lock can beat, for bench/ only.

Built as fastsync._bench_floor next to fastsync's own extension, by the same
build, when FASTSYNC_BENCH_FLOOR=1 is set (see setup.py); users' fastsync has
none of it.

The classes have methods of the same shapes as fastsync's primitives that do
nothing, so bench/ can show the cost of the Python call itself.
_native_handoffs does the benchmark's hand-offs (ping-pong, Barrier) between
two C threads over fastsync's wait layer, with no Python and no GIL, so bench/
can show how much of a round trip the hand-off itself takes.
"""

cimport cython
from cpython.pythread cimport PyThread_start_new_thread
from libc.stdint cimport int64_t, uint32_t

from fastsync._compiled cimport (FS_NO_DEADLINE, fs_atomic_u32, fs_load_u32, fs_monotonic_ns,
                                 fs_spin_then_wait, fs_store_u32, fs_wait, fs_wake_one)

include "fastsync/_exit.pxi"   # fastsync's __exit__ without an argument tuple


@cython.final
cdef class _CallFloor:
    """Not a lock: every method returns at once."""

    def acquire(self, blocking=True, timeout=-1):
        return True

    def release(self):
        pass

    def __enter__(self):
        return True

    # __exit__: floor_exit, installed below the class.

    def is_set(self):
        return True

    def set(self):
        pass

    def clear(self):
        pass

    def wait(self, timeout=None):
        return True

    def notify(self, n=1):
        pass


cdef object floor_exit(object self):
    return None

fastsync_install_exit(_CallFloor, 3, floor_exit)


@cython.final
cdef class _SemaphoreCallFloor:
    """The floor in Semaphore's shapes (release takes n)."""

    def acquire(self, blocking=True, timeout=None):
        return True

    def release(self, n=1):
        pass

    def __enter__(self, blocking=True, timeout=None):
        return True

    # __exit__: floor_exit, installed below the class.

fastsync_install_semaphore_exit(_SemaphoreCallFloor, 3, floor_exit, None)   # the same empty __exit__


ctypedef struct Handoffs:
    fs_atomic_u32 turn       # hand-offs so far; the partner moves on even turns
    fs_atomic_u32 finished   # set by the partner thread as its last act
    uint32_t limit
    int64_t spin_ns


cdef void take_turns(Handoffs *run, uint32_t parity) noexcept nogil:
    cdef uint32_t turn
    while True:
        turn = fs_load_u32(&run.turn)
        if turn >= run.limit:
            return
        if turn % 2 != parity:
            # Woken, changed, or a signal: look again.
            fs_spin_then_wait(&run.turn, turn, FS_NO_DEADLINE, run.spin_ns)
        else:
            fs_store_u32(&run.turn, turn + 1)
            fs_wake_one(&run.turn)


cdef void handoff_partner(void *arg) noexcept nogil:
    cdef Handoffs *run = <Handoffs *>arg
    take_turns(run, 0)
    fs_store_u32(&run.finished, 1)
    fs_wake_one(&run.finished)


def _native_handoffs(long count, int64_t spin_ns):
    """Nanoseconds for `count` hand-offs between this thread and a C thread,
    each side spinning for up to spin_ns (fastsync's threads spin for
    fastsync._compiled._spin_ns()), then sleeping in the wait layer until the
    other passes it the turn.  The GIL is released throughout and Ctrl-C is
    ignored."""
    cdef Handoffs run
    cdef int64_t start, elapsed
    if not 0 < count < 2**30:
        raise ValueError("count must be between 1 and 2**30 - 1")
    if not 0 <= spin_ns <= 10**9:
        raise ValueError("spin time must be between 0 and 10**9 ns")
    fs_store_u32(&run.turn, 0)
    fs_store_u32(&run.finished, 0)
    run.limit = <uint32_t>count + 1
    run.spin_ns = spin_ns
    if PyThread_start_new_thread(handoff_partner, &run) == <unsigned long>-1:
        raise RuntimeError("can't start a thread")
    with nogil:
        while fs_load_u32(&run.turn) == 0:          # the partner's first move: it runs
            fs_wait(&run.turn, 0, FS_NO_DEADLINE)
        start = fs_monotonic_ns()
        take_turns(&run, 1)
        elapsed = fs_monotonic_ns() - start
        while fs_load_u32(&run.finished) == 0:      # no thread outlives the call
            fs_wait(&run.finished, 0, FS_NO_DEADLINE)
    return elapsed
