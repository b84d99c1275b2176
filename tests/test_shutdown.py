"""Interpreter exit with threads still waiting: no crash, whatever the
interpreter does with daemon threads then (up to 3.12 it ends those that try
to take the GIL back, in the middle of their wait)."""

import pytest

from helpers import backend_params, run_python

BACKENDS = pytest.mark.parametrize("module", backend_params())

# Daemon threads loop in short Condition waits, so some wake during
# finalization.  An object in a reference cycle notifies from its finalizer,
# which runs in the final garbage collection, after those threads were ended.
EXIT_WITH_WAITERS = """
import threading
import {module} as backend

cond = backend.Condition()
running = threading.Semaphore(0)

def spin_waiting():
    running.release()
    while True:
        with cond:
            cond.wait(0.001)

class NotifiesWhenCollected:
    def __init__(self):
        self.cycle = self
    def __del__(self):
        for _ in range(50):
            with cond:
                cond.notify_all()

# More threads than glibc keeps the stacks of after they end, so that some
# stacks are unmapped.
for _ in range(16):
    threading.Thread(target=spin_waiting, daemon=True).start()
for _ in range(16):
    running.acquire()
NotifiesWhenCollected()
"""


@BACKENDS
def test_exit_while_condition_waiters_wake(module):
    for attempt in range(10):
        result = run_python(EXIT_WITH_WAITERS.format(module=module))
        assert result.returncode == 0, (attempt, result.returncode, result.stderr)
