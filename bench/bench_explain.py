"""What `--explain` and the Elasticsearch verdicts (`--compare-elastic`, `--elastic-compat`) add
to a scan, on the same synthetic Parquet file, contenders alternated, medians.

    python bench/bench_explain.py [--rows 1000000] [--rounds 5] [--out bench/results]

The file (bench/data, generated once) holds only Sysmon event 10, 0.5% of them direct
syscalls, with 10 to 40 CallTrace frames so that about half the CallTraces exceed 1,024
characters (Elasticsearch's `ignore_above`): the compat path has real work. Answers: explain
changes no alert; the summary's count of alerts as written equals the plain scan's; the two
compat runs agree on both counts; Elasticsearch's count equals the plain alerts whose fields
are all within 1,024 UTF-16 code units (exact here: the generator's images are short, which is
checked). Targets (the task): explain and the compare mode cost little on top of a scan.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

import polars as pl
from dataset import warm_page_cache

from callsweep.benchmark.run_support import callsweep_fingerprint, log, verdict, write_results
from callsweep.benchmark.timing import Timings, alternate
from callsweep.rules.compat import utf16_length
from callsweep.scan import Scanner
from callsweep.synthetic import Shape, write_parquet

BENCH_DIR = Path(__file__).resolve().parent
TEXT_FIELDS = ("winlog.event_data.CallTrace", "winlog.event_data.TargetImage", "process.executable")


def ensure_long_stacks(rows: int, folder: Path) -> Path:
    shape = Shape(rows=rows, event10_share=1.0, syscall_share=0.005, call_trace_frames=(10, 40))
    path = folder / f"sysmon10-long-stacks-{rows}rows-seed{shape.seed}.parquet"
    sidecar = path.with_suffix(".json")
    params = asdict(shape)
    if path.is_file() and sidecar.is_file() and json.loads(sidecar.read_text()) == params:
        return path
    folder.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    write_parquet(partial, shape)
    partial.replace(path)
    sidecar.write_text(json.dumps(params, indent=2) + "\n")
    return path


class Run:
    """One contender: a scanner configuration; its answer is the alert count, and the last
    summary is kept for the checks."""

    def __init__(self, path: Path, **options: bool) -> None:
        self.path, self.options, self.summary = path, options, None

    def __call__(self) -> int:
        self.summary = Scanner(**self.options).run([self.path])
        return self.summary.alerts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results")
    args = parser.parse_args()
    code_before = callsweep_fingerprint()
    path = ensure_long_stacks(args.rows, BENCH_DIR / "data")
    warm_page_cache(path)
    runs = {
        "scan": Run(path),
        "scan --explain": Run(path, explain=True),
        "scan --compare-elastic": Run(path, compare_modes=True),
        "scan --elastic-compat": Run(path, elastic_compat=True),
        "scan --elastic-compat --explain": Run(path, elastic_compat=True, explain=True),
    }
    timings = {name: Timings(name, args.rows) for name in runs}
    log(
        f"{args.rows:,} rows, {args.rounds} rounds, POLARS_MAX_THREADS="
        f"{os.environ.get('POLARS_MAX_THREADS', '(all)')}"
    )
    alternate(runs, timings, args.rounds)

    # The reference: the plain scan's alerts, kept where every text field is indexed.
    events = pl.scan_parquet(path)
    long_images = (
        events.select(
            pl.max_horizontal([utf16_length(pl.col(f)).max() for f in TEXT_FIELDS[1:]]).alias("n")
        )
        .collect()
        .item()
    )
    import callsweep

    plain = callsweep.scan(path)
    indexed = plain.filter(
        pl.all_horizontal([utf16_length(pl.col(f)).fill_null(0) <= 1024 for f in TEXT_FIELDS])
    ).height
    long_share = (
        events.select((utf16_length(pl.col(TEXT_FIELDS[0])) > 1024).mean()).collect().item()
    )
    mismatches = []
    if long_images > 1024:
        mismatches.append(f"the images exceed 1,024 characters ({long_images}): no reference")
    for name, t in timings.items():
        if set(t.answers) != {plain.height if "elastic-compat" not in name else indexed}:
            mismatches.append(f"{name}: alerts {sorted(set(t.answers))}")
    for name in ("scan --compare-elastic", "scan --elastic-compat"):
        s = runs[name].summary
        if (s.alerts_as_written, s.alerts_elastic) != (plain.height, indexed):
            mismatches.append(
                f"{name}: counted {s.alerts_as_written} / {s.alerts_elastic}, "
                f"want {plain.height} / {indexed}"
            )

    base = timings["scan"].median
    lines = [
        f"# bench_explain: {args.rows:,} rows, {args.rounds} rounds (medians, min-max); "
        f"{long_share:.0%} of CallTraces over 1,024 characters\n",
        "| contender | alerts | median s | min-max s | vs scan |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, t in timings.items():
        lines.append(
            f"| {name} | {t.answers[-1]:,} | {t.median:.3f} | {t.fastest:.3f}-{t.slowest:.3f} "
            f"| {t.median / base:.2f}x |"
        )
    lines.append(
        f"\nAlerts as written {plain.height:,}, alerts Elasticsearch would raise {indexed:,}."
    )
    markdown = "\n".join(lines) + "\n"
    print(markdown)
    raw = {name: t.as_json() for name, t in timings.items()}
    log(f"report: {write_results(args.out, 'bench_explain', markdown, raw)}")
    return verdict(mismatches, (code_before, callsweep_fingerprint()))


if __name__ == "__main__":
    sys.exit(main())
