"""fastsync.patch(): threading's names point at fastsync while patched, and
what the standard library builds on threading keeps working."""

import concurrent.futures
import logging
import os
import pickle
import queue
import subprocess
import sys
import threading
from unittest import mock

import pytest

import fastsync
from fastsync._patch import PATCHED_NAMES, PYTHON_CLASS_NAMES
from helpers import CHILD_OPTIONS, assert_weakly_referenceable, backend_params, start

ORIGINALS = {name: getattr(threading, name) for name in PATCHED_NAMES}


@pytest.fixture(autouse=True)
def always_unpatched():
    fastsync.unpatch()
    yield
    fastsync.unpatch()
    assert {name: getattr(threading, name) for name in PATCHED_NAMES} == ORIGINALS


def test_patch_and_unpatch_restore_exactly():
    assert fastsync.patch() is True
    for name in PATCHED_NAMES:
        installed = getattr(threading, name)
        if name in PYTHON_CLASS_NAMES:
            assert installed.__base__ is getattr(fastsync, name)
        else:
            assert installed is getattr(fastsync, name)
    assert fastsync.patch() is False       # idempotent
    assert fastsync.unpatch() is True
    for name in PATCHED_NAMES:
        assert getattr(threading, name) is ORIGINALS[name]
    assert fastsync.unpatch() is False


def test_patched_context_manager_nests():
    with fastsync.patched():
        with fastsync.patched():
            assert threading.Lock is fastsync.Lock
        assert threading.Lock is fastsync.Lock     # the inner one didn't patch
        assert issubclass(threading.Event, fastsync.Event)
    assert threading.Lock is ORIGINALS["Lock"]


def test_patched_restores_on_error():
    with pytest.raises(KeyError):
        with fastsync.patched():
            raise KeyError
    assert threading.RLock is ORIGINALS["RLock"]


def test_concurrent_patch_unpatch_stays_consistent():
    def churn():
        for _ in range(200):
            fastsync.patch()
            fastsync.unpatch()

    for worker in [start(churn) for _ in range(4)]:
        worker.join_result(60)
    fastsync.unpatch()
    fastsync.patch()
    assert all(getattr(threading, n) is getattr(fastsync, n) for n in ("Lock", "RLock"))
    assert all(getattr(threading, n).__base__ is getattr(fastsync, n) for n in PYTHON_CLASS_NAMES)


def test_objects_created_before_keep_their_type():
    before = threading.Event()
    with fastsync.patched():
        after = threading.Event()
    assert type(before) is ORIGINALS["Event"]
    assert isinstance(after, fastsync.Event)


# ---- the standard library under patch() --------------------------------------------

@pytest.fixture
def under_patch():
    with fastsync.patched():
        yield


def test_threads_start_and_join(under_patch):
    results = []
    threads = [threading.Thread(target=results.append, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
        assert not thread.is_alive()
    assert sorted(results) == list(range(20))


def test_timer(under_patch):
    fired = fastsync.Event()
    timer = threading.Timer(0.01, fired.set)
    assert isinstance(timer.finished, fastsync.Event)
    timer.start()
    assert fired.wait(30)
    timer.join(30)
    cancelled = threading.Timer(30, fired.clear)
    cancelled.start()
    cancelled.cancel()
    cancelled.join(30)
    assert fired.is_set()


def test_queue_producer_consumer(under_patch):
    q = queue.Queue(maxsize=10)
    assert isinstance(q.mutex, fastsync.Lock) and isinstance(q.not_empty, fastsync.Condition)
    total = 2000

    def produce():
        for n in range(total):
            q.put(n)

    def consume():
        return sum(q.get(timeout=30) for _ in range(total // 2))

    producer = start(produce)
    consumers = [start(consume) for _ in range(2)]
    assert sum(c.join_result(60) for c in consumers) == sum(range(total))
    producer.join_result()
    with pytest.raises(queue.Empty):
        q.get(timeout=0.01)


def test_thread_pool_executor(under_patch):
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(pow, n, 2) for n in range(200)]
        assert [f.result(timeout=30) for f in futures] == [n * n for n in range(200)]
        done, _ = concurrent.futures.wait(futures, timeout=30)
        assert len(done) == 200
        assert list(pool.map(abs, range(-50, 0), timeout=30)) == list(range(50, 0, -1))


def test_logging_from_many_threads(under_patch):
    records = []

    class Collect(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    handler = Collect()
    assert type(handler.lock) is fastsync.RLock
    logger = logging.getLogger("fastsync.test.patch")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        def log_lines(n):
            for i in range(200):
                logger.warning("thread %d line %d", n, i)

        for worker in [start(log_lines, n) for n in range(4)]:
            worker.join_result(60)
    finally:
        logger.removeHandler(handler)
    assert len(records) == 800


# ---- the classes patch() installs for threading's Python classes -----------------

def _notify_holding(condition):
    with condition:
        return condition.notify()


# A method of each, and a call of it that returns at once.
METHOD_CALLS = {
    "Event": ("wait", lambda event: event.wait(0)),
    "Condition": ("notify", _notify_holding),
    "Semaphore": ("acquire", lambda semaphore: semaphore.acquire(False)),
    "BoundedSemaphore": ("release", lambda semaphore: semaphore.acquire() and semaphore.release()),
    "Barrier": ("reset", lambda barrier: barrier.reset()),
}


def construct(name):
    return getattr(threading, name)(*((1,) if name == "Barrier" else ()))


@pytest.mark.parametrize("name", PYTHON_CLASS_NAMES)
def test_mock_patch_object_replaces_a_method(under_patch, name):
    method, call = METHOD_CALLS[name]
    cls = getattr(threading, name)
    original = getattr(cls, method)
    with mock.patch.object(cls, method, return_value="mocked") as fake:
        assert call(construct(name)) == "mocked"
    assert fake.call_count == 1
    assert getattr(cls, method) is original
    assert call(construct(name)) != "mocked"


@pytest.mark.parametrize("name", PYTHON_CLASS_NAMES)
def test_attributes_can_be_set_on_the_class_and_its_objects(under_patch, name):
    method, call = METHOD_CALLS[name]
    cls = getattr(threading, name)
    setattr(cls, method, lambda self, *args: ("replaced", type(self)))
    try:
        assert call(construct(name)) == ("replaced", cls)
    finally:
        delattr(cls, method)   # back to the inherited one
    obj = construct(name)
    obj.note = "kept"       # threading's objects take attributes, and so do these
    with mock.patch.object(obj, method, return_value="mocked"):
        assert call(obj) == "mocked"
    assert obj.note == "kept"


@pytest.mark.parametrize("name", PYTHON_CLASS_NAMES)
def test_installed_classes_look_like_threadings(under_patch, name):
    cls = getattr(threading, name)
    assert (cls.__module__, cls.__name__, cls.__qualname__) == ("threading", name, name)
    obj = construct(name)
    if name != "Condition":   # Condition's repr shows its lock
        assert repr(obj).startswith(f"<threading.{name} at {id(obj):#x}: ")
    assert isinstance(obj, getattr(fastsync, name)) and isinstance(obj, cls)
    assert_weakly_referenceable(lambda: construct(name))
    with pytest.raises(TypeError):
        pickle.dumps(obj)
    # The class itself pickles by name, as threading's does.
    assert pickle.loads(pickle.dumps(cls)) is cls
    assert isinstance(threading.BoundedSemaphore(), threading.Semaphore)


def test_objects_from_before_patch_are_still_instances(under_patch):
    fastsync.unpatch()
    before = threading.Event()
    fastsync.patch()
    assert isinstance(before, threading.Event)
    assert isinstance(fastsync.Event(), threading.Event)
    assert not isinstance(threading.Lock(), threading.Event)
    assert issubclass(ORIGINALS["Event"], threading.Event)


@pytest.mark.parametrize("name", PYTHON_CLASS_NAMES)
def test_subclasses_build_on_threadings_class(under_patch, name):
    """A subclass made while patched is the class it would have been before:
    it may rely on threading's private state."""
    cls = getattr(threading, name)

    class Sub(cls):
        def extra(self):
            return super().__repr__()

    assert Sub.__bases__ == (ORIGINALS[name],)
    assert type(Sub) is type
    obj = Sub(*((1,) if name == "Barrier" else ()))
    assert isinstance(obj, cls) and issubclass(Sub, cls)
    assert obj.extra() == repr(obj)
    dynamic = type("Dynamic", (cls,), {})
    assert dynamic.__bases__ == (ORIGINALS[name],)


def test_subclass_of_threadings_private_state_works(under_patch):
    class Counting(threading.Semaphore):
        def peek(self):
            with self._cond:          # threading's private attributes
                return self._value

    semaphore = Counting(2)
    semaphore.acquire()
    assert semaphore.peek() == 1
    # Built on the module's names, so on fastsync's Lock and Condition now.
    assert isinstance(semaphore._cond, fastsync.Condition)


# multiprocessing's Barrier is threading.Barrier's code over shared memory.
# Either order of patch() and its import, fork and spawn.
MP_BARRIER = """
import multiprocessing as mp
import sys
import fastsync

def wait_in_child(barrier):
    barrier.wait(60)

def main(order, method):
    if order == "patch-first":
        fastsync.patch()
    import multiprocessing.synchronize
    if order == "import-first":
        fastsync.patch()
    ctx = mp.get_context(method)
    assert ctx.Barrier(1).wait() == 0
    barrier = ctx.Barrier(2, timeout=60)
    child = ctx.Process(target=wait_in_child, args=(barrier,))
    child.start()
    index = barrier.wait()
    child.join(60)
    assert child.exitcode == 0, child.exitcode
    assert index in (0, 1) and not barrier.broken
    print("ok", fastsync.BACKEND, type(fastsync.Event()).__module__)

if __name__ == "__main__":
    main(*sys.argv[1:])
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork start method needs os.fork")
@pytest.mark.timeout(240)
@pytest.mark.parametrize("module", backend_params())
@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
@pytest.mark.parametrize("order", ["patch-first", "import-first"])
def test_multiprocessing_barrier_under_patch(tmp_path, module, method, order):
    script = tmp_path / "mp_barrier.py"
    script.write_text(MP_BARRIER)
    env = dict(os.environ)
    env.pop("FASTSYNC_NO_EXTENSIONS", None)
    if module.endswith("_fallback"):
        env["FASTSYNC_NO_EXTENSIONS"] = "1"
    result = subprocess.run([sys.executable, str(script), order, method], env=env, capture_output=True,
                            text=True, timeout=180, **CHILD_OPTIONS)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[:2] == ["ok", "cython" if module.endswith("_compiled") else "python"]
