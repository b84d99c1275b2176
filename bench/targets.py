"""The project's speed targets for the compiled backend, checked against this
run (shown with --targets): one set for the basic primitives (Lock, RLock,
Event), one for those built on waking threads (Condition, Semaphore, Barrier,
queue.Queue); on a free-threaded build, one set of its own in their place."""

from __future__ import annotations

import sys
import sysconfig
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

from .cases import MAIN, PLACED_ROWS, SPREAD
from .implementations import BASELINE, FLOOR
from .runner import CaseResult

FLOOR_LIMIT = 1.15          # every uncontended call within this factor of the floor
FALLBACK_LOCK_LIMIT = 1.5   # the fallback's Lock/RLock within this factor of threading


@dataclass(frozen=True)
class Check:
    target: str
    measured: Optional[float]   # None: not measured in this run
    met: Optional[bool]


# What spinning buys a hand-off on a quiet machine, held to on 3.11, the
# optimized build measured here where it matters most.  Checked on the rows
# with the two threads on CPUs of their own (cases.SPREAD), where a hand-off
# would otherwise wake a thread on an idle CPU: the rows the scheduler places
# swing with where it happens to put the threads, and with both threads on
# one CPU there is no partner running to spin for.
SPUN_HANDOFF_SPEEDUPS = {"event.ping_pong": 20, "condition.ping_pong": 10, "barrier.rounds": 10}
SPREAD_SUFFIX = "." + PLACED_ROWS[SPREAD][0]
# With the main thread as one side, placed by the scheduler: the hand-off a
# user writes most.  The main thread spins too where it can watch for signals
# (fastsync's _waiting.pxi), so on 3.11 these rows are held to the same kind
# of speed-up; the scheduler's placement costs them some of it.
MAIN_HANDOFF_SPEEDUPS = {"event.ping_pong": 10, "condition.ping_pong": 5, "barrier.rounds": 5}
MAIN_SUFFIX = "." + PLACED_ROWS[MAIN][0]


def _spun(case: str, elsewhere: float, version) -> Tuple[str, float]:
    limit = SPUN_HANDOFF_SPEEDUPS[case] if version[:2] == (3, 11) else elsewhere
    return case + SPREAD_SUFFIX, limit


def _with_main(case: str, elsewhere: float, version) -> Tuple[str, float]:
    limit = MAIN_HANDOFF_SPEEDUPS[case] if version[:2] == (3, 11) else elsewhere
    return case + MAIN_SUFFIX, limit


# (case, speedup over threading that fastsync's compiled backend must reach)
def _basic_speedups(version) -> List[Tuple[str, float]]:
    with_limit = 1.8 if version < (3, 12) else 1.5
    return [
        ("lock.acquire_release", 2.5), ("lock.with", with_limit), ("rlock.acquire_release", 2.4),
        ("event.set_clear", 30), ("event.wait_set", 20), ("event.wait0_clear", 25),
        ("event.is_set", 2), ("lock.contended_2", 1.5), _spun("event.ping_pong", 1.15, version),
        _with_main("event.ping_pong", 1.15, version),
    ]


# For queue.Queue the compiled backend's row is the patched queue.
def _composite_speedups(version) -> List[Tuple[str, float]]:
    return [_spun("condition.ping_pong", 2, version), ("semaphore.acquire_release", 15),
            _spun("barrier.rounds", 2, version), ("queue.producer_consumer", 1.3),
            _with_main("condition.ping_pong", 2, version), _with_main("barrier.rounds", 2, version)]


# Never slower than threading, on a quiet machine; Lock and RLock, whose
# rows are a few nanoseconds either way on the newest Pythons, within noise.
NOT_SLOWER = 1.0
LOCK_NOT_SLOWER = 0.97

# With CPU-bound processes on every CPU (--busy): the hand-off and
# contention rows still at threading's speed, and a hand-off's CPU time
# (spinning included) at most this factor of threading's, pinned or not.
BUSY_SPEEDUP_CASES = ("event.ping_pong", "condition.ping_pong", "barrier.rounds",
                      "lock.contended_2", "lock.contended_4")
BUSY_CPU_LIMIT = 1.2


def check_basic(results: Sequence[CaseResult], version=sys.version_info) -> List[Check]:
    """Lock, RLock and Event: speedups, against fastrlock and the floor, and
    the fallback's cost."""
    by_name = {r.case.name: r for r in results}
    checks = [_speedup(by_name.get(name), name, limit) for name, limit in _basic_speedups(version)]
    ran = [r for r in results if not r.skipped]
    checks += [_target(r, r.case.name, "fastsync (cython) / fastrlock time",
                       ("cython", "fastrlock"),
                       lambda r: r.median("cython") / r.median("fastrlock"), at_most=1.0)
               for r in ran if r.case.kind == "RLock"]
    checks += [_target(r, r.case.name, "fastsync (cython) / floor", ("cython", FLOOR),
                       lambda r: r.floor_ratio("cython"), at_most=FLOOR_LIMIT)
               for r in ran if r.case.uncontended]
    checks += [_target(r, r.case.name, "fastsync (python) / threading time", ("python", BASELINE),
                       lambda r: 1 / r.speedup("python"),
                       at_most=FALLBACK_LOCK_LIMIT if r.case.kind in ("Lock", "RLock") else 1.0)
               for r in ran if r.case.kind in ("Lock", "RLock", "Event")]
    return checks


def check_composites(results: Sequence[CaseResult], version=sys.version_info) -> List[Check]:
    """Condition, Semaphore, Barrier and queue.Queue: speedups."""
    by_name = {r.case.name: r for r in results}
    return [_speedup(by_name.get(name), name, limit)
            for name, limit in _composite_speedups(version)]


def check_not_slower(results: Sequence[CaseResult]) -> List[Check]:
    """Every row that ran: the compiled backend at least threading's speed."""
    return [_speedup(r, r.case.name, LOCK_NOT_SLOWER if r.case.kind in ("Lock", "RLock")
                     else NOT_SLOWER)
            for r in results if not r.skipped]


def check_busy(results: Sequence[CaseResult]) -> List[Check]:
    """For a run with --busy: hand-off and contention speedups, and the CPU
    time of a hand-off against threading's."""
    by_name = {r.case.name: r for r in results}
    checks = [_speedup(by_name.get(name), name, NOT_SLOWER) for name in BUSY_SPEEDUP_CASES]
    checks += [_target(r, r.case.name, "fastsync (cython) CPU time / threading's",
                       ("cython", BASELINE), lambda r: r.cpu_ratio("cython"),
                       at_most=BUSY_CPU_LIMIT)
               for r in results if r.case.handoffs and not r.skipped]
    return checks


# A free-threaded build (3.13t and later), where threading's Event,
# Condition and Barrier are Python code that runs without a GIL: there the
# hand-offs must win by an order of magnitude, with the two threads on CPUs of
# their own or on one CPU (the rows the scheduler places swing between the
# two, and are held to "never slower"); contention must not lose; and a
# hand-off must cost no more CPU time than threading's, spinning included.
FREE_THREADED_HANDOFF_SPEEDUP = 10
FREE_THREADED_HANDOFF_CASES = ("event.ping_pong", "condition.ping_pong", "barrier.rounds")
FREE_THREADED_CONTENTION_CASES = ("lock.contended_2", "lock.contended_4")
FREE_THREADED_CPU_LIMIT = 1.0


def free_threaded_build() -> bool:
    """Whether this interpreter was built without the GIL."""
    return bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


def check_free_threaded(results: Sequence[CaseResult]) -> List[Check]:
    """For a free-threaded build: pinned hand-off speedups, contention, and
    the CPU time of a hand-off against threading's."""
    by_name = {r.case.name: r for r in results}
    pinned = [f"{case}.{suffix}" for case in FREE_THREADED_HANDOFF_CASES
              for suffix, _ in PLACED_ROWS.values()]
    checks = [_speedup(by_name.get(name), name, FREE_THREADED_HANDOFF_SPEEDUP) for name in pinned]
    checks += [_speedup(by_name.get(name), name, NOT_SLOWER)
               for name in FREE_THREADED_CONTENTION_CASES]
    checks += [_target(r, r.case.name, "fastsync (cython) CPU time / threading's",
                       ("cython", BASELINE), lambda r: r.cpu_ratio("cython"),
                       at_most=FREE_THREADED_CPU_LIMIT)
               for r in results if r.case.handoffs and not r.skipped]
    return checks


def _speedup(result: Optional[CaseResult], case: str, limit: float) -> Check:
    return _target(result, case, "fastsync (cython) speedup", ("cython", BASELINE),
                   lambda r: r.speedup("cython"), at_least=limit)


def format_checks(checks: Sequence[Check]) -> str:
    lines = []
    for c in checks:
        status = "n/a " if c.met is None else "met " if c.met else "MISS"
        value = "not measured" if c.measured is None else f"{c.measured:.3f}"
        lines.append(f"{status}  {c.target}: {value}")
    met = sum(c.met is True for c in checks)
    lines.append(f"{met} of {len(checks)} targets met")
    return "\n".join(lines)


def _target(result: Optional[CaseResult], case: str, what: str, needed: Sequence[str],
            value: Callable[[CaseResult], Optional[float]], at_least: Optional[float] = None,
            at_most: Optional[float] = None) -> Check:
    """`what` in `case` at least / at most a limit; unmeasured if an implementation is missing."""
    relation = f">= {at_least}" if at_least is not None else f"<= {at_most}"
    target = f"{case}: {what} {relation}"
    if result is None or any(result.median(name) is None for name in needed):
        return Check(target, None, None)
    measured = value(result)
    if measured is None:   # e.g. no CPU time for a case timed in worker processes
        return Check(target, None, None)
    met = measured >= at_least if at_least is not None else measured <= at_most
    return Check(target, measured, met)
