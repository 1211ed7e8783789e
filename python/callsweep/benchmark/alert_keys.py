"""Scan contenders of `callsweep bench`: each runs the rule on Parquet files and answers with the
set of alerts it raised, by provenance key (file, `winlog.record_id`), so that the parity gate
compares which events alerted, not how many.

The translations of the rule come from `rule_translations` (derived from the parsed rule, as the
bench/ scripts use them). An alternative whose library is missing is skipped, and said so.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

import callsweep
from callsweep.benchmark.contenders import DUCKDB_THREADS, POLARS_ENGINE
from callsweep.benchmark.rule_translations import (
    anchored_regex,
    arrow_mask,
    polars_predicate,
    python_predicate,
    sql_where,
)
from callsweep.rules.analysis import fields
from callsweep.rules.ast import EventQuery

RECORD_ID = "winlog.record_id"
CALLSWEEP = "callsweep"

Key = tuple[str, int]  # (the file as given, winlog.record_id)
AlertKeys = frozenset[Key]


@dataclass(frozen=True)
class KeyedContender:
    name: str
    keys: Callable[[Sequence[str]], AlertKeys]
    note: str
    # Timed on the first `slice_rows` rows of the first file only, and extrapolated linearly.
    slice_rows: int | None = None


def callsweep_keys(paths: Sequence[str]) -> AlertKeys:
    # One call over every file, as a user runs it; each alert names its file in `log.file.path`.
    alerts = callsweep.scan(list(paths)).select("log.file.path", RECORD_ID)
    return frozenset(alerts.iter_rows())


def _keys(path: str, record_ids: Sequence[int]) -> AlertKeys:
    return frozenset((path, record_id) for record_id in record_ids)


def polars_keys(query: EventQuery) -> Callable[[Sequence[str]], AlertKeys]:
    predicate = polars_predicate(query, anchored_regex)

    def keys(paths: Sequence[str]) -> AlertKeys:
        found: set[Key] = set()
        for path in paths:
            hits = pl.scan_parquet(path).filter(predicate).select(RECORD_ID)
            found |= _keys(path, hits.collect(engine=POLARS_ENGINE).to_series().to_list())
        return frozenset(found)

    return keys


class DuckDBKeys:
    """One connection for the whole run, opened on first use, so only the query is timed."""

    def __init__(self, query: EventQuery) -> None:
        self._where = sql_where(query)
        self._connection = None

    def __call__(self, paths: Sequence[str]) -> AlertKeys:
        if self._connection is None:
            import duckdb  # an optional extra (`callsweep[bench]`)

            self._connection = duckdb.connect()
            self._connection.execute(f"SET threads = {DUCKDB_THREADS}")
            self._connection.execute("SET enable_progress_bar = false")
        found: set[Key] = set()
        for path in paths:
            source = "'" + path.replace("'", "''") + "'"
            sql = f'SELECT "{RECORD_ID}" FROM read_parquet({source}) WHERE {self._where}'
            found |= _keys(path, [row[0] for row in self._connection.execute(sql).fetchall()])
        return frozenset(found)


def pyarrow_keys(query: EventQuery) -> Callable[[Sequence[str]], AlertKeys]:
    columns = sorted({*fields(query), RECORD_ID})

    def keys(paths: Sequence[str]) -> AlertKeys:
        found: set[Key] = set()
        for path in paths:
            # Row group by row group, as a careful user would, so memory stays bounded.
            parquet = pq.ParquetFile(path)
            for group in range(parquet.num_row_groups):
                table = parquet.read_row_group(group, columns=columns)
                hits = table.column(RECORD_ID).filter(arrow_mask(query, table))
                found |= _keys(path, hits.to_pylist())
        return frozenset(found)

    return keys


def first_rows(path: str, rows: int, columns: Sequence[str]) -> pa.Table:
    """The first `rows` rows of a Parquet file (the slice the per-row contender is timed on)."""
    return pl.scan_parquet(path).select(columns).head(rows).collect().to_arrow()


def python_re_keys(query: EventQuery, slice_rows: int) -> Callable[[Sequence[str]], AlertKeys]:
    columns = [*fields(query), RECORD_ID]
    predicate = python_predicate(query, columns)

    def keys(paths: Sequence[str]) -> AlertKeys:
        table = first_rows(paths[0], slice_rows, columns)
        rows = zip(*(table.column(name).to_pylist() for name in columns), strict=True)
        return _keys(paths[0], [row[-1] for row in rows if predicate(row)])

    return keys


def slice_universe(paths: Sequence[str], slice_rows: int) -> AlertKeys:
    """Every key of the slice a sliced contender sees: callsweep's answer is cut to it."""
    record_ids = first_rows(paths[0], slice_rows, [RECORD_ID]).column(RECORD_ID).to_pylist()
    return _keys(paths[0], record_ids)


def scan_contenders(query: EventQuery, slice_rows: int) -> tuple[list[KeyedContender], list[str]]:
    """callsweep first, then every alternative that can run here; and what was skipped, why."""
    contenders = [
        KeyedContender(CALLSWEEP, callsweep_keys, "`callsweep.scan(paths)`"),
        KeyedContender(
            "polars-regex", polars_keys(query), "`str.contains((?is)^(?:…)$)`, `*` -> `.*`"
        ),
    ]
    skipped = []
    if importlib.util.find_spec("duckdb") is not None:
        contenders.append(
            KeyedContender(
                "duckdb", DuckDBKeys(query), f"`ILIKE … ESCAPE '\\'`, threads={DUCKDB_THREADS}"
            )
        )
    else:
        skipped.append("duckdb: not installed (pip install 'callsweep[bench]')")
    contenders.append(
        KeyedContender(
            "pyarrow-match-like",
            pyarrow_keys(query),
            "`pc.match_like(ignore_case=True)`; folds Unicode case, ES folds ASCII only",
        )
    )
    contenders.append(
        KeyedContender(
            "python-re",
            python_re_keys(query, slice_rows),
            f"per-row `re`, timed on the first {slice_rows:,} rows, extrapolated",
            slice_rows=slice_rows,
        )
    )
    return contenders, skipped
