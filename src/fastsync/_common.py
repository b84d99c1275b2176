"""Helpers shared by both backends: names, reprs and version differences."""

import sys

# The public name of every class is fastsync.X, whichever module defines it.
_INTERNAL_MODULES = frozenset({"fastsync._compiled", "fastsync._fallback"})

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
