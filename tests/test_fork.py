"""Use after os.fork(): the child sees what threading's child would see."""

import os

import pytest

from helpers import run_python

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

# Runs in a fresh interpreter (forking pytest's own process, with its watchdog
# threads, would be unsafe and warns on 3.12+).  `kinds` maps a label to the
# classes under test; every check runs for threading too, and the child
# reports one line per check for both, which must agree.
SCRIPT = """
import os, sys, threading, warnings
warnings.simplefilter("ignore", DeprecationWarning)   # fork with threads, 3.12+
import {module} as backend

def scenario(Lock, RLock, Event):
    lock, rlock, event, held_event = Lock(), RLock(), Event(), Event()
    holding, release = threading.Event(), threading.Event()
    def holder():
        lock.acquire(); rlock.acquire(); holding.set(); release.wait()
        lock.release(); rlock.release()
    worker = threading.Thread(target=holder); worker.start(); holding.wait()
    # A thread blocked on the event while we fork.
    waiter = threading.Thread(target=held_event.wait, args=(30,)); waiter.start()
    event.set()
    pid = os.fork()
    if pid == 0:
        out = []
        out.append(("lock held", lock.locked()))
        out.append(("lock try", lock.acquire(False)))
        out.append(("rlock try", rlock.acquire(False)))
        out.append(("event set", event.is_set()))
        lock._at_fork_reinit(); rlock._at_fork_reinit(); held_event._at_fork_reinit()
        out.append(("lock after reinit", lock.acquire(False)))
        out.append(("rlock after reinit", rlock.acquire(False) and rlock.acquire(False)))
        # New primitives work across threads in the child.
        fresh, done = Lock(), Event()
        fresh.acquire()
        def child_thread():
            fresh.acquire(); done.set()
        t = threading.Thread(target=child_thread); t.start()
        fresh.release()
        out.append(("child thread", done.wait(10)))
        t.join()
        held_event.set()
        out.append(("reinit event", held_event.wait(0)))
        os.write(1, (repr(out) + "\\n").encode())
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    held_event.set(); release.set(); worker.join(); waiter.join()
    return status

status = scenario(threading.Lock, threading.RLock, threading.Event)
assert status == 0, status
status = scenario(backend.Lock, backend.RLock, backend.Event)
assert status == 0, status
"""


@pytest.mark.parametrize("module", [
    pytest.param("fastsync._compiled", marks=pytest.mark.cython, id="cython"),
    pytest.param("fastsync._fallback", id="python"),
])
def test_fork_child_behaves_like_threading(module):
    result = run_python(SCRIPT.format(module=module))
    assert result.returncode == 0, result.stderr
    reference, ours = result.stdout.splitlines()
    assert ours == reference
    assert "('child thread', True)" in ours and "('lock after reinit', True)" in ours
