"""fastsync.debug's contention profiles (the tracker counts the acquires)."""

from __future__ import annotations

import os
from typing import Dict, List, NamedTuple

from . import _debug_state as shared
from ._debug_state import _profiles, _public
from ._debug_tracker import _apply


@_public
class LockStats(NamedTuple):
    """A profile's figures for the locks created at one site."""

    site: str
    acquisitions: int
    contended: int           # acquires that found the lock taken and waited
    total_wait: float        # seconds
    longest_wait: float      # seconds


@_public
class Profile:
    """Contention figures per lock creation site, collected while the
    profile is active (``with fastsync.debug.profile() as prof:``)."""

    def __init__(self) -> None:
        self._rows: Dict[str, List[int]] = {}    # site -> acquisitions, contended, total ns, longest ns
        self._folded: Dict[str, int] = {}        # folded waiting stack -> ns

    def __enter__(self) -> "Profile":
        _start_profile(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        _stop_profile(self)

    def stats(self) -> List[LockStats]:
        """The figures, the longest total wait first."""
        with shared._guard:
            rows = [(site, list(row)) for site, row in self._rows.items()]
        rows.sort(key=lambda item: (-item[1][2], item[0]))
        return [LockStats(site, acq, contended, total / 1e9, longest / 1e9)
                for site, (acq, contended, total, longest) in rows]

    def report(self) -> str:
        """A table of stats(), as text."""
        lines = [f"{'total wait ms':>14} {'longest ms':>11} {'contended':>10} {'acquired':>10}  "
                 "lock created at"]
        for row in self.stats():
            lines.append(f"{row.total_wait * 1e3:14.3f} {row.longest_wait * 1e3:11.3f} "
                         f"{row.contended:10d} {row.acquisitions:10d}  {row.site}")
        return "\n".join(lines) + "\n"

    def write_collapsed(self, path: "str | os.PathLike[str]") -> None:
        """Write the waiting call stacks, one line each with the nanoseconds
        waited there (folded stacks, as flamegraph.pl and speedscope read)."""
        with shared._guard:
            folded = sorted(self._folded.items())
        with open(path, "w", encoding="utf-8") as out:
            for stack, ns in folded:
                out.write(f"{stack} {ns}\n")



def _start_profile(prof: Profile) -> None:
    with shared._guard:
        if prof not in _profiles:
            _profiles.append(prof)
        _apply()


def _stop_profile(prof: Profile) -> None:
    with shared._guard:
        if prof in _profiles:
            _profiles.remove(prof)
        _apply()
