"""What fastsync's constructors return once gevent or eventlet has
monkey-patched threading.

Monkey-patching makes threading's primitives cooperative: a greenlet that has
to wait yields to the event loop, and an RLock belongs to a greenlet.  Ours
would block the OS thread, and with it every greenlet (the one that could
release the lock or set the event included), and an RLock of ours belongs to
the OS thread that all the greenlets share.  So while threading is patched,
fastsync.X(...) returns what threading.X(...) returns.

Both libraries replace _thread.allocate_lock when they patch threading, and
neither ever puts it back, so one identity test per construction tells the
two cases apart.  Each backend makes that test in its constructors (the
compiled one in C) and calls construct() only when it is true.
"""

import _thread
import threading
from types import BuiltinFunctionType

from ._common import BACKEND_MODULES

NAMES = ("Lock", "RLock", "Event", "Condition", "Semaphore", "BoundedSemaphore", "Barrier")
_OUR_MODULES = frozenset(BACKEND_MODULES.values())

# The interpreter's own allocator is a builtin; gevent's and eventlet's are
# Python functions.  If it has already been replaced when fastsync is
# imported, nothing can be the original any more: None matches nothing.
_allocate_lock = _thread.allocate_lock
NATIVE_ALLOCATE_LOCK = _allocate_lock if isinstance(_allocate_lock, BuiltinFunctionType) else None
del _allocate_lock

# threading's own classes and functions, taken before fastsync.patch() can put
# ours in their place.  Under monkey-patching they are cooperative too: they
# build on threading's module globals, which the patching replaced.
_THREADING = {name: getattr(threading, name) for name in NAMES}


def monkey_patched():
    """True once gevent or eventlet (or anything else) has replaced the
    interpreter's lock allocator."""
    return _thread.allocate_lock is not NATIVE_ALLOCATE_LOCK


def _ours(obj):
    """Whether obj is a fastsync class or one that fastsync.patch() installs."""
    if getattr(obj, "__module__", None) in _OUR_MODULES:
        return True
    from ._patch import installed_by_patch   # imported late: _patch imports this module

    return installed_by_patch(obj)


def construct(cls, args, kwargs):
    """threading's primitive in place of cls(*args, **kwargs), for a
    monkey-patched threading."""
    if not _ours(cls):
        # A subclass builds on our implementation, which can't cooperate:
        # an error now rather than a hang at its first wait.
        raise TypeError(
            f"{cls.__module__}.{cls.__qualname__} subclasses a fastsync class, whose waits "
            "would block every greenlet now that threading is monkey-patched; subclass "
            "threading's class instead")
    name = cls.__name__
    if name == "RWLock":
        # threading has none: the fallback's is built on _thread's locks,
        # which the monkey-patching made cooperative.
        from ._fallback import RWLock

        return RWLock(*args, **(kwargs or {}))
    if name == "Lock":
        # threading.Lock may be ours (fastsync.patch() before the monkey
        # patch); threading's own Lock is the interpreter's allocator.
        factory = _thread.allocate_lock
    else:
        factory = getattr(threading, name)
        if _ours(factory):   # fastsync.patch()
            factory = _THREADING[name]
    return factory(*args, **(kwargs or {}))
