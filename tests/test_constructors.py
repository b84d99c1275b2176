"""Constructors called with the wrong arguments: fastsync raises what the
running Python's threading raises, the same type and the same message (and
gives the same warnings), on both backends.  The expected answer is always
threading's own, asked with the same arguments."""

import threading
import warnings

import pytest

# threading's constructors, taken before any test can patch threading.
THREADING = {name: getattr(threading, name) for name in
             ("Lock", "RLock", "Event", "Condition", "Semaphore", "BoundedSemaphore", "Barrier")}


class NotALock:
    """Has no acquire, which threading.Condition reads at once."""


BAD_ARGUMENTS = {
    "Lock": [((1,), {}), ((None,), {}), ((True, -1), {}), ((), {"blocking": True}), ((), {"x": 1}),
             ((1,), {"x": 1})],
    "RLock": [((1,), {}), ((None, None), {}), ((), {"x": 1}), ((1, 2, 3), {"y": None})],
    "Event": [((1,), {}), ((None,), {}), ((1, 2), {}), ((), {"flag": True}), ((), {"timeout": 1})],
    "Condition": [((1,), {}), (("x",), {}), ((NotALock(),), {}), ((None, None), {}),
                  ((None,), {"lock": None}), ((), {"lock": 1}), ((), {"x": 1}),
                  ((), {"lock": None, "x": 1}), ((threading.Lock(), 2, 3), {})],
    "Semaphore": [((-1,), {}), ((-1.5,), {}), ((1.5,), {}), ((2**64,), {}), (("x",), {}), ((None,), {}),
                  (([],), {}), ((1, 2), {}), ((1,), {"value": 1}), ((), {"value": -1}), ((), {"value": "x"}),
                  ((), {"x": 1}), ((), {"value": 1, "x": 1}), ((1, 2, 3), {})],
    "Barrier": [((), {}), (("x",), {}), ((None,), {}), ((0,), {}), ((-1,), {}), ((2, None, None, 4), {}),
                ((2,), {"parties": 2}), ((), {"action": None}), ((2,), {"x": 1}),
                ((), {"parties": 0}), ((), {"parties": 2, "x": 1})],
}
BAD_ARGUMENTS["BoundedSemaphore"] = BAD_ARGUMENTS["Semaphore"]

# Calls threading accepts and fastsync refuses on purpose (compatibility.md,
# "Deliberate differences"): a Semaphore counts integers, and a Barrier needs
# at least one party, which threading checks only from 3.13 on.
REFUSED_ON_PURPOSE = {
    "Semaphore": [((1.5,), {}), ((2**64,), {})],
    "Barrier": [(("x",), {}), ((None,), {}), ((0,), {}), ((-1,), {}), ((), {"parties": 0})],
}
REFUSED_ON_PURPOSE["BoundedSemaphore"] = REFUSED_ON_PURPOSE["Semaphore"]


def construct(factory, args, kwargs):
    """('ok',) or (exception type, message), and the warnings given."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            factory(*args, **kwargs)
            result = ("ok",)
        except Exception as error:   # noqa: BLE001 - comparing whatever is raised
            result = (type(error), str(error))
    return result, [(w.category, str(w.message)) for w in caught]


@pytest.mark.parametrize("kind,args,kwargs",
                         [(kind, *call) for kind, calls in BAD_ARGUMENTS.items() for call in calls],
                         ids=repr)
def test_constructor_refuses_like_threading(backend, kind, args, kwargs):
    expected = construct(THREADING[kind], args, kwargs)
    got = construct(getattr(backend, kind), args, kwargs)
    if expected[0] == ("ok",) and (args, kwargs) in REFUSED_ON_PURPOSE.get(kind, ()):
        assert got[0][0] in (TypeError, ValueError, OverflowError), got
        return
    assert got == expected


def test_every_call_above_is_refused_somewhere():
    """The list tests refusals: each call there fails in threading, except
    the ones fastsync refuses on purpose (where threading accepts them), and
    RLock's, which threading ignored up to 3.12."""
    for kind, calls in BAD_ARGUMENTS.items():
        if kind == "RLock":
            continue
        for args, kwargs in calls:
            (outcome, _) = construct(THREADING[kind], args, kwargs)
            assert outcome != ("ok",) or (args, kwargs) in REFUSED_ON_PURPOSE.get(kind, ()), (kind, args)


@pytest.mark.parametrize("kind", ["Event", "Condition", "Semaphore", "BoundedSemaphore", "Barrier"])
def test_subclass_constructor_refuses_like_threading(backend, kind):
    """A subclass that keeps the constructor gets threading's message too."""
    ours = type(kind, (getattr(backend, kind),), {})
    theirs = type(kind, (THREADING[kind],), {})
    call = ((1, 2, 3, 4), {})
    assert construct(ours, *call) == construct(theirs, *call)
