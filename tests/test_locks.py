"""Lock and RLock: behaviour shared by both, and each one's own rules."""

import copy
import pickle
import platform
import re
import threading
import time

import pytest

from helpers import (LINUX, assert_weakly_referenceable, entered_value, is_interpreters_lock, start,
                     thread_cpu_seconds, wait_until_blocked)


def hold_in_other_thread(lock):
    """Acquire `lock` in a helper thread; returns a function that releases it."""
    held, done = threading.Event(), threading.Event()

    def holder():
        lock.acquire()
        held.set()
        done.wait()
        lock.release()

    worker = start(holder)
    assert held.wait(10)

    def release():
        done.set()
        worker.join_result()

    return release


def error_of(call):
    """The exception call raises: how threading behaves is the specification."""
    try:
        call()
    except Exception as error:   # noqa: BLE001 - whatever threading raises
        return error
    pytest.fail(f"{call} raised nothing")


# ---- shared behaviour ----------------------------------------------------------

def test_acquire_release_cycle(any_lock):
    lock = any_lock()
    assert lock.locked() is False
    assert lock.acquire() is True
    assert lock.locked() is True
    assert lock.release() is None
    assert lock.locked() is False


def test_context_manager_returns_like_threading_and_releases(any_lock):
    # `with lock as x` binds True on CPython, the lock itself on PyPy.
    lock = any_lock()
    with lock as entered:
        assert entered is entered_value(lock, any_lock.__name__)
        assert lock.locked()
    assert not lock.locked()


def test_context_manager_releases_on_exception(any_lock):
    lock = any_lock()
    with pytest.raises(KeyError):
        with lock:
            raise KeyError("boom")
    assert not lock.locked()
    assert lock.acquire(False)


def _exit_outcomes(lock):
    out = []
    for args in [(None, None, None), (None, None, None, "extra"), (), (None,)]:
        lock.acquire()
        try:
            out.append(("ok", lock.__exit__(*args)))
        except TypeError as error:
            out.append((TypeError, str(error)))
        held = repr(lock).startswith("<locked")   # threading's RLock has locked() only since 3.14
        out.append(held)
        if held:
            lock.release()
    return out


def test_exit_takes_the_arguments_threading_takes(any_lock):
    """Any number up to 3.14; exactly three since 3.15, as _thread's locks."""
    reference = getattr(threading, any_lock.__name__)()
    assert _exit_outcomes(any_lock()) == _exit_outcomes(reference)


@pytest.mark.parametrize("call", [
    lambda lock: lock.acquire(False),
    lambda lock: lock.acquire(blocking=False),
    lambda lock: lock.acquire(True, 0),
    lambda lock: lock.acquire(timeout=0),
    lambda lock: lock.acquire(0),
])
def test_try_acquire_on_held_lock_fails_at_once(any_lock, call):
    lock = any_lock()
    release = hold_in_other_thread(lock)
    try:
        started = time.monotonic()
        assert call(lock) is False
        assert time.monotonic() - started < 1.0
    finally:
        release()
    assert call(lock) is True


@pytest.mark.parametrize("timeout", [0.001, 0.01, 0.05, 0.2])
def test_timed_acquire_never_returns_early(any_lock, timeout):
    lock = any_lock()
    release = hold_in_other_thread(lock)
    try:
        started = time.monotonic()
        assert lock.acquire(timeout=timeout) is False
        assert time.monotonic() - started >= timeout
    finally:
        release()


def test_integer_timeout_is_seconds(any_lock):
    lock = any_lock()
    release = hold_in_other_thread(lock)
    try:
        started = time.monotonic()
        assert lock.acquire(True, 1) is False
        assert time.monotonic() - started >= 1.0
    finally:
        release()


def test_blocked_acquire_wakes_on_release(any_lock):
    lock = any_lock()
    release = hold_in_other_thread(lock)
    waiter = start(lambda: lock.acquire(timeout=30))
    wait_until_blocked(waiter)
    release()
    assert waiter.join_result() is True


def test_timed_acquire_succeeds_when_released_in_time(any_lock):
    lock = any_lock()
    release = hold_in_other_thread(lock)
    waiter = start(lambda: lock.acquire(True, 30.0))
    wait_until_blocked(waiter)
    release()
    assert waiter.join_result() is True


def test_mutual_exclusion_under_contention(any_lock):
    lock = any_lock()
    inside = []
    counter = [0]
    rounds, threads = 2000, 4

    def work(use_with):
        for i in range(rounds):
            if use_with:
                with lock:
                    inside.append(1)
                    assert len(inside) == 1
                    value = counter[0]
                    if i % 50 == 0:
                        time.sleep(0)      # invite a switch inside the section
                    counter[0] = value + 1
                    inside.pop()
            else:
                while not lock.acquire(timeout=0.5):
                    pass
                try:
                    inside.append(1)
                    assert len(inside) == 1
                    value = counter[0]
                    if i % 50 == 0:
                        time.sleep(0)
                    counter[0] = value + 1
                    inside.pop()
                finally:
                    lock.release()

    workers = [start(work, n % 2 == 0) for n in range(threads)]
    for worker in workers:
        worker.join_result(60)
    assert counter[0] == rounds * threads
    assert not lock.locked()


def test_lock_handoff_loses_no_wakeups(any_lock):
    """Two threads pass ownership back and forth through a pair of events."""
    lock = any_lock()
    turns = 500

    def player(count):
        for _ in range(count):
            with lock:
                pass
        return count

    workers = [start(player, turns) for _ in range(3)]
    assert sum(worker.join_result(60) for worker in workers) == 3 * turns
    assert not lock.locked()


def test_gil_released_while_blocked(any_lock):
    lock = any_lock()
    release = hold_in_other_thread(lock)
    try:
        about_to_block = threading.Event()

        def blocked():
            about_to_block.set()
            return lock.acquire(timeout=30)

        waiter = start(blocked)
        assert about_to_block.wait(10)
        wait_until_blocked(waiter)
        # If the waiter held the GIL this loop could not run at all.
        spins, stop_at = 0, time.monotonic() + 0.2
        while time.monotonic() < stop_at:
            spins += 1
        assert spins > 1000
    finally:
        release()
    assert waiter.join_result() is True


@pytest.mark.skipif(not LINUX, reason="per-thread CPU clocks are read on Linux")
def test_blocked_waiter_burns_no_cpu(any_lock):
    lock = any_lock()
    release = hold_in_other_thread(lock)
    try:
        waiter = start(lambda: lock.acquire(timeout=30))
        wait_until_blocked(waiter)
        before = thread_cpu_seconds(waiter)
        time.sleep(0.3)   # measuring an interval, not synchronising
        assert thread_cpu_seconds(waiter) - before < 0.03
    finally:
        release()
    assert waiter.join_result() is True


def test_at_fork_reinit_frees_a_held_lock(any_lock):
    lock = any_lock()
    lock.acquire()
    assert lock._at_fork_reinit() is None
    assert not lock.locked()
    assert lock.acquire(False)
    lock.release()


def test_weak_references(any_lock):
    assert_weakly_referenceable(any_lock)


@pytest.mark.parametrize("dump", [pickle.dumps, copy.copy, copy.deepcopy])
def test_cannot_be_pickled_or_copied(any_lock, dump):
    lock = any_lock()
    if is_interpreters_lock(lock):
        expected = error_of(lambda: dump(threading.Lock()))
        with pytest.raises(type(expected)):
            dump(lock)
        return
    with pytest.raises(TypeError, match="cannot pickle"):
        dump(lock)


def test_lock_constructor_takes_no_arguments(Lock):
    # RLock follows threading.RLock, which took and ignored arguments before
    # 3.15 (test_parity.py::test_rlock_arguments_like_threading).
    with pytest.raises(TypeError):
        Lock(1)
    with pytest.raises(TypeError):
        Lock(blocking=True)


def test_no_instance_dict(any_lock):
    with pytest.raises(AttributeError):
        any_lock().some_attribute = 1


# ---- Lock only -------------------------------------------------------------------

def test_lock_obsolete_synonyms(Lock):
    # threading.Lock objects still answer to acquire_lock, release_lock and
    # locked_lock; code that uses them must keep working.
    lock = Lock()
    assert lock.acquire_lock() is True
    assert lock.locked_lock() is True
    assert lock.acquire_lock(False) is False
    assert lock.acquire_lock(timeout=0.001) is False
    assert lock.release_lock() is None
    assert lock.locked_lock() is False
    with pytest.raises(RuntimeError):
        lock.release_lock()


def test_lock_release_when_unlocked(Lock):
    # "release unlocked lock" on CPython; PyPy has its own message.
    expected = error_of(threading.Lock().release)
    assert type(expected) is RuntimeError
    message = f"^{re.escape(str(expected))}$"
    with pytest.raises(RuntimeError, match=message):
        Lock().release()
    lock = Lock()
    lock.acquire()
    lock.release()
    with pytest.raises(RuntimeError, match=message):
        lock.__exit__(None, None, None)


def test_lock_is_not_reentrant(Lock):
    lock = Lock()
    lock.acquire()
    assert lock.acquire(False) is False
    assert lock.acquire(timeout=0.01) is False
    lock.release()


def test_lock_may_be_released_by_another_thread(Lock):
    lock = Lock()
    lock.acquire()
    start(lock.release).join_result()
    assert not lock.locked()


def _without_address(text):
    return re.sub(r"0x[0-9a-f]+", "0x...", text)


def test_lock_repr(Lock):
    lock = Lock()
    if is_interpreters_lock(lock):
        reference = threading.Lock()
        assert _without_address(repr(lock)) == _without_address(repr(reference))
        lock.acquire()
        reference.acquire()
        assert _without_address(repr(lock)) == _without_address(repr(reference))
        return
    assert re.fullmatch(r"<unlocked fastsync\.Lock object at 0x[0-9a-f]+>", repr(lock))
    assert hex(id(lock)) in repr(lock)
    lock.acquire()
    assert re.fullmatch(r"<locked fastsync\.Lock object at 0x[0-9a-f]+>", repr(lock))


def test_lock_cannot_be_subclassed(Lock):
    # threading.Lock can't be either.
    with pytest.raises(TypeError):
        type("MyLock", (Lock,), {})


def test_lock_class_identity(Lock):
    assert isinstance(Lock, type)
    assert Lock.__name__ == "Lock"
    lock = Lock()
    assert isinstance(lock, Lock)
    if is_interpreters_lock(lock):
        assert isinstance(threading.Lock(), Lock)   # it is the interpreter's lock
    else:
        assert type(lock) is Lock
        assert not isinstance(threading.Lock(), Lock)


# ---- RLock only ------------------------------------------------------------------

def test_rlock_recursion(RLock):
    lock = RLock()
    for depth in range(1, 6):
        assert lock.acquire() is True
        assert lock._recursion_count() == depth
    for depth in range(4, -1, -1):
        lock.release()
        assert lock._recursion_count() == depth
    assert not lock.locked()
    with pytest.raises(RuntimeError, match="^cannot release un-acquired lock$"):
        lock.release()


def test_rlock_nested_with(RLock):
    lock = RLock()
    with lock:
        with lock:
            assert lock._recursion_count() == 2
        assert lock._is_owned()
    assert not lock._is_owned() and not lock.locked()


def test_rlock_only_owner_may_release(RLock):
    lock = RLock()
    lock.acquire()

    def foreign_release():
        with pytest.raises(RuntimeError, match="^cannot release un-acquired lock$"):
            lock.release()
        with pytest.raises(RuntimeError, match="^cannot release un-acquired lock$"):
            lock.__exit__(None, None, None)
        return lock._is_owned(), lock._recursion_count(), lock.locked()

    assert start(foreign_release).join_result() == (False, 0, True)
    assert lock._is_owned()
    lock.release()


def test_rlock_other_thread_blocks_until_fully_released(RLock):
    lock = RLock()
    lock.acquire()
    lock.acquire()
    waiter = start(lambda: lock.acquire(timeout=30))
    wait_until_blocked(waiter)
    lock.release()
    assert waiter.is_alive()
    lock.release()
    assert waiter.join_result() is True


def test_rlock_release_save_and_acquire_restore(RLock):
    lock = RLock()
    lock.acquire()
    lock.acquire()
    state = lock._release_save()
    assert state == (2, threading.get_ident())
    assert not lock.locked() and not lock._is_owned()
    # Another thread can take it while it is "saved".
    assert start(lambda: (lock.acquire(), lock.release())).join_result() == (True, None)
    assert lock._acquire_restore(state) is None
    assert lock._is_owned() and lock._recursion_count() == 2
    lock.release()
    lock.release()
    assert not lock.locked()


def test_rlock_owner_is_the_ident_of_the_thread_that_took_it(RLock):
    # The compiled backend reads the id without calling pthread_self() on
    # x86-64 Linux; whatever it reads must be threading.get_ident().
    lock = RLock()

    def take_and_save():
        lock.acquire()
        assert lock._is_owned()
        return lock._release_save(), threading.get_ident()

    for _ in range(3):   # new threads, new ids
        (count, owner), ident = start(take_and_save).join_result()
        assert (count, owner) == (1, ident)
    assert not lock._is_owned()


@pytest.mark.cython
@pytest.mark.skipif(not (LINUX and platform.machine() in ("x86_64", "AMD64")
                         and platform.libc_ver()[0] == "glibc"),
                    reason="the inline thread id is for x86-64 Linux with glibc only")
def test_thread_id_is_read_inline_on_x86_64_glibc():
    # Where the build didn't see glibc, RLock still works through
    # pthread_self(), but slower: this says so instead of hiding it.
    import fastsync._compiled as compiled

    assert compiled.THREAD_IDENT_INLINE is True


def test_rlock_release_save_unheld(RLock):
    with pytest.raises(RuntimeError, match="^cannot release un-acquired lock$"):
        RLock()._release_save()


@pytest.mark.parametrize("state", [5, None, (1,), (1, 2, 3), ("a", "b")])
def test_rlock_acquire_restore_bad_state(RLock, state):
    # TypeError on CPython; PyPy unpacks the state like a tuple, so a wrong
    # length is a ValueError there.
    expected = type(error_of(lambda: threading.RLock()._acquire_restore(state)))
    lock = RLock()
    with pytest.raises(expected) as raised:
        lock._acquire_restore(state)
    assert type(raised.value) is expected
    assert not lock.locked()


def test_rlock_repr(RLock):
    lock = RLock()
    assert re.fullmatch(
        r"<unlocked fastsync\.RLock object owner=0 count=0 at 0x[0-9a-f]+>", repr(lock))
    lock.acquire()
    lock.acquire()
    me = threading.get_ident()
    assert re.fullmatch(
        rf"<locked fastsync\.RLock object owner={me} count=2 at 0x[0-9a-f]+>", repr(lock))
    assert hex(id(lock)) in repr(lock)


def test_rlock_locked_seen_from_other_thread(RLock):
    lock = RLock()
    lock.acquire()
    assert start(lock.locked).join_result() is True
    assert start(lock._is_owned).join_result() is False
    lock.release()
    assert start(lock.locked).join_result() is False


def test_rlock_subclass(RLock):
    class Tracked(RLock):
        def __init__(self):
            super().__init__()
            self.acquisitions = 0

        def acquire(self, blocking=True, timeout=-1):
            self.acquisitions += 1
            return super().acquire(blocking, timeout)

    lock = Tracked()
    assert lock.acquire() is True
    assert lock.acquisitions == 1
    assert re.fullmatch(r"<locked .*Tracked object owner=\d+ count=1 at 0x[0-9a-f]+>", repr(lock))
    lock.release()
    assert isinstance(lock, RLock)
    assert not lock.locked()


def test_rlock_class_identity(RLock):
    assert isinstance(RLock, type)
    assert type(RLock()) is RLock
