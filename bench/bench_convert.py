"""Conversion benchmark: `callsweep convert` against evtx_dump and a Python pipeline, on the same
EVTX inputs; then `callsweep.scan` over callsweep-written against plain flat-ECS Parquet.

    python bench/bench_convert.py [--corpus-mb 1024] [--large-mb 256] [--rounds 3]
                                  [--out bench/results]

Builds (or reuses) a corpus of copies of the sample EVTX files and a single large EVTX file,
times every contender in alternating rounds on each input, checks the records each wrote,
measures each contender's peak memory alone at two input sizes, then times the scan of the two
Parquet layouts and checks their alerts against expected.json. See bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import evtx
import orjson
import polars as pl
import pyarrow
from convert_contenders import (
    EVTX_DUMP,
    Contender,
    contenders,
    evtx_dump_version,
)
from convert_memory import IMPORTS_ONLY, peak_rss_alone
from convert_report import (
    bullet_list,
    contenders_list,
    conversion_targets,
    describe_input,
    memory_table,
    scan_table,
    scan_target,
    targets_table,
    throughput_table,
)
from evtx_inputs import (
    EvtxInput,
    corpus_inputs,
    ensure_corpus,
    ensure_large_file,
    warm_page_cache,
)
from parquet_layouts import (
    CALLSWEEP_LAYOUT,
    FLAT_LAYOUT,
    check_alerts,
    expected_keys,
    layout_facts,
    scan_alerts,
    write_callsweep_layout,
    write_flat_layout,
)

from callsweep import _native
from callsweep.benchmark.run_support import (
    callsweep_fingerprint,
    log,
    peak_rss_mib,
    verdict,
    write_results,
)
from callsweep.benchmark.timing import Timings

BENCH_DIR = Path(__file__).resolve().parent
# What `--inputs` chooses from, in the order they are timed (largest of each kind first).
INPUT_KINDS = ("corpus", "subset", "large", "large-small")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus-mb", type=float, default=1024, help="corpus size, MiB")
    parser.add_argument(
        "--subset-share",
        type=float,
        default=0.25,
        help="share of the corpus copies in the smaller corpus input",
    )
    parser.add_argument("--large-mb", type=float, default=256, help="large file size, MiB")
    parser.add_argument(
        "--large-small-mb",
        type=float,
        default=None,
        help="size of the second, smaller large file (default: a quarter of --large-mb)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    parser.add_argument(
        "--inputs",
        default=",".join(INPUT_KINDS),
        help=f"the inputs timed, comma-separated, of {', '.join(INPUT_KINDS)} (default: all); "
        "the scan phase runs on those of corpus and large chosen",
    )
    parser.add_argument(
        "--no-scan", action="store_true", help="skip the scan phase (conversion only)"
    )
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results", help="report folder")
    parser.add_argument(
        "--data", type=Path, default=BENCH_DIR / "data", help="inputs and scratch output"
    )
    args = parser.parse_args(argv)
    if args.corpus_mb <= 0 or args.large_mb <= 0 or args.rounds < 1:
        parser.error("--corpus-mb, --large-mb and --rounds must be positive")
    if not 0 < args.subset_share < 1:
        parser.error("--subset-share must be between 0 and 1")
    args.data = args.data.resolve()  # log.file.path holds the paths as given
    if args.large_small_mb is None:
        args.large_small_mb = args.large_mb / 4
    args.inputs = [kind.strip() for kind in args.inputs.split(",") if kind.strip()]
    unknown = sorted(set(args.inputs) - set(INPUT_KINDS))
    if unknown or not args.inputs:
        parser.error(f"--inputs takes some of {', '.join(INPUT_KINDS)}, not {args.inputs}")
    return args


# --- timing -------------------------------------------------------------------------------------


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (evtx_dump runs as children)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def _fresh_folder(folder: Path) -> None:
    """An empty output folder, with the previous run's writes flushed to disk (untimed), so
    no run pays for another's write-back."""
    shutil.rmtree(folder, ignore_errors=True)
    os.sync()


def time_once(run: Callable[[], object]) -> tuple[float, float, object]:
    cpu_start = _cpu_seconds()
    start = time.perf_counter()
    result = run()
    return time.perf_counter() - start, _cpu_seconds() - cpu_start, result


def time_input(
    inp: EvtxInput, chosen: list[Contender], rounds: int, scratch: Path
) -> dict[str, Timings]:
    """Every contender once per round on `inp`, in the same order each round; records counted
    after each run, untimed."""
    timings = {c.name: Timings(c.name, rows=0) for c in chosen}
    for round_no in range(1, rounds + 1):
        for c in chosen:
            out = scratch / "convert-out"
            _fresh_folder(out)
            seconds, cpu, result = time_once(lambda c=c, out=out: c.run(inp, out))
            records = c.records(result, out)
            t = timings[c.name]
            t.seconds.append(seconds)
            t.cpu_seconds.append(cpu)
            t.answers.append(records)
            t.rows = records
            log(f"  round {round_no}/{rounds}  {c.name:<24} {seconds:8.2f} s  {records:,} records")
    _fresh_folder(scratch / "convert-out")
    return timings


# --- answers ------------------------------------------------------------------------------------


class Answers:
    """Every record count checked; mismatches are collected, never hidden."""

    def __init__(self) -> None:
        self.mismatches: list[str] = []
        self.status: dict[str, dict[str, str]] = {}

    def expect(self, where: str, name: str, got: list[int], want: int, what: str) -> None:
        wrong = sorted({g for g in got if g != want})
        status = self.status.setdefault(where, {})
        if wrong:
            self.mismatches.append(f"{where}, {name}: {wrong}, expected {want:,} ({what})")
            status[name] = f"**MISMATCH** (expected {want:,}: {what})"
        else:
            status.setdefault(name, f"= {what}")

    def problem(self, text: str) -> None:
        self.mismatches.append(text)


def check_records(
    inp: EvtxInput, chosen: list[Contender], timings: dict[str, Timings], answers: Answers
) -> None:
    """callsweep and evtx_dump both read with the evtx crate 0.15.1 and must write the same
    records; the Python pipeline must write what the evtx package read when the input was
    built (the package bundles an older crate, which passes over more of a damaged chunk)."""
    crate = statistics.mode(timings[EVTX_DUMP].answers)
    if crate < inp.pyevtx_records:
        answers.problem(
            f"{inp.name}: evtx_dump wrote {crate:,} records, fewer than the evtx "
            f"package's {inp.pyevtx_records:,}"
        )
    for c in chosen:
        if c.reference == "crate":
            answers.expect(inp.name, c.name, timings[c.name].answers, crate, "evtx_dump's count")
        else:
            answers.expect(
                inp.name,
                c.name,
                timings[c.name].answers,
                inp.pyevtx_records,
                "the evtx package's count",
            )


def probe_memory(
    inputs: list[EvtxInput],
    chosen: list[Contender],
    scratch: Path,
    answers: Answers,
    timed: dict[str, dict[str, Timings]],
) -> tuple[dict[str, dict[str, float]], float]:
    """Peak RSS (MiB) of each contender alone on each input, and of a process that only
    imports; each run's record count is checked against the timed runs'."""
    peaks: dict[str, dict[str, float]] = {}
    _, imports_only = peak_rss_alone(IMPORTS_ONLY, inputs[0], scratch)
    for inp in inputs:
        peaks[inp.name] = {}
        for c in chosen:
            log(f"  peak memory alone: {c.name} on {inp.name}")
            records, peaks[inp.name][c.name] = peak_rss_alone(c.name, inp, scratch)
            want = timed[inp.name][c.name].rows
            answers.expect(
                inp.name, f"{c.name} (memory run)", [records or 0], want, "the timed runs' count"
            )
    return peaks, imports_only


# --- scan phase ---------------------------------------------------------------------------------


def scan_phase(
    inp: EvtxInput, rounds: int, scratch: Path, answers: Answers
) -> tuple[dict[str, Timings], dict[str, dict[str, int]]]:
    """Writes the input in both layouts (untimed), then times `callsweep.scan` on each in
    alternating rounds; every round's alerts are checked against expected.json."""
    folders = {CALLSWEEP_LAYOUT: scratch / "scan-callsweep", FLAT_LAYOUT: scratch / "scan-flat"}
    for folder in folders.values():
        _fresh_folder(folder)
    log(f"writing {inp.name} as callsweep Parquet and as flat-ECS Parquet (untimed)")
    written = write_callsweep_layout(inp, folders[CALLSWEEP_LAYOUT])
    flat_rows = write_flat_layout(folders[CALLSWEEP_LAYOUT], folders[FLAT_LAYOUT])
    if flat_rows != written:
        answers.problem(f"flat-ECS copy holds {flat_rows:,} rows, callsweep wrote {written:,}")
    facts = {name: layout_facts(folder) for name, folder in folders.items()}
    wanted = expected_keys(inp)
    for folder in folders.values():
        warm_page_cache(tuple(sorted(folder.rglob("*.parquet"))))
    timings = {name: Timings(name, rows=written) for name in folders}
    for round_no in range(1, rounds + 1):
        for name, folder in folders.items():
            seconds, cpu, (count, keys) = time_once(lambda f=folder: scan_alerts(f))
            timings[name].seconds.append(seconds)
            timings[name].cpu_seconds.append(cpu)
            timings[name].answers.append(count)
            problem = check_alerts(name, keys, wanted)
            if problem:
                answers.problem(f"scan of {inp.name}, round {round_no}: {problem}")
            log(f"  round {round_no}/{rounds}  {name:<10} {seconds:8.2f} s  {count:,} alerts")
    for name, t in timings.items():
        answers.expect(
            f"scan of {inp.name}", name, t.answers, sum(wanted.values()), "expected.json"
        )
    for folder in folders.values():
        _fresh_folder(folder)
    return timings, facts


# --- report -------------------------------------------------------------------------------------


def versions() -> dict[str, object]:
    return {
        "python": platform.python_version(),
        "evtx_dump": evtx_dump_version(),
        "evtx (PyPI)": getattr(evtx, "__version__", _dist_version("evtx")),
        "orjson": orjson.__version__,
        "pyarrow": pyarrow.__version__,
        "polars": pl.__version__,
        "callsweep._native": _native.__version__,
        "callsweep._native.is_release_build()": _native.is_release_build(),
    }


def _dist_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def render(
    facts: dict,
    inputs: list[EvtxInput],
    timed: dict[str, dict[str, Timings]],
    notes: dict[str, str],
    peaks: dict[str, dict[str, float]],
    imports_only: float,
    scans: dict[str, tuple[dict[str, Timings], dict[str, dict[str, int]]]],
    answers: Answers,
) -> str:
    targets = conversion_targets(timed, peaks)
    targets += [
        scan_target(name, timings, CALLSWEEP_LAYOUT, FLAT_LAYOUT)
        for name, (timings, _) in scans.items()
    ]
    sections = [
        "# Conversion benchmark: EVTX to Parquet",
        bullet_list(facts),
        "## Contenders",
        contenders_list(notes),
    ]
    for inp in inputs:
        sections += [
            f"## {inp.name}",
            f"`{', '.join(str(p) for p in inp.paths)}`: {describe_input(inp)}.",
            throughput_table(inp, timed[inp.name], answers.status[inp.name], peaks[inp.name]),
        ]
    sections += [
        "records/s: each contender's own records (callsweep: `summary.records`; evtx_dump: "
        "lines of its JSONL; Python: rows written). input MB/s: EVTX bytes (10^6) / median "
        "seconds. callsweep speedup: callsweep's records/s / the contender's. CPU s: CPU time "
        "of the benchmark process and its children (evtx_dump), all threads (median). Peak "
        "RSS alone: one more, untimed run in a fresh process.",
        "## Peak memory alone, by input size",
        memory_table(inputs, peaks, imports_only),
        "callsweep, decode only and the Python pipeline: `VmHWM` of a spawned Python process "
        "(imports included); evtx_dump: the largest `%M` of GNU time over its per-file "
        "processes.",
        "## Scanning the converted inputs: callsweep-written vs flat-ECS Parquet",
    ]
    for name, (timings, layouts) in scans.items():
        sections += [f"### {name}", scan_table(timings, layouts)]
    sections += [
        "`callsweep.scan(folder)`, the two layouts alternated. x callsweep layout: median time "
        "/ the callsweep layout's. Alerts: checked every round against expected.json (file and "
        "EventRecordID, for every copy of a sample and every repeat of a sample's chunk).",
        "## Targets set by the issue (reported, not tuned to)",
        targets_table(targets),
        "## Answers",
        "Every answer matched the expected one."
        if not answers.mismatches
        else "\n".join(f"- **MISMATCH** {m}" for m in answers.mismatches),
        "## Versions",
        bullet_list(versions()),
    ]
    return "\n\n".join(sections) + "\n"


def setup_facts(args: argparse.Namespace, order: list[str], load: float, code: tuple) -> dict:
    return {
        "date": datetime.now().isoformat(timespec="seconds"),
        "machine": f"{platform.platform()}, {os.cpu_count()} logical CPUs",
        "command": "python bench/bench_convert.py " + " ".join(sys.argv[1:]),
        "rounds": f"{args.rounds} per input, alternating in the order {', '.join(order)}",
        "page cache": "warm (every input read once, untimed, before its rounds); each run "
        "writes into an emptied folder under the data folder (same disk), `sync` before it",
        "threads": "default everywhere: callsweep's decoder every core, evtx_dump `-t 0` "
        "(every core), the evtx package's default, polars pool "
        f"{pl.thread_pool_size()}",
        "load average (1 min) at the start / end": f"{load:.2f} / {os.getloadavg()[0]:.2f}",
        "callsweep files digest": code[0]
        if code[0] == code[1]
        else f"**CHANGED during the run**: {code[0]} at the start, {code[1]} at the end",
        "peak RSS of the whole benchmark process": f"{peak_rss_mib():,.0f} MiB",
    }


def build_inputs(args: argparse.Namespace) -> tuple[list[EvtxInput], list[EvtxInput]]:
    """The timed inputs, largest of each kind first, and the inputs the scan phase uses."""
    log(
        f"inputs under {args.data}: corpus {args.corpus_mb:g} MiB, large files "
        f"{args.large_mb:g} and {args.large_small_mb:g} MiB (built once, then reused)"
    )
    args.data.mkdir(parents=True, exist_ok=True)
    chosen = set(args.inputs)
    built: dict[str, EvtxInput] = {}
    if chosen & {"corpus", "subset"}:
        corpus, facts = ensure_corpus(args.data, args.corpus_mb, args.subset_share)
        built["corpus"], built["subset"] = corpus_inputs(corpus, facts)
    if "large" in chosen:
        built["large"] = ensure_large_file(args.data, args.large_mb)
    if "large-small" in chosen:
        built["large-small"] = ensure_large_file(args.data, args.large_small_mb)
    timed = [built[kind] for kind in INPUT_KINDS if kind in chosen]
    scanned = [] if args.no_scan else [built[k] for k in ("corpus", "large") if k in chosen]
    return timed, scanned


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_at_start = os.getloadavg()[0]
    code_at_start = callsweep_fingerprint()
    answers = Answers()
    scratch = args.data / "convert-scratch"
    inputs, scanned = build_inputs(args)
    chosen = contenders()

    timed: dict[str, dict[str, Timings]] = {}
    for inp in inputs:
        log(f"timing on {inp.name}: {describe_input(inp)}")
        warm_page_cache(inp.files)
        timed[inp.name] = time_input(inp, chosen, args.rounds, scratch)
        check_records(inp, chosen, timed[inp.name], answers)

    log("peak memory of each contender alone (untimed, a fresh process each)")
    peaks, imports_only = probe_memory(inputs, chosen, scratch, answers, timed)

    scans = {}
    for inp in scanned:
        log(f"scan phase on {inp.name}, {args.rounds} rounds")
        scans[inp.name] = scan_phase(inp, args.rounds, scratch, answers)

    code = (code_at_start, callsweep_fingerprint())
    facts = setup_facts(args, [c.name for c in chosen], load_at_start, code)
    notes = {c.name: c.note + (" (diagnostic)" if c.diagnostic else "") for c in chosen}
    markdown = render(facts, inputs, timed, notes, peaks, imports_only, scans, answers)
    raw = {
        "setup": facts,
        "versions": versions(),
        "inputs": {
            i.name: {
                "paths": [str(p) for p in i.paths],
                "files": len(i.files),
                "bytes": i.bytes,
                "pyevtx_records": i.pyevtx_records,
            }
            for i in inputs
        },
        "convert": {i: {n: t.as_json() for n, t in ts.items()} for i, ts in timed.items()},
        "peak_rss_alone_mib": peaks,
        "imports_only_mib": imports_only,
        "scan": {
            i: {"timings": {n: t.as_json() for n, t in ts.items()}, "layouts": layouts}
            for i, (ts, layouts) in scans.items()
        },
        "mismatches": answers.mismatches,
    }
    print(markdown)
    log(f"written: {write_results(args.out, 'convert', markdown, raw)}")
    return verdict(answers.mismatches, code)


if __name__ == "__main__":
    sys.exit(main())
