"""Multi-rule benchmark: N sibling rules in one pass against N single-rule scans, N = 1, 3, 10.

    python bench/bench_rules.py [--rows 200000] [--rounds 3] [--out bench/results]

Same synthetic Sysmon Parquet file for every contender (bench/data, generated once); contenders
alternate in every round; the one-pass answer (alert rows, and their (record, rule) keys) must
equal the union of the single-rule scans. Target (issue 7): one pass of 10 rules costs at most
1.5x one rule. See bench/README.md.
"""

from __future__ import annotations

# As `callsweep` (the CLI) runs: polars' allocator and glibc's malloc configured by callsweep
# (`callsweep.allocation`; polars' only takes effect before polars loads); every contender runs
# with them.
from callsweep.allocation import configure_native_allocator, configure_polars_allocator

configure_polars_allocator()
configure_native_allocator()

import argparse  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from dataset import ensure_dataset, warm_page_cache  # noqa: E402

import callsweep  # noqa: E402
from callsweep.benchmark.run_support import callsweep_fingerprint, log, verdict, write_results  # noqa: E402
from callsweep.benchmark.timing import Timings, alternate  # noqa: E402
from callsweep.rules.siblings import sibling_rules  # noqa: E402

BENCH_DIR = Path(__file__).resolve().parent
COUNTS = (1, 3, 10)
TARGET = 1.5
KEY = ["winlog.record_id", "kibana.alert.rule.rule_id", "kibana.alert.rule.version"]


def keys(path: Path, rules) -> set[tuple]:
    return set(callsweep.scan(path, rule=rules).select(KEY).iter_rows())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results")
    args = parser.parse_args()
    code_before = callsweep_fingerprint()
    path = ensure_dataset(args.rows, BENCH_DIR / "data")
    warm_page_cache(path)
    all_rules = sibling_rules(max(COUNTS))
    runs, timings = {}, {}
    for n in COUNTS:
        rules = all_rules[:n]
        runs[f"one pass, {n} rules"] = lambda rules=rules: callsweep.scan(path, rule=rules).height
        if n > 1:
            runs[f"{n} single-rule scans"] = lambda rules=rules: sum(
                callsweep.scan(path, rule=r).height for r in rules
            )
    timings = {name: Timings(name, args.rows) for name in runs}
    log(
        f"{args.rows:,} rows, {args.rounds} rounds, POLARS_MAX_THREADS="
        f"{os.environ.get('POLARS_MAX_THREADS', '(all)')}, _RJEM_MALLOC_CONF="
        f"{os.environ.get('_RJEM_MALLOC_CONF', '(unset)')}, glibc malloc thresholds set: "
        f"{callsweep.allocation.native_allocator_configured}"
    )
    alternate(runs, timings, args.rounds)

    mismatches = []
    for n in COUNTS[1:]:
        together, apart = timings[f"one pass, {n} rules"], timings[f"{n} single-rule scans"]
        if set(together.answers) != set(apart.answers):
            mismatches.append(f"N={n}: one pass {together.answers} vs singles {apart.answers}")
        rules = all_rules[:n]
        if keys(path, rules) != set().union(*(keys(path, r) for r in rules)):
            mismatches.append(f"N={n}: the one-pass alerts are not the union of single scans")

    base = timings["one pass, 1 rules"].median
    lines = [
        f"# bench_rules: {args.rows:,} rows, {args.rounds} rounds (medians, min-max)\n",
        "| contender | alerts | median s | min-max s | vs one rule | CPU s | CPU vs one rule |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    base_cpu = timings["one pass, 1 rules"].cpu_median
    for name, t in timings.items():
        lines.append(
            f"| {name} | {t.answers[-1]:,} | {t.median:.3f} | {t.fastest:.3f}-{t.slowest:.3f} "
            f"| {t.median / base:.2f}x | {t.cpu_median:.3f} | {t.cpu_median / base_cpu:.2f}x |"
        )
    most = timings[f"one pass, {max(COUNTS)} rules"]
    ratio, cpu_ratio = most.median / base, most.cpu_median / base_cpu
    lines.append(
        f"\nTarget: one pass of {max(COUNTS)} rules <= {TARGET}x one rule: "
        f"{ratio:.2f}x, {'met' if ratio <= TARGET else 'NOT met'} (by median wall time; "
        f"CPU time, every thread: {cpu_ratio:.2f}x)."
    )
    markdown = "\n".join(lines) + "\n"
    print(markdown)
    raw = {name: t.as_json() for name, t in timings.items()}
    log(f"report: {write_results(args.out, 'bench_rules', markdown, raw)}")
    return verdict(mismatches, (code_before, callsweep_fingerprint()))


if __name__ == "__main__":
    sys.exit(main())
