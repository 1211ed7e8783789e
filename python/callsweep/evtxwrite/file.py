"""An EVTX file: a 4 KiB file header, then 64 KiB chunks.

File header (libyal/libevtx "File header"): "ElfFile\\0", first chunk number, last chunk
number, next record identifier (u64 each), header size 128 (u32), minor version 1, major
version 3 (u16 each: format 3.1, as Windows Vista and later write), header block size 4096
(u16), number of chunks (u16), 76 unused bytes, flags (u32 at 120: 0, neither dirty nor full),
CRC32 of the first 120 bytes (at 124); zeros to 4096.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from types import TracebackType

from callsweep.evtxwrite.chunk import BinXmlBuilder, Chunk

FILE_HEADER_SIZE = 4096
_FILE_HEADER = struct.Struct("<8sQQQIHHHH")
MAX_CHUNKS = 0xFFFF  # the chunk count is a u16


def file_header(chunks: int, next_record_id: int) -> bytes:
    header = bytearray(FILE_HEADER_SIZE)
    _FILE_HEADER.pack_into(
        header,
        0,
        b"ElfFile\x00",
        0,
        max(chunks - 1, 0),
        next_record_id,
        128,
        1,
        3,
        FILE_HEADER_SIZE,
        chunks,
    )
    struct.pack_into("<I", header, 124, zlib.crc32(header[:120]))
    return bytes(header)


class EvtxWriter:
    """Writes records to an EVTX file, chunk after chunk; the header is written on close."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "wb")  # noqa: SIM115 (closed by close())
        self._file.write(b"\x00" * FILE_HEADER_SIZE)
        self._chunk = Chunk()
        self.chunks = 0
        self.records = 0
        self._next_id = 1

    def add(self, record_id: int, filetime: int, build: BinXmlBuilder) -> None:
        """Adds a record; `build(chunk, offset)` makes its binary XML for that chunk offset."""
        if not self._chunk.add(record_id, filetime, build):
            self._flush()
            self._chunk.add(record_id, filetime, build)
        self.records += 1
        self._next_id = record_id + 1

    def _flush(self) -> None:
        if self._chunk.records:
            if self.chunks == MAX_CHUNKS:
                raise ValueError(f"{self.path}: more than {MAX_CHUNKS} chunks")
            self._file.write(self._chunk.finish())
            self.chunks += 1
        self._chunk = Chunk()

    def close(self) -> None:
        if self._file.closed:
            return
        try:
            self._flush()
            self._file.seek(0)
            self._file.write(file_header(self.chunks, self._next_id))
        finally:
            self._file.close()

    def __enter__(self) -> EvtxWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
