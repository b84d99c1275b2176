"""The benchmark's smoke run (`python bench/run.py --quick`) works.

It runs in a subprocess from the repository root, against the installed
fastsync, exactly as CI and the README run it.  Nothing here looks at timings.
"""

import json
import os
import subprocess
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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
    if "cython" in lock:   # the floors come from the compiled extension
        assert "floor" in lock
        # Hand-off cases get the native floor; other thread cases get none.
        assert "floor" in cases["event.ping_pong"]["results"]
        assert "floor" not in cases["lock.contended_2"]["results"]


@pytest.mark.cython
@pytest.mark.timeout(60)
def test_native_handoff_floor():
    from fastsync._compiled import _native_handoffs

    for count in (1, 2, 101):
        elapsed = _native_handoffs(count)
        assert type(elapsed) is int and elapsed > 0
    for bad in (0, -1, 2**30):
        with pytest.raises(ValueError):
            _native_handoffs(bad)
    with pytest.raises(TypeError):
        _native_handoffs("10")
