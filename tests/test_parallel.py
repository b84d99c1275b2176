"""Parallel stress: each primitive's invariants, checked while its threads
run at once (marker `stress`).

On a free-threaded CPython (3.14t) the threads below really run in parallel,
with no GIL between them: every read and write of the shared words races for
real.  Each run lasts a bounded time, checks its invariant at every step with
bookkeeping of the test's own (guarded by the interpreter's own lock, not the
primitive under test), and prints one summary line (see it with `pytest -s`).
On a GIL build the same runs check the same invariants with threads that
interleave; there a short switch interval makes them preempt each other
inside the critical sections."""

import _thread
import collections
import random
import sys
import threading
import time

import pytest

from helpers import start, switch_interval

pytestmark = pytest.mark.stress

RUN_SECONDS = 1.0
# Runs that go in rounds (a ring's turns, Barrier phases, Event rounds) have
# at least this many, however slowly a loaded machine starts the threads.
MIN_ROUNDS = 10
THREADS = 4
JOIN_SECONDS = 30.0
GIL_ENABLED = getattr(sys, "_is_gil_enabled", lambda: True)()


@pytest.fixture(autouse=True)
def frequent_switches():
    with switch_interval(2e-5):   # no effect without a GIL
        yield


def run_all(workers, seconds=RUN_SECONDS):
    """Run each fn(seed, stop_at) in a thread of its own until stop_at; returns
    their results (Counters) summed and the elapsed time."""
    stop_at = time.monotonic() + seconds
    began = time.monotonic()
    threads = [start(fn, seed, stop_at, name=f"{fn.__name__}-{seed}") for seed, fn in enumerate(workers)]
    counts = sum((thread.join_result(JOIN_SECONDS) for thread in threads), collections.Counter())
    return counts, time.monotonic() - began


def report(title, counts, elapsed):
    detail = ", ".join(f"{key}={value}" for key, value in sorted(counts.items()))
    gil = "GIL on" if GIL_ENABLED else "GIL off"
    print(f"\n[parallel, {gil}] {title}: {elapsed:.2f} s ({detail})")


def test_lock_excludes_threads_running_at_once(any_lock):
    """A read-modify-write of plain Python state under the lock, by threads at
    full speed: nobody ever finds another inside, and no increment is lost."""
    lock = any_lock()
    inside = [0]
    total = [0]

    def worker(seed, stop_at):
        counts = collections.Counter()
        while time.monotonic() < stop_at:
            for _ in range(100):
                if not lock.acquire(False):
                    lock.acquire()
                    counts["contended"] += 1
                try:
                    assert inside[0] == 0, "two threads inside the lock"
                    inside[0] = 1
                    value = total[0]
                    total[0] = value + 1
                    inside[0] = 0
                finally:
                    lock.release()
                counts["entered"] += 1
        return counts

    counts, elapsed = run_all([worker] * THREADS)
    assert total[0] == counts["entered"] > 0
    assert lock.acquire(False)
    report(f"{type(lock).__name__} exclusion", counts, elapsed)


def test_semaphore_never_exceeds_its_bound(backend):
    """More threads than slots: never more holders than slots, and every slot
    is free at the end; a BoundedSemaphore refuses one release too many."""
    slots = 2
    semaphore = backend.BoundedSemaphore(slots)
    meter = threading.Lock()   # the interpreter's own, for the test's bookkeeping
    holders = [0]
    most = [0]

    def worker(seed, stop_at):
        rng = random.Random(seed)
        counts = collections.Counter()
        while time.monotonic() < stop_at:
            if not semaphore.acquire(timeout=rng.choice((None, 0, 0.001))):
                counts["timed out"] += 1
                continue
            with meter:
                holders[0] += 1
                assert holders[0] <= slots, "more holders than slots"
                most[0] = max(most[0], holders[0])
            if rng.random() < 0.3:
                time.sleep(0)   # hold the slot a little longer
            with meter:
                holders[0] -= 1
            semaphore.release()
            counts["held"] += 1
        return counts

    counts, elapsed = run_all([worker] * (THREADS + 2))
    assert counts["held"] > 0
    assert [semaphore.acquire(False) for _ in range(slots + 1)] == [True] * slots + [False]
    for _ in range(slots):
        semaphore.release()
    with pytest.raises(ValueError):
        semaphore.release()
    counts["most at once"] = most[0]
    report("BoundedSemaphore(2) bound", counts, elapsed)


def test_rlock_belongs_to_one_thread(RLock):
    """Threads take an RLock to random depths: while one holds it, it is the
    recorded owner at the right depth, the others see it as not theirs and
    cannot release it, and it ends free."""
    lock = RLock()
    owner = [None]

    def worker(seed, stop_at):
        rng = random.Random(seed)
        me = threading.get_ident()
        counts = collections.Counter()
        while time.monotonic() < stop_at:
            if not lock._is_owned():
                try:
                    lock.release()
                except RuntimeError:
                    counts["refused"] += 1
                else:
                    raise AssertionError("a thread released an RLock it does not own")
            depth = rng.randint(1, 4)
            for level in range(1, depth + 1):
                lock.acquire()
                if level == 1:
                    assert owner[0] is None, "an RLock with two owners"
                    owner[0] = me
                assert owner[0] == me and lock._is_owned()
                assert lock._recursion_count() == level
            for level in range(depth, 0, -1):
                if level == 1:
                    owner[0] = None
                lock.release()
            counts["held"] += 1
        return counts

    counts, elapsed = run_all([worker] * THREADS)
    assert counts["held"] > 0
    assert not lock._is_owned() and lock.acquire(False)
    lock.release()
    report("RLock ownership", counts, elapsed)


@pytest.mark.timeout(120)   # rounds hand over between threads: slow on a loaded machine
@pytest.mark.parametrize("lock_kind", ["Lock", "RLock"])
def test_condition_loses_no_notification(backend, lock_kind):
    """Three Conditions over one lock, as queue.Queue has.  On the first, a
    token goes round a ring of threads: each waits for its turn, then hands
    the token on with notify_all().  On the other two, a producer and a
    consumer pass numbered items through a one-place buffer with notify().
    Each notification there is the only one its receiver gets: one that is
    lost leaves a thread asleep while its turn or its item has come, which
    its wait's timeout catches."""
    lock = getattr(backend, lock_kind)()
    turns = backend.Condition(lock)
    not_empty = backend.Condition(lock)
    not_full = backend.Condition(lock)
    state = {"turn": 0, "turns": 0, "stop": False}
    items = collections.deque()
    ring = THREADS - 1

    def await_(condition, ready):
        while not ready():
            if not condition.wait(10):
                assert ready(), "a notification was lost"

    def in_ring(seed, stop_at):
        counts = collections.Counter()
        while True:
            with turns:
                await_(turns, lambda: state["turn"] == seed or state["stop"])
                if state["stop"]:
                    return counts
                state["turn"] = (seed + 1) % ring
                counts["turns"] += 1
                state["turns"] += 1
                if time.monotonic() >= stop_at and state["turns"] >= MIN_ROUNDS:
                    state["stop"] = True
                turns.notify_all()

    def producer(seed, stop_at):
        counts = collections.Counter()
        while True:
            more = time.monotonic() < stop_at or counts["sent"] < MIN_ROUNDS
            item = counts["sent"] if more else None
            with not_full:
                await_(not_full, lambda: not items)
                items.append(item)
                not_empty.notify()
            if item is None:
                return counts
            counts["sent"] += 1

    def consumer(seed, stop_at):
        counts = collections.Counter()
        while True:
            with not_empty:
                await_(not_empty, lambda: bool(items))
                item = items.popleft()
                not_full.notify()
            if item is None:
                return counts
            assert item == counts["received"], "an item was lost or repeated"
            counts["received"] += 1

    stop_at = time.monotonic() + RUN_SECONDS
    began = time.monotonic()
    threads = [start(in_ring, seed, stop_at) for seed in range(ring)]
    threads += [start(producer, ring, stop_at), start(consumer, ring + 1, stop_at)]
    counts = sum((thread.join_result(JOIN_SECONDS) for thread in threads), collections.Counter())
    elapsed = time.monotonic() - began
    assert counts["turns"] >= MIN_ROUNDS
    assert counts["received"] == counts["sent"] >= MIN_ROUNDS
    report(f"Condition({lock_kind}) notifications", counts, elapsed)


@pytest.mark.timeout(120)   # rounds hand over between threads: slow on a loaded machine
def test_barrier_keeps_its_phases(backend):
    """Parties go round a barrier: none leaves a phase before all have
    arrived in it, each phase hands out every index once, and the action runs
    once per phase, before anyone leaves."""
    parties = THREADS
    arrived = collections.Counter()
    indices = collections.defaultdict(list)
    actions = collections.Counter()
    meter = threading.Lock()
    stop = [False]
    stop_at = time.monotonic() + RUN_SECONDS

    def action():
        phase = len(actions)
        with meter:
            assert arrived[phase] == parties, "the action ran before every party arrived"
        actions[phase] += 1
        stop[0] = time.monotonic() >= stop_at and len(actions) >= MIN_ROUNDS

    barrier = backend.Barrier(parties, action=action)

    def party(seed, stop_at):
        counts = collections.Counter()
        phase = 0
        while True:
            with meter:
                arrived[phase] += 1
            index = barrier.wait(JOIN_SECONDS)
            with meter:
                assert arrived[phase] == parties, "a party left before all had arrived"
                assert actions[phase] == 1, "a party left before the action ran"
                indices[phase].append(index)
            counts["phases"] += 1
            phase += 1
            if stop[0]:
                return counts

    began = time.monotonic()
    threads = [start(party, seed, stop_at) for seed in range(parties)]
    counts = sum((thread.join_result(JOIN_SECONDS) for thread in threads), collections.Counter())
    elapsed = time.monotonic() - began
    phases = len(actions)
    assert phases >= MIN_ROUNDS and counts["phases"] == phases * parties
    assert all(sorted(indices[phase]) == list(range(parties)) for phase in range(phases))
    assert set(actions.values()) == {1}
    assert not barrier.broken and barrier.n_waiting == 0
    report("Barrier phases", collections.Counter(phases=phases), elapsed)


@pytest.mark.timeout(120)   # rounds hand over between threads: slow on a loaded machine
def test_event_storm_wakes_every_waiter(Event):
    """Rounds of set() and clear() on one Event, waited for by many threads
    while others hammer is_set() and wait(0): every waiter of a round wakes
    (none is left asleep by a set() that raced with its going to sleep), and
    no is_set() or wait(0) answers True while the event stays clear.  The
    rounds are steered with the interpreter's own locks: threading's Condition
    is Python code, and slow to hand over without a GIL."""
    event = Event()
    waiters = THREADS
    meter = _thread.allocate_lock()
    starts = [_thread.allocate_lock() for _ in range(waiters)]   # released: a round begins
    for start_lock in starts:
        start_lock.acquire()
    all_woke = _thread.allocate_lock()   # released by the round's last waiter to wake
    all_woke.acquire()
    state = {"stop": False, "woke": 0}
    phase = [0]   # odd from just before set() to just after clear(); written here only

    def waiter(seed, stop_at):
        counts = collections.Counter()
        while True:
            assert starts[seed].acquire(True, JOIN_SECONDS), "a round never began"
            if state["stop"]:
                return counts
            assert event.wait(JOIN_SECONDS), "a waiter was never woken"
            counts["woken"] += 1
            with meter:
                state["woke"] += 1
                if state["woke"] == waiters:
                    all_woke.release()

    def onlooker(seed, stop_at):
        counts = collections.Counter()
        while not state["stop"]:
            before = phase[0]
            answer = event.wait(0) if counts["looks"] % 2 else event.is_set()
            after = phase[0]
            # The event is set only while the phase is odd; an even phase
            # before and after, the same one, means it stayed clear.
            assert not answer or before % 2 or after != before, \
                "the event read as set while it stayed clear"
            counts["looks"] += 1
        return counts

    stop_at = time.monotonic() + RUN_SECONDS
    began = time.monotonic()
    threads = [start(waiter, seed, stop_at) for seed in range(waiters)]
    threads += [start(onlooker, seed, stop_at) for seed in range(2)]
    rounds = 0
    while time.monotonic() < stop_at or rounds < MIN_ROUNDS:
        rounds += 1
        state["woke"] = 0
        for start_lock in starts:   # the waiters start waiting on the clear event
            start_lock.release()
        phase[0] += 1
        event.set()
        assert all_woke.acquire(True, JOIN_SECONDS), f"round {rounds}: a waiter was never woken"
        event.clear()
        phase[0] += 1
    state["stop"] = True
    for start_lock in starts:
        start_lock.release()
    counts = sum((thread.join_result(JOIN_SECONDS) for thread in threads), collections.Counter())
    elapsed = time.monotonic() - began
    assert counts["woken"] == rounds * waiters
    report("Event storm", collections.Counter(rounds=rounds, looks=counts["looks"]), elapsed)


def test_rwlock_readers_share_and_writers_exclude(backend):
    """Readers and writers of one RWLock at full speed, with re-entrant reads,
    timed and non-blocking acquires and downgrades: a writer never finds
    anyone inside, a reader never finds a writer, and no write is lost.  The
    counts of who is inside are kept under the interpreter's own lock."""
    rw = backend.RWLock()
    guard = threading.Lock()
    inside = {"readers": 0, "writers": 0}
    total = [0]

    def enter(kind):
        with guard:
            inside[kind] += 1
            assert inside["writers"] <= 1 and not (inside["writers"] and inside["readers"]), inside
            return inside["readers"]

    def leave(kind):
        with guard:
            inside[kind] -= 1

    def worker(seed, stop_at):
        rng = random.Random(seed)
        counts = collections.Counter()
        while time.monotonic() < stop_at:
            for _ in range(50):
                args = rng.choice([(), (), (False,), (True, 0.001)])
                if rng.random() < 0.1:
                    if not rw.writer.acquire(*args):
                        counts["write refused"] += 1
                        continue
                    enter("writers")
                    value = total[0]
                    total[0] = value + 1
                    counts["writes"] += 1
                    leave("writers")
                    if rng.random() < 0.25:
                        rw.downgrade()
                        enter("readers")
                        leave("readers")
                        rw.reader.release()
                    else:
                        rw.writer.release()
                else:
                    if not rw.reader.acquire(*args):
                        counts["read refused"] += 1
                        continue
                    if enter("readers") > 1:
                        counts["shared reads"] += 1
                    if rng.random() < 0.1:
                        with rw.reader:
                            counts["re-entered"] += 1
                    leave("readers")
                    rw.reader.release()
                    counts["reads"] += 1
        return counts

    counts, elapsed = run_all([worker] * THREADS)
    assert total[0] == counts["writes"] > 0
    assert not rw.reader.locked() and not rw.writer.locked()
    assert rw._waiting() == (0, 0)
    report("RWLock", counts, elapsed)
