"""fastsync.patch(): make code that builds on threading use fastsync.

patch() replaces the primitives in the threading module itself, so everything
that creates them through `threading.X(...)` afterwards (queue.Queue,
concurrent.futures, logging handlers, threading.Thread's own events...) gets
fastsync's.  Objects created before patching keep their types.

Once gevent or eventlet has monkey-patched threading, patch() leaves threading
alone: its primitives are then cooperative, and fastsync's constructors return
them anyway.  Monkey-patching after patch() replaces some of our names with
its own; the rest of ours return threading's then (see _cooperative).
"""

import _thread
import threading
from contextlib import contextmanager
from typing import Iterator, Optional

import fastsync

from ._cooperative import monkey_patched

PATCHED_NAMES = ("Lock", "RLock", "Event", "Condition", "Semaphore", "BoundedSemaphore", "Barrier")

_guard = _thread.allocate_lock()   # a real lock: patch() may race with itself
_originals: Optional[dict] = None  # what patch() replaced, while patched


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
        _originals = {name: getattr(threading, name) for name in PATCHED_NAMES}
        for name in PATCHED_NAMES:
            setattr(threading, name, getattr(fastsync, name))
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
            if getattr(threading, name) is getattr(fastsync, name):
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
