"""Files of one JSON object per line (NDJSON), plain, `.gz`, `.zst` or members of a `.zip`,
read in blocks of lines that keep their provenance (file, member, 1-based line).

Lines are read through a bounded buffer: a line longer than `MAX_LINE_BYTES` is skipped (and
counted) without being held in memory, so memory stays flat whatever the file or line size.
"""

from __future__ import annotations

import functools
import gzip
import io
import json
import threading
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO

import polars as pl
import pyarrow as pa

from callsweep.sources.discover import InputError

MAX_LINE_BYTES = 4 << 20  # a Sysmon event is a few KB; longer lines are junk or damage
BLOCK_LINES = 20_000
READ_BYTES = 8 << 20
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"


@dataclass
class LineBlock:
    """Consecutive lines of one member: `name` is what alerts call it (`a.zip!/m.json` for an
    archive member, else the file's path); `lines[i]` is line `numbers[i]` (1-based)."""

    name: str
    numbers: list[int]
    lines: list[bytes]


def _open_stream(raw: IO[bytes], head: bytes) -> IO[bytes]:
    if head.startswith(GZIP_MAGIC):
        return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
    if head.startswith(ZSTD_MAGIC):
        # pyarrow's zstd codec: no extra dependency.
        return pa.CompressedInputStream(pa.PythonFile(raw, mode="r"), "zstd")  # type: ignore[return-value]
    return raw


def _members(path: str) -> Iterator[tuple[str, IO[bytes]]]:
    """(name, byte stream) of each member of `path`: one for a plain or compressed file."""
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head.startswith(ZIP_MAGIC):
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.is_dir():
                    continue
                with archive.open(info) as member:
                    inner = member.read(4)
                    with archive.open(info) as again:
                        yield f"{path}!/{info.filename}", _open_stream(again, inner)  # type: ignore[arg-type]
        return
    with open(path, "rb") as fh:
        yield path, _open_stream(fh, head)


def _line_runs(
    stream: IO[bytes], name: str, skipped: list[InputError]
) -> Iterator[tuple[int, list[bytes]]]:
    """(number of the first line, lines) per block of bytes read; the newline is cut, an
    overlong line is reported and left blank (its bytes are passed over, never held)."""
    number = 0  # lines before the next run
    carry = b""  # the start of a line that continues in the next read (< MAX_LINE_BYTES)
    overlong = 0  # bytes so far of an overlong line being passed over

    def too_long(size: int, at: int) -> None:
        message = f"line longer than {MAX_LINE_BYTES} bytes ({size})"
        skipped.append(InputError(name, message, f"line {at}"))

    while data := stream.read(READ_BYTES):
        if overlong:
            cut = data.find(b"\n")
            if cut < 0:
                overlong += len(data)
                continue
            number += 1
            too_long(overlong + cut, number)
            overlong, data = 0, data[cut + 1 :]
        pieces = (carry + data).split(b"\n")
        carry = pieces.pop()
        if len(carry) > MAX_LINE_BYTES:
            overlong, carry = len(carry), b""
        if pieces and max(map(len, pieces)) > MAX_LINE_BYTES:
            for i, piece in enumerate(pieces):
                if len(piece) > MAX_LINE_BYTES:
                    too_long(len(piece), number + i + 1)
                    pieces[i] = b""
        if pieces:
            yield number + 1, pieces
            number += len(pieces)
    if overlong:
        too_long(overlong, number + 1)
    elif carry:
        yield number + 1, [carry]


def read_blocks(
    path: str, skipped: list[InputError], block_lines: int = BLOCK_LINES
) -> Iterator[LineBlock]:
    """The non-blank lines of every member of `path`, in blocks; what is skipped (overlong
    lines, a damaged compressed stream) is appended to `skipped` and reading goes on where it
    can. OSError when the file cannot be opened at all."""
    for name, stream in _members(path):
        number = 0
        try:
            for number, lines in _line_runs(stream, name, skipped):
                numbers = [number + i for i, line in enumerate(lines) if line.strip()]
                kept = [lines[n - number].removesuffix(b"\r") for n in numbers]
                for start in range(0, len(kept), block_lines):
                    end = start + block_lines
                    yield LineBlock(name, numbers[start:end], kept[start:end])
        except (OSError, EOFError, ValueError) as exc:  # damaged gzip / zstd / zip member
            skipped.append(InputError(name, f"unreadable after this line: {exc}", f"line {number}"))


def lines_may_alert(lines: list[bytes]) -> list[bool]:
    """`line_may_alert` of every line, tested natively on the whole block."""
    block = pl.Series(lines, dtype=pl.Binary)
    mask = block.bin.contains(b"CallTrace") & block.bin.contains(b"10")
    return (mask | block.bin.contains(b"\\u")).to_list()


def line_may_alert(line: bytes) -> bool:
    """False only for a line that cannot hold a Sysmon event 10 with a CallTrace, judged on its
    bytes. Sound: every shape names the field `CallTrace` and writes the event id 10 as the
    digits `10` (number or string); JSON can spell a letter or digit otherwise only with a
    `\\u` escape (also inside Sentinel's escaped EventData, where it is `\\\\u`), and a line
    with any `\\u` is kept."""
    return (b"CallTrace" in line and b"10" in line) or b"\\u" in line


@dataclass
class NdjsonStream:
    """The events of one NDJSON input as tables of `ndjson_schema()`; lines that cannot be
    read are counted in `skipped` with their file and line. `shape`: forced, or detected per
    member from its first parseable lines. `keep`: a byte-level test of a block's lines, which
    a line must pass to be parsed at all (the scan's prefilter); lines it drops still count
    in `lines`."""

    path: str
    shape: str | None = None
    keep: Callable[[list[bytes]], list[bool]] | None = None
    block_lines: int = BLOCK_LINES
    lines: int = 0
    skipped: list[InputError] = field(default_factory=list)
    shapes: Counter[str] = field(default_factory=Counter)
    # Per shape: how many of its events had each of `fields` (what the rule needs).
    fields: tuple[str, ...] = ()
    field_counts: dict[str, Counter[str]] = field(default_factory=dict)
    # Blocks may be parsed on several threads; the counts above are updated under it.
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def tables(self) -> Iterator[pa.Table]:
        """Every event as rows of `ndjson_schema()` (what conversion writes)."""
        detected: dict[str, str] = {}
        for block in read_blocks(self.path, self.skipped, self.block_lines):
            self.lines += len(block.lines)
            numbers, lines = self._candidates(block)
            table = self._parse(block.name, numbers, lines, detected)
            if table is not None:
                yield table

    def frames(self) -> Iterator[pl.DataFrame]:
        """Every event as a polars frame for the scan's plan (see `frame_jobs`)."""
        for job in self.frame_jobs():
            frame = job()
            if frame is not None:
                yield frame

    def frame_jobs(self) -> Iterator[Callable[[], pl.DataFrame | None]]:
        """A job per block, to run on any thread, giving its events as a polars frame: ECS
        blocks (and hits) are parsed whole by polars' reader (native, GIL released) into
        nested columns, which the scan's normalization reads as ECS; other shapes, and blocks
        polars cannot read (a bad line), line by line into `ndjson_schema()`. Reading and the
        prefilter happen as the jobs are drawn, on the caller's thread."""
        detected: dict[str, str] = {}
        for block in read_blocks(self.path, self.skipped, self.block_lines):
            self.lines += len(block.lines)
            numbers, lines = self._candidates(block)
            if lines:
                yield functools.partial(self._frame, block.name, numbers, lines, detected)

    def _frame(
        self, name: str, numbers: list[int], lines: list[bytes], detected: dict[str, str]
    ) -> pl.DataFrame | None:
        from callsweep.sources.json_shapes import detect

        shape = self.shape or detected.get(name)
        if shape is None:
            try:
                doc = json.loads(lines[0])
                shape = detect(doc) if isinstance(doc, dict) else None
            except ValueError:
                shape = None
        if shape in ("ecs", "es-hit"):
            frame = self._read_whole(name, numbers, lines, shape)
            if frame is not None:
                detected.setdefault(name, shape)
                return frame
        with self._lock:  # the line-by-line parse holds the GIL anyway
            table = self._parse(name, numbers, lines, detected)
        return None if table is None else pl.DataFrame(pl.from_arrow(table))

    def _candidates(self, block: LineBlock) -> tuple[list[int], list[bytes]]:
        if self.keep is None:
            return block.numbers, block.lines
        mask = self.keep(block.lines)
        numbers = [n for n, k in zip(block.numbers, mask, strict=True) if k]
        return numbers, [line for line, k in zip(block.lines, mask, strict=True) if k]

    def _read_whole(
        self, name: str, numbers: list[int], lines: list[bytes], shape: str
    ) -> pl.DataFrame | None:
        """The block read by polars, or None when any line keeps it from reading the block."""
        from callsweep.ecs import normalize

        try:
            frame = pl.read_ndjson(io.BytesIO(b"\n".join(lines)))
            if shape == "es-hit":
                frame = frame.select(pl.col("_source")).unnest("_source")
            if frame.height != len(lines):
                return None
            if self.fields:
                norm = normalize(frame.lazy(), self.fields)
                counts = (
                    norm.frame.select(pl.all().is_not_null().sum()).collect().row(0, named=True)
                )
        except (KeyboardInterrupt, SystemExit, MemoryError):
            raise
        except Exception:
            return None
        with self._lock:
            self.shapes[shape] += frame.height
            if self.fields:
                self.field_counts.setdefault(shape, Counter()).update(
                    {k: int(v) for k, v in counts.items()}
                )
        return frame.with_columns(
            pl.lit(name).alias("log.file.path"), pl.Series(LINE, numbers, dtype=pl.Int64)
        )

    def _parse(
        self, name: str, numbers: list[int], lines: list[bytes], detected: dict[str, str]
    ) -> pa.Table | None:
        """Lines parsed one by one into `ndjson_schema()`; bad ones reported in `skipped`."""
        from callsweep.sources.json_shapes import detect, flatten, ndjson_schema

        rows: list[dict] = []
        for number, line in zip(numbers, lines, strict=True):
            try:
                doc = json.loads(line)
                if not isinstance(doc, dict):
                    raise TypeError(f"a JSON {type(doc).__name__}, not an object")
                shape = self.shape or detected.get(name) or detect(doc)
                if shape is None:
                    raise ValueError("not an event of a known shape")
                if self.shape is None:
                    detected.setdefault(name, shape)
                row = flatten(doc, shape)
            except (ValueError, TypeError, KeyError, RecursionError) as exc:
                message = f"{type(exc).__name__}: {str(exc)[:200]}"
                self.skipped.append(InputError(name, message, f"line {number}"))
                continue
            self.shapes[shape] += 1
            if self.fields:
                counts = self.field_counts.setdefault(shape, Counter())
                counts.update(f for f in self.fields if row.get(f) is not None)
            row["log.file.path"] = name
            row[LINE] = number
            row["callsweep.evtx.record_number"] = number
            row["callsweep.evtx.chunk"] = 0
            rows.append(row)
        return _table(rows, ndjson_schema(), name, self.skipped) if rows else None


LINE = "log.file.line"


def _table(rows: list[dict], schema: pa.Schema, name: str, skipped: list[InputError]) -> pa.Table:
    """Rows as a table of `schema`; a row whose values do not fit is dropped and reported."""
    plain = pa.schema(
        [
            pa.field(f.name, f.type.value_type if pa.types.is_dictionary(f.type) else f.type)
            for f in schema
        ]
    )
    try:
        table = pa.Table.from_pylist(rows, plain)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
        good = []
        for row in rows:
            try:
                pa.Table.from_pylist([row], plain)
                good.append(row)
            except (
                pa.ArrowInvalid,
                pa.ArrowTypeError,
                TypeError,
                ValueError,
                OverflowError,
            ) as exc:
                skipped.append(
                    InputError(name, f"wrong types: {str(exc)[:200]}", f"line {row[LINE]}")
                )
        table = pa.Table.from_pylist(good, plain)
    return table.cast(schema)
