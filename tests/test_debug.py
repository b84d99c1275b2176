"""fastsync.debug: lock-order checking, find_deadlocks() and contention
profiles, on both backends.  Every lock is created after enable(): the
fallback watches only those (see fastsync.debug)."""

import gc
import json
import os
import sys
import threading
import time
import warnings

import pytest

import fastsync.debug as debug
from fastsync.debug import LockOrderError, LockOrderWarning
from helpers import backend_name, is_interpreters_lock, run_python, start, wait_until_blocked

HERE = os.path.basename(__file__)


@pytest.fixture
def enabled():
    """Lock-order checking on for the test, everything off and forgotten after."""
    debug.enable()
    yield debug
    debug.disable()
    assert not debug.enabled()


class Recorded(list):
    """Warnings as they are shown, from any thread; wait_for() waits for one."""

    def __init__(self):
        super().__init__()
        self._changed = threading.Condition()

    def show(self, message, category, filename, lineno, file=None, line=None):
        with self._changed:
            self.append(warnings.WarningMessage(message, category, filename, lineno, file, line))
            self._changed.notify_all()

    def wait_for(self, predicate, timeout=30):
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self), timeout)


@pytest.fixture
def thread_warnings():
    """Warnings issued by any thread during the test, recorded (pytest's own
    capture is for the main thread's pytest.warns blocks)."""
    recorded = Recorded()
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = recorded.show
        yield recorded


def order_warnings(caught):
    return [w for w in caught if issubclass(w.category, LockOrderWarning)]


def in_thread(fn, *args):
    """Run fn in another thread to the end (one phase of a test)."""
    return start(fn, *args).join_result()


def nest(*locks):
    """Take the locks in this order and let them go."""
    for lock in locks:
        assert lock.acquire()
    for lock in reversed(locks):
        lock.release()


# ---- lock-order inversions -------------------------------------------------------

def test_ab_ba_is_reported_before_any_deadlock(enabled, backend, thread_warnings):
    a, b = backend.Lock(), backend.Lock()

    def phase_one():
        with a:
            with b:
                pass

    in_thread(phase_one)                 # a -> b, finished before the next phase
    assert order_warnings(thread_warnings) == []
    with b:
        with a:                          # b -> a: the cycle, reported here
            pass
    reported = order_warnings(thread_warnings)
    assert len(reported) == 1
    message = str(reported[0].message)
    assert repr(a).split(" at ")[1] in message and repr(b).split(" at ")[1] in message
    assert message.count(f"created at {__file__}:") >= 2
    assert "in phase_one" in message                  # the first edge's stack
    assert "test_ab_ba_is_reported_before_any_deadlock" in message   # the new edge's
    assert reported[0].filename == __file__           # points at the acquire
    assert not a.locked() and not b.locked()


@pytest.fixture
def raising():
    """Lock-order checking that raises LockOrderError, for the test."""
    debug.enable(on_inversion="raise")
    yield debug
    debug.disable()


def test_rlocks_and_condition_locks_are_checked(enabled, backend, thread_warnings):
    r = backend.RLock()
    cond = backend.Condition()           # its own RLock
    in_thread(nest, r, cond)
    with cond:
        with r:
            pass
    assert len(order_warnings(thread_warnings)) == 1


def test_raise_mode_refuses_the_lock(raising, backend):
    a, b = backend.Lock(), backend.Lock()
    nest(a, b)
    with b:
        with pytest.raises(LockOrderError, match="lock-order inversion"):
            a.acquire()
        assert not a.locked()            # not taken
        assert b.locked()
    # Nor is the order b -> a recorded: a -> c -> b closes no cycle.
    c = backend.Lock()
    nest(a, c)
    nest(c, b)


def test_a_timed_acquire_is_checked(enabled, backend):
    a, b = backend.Lock(), backend.Lock()
    nest(a, b)
    with b:
        with pytest.warns(LockOrderWarning):
            assert a.acquire(timeout=5)
        a.release()


def test_three_lock_cycle(enabled, backend, thread_warnings):
    a, b, c = backend.Lock(), backend.RLock(), backend.Lock()
    in_thread(nest, a, b)
    in_thread(nest, b, c)
    assert order_warnings(thread_warnings) == []
    nest(c, a)
    reported = order_warnings(thread_warnings)
    assert len(reported) == 1
    assert "cycle of 3 locks" in str(reported[0].message)


def test_each_cycle_is_reported_once(enabled, backend, thread_warnings):
    a, b = backend.Lock(), backend.Lock()
    nest(a, b)
    for _ in range(3):
        nest(b, a)
        nest(a, b)
    assert len(order_warnings(thread_warnings)) == 1


def test_each_cycle_is_raised_once(raising, backend):
    # A refused acquire records no order, so the same cycle comes up again.
    a, b = backend.Lock(), backend.Lock()
    nest(a, b)
    with pytest.raises(LockOrderError):
        nest(b, a)
    b.release()
    for _ in range(3):
        nest(b, a)


def test_the_same_order_everywhere_is_not_reported(enabled, backend, thread_warnings):
    a, b, c = backend.Lock(), backend.RLock(), backend.Lock()
    for _ in range(3):
        in_thread(nest, a, b, c)
        nest(a, c)
        nest(b, c)
    assert order_warnings(thread_warnings) == []


# ---- what must not report -----------------------------------------------------------

def test_non_blocking_acquire_is_not_reported(enabled, backend, thread_warnings):
    a, b = backend.Lock(), backend.Lock()
    nest(a, b)
    with b:
        assert a.acquire(False)
        a.release()
        assert a.acquire(blocking=False)
        a.release()
        assert a.acquire(True, 0)
        a.release()
    assert order_warnings(thread_warnings) == []
    with b:                              # the checker is on: blocking reports
        with a:
            pass
    assert len(order_warnings(thread_warnings)) == 1


def test_rlock_reentry_is_not_reported(enabled, backend, thread_warnings):
    outer, inner = backend.RLock(), backend.RLock()
    with outer:
        with inner:
            with outer:                  # held already: no inner -> outer
                with inner:
                    pass
    assert order_warnings(thread_warnings) == []
    with inner:
        with outer:
            pass
    assert len(order_warnings(thread_warnings)) == 1


@pytest.mark.parametrize("kind", ["Lock", "RLock"])
def test_condition_wait_is_not_reported(enabled, backend, thread_warnings, kind):
    # wait() lets go of the condition's lock and takes it back while `other`
    # is held: counted as a new acquire it would close lock -> other -> lock.
    lock, other = getattr(backend, kind)(), backend.Lock()
    cond = backend.Condition(lock)
    with cond:
        with other:
            assert not cond.wait(0.01)
            notifier = start(lambda: (cond.acquire(), cond.notify(), cond.release()))
            assert cond.wait(30)
            notifier.join_result()
    assert order_warnings(thread_warnings) == []
    with other:
        with cond:
            pass
    assert len(order_warnings(thread_warnings)) == 1


def test_lock_released_by_another_thread_is_not_held(enabled, backend, thread_warnings):
    a, b = backend.Lock(), backend.Lock()
    taken, released = threading.Event(), threading.Event()

    def take_a_then_b():
        a.acquire()
        taken.set()
        assert released.wait(30)
        with b:                          # a is no longer held here: no a -> b
            pass

    worker = start(take_a_then_b)
    assert taken.wait(30)
    a.release()
    released.set()
    worker.join_result()
    nest(b, a)
    assert order_warnings(thread_warnings) == []


@pytest.mark.parametrize("kind", ["Lock", "RLock"])
def test_a_lock_reset_after_fork_is_not_held(enabled, backend, thread_warnings, kind):
    # What a fork handler does in the child with a lock taken before the
    # fork (logging's module lock, for one).
    a, b = getattr(backend, kind)(), backend.Lock()
    a.acquire()
    a._at_fork_reinit()
    nest(b)                              # a is free: no a -> b
    nest(b, a)
    assert order_warnings(thread_warnings) == []


def test_a_collected_lock_is_forgotten(enabled, backend, thread_warnings):
    a, b = backend.Lock(), backend.Lock()
    nest(a, b)
    old = id(a)
    assert old in debug._nodes
    del a
    gc.collect()
    nest(b)                              # the bookkeeping catches up
    assert old not in debug._nodes
    new = [backend.Lock() for _ in range(200)]
    assert old not in debug._nodes or debug._nodes[old].ref() in new
    for lock in new:                     # one of them may have a's address
        nest(b, lock)
    assert order_warnings(thread_warnings) == []


def test_off_means_no_checks(backend, thread_warnings):
    debug.enable()
    a, b = backend.Lock(), backend.Lock()
    nest(a, b)
    debug.disable()
    nest(b, a)
    assert order_warnings(thread_warnings) == []
    if backend_name(backend) == "python":
        # The fallback's Lock() is the interpreter's own again.
        assert is_interpreters_lock(backend.Lock())
        assert type(backend.RLock()) is backend.RLock


def test_watching_locks_look_like_the_usual_ones(enabled, backend):
    lock, rlock = backend.Lock(), backend.RLock()
    assert isinstance(lock, backend.Lock) and isinstance(rlock, backend.RLock)
    assert repr(lock).startswith("<unlocked fastsync.Lock object at ")
    assert repr(rlock).startswith("<unlocked fastsync.RLock object owner=0 count=0 at ")
    with lock:
        assert lock.locked()
    assert lock.acquire(True, 0)
    lock.release()
    with pytest.raises(RuntimeError):
        lock.release()
    with pytest.raises(RuntimeError):
        rlock.release()
    with pytest.raises(ValueError):
        lock.acquire(False, 1)


def test_bad_on_inversion_is_refused():
    with pytest.raises(ValueError, match="on_inversion"):
        debug.enable(on_inversion="ignore")
    assert not debug.enabled()


# ---- the standard library under patch(), in a child with FASTSYNC_DEBUG ------------

STDLIB_UNDER_PATCH = """
    import concurrent.futures, json, logging, queue, sys, threading, warnings
    import fastsync, fastsync.debug
    warnings.simplefilter("error", fastsync.debug.LockOrderWarning)
    assert fastsync.debug.enabled() and fastsync.patch()
    q = queue.Queue(maxsize=10)
    def produce():
        for n in range(2000):
            q.put(n)
    def consume():
        return sum(q.get(timeout=30) for _ in range(1000))
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        producer = pool.submit(produce)
        consumers = [pool.submit(consume) for _ in range(2)]
        total = sum(c.result(timeout=60) for c in consumers)
        producer.result(timeout=60)
        squares = list(pool.map(pow, range(200), [2] * 200, timeout=60))
    logging.basicConfig(stream=sys.stderr, level=logging.INFO)
    logging.getLogger("child").info("logged under patch")
    assert total == sum(range(2000)) and squares == [n * n for n in range(200)]
    # The checker is really on: an inversion now does report.
    a, b = threading.Lock(), threading.Lock()
    with a, b:
        pass
    try:
        with b, a:
            pass
    except fastsync.debug.LockOrderWarning:
        print(json.dumps([fastsync.BACKEND, repr(q.mutex).split(" object ")[0]]))
"""


def child_env(backend):
    env = {"FASTSYNC_DEBUG": "lock-order"}
    if backend_name(backend) == "python":
        env["FASTSYNC_NO_EXTENSIONS"] = "1"
    return env


def test_queue_and_thread_pool_under_patch_report_nothing(backend):
    result = run_python(STDLIB_UNDER_PATCH, env=child_env(backend))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [backend_name(backend), "<unlocked fastsync.Lock"]
    assert "logged under patch" in result.stderr


def test_environment_variable_raise_and_profile(backend):
    env = child_env(backend)
    env["FASTSYNC_DEBUG"] = "raise,profile"
    result = run_python("""
        import fastsync, fastsync.debug
        a, b = fastsync.Lock(), fastsync.Lock()
        with a, b:
            pass
        with b:
            try:
                a.acquire()
            except fastsync.debug.LockOrderError:
                print("refused", a.locked())
    """, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "refused False\n"
    assert result.stderr.startswith("fastsync contention profile:\n")
    assert "<string>:3" in result.stderr      # the locks' creation site


# ---- find_deadlocks --------------------------------------------------------------

def deadlock(backend):
    """Two threads each holding one lock and waiting (timed) for the other's;
    returns them, the locks, and a function that ends the deadlock."""
    a, b = backend.Lock(), backend.Lock()
    both_hold = threading.Barrier(3)

    def hold_then_wait(mine, theirs):
        mine.acquire()
        both_hold.wait(30)
        got = theirs.acquire(timeout=30)
        if got:
            theirs.release()
        return got

    first = start(hold_then_wait, a, b, name="first")
    second = start(hold_then_wait, b, a, name="second")
    both_hold.wait(30)
    wait_until_blocked(first)
    wait_until_blocked(second)

    def end():
        a.release()                      # by another thread: Lock allows it
        got_second = second.join_result()
        b.release()
        return first.join_result(), got_second

    return (first, second), (a, b), end


def test_find_deadlocks_on_a_real_deadlock(backend):
    debug.enable(lock_order=False)
    try:
        (first, second), (a, b), end = deadlock(backend)
        try:
            cycles = debug.find_deadlocks()
        finally:
            assert end() == (True, True)
        assert debug.find_deadlocks() == []
    finally:
        debug.disable()
    assert len(cycles) == 1
    entries = {entry.thread: entry for entry in cycles[0]}
    assert set(entries) == {first.ident, second.ident}
    one, two = entries[first.ident], entries[second.ident]
    assert (one.name, two.name) == ("first", "second")
    address = {lock: repr(lock).split(" at ")[1] for lock in (a, b)}
    assert address[b] in one.waiting_for and address[a] in two.waiting_for
    assert f"created at {__file__}:" in one.waiting_for
    assert len(one.holding) == 1 and address[a] in one.holding[0]
    assert len(two.holding) == 1 and address[b] in two.holding[0]
    assert any("in hold_then_wait" in line for line in one.stack)


def test_a_stalled_deadlock_is_reported_once(backend, thread_warnings, monkeypatch):
    monkeypatch.setattr(debug, "STALL_SECONDS", 0.2)
    debug.enable()
    try:
        _, _, end = deadlock(backend)
        reported = thread_warnings.wait_for(
            lambda caught: any("deadlocked" in str(w.message) for w in caught))
        assert end() == (True, True)
        assert reported, "no deadlock report"
    finally:
        debug.disable()
    messages = [str(w.message) for w in order_warnings(thread_warnings)]
    assert sum("lock-order inversion" in m for m in messages) == 1   # predicted at the acquire
    assert sum("2 threads are deadlocked" in m for m in messages) == 1


# ---- contention profile ----------------------------------------------------------

def test_profile_counts_a_known_contention(backend, tmp_path):
    held_for = 0.3
    with debug.profile() as prof:
        lock = backend.Lock(); site = f"{__file__}:{sys._getframe().f_lineno}"  # noqa: E702
        taken, done = threading.Event(), threading.Event()

        def hold():
            with lock:
                taken.set()
                assert done.wait(30)

        def wait_for_the_lock():
            with lock:
                pass

        holder = start(hold)
        assert taken.wait(30)
        started = time.monotonic()       # the wait can't begin earlier
        waiter = start(wait_for_the_lock)
        wait_until_blocked(waiter)
        time.sleep(held_for)             # the amount of contention measured
        done.set()
        waiter.join_result()
        upper = time.monotonic() - started
        holder.join_result()
        for _ in range(5):
            with lock:
                pass
        assert debug.enabled() is False
    rows = {row.site: row for row in prof.stats()}
    assert rows[site].acquisitions == 7 and rows[site].contended == 1
    assert held_for <= rows[site].total_wait <= upper
    assert rows[site].longest_wait == rows[site].total_wait
    assert site in prof.report()
    path = tmp_path / "waits.folded"
    prof.write_collapsed(path)
    lines = path.read_text().splitlines()
    assert len(lines) == 1
    stack, ns = lines[0].rsplit(" ", 1)
    assert abs(int(ns) - rows[site].total_wait * 1e9) < 1000
    assert "wait_for_the_lock" in stack and stack.endswith(f"waiting for the lock created at {site}")
    # After the block nothing is collected.
    with lock:
        pass
    assert prof.stats()[0].acquisitions == 7
