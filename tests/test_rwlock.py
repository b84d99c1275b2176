"""fastsync.RWLock on both backends: each side's conformance with a
threading.Lock (after CPython's Lib/test/lock_tests.py LockTests), the
policy (readers together, a writer alone, phase-fair turns, re-entrant
reads, downgrade, no upgrade), and the guarantees the other primitives give
(Ctrl-C, timeouts, fork, exit, debug, many threads)."""

import os
import random
import signal
import subprocess
import sys
import threading
import time
import warnings
import weakref

import pytest

from helpers import CHILD_OPTIONS, backend_params, run_python, start, switch_interval, wait_until_blocked


@pytest.fixture
def RWLock(backend):
    return backend.RWLock


@pytest.fixture(params=["reader", "writer"])
def side(request):
    return request.param


def holding(lock):
    """Another thread takes lock and holds it until the returned event is set."""
    done, release = threading.Event(), threading.Event()

    def work():
        lock.acquire()
        done.set()
        release.wait(30)
        lock.release()

    worker = start(work)
    assert done.wait(10)
    return release, worker


def other_side(rw, side):
    """A lock another thread takes to keep `side` out: the writer keeps both
    out; the reader keeps the writer out."""
    return rw.writer if side == "reader" else rw.reader


# ---- Each side as a Lock (lock_tests' LockTests, adapted) ------------------------------

def test_constructor_and_repr(RWLock, side):
    rw = RWLock()
    lock = getattr(rw, side)
    assert getattr(rw, side) is lock          # one object per side
    assert lock.rwlock is rw
    assert repr(lock).startswith(f"<unlocked {side} of fastsync.RWLock object at")
    assert repr(rw).startswith("<unlocked fastsync.RWLock object at")
    lock.acquire()
    assert repr(lock).startswith(f"<locked {side} of fastsync.RWLock")
    assert repr(rw).startswith("<write-locked" if side == "writer" else "<read-locked by 1")
    lock.release()


def test_acquire_release_locked(RWLock, side):
    lock = getattr(RWLock(), side)
    assert not lock.locked()
    assert lock.acquire() is True
    assert lock.locked()
    lock.release()
    assert not lock.locked()
    assert lock.acquire(False) is True
    lock.release()
    assert lock.acquire(True, 0.5) is True
    lock.release()


def test_release_unheld_is_a_runtime_error(RWLock, side):
    lock = getattr(RWLock(), side)
    with pytest.raises(RuntimeError):
        lock.release()
    lock.acquire()
    lock.release()
    with pytest.raises(RuntimeError):
        lock.release()


def test_try_acquire_contended(RWLock, side):
    rw = RWLock()
    lock = getattr(rw, side)
    blocker = other_side(rw, side)
    release, worker = holding(blocker)
    try:
        assert lock.acquire(False) is False
        assert lock.acquire(True, 0) is False
    finally:
        release.set()
    worker.join_result()


def test_acquire_contended_waits_for_the_release(RWLock, side):
    rw = RWLock()
    lock = getattr(rw, side)
    blocker = other_side(rw, side)
    blocker.acquire()
    got = threading.Event()
    waiter = start(lambda: (lock.acquire(), got.set(), lock.release()))
    wait_until_blocked(waiter)
    assert not got.is_set()
    blocker.release()
    waiter.join_result()
    assert got.is_set()


def test_with(RWLock, side):
    lock = getattr(RWLock(), side)
    with lock as entered:
        assert entered is True
        assert lock.locked()
    assert not lock.locked()
    with pytest.raises(ZeroDivisionError):
        with lock:
            raise ZeroDivisionError
    assert not lock.locked()


def test_timeout_is_never_early_and_leaves_nothing_held(RWLock, side):
    rw = RWLock()
    lock = getattr(rw, side)
    blocker = other_side(rw, side)
    release, worker = holding(blocker)
    try:
        for timeout in (0.01, 0.05):
            began = time.monotonic()
            assert lock.acquire(timeout=timeout) is False
            assert time.monotonic() - began >= timeout
        assert rw._waiting() == (0, 0)
    finally:
        release.set()
    worker.join_result()
    assert lock.acquire(False) is True   # the timed-out waits took nothing
    lock.release()


def _outcome(call):
    try:
        return ("ok", call())
    except Exception as error:
        return (type(error), str(error))


@pytest.mark.parametrize("args, kwargs", [
    ((), {"timeout": "1"}), ((), {"timeout": None}), ((), {"timeout": float("nan")}),
    ((), {"timeout": -2}), ((), {"timeout": 1e300}), ((False, 1), {}), ((False, 0), {}),
    ((True, 0), {}), ((0, -1), {}), ((), {"blocking": False, "timeout": 3}), ((1, 2, 3), {}),
    ((), {"foo": 1}), (("x",), {}),
])
def test_bad_arguments_get_what_lock_acquire_raises(RWLock, side, args, kwargs):
    lock = getattr(RWLock(), side)
    expected = _outcome(lambda: threading.Lock().acquire(*args, **kwargs))
    got = _outcome(lambda: lock.acquire(*args, **kwargs))
    if expected[0] is TypeError:
        assert got[0] is TypeError   # wrong-count messages name the function differently
    else:
        assert got == expected
    if got[0] == "ok" and got[1]:
        lock.release()


def test_weak_references(RWLock, side):
    rw = RWLock()
    ref = weakref.ref(getattr(rw, side))
    assert ref() is getattr(rw, side)
    rw_ref = weakref.ref(rw)
    del rw
    import gc
    gc.collect()
    assert rw_ref() is None and ref() is None


def test_not_picklable(RWLock):
    import pickle
    rw = RWLock()
    for obj in (rw, rw.reader, rw.writer):
        with pytest.raises(TypeError):
            pickle.dumps(obj)


def test_writer_released_by_another_thread(RWLock):
    # threading.Lock's rule: any thread may release it.
    rw = RWLock()
    rw.writer.acquire()
    start(rw.writer.release).join_result()
    assert not rw.writer.locked()


def test_read_released_by_another_thread_is_refused(RWLock):
    rw = RWLock()
    rw.reader.acquire()
    worker = start(rw.reader.release)
    with pytest.raises(RuntimeError):
        worker.join_result()
    rw.reader.release()
    assert not rw.reader.locked()


def test_condition_over_the_writer(RWLock):
    rw = RWLock()
    cond = threading.Condition(rw.writer)
    items = []

    def produce():
        with cond:
            items.append(1)
            cond.notify()

    with cond:
        worker = start(produce)
        assert cond.wait_for(lambda: items, 10)
        assert rw.writer.locked()
    worker.join_result()
    assert not rw.writer.locked()


# ---- Policy -------------------------------------------------------------------------

def test_readers_hold_it_together(RWLock):
    rw = RWLock()
    inside = threading.Barrier(4, timeout=10)

    def read():
        with rw.reader:
            inside.wait()   # all four at once, or a BrokenBarrierError
            assert rw._readers() == 4
            inside.wait()   # nobody leaves before all have looked

    for worker in [start(read) for _ in range(4)]:
        worker.join_result()
    assert rw._readers() == 0


def test_a_writer_is_alone(RWLock):
    rw = RWLock()
    release, worker = holding(rw.writer)
    try:
        assert rw.reader.acquire(False) is False
        assert rw.writer.acquire(False) is False
    finally:
        release.set()
    worker.join_result()


def wait_for_waiting(rw, readers, writers):
    deadline = time.monotonic() + 10
    while rw._waiting() != (readers, writers):
        assert time.monotonic() < deadline, rw._waiting()
        time.sleep(0.001)


def test_reentrant_read_passes_a_waiting_writer(RWLock):
    rw = RWLock()
    rw.reader.acquire()
    writer = start(lambda: (rw.writer.acquire(), rw.writer.release()))
    wait_for_waiting(rw, 0, 1)
    assert rw.reader.acquire(timeout=5) is True    # not behind the writer
    with rw.reader:
        pass
    # A new reader waits behind it, though.
    assert start(lambda: rw.reader.acquire(False)).join_result() is False
    rw.reader.release()
    rw.reader.release()
    writer.join_result()


def test_phases_alternate(RWLock):
    """Readers that waited through a write go in before the next writer."""
    rw = RWLock()
    order = []
    rw.writer.acquire()
    first_reader = start(lambda: (rw.reader.acquire(), order.append("r1"), time.sleep(0.05),
                                  rw.reader.release()))
    wait_for_waiting(rw, 1, 0)
    second_writer = start(lambda: (rw.writer.acquire(), order.append("w2"), rw.writer.release()))
    wait_for_waiting(rw, 1, 1)
    second_reader = start(lambda: (rw.reader.acquire(), order.append("r2"), time.sleep(0.05),
                                   rw.reader.release()))
    wait_for_waiting(rw, 2, 1)
    rw.writer.release()
    for worker in (first_reader, second_writer, second_reader):
        worker.join_result()
    assert sorted(order[:2]) == ["r1", "r2"] and order[2] == "w2", order


def test_writer_that_gives_up_lets_readers_in(RWLock):
    rw = RWLock()
    rw.reader.acquire()
    writer = start(lambda: rw.writer.acquire(timeout=0.2))
    wait_for_waiting(rw, 0, 1)
    reader = start(lambda: (rw.reader.acquire(timeout=10), rw.reader.release()))
    assert writer.join_result() is False
    reader.join_result()
    rw.reader.release()


def test_downgrade_lets_readers_but_no_writer_in(RWLock):
    rw = RWLock()
    rw.writer.acquire()
    reader = start(lambda: (rw.reader.acquire(), rw.reader.release()))
    wait_for_waiting(rw, 1, 0)
    writer = start(lambda: (rw.writer.acquire(), rw.writer.release()))
    wait_for_waiting(rw, 1, 1)
    rw.downgrade()
    assert not rw.writer.locked() and rw.reader.locked()
    reader.join_result()
    assert rw._waiting() == (0, 1)   # the writer still waits for our read
    with rw.reader:                  # and we may read again
        pass
    rw.reader.release()
    writer.join_result()
    assert not rw.reader.locked() and not rw.writer.locked()


def test_upgrade_and_misuse_are_refused_clearly(RWLock):
    rw = RWLock()
    with rw.reader:
        with pytest.raises(RuntimeError, match="upgrading is not supported"):
            rw.writer.acquire()
        with pytest.raises(RuntimeError, match="upgrading is not supported"):
            rw.writer.acquire(False)
    with rw.writer:
        with pytest.raises(RuntimeError, match="use downgrade"):
            rw.reader.acquire()
    with pytest.raises(RuntimeError, match="downgrade"):
        rw.downgrade()
    release, worker = holding(rw.writer)
    with pytest.raises(RuntimeError, match="downgrade"):
        rw.downgrade()                # another thread writes
    release.set()
    worker.join_result()


def contend(rw, readers, writers, release_gil, turns_each, seconds=1.0, patience=30.0):
    """Readers and writers loop for `seconds`, and on until each has had
    `turns_each` turns (for at most `patience` seconds more: on a busy
    machine every hand-off waits for the scheduler); returns their counts."""
    counts = {"reader": [0] * readers, "writer": [0] * writers}
    stop = threading.Event()
    go = threading.Barrier(readers + writers + 1, timeout=10)
    short_of_turns = [readers + writers]
    counting = threading.Lock()
    everyone_had_turns = threading.Event()

    def had_enough():
        with counting:
            short_of_turns[0] -= 1
            if short_of_turns[0] == 0:
                everyone_had_turns.set()

    def work(kind, me):
        lock = getattr(rw, kind)
        go.wait()
        while not stop.is_set():
            with lock:
                counts[kind][me] += 1
                if release_gil:
                    time.sleep(0)
            if counts[kind][me] == turns_each:
                had_enough()

    workers = [start(work, "reader", i) for i in range(readers)]
    workers += [start(work, "writer", i) for i in range(writers)]
    go.wait()
    stop.wait(seconds)
    everyone_had_turns.wait(patience)
    stop.set()
    for worker in workers:
        worker.join_result()
    return counts


@pytest.mark.parametrize("release_gil", [False, True], ids=["busy", "sleep0"])
def test_neither_side_starves(RWLock, release_gil):
    # Generous bounds, as test_fairness.py's: nobody starves; how quickly
    # turns come round is bench/'s business.
    counts = contend(RWLock(), readers=3, writers=2, release_gil=release_gil, turns_each=10)
    everyone = counts["reader"] + counts["writer"]
    assert min(everyone) >= 10, counts
    assert min(counts["writer"]) >= max(counts["reader"]) / 200, counts


# ---- Guarantees ---------------------------------------------------------------------

CTRL_C_CHILD = """
import threading, time
import {module} as backend
rw = backend.RWLock()
held = threading.Event()
def holder():
    rw.{held}.acquire(); held.set(); threading.Event().wait()
threading.Thread(target=holder, daemon=True).start()
held.wait()
print("READY", flush=True)
try:
    rw.{wanted}.acquire({args})
    print("ACQUIRED", flush=True)
except KeyboardInterrupt:
    print("INTERRUPTED", rw._waiting(), rw.reader.locked(), rw.writer.locked(), flush=True)
"""


def _sleeping(pid):
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] == "S"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; POSIX signals")
@pytest.mark.parametrize("module", backend_params())
@pytest.mark.parametrize("held, wanted", [("writer", "reader"), ("reader", "writer"),
                                          ("writer", "writer")])
@pytest.mark.parametrize("args", ["", "timeout=60"])
def test_ctrl_c_interrupts_a_wait(module, held, wanted, args):
    code = CTRL_C_CHILD.format(module=module, held=held, wanted=wanted, args=args)
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, **CHILD_OPTIONS)
    try:
        assert child.stdout.readline().strip() == "READY"
        deadline = time.monotonic() + 10
        while not _sleeping(child.pid):
            assert time.monotonic() < deadline, "child never blocked"
            time.sleep(0.005)
        time.sleep(0.05)
        os.kill(child.pid, signal.SIGINT)
        out, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    expected = f"INTERRUPTED (0, 0) {held == 'reader'} {held == 'writer'}"
    assert out.strip() == expected, err


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.parametrize("module", backend_params())
def test_fork_child(module):
    result = run_python(f"""
        import os, threading, warnings
        warnings.simplefilter("ignore", DeprecationWarning)
        import {module} as backend
        rw = backend.RWLock()
        reading, release = threading.Event(), threading.Event()
        def reader():
            with rw.reader:
                reading.set(); release.wait()
        t = threading.Thread(target=reader); t.start(); reading.wait()
        # A writer waits while we fork.
        w = threading.Thread(target=lambda: (rw.writer.acquire(), rw.writer.release())); w.start()
        while rw._waiting() != (0, 1):
            pass
        pid = os.fork()
        if pid == 0:
            # The parent's reader stays counted, as a Lock another thread
            # holds stays held; the parent's waiting writer is forgotten.
            ok = rw.writer.acquire(False) is False and rw.reader.acquire(timeout=5)
            rw.reader.release()
            fresh = backend.RWLock(); fresh.writer.acquire()
            got = []
            c = threading.Thread(target=lambda: got.append(fresh.reader.acquire(timeout=10)))
            c.start(); fresh.writer.release(); c.join()
            os._exit(0 if ok and got == [True] else 1)
        _, status = os.waitpid(pid, 0)
        release.set(); t.join(); w.join()
        print("STATUS", status)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "STATUS 0", result.stderr


@pytest.mark.parametrize("module", backend_params())
def test_exit_with_threads_blocked_on_it(module):
    result = run_python(f"""
        import threading
        import {module} as backend
        rw = backend.RWLock()
        rw.writer.acquire()
        for side in ("reader", "writer", "reader"):
            threading.Thread(target=getattr(rw, side).acquire, daemon=True).start()
        while rw._waiting() != (2, 1):
            pass
        print("EXITING", flush=True)
    """, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "EXITING"


# A finalizer, in the final garbage collection (where no other thread runs
# any more), releases the write a daemon thread waits for, then takes the
# write itself.  The waiter can't use what it would be handed: the lock must
# still be the finalizer's to take, not held for ever.
FINALIZER_TAKES_IT_BACK = """
import signal, threading
import {module} as backend

rw = backend.RWLock()
rw.writer.acquire()
threading.Thread(target=rw.{waiter_side}.acquire, daemon=True).start()
while rw._waiting() == (0, 0):
    pass

class Cycle:
    def __init__(self):
        self.cycle = self
    def __del__(self):
        signal.alarm(10)   # a hang ends the process
        rw.writer.release()
        try:
            result = rw.writer.acquire()
        except BaseException as error:
            print("raised", type(error).__name__, flush=True)
        else:
            print("returned", result, flush=True)

Cycle()
"""


@pytest.mark.skipif(not hasattr(signal, "alarm"), reason="the child ends a hang with signal.alarm")
@pytest.mark.skipif(sys.implementation.name == "pypy", reason="PyPy runs no finalizer of a cycle at exit")
@pytest.mark.parametrize("waiter_side", ["writer", "reader"])
@pytest.mark.parametrize("module", backend_params())
def test_a_finalizer_takes_back_what_it_released_to_a_waiting_thread(module, waiter_side):
    result = run_python(FINALIZER_TAKES_IT_BACK.format(module=module, waiter_side=waiter_side),
                        timeout=60)
    assert result.returncode != -signal.SIGALRM, "the finalizer's acquire hung"
    assert result.returncode == 0, result.stderr
    # From 3.15 a wait at finalization is refused, as threading's locks refuse
    # it; whether this acquire has to wait depends on how fast the waiter gives
    # the lock back.
    allowed = {"returned True"}
    if sys.version_info >= (3, 15):
        allowed.add("raised PythonFinalizationError")
    assert result.stdout.strip() in allowed, result.stdout + result.stderr


def test_debug_sees_both_sides(backend, RWLock):
    from fastsync import debug

    debug.enable(on_inversion="warn")
    try:
        rw = RWLock()
        lock = backend.Lock()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with rw.writer:
                with lock:
                    pass
            with lock:
                with rw.reader:
                    pass
        assert any(issubclass(w.category, debug.LockOrderWarning) for w in caught), caught
        # Re-entry and the refused upgrade behave as with debugging off.
        with rw.reader:
            with rw.reader:
                pass
            with pytest.raises(RuntimeError, match="upgrading"):
                rw.writer.acquire()
        assert not rw.reader.locked()
        with debug.profile() as prof:
            release, worker = holding(rw.writer)
            waiter = start(lambda: (rw.reader.acquire(), rw.reader.release()))
            wait_for_waiting(rw, 1, 0)
            release.set()
            worker.join_result()
            waiter.join_result()
        assert any(row.contended for row in prof.stats()), prof.report()
    finally:
        debug.disable()


@pytest.mark.stress
def test_many_threads_mixed(RWLock):
    """Readers and writers with blocking, timed and non-blocking acquires,
    re-entrant reads and downgrades: a writer is always alone."""
    rw = RWLock()
    state = {"readers": 0, "writers": 0, "overlaps": 0, "writes": 0}
    guard = threading.Lock()
    stop_at = time.monotonic() + 1.5

    def enter(kind):
        with guard:
            state[kind] += 1
            assert state["writers"] <= 1 and not (state["writers"] and state["readers"]), state
            if kind == "readers" and state["readers"] > 1:
                state["overlaps"] += 1

    def leave(kind):
        with guard:
            state[kind] -= 1

    def work(seed):
        rng = random.Random(seed)
        while time.monotonic() < stop_at:
            mode = rng.choice(["block", "timed", "try"])
            args = {"block": (), "timed": (True, rng.choice([0.0001, 0.001, 0.01])), "try": (False,)}[mode]
            if rng.random() < 0.2:
                if rw.writer.acquire(*args):
                    enter("writers")
                    state["writes"] += 1
                    if rng.random() < 0.3:
                        leave("writers")
                        rw.downgrade()
                        enter("readers")
                        leave("readers")
                        rw.reader.release()
                    else:
                        leave("writers")
                        rw.writer.release()
            elif rw.reader.acquire(*args):
                enter("readers")
                if rng.random() < 0.2:
                    with rw.reader:
                        pass
                leave("readers")
                rw.reader.release()

    with switch_interval(2e-5):
        workers = [start(work, seed) for seed in range(8)]
        for worker in workers:
            worker.join_result(60)
    assert not rw.reader.locked() and not rw.writer.locked()
    assert rw._waiting() == (0, 0)
    assert state["writes"] > 0
    print(f"\n[stress] RWLock: {state}")
