"""What is timed: callsweep and the ways people run the same rule without it.

A file contender answers with a count for a Parquet path: the number of alerts, or for the
read-only baselines the number of rows read. A column contender answers with the number of
CallTrace values that match the rule's five patterns, on a column already in memory.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import pyarrow.parquet as pq

import callsweep
from callsweep import _native
from callsweep.benchmark.rule_translations import (
    RegexTranslation,
    anchored_regex,
    polars_predicate,
    prefix_regex,
    python_predicate,
    sql_where,
)
from callsweep.rules.analysis import fields
from callsweep.rules.ast import EventQuery, Not, Wildcard
from callsweep.scan import ENGINE as CALLSWEEP_ENGINE

if TYPE_CHECKING:
    import duckdb

# Every polars contender runs on the engine callsweep uses, so the engine is not what differs.
POLARS_ENGINE = CALLSWEEP_ENGINE
DUCKDB_THREADS = 2

ALERTS = "alerts"
ROWS = "rows"
MATCHES = "matches"


@dataclass(frozen=True)
class FileContender:
    name: str
    count: Callable[[Path], int]
    answers: str  # ALERTS, or ROWS for the read-only baselines
    # Timed on the first rows only and extrapolated linearly (too slow for the whole file).
    sliced: bool = False
    note: str = ""


@dataclass(frozen=True)
class ColumnContender:
    name: str
    count: Callable[[pl.Series], int]
    note: str = ""


def callsweep_count(path: Path) -> int:
    return callsweep.scan(path).height


def polars_regex_count(query: EventQuery, regex: RegexTranslation) -> Callable[[Path], int]:
    predicate = polars_predicate(query, regex)

    def count(path: Path) -> int:
        found = pl.scan_parquet(path).filter(predicate).select(pl.len())
        return int(found.collect(engine=POLARS_ENGINE).item())

    return count


class DuckDBCount:
    """One connection for the whole run, opened on first use: after the first run only the
    query is timed, and a process that never runs DuckDB does not hold a connection."""

    def __init__(self, query: EventQuery) -> None:
        self._where = sql_where(query)
        self._connection: duckdb.DuckDBPyConnection | None = None

    def _connect(self) -> duckdb.DuckDBPyConnection:
        if self._connection is None:
            import duckdb  # an optional extra (`callsweep[bench]`): imported only when it runs

            self._connection = duckdb.connect()
            self._connection.execute(f"SET threads = {DUCKDB_THREADS}")
            # Its progress bar would be drawn into the benchmark's stdout, the report.
            self._connection.execute("SET enable_progress_bar = false")
        return self._connection

    def __call__(self, path: Path) -> int:
        source = "'" + str(path).replace("'", "''") + "'"
        sql = f"SELECT count(*) FROM read_parquet({source}) WHERE {self._where}"
        return int(self._connect().execute(sql).fetchone()[0])


def python_re_count(query: EventQuery) -> Callable[[Path], int]:
    columns = fields(query)

    def count(path: Path) -> int:
        table = pq.read_table(path, columns=list(columns))
        predicate = python_predicate(query, columns)
        rows = zip(*(table.column(name).to_pylist() for name in columns), strict=True)
        return sum(1 for row in rows if predicate(row))

    return count


def read_only_count(columns: tuple[str, ...], engine: str) -> Callable[[Path], int]:
    def count(path: Path) -> int:
        return pl.scan_parquet(path).select(columns).collect(engine=engine).height

    return count


def read_only_parallel_count(columns: tuple[str, ...]) -> Callable[[Path], int]:
    """Reading alone, but as callsweep reads: runs of row groups on one thread per core. polars
    decodes one Parquet scan on about one core, so this is the honest floor for callsweep."""

    def count(path: Path) -> int:
        metadata = pq.read_metadata(path)
        starts, offset = [], 0
        for i in range(metadata.num_row_groups):
            starts.append((offset, metadata.row_group(i).num_rows))
            offset += metadata.row_group(i).num_rows

        def read(part: tuple[int, int]) -> int:
            lf = pl.scan_parquet(path).slice(*part)
            return lf.select(columns).collect(engine="streaming").height

        with ThreadPoolExecutor(pl.thread_pool_size()) as pool:
            return sum(pool.map(read, starts))

    return count


def file_contenders(query: EventQuery, slice_rows: int) -> list[FileContender]:
    columns = fields(query)
    return [
        FileContender("callsweep", callsweep_count, ALERTS, note="`callsweep.scan(path)`"),
        FileContender(
            "polars-regex",
            polars_regex_count(query, anchored_regex),
            ALERTS,
            note="`(?is)^(?:…)$`, `*` -> `.*`",
        ),
        FileContender(
            "polars-regex-prefix",
            polars_regex_count(query, prefix_regex),
            ALERTS,
            note="trailing `*` dropped with the `$`",
        ),
        FileContender(
            "duckdb",
            DuckDBCount(query),
            ALERTS,
            note=f"`ILIKE … ESCAPE '\\'`, threads={DUCKDB_THREADS}",
        ),
        FileContender(
            "python-re",
            python_re_count(query),
            ALERTS,
            sliced=True,
            note=f"per-row `re`, timed on {slice_rows:,} rows, extrapolated",
        ),
        FileContender(
            "read-only",
            read_only_count(columns, "in-memory"),
            ROWS,
            note=f"{len(columns)} rule columns, in-memory engine",
        ),
        FileContender(
            "read-only-streaming",
            read_only_count(columns, "streaming"),
            ROWS,
            note=f"{len(columns)} rule columns, streaming engine",
        ),
        FileContender(
            "read-only-parallel",
            read_only_parallel_count(columns),
            ROWS,
            note=f"{len(columns)} rule columns, row groups on one thread per core",
        ),
    ]


def call_trace_patterns(query: EventQuery) -> tuple[str, ...]:
    """The patterns of the rule's `not CallTrace : (...)` clause (the one tested on every row)."""
    for node in query.condition.operands:
        inner = node.operand if isinstance(node, Not) else None
        if isinstance(inner, Wildcard) and inner.field.endswith("CallTrace"):
            return inner.patterns
    raise ValueError("the rule has no `not CallTrace : (...)` clause")


def kernel_count(patterns: tuple[str, ...]) -> Callable[[pl.Series], int]:
    matcher = _native.WildcardMatcher(list(patterns))  # compiled once, as callsweep caches it

    def count(series: pl.Series) -> int:
        return int(pl.Series(matcher.match_arrow(series)).sum())

    return count


def regex_column_count(regex: str) -> Callable[[pl.Series], int]:
    def count(series: pl.Series) -> int:
        return int(series.str.contains(regex).sum())

    return count


def column_contenders(query: EventQuery) -> list[ColumnContender]:
    patterns = call_trace_patterns(query)
    return [
        ColumnContender(
            "kernel",
            kernel_count(patterns),
            note="`WildcardMatcher(patterns).match_arrow(series)`",
        ),
        ColumnContender(
            "polars-regex-column",
            regex_column_count(anchored_regex(patterns)),
            note="`series.str.contains((?is)^(?:…)$)`",
        ),
        ColumnContender(
            "polars-regex-prefix-column",
            regex_column_count(prefix_regex(patterns)),
            note="the same without `.*$` (for reference)",
        ),
    ]
