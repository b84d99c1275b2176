"""Drop-in replacements for threading's synchronization primitives.

fastsync.Lock, RLock, Event, Condition, Semaphore, BoundedSemaphore and
Barrier behave like threading's and are faster.  fastsync.RWLock, which
threading lacks, is a readers-writer lock whose two sides behave like Locks.  The
compiled backend is used when it is installed; otherwise, or when
FASTSYNC_NO_EXTENSIONS=1 is set, the pure-Python one.  fastsync.BACKEND says
which: "cython" or "python".  Falling back without being asked to gives a
FallbackWarning on CPython: the extension missing or failing to load, or a
subinterpreter (the compiled backend serves the main interpreter only).
Once gevent or eventlet has monkey-patched threading, the constructors return
threading's (then cooperative) primitives, and BACKEND says "threading".
"""

import sys
import warnings
from typing import TYPE_CHECKING, Optional

from threading import BrokenBarrierError

from . import _common, _cooperative
from ._env import DEBUG, NO_EXTENSIONS, env_flag
from ._protocols import LockLike

__all__ = [
    "BACKEND", "Barrier", "BoundedSemaphore", "BrokenBarrierError", "Condition", "Event",
    "FallbackWarning", "Lock", "LockLike", "RLock", "RWLock", "Semaphore", "patch", "patched", "unpatch",
]
__version__ = "0.1.0"


class FallbackWarning(RuntimeWarning):
    """fastsync uses its slower pure-Python backend without being asked to
    (FASTSYNC_NO_EXTENSIONS): the compiled one is missing or can't be used here."""


_COMPILED = _common.BACKEND_MODULES["cython"]

# The extension keeps its state in C globals (Python objects among them) and
# lets Cython refuse a second interpreter.  Cython remembers whichever
# interpreter loads it first, so a subinterpreter that got there first would
# lock the main interpreter out of it for the life of the process.  Giving
# every interpreter its own state would put a module-state lookup on the
# uncontended paths, which are the whole point of the extension.
_SUBINTERPRETER_MESSAGE = (
    "fastsync's compiled backend serves only the main interpreter; this "
    "subinterpreter uses the pure-Python fallback (loading the extension here "
    "would keep the main interpreter from ever loading it)"
)


_NOT_BUILT_MESSAGE = (
    "fastsync's compiled backend is not installed: it was not compiled when fastsync was "
    "installed (no C compiler or Python headers?), so fastsync uses its pure-Python fallback, "
    "which is slower. To fix: install a C compiler and the Python headers (Debian/Ubuntu: "
    "apt install gcc python3-dev), then reinstall fastsync with pip's --no-cache-dir; or set "
    "FASTSYNC_NO_EXTENSIONS=1 to choose the fallback and silence this warning"
)


def _interpreter_id(value):
    # _interpreters (3.13+) answers (id, whence), _xxsubinterpreters an id object.
    return int(value[0] if isinstance(value, tuple) else value)


def _in_main_interpreter() -> Optional[bool]:
    """Whether this is the main interpreter; None where this Python can't tell."""
    name = "_interpreters" if sys.version_info >= (3, 13) else "_xxsubinterpreters"
    try:
        interpreters = __import__(name)
    except ImportError:
        pass
    else:
        return _interpreter_id(interpreters.get_current()) == _interpreter_id(interpreters.get_main())
    # Builds without that module still run subinterpreters for embedding
    # applications; the C API can tell, where ctypes loads here.
    try:
        import ctypes

        state = ctypes.PYFUNCTYPE(ctypes.c_void_p)
        current = state(("PyInterpreterState_Get", ctypes.pythonapi))
        main = state(("PyInterpreterState_Main", ctypes.pythonapi))
    except (ImportError, AttributeError, OSError):
        return None
    return bool(current() == main())


def _in_subinterpreter():
    """True only when this is known to be a subinterpreter of a Python that the
    extension is built for (not asked elsewhere: the answer is moot there)."""
    return sys.implementation.name == "cpython" and _in_main_interpreter() is False


def _compiled_installed():
    from importlib.util import find_spec

    return find_spec(_COMPILED) is not None


# The one place the backend is chosen.  Type checkers read the compiled
# backend's stubs, the one typed description of the API both backends share
# (the fallback's Lock() returns the interpreter's own lock, which a checker
# can't see through).
if TYPE_CHECKING:
    from ._compiled import Barrier, BoundedSemaphore, Condition, Event, Lock, RLock, RWLock, Semaphore

    BACKEND = "cython"
elif env_flag(NO_EXTENSIONS):
    from ._fallback import Barrier, BoundedSemaphore, Condition, Event, Lock, RLock, RWLock, Semaphore

    _BACKEND = "python"
elif _in_subinterpreter():
    from ._fallback import Barrier, BoundedSemaphore, Condition, Event, Lock, RLock, RWLock, Semaphore

    _BACKEND = "python"
    if _compiled_installed():
        # A direct `import fastsync._compiled` here would do the same harm,
        # so it fails at once in this interpreter (sys.modules is its own).
        sys.modules.setdefault(_COMPILED, None)
        warnings.warn(_SUBINTERPRETER_MESSAGE, FallbackWarning, stacklevel=2)
else:
    try:
        from ._compiled import Barrier, BoundedSemaphore, Condition, Event, Lock, RLock, RWLock, Semaphore

        _BACKEND = "cython"
    except ImportError as error:
        if not (isinstance(error, ModuleNotFoundError) and error.name == _COMPILED):
            warnings.warn(
                f"fastsync's compiled backend is installed but could not be imported ({error}); "
                "using the pure-Python fallback, which is slower",
                FallbackWarning, stacklevel=2,
            )
        elif sys.implementation.name == "cpython":
            # Not built, on a Python it is built for: the install's own report
            # is easy to miss (pip shows build output only with -v), so the
            # user hears it here.  PyPy never gets the extension: no news.
            warnings.warn(_NOT_BUILT_MESSAGE, FallbackWarning, stacklevel=2)
        from ._fallback import Barrier, BoundedSemaphore, Condition, Event, Lock, RLock, RWLock, Semaphore

        _BACKEND = "python"


def __getattr__(name):
    # BACKEND is computed: gevent or eventlet may monkey-patch threading after
    # this import, and from then on the constructors return threading's
    # primitives (see _cooperative).
    if name == "BACKEND":
        return "threading" if _cooperative.monkey_patched() else _BACKEND
    if name == "debug":
        # Imported on first use, so that a program that never touches it
        # pays nothing; importing it sets the attribute, so this runs once.
        import importlib

        return importlib.import_module(f"{__name__}.debug")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


from ._patch import patch, patched, unpatch  # noqa: E402 - needs the classes above

if env_flag(DEBUG):
    from . import debug as _debug  # noqa: E402 - watches the backends imported above

    _debug._enable_from_environment()
    del _debug
