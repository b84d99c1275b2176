"""Bad input, found by hypothesis: random call sequences against fastsync and
threading side by side, in one thread.

Every call goes to both objects; results must be equal, exceptions of the
same type (with the same message, except where threading's message names the
function or its arguments: arity and keyword errors), warnings the same, and
the visible state equal after each step.  tests/test_parity.py checks a fixed
list of arguments; this explores sequences and combinations.

A call that would block for long is never made: before each call that could
block, the threading object is probed (a non-blocking try, undone at once);
if it would block and the call's arguments allow more than a few hundred
microseconds, the step is skipped.  Positive timeouts are drawn mostly tiny,
so timed waits that do happen are short.

A new primitive joins by adding its operations strategy, a state function and
a probe to MODELS."""

import ctypes
import decimal
import fractions
import math
import os
import threading
import warnings

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("FASTSYNC_PROPERTY_EXAMPLES", "300"))
# The longest a single call may block when it has to wait.
SHORT = 0.0003
ULONG_MAX = 2 ** (8 * ctypes.sizeof(ctypes.c_ulong)) - 1

RESTORE = "restore"   # a step that needs the RLock's underlying lock free

# A wrong skip rule would block in a call that no signal interrupts (the
# stdlib's _acquire_restore): end the run rather than hang it.
pytestmark = pytest.mark.timeout(120, method="thread")

SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,                 # timed waits make durations uneven
    database=None,                 # no .hypothesis directory in the tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# ---- argument values ----------------------------------------------------------------

class _Wrapped:
    def __init__(self, value):
        self.value = value

    def __repr__(self):
        return f"{type(self).__name__}({self.value})"


class IndexOnly(_Wrapped):
    """An integer-like object: __index__ only."""

    def __index__(self):
        return self.value


class FloatOnly(_Wrapped):
    """A float-like object: __float__ only."""

    def __float__(self):
        return self.value


class BadBool:
    """Truth testing raises."""

    def __bool__(self):
        raise ZeroDivisionError("no truth in me")

    def __repr__(self):
        return "BadBool()"


class BadCompare:
    """Comparing with a number raises (Event.wait compares timeout > 0)."""

    def __gt__(self, other):
        raise ArithmeticError("no order in me")

    __lt__ = __ge__ = __le__ = __gt__

    def __repr__(self):
        return "BadCompare()"


WRONG_TYPES = ["1", b"1", None, [1], (), {}, object(), 1j, BadBool(), BadCompare(),
               FloatOnly(0.0001), FloatOnly(-1.0)]

timeouts = st.one_of(
    st.sampled_from([-1, 0, SHORT, 1e-5]),   # the usual values, weighted up
    st.sampled_from([-1, -1.0, 0, 0.0, -0.0, True, False, -2, -0.5, -1e-9, -1.0000001,
                     -0.9999999999, math.inf, -math.inf, math.nan, 1e300, -1e300,
                     2 ** 63, 2 ** 70, -(2 ** 70), threading.TIMEOUT_MAX,
                     threading.TIMEOUT_MAX * 2, 1e-9, 5e-7, SHORT]),
    st.floats(min_value=-3, max_value=SHORT),
    st.floats(),                   # anything: NaN, infinities, huge, subnormal
    st.integers(min_value=-(2 ** 80), max_value=2 ** 80),
    st.sampled_from([decimal.Decimal("0.0001"), decimal.Decimal(-1), decimal.Decimal("NaN"),
                     fractions.Fraction(1, 10000), fractions.Fraction(-1, 1),
                     IndexOnly(0), IndexOnly(-1), IndexOnly(2 ** 70)]),
    st.sampled_from(WRONG_TYPES),
)
blocking_flags = st.one_of(
    st.booleans(),                 # the usual values, weighted up
    st.booleans(),
    st.sampled_from([True, False, 0, 1, -1, 2, 2 ** 31, -(2 ** 31) - 1, 2 ** 63, 2 ** 100,
                     0.0, 1.0, 2.5, IndexOnly(0), IndexOnly(1), decimal.Decimal(0)]),
    st.sampled_from(WRONG_TYPES),
)
acquire_calls = st.one_of(
    st.just(((), {})),
    st.tuples(blocking_flags).map(lambda b: (b, {})),
    st.tuples(blocking_flags, timeouts).map(lambda bt: (bt, {})),
    timeouts.map(lambda t: ((), {"timeout": t})),
    blocking_flags.map(lambda b: ((), {"blocking": b})),
    st.tuples(blocking_flags, timeouts).map(lambda bt: ((), {"blocking": bt[0], "timeout": bt[1]})),
    st.tuples(blocking_flags, timeouts).map(lambda bt: ((bt[0],), {"timeout": bt[1]})),
    # Wrong shapes: too many, unknown keyword, the same one twice.
    st.just(((True, 0, 0), {})),
    st.just(((), {"wait": True})),
    st.just(((True,), {"blocking": True})),
)


def numeric(value):
    """The number a timeout argument stands for, if it stands for one."""
    if isinstance(value, (bool, int, float, decimal.Decimal, fractions.Fraction)):
        try:
            return float(value)
        except (OverflowError, ValueError):
            return math.inf
    if isinstance(value, IndexOnly):
        return float(value.value)
    if isinstance(value, FloatOnly):
        return value.value
    return None


def may_wait_long(timeout, forever=-1.0):
    """Could a call with this timeout, on a primitive it must wait for, wait
    for more than SHORT?  Errs on the side of yes."""
    if timeout is None:
        return True
    value = numeric(timeout)
    if value is None or math.isnan(value):
        return False               # rejected before any waiting
    if forever is not None and abs(value - forever) < 1e-6:
        return True
    return SHORT < value <= threading.TIMEOUT_MAX * 1.01


def is_plainly_false(flag):
    return flag is False or (type(flag) is int and flag == 0)


def acquire_may_wait_long(args, kwargs):
    if len(args) > 2 or set(kwargs) - {"blocking", "timeout"}:
        return False               # a TypeError, whatever the state
    blocking = args[0] if args else kwargs.get("blocking", True)
    timeout = args[1] if len(args) > 1 else kwargs.get("timeout", -1)
    if is_plainly_false(blocking):
        return False
    return may_wait_long(timeout)


# ---- running both side by side ------------------------------------------------------

SELF = "<the object itself>"


def observe(obj, name, args, kwargs):
    """Call obj.name(*args, **kwargs): (outcome, warnings raised)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value = getattr(obj, name)(*args, **kwargs)
            # A call may return the object it was made on (__enter__ does on
            # PyPy): that compares equal only to the other object returning itself.
            result = ("ok", SELF if value is obj else value)
        except Exception as error:    # noqa: BLE001 - compared with threading's
            result = (type(error), str(error))
    # Distinct warnings: on 3.9 the compiled backend can emit the same
    # DeprecationWarning twice in one call (acquire(Decimal(0), 0)), which no
    # filter but "always" shows; the kinds and texts must match.
    return result, sorted({(w.category.__name__, str(w.message)) for w in caught})


def describes_signature(message):
    # "acquire() takes at most 2 arguments (3 given)" and the like name the
    # function and count differently in C, Cython and Python.
    return any(word in message for word in ("argument", "positional", "keyword"))


def same(expected, got, exact_messages=True):
    (expected_result, expected_warnings), (got_result, got_warnings) = expected, got
    if expected_warnings != got_warnings:
        return False
    if expected_result == got_result:
        return True
    kind, message = expected_result
    if kind == "ok" or got_result[0] is not kind:
        return False
    return not exact_messages or describes_signature(message)


def label(observed):
    """A short name for an outcome, for hypothesis's statistics."""
    (kind, value), caught = observed
    text = repr(value) if kind == "ok" else kind.__name__
    return text + (" + warning" if caught else "")


def would_block(ref):
    """Would a blocking acquire wait on the threading lock `ref` right now?
    Probes with a non-blocking try and undoes it."""
    # An RLock this thread owns never makes it wait.  Nor may it be probed:
    # since 3.14 one held at count 0 (after _acquire_restore) would go to
    # count 1 and the release would then free it.
    owned = getattr(ref, "_is_owned", None)
    if owned is not None and owned():
        return False
    try:
        got = ref.acquire(False)
    except OverflowError:          # an RLock at its count limit: held by us
        return False
    if got:
        ref.release()
    return not got


def owner_and_count(rlock):
    text = repr(rlock)
    return int(text.split(" owner=")[1].split()[0]), int(text.split(" count=")[1].split()[0])


def restore_would_block(ref):
    """_acquire_restore always takes the underlying lock, even from its owner."""
    return ref._is_owned() or owner_and_count(ref)[1] > 0 or would_block(ref)


def run_side_by_side(ours, ref, steps, state_of, blocks=would_block):
    """Apply each step to both; compare outcomes and states.  A step is
    (name, args, kwargs, may_wait_long, exact_messages); may_wait_long is
    False, True or RESTORE.  blocks(ref) says whether a step that may wait
    long would wait now."""
    done = []
    for name, args, kwargs, waits_long, exact in steps:
        if waits_long is RESTORE:
            if restore_would_block(ref):
                event(f"{name}: skipped, would block")
                continue
        elif waits_long and blocks(ref):
            event(f"{name}: skipped, would block")
            continue
        done.append((name, args, kwargs))
        expected = observe(ref, name, args, kwargs)
        got = observe(ours, name, args, kwargs)
        assert same(expected, got, exact), (done, expected, got)
        event(f"{name} -> {label(expected)}")
        assert state_of(ours) == state_of(ref), (done, state_of(ours), state_of(ref))
    return done


# ---- Lock and RLock -----------------------------------------------------------------

def lock_steps(reference, extra=()):
    # RLock.locked() arrived in threading with 3.14; fastsync has it anyway.
    locked = [st.just(("locked", (), {}, False, True))] if hasattr(reference, "locked") else []
    return st.one_of(
        acquire_calls.map(lambda c: ("acquire", c[0], c[1], acquire_may_wait_long(*c), True)),
        st.just(("release", (), {}, False, True)),
        *locked,
        st.just(("__enter__", (), {}, True, True)),
        st.just(("__exit__", (None, None, None), {}, False, True)),
        st.just(("release", (1,), {}, False, True)),
        st.just(("_at_fork_reinit", (), {}, False, True)),
        *extra,
    )


def lock_state(lock):
    return lock.locked()


@SETTINGS
@given(steps=st.lists(lock_steps(threading.Lock()), max_size=60))
def test_lock_call_sequences_like_threading(backend, steps):
    run_side_by_side(backend.Lock(), threading.Lock(), steps, lock_state)


restore_states = st.one_of(
    st.tuples(st.sampled_from([1, 2, 5, ULONG_MAX, ULONG_MAX - 1, 0, -1, ULONG_MAX + 2]),
              st.sampled_from(["me", 0, 12345])),
    st.sampled_from([None, 5, (1,), (1, 2, 3), ("a", "b"), "ab", (1.5, "me"), ("me", 1)]),
)


def restore_step(state):
    if isinstance(state, tuple):
        state = tuple(threading.get_ident() if part == "me" else part for part in state)
    # Messages for malformed states differ in wording; types must match.
    return ("_acquire_restore", (state,), {}, RESTORE, False)


def rlock_state(rlock):
    return rlock._is_owned(), owner_and_count(rlock)


@SETTINGS
@given(steps=st.lists(lock_steps(threading.RLock(), extra=(
    st.just(("_is_owned", (), {}, False, True)),
    st.just(("_release_save", (), {}, False, True)),
    restore_states.map(restore_step),
)), max_size=60))
def test_rlock_call_sequences_like_threading(backend, steps):
    run_side_by_side(backend.RLock(), threading.RLock(), steps, rlock_state)


# ---- Event ----------------------------------------------------------------------------

def event_wait_step(call):
    args, kwargs = call
    timeout = args[0] if args else kwargs.get("timeout")
    shape_ok = len(args) <= 1 and not set(kwargs) - {"timeout"}
    return ("wait", args, kwargs, shape_ok and may_wait_long(timeout, forever=None), True)


event_wait_calls = st.one_of(
    st.just(((), {})),
    st.just(((None,), {})),
    timeouts.map(lambda t: ((t,), {})),
    timeouts.map(lambda t: ((), {"timeout": t})),
    st.just(((0, 0), {})),
    st.just(((), {"blocking": True})),
)
event_steps = st.one_of(
    st.just(("set", (), {}, False, True)),
    st.just(("clear", (), {}, False, True)),
    st.just(("is_set", (), {}, False, True)),
    st.just(("set", (1,), {}, False, True)),
    st.just(("_at_fork_reinit", (), {}, False, True)),
    event_wait_calls.map(event_wait_step),
)


@SETTINGS
@given(steps=st.lists(event_steps, max_size=60))
def test_event_call_sequences_like_threading(backend, steps):
    run_side_by_side(backend.Event(), threading.Event(), steps, state_of=lambda e: e.is_set(),
                     blocks=lambda e: not e.is_set())


# ---- the model itself -------------------------------------------------------------------

@pytest.mark.parametrize("timeout,expected", [
    (None, True), (-1, True), (-1.0, True), (1, True), (True, True), (1e6, True),
    (0, False), (SHORT, False), (-0.5, False), (math.nan, False), (math.inf, False),
    (1e300, False), ("x", False), (decimal.Decimal(5), True), (IndexOnly(-1), True),
])
def test_the_model_knows_long_waits(timeout, expected):
    """The skip rule must be right, or a step would hang the suite."""
    assert may_wait_long(timeout) is expected
