"""What `callsweep bench` shows and writes: the terminal table, the JSON file (every measurement
and the machine), and the PNG charts (when matplotlib, an optional extra, is installed)."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path

from rich import box
from rich.table import Table

from callsweep.benchmark.runner import GENERATOR, BenchResult, SizeResult

MIB = 1024 * 1024
VERSIONED = ("callsweep", "polars", "pyarrow", "duckdb", "evtx", "orjson", "matplotlib")


def _proc_value(path: str, key: str) -> str | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def machine() -> dict:
    """The machine and the software the numbers were measured with."""
    versions = {}
    for name in VERSIONED:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    memory = _proc_value("/proc/meminfo", "MemTotal")
    return {
        "cpu_model": _proc_value("/proc/cpuinfo", "model name") or platform.processor(),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gib": round(int(memory.split()[0]) / MIB, 1) if memory else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
    }


def scaling(result: BenchResult) -> dict[str, dict]:
    """Per tool, relative to the smallest size: how rows, median time and peak RSS grew."""
    if len(result.sizes) < 2:
        return {}
    first, last = result.sizes[0], result.sizes[-1]
    summary = {}
    for start, end in zip(first.tools, last.tools, strict=True):
        summary[start.name] = {
            "rows_factor": last.rows / first.rows,
            "time_factor": end.timings.median / start.timings.median,
            "peak_rss_mib": [
                next(t for t in size.tools if t.name == start.name).peak_rss_mib
                for size in result.sizes
            ],
        }
    return summary


def as_json(result: BenchResult, command: list[str]) -> dict:
    return {
        "command": command,
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "callsweep_code": {"before": result.code_before, "after": result.code_after},
        "skipped": result.skipped,
        "parity_ok": not result.mismatches,
        "mismatches": result.mismatches,
        "scaling": scaling(result),
        "convert": _size_json(result.convert, "records") if result.convert is not None else None,
        "sizes": [_size_json(size) for size in result.sizes],
    }


def _size_json(size: SizeResult, count: str = "alerts") -> dict:
    return {
        "scale": size.scale,
        "rows": size.rows,
        "bytes": size.bytes,
        "files": size.files,
        "imports_only_rss_mib": size.imports_only_rss_mib,
        "tools": [
            {
                "name": tool.name,
                "note": tool.note,
                "median_seconds": tool.timings.median,
                "rows_per_second": tool.timings.rows_per_second,
                "mb_per_second": size.bytes / 1e6 / tool.timings.median,
                "extrapolated": tool.timings.extrapolated,
                "ratio_to_callsweep": tool.ratio,
                "ratios_pair_by_pair": tool.ratios,
                "peak_rss_mib": tool.peak_rss_mib,
                count: tool.alerts,
                "parity": {
                    "ok": tool.parity.ok,
                    "reference": tool.parity.reference,
                    "missing": len(tool.parity.missing),
                    "extra": len(tool.parity.extra),
                    "unstable": tool.parity.unstable,
                    "missing_examples": tool.parity.missing[:10],
                    "extra_examples": tool.parity.extra[:10],
                },
                "timings": tool.timings.as_json(),
            }
            for tool in size.tools
        ],
    }


def _rate(value: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:.2f}{unit}"
    return f"{value:.0f}"


def size_table(size: SizeResult, kind: str = "scan") -> Table:
    """One size's figures; `kind` "convert" counts the records written, not alerts."""
    table = Table(
        title=f"{kind}, {size.rows:,} rows, {size.bytes / 1e6:.1f} MB ({size.scale}x)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    table.add_column("tool", no_wrap=True)
    count = "records" if kind == "convert" else "alerts"
    for column in ("median s", "range s", "rows/s", "MB/s", "ratio", "RSS MiB", count):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("parity", no_wrap=True)
    for tool in size.tools:
        timings = tool.timings
        mark = "~" if timings.extrapolated else ""
        if tool.parity.ok:
            reference = tool.parity.reference
            parity = "[green]ok[/]" + (f" (= {reference})" if GENERATOR in reference else "")
        else:
            parity = f"[bold red]{tool.parity.describe()}[/]"
        table.add_row(
            tool.name + mark,
            f"{mark}{timings.median:.3f}",
            f"{timings.fastest:.3f}-{timings.slowest:.3f}",
            f"{mark}{_rate(timings.rows_per_second)}",
            f"{mark}{size.bytes / 1e6 / timings.median:.1f}",
            f"{tool.ratio:.2f}x" if tool.ratio is not None else "",
            f"{tool.peak_rss_mib:.0f}" if tool.peak_rss_mib is not None else "-",
            f"{tool.alerts:,}",
            parity,
        )
    notes = [
        "ratio: the tool's time / callsweep's, median of the A B pairs;",
        f"parity: the set of {count} by (file, record id) equals the reference's;",
        "~: timed on a slice and extrapolated, parity on the same slice;",
        "RSS: peak of one run in a fresh process",
    ]
    if size.imports_only_rss_mib is not None:
        notes.append(f"(imports alone: {size.imports_only_rss_mib:.0f} MiB)")
    table.caption = " ".join(notes)
    return table


def scaling_table(result: BenchResult) -> Table | None:
    summary = scaling(result)
    if not summary:
        return None
    table = Table(title="scaling (largest size vs smallest)", title_justify="left")
    for column in ("tool", "rows x", "time x", "peak RSS MiB by size"):
        table.add_column(column, justify="left" if column == "tool" else "right")
    for name, row in summary.items():
        rss = " / ".join(f"{v:.0f}" if v is not None else "-" for v in row["peak_rss_mib"])
        table.add_row(name, f"{row['rows_factor']:.0f}", f"{row['time_factor']:.1f}", rss)
    return table


def write_charts(result: BenchResult, out: Path, stamp: str) -> list[Path]:
    """Throughput by tool (largest size), and time and peak RSS against input size.

    Raises ImportError when matplotlib (the `bench` extra) is missing."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    written = []
    largest = result.sizes[-1]
    figure, axis = plt.subplots(figsize=(8, 4))
    names = [tool.name for tool in largest.tools]
    rates = [tool.timings.rows_per_second / 1e6 for tool in largest.tools]
    colors = ["tab:green" if tool.parity.ok else "tab:red" for tool in largest.tools]
    axis.barh(names, rates, color=colors)
    axis.invert_yaxis()
    axis.set_xlabel("million rows / s (median)")
    axis.set_title(f"scan throughput, {largest.rows:,} rows (red: wrong answer)")
    figure.tight_layout()
    path = out / f"bench-{stamp}-throughput.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    written.append(path)

    rows = [size.rows for size in result.sizes]
    for metric, label, value in (
        ("time", "median seconds", lambda tool: tool.timings.median),
        ("memory", "peak RSS MiB (fresh process)", lambda tool: tool.peak_rss_mib),
    ):
        series = {
            name: [value(size.tools[index]) for size in result.sizes]
            for index, name in enumerate(names)
        }
        series = {name: v for name, v in series.items() if None not in v}
        if not series:  # peak RSS not measured (--no-memory)
            continue
        figure, axis = plt.subplots(figsize=(8, 4))
        for name, values in series.items():
            axis.plot(rows, values, marker="o", label=name)
        axis.set_xscale("log")
        if metric == "time":
            axis.set_yscale("log")
        axis.set_xlabel("input rows")
        axis.set_ylabel(label)
        axis.set_title(f"scan {metric} against input size")
        axis.legend(fontsize="small")
        figure.tight_layout()
        path = out / f"bench-{stamp}-{metric}.png"
        figure.savefig(path, dpi=110)
        plt.close(figure)
        written.append(path)
    return written


def write_json(result: BenchResult, out: Path, stamp: str, command: list[str]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"bench-{stamp}.json"
    path.write_text(json.dumps(as_json(result, command), indent=2) + "\n")
    return path
