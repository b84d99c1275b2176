"""Same call, same answer: fastsync against the running Python's threading.

Exceptions must have the same type, and the same message wherever threading's
message is fixed text (for wrong argument counts only the type is compared:
those messages name the function differently)."""

import decimal
import fractions
import inspect
import threading

import pytest

from helpers import start


class FloatOnly:
    """A number only through __float__, which 3.15's locks take as a timeout."""

    def __float__(self):
        return 0.001

    def __repr__(self):
        return "FloatOnly()"


class IntOnly:
    def __int__(self):
        return 0

    def __repr__(self):
        return "IntOnly()"


TIMEOUT_ARGS = [
    ((), {}),
    ((False,), {}),
    ((True, -1), {}),
    ((True, -1.0), {}),
    ((True, 0), {}),
    ((True, 0.001), {}),
    ((True, True), {}),
    ((False, 1), {}),
    ((False, 0), {}),
    ((False, -1.0), {}),
    ((0, -1), {}),
    ((True, -2), {}),
    ((True, -0.5), {}),
    ((True, -1e-10), {}),
    ((True, -0.9999999999), {}),
    ((), {"timeout": float("nan")}),
    ((), {"timeout": float("inf")}),
    ((), {"timeout": float("-inf")}),
    ((), {"timeout": 1e300}),
    ((), {"timeout": 1e10}),
    ((), {"timeout": 2**70}),
    ((), {"timeout": -(2**70)}),
    ((), {"timeout": threading.TIMEOUT_MAX}),
    ((), {"timeout": "1"}),
    ((), {"timeout": None}),
    ((), {"timeout": [1]}),
    ((), {"timeout": decimal.Decimal(1)}),
    ((), {"timeout": decimal.Decimal(-1)}),
    ((), {"timeout": fractions.Fraction(1, 2)}),
    ((), {"timeout": FloatOnly()}),
    ((), {"timeout": IntOnly()}),
    (("x",), {}),
    ((None,), {}),
    ((2.5,), {}),
    (([],), {}),
    ((2**40,), {}),
    ((-(2**40),), {}),
    ((1, 2, 3), {}),
    ((), {"foo": 1}),
    ((), {"blocking": False, "timeout": 3}),
]


def outcome(call):
    """('ok', result) or (exception type, message)."""
    try:
        return "ok", call()
    except Exception as error:   # noqa: BLE001 - comparing whatever is raised
        return type(error), str(error)


def same(expected, got):
    if expected == got:
        return True
    kind, message = expected
    # "acquire() takes at most 2 arguments" vs "Lock.acquire() takes ...".
    return kind is TypeError and got[0] is TypeError and ("argument" in message)


def acquire_outcome(factory, args, kwargs):
    lock = factory()
    result = outcome(lambda: lock.acquire(*args, **kwargs))
    if result == ("ok", True):
        lock.release()
    return result


@pytest.mark.filterwarnings("ignore::DeprecationWarning")   # 3.9 warns for Decimal
@pytest.mark.parametrize("args,kwargs", TIMEOUT_ARGS, ids=repr)
@pytest.mark.parametrize("kind", ["Lock", "RLock"])
def test_acquire_arguments_like_threading(backend, kind, args, kwargs):
    expected = acquire_outcome(getattr(threading, kind), args, kwargs)
    got = acquire_outcome(getattr(backend, kind), args, kwargs)
    assert same(expected, got), (expected, got)


# Calls that can't block: on a free lock anything goes; on a lock another
# thread holds, only calls that give up.
ENTER_ARGS_FREE = [((), {}), ((True,), {}), ((1,), {}), ((True, 0.01), {}), ((), {"blocking": True}),
                   ((), {"timeout": 0.01}), ((), {"x": 1}), ((True, 1, 2), {}), ((True, -5), {})]
ENTER_ARGS_HELD = [((False,), {}), ((0,), {}), ((), {"blocking": False}), ((True, 0.01), {}),
                   ((), {"timeout": 0})]


@pytest.mark.parametrize("held,args,kwargs",
                         [(False, *call) for call in ENTER_ARGS_FREE]
                         + [(True, *call) for call in ENTER_ARGS_HELD], ids=repr)
@pytest.mark.parametrize("kind", ["Lock", "RLock"])
def test_enter_arguments_like_threading(backend, kind, held, args, kwargs):
    """Up to 3.14 threading's __enter__ is its acquire, arguments and result
    included; since 3.15 it takes none."""
    def enter_outcome(factory):
        lock = factory()
        if held:   # by another thread, so that an RLock can't re-enter either
            taken = threading.Event()
            threading.Thread(target=lambda: (lock.acquire(), taken.set()), daemon=True).start()
            taken.wait()
        result = outcome(lambda: lock.__enter__(*args, **kwargs))
        if result[1] is lock:   # PyPy's __enter__ returns the lock itself
            result = ("ok", "the lock")
        if result in (("ok", True), ("ok", "the lock")):
            lock.release()
        return result

    expected = enter_outcome(getattr(threading, kind))
    got = enter_outcome(getattr(backend, kind))
    assert same(expected, got), (expected, got)


EVENT_TIMEOUTS = [None, 0, 0.0, -1, -5.5, 0.001, True, False, float("nan"), float("-inf"),
                  float("inf"), 1e300, 2**70, "x", [1], decimal.Decimal("0.001"), fractions.Fraction(1, 1000),
                  FloatOnly()]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("timeout", EVENT_TIMEOUTS, ids=repr)
@pytest.mark.parametrize("flag", [True, False], ids=["set", "clear"])
def test_event_wait_arguments_like_threading(backend, timeout, flag):
    if timeout is None and not flag:
        timeout = 0.001   # None would wait forever on both; the wake-up tests cover it
    def wait(event):
        if flag:
            event.set()
        return outcome(lambda: event.wait(timeout))
    assert wait(backend.Event()) == wait(threading.Event())


def test_timeout_max_is_the_limit(any_lock):
    lock = any_lock()
    assert lock.acquire(timeout=threading.TIMEOUT_MAX) is True
    lock.release()
    with pytest.raises(OverflowError):
        lock.acquire(timeout=threading.TIMEOUT_MAX * 2)


PUBLIC_METHODS = {
    "Lock": ["acquire", "release", "locked", "__enter__", "__exit__", "_at_fork_reinit"],
    "RLock": ["acquire", "release", "locked", "__enter__", "__exit__", "_at_fork_reinit",
              "_is_owned", "_release_save", "_acquire_restore", "_recursion_count"],
    "Event": ["is_set", "isSet", "set", "clear", "wait", "_at_fork_reinit"],
    "Condition": ["acquire", "release", "locked", "__enter__", "__exit__", "wait", "wait_for", "notify",
                  "notify_all", "notifyAll", "_is_owned", "_release_save", "_acquire_restore",
                  "_at_fork_reinit"],
    "Semaphore": ["acquire", "release", "__enter__", "__exit__"],
    "BoundedSemaphore": ["acquire", "release", "__enter__", "__exit__"],
    "Barrier": ["wait", "reset", "abort"],
}
MAKE = {"Semaphore": lambda cls: cls(1), "BoundedSemaphore": lambda cls: cls(1),
        "Barrier": lambda cls: cls(2)}


@pytest.mark.parametrize("kind", sorted(PUBLIC_METHODS))
def test_has_threading_methods(backend, kind):
    make = MAKE.get(kind, lambda cls: cls())
    instance = make(getattr(backend, kind))
    reference = make(getattr(threading, kind))
    for name in PUBLIC_METHODS[kind]:
        assert callable(getattr(instance, name)), name
    # Everything threading's object offers, fastsync's offers too.
    ignored = {"_cond", "_flag", "_reset_internal_locks",
               "_waiters",
               # threading.Barrier's internal steps
               "_enter", "_exit", "_release", "_wait", "_break"}
    missing = {name for name in dir(reference) if not name.startswith("__")} - set(dir(instance)) - ignored
    assert not missing


def _signature(function):
    try:
        return inspect.signature(function)
    except (TypeError, ValueError):
        return None


def _parameters_after_self(sig):
    # `self` is positional-only in C, positional-or-keyword in Python.
    return [(p.name, p.kind, p.default) for p in list(sig.parameters.values())[1:]]


@pytest.mark.cython   # needs the compiled backend beside the fallback
@pytest.mark.parametrize("kind", sorted(PUBLIC_METHODS))
def test_backends_expose_same_names_and_signatures(kind):
    import fastsync._compiled as compiled
    import fastsync._fallback as fallback

    assert sorted(compiled.__all__) == sorted(fallback.__all__)
    compiled_class, fallback_class = getattr(compiled, kind), getattr(fallback, kind)
    hooks = set(PUBLIC_METHODS[kind])

    def public(cls):
        return {n for n in dir(cls) if not n.startswith("_") or n in hooks}

    make = MAKE.get(kind, lambda cls: cls())
    assert public(make(compiled_class)) == public(make(fallback_class))
    for name in PUBLIC_METHODS[kind]:
        if kind == "Condition" and name in ("acquire", "release", "locked"):
            continue   # threading binds the lock's own methods; their signature is the lock's
        compiled_sig = _signature(getattr(compiled_class, name))
        assert compiled_sig is not None, f"compiled {kind}.{name} has no signature"
        fallback_sig = _signature(getattr(fallback_class, name))
        if fallback_sig is None:
            # The fallback's Lock and RLock reuse the _thread locks' own C
            # methods, which have no signature before 3.13: they are
            # threading's own.
            reference = {"RLock": threading._CRLock, "Lock": type(threading.Lock())}[kind]
            assert getattr(fallback_class, name) is getattr(reference, name), name
            continue
        assert _parameters_after_self(compiled_sig) == _parameters_after_self(fallback_sig), name


@pytest.mark.parametrize("args,kwargs", [((1,), {}), ((), {"x": 1}), ((1, 2, 3), {"y": None})], ids=repr)
def test_rlock_arguments_like_threading(backend, args, kwargs):
    """threading.RLock() ignores arguments up to 3.12, warns in 3.13 and 3.14
    and refuses them since; the warning points at the caller."""
    import warnings

    def construct(factory):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                result = ("ok", type(factory(*args, **kwargs)).__name__)
            except TypeError:   # messages name the function differently
                result = (TypeError,)
        return result, [(w.category, str(w.message), w.filename) for w in caught]

    assert construct(backend.RLock) == construct(threading.RLock)


@pytest.mark.parametrize("kind", ["Lock", "RLock"])
def test_condition_locked_is_the_locks(backend, kind):
    lock = getattr(backend, kind)()
    condition = backend.Condition(lock)
    assert condition.locked() is False
    with condition:
        assert condition.locked() is True
        assert start(condition.locked).join_result() is True
    assert condition.locked() is False
    if hasattr(threading.Condition(), "locked"):   # 3.14+: threading's has it too
        reference = threading.Condition(getattr(threading, kind)())
        with reference:
            assert reference.locked() is True
