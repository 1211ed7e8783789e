"""callsweep's Parquet layout for normalized events: what a scan for the rule reads little of.

* Row groups by event code. A file with more rows than one row group writes event 10 rows, rows
  whose code sorts before "10" and rows whose code sorts after it into separate row groups
  (codes are text, so "4688" > "10" > "1"): the `event.code` statistics of every row group
  either say "only 10" or exclude 10, and a scan for event 10 skips the others unread. A file
  that fits in one row group is written as one, its rows ordered by those kinds: on the small
  files most EVTX logs are, a row group costs more to write (about 5 ms for 112 column chunks)
  and to plan than skipping part of one saves.
* A stored CallTrace prefix, `winlog.event_data.CallTrace[:64]` (see `rules.prefix`): the
  rule's CallTrace patterns are anchored prefixes, decided on the first 64 characters, which
  repeat endlessly where whole CallTraces are nearly all distinct.
* zstd everywhere, dictionary encoding for every column (Parquet falls back to plain pages by
  itself for a column whose dictionary grows too large).

Rows keep their order within a kind; `winlog.record_id` and the EVTX record number give the
original order back.

The writer takes batches of any mix of kinds, but is fastest on batches of one kind each (the
EVTX decoder's `by_code_kind`): those go to their row groups whole, never filtered apart, and a
small file whose batches already come in kind order is written without being sorted.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from callsweep.rules.prefix import prefix_column

CALL_TRACE = "winlog.event_data.CallTrace"
PREFIX_CHARS = 64
CALL_TRACE_PREFIX = prefix_column(CALL_TRACE, PREFIX_CHARS)
ROW_GROUP_ROWS = 128 * 1024
_KINDS = ("before", "ten", "after")


def layout_schema(events: pa.Schema) -> pa.Schema:
    """The written schema for `events`: dictionary columns as their plain value type (see
    `EventLayoutWriter.write`), and the CallTrace prefix column when there is a CallTrace."""
    fields = [
        f.with_type(f.type.value_type) if pa.types.is_dictionary(f.type) else f for f in events
    ]
    if CALL_TRACE in events.names and CALL_TRACE_PREFIX not in events.names:
        fields.append(pa.field(CALL_TRACE_PREFIX, pa.string()))
    return pa.schema(fields, metadata=events.metadata)


class EventLayoutWriter:
    """Writes batches of normalized events to one Parquet file in the layout above.

    Memory: at most one row group's rows per kind are held, as plain arrays that own their
    bytes."""

    def __init__(
        self, path: str | Path, events: pa.Schema, row_group_rows: int = ROW_GROUP_ROWS
    ) -> None:
        self.schema = layout_schema(events)
        self.row_group_rows = row_group_rows
        self._writer = pq.ParquetWriter(path, self.schema, compression="zstd")
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        # Whether the pending rows are in kind order already (each batch of one kind, kinds
        # not decreasing from batch to batch), and the last pending batch's kind.
        self._pending_sorted = True
        self._pending_kind = 0
        self._split = False  # once the file outgrows a row group, rows go by kind
        self._kinds: dict[str, list[pa.RecordBatch]] = {k: [] for k in _KINDS}
        self._kind_rows = dict.fromkeys(_KINDS, 0)

    def write(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        # Plain arrays: a filtered dictionary column keeps the whole batch's dictionary alive
        # while its rows wait for their row group (measured: 1.3 GB for the event-10 rows of a
        # 1 GiB file). Parquet dictionary-encodes the column again when writing.
        batch = _with_prefix(batch).cast(self.schema)
        rank = _kind_rank(batch.column("event.code"))
        if self._split:
            self._add_by_kind(batch, rank)
            return
        self._pending.append(batch)
        self._pending_rows += batch.num_rows
        kind = _only_kind(rank)
        self._pending_sorted &= kind is not None and kind >= self._pending_kind
        self._pending_kind = kind if kind is not None else len(_KINDS)
        if self._pending_rows > self.row_group_rows:
            self._split = True
            pending, self._pending = self._pending, []
            for held in pending:
                self._add_by_kind(held, _kind_rank(held.column("event.code")))

    def close(self) -> None:
        try:
            if self._pending:
                table = pa.Table.from_batches(self._pending, self.schema)
                if not self._pending_sorted:
                    order = pc.sort_indices(_kind_rank(table.column("event.code")))  # stable
                    table = table.take(order)
                self._writer.write_table(table, row_group_size=self.row_group_rows)
                self._pending = []
            for kind in _KINDS:
                self._flush(kind, rest=True)
        finally:
            self._writer.close()

    def _add_by_kind(self, batch: pa.RecordBatch, rank: pa.Array) -> None:
        only = _only_kind(rank)
        for i, kind in enumerate(_KINDS):
            if only is None:
                part = batch.filter(pc.equal(rank, i))
            elif only == i:
                part = batch
            else:
                continue
            if part.num_rows:
                self._kinds[kind].append(part)
                self._kind_rows[kind] += part.num_rows
                if self._kind_rows[kind] >= self.row_group_rows:
                    self._flush(kind)

    def _flush(self, kind: str, rest: bool = False) -> None:
        """Writes the kind's full row groups (and with `rest`, what remains), keeping the
        remainder, so every row group but a kind's last has exactly `row_group_rows` rows."""
        if not self._kind_rows[kind]:
            return
        table = pa.Table.from_batches(self._kinds[kind], self.schema)
        whole = (
            table.num_rows if rest else table.num_rows // self.row_group_rows * self.row_group_rows
        )
        if whole:
            self._writer.write_table(table.slice(0, whole), row_group_size=self.row_group_rows)
        # Slices of the last batches: these hold rows of this kind only (whole one-kind
        # batches, or filtered parts that own their bytes), so nothing else is kept alive.
        remainder = table.slice(whole)
        self._kinds[kind] = remainder.to_batches() if remainder.num_rows else []
        self._kind_rows[kind] = remainder.num_rows


def _kind_rank(code: pa.Array | pa.ChunkedArray) -> pa.Array:
    """0 for codes that sort before "10" (and for rows without a code: nulls do not widen a row
    group's min/max), 1 for "10", 2 for codes that sort after it."""
    ten = pc.fill_null(pc.equal(code, "10"), False)
    after = pc.fill_null(pc.greater(code, "10"), False)
    return pc.add(pc.cast(ten, pa.int8()), pc.multiply(pc.cast(after, pa.int8()), 2))


def _only_kind(rank: pa.Array) -> int | None:
    """The kind of every row, when the rows are all of one kind."""
    bounds = pc.min_max(rank)
    low, high = bounds["min"].as_py(), bounds["max"].as_py()
    return low if low == high else None


def _with_prefix(batch: pa.RecordBatch) -> pa.RecordBatch:
    if CALL_TRACE not in batch.schema.names or CALL_TRACE_PREFIX in batch.schema.names:
        return batch
    call_trace = batch.column(CALL_TRACE)
    if pa.types.is_dictionary(call_trace.type):
        call_trace = call_trace.cast(call_trace.type.value_type)
    prefix = pc.utf8_slice_codeunits(call_trace, 0, PREFIX_CHARS)
    return batch.append_column(CALL_TRACE_PREFIX, prefix)
