"""Types for annotating code that takes either library's primitives."""

from types import TracebackType
from typing import Optional, Protocol, Type


class LockLike(Protocol):
    """What a lock offers, for annotations: ``threading``'s and fastsync's
    ``Lock`` and ``RLock`` (and their ``Condition`` objects) all match it, so
    a function annotated ``lock: fastsync.LockLike`` accepts any of them.
    For type checkers only: it is no base class, and ``isinstance`` refuses it."""

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Take the lock, as Lock.acquire() does; True if it was taken."""
        ...

    def release(self) -> None:
        """Let go of the lock, as Lock.release() does."""
        ...

    def __enter__(self) -> bool: ...

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc_value: Optional[BaseException],
                 traceback: Optional[TracebackType], /) -> object: ...
