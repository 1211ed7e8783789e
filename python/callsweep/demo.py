"""`callsweep demo`: a small synthetic Sysmon data set with known direct-syscall events, scanned.

Two files in two shapes (flat ECS as winlogbeat writes it, and raw Sysmon names as an EVTX or
NXLog export has them), so the demo also shows that both evaluate alike. Which events must alert
is known from how they were generated, and the demo checks the scan found exactly those.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from callsweep.synthetic import Shape, as_raw_sysmon, chunk


@dataclass(frozen=True)
class DemoData:
    folder: Path
    # (file, winlog.record_id) of every event that must alert.
    expected: frozenset[tuple[str, int]]


def write_demo_data(folder: str | Path, rows: int = 20_000) -> DemoData:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    shape = Shape(rows=rows, event10_share=0.4, syscall_share=0.004, seed=11)
    ecs = chunk(shape, 0, rows)
    raw_shape = Shape(rows=rows // 4, event10_share=0.5, syscall_share=0.01, seed=23)
    raw = as_raw_sysmon(chunk(raw_shape, 0, raw_shape.rows))
    expected: set[tuple[str, int]] = set()
    for name, frame, id_column in (
        ("winlogbeat-sysmon.parquet", ecs, "winlog.record_id"),
        ("evtx-export-sysmon.parquet", raw, "EventRecordID"),
    ):
        path = folder / name
        frame.drop("expected_alert").write_parquet(path, compression="zstd")
        ids = frame.filter(pl.col("expected_alert"))[id_column].to_list()
        expected.update((str(path), int(i)) for i in ids)
    return DemoData(folder, frozenset(expected))


def found_keys(alerts: pl.DataFrame) -> frozenset[tuple[str, int]]:
    return frozenset(
        (str(p), int(r)) for p, r in alerts.select("log.file.path", "winlog.record_id").iter_rows()
    )
