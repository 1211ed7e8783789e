"""What a row group's column statistics prove about a rule: that no row of it can match.

A scan skips such row groups unread. The proof must hold for every row the statistics could
describe, so it only ever concludes from facts that bound every value:

* a string column's min and max (Parquet compares UTF-8 bytes, as Python compares `str`) bound
  every non-null value, and every string between two strings that share a prefix `C` starts
  with `C` itself (at the first position where a value leaves `C` it would fall below the min
  or above the max; a proper prefix of `C` sorts below the min);
* the null count says whether every row, or none, is missing the column.

So a wildcard `L*` (`L` free of `*`, with the per-character `?` and ASCII case folding of
`callsweep.wildcard`) holds on every row when no value is missing and the common prefix of min
and max is at least `len(L)` characters long, its first `len(L)` characters matching `L`: each
value starts with those characters. On callsweep's layout (event 10 sorted by the stored
CallTrace prefix, `callsweep.layout`) that is what proves `not CallTrace : ("?:\\WINDOWS\\
SYSTEM32\\ntdll.dll*", ...)` false on nearly every event-10 row group.

The verdicts are two-valued, as callsweep evaluates the rule: a missing value makes a `:`,
`==` or `length` test false, and `not` true (`SEMANTICS.md`). Anything the statistics cannot
decide is unknown, and a row group with any unknown that matters is read.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

import pyarrow.parquet as pq

from callsweep import _native
from callsweep.ecs import EMPTY_MEANS_MISSING
from callsweep.rules.ast import (
    And,
    BoolLiteral,
    Compare,
    EventQuery,
    InSet,
    Length,
    Node,
    Not,
    Or,
    Wildcard,
)


@dataclass(frozen=True)
class ColumnStats:
    """One column chunk's statistics: `low`/`high` bound every non-null value (None: no
    bounds known), `nulls` of `rows` values are missing."""

    rows: int
    nulls: int
    low: object = None
    high: object = None

    @property
    def all_missing(self) -> bool:
        return self.nulls == self.rows

    @property
    def bounded(self) -> bool:
        return self.low is not None and self.high is not None


def stats_columns(metadata: pq.FileMetaData, names: Iterable[str]) -> list[int]:
    """The leaf columns of `names` that are top-level, non-nested columns (a list column's
    statistics describe its elements, not its rows; a struct's fields are not columns)."""
    top = set(metadata.schema.names)
    leaves = {}
    for i in range(len(metadata.schema)):
        leaf = metadata.schema.column(i)
        if leaf.max_repetition_level == 0 and leaf.path in top:
            leaves[leaf.path] = i
    return [leaves[n] for n in dict.fromkeys(names) if n in leaves]


def row_group_stats(
    metadata: pq.FileMetaData, group: int, columns: Iterable[int] | None = None
) -> dict[str, ColumnStats]:
    """The statistics of the row group's `columns` (leaf indices from `stats_columns`; by
    default every top-level, non-nested column), by column name."""
    row_group = metadata.row_group(group)
    if columns is None:
        columns = stats_columns(metadata, metadata.schema.names)
    found: dict[str, ColumnStats] = {}
    for i in columns:
        chunk = row_group.column(i)
        stats = chunk.statistics
        if stats is None or not stats.has_null_count:
            continue
        low = high = None
        if stats.has_min_max:
            low, high = stats.min, stats.max
        found[chunk.path_in_schema] = ColumnStats(row_group.num_rows, stats.null_count, low, high)
    return found


def never_matches(query: EventQuery, stats: Mapping[str, ColumnStats]) -> bool:
    """Whether the statistics prove `query`'s condition false on every row."""
    return _verdict(query.condition, stats) is False


def _verdict(node: Node, stats: Mapping[str, ColumnStats]) -> bool | None:
    """True: holds on every row; False: holds on none; None: not decided."""
    match node:
        case BoolLiteral(value=value):
            return value
        case And(operands=operands):
            verdicts = [_verdict(op, stats) for op in operands]
            if False in verdicts:
                return False
            return True if all(v is True for v in verdicts) else None
        case Or(operands=operands):
            verdicts = [_verdict(op, stats) for op in operands]
            if True in verdicts:
                return True
            return False if all(v is False for v in verdicts) else None
        case Not(operand=operand):
            inner = _verdict(operand, stats)
            return None if inner is None else not inner
        case Wildcard(field=name, patterns=patterns, case_sensitive=False):
            return _wildcard(stats.get(name), patterns)
        case Compare(field=name, op="==", value=str() as value):
            return _equals(stats.get(name), (value,))
        case InSet(field=name, values=values, case_insensitive=False) if all(
            isinstance(v, str) for v in values
        ):
            return _equals(stats.get(name), values)
        case Length(field=name):
            column = stats.get(name)
            # `length` of a missing value is false, whatever it is compared with.
            return False if column is not None and column.all_missing else None
    return None


def _equals(column: ColumnStats | None, values: tuple) -> bool | None:
    """`field == v` for one of `values` (exact, case-sensitive)."""
    if column is None:
        return None
    if column.all_missing:
        return False
    if not (column.bounded and isinstance(column.low, str) and isinstance(column.high, str)):
        return None
    if column.nulls == 0 and column.low == column.high and column.low in values:
        return True
    if all(not column.low <= v <= column.high for v in values):
        return False
    return None


def _wildcard(column: ColumnStats | None, patterns: tuple[str, ...]) -> bool | None:
    if column is None:
        return None
    if column.all_missing:
        return False  # a missing value never matches
    if column.nulls or not column.bounded:
        return None
    low, high = column.low, column.high
    if not (isinstance(low, str) and isinstance(high, str)):
        return None
    shared = os.path.commonprefix([low, high])  # noqa: RUF071 (characters, as wanted)
    if shared in EMPTY_MEANS_MISSING:
        # A value could then be one that normalization reads as missing (which matches nothing).
        return None
    for pattern in patterns:
        head = pattern.rstrip("*")
        if head == pattern or "*" in head or len(shared) < len(head):
            continue
        if _matcher(head).is_match(shared[: len(head)]):
            return True  # every value starts with characters that match `head`
    return None


@lru_cache(maxsize=256)
def _matcher(pattern: str) -> _native.WildcardMatcher:
    # Not `wildcard.matcher`: its counts say what the scan itself matched.
    return _native.WildcardMatcher([pattern])
