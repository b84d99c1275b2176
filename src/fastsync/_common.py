"""Helpers shared by both backends: names, reprs and version differences."""

import sys

# Each backend by its name (a value of fastsync.BACKEND) and the module that
# implements it.  The package, its tests and the benchmark all name the
# modules through this map, so that adding or renaming a backend is one edit.
BACKEND_MODULES = {"cython": "fastsync._compiled", "python": "fastsync._fallback"}

# The public name of every class is fastsync.X, whichever module defines it.
_INTERNAL_MODULES = frozenset(BACKEND_MODULES.values())

# threading.Event.isSet() and Condition.notifyAll() warn from 3.10 on.
ISSET_WARNS = sys.version_info >= (3, 10)
ISSET_WARNING = "isSet() is deprecated, use is_set() instead"
NOTIFYALL_WARNING = "notifyAll() is deprecated, use notify_all() instead"


def type_name(obj):
    """'fastsync.Lock' for our own classes, 'module.Qualname' for subclasses."""
    cls = type(obj)
    module = cls.__module__
    if module in _INTERNAL_MODULES:
        module = "fastsync"
    return f"{module}.{cls.__qualname__}"


def cannot_pickle(obj):
    return TypeError(f"cannot pickle {type_name(obj)!r} object")


class _ComparisonProbe:
    """A timeout that records which comparison Condition.wait makes with it."""

    seen = ""

    def __gt__(self, other):
        _ComparisonProbe.seen = ">"
        return False

    def __le__(self, other):
        _ComparisonProbe.seen = "<="
        return True


def _wait_tests_not_positive_with_le():
    # Both answers mean "don't wait", so the probe never blocks.
    import _thread
    import threading

    condition = threading.Condition(_thread.allocate_lock())
    with condition:
        condition.wait(_ComparisonProbe())
    return _ComparisonProbe.seen == "<="


# threading's Condition.wait (and so Event.wait and Semaphore.acquire) decides
# whether to wait with `timeout > 0` up to 3.13 and with `timeout <= 0` since:
# a NaN timeout then goes on to the lock, which refuses it with ValueError,
# and an incomparable one's TypeError names '<='.  Asked of threading itself.
WAIT_TESTS_LE = _wait_tests_not_positive_with_le()

# threading.RLock() has never used arguments.  CPython ignored them silently up
# to 3.12, with a DeprecationWarning in 3.13 and 3.14, and refuses them since;
# PyPy refuses them.  Known by version rather than asked of threading: asking
# means making that warning, and catching it changes the program's warning
# state for good (on 3.14, warnings that filters hid are shown afterwards).
# The tests ask threading, in a process of their own.
RLOCK_TAKES_ARGUMENTS = sys.implementation.name == "cpython" and sys.version_info < (3, 15)
RLOCK_ARGUMENTS_WARN = RLOCK_TAKES_ARGUMENTS and sys.version_info >= (3, 13)
RLOCK_ARGUMENTS_WARNING = "Passing arguments to RLock is deprecated and will be removed in 3.15"


def _threading_constructors():
    import threading

    return {name: getattr(threading, name) for name in
            ("Lock", "RLock", "Event", "Condition", "Semaphore", "BoundedSemaphore", "Barrier")}


# Captured before fastsync.patch() can replace them.
_THREADING = _threading_constructors()


def raise_as_threading(name, args, kwargs):
    """Raise what threading's `name`(*args, **kwargs) raises: arguments that
    fastsync refuses are shown to it, so that the caller gets threading's
    exception and message.  Returns if threading accepts them."""
    _THREADING[name](*args, **(kwargs or {}))


def semaphore_exit_arguments(self, t, v, tb):
    """Takes the arguments threading's Semaphore.__exit__ takes, and refuses
    others with its message: the compiled Semaphore's __exit__ hands it
    every call but a `with`'s."""


semaphore_exit_arguments.__qualname__ = "Semaphore.__exit__"


def check_rlock_arguments(args, kwargs, stacklevel):
    """Do what threading.RLock(*args, **kwargs) does with the arguments."""
    if not RLOCK_TAKES_ARGUMENTS:
        raise_as_threading("RLock", args, kwargs)   # raises threading's own TypeError
        raise TypeError("RLock() takes no arguments")
    if RLOCK_ARGUMENTS_WARN:
        import warnings

        warnings.warn(RLOCK_ARGUMENTS_WARNING, DeprecationWarning, stacklevel=stacklevel + 1)


def _rlock_takes_parameters():
    # threading.RLock is a function: (*args, **kwargs) up to 3.14 and on PyPy,
    # () from 3.15.  Read from its code, which costs no import of inspect.
    code = getattr(_THREADING["RLock"], "__code__", None)
    varargs_or_varkeywords = 0x04 | 0x08   # inspect.CO_VARARGS | inspect.CO_VARKEYWORDS
    return code is None or bool(code.co_argcount or code.co_kwonlyargcount
                                or code.co_flags & varargs_or_varkeywords)


# Whether threading.RLock's signature is (*args, **kwargs), which fastsync's
# RLock then shows too, or ().
RLOCK_SHOWS_PARAMETERS = _rlock_takes_parameters()


def _takes_nothing():
    pass


def _takes_anything(*args, **kwargs):
    pass


class ClassSignature:
    """A class's __signature__, for a constructor whose parameters inspect
    can't see (a __new__ that takes any arguments to refuse them as threading
    does).  Made on request, so that importing fastsync imports no inspect;
    subclasses and instances don't inherit it."""

    def __init__(self, takes_anything):
        self._parameters_of = _takes_anything if takes_anything else _takes_nothing

    def __set_name__(self, owner, name):
        self._owner = owner

    def __get__(self, instance, owner):
        if instance is not None or owner is not self._owner:
            raise AttributeError("__signature__")
        import inspect

        return inspect.signature(self._parameters_of)
