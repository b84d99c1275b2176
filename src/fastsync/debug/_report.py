"""fastsync.debug's report of the blocked threads and deadlocks, as text,
and its signal handler (report_on_signal)."""

from __future__ import annotations

import signal
import sys
from typing import Any, Dict, Optional, TextIO, Tuple

from ._deadlocks import _blocked_threads, _deadlocks
from ._frames import _cycle_lines, _indented, _thread_label
from ._waits import _knowable

UNKNOWABLE = ("nothing is known of who waits for what: the pure-Python backend records it only "
              "while fastsync.debug is enabled (enable() or FASTSYNC_DEBUG, before the locks are used)")


def _report_text() -> str:
    if not _knowable():
        return f"fastsync: {UNKNOWABLE}\n"
    blocked = _blocked_threads()
    cycles = _deadlocks()
    if not blocked:
        return "fastsync: no thread is blocked in a fastsync wait\n"
    lines = [f"fastsync: {len(blocked)} threads blocked in fastsync waits, the longest waiting first:"]
    for entry in blocked:
        holder = "" if entry.held_by is None else f", held by thread {_thread_label(entry.held_by)}"
        lines.append(f"  thread {_thread_label(entry.thread)} has waited {entry.waited:.3f} s for "
                     f"{entry.waiting_for}{holder}, at:")
        lines.extend(_indented(entry.stack, "  "))
    for cycle in cycles:
        lines.extend(_cycle_lines(cycle, stacks=False))
    if not cycles:
        lines.append("fastsync: no deadlock among them")
    return "\n".join(lines) + "\n"


# signal number -> (file, handler it replaced, chain)
_installed: Dict[int, Tuple[Optional[TextIO], Any, bool]] = {}


def _on_signal(signum: int, frame: Any) -> None:
    # It runs in whatever the main thread was doing, a lock's acquire
    # perhaps: a report that can't be made or written must not raise there.
    file, previous, chain = _installed.get(signum, (None, None, False))
    out = file if file is not None else sys.stderr
    try:
        text = _report_text()
    except Exception as error:
        text = f"fastsync: no report ({type(error).__name__}: {error})\n"
    if out is not None:
        try:
            out.write(text)
            out.flush()
        except Exception:
            pass
    if chain and callable(previous):
        previous(signum, frame)


def _install(signum: int, file: Optional[TextIO], chain: bool) -> None:
    signum = signal.Signals(signum)
    previous = signal.getsignal(signum)
    if previous is _on_signal:
        previous = _installed[signum][1]
    signal.signal(signum, _on_signal)   # ValueError outside the main thread, as signal's
    _installed[signum] = (file, previous, chain)


def _uninstall(signum: int) -> bool:
    signum = signal.Signals(signum)
    if signum not in _installed:
        return False
    previous = _installed.pop(signum)[1]
    signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
    return True
