"""What a plain `import fastsync` loads, and what it leaves for later."""

import os

from fastsync._env import DEBUG
from helpers import run_python

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
