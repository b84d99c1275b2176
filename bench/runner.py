"""How samples are taken: calibrated, interleaved, repeated; the median counts.

For each case every implementation first gets a sample size that makes one
sample last about the target time (this also warms the interpreter's
specialisations up).  Then, round after round, each implementation takes one
sample, in an order rotated every round, so slow drifts of the machine (clock
boost, other load) spread over all of them alike.  The garbage collector is off
while a sample runs.
"""

from __future__ import annotations

import gc
import statistics
import traceback
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

from .cases import Case
from .implementations import BASELINE, FASTSYNC, FLOOR, Implementation, why_missing


@dataclass(frozen=True)
class Settings:
    repeats: int                 # samples per implementation and case
    sample_ns: int               # target length of a single-thread sample
    thread_sample_ns: int        # target length of a multi-thread sample

    def target_ns(self, case: Case) -> int:
        return self.sample_ns if case.uncontended else self.thread_sample_ns


FULL = Settings(repeats=21, sample_ns=10_000_000, thread_sample_ns=100_000_000)
QUICK = Settings(repeats=3, sample_ns=2_000_000, thread_sample_ns=20_000_000)


@dataclass
class Measurement:
    size: int = 0                                    # case size per sample
    ops: int = 0                                     # operations per sample
    ns_per_op: List[float] = field(default_factory=list)
    error: Optional[str] = None

    @property
    def median(self) -> float:
        return statistics.median(self.ns_per_op)

    @property
    def spread(self) -> float:
        """Interquartile range / median of the samples."""
        if len(self.ns_per_op) < 2:
            return 0.0
        low, _, high = statistics.quantiles(self.ns_per_op, n=4, method="inclusive")
        return (high - low) / self.median


@dataclass
class CaseResult:
    case: Case
    skipped: Optional[str] = None                        # why the case didn't run
    missing: Optional[str] = None                        # why fastsync has no row
    measurements: Dict[str, Measurement] = field(default_factory=dict)

    def median(self, name: str) -> Optional[float]:
        """Median ns/op of an implementation, None if it didn't run or failed."""
        found = self.measurements.get(name)
        if found is None or found.error or not found.ns_per_op:
            return None
        return found.median

    def speedup(self, name: str) -> Optional[float]:
        """threading's time / this implementation's time."""
        mine, base = self.median(name), self.median(BASELINE)
        return None if mine is None or base is None else base / mine

    def floor_ratio(self, name: str) -> Optional[float]:
        """This implementation's time / the floor's time."""
        mine, floor = self.median(name), self.median(FLOOR)
        return None if mine is None or floor is None else mine / floor


Progress = Callable[[int, int, str, str], None]   # (samples done, in all, case title, detail)


def plan(cases: Sequence[Case], implementations: Sequence[Implementation]) -> List[CaseResult]:
    """A result per case, with the skipped ones already marked."""
    results = []
    for case in cases:
        result = CaseResult(case)
        if not any(_takes_part(i, case) for i in implementations if i.name in FASTSYNC):
            result.missing = why_missing(case.kind)
            if not case.stdlib_only_ok:
                result.skipped = result.missing
        results.append(result)
    return results


def run(results: Sequence[CaseResult], implementations: Sequence[Implementation],
        settings: Settings, progress: Progress) -> None:
    """Fill in the measurements of every case not skipped."""
    runnable = [(r, [i for i in implementations if _takes_part(i, r.case)])
                for r in results if r.skipped is None]
    total = settings.repeats * sum(len(taking_part) for _, taking_part in runnable)
    done = 0
    for result, taking_part in runnable:
        case = result.case
        progress(done, total, case.title, "calibrating")
        for impl in taking_part:
            result.measurements[impl.name] = _calibrated(case, impl, settings.target_ns(case))
        for round_no in range(settings.repeats):
            shift = round_no % max(1, len(taking_part))
            for impl in taking_part[shift:] + taking_part[:shift]:
                measurement = result.measurements[impl.name]
                if not measurement.error:   # after a failure, don't try again
                    progress(done, total, case.title,
                             f"{impl.label}, round {round_no + 1}/{settings.repeats}")
                    _add_sample(case, impl, measurement)
                done += 1
    progress(total, total, "", "done")


def _takes_part(impl: Implementation, case: Case) -> bool:
    return impl.constructor_for(case) is not None


def _timed(case: Case, impl: Implementation, size: int):
    constructor = impl.constructor_for(case)
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return case.measure(constructor, size)
    finally:
        if gc_was_enabled:
            gc.enable()


def _calibrated(case: Case, impl: Implementation, target_ns: int) -> Measurement:
    """An empty Measurement whose size makes a sample last about target_ns."""
    size = 1
    try:
        while _timed(case, impl, size)[0] < target_ns // 20:
            size *= 10
        # The quickest of a few runs: one stall (a thread waiting out the GIL's
        # switch interval) must not shrink every sample to a stall-sized one.
        elapsed = min(_timed(case, impl, size)[0] for _ in range(3))
        size = max(1, round(size * target_ns / elapsed))
        _, ops = _timed(case, impl, size)   # one more run at the final size, as warm-up
    except Exception:
        return Measurement(error=_describe_error())
    return Measurement(size=size, ops=ops)


def _add_sample(case: Case, impl: Implementation, measurement: Measurement) -> None:
    try:
        elapsed, ops = _timed(case, impl, measurement.size)
    except Exception:
        measurement.error = _describe_error()
        return
    measurement.ns_per_op.append(elapsed / ops)


def _describe_error() -> str:
    return traceback.format_exc(limit=-3).strip()
