"""Condition: fastsync's own and threading's, over fastsync's locks and a
foreign (threading) lock.  Both must behave the same."""

import sys
import threading
import time

import pytest

from helpers import start, wait_until_blocked


@pytest.fixture(params=["threading.Condition", "fastsync.Condition"])
def make_condition(request, backend):
    return threading.Condition if request.param == "threading.Condition" else backend.Condition


@pytest.fixture(params=["Lock", "RLock", "foreign Lock", "foreign RLock"])
def condition(request, backend, make_condition):
    kind = request.param
    lock = getattr(threading, kind.split()[1])() if kind.startswith("foreign") else getattr(backend, kind)()
    return make_condition(lock)


def start_waiting_one_by_one(waiter, count):
    """Start `count` threads running `waiter`, each once the one before it
    sleeps in its wait.  Started together, one could be asleep on the lock
    rather than in wait(), and a notify could come before it waits."""
    workers = []
    for _ in range(count):
        workers.append(start(waiter))
        wait_until_blocked(workers[-1])
    return workers


def test_notify_wakes_one_waiter(condition):
    def waiter():
        with condition:
            return condition.wait(30)

    workers = start_waiting_one_by_one(waiter, 3)
    with condition:
        condition.notify()
    deadline = time.monotonic() + 30
    while all(w.is_alive() for w in workers) and time.monotonic() < deadline:
        time.sleep(0.001)
    assert sum(not w.is_alive() for w in workers) == 1
    with condition:
        condition.notify_all()
    assert [w.join_result() for w in workers] == [True] * 3


def test_notify_all_wakes_every_waiter(condition):
    flag = []

    def waiter():
        with condition:
            while not flag:
                if not condition.wait(30):
                    return False
            return True

    workers = start_waiting_one_by_one(waiter, 5)
    with condition:
        flag.append(True)
        condition.notify_all()
    assert [w.join_result() for w in workers] == [True] * 5


def test_wait_timeout_returns_false_and_reacquires(condition):
    with condition:
        started = time.monotonic()
        assert condition.wait(0.05) is False
        assert time.monotonic() - started >= 0.05
        # The lock is held again after the wait.
        assert condition._is_owned()


def test_wait_requires_the_lock(condition):
    with pytest.raises(RuntimeError, match="cannot wait on un-acquired lock"):
        condition.wait(0.01)
    with pytest.raises(RuntimeError, match="cannot notify on un-acquired lock"):
        condition.notify()


def test_rlock_condition_restores_recursion(RLock, make_condition):
    lock = RLock()
    condition = make_condition(lock)
    with condition:
        with condition:
            assert lock._recursion_count() == 2
            notifier = start(lambda: (condition.acquire(), condition.notify(), condition.release()))
            assert condition.wait(30) is True
            notifier.join_result()
            assert lock._recursion_count() == 2
            assert lock._is_owned()
    assert not lock.locked()


def test_threading_condition_uses_the_rlock_hooks(RLock):
    condition = threading.Condition(RLock())
    # Condition binds the lock's own hooks when the lock has them.
    assert condition._is_owned.__name__ == "_is_owned"
    assert condition._release_save.__self__ is condition._lock
    assert condition._acquire_restore.__self__ is condition._lock


def test_producer_consumer(condition):
    items, produced, total = [], [], 300

    def consumer():
        taken = 0
        while taken < total:
            with condition:
                if not condition.wait_for(lambda: items, timeout=30):
                    return "stuck"
                items.pop()
                taken += 1
        return taken

    worker = start(consumer)
    for n in range(total):
        with condition:
            items.append(n)
            produced.append(n)
            condition.notify()
    assert worker.join_result(60) == total


# ---- fastsync.Condition's own promises -------------------------------------------

@pytest.fixture
def native_condition(backend):
    return backend.Condition


def test_default_lock_is_fastsync_rlock(native_condition, backend):
    condition = native_condition()
    assert type(condition._lock) is backend.RLock
    with condition:
        with condition:          # reentrant
            assert condition._is_owned()


def test_notify_n_wakes_at_most_n_oldest_first(native_condition, backend):
    condition = native_condition(backend.Lock())
    order = []

    def waiter(n):
        with condition:
            if condition.wait(30):
                order.append(n)

    workers = []
    for n in range(5):
        workers.append(start(waiter, n))
        wait_until_blocked(workers[-1])
    with condition:
        condition.notify(2)
    for worker in workers[:2]:
        worker.join_result()
    assert sorted(order) == [0, 1]
    assert all(w.is_alive() for w in workers[2:])
    with condition:
        condition.notify(10)
    for worker in workers:
        worker.join_result()
    assert sorted(order) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("n", [0, -1, 0.5, 1.5, 2**70])
def test_notify_counts_like_threading(native_condition, backend, n):
    """threading decrements n once per woken waiter, whatever its type."""
    condition = native_condition(backend.Lock())
    woken = []

    def waiter():
        with condition:
            woken.append(condition.wait(30))

    workers = start_waiting_one_by_one(waiter, 3)
    with condition:
        condition.notify(n)
    expected = 0
    while n > 0 and expected < 3:
        expected, n = expected + 1, n - 1
    for worker in workers[:expected]:
        worker.join_result()
    deadline = time.monotonic() + 30
    while len(woken) < expected and time.monotonic() < deadline:
        time.sleep(0.001)
    assert len(woken) == expected
    with condition:
        condition.notify_all()
    for worker in workers:
        worker.join_result()


def test_notifyAll_alias(native_condition):
    condition = native_condition()
    with condition:
        if sys.version_info >= (3, 10):
            with pytest.warns(DeprecationWarning, match="notifyAll"):
                condition.notifyAll()
        else:
            condition.notifyAll()


def test_repr(native_condition, backend):
    lock = backend.Lock()
    condition = native_condition(lock)
    assert repr(condition) == f"<Condition({lock!r}, 0)>"
    waiter = start(lambda: (condition.acquire(), condition.wait(30), condition.release()))
    wait_until_blocked(waiter)
    assert repr(condition).endswith(", 1)>")
    with condition:
        condition.notify()
    waiter.join_result()


def test_wait_timeout_errors_like_threading(native_condition, backend):
    condition = native_condition(backend.Lock())
    reference = threading.Condition(threading.Lock())
    for timeout in (float("nan"), -1, 0, 1e300, "x"):
        outcomes = []
        for cond in (reference, condition):
            with cond:
                try:
                    outcomes.append(("ok", cond.wait(timeout)))
                except Exception as error:   # comparing what is raised
                    outcomes.append((type(error), str(error)))
                assert cond._is_owned()
        assert outcomes[0] == outcomes[1], timeout


def test_at_fork_reinit(native_condition):
    condition = native_condition()
    condition.acquire()
    condition._at_fork_reinit()
    assert not condition._is_owned()
    with condition:
        assert condition.wait(0) is False
