"""inspect.signature() and help() on fastsync's classes and methods give
what they give on the running Python's threading, on both backends.

Parameters are compared by name, kind and default (the pure-Python backend's
annotations aside).  Methods are compared bound, as a user meets them, so
that the C methods' positional-only `self` doesn't count.  Where threading
itself has no signature (its C locks before 3.13), fastsync may have one;
the two backends must then agree with each other."""

import inspect
import pydoc
import threading

import pytest

KINDS = ["Lock", "RLock", "Event", "Condition", "Semaphore", "BoundedSemaphore", "Barrier"]
THREADING = {kind: getattr(threading, kind) for kind in KINDS}   # before any test can patch it
MAKE = {"Semaphore": lambda cls: cls(1), "BoundedSemaphore": lambda cls: cls(1),
        "Barrier": lambda cls: cls(2)}
# Private methods that are part of the interface (threading.Condition uses them).
HOOKS = {"_is_owned", "_release_save", "_acquire_restore", "_at_fork_reinit", "_recursion_count",
         "__enter__", "__exit__"}
# threading.Condition binds its lock's own acquire, release and locked: their
# signatures are the lock's, whatever it is.  fastsync's Condition forwards
# to the lock; its acquire takes what the lock's takes, (*args, **kwargs).
LOCKS_OWN = {"acquire", "release", "locked"}
# Its hooks (_is_owned, _release_save, _acquire_restore) are the lock's too
# where the lock has them, and otherwise the class's own, which is what
# fastsync's Condition has: a Condition's methods are compared as the class
# defines them.


def make(kind, cls):
    return MAKE.get(kind, lambda cls: cls())(cls)


def shape(callable_):
    """[(name, kind, default)] of the parameters, or None with no signature."""
    try:
        signature = inspect.signature(callable_)
    except ValueError:
        return None
    return [(p.name, p.kind, p.default) for p in signature.parameters.values()]


def method_shape(kind, cls, name):
    if kind == "Condition":
        unbound = shape(getattr(cls, name))
        return None if unbound is None else unbound[1:]   # without self
    return shape(getattr(make(kind, cls), name))


def method_names(kind):
    reference = make(kind, THREADING[kind])
    names = [name for name in dir(reference)
             if (not name.startswith("_") or name in HOOKS) and callable(getattr(reference, name))]
    if kind == "Condition":
        names = [name for name in names if name not in LOCKS_OWN]
    return names


METHODS = [(kind, name) for kind in KINDS for name in method_names(kind)]


@pytest.mark.parametrize("kind", KINDS)
def test_class_signature_like_threading(backend, kind):
    expected = shape(THREADING[kind])
    got = shape(getattr(backend, kind))
    assert got == expected or (expected is None and got == [])   # threading.Lock before 3.13


@pytest.mark.filterwarnings("ignore::DeprecationWarning")   # isSet, notifyAll: only inspected
@pytest.mark.parametrize("kind,name", METHODS, ids=repr)
def test_method_signature_like_threading(backend, kind, name):
    expected = method_shape(kind, THREADING[kind], name)
    got = method_shape(kind, getattr(backend, kind), name)
    # Where threading has no signature, test_backends_agree_where_threading_has_none checks ours.
    if expected is not None:
        assert got == expected


@pytest.mark.cython   # needs both backends
@pytest.mark.parametrize("kind,name", [(kind, None) for kind in KINDS] + METHODS, ids=repr)
def test_backends_agree_where_threading_has_none(kind, name):
    """The compiled backend always has a signature; the pure-Python one has
    the same, or none where it uses the interpreter's own lock methods."""
    import fastsync._compiled as compiled
    import fastsync._fallback as fallback

    def of(module):
        cls = getattr(module, kind)
        return shape(cls) if name is None else method_shape(kind, cls, name)

    compiled_shape, fallback_shape = of(compiled), of(fallback)
    assert compiled_shape is not None
    assert fallback_shape in (None, compiled_shape)


@pytest.mark.parametrize("kind", KINDS)
def test_help_and_docstring_name_the_parameters(backend, kind):
    cls = getattr(backend, kind)
    page = pydoc.render_doc(cls, renderer=pydoc.plaintext)
    parameters = inspect.signature(cls).parameters.values()
    # The signature line, as help() shows it (with annotations on the
    # pure-Python backend); help() leaves out an empty one, as for threading's.
    shown = [line.strip(" |") for line in page.splitlines() if line.strip(" |").startswith(f"{kind}(")]
    if parameters:
        for parameter in parameters:
            assert parameter.name in shown[0], (parameter.name, shown)
    doc = " ".join(cls.__doc__.split())
    named = [p.name for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    for parameter in named:
        assert f"`{parameter}`" in doc or f"{parameter}=" in doc, parameter
    if not named:
        assert "no arguments" in doc


@pytest.mark.parametrize("kind", ["Semaphore", "BoundedSemaphore"])
@pytest.mark.parametrize("args,kwargs", [((), {}), ((None,), {}), ((None,) * 4, {}),
                                         ((None, None), {"tb": None}), ((None,) * 3, {"t": None}),
                                         ((), {"t": None, "v": None, "x": None})], ids=repr)
def test_semaphore_exit_refuses_like_threading(backend, kind, args, kwargs):
    """Semaphore.__exit__ is (self, t, v, tb): other calls fail as threading's do."""
    def outcome(cls):
        semaphore = cls(1)
        semaphore.acquire()
        try:
            semaphore.__exit__(*args, **kwargs)
        except TypeError as error:
            return TypeError, str(error), semaphore._value
        return "ok", semaphore._value

    assert outcome(getattr(backend, kind)) == outcome(THREADING[kind])


@pytest.mark.parametrize("kind", ["Semaphore", "BoundedSemaphore"])
def test_semaphore_exit_by_keyword_releases(backend, kind):
    semaphore = getattr(backend, kind)(1)
    semaphore.acquire()
    semaphore.__exit__(None, v=None, tb=None)
    assert semaphore._value == 1
