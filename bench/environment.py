"""What the run happened on: Python, fastsync, the machine."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import sysconfig
from typing import Dict, Optional


def collect() -> Dict[str, Dict[str, object]]:
    return {"python": _python(), "fastsync": _fastsync(), "machine": _machine()}


def describe(env: Dict[str, Dict[str, object]]) -> Dict[str, str]:
    """One readable line per topic, for the report's header."""
    py, fs, machine = env["python"], env["fastsync"], env["machine"]
    gil = "" if py["gil_enabled"] is None else (", GIL on" if py["gil_enabled"] else ", GIL off")
    backends = ", ".join(f"{name}: {state}" for name, state in fs["backends"].items())
    others = f"; fastrlock {fs['fastrlock']}" if fs["fastrlock"] else ""
    return {
        "Python": f"{py['implementation']} {py['version']} ({py['build']}{gil})",
        "Build": str(py["optimization"]),
        "fastsync": (f"{fs['version']} from {fs['location']}; default backend "
                     f"{fs['default_backend']!r}; {backends}{others}"),
        "Machine": (f"{machine['cpu']}, {machine['cpus']} CPUs ({machine['usable_cpus']} usable); "
                    f"{machine['platform']}; load average {machine['load_average_1min']}"),
    }


def _python() -> Dict[str, object]:
    is_gil_enabled = getattr(sys, "_is_gil_enabled", None)
    return {
        "implementation": platform.python_implementation(),
        "version": platform.python_version(),
        "build": " ".join(platform.python_build()),
        "compiler": platform.python_compiler(),
        "executable": sys.executable,
        "gil_enabled": None if is_gil_enabled is None else is_gil_enabled(),
        "optimization": optimization(),
    }


NOT_OPTIMIZED = "not an optimized build"


def optimization() -> str:
    """How the interpreter was optimized, from its configure flags.  An
    unoptimized CPython's threading costs about twice an optimized one's,
    which overstates fastsync's lead."""
    implementation = platform.python_implementation()
    if implementation != "CPython":
        return f"{implementation}: not a CPython build"
    flags = sysconfig.get_config_var("CONFIG_ARGS")
    if not flags:   # Windows and some embedders record none
        return "optimization unknown (no configure flags recorded)"
    found = [name for flag, name in (("--enable-optimizations", "PGO"), ("--with-lto", "LTO"))
             if flag in flags]
    if found:
        return "optimized build (" + " and ".join(found) + ")"
    if "/usr/share/python-wheels" in flags:
        # Debian's and Ubuntu's packaging runs the profile-guided build itself
        # rather than through configure's flag.
        return "Debian build (its packaging applies PGO and LTO outside configure's flags)"
    return f"{NOT_OPTIMIZED} (configured without --enable-optimizations or --with-lto)"


def _fastsync() -> Dict[str, object]:
    import fastsync

    backends = {}
    try:
        from fastsync import _compiled
    except ImportError as error:
        backends["cython"] = f"not available ({error})"
    else:
        backends["cython"] = f"built (wait layer: {getattr(_compiled, 'WAIT_BACKEND', '?')})"
    backends["python"] = "available"
    try:
        import fastrlock
        fastrlock_version: Optional[str] = getattr(fastrlock, "__version__", "?")
    except ImportError:
        fastrlock_version = None
    return {
        "version": getattr(fastsync, "__version__", "?"),
        "location": os.path.dirname(os.path.abspath(fastsync.__file__)),
        "default_backend": getattr(fastsync, "BACKEND", "?"),
        "backends": backends,
        "fastrlock": fastrlock_version,
    }


def _machine() -> Dict[str, object]:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:   # not on this platform
        usable = os.cpu_count()
    try:
        load: Optional[float] = round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):   # Windows
        load = None
    return {
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "usable_cpus": usable,
        "load_average_1min": load,
    }


def build_warning(env: Dict[str, Dict[str, object]]) -> Optional[str]:
    """A warning if the ratios come from an interpreter users don't run."""
    if not str(env["python"]["optimization"]).startswith(NOT_OPTIMIZED):
        return None
    return ("Warning: this interpreter is not an optimized build; its threading costs about "
            "twice what it costs in the builds users run, so the speedups here overstate "
            "fastsync's lead.")


def busy_warning(env: Dict[str, Dict[str, object]]) -> Optional[str]:
    """A warning if other processes kept the CPUs busy as the run began."""
    machine = env["machine"]
    load, usable = machine["load_average_1min"], machine["usable_cpus"] or 1
    if load is None or load <= usable / 2:
        return None
    return (f"Warning: load average {load} on {usable} usable CPUs: other processes compete "
            "with the benchmark, so its numbers will be noisy.")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if sys.platform == "darwin":
        try:
            return subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"],
                                  capture_output=True, text=True, timeout=5).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or platform.machine() or "unknown CPU"
