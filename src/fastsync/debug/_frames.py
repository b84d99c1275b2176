"""fastsync.debug's frames and formatting: where a lock was created or
acquired, stacks, thread names, report text."""

from __future__ import annotations

import os
import sys
import threading
import traceback
from typing import TYPE_CHECKING, Any, List, Optional, Tuple

if TYPE_CHECKING:
    from ._state import _Node

Frame = Tuple[str, int, str]   # file, line, function

# fastsync's own directory (this module is in its debug/ subpackage).
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def _outside_frame(frame: Any) -> Any:
    """The first frame from `frame` outwards that isn't fastsync's own code."""
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
    return frame


def _caller() -> Any:
    return _outside_frame(sys._getframe(2))


def _stack(frame: Any, limit: int = 64) -> Tuple[Frame, ...]:
    frames: List[Frame] = []
    while frame is not None and len(frames) < limit:
        frames.append((frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name))
        frame = frame.f_back
    frames.reverse()
    return tuple(frames)


def _site(frame: Any) -> str:
    if frame is None:
        return "(unknown site)"
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"


def _format_stack(frames: Tuple[Frame, ...], indent: str) -> List[str]:
    summary = traceback.StackSummary.from_list([(f, n, name, None) for f, n, name in frames])
    return [indent + line.rstrip("\n").replace("\n", "\n" + indent) for line in summary.format()]


def _thread_name(ident: int) -> str:
    thread = getattr(threading, "_active", {}).get(ident)   # a lookup that creates none
    return thread.name if thread is not None else "(not started by threading)"


def _thread_label(ident: int) -> str:
    return f"{_thread_name(ident)!r} ({ident})"


def _stacklevel() -> int:
    """warnings.warn's stacklevel, called from the function that warns, that
    points at the first frame outside fastsync."""
    level = 1
    frame: Any = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
        level += 1
    return level


def _describe(lock: Any, node: Optional[_Node]) -> str:
    """A lock's repr and creation site; without a node (fastsync.debug was
    off when it was created and has not seen it since), its repr only."""
    text = "a collected lock" if lock is None else repr(lock)
    return text if node is None else f"{text} created at {node.label()}"


def _cycle_lines(cycle: List[Any], stacks: bool) -> List[str]:
    """A deadlock (find_deadlocks()'s entries for one cycle) as report lines."""
    lines = [f"fastsync: {len(cycle)} threads are deadlocked, each waiting for a lock "
             f"the next one holds:"]
    for entry in cycle:
        lines.append(f"  thread {entry.name!r} ({entry.thread}) waits for {entry.waiting_for}")
        lines.extend("    holding " + held for held in entry.holding)
        if stacks:
            lines.extend(_indented(entry.stack, "    "))
    return lines


def _indented(stack: List[str], indent: str) -> List[str]:
    """A DeadlockedThread's or BlockedThread's stack, each line indented."""
    return [indent + line.replace("\n", "\n" + indent) for line in stack]
