"""Under gevent's or eventlet's monkey-patching, fastsync's primitives
cooperate with greenlets as threading's do.

Patching is for the whole process and can't be undone, so every scenario runs
in a child interpreter; a child that hangs (a greenlet blocking the one OS
thread) is killed by run_python's timeout, which fails the test."""

import importlib.util
import os
import subprocess
import textwrap

import pytest

from fastsync._env import NO_EXTENSIONS
from helpers import backend_name, run_python

CHILD_TIMEOUT = 30

FRAMEWORKS = {
    "gevent": """
        import gevent, gevent.monkey
        def monkey_patch():
            gevent.monkey.patch_all()
        spawn, sleep = gevent.spawn, gevent.sleep
        def join(greenlet):
            return greenlet.get()
    """,
    "eventlet": """
        import eventlet
        def monkey_patch():
            eventlet.monkey_patch()
        spawn, sleep = eventlet.spawn, eventlet.sleep
        def join(greenlet):
            return greenlet.wait()
    """,
}

# The two orders: monkey-patching before fastsync is imported, as both
# libraries advise, and after, as happens when a library imported fastsync.
ORDERS = {
    "patch-then-import": """
        monkey_patch()
        import fastsync
    """,
    "import-then-patch": """
        import fastsync
        backend_before = fastsync.BACKEND
        monkey_patch()
    """,
}

SCENARIOS = {
    # A greenlet that holds the lock (or the one slot) yields; another one
    # wants it meanwhile.
    "exclusion": """
        for guard in (fastsync.Lock(), fastsync.Semaphore(1), fastsync.BoundedSemaphore(1)):
            order = []
            def first():
                with guard:
                    order.append("first in")
                    sleep(0)
                    order.append("first out")
            def second():
                with guard:
                    order.append("second in")
            a, b = spawn(first), spawn(second)
            join(a), join(b)
            assert order == ["first in", "first out", "second in"], (guard, order)
    """,
    # An RLock belongs to one greenlet, not to the thread they all share.
    "rlock": """
        rlock = fastsync.RLock()
        inside = []
        most = 0
        def worker():
            global most
            with rlock:
                inside.append(1)
                most = max(most, len(inside))
                sleep(0)
                with rlock:
                    sleep(0)
                inside.pop()
        for greenlet in [spawn(worker) for _ in range(3)]:
            join(greenlet)
        assert most == 1, f"{most} greenlets inside the RLock at once"
    """,
    # The waiter must let the setter run.
    "event": """
        event = fastsync.Event()
        waiter = spawn(event.wait)
        setter = spawn(event.set)
        assert join(waiter) is True
        join(setter)
    """,
    "condition": """
        cond = fastsync.Condition()
        items = []
        def consumer():
            with cond:
                cond.wait_for(lambda: items)
                return items.pop()
        def producer():
            with cond:
                items.append("item")
                cond.notify()
        got = spawn(consumer)
        join(spawn(producer))
        assert join(got) == "item"
    """,
    # Readers share it across greenlets; a writer keeps them out while it
    # yields, and a reader's wait lets the writer run.
    "rwlock": """
        rw = fastsync.RWLock()
        inside, most, order = [], [0], []
        def reader():
            with rw.reader:
                inside.append(1)
                most[0] = max(most[0], len(inside))
                sleep(0)
                with rw.reader:
                    sleep(0)
                inside.pop()
            order.append("read")
        def writer():
            with rw.writer:
                order.append("write in")
                sleep(0)
                order.append("write out")
        greenlets = [spawn(writer), spawn(reader), spawn(reader)]
        for greenlet in greenlets:
            join(greenlet)
        assert order == ["write in", "write out", "read", "read"], order
        assert most[0] == 2, most
    """,
    "barrier": """
        barrier = fastsync.Barrier(2)
        parties = [spawn(barrier.wait) for _ in range(2)]
        assert sorted(join(g) for g in parties) == [0, 1]
    """,
}


def framework_installed(name):
    return importlib.util.find_spec(name) is not None


@pytest.fixture(params=list(FRAMEWORKS))
def framework(request):
    if not framework_installed(request.param):
        # The test extra installs both on CPython; neither offers wheels for PyPy.
        pytest.skip(f"{request.param} is not installed")
    return request.param


@pytest.fixture
def child_env(backend):
    """The child imports the backend under test: the fallback when asked."""
    env = {key: value for key, value in os.environ.items() if key != NO_EXTENSIONS}
    if backend_name(backend) == "python":
        env[NO_EXTENSIONS] = "1"
    return env


def run_child(framework, body, env):
    code = textwrap.dedent(FRAMEWORKS[framework]) + textwrap.dedent(body) + '\nprint("done")\n'
    try:
        result = run_python(code, env=env, replace_env=True, timeout=CHILD_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the child hung for {CHILD_TIMEOUT} s")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1:] == ["done"], result.stdout


@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.parametrize("order", list(ORDERS))
def test_cooperates_with_greenlets(framework, order, scenario, child_env):
    run_child(framework, textwrap.dedent(ORDERS[order]) + textwrap.dedent(SCENARIOS[scenario]),
              child_env)


@pytest.mark.parametrize("order", list(ORDERS))
def test_backend_says_threading(framework, order, child_env, backend):
    expected = backend_name(backend)
    body = textwrap.dedent(ORDERS[order]) + textwrap.dedent(f"""
        if "backend_before" in globals():
            assert backend_before == {expected!r}, backend_before
        assert fastsync.BACKEND == "threading", fastsync.BACKEND
        from fastsync import BACKEND
        assert BACKEND == "threading"
    """)
    run_child(framework, body, child_env)


# fastsync.patch() and monkey-patching, in either order: threading's names
# must end up cooperative, and what the standard library builds on them works.
PATCH_ORDERS = {
    "monkey-then-patch": """
        monkey_patch()
        import fastsync, threading
        cooperative_lock = threading.Lock
        assert fastsync.patch() is False
        assert threading.Lock is cooperative_lock
    """,
    "patch-then-monkey": """
        import fastsync, threading
        assert fastsync.patch() is True
        monkey_patch()
    """,
}

STDLIB_UNDER_PATCHES = """
    import queue
    q = queue.Queue()
    got = spawn(q.get)
    join(spawn(q.put, "item"))
    assert join(got) == "item"

    rlock = threading.RLock()
    inside = []
    def worker():
        with rlock:
            inside.append(1)
            assert len(inside) == 1, "two greenlets inside threading.RLock"
            sleep(0)
            inside.pop()
    for greenlet in [spawn(worker) for _ in range(3)]:
        join(greenlet)

    event = threading.Event()
    waiter = spawn(event.wait)
    join(spawn(event.set))
    assert join(waiter) is True

    # unpatch() must not take back what the monkey-patching installed since.
    from fastsync._patch import installed_by_patch
    names = ("Lock", "RLock", "Event", "Condition", "Semaphore", "BoundedSemaphore", "Barrier")
    def ours(name):
        value = getattr(threading, name)
        return value is getattr(fastsync, name) or installed_by_patch(value)
    theirs = {name: getattr(threading, name) for name in names if not ours(name)}
    assert "Lock" in theirs
    fastsync.unpatch()
    assert all(getattr(threading, name) is value for name, value in theirs.items())
    assert not any(ours(name) for name in names)
"""


@pytest.mark.parametrize("order", list(PATCH_ORDERS))
def test_fastsync_patch_with_monkey_patching(framework, order, child_env):
    run_child(framework, textwrap.dedent(PATCH_ORDERS[order]) + textwrap.dedent(STDLIB_UNDER_PATCHES),
              child_env)


def test_subclass_refused_under_monkey_patching(framework, child_env):
    # A subclass is built on fastsync's own implementation, which can't
    # cooperate: an error at construction instead of a hang at the first wait.
    body = """
        import fastsync
        class Named(fastsync.Event):
            pass
        assert isinstance(Named(), fastsync.Event)
        monkey_patch()
        try:
            Named()
        except TypeError as error:
            assert "monkey-patched" in str(error), error
        else:
            raise AssertionError("no TypeError")
    """
    run_child(framework, body, child_env)
