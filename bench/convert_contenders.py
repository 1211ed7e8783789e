"""What the conversion benchmark times: one contender per way of turning EVTX into something
a scanner reads, each run on the same input into an empty output folder on the same disk.

A contender's `run` is timed; its `records` (what it wrote, counted from its own result or its
output) is not, so counting JSONL lines does not count against evtx_dump.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from evtx_inputs import EvtxInput, relative_output

from callsweep.benchmark import evtx_python_pipeline
from callsweep.convert import ConvertSummary, convert
from callsweep.sources.evtx import open_evtx

CALLSWEEP = "callsweep"
CALLSWEEP_JOBS1 = "callsweep --jobs 1"
DECODE_ONLY = "callsweep decode only"
EVTX_DUMP = "evtx_dump"
PYTHON = "python-pipeline"
EVTX_DUMP_VERSION = "0.15.1"
GNU_TIME = "/usr/bin/time"


@dataclass(frozen=True)
class Contender:
    name: str
    note: str
    run: Callable[[EvtxInput, Path], object]  # timed: converts the input into the folder
    records: Callable[[object, Path], int]  # untimed: records written, from run's result
    # The records this contender must write: the evtx crate's count or the evtx package's.
    reference: str
    # Not one of the contenders: a variant of callsweep timed to show where time goes.
    diagnostic: bool = False


@functools.cache
def evtx_dump_path() -> str:
    """The evtx crate's own command line tool (`cargo install evtx --version 0.15.1 --locked`).

    python-evtx installs a script of the same name, which may come first on the PATH: every
    candidate is asked for its version and only the crate's tool ("EVTX Parser") is taken."""
    candidates = [
        *(str(Path(d) / "evtx_dump") for d in os.environ.get("PATH", "").split(os.pathsep) if d),
        str(Path.home() / ".cargo/bin/evtx_dump"),
    ]
    for found in dict.fromkeys(candidates):
        if not os.access(found, os.X_OK):
            continue
        done = subprocess.run([found, "--version"], capture_output=True, text=True)
        if done.returncode == 0 and done.stdout.startswith("EVTX Parser"):
            return found
    sys.exit(f"evtx_dump not found: cargo install evtx --version {EVTX_DUMP_VERSION} --locked")


def evtx_dump_version() -> str:
    done = subprocess.run([evtx_dump_path(), "--version"], capture_output=True, text=True)
    return done.stdout.strip()


# --- callsweep ----------------------------------------------------------------------------------


def run_callsweep(inp: EvtxInput, out: Path, jobs: int = 0) -> ConvertSummary:
    summary = convert(inp.paths, out, jobs=jobs, force=True)
    for error in summary.errors:
        # A failed input writes no record: the count check flags it; say which here.
        print(f"  callsweep: {error.path}: {error.message}", file=sys.stderr)
    return summary


def callsweep_records(summary: object, out: Path) -> int:
    assert isinstance(summary, ConvertSummary)
    return summary.records


def run_callsweep_jobs1(inp: EvtxInput, out: Path) -> ConvertSummary:
    return run_callsweep(inp, out, jobs=1)


def decode_only(inp: EvtxInput, out: Path) -> int:
    """callsweep's EVTX decoder alone (`open_evtx(path).batches()`, every core, as convert
    opens it with `--jobs 1`), no Parquet written: what conversion costs before writing."""
    rows = 0
    for path in inp.files:
        for batch in open_evtx(str(path)).batches():
            rows += batch.num_rows
    return rows


# --- evtx_dump ----------------------------------------------------------------------------------


def dump_files(inp: EvtxInput, out: Path, rss_log: Path | None = None) -> int:
    """`evtx_dump -o jsonl -f <out>/<input>.jsonl` once per input file (it takes one file),
    sequentially, default threads; returns the number of runs that exited non-zero. With
    `rss_log`, each run goes under GNU time, which appends the run's peak RSS (KiB) there."""
    tool = evtx_dump_path()
    failures = 0
    errors = out / "evtx_dump.stderr"  # damaged records are reported there, one by one
    out.mkdir(parents=True, exist_ok=True)
    with errors.open("ab") as stderr:
        for path in inp.files:
            target = out / relative_output(path, inp.paths).with_suffix(".jsonl")
            command = [tool, "-o", "jsonl", "--no-confirm-overwrite", "-f", str(target), str(path)]
            if rss_log is not None:
                command = [GNU_TIME, "-a", "-o", str(rss_log), "-f", "%M", *command]
            done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=stderr)
            failures += done.returncode != 0
    return failures


def count_lines(out: Path, block: int = 1 << 24) -> int:
    lines = 0
    for path in out.rglob("*.jsonl"):
        with path.open("rb") as f:
            while data := f.read(block):
                lines += data.count(b"\n")
    return lines


def dump_records(failures: object, out: Path) -> int:
    if failures:
        print(f"  evtx_dump: {failures} runs exited non-zero", file=sys.stderr)
    return count_lines(out)


# --- the Python pipeline ------------------------------------------------------------------------


def run_python(inp: EvtxInput, out: Path) -> int:
    return evtx_python_pipeline.convert_files(inp.files, inp.paths, out)


def returned_count(written: object, out: Path) -> int:
    assert isinstance(written, int)
    return written


def contenders() -> list[Contender]:
    return [
        Contender(
            CALLSWEEP,
            "`callsweep.convert.convert(paths, out, force=True)` in the benchmark process "
            "(the CLI's default: `--jobs 0`, one file per core at once, the cores shared by "
            "the decoder threads)",
            run_callsweep,
            callsweep_records,
            "crate",
        ),
        Contender(
            EVTX_DUMP,
            f"`evtx_dump -o jsonl -f out.jsonl` {EVTX_DUMP_VERSION}, one process per input "
            "file, one after the other, default threads",
            dump_files,
            dump_records,
            "crate",
        ),
        Contender(
            PYTHON,
            "`PyEvtxParser(path).records_json()` + orjson + pyarrow `ParquetWriter` (zstd), "
            "single process",
            run_python,
            returned_count,
            "package",
        ),
        Contender(
            CALLSWEEP_JOBS1,
            "the same with `jobs=1`: one file at a time, decoded on every core",
            run_callsweep_jobs1,
            callsweep_records,
            "crate",
            diagnostic=True,
        ),
        Contender(
            DECODE_ONLY,
            "`open_evtx(path).batches()` per file, rows counted, nothing written",
            decode_only,
            returned_count,
            "crate",
            diagnostic=True,
        ),
    ]
