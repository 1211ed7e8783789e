"""callsweep's Parquet layout keeps every row and lets an event-10 scan skip the rest."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from callsweep import scan, synthetic
from callsweep.layout import (
    CALL_TRACE_PREFIX,
    TEN_MIN_GROUP_ROWS,
    TEN_WINDOW,
    EventLayoutWriter,
    distinct_values,
)
from callsweep.scan import Part, Scanner


def events(rows: int) -> pa.Table:
    shape = synthetic.Shape(rows=rows, event10_share=0.3, syscall_share=0.05, seed=3)
    frame = synthetic.chunk(shape, 0, rows)
    table = frame.to_arrow()
    plain = [
        f.with_type(pa.string()) if f.type in (pa.string_view(), pa.large_string()) else f
        for f in table.schema
    ]
    return table.cast(pa.schema(plain))


@pytest.mark.parametrize("row_group_rows", [64, 1000, 100_000])
def test_every_row_is_kept_and_each_row_group_is_one_kind(tmp_path: Path, row_group_rows: int):
    table = events(5000)
    out = tmp_path / "events.parquet"
    writer = EventLayoutWriter(out, table.schema, row_group_rows)
    for batch in table.to_batches(max_chunksize=700):
        writer.write(batch)
    writer.close()

    back = pl.read_parquet(out)
    assert (
        back.sort("winlog.record_id")
        .drop(CALL_TRACE_PREFIX)
        .equals(pl.from_arrow(table).sort("winlog.record_id"))
    )
    metadata = pq.read_metadata(out)
    sizes = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
    if row_group_rows >= table.num_rows:
        assert sizes == [table.num_rows]
        return
    code = metadata.schema.names.index("event.code")
    kinds = []
    for i in range(metadata.num_row_groups):
        stats = metadata.row_group(i).column(code).statistics
        ten = stats.min == stats.max == "10"
        assert ten or not stats.min <= "10" <= stats.max
        kinds.append(ten)
    # Full row groups, but for the last of each other kind (codes before and after "10").
    others = [size for size, ten in zip(sizes, kinds, strict=True) if not ten]
    assert sum(size != row_group_rows for size in others) <= 2
    # Event 10 in windows of `TEN_WINDOW` row groups' rows, each ordered by the stored CallTrace
    # prefix and cut by first frame module: a row group per module with `min_rows` rows in its
    # window; the rows of the rarer modules, gathered across windows, in row groups of their own.
    ten_window = row_group_rows * TEN_WINDOW
    min_rows = max(1, min(TEN_MIN_GROUP_ROWS, ten_window // 8))
    arrived = pl.from_arrow(table).filter(pl.col("event.code") == "10")
    module = pl.col("winlog.event_data.CallTrace").str.slice(0, 64).str.extract(r"^([^+|]*)")
    arrived = arrived.with_row_index().with_columns(
        module.alias("module"), (pl.col("index") // ten_window).alias("window")
    )
    rare_ids = set(arrived.filter(pl.len().over("window", "module") < min_rows)["winlog.record_id"])
    file = pq.ParquetFile(out)
    gathered = []
    for i, ten in enumerate(kinds):
        if not ten:
            continue
        group = file.read_row_group(i, columns=[CALL_TRACE_PREFIX, "winlog.record_id"])
        prefixes = group.column(0).to_pylist()
        ids = group.column(1).to_pylist()
        modules = {None if p is None else re.split(r"[+|]", p)[0] for p in prefixes}
        if rare_ids.isdisjoint(ids):
            assert len(modules) == 1 and len(ids) >= min_rows, modules
            present = [p for p in prefixes if p is not None]
            assert prefixes[: len(present)] == present and present == sorted(present)
        else:
            assert rare_ids.issuperset(ids)
            gathered += ids
    assert sorted(gathered) == sorted(rare_ids)
    assert sum(size for size, ten in zip(sizes, kinds, strict=True) if ten) == (
        pl.from_arrow(table).filter(pl.col("event.code") == "10").height
    )


def test_the_layout_gives_the_alerts_of_the_flat_file(tmp_path: Path):
    table = events(20_000)
    flat, laid_out = tmp_path / "flat.parquet", tmp_path / "layout.parquet"
    pq.write_table(table.drop_columns(["expected_alert"]), flat)
    writer = EventLayoutWriter(laid_out, table.drop_columns(["expected_alert"]).schema, 2048)
    for batch in table.drop_columns(["expected_alert"]).to_batches(max_chunksize=3000):
        writer.write(batch)
    writer.close()
    expected = sorted(pl.from_arrow(table).filter("expected_alert")["winlog.record_id"])
    assert expected
    for path in (flat, laid_out):
        assert sorted(scan(path)["winlog.record_id"]) == expected


def test_row_groups_without_event_10_are_counted_but_not_read(tmp_path: Path):
    table = events(20_000).drop_columns(["expected_alert"])
    out = tmp_path / "layout.parquet"
    writer = EventLayoutWriter(out, table.schema, 2048)
    for batch in table.to_batches(max_chunksize=3000):
        writer.write(batch)
    writer.close()
    scanner = Scanner()
    scanner.PART_ROWS = 4096
    parts: list[Part] = []
    summary = scanner.run([out], on_part=parts.append)
    assert summary.rows == 20_000 and not summary.errors
    unread = [p for p in parts if not p.read]
    assert unread and sum(p.rows for p in unread) == 20_000 - summary.event10_rows
    assert summary.event10_rows == pl.from_arrow(table).filter(pl.col("event.code") == "10").height
    assert sum(p.bytes for p in parts) > 0 and sum(p.rows for p in parts) == 20_000


def test_event_10_row_groups_the_rule_cannot_match_are_counted_but_not_read(tmp_path: Path):
    # As in real logs, the first frames that go through ntdll are spelled one way (one host):
    # the layout then gives them row groups of their own, which statistics prove quiet.
    table = events(20_000)
    quiet = pc.and_(pc.equal(table["event.code"], "10"), pc.invert(table["expected_alert"]))
    ntdll = pc.binary_join_element_wise(
        "C:\\Windows\\SYSTEM32\\ntdll.dll+", pc.cast(table["winlog.record_id"], pa.string()), ""
    )
    call_trace = pc.if_else(quiet, ntdll, table["winlog.event_data.CallTrace"])
    table = table.set_column(
        table.schema.get_field_index("winlog.event_data.CallTrace"),
        "winlog.event_data.CallTrace",
        call_trace,
    )
    expected = sorted(pl.from_arrow(table).filter("expected_alert")["winlog.record_id"])
    table = table.drop_columns(["expected_alert"])
    out = tmp_path / "layout.parquet"
    writer = EventLayoutWriter(out, table.schema, 2048)
    for batch in table.to_batches(max_chunksize=3000):
        writer.write(batch)
    writer.close()

    scanner = Scanner()
    scanner.PART_ROWS = 4096
    parts: list[Part] = []
    alerts: list[pl.DataFrame] = []
    summary = scanner.run([out], on_part=parts.append, on_alerts=alerts.append)
    event10 = pl.from_arrow(table).filter(pl.col("event.code") == "10").height
    assert summary.event10_rows == event10 and not summary.errors
    assert sorted(pl.concat(alerts)["winlog.record_id"]) == expected
    decided = [p for p in parts if not p.read and p.event10_rows]
    # Most event-10 rows are in row groups that are never read.
    assert sum(p.event10_rows for p in decided) > event10 * 3 // 4
    # Both modes compared: the statistics are not used, every event-10 row group is read.
    full = Scanner(compare_modes=True)
    full.PART_ROWS = 4096
    full_parts: list[Part] = []
    full_alerts: list[pl.DataFrame] = []
    full.run([out], on_part=full_parts.append, on_alerts=full_alerts.append)
    assert not any(p.event10_rows for p in full_parts)
    assert sorted(pl.concat(full_alerts)["winlog.record_id"]) == expected


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full")
def test_a_failed_write_on_the_writer_thread_is_raised():
    table = events(5000)
    # Every write to /dev/full fails as on a full disk (ENOSPC): here while row groups are
    # appended on the writer's thread, and again when the footer is written.
    writer = EventLayoutWriter(Path("/dev/full"), table.schema, 64)
    with pytest.raises(OSError, match="No space left"):
        try:
            for batch in table.to_batches(max_chunksize=700):
                writer.write(batch)
        finally:
            writer.close()


def test_a_file_of_several_row_groups_has_dictionaries_where_values_repeat(tmp_path: Path):
    table = events(5000)
    out = tmp_path / "events.parquet"
    writer = EventLayoutWriter(out, table.schema, 1000)
    for batch in table.to_batches(max_chunksize=700):
        writer.write(batch)
    writer.close()
    metadata = pq.read_metadata(out)
    assert metadata.num_row_groups > 1
    for g in range(metadata.num_row_groups):
        group = metadata.row_group(g)
        columns = {
            group.column(i).path_in_schema: group.column(i) for i in range(group.num_columns)
        }
        # Image paths repeat; whole CallTraces and record ids do not (`distinct_values`).
        assert columns["winlog.event_data.TargetImage"].has_dictionary_page
        assert columns[CALL_TRACE_PREFIX].has_dictionary_page
        assert not columns["winlog.event_data.CallTrace"].has_dictionary_page
        assert not columns["winlog.record_id"].has_dictionary_page
        assert {c.compression for c in columns.values()} == {"ZSTD"}
        # What a scan skips row groups by.
        code = columns["event.code"].statistics
        assert code.has_min_max and code.null_count == 0
    assert pq.read_metadata(out).metadata[b"ARROW:schema"]
    # Nor do the JSON objects of a record's other fields (the synthetic events have none).
    assert distinct_values("winlog.event_data_other")
    assert not distinct_values("winlog.event_data.SourceImage")


def test_a_one_row_group_file_compresses_the_columns_that_hold_values(tmp_path: Path):
    table = events(500)
    table = table.append_column("never.set", pa.nulls(table.num_rows, pa.string()))
    out = tmp_path / "events.parquet"
    writer = EventLayoutWriter(out, table.schema)
    writer.write(table.to_batches()[0])
    writer.close()
    metadata = pq.read_metadata(out)
    assert metadata.num_row_groups == 1
    group = metadata.row_group(0)
    codecs = {
        group.column(i).path_in_schema: group.column(i).compression
        for i in range(group.num_columns)
    }
    assert codecs["never.set"] == "UNCOMPRESSED"
    assert codecs["winlog.event_data.CallTrace"] == codecs["event.category.list.element"] == "ZSTD"
    assert (
        pl.read_parquet(out)
        .drop(CALL_TRACE_PREFIX)
        .sort("winlog.record_id")
        .equals(pl.from_arrow(table).sort("winlog.record_id"))
    )
