"""Type stub of the Rust extension `callsweep._native` (rust/python/src)."""

from typing import Any

__version__: str

class ExportedArray:
    """A boolean Arrow array owned by Rust; hand it to `pyarrow.array` or `polars.Series`."""

    def __arrow_c_array__(self, requested_schema: object | None = None) -> tuple[Any, Any]: ...
    def __len__(self) -> int: ...

class WildcardMatcher:
    """EQL wildcard patterns compiled once; a value matches when any pattern matches it whole."""

    def __init__(self, patterns: list[str]) -> None: ...
    def is_match(self, value: str) -> bool: ...
    def strategies(self) -> list[tuple[str, str]]: ...
    def match_arrow(self, array: object) -> ExportedArray:
        """Match an Arrow array or stream (`__arrow_c_array__` / `__arrow_c_stream__`): string,
        large_string, string_view, dictionaries and lists of those. Nulls give False."""

class Rules:
    """Several rules' condition programs over one batch (nested tuples, as `Condition` takes
    them), sharing programs: `("shared", k)` reads `shared[k]`, evaluated at most once per row
    in one call, on the rows the rules ask for it."""

    def __init__(self, shared: list[tuple], rules: list[tuple]) -> None: ...
    def any(self, columns: list[object]) -> ExportedArray:
        """Whether some rule holds on each row (a rule is evaluated where none before held)."""
    def each(self, columns: list[object]) -> ExportedArray:
        """Every rule's value on every row: a struct of booleans, field `str(i)` rule i's."""
    def __len__(self) -> int: ...

def is_release_build() -> bool: ...
def tally(columns: list[object]) -> tuple[list[int], list[int]]:
    """`(first rows, counts)` of the groups of rows sharing the string views of every column
    (Arrow arrays or streams of string views or nulls, of one length), in row order; groups of
    equal values under different views are the caller's to merge. TypeError for other types."""

class ParquetWriter:
    """A Parquet file written by the `parquet` crate: each row group handed over is encoded
    (zstd level 1 for `compressed`, every column when None; dictionaries for `dictionary`;
    page and column-chunk statistics) on a thread of its own, at most `threads` at a time, and
    appended in order. The schema's metadata and the Arrow schema go into the file's key-value
    metadata. OSError naming the file when it cannot be written."""

    def __init__(
        self,
        path: str,
        schema: object,
        dictionary: list[str],
        compressed: list[str] | None = None,
        threads: int = 2,
    ) -> None: ...
    def write_table(self, table: object, row_group_size: int) -> None:
        """`table` (`__arrow_c_stream__` of record batches of the file's schema) as row groups
        of `row_group_size` rows; returns once they are handed over to be encoded."""
    def close(self) -> None:
        """Appends the row groups still being encoded and writes the footer."""

class EvtxReader:
    """An EVTX file decoded in Rust into Arrow record batches (flat ECS columns, the schema of
    `evtx_schema()`), read once through `__arrow_c_stream__` (`pyarrow.RecordBatchReader
    .from_stream(r)`, `polars.DataFrame(r)`; `polars.from_arrow(r)` would give one struct
    Series), without the GIL. Damaged chunks and records are passed
    over and listed in `errors`; the counts grow as the stream is read."""

    def __init__(
        self,
        path: str,
        batch_rows: int = 65536,
        threads: int = 0,
        by_code_kind: bool = False,
        layout_form: bool = False,
    ) -> None:
        """OSError (FileNotFoundError, ...) when the file cannot be read, ValueError when it is
        not EVTX; both name the file. `by_code_kind`: each batch holds rows of one kind of
        event code only (before "10" as text, "10", after it). `layout_form`: batches in the
        schema of `evtx_layout_schema()`, as callsweep's Parquet layout writes them."""
    def __arrow_c_stream__(self, requested_schema: object | None = None) -> Any: ...
    @property
    def path(self) -> str: ...
    @property
    def records(self) -> int: ...
    @property
    def skipped(self) -> int: ...
    @property
    def chunks(self) -> int: ...
    @property
    def errors(self) -> list[tuple[int, int, str]]:
        """`(chunk, file offset, message)` of each chunk or record passed over."""
    @property
    def finished(self) -> bool: ...
    @property
    def template_records(self) -> int: ...
    @property
    def _calls_with_gil(self) -> int: ...

class ExportedSchema:
    """An Arrow schema owned by Rust; `pyarrow.schema(x)` takes it."""

    def __arrow_c_schema__(self) -> Any: ...
    def __len__(self) -> int: ...

def evtx_schema() -> ExportedSchema: ...
def evtx_layout_schema() -> ExportedSchema: ...
def select_lines(
    data: bytes | memoryview,
    needles: list[bytes],
    max_line: int,
    first_number: int = 1,
    out: bytearray | None = None,
    exclude: tuple[bytes, list[tuple[str, bool]]] | None = None,
) -> tuple[bytes, list[int], int, list[tuple[int, int]], int, int]:
    """`(text, numbers, lines, overlong, next_number, excluded)`: the lines of `data` holding
    any of `needles` (every line when there are none), each followed by `\\n`, blank lines left
    out; their 1-based numbers counted from `first_number`; the non-blank lines `data` held;
    `(number, length)` of each line longer than `max_line` bytes (never kept); the number of
    the line after; how many lines with a needle `exclude` left out. Reads any contiguous
    buffer without copying, the GIL released. With `out` the kept lines are appended to it (one
    copy) and `text` is empty. `exclude`: `(field name, [(prefix, case_sensitive), ...])`:
    lines proved to give that field only string values starting with a prefix are left out
    (`sources.prefilter.line_excluded`); ValueError for a prefix JSON cannot spell plainly."""

def pick_lines(text: bytes, indices: list[int]) -> bytes:
    """The lines at the 0-based `indices` (ascending) of `text` (lines each followed by `\\n`,
    as `select_lines` gives them), each followed by `\\n`; the GIL released."""

def extract_fields(
    text: bytes, names: list[str]
) -> tuple[ExportedArray | None, tuple[int, str] | None]:
    """`(columns, bad)`: the fields `names` (dotted ECS paths, nested or dotted keys in the
    documents) of every line of `text` as one Arrow struct array (a string, or list-of-strings,
    field per name; numbers and booleans as written, objects as JSON text, null as missing),
    or `(None, (index, message))` for the first line that is not a JSON object."""
