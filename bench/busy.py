"""A busy machine on demand: `--busy N` keeps N CPU-bound processes running
while the benchmark runs, as other work on a shared server would, and stops
them (by their process ids) when it ends.

Hand-offs between threads behave differently when every CPU is taken: a
woken thread waits for the scheduler, and spinning costs the threads it
waits for.  Only a run with this load shows that.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from typing import Iterator, List

# Pure computation, no I/O and no sleeping, until the benchmark that started
# it is gone: a benchmark killed before it could stop its load (a timeout, a
# crash) must not leave CPU-bound orphans behind.  The parent's id changes
# when the child is handed to another process on the parent's death (the
# parent's id comes as an argument, in case it died before the child asked).
SPIN_WHILE_PARENT_LIVES = (
    "import os, sys\n"
    "parent = int(sys.argv[1])\n"
    "while os.getppid() == parent:\n"
    "    for _ in range(100_000):\n"
    "        pass\n"
)


@contextlib.contextmanager
def busy_processes(count: int) -> Iterator[List[int]]:
    """Runs `count` CPU-bound Python processes for the duration; yields their ids."""
    processes: List[subprocess.Popen] = []
    try:
        for _ in range(count):
            processes.append(subprocess.Popen(
                [sys.executable, "-c", SPIN_WHILE_PARENT_LIVES, str(os.getpid())],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        yield [process.pid for process in processes]
    finally:
        for process in processes:
            process.kill()
        for process in processes:
            process.wait()
