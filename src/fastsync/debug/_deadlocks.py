"""fastsync.debug's deadlock finding: the cycles of threads blocked on each
other's locks, now."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Set, Tuple

from . import _state as shared
from ._frames import _describe, _format_stack, _outside_frame, _stack, _thread_name
from ._state import _drain, _holders, _Node, _nodes, _threads

if TYPE_CHECKING:
    from . import DeadlockedThread


def _deadlocks() -> List[List[DeadlockedThread]]:
    """find_deadlocks(), empty once debugging is off (a thread that stalled
    may ask just after disable())."""
    return [entries for _, entries in _deadlock_cycles()]


def _deadlock_cycles() -> List[Tuple[Tuple[int, ...], List[DeadlockedThread]]]:
    """_deadlocks(), each cycle with the ids of the locks its threads wait
    for, sorted: the same cycle's key however it is found, taken from the
    same moment as its entries."""
    from . import DeadlockedThread   # late: fastsync.debug imports this module

    with shared._guard:
        _drain()
        waiting = {ident: state for ident, state in _threads.items() if state.waiting_for is not None}
        cycles: List[List[Tuple[int, int, List[int]]]] = []
        seen: Set[int] = set()
        for ident in waiting:
            path: List[int] = []
            on_path: Dict[int, int] = {}
            current: Optional[int] = ident
            while current is not None and current not in seen and current not in on_path:
                on_path[current] = len(path)
                path.append(current)
                lock_id = waiting[current].waiting_for if current in waiting else None
                holder = _holders.get(lock_id) if lock_id is not None else None
                current = holder.ident if holder is not None and waiting.get(holder.ident) is holder else None
            if current is not None and current in on_path:
                cycles.append([(t, waiting[t].waiting_for or 0, list(waiting[t].held))
                               for t in path[on_path[current]:]])
            seen.update(path)
        described = [[(t, _lock_and_node(w), [_lock_and_node(h) for h in held if h in _nodes])
                      for t, w, held in cycle] for cycle in cycles]
    frames = sys._current_frames()
    result = []
    for cycle, found in zip(described, cycles, strict=True):
        entries = []
        for ident, waited, held in cycle:
            frame = frames.get(ident)
            stack = _format_stack(_stack(_outside_frame(frame)), "") if frame is not None else []
            entries.append(DeadlockedThread(
                thread=ident, name=_thread_name(ident),
                waiting_for=_describe(*waited), holding=[_describe(*h) for h in held], stack=stack))
        result.append((tuple(sorted(waited_id for _, waited_id, _ in found)), entries))
    return result


def _lock_and_node(lock_id: int) -> Tuple[Any, _Node]:
    node = _nodes[lock_id]
    return node.ref(), node
