"""What is timed: the case registry.

A case names the primitive it needs (its `kind`: "Lock", "Event", ...) and
knows how to time `size` repetitions of its operation given a constructor for
that kind.  Every implementation providing the kind runs exactly the same code,
so only the object differs.  To add a case, define it here and append it to
CASES; while no fastsync backend provides its kind the run skips it and says so.

Single-thread cases are timeit-style loops generated from a statement written
as users write it (`lock.acquire()` on a local variable, no pre-bound methods).
The statement is repeated UNROLL times per iteration so the loop itself adds
well under a nanosecond per operation.  Multi-thread cases time from the moment
all their threads are released together until the last one ends.
"""

from __future__ import annotations

import functools
import itertools
import os
import textwrap
import threading
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

UNROLL = 10
QUEUE_MAXSIZE = 100
THREAD_TIMEOUT_S = 120.0   # longer than any sample: a worker still running is hung

# measure(constructor, size) -> (elapsed ns, operations done)
Measure = Callable[[Callable, int], Tuple[int, int]]


@dataclass(frozen=True)
class Case:
    name: str          # stable id: JSON keys, --only
    title: str         # shown in the table; says what one operation is
    kind: str          # the primitive needed, by its threading name
    measure: Measure
    code: str          # what is timed, shown by --list and stored in the JSON
    uncontended: bool  # a single-thread call that never blocks: the floor applies
    stdlib_only_ok: bool = False   # worth running even if fastsync can't take part yet
    handoffs: int = 0  # thread-to-thread hand-offs per operation: the native floor applies
    min_size: int = 1  # the smallest size calibration may choose
    placement: Optional[str] = None   # SPREAD or SHARED: threads pinned; None: the scheduler's choice


class NativeHandoffs:
    """The floor of a hand-off case, given to measure() as its constructor:
    run(n) times n hand-offs between two C threads waiting in fastsync's wait
    layer (spinning first, as fastsync's threads do), no Python and no GIL --
    what the hand-off itself takes."""

    def __init__(self, run: Callable[[int], int]) -> None:
        self.run = run


# ---------------------------------------------------------------------------
# Single-thread loops

def loop_case(name: str, title: str, kind: str, statement: str,
              prepare: Optional[Callable] = None) -> Case:
    """A case timing `statement` on a fresh object, `prepare`d first."""
    var = kind.lower()
    body = textwrap.indent("\n".join([statement] * UNROLL), " " * 8)
    source = (
        f"def timed_loop({var}, repeats, clock):\n"
        f"    start = clock()\n"
        f"    for _ in repeats:\n"
        f"{body}\n"
        f"    return clock() - start\n"
    )
    # One compiled loop per implementation: CPython 3.11+ specializes each
    # call site for the types it sees, so a loop shared by the implementations
    # would keep de-specializing as they alternate and time that churn instead.
    loops: Dict[Callable, Callable] = {}

    def measure(constructor: Callable, size: int) -> Tuple[int, int]:
        timed_loop = loops.get(constructor)
        if timed_loop is None:
            namespace: dict = {}
            exec(compile(source, f"<bench case {name}>", "exec"), namespace)
            timed_loop = loops[constructor] = namespace["timed_loop"]
        obj = constructor()
        if prepare is not None:
            prepare(obj)
        elapsed = timed_loop(obj, itertools.repeat(None, size), time.perf_counter_ns)
        return elapsed, size * UNROLL

    return Case(name, title, kind, measure, code=statement, uncontended=True)


def _hold(lock) -> None:
    lock.acquire()


def _set(event) -> None:
    event.set()


# ---------------------------------------------------------------------------
# Several threads

# Where a hand-off case's threads run.  Left to the scheduler, two threads
# that hand off back and forth share a CPU at some times and not at others,
# and a hand-off costs very different amounts in the two: switching to the
# other thread on this CPU, or waking it on another CPU that went idle (and
# that a virtual machine may have halted).  A row the scheduler places would
# swing between the two from run to run, so each hand-off case also has a row
# pinned each way.
SPREAD = "spread"   # each thread on a CPU of its own
SHARED = "shared"   # every thread on the same CPU
# The hand-off users write most: the main thread and a worker, placed by the
# scheduler.  The main thread is the one that runs signal handlers, and
# waits there are built differently (fastsync's _waiting.pxi).
MAIN = "main"       # the first side in the calling (main) thread, not pinned
PINNED = (SPREAD, SHARED)


def placement_unavailable() -> Optional[str]:
    """Why threads can't be pinned here, or None if they can."""
    if not hasattr(os, "sched_setaffinity"):
        return "this platform can't pin a thread to a CPU"
    if len(os.sched_getaffinity(0)) < 2:
        return "fewer than 2 CPUs are usable"
    return None


def _cpus_for(placement: Optional[str], workers: int) -> List[Optional[int]]:
    if placement is None or placement == MAIN:
        return [None] * workers
    cpus = sorted(os.sched_getaffinity(0))
    if placement == SHARED:
        return [cpus[0]] * workers
    return [cpus[i % len(cpus)] for i in range(workers)]


def run_threads(*workers: Callable[[], None], placement: Optional[str] = None) -> int:
    """Run each worker in its own thread, released together; ns until all end."""
    start = threading.Barrier(len(workers) + 1)
    failures: list = []

    def run(work: Callable[[], None], cpu: Optional[int]) -> None:
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})   # 0: the calling thread, on Linux
        start.wait()
        try:
            work()
        except BaseException as error:   # reported by the main thread
            failures.append(error)

    in_caller = None
    if placement == MAIN:
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("a main-thread row must be run from the main thread")
        in_caller, workers = workers[0], workers[1:]
        start = threading.Barrier(len(workers) + 1)
    threads = [threading.Thread(target=run, args=(work, cpu), daemon=True)
               for work, cpu in zip(workers, _cpus_for(placement, len(workers)), strict=True)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter_ns()
    if in_caller is not None:
        try:
            in_caller()
        except BaseException as error:
            failures.append(error)
    deadline = time.monotonic() + THREAD_TIMEOUT_S
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            raise RuntimeError(f"a worker thread still runs after {THREAD_TIMEOUT_S:.0f} s: hung?")
    elapsed = time.perf_counter_ns() - began
    if failures:
        raise failures[0]
    return elapsed


def event_ping_pong(Event: Callable, size: int,
                    placement: Optional[str] = None) -> Tuple[int, int]:
    ping, pong = Event(), Event()

    def serve() -> None:
        for _ in range(size):
            ping.wait()
            ping.clear()
            pong.set()

    def play() -> None:
        for _ in range(size):
            ping.set()
            pong.wait()
            pong.clear()

    return run_threads(serve, play, placement=placement), size


# Lock contention needs each thread's loop to outlast the GIL's switch interval
# (5 ms) even uncontended: a thread that finishes its loop within one slice
# never meets the others at the lock.  Calibration from contended runs could
# pick such a size (3.11, threading, 4 threads: 36k iterations, 3.8 ms each,
# measured 105 ns per acquire instead of about 1,100).  150k iterations take
# 9-16 ms uncontended here.
CONTENTION_MIN_SIZE = 150_000


def lock_contention(threads: int) -> Measure:
    def measure(Lock: Callable, size: int) -> Tuple[int, int]:
        lock = Lock()
        counter = [0]

        def work() -> None:
            for _ in range(size):
                lock.acquire()
                counter[0] += 1
                lock.release()

        elapsed = run_threads(*[work] * threads)
        if counter[0] != threads * size:
            raise AssertionError(f"lost updates ({counter[0]} of {threads * size}): "
                                 "the lock let two threads in")
        return elapsed, threads * size

    return measure


# What readers do inside the lock: a little work on the shared data.
READ_MOSTLY_DATA = 64


def read_mostly(threads: int, write_every: int) -> Measure:
    """`threads` threads, each taking the reader side to sum a shared list
    and, one time in `write_every`, the writer side to change it."""
    def measure(RWLock: Callable, size: int) -> Tuple[int, int]:
        rw = RWLock()
        data = list(range(READ_MOSTLY_DATA))
        writes = [0]

        def work(offset: int) -> Callable[[], None]:
            def run() -> None:
                reader, writer = rw.reader, rw.writer
                for i in range(size):
                    if (i + offset) % write_every == 0:
                        with writer:
                            data[i % READ_MOSTLY_DATA] = data[(i + 1) % READ_MOSTLY_DATA]
                            writes[0] += 1
                    else:
                        with reader:
                            sum(data)
            return run

        elapsed = run_threads(*[work(t) for t in range(threads)])
        expected = sum(1 for t in range(threads) for i in range(size) if (i + t) % write_every == 0)
        if writes[0] != expected:
            raise AssertionError(f"lost writes ({writes[0]} of {expected}): two writers were let in")
        return elapsed, threads * size

    return measure


def queue_producer_consumer(Queue: Callable, size: int) -> Tuple[int, int]:
    items = Queue(QUEUE_MAXSIZE)

    def produce() -> None:
        for i in range(size):
            items.put(i)

    def consume() -> None:
        for _ in range(size):
            items.get()

    return run_threads(produce, consume), size


def condition_ping_pong(Condition: Callable, size: int,
                        placement: Optional[str] = None) -> Tuple[int, int]:
    condition = Condition()
    turn = [0]

    def player(me: int) -> Callable[[], None]:
        def play() -> None:
            for _ in range(size):
                with condition:
                    while turn[0] != me:
                        condition.wait()
                    turn[0] = 1 - me
                    condition.notify()
        return play

    return run_threads(player(0), player(1), placement=placement), size


def barrier_rounds(Barrier: Callable, size: int,
                   placement: Optional[str] = None) -> Tuple[int, int]:
    barrier = Barrier(2)

    def work() -> None:
        for _ in range(size):
            barrier.wait()

    return run_threads(work, work, placement=placement), size


def thread_case(name: str, title: str, kind: str, measure: Measure, code: str,
                stdlib_only_ok: bool = False, handoffs: int = 0, min_size: int = 1,
                placement: Optional[str] = None) -> Case:
    if handoffs and placement is None:   # the native floor's threads are not pinned
        threaded = measure

        def measure(constructor: Callable, size: int) -> Tuple[int, int]:
            if isinstance(constructor, NativeHandoffs):
                return constructor.run(size * handoffs), size
            return threaded(constructor, size)

    return Case(name, title, kind, measure, code=code, uncontended=False,
                stdlib_only_ok=stdlib_only_ok, handoffs=handoffs, min_size=min_size,
                placement=placement)


# Suffixes of the pinned rows' ids, and what their titles say.
PLACED_ROWS = {SPREAD: ("2cpus", "2 threads on 2 CPUs"), SHARED: ("1cpu", "2 threads on 1 CPU"),
               MAIN: ("main", "main thread and a worker")}


def handoff_cases(name: str, title: str, kind: str, measure: Callable, code: str,
                  handoffs: int) -> List[Case]:
    """A hand-off case as the scheduler places it, then pinned each way, then
    with the main thread as one side (`title` has a {threads} for where the
    threads are)."""
    cases = [thread_case(name, title.format(threads="2 threads"), kind, measure, code,
                         handoffs=handoffs)]
    for placement, (suffix, threads) in PLACED_ROWS.items():
        cases.append(thread_case(f"{name}.{suffix}", title.format(threads=threads), kind,
                                 functools.partial(measure, placement=placement), code,
                                 handoffs=handoffs, placement=placement))
    return cases


# ---------------------------------------------------------------------------
# The registry, in table order

CASES = [
    loop_case("lock.with", "Lock: with lock", "Lock", "with lock:\n    pass"),
    loop_case("lock.acquire_release", "Lock: acquire()+release()", "Lock",
              "lock.acquire()\nlock.release()"),
    loop_case("lock.try_held", "Lock: acquire(False) on a held lock", "Lock",
              "lock.acquire(False)", prepare=_hold),
    loop_case("rlock.with_nested", "RLock: nested with (2 levels)", "RLock",
              "with rlock:\n    with rlock:\n        pass"),
    loop_case("rlock.acquire_release", "RLock: acquire()+release()", "RLock",
              "rlock.acquire()\nrlock.release()"),
    loop_case("event.is_set", "Event: is_set()", "Event", "event.is_set()"),
    loop_case("event.set_clear", "Event: set()+clear()", "Event", "event.set()\nevent.clear()"),
    loop_case("event.wait_set", "Event: wait() on a set event", "Event", "event.wait()",
              prepare=_set),
    loop_case("event.wait0_clear", "Event: wait(0) on a clear event", "Event", "event.wait(0)"),
    loop_case("semaphore.acquire_release", "Semaphore: acquire()+release()", "Semaphore",
              "semaphore.acquire()\nsemaphore.release()"),
    loop_case("boundedsemaphore.acquire_release", "BoundedSemaphore: acquire()+release()",
              "BoundedSemaphore", "boundedsemaphore.acquire()\nboundedsemaphore.release()"),
    loop_case("condition.notify", "Condition: with cond: notify() (no waiter)", "Condition",
              "with condition:\n    condition.notify()"),
    *handoff_cases("event.ping_pong", "Event: ping-pong, {threads} (round trip)", "Event",
                   event_ping_pong,
                   "A: ping.set(); pong.wait(); pong.clear()  B: ping.wait(); ping.clear(); pong.set()",
                   handoffs=2),
    thread_case("lock.contended_2", "Lock: 2 threads contending (per acquire)", "Lock",
                lock_contention(2),
                "each of 2 threads: lock.acquire(); counter[0] += 1; lock.release()",
                min_size=CONTENTION_MIN_SIZE),
    thread_case("lock.contended_4", "Lock: 4 threads contending (per acquire)", "Lock",
                lock_contention(4),
                "each of 4 threads: lock.acquire(); counter[0] += 1; lock.release()",
                min_size=CONTENTION_MIN_SIZE),
    loop_case("rwlock.read", "RWLock: with rwlock.reader", "RWLock",
              "with rwlock.reader:\n    pass"),
    loop_case("rwlock.write", "RWLock: with rwlock.writer", "RWLock",
              "with rwlock.writer:\n    pass"),
    # As many threads as a small machine has cores, then twice as many: with
    # a GIL the two differ most (see docs/benchmarks.md).
    *[thread_case(f"rwlock.read_mostly_{threads}",
                  f"RWLock: {threads} threads, 95% reads (per operation)", "RWLock",
                  read_mostly(threads, 20),
                  f"each of {threads} threads: with rwlock.reader: sum(data)  (64 ints); "
                  "1 in 20: with rwlock.writer: data[i] = ...",
                  min_size=20_000)
      for threads in (2, 4)],
    thread_case("queue.producer_consumer", "queue.Queue: producer -> consumer (per item)",
                "Queue", queue_producer_consumer,
                f"Queue({QUEUE_MAXSIZE}); one thread put()s, another get()s",
                stdlib_only_ok=True),
    *handoff_cases("condition.ping_pong", "Condition: ping-pong, {threads} (round trip)",
                   "Condition", condition_ping_pong,
                   "2 threads take turns: with cond: wait() for my turn; pass it; notify()",
                   handoffs=2),
    # The second to arrive wakes the first, then arrives first.
    *handoff_cases("barrier.rounds", "Barrier: {threads} (per round)", "Barrier", barrier_rounds,
                   "Barrier(2); both threads call wait() in a loop", handoffs=1),
]
