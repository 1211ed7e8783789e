"""The rule as generic tools run it: the EQL syntax tree as polars regex, SQL ILIKE, Python `re`.

These are the contenders callsweep is measured against. They are derived from the parsed rule,
not written by hand, so they test exactly what callsweep tests. Semantics follow callsweep's
compiler: a test on a missing (null) value is false, so `not` of it is true. Only the node types
and comparison operators the benchmark's rule uses are handled; the query's category (`process
where`) is a membership test on the multi-valued `event.category`, every other field is scalar.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable, Sequence

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from callsweep.rules.analysis import CATEGORY_FIELD
from callsweep.rules.ast import And, Compare, EventQuery, Length, Node, Not, Or, Wildcard

# The characters that are special in both Rust's `regex` and Python's `re` (regex_syntax::escape
# escapes exactly these); escaping anything else, such as a space, is not valid everywhere.
_REGEX_META = frozenset("\\.+*?()|[]{}^$#&-~")

_OPS: dict[str, Callable[[object, object], object]] = {
    "==": operator.eq,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}

RegexTranslation = Callable[[Sequence[str]], str]


# --- wildcard patterns -> regex / LIKE -------------------------------------------------------


def _regex_body(pattern: str) -> str:
    """`*` -> `.*`, `?` -> `.`, everything else literal; no anchors."""
    parts = []
    for char in pattern:
        if char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        elif char in _REGEX_META:
            parts.append("\\" + char)
        else:
            parts.append(char)
    return "".join(parts)


def anchored_regex(patterns: Sequence[str]) -> str:
    """`(?is)^(?:p1|p2)$`: the translation generic tools make (Sigma backends, hand ports).

    A trailing `*` becomes `.*$`, which makes the regex engine walk to the end of the value to
    confirm what the prefix already decided.
    """
    return "(?is)^(?:" + "|".join(_regex_body(p) for p in patterns) + ")$"


def prefix_regex(patterns: Sequence[str]) -> str:
    """As `anchored_regex`, but a pattern ending in `*` loses the `*` and the `$` (a prefix test),
    as a careful hand translation writes it: the engine can stop after the prefix."""
    alternatives = [
        _regex_body(p.rstrip("*")) if p.endswith("*") else _regex_body(p) + "$" for p in patterns
    ]
    return "(?is)^(?:" + "|".join(alternatives) + ")"


def like_pattern(pattern: str) -> str:
    """A wildcard pattern as a LIKE pattern with escape character `\\`: `*` -> `%`, `?` -> `_`,
    and the LIKE metacharacters `%`, `_`, `\\` escaped (the rule's `_classic_` needs it)."""
    parts = []
    for char in pattern:
        if char == "*":
            parts.append("%")
        elif char == "?":
            parts.append("_")
        elif char in "%_\\":
            parts.append("\\" + char)
        else:
            parts.append(char)
    return "".join(parts)


# --- polars ----------------------------------------------------------------------------------


def polars_predicate(query: EventQuery, regex: RegexTranslation) -> pl.Expr:
    """The whole query as one polars filter; wildcards become `str.contains(regex(patterns))`."""
    condition = _polars(query.condition, regex)
    if query.category == "any":
        return condition
    in_category = pl.col(CATEGORY_FIELD).list.contains(query.category).fill_null(False)
    return in_category & condition


def _polars(node: Node, regex: RegexTranslation) -> pl.Expr:
    match node:
        case And(operands=ops):
            return pl.all_horizontal([_polars(op, regex) for op in ops])
        case Or(operands=ops):
            return pl.any_horizontal([_polars(op, regex) for op in ops])
        case Not(operand=inner):
            return ~_polars(inner, regex)
        case Wildcard(field=f, patterns=patterns):
            return pl.col(f).str.contains(regex(patterns)).fill_null(False)
        case Compare(field=f, op=op, value=v) if op in _OPS:
            return _OPS[op](pl.col(f), v).fill_null(False)
        case Length(field=f, op=op, value=n) if op in _OPS:
            return _OPS[op](pl.col(f).str.len_chars(), n).fill_null(False)
    raise NotImplementedError(f"the benchmark does not translate {node!r}")


# --- SQL (DuckDB) ----------------------------------------------------------------------------


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _sql_column(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sql_where(query: EventQuery) -> str:
    """The whole query as a SQL condition; wildcards become `ILIKE ... ESCAPE '\\'`."""
    condition = _sql(query.condition)
    if query.category == "any":
        return condition
    in_category = f"list_contains({_sql_column(CATEGORY_FIELD)}, {_sql_string(query.category)})"
    return f"coalesce({in_category}, false) AND {condition}"


def _sql(node: Node) -> str:
    match node:
        case And(operands=ops):
            return "(" + " AND ".join(_sql(op) for op in ops) + ")"
        case Or(operands=ops):
            return "(" + " OR ".join(_sql(op) for op in ops) + ")"
        case Not(operand=inner):
            return f"NOT {_sql(inner)}"
        case Wildcard(field=f, patterns=patterns):
            column = _sql_column(f)
            tests = " OR ".join(
                f"{column} ILIKE {_sql_string(like_pattern(p))} ESCAPE '\\'" for p in patterns
            )
            return f"coalesce({tests}, false)"
        case Compare(field=f, op=op, value=str() as v) if op in _OPS:
            sql_op = "=" if op == "==" else op
            return f"coalesce({_sql_column(f)} {sql_op} {_sql_string(v)}, false)"
        case Length(field=f, op=op, value=n) if op in _OPS:
            return f"coalesce(length({_sql_column(f)}) {op} {int(n)}, false)"
    raise NotImplementedError(f"the benchmark does not translate {node!r}")


# --- plain Python, one row at a time ---------------------------------------------------------

RowTest = Callable[[tuple], bool]


def python_predicate(query: EventQuery, columns: Sequence[str]) -> RowTest:
    """The query as a function of one row (a tuple of values in `columns` order), built as a
    tree of closures, as an interpreter evaluates it; wildcards use `re` with `anchored_regex`."""
    index = {name: i for i, name in enumerate(columns)}
    condition = _python(query.condition, index)
    if query.category == "any":
        return condition
    category, at = query.category, index[CATEGORY_FIELD]
    return lambda row: row[at] is not None and category in row[at] and condition(row)


def _python(node: Node, index: dict[str, int]) -> RowTest:
    match node:
        case And(operands=ops):
            tests = [_python(op, index) for op in ops]
            return lambda row: all(test(row) for test in tests)
        case Or(operands=ops):
            tests = [_python(op, index) for op in ops]
            return lambda row: any(test(row) for test in tests)
        case Not(operand=inner):
            test = _python(inner, index)
            return lambda row: not test(row)
        case Wildcard(field=f, patterns=patterns):
            match, at = re.compile(anchored_regex(patterns)).match, index[f]
            return lambda row: row[at] is not None and match(row[at]) is not None
        case Compare(field=f, op=op, value=v) if op in _OPS:
            compare, at = _OPS[op], index[f]
            return lambda row: row[at] is not None and bool(compare(row[at], v))
        case Length(field=f, op=op, value=n) if op in _OPS:
            compare, at = _OPS[op], index[f]
            return lambda row: row[at] is not None and bool(compare(len(row[at]), n))
    raise NotImplementedError(f"the benchmark does not translate {node!r}")


# --- pyarrow compute -------------------------------------------------------------------------


def arrow_mask(query: EventQuery, table: pa.Table) -> pa.ChunkedArray | pa.Array:
    """The whole query as a boolean mask over `table`; wildcards become
    `pc.match_like(..., ignore_case=True)` with the `like_pattern` translation.

    pyarrow folds case as RE2 does, by Unicode simple case folding (U+212A KELVIN SIGN matches
    `k`, U+017F LONG S matches `s`, `É` matches `é`), where Elasticsearch folds ASCII letters
    only: on non-ASCII values its answer can differ from callsweep's (the synthetic data is ASCII).
    """
    condition = _arrow(query.condition, table)
    if query.category == "any":
        return condition
    return pc.and_(_list_contains(table.column(CATEGORY_FIELD), query.category), condition)


def _list_contains(column: pa.ChunkedArray, value: str) -> pa.Array:
    """Per row: does the list hold `value` (false for a null list); pyarrow has no such kernel."""
    column = column.combine_chunks()
    hits = pc.equal(pc.list_flatten(column), value).fill_null(False)
    rows = pc.filter(pc.list_parent_indices(column), hits)
    return pc.is_in(pa.array(range(len(column)), pa.int64()), value_set=pc.unique(rows))


def _arrow(node: Node, table: pa.Table) -> pa.Array:
    match node:
        case And(operands=ops):
            return functools.reduce(pc.and_, [_arrow(op, table) for op in ops])
        case Or(operands=ops):
            return functools.reduce(pc.or_, [_arrow(op, table) for op in ops])
        case Not(operand=inner):
            return pc.invert(_arrow(inner, table))
        case Wildcard(field=f, patterns=patterns):
            column = table.column(f)
            tests = [pc.match_like(column, like_pattern(p), ignore_case=True) for p in patterns]
            return functools.reduce(pc.or_, tests).fill_null(False)
        case Compare(field=f, op=op, value=v) if op in _ARROW_OPS:
            return _ARROW_OPS[op](table.column(f), v).fill_null(False)
        case Length(field=f, op=op, value=n) if op in _ARROW_OPS:
            return _ARROW_OPS[op](pc.utf8_length(table.column(f)), n).fill_null(False)
    raise NotImplementedError(f"the benchmark does not translate {node!r}")


_ARROW_OPS: dict[str, Callable[[object, object], pa.Array]] = {
    "==": pc.equal,
    "<": pc.less,
    "<=": pc.less_equal,
    ">": pc.greater,
    ">=": pc.greater_equal,
}
