"""fastsync.patch(): threading's names point at fastsync while patched, and
what the standard library builds on threading keeps working."""

import concurrent.futures
import logging
import queue
import threading

import pytest

import fastsync
from fastsync._patch import PATCHED_NAMES
from helpers import start

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
        assert getattr(threading, name) is getattr(fastsync, name)
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
    assert all(getattr(threading, n) is getattr(fastsync, n) for n in PATCHED_NAMES)


def test_objects_created_before_keep_their_type():
    before = threading.Event()
    with fastsync.patched():
        after = threading.Event()
    assert type(before) is ORIGINALS["Event"]
    assert type(after) is fastsync.Event


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
    assert type(timer.finished) is fastsync.Event
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
    assert isinstance(q.mutex, fastsync.Lock) and type(q.not_empty) is fastsync.Condition
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
