"""Peak memory of one contender on its own: one run in a fresh process, untimed.

The benchmark process's own peak RSS mixes every contender (and the CallTrace column held for
the kernel comparison); a fresh child per contender tells what each one needs by itself.
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from callsweep.benchmark.contenders import file_contenders
from callsweep.rules.model import default_rule

# What a fresh process holds before any contender runs (interpreter, polars, DuckDB, pyarrow).
IMPORTS_ONLY = "(imports only)"


def high_water_rss_mib() -> float:
    """This process's peak RSS since it started its program (Linux `VmHWM`).

    Not `getrusage(...).ru_maxrss`: Linux carries that across fork and exec, so a child started
    from this (large) benchmark process would report at least the parent's size.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError("no VmHWM in /proc/self/status (not Linux?)")


def _run_in_child(name: str, path: str, slice_rows: int) -> tuple[int | None, float]:
    """Runs contender `name` on `path` (nothing for IMPORTS_ONLY); its answer and the
    process's peak RSS in MiB."""
    answer = None
    if name != IMPORTS_ONLY:
        by_name = {c.name: c for c in file_contenders(default_rule().query, slice_rows)}
        answer = by_name[name].count(Path(path))
    return answer, high_water_rss_mib()


def peak_rss_alone(name: str, path: Path, slice_rows: int) -> tuple[int | None, float]:
    """`(answer, peak RSS MiB)` of one run of contender `name` in a fresh process."""
    # spawn, not fork: a forked child would inherit this process's memory and threads.
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_run_in_child, (name, str(path), slice_rows))
