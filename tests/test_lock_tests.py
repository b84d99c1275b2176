"""CPython's own conformance tests for lock implementations (Lib/test/
lock_tests.py, which test_threading runs against threading's classes), run
against both backends' seven classes, from the running interpreter's copy."""

import importlib
import sys
import threading

import pytest

from conftest import FALLBACK_REQUESTED
from fastsync._common import BACKEND_MODULES
from helpers import backend_marks

lock_tests = pytest.importorskip(
    "test.lock_tests",
    reason="this interpreter ships no test package (test.lock_tests); Debian and Ubuntu "
           f"package it apart: apt install libpython{sys.version_info[0]}.{sys.version_info[1]}-testsuite")


class _EventAtForkReinit:
    """Mixed into EventTests (not a test case itself, so not collected)."""

    def test_at_fork_reinit(self):
        # Replaces lock_tests' own, which reads threading.Event's private
        # _cond: after _at_fork_reinit() the event keeps its flag and still
        # wakes a waiting thread.
        event = self.eventtype()
        event.set()
        event._at_fork_reinit()
        self.assertTrue(event.is_set())
        event.clear()
        event._at_fork_reinit()
        woken = []
        waiter = threading.Thread(target=lambda: woken.append(event.wait(30)))
        waiter.start()
        event.set()
        waiter.join(30)
        self.assertEqual(woken, [True])


class _ConditionNanTimeout:
    """Mixed into ConditionTests where they have test_nan_timeout (3.14+)."""

    def test_nan_timeout(self):
        # Replaces lock_tests' own, which counts threading.Condition's private
        # _waiters: the repr shows how many threads wait, for both.
        cond = self.condtype()
        nan = float("nan")
        with cond:
            self.assertRaises(ValueError, cond.wait, nan)
            self.assertRaises(ValueError, cond.wait_for, lambda: False, nan)
            self.assertTrue(repr(cond).endswith(", 0)>"), repr(cond))


_CONDITION_BASES = ((_ConditionNanTimeout, lock_tests.ConditionTests)
                    if hasattr(lock_tests.ConditionTests, "test_nan_timeout")
                    else (lock_tests.ConditionTests,))


def _classes_for(name, module):
    marks = backend_marks(name)
    made = {
        "Lock": ((lock_tests.LockTests,), "locktype", module.Lock),
        "RLock": ((lock_tests.RLockTests,), "locktype", module.RLock),
        "Event": ((_EventAtForkReinit, lock_tests.EventTests), "eventtype", module.Event),
        "Condition": (_CONDITION_BASES, "condtype", module.Condition),
        "Semaphore": ((lock_tests.SemaphoreTests,), "semtype", module.Semaphore),
        "BoundedSemaphore": ((lock_tests.BoundedSemaphoreTests,), "semtype", module.BoundedSemaphore),
        "Barrier": ((lock_tests.BarrierTests,), "barriertype", module.Barrier),
    }
    for kind, (bases, attribute, cls) in made.items():
        test_class = type(f"Test{kind}_{name}", bases,
                          {attribute: staticmethod(cls), "pytestmark": marks})
        globals()[test_class.__name__] = test_class


for _name, _module_name in BACKEND_MODULES.items():
    if _name == "cython" and FALLBACK_REQUESTED:
        continue   # not built on purpose; conftest deselects the compiled tests
    # A compiled backend that fails to import fails this module, as it must.
    _classes_for(_name, importlib.import_module(_module_name))
