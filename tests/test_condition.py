"""threading.Condition over fastsync's locks: the hooks it relies on work."""

import threading
import time

import pytest

from helpers import start, wait_until_blocked


@pytest.fixture
def condition(any_lock):
    return threading.Condition(any_lock())


def test_notify_wakes_one_waiter(condition):
    def waiter():
        with condition:
            return condition.wait(30)

    workers = [start(waiter) for _ in range(3)]
    for worker in workers:
        wait_until_blocked(worker)
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

    workers = [start(waiter) for _ in range(5)]
    for worker in workers:
        wait_until_blocked(worker)
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


def test_rlock_condition_restores_recursion(RLock):
    lock = RLock()
    condition = threading.Condition(lock)
    with condition:
        with condition:
            assert lock._recursion_count() == 2
            notifier = start(lambda: (condition.acquire(), condition.notify(), condition.release()))
            assert condition.wait(30) is True
            notifier.join_result()
            assert lock._recursion_count() == 2
            assert lock._is_owned()
    assert not lock.locked()


def test_condition_uses_the_rlock_hooks(RLock):
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
