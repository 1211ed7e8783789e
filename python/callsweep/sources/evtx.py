"""EVTX files, decoded in Rust (`callsweep._native.EvtxReader`) into Arrow record batches with
flat ECS column names, streamed through the Arrow C stream interface.

Decoding runs on every core without the GIL; memory holds a few batches, whatever the file size.
Damaged chunks and records are skipped by the decoder, which keeps every readable record and
lists what it skipped (chunk, file offset, message).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

import polars as pl
import pyarrow as pa

from callsweep import _native
from callsweep.sources.discover import InputError

BATCH_ROWS = 65_536


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


def empty_evtx_frame() -> pl.DataFrame:
    """No rows, the columns of a decoded EVTX file: to plan a scan before decoding."""
    return pl.DataFrame(pl.from_arrow(evtx_schema().empty_table()))
