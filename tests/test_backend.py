"""Which backend is used, and the switch that chooses it."""

import importlib.util
import os
import platform
import sysconfig

import pytest

import fastsync
from fastsync._common import BACKEND_MODULES
from fastsync._env import NO_EXTENSIONS, REQUIRE_EXTENSIONS, env_flag
from helpers import run_python

SHOW_BACKEND = """
import fastsync
print(fastsync.BACKEND, fastsync.Lock.__module__, fastsync.RLock.__module__, fastsync.Event.__module__)
"""


def default_backend():
    """What an import with no switch must pick.  The extension may be absent
    only in a run that asked for the fallback (e.g. the no-compiler install);
    otherwise a missing extension is a broken build and must fail here."""
    if platform.python_implementation() != "CPython":
        return "python"
    if env_flag(NO_EXTENSIONS) and importlib.util.find_spec(BACKEND_MODULES["cython"]) is None:
        return "python"
    return "cython"


def show_backend(switch_value):
    env = {key: value for key, value in os.environ.items() if key != NO_EXTENSIONS}
    if switch_value is not None:
        env[NO_EXTENSIONS] = switch_value
    result = run_python(SHOW_BACKEND, env=env, replace_env=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


@pytest.mark.parametrize("switch_value", [None, "0", ""], ids=["unset", "0", "empty"])
def test_compiled_backend_is_the_default(switch_value):
    expected = default_backend()
    assert show_backend(switch_value) == [expected] + [BACKEND_MODULES[expected]] * 3


@pytest.mark.parametrize("switch_value", ["1", "yes"])
def test_no_extensions_switch_at_import(switch_value):
    assert show_backend(switch_value) == ["python"] + [BACKEND_MODULES["python"]] * 3


def test_backend_attribute_matches_classes():
    assert fastsync.BACKEND in BACKEND_MODULES
    for cls in (fastsync.Lock, fastsync.RLock, fastsync.Event):
        assert cls.__module__ == BACKEND_MODULES[fastsync.BACKEND]
        assert isinstance(cls, type)
    assert set(fastsync.__all__) >= {"BACKEND", "Barrier", "BoundedSemaphore", "BrokenBarrierError",
                                     "Condition", "Event", "Lock", "RLock", "Semaphore",
                                     "patch", "patched", "unpatch"}


# A meta path finder in front of the real ones makes the extension fail to
# load the way a broken build does (an ImportError that is not "not found").
BROKEN_EXTENSION = """
import sys
import warnings

class BrokenBuild:
    def find_spec(self, name, path=None, target=None):
        if name == "fastsync._compiled":
            raise ImportError("simulated broken build")
        return None

sys.meta_path.insert(0, BrokenBuild())
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import fastsync
print(fastsync.BACKEND, *[w.category.__name__ for w in caught])
for w in caught:
    print(w.message)
"""

# The extension simply isn't there, as after an install without a compiler.
MISSING_EXTENSION = """
import sys
import warnings

sys.modules["fastsync._compiled"] = None
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import fastsync
print(fastsync.BACKEND, *[w.category.__name__ for w in caught])
for w in caught:
    print(w.message)
"""


def run_without_switch(code, **env):
    env = {**{key: value for key, value in os.environ.items() if key != NO_EXTENSIONS}, **env}
    env.setdefault("PYTHONWARNINGS", "error")
    result = run_python(code, env=env, replace_env=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_broken_extension_warns():
    backend_line, message = run_without_switch(BROKEN_EXTENSION)
    assert backend_line == "python FallbackWarning"
    assert "installed but could not be imported (simulated broken build)" in message
    assert "pure-Python fallback" in message


# On CPython a missing extension is a failed or skipped compile the user may
# never have seen (pip shows build output only with -v): the import says so,
# with the cause and the fix.  PyPy never gets the extension, so it is quiet.
@pytest.mark.skipif(platform.python_implementation() != "CPython", reason="CPython only")
def test_missing_extension_warns_on_cpython():
    backend_line, message = run_without_switch(MISSING_EXTENSION)
    assert backend_line == "python FallbackWarning"
    assert "compiled backend is not installed" in message
    assert "C compiler" in message and "reinstall" in message
    assert f"{NO_EXTENSIONS}=1" in message


@pytest.mark.skipif(platform.python_implementation() == "CPython", reason="not CPython")
def test_missing_extension_is_quiet_elsewhere():
    assert run_without_switch(MISSING_EXTENSION) == ["python"]


def test_missing_extension_is_quiet_when_the_fallback_is_asked_for():
    assert run_without_switch(MISSING_EXTENSION, **{NO_EXTENSIONS: "1"}) == ["python"]


# One warning per process, and a filter set before the import (the category
# can't be named before fastsync is imported) silences it.
MISSING_EXTENSION_TWICE = """
import importlib, sys
sys.modules["fastsync._compiled"] = None
import fastsync
importlib.import_module("fastsync")
print(fastsync.BACKEND)
"""


@pytest.mark.skipif(platform.python_implementation() != "CPython", reason="CPython only")
def test_missing_extension_warning_is_filterable():
    ignore = "error,ignore:fastsync's compiled backend is not installed"
    assert run_without_switch(MISSING_EXTENSION_TWICE, PYTHONWARNINGS=ignore) == ["python"]
    env = {key: value for key, value in os.environ.items() if key not in (NO_EXTENSIONS, "PYTHONWARNINGS")}
    result = run_python(MISSING_EXTENSION_TWICE, env=env, replace_env=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("FallbackWarning") == 1, result.stderr


def test_fallback_warning_is_a_runtime_warning():
    assert issubclass(fastsync.FallbackWarning, RuntimeWarning)


# setup.py run with a stand-in for setuptools that records what setup() is
# given (a test environment need not have setuptools: 3.12+ venvs come
# without), optionally on a simulated free-threaded CPython.
RUN_SETUP = """
import runpy, sys, sysconfig, types
if {free_threaded}:
    real = sysconfig.get_config_var
    sysconfig.get_config_var = lambda name: 1 if name == "Py_GIL_DISABLED" else real(name)
declared = {{}}
setuptools = types.ModuleType("setuptools")
setuptools.Extension = lambda name, **kwargs: name
setuptools.setup = lambda **kwargs: declared.update(kwargs)
build_ext = types.ModuleType("setuptools.command.build_ext")
build_ext.build_ext = object
sys.modules.update({{"setuptools": setuptools, "setuptools.command": types.ModuleType("setuptools.command"),
                    "setuptools.command.build_ext": build_ext}})
runpy.run_path("setup.py", run_name="__main__")
print(len(declared["ext_modules"]))
"""
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH_FLOOR = "FASTSYNC_BENCH_FLOOR"   # make test sets it
BUILD_SWITCHES = (NO_EXTENSIONS, REQUIRE_EXTENSIONS, "CIBUILDWHEEL", "FASTSYNC_C_BACKEND", BENCH_FLOOR)


def run_setup(*, free_threaded=False, **switches):
    env = {key: value for key, value in os.environ.items() if key not in BUILD_SWITCHES}
    env.update(switches)
    return run_python(RUN_SETUP.format(free_threaded=free_threaded), env=env, replace_env=True, cwd=REPO)


# setup.py spells the switches' names itself; they must be the ones the
# package reads at import time, with the same rule for their values.
@pytest.mark.skipif(platform.python_implementation() != "CPython",
                    reason="setup.py declares no extension on PyPy")
@pytest.mark.parametrize("switch_value, declared",
                         [(None, "1"), ("", "1"), ("0", "1"), ("1", "0"), ("yes", "0")])
def test_setup_honours_the_no_extensions_switch(switch_value, declared):
    switches = {} if switch_value is None else {NO_EXTENSIONS: switch_value}
    result = run_setup(**switches)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [declared]


# The benchmark's floor is a second extension, declared only when asked for,
# and never without fastsync's own.
@pytest.mark.skipif(platform.python_implementation() != "CPython",
                    reason="setup.py declares no extension on PyPy")
@pytest.mark.parametrize("switches, declared", [
    ({BENCH_FLOOR: "0"}, "1"), ({BENCH_FLOOR: "1"}, "2"), ({BENCH_FLOOR: "1", NO_EXTENSIONS: "1"}, "0")])
def test_setup_declares_the_bench_floor_only_when_asked(switches, declared):
    result = run_setup(**switches)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [declared]


# A free-threaded CPython builds the extension like any other (the module
# declares that it doesn't need the GIL), and a required one is not refused.
@pytest.mark.skipif(platform.python_implementation() != "CPython",
                    reason="setup.py declares no extension on PyPy, free-threaded or not")
@pytest.mark.parametrize("switches", [{}, {REQUIRE_EXTENSIONS: "1"}])
def test_setup_builds_the_extension_on_a_free_threaded_python(switches):
    result = run_setup(free_threaded=True, **switches)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1"]
    assert "free-threaded" not in result.stderr


# On a free-threaded CPython, importing a module that doesn't declare itself
# safe without the GIL turns the GIL back on for the whole process, with a
# RuntimeWarning.  Every module of fastsync, the extension first, must leave
# it off.
GIL_AFTER_IMPORT = """
import importlib.util, sys, warnings
warnings.simplefilter("error")
modules = ["fastsync", "fastsync.debug"]
if importlib.util.find_spec("fastsync._compiled") is not None:
    modules.insert(0, "fastsync._compiled")
for name in modules:
    importlib.import_module(name)
import fastsync
print(fastsync.BACKEND, sys._is_gil_enabled())
"""


@pytest.mark.skipif(not sysconfig.get_config_var("Py_GIL_DISABLED"),
                    reason="only a free-threaded CPython can run without the GIL")
def test_import_leaves_the_gil_off():
    # A run that asked for the fallback and has no extension keeps asking:
    # without the switch, that import would warn that the extension is missing.
    dropped = {"PYTHON_GIL"}
    if importlib.util.find_spec(BACKEND_MODULES["cython"]) is not None:
        dropped.add(NO_EXTENSIONS)
    env = {key: value for key, value in os.environ.items() if key not in dropped}
    result = run_python(GIL_AFTER_IMPORT, env=env, replace_env=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [default_backend(), "False"]


# pip shows a build's output only when it fails or with -v, so setup.py also
# writes its fallback banner straight to the user's terminal.  The child here
# has a pseudo-terminal as its controlling terminal and pipes for stdout and
# stderr, as a build under pip has; it runs setup.py's function on its own.
TO_TERMINAL = """
import ast, os, sys
with open("setup.py") as file:
    tree = ast.parse(file.read())
(function,) = [node for node in tree.body if getattr(node, "name", None) == "_to_terminal"]
namespace = {"os": os, "sys": sys}
exec(compile(ast.Module(body=[function], type_ignores=[]), "setup.py", "exec"), namespace)
namespace["_to_terminal"]("fastsync banner for the terminal\\n")
"""


@pytest.mark.skipif(not hasattr(os, "openpty") or not hasattr(os, "setsid"), reason="no pseudo-terminals")
def test_setup_writes_its_banner_to_the_terminal():
    import subprocess
    import sys

    controller, terminal = os.openpty()
    terminal_name = os.ttyname(terminal)

    def take_terminal():
        os.setsid()
        os.close(os.open(terminal_name, os.O_RDWR))   # becomes the controlling terminal

    try:
        result = subprocess.run([sys.executable, "-c", TO_TERMINAL], cwd=REPO, capture_output=True,
                                text=True, timeout=30, preexec_fn=take_terminal)
        assert result.returncode == 0, result.stderr
        assert result.stdout == result.stderr == ""
        os.set_blocking(controller, False)
        shown = os.read(controller, 4096).decode()
    finally:
        os.close(controller)
        os.close(terminal)
    assert "fastsync banner for the terminal" in shown
