"""Barrier, both backends: cycles, action, timeout, abort, reset."""

import re
import sys
import threading
from decimal import Decimal
from fractions import Fraction

import pytest

import fastsync
from helpers import start, threading_refuses_nan_timeout, wait_until_blocked


class FloatOnly:
    """Convertible with float(), which threading's timeouts don't use."""

    def __float__(self):
        return 0.02

    def __repr__(self):
        return "FloatOnly()"


@pytest.fixture
def Barrier(backend):
    return backend.Barrier


def run_parties(barrier, parties, timeout=None):
    workers = [start(barrier.wait, timeout) for _ in range(parties)]
    return [w.join_result() for w in workers]


def test_cycles_give_each_party_an_index(Barrier):
    barrier = Barrier(3)
    for _ in range(20):
        assert sorted(run_parties(barrier, 3)) == [0, 1, 2]
    assert barrier.n_waiting == 0 and not barrier.broken and barrier.parties == 3


def test_threads_looping_on_one_barrier_meet_every_cycle(Barrier):
    """The same threads call wait() again at once: a thread's k-th call is
    in cycle k, whose indices are 0..parties-1, and each cycle runs the
    action once before anyone leaves it."""
    parties, cycles = 3, 300
    actions = []
    barrier = Barrier(parties, action=lambda: actions.append(len(actions)))

    def loop():
        seen = []
        for _ in range(cycles):
            seen.append((barrier.wait(), len(actions)))
        return seen

    workers = [start(loop) for _ in range(parties)]
    results = [w.join_result() for w in workers]
    for k in range(cycles):
        assert sorted(seen[k][0] for seen in results) == list(range(parties))
        # Its action ran before anyone left; the next cycle's can't have
        # run yet, as it waits for this very thread.
        assert [seen[k][1] for seen in results] == [k + 1] * parties
    assert len(actions) == cycles and barrier.n_waiting == 0


def test_action_runs_once_per_cycle(Barrier):
    calls = []
    barrier = Barrier(4, action=lambda: calls.append(1))
    for _ in range(5):
        run_parties(barrier, 4)
    assert len(calls) == 5


def test_action_error_breaks_the_barrier(Barrier):
    def action():
        raise KeyError("in action")

    barrier = Barrier(2, action=action)
    other = start(barrier.wait)
    wait_until_blocked(other)
    with pytest.raises(KeyError):
        barrier.wait()
    with pytest.raises(threading.BrokenBarrierError):
        other.join_result()
    assert barrier.broken


def test_timeout_breaks_the_barrier(Barrier):
    barrier = Barrier(2)
    with pytest.raises(threading.BrokenBarrierError):
        barrier.wait(0.05)
    assert barrier.broken
    with pytest.raises(threading.BrokenBarrierError):
        barrier.wait()


def _after_a_timeout(Barrier):
    barrier = Barrier(3)
    waiter = start(barrier.wait)
    wait_until_blocked(waiter)
    try:
        barrier.wait(0.01)
    except threading.BrokenBarrierError:
        pass
    try:
        waiter.join_result()
    except threading.BrokenBarrierError:
        pass
    return barrier.broken, barrier.n_waiting, barrier._state, barrier._count


def test_state_after_a_timeout_like_threading(Barrier):
    """Both waiters leave the broken cycle: the private counters threading's
    Barrier keeps read the same."""
    assert _after_a_timeout(Barrier) == _after_a_timeout(threading.Barrier) == (True, 0, -2, 0)


def test_default_timeout(Barrier):
    barrier = Barrier(2, timeout=0.05)
    with pytest.raises(threading.BrokenBarrierError):
        barrier.wait()


def _lone_wait_outcome(Barrier, timeout, in_constructor):
    """One thread waits alone at a barrier for two: what it raises, and the
    barrier's state after it."""
    barrier = Barrier(2, timeout=timeout) if in_constructor else Barrier(2)
    try:
        if in_constructor:
            barrier.wait()
        else:
            barrier.wait(timeout)
    except Exception as error:   # comparing what is raised
        error_seen = (type(error), str(error))
    else:
        error_seen = None
    return error_seen, barrier.broken, barrier.n_waiting


@pytest.mark.parametrize("in_constructor", [True, False], ids=["constructor", "wait"])
@pytest.mark.parametrize("timeout", [
    Fraction(1, 50), Decimal("0.02"), 2**63, -2**63, 10**30, 1e300, float("inf"),
    float("-inf"), -1, -0.5, 0, 0.0, False, 1j, "0.02", FloatOnly(),
], ids=repr)
def test_odd_timeouts_raise_like_threading(Barrier, timeout, in_constructor):
    """threading passes the caller's timeout as it is to its first
    Condition.wait, so that wait's (the lock's) error is what it raises, and
    the barrier stays whole; a timeout that has already passed breaks it."""
    expected = _lone_wait_outcome(threading.Barrier, timeout, in_constructor)
    assert _lone_wait_outcome(Barrier, timeout, in_constructor) == expected


def _meet_with_nan_timeout(Barrier, in_constructor, check_blocked):
    nan = float("nan")
    barrier = Barrier(2, timeout=nan) if in_constructor else Barrier(2)
    waiter = start(barrier.wait, None if in_constructor else nan)
    if check_blocked:
        wait_until_blocked(waiter)
    index = barrier.wait()
    return sorted([index, waiter.join_result()]), barrier.broken


@pytest.mark.parametrize("in_constructor", [True, False], ids=["constructor", "wait"])
def test_nan_timeout_waits_until_the_cycle_ends(Barrier, in_constructor):
    """A NaN deadline never passes, so threading's waiter stays until the
    other party arrives (looking again and again); fastsync's sleeps until
    then, which lets that party take the lock.  (Since 3.14 threading refuses
    NaN instead: see test_nan_timeout_is_refused_like_threading.)"""
    if threading_refuses_nan_timeout():
        pytest.skip("threading refuses a NaN timeout here")
    expected = _meet_with_nan_timeout(threading.Barrier, in_constructor, check_blocked=False)
    assert _meet_with_nan_timeout(Barrier, in_constructor, check_blocked=True) == expected


@pytest.mark.parametrize("in_constructor", [True, False], ids=["constructor", "wait"])
def test_nan_timeout_is_refused_like_threading(Barrier, in_constructor):
    """Where threading refuses NaN (3.14+), the lone waiter gets its
    ValueError and the barrier stays whole; elsewhere the lone waiter would
    wait for ever, in threading too."""
    if not threading_refuses_nan_timeout():
        pytest.skip("threading takes a NaN timeout here (see test_nan_timeout_waits_until_the_cycle_ends)")
    expected = _lone_wait_outcome(threading.Barrier, float("nan"), in_constructor)
    assert expected[0][0] is ValueError
    assert _lone_wait_outcome(Barrier, float("nan"), in_constructor) == expected


def test_abort_wakes_waiters_with_error(Barrier):
    barrier = Barrier(3)
    waiters = []
    for _ in range(2):   # one by one: the first could be asleep on the lock, not counted yet
        waiters.append(start(barrier.wait))
        wait_until_blocked(waiters[-1])
    assert barrier.n_waiting == 2
    barrier.abort()
    for waiter in waiters:
        with pytest.raises(threading.BrokenBarrierError):
            waiter.join_result()
    assert barrier.broken and barrier.n_waiting == 0


def _waiter_outcome_after_trip_then_abort(Barrier):
    barrier = Barrier(2)
    waiter = start(barrier.wait)
    wait_until_blocked(waiter)
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1000)   # the woken waiter can't run before abort()
    try:
        barrier.wait()            # the last arrival releases the waiter ...
        barrier.abort()           # ... which hasn't left wait() yet
    finally:
        sys.setswitchinterval(previous)
    try:
        return waiter.join_result()
    except threading.BrokenBarrierError:
        return "BrokenBarrierError"


def test_abort_breaks_released_waiters_that_have_not_left(Barrier):
    """threading's waiters raise if abort() comes while the barrier drains,
    before they got back the lock; fastsync's too, though its next cycle
    doesn't wait for them to leave."""
    outcome = _waiter_outcome_after_trip_then_abort(Barrier)
    assert outcome == _waiter_outcome_after_trip_then_abort(threading.Barrier)
    assert outcome == "BrokenBarrierError"


def test_reset_breaks_current_waiters_then_works_again(Barrier):
    barrier = Barrier(2)
    waiter = start(barrier.wait)
    wait_until_blocked(waiter)
    barrier.reset()
    with pytest.raises(threading.BrokenBarrierError):
        waiter.join_result()
    assert not barrier.broken
    assert sorted(run_parties(barrier, 2)) == [0, 1]
    barrier.abort()
    barrier.reset()
    assert not barrier.broken
    assert sorted(run_parties(barrier, 2)) == [0, 1]


def test_broken_barrier_error_is_threadings(Barrier):
    assert fastsync.BrokenBarrierError is threading.BrokenBarrierError
    barrier = Barrier(2)
    barrier.abort()
    try:
        barrier.wait()
    except threading.BrokenBarrierError:
        pass
    else:
        pytest.fail("no BrokenBarrierError")


@pytest.mark.parametrize("parties", [0, -1])
def test_parties_must_be_positive(Barrier, parties):
    """Refused on every version; with threading's message where threading
    refuses it too (from 3.13), which varies."""
    try:
        threading.Barrier(parties)
        message = "parties must be > 0"
    except ValueError as error:
        message = str(error)
    with pytest.raises(ValueError) as raised:
        Barrier(parties)
    assert str(raised.value) == message


def test_repr(Barrier):
    barrier = Barrier(2)
    assert re.fullmatch(r"<fastsync\.Barrier at 0x[0-9a-f]+: waiters=0/2>", repr(barrier))
    barrier.abort()
    assert re.fullmatch(r"<fastsync\.Barrier at 0x[0-9a-f]+: broken>", repr(barrier))
