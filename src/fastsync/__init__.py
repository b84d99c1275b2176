"""Drop-in replacements for threading's synchronization primitives.

fastsync.Lock, RLock, Event, Condition, Semaphore, BoundedSemaphore and
Barrier behave like threading's and are faster.  The
compiled backend is used when it is installed; otherwise, or when
FASTSYNC_NO_EXTENSIONS=1 is set, the pure-Python one.  fastsync.BACKEND says
which: "cython" or "python".
"""

from typing import TYPE_CHECKING

from threading import BrokenBarrierError

from ._env import NO_EXTENSIONS, env_flag

__all__ = [
    "BACKEND", "Barrier", "BoundedSemaphore", "BrokenBarrierError", "Condition", "Event",
    "Lock", "RLock", "Semaphore", "patch", "patched", "unpatch",
]
__version__ = "0.1.0"

# The one place the backend is chosen.  Type checkers read the compiled
# backend's stubs, the one typed description of the API both backends share
# (the fallback's Lock() returns the interpreter's own lock, which a checker
# can't see through).
if TYPE_CHECKING:
    from ._compiled import Barrier, BoundedSemaphore, Condition, Event, Lock, RLock, Semaphore

    BACKEND = "cython"
elif env_flag(NO_EXTENSIONS):
    from ._fallback import Barrier, BoundedSemaphore, Condition, Event, Lock, RLock, Semaphore

    BACKEND = "python"
else:
    try:
        from ._compiled import Barrier, BoundedSemaphore, Condition, Event, Lock, RLock, Semaphore

        BACKEND = "cython"
    except ImportError:   # not built: no compiler, PyPy, unsupported platform
        from ._fallback import Barrier, BoundedSemaphore, Condition, Event, Lock, RLock, Semaphore

        BACKEND = "python"

from ._patch import patch, patched, unpatch  # noqa: E402 - needs the classes above
