"""Diagnosing a program that already hangs, with nothing enabled beforehand:
find_deadlocks(), blocked_threads() and report_on_signal().

The compiled backend always records who waits for what and who holds each
Lock and RLock; the pure-Python backend knows only while fastsync.debug is
enabled, and says so otherwise.  The deadlocks here are real: in this
process they are timed and ended by the test; in a child, it is killed."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import fastsync.debug as debug
from helpers import CHILD_OPTIONS, LINUX, backend_marks, run_python, start, wait_until_blocked

cython_only = pytest.mark.cython
POSIX_SIGNALS = pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="POSIX signals")
NEEDS_FORK = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


@pytest.fixture
def compiled():
    import fastsync._compiled

    assert not debug.enabled()
    return fastsync._compiled


def address(obj):
    return repr(obj).rsplit(" at ", 1)[1].rstrip(">").split(":")[0]


def take_then_wait(mine, theirs, both_hold, release_mine=True):
    """Take `mine`, meet the other thread, then wait (timed) for `theirs`.
    Without release_mine, `mine` is left to the test to release."""
    mine.acquire()
    both_hold.wait(30)
    got = theirs.acquire(timeout=30)
    if got:
        theirs.release()
    if release_mine:
        mine.release()
    return got


def poll(ask, timeout=10.0):
    """ask() until it returns something true; fails the test after timeout."""
    deadline = time.monotonic() + timeout
    while not (answer := ask()):
        assert time.monotonic() < deadline, f"{ask.__name__}() found nothing"
        time.sleep(0.005)
    return answer


# ---- in this process, compiled backend, no enable() ----------------------------

@cython_only
def test_find_deadlocks_without_enable(compiled):
    lock, rlock = compiled.Lock(), compiled.RLock()
    both_hold = threading.Barrier(3)
    first = start(take_then_wait, lock, rlock, both_hold, False, name="first")
    second = start(take_then_wait, rlock, lock, both_hold, name="second")
    both_hold.wait(30)
    try:
        cycles = poll(debug.find_deadlocks)
    finally:
        lock.release()        # any thread may release a Lock: ends the deadlock
        assert second.join_result() is True
    assert first.join_result() is True
    assert debug.find_deadlocks() == []
    assert len(cycles) == 1
    entries = {entry.thread: entry for entry in cycles[0]}
    assert set(entries) == {first.ident, second.ident}
    one, two = entries[first.ident], entries[second.ident]
    assert (one.name, two.name) == ("first", "second")
    assert address(rlock) in one.waiting_for and address(lock) in two.waiting_for
    assert len(one.holding) == 1 and address(lock) in one.holding[0]
    assert len(two.holding) == 1 and address(rlock) in two.holding[0]
    assert "in take_then_wait" in one.stack[-1] and "theirs.acquire" in one.stack[-1]


@cython_only
def test_find_deadlocks_through_an_rwlocks_writer_without_enable(compiled):
    """A thread that writes is the RWLock's known holder: a cycle through it
    is found.  (Readers are counted, not named, so one through a read is not.)"""
    rw, lock = compiled.RWLock(), compiled.Lock()
    both_hold = threading.Barrier(3)
    writer = start(take_then_wait, rw.writer, lock, both_hold, name="writer")
    reader = start(take_then_wait, lock, rw.reader, both_hold, False, name="reader")
    both_hold.wait(30)
    try:
        cycles = poll(debug.find_deadlocks)
    finally:
        lock.release()        # ends the deadlock: the writer gets the Lock
        assert writer.join_result() is True
    assert reader.join_result() is True
    assert len(cycles) == 1
    entries = {entry.thread: entry for entry in cycles[0]}
    assert set(entries) == {writer.ident, reader.ident}
    one, two = entries[writer.ident], entries[reader.ident]
    assert address(lock) in one.waiting_for
    assert "reader of fastsync.RWLock" in two.waiting_for and address(rw) in two.waiting_for
    assert len(one.holding) == 1 and "locked writer of fastsync.RWLock" in one.holding[0]
    assert len(two.holding) == 1 and address(lock) in two.holding[0]


@cython_only
def test_blocked_threads_without_enable(compiled):
    lock, event, sem = compiled.Lock(), compiled.Event(), compiled.Semaphore(0)
    cond = compiled.Condition()
    started = time.monotonic()
    lock.acquire()
    try:
        waiters = {
            "on-lock": start(lock.acquire, name="on-lock"),
            "on-event": start(event.wait, name="on-event"),
            "on-semaphore": start(sem.acquire, name="on-semaphore"),
            "on-condition": start(lambda: cond.acquire() and cond.wait(), name="on-condition"),
        }
        for thread in waiters.values():
            wait_until_blocked(thread)
        found = {entry.name: entry for entry in debug.blocked_threads()}
        elapsed = time.monotonic() - started
        reprs = {"on-lock": repr(lock), "on-event": repr(event), "on-semaphore": repr(sem),
                 "on-condition": repr(cond)}
    finally:
        lock.release()
        event.set()
        sem.release()
        with cond:
            cond.notify()
        for thread in waiters.values():
            thread.join_result()
    assert set(waiters) <= set(found)
    for name, thread in waiters.items():
        entry = found[name]
        assert entry.thread == thread.ident
        assert entry.waiting_for == reprs[name]
        assert 0 < entry.waited <= elapsed
        assert entry.held_by == (threading.get_ident() if name == "on-lock" else None)
    assert any("in run" in line for line in found["on-event"].stack)
    assert all(entry.name not in waiters for entry in debug.blocked_threads())


@cython_only
@pytest.mark.parametrize("condition_type", ["threading", "fastsync"])
def test_a_lock_awaited_through_a_condition_counts(compiled, condition_type):
    """threading.Condition over a fastsync Lock: its `with` is the lock's
    acquire.  fastsync.Condition: wait() retaking the lock after a notify."""
    cond = (threading.Condition if condition_type == "threading" else compiled.Condition)(compiled.Lock())
    other = compiled.Lock()
    both = threading.Barrier(2)

    def notified_then_retake():
        # Takes `other` (the test releases it); waits on the condition, is
        # notified, then needs the condition's lock back.
        other.acquire()
        with cond:
            both.wait(30)
            cond.wait(30)

    def notify_then_take_other():
        both.wait(30)
        with cond:
            cond.notify()
            got = other.acquire(timeout=30)
            if got:
                other.release()
            return got

    waiter = start(notified_then_retake, name="waiter")
    notifier = start(notify_then_take_other, name="notifier")
    try:
        cycles = poll(debug.find_deadlocks)
    finally:
        other.release()    # from here: the notifier takes it, then both finish
        assert notifier.join_result() is True
        waiter.join_result()
    assert [sorted(entry.name for entry in cycle) for cycle in cycles] == [["notifier", "waiter"]]


@cython_only
@NEEDS_FORK
def test_a_forked_child_forgets_the_other_threads_waits(compiled):
    result = run_python(f"""
        import os, sys
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        import threading, fastsync._compiled as c, fastsync.debug as debug
        from helpers import start, wait_until_blocked
        event = c.Event()
        waiter = start(event.wait, name="waiter")
        wait_until_blocked(waiter)
        assert [e.name for e in debug.blocked_threads()] == ["waiter"]
        pid = os.fork()
        if pid == 0:
            ok = debug.blocked_threads() == [] and debug.find_deadlocks() == []
            lock = c.Lock()
            lock.acquire()
            ok = ok and not lock.acquire(timeout=0.01)   # a wait in the child, listed and unlisted
            os._exit(0 if ok and debug.blocked_threads() == [] else 1)
        _, status = os.waitpid(pid, 0)
        event.set()
        waiter.join_result()
        print(os.waitstatus_to_exitcode(status))
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "0\n"


# ---- pure-Python backend ----------------------------------------------------------

def test_the_fallback_without_enable_says_it_cannot_know():
    result = run_python("""
        import fastsync, fastsync.debug as debug
        assert fastsync.BACKEND == "python"
        for ask in (debug.find_deadlocks, debug.blocked_threads):
            try:
                ask()
            except RuntimeError as error:
                print(error)
        print(debug.report(), end="")
    """, env={"FASTSYNC_NO_EXTENSIONS": "1", "FASTSYNC_DEBUG": ""})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert all("pure-Python backend records it only while fastsync.debug is enabled" in line
               for line in lines)


# ---- a child that hangs: a watchdog thread, and a report on a signal --------------

CHILD = """
import json, os, signal, sys, threading, time
import fastsync, fastsync.debug as debug
first_lock = fastsync.Lock()
second_lock = fastsync.RLock()
both_hold = threading.Barrier(3)

def first():
    with first_lock:
        both_hold.wait()
        second_lock.acquire()   # first waits here

def second():
    with second_lock:
        both_hold.wait()
        first_lock.acquire()    # second waits here

threads = [threading.Thread(target=f, name=f.__name__ + "-thread", daemon=True) for f in (first, second)]
for thread in threads:
    thread.start()
both_hold.wait()
SETUP
print(json.dumps({"backend": fastsync.BACKEND, "first": hex(id(first_lock)), "second": hex(id(second_lock)),
                  "threads": [t.ident for t in threads], "main": threading.get_ident()}), flush=True)
MAIN
"""


def child_line(marker, code=CHILD):
    """The number of the child's line that holds marker."""
    return next(index for index, line in enumerate(code.splitlines(), 1) if marker in line)


def start_child(setup, main, env):
    code = CHILD.replace("SETUP", textwrap.dedent(setup).strip())
    code = code.replace("MAIN", textwrap.dedent(main).strip())
    full_env = dict(os.environ)
    full_env.pop("FASTSYNC_DEBUG", None)
    full_env.update(env)
    child = subprocess.Popen([sys.executable, "-c", code], env=full_env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, **CHILD_OPTIONS)
    child.code = code
    return child


def wait_until_sleeping(pid, timeout=10.0):
    """Until the child's main thread sleeps in the kernel, three looks running."""
    if not LINUX:
        time.sleep(0.5)
        return
    deadline, steady = time.monotonic() + timeout, 0
    while steady < 3:
        assert time.monotonic() < deadline, "the child's main thread never blocked"
        with open(f"/proc/{pid}/task/{pid}/stat") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
        steady = steady + 1 if state == "S" else 0
        time.sleep(0.01)


def finish(child):
    try:
        out, err = child.communicate(timeout=30)
    finally:
        child.kill()
    return out, err


@cython_only
def test_a_watchdog_thread_finds_the_deadlock_in_a_hung_child():
    # No FASTSYNC_DEBUG, no enable(): the deadlock is there before anyone asks.
    child = start_child("""
        def watchdog():
            while True:
                cycles = debug.find_deadlocks()
                if cycles:
                    print(json.dumps([[[e.name, e.waiting_for, e.holding] for e in c] for c in cycles]),
                          flush=True)
                    os._exit(0)
                time.sleep(0.01)
        """, """
        threading.Thread(target=watchdog).start()
        fastsync.Event().wait()   # the main thread blocks too
        """, env={})
    out, err = finish(child)
    assert child.returncode == 0, err
    ids, cycles = map(json.loads, out.splitlines())
    assert not debug.enabled()
    assert len(cycles) == 1
    entries = {name: (waiting, holding) for name, waiting, holding in cycles[0]}
    assert set(entries) == {"first-thread", "second-thread"}
    assert ids["second"] in entries["first-thread"][0] and ids["first"] in entries["first-thread"][1][0]
    assert ids["first"] in entries["second-thread"][0] and ids["second"] in entries["second-thread"][1][0]


REPORT_SETUP = {
    "call": "debug.report_on_signal(signal.SIGUSR1)",
    "environment": "",
}


@POSIX_SIGNALS
@pytest.mark.parametrize("how", ["call", "environment"])
@pytest.mark.parametrize("backend_name", [pytest.param(name, marks=backend_marks(name), id=name)
                                          for name in ("cython", "python")])
def test_kill_usr1_prints_the_report(how, backend_name):
    env = {}
    if how == "environment":
        env["FASTSYNC_DEBUG"] = "report-on=USR1"
    if backend_name == "python":
        # The fallback knows only what it watched: debugging on from the start.
        env["FASTSYNC_NO_EXTENSIONS"] = "1"
        env["FASTSYNC_DEBUG"] = ",".join(filter(None, [env.get("FASTSYNC_DEBUG"), "lock-order"]))
    child = start_child(
        REPORT_SETUP[how] + "\n" + textwrap.dedent("""
        # After the report, exit: the handler fastsync installed runs first.
        report = signal.getsignal(signal.SIGUSR1)
        signal.signal(signal.SIGUSR1, lambda signum, frame: (report(signum, frame), os._exit(0)))
        while len(debug.blocked_threads()) < 2:
            time.sleep(0.01)
        """), """
        fastsync.Event().wait()   # every thread is blocked now, the main one too
        """, env=env)
    line = child.stdout.readline()
    if not line:
        pytest.fail(f"the child ended: {finish(child)[1]}")
    ids = json.loads(line)
    assert ids["backend"] == backend_name
    wait_until_sleeping(child.pid)
    os.kill(child.pid, signal.SIGUSR1)
    out, err = finish(child)
    assert child.returncode == 0, err
    report = err[err.rindex("fastsync: ", 0, err.index("threads blocked in fastsync waits")):]
    first_thread, second_thread = ids["threads"]
    # Both threads, both locks, each wait's acquisition site.
    assert f"thread 'first-thread' ({first_thread}) has waited" in report
    assert f"thread 'second-thread' ({second_thread}) has waited" in report
    assert ids["first"] in report and ids["second"] in report
    assert f'line {child_line("first waits here")}, in first' in report
    assert f'line {child_line("second waits here")}, in second' in report
    assert "fastsync: 2 threads are deadlocked, each waiting for a lock the next one holds:" in report
    assert f"held by thread 'second-thread' ({second_thread})" in report
    assert f"held by thread 'first-thread' ({first_thread})" in report
    if backend_name == "cython":
        # The main thread ran the handler from inside its wait.
        main_line = child_line("fastsync.Event().wait()", child.code)
        assert f"thread 'MainThread' ({ids['main']}) has waited" in report
        assert f'File "<string>", line {main_line}, in <module>' in report
    else:
        # Watched from their creation: the locks' creation sites.
        assert f"created at <string>:{child_line('first_lock = fastsync.Lock()')}" in report
        assert f"created at <string>:{child_line('second_lock = fastsync.RLock()')}" in report


@POSIX_SIGNALS
def test_report_on_signal_is_undone_and_chains():
    previous_calls = []

    def previous(signum, frame):
        previous_calls.append(signum)

    old = signal.signal(signal.SIGUSR2, previous)
    try:
        import io

        out = io.StringIO()
        debug.report_on_signal(signal.SIGUSR2, file=out, chain=True)
        signal.raise_signal(signal.SIGUSR2)
        assert out.getvalue().startswith("fastsync: ")
        assert previous_calls == [signal.SIGUSR2]
        assert debug.cancel_report_on_signal(signal.SIGUSR2) is True
        assert signal.getsignal(signal.SIGUSR2) is previous
        assert debug.cancel_report_on_signal(signal.SIGUSR2) is False
    finally:
        signal.signal(signal.SIGUSR2, old)


def test_an_unknown_signal_name_in_the_environment_warns():
    result = run_python("""
        import warnings
        warnings.simplefilter("always")
        import fastsync
    """, env={"FASTSYNC_DEBUG": "report-on=NOSUCH"})
    assert result.returncode == 0, result.stderr
    assert "report-on=NOSUCH: no report on that signal" in result.stderr


@cython_only
def test_asking_while_threads_come_and_go(compiled):
    """Records linked and unlinked by threads that block for a moment, read
    meanwhile by another thread: every answer names only those primitives
    (on a free-threaded build this runs without a GIL)."""
    lock, event, inner = compiled.Lock(), compiled.Event(), compiled.RLock()
    cond = compiled.Condition(inner)
    stop = threading.Event()

    def churn(index):
        rounds = 0
        while not stop.is_set() or rounds < 200:
            rounds += 1
            with lock:
                if index % 2:
                    event.wait(0.0005)
            with cond:
                cond.notify_all()
                cond.wait(0.0005)
        return rounds

    workers = [start(churn, index, name=f"churn-{index}") for index in range(4)]
    names = {worker.name for worker in workers}
    known = {id(lock), id(event), id(cond), id(inner)}   # inner: taken back after a wait
    seen = set()
    deadline = time.monotonic() + 1.0
    try:
        while time.monotonic() < deadline:
            for entry in debug.blocked_threads():
                assert entry.name in names
                seen.add(entry.waiting_for.split(" ")[0])
            assert debug.find_deadlocks() == []
            assert all(id(obj) in known for _, obj, _, _ in compiled._blocked())
    finally:
        stop.set()
        for worker in workers:
            worker.join_result()
    assert seen   # some waits were seen
