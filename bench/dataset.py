"""The benchmark's input: a synthetic Sysmon event-10 Parquet file, made once and reused.

A file is reused only when its sidecar records the same generator parameters; it is written
under a temporary name and renamed when complete, so an interrupted run never leaves a file that
looks reusable.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from callsweep.synthetic import Shape, write_parquet

CALL_TRACE = "winlog.event_data.CallTrace"
TRUTH = "expected_alert"


def shape_for(rows: int) -> Shape:
    """Every row a Sysmon event 10; 0.5% of CallTraces start outside ntdll (the generator's
    defaults for case, drive letters and 5-15 frames)."""
    return Shape(rows=rows, event10_share=1.0, syscall_share=0.005)


def _sidecar(path: Path) -> Path:
    return path.with_suffix(".json")


def _is_reusable(path: Path, params: dict) -> bool:
    sidecar = _sidecar(path)
    if not (path.is_file() and sidecar.is_file()):
        return False
    # Compared as JSON reads them back (a tuple parameter is a list there).
    return json.loads(sidecar.read_text()) == json.loads(json.dumps(params))


def ensure_dataset(rows: int, folder: Path) -> Path:
    """The data set of `rows` rows under `folder`, generated unless already there."""
    shape = shape_for(rows)
    params = asdict(shape)
    path = folder / f"sysmon10-{rows}rows-seed{shape.seed}.parquet"
    if _is_reusable(path, params):
        return path
    partial = path.with_suffix(".partial")
    write_parquet(partial, shape)
    partial.replace(path)
    _sidecar(path).write_text(json.dumps(params, indent=2) + "\n")
    return path


def ensure_slice(path: Path, rows: int) -> Path:
    """The first `rows` rows of `path` as a file of their own (for per-row Python and for
    comparing every contender's answer on the same rows)."""
    params = {"source": path.name, "rows": rows, "source_bytes": path.stat().st_size}
    sliced = path.with_name(f"{path.stem}-first{rows}.parquet")
    if _is_reusable(sliced, params):
        return sliced
    partial = sliced.with_suffix(".partial")
    pl.scan_parquet(path).head(rows).sink_parquet(partial, compression="zstd")
    partial.replace(sliced)
    _sidecar(sliced).write_text(json.dumps(params, indent=2) + "\n")
    return sliced


def row_count(path: Path) -> int:
    return pq.read_metadata(path).num_rows


def row_groups(path: Path) -> int:
    return pq.read_metadata(path).num_row_groups


def expected_alerts(path: Path) -> int:
    """The generator's own answer: how many rows must alert."""
    return int(pl.scan_parquet(path).select(pl.col(TRUTH).sum()).collect().item())


def warm_page_cache(path: Path, block: int = 1 << 24) -> None:
    """Reads every byte once, untimed, so every contender finds the file in the page cache."""
    with path.open("rb") as f:
        while f.read(block):
            pass
