"""Ctrl-C ends the main thread's waits at once, whenever it comes: before the
wait, while the thread spins, or while it sleeps.

A child's main thread waits, again and again, for something nobody gives it
(so only a signal ends the wait), spinning first for a long time; this
process sends SIGINT at a random moment after each wait begins, and times how
long the child takes to raise KeyboardInterrupt.  A signal the child missed
would leave it waiting for its 30 s timeout."""

import os
import random
import selectors
import signal
import subprocess
import sys
import time

import pytest

from helpers import CHILD_OPTIONS, run_python

pytestmark = [pytest.mark.cython,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux signals"),
              pytest.mark.timeout(300)]

# The child's spin, and the window after the start of a wait in which the
# signals land: about half of them during the spin.
SPIN_NS = 1_000_000
WINDOW_NS = 2 * SPIN_NS
SIGNALS = 600          # per primitive
# Time for the child to notice one signal.  A missed one takes 30 s; a noticed
# one takes tens of microseconds, plus whatever a busy machine adds to waking
# a thread: up to hundreds of milliseconds with 5 runnable threads per CPU.
NOTICE_S = 2.0
LATENCY_BOUND_MS = 1000
MEDIAN_BOUND_US = 1000

CHILD = r"""
import sys, threading, time
import fastsync._compiled as backend
backend._set_spin_ns({spin_ns})
kind = {kind!r}
if kind == "Event":
    event = backend.Event()
    wait = lambda: event.wait(30)
elif kind == "Lock":
    lock = backend.Lock()
    lock.acquire()
    wait = lambda: lock.acquire(timeout=30)
elif kind == "Semaphore":
    semaphore = backend.Semaphore(0)
    wait = lambda: semaphore.acquire(timeout=30)
else:
    condition = backend.Condition(backend.Lock())
    condition.acquire()
    wait = lambda: condition.wait(30)
print("WATCHES", backend._main_thread_watches_signals(), flush=True)
now = time.monotonic_ns
started = 0
line = "READY"
while line:
    # Everything in the try: a signal may land anywhere here, even before
    # the wait starts (started is 0 then).
    try:
        started = 0
        print(line, flush=True)
        line = None
        started = now()
        wait()
        print("WOKE", flush=True)
        sys.exit(1)
    except KeyboardInterrupt:
        line = f"CAUGHT {{started}} {{now()}}"
"""


def _stress(kind):
    code = CHILD.format(spin_ns=SPIN_NS, kind=kind)
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, **CHILD_OPTIONS)
    selector = selectors.DefaultSelector()
    selector.register(child.stdout, selectors.EVENT_READ)
    rng = random.Random(kind)
    latencies, offsets = [], []
    received = b""

    def read_line(what):
        nonlocal received
        deadline = time.monotonic() + NOTICE_S
        while b"\n" not in received:
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                raise AssertionError(f"no {what} within {NOTICE_S} s")
            chunk = os.read(child.stdout.fileno(), 4096)
            if not chunk:
                raise AssertionError(f"the child ended before its {what}")
            received += chunk
        line, received = received.split(b"\n", 1)
        return line.decode().split()

    try:
        watches = read_line("start")
        assert read_line("start") == ["READY"]
        for n in range(SIGNALS):
            # A random moment after the child's last line, which it writes
            # just before it starts to wait; one in eight at once, most of
            # which land before the wait.
            if rng.randrange(8):
                time.sleep(rng.randrange(WINDOW_NS) / 1e9)
            sent = time.monotonic_ns()
            os.kill(child.pid, signal.SIGINT)
            try:
                reply = read_line("KeyboardInterrupt")
            except AssertionError as error:
                raise AssertionError(f"signal {n} was missed: {error}") from None
            assert reply[0] == "CAUGHT", reply
            started, caught = int(reply[1]), int(reply[2])
            latencies.append(caught - sent)
            offsets.append(sent - started if started else None)
    finally:
        child.kill()
        _, err = child.communicate()
    return watches, latencies, offsets, err.decode()


@pytest.mark.parametrize("kind", ["Event", "Lock", "Semaphore", "Condition"])
def test_every_sigint_ends_a_main_thread_wait_at_once(kind):
    watches, latencies, offsets, err = _stress(kind)
    assert watches[0] == "WATCHES", err
    latencies.sort()
    worst_ms = latencies[-1] / 1e6
    median_us = latencies[len(latencies) // 2] / 1e3
    p99_ms = latencies[len(latencies) * 99 // 100] / 1e6
    landed = [offset for offset in offsets if offset is not None]
    in_spin = sum(0 <= offset < SPIN_NS for offset in landed)
    summary = (f"{kind}: {len(latencies)} signals, median {median_us:.0f} us, 99% {p99_ms:.2f} ms, "
               f"worst {worst_ms:.2f} ms; "
               f"{len(offsets) - len(landed)} before the wait, {in_spin} in the spin, "
               f"{len(landed) - in_spin} later")
    print(summary)
    assert worst_ms < LATENCY_BOUND_MS and median_us < MEDIAN_BOUND_US, summary
    if watches[1] == "True":
        # The main thread spun: a good share of the signals landed in its spins.
        assert in_spin >= SIGNALS // 10, summary


# A user's own wakeup fd: the main thread's watching leaves it alone, so a
# signal that ends a spinning wait still writes its number there.
WAKEUP_FD_CHILD = """
import os, signal, threading, time
import fastsync._compiled as backend
backend._set_spin_ns(10**9)          # the whole wait is a spin where it can be
read_end, write_end = os.pipe()
os.set_blocking(write_end, False)
signal.set_wakeup_fd(write_end)
event = backend.Event()
threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT)).start()
started = time.monotonic()
try:
    event.wait(30)
    print("WOKE")
except KeyboardInterrupt:
    print("INTERRUPTED", time.monotonic() - started < 10)
print("WAKEUP", list(os.read(read_end, 16)) == [signal.SIGINT])
"""


def test_a_users_wakeup_fd_still_gets_the_signal():
    result = run_python(WAKEUP_FD_CHILD)
    assert result.stdout.split("\n")[:2] == ["INTERRUPTED True", "WAKEUP True"], result.stderr


# asyncio's signal handling is a wakeup fd plus a Python handler that does
# nothing: a signal that comes while a coroutine blocks the loop in a
# fastsync wait runs that handler; the wait goes on; the loop then dispatches
# the signal to its callback.
ASYNCIO_CHILD = """
import asyncio, os, signal, threading
import fastsync._compiled as backend
backend._set_spin_ns(10**9)
event = backend.Event()
calls = []

def signal_then_set():
    os.kill(os.getpid(), signal.SIGUSR1)
    threading.Timer(0.2, event.set).start()

async def main():
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, calls.append, "USR1")
    threading.Timer(0.05, signal_then_set).start()
    print("WAITED", event.wait(30))          # blocks the loop, spinning
    for _ in range(100):
        if calls:
            break
        await asyncio.sleep(0.01)
    print("CALLS", calls)

asyncio.run(main())
"""


def test_asyncio_still_gets_its_signals():
    result = run_python(ASYNCIO_CHILD)
    assert result.stdout.split("\n")[:2] == ["WAITED True", "CALLS ['USR1']"], result.stderr
