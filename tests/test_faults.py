"""Faults: signals during waits, fork() with busy threads, threads that die
holding a lock, interpreter shutdown with threads blocked.

tests/test_signals.py covers one Ctrl-C or one failing handler per blocking
call, in a child interpreter.  Here: many signals during one wait, a signal
racing the release that would let the wait succeed, signal storms while other
threads hammer the lock, signals sent to threads other than the main one, and
KeyboardInterrupt inside `with lock:` bodies.  Signal tests run in pytest's
own main thread with a SIGUSR1 handler installed for the test only, so they
can use the shared helpers; a watchdog unblocks the main thread if a signal is
lost, so a bug fails the test instead of hanging it.

tests/test_fork.py covers a fork with one holder and one waiter; here: forks
while threads are blocked on each primitive, from a thread other than the
main one, repeatedly while threads hammer the primitives, and nested.

Blocker knows how to make each primitive block the main thread and how to
let it through, and BLOCKING_CALLS / TIMED_CALLS list the calls that block;
Condition, Semaphore and Barrier join the signal tests by adding entries to
both, and the fork and KeyboardInterrupt children by adding scenarios."""

import ast
import collections
import dis
import os
import random
import signal
import sys
import threading
import time
import traceback

import pytest

import fastsync
from helpers import LINUX, backend_params, entered_value, run_python, start, wait_until_blocked

POSIX_SIGNALS = pytest.mark.skipif(
    sys.platform == "win32" or not hasattr(signal, "pthread_kill"), reason="POSIX signals")
NEEDS_FORK = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
FASTSYNC_DIR = os.path.dirname(os.path.abspath(fastsync.__file__))


def outcome(call):
    try:
        return "ok", call()
    except Exception as error:   # noqa: BLE001 - compared with threading's
        return type(error).__name__, str(error)


# ---- the primitives and how to block on them ---------------------------------------

class Blocker:
    """A primitive held (or left unset) by another thread, so that `call` blocks
    in the main thread until `unblock()` lets it through."""

    def __init__(self, backend, kind):
        self.kind = kind
        self.obj = getattr(backend, kind)()
        self._release = threading.Event()
        self._holder = None
        if kind in ("Lock", "RLock"):
            held = threading.Event()

            def hold():
                self.obj.acquire()
                held.set()
                self._release.wait(60)
                self.obj.release()

            self._holder = start(hold, name=f"{kind}-holder")
            assert held.wait(10)

    def unblock(self):
        """Let a blocked call through (idempotent)."""
        if self.kind == "Event":
            self.obj.set()
        else:
            self._release.set()

    def finish(self):
        self.unblock()
        if self._holder is not None:
            self._holder.join_result()

    def acquired_by_main(self):
        """True if the main thread holds the lock (nonsense for Event)."""
        if self.kind == "RLock":
            return self.obj._is_owned()
        if self.kind == "Lock":
            # The holder has let go; the only other possible owner is us.
            return self.obj.locked()
        return False


# call name -> (kind, function that blocks on the Blocker's object)
BLOCKING_CALLS = {
    "Lock.acquire()": ("Lock", lambda obj: obj.acquire()),
    "Lock.acquire(timeout=30)": ("Lock", lambda obj: obj.acquire(timeout=30)),
    "with Lock": ("Lock", lambda obj: obj.__enter__()),
    "RLock.acquire()": ("RLock", lambda obj: obj.acquire()),
    "RLock.acquire(True, 30)": ("RLock", lambda obj: obj.acquire(True, 30)),
    "with RLock": ("RLock", lambda obj: obj.__enter__()),
    "Event.wait()": ("Event", lambda obj: obj.wait()),
    "Event.wait(30)": ("Event", lambda obj: obj.wait(30)),
}
TIMED_CALLS = {
    "Lock.acquire(timeout=T)": ("Lock", lambda obj, t: obj.acquire(timeout=t)),
    "RLock.acquire(True, T)": ("RLock", lambda obj, t: obj.acquire(True, t)),
    "Event.wait(T)": ("Event", lambda obj, t: obj.wait(t)),
}


# ---- signals ------------------------------------------------------------------------

class Interrupted(Exception):
    """What our SIGUSR1 handler raises."""


class SignalDriver:
    """A SIGUSR1 handler for the main thread, and the means to send it."""

    def __init__(self):
        self.calls = 0
        self.raised = 0
        self.raise_if = None      # frame -> bool; None: never raise

    def handler(self, signum, frame):
        self.calls += 1
        if self.raise_if is not None and self.raise_if(frame):
            self.raised += 1
            raise Interrupted(self.calls)

    @staticmethod
    def send(thread=None):
        signal.pthread_kill((thread or threading.main_thread()).ident, signal.SIGUSR1)

    def deliver(self, count, *, after=None):
        """From a helper thread: send `count` signals to the sleeping main
        thread, each once the previous one was handled.  A signal can land
        just before the main thread goes back to sleep, when it only runs the
        handler at the next wake-up; such a signal is sent again."""
        main = threading.main_thread()
        for number in range(1, count + 1):
            deadline = time.monotonic() + 20
            while self.calls < number:
                assert time.monotonic() < deadline, f"signal {number} never handled"
                wait_until_blocked(main)
                if after is not None and number == count:
                    after()
                self.send()
                retry_at = time.monotonic() + 0.5
                while self.calls < number and time.monotonic() < retry_at:
                    time.sleep(0.0005)


@pytest.fixture
def signals():
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers run in the main thread only")
    driver = SignalDriver()
    previous = signal.signal(signal.SIGUSR1, driver.handler)
    try:
        yield driver
    finally:
        driver.raise_if = None
        time.sleep(0.001)         # a signal still in flight arrives ...
        for _ in range(100):      # ... and its handler runs, harmlessly
            pass
        signal.signal(signal.SIGUSR1, previous)


def watchdog(blocker, done, seconds=15.0):
    """If the main thread is still blocked after `seconds`, let it through so
    the test fails instead of hanging."""
    def watch():
        if not done.wait(seconds):
            blocker.unblock()
    return start(watch, name="watchdog")


def at_instruction(code, *opnames):
    """Byte offsets of the named instructions in a code object."""
    return {ins.offset for ins in dis.get_instructions(code) if ins.opname in opnames}


WITH_OPS = ("SETUP_WITH", "BEFORE_WITH")


@POSIX_SIGNALS
@pytest.mark.parametrize("call", sorted(BLOCKING_CALLS))
def test_many_signals_during_one_wait_then_a_failing_handler(backend, signals, call):
    """25 signals arrive while the main thread is blocked; the handler returns
    for the first 24 and raises for the last.  The wait survives the first,
    the exception propagates promptly, nothing is acquired, and the primitive
    still works."""
    kind, block = BLOCKING_CALLS[call]
    count = 25
    blocker = Blocker(backend, kind)
    # Raise once: a signal sent twice (see deliver) must not raise again later.
    signals.raise_if = lambda frame: signals.calls >= count and not signals.raised
    done = threading.Event()
    sent = []
    sender = start(lambda: signals.deliver(count, after=lambda: sent.append(time.monotonic())))
    guard = watchdog(blocker, done)
    try:
        with pytest.raises(Interrupted):
            block(blocker.obj)
        latency = time.monotonic() - sent[-1]
    finally:
        done.set()
    sender.join_result()
    guard.join_result()
    assert signals.calls >= count and signals.raised == 1
    assert latency < 2.0, f"the exception took {latency:.3f} s to propagate"
    blocker.finish()
    assert not blocker.acquired_by_main()
    # Still works: a blocked call is let through by release/set.
    obj = blocker.obj
    if kind == "Event":
        assert obj.wait(0) is True
    else:
        assert obj.locked() is False
        obj.acquire()
        waiter = start(lambda: obj.acquire(timeout=10) and obj.release() is None)
        wait_until_blocked(waiter)
        obj.release()
        assert waiter.join_result() is True
        assert not obj.locked()


@POSIX_SIGNALS
@pytest.mark.parametrize("call", sorted(TIMED_CALLS))
def test_many_signals_do_not_stretch_or_cut_a_timed_wait(backend, signals, call):
    kind, block = TIMED_CALLS[call]
    timeout = 0.6
    blocker = Blocker(backend, kind)
    sender = start(lambda: signals.deliver(20))
    began = time.monotonic()
    try:
        result = block(blocker.obj, timeout)
        elapsed = time.monotonic() - began
        during = signals.calls
    finally:
        blocker.finish()
    sender.join_result()
    assert result is False
    assert during >= 5, f"only {during} signals arrived during the wait"
    assert timeout <= elapsed < timeout + 3.0, elapsed


@POSIX_SIGNALS
@pytest.mark.parametrize("call", sorted(BLOCKING_CALLS))
def test_signals_to_another_thread_do_not_end_its_wait(backend, signals, call):
    """Handlers run only in the main thread; a waiting thread that a signal
    interrupts goes back to waiting."""
    kind, block = BLOCKING_CALLS[call]
    blocker = Blocker(backend, kind)
    waiter = start(lambda: block(blocker.obj), name="waiter")
    try:
        for number in range(1, 11):
            wait_until_blocked(waiter)
            signals.send(waiter)
            deadline = time.monotonic() + 10
            while signals.calls < number:     # the handler runs here, in the main thread
                assert time.monotonic() < deadline
                time.sleep(0.001)
        wait_until_blocked(waiter)
        assert waiter.is_alive()
    finally:
        blocker.unblock()
    # What the call returns once through: `with` gives what threading's does.
    expected = entered_value(blocker.obj, kind) if call.startswith("with ") else True
    assert waiter.join_result() is expected
    if kind != "Event":
        # The waiter ended holding it; the holder thread has let go.
        assert blocker.obj.locked()
        if kind == "Lock":
            blocker.obj.release()
    blocker.finish()


def _enter_and_leave(lock, entered):
    with lock:
        entered.append(1)


@POSIX_SIGNALS
def test_signal_racing_the_release_never_leaves_the_lock_held(any_lock, signals):
    """The holder releases the lock and signals the main thread, which is
    blocked in `with lock:` or about to enter it, in either order.  Whichever
    wins, once the handler has raised the lock is free: __enter__ either did
    not acquire, or the body was entered and __exit__ ran.

    The handler raises only where an exception is the lock's business: at the
    `with` instruction (inside __enter__, or just after it inside the block),
    or in fastsync's own Python code.  Elsewhere (e.g. between the block's end
    and __exit__ on 3.9, CPython's own bpo-29988) it just returns."""
    lock = any_lock()
    rounds = 200
    with_offsets = at_instruction(_enter_and_leave.__code__, *WITH_OPS)
    signals.raise_if = lambda frame: (
        (frame.f_code is _enter_and_leave.__code__ and frame.f_lasti in with_offsets)
        or os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == FASTSYNC_DIR)
    go, held, entering, done = (threading.Event() for _ in range(4))
    stop = [False]
    main = threading.main_thread()
    rng = random.Random(6)

    def holder():
        while True:
            assert go.wait(20)
            go.clear()
            if stop[0]:
                return
            lock.acquire()
            held.set()
            assert entering.wait(20)
            entering.clear()
            if rng.random() < 0.5:
                wait_until_blocked(main)    # in __enter__, waiting
            # else: whenever, around __enter__
            # Either order, a few microseconds apart or none.
            signal_first = rng.random() < 0.5
            if signal_first:
                signals.send()
            spin_until = time.perf_counter() + rng.choice((0, 0, 5e-6, 2e-5, 1e-4))
            while time.perf_counter() < spin_until:
                pass
            lock.release()
            if not signal_first:
                signals.send()
            done.set()

    worker = start(holder)
    entered, raised, leaked = [], 0, []
    try:
        for number in range(1, rounds + 1):
            go.set()
            if not held.wait(20):
                worker.join_result(1)     # raises what stopped the holder
                pytest.fail("the holder is stuck")
            held.clear()
            entering.set()
            try:
                _enter_and_leave(lock, entered)
                deadline = time.monotonic() + 10
                while signals.calls < number:     # a handler that didn't raise
                    assert time.monotonic() < deadline
                    time.sleep(0.0001)
            except Interrupted:
                raised += 1
            if not done.wait(20):         # the holder has let go
                worker.join_result(1)
                pytest.fail("the holder is stuck")
            done.clear()
            if lock.locked():
                leaked.append(number)
                lock.release() if not hasattr(lock, "_is_owned") else lock._release_save()
    finally:
        stop[0] = True
        go.set()
    worker.join_result()
    print(f"\n[faults] {type(lock).__name__}: {rounds} rounds, {len(entered)} entered, "
          f"{raised} interrupted, {len(leaked)} left held")
    assert not leaked, f"the lock stayed held after rounds {leaked[:10]}"


def _storm_step(lock, nested, check):
    if nested:
        with lock:   # noqa: SIM117 - two with statements, the inner one re-entering
            with lock:
                check()
    else:
        with lock:
            check()


def _barrier_after_an_interrupted_wait(Barrier, signals):
    """Three parties: one thread waits, the main thread's wait is ended by a
    signal handler's exception, then two more arrive.  What each step saw."""
    barrier = Barrier(3)
    first = start(barrier.wait)
    wait_until_blocked(first)
    signals.raise_if = lambda frame: True
    sender = start(signals.deliver, signals.calls + 1)   # one more signal
    interrupted = outcome(barrier.wait)[0]
    sender.join_result()
    signals.raise_if = None
    after_interruption = (interrupted, barrier.broken, barrier.n_waiting)
    second = start(barrier.wait)
    wait_until_blocked(second)
    last = barrier.wait(20)
    return after_interruption, (first.join_result(), second.join_result(), last), barrier.broken


@POSIX_SIGNALS
def test_interrupted_barrier_wait_leaves_the_cycle_like_threading(backend, signals):
    """The interrupted thread leaves; the barrier isn't broken and the cycle
    completes with the next two arrivals, as with threading.Barrier."""
    mine = _barrier_after_an_interrupted_wait(backend.Barrier, signals)
    assert mine == (("Interrupted", False, 1), (0, 1, 2), False)
    assert mine == _barrier_after_an_interrupted_wait(threading.Barrier, signals)


@POSIX_SIGNALS
def test_signal_storm_while_threads_hammer_the_lock(any_lock, signals):
    """Signals every ~0.2 ms at the main thread, whose handler raises whenever
    the main thread is entering `with lock:`, while three threads take the
    lock every way there is.  Mutual exclusion holds throughout, every thread
    finishes, the lock ends free."""
    lock = any_lock()
    reentrant = hasattr(lock, "_is_owned")
    seconds = 1.0
    with_offsets = at_instruction(_storm_step.__code__, *WITH_OPS)
    armed = [False]

    def raise_if(frame):
        # Once per step: on 3.9 a second signal can be handled at the start
        # of the with's exception handler, before __exit__ runs, with f_lasti
        # still at the with instruction; an exception there would skip
        # __exit__ whatever the lock (CPython's bpo-29988).
        if armed[0] and frame.f_code is _storm_step.__code__ and frame.f_lasti in with_offsets:
            armed[0] = False
            return True
        return False

    signals.raise_if = raise_if
    inside, entries = [None], collections.Counter()
    stop_at = time.monotonic() + seconds

    def critical(who):
        assert inside[0] is None, f"{who} found {inside[0]} inside"
        inside[0] = who
        entries[who] += 1
        if entries[who] % 16 == 0:
            time.sleep(0)
        assert inside[0] == who
        inside[0] = None

    def hammer(seed):
        who = f"hammer-{seed}"
        attempt = 0
        while time.monotonic() < stop_at:
            attempt += 1
            choice = attempt % 4
            if choice == 0:
                with lock:
                    critical(who)
            elif (lock.acquire(timeout=0.001) if choice == 1 else
                  lock.acquire(False) if choice == 2 else lock.acquire()):
                try:
                    critical(who)
                finally:
                    lock.release()
            else:
                entries[who + " missed"] += 1

    def storm():
        sent = 0
        while time.monotonic() < stop_at:
            signals.send()
            sent += 1
            time.sleep(0.0002)
        return sent

    previous_interval = sys.getswitchinterval()
    sys.setswitchinterval(5e-5)     # so the sender gets its turns
    try:
        hammers = [start(hammer, seed) for seed in range(3)]
        sender = start(storm)
        steps = 0
        while time.monotonic() < stop_at:
            steps += 1
            armed[0] = True
            try:
                _storm_step(lock, reentrant and steps % 2 == 0, lambda: critical("main"))
            except Interrupted:
                entries["main interrupted"] += 1
        sent = sender.join_result()
    finally:
        sys.setswitchinterval(previous_interval)
    for worker in hammers:
        worker.join(30)
    stuck = [worker for worker in hammers if worker.is_alive()]
    if stuck:
        frames = sys._current_frames()
        stacks = "\n".join(f"{w.name}:\n" + "".join(traceback.format_stack(frames[w.ident]))
                           for w in stuck if w.ident in frames)
        pytest.fail(f"{len(stuck)} hammers stuck; {lock!r}, locked={lock.locked()}, "
                    f"errors={[w.error for w in hammers]}, entries={dict(entries)}\n{stacks}")
    for worker in hammers:
        worker.join_result()
    assert inside[0] is None
    assert not lock.locked()
    assert signals.raised == entries["main interrupted"]
    print(f"\n[faults] {type(lock).__name__} signal storm: {sent} signals, {signals.calls} handled, "
          f"{signals.raised} raised in __enter__, {steps} main steps, entries {dict(entries)}")


# ---- KeyboardInterrupt inside `with` bodies (child interpreters) --------------------

# Every scenario runs for threading and for the backend in one child; each
# prints one line, and the lines must agree.  The main thread blocks (or
# spins) inside `with` bodies; a helper thread waits until it is inside and
# sends it a real SIGINT, handled by Python's default handler.
KEYBOARD_INTERRUPT_CHILD = """
import signal, sys, threading, time
from helpers import wait_until_blocked
import {module} as backend

main = threading.main_thread()

inside = threading.Event()   # set in each `with` body before it blocks

def interrupt_when(ready):
    def send():
        ready()
        signal.pthread_kill(main.ident, signal.SIGINT)
    t = threading.Thread(target=send, daemon=True)
    t.start()
    return t

def blocked():
    inside.wait()
    wait_until_blocked(main)

def state(lock):
    text = repr(lock)
    count = int(text.split(" count=")[1].split()[0]) if " count=" in text else None
    owned = lock._is_owned() if hasattr(lock, "_is_owned") else None
    other = []
    t = threading.Thread(target=lambda: other.append(lock.acquire(timeout=5) and (lock.release() or True)))
    t.start(); t.join()
    return (count, owned, other[0])

def run(name, Lock, RLock, Event):
    results = []
    def case(label, lock, body, ready, depth=1):
        inside.clear()
        sender = interrupt_when(ready)
        try:
            for _ in range(depth):
                lock.acquire()   # outer levels of an RLock, released below
            try:
                with lock:
                    inside.set()
                    body()
                    results.append((label, "body finished"))
            finally:
                for _ in range(depth):
                    lock.release()
        except KeyboardInterrupt:
            results.append((label, "KeyboardInterrupt", state(lock)))
        sender.join()
    for kind in ("Lock", "RLock"):
        cls = Lock if kind == "Lock" else RLock
        other_lock = Lock(); other_lock.acquire()
        case(kind + " body waits on Event", cls(), lambda: Event().wait(), blocked, depth=0)
        case(kind + " body waits on timed Event", cls(), lambda: Event().wait(30), blocked, depth=0)
        case(kind + " body blocked on Lock", cls(), other_lock.acquire, blocked, depth=0)
        case(kind + " body in time.sleep", cls(), lambda: time.sleep(30), blocked, depth=0)
        def spin():
            while True:
                pass
        case(kind + " body spins", cls(), spin, inside.wait, depth=0)
    case("RLock 3 levels deep", RLock(), lambda: Event().wait(), blocked, depth=2)
    print(name, repr(results), flush=True)

run("threading", threading.Lock, threading.RLock, threading.Event)
run("backend", backend.Lock, backend.RLock, backend.Event)
"""


def child_env():
    path = os.pathsep.join(p for p in (TESTS_DIR, os.environ.get("PYTHONPATH")) if p)
    return {"PYTHONPATH": path}


def child_lines(result):
    assert result.returncode == 0, result.stderr
    lines = {}
    for line in result.stdout.splitlines():
        name, _, value = line.partition(" ")
        lines[name] = ast.literal_eval(value)
    return lines


@pytest.fixture(params=backend_params())
def module(request):
    __import__(request.param)   # fail, not skip, if the compiled one is missing
    return request.param


@POSIX_SIGNALS
@pytest.mark.skipif(not LINUX, reason="sees the main thread block through /proc")
def test_keyboard_interrupt_in_with_body_releases_the_lock(module):
    result = run_python(KEYBOARD_INTERRUPT_CHILD.format(module=module), env=child_env())
    lines = child_lines(result)
    assert lines["backend"] == lines["threading"]
    for label, *rest in lines["backend"]:
        # Interrupted, then free: RLock count 0 and not owned; another thread gets it.
        assert rest[0] == "KeyboardInterrupt", (label, rest)
        count, owned, other_acquired = rest[1]
        assert count in (None, 0) and owned in (None, False) and other_acquired is True, (label, rest)


# ---- fork ---------------------------------------------------------------------------

# Each scenario runs for threading and for the backend; the forked child's
# findings travel back through a pipe and both lists must agree.  The child
# arms an alarm so that a hang kills it rather than the test run.
FORK_CHILD = """
import os, signal, sys, threading, time, warnings
warnings.simplefilter("ignore", DeprecationWarning)   # fork with threads, 3.12+
from helpers import wait_until_blocked
import {module} as backend

def in_child(fn):
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        signal.alarm(20)
        os.close(read_end)
        try:
            out = repr(fn())
        except BaseException as error:
            out = repr(("child raised", repr(error)))
        os.write(write_end, out.encode())
        os._exit(0)
    os.close(write_end)
    chunks = []
    while True:
        chunk = os.read(read_end, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    return (status, b"".join(chunks).decode())

def thread(fn, *args):
    t = threading.Thread(target=fn, args=args, daemon=True)
    t.start()
    return t

def count_of(lock):
    return int(repr(lock).split(" count=")[1].split()[0])

def handed_to_child_thread(lock):
    # The child holds `lock`; a thread of the child blocks on it and gets it
    # when the child lets go.  Returns what that thread got; the lock is free
    # afterwards (the thread ended holding it).
    got = []
    t = thread(lambda: got.append(lock.acquire(timeout=10)))
    wait_until_blocked(t)
    lock.release()
    t.join(15)
    if got == [True]:
        if hasattr(lock, "_release_save"):
            lock._release_save()
        else:
            lock.release()
    return got

def fork_with_blocked_waiter(Lock, RLock, Event, kind):
    lock = Lock() if kind == "Lock" else RLock()
    release = threading.Event()
    holding = threading.Event()
    def hold():
        lock.acquire(); holding.set(); release.wait(30); lock.release()
    holder = thread(hold); holding.wait(10)
    results = []
    def wait_then_release():
        # The waiter lets go itself: since 3.14 an RLock's _release_save
        # refuses any other thread, so nothing else could free it.
        got = lock.acquire(timeout=30)
        results.append(got)
        if got:
            lock.release()
    waiter = thread(wait_then_release)
    wait_until_blocked(waiter)
    def child():
        out = [lock.acquire(False), lock.acquire(timeout=0.05)]
        if kind == "RLock":
            out.append(lock._is_owned())
        lock._at_fork_reinit()
        out.append(lock.acquire(False))
        out.append(handed_to_child_thread(lock))
        out.append(lock.acquire(False))
        lock.release()
        return out
    got = in_child(child)
    release.set(); holder.join(10); waiter.join(10)
    return got, results

def fork_holding_rlock(Lock, RLock, Event):
    rlock = RLock(); lock = Lock()
    rlock.acquire(); rlock.acquire(); rlock.acquire(); lock.acquire()
    def child():
        out = [rlock._is_owned(), count_of(rlock)]
        out += [rlock.release(), rlock.release(), rlock._is_owned(), rlock.release(), rlock._is_owned()]
        out.append(count_of(rlock))
        out.append(lock.locked()); lock.release(); out.append(lock.locked())
        other = []
        t = thread(lambda: other.append(rlock.acquire(timeout=5))); t.join()
        out.append(other)
        return out
    got = in_child(child)
    for _ in range(3):
        rlock.release()
    lock.release()
    return got

def fork_from_other_thread(Lock, RLock, Event):
    rlock, lock, event = RLock(), Lock(), Event()
    got = []
    def forker():
        rlock.acquire(); rlock.acquire(); lock.acquire()
        def child():
            out = [threading.current_thread() is threading.main_thread(), rlock._is_owned(), count_of(rlock)]
            rlock.release(); rlock.release()
            out.append(rlock._is_owned())
            lock.release()
            fresh_lock, fresh_event = Lock(), Event()
            fresh_lock.acquire()
            def t():
                fresh_lock.acquire(); fresh_event.set(); fresh_lock.release()
            worker = thread(t)
            wait_until_blocked(worker)
            fresh_lock.release()
            out.append(fresh_event.wait(10)); worker.join(10)
            out.append(event.is_set())
            return out
        got.append(in_child(child))
        rlock.release(); rlock.release(); lock.release()
    t = thread(forker); t.join(30)
    return got

def fork_with_event_waiters(Lock, RLock, Event):
    event = Event()
    results = []
    waiters = [thread(lambda: results.append(event.wait(30))) for _ in range(3)]
    for w in waiters:
        wait_until_blocked(w)
    def child():
        # No _at_fork_reinit: the event is used as inherited.
        out = [event.is_set(), event.wait(0.05)]
        got = []
        t = thread(lambda: got.append(event.wait(10)))
        wait_until_blocked(t)
        event.set()
        t.join(10)
        out += [got, event.wait(), event.is_set()]
        event.clear()
        out.append(event.wait(0.01))
        return out
    got = in_child(child)
    event.set()
    for w in waiters:
        w.join(10)
    return got, results

def fork_storm(Lock, RLock, Event):
    lock, rlock, event = Lock(), RLock(), Event()
    stop = []
    counter = [0]
    def hammer():
        while not stop:
            with lock:
                with rlock:
                    with rlock:
                        counter[0] += 1
    def toggle():
        while not stop:
            event.set(); event.wait(0.0001); event.clear(); event.wait(0.0001)
    threads = [thread(hammer) for _ in range(3)] + [thread(toggle), thread(toggle)]
    def child():
        lock._at_fork_reinit(); rlock._at_fork_reinit(); event._at_fork_reinit()
        stop.append(True)     # in the child only: its copies of the threads are gone anyway
        total = [0]
        def work():
            for _ in range(1000):
                with lock:
                    with rlock:
                        total[0] += 1
                event.set(); event.clear()
        workers = [thread(work) for _ in range(3)]
        for w in workers:
            w.join(15)
        grandchild = in_child(lambda: [lock.acquire(False), rlock.acquire(False), event.wait(0.001)])
        return [total[0], lock.locked(), rlock._is_owned(), grandchild]
    outcomes = [in_child(child) for _ in range(10)]
    stop.append(True)
    for t in threads:
        t.join(10)
    return outcomes

def run(name, Lock, RLock, Event):
    out = {{}}
    out["waiter Lock"] = fork_with_blocked_waiter(Lock, RLock, Event, "Lock")
    out["waiter RLock"] = fork_with_blocked_waiter(Lock, RLock, Event, "RLock")
    out["holding RLock"] = fork_holding_rlock(Lock, RLock, Event)
    out["other thread"] = fork_from_other_thread(Lock, RLock, Event)
    out["event waiters"] = fork_with_event_waiters(Lock, RLock, Event)
    out["storm"] = fork_storm(Lock, RLock, Event)
    print(name, repr(out), flush=True)

run("threading", threading.Lock, threading.RLock, threading.Event)
run("backend", backend.Lock, backend.RLock, backend.Event)
"""


@NEEDS_FORK
@pytest.mark.skipif(not LINUX, reason="sees threads block through /proc")
def test_fork_with_busy_threads_like_threading(module):
    result = run_python(FORK_CHILD.format(module=module), env=child_env(), timeout=120)
    lines = child_lines(result)
    ours, reference = lines["backend"], lines["threading"]
    assert sorted(ours) == sorted(reference)
    for scenario in reference:
        assert ours[scenario] == reference[scenario], scenario
    # And what threading does is what we expect, so agreement means something.
    assert reference["waiter Lock"] == ((0, repr([False, False, True, [True], True])), [True])
    assert reference["event waiters"] == ((0, repr([False, False, [True], True, True, False])),
                                          [True, True, True])
    for status, text in reference["storm"]:
        assert status == 0
        total, locked, owned, (grand_status, grand_text) = ast.literal_eval(text)
        assert (total, locked, owned, grand_status) == (3000, False, False, 0)
        assert ast.literal_eval(grand_text) == [True, True, False]


# ---- threads that end holding a lock ------------------------------------------------

def test_thread_ending_with_a_lock_held_leaves_it_held(Lock):
    def scenario(lock):
        start(lock.acquire).join_result()
        steps = [lock.locked(), lock.acquire(False), lock.acquire(timeout=0.01)]
        steps.append(outcome(lock.release))      # any thread may release a Lock
        steps += [lock.locked(), lock.acquire(False)]
        lock.release()
        return steps

    expected = scenario(threading.Lock())
    assert expected == [True, False, False, ("ok", None), False, True]
    assert scenario(Lock()) == expected


def test_thread_ending_with_an_rlock_held_like_threading(RLock):
    """The owner stays recorded.  Up to 3.13 _release_save (which checks no
    owner) frees it; since then it refuses too, and the lock stays held for
    good.  A later thread may be given the dead one's identity and then counts
    as the owner, in threading too: both locks are probed by the same threads
    and must agree."""
    ours, reference = RLock(), threading.RLock()

    def die_holding():
        for lock in (ours, reference):
            lock.acquire()
            lock.acquire()
        return threading.get_ident()

    dead = start(die_holding).join_result()

    def probe(lock):
        text = repr(lock)
        owner = int(text.split(" owner=")[1].split()[0])
        count = int(text.split(" count=")[1].split()[0])
        return [owner == dead, count, lock._is_owned(), lock.acquire(False),
                lock.acquire(timeout=0.01), outcome(lock.release)[0]]

    assert probe(ours) == probe(reference) == [True, 2, False, False, False, "RuntimeError"]

    def later_thread():
        same_identity = threading.get_ident() == dead
        steps = [same_identity]
        for lock in (ours, reference):
            got = lock.acquire(False)
            steps.append((got, lock._is_owned()))
            if got:
                lock.release()
        return steps

    steps = start(later_thread).join_result()
    assert steps[1] == steps[2], steps
    assert steps[1] == ((True, True) if steps[0] else (False, False))
    saved = [outcome(lock._release_save) for lock in (ours, reference)]
    assert saved[0] == saved[1]
    assert saved[1] in [("ok", (2, dead)), ("RuntimeError", "cannot release un-acquired lock")]
    after = [lock.acquire(False) for lock in (ours, reference)]
    assert after[0] == after[1] == (saved[1][0] == "ok")
    if after[0]:
        ours.release()
        assert not ours.locked()


# ---- interpreter shutdown ------------------------------------------------------------

SHUTDOWN_CHILD = """
import sys, threading, time
from helpers import wait_until_blocked
import {module} as backend

lock, rlock, event, busy_lock, busy_event = (backend.Lock(), backend.RLock(), backend.Event(),
                                             backend.Lock(), backend.Event())
lock.acquire()
held = threading.Event()
def hold_rlock():
    rlock.acquire(); held.set(); threading.Event().wait()
def hammer():
    while True:
        with busy_lock:
            busy_event.set()
        busy_event.clear()
        busy_event.wait(0.0001)
def start(fn, *args):
    t = threading.Thread(target=fn, args=args, daemon=True)
    t.start()
    return t
start(hold_rlock); held.wait()
blocked = [start(lock.acquire), start(lock.acquire, True, 60), start(rlock.acquire),
           start(event.wait), start(event.wait, 60)]
for _ in range(3):
    start(hammer)
for t in blocked:
    wait_until_blocked(t)
if {wake_at_exit}:
    lock.release(); event.set()   # the daemons wake while the interpreter shuts down
print("exiting", flush=True)
"""


@pytest.mark.skipif(not LINUX, reason="sees threads block through /proc")
@pytest.mark.parametrize("wake_at_exit", [False, True], ids=["blocked", "waking"])
def test_interpreter_exits_cleanly_with_daemon_threads_in_waits(module, wake_at_exit):
    code = SHUTDOWN_CHILD.format(module=module, wake_at_exit=wake_at_exit)
    began = time.monotonic()
    result = run_python(code, env=child_env(), timeout=30)
    assert (result.returncode, result.stdout, result.stderr) == (0, "exiting\n", "")
    assert time.monotonic() - began < 20
