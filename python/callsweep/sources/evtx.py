"""EVTX files, decoded in Rust (`callsweep._native.EvtxReader`) into Arrow record batches with
flat ECS column names, streamed through the Arrow C stream interface.

Decoding runs on every core without the GIL; memory holds a few batches, whatever the file size.
Damaged chunks and records are skipped by the decoder, which keeps every readable record and
lists what it skipped (chunk, file offset, message).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache

import polars as pl
import pyarrow as pa
from polars.io.plugins import register_io_source

from callsweep import _native
from callsweep.sources.discover import InputError

BATCH_ROWS = 65_536


@dataclass
class EvtxStatus:
    """What reading an EVTX file found, filled in once its stream has been read to the end."""

    records: int = 0
    # Counted while decoding, before any filter: the scan needs it and a second pass over an
    # EVTX file would decode it twice.
    event10_records: int = 0
    skipped: list[InputError] = field(default_factory=list)


@dataclass(frozen=True)
class EvtxStream:
    reader: _native.EvtxReader
    path: str

    def batches(self) -> Iterator[pa.RecordBatch]:
        yield from pa.RecordBatchReader.from_stream(self.reader)

    def frames(self) -> Iterator[pl.DataFrame]:
        for batch in self.batches():
            yield pl.DataFrame(pl.from_arrow(batch))

    @property
    def records(self) -> int:
        return self.reader.records

    def skipped(self) -> list[InputError]:
        """What the decoder passed over, as errors naming the file and the place."""
        return [
            InputError(self.path, message, f"chunk {chunk}, offset {offset}")
            for chunk, offset, message in self.reader.errors
        ]


def open_evtx(path: str, batch_rows: int = BATCH_ROWS, threads: int = 0) -> EvtxStream:
    """Opens an EVTX file (decoded on `threads` threads, 0: every core); OSError or ValueError
    (naming the file) when it cannot be read."""
    return EvtxStream(_native.EvtxReader(path, batch_rows, threads), path)


@cache
def evtx_schema() -> pa.Schema:
    """The fixed schema of every decoded batch."""
    return pa.schema(_native.evtx_schema())


def scan_evtx(path: str, batch_rows: int = BATCH_ROWS) -> tuple[pl.LazyFrame, EvtxStatus]:
    """An EVTX file as a polars LazyFrame (projection and filters are applied batch by batch as
    the file is decoded), and the status its reading fills in."""
    status = EvtxStatus()
    schema = pl.from_arrow(evtx_schema().empty_table()).schema  # type: ignore[union-attr]

    def batches(
        with_columns: list[str] | None,
        predicate: pl.Expr | None,
        n_rows: int | None,
        _batch_size: int | None,
    ) -> Iterator[pl.DataFrame]:
        stream = open_evtx(path, batch_rows)
        left = n_rows
        for frame in stream.frames():
            status.event10_records += int((frame["event.code"] == "10").sum())
            if left is not None:
                frame = frame.head(left)
                left -= frame.height
            if with_columns is not None:
                frame = frame.select(with_columns)
            if predicate is not None:
                frame = frame.filter(predicate)
            yield frame
            if left == 0:
                return
        status.records = stream.records
        status.skipped = stream.skipped()

    lazy = register_io_source(batches, schema=schema, explain_name="EVTX", explain_detail=path)
    return lazy, status
