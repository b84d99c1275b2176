"""Interpreter exit with threads still waiting: no crash, whatever the
interpreter does with daemon threads then (up to 3.12 it ends those that try
to take the GIL back, in the middle of their wait)."""

import functools
import platform
import signal
import subprocess

import pytest

from helpers import backend_params, run_python

BACKENDS = pytest.mark.parametrize("module", backend_params())

# Daemon threads loop in short Condition waits, so some wake during
# finalization.  An object in a reference cycle notifies from its finalizer,
# which runs in the final garbage collection, after those threads were ended.
EXIT_WITH_WAITERS = """
import threading
import {module} as backend

cond = backend.Condition()
running = threading.Semaphore(0)

def spin_waiting():
    running.release()
    while True:
        with cond:
            cond.wait(0.001)

class NotifiesWhenCollected:
    def __init__(self):
        self.cycle = self
    def __del__(self):
        for _ in range(50):
            with cond:
                cond.notify_all()

# More threads than glibc keeps the stacks of after they end, so that some
# stacks are unmapped.
for _ in range(16):
    threading.Thread(target=spin_waiting, daemon=True).start()
for _ in range(16):
    running.acquire()
NotifiesWhenCollected()
"""


# A run that has not exited by then hangs.  A normal one takes about a second.
HANG_SECONDS = 20
# How many runs with threading's own Condition may show that it hangs too.
THREADING_RUNS = 30


def exit_outcome(module):
    """How a run of EXIT_WITH_WAITERS with `module`'s Condition ends: "exit 0",
    "hang", or the exit status and the end of stderr."""
    try:
        result = run_python(EXIT_WITH_WAITERS.format(module=module), timeout=HANG_SECONDS)
    except subprocess.TimeoutExpired:   # the child is killed
        return "hang"
    return "exit 0" if result.returncode == 0 else f"exit {result.returncode}: {result.stderr[-2000:]}"


@BACKENDS
@pytest.mark.timeout(HANG_SECONDS * 2 + THREADING_RUNS * 5 + 60)
def test_exit_while_condition_waiters_wake(module):
    """Never a crash.  A hang only where threading's own Condition hangs in
    the same scenario on the running interpreter: free-threaded 3.14 can hang
    at exit with daemon threads waiting, whoever's Condition they wait on."""
    outcomes = []
    for _ in range(10):
        outcomes.append(exit_outcome(module))
        if outcomes[-1] == "hang":
            break
    assert set(outcomes) <= {"exit 0", "hang"}, outcomes
    if "hang" in outcomes:
        for _ in range(THREADING_RUNS):
            if exit_outcome("threading") == "hang":
                break
        else:
            pytest.fail(f"{module} hung at exit, and threading did not in {THREADING_RUNS} runs")


# A finalizer that waits at exit, in the final garbage collection, where no
# other thread can run any more: on a lock a daemon thread holds for ever, or
# for a notification nothing will send.  threading raises
# PythonFinalizationError from 3.15; before, a timed wait times out and an
# untimed one hangs.  Each scenario runs with threading and with a backend,
# and the two must end alike.
FINALIZER_WAITS = """
import signal, threading, time
import {module} as backend

lock = backend.{holder}()
held = threading.Event()

def hold_for_ever():
    with lock:
        held.set()
        while True:
            time.sleep(1)

class Cycle:
    def __init__(self):
        self.cycle = self
        threading.Thread(target=hold_for_ever, daemon=True).start()
        held.wait()
    def __del__(self):
        signal.alarm(HANG_SECONDS)   # a wait that hangs ends the process
        try:
            result = {wait}
        except BaseException as error:
            print("raised", type(error).__name__, error, flush=True)
        else:
            print("returned", result, flush=True)

HANG_SECONDS = {hang_seconds}
Cycle()
"""

FINALIZER_CASES = {
    "Lock": ("Lock", "lock.acquire()"),
    "RLock": ("RLock", "lock.acquire()"),
    "Lock-with": ("Lock", "lock.__enter__()"),
    "Lock-timed": ("Lock", "lock.acquire(timeout=0.2)"),
    "RLock-timed": ("RLock", "lock.acquire(True, 0.2)"),
    "Lock-nonblocking": ("Lock", "lock.acquire(False)"),
    "Event": ("Lock", "backend.Event().wait(0.2)"),
    "Condition": ("Lock", "(lambda c: c.acquire() and c.wait(0.2))(backend.Condition())"),
    "Semaphore": ("Lock", "backend.Semaphore(0).acquire(timeout=0.2)"),
    "Barrier": ("Lock", "backend.Barrier(2).wait(0.2)"),
}
# Counted from the finalizer's start: longer than any of the timed waits.
FINALIZER_HANG_SECONDS = 2


@functools.lru_cache(maxsize=None)
def finalizer_outcome(module, case):
    holder, wait = FINALIZER_CASES[case]
    code = FINALIZER_WAITS.format(module=module, holder=holder, wait=wait,
                                  hang_seconds=FINALIZER_HANG_SECONDS)
    result = run_python(code, timeout=120)
    if result.returncode == -signal.SIGALRM:
        return "hung"
    assert result.returncode == 0, result.stderr
    return result.stdout


@BACKENDS
@pytest.mark.skipif(not hasattr(signal, "alarm"), reason="the child ends a hang with signal.alarm")
@pytest.mark.timeout(300)
@pytest.mark.parametrize("case", FINALIZER_CASES)
def test_wait_at_finalization_ends_as_threadings(module, case):
    expected = finalizer_outcome("threading", case)
    if expected == "" and platform.python_implementation() == "PyPy":
        pytest.skip("PyPy runs no finalizer of a cycle at exit, threading's scenario included: "
                    "there is no wait at finalization to compare")
    assert expected == "hung" or expected.startswith(("raised", "returned")), expected
    assert finalizer_outcome(module, case) == expected
