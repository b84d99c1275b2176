"""fastsync.patch(): make code that builds on threading use fastsync.

patch() replaces the primitives in the threading module itself, so everything
that creates them through `threading.X(...)` afterwards (queue.Queue,
concurrent.futures, logging handlers, threading.Thread's own events...) gets
fastsync's.  Objects created before patching keep their types.
"""

import _thread
import threading
from contextlib import contextmanager

import fastsync

PATCHED_NAMES = ("Lock", "RLock", "Event", "Condition", "Semaphore", "BoundedSemaphore", "Barrier")

_guard = _thread.allocate_lock()   # a real lock: patch() may race with itself
_originals = None                  # what patch() replaced, while patched


def patch():
    """Replace threading's primitives with fastsync's.  Calling it again while
    patched does nothing.  Returns True if this call patched."""
    global _originals
    with _guard:
        if _originals is not None:
            return False
        _originals = {name: getattr(threading, name) for name in PATCHED_NAMES}
        for name in PATCHED_NAMES:
            setattr(threading, name, getattr(fastsync, name))
        return True


def unpatch():
    """Put back exactly what patch() replaced.  Does nothing if not patched.
    Returns True if this call unpatched."""
    global _originals
    with _guard:
        if _originals is None:
            return False
        for name, original in _originals.items():
            setattr(threading, name, original)
        _originals = None
        return True


def is_patched():
    return _originals is not None


@contextmanager
def patched():
    """Patch for the duration of a with block.  Nested or combined with an
    outer patch(), only the call that patched undoes it."""
    did_patch = patch()
    try:
        yield
    finally:
        if did_patch:
            unpatch()
