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
* Event 10 rows ordered by their CallTrace prefix, window by window (each `TEN_WINDOW` row
  groups' worth of event-10 rows, in arrival order, are sorted), and cut into row groups by
  first frame module: each module (the text before the first `+` or `|`) with at least
  `TEN_MIN_GROUP_ROWS` rows in the window gets a row group of its own; the rows of rarer ones
  are gathered across windows into shared row groups (one per `row_group_rows` of them, and
  the rest at the end), so that what a scan must read is a few runs.
  Nearly every CallTrace starts in a few ntdll / WOW64 modules; the rows whose first frame is
  elsewhere (what the rule looks for) are rare. So most event-10 row groups hold one first
  module, their prefix statistics prove that a prefix pattern (the rule's ntdll ones)
  matches every row (`rules.statistics`), and a scan for the rule skips them.
* zstd everywhere, dictionary encoding for the columns whose values repeat (images, hosts,
  channels, access masks, the CallTrace prefix, ...), not for those of nearly distinct values
  (times, ids, GUIDs, whole CallTraces: `distinct_values`), which Parquet would hash into a
  dictionary only to fall back to plain pages: 15% of the writing time on Sysmon events.

Rows keep their order within a kind (event 10: within a prefix, within a window);
`winlog.record_id` and the EVTX record number give the original order back.

The writer takes batches of any mix of kinds, but is fastest on batches of one kind each (the
EVTX decoder's `by_code_kind`): those go to their row groups whole, never filtered apart, and a
small file whose batches already come in kind order is written without being sorted. Batches
that come in the written schema already (the EVTX decoder's `layout_form`) are taken as they
are: on a small file, the casts and the prefix slice were a tenth of the conversion's time.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from callsweep import _native
from callsweep.rules.prefix import prefix_column

CALL_TRACE = "winlog.event_data.CallTrace"
PREFIX_CHARS = 64
CALL_TRACE_PREFIX = prefix_column(CALL_TRACE, PREFIX_CHARS)
# Rows per row group (and at most in a file written as one row group). Memory holds up to one
# row group per kind and a window of event 10 (and the decoder's batches in flight): converting
# a 1 GB Sysmon log (800,000 events) peaked at 1,019 MiB with 128k-row groups, 908 MiB with
# these; at 256 MB, 547 MiB.
ROW_GROUP_ROWS = 64 * 1024
# Event-10 rows sorted at once, in row groups' worth: the more, the fewer the row groups that
# mix first frame modules.
TEN_WINDOW = 2
# A first frame module with this many event-10 rows in a window gets a row group of its own
# (at most an eighth of the window, for small row groups): fewer rows would cost more to
# write and plan (a few ms per row group) than skipping them saves.
TEN_MIN_GROUP_ROWS = 4096
# Tables handed to the writer's thread and not yet written, at most: while one is written the
# caller (and the decoder behind it) gathers the next. Each more is a row group held: 210 MiB
# more at the peak on a 1 GB Sysmon log, for no measurable speed.
WRITES_IN_FLIGHT = 1
# Row groups encoded at a time by the native writer (`_native.ParquetWriter`), each on a thread
# of its own: pyarrow's encodes a file's row groups one after another on one thread, which was
# all a conversion of one large EVTX file had left to do after its last batch was decoded.
ENCODING_THREADS = 2
_KINDS = ("before", "ten", "after")


def layout_schema(events: pa.Schema) -> pa.Schema:
    """The written schema for `events`: dictionary columns as their plain value type (see
    `EventLayoutWriter.write`), and the CallTrace prefix column when there is a CallTrace."""
    return _facts(events).schema.with_metadata(events.metadata)


@dataclass(frozen=True)
class _SchemaFacts:
    """What the writer needs to know of a written schema, found once per schema (every file of
    a conversion has the same): going over 113 fields in Python took a quarter of a
    millisecond per file."""

    schema: pa.Schema  # the written schema, without metadata
    repeating: list[bool]  # per column: whether its values repeat (`distinct_values`)


# (input schema without metadata, its facts): a handful at most (EVTX, NDJSON, tests).
_FACTS: list[tuple[pa.Schema, _SchemaFacts]] = []


def _facts(events: pa.Schema) -> _SchemaFacts:
    for known, facts in _FACTS:
        if known.equals(events):  # metadata not compared
            return facts
    fields = [
        f.with_type(f.type.value_type) if pa.types.is_dictionary(f.type) else f for f in events
    ]
    if CALL_TRACE in events.names and CALL_TRACE_PREFIX not in events.names:
        fields.append(pa.field(CALL_TRACE_PREFIX, pa.string()))
    written = pa.schema(fields)
    facts = _SchemaFacts(written, [not distinct_values(f.name) for f in written])
    if len(_FACTS) >= 8:
        _FACTS.pop(0)
    _FACTS.append((events.remove_metadata(), facts))
    return facts


class EventLayoutWriter:
    """Writes batches of normalized events to one Parquet file in the layout above.

    Memory: at most one row group's rows per kind are held, as plain arrays that own their
    bytes, one table being laid out, and the row groups being encoded (`ENCODING_THREADS`).

    Once a file outgrows a row group, tables are laid out (sorted, cut by module) on a thread
    of the writer's own, one after the other in order, while the caller goes on reading
    batches; their row groups go to the native writer (`_native.ParquetWriter`, the `parquet`
    crate's column writers), which encodes and compresses each on a thread of its own, outside
    the GIL, and appends them in order. A file of one row group is written at `close`, with
    `single_row_group_options`.

    `one_kind_batches`: the caller promises that every batch holds rows of one kind only (the
    EVTX decoder's `by_code_kind`), so that a batch's kind is read off its first row."""

    def __init__(
        self,
        path: str | Path,
        events: pa.Schema,
        row_group_rows: int = ROW_GROUP_ROWS,
        one_kind_batches: bool = False,
    ) -> None:
        self.schema = layout_schema(events)
        self.row_group_rows = row_group_rows
        self._path = path
        self._one_kind = one_kind_batches
        # Whether batches come in the written schema already (decided on the first batch: the
        # batches of one input share their schema), and if not the columns `_plain` casts.
        self._as_written: bool | None = None
        self._casts: list[int] | None = None
        # Event-10 rows of rare first modules, gathered on the writer's thread (`_write_window`).
        self._rare: list[pa.Table] = []
        self._rare_rows = 0
        # Opened with the first table: its options depend on whether the file is one row group.
        self._writer: _native.ParquetWriter | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._writing: deque[Future[None]] = deque()
        self._pending: list[pa.RecordBatch] = []
        self._pending_kinds: list[int | None] = []  # each pending batch's kind, None: mixed
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
        if self._as_written is None:
            self._as_written = batch.schema.equals(self.schema)
        if not self._as_written:
            # Plain arrays: a filtered dictionary column keeps the whole batch's dictionary
            # alive while its rows wait for their row group (measured: 1.3 GB for the event-10
            # rows of a 1 GiB file). Parquet dictionary-encodes the column again when writing.
            batch = self._plain(_with_prefix(batch))
        if self._one_kind:
            rank, kind = None, _first_row_kind(batch.column("event.code"))
        else:
            rank = _kind_rank(batch.column("event.code"))
            kind = _only_kind(rank)
        if self._split:
            self._add_by_kind(batch, kind, rank)
            return
        self._pending.append(batch)
        self._pending_kinds.append(kind)
        self._pending_rows += batch.num_rows
        self._pending_sorted &= kind is not None and kind >= self._pending_kind
        self._pending_kind = kind if kind is not None else len(_KINDS)
        if self._pending_rows > self.row_group_rows:
            self._split = True
            pending, self._pending = self._pending, []
            kinds, self._pending_kinds = self._pending_kinds, []
            for held, held_kind in zip(pending, kinds, strict=True):
                self._add_by_kind(held, held_kind)

    def _plain(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """`batch` in the written schema: its dictionary columns cast (`RecordBatch.cast`
        would cast each of the 113 columns, a tenth of the time spent on a small file)."""
        if self._casts is None:  # the batches of one input share their schema
            written = self.schema.types
            self._casts = [i for i, t in enumerate(batch.schema.types) if t != written[i]]
        arrays = batch.columns
        for i in self._casts:
            arrays[i] = arrays[i].cast(self.schema.field(i).type)
        # (A batch of other types than the first fails here, naming the column.)
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)

    def close(self) -> None:
        try:
            if self._pending:
                table = pa.Table.from_batches(self._pending, self.schema)
                if not self._pending_sorted:
                    order = pc.sort_indices(_kind_rank(table.column("event.code")))  # stable
                    table = table.take(order)
                self._pending, self._pending_kinds = [], []
                self._writer = self._open(single_row_group_options(table))
                self._writer.write_table(table, row_group_size=self.row_group_rows)
            # The largest rest first: the row groups still to encode once the input is read
            # are encoded two at a time, and the largest one last could leave a core idle.
            for kind in sorted(_KINDS, key=lambda k: -self._kind_rows[k]):
                self._flush(kind, rest=True)
            if self._split:
                # After the last window, on the writer's thread (which gathers them).
                self._submit(self._write_rare, self._writer_for_rows())
            self._wait()
        finally:
            if self._thread is not None:
                self._thread.shutdown(wait=True)
            if self._writer is None:  # no rows at all: the schema alone
                self._writer = self._open(WriterOptions([], None))
            self._writer.close()

    def _open(self, options: WriterOptions) -> _native.ParquetWriter:
        return _native.ParquetWriter(
            str(self._path),
            self.schema,
            dictionary=options.dictionary,
            compressed=options.compressed,
            threads=ENCODING_THREADS,
        )

    def _writer_for_rows(self) -> _native.ParquetWriter:
        """The writer of a file of several row groups, and its thread, opened on first use."""
        if self._writer is None:
            self._writer = self._open(writer_options(self.schema))
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="callsweep-parquet")
        return self._writer

    def _submit(self, write: Callable[..., None], *args: object) -> None:
        """Runs `write(*args)` on the writer's thread, after the writes before it; at most
        `WRITES_IN_FLIGHT` are held (the caller waits for the oldest to be done first), and a
        failure of one is raised here."""
        while len(self._writing) >= WRITES_IN_FLIGHT:
            self._writing.popleft().result()
        self._writer_for_rows()
        assert self._thread is not None
        self._writing.append(self._thread.submit(write, *args))

    def _write_window(self, rows: pa.Table, min_rows: int) -> None:
        """Writes a window of event-10 rows sorted by CallTrace prefix: a row group per frequent
        first module; the rows of rare ones are gathered across windows (`_write_rare`). On the
        writer's thread: the sort is a copy of the window."""
        writer = self._writer_for_rows()
        order = pc.sort_indices(rows, sort_keys=[(CALL_TRACE_PREFIX, "ascending")])
        rows = rows.take(order)
        rare, modules = module_runs(rows.column(CALL_TRACE_PREFIX), min_rows)
        if rare:
            # Taken, not sliced: a slice would keep the whole window alive.
            picked = pa.array([i for a, n in rare for i in range(a, a + n)], pa.int64())
            self._rare.append(rows.take(picked))
            self._rare_rows += len(picked)
            if self._rare_rows >= self.row_group_rows:
                self._write_rare(writer)
        for first, count in modules:
            writer.write_table(rows.slice(first, count), row_group_size=count)

    def _write_rare(self, writer: _native.ParquetWriter) -> None:
        """The event-10 rows of rare first modules gathered so far, as one row group: what a
        scan for the rule must read is then one run of row groups, not one per window."""
        if self._rare:
            together = pa.concat_tables(self._rare)
            writer.write_table(together, row_group_size=together.num_rows)
            self._rare, self._rare_rows = [], 0

    def _wait(self) -> None:
        while self._writing:
            self._writing.popleft().result()

    def _add_by_kind(
        self, batch: pa.RecordBatch, only: int | None, rank: pa.Array | None = None
    ) -> None:
        """Adds `batch` to its kind's rows (`only`), or with rows of several kinds (`only` is
        None) its rows to theirs (`rank`: each row's kind, found here when not given)."""
        if only is None and rank is None:
            rank = _kind_rank(batch.column("event.code"))
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
                if self._kind_rows[kind] >= self._window(kind):
                    self._flush(kind)

    def _flush(self, kind: str, rest: bool = False) -> None:
        """Writes the kind's full windows (and with `rest`, what remains), keeping the
        remainder: every row group but a kind's last has exactly `row_group_rows` rows; event
        10 is written window by window of `TEN_WINDOW` times that (`_write_window`)."""
        if not self._kind_rows[kind]:
            return
        table = pa.Table.from_batches(self._kinds[kind], self.schema)
        window = self._window(kind)
        whole = table.num_rows if rest else table.num_rows // window * window
        if whole and kind == "ten" and CALL_TRACE_PREFIX in self.schema.names:
            min_rows = max(1, min(TEN_MIN_GROUP_ROWS, window // 8))
            for start in range(0, whole, window):
                rows = table.slice(start, min(window, whole - start))
                self._submit(self._write_window, rows, min_rows)
        elif whole:
            self._submit(self._writer_for_rows().write_table, table.slice(0, whole), window)
        # Slices of the last batches: these hold rows of this kind only (whole one-kind
        # batches, or filtered parts that own their bytes), so nothing else is kept alive.
        remainder = table.slice(whole)
        self._kinds[kind] = remainder.to_batches() if remainder.num_rows else []
        self._kind_rows[kind] = remainder.num_rows

    def _window(self, kind: str) -> int:
        """Rows of a kind written at once."""
        return self.row_group_rows * (TEN_WINDOW if kind == "ten" else 1)


# Column name endings of nearly distinct values: dictionary encoding them only costs.
_DISTINCT_ENDINGS = (
    *("@timestamp", "UtcTime", "Guid", "GUID", "Id", "record_id", "entity_id", ".pid", ".id"),
    *("record_number", "CallTrace", "Hash", "Hashes", "CommandLine", "StartAddress"),
    "SourcePort",
    # The other fields of a record as one JSON object (times, ids, whole UserData renderings):
    # a dictionary of them fell back to plain pages after hashing each one, 7% of the writer's
    # CPU time on the benchmark's mixed 256 MiB file.
    "event_data_other",
)
_REPEATING = {"winlog.event_data.TerminalSessionId", CALL_TRACE_PREFIX}


def distinct_values(name: str) -> bool:
    """Whether the column `name` holds nearly distinct values (by its ECS or Sysmon name)."""
    return name.endswith(_DISTINCT_ENDINGS) and name not in _REPEATING


@dataclass(frozen=True)
class WriterOptions:
    """How the native writer writes a file's columns (top-level names)."""

    dictionary: list[str]  # dictionary-encoded; the others plain
    compressed: list[str] | None  # zstd; None: every column


def writer_options(schema: pa.Schema) -> WriterOptions:
    """The options of a file of several row groups: zstd, dictionaries where values repeat."""
    return WriterOptions([f.name for f in schema if not distinct_values(f.name)], None)


def single_row_group_options(table: pa.Table) -> WriterOptions:
    """The options of a file written as the one row group `table`: zstd and dictionary
    encoding, but for the columns without any value (most of the 113 in a small EVTX log of one
    kind of event). Those hold only definition levels, which zstd cannot shrink, and a zstd
    context per column chunk cost more than decoding such a file: 12 ms per sample file written
    against 5 ms with pyarrow's writer, measured over the samples of ../shared/data."""
    rows = table.num_rows
    empty = [c.null_count == rows for c in table.columns]
    if not any(empty):
        return writer_options(table.schema)
    facts = _facts(table.schema)
    compressed = [f.name for f, no_value in zip(facts.schema, empty, strict=True) if not no_value]
    dictionary = [
        f.name
        for f, no_value, rep in zip(facts.schema, empty, facts.repeating, strict=True)
        if rep and not no_value
    ]
    return WriterOptions(dictionary, compressed)


def _kind_rank(code: pa.Array | pa.ChunkedArray) -> pa.Array:
    """0 for codes that sort before "10" (and for rows without a code: nulls do not widen a row
    group's min/max), 1 for "10", 2 for codes that sort after it."""
    ten = pc.fill_null(pc.equal(code, "10"), False)
    after = pc.fill_null(pc.greater(code, "10"), False)
    return pc.add(pc.cast(ten, pa.int8()), pc.multiply(pc.cast(after, pa.int8()), 2))


def first_modules(prefix: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Each CallTrace's first frame module: the text before the first `+` or `|`."""
    return pc.replace_substring_regex(prefix, pattern=r"[+|].*", replacement="")


Span = tuple[int, int]  # first row, rows


def module_runs(prefix: pa.ChunkedArray, min_rows: int) -> tuple[list[Span], list[Span]]:
    """For event-10 rows sorted by CallTrace prefix: the spans of rare first modules, and the
    runs of one first module with at least `min_rows` rows."""
    modules = first_modules(prefix.combine_chunks())
    rows = len(modules)
    if rows == 0:
        return [], []
    changed = pc.fill_null(pc.not_equal(modules.slice(1), modules.slice(0, rows - 1)), True)
    # Nulls (no CallTrace) sort last and make runs of their own.
    both_null = pc.and_(pc.is_null(modules.slice(1)), pc.is_null(modules.slice(0, rows - 1)))
    changed = pc.and_not(changed, both_null)
    starts = [0, *(i + 1 for i in pc.indices_nonzero(changed).to_pylist()), rows]
    rare: list[Span] = []
    runs: list[Span] = []
    mixed = None  # start of the rare runs gathered so far
    for start, end in itertools.pairwise(starts):
        if end - start >= min_rows:
            if mixed is not None:
                rare.append((mixed, start - mixed))
                mixed = None
            runs.append((start, end - start))
        elif mixed is None:
            mixed = start
    if mixed is not None:
        rare.append((mixed, rows - mixed))
    return rare, runs


def _first_row_kind(code: pa.Array) -> int:
    """The kind of a batch of one kind (`one_kind_batches`): its first row's, as `_kind_rank`
    gives it (Python compares strings by code point, which is UTF-8's byte order)."""
    first = code[0].as_py()
    if first is None or first < "10":
        return 0
    return 1 if first == "10" else 2


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
