"""Files of one JSON object per line (NDJSON), plain, `.gz`, `.zst` or members of a `.zip`,
read in blocks of lines that keep their provenance (file, member, 1-based line).

Files (decompressed on the way when they are compressed) are read into one reused buffer, whose
text goes to the native line scanner (`_native.select_lines`) in windows of whole lines, which
splits them, drops blank lines, reports a line longer than `MAX_LINE_BYTES` without holding it,
and with needles keeps only the lines that contain one (a scan's prefilter), so lines that
cannot alert never become Python objects and memory stays flat whatever the file or line size.
"""

from __future__ import annotations

import functools
import gzip
import io
import json
import threading
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO

import polars as pl
import pyarrow as pa

from callsweep._native import extract_fields, pick_lines, select_lines
from callsweep.sources.discover import InputError
from callsweep.sources.prefilter import KEY_NAME, Prefix

MAX_LINE_BYTES = 4 << 20  # a Sysmon event is a few KB; longer lines are junk or damage
BLOCK_LINES = 20_000  # at most this many lines per parsed block...
BLOCK_BYTES = 16 << 20  # ... and about this many bytes (fewer blocks: less per-block planning)
READ_BYTES = 8 << 20
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"

# What a line that may hold a Sysmon event 10 with a CallTrace contains at least one of, in any
# shape: the field name as written, or a \u escape of an ASCII character (JSON can spell a
# letter only as \u00XX; also inside Sentinel's escaped EventData, where it is \\u00XX).
ALERT_NEEDLES = (b"CallTrace", b"\\u00")


@dataclass
class LineBlock:
    """Consecutive kept lines of one member: `name` is what alerts call it (`a.zip!/m.json`
    for an archive member, else the file's path); `text` holds the lines, each followed by
    `\n`, line `numbers[i]` (1-based) the i-th. `seen`: the non-blank lines read to gather
    them, kept or not."""

    name: str
    numbers: list[int]
    text: bytes | bytearray
    seen: int
    # Of the lines seen, those the prefilter's second test left out (`sources.prefilter`).
    excluded: int = 0
    # Set once read with only the stream's `project` fields, in this shape (see `complete`).
    narrowed: str | None = None

    @property
    def lines(self) -> list[bytes]:
        return self.text.split(b"\n")[:-1]


def _open_stream(raw: IO[bytes], head: bytes) -> IO[bytes] | None:
    """A decompressing stream over `raw`, or None when `raw` holds plain text."""
    if head.startswith(GZIP_MAGIC):
        return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
    if head.startswith(ZSTD_MAGIC):
        # pyarrow's zstd codec: no extra dependency.
        return pa.CompressedInputStream(pa.PythonFile(raw, mode="r"), "zstd")  # type: ignore[return-value]
    return None


# A piece of a member's text: whole lines (a buffer), or the length of one overlong line that
# was passed over without being held.
Piece = memoryview | bytes | int


def _members(path: str) -> Iterator[tuple[str, Iterator[Piece]]]:
    """(name, pieces of text) of each member of `path`: one for a plain or compressed file."""
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
                        stream = _open_stream(again, inner) or again  # type: ignore[arg-type]
                        yield f"{path}!/{info.filename}", _pieces(stream)
        return
    with open(path, "rb") as fh:
        yield path, _pieces(_open_stream(fh, head) or fh)


def _pieces(stream: IO[bytes]) -> Iterator[Piece]:
    """A stream's text in pieces of whole lines, read into one reused buffer (no allocation
    and no page faults per read, so the memory a file costs is this buffer, whatever its
    size). A line longer than `MAX_LINE_BYTES` that does not fit the buffer is passed over,
    its length yielded, without being held; one that fits is left to the line scanner, which
    reports it. A piece is valid until the next one is asked for."""
    buffer = bytearray(max(READ_BYTES, MAX_LINE_BYTES + 2))  # a longest line and its break fit
    view = memoryview(buffer)
    filled = 0  # bytes at the start of the buffer: the start of a line read on
    overlong = 0  # bytes so far of a line being passed over
    while n := stream.readinto(view[filled:]):  # type: ignore[attr-defined]
        end = filled + n
        if overlong:
            cut = buffer.find(b"\n", 0, end)
            if cut < 0:
                overlong, filled = overlong + end, 0
                continue
            yield overlong + cut
            overlong = 0
        else:
            cut = buffer.rfind(b"\n", 0, end)
            if cut < 0:
                if end == len(buffer):  # no line break in a full buffer
                    overlong, filled = end, 0
                else:
                    filled = end
                continue
            with view[: cut + 1] as piece:
                yield piece
        rest = bytes(view[cut + 1 : end])
        view[: len(rest)] = rest
        filled = len(rest)
    if overlong:
        yield overlong
    elif filled:
        with view[:filled] as piece:
            yield piece


def read_blocks(
    path: str,
    skipped: list[InputError],
    needles: tuple[bytes, ...] | None = None,
    block_lines: int = BLOCK_LINES,
    exclude: tuple[Prefix, ...] = (),
) -> Iterator[LineBlock]:
    """The non-blank lines of every member of `path` (with `needles`: only those containing
    one of them, tested natively before any parsing, and with `exclude` not those whose
    CallTrace is proved to start with one of these prefixes, `sources.prefilter`), in blocks;
    what is skipped (overlong lines, a damaged compressed stream) is appended to `skipped` and
    reading goes on where it can. OSError when the file cannot be opened at all."""
    excluding = (KEY_NAME, list(exclude)) if exclude and needles else None
    for name, pieces in _members(path):
        number = 1  # of the next line
        # The block's kept lines, appended natively straight from the read buffer: one copy
        # (a bytes per window joined per block cost two more, and fresh pages each time).
        text = bytearray()
        numbers: list[int] = []
        seen = excluded = 0

        def block(name: str = name) -> LineBlock:
            nonlocal text, numbers, seen, excluded
            done = LineBlock(name, numbers, text, seen, excluded)
            text, numbers, seen, excluded = bytearray(), [], 0, 0
            return done

        try:
            for piece in pieces:
                if isinstance(piece, int):
                    skipped.append(_overlong(name, number, piece))
                    number += 1
                    continue
                start = len(text)
                _, kept, lines, overlong, number, left_out = select_lines(
                    piece, list(needles or ()), MAX_LINE_BYTES, number, text, excluding
                )
                skipped.extend(_overlong(name, at, length) for at, length in overlong)
                seen += lines
                excluded += left_out
                # Blocks of at most `block_lines` lines: a run larger than that is cut.
                while len(numbers) + len(kept) > block_lines:
                    room = block_lines - len(numbers)
                    cut = _offset_of_line(text, room, start)
                    rest = text[cut:]
                    del text[cut:]
                    numbers.extend(kept[:room])
                    kept = kept[room:]
                    yield block()
                    text, start = rest, 0
                numbers.extend(kept)
                if len(text) >= BLOCK_BYTES or len(numbers) >= block_lines:
                    yield block()
        except (OSError, EOFError, ValueError) as exc:  # damaged gzip / zstd / zip member
            skipped.append(
                InputError(name, f"unreadable after this line: {exc}", f"line {number - 1}")
            )
        if numbers or seen:
            yield block()


def _offset_of_line(text: bytes | bytearray, index: int, at: int = 0) -> int:
    """Where line `index` (0-based) of `text` from `at` starts; its end when it has fewer."""
    for _ in range(index):
        at = text.find(b"\n", at) + 1
        if at == 0:
            return len(text)
    return at


def _overlong(name: str, number: int, size: int) -> InputError:
    return InputError(name, f"line longer than {MAX_LINE_BYTES} bytes ({size})", f"line {number}")


def line_may_alert(line: bytes) -> bool:
    """False only for a line that cannot hold a Sysmon event 10 with a CallTrace, judged on its
    bytes (what the scan's native prefilter tests, with `ALERT_NEEDLES`). Sound: every shape
    names the field `CallTrace`, and JSON can spell a letter otherwise only with a `\\u00XX`
    escape (also inside Sentinel's escaped EventData, where it is `\\\\u00XX`), so a line
    with any such escape is kept."""
    return any(needle in line for needle in ALERT_NEEDLES)


@dataclass
class NdjsonStream:
    """The events of one NDJSON input as tables of `ndjson_schema()`; lines that cannot be
    read are counted in `skipped` with their file and line. `shape`: forced, or detected per
    member from its first parseable lines. `needles`: what a line must contain (one of) to be
    parsed at all (the scan's prefilter, `ALERT_NEEDLES`); lines it drops still count in
    `lines`. `exclude`: CallTrace prefixes that make every rule false (`sources.prefilter`):
    lines with a needle proved to give only such CallTraces are not parsed either, and are
    counted in `excluded`."""

    path: str
    shape: str | None = None
    needles: tuple[bytes, ...] | None = None
    block_lines: int = BLOCK_LINES
    exclude: tuple[Prefix, ...] = ()
    lines: int = 0
    parsed: int = 0  # lines handed to the parser
    excluded: int = 0
    skipped: list[InputError] = field(default_factory=list)
    shapes: Counter[str] = field(default_factory=Counter)
    # Per shape: how many of its events had each of `fields` (what the rule needs).
    fields: tuple[str, ...] = ()
    # The ECS fields the reader of ECS blocks builds (all others are passed over); () for all.
    project: tuple[str, ...] = ()
    # More fields `complete` reads for chosen lines (an alert's other fields).
    later: tuple[str, ...] = ()
    field_counts: dict[str, Counter[str]] = field(default_factory=dict)
    # Blocks may be parsed on several threads; the counts above are updated under it.
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def tables(self) -> Iterator[pa.Table]:
        """Every event as rows of `ndjson_schema()` (what conversion writes)."""
        detected: dict[str, str] = {}
        for block in self._blocks():
            table = self._parse(block.name, block.numbers, block.lines, detected)
            if table is not None:
                yield table

    def _blocks(self) -> Iterator[LineBlock]:
        blocks = read_blocks(self.path, self.skipped, self.needles, self.block_lines, self.exclude)
        for block in blocks:
            self.lines += block.seen
            self.parsed += len(block.numbers)
            self.excluded += block.excluded
            yield block

    def frames(self) -> Iterator[pl.DataFrame]:
        """Every event as a polars frame for the scan's plan (see `frame_jobs`)."""
        for _, job in self.frame_jobs():
            frame = job()
            if frame is not None:
                yield frame

    def frame_jobs(self) -> Iterator[tuple[LineBlock, Callable[[], pl.DataFrame | None]]]:
        """Each block and a job, to run on any thread, giving its events as a polars frame:
        of ECS blocks (and hits) only the `project` fields, natively (GIL released), else
        the whole documents by polars' reader into nested columns, which the scan's
        normalization reads as ECS; other shapes, and blocks that cannot be read so (a bad
        line), line by line into `ndjson_schema()`. Reading and the prefilter happen as the
        jobs are drawn, on the caller's thread."""
        detected: dict[str, str] = {}
        for block in self._blocks():
            if block.numbers:
                yield block, functools.partial(self._frame, block, detected)

    def complete(self, block: LineBlock, numbers: Iterable[int]) -> pl.DataFrame | None:
        """Lines `numbers` of a block read with `project` only, read again with `later` too;
        None when the block was read whole (nothing is missing) or cannot be read so."""
        if block.narrowed is None:
            return None
        wanted = set(numbers)
        kept = [i for i, n in enumerate(block.numbers) if n in wanted]
        # Only the few wanted lines are cut out, natively: splitting the whole block (16 MB,
        # thousands of lines) for them cost more than reading their fields, and held the GIL.
        text = pick_lines(block.text, kept)
        frame = self._read_fields(text, block.narrowed, (*self.project, *self.later))
        if frame is None:
            return None
        return frame.with_columns(
            pl.lit(block.name).alias("log.file.path"),
            pl.Series(LINE, [block.numbers[i] for i in kept], dtype=pl.Int64),
        )

    def _frame(self, block: LineBlock, detected: dict[str, str]) -> pl.DataFrame | None:
        from callsweep.sources.json_shapes import detect

        name, numbers = block.name, block.numbers
        shape = self.shape or detected.get(name)
        if shape is None:
            try:
                doc = json.loads(block.text[: block.text.index(b"\n")])
                shape = detect(doc) if isinstance(doc, dict) else None
            except ValueError:
                shape = None
        if shape in ("ecs", "es-hit"):
            frame = self._read_whole(block, shape)
            if frame is not None:
                detected.setdefault(name, shape)
                return frame
        with self._lock:  # the line-by-line parse holds the GIL anyway
            table = self._parse(name, numbers, block.lines, detected)
        return None if table is None else pl.DataFrame(pl.from_arrow(table))

    def _read_whole(self, block: LineBlock, shape: str) -> pl.DataFrame | None:
        """The block read natively (its `project` fields) or by polars, or None when any line
        keeps it from reading the block."""
        from callsweep.ecs import normalize

        name, numbers, text = block.name, block.numbers, block.text
        try:
            frame = self._read_fields(text, shape, self.project)
            if frame is not None:
                block.narrowed = shape
            else:
                frame = pl.read_ndjson(io.BytesIO(text))
                if shape == "es-hit":
                    frame = frame.select(pl.col("_source")).unnest("_source")
            if frame.height != len(numbers):
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

    def _read_fields(self, text: bytes, shape: str, names: tuple[str, ...]) -> pl.DataFrame | None:
        """Only the fields the scan reads (`project`), each line walked once natively and
        everything else skipped unbuilt (`_native.extract_fields`), as flat dotted columns:
        text, or lists of text (multi-valued fields), typed as EVTX conversion types them.
        None when nothing is projected or a line is not a JSON object (the block is then read
        by the general path, which reports the line)."""
        if not names:
            return None
        paths = [f"_source.{n}" for n in names] if shape == "es-hit" else list(names)
        columns, _ = extract_fields(text, paths)
        if columns is None:
            return None
        frame = pl.Series(columns).struct.unnest()
        frame.columns = list(names)
        # Numbers as numbers (a range query on process.pid is numeric in Elasticsearch too);
        # `@timestamp` stays text for the normalization, which reads ISO text and epoch ms.
        return frame.with_columns(
            pl.col(n).cast(t, strict=False)
            for n, t in _typed_columns().items()
            if n in frame.columns and frame.schema[n] == pl.String
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


@functools.cache
def _typed_columns() -> dict[str, pl.DataType]:
    """Columns of EVTX conversion that hold numbers, and their polars types."""
    from callsweep.sources.json_shapes import ndjson_schema

    typed = {}
    for column in ndjson_schema():
        if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
            typed[column.name] = pl.from_arrow(pa.array([], column.type)).dtype
    return typed


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
