"""The compiled backend's spinning: a thread that must block first looks at
the word it waits on for a while (threads other than the main thread only),
then sleeps.  What the spin buys is measured by bench/, not here."""

import os
import time

import pytest

from helpers import Worker, run_python

pytestmark = [pytest.mark.cython, pytest.mark.timeout(60)]


@pytest.fixture
def spin_ns():
    """Sets the spin time for one test, then puts the default back."""
    import fastsync._compiled as compiled
    previous = compiled._set_spin_ns(0)
    yield compiled._set_spin_ns
    compiled._set_spin_ns(previous)


def _timed_out_wait(kind):
    """A call that blocks until its 0.2 s timeout: nobody will wake it."""
    import fastsync._compiled as compiled
    if kind == "Lock":
        lock = compiled.Lock()
        lock.acquire()
        return lambda: lock.acquire(timeout=0.2)
    if kind == "Event":
        return lambda: compiled.Event().wait(0.2)
    if kind == "Semaphore":
        return lambda: compiled.Semaphore(0).acquire(timeout=0.2)
    condition = compiled.Condition(compiled.Lock())

    def wait():
        with condition:
            return condition.wait(0.2)
    return wait


def _cpu_seconds_of(call):
    """The calling thread's CPU time for call(), and its result."""
    start = time.thread_time()
    result = call()
    return time.thread_time() - start, result


KINDS = ["Lock", "Event", "Semaphore", "Condition"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_thread_spins_until_the_deadline_at_most(spin_ns, kind):
    # A spin time longer than the timeout: the wait spins to its deadline, so
    # its CPU time is about the timeout; it still times out, not early.
    spin_ns(10**9)
    wait = _timed_out_wait(kind)
    worker = Worker(lambda: (time.monotonic(), _cpu_seconds_of(wait), time.monotonic()))
    worker.start()
    started, (cpu, result), ended = worker.join_result(30)
    assert result is False
    assert ended - started >= 0.2
    # A sleeping wait uses about 0.001 s; a spin of 0.2 s a few ms even on a
    # machine busy enough to give it a tenth of a CPU.
    assert cpu > 0.005


@pytest.mark.parametrize("kind", KINDS)
def test_a_thread_sleeps_after_its_spin(spin_ns, kind):
    spin_ns(20_000_000)     # 20 ms of a 200 ms wait
    worker = Worker(_cpu_seconds_of, _timed_out_wait(kind))
    worker.start()
    cpu, result = worker.join_result(30)
    assert result is False
    assert cpu < 0.12


@pytest.mark.parametrize("kind", KINDS)
def test_the_main_thread_spins_only_where_it_watches_for_signals(kind):
    # A signal that arrives during a spin would not end a plain sleep after
    # it; the main thread spins only where its sleeps watch for signals too.
    # In a child: the main thread here has a record of spins that ran out.
    code = f"""
import time, fastsync._compiled as compiled
from test_spin import _cpu_seconds_of, _timed_out_wait
compiled._set_spin_ns(10**9)
cpu, result = _cpu_seconds_of(_timed_out_wait({kind!r}))
print(result, cpu, compiled._main_thread_watches_signals())
"""
    result = run_python(code, env={"PYTHONPATH": os.path.dirname(__file__)})
    assert result.returncode == 0, result.stderr
    waited, cpu, watches = result.stdout.split()
    assert waited == "False"
    # A wait that sleeps at once uses about 0.0001 s of CPU; one that spins
    # for its 0.2 s, at least a few ms even on a machine busy enough to give
    # it a tenth of a CPU.
    if watches == "True":
        assert float(cpu) > 0.005
    else:
        assert float(cpu) < 0.005


def test_the_main_thread_watches_for_signals_on_linux():
    # Every CPython this project supports has a signal word the module can
    # find (_interpreter_signals.c); a kernel without futex_waitv is the only
    # reason for the main thread not to spin on Linux.
    import fastsync._compiled as compiled
    if not __import__("sys").platform.startswith("linux"):
        pytest.skip("only Linux's futex layer watches a second word")
    assert compiled._main_thread_watches_signals() == compiled._kernel_can_watch()


def test_spinning_wakes_a_waiter_that_a_sleep_would_miss(spin_ns):
    # Hand-offs in both directions with spinning on: every one arrives (the
    # protocols' wake-ups still happen when a spin sees the change first).
    import fastsync._compiled as compiled
    spin_ns(10**6)
    ping, pong = compiled.Event(), compiled.Event()
    rounds = 2000

    def serve():
        for _ in range(rounds):
            assert ping.wait(10)
            ping.clear()
            pong.set()

    worker = Worker(serve)
    worker.start()
    for _ in range(rounds):
        ping.set()
        assert pong.wait(10)
        pong.clear()
    worker.join_result(30)


@pytest.mark.skipif(not hasattr(__import__("os"), "sched_setaffinity"), reason="Linux CPU affinity")
def test_no_spinning_on_one_cpu():
    code = (
        "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})\n"
        "import fastsync._compiled as c\n"
        "print(c._set_spin_ns(0), c.DEFAULT_SPIN_NS)\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    budget, default = map(int, result.stdout.split())
    assert budget == 0 and default > 0


def test_no_spinning_when_asked():
    code = "import fastsync._compiled as c; print(c._set_spin_ns(0))"
    import fastsync._compiled as compiled
    assert run_python(code, env={"FASTSYNC_NO_SPIN": "1"}).stdout.split() == ["0"]
    if compiled._usable_cpus() > 1:
        on = run_python(code, env={"FASTSYNC_NO_SPIN": "0"}).stdout.split()
        assert on == [str(compiled.DEFAULT_SPIN_NS)]


def test_spin_time_is_checked(spin_ns):
    for bad in (-1, 10**9 + 1):
        with pytest.raises(ValueError):
            spin_ns(bad)
    with pytest.raises(TypeError):
        spin_ns(1.5)


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork()")
def test_a_forked_child_does_not_count_the_parents_spinners():
    # Threads spinning in the parent at fork() don't exist in the child; they
    # must not count against the child's limit of spinning threads (as many
    # as there are CPUs, so the parent fills it).
    code = """
import os, threading, time
import fastsync._compiled as c
c._set_spin_ns(10**9)
cpus = c._usable_cpus()
done = c.Event()
spinners = [threading.Thread(target=done.wait) for _ in range(cpus)]
for spinning in spinners:
    spinning.start()
deadline = time.monotonic() + 30
while c._spinning_threads() < cpus and time.monotonic() < deadline:
    time.sleep(0.001)
print(c._spinning_threads(), flush=True)
pid = os.fork()
if pid == 0:
    print(c._spinning_threads(), flush=True)
    os._exit(0)
os.waitpid(pid, 0)
done.set()
for spinning in spinners:
    spinning.join()
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    import fastsync._compiled as compiled
    assert result.stdout.split() == [str(compiled._usable_cpus()), "0"]
