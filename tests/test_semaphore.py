"""Semaphore and BoundedSemaphore, both backends, against threading's."""

import re
import threading
import time

import pytest

from helpers import start, threading_refuses_nan_timeout, wait_until_blocked


@pytest.fixture(params=["Semaphore", "BoundedSemaphore"])
def any_semaphore(request, backend):
    return getattr(backend, request.param)


def test_counts_slots(any_semaphore):
    sem = any_semaphore(2)
    assert sem.acquire() is True
    assert sem.acquire(blocking=False) is True
    assert sem.acquire(False) is False
    assert sem.acquire(timeout=0) is False
    sem.release()
    with sem as entered:
        assert entered is True
        assert sem.acquire(False) is False
    assert sem.acquire(False) is True


def test_default_value_is_one(any_semaphore):
    sem = any_semaphore()
    assert sem.acquire(False) and not sem.acquire(False)


@pytest.mark.parametrize("timeout", [0.001, 0.05, 0.2])
def test_timed_acquire_never_returns_early(any_semaphore, timeout):
    sem = any_semaphore(0) if any_semaphore.__name__ == "Semaphore" else any_semaphore(1)
    sem.acquire(False)
    started = time.monotonic()
    assert sem.acquire(timeout=timeout) is False
    assert time.monotonic() - started >= timeout


def test_release_wakes_waiters(backend):
    sem = backend.Semaphore(0)
    waiters = [start(lambda: sem.acquire(timeout=30)) for _ in range(4)]
    for waiter in waiters:
        wait_until_blocked(waiter)
    sem.release(3)
    sem.release()
    assert [w.join_result() for w in waiters] == [True] * 4
    assert sem.acquire(False) is False


def test_limits_concurrency(any_semaphore):
    sem = any_semaphore(3)
    inside, peak = [0], [0]
    guard = threading.Lock()

    def work():
        for _ in range(300):
            with sem:
                with guard:
                    inside[0] += 1
                    peak[0] = max(peak[0], inside[0])
                time.sleep(0)
                with guard:
                    inside[0] -= 1

    workers = [start(work) for _ in range(6)]
    for worker in workers:
        worker.join_result(60)
    assert peak[0] <= 3 and inside[0] == 0
    assert [sem.acquire(False) for _ in range(4)] == [True, True, True, False]


def test_bounded_over_release(backend):
    sem = backend.BoundedSemaphore(2)
    with pytest.raises(ValueError, match="^Semaphore released too many times$"):
        sem.release()
    sem.acquire()
    with pytest.raises(ValueError, match="^Semaphore released too many times$"):
        sem.release(2)
    sem.release()
    assert sem._value == 2 and sem._initial_value == 2


def test_unbounded_may_exceed_initial(backend):
    sem = backend.Semaphore(1)
    sem.release(5)
    assert sem._value == 6


def outcome(call):
    try:
        return "ok", call()
    except Exception as error:   # comparing what is raised
        return type(error), str(error)


@pytest.mark.parametrize("kind", ["Semaphore", "BoundedSemaphore"])
@pytest.mark.parametrize("call", [
    lambda cls: cls(-1),
    lambda cls: cls("x"),
    lambda cls: cls(1).acquire(False, 1),
    lambda cls: cls(1).acquire(timeout="x"),        # a free slot: the timeout isn't looked at
    lambda cls: cls(0).acquire(timeout="x"),
    lambda cls: cls(0).acquire(timeout=-1),
    lambda cls: cls(0).acquire(True, 0),
    lambda cls: cls(0).acquire(timeout=1e300),
    lambda cls: cls(1).release(0),
    lambda cls: cls(1).release(-3),
    lambda cls: cls(0).release(1),
    lambda cls: cls(1).acquire(1, 2, 3),
], ids=lambda c: "")
def test_errors_like_threading(backend, kind, call):
    expected = outcome(lambda: call(getattr(threading, kind)))
    got = outcome(lambda: call(getattr(backend, kind)))
    if expected[0] is TypeError and "argument" in expected[1]:
        assert got[0] is TypeError
    else:
        assert got == expected


def test_release_beyond_64_bits(backend):
    # A BoundedSemaphore refuses it as threading does; a Semaphore can't count
    # that far (threading's would), and says so as when the count overflows.
    expected = outcome(lambda: threading.BoundedSemaphore(1).release(2**64))
    assert outcome(lambda: backend.BoundedSemaphore(1).release(2**64)) == expected
    for n in (2**64, 2**64 - 1):
        with pytest.raises(OverflowError, match="^semaphore value too large$"):
            backend.Semaphore(1).release(n)
    sem = backend.Semaphore(0)
    sem.release(2**64 - 1)
    assert sem._value == 2**64 - 1


def test_nan_timeout_does_not_hang(backend):
    # threading's Semaphore spins forever here up to 3.13; fastsync gives up
    # at once.  Since 3.14 threading refuses NaN, and so does fastsync.
    if threading_refuses_nan_timeout():
        with pytest.raises(ValueError, match="^Invalid value NaN"):
            backend.Semaphore(0).acquire(timeout=float("nan"))
        assert backend.Semaphore(1).acquire(timeout=float("nan")) is True   # no wait needed
    else:
        assert backend.Semaphore(0).acquire(timeout=float("nan")) is False


def test_non_integer_value_is_refused(backend):
    # threading accepts 2.5 and then counts below zero; fastsync refuses it.
    with pytest.raises(TypeError):
        backend.Semaphore(2.5)


def test_reprs(backend):
    sem = backend.Semaphore(3)
    assert re.fullmatch(r"<fastsync\.Semaphore at 0x[0-9a-f]+: value=3>", repr(sem))
    bounded = backend.BoundedSemaphore(2)
    bounded.acquire()
    assert re.fullmatch(r"<fastsync\.BoundedSemaphore at 0x[0-9a-f]+: value=1/2>", repr(bounded))
    assert isinstance(bounded, backend.Semaphore)


def test_subclass(backend):
    class Counting(backend.Semaphore):
        def __init__(self, value=1):
            super().__init__(value)
            self.taken = 0

        def acquire(self, blocking=True, timeout=None):
            got = super().acquire(blocking, timeout)
            self.taken += got
            return got

    sem = Counting(2)
    sem.acquire()
    sem.acquire()
    assert sem.taken == 2 and not sem.acquire(False)
