"""The conversion benchmark's report: Markdown tables for people (the raw timings go to JSON)."""

from __future__ import annotations

from dataclasses import dataclass

from convert_contenders import CALLSWEEP, EVTX_DUMP, PYTHON
from evtx_inputs import EvtxInput

from callsweep.benchmark.timing import Timings

GIB_MIB = 1024


@dataclass(frozen=True)
class Target:
    """A goal the issue sets: `measured` must be at least (or below) `bound`."""

    text: str
    measured: float
    bound: float
    at_least: bool
    unit: str = "x"

    @property
    def met(self) -> bool:
        return self.measured >= self.bound if self.at_least else self.measured < self.bound


def records_per_second(t: Timings) -> float:
    return t.rows / t.median


def speedup(timings: dict[str, Timings], name: str) -> float:
    """callsweep's records/s over the contender's (each counted on its own output)."""
    return records_per_second(timings[CALLSWEEP]) / records_per_second(timings[name])


def _rate(per_second: float, unit: str = "") -> str:
    for prefix, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if per_second >= size:
            return f"{per_second / size:.2f} {prefix}{unit}"
    return f"{per_second:.0f} {unit}".rstrip()


def describe_input(inp: EvtxInput) -> str:
    return (
        f"{len(inp.files):,} file(s), {inp.bytes / 1e6:,.1f} MB ({inp.mib:,.1f} MiB), "
        f"{inp.pyevtx_records:,} records read by the `evtx` package"
    )


def throughput_table(
    inp: EvtxInput,
    timings: dict[str, Timings],
    status: dict[str, str],
    peak_rss: dict[str, float],
) -> str:
    lines = [
        "| contender | median s | min-max s | CPU s | records | records/s | input MB/s "
        "| callsweep speedup | peak RSS alone | answer |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, t in timings.items():
        rss = f"{peak_rss[name]:,.0f} MiB" if name in peak_rss else "-"
        lines.append(
            f"| {name} | {t.median:.2f} | {t.fastest:.2f}-{t.slowest:.2f} | {t.cpu_median:.2f} "
            f"| {t.rows:,} | {_rate(records_per_second(t))} | {inp.bytes / 1e6 / t.median:,.1f} "
            f"| {speedup(timings, name):.2f} | {rss} | {status[name]} |"
        )
    return "\n".join(lines)


def contenders_list(notes: dict[str, str]) -> str:
    return "\n".join(f"- `{name}`: {note}" for name, note in notes.items())


def memory_table(
    inputs: list[EvtxInput], peak_rss: dict[str, dict[str, float]], imports_only: float
) -> str:
    """Peak RSS alone per contender (rows) and input (columns): flat rows mean memory does not
    grow with the input."""
    names = list(next(iter(peak_rss.values())))
    header = " | ".join(f"{inp.name}, {inp.mib:,.0f} MiB" for inp in inputs)
    lines = [f"| contender | {header} |", "|---|" + "---:|" * len(inputs)]
    for name in names:
        cells = " | ".join(f"{peak_rss[inp.name][name]:,.0f} MiB" for inp in inputs)
        lines.append(f"| {name} | {cells} |")
    floor = " | ".join([f"{imports_only:,.0f} MiB"] * len(inputs))
    lines.append(f"| (a Python process that only imports) | {floor} |")
    return "\n".join(lines)


def scan_table(timings: dict[str, Timings], facts: dict[str, dict[str, int]]) -> str:
    baseline = next(iter(timings.values())).median
    lines = [
        "| layout | files | MiB | rows | row groups | median s | min-max s | CPU s "
        "| x callsweep layout | alerts |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, t in timings.items():
        f = facts[name]
        answers = ", ".join(f"{a:,}" for a in sorted(set(t.answers)))
        lines.append(
            f"| {name} | {f['files']:,} | {f['bytes'] / 2**20:,.1f} | {f['rows']:,} "
            f"| {f['row_groups']:,} | {t.median:.3f} | {t.fastest:.3f}-{t.slowest:.3f} "
            f"| {t.cpu_median:.3f} | {t.median / baseline:.2f} | {answers} |"
        )
    return "\n".join(lines)


def conversion_targets(
    timed: dict[str, dict[str, Timings]], peak_rss: dict[str, dict[str, float]]
) -> list[Target]:
    found = []
    for name, timings in timed.items():
        found.append(
            Target(
                f"{name}: callsweep >= 1.0x evtx_dump's records/s",
                speedup(timings, EVTX_DUMP),
                1.0,
                True,
            )
        )
        found.append(
            Target(
                f"{name}: callsweep >= 4x the Python pipeline's records/s",
                speedup(timings, PYTHON),
                4.0,
                True,
            )
        )
    worst = max(peaks[CALLSWEEP] for peaks in peak_rss.values())
    found.append(
        Target(
            "callsweep peak memory < 1 GiB at every input size (the largest)",
            worst,
            GIB_MIB,
            False,
            " MiB",
        )
    )
    return found


def scan_target(name: str, timings: dict[str, Timings], ours: str, plain: str) -> Target:
    return Target(
        f"{name}: scanning callsweep-written Parquet >= 5x faster than flat-ECS Parquet",
        timings[plain].median / timings[ours].median,
        5.0,
        True,
    )


def targets_table(found: list[Target]) -> str:
    lines = ["| target | measured | met |", "|---|---:|---|"]
    for target in found:
        value = (
            f"{target.measured:,.0f}" if target.unit.strip() == "MiB" else f"{target.measured:.2f}"
        )
        lines.append(f"| {target.text} | {value}{target.unit} | {'yes' if target.met else 'NO'} |")
    return "\n".join(lines)


def bullet_list(items: dict[str, object]) -> str:
    return "\n".join(f"- {key}: {value}" for key, value in items.items())
