"""Everything the run shows: progress, header, table, notes, JSON and plot."""

from __future__ import annotations

import json
import sys
from typing import Dict, List, Optional, Sequence, TextIO, Tuple

from .cases import UNROLL
from .implementations import BASELINE, FLOOR, Implementation
from .runner import CaseResult, Settings

NOISY_SPREAD = 0.10      # interquartile range above this share of the median: marked
# An empty call this much slower than fastsync's real one drew a bad code
# placement (docs/benchmarks.md, "Why several processes"): its row says little about
# fastsync's distance to the floor, and the notes say so.
FLOOR_BELOW = 0.9
DASH = "-"
FASTEST = "cython"       # the backend whose distance to the floor the table shows


# ---------------------------------------------------------------------------
# Progress, on stderr

class Progress:
    """`[ 42%] case: detail` redrawn in place on a terminal, one line per case otherwise."""

    def __init__(self, stream: TextIO = sys.stderr):
        self.stream = stream
        self.live = stream.isatty()
        self.last_title: Optional[str] = None

    def __call__(self, done: int, total: int, title: str, detail: str) -> None:
        percent = 100 * done / total if total else 100
        if self.live:
            line = f"[{percent:3.0f}%] {title}: {detail}" if title else ""
            self.stream.write("\r\x1b[K" + line[:150])
        elif title and title != self.last_title:
            self.stream.write(f"[{percent:3.0f}%] {title}\n")
        self.last_title = title
        self.stream.flush()


# ---------------------------------------------------------------------------
# Text

def header(env_lines: Dict[str, str], settings: Settings, implementations: Sequence[Implementation]) -> str:
    lines = [f"{topic:<9} {text}" for topic, text in env_lines.items()]
    lines.append(f"{'Compared':<9} " + ", ".join(i.label for i in implementations))
    lines.append(
        f"{'Method':<9} median of {settings.repeats} samples per implementation, implementations "
        f"interleaved; one sample ~{settings.sample_ns / 1e6:g} ms "
        f"({settings.thread_sample_ns / 1e6:g} ms with threads)")
    if settings.processes > 1:
        lines.append(
            f"{'':<9} single-thread cases: {settings.samples_per_process} samples in each of "
            f"{settings.processes} fresh processes, the median of the processes' medians")
    return "\n".join(lines)


def table(results: Sequence[CaseResult], implementations: Sequence[Implementation],
          markdown: bool = False) -> str:
    columns, rows = _table_cells(results, implementations)
    return _markdown(columns, rows) if markdown else _aligned(columns, rows)


def cpu_table(results: Sequence[CaseResult], implementations: Sequence[Implementation],
              markdown: bool = False) -> str:
    """CPU time per operation of the thread cases, all threads of the process
    together, with each implementation's ratio to threading's; '' if none."""
    shown = [r for r in results if not r.skipped and not r.case.uncontended
             and r.cpu_median(BASELINE) is not None]
    present = [i for i in implementations if i.name != FLOOR
               and any(r.cpu_median(i.name) is not None for r in shown)]
    if not shown or not present:
        return ""
    columns: List[Column] = [("", "case")]
    for impl in present:
        columns.append((impl.label, "CPU ns/op"))
        if impl.name != BASELINE:
            columns.append((impl.label, "/ threading"))
    rows = []
    for result in shown:
        row = [result.case.title]
        for impl in present:
            row.append(_number(result.cpu_median(impl.name), ""))
            if impl.name != BASELINE:
                row.append(_number(result.cpu_ratio(impl.name), "x"))
        rows.append(row)
    return _markdown(columns, rows) if markdown else _aligned(columns, rows)


def notes(results: Sequence[CaseResult], missing: Sequence[str]) -> str:
    lines = [
        "ns/op: median nanoseconds per operation (lower is better); speedup: threading's "
        "time / this time (higher is better).",
        "floor: the same calls on a compiled class whose methods do nothing, the cost of the "
        f"Python call itself; '{FASTEST}/floor' is how far fastsync sits above it.",
        "For hand-offs between threads (ping-pong, Barrier) the floor is the same hand-offs "
        "between two C threads that spin, then sleep, in fastsync's wait layer as its "
        "threads do, without Python or the GIL: what the hand-off itself costs.",
        f"Single-thread cases run the statement {UNROLL}x unrolled in a loop; '*' marks a "
        f"result whose samples spread over more than {NOISY_SPREAD:.0%} of the median.",
        "CPU ns/op: CPU time of every thread of the process per operation (median), "
        "spinning included; '/ threading' is its ratio to threading's (lower is better).",
    ]
    lines += [f"Not compared: {note}" for note in missing]
    for result in results:
        if result.skipped:
            lines.append(f"Skipped {result.case.title!r}: {result.skipped}")
        elif result.missing:
            lines.append(f"Only the standard library in {result.case.title!r}: {result.missing}")
        ratio = result.floor_ratio(FASTEST)
        if result.case.uncontended and ratio is not None and ratio < FLOOR_BELOW:
            lines.append(f"The floor of {result.case.title!r} ran {1 / ratio:.2f}x as long as "
                         f"fastsync ({FASTEST}): in this build its empty calls landed badly "
                         "(see docs/benchmarks.md, \"Why several processes\"), so that row doesn't "
                         "show how far fastsync is from the cost of the call.")
        for name, measurement in result.measurements.items():
            if measurement.error:
                lines.append(f"ERROR in {result.case.title!r} with {name}:\n    "
                             + measurement.error.replace("\n", "\n    "))
    return "\n".join(lines)


Column = Tuple[str, str]   # (group heading, heading)


def _table_cells(results: Sequence[CaseResult], implementations: Sequence[Implementation]
                 ) -> Tuple[List[Column], List[List[str]]]:
    shown = [r for r in results if not r.skipped]
    present = [i for i in implementations if any(i.name in r.measurements for r in shown)]
    names = [i.name for i in present]
    columns: List[Column] = [("", "case")]
    for impl in present:
        columns.append((impl.label, "ns/op"))
        if impl.name not in (BASELINE, FLOOR):
            columns.append((impl.label, "speedup"))
    show_floor_ratio = FASTEST in names and FLOOR in names
    if show_floor_ratio:
        columns.append(("", f"{FASTEST}/floor"))

    rows = []
    for result in shown:
        row = [result.case.title]
        for impl in present:
            row.append(_ns_cell(result, impl.name))
            if impl.name not in (BASELINE, FLOOR):
                row.append(_number(result.speedup(impl.name), "x"))
        if show_floor_ratio:
            row.append(_number(result.floor_ratio(FASTEST), ""))
        rows.append(row)
    return columns, rows


def _ns_cell(result: CaseResult, name: str) -> str:
    measurement = result.measurements.get(name)
    if measurement is None:
        return DASH
    if measurement.error:
        return "error"
    value = measurement.median
    text = f"{value:,.0f}" if value >= 1000 else f"{value:.1f}"
    return text + ("*" if measurement.spread > NOISY_SPREAD else " ")


def _number(value: Optional[float], suffix: str) -> str:
    if value is None:
        return DASH
    return (f"{value:.0f}" if value >= 100 else f"{value:.1f}" if value >= 10 else f"{value:.2f}") + suffix


def _aligned(columns: List[Column], rows: List[List[str]]) -> str:
    gap = "  "
    widths = [max([len(title)] + [len(row[i]) for row in rows]) for i, (_, title) in enumerate(columns)]
    # Widen the last column of a group whose heading is wider than its columns.
    spans = _group_spans(columns)
    for group, first, last in spans:
        needed = len(group) - (sum(widths[first:last + 1]) + len(gap) * (last - first))
        if needed > 0:
            widths[last] += needed

    def line(cells: Sequence[str]) -> str:
        return gap.join(cell.ljust(w) if i == 0 else cell.rjust(w)
                        for i, (cell, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    group_line = gap.join(
        group.center(sum(widths[first:last + 1]) + len(gap) * (last - first))
        for group, first, last in spans).rstrip()
    heading = line([title for _, title in columns])
    return "\n".join([group_line, heading, "-" * len(heading)] + [line(row) for row in rows])


def _group_spans(columns: List[Column]) -> List[Tuple[str, int, int]]:
    spans: List[Tuple[str, int, int]] = []
    for index, (group, _) in enumerate(columns):
        if spans and group and spans[-1][0] == group:
            spans[-1] = (group, spans[-1][1], index)
        else:
            spans.append((group, index, index))
    return spans


def _markdown(columns: List[Column], rows: List[List[str]]) -> str:
    titles = [f"{group} {title}".strip() for group, title in columns]
    lines = ["| " + " | ".join(titles) + " |",
             "|" + "|".join([":---"] + ["---:"] * (len(columns) - 1)) + "|"]
    lines += ["| " + " | ".join(cell.strip() for cell in row) + " |" for row in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# JSON

def to_json(results: Sequence[CaseResult], implementations: Sequence[Implementation],
            missing: Sequence[str], env: Dict, settings: Settings) -> Dict:
    return {
        "format": 1,
        "environment": env,
        "settings": {"repeats": settings.repeats, "sample_ns": settings.sample_ns,
                     "thread_sample_ns": settings.thread_sample_ns, "unroll": UNROLL,
                     "processes": settings.processes,
                     "samples_per_process": settings.samples_per_process},
        "implementations": {i.name: i.label for i in implementations},
        "not_compared": list(missing),
        "cases": [_case_json(r) for r in results],
    }


def _case_json(result: CaseResult) -> Dict:
    case = result.case
    out: Dict = {"name": case.name, "title": case.title, "kind": case.kind, "code": case.code,
                 "uncontended": case.uncontended, "placement": case.placement,
                 "skipped": result.skipped,
                 "fastsync_missing": result.missing, "results": {}}
    for name, m in result.measurements.items():
        entry: Dict = {"error": m.error, "size": m.size, "ops_per_sample": m.ops,
                       "ns_per_op_samples": m.ns_per_op, "process_medians": m.process_medians,
                       "cpu_ns_per_op_samples": m.cpu_ns_per_op}
        if result.median(name) is not None:
            entry.update(ns_per_op=m.median, spread=m.spread,
                         speedup=result.speedup(name), floor_ratio=result.floor_ratio(name),
                         cpu_ns_per_op=result.cpu_median(name), cpu_ratio=result.cpu_ratio(name))
        out["results"][name] = entry
    return out


def write_json(path: str, data: Dict) -> None:
    with open(path, "w", encoding="utf-8") as out:
        json.dump(data, out, indent=2)
        out.write("\n")


# ---------------------------------------------------------------------------
# Plot

def check_plotting() -> Optional[str]:
    """None if --plot can work here, else what to tell the user."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return "--plot needs matplotlib, which is not installed: pip install matplotlib"
    return None


def plot(path: str, results: Sequence[CaseResult], implementations: Sequence[Implementation],
         title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    compared = [i for i in implementations if i.name not in (BASELINE, FLOOR)]
    shown = [r for r in results if any(r.speedup(i.name) for i in compared)]
    compared = [i for i in compared if any(r.speedup(i.name) for r in shown)]
    height = 0.8 / max(1, len(compared))
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(shown) + 1.5))
    for n, impl in enumerate(compared):
        offset = (n - (len(compared) - 1) / 2) * height
        bars = [(row + offset, r.speedup(impl.name)) for row, r in enumerate(shown)
                if r.speedup(impl.name) is not None]
        ax.barh([p for p, _ in bars], [v for _, v in bars], height=height, label=impl.label)
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_yticks(range(len(shown)))
    ax.set_yticklabels([r.case.title for r in shown])
    ax.invert_yaxis()
    ax.set_xlabel("speedup over threading (log scale; right of the line is faster)")
    ax.set_title(title)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
