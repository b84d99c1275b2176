"""fastsync.debug's deadlock finding and blocked-thread listing: the cycles
of threads blocked on each other's locks now, and every blocked thread."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, List, Tuple

from ._frames import _describe, _format_stack, _outside_frame, _stack, _thread_name
from ._waits import _deadlocked, _Wait, _waits

if TYPE_CHECKING:
    from . import BlockedThread, DeadlockedThread


def _deadlocks() -> List[List[DeadlockedThread]]:
    """find_deadlocks()."""
    return [entries for _, entries in _deadlock_cycles()]


def _deadlock_cycles() -> List[Tuple[Tuple[int, ...], List[DeadlockedThread]]]:
    """_deadlocks(), each cycle with the ids of the locks its threads wait
    for, sorted: the same cycle's key however it is found, taken from the
    same moment as its entries."""
    from . import DeadlockedThread   # late: fastsync.debug imports this module

    cycles = _deadlocked()
    frames = sys._current_frames()
    result = []
    for cycle in cycles:
        entries = [DeadlockedThread(
            thread=wait.thread, name=_thread_name(wait.thread),
            waiting_for=_describe(wait.obj, wait.node),
            holding=[_describe(lock, node) for lock, node in wait.held],
            stack=_thread_stack(frames, wait.thread)) for wait in cycle]
        result.append((tuple(sorted(wait.key for wait in cycle)), entries))
    return result


def _blocked_threads() -> List[BlockedThread]:
    """blocked_threads(): longest waiting first."""
    from . import BlockedThread   # late: fastsync.debug imports this module

    waits = sorted(_waits().values(), key=_longest_first)
    frames = sys._current_frames()
    return [BlockedThread(
        thread=wait.thread, name=_thread_name(wait.thread), waiting_for=_describe(wait.obj, wait.node),
        waited=wait.waited_ns / 1e9, held_by=wait.holder,
        stack=_thread_stack(frames, wait.thread)) for wait in waits]


def _longest_first(wait: _Wait) -> int:
    return -wait.waited_ns


def _thread_stack(frames: dict, ident: int) -> List[str]:
    frame = frames.get(ident)
    return _format_stack(_stack(_outside_frame(frame)), "") if frame is not None else []
