"""`import fastsync` changes nothing else in the interpreter: what warnings
show, the warnings module's state and the threading module are the same with
and without the import.  Each side runs in a fresh interpreter."""

import re

import pytest

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
