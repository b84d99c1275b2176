"""How samples are taken: calibrated, interleaved, repeated; the median counts.

For each case every implementation first gets a sample size that makes one
sample last about the target time (this also warms the interpreter's
specialisations up).  Then, round after round, each implementation takes one
sample, in an order rotated every round, so slow drifts of the machine (clock
boost, other load) spread over all of them alike.  The garbage collector is off
while a sample runs.

Single-thread cases are timed in several worker processes, one after another,
and the median over the processes counts.  A call of 10-30 ns can take up to
1.5x longer in one process than in the next, depending only on where that
process's code, stack and objects landed (address randomisation); measured for
an empty method as much as for fastsync's.  One process is one draw of that
lottery, and the ratio of two implementations in it can be off by the same
amount in either direction.
"""

from __future__ import annotations

import gc
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from .cases import PINNED, Case, placement_unavailable
from .implementations import BASELINE, FLOOR, Implementation, fastsync_backends, why_missing


@dataclass(frozen=True)
class Settings:
    repeats: int                 # samples per implementation and case
    sample_ns: int               # target length of a single-thread sample
    thread_sample_ns: int        # target length of a multi-thread sample
    processes: int = 1           # worker processes sharing a single-thread case's samples

    def target_ns(self, case: Case) -> int:
        return self.sample_ns if case.uncontended else self.thread_sample_ns

    @property
    def samples_per_process(self) -> int:
        return math.ceil(self.repeats / self.processes)

    def samples(self, case: Case) -> int:
        """Samples per implementation that `case` gets in all."""
        if case.uncontended and self.processes > 1:
            return self.samples_per_process * self.processes
        return self.repeats


FULL = Settings(repeats=21, sample_ns=10_000_000, thread_sample_ns=100_000_000, processes=7)
QUICK = Settings(repeats=3, sample_ns=2_000_000, thread_sample_ns=20_000_000)


@dataclass
class Measurement:
    size: int = 0                                    # case size per sample
    ops: int = 0                                     # operations per sample
    ns_per_op: List[float] = field(default_factory=list)
    # CPU time of the whole process (every thread) per operation, for the
    # cases timed in this process: what a hand-off costs in CPU, spinning
    # included, which wall time hides when the CPUs are idle.
    cpu_ns_per_op: List[float] = field(default_factory=list)
    error: Optional[str] = None
    # One median per worker process, when the samples came from several.
    process_medians: List[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        """The median over the worker processes if there were any, else over the samples."""
        return statistics.median(self.process_medians or self.ns_per_op)

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

    def cpu_median(self, name: str) -> Optional[float]:
        """Median CPU ns/op of an implementation, None if not measured."""
        found = self.measurements.get(name)
        if found is None or found.error or not found.cpu_ns_per_op:
            return None
        return statistics.median(found.cpu_ns_per_op)

    def cpu_ratio(self, name: str) -> Optional[float]:
        """This implementation's CPU time per operation / threading's."""
        mine, base = self.cpu_median(name), self.cpu_median(BASELINE)
        return None if mine is None or base is None else mine / base

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
    backends = fastsync_backends()
    for case in cases:
        result = CaseResult(case)
        if case.placement in PINNED and placement_unavailable() is not None:
            result.skipped = f"not pinned: {placement_unavailable()}"
        elif not any(_takes_part(i, case) for i in implementations if i.name in backends):
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
    total = sum(settings.samples(r.case) * len(taking_part) for r, taking_part in runnable)
    done = 0

    def step(title: str, detail: str) -> None:
        nonlocal done
        progress(done, total, title, detail)
        done += 1

    if settings.processes > 1:
        in_workers = [(r, t) for r, t in runnable if r.case.uncontended]
        runnable = [(r, t) for r, t in runnable if not r.case.uncontended]
        if in_workers:
            _run_in_workers(in_workers, settings, step)
    for result, taking_part in runnable:
        progress(done, total, result.case.title, "calibrating")
        _run_case(result, taking_part, settings, settings.repeats,
                  lambda impl, round_no, title=result.case.title: step(
                      title, f"{impl.label}, round {round_no + 1}/{settings.repeats}"))
    progress(total, total, "", "done")


# Called before each sample with the implementation and the round (from 0).
BeforeSample = Callable[[Implementation, int], None]


def _run_case(result: CaseResult, taking_part: Sequence[Implementation], settings: Settings,
              repeats: int, before_sample: BeforeSample) -> None:
    """Calibrate, then take `repeats` interleaved samples of each implementation."""
    case = result.case
    for impl in taking_part:
        result.measurements[impl.name] = _calibrated(case, impl, settings.target_ns(case))
    for round_no in range(repeats):
        shift = round_no % max(1, len(taking_part))
        for impl in taking_part[shift:] + taking_part[:shift]:
            before_sample(impl, round_no)
            measurement = result.measurements[impl.name]
            if not measurement.error:   # after a failure, don't try again
                _add_sample(case, impl, measurement)


# ---------------------------------------------------------------------------
# Worker processes for the single-thread cases

WORKER_FLAG = "--worker"   # bench/run.py's hidden option that makes it a worker


def _run_in_workers(runnable: Sequence[Tuple[CaseResult, Sequence[Implementation]]],
                    settings: Settings, step: Callable[[str, str], None]) -> None:
    """Runs the cases in settings.processes workers, one after the other.  A
    worker reports on stdout as JSON lines: one before each sample (for the
    progress indicator) and, after each case, one per implementation."""
    by_name = {r.case.name: (r, {i.name: i for i in t}) for r, t in runnable}
    for result, taking_part in runnable:
        for impl in taking_part:
            result.measurements[impl.name] = Measurement()
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "run.py")
    per_process = settings.samples_per_process
    command = [sys.executable, script, WORKER_FLAG, "--repeat", str(per_process),
               "--sample-ns", str(settings.sample_ns)]
    command += [arg for name in by_name for arg in ("--case", name)]
    for process_no in range(1, settings.processes + 1):
        # stderr goes to a file: a pipe read only at the end could fill up and
        # stall a worker that has much to say (warnings, a traceback).
        with tempfile.TemporaryFile("w+") as errors, \
                subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors,
                                 text=True) as worker:
            assert worker.stdout is not None
            for line in worker.stdout:
                report = json.loads(line)
                result, impls = by_name[report["case"]]
                if "round" in report:
                    step(f"{result.case.title} (process {process_no}/{settings.processes})",
                         f"{impls[report['impl']].label}, round {report['round'] + 1}/{per_process}")
                    continue
                measurement = result.measurements[report["impl"]]
                if report["error"]:
                    measurement.error = measurement.error or report["error"]
                elif report["ns_per_op"]:
                    measurement.size, measurement.ops = report["size"], report["ops"]
                    measurement.ns_per_op += report["ns_per_op"]
                    measurement.process_medians.append(statistics.median(report["ns_per_op"]))
            worker.wait()
            errors.seek(0)
            if worker.returncode != 0:
                why = f"the worker process exited with {worker.returncode}:\n{errors.read().strip()}"
                for result, _ in runnable:
                    for measurement in result.measurements.values():
                        measurement.error = measurement.error or why
                return


def worker_main(cases: Sequence[Case], implementations: Sequence[Implementation],
                settings: Settings) -> int:
    """The worker's side of _run_in_workers."""
    for result in plan(cases, implementations):
        if result.skipped is not None:
            continue
        name = result.case.name
        _run_case(result, [i for i in implementations if _takes_part(i, result.case)],
                  settings, settings.repeats,
                  lambda impl, round_no, name=name: _send(
                      {"case": name, "impl": impl.name, "round": round_no}))
        for impl_name, m in result.measurements.items():
            _send({"case": name, "impl": impl_name, "error": m.error, "size": m.size,
                   "ops": m.ops, "ns_per_op": m.ns_per_op})
    return 0


def _send(report: Dict) -> None:
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.flush()


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
        size = max(case.min_size, round(size * target_ns / elapsed))
        _, ops = _timed(case, impl, size)   # one more run at the final size, as warm-up
    except Exception:
        return Measurement(error=_describe_error())
    return Measurement(size=size, ops=ops)


def _add_sample(case: Case, impl: Implementation, measurement: Measurement) -> None:
    cpu_before = time.process_time_ns()
    try:
        elapsed, ops = _timed(case, impl, measurement.size)
    except Exception:
        measurement.error = _describe_error()
        return
    cpu = time.process_time_ns() - cpu_before
    measurement.ns_per_op.append(elapsed / ops)
    measurement.cpu_ns_per_op.append(cpu / ops)


def _describe_error() -> str:
    return traceback.format_exc(limit=-3).strip()
