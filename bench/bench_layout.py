"""Layout benchmark: `callsweep.scan` over the same events written two ways.

    python bench/bench_layout.py [--rows 10000000] [--shares 0.03,0.15] [--rounds 5]
                                 [--out bench/results]

- `flat-ecs`: the events as plain flat-ECS Parquet: pyarrow's `ParquetWriter` with its default
  settings and zstd, one `write_table` per generated chunk of 500,000 rows (so row groups of
  500,000 rows, rows in time order, event 10 interleaved with the rest as in a real log).
- `callsweep`: the same events through `callsweep.layout.EventLayoutWriter`, the writer
  `callsweep convert` uses (row groups by event-code kind, the stored CallTrace[:64] prefix).

The events are synthetic (`callsweep.synthetic`, fields other events do not have left null on
them); every run's alerts are checked against the generator's own answer (record ids of the
events it built to alert). The two layouts are scanned in alternation, A B A B ...
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

import callsweep
from callsweep import synthetic
from callsweep.benchmark.run_support import callsweep_fingerprint, log, verdict, write_results
from callsweep.benchmark.timing import Timings, alternate
from callsweep.layout import EventLayoutWriter

BENCH_DIR = Path(__file__).resolve().parent
# Fields only event 10 (or its siblings) carries: null on the other events, as in real logs.
EVENT10_ONLY = (
    "winlog.event_data.TargetImage",
    "winlog.event_data.TargetProcessId",
    "winlog.event_data.GrantedAccess",
)
LAYOUTS = ("flat-ecs", "callsweep")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="events per data set")
    parser.add_argument("--shares", default="0.03,0.15", help="shares of event 10, comma-separated")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds")
    parser.add_argument("--data", type=Path, default=BENCH_DIR / "data", help="data folder")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results", help="report folder")
    return parser.parse_args(argv)


def _plain_strings(table: pa.Table) -> pa.Table:
    plain = [
        f.with_type(pa.string()) if f.type in (pa.string_view(), pa.large_string()) else f
        for f in table.schema
    ]
    return table.cast(pa.schema(plain))


def build(rows: int, share: float, folder: Path) -> dict:
    """Writes (or reuses) the data set in both layouts; returns its facts and expected alerts."""
    facts_path = folder / "facts.json"
    if facts_path.exists():
        return json.loads(facts_path.read_text())
    folder.mkdir(parents=True, exist_ok=True)
    shape = synthetic.Shape(rows=rows, event10_share=share, syscall_share=0.01)
    paths = {name: folder / f"{name}.parquet" for name in LAYOUTS}
    flat = layout = None
    expected: list[int] = []
    log(f"generating {rows:,} events, {share:.0%} event 10, in {folder}")
    try:
        for offset in range(0, rows, shape.chunk_rows):
            frame = synthetic.chunk(shape, offset, min(shape.chunk_rows, rows - offset))
            expected.extend(frame.filter("expected_alert")["winlog.record_id"].to_list())
            frame = frame.drop("expected_alert").with_columns(
                pl.when(pl.col("event.code") == "10").then(pl.col(c)).alias(c) for c in EVENT10_ONLY
            )
            table = _plain_strings(frame.to_arrow())
            if flat is None:
                flat = pq.ParquetWriter(paths["flat-ecs"], table.schema, compression="zstd")
                layout = EventLayoutWriter(paths["callsweep"], table.schema)
            flat.write_table(table)
            for batch in table.to_batches():
                layout.write(batch)
    finally:
        if flat is not None:
            flat.close()
        if layout is not None:
            layout.close()
    facts = {
        "rows": rows,
        "event10_share": share,
        "expected_record_ids": sorted(expected),
        "files": {
            name: {
                "path": str(path),
                "bytes": path.stat().st_size,
                "row_groups": pq.read_metadata(path).num_row_groups,
            }
            for name, path in paths.items()
        },
    }
    facts_path.write_text(json.dumps(facts))
    return facts


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    code_at_start = callsweep_fingerprint()
    load_at_start = os.getloadavg()[0]
    mismatches: list[str] = []
    results = {}
    lines = [
        "# Layout benchmark: scanning callsweep-written vs flat-ECS Parquet",
        "",
        f"- machine: {platform.platform()}, {os.cpu_count()} logical CPUs",
        f"- command: python bench/bench_layout.py {' '.join(argv or sys.argv[1:])}",
        f"- rounds: {args.rounds}, alternating flat-ecs, callsweep; warm page cache",
        f"- polars {pl.__version__}, pyarrow {pa.__version__}, "
        f"release build: {callsweep._native.is_release_build()}",
        "",
        "| event 10 share | layout | MiB | row groups | median s | min-max s | CPU s "
        "| flat / callsweep | alerts |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for share in (float(s) for s in args.shares.split(",")):
        folder = args.data / f"layout-{args.rows}rows-{share:g}share-seed7"
        facts = build(args.rows, share, folder)
        expected = facts["expected_record_ids"]
        paths = {name: facts["files"][name]["path"] for name in LAYOUTS}
        for path in paths.values():
            Path(path).read_bytes()  # warm the page cache, untimed

        def run(path: str, name: str, wanted: list[int] = expected, share: float = share) -> int:
            alerts = callsweep.scan(path)
            if sorted(alerts["winlog.record_id"].to_list()) != wanted:
                mismatches.append(f"{name} at share {share:g}: alerts differ from the generator's")
            return alerts.height

        timings = {name: Timings(name, rows=args.rows) for name in LAYOUTS}
        log(f"scanning share {share:g}, {args.rounds} rounds")
        alternate(
            {name: (lambda p=path, n=name: run(p, n)) for name, path in paths.items()},
            timings,
            args.rounds,
        )
        flat_median = timings["flat-ecs"].median
        for name in LAYOUTS:
            t, f = timings[name], facts["files"][name]
            answer = "= generator" if set(t.answers) == {len(expected)} else "MISMATCH"
            lines.append(
                f"| {share:.0%} | {name} | {f['bytes'] / 2**20:,.1f} | {f['row_groups']} "
                f"| {t.median:.3f} | {t.fastest:.3f}-{t.slowest:.3f} | {t.cpu_median:.3f} "
                f"| {flat_median / t.median:.2f} | {len(expected):,} {answer} |"
            )
        results[str(share)] = {
            "files": facts["files"],
            "timings": {n: t.as_json() for n, t in timings.items()},
            "expected_alerts": len(expected),
        }
    load_at_end = os.getloadavg()[0]
    lines += [
        "",
        f"{args.rows:,} events per data set. flat / callsweep: the flat layout's median time "
        "over this layout's (above 1: callsweep's layout is faster). CPU s: process CPU time, "
        "all threads.",
        f"Load average (1 min) at the start / end: {load_at_start:.2f} / {load_at_end:.2f}.",
    ]
    markdown = "\n".join(lines) + "\n"
    print(markdown)
    raw = {"args": vars(args) | {"data": str(args.data), "out": str(args.out)}, "results": results}
    log(f"written: {write_results(args.out, 'layout', markdown, raw)}")
    return verdict(mismatches, (code_at_start, callsweep_fingerprint()))


if __name__ == "__main__":
    sys.exit(main())
