"""EVTX files, decoded in Rust (`callsweep._native.EvtxReader`) into Arrow record batches with
flat ECS column names, streamed through the Arrow C stream interface.

Decoding runs on every core without the GIL; memory holds a few batches, whatever the file size.
Damaged chunks and records are skipped by the decoder, which keeps every readable record and
lists what it skipped (chunk, file offset, message).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache

import polars as pl
import pyarrow as pa

from callsweep import _native
from callsweep.sources import storage
from callsweep.sources.discover import InputError

BATCH_ROWS = 65_536
FILE_PATH = "log.file.path"


@dataclass(frozen=True)
class EvtxStream:
    reader: _native.EvtxReader
    path: str  # what the events and reports name: the input's path, or its URL
    # The local file decoded, when it is not `path` (a temporary copy of an object).
    copy: str | None = None

    def batches(self) -> Iterator[pa.RecordBatch]:
        batches = pa.RecordBatchReader.from_stream(self.reader)
        if self.copy is None:
            yield from batches
            return
        for batch in batches:
            # The decoder names the file it read; the events came from the object.
            column = batch.schema.get_field_index(FILE_PATH)
            name = pa.array([self.path] * batch.num_rows, batch.schema.field(column).type)
            yield batch.set_column(column, FILE_PATH, name)

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


def open_evtx(
    path: str,
    batch_rows: int = BATCH_ROWS,
    threads: int = 0,
    name: str | None = None,
    by_code_kind: bool = False,
    layout_form: bool = False,
) -> EvtxStream:
    """Opens an EVTX file (decoded on `threads` threads, 0: every core); OSError or ValueError
    (naming the file) when it cannot be read. `name`: what reports call the file (the URL of
    an object read from a local copy), by default its path. `by_code_kind`: every batch holds
    one kind of event code (`callsweep.layout`), as the layout writer wants them;
    `layout_form`: batches in the schema the layout writes (`evtx_layout_schema`), made on the
    decoding threads."""
    try:
        reader = _native.EvtxReader(path, batch_rows, threads, by_code_kind, layout_form)
    except (OSError, ValueError) as exc:
        if name is None or name == path:
            raise
        raise type(exc)(str(exc).replace(path, name)) from exc
    if name is None or name == path:
        return EvtxStream(reader, path)
    return EvtxStream(reader, name, copy=path)


@contextmanager
def local_evtx(location: str) -> Iterator[str]:
    """A local path from which to decode the EVTX at `location`: the path itself, or a
    temporary copy of an object on object storage (the decoder reads files)."""
    if storage.is_url(location):
        with storage.local_copy(location, suffix=".evtx") as local:
            yield local
    else:
        yield location


@cache
def evtx_schema() -> pa.Schema:
    """The fixed schema of every decoded batch."""
    return pa.schema(_native.evtx_schema())


@cache
def evtx_layout_schema() -> pa.Schema:
    """The schema of the batches decoded with `layout_form`: `callsweep.layout.layout_schema`
    of `evtx_schema()` (dictionary columns as plain strings, the CallTrace prefix column)."""
    return pa.schema(_native.evtx_layout_schema())


def empty_evtx_frame() -> pl.DataFrame:
    """No rows, the columns of a decoded EVTX file: to plan a scan before decoding."""
    return pl.DataFrame(pl.from_arrow(evtx_schema().empty_table()))
