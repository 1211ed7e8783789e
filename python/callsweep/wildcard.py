"""EQL wildcard matching (`field : "pattern"`) for polars, backed by the Rust kernel.

`wildcard(expr, patterns)` builds a polars expression; `pl.col(...).eql.wildcard(...)` is the same
through an expression namespace, registered when `callsweep` is imported. The kernel sees whole
Arrow arrays (strings, string views, dictionaries, lists of strings), releases the GIL while it
works, and answers with a boolean array without nulls: a missing value never matches.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

import polars as pl

from callsweep import _native

if not _native.is_release_build():  # pragma: no cover - depends on how the package was built
    warnings.warn(
        "callsweep._native is a debug build: matching works, but its timings mean nothing",
        RuntimeWarning,
        stacklevel=2,
    )

# Types the kernel reads as they are; anything else is cast to strings first, as Elasticsearch
# indexes a number in a keyword field as its decimal text.
NATIVE_TYPES = (pl.String, pl.Categorical, pl.Enum)


@dataclass
class MatcherCounts:
    """How many times each pattern was compiled into a native matcher (or program) and matched
    against a batch: what tests read to check that rules in one pass share their patterns."""

    compiled: Counter[str] = field(default_factory=Counter)
    evaluated: Counter[str] = field(default_factory=Counter)

    def clear(self) -> None:
        self.compiled.clear()
        self.evaluated.clear()


COUNTS = MatcherCounts()


@lru_cache(maxsize=256)
def matcher(patterns: tuple[str, ...]) -> _native.WildcardMatcher:
    """The compiled matcher for `patterns`, built once per distinct set."""
    COUNTS.compiled.update(patterns)
    return _native.WildcardMatcher(list(patterns))


def _normalize_patterns(patterns: str | Iterable[str]) -> tuple[str, ...]:
    if isinstance(patterns, str):
        return (patterns,)
    result = tuple(patterns)
    if not result or not all(isinstance(p, str) for p in result):
        raise ValueError(f"wildcard patterns must be one or more strings, got {patterns!r}")
    return result


def kernel_input(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """`expr` cast, if need be, to a type the kernel reads: strings stay as they are (string
    views, categoricals), anything else becomes its text, as a keyword field indexes it."""
    if isinstance(dtype, pl.List):
        if isinstance(dtype.inner, NATIVE_TYPES):
            return expr
        return expr.cast(pl.List(pl.String))
    if isinstance(dtype, NATIVE_TYPES):
        return expr
    return expr.cast(pl.String)


def match_series(series: pl.Series, patterns: str | Iterable[str]) -> pl.Series:
    """Matches every value of `series`; returns a Boolean series of the same length, no nulls."""
    patterns = _normalize_patterns(patterns)
    compiled = matcher(patterns)
    COUNTS.evaluated.update(patterns)
    dtype = series.dtype
    if dtype == pl.Null:
        # Nothing to match: no value is present. (polars exports the Null type with a buffer
        # the C data interface does not allow, so it is answered here.)
        return pl.Series(series.name, [False] * series.len(), dtype=pl.Boolean)
    if isinstance(dtype, pl.List):
        if not isinstance(dtype.inner, NATIVE_TYPES):
            series = series.cast(pl.List(pl.String))
    elif not isinstance(dtype, NATIVE_TYPES):
        series = series.cast(pl.String)
    result = compiled.match_arrow(series)
    return pl.Series(series.name, result)


def wildcard(expr: pl.Expr | str, patterns: str | Iterable[str]) -> pl.Expr:
    """`expr : patterns` with Elasticsearch semantics, as a polars expression.

    Whole-value match; `*` any run, `?` exactly one character; ASCII letters fold case, nothing
    else does; null (and an empty list) never matches; a list matches when any element does.
    """
    compiled = _normalize_patterns(patterns)
    matcher(compiled)  # compile now, so a bad pattern fails here and not inside a query
    column = pl.col(expr) if isinstance(expr, str) else expr
    return column.map_batches(
        lambda s: match_series(s, compiled),
        return_dtype=pl.Boolean,
        is_elementwise=True,
    )


@pl.api.register_expr_namespace("eql")
class EqlNamespace:
    """`pl.col("process.executable").eql.wildcard("?:\\\\Windows\\\\*")`."""

    def __init__(self, expr: pl.Expr) -> None:
        self._expr = expr

    def wildcard(self, patterns: str | Iterable[str]) -> pl.Expr:
        """True where the value matches any of `patterns` (EQL `:`); see `callsweep.wildcard`."""
        return wildcard(self._expr, patterns)
