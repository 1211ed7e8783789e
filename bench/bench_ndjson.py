"""Scanning winlogbeat-shaped NDJSON: `callsweep scan` (the library's Scanner.run, as the CLI
calls it) vs polars `scan_ndjson` + the rule as regex vs DuckDB `read_json` + ILIKE; and, as a
diagnostic, callsweep with `--compare-elastic`, which parses every event 10 with a CallTrace.

The data are nested ECS documents as winlogbeat's file output writes them, generated from
`callsweep.synthetic` (a share of Sysmon event 10, a few direct-syscall CallTraces). Contenders
run alternated (A B C A B C ...) on the same file; medians, ratios, and the alert counts, which
must agree.

    nice -n 10 python bench/bench_ndjson.py --size-mb 2048 --rounds 3
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import duckdb
import polars as pl
from winlogbeat_docs import winlogbeat_ndjson

from callsweep.benchmark.rule_translations import anchored_regex, polars_predicate, sql_where
from callsweep.benchmark.run_support import (
    callsweep_fingerprint,
    log,
    peak_rss_mib,
    verdict,
    write_results,
)
from callsweep.benchmark.timing import Timings, alternate
from callsweep.rules.model import default_rule
from callsweep.scan import Scanner
from callsweep.synthetic import Shape, chunk

HERE = Path(__file__).resolve().parent
CHUNK_ROWS = 50_000


def generate(path: Path, size_bytes: int, event10_share: float) -> int:
    """Writes NDJSON until the file holds `size_bytes`; returns the expected alert count."""
    if path.exists() and path.with_suffix(".expected").exists():
        return int(path.with_suffix(".expected").read_text())
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = Shape(rows=10**12, event10_share=event10_share)
    expected = offset = 0
    with open(path, "wb") as out:
        while out.tell() < size_bytes:
            events = chunk(shape, offset, CHUNK_ROWS)
            expected += int(events["expected_alert"].sum())
            out.write(winlogbeat_ndjson(events))
            offset += CHUNK_ROWS
    path.with_suffix(".expected").write_text(str(expected))
    return expected


def _flat(frame):
    """The fields the rule reads, from the nested documents, under their dotted names."""
    c = pl.col
    return frame.select(
        c("event").struct.field("category").alias("event.category"),
        c("event").struct.field("code").alias("event.code"),
        c("host").struct.field("os").struct.field("type").alias("host.os.type"),
        c("process").struct.field("executable").alias("process.executable"),
        *(
            c("winlog").struct.field("event_data").struct.field(n).alias(f"winlog.event_data.{n}")
            for n in ("CallTrace", "TargetImage")
        ),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mb", type=int, default=2048)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--event10-share", type=float, default=0.2)
    parser.add_argument("--data", type=Path, default=HERE / "data")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    rule = default_rule()
    code_before = callsweep_fingerprint()
    path = args.data / f"winlogbeat8_{args.size_mb}mb_{args.event10_share}.ndjson"
    log(f"generating {path} ...")
    expected = generate(path, args.size_mb << 20, args.event10_share)
    with open(path, "rb") as fh:
        lines = sum(1 for _ in fh)
    log(f"{path.stat().st_size / 1e6:,.0f} MB, {lines:,} lines, {expected:,} expected alerts")

    predicate = polars_predicate(rule.query, anchored_regex)
    where = sql_where(rule.query)
    con = duckdb.connect()
    sql = f"""
        SELECT count(*) FROM (
          SELECT event.category AS "event.category", event.code AS "event.code",
                 host.os.type AS "host.os.type", process.executable AS "process.executable",
                 winlog.event_data.CallTrace AS "winlog.event_data.CallTrace",
                 winlog.event_data.TargetImage AS "winlog.event_data.TargetImage"
          FROM read_json('{path}', format = 'newline_delimited')
        ) WHERE {where}"""

    runs = {
        "callsweep scan": lambda: Scanner(rule).run([path]).alerts,
        # Diagnostic: with Elasticsearch's verdicts computed beside, every event 10 with a
        # CallTrace is parsed (the prefilter's second test proves nothing there).
        "callsweep scan --compare-elastic": lambda: (
            Scanner(rule, compare_modes=True).run([path]).alerts
        ),
        "polars scan_ndjson + regex": lambda: int(
            _flat(pl.scan_ndjson(path)).filter(predicate).select(pl.len()).collect().item()
        ),
        "duckdb read_json + ILIKE": lambda: int(con.execute(sql).fetchone()[0]),
    }
    timings = {name: Timings(name, lines) for name in runs}
    alternate(runs, timings, args.rounds)

    mismatches = [
        f"{t.name}: {sorted(set(t.answers))} alerts, expected {expected}"
        for t in timings.values()
        if set(t.answers) != {expected}
    ]
    ours = timings["callsweep scan"].median
    best_other = min(t.median for n, t in timings.items() if not n.startswith("callsweep"))
    rows = [
        "| contender | median s | cpu s | lines/s | alerts | vs callsweep |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for t in timings.values():
        rows.append(
            f"| {t.name} | {t.median:.2f} | {t.cpu_median:.2f} | {t.rows_per_second:,.0f} "
            f"| {t.answers[-1]:,} | {t.median / ours:.2f}x |"
        )
    target = best_other / ours
    markdown = "\n".join(
        [
            f"{path.name}: {path.stat().st_size / 1e6:,.0f} MB, {lines:,} lines, "
            f"{args.event10_share:.0%} event 10, {args.rounds} rounds alternated; "
            f"peak RSS {peak_rss_mib():,.0f} MiB; code {code_before[:12]}",
            "",
            *rows,
            "",
            f"callsweep vs the faster other: {target:.2f}x "
            f"(target >= 2x: {'met' if target >= 2 else 'NOT met'})",
        ]
    )
    print(markdown)
    raw = {n: t.as_json() for n, t in timings.items()} | {"expected": expected}
    write_results(args.out, "ndjson", markdown, raw)
    return verdict(mismatches, (code_before, callsweep_fingerprint()))


if __name__ == "__main__":
    sys.exit(main())
