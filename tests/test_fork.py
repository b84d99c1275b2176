"""Use after os.fork(): the child sees what threading's child would see."""

import os

import pytest

from fastsync._common import BACKEND_MODULES
from helpers import backend_params, run_python

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


@pytest.mark.parametrize("module", backend_params())
def test_fork_child_behaves_like_threading(module):
    result = run_python(SCRIPT.format(module=module))
    assert result.returncode == 0, result.stderr
    reference, ours = result.stdout.splitlines()
    assert ours == reference
    assert "('child thread', True)" in ours and "('lock after reinit', True)" in ours


BACKENDS = pytest.mark.parametrize("module", backend_params())

# For the child scripts below.  waiters(): how many threads wait in a
# Condition (threading's and the fallback's keep a list, the compiled one
# shows the count in its repr).  fill_stacks(): threads that fill their
# stacks with frames (deep()) and wait, so that memory a dead thread of the
# parent's left there is overwritten; call what it returns to end them.
CHILD_HELPERS = """
def waiters(cond):
    queue = getattr(cond, "_waiters", None)
    if queue is not None:
        return len(queue)
    return int(repr(cond).rsplit(", ", 1)[1].rstrip(")>"))

def deep(n, ready, go):
    if n:
        return deep(n - 1, ready, go)
    ready.release()
    go.wait()

def fill_stacks():
    import threading
    ready, go = threading.Semaphore(0), threading.Event()
    threads = [threading.Thread(target=deep, args=(60, ready, go)) for _ in range(3)]
    for t in threads:
        t.start()
    for _ in threads:
        ready.acquire()
    def finish():
        go.set()
        for t in threads:
            t.join()
    return finish
"""

# Threads blocked in a Condition when the process forks exist only in the
# parent.  The child must not touch what they left behind (their stacks are
# gone, and the child's new threads reuse that memory).  Each round forks
# with three threads waiting; the child starts three threads that fill their
# stacks and wait, then a waiter of its own, and notifies.
CONDITION_AFTER_FORK = CHILD_HELPERS + """
import os, sys, threading, warnings
warnings.simplefilter("ignore", DeprecationWarning)   # fork with threads, 3.12+
import {module} as backend

def round_trip():
    cond = backend.Condition()
    for _ in range(3):
        threading.Thread(target=lambda: cond.acquire() and cond.wait(), daemon=True).start()
    while True:
        with cond:
            if waiters(cond) == 3:
                break
    pid = os.fork()
    if pid == 0:
        finish = fill_stacks()
        woken = []
        def child_waiter():
            with cond:
                woken.append(cond.wait(30))
        late = threading.Thread(target=child_waiter)
        late.start()
        while late.is_alive():
            with cond:
                cond.notify_all()
            late.join(0.01)
        finish()
        os._exit(0 if woken == [True] else 3)
    _, status = os.waitpid(pid, 0)
    with cond:
        cond.notify_all()
    return status

for attempt in range(10):
    status = round_trip()
    if status != 0:
        print("child status", status, "in round", attempt)
        sys.exit(1)
"""


@BACKENDS
def test_condition_after_fork_with_waiters_in_the_parent(module):
    result = run_python(CONDITION_AFTER_FORK.format(module=module))
    assert result.returncode == 0, result.stdout + result.stderr


# The compiled Condition goes further than threading's: the parent's waiters
# are gone from the child's queue, so notify() reaches a waiter of the child's
# own (threading's would spend it on a thread the child doesn't have).
CHILD_QUEUE = CHILD_HELPERS + """
import os, threading
import fastsync._compiled as backend
cond = backend.Condition()
threading.Thread(target=lambda: cond.acquire() and cond.wait(), daemon=True).start()
while True:
    with cond:
        if waiters(cond) == 1:
            break
pid = os.fork()
if pid == 0:
    with cond:
        alone = waiters(cond)
    woken = []
    def child_waiter():
        with cond:
            woken.append(cond.wait(30))
    t = threading.Thread(target=child_waiter)
    t.start()
    while True:
        with cond:
            if waiters(cond) == 1:
                cond.notify()
                break
    t.join()
    os._exit(0 if (alone, woken) == (0, [True]) else 3)
_, status = os.waitpid(pid, 0)
assert status == 0, status
"""


@pytest.mark.cython
def test_compiled_condition_forgets_the_parents_waiters():
    result = run_python(CHILD_QUEUE)
    assert result.returncode == 0, result.stdout + result.stderr


# The realistic form: after patch(), a queue consumer is blocked when the
# process forks; the child starts its own consumer and gets every item.
QUEUE_AFTER_FORK = CHILD_HELPERS + """
import os, queue, sys, threading, warnings
warnings.simplefilter("ignore", DeprecationWarning)
import fastsync
fastsync.patch()

for attempt in range(5):
    q = queue.Queue()
    consumer = threading.Thread(target=q.get, daemon=True)
    consumer.start()
    while True:
        with q.mutex:
            if waiters(q.not_empty) == 1:
                break
    pid = os.fork()
    if pid == 0:
        got = []
        def consume():
            for _ in range(5):
                got.append(q.get(timeout=30))
        c = threading.Thread(target=consume)
        c.start()
        for i in range(5):
            q.put(i)
        c.join()
        os._exit(0 if got == list(range(5)) else 3)
    _, status = os.waitpid(pid, 0)
    q.put(None)
    consumer.join()
    if status != 0:
        print("child status", status, "in round", attempt)
        sys.exit(1)
"""


@BACKENDS
def test_patched_queue_consumer_restarted_in_the_child(module):
    env = {"FASTSYNC_NO_EXTENSIONS": "1"} if module == BACKEND_MODULES["python"] else {}
    result = run_python(QUEUE_AFTER_FORK, env=env)
    assert result.returncode == 0, result.stdout + result.stderr


BARRIER_AFTER_FORK = CHILD_HELPERS + """
import os, threading, warnings
warnings.simplefilter("ignore", DeprecationWarning)
import {module} as backend
barrier = backend.Barrier(3)
for _ in range(2):
    threading.Thread(target=barrier.wait, daemon=True).start()
while barrier.n_waiting != 2:
    pass
# The second waiter counts itself with the barrier's lock held and lets it go
# in its wait: forked before that, the child would inherit the lock held.
with barrier._cond:
    pass
pid = os.fork()
if pid == 0:
    finish = fill_stacks()
    barrier.abort()
    finish()
    os._exit(0 if barrier.broken else 3)
_, status = os.waitpid(pid, 0)
barrier.abort()
assert status == 0, status
"""


@BACKENDS
def test_barrier_abort_in_the_child(module):
    result = run_python(BARRIER_AFTER_FORK.format(module=module))
    assert result.returncode == 0, result.stdout + result.stderr

