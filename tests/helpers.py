"""Small tools the tests share (importable because tests/ has no __init__.py)."""

import contextlib
import gc
import os
import platform
import signal
import subprocess
import sys
import textwrap
import threading
import time
import weakref

import pytest

LINUX = sys.platform.startswith("linux")
CPYTHON = platform.python_implementation() == "CPython"
PYPY = platform.python_implementation() == "PyPy"


# The backend helpers below import fastsync when called, not at the top: the
# child scripts some tests start import this module before the backend they test.
def backend_marks(name):
    """The marks of the backend called `name`: the compiled one's tests carry
    `cython`, which a run that asked for the fallback deselects (conftest);
    the fallback's carry `python_backend`, so a run of the fallback alone can
    leave out what a full run on the same interpreter has already tested."""
    return [pytest.mark.cython] if name == "cython" else [pytest.mark.python_backend]


def backend_params():
    """One pytest.param per backend, for parametrize or a fixture's params:
    the module's name as the value, the backend's name as the test id."""
    from fastsync._common import BACKEND_MODULES

    return [pytest.param(module, marks=backend_marks(name), id=name)
            for name, module in BACKEND_MODULES.items()]


def backend_name(module):
    """Which backend ("cython" or "python") an imported backend module is."""
    from fastsync._common import BACKEND_MODULES

    return next(name for name, module_name in BACKEND_MODULES.items()
                if module_name == module.__name__)


def _threading_enter_gives_lock(kind):
    reference = getattr(threading, kind)()
    with reference as entered:
        return entered is reference


# What `with lock as x` binds x to is threading's choice on the running
# Python: True on CPython, the lock itself on PyPy.  Read before any test can
# patch threading.
_ENTER_GIVES_LOCK = {kind: _threading_enter_gives_lock(kind) for kind in ("Lock", "RLock")}


def entered_value(lock, kind):
    """What `lock.__enter__()` must return, for a fastsync Lock or RLock
    (`kind`): what threading's own `kind` returns."""
    return lock if _ENTER_GIVES_LOCK[kind] else True


def is_interpreters_lock(lock):
    """True for the interpreter's own lock: what the fallback's Lock() returns
    (see fastsync._fallback.Lock).  Such a lock must behave exactly like
    threading.Lock(), repr and pickling included."""
    return type(lock) is type(threading.Lock())


def gc_collect():
    """Make objects without references go away now.  CPython frees them at
    once by reference counting, so this does nothing there (a test relying on
    it keeps checking that); PyPy's garbage collector needs explicit passes."""
    if not CPYTHON:
        for _ in range(3):
            gc.collect()


def assert_weakly_referenceable(make):
    """A weak reference reaches the object, and dies with it."""
    obj = make()
    ref = weakref.ref(obj)
    assert ref() is obj
    del obj
    gc_collect()
    assert ref() is None


@contextlib.contextmanager
def switch_interval(seconds):
    """Let the interpreter switch threads every `seconds` instead of every 5 ms."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(seconds)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


def _sigint_as_in_a_terminal():
    # A test run started as a background job inherits SIGINT ignored, and a
    # Python started so installs no KeyboardInterrupt handler: the children
    # that test Ctrl-C would wait for it in vain.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


# Options for every child interpreter the tests start.
CHILD_OPTIONS = {"preexec_fn": _sigint_as_in_a_terminal} if os.name == "posix" else {}


def run_python(code, *, env=None, replace_env=False, timeout=60, **kwargs):
    """Run code in a fresh interpreter; returns the CompletedProcess.

    env adds to this process's environment, or replaces it with replace_env."""
    full_env = {} if replace_env else dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=full_env, capture_output=True, text=True, timeout=timeout, **CHILD_OPTIONS, **kwargs,
    )


def _task_state(native_id):
    with open(f"/proc/self/task/{native_id}/stat") as stat:
        # "tid (comm) S ...": comm may hold spaces, so split after the ')'.
        return stat.read().rsplit(")", 1)[1].split()[0]


def _voluntary_switches(native_id):
    with open(f"/proc/self/task/{native_id}/status") as status:
        for line in status:
            if line.startswith("voluntary_ctxt_switches:"):
                return int(line.split()[1])
    raise AssertionError("no voluntary_ctxt_switches in /proc status")


# A thread can also sleep waiting for the GIL on its way to the wait; it is
# taken to be blocked in the wait once it has slept without being woken for
# this many consecutive looks, each after giving up the GIL for a while.
_STEADY_LOOKS = 3


def wait_until_blocked(thread, timeout=10.0):
    """Return once `thread` sleeps in the kernel (it is blocked in a wait).

    Linux reads the thread's state and context-switch count from /proc;
    elsewhere we can only give it time.  Fails the test if the thread never
    blocks."""
    if not LINUX:
        time.sleep(0.2)
        return
    deadline = time.monotonic() + timeout
    steady, last_switches = 0, None
    while time.monotonic() < deadline:
        if not thread.is_alive():
            pytest.fail(f"{thread.name} ended instead of blocking")
        switches = _voluntary_switches(thread.native_id)
        if _task_state(thread.native_id) in ("S", "D") and switches == last_switches:
            steady += 1
            if steady >= _STEADY_LOOKS:
                return
        else:
            steady = 0
        last_switches = switches
        time.sleep(0.002)   # lets a thread waiting for the GIL go on
    pytest.fail(f"{thread.name} did not block within {timeout} s")


def thread_cpu_seconds(thread):
    """CPU time consumed so far by another thread (Linux: from /proc, which
    every interpreter can read; the resolution is one clock tick)."""
    with open(f"/proc/self/task/{thread.native_id}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of the line, 12 and 13 after "(comm)".
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Worker(threading.Thread):
    """A thread that runs fn and keeps its result or exception for join_result()."""

    def __init__(self, fn, *args, name=None):
        super().__init__(name=name or getattr(fn, "__name__", "worker"), daemon=True)
        self._call = (fn, args)
        self.result = None
        self.error = None

    def run(self):
        fn, args = self._call
        try:
            self.result = fn(*args)
        except BaseException as error:   # reported by join_result
            self.error = error

    def join_result(self, timeout=30.0):
        self.join(timeout)
        if self.is_alive():
            pytest.fail(f"{self.name} still running after {timeout} s")
        if self.error is not None:
            raise self.error
        return self.result


def start(fn, *args, name=None):
    worker = Worker(fn, *args, name=name)
    worker.start()
    return worker


def threading_refuses_nan_timeout():
    """Whether threading's Condition.wait (and so Event.wait, Semaphore.acquire
    and Barrier.wait) refuses a NaN timeout, as 3.14+ does, rather than taking
    it for "don't wait"."""
    condition = threading.Condition(threading.Lock())
    with condition:
        try:
            condition.wait(float("nan"))
        except ValueError:
            return True
    return False
