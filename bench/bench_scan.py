"""Scan benchmark: callsweep against the generic ways of running the same rule, on the same file.

    python bench/bench_scan.py [--rows 5000000] [--rounds 3] [--out bench/results]

Generates (or reuses) a synthetic Sysmon event-10 Parquet file, times every contender in
alternating rounds on it, checks that every contender gave the generator's answer, and writes a
Markdown report and the raw timings. See bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from datetime import datetime
from functools import partial
from pathlib import Path

import duckdb
import polars as pl
import pyarrow
from dataset import (
    CALL_TRACE,
    ensure_dataset,
    ensure_slice,
    expected_alerts,
    row_count,
    row_groups,
    warm_page_cache,
)
from scan_report import (
    bullet_list,
    column_table,
    file_table,
    read_only_baseline,
    targets,
    targets_table,
)

import callsweep
from callsweep import _native
from callsweep.benchmark.contenders import (
    ALERTS,
    DUCKDB_THREADS,
    POLARS_ENGINE,
    ROWS,
    ColumnContender,
    FileContender,
    column_contenders,
    file_contenders,
)
from callsweep.benchmark.memory_probe import IMPORTS_ONLY, peak_rss_alone
from callsweep.benchmark.run_support import (
    callsweep_fingerprint,
    log,
    peak_rss_mib,
    verdict,
    write_results,
)
from callsweep.benchmark.timing import Timings, alternate
from callsweep.rules.model import default_rule

BENCH_DIR = Path(__file__).resolve().parent


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5_000_000, help="rows in the data set")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results", help="report folder")
    parser.add_argument("--data", type=Path, default=BENCH_DIR / "data", help="data folder")
    parser.add_argument(
        "--slice-rows",
        type=int,
        default=200_000,
        help="rows the per-row Python contender is timed on (then extrapolated)",
    )
    args = parser.parse_args(argv)
    if args.rows < 1 or args.rounds < 1 or args.slice_rows < 1:
        parser.error("--rows, --rounds and --slice-rows must be positive")
    return args


class Answers:
    """Every answer checked against what it must be; mismatches are collected, never hidden."""

    def __init__(self) -> None:
        self.mismatches: list[str] = []
        self.status: dict[str, str] = {}

    def expect(self, name: str, got: list[int], want: int, what: str) -> None:
        wrong = sorted({g for g in got if g != want})
        if wrong:
            self.mismatches.append(f"{name}: {what} {wrong}, expected {want:,}")
            self.status[name] = f"MISMATCH (expected {want:,})"
        else:
            self.status.setdefault(name, f"{what} = expected")


def check_on_slice(
    contenders: list[FileContender], slice_path: Path, truth: int, answers: Answers
) -> dict[str, int]:
    """Every alerting contender on the slice the per-row Python contender is timed on
    (untimed): the extrapolated contender's answer is then checked against the others."""
    counts = {c.name: c.count(slice_path) for c in contenders if c.answers == ALERTS}
    for name, count in counts.items():
        answers.expect(f"{name} (slice)", [count], truth, "alerts on the slice")
    return counts


def time_files(
    contenders: list[FileContender], data: Path, slice_path: Path, rows: int, rounds: int
) -> dict[str, Timings]:
    slice_rows = row_count(slice_path)
    timings, runs = {}, {}
    for c in contenders:
        path = slice_path if c.sliced else data
        scale = rows / slice_rows if c.sliced else 1.0
        timings[c.name] = Timings(c.name, rows=row_count(path), scale=scale)
        runs[c.name] = partial(c.count, path)
    alternate(runs, timings, rounds)
    return timings


def time_columns(
    contenders: list[ColumnContender], series: pl.Series, rounds: int
) -> dict[str, Timings]:
    timings = {c.name: Timings(c.name, rows=series.len()) for c in contenders}
    alternate({c.name: partial(c.count, series) for c in contenders}, timings, rounds)
    return timings


def time_column_phase(
    contenders: list[ColumnContender], data: Path, rounds: int, answers: Answers
) -> tuple[dict[str, Timings], int]:
    """Times the column contenders on the CallTrace column loaded once (untimed); returns the
    timings and the column's string bytes."""
    series = pl.read_parquet(data, columns=[CALL_TRACE]).to_series()
    value_bytes = int(series.str.len_bytes().sum())
    timings = time_columns(contenders, series, rounds)
    check_columns(timings, answers)
    return timings, value_bytes


def check_files(
    contenders: list[FileContender],
    timings: dict[str, Timings],
    truth: int,
    slice_truth: int,
    rows: int,
    answers: Answers,
) -> None:
    for c in contenders:
        got = timings[c.name].answers
        if c.answers == ROWS:
            answers.expect(c.name, got, rows, "rows read")
        elif c.sliced:
            answers.expect(c.name, got, slice_truth, "alerts on the slice")
        else:
            answers.expect(c.name, got, truth, "alerts")


def probe_memory(
    contenders: list[FileContender],
    data: Path,
    slice_path: Path,
    truth: int,
    slice_truth: int,
    answers: Answers,
) -> dict[str, float]:
    """Peak RSS (MiB) of each contender run alone in a fresh process; its answer is checked too."""
    slice_rows = row_count(slice_path)
    _, imports_only = peak_rss_alone(IMPORTS_ONLY, data, slice_rows)
    peak = {IMPORTS_ONLY: imports_only}
    for c in contenders:
        log(f"  peak memory alone: {c.name}")
        answer, peak[c.name] = peak_rss_alone(c.name, slice_path if c.sliced else data, slice_rows)
        if c.answers == ALERTS:
            want = slice_truth if c.sliced else truth
            answers.expect(f"{c.name} (memory run)", [answer], want, "alerts")
    return peak


def check_columns(timings: dict[str, Timings], answers: Answers) -> None:
    """The column contenders have no generator truth to meet; they must agree with the kernel."""
    kernel = timings["kernel"].answers[0]
    for name, t in timings.items():
        answers.expect(name, t.answers, kernel, "matches")


def versions() -> dict[str, object]:
    return {
        "python": platform.python_version(),
        "polars": pl.__version__,
        "duckdb": duckdb.__version__,
        "pyarrow": pyarrow.__version__,
        "callsweep": getattr(callsweep, "__version__", "(no __version__)"),
        "callsweep._native.is_release_build()": _native.is_release_build(),
    }


def setup_facts(
    data: Path,
    rows: int,
    truth: int,
    rounds: int,
    order: list[str],
    load_at_start: float,
    code: tuple[str, str],
) -> dict:
    return {
        "date": datetime.now().isoformat(timespec="seconds"),
        "machine": f"{platform.platform()}, {os.cpu_count()} logical CPUs",
        "data": f"`{data}`: {rows:,} rows, {data.stat().st_size / 2**20:,.1f} MiB, "
        f"{row_groups(data)} row groups (zstd)",
        "expected alerts (generator's `expected_alert`)": f"{truth:,}",
        "rounds": f"{rounds}, alternating in the order {', '.join(order)}",
        "page cache": "warm (the whole file read once, untimed, before the first round)",
        "threads": f"polars pool {pl.thread_pool_size()} "
        f"(POLARS_MAX_THREADS={os.environ.get('POLARS_MAX_THREADS', 'unset: all cores')}), "
        f"DuckDB threads={DUCKDB_THREADS}",
        "polars engine for the polars contenders": POLARS_ENGINE,
        # Other work on a shared machine shows here as well as in the spread.
        "load average (1 min) at the start / end": f"{load_at_start:.2f} / "
        f"{os.getloadavg()[0]:.2f}",
        "callsweep files digest": code[0]
        if code[0] == code[1]
        else f"**CHANGED during the run**: {code[0]} at the start, {code[1]} at the end",
    }


def render(
    facts: dict,
    files: dict[str, Timings],
    file_notes: dict[str, str],
    peak_rss: dict[str, float],
    columns: dict[str, Timings],
    column_notes: dict[str, str],
    value_bytes: int,
    answers: Answers,
    memory: dict[str, str],
) -> str:
    read_only = read_only_baseline(files)
    ours = files["callsweep"].median
    sections = [
        "# Scan benchmark: the direct-syscall rule over Sysmon event 10",
        bullet_list(facts),
        "## The whole rule over the file",
        file_table(files, answers.status, file_notes, peak_rss),
        "`*`: timed on a slice and extrapolated linearly to the whole file. "
        "x callsweep: the contender's median time / callsweep's. "
        "CPU s: CPU time of the process, all threads (median). "
        "Peak RSS alone: one more, untimed run in a fresh process "
        f"(a process that only imports holds {peak_rss[IMPORTS_ONLY]:,.0f} MiB). "
        f"callsweep / {read_only.name} (the faster read-only run): "
        f"**{ours / read_only.median:.2f}**.",
        "## The wildcard kernel on the CallTrace column, in memory",
        column_table(columns, value_bytes, column_notes),
        f"Kernel speedup over polars regex on the column: "
        f"**{columns['polars-regex-column'].median / columns['kernel'].median:.1f}x**.",
        "## Targets set by the issue (reported, not tuned to)",
        targets_table(targets(files, columns)),
        "## Answers",
        "Every answer matched the expected one."
        if not answers.mismatches
        else "\n".join(f"- **MISMATCH** {m}" for m in answers.mismatches),
        "## Memory",
        bullet_list(memory),
        "## Versions",
        bullet_list(versions()),
    ]
    return "\n\n".join(sections) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_at_start = os.getloadavg()[0]
    code_at_start = callsweep_fingerprint()
    query = default_rule().query
    answers = Answers()

    log(f"data: {args.rows:,} rows under {args.data}")
    data = ensure_dataset(args.rows, args.data)
    rows, truth = row_count(data), expected_alerts(data)
    slice_path = ensure_slice(data, min(args.slice_rows, rows))
    slice_truth = expected_alerts(slice_path)

    contenders = file_contenders(query, row_count(slice_path))
    log("checking every contender on the slice (untimed)")
    check_on_slice(contenders, slice_path, slice_truth, answers)

    warm_page_cache(data)
    warm_page_cache(slice_path)
    log(f"timing the rule over the file, {args.rounds} rounds")
    files = time_files(contenders, data, slice_path, rows, args.rounds)
    check_files(contenders, files, truth, slice_truth, rows, answers)
    rss_after_files = peak_rss_mib()
    log("peak memory of each contender alone (untimed, a fresh process each)")
    peak_rss = probe_memory(contenders, data, slice_path, truth, slice_truth, answers)

    log("timing the kernel on the CallTrace column")
    in_memory = column_contenders(query)
    columns, value_bytes = time_column_phase(in_memory, data, args.rounds, answers)

    memory = {
        "peak RSS after the file rounds": f"{rss_after_files:,.0f} MiB",
        "peak RSS at the end (CallTrace column in memory)": f"{peak_rss_mib():,.0f} MiB",
        "note": "the whole benchmark process (`getrusage(RUSAGE_SELF).ru_maxrss`), every "
        "contender in it; see the table for each contender alone",
    }
    order = [c.name for c in contenders]
    code = (code_at_start, callsweep_fingerprint())
    facts = setup_facts(data, rows, truth, args.rounds, order, load_at_start, code)
    markdown = render(
        facts,
        files,
        {c.name: c.note for c in contenders},
        peak_rss,
        columns,
        {c.name: c.note for c in in_memory},
        value_bytes,
        answers,
        memory,
    )
    raw = {
        "setup": facts,
        "versions": versions(),
        "memory": memory,
        "peak_rss_alone_mib": peak_rss,
        "file": {name: t.as_json() for name, t in files.items()},
        "column": {name: t.as_json() for name, t in columns.items()},
        "column_string_bytes": value_bytes,
        "targets": [vars(t) | {"met": t.met} for t in targets(files, columns)],
        "mismatches": answers.mismatches,
    }
    print(markdown)
    log(f"written: {write_results(args.out, 'scan', markdown, raw)}")
    return verdict(answers.mismatches, code)


if __name__ == "__main__":
    sys.exit(main())
