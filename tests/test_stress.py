"""Stress: many threads, mixed calls, bounded time (marker `stress`).

Each run lasts a fixed wall-clock time (or a fixed number of operations),
checks its invariants at every step and prints one summary line (see it with
`pytest -s`).  The GIL switch interval is shortened while they run so that
threads are preempted inside critical sections and blocked waits really
happen.

New primitives join by adding a run here that takes their fixture; the
`contention` helper runs any set of worker functions for a bounded time."""

import collections
import ctypes
import random
import sys
import threading
import time

import pytest

from helpers import entered_value, start, switch_interval

pytestmark = pytest.mark.stress

# How long each timed run lasts; the whole file stays well under a minute per
# backend on two cores.
RUN_SECONDS = 1.5
LOCK_THREADS = 8
EVENT_WAITERS = 16
EVENT_TOGGLERS = 2
ULONG_MAX = 2 ** (8 * ctypes.sizeof(ctypes.c_ulong)) - 1


@pytest.fixture(autouse=True)
def frequent_switches():
    with switch_interval(2e-5):
        yield


def contention(workers, seconds=RUN_SECONDS, join_timeout=30.0):
    """Run each fn(seed, stop_at) in its own thread; returns their results
    and the elapsed time.  A worker that raises fails the test."""
    stop_at = time.monotonic() + seconds
    began = time.monotonic()
    threads = [start(fn, seed, stop_at, name=f"{fn.__name__}-{seed}")
               for seed, fn in enumerate(workers)]
    results = [thread.join_result(join_timeout) for thread in threads]
    return results, time.monotonic() - began


def report(title, counts, elapsed, threads):
    total = sum(counts.values())
    detail = ", ".join(f"{key}={value}" for key, value in sorted(counts.items()))
    print(f"\n[stress] {title}: {threads} threads, {total} operations in {elapsed:.2f} s ({detail})")


# ---- Lock and RLock: mixed acquires -------------------------------------------------

ACQUIRE_MODES = ("blocking", "with", "non-blocking", "timed", "zero-timeout")
SHORT_TIMEOUTS = (0.0001, 0.0005, 0.002, 0.01)


def acquire_with_mode(lock, mode, rng):
    if mode == "blocking":
        return lock.acquire()
    if mode == "non-blocking":
        return lock.acquire(False)
    if mode == "timed":
        return lock.acquire(True, rng.choice(SHORT_TIMEOUTS))
    if mode == "zero-timeout":
        return lock.acquire(timeout=0)
    raise AssertionError(mode)


def test_mixed_acquires_keep_mutual_exclusion(any_lock):
    """Threads acquire one lock every way there is; an RLock also re-enters to
    a random depth with random modes.  Exactly one thread is ever inside, and
    the lock is free once they stop."""
    lock = any_lock()
    reentrant = hasattr(lock, "_is_owned")
    inside = [None]       # the thread in the critical section, if any
    entries = [0]         # incremented with a read-modify-write inside it

    def critical(me, rng, counts):
        assert inside[0] is None, f"{inside[0]} is inside too"
        inside[0] = me
        assert lock.locked()
        value = entries[0]
        if reentrant:
            depth = rng.randint(1, 8)
            for level in range(2, depth + 1):
                mode = rng.choice(ACQUIRE_MODES)
                if mode == "with":
                    lock.__enter__()
                else:
                    assert acquire_with_mode(lock, mode, rng) is True, mode
                assert lock._recursion_count() == level
                counts["re-entered"] += 1
            if rng.random() < 0.2:
                time.sleep(0)     # give the others a go while we hold it
            for level in range(depth, 1, -1):
                (lock.release if level % 2 else lambda: lock.__exit__(None, None, None))()
                assert lock._is_owned() and lock._recursion_count() == level - 1
        elif rng.random() < 0.2:
            time.sleep(0)
        assert inside[0] == me
        entries[0] = value + 1
        inside[0] = None

    def worker(seed, stop_at):
        rng = random.Random(seed)
        me = threading.get_ident()
        counts = collections.Counter()
        while time.monotonic() < stop_at:
            mode = rng.choice(ACQUIRE_MODES)
            if mode == "with":
                with lock:
                    critical(me, rng, counts)
                counts[mode] += 1
                continue
            if not acquire_with_mode(lock, mode, rng):
                assert mode != "blocking"
                counts[mode + " failed"] += 1
                continue
            try:
                critical(me, rng, counts)
            finally:
                lock.release()
            counts[mode] += 1
        if reentrant:
            assert not lock._is_owned()
        return counts

    results, elapsed = contention([worker] * LOCK_THREADS)
    counts = sum(results, collections.Counter())
    acquired = sum(counts[mode] for mode in ACQUIRE_MODES)
    assert entries[0] == acquired
    assert inside[0] is None
    assert not lock.locked()
    assert lock.acquire(False) is True
    lock.release()
    # Contention really happened: some attempts had to give up.
    assert counts["non-blocking failed"] + counts["zero-timeout failed"] > 0
    report(f"{type(lock).__name__} mixed acquires", counts, elapsed, LOCK_THREADS)


def test_lock_released_by_other_threads(Lock):
    """A Lock used as a token: whoever acquires it hands it to a random other
    thread, which releases it.  Nothing is lost, nothing is released twice."""
    lock = Lock()
    handoffs = [collections.deque() for _ in range(4)]
    mutex = threading.Lock()   # guards the deques and the tally
    tally = collections.Counter()

    def worker(seed, stop_at):
        rng = random.Random(seed)
        mine = handoffs[seed]
        counts = collections.Counter()
        while time.monotonic() < stop_at:
            with mutex:
                owed = mine.popleft() if mine else None
            if owed is not None:
                lock.release()            # on behalf of thread `owed`
                counts["released for another"] += 1
                continue
            if lock.acquire(True, rng.choice(SHORT_TIMEOUTS)):
                with mutex:
                    tally["held"] += 1
                    handoffs[rng.choice([n for n in range(4) if n != seed])].append(seed)
                counts["acquired"] += 1
            else:
                counts["timed out"] += 1
        return counts

    results, elapsed = contention([worker] * 4)
    counts = sum(results, collections.Counter())
    # Whatever is still owed was acquired and never released: exactly one.
    owed = sum(len(queue) for queue in handoffs)
    assert owed in (0, 1)
    assert lock.locked() is (owed == 1)
    assert counts["acquired"] == counts["released for another"] + owed
    if owed:
        lock.release()
    with pytest.raises(RuntimeError):
        lock.release()
    report("Lock acquired and released by different threads", counts, elapsed, 4)


# ---- Event: set/clear storms ---------------------------------------------------------

WAIT_TIMEOUTS = (0, 0.0001, 0.0005, 0.002, None, 30.0)


def test_event_set_clear_storm_loses_no_wakeups(Event):
    """Waiters with short, zero, long and no timeouts while two threads set and
    clear as fast as they can.  Timed waits never return early; afterwards the
    event stays set and every waiter, including those blocked without a
    timeout, returns True."""
    event = Event()
    storm_over = threading.Event()   # the stdlib's, to steer the test itself

    def waiter(seed, stop_at):
        rng = random.Random(seed)
        counts = collections.Counter()
        while not storm_over.is_set():
            timeout = rng.choice(WAIT_TIMEOUTS)
            began = time.monotonic()
            result = event.wait(timeout)
            took = time.monotonic() - began
            if timeout is None or timeout == 30.0:
                # Only a set() can end these; a lost wake-up hangs the test.
                assert result is True, timeout
                assert took < 20
            elif not result:
                assert took >= timeout, f"wait({timeout}) gave up after {took}"
            counts[f"wait->{result}"] += 1
            if result and rng.random() < 0.5:
                time.sleep(0)     # don't starve the togglers while it is set
        # The storm is over and the event is set for good.
        assert event.is_set()
        assert event.wait() is True
        assert event.wait(0) is True
        assert event.wait(5) is True
        return counts

    def toggler(seed, stop_at):
        rng = random.Random(seed)
        counts = collections.Counter()
        # A hundred toggles at least, however late a loaded machine starts it.
        while time.monotonic() < stop_at or counts["set"] < 100:
            event.set()
            counts["set"] += 1
            if rng.random() < 0.3:
                time.sleep(0)
            event.clear()
            counts["clear"] += 1
            if rng.random() < 0.3:
                time.sleep(0)
        return counts

    stop_at = time.monotonic() + RUN_SECONDS
    began = time.monotonic()
    waiters = [start(waiter, seed, stop_at) for seed in range(EVENT_WAITERS)]
    togglers = [start(toggler, 100 + seed, stop_at) for seed in range(EVENT_TOGGLERS)]
    counts = sum((thread.join_result(30) for thread in togglers), collections.Counter())
    event.set()          # from here on, every waiter must come home
    storm_over.set()
    for thread in waiters:
        counts += thread.join_result(30)
    elapsed = time.monotonic() - began
    assert counts["wait->True"] > 0 and counts["set"] > 0
    report("Event set/clear storm", counts, elapsed, EVENT_WAITERS + EVENT_TOGGLERS)


def test_event_rounds_wake_every_waiter(Event):
    """Round after round, many threads wait on a fresh event and one set()
    must release all of them, quickly."""
    waiters, rounds = 24, 150
    events = [Event() for _ in range(rounds)]
    arrived = [0] * rounds
    count_lock = threading.Lock()

    def waiter(seed, stop_at):
        slowest = 0.0
        for index, event in enumerate(events):
            with count_lock:
                arrived[index] += 1
            began = time.monotonic()
            assert event.wait(20) is True, f"round {index} lost a wake-up"
            slowest = max(slowest, time.monotonic() - began)
        return slowest

    began = time.monotonic()
    threads = [start(waiter, seed, None) for seed in range(waiters)]
    for index, event in enumerate(events):
        deadline = time.monotonic() + 20
        while arrived[index] < waiters:      # most are blocked in wait() by now
            assert time.monotonic() < deadline
            time.sleep(0.0002)
        event.set()
    slowest = max(thread.join_result(30) for thread in threads)
    elapsed = time.monotonic() - began
    report("Event rounds", collections.Counter(waits=waiters * rounds, sets=rounds), elapsed, waiters + 1)
    print(f"[stress] slowest wake-up {slowest * 1000:.1f} ms")


# ---- RLock: deep recursion and the count's limit ------------------------------------

RECURSION_DEPTH = 100_000


def test_rlock_deep_recursion(RLock):
    lock = RLock()
    me = threading.get_ident()
    entered = entered_value(lock, "RLock")     # True on CPython, the lock on PyPy
    enter = [lock.acquire, lambda: lock.acquire(False), lambda: lock.acquire(True, 0.5),
             lambda: lock.__enter__() is entered, lambda: lock.acquire(timeout=-1)]
    began = time.monotonic()
    for level in range(1, RECURSION_DEPTH + 1):
        assert enter[level % len(enter)]() is True
        if level % 10_000 == 0:
            assert lock._recursion_count() == level
    assert lock._recursion_count() == RECURSION_DEPTH
    assert f"count={RECURSION_DEPTH} " in repr(lock)

    def outsider():
        with pytest.raises(RuntimeError):
            lock.release()
        return lock.acquire(False), lock.acquire(timeout=0.01), lock._is_owned()

    assert start(outsider).join_result() == (False, False, False)

    # The whole depth can be saved and restored in one step, as Condition does.
    state = lock._release_save()
    assert state == (RECURSION_DEPTH, me)
    assert not lock.locked()
    assert start(lambda: lock.acquire(False) and lock.release() is None).join_result()
    lock._acquire_restore(state)
    assert lock._recursion_count() == RECURSION_DEPTH

    for level in range(RECURSION_DEPTH, 1, -1):
        (lock.release if level % 2 else lambda: lock.__exit__(None, None, None))()
        if level % 10_000 == 0:
            assert lock.locked() and lock._recursion_count() == level - 1
    assert lock._recursion_count() == 1
    lock.release()
    assert not lock.locked() and not lock._is_owned()
    with pytest.raises(RuntimeError):
        lock.release()
    elapsed = time.monotonic() - began
    report("RLock recursion", collections.Counter(levels=RECURSION_DEPTH), elapsed, 1)


def owner_and_count(rlock):
    """Read owner and count from the repr, which every RLock here has."""
    text = repr(rlock)
    return int(text.split(" owner=")[1].split()[0]), int(text.split(" count=")[1].split()[0])


def count_limit():
    """The highest count threading's RLock can be given, and the
    _acquire_restore argument that gives it: ULONG_MAX on CPython up to 3.13,
    which refuses to count past it; since 3.14 _acquire_restore takes a
    Py_ssize_t, so -1 is the way there (and the count wraps past it); PyPy
    keeps the count in a signed word and refuses more than sys.maxsize."""
    me = threading.get_ident()
    for count in (ULONG_MAX, -1, sys.maxsize):
        probe = threading.RLock()
        try:
            probe._acquire_restore((count, me))
        except OverflowError:
            continue
        limit = owner_and_count(probe)[1]
        if limit > 0:
            probe._release_save()
            return limit, count
    raise AssertionError("threading.RLock takes neither ULONG_MAX, -1 nor sys.maxsize")


def outcome(call):
    try:
        return "ok", call()
    except Exception as error:   # noqa: BLE001 - compared with threading's
        return type(error).__name__, str(error)


# Each re-enters a lock whose count is at the limit.
OVERFLOW_CALLS = {
    "acquire()": lambda lock: lock.acquire(),
    "acquire(False)": lambda lock: lock.acquire(False),
    "acquire(timeout=0.01)": lambda lock: lock.acquire(timeout=0.01),
    "acquire(True, 0)": lambda lock: lock.acquire(True, 0),
    "with": lambda lock: lock.__enter__() is entered_value(lock, "RLock"),
}


@pytest.mark.parametrize("call", sorted(OVERFLOW_CALLS))
def test_rlock_count_overflow_like_threading(RLock, call):
    """2**64-1 levels (the limit on CPython) can't be reached by looping;
    _acquire_restore sets the count directly.  Re-entering must then raise
    what threading raises and leave the lock as it was."""
    enter = OVERFLOW_CALLS[call]
    me = threading.get_ident()
    limit, restored = count_limit()

    def scenario(lock):
        steps = []
        lock._acquire_restore((restored - 2, me))
        steps.append(outcome(lambda: enter(lock)))
        steps.append(outcome(lambda: enter(lock)))
        steps.append(owner_and_count(lock))
        steps.append(outcome(lambda: enter(lock)))         # over the limit
        steps.append(owner_and_count(lock))
        steps.append(lock._is_owned())
        steps.append(outcome(lock.release))
        steps.append(owner_and_count(lock))
        steps.append(outcome(lambda: enter(lock)))         # room for one again
        steps.append(outcome(lambda: enter(lock)))
        steps.append(outcome(lock._release_save))
        steps.append(lock._is_owned())
        steps.append(start(lambda: lock.acquire(False) and lock.release() is None).join_result())
        return steps

    expected = scenario(threading.RLock())
    assert expected[2] == (me, limit)
    if expected[3][0] != "ok":   # up to 3.13 (and PyPy): refused, not wrapped
        # "Internal lock count overflowed" on CPython, "internal ..." on PyPy.
        assert expected[3][0] == "OverflowError"
        assert expected[3][1].lower() == "internal lock count overflowed"
    assert scenario(RLock()) == expected


RESTORED_COUNTS = [0, 1, sys.maxsize, sys.maxsize + 1, ULONG_MAX, ULONG_MAX + 1, -1, -(2**63), -(2**63) - 1]


@pytest.mark.parametrize("count", RESTORED_COUNTS)
def test_rlock_acquire_restore_counts_like_threading(RLock, count):
    """What _acquire_restore makes of a count (3.14+ reads a Py_ssize_t and
    holds the lock even at count 0), and what the owner can do then."""
    me = threading.get_ident()

    def scenario(lock):
        steps = [outcome(lambda: lock._acquire_restore((count, me)))]
        if steps[0][0] != "ok":
            return steps
        steps += [repr(lock).split()[0], owner_and_count(lock), lock._is_owned(),
                  start(lambda: lock.acquire(False)).join_result()]
        steps += [outcome(lock.release), owner_and_count(lock), lock._is_owned()]
        steps += [outcome(lambda: lock.acquire(False)), owner_and_count(lock)]
        steps += [outcome(lock._release_save), owner_and_count(lock), lock._is_owned()]
        return steps

    assert scenario(RLock()) == scenario(threading.RLock())


@pytest.mark.parametrize("state", [(1.5, 1), 1, (1,), (1, 2, 3), "ab", (1, "x")], ids=repr)
def test_rlock_acquire_restore_errors_like_threading(RLock, state):
    assert outcome(lambda: RLock()._acquire_restore(state)) == \
        outcome(lambda: threading.RLock()._acquire_restore(state))


# ---- Condition, Semaphore, Barrier ----------------------------------------------------

@pytest.mark.cython
@pytest.mark.parametrize("lock_kind", ["Lock", "RLock"])
def test_condition_notify_racing_timeouts_is_never_lost(lock_kind):
    """One item at a time: the producer queues it, notifies once and waits
    until it is taken.  Besides the consumer, "churners" wait on the same
    condition with zero or tiny timeouts and pass on any notification they
    get.  A notify that picks a churner as its timeout expires must still
    count (its wait returns True); otherwise the one notification is gone and
    the item is never taken.

    Compiled backend only.  The fallback's Condition is threading's, which
    can drop such a notification (the waiter has timed out, notify() picks
    it, and it returns False), but its window is too narrow for this test to
    hit: threading passed it every time.  With the compiled Condition changed
    to drop them the same way, the test fails on the first or second item."""
    import fastsync._compiled as compiled

    condition = compiled.Condition(getattr(compiled, lock_kind)())
    items = collections.deque()
    taken = threading.Event()      # the stdlib's, to steer the test itself
    finished = threading.Event()

    def consumer(seed, stop_at):
        counts = collections.Counter()
        while True:
            with condition:
                while not items and not finished.is_set():
                    condition.wait()
                if not items:
                    return counts
                items.popleft()
                counts["taken"] += 1
                taken.set()

    def churner(seed, stop_at):
        rng = random.Random(seed)
        counts = collections.Counter()
        while not finished.is_set():
            with condition:
                timeout = rng.choice((0, 0, 0.00005, 0.0002))
                began = time.monotonic()
                if condition.wait(timeout):
                    condition.notify()      # not ours: pass it on
                    counts["passed on"] += 1
                else:
                    assert time.monotonic() - began >= timeout
                    counts["timed out"] += 1
        return counts

    stop_at = time.monotonic() + RUN_SECONDS
    began = time.monotonic()
    waiters = [start(consumer, 0, stop_at)] + [start(churner, seed, stop_at) for seed in (1, 2, 3)]
    counts = collections.Counter()
    while time.monotonic() < stop_at:
        taken.clear()
        with condition:
            items.append(counts["queued"])
            condition.notify()
        counts["queued"] += 1
        assert taken.wait(10), f"item {counts['queued']} never taken: a notification was lost"
    with condition:
        finished.set()
        condition.notify_all()
    for thread in waiters:
        counts += thread.join_result(30)
    elapsed = time.monotonic() - began
    assert counts["taken"] == counts["queued"] > 0
    assert counts["passed on"] > 0     # the race was there to be lost
    report(f"Condition over {lock_kind}, notify racing timeouts", counts, elapsed, 5)


@pytest.mark.parametrize("kind", ["Semaphore", "BoundedSemaphore"])
def test_semaphore_holders_never_exceed_its_value(backend, kind):
    """Threads take slots with every kind of acquire and give them back; never
    more holders than slots, and afterwards all the slots are free."""
    slots = 3
    semaphore = getattr(backend, kind)(slots)
    holders = [0]
    guard = threading.Lock()

    def worker(seed, stop_at):
        rng = random.Random(seed)
        counts = collections.Counter()
        while time.monotonic() < stop_at:
            timeout = rng.choice((0, 0.0001, 0.002, None))
            began = time.monotonic()
            if not semaphore.acquire(timeout=timeout):
                assert time.monotonic() - began >= timeout
                counts["timed out"] += 1
                continue
            with guard:
                holders[0] += 1
                assert holders[0] <= slots
            if rng.random() < 0.3:
                time.sleep(0)
            with guard:
                holders[0] -= 1
            semaphore.release()
            counts["held"] += 1
        return counts

    results, elapsed = contention([worker] * LOCK_THREADS)
    counts = sum(results, collections.Counter())
    assert counts["held"] > 0
    assert [semaphore.acquire(False) for _ in range(slots + 1)] == [True] * slots + [False]
    report(f"{kind}({slots}) holders", counts, elapsed, LOCK_THREADS)


def test_barrier_survives_abort_and_reset_storms(backend):
    """Parties loop on a barrier while another thread aborts and resets it at
    random.  Every wait returns an index in range or raises
    BrokenBarrierError, nothing else goes wrong in any interleaving, and a
    reset barrier works again.  (The aborts free a party whose wake-up was
    lost, so lost wake-ups are the other Barrier tests' business.)"""
    parties = 3
    barrier = backend.Barrier(parties)

    def party(seed, stop_at):
        counts = collections.Counter()
        while time.monotonic() < stop_at:
            try:
                index = barrier.wait()
            except threading.BrokenBarrierError:
                counts["broken"] += 1
                time.sleep(0)
            else:
                assert 0 <= index < parties
                counts["passed"] += 1
        return counts

    def chaos(seed, stop_at):
        rng = random.Random(seed)
        counts = collections.Counter()
        while time.monotonic() < stop_at:
            time.sleep(rng.choice((0.0001, 0.001, 0.005)))
            if rng.random() < 0.5:
                barrier.abort()
                counts["abort"] += 1
            else:
                barrier.reset()
                counts["reset"] += 1
        return counts

    stop_at = time.monotonic() + RUN_SECONDS
    began = time.monotonic()
    threads = [start(party, seed, stop_at) for seed in range(parties)] + [start(chaos, 99, stop_at)]
    # Parties that finished their loop leave the others one short of a cycle:
    # abort frees those until all have seen the end.
    while any(thread.is_alive() for thread in threads):
        assert time.monotonic() < stop_at + 30, "a party is stuck in wait()"
        time.sleep(0.01)
        if time.monotonic() >= stop_at:
            barrier.abort()
    counts = sum((thread.join_result(30) for thread in threads), collections.Counter())
    elapsed = time.monotonic() - began
    barrier.reset()
    indices = [start(barrier.wait) for _ in range(parties)]
    assert sorted(worker.join_result(30) for worker in indices) == list(range(parties))
    assert counts["passed"] > 0 and counts["abort"] + counts["reset"] > 0
    report("Barrier under abort/reset", counts, elapsed, parties + 1)
