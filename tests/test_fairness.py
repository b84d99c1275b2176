"""Eventual fairness: a thread that releases a lock and at once takes it
again must not keep the others out, whether or not it lets go of the GIL
while it holds the lock (I/O, time.sleep, logging).

Generous bounds: these check that nobody starves, not how quickly turns
come round (bench/fairness.py measures that, side by side with threading).

Only the compiled backend's locks are ours to make fair: the fallback's Lock
is the interpreter's own lock and its RLock the interpreter's RLock, as fair
as threading's are on that interpreter (on a loaded machine, not always)."""

import importlib
import logging
import os
import threading
import time

import pytest

RUN_S = 1.0


def compiled():
    return importlib.import_module("fastsync._compiled")


def contend(lock, threads, release_gil):
    """Each thread takes the lock in a loop for RUN_S; returns every
    thread's count of acquisitions and its longest wait."""
    counts = [0] * threads
    longest = [0.0] * threads
    go, stop = threading.Event(), threading.Event()

    def work(me):
        go.wait()
        while not stop.is_set():
            asked = time.monotonic()
            with lock:
                waited = time.monotonic() - asked
                counts[me] += 1
                if release_gil:
                    time.sleep(0)
            longest[me] = max(longest[me], waited)

    workers = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(threads)]
    for w in workers:
        w.start()
    go.set()
    stop.wait(RUN_S)
    stop.set()
    for w in workers:
        w.join(30)
        assert not w.is_alive()
    return counts, longest


compiled_locks = pytest.mark.parametrize("kind", [
    pytest.param("Lock", marks=pytest.mark.cython),
    pytest.param("RLock", marks=pytest.mark.cython),
])


@compiled_locks
@pytest.mark.parametrize("release_gil", [False, True], ids=["busy", "sleep0"])
@pytest.mark.parametrize("threads", [2, 4])
def test_no_thread_starves(kind, threads, release_gil):
    counts, longest = contend(getattr(compiled(), kind)(), threads, release_gil)
    # A starved thread takes the lock once, at the start, and then waits
    # until the others stop, while they take it thousands of times.  (Not a
    # bound on the longest wait: on a loaded machine the whole process can
    # stall for most of a second.)
    assert min(counts) >= 10 and min(counts) >= max(counts) / 50, (counts, longest)


@pytest.mark.cython
def test_two_threads_logging_through_one_handler():
    """Two threads logging through one handler (each record is written to a
    file, which releases the GIL) both get their records out.  The handler
    has our RLock, as after fastsync.patch()."""
    handler = logging.FileHandler(os.devnull)
    handler.lock = compiled().RLock()
    logger = logging.Logger("fairness")
    logger.addHandler(handler)
    counts = [0, 0]
    stop = threading.Event()

    def log(me):
        while not stop.is_set():
            logger.warning("record from %d", me)
            counts[me] += 1

    workers = [threading.Thread(target=log, args=(i,), daemon=True) for i in range(2)]
    for w in workers:
        w.start()
    stop.wait(RUN_S)
    stop.set()
    for w in workers:
        w.join(30)
    handler.close()
    assert min(counts) >= 10, counts
