"""Command line: `python bench/run.py [--quick] [--json FILE] [--plot FILE.png] ...`"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import textwrap
from typing import List, Optional

from . import busy, environment, fairness, report, runner, targets
from .cases import CASES
from .implementations import PATCHED_VARIABLE, discover

DEBUG_VARIABLE = "FASTSYNC_DEBUG"   # read by fastsync at import (fastsync._env.DEBUG)

EXIT_FAILED_CASE = 1   # a measurement raised: fastsync (or the benchmark) is broken
EXIT_USAGE = 2


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python bench/run.py",
        description="Time fastsync's primitives against threading's, fastrlock's and the "
                    "floor (an empty compiled call) and print a table of ns/op and speedups.")
    parser.add_argument("--quick", action="store_true",
                        help="a short smoke run (a few seconds); its numbers are rough")
    parser.add_argument("--json", metavar="FILE", help="also write all results to FILE as JSON")
    parser.add_argument("--plot", metavar="FILE.png",
                        help="also draw the speedups as a bar chart (needs matplotlib)")
    parser.add_argument("--repeat", type=int, metavar="N",
                        help=f"samples per implementation and case (default: {runner.FULL.repeats}, "
                             f"quick: {runner.QUICK.repeats})")
    parser.add_argument("--processes", type=int, metavar="N",
                        help="worker processes that time the single-thread cases, one after "
                             "another; the median over them counts, so no single process's "
                             f"memory layout decides (default: {runner.FULL.processes}, "
                             f"quick: {runner.QUICK.processes}: in this process)")
    parser.add_argument("-k", "--only", action="append", metavar="TEXT",
                        help="run only the cases whose id or title contains TEXT (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--fairness", action="store_true",
                        help="instead of the speed table, run the fairness scenarios: threads "
                             "contending one lock, each one's acquisitions and longest wait")
    parser.add_argument("--fairness-seconds", type=float, default=2.0, metavar="S",
                        help="how long each fairness scenario runs (default: 2)")
    parser.add_argument("--busy", type=int, default=0, metavar="N",
                        help="keep N CPU-bound processes running during the run (a busy "
                             "machine), and stop them afterwards")
    parser.add_argument("--debug", metavar="WORDS",
                        help="run with fastsync.debug on, as FASTSYNC_DEBUG=WORDS would (e.g. "
                             "lock-order, or profile): the fastsync columns then show its cost "
                             "against threading, which it doesn't touch")
    parser.add_argument("--patched", action="store_true",
                        help="also time the classes fastsync.patch() installs in threading for "
                             "Event, Condition, Semaphore, BoundedSemaphore and Barrier")
    parser.add_argument("--targets", action="store_true",
                        help="also check the project's speed targets for the compiled backend "
                             "(with --busy, those for a busy machine; on a free-threaded "
                             "build, those for it)")
    # For the worker processes of the single-thread cases (see runner.py) only.
    parser.add_argument(runner.WORKER_FLAG, action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--case", action="append", default=[], help=argparse.SUPPRESS)
    parser.add_argument("--sample-ns", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeat is not None and args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.processes is not None and args.processes < 1:
        parser.error("--processes must be at least 1")
    if args.busy < 0:
        parser.error("--busy must not be negative")
    if args.debug is not None and args.targets:
        parser.error("--debug measures fastsync.debug's cost; the targets are for it off")
    return args


def worker(args: argparse.Namespace) -> int:
    """Time the cases named by --case and report to the parent (runner.worker_main)."""
    cases = [c for c in CASES if c.name in args.case]
    settings = runner.Settings(repeats=args.repeat, sample_ns=args.sample_ns,
                               thread_sample_ns=runner.FULL.thread_sample_ns)
    implementations, _ = discover()
    return runner.worker_main(cases, implementations, settings)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if args.debug is not None:
        # Before fastsync is imported here, and inherited by the workers.
        os.environ[DEBUG_VARIABLE] = args.debug
    if args.patched:
        os.environ[PATCHED_VARIABLE] = "1"   # for the workers too
    if args.worker:
        return worker(args)
    with busy.busy_processes(args.busy) as busy_pids:
        return run(args, busy_pids)


def run(args: argparse.Namespace, busy_pids: List[int]) -> int:
    busy_line = (f"{'Busy':<9} {len(busy_pids)} CPU-bound processes ran throughout "
                 f"(pids {', '.join(map(str, busy_pids))})") if busy_pids else None
    cases = [c for c in CASES
             if not args.only or any(t.lower() in f"{c.name} {c.title}".lower() for t in args.only)]
    if not cases:
        print(f"no case matches {args.only}; see --list", file=sys.stderr)
        return EXIT_USAGE
    if args.list:
        for case in cases:
            print(f"{case.name:<26} {case.title}")
            print(textwrap.indent(case.code, " " * 30))
        return 0
    try:
        import fastsync  # noqa: F401
    except ImportError as error:
        print(f"cannot import fastsync ({error}): install it (pip install .), or run with "
              "PYTHONPATH=src after building it in place", file=sys.stderr)
        return EXIT_USAGE
    if args.fairness:
        if busy_line:
            print(busy_line)
        fairness.run(args.fairness_seconds)
        return 0
    if args.plot:
        problem = report.check_plotting()
        if problem:   # say so now, not after the whole run
            print(problem, file=sys.stderr)
            return EXIT_USAGE

    settings = runner.QUICK if args.quick else runner.FULL
    if args.repeat:
        settings = dataclasses.replace(settings, repeats=args.repeat)
    if args.processes:
        settings = dataclasses.replace(settings, processes=args.processes)
    implementations, missing = discover()
    env = environment.collect()
    env["machine"]["busy_processes"] = len(busy_pids)
    print("fastsync benchmark" + (" (--quick: a smoke run, rough numbers)" if args.quick else ""))
    print(report.header(environment.describe(env), settings, implementations))
    if busy_line:
        print(busy_line)
    if os.environ.get(DEBUG_VARIABLE):
        print(f"{'Debug':<9} {DEBUG_VARIABLE}={os.environ[DEBUG_VARIABLE]}: fastsync.debug is on")
    warnings = [environment.build_warning(env)]
    if not busy_pids:   # a load of our own making is the point
        warnings.append(environment.busy_warning(env))
    for warning in filter(None, warnings):
        print(warning)
    sys.stdout.flush()

    results = runner.plan(cases, implementations)
    runner.run(results, implementations, settings, report.Progress())
    print()
    print(report.table(results, implementations, markdown=args.markdown))
    print()
    cpu = report.cpu_table(results, implementations, markdown=args.markdown)
    if cpu:
        print(cpu)
        print()
    print(report.notes(results, missing))
    if args.targets:
        if busy_pids:
            check_sets = [("Targets on a busy machine", targets.check_busy)]
        elif targets.free_threaded_build():
            check_sets = [("Targets on a free-threaded build", targets.check_free_threaded)]
        else:
            check_sets = [("Targets for Lock, RLock and Event", targets.check_basic),
                          ("Targets for Condition, Semaphore, Barrier and queue.Queue",
                           targets.check_composites)]
        if not busy_pids:
            check_sets.append(("Never slower than threading", targets.check_not_slower))
        for title, check in check_sets:
            print()
            print(f"{title} (compiled backend):")
            print(targets.format_checks(check(results)))
    if args.json:
        report.write_json(args.json, report.to_json(results, implementations, missing, env, settings))
        print(f"\nResults written to {args.json}")
    if args.plot:
        python = env["python"]
        report.plot(args.plot, results, implementations,
                    f"fastsync vs threading, {python['implementation']} {python['version']}")
        print(f"Chart written to {args.plot}")
    failed = any(m.error for r in results for m in r.measurements.values())
    return EXIT_FAILED_CASE if failed else 0
