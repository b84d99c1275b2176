"""Ctrl-C and other signals interrupt blocked waits (POSIX).

Each case runs in a child interpreter whose main thread blocks; the test
waits until the child really sleeps in the kernel, then sends the signal."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from helpers import CHILD_OPTIONS, backend_params

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGINT") or sys.platform == "win32",
                                reason="POSIX signals")

# The child prints READY, then blocks in `block`; what it prints afterwards
# is checked by the test.
CHILD = """
import signal, sys, threading
import {module} as backend
lock = backend.Lock()
rlock = backend.RLock()
event = backend.Event()
{setup}
print("READY", flush=True)
try:
    result = {block}
    print("RESULT", result, flush=True)
except KeyboardInterrupt:
    print("INTERRUPTED", flush=True)
except ZeroDivisionError:
    print("HANDLER-ERROR", flush=True)
{after}
"""

BLOCKING_CALLS = {
    "lock.acquire()": "lock.acquire()",
    "lock.acquire(timeout)": "lock.acquire(timeout=60)",
    "with lock": "lock.__enter__()",
    "rlock.acquire()": "rlock.acquire()",
    "rlock.acquire(timeout)": "rlock.acquire(True, 60)",
    "event.wait()": "event.wait()",
    "event.wait(timeout)": "event.wait(60)",
}

# The lock and rlock are held by another thread so the main thread blocks.
HOLD = """
held = threading.Event()
def holder():
    lock.acquire(); rlock.acquire(); held.set()
    threading.Event().wait()
threading.Thread(target=holder, daemon=True).start()
held.wait()
"""

# Afterwards: nothing must have been acquired by the interrupted call.
AFTER = """
print("STATE", lock.locked(), rlock._is_owned(), event.is_set(), flush=True)
"""


def _sleeping(pid):
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] == "S"


def run_child(module, block, *, setup="", sig=signal.SIGINT, after=AFTER, then=None):
    code = CHILD.format(module=module, setup=HOLD + textwrap.dedent(setup), block=block, after=after)
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, **CHILD_OPTIONS)
    try:
        assert child.stdout.readline().strip() == "READY"
        deadline = time.monotonic() + 10
        if sys.platform.startswith("linux"):
            # The main thread is the process's task; wait until it sleeps.
            while not _sleeping(child.pid):
                assert time.monotonic() < deadline, "child never blocked"
                time.sleep(0.005)
        else:
            time.sleep(0.5)
        os.kill(child.pid, sig)
        if then is not None:
            then(child)
        out, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    return out.splitlines(), err


@pytest.fixture(params=backend_params())
def module(request):
    __import__(request.param)   # fail, not skip, if the compiled one is missing
    return request.param


@pytest.mark.parametrize("call", sorted(BLOCKING_CALLS))
def test_ctrl_c_interrupts_blocked_wait(module, call):
    lines, err = run_child(module, BLOCKING_CALLS[call])
    assert lines[0] == "INTERRUPTED", err
    assert lines[1] == "STATE True False False", err


@pytest.mark.parametrize("call", sorted(BLOCKING_CALLS))
def test_exception_from_signal_handler_propagates(module, call):
    setup = """
    def handler(signum, frame):
        1 / 0
    signal.signal(signal.SIGUSR1, handler)
    """
    lines, err = run_child(module, BLOCKING_CALLS[call], setup=setup, sig=signal.SIGUSR1)
    assert lines[:2] == ["HANDLER-ERROR", "STATE True False False"], err


def test_handler_that_returns_lets_the_wait_continue(module):
    """The wait resumes after a handler that doesn't raise and still ends
    when the event is set (by a thread the handler starts)."""
    setup = """
    calls = []
    def handler(signum, frame):
        calls.append(signum)
        threading.Thread(target=event.set).start()
    signal.signal(signal.SIGUSR1, handler)
    """
    after = 'print("CALLS", len(calls), flush=True)'
    lines, err = run_child(module, "event.wait(60)", setup=setup, sig=signal.SIGUSR1, after=after)
    assert lines == ["RESULT True", "CALLS 1"], err


def test_timed_wait_keeps_its_deadline_across_signals(module):
    """A handler that returns must not restart the timeout from scratch nor
    end the wait early."""
    setup = """
    import time
    signal.signal(signal.SIGUSR1, lambda signum, frame: None)
    started, wall_started = time.monotonic(), time.time()
    """
    after = ('print("ELAPSED", time.monotonic() - started, time.time() - wall_started, flush=True)')
    lines, err = run_child(module, "lock.acquire(timeout=1.5)", setup=setup, sig=signal.SIGUSR1, after=after)
    assert lines[0] == "RESULT False", err
    elapsed, wall_elapsed = map(float, lines[1].split()[1:])
    assert elapsed < 20, lines
    if elapsed < 1.5 and module == "fastsync._fallback" and wall_elapsed >= 1.5:
        # The fallback's Lock is the interpreter's own, and PyPy's keeps a
        # signalled wait's deadline by the wall clock: a clock step during
        # the wait moves it, for threading.Lock just the same.
        assert sys.implementation.name == "pypy", lines
    else:
        assert elapsed >= 1.5, lines


@pytest.mark.parametrize("call", ["cond.wait()", "cond.wait(60)", "cond.wait_for(lambda: False)",
                                  "sem.acquire()", "sem.acquire(timeout=60)", "barrier.wait()"])
def test_ctrl_c_interrupts_other_primitives(module, call):
    setup = """
    cond = backend.Condition()
    cond.acquire()
    sem = backend.Semaphore(0)
    barrier = backend.Barrier(2)
    """
    # After the interruption: the condition's lock is held again (as with
    # threading), the semaphore took nothing.
    after = 'print("STATE", cond._is_owned(), sem._value, flush=True)'
    lines, err = run_child(module, call, setup=setup, after=after)
    assert lines == ["INTERRUPTED", "STATE True 0"], err
