"""The benchmark's report: a Markdown table for people, a JSON of raw timings for later analysis."""

from __future__ import annotations

from dataclasses import dataclass

from callsweep.benchmark.timing import Timings

BASELINE = "callsweep"
KERNEL = "kernel"
REGEX_COLUMN = "polars-regex-column"
READ_ONLY = ("read-only", "read-only-streaming", "read-only-parallel")


@dataclass(frozen=True)
class Target:
    """A goal the issue sets: `measured` must be at least (or at most) `bound`."""

    text: str
    measured: float
    bound: float
    at_least: bool

    @property
    def met(self) -> bool:
        return self.measured >= self.bound if self.at_least else self.measured <= self.bound


def read_only_baseline(files: dict[str, Timings]) -> Timings:
    """The fastest of the read-only runs: reading alone can cost no more than that."""
    return min((files[name] for name in READ_ONLY), key=lambda t: t.median)


def targets(files: dict[str, Timings], columns: dict[str, Timings]) -> list[Target]:
    ours = files[BASELINE].median
    read_only = read_only_baseline(files)
    return [
        Target(
            "callsweep >= 3x faster than polars-regex", files["polars-regex"].median / ours, 3, True
        ),
        Target("callsweep >= 5x faster than DuckDB", files["duckdb"].median / ours, 5, True),
        Target(
            f"callsweep <= 1.25x the time of {read_only.name}",
            ours / read_only.median,
            1.25,
            False,
        ),
        Target(
            "kernel >= 10x polars regex on the column",
            columns[REGEX_COLUMN].median / columns[KERNEL].median,
            10,
            True,
        ),
    ]


def _seconds(t: Timings) -> tuple[str, str]:
    mark = "*" if t.extrapolated else ""
    return f"{t.median:.3f}{mark}", f"{t.fastest:.3f}-{t.slowest:.3f}{mark}"


def _rate(per_second: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if per_second >= size:
            return f"{per_second / size:.2f} {unit}"
    return f"{per_second:.0f}"


def _answers(t: Timings) -> str:
    distinct = sorted(set(t.answers))
    return ", ".join(f"{a:,}" for a in distinct)


def file_table(
    files: dict[str, Timings],
    answers: dict[str, str],
    notes: dict[str, str],
    peak_rss: dict[str, float],
) -> str:
    ours = files[BASELINE].median
    lines = [
        "| contender | median s | min-max s | CPU s | rows/s | x callsweep | peak RSS alone "
        "| answer | how |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for name, t in files.items():
        median, spread = _seconds(t)
        lines.append(
            f"| {name} | {median} | {spread} | {t.cpu_median:.3f} | {_rate(t.rows_per_second)} "
            f"| {t.median / ours:.2f} | {peak_rss[name]:,.0f} MiB "
            f"| {_answers(t)} {answers[name]} | {notes[name]} |"
        )
    return "\n".join(lines)


def column_table(columns: dict[str, Timings], value_bytes: int, notes: dict[str, str]) -> str:
    kernel = columns[KERNEL].median
    lines = [
        "| contender | median s | min-max s | CPU s | rows/s | string bytes/s | x kernel "
        "| matches | how |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for name, t in columns.items():
        median, spread = _seconds(t)
        lines.append(
            f"| {name} | {median} | {spread} | {t.cpu_median:.3f} | {_rate(t.rows_per_second)} "
            f"| {_rate(value_bytes / t.median)}B | {t.median / kernel:.2f} | {_answers(t)} "
            f"| {notes[name]} |"
        )
    return "\n".join(lines)


def targets_table(found: list[Target]) -> str:
    lines = ["| target | measured | met |", "|---|---:|---|"]
    for target in found:
        met = "yes" if target.met else "NO"
        lines.append(f"| {target.text} | {target.measured:.2f}x | {met} |")
    return "\n".join(lines)


def bullet_list(items: dict[str, object]) -> str:
    return "\n".join(f"- {key}: {value}" for key, value in items.items())
