"""A large input is scanned in parts (runs of row groups): same answer, progress per part."""

from __future__ import annotations

import polars as pl
import pyarrow.parquet as pq

import callsweep
from callsweep.synthetic import Shape, chunk


def test_parts_give_the_same_alerts_and_counts(tmp_path):
    frame = chunk(Shape(rows=10_000, event10_share=0.5, syscall_share=0.05, seed=3), 0, 10_000)
    path = tmp_path / "groups.parquet"
    frame.drop("expected_alert").write_parquet(path, row_group_size=1_000)
    expected = set(frame.filter("expected_alert")["winlog.record_id"])

    scanner = callsweep.Scanner()
    scanner.PART_ROWS = 2_500  # 10 row groups of 1,000 rows -> parts of 3,000 rows and a rest
    parts: list[callsweep.scan.Part] = []
    frames: list[pl.DataFrame] = []
    summary = scanner.run([path], on_alerts=frames.append, on_part=parts.append)

    assert [(p.offset, p.rows) for p in parts] == [
        (0, 3000),
        (3000, 3000),
        (6000, 3000),
        (9000, 1000),
    ]
    assert all(p.bytes > 0 for p in parts)
    assert set(pl.concat(frames)["winlog.record_id"]) == expected
    assert summary.alerts == len(expected)
    assert summary.rows == 10_000
    assert summary.event10_rows == (frame["event.code"] == "10").sum()
    assert set(callsweep.scan(path)["winlog.record_id"]) == expected  # one part per file


def test_a_damaged_part_is_reported_and_the_other_parts_are_kept(tmp_path):
    frame = chunk(Shape(rows=4000, event10_share=1.0, syscall_share=0.1, seed=3), 0, 4000)
    path = tmp_path / "damaged.parquet"
    frame.drop("expected_alert").write_parquet(path, row_group_size=1000)
    # Overwrite the middle of the CallTrace pages of the second row group.
    metadata = pq.read_metadata(path)
    names = [metadata.schema.column(i).name for i in range(metadata.num_columns)]
    column = metadata.row_group(1).column(names.index("winlog.event_data.CallTrace"))
    data = bytearray(path.read_bytes())
    start = column.data_page_offset + 40
    data[start : start + 2000] = b"\xff" * 2000
    path.write_bytes(bytes(data))

    scanner = callsweep.Scanner()
    scanner.PART_ROWS = 1000
    frames: list[pl.DataFrame] = []
    summary = scanner.run([path], on_alerts=frames.append)

    assert len(summary.errors) == 1
    error = summary.errors[0]
    assert (error.path, error.where) == (str(path), "rows 1000..2000")
    assert str(error).startswith(f"{path} (rows 1000..2000): ")
    outside = frame.filter(
        pl.col("expected_alert")
        & ((pl.col("winlog.record_id") <= 1000) | (pl.col("winlog.record_id") > 2000))
    )
    assert set(pl.concat(frames)["winlog.record_id"]) == set(outside["winlog.record_id"])
    assert summary.inputs[0].error is not None
    assert summary.files == 0 and summary.failed == 1
