"""Event: the flag, waiting, waking, and threading.Event's rules."""

import copy
import pickle
import re
import sys
import time

import pytest

from helpers import (LINUX, assert_weakly_referenceable, start, thread_cpu_seconds,
                     threading_refuses_nan_timeout, wait_until_blocked)


def test_flag(Event):
    event = Event()
    assert event.is_set() is False
    assert event.set() is None
    assert event.is_set() is True
    event.set()
    assert event.is_set() is True
    assert event.clear() is None
    assert event.is_set() is False
    event.clear()
    assert event.is_set() is False


def test_wait_on_set_event_returns_true_at_once(Event):
    event = Event()
    event.set()
    assert event.wait() is True
    assert event.wait(0) is True
    assert event.wait(5) is True
    assert event.wait(None) is True
    assert event.wait(timeout=-1) is True


@pytest.mark.parametrize("timeout", [0, 0.0, -1, -0.5, float("nan"), float("-inf"), False])
def test_wait_without_positive_timeout_does_not_block(Event, timeout):
    started = time.monotonic()
    if timeout != timeout and threading_refuses_nan_timeout():
        with pytest.raises(ValueError, match="^Invalid value NaN"):
            Event().wait(timeout)
    else:
        assert Event().wait(timeout) is False
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize("timeout", [0.001, 0.01, 0.05, 0.2])
def test_timed_wait_never_returns_early(Event, timeout):
    event = Event()
    started = time.monotonic()
    assert event.wait(timeout) is False
    assert time.monotonic() - started >= timeout


def test_wait_woken_by_set(Event):
    event = Event()
    waiter = start(lambda: event.wait(30))
    wait_until_blocked(waiter)
    event.set()
    assert waiter.join_result() is True


def test_set_wakes_every_waiter(Event):
    event = Event()
    waiters = [start(event.wait) for _ in range(8)]
    timed = [start(lambda: event.wait(30)) for _ in range(4)]
    for waiter in waiters + timed:
        wait_until_blocked(waiter)
    event.set()
    assert [w.join_result() for w in waiters + timed] == [True] * 12


def test_waiter_woken_by_set_reports_true_even_if_cleared_at_once(Event):
    """threading.Event.wait returns True when set() woke it, whatever happened
    to the flag afterwards."""
    event = Event()
    waiters = [start(lambda: event.wait(30)) for _ in range(4)]
    for waiter in waiters:
        wait_until_blocked(waiter)
    event.set()
    event.clear()
    assert [w.join_result() for w in waiters] == [True] * 4
    assert not event.is_set()


def test_ping_pong_loses_no_wakeups(Event):
    ping, pong = Event(), Event()
    rounds = 2000

    def responder():
        for _ in range(rounds):
            if not ping.wait(10):
                return "lost ping"
            ping.clear()
            pong.set()
        return "ok"

    worker = start(responder)
    for n in range(rounds):
        ping.set()
        assert pong.wait(10), f"lost pong in round {n}"
        pong.clear()
    assert worker.join_result() == "ok"


def test_gil_released_while_waiting(Event):
    event = Event()
    waiter = start(lambda: event.wait(30))
    wait_until_blocked(waiter)
    spins, stop_at = 0, time.monotonic() + 0.2
    while time.monotonic() < stop_at:
        spins += 1
    assert spins > 1000
    event.set()
    assert waiter.join_result() is True


@pytest.mark.skipif(not LINUX, reason="per-thread CPU clocks are read on Linux")
def test_waiter_burns_no_cpu(Event):
    event = Event()
    waiter = start(event.wait)
    wait_until_blocked(waiter)
    before = thread_cpu_seconds(waiter)
    time.sleep(0.3)   # measuring an interval, not synchronising
    assert thread_cpu_seconds(waiter) - before < 0.03
    event.set()
    assert waiter.join_result() is True


def test_at_fork_reinit_keeps_the_flag(Event):
    event = Event()
    event._at_fork_reinit()
    assert not event.is_set()
    event.set()
    event._at_fork_reinit()
    assert event.is_set()
    assert event.wait(0)


def test_isSet_alias(Event):
    event = Event()
    if sys.version_info >= (3, 10):
        with pytest.warns(DeprecationWarning, match=r"^isSet\(\) is deprecated, use is_set\(\) instead$"):
            assert event.isSet() is False
    else:
        assert event.isSet() is False


def test_repr(Event):
    event = Event()
    assert re.fullmatch(r"<fastsync\.Event at 0x[0-9a-f]+: unset>", repr(event))
    assert hex(id(event)) in repr(event)
    event.set()
    assert re.fullmatch(r"<fastsync\.Event at 0x[0-9a-f]+: set>", repr(event))


def test_subclass(Event):
    class Named(Event):
        def __init__(self, name):
            super().__init__()
            self.name = name

        def set(self):
            self.name += "!"
            super().set()

    event = Named("go")
    waiter = start(lambda: event.wait(30))
    wait_until_blocked(waiter)
    event.set()
    assert waiter.join_result() is True
    assert event.name == "go!" and event.is_set()
    assert isinstance(event, Event)
    assert re.fullmatch(r"<.*Named at 0x[0-9a-f]+: set>", repr(event))


def test_weak_references(Event):
    assert_weakly_referenceable(Event)


@pytest.mark.parametrize("dump", [pickle.dumps, copy.copy])
def test_cannot_be_pickled(Event, dump):
    with pytest.raises(TypeError, match="cannot pickle"):
        dump(Event())


def test_constructor_takes_no_arguments(Event):
    with pytest.raises(TypeError):
        Event(True)


def test_extra_arguments(Event):
    event = Event()
    with pytest.raises(TypeError):
        event.set(1)
    with pytest.raises(TypeError):
        event.wait(1, 2)
    with pytest.raises(TypeError):
        event.wait(timeout=1, other=2)
    with pytest.raises(TypeError):
        event.is_set(True)
