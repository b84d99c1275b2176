"""fastsync.patch(): make code that builds on threading use fastsync.

patch() replaces the primitives in the threading module itself, so everything
that creates them through `threading.X(...)` afterwards (queue.Queue,
concurrent.futures, logging handlers, threading.Thread's own events...) gets
fastsync's.  Objects created before patching keep their types.

Once gevent or eventlet has monkey-patched threading, patch() leaves threading
alone: its primitives are then cooperative, and fastsync's constructors return
them anyway.  Monkey-patching after patch() replaces some of our names with
its own; the rest of ours return threading's then (see _cooperative).

Lock and RLock are C types (or factories of them) in threading, and patch()
puts fastsync's own types in their place.  Event, Condition, Semaphore,
BoundedSemaphore and Barrier are Python classes in threading, and code
relies on what that allows:

- their attributes can be set, so mocks and monkeypatches replace methods
  (mock.patch.object(threading.Event, "wait")), and their instances take
  attributes of their own;
- subclasses build on their private state: multiprocessing's Barrier is
  threading.Barrier's code over shared memory, whichever of patch() and its
  import comes first.

So for these five, patch() installs a class of its own (see _InstalledType):
a subclass of fastsync's whose attributes can be set and whose instances have
a __dict__, named threading.X.  A class statement that subclasses it gets
threading's own class as its base instead, so a subclass is the same class
whether it is made before or after patch(); while patched, threading's code
builds on fastsync's Lock and Condition, as the module's names are ours.
"""

import _thread
import sys
import threading
import types
from contextlib import contextmanager
from typing import Any, Dict, Iterator, Optional

import fastsync

from ._cooperative import monkey_patched

PATCHED_NAMES = ("Lock", "RLock", "Event", "Condition", "Semaphore", "BoundedSemaphore", "Barrier")
# The names that are Python classes in threading.
PYTHON_CLASS_NAMES = ("Event", "Condition", "Semaphore", "BoundedSemaphore", "Barrier")

_guard = _thread.allocate_lock()   # a real lock: patch() may race with itself
_originals: Optional[dict] = None  # what patch() replaced, while patched
_installed: Dict[str, type] = {}   # made at the first patch(), the same ones each time after


class _InstalledType(type):
    """The type of the classes patch() installs in threading for its Python
    classes.  Each has `_threading_class`: threading's own class by that name."""

    _threading_class: type

    def __new__(mcls, name, bases, namespace, **kwargs):
        # Called for a class statement (or type()) with an installed class
        # among its bases: it builds on threading's class, as it would have
        # done before patch().
        bases = tuple(base._threading_class if isinstance(base, _InstalledType) else base
                      for base in bases)
        return types.new_class(name, bases, kwargs, lambda body: body.update(namespace))

    # isinstance() and issubclass() cover fastsync's class and threading's,
    # so threading's objects made before patch() still count, and so do
    # instances of subclasses (built on threading's class).
    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, cls.__bases__ + (cls._threading_class,))

    def __subclasscheck__(cls, subclass: Any) -> bool:
        return issubclass(subclass, cls.__bases__ + (cls._threading_class,))


def _threading_calls_init_by_name(name: str) -> bool:
    """Whether threading's own code calls `name.__init__(self, ...)` through
    its module's name, so that, patched, it calls the installed class's
    __init__ on one of its own objects: BoundedSemaphore does so with
    Semaphore up to 3.11 (later ones call super())."""
    code = getattr(getattr(threading.BoundedSemaphore, "__init__", None), "__code__", None)
    return name == "Semaphore" and code is not None and {"Semaphore", "__init__"} <= set(code.co_names)


def _init_for_both(ours: Any, threading_class: Any) -> Any:
    ours_init, threadings_init = ours.__init__, threading_class.__init__

    def __init__(self, *args, **kwargs):
        if isinstance(self, ours):
            ours_init(self, *args, **kwargs)
        else:   # one of threading's own objects, or of a subclass of its class
            threadings_init(self, *args, **kwargs)

    return __init__


def _install_class(name: str, threading_class: type) -> type:
    ours = getattr(fastsync, name)
    namespace = {"__module__": threading.__name__, "__qualname__": name, "__doc__": ours.__doc__,
                 "_threading_class": threading_class}
    if _threading_calls_init_by_name(name):
        namespace["__init__"] = _init_for_both(ours, threading_class)
    # type.__new__ itself: _InstalledType.__new__ is for subclasses.
    installed = type.__new__(_InstalledType, name, (ours,), namespace)
    # The compiled backend makes its C methods the class's own, which keeps
    # calling them as quick as on its own classes.
    own_methods = getattr(sys.modules[ours.__module__], "_own_methods", None)
    if own_methods is not None:
        own_methods(installed)
    return installed


def _replacement(name: str, original: Any) -> Any:
    """What patch() puts in threading for one of PATCHED_NAMES."""
    if name not in PYTHON_CLASS_NAMES:
        return getattr(fastsync, name)
    installed = _installed.get(name)
    if installed is None:
        installed = _installed[name] = _install_class(name, original)
    return installed


def installed_by_patch(obj: Any) -> bool:
    """Whether obj is one of the classes patch() installs."""
    return isinstance(obj, _InstalledType)


def patch() -> bool:
    """Replace threading's primitives with fastsync's.

    threading.Lock, RLock, Event, Condition, Semaphore, BoundedSemaphore and
    Barrier become fastsync's, so objects that code creates through threading
    from now on are fastsync's; existing objects keep their types.  Calling it
    again while patched, or once gevent or eventlet has monkey-patched
    threading, does nothing.  Safe to call from several threads.  Returns True
    if this call patched."""
    global _originals
    with _guard:
        if _originals is not None or monkey_patched():
            return False
        originals = {name: getattr(threading, name) for name in PATCHED_NAMES}
        replacements = {name: _replacement(name, originals[name]) for name in PATCHED_NAMES}
        _originals = originals
        for name in PATCHED_NAMES:
            setattr(threading, name, replacements[name])
        return True


def unpatch() -> bool:
    """Put back what patch() replaced, where ours is still in place: a name
    that monkey-patching has since given to its own primitive keeps it.  Does
    nothing if not patched.  Returns True if this call unpatched."""
    global _originals
    with _guard:
        if _originals is None:
            return False
        for name, original in _originals.items():
            if getattr(threading, name) is _replacement(name, original):
                setattr(threading, name, original)
        _originals = None
        return True


def is_patched() -> bool:
    return _originals is not None


@contextmanager
def patched() -> Iterator[None]:
    """A context manager: patch() for the duration of a with block.  Nested or
    combined with an outer patch(), only the call that patched undoes it."""
    did_patch = patch()
    try:
        yield
    finally:
        if did_patch:
            unpatch()
