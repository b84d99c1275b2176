"""One suite for both backends.

Every test that takes `backend` (or a fixture built on it) runs twice, with ids
`cython` and `python`.  The compiled backend must be importable: if it is
missing the cython tests fail, unless FASTSYNC_NO_EXTENSIONS=1 asked for the
fallback (or on PyPy, where it is never built), in which case they are
deselected."""

import importlib
import os
import platform

import pytest

import fastsync
from fastsync._env import NO_EXTENSIONS, env_flag
from helpers import backend_params

# The extension is never built on PyPy (or any non-CPython): the fallback is
# what users get there, as if they had asked for it.
FALLBACK_REQUESTED = env_flag(NO_EXTENSIONS) or platform.python_implementation() != "CPython"


def pytest_configure(config):
    config.addinivalue_line("markers", "cython: runs against the compiled backend")
    config.addinivalue_line("markers", "python_backend: runs against the pure-Python backend "
                                       "named explicitly (not as the default)")
    config.addinivalue_line("markers", "stress: long-running stress test")
    config.addinivalue_line("markers", "bench_floor: needs the benchmark's floor, built when "
                                       "FASTSYNC_BENCH_FLOOR=1 (make test sets it; wheels lack it)")


def pytest_collection_modifyitems(config, items):
    if not FALLBACK_REQUESTED:
        return
    keep, drop = [], []
    for item in items:
        (drop if item.get_closest_marker("cython") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_report_header(config):
    where = os.path.dirname(fastsync.__file__)
    return f"fastsync {fastsync.__version__} from {where}, default BACKEND={fastsync.BACKEND!r}"


@pytest.fixture(scope="session", params=backend_params())
def backend(request):
    # An ImportError here fails every cython test: a broken build must not pass.
    return importlib.import_module(request.param)


@pytest.fixture
def Lock(backend):
    return backend.Lock


@pytest.fixture
def RLock(backend):
    return backend.RLock


@pytest.fixture
def Event(backend):
    return backend.Event


@pytest.fixture(params=["Lock", "RLock"])
def any_lock(request, backend):
    """Lock and RLock: what both must do alike."""
    return getattr(backend, request.param)

