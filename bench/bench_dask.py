"""Dask engine overhead: the same scan on the local engine and on a Dask LocalCluster.

    python bench/bench_dask.py [--rounds 5] [--out bench/results]

Inputs (built once under bench/data, reused):
- `small`: 400 small Parquet files of 2,000 synthetic events each (800,000 events): the many
  small files of converted EVTX collections, where per-task overhead shows;
- `large`: one Parquet file of 5,000,000 synthetic event-10 rows (the scan benchmark's data).

The cluster (one single-threaded worker process per core, as `--engine dask` starts it without
an address) is started once, untimed, and kept for every round: its start-up is not what a user
with a cluster pays per scan. Local and Dask runs alternate; both must give the same alerts.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

import distributed
import polars as pl

import callsweep
from callsweep import synthetic
from callsweep.benchmark.run_support import callsweep_fingerprint, log, verdict, write_results
from callsweep.benchmark.timing import Timings, alternate
from callsweep.engines import ANY_FREE_PORT, DaskEngine, LocalEngine
from callsweep.scan import Scanner

BENCH_DIR = Path(__file__).resolve().parent


def small_inputs(folder: Path) -> list[Path]:
    paths = sorted(folder.glob("*.parquet"))
    if len(paths) == 400:
        return paths
    folder.mkdir(parents=True, exist_ok=True)
    log(f"generating 400 small files in {folder}")
    return [
        synthetic.write_parquet(
            folder / f"events-{i:03}.parquet",
            synthetic.Shape(rows=2000, event10_share=0.3, syscall_share=0.01, seed=i),
        )
        for i in range(400)
    ]


def large_input(folder: Path) -> list[Path]:
    path = folder / "sysmon10-5000000rows-seed7.parquet"
    if not path.exists():
        log(f"generating {path}")
        synthetic.write_parquet(path, synthetic.Shape(rows=5_000_000))
    return [path]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--data", type=Path, default=BENCH_DIR / "data")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results")
    args = parser.parse_args(argv)
    code_at_start = callsweep_fingerprint()
    load_at_start = os.getloadavg()[0]
    inputs = {
        "small: 400 files x 2,000 events": small_inputs(args.data / "dask-small"),
        "large: 1 file, 5,000,000 events": large_input(args.data),
    }
    mismatches: list[str] = []
    lines = [
        "# Dask engine overhead: local engine vs Dask LocalCluster, same scan",
        "",
        f"- machine: {platform.platform()}, {os.cpu_count()} logical CPUs",
        f"- rounds: {args.rounds}, alternating local, dask; cluster started once, untimed",
        f"- callsweep release build: {callsweep._native.is_release_build()}, "
        f"dask {distributed.__version__}, polars {pl.__version__}",
        "",
        "| input | engine | median s | min-max s | dask / local | alerts |",
        "|---|---|---:|---:|---:|---|",
    ]
    cores = os.cpu_count() or 1
    with distributed.LocalCluster(
        n_workers=cores,
        threads_per_worker=1,
        processes=True,
        dashboard_address=ANY_FREE_PORT,
        env={"POLARS_MAX_THREADS": "1"},
    ) as cluster:
        for name, paths in inputs.items():
            answers: dict[str, list[tuple]] = {}

            def run(
                engine_name: str, paths: list[Path] = paths, answers=answers, name: str = name
            ) -> int:
                engine = (
                    LocalEngine()
                    if engine_name == "local"
                    else DaskEngine(cluster.scheduler_address)
                )
                frames: list[pl.DataFrame] = []
                Scanner().run(paths, on_alerts=frames.append, engine=engine)
                keys = sorted(
                    pl.concat(frames).select("log.file.path", "winlog.record_id").iter_rows()
                )
                answers.setdefault(engine_name, keys)
                if keys != answers["local" if "local" in answers else engine_name]:
                    mismatches.append(f"{name}: {engine_name} alerts differ from local")
                return len(keys)

            timings = {e: Timings(e, rows=0) for e in ("local", "dask")}
            log(f"{name}: {args.rounds} rounds")
            alternate({e: (lambda e=e: run(e)) for e in timings}, timings, args.rounds)
            for engine_name, t in timings.items():
                ratio = t.median / timings["local"].median
                lines.append(
                    f"| {name} | {engine_name} | {t.median:.3f} | {t.fastest:.3f}-{t.slowest:.3f} "
                    f"| {ratio:.2f} | {t.answers[0]:,} |"
                )
    lines += [
        "",
        f"Load average (1 min) at the start / end: {load_at_start:.2f} / "
        f"{os.getloadavg()[0]:.2f}. dask / local: median time over the local engine's.",
    ]
    markdown = "\n".join(lines) + "\n"
    print(markdown)
    log(f"written: {write_results(args.out, 'dask', markdown, {'markdown': markdown})}")
    return verdict(mismatches, (code_at_start, callsweep_fingerprint()))


if __name__ == "__main__":
    sys.exit(main())
