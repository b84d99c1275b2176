"""Subinterpreters: the main interpreter keeps the compiled backend whatever
imports fastsync first; a subinterpreter gets the fallback and says so.

Each scenario runs in a child process, since a subinterpreter that goes wrong
can take its whole process down.  The children run with every warning an
error; a subinterpreter records what its import warns and reports it."""

import importlib.util
import sys

import pytest

from helpers import run_python

# The warning must say that the main interpreter is served and the
# subinterpreter falls back.
SUBINTERPRETER_WARNING = (
    "fastsync's compiled backend serves only the main interpreter; this "
    "subinterpreter uses the pure-Python fallback (loading the extension here "
    "would keep the main interpreter from ever loading it)"
)

pytestmark = pytest.mark.skipif(
    sys.implementation.name != "cpython", reason="subinterpreters are CPython's"
)


def _module_available(name):
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:   # a missing parent package
        return False


# The private modules CPython's own tests drive subinterpreters with:
# _interpreters from 3.13 on, _xxsubinterpreters before.
INTERPRETERS_MODULE = "_interpreters" if sys.version_info >= (3, 13) else "_xxsubinterpreters"
HAVE_INTERPRETERS_MODULE = _module_available(INTERPRETERS_MODULE)

needs_subinterpreters = pytest.mark.skipif(
    not HAVE_INTERPRETERS_MODULE, reason=f"this Python has no {INTERPRETERS_MODULE} module"
)

KINDS = [
    # Shares the main interpreter's GIL and may load any extension module.
    pytest.param("legacy", marks=needs_subinterpreters),
    # Its own GIL; only extensions that declare support load there.
    pytest.param("isolated", marks=[needs_subinterpreters, pytest.mark.skipif(
        sys.version_info < (3, 12),
        reason="isolated subinterpreters (own GIL) need Python 3.12's subinterpreter config",
    )]),
]

# Defines run_in_subinterpreter(kind, code) in the child.
PRELUDE = """
import sys

def run_in_subinterpreter(kind, code):
    if sys.version_info >= (3, 13):
        import _interpreters
        interp = _interpreters.create(kind)
        try:
            failure = _interpreters.exec(interp, code)
        finally:
            _interpreters.destroy(interp)
        if failure is not None:
            raise AssertionError(f"the subinterpreter raised: {failure.formatted}")
    else:
        import _xxsubinterpreters
        if sys.version_info >= (3, 12):
            interp = _xxsubinterpreters.create(isolated=kind == "isolated")
        else:
            interp = _xxsubinterpreters.create()
        try:
            _xxsubinterpreters.run_string(interp, code)   # raises what the code raised
        finally:
            _xxsubinterpreters.destroy(interp)
"""

# Run in a subinterpreter: reports the backend and every warning the import
# gave, then checks the fallback works.
SUB_IMPORT = """
import warnings
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import fastsync
categories = [w.category.__name__ + ("/RuntimeWarning" if issubclass(w.category, RuntimeWarning) else "")
              for w in caught]
print("sub", fastsync.BACKEND, *categories, flush=True)
for w in caught:
    print("sub warning:", w.message, flush=True)
lock = fastsync.Lock()
assert lock.acquire() and lock.locked()
lock.release()
with fastsync.RLock():
    pass
"""

# What SUB_IMPORT must report: the fallback, and one warning that says why.
SUB_FALLS_BACK = ["sub python FallbackWarning/RuntimeWarning", "sub warning: {}"]

MAIN_IMPORT = """
import fastsync
print("main", fastsync.BACKEND, flush=True)
"""


def run_scenario(code):
    """Run the child with warnings as errors; returns its output lines, with
    the subinterpreter's warning checked and shortened to {}."""
    result = run_python(PRELUDE + code, env={"PYTHONWARNINGS": "error"}, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.split("\n")[:-1]
    for i, line in enumerate(lines):
        if line.startswith("sub warning: "):
            assert line == "sub warning: " + SUBINTERPRETER_WARNING
            lines[i] = "sub warning: {}"
    return lines


@pytest.mark.cython
@pytest.mark.parametrize("kind", KINDS)
def test_subinterpreter_first_leaves_main_the_compiled_backend(kind):
    lines = run_scenario(f"run_in_subinterpreter({kind!r}, {SUB_IMPORT!r})\n{MAIN_IMPORT}")
    assert lines == [*SUB_FALLS_BACK, "main cython"]


@pytest.mark.cython
@pytest.mark.parametrize("kind", KINDS)
def test_subinterpreter_after_main_falls_back_with_warning(kind):
    lines = run_scenario(f"{MAIN_IMPORT}\nrun_in_subinterpreter({kind!r}, {SUB_IMPORT!r})")
    assert lines == ["main cython", *SUB_FALLS_BACK]


# Importing the extension itself in a subinterpreter would claim it for that
# interpreter just as well; it must fail there without doing so.
SUB_IMPORTS_EXTENSION = SUB_IMPORT + """
try:
    import fastsync._compiled
except ImportError:
    print("sub: no extension", flush=True)
"""


@pytest.mark.cython
@pytest.mark.parametrize("kind", KINDS)
def test_subinterpreter_cannot_claim_the_extension(kind):
    lines = run_scenario(f"run_in_subinterpreter({kind!r}, {SUB_IMPORTS_EXTENSION!r})\n{MAIN_IMPORT}")
    assert lines == [*SUB_FALLS_BACK, "sub: no extension", "main cython"]


# Without the interpreters module the package asks the C API through ctypes.
HIDE_INTERPRETERS_MODULES = """
import sys
sys.modules["_interpreters"] = sys.modules["_xxsubinterpreters"] = None
"""


@pytest.mark.cython
@needs_subinterpreters
def test_subinterpreter_recognised_without_interpreters_module():
    sub_code = HIDE_INTERPRETERS_MODULES + SUB_IMPORT
    code = (f"run_in_subinterpreter('legacy', {sub_code!r})\n"
            f"{HIDE_INTERPRETERS_MODULES}\n{MAIN_IMPORT}")
    assert run_scenario(code) == [*SUB_FALLS_BACK, "main cython"]


@pytest.mark.cython
@pytest.mark.skipif(sys.version_info < (3, 14) or not _module_available("concurrent.interpreters"),
                    reason="this Python has no concurrent.interpreters (3.14+)")
def test_concurrent_interpreters():
    code = f"""
from concurrent import interpreters
interp = interpreters.create()
try:
    interp.exec({SUB_IMPORT!r})
finally:
    interp.close()
{MAIN_IMPORT}
"""
    assert run_scenario(code) == [*SUB_FALLS_BACK, "main cython"]
