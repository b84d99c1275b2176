"""The benchmark's smoke run (`python bench/run.py --quick`) works, and its
target checks judge the numbers they are given correctly.

The smoke run is a subprocess from the repository root, against the installed
fastsync, exactly as CI and the README run it.  Nothing here looks at timings.
"""

import dataclasses
import json
import os
import statistics
import subprocess
import signal
import sys
import threading
import time

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.timeout(120)
def test_fairness_run_prints_every_scenario():
    run = subprocess.run(
        [sys.executable, os.path.join(REPO_ROOT, "bench", "run.py"),
         "--fairness", "--fairness-seconds", "0.05"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=110,
    )
    assert run.returncode == 0, f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}"
    rows = [line for line in run.stdout.splitlines() if " threads" in line and " ms" in line]
    assert len(rows) >= 3 * 2 * 4, run.stdout   # thread counts x holds x locks
    assert any("sleep(0) inside" in row for row in rows), run.stdout
    for lock in ("threading Lock", "threading RLock", "fastsync python Lock", "fastsync python RLock"):
        assert any(lock in row for row in rows), (lock, run.stdout)


@pytest.mark.timeout(120)
def test_busy_run_names_its_load_and_stops_it():
    run = subprocess.run(
        [sys.executable, os.path.join(REPO_ROOT, "bench", "run.py"),
         "--fairness", "--fairness-seconds", "0.02", "--busy", "2"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=110,
    )
    assert run.returncode == 0, f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}"
    busy = [line for line in run.stdout.splitlines() if line.startswith("Busy")]
    assert len(busy) == 1 and "2 CPU-bound processes" in busy[0], run.stdout
    pids = [int(pid) for pid in busy[0].split("(pids ")[1].rstrip(")").split(", ")]
    assert len(pids) == 2
    for pid in pids:   # stopped and reaped by the benchmark before it exited
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


@pytest.mark.timeout(180)
def test_quick_run_prints_the_table_and_writes_json(tmp_path):
    script = os.path.join(REPO_ROOT, "bench", "run.py")
    assert os.path.isfile(script), f"bench/run.py not found next to tests/ in {REPO_ROOT}"
    out_file = tmp_path / "results.json"
    run = subprocess.run(
        [sys.executable, script, "--quick", "--json", str(out_file)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=170,
    )
    assert run.returncode == 0, f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}"

    assert "Python" in run.stdout and "Machine" in run.stdout and "fastsync" in run.stdout
    build = [line for line in run.stdout.splitlines() if line.startswith("Build")]
    assert len(build) == 1, run.stdout   # optimized or not: the ratios depend on it
    assert "speedup" in run.stdout and "threading" in run.stdout
    for title in ("Lock: acquire()+release()", "RLock: nested with (2 levels)",
                  "Event: set()+clear()", "Event: ping-pong, 2 threads (round trip)"):
        assert title in run.stdout
    assert "%]" in run.stderr   # the progress indicator

    data = json.loads(out_file.read_text(encoding="utf-8"))
    assert data["environment"]["python"]["version"]
    cases = {case["name"]: case for case in data["cases"]}
    assert "lock.acquire_release" in cases
    for case in cases.values():
        for name, result in case["results"].items():
            assert result["error"] is None, (case["name"], name, result["error"])
    lock = cases["lock.acquire_release"]["results"]
    assert {"threading", "python"} <= set(lock)
    assert len(lock["threading"]["ns_per_op_samples"]) == data["settings"]["repeats"]
    # Thread cases carry the process's CPU time per operation, shown in a table of its own.
    ping_pong = cases["event.ping_pong"]["results"]["threading"]
    assert len(ping_pong["cpu_ns_per_op_samples"]) == data["settings"]["repeats"]
    assert ping_pong["cpu_ns_per_op"] > 0
    assert "CPU ns/op" in run.stdout


@pytest.mark.timeout(120)
def test_single_thread_cases_run_in_worker_processes(tmp_path):
    """With --processes N each single-thread case is timed in N fresh processes
    and the median of their medians counts; thread cases stay in the parent."""
    script = os.path.join(REPO_ROOT, "bench", "run.py")
    out_file = tmp_path / "results.json"
    run = subprocess.run(
        [sys.executable, script, "--quick", "--processes", "2", "--repeat", "3",
         "-k", "Lock: acquire()+release()", "-k", "Lock: 2 threads", "--json", str(out_file)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=110,
    )
    assert run.returncode == 0, f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}"
    assert "(process 2/2)" in run.stderr
    assert "2 samples in each of 2 fresh processes" in run.stdout

    data = json.loads(out_file.read_text(encoding="utf-8"))
    assert data["settings"]["processes"] == 2 and data["settings"]["samples_per_process"] == 2
    cases = {case["name"]: case for case in data["cases"]}
    single = cases["lock.acquire_release"]["results"]
    assert {"threading", "python"} <= set(single)
    for name, result in single.items():
        assert result["error"] is None, (name, result["error"])
        assert len(result["ns_per_op_samples"]) == 4
        assert len(result["process_medians"]) == 2
        assert result["ns_per_op"] == pytest.approx(statistics.median(result["process_medians"]))
    threaded = cases["lock.contended_2"]["results"]["threading"]
    assert threaded["error"] is None
    assert len(threaded["ns_per_op_samples"]) == 3 and threaded["process_medians"] == []


@pytest.mark.timeout(120)
def test_debug_run_turns_fastsync_debug_on():
    """--debug profile: the header says so, and fastsync.debug's process-wide
    profile, which only FASTSYNC_DEBUG=profile turns on, prints at exit."""
    script = os.path.join(REPO_ROOT, "bench", "run.py")
    env = {k: v for k, v in os.environ.items() if k != "FASTSYNC_DEBUG"}
    run = subprocess.run(
        [sys.executable, script, "--quick", "--debug", "profile", "-k", "Lock: 2 threads"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=110, env=env,
    )
    assert run.returncode == 0, f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}"
    assert "Debug     FASTSYNC_DEBUG=profile" in run.stdout
    assert "total wait ms" in run.stderr, run.stderr


def bench_floor_module():
    """fastsync._bench_floor, the extension setup.py builds for the benchmark
    when FASTSYNC_BENCH_FLOOR=1 is set.  Missing, it fails the test."""
    try:
        from fastsync import _bench_floor
    except ImportError as error:
        pytest.fail(f"the benchmark's floor is not installed ({error}): install fastsync with "
                    "FASTSYNC_BENCH_FLOOR=1 set, as `make test` does")
    return _bench_floor


@pytest.mark.cython
@pytest.mark.bench_floor
@pytest.mark.timeout(60)
def test_native_handoff_floor():
    import fastsync._compiled as compiled

    floor = bench_floor_module()
    for spin_ns in (0, compiled._spin_ns()):
        for count in (1, 2, 101):
            elapsed = floor._native_handoffs(count, spin_ns)
            assert type(elapsed) is int and elapsed > 0
    for bad in (0, -1, 2**30):
        with pytest.raises(ValueError):
            floor._native_handoffs(bad, 0)
    for bad in (-1, 10**9 + 1):
        with pytest.raises(ValueError):
            floor._native_handoffs(1, bad)
    with pytest.raises(TypeError):
        floor._native_handoffs("10", 0)


@pytest.mark.cython
def test_users_extension_carries_no_floor():
    import fastsync._compiled as compiled

    for name in ("_CallFloor", "_SemaphoreCallFloor", "_native_handoffs"):
        assert not hasattr(compiled, name), name


@pytest.mark.cython
@pytest.mark.bench_floor
@pytest.mark.timeout(120)
def test_quick_run_times_the_floor(tmp_path):
    bench_floor_module()   # a clear failure if it is missing
    out_file = tmp_path / "results.json"
    run = subprocess.run(
        [sys.executable, os.path.join(REPO_ROOT, "bench", "run.py"), "--quick", "--json", str(out_file),
         "-k", "lock.acquire_release", "-k", "event.ping_pong", "-k", "lock.contended_2"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=110,
    )
    assert run.returncode == 0, f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}"
    assert "floor" in run.stdout and "Not compared: floor" not in run.stdout, run.stdout
    cases = {case["name"]: case["results"] for case in json.loads(out_file.read_text())["cases"]}
    assert cases["lock.acquire_release"]["floor"]["error"] is None
    # Hand-off cases get the native floor; other thread cases get none.
    assert cases["event.ping_pong"]["floor"]["error"] is None
    assert "floor" not in cases["lock.contended_2"]


def _bench_modules():
    """bench/ as the package `bench`, the way bench/run.py imports it."""
    sys.path.insert(0, REPO_ROOT)
    try:
        from bench import cases, runner, targets
    finally:
        sys.path.remove(REPO_ROOT)
    return cases, runner, targets


def _result(cases, runner, name, **medians):
    case = cases.Case(name, name, "Condition", measure=lambda cls, size: (0, 0), code="",
                      uncontended=False)
    return runner.CaseResult(case, measurements={
        impl: runner.Measurement(ns_per_op=[ns]) for impl, ns in medians.items()})


@pytest.mark.timeout(30)
def test_composite_targets_are_judged_against_threading():
    cases, runner, targets = _bench_modules()
    results = [
        # threading 60, fastsync 50: 1.2x; the floor plays no part in a speedup.
        _result(cases, runner, "condition.ping_pong.2cpus", threading=60.0, cython=50.0,
                floor=40.0),
        # The row the scheduler places is held only to "never slower" (below).
        _result(cases, runner, "condition.ping_pong", threading=60.0, cython=100.0),
        _result(cases, runner, "semaphore.acquire_release", threading=900.0, cython=30.0),
    ]
    checks = {c.target.split(":")[0]: c
              for c in targets.check_composites(results, version=(3, 13))}

    condition = checks["condition.ping_pong.2cpus"]
    assert condition.met is False
    assert condition.measured == pytest.approx(1.2)
    assert "condition.ping_pong" not in checks
    assert checks["semaphore.acquire_release"].met is True
    assert checks["barrier.rounds.2cpus"].met is None   # not in this run

    report = targets.format_checks(list(checks.values()))
    assert "MISS  condition.ping_pong.2cpus: fastsync (cython) speedup >= 2: 1.200" in report
    assert "1 of 6 targets met" in report
    # On 3.11 the rows with a CPU per thread must keep what spinning bought,
    # and those with the main thread as one side most of it.
    on_311 = {c.target.split(":")[0]: c
              for c in targets.check_composites(results, version=(3, 11, 2))}
    assert ("condition.ping_pong.2cpus: fastsync (cython) speedup >= 10"
            in on_311["condition.ping_pong.2cpus"].target)
    assert ("condition.ping_pong.main: fastsync (cython) speedup >= 5"
            in on_311["condition.ping_pong.main"].target)
    assert ("barrier.rounds.main: fastsync (cython) speedup >= 5"
            in on_311["barrier.rounds.main"].target)


@pytest.mark.timeout(30)
def test_no_row_may_be_slower_than_threading_lock_rows_within_noise():
    cases, runner, targets = _bench_modules()

    def result(name, kind, cython):
        case = cases.Case(name, name, kind, measure=lambda cls, size: (0, 0), code="",
                          uncontended=True)
        return runner.CaseResult(case, measurements={
            "threading": runner.Measurement(ns_per_op=[100.0]),
            "cython": runner.Measurement(ns_per_op=[cython])})

    checks = {c.target.split(":")[0]: c for c in targets.check_not_slower([
        result("lock row", "Lock", 102.0),        # 0.98x: within the allowance
        result("rlock row", "RLock", 104.0),      # 0.96x: below it
        result("event row", "Event", 102.0),      # 0.98x: Event has no allowance
    ])}
    assert checks["lock row"].met is True
    assert checks["rlock row"].met is False
    assert checks["event row"].met is False


@pytest.mark.timeout(30)
def test_busy_targets_judge_cpu_time_per_handoff():
    cases, runner, targets = _bench_modules()

    def handoff(name, cpu):
        case = cases.Case(name, name, "Event", measure=lambda cls, size: (0, 0), code="",
                          uncontended=False, handoffs=2)
        return runner.CaseResult(case, measurements={
            "threading": runner.Measurement(ns_per_op=[1000.0], cpu_ns_per_op=[500.0]),
            "cython": runner.Measurement(ns_per_op=[900.0], cpu_ns_per_op=[cpu])})

    pinned = handoff("event.ping_pong.1cpu", 900.0)
    pinned.case = dataclasses.replace(pinned.case, placement=cases.SHARED)
    results = [handoff("event.ping_pong", 590.0), handoff("condition.ping_pong", 610.0), pinned]
    checks = {c.target: c for c in targets.check_busy(results)}
    # Pinned rows' CPU time counts too; their speed is held only to "never slower".
    assert [c.met for t, c in checks.items() if t.startswith("event.ping_pong.1cpu")] == [False]
    cpu = {t.split(":")[0]: c for t, c in checks.items() if "CPU" in t}
    assert cpu["event.ping_pong"].met is True            # 1.18x threading's CPU time
    assert cpu["condition.ping_pong"].met is False       # 1.22x
    assert cpu["condition.ping_pong"].measured == pytest.approx(1.22)
    speed = {t.split(":")[0]: c for t, c in checks.items() if "speedup" in t}
    assert speed["event.ping_pong"].measured == pytest.approx(1000 / 900)
    assert speed["barrier.rounds"].met is None           # not in this run


@pytest.mark.timeout(30)
def test_free_threaded_targets_hold_pinned_handoffs_to_tenfold():
    cases, runner, targets = _bench_modules()

    def result(name, threading_ns, cython_ns, handoffs=0, cpu=None):
        case = cases.Case(name, name, "Event", measure=lambda cls, size: (0, 0), code="",
                          uncontended=False, handoffs=handoffs)
        cpu_of = {"threading": [1000.0], "cython": [cpu]} if cpu is not None else {}
        return runner.CaseResult(case, measurements={
            impl: runner.Measurement(ns_per_op=[ns], cpu_ns_per_op=cpu_of.get(impl, []))
            for impl, ns in (("threading", threading_ns), ("cython", cython_ns))})

    results = [
        result("event.ping_pong.2cpus", 10_000.0, 900.0, handoffs=2, cpu=1000.0),   # 11x
        result("event.ping_pong.1cpu", 10_000.0, 1100.0, handoffs=2, cpu=1001.0),   # 9.1x
        # The row the scheduler places counts for CPU time only.
        result("event.ping_pong", 10_000.0, 9000.0, handoffs=2, cpu=500.0),
        result("lock.contended_2", 300.0, 310.0),
        result("lock.contended_4", 300.0, 290.0),
    ]
    checks = {c.target: c for c in targets.check_free_threaded(results)}
    speed = {t.split(":")[0]: c for t, c in checks.items() if "speedup" in t}
    assert speed["event.ping_pong.2cpus"].met is True
    assert speed["event.ping_pong.1cpu"].met is False
    assert "event.ping_pong.1cpu: fastsync (cython) speedup >= 10" in \
        [t for t in checks if t.startswith("event.ping_pong.1cpu")][0]
    assert "event.ping_pong" not in speed
    assert speed["lock.contended_2"].met is False
    assert speed["lock.contended_4"].met is True
    assert speed["barrier.rounds.2cpus"].met is None   # not in this run
    cpu = {t.split(":")[0]: c for t, c in checks.items() if "CPU" in t}
    assert cpu["event.ping_pong.2cpus"].met is True     # level with threading's
    assert cpu["event.ping_pong.1cpu"].met is False
    assert cpu["event.ping_pong"].met is True


@pytest.mark.timeout(30)
def test_notes_flag_a_floor_slower_than_fastsync():
    """A floor well above fastsync's own time drew a bad code placement; the
    notes must say that row's floor ratio means little, and only for it."""
    cases, runner, _ = _bench_modules()
    sys.path.insert(0, REPO_ROOT)
    try:
        from bench import report
    finally:
        sys.path.remove(REPO_ROOT)

    def single(name, floor):
        case = cases.Case(name, name, "Event", measure=lambda cls, size: (0, 0), code="",
                          uncontended=True)
        return runner.CaseResult(case, measurements={
            impl: runner.Measurement(ns_per_op=[ns])
            for impl, ns in {"threading": 900.0, "cython": 22.0, "floor": floor}.items()})

    notes = report.notes([single("slow floor", 31.0), single("fine floor", 20.0)], [])
    assert "The floor of 'slow floor' ran 1.41x as long as fastsync" in notes
    assert "'fine floor'" not in notes


@pytest.mark.timeout(120)
def test_a_failing_worker_process_fails_the_run(tmp_path):
    """A worker that dies is reported as an error in every case it had, and
    the run exits with 1, like any failed measurement."""
    (tmp_path / "sitecustomize.py").write_text(
        "import os, sys\n"
        "if '--worker' in sys.argv:\n"
        "    sys.stderr.write('worker refuses to start\\n')\n"
        "    sys.stderr.flush()\n"
        "    os._exit(3)\n", encoding="utf-8")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp_path), env.get("PYTHONPATH")]))
    script = os.path.join(REPO_ROOT, "bench", "run.py")
    run = subprocess.run(
        [sys.executable, script, "--quick", "--processes", "2", "-k", "Lock: acquire()+release()"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=110, env=env,
    )
    assert run.returncode == 1, f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}"
    assert "the worker process exited with 3" in run.stdout
    assert "worker refuses to start" in run.stdout


@pytest.mark.timeout(60)
def test_pinned_rows_put_their_threads_where_they_say():
    cases, _, _ = _bench_modules()
    why_not = cases.placement_unavailable()
    if why_not is not None:
        pytest.skip(f"no pinning here: {why_not}")
    caller = os.sched_getaffinity(0)
    seen = {}

    def worker(label):
        def work():
            seen[label] = os.sched_getaffinity(0)
        return work

    for placement in (cases.SPREAD, cases.SHARED, None):
        seen.clear()
        cases.run_threads(worker("a"), worker("b"), placement=placement)
        if placement is None:
            assert seen["a"] == seen["b"] == caller
        else:
            assert len(seen["a"]) == len(seen["b"]) == 1
            assert (seen["a"] == seen["b"]) == (placement == cases.SHARED), (placement, seen)
    assert os.sched_getaffinity(0) == caller   # only the workers were pinned

    by_name = {c.name: c for c in cases.CASES}
    for name in ("event.ping_pong", "condition.ping_pong", "barrier.rounds"):
        assert by_name[name].placement is None
        assert by_name[name + ".2cpus"].placement == cases.SPREAD
        assert by_name[name + ".1cpu"].placement == cases.SHARED
        assert by_name[name + ".main"].placement == cases.MAIN


@pytest.mark.timeout(30)
def test_a_main_thread_row_runs_its_first_side_in_the_main_thread():
    cases, _, _ = _bench_modules()
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("the test runner must call tests from the main thread")
    ran_in = {}

    def side(label):
        def work():
            ran_in[label] = threading.current_thread()
        return work

    cases.run_threads(side("a"), side("b"), placement=cases.MAIN)
    assert ran_in["a"] is threading.main_thread()
    assert ran_in["b"] is not threading.main_thread()
    elapsed, rounds = cases.event_ping_pong(threading.Event, 50, placement=cases.MAIN)
    assert rounds == 50 and elapsed > 0


@pytest.mark.timeout(30)
def test_pinned_rows_are_skipped_where_threads_cant_be_pinned(monkeypatch):
    cases, runner, _ = _bench_modules()
    monkeypatch.setattr(runner, "placement_unavailable", lambda: "no CPUs to spare")
    planned = runner.plan(cases.CASES, [])
    skipped = {r.case.name: r.skipped for r in planned if r.case.placement in cases.PINNED}
    assert len(skipped) == 6
    assert all(why == "not pinned: no CPUs to spare" for why in skipped.values()), skipped
    assert not any("not pinned" in (r.skipped or "") for r in planned
                   if r.case.placement not in cases.PINNED)


# A benchmark killed before it can stop its --busy load (a timeout, a crash)
# must not leave CPU-bound processes running for good.
LOAD_THEN_DIE = """
import os, sys
sys.path.insert(0, {root!r})
from bench.busy import busy_processes
load = busy_processes(1)   # kept: collecting it would stop the load
pids = load.__enter__()
print(pids[0], flush=True)
os._exit(0)   # no clean-up: the load outlives this process
"""


def _running(pid):
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"   # a zombie has ended
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc to see the load's state")
@pytest.mark.timeout(60)
def test_busy_load_ends_with_the_benchmark_that_started_it():
    run = subprocess.run([sys.executable, "-c", LOAD_THEN_DIE.format(root=REPO_ROOT)],
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    pid = int(run.stdout)
    deadline = time.monotonic() + 20
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)   # watching another process end: nothing to wait on
    if _running(pid):
        os.kill(pid, signal.SIGKILL)
        pytest.fail("the busy process outlived the benchmark that started it")
