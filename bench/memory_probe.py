"""Peak memory of one contender on its own: one run in a fresh process, untimed.

The benchmark process's own peak RSS mixes every contender (and the CallTrace column held for
the kernel comparison); a fresh child per contender tells what each one needs by itself.
"""

from __future__ import annotations

import multiprocessing
import resource
from pathlib import Path

from contenders import file_contenders

from callsweep.rules.model import default_rule

# What a fresh process holds before any contender runs (interpreter, polars, DuckDB, pyarrow).
IMPORTS_ONLY = "(imports only)"


def _run_in_child(name: str, path: str, slice_rows: int) -> tuple[int | None, float]:
    """Runs contender `name` on `path` (nothing for IMPORTS_ONLY); its answer and the
    process's peak RSS in MiB."""
    answer = None
    if name != IMPORTS_ONLY:
        by_name = {c.name: c for c in file_contenders(default_rule().query, slice_rows)}
        answer = by_name[name].count(Path(path))
    return answer, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def peak_rss_alone(name: str, path: Path, slice_rows: int) -> tuple[int | None, float]:
    """`(answer, peak RSS MiB)` of one run of contender `name` in a fresh process."""
    # spawn, not fork: a forked child would inherit this process's memory and threads.
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_run_in_child, (name, str(path), slice_rows))
