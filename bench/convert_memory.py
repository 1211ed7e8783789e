"""Peak memory of one conversion contender on its own: one untimed run, in a fresh process.

The benchmark process's own peak mixes every contender; a fresh process per run tells what each
one needs by itself. Python contenders run in a `spawn`ed child, which reads its own `VmHWM`.
evtx_dump runs as one process per input file, each under GNU time, whose `%M` is that process's
peak RSS: GNU time is a small process, so what Linux carries over into its child's `ru_maxrss`
at fork and exec is small too (a child of this large benchmark process would carry its size).
"""

from __future__ import annotations

import multiprocessing
import tempfile
from pathlib import Path

from convert_contenders import EVTX_DUMP, contenders, dump_files
from evtx_inputs import EvtxInput

# What a fresh Python process holds before any contender runs (interpreter, callsweep, polars,
# pyarrow, evtx): the floor under the Python contenders' figures.
IMPORTS_ONLY = "(imports only)"


def _high_water_rss_mib() -> float:
    """This process's peak RSS since it started its program (Linux `VmHWM`)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError("no VmHWM in /proc/self/status (not Linux?)")


def _run_in_child(name: str, inp: EvtxInput, out: str) -> tuple[int | None, float]:
    """Runs contender `name` on `inp` into `out` (nothing for IMPORTS_ONLY); its record count
    and the process's peak RSS in MiB."""
    if name == IMPORTS_ONLY:
        return None, _high_water_rss_mib()
    contender = next(c for c in contenders() if c.name == name)
    result = contender.run(inp, Path(out))
    return contender.records(result, Path(out)), _high_water_rss_mib()


def _python_alone(name: str, inp: EvtxInput, out: Path) -> tuple[int | None, float]:
    # spawn, not fork: a forked child would inherit this process's memory and threads.
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_run_in_child, (name, inp, str(out)))


def _evtx_dump_alone(inp: EvtxInput, out: Path) -> tuple[int, float]:
    """evtx_dump's record count and the largest peak RSS of its per-file processes (MiB)."""
    rss_log = out / "gnu-time-rss.txt"
    contender = next(c for c in contenders() if c.name == EVTX_DUMP)
    failures = dump_files(inp, out, rss_log=rss_log)
    peaks = [int(line) for line in rss_log.read_text().split() if line.isdigit()]
    return contender.records(failures, out), max(peaks) / 1024


def peak_rss_alone(name: str, inp: EvtxInput, scratch: Path) -> tuple[int | None, float]:
    """`(records, peak RSS MiB)` of one run of contender `name` on `inp`, by itself; the output
    goes to a temporary folder under `scratch`, removed afterwards."""
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch, prefix="memory-") as out:
        if name == EVTX_DUMP:
            return _evtx_dump_alone(inp, Path(out))
        return _python_alone(name, inp, Path(out))
