"""Fairness: does every thread that contends a lock get it, and how long can
one thread be kept waiting?

Each scenario runs N threads for a fixed time, each in a loop taking the lock
and doing a little work inside it, with or without releasing the GIL there
(`time.sleep(0)`, as I/O or logging would).  For every thread it records how
many times it took the lock and its longest wait for it (from the call to
acquire until it returned).  A thread that never got the lock reports the
whole run as its wait.

    python bench/run.py --fairness [--fairness-seconds S]

Printed per scenario and implementation: the acquisition counts (lowest,
highest) and the longest wait of any thread, side by side.  Each scenario
runs the implementations one after another, in the same process.
"""

from __future__ import annotations

import importlib
import sys
import threading
import time
from typing import Callable, List, Sequence, Tuple

from .implementations import fastsync_backends

THREAD_COUNTS = (2, 4, 64)

Result = Tuple[List[int], List[float]]   # acquisitions and longest wait (s) per thread


def contend(make_lock: Callable, threads: int, seconds: float, release_gil: bool) -> Result:
    """Runs the scenario once; returns each thread's count and longest wait."""
    lock = make_lock()
    counts = [0] * threads
    longest = [0.0] * threads
    start = threading.Event()
    stop = threading.Event()
    clock = time.perf_counter
    pause = time.sleep

    def work(me: int) -> None:
        start.wait()
        worst = 0.0
        n = 0
        while not stop.is_set():
            asked = clock()
            with lock:
                waited = clock() - asked
                n += 1
                if release_gil:
                    pause(0)
            if waited > worst:
                worst = waited
        counts[me] = n
        longest[me] = worst

    workers = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(threads)]
    for w in workers:
        w.start()
    began = clock()
    start.set()
    time.sleep(seconds)
    stop.set()
    for w in workers:
        w.join(seconds + 60)
    ran = clock() - began
    for i, n in enumerate(counts):
        if n == 0:
            longest[i] = ran
    return counts, longest


def constructors() -> List[Tuple[str, Callable]]:
    found = [("threading Lock", threading.Lock), ("threading RLock", threading.RLock)]
    for name, module_name in fastsync_backends().items():
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            print(f"# fastsync {name}: not available ({error})")
            continue
        found.append((f"fastsync {name} Lock", module.Lock))
        found.append((f"fastsync {name} RLock", module.RLock))
    return found


def run(seconds: float, thread_counts: Sequence[int] = THREAD_COUNTS) -> None:
    impls = constructors()
    print(f"Fairness: Python {sys.version.split()[0]}, {seconds:g} s per run; per thread, "
          "acquisitions and longest wait")
    print(f"{'scenario':<28} {'implementation':<24} {'fewest':>8} {'most':>8} {'longest wait':>13}")
    for threads in thread_counts:
        for release_gil in (False, True):
            scenario = f"{threads} threads" + (", sleep(0) inside" if release_gil else "")
            for label, make in impls:
                counts, longest = contend(make, threads, seconds, release_gil)
                print(f"{scenario:<28} {label:<24} {min(counts):>8} {max(counts):>8} "
                      f"{max(longest) * 1e3:>10.1f} ms", flush=True)
