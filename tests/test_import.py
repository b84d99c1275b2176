"""What a plain `import fastsync` does: it changes nothing else in the
interpreter (what warnings show, the warnings module's state and the
threading module are the same with and without the import, each side in a
fresh interpreter), and it leaves fastsync.debug for later."""

import os
import re

import pytest

from fastsync._env import DEBUG
from helpers import run_python

# Warnings that the default filters show, once or always, or hide, each
# raised before and after the point where the import happens; then the
# warnings module's state and threading's names, and an sqlite3 connection
# left open, whose ResourceWarning at exit the default filters hide.
OBSERVE = """
import sys, threading, warnings

def show(label):
    print(label, warnings.filters, warnings.defaultaction, warnings.showwarning.__name__,
          sorted(getattr(sys.modules[__name__], "__warningregistry__", {{}}).items(), key=repr))

def warn_each():
    for category in (UserWarning, DeprecationWarning, PendingDeprecationWarning, ResourceWarning,
                     RuntimeWarning, ImportWarning, FutureWarning):
        warnings.warn("a " + category.__name__, category)
        warnings.warn("a " + category.__name__, category)   # the same place twice

warn_each()
show("before")
{import_line}
warn_each()
show("after")
print("threading", sorted((name, type(value).__name__) for name, value in vars(threading).items()))
import sqlite3
connection = sqlite3.connect(":memory:")
"""


def observe(import_line):
    result = run_python(OBSERVE.format(import_line=import_line), env={"PYTHONWARNINGS": ""})
    assert result.returncode == 0, result.stderr
    # Addresses differ between runs.
    return re.sub(r"0x[0-9a-f]+", "0x?", result.stdout + result.stderr)


@pytest.mark.parametrize("import_line", ["import fastsync", "import fastsync.debug",
                                         "import fastsync; fastsync.patch(); fastsync.unpatch()"])
def test_import_changes_no_warning_or_threading(import_line):
    expected = observe("pass")
    assert "after" in expected
    assert observe(import_line) == expected


# fastsync.debug is reachable as an attribute after `import fastsync`, but
# it is imported on first use only: a program that never asks pays nothing.
DEBUG_ON_FIRST_USE = """
import sys
import fastsync
print("fastsync.debug" in sys.modules)
debug = fastsync.debug
print("fastsync.debug" in sys.modules, debug is sys.modules["fastsync.debug"])
print(callable(fastsync.debug.find_deadlocks), callable(fastsync.debug.profile))
"""


def test_debug_is_imported_on_first_use():
    env = {key: value for key, value in os.environ.items() if key != DEBUG}
    result = run_python(DEBUG_ON_FIRST_USE, env=env, replace_env=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["False", "True True", "True True"]


def test_unknown_attribute_still_raises():
    code = "import fastsync\ntry:\n    fastsync.no_such_name\nexcept AttributeError as e:\n    print(e)"
    result = run_python(code, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "module 'fastsync' has no attribute 'no_such_name'"
