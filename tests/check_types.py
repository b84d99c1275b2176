"""Code a user might write against fastsync, for mypy to check (`make lint`);
pytest doesn't collect it.  It type-checks only if fastsync's public names
carry threading's method types (see the TYPE_CHECKING branch in __init__)."""

import fastsync


def use_every_primitive() -> None:
    lock = fastsync.Lock()
    taken: bool = lock.acquire(blocking=True, timeout=0.5)
    if taken:
        lock.release()
    with lock:
        held: bool = lock.locked()
        assert held

    rlock = fastsync.RLock()
    with rlock, rlock:
        pass
    taken = rlock.acquire(False)

    event = fastsync.Event()
    event.set()
    flag: bool = event.is_set() and event.wait(0.1)
    event.clear()
    assert flag

    rw = fastsync.RWLock()
    with rw.reader:
        reading: bool = rw.reader.locked()
        assert reading
    if rw.writer.acquire(timeout=0.5):
        rw.downgrade()
        rw.reader.release()
    assert rw.writer.rwlock is rw

    condition = fastsync.Condition(fastsync.Lock())
    with condition:
        woken: bool = condition.wait_for(lambda: True, timeout=0.1)
        condition.notify_all()
        assert woken

    semaphore = fastsync.BoundedSemaphore(2)
    with semaphore:
        taken = semaphore.acquire(timeout=0.1)
    semaphore.release()

    barrier = fastsync.Barrier(1, timeout=1.0)
    index: int = barrier.wait()
    assert index == 0 and barrier.parties == 1
    backend: str = fastsync.BACKEND
    assert backend in ("cython", "python")


def use_the_diagnostics(path: str) -> None:
    import fastsync.debug

    fastsync.debug.enable(lock_order=True, on_inversion="raise", profile=False)
    try:
        for cycle in fastsync.debug.find_deadlocks():
            for entry in cycle:
                ident: int = entry.thread
                lines: list = entry.stack + entry.holding
                print(ident, entry.name, entry.waiting_for, lines)
    except fastsync.debug.LockOrderError:
        pass
    finally:
        fastsync.debug.disable()
    with fastsync.debug.profile() as prof:
        pass
    table: str = prof.report()
    prof.write_collapsed(path)
    waited: float = sum(row.total_wait for row in prof.stats())
    warning: type = fastsync.debug.LockOrderWarning
    assert issubclass(warning, RuntimeWarning) and table and waited >= 0


def hold_any_lock(lock: fastsync.LockLike) -> bool:
    """Code that takes a lock from either library, annotated as the docs say."""
    with lock:
        pass
    taken = lock.acquire(timeout=0.1)
    if taken:
        lock.release()
    return taken


def pass_every_kind_of_lock() -> None:
    import threading

    locks: list[fastsync.LockLike] = [
        fastsync.Lock(), fastsync.RLock(), fastsync.Condition(),
        threading.Lock(), threading.RLock(), threading.Condition(),
    ]
    for lock in locks:
        hold_any_lock(lock)
    # Either library's class of one kind, as a union.
    event: "threading.Event | fastsync.Event" = fastsync.Event()
    event = threading.Event()
    assert not event.is_set()
    semaphore: "threading.Semaphore | fastsync.Semaphore" = fastsync.BoundedSemaphore(2)
    with semaphore:
        pass
