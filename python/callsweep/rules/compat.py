"""What Elasticsearch would really alert on: keyword `ignore_above: 1024`.

ECS, winlogbeat and the Elastic Agent Sysmon integration map text fields such as
`winlog.event_data.CallTrace`, `winlog.event_data.TargetImage` and `process.executable` as
`keyword` with `ignore_above: 1024`. A longer value stays in `_source` but is not indexed and
has no doc values: every query on the field behaves as if the field were missing
(`SEMANTICS.md`, CallTrace). So `length(CallTrace) > 0` is false on a 1,100-character
CallTrace (no alert where the query as written alerts), and `not TargetImage : (...)` holds on
an over-long target (an exclusion that no longer applies: an alert the query as written does
not give). The length is Java's `String.length()` (Elasticsearch's `KeywordFieldMapper` compares
it with `ignore_above` before indexing): UTF-16 code units, so a character outside the Basic
Multilingual Plane counts twice; a value of exactly 1,024 units is still indexed. On a
multi-valued field each value is dropped or kept on its own. Exceptions are queries on the same
index, so they see the same missing values.

Fields mapped otherwise keep every value: numbers, dates, and the ECS `wildcard` fields
(`NOT_KEYWORD`, whose `ignore_above` defaults to 2^31 - 1).

Both verdicts come from one pass (`CompatMarks`): the query as written runs as usual; the
Elasticsearch verdict can differ from it only on a row where some field it reads is over-long.
An over-long single-valued field the query requires (`analysis.required_fields`) makes the
Elasticsearch verdict false; so it is computed again, on the values Elasticsearch keeps, only
on the rows where the query as written holds or another field it reads is over-long: the
alerts and a few more, never the whole input.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import polars as pl

from callsweep.rules import analysis
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
    StringTest,
    Wildcard,
)
from callsweep.rules.compile import compile_node, compile_query
from callsweep.rules.compile import query_conjuncts as top_level_conjuncts

Schema = Mapping[str, pl.DataType]

IGNORE_ABOVE = 1024
# ECS fields of type `wildcard` (or text) that event-10 rules might read: no 1,024 limit.
NOT_KEYWORD = frozenset({"process.command_line", "process.parent.command_line", "message"})
# Where the values Elasticsearch keeps of field `f` are put while the marks are computed.
MASKED = "callsweep.compat.{}"
# Per rule i: whether rule i alerts in the other mode than the one written out.
OTHER_COLUMN = "callsweep.scan.other.{}"
_ASTRAL = r"[\x{10000}-\x{10FFFF}]"


def utf16_length(value: pl.Expr) -> pl.Expr:
    """Java's `String.length()`: characters, those beyond U+FFFF counting twice."""
    return value.str.len_chars() + value.str.count_matches(_ASTRAL)


def _too_long(value: pl.Expr) -> pl.Expr:
    # UTF-8 never takes fewer bytes than UTF-16 code units, so a value of at most 1,024
    # bytes is kept without counting its characters.
    return (value.str.len_bytes() > IGNORE_ABOVE) & (utf16_length(value) > IGNORE_ABOVE)


def keyword_fields(fields: Sequence[str], schema: Schema) -> list[str]:
    """The fields among `fields` that the input holds as text: those indexed as keywords."""
    found = []
    for name in dict.fromkeys(fields):
        dtype = schema.get(name)
        inner = dtype.inner if isinstance(dtype, pl.List) else dtype  # type: ignore[union-attr]
        if inner == pl.String and name not in NOT_KEYWORD:
            found.append(name)
    return found


def over_long(name: str, schema: Schema) -> pl.Expr:
    """Whether a value of `name` on the row exceeds `ignore_above` (any, if multi-valued)."""
    if isinstance(schema[name], pl.List):
        return pl.col(name).list.eval(_too_long(pl.element())).list.any().fill_null(False)
    return _too_long(pl.col(name)).fill_null(False)


def _byte_long(name: str, schema: Schema) -> pl.Expr:
    """Whether a value of `name` has more than `ignore_above` bytes (any, if multi-valued)."""
    if isinstance(schema[name], pl.List):
        long = pl.col(name).list.eval(pl.element().str.len_bytes() > IGNORE_ABOVE).list.any()
    else:
        long = pl.col(name).str.len_bytes() > IGNORE_ABOVE
    return long.fill_null(False)


def indexed_values(name: str, schema: Schema) -> pl.Expr:
    """The values of `name` that Elasticsearch indexes (the others are missing), as
    `MASKED.format(name)`."""
    column = pl.col(name)
    if isinstance(schema[name], pl.List):
        kept = column.list.eval(pl.element().filter(~_too_long(pl.element()).fill_null(False)))
    else:
        kept = pl.when(~_too_long(column).fill_null(False)).then(column)
    return kept.alias(MASKED.format(name))


def renamed(node: Node, columns: Mapping[str, str]) -> Node:
    """`node` reading `columns[f]` wherever it reads field `f`."""
    match node:
        case And(operands=ops):
            return And(tuple(renamed(op, columns) for op in ops))
        case Or(operands=ops):
            return Or(tuple(renamed(op, columns) for op in ops))
        case Not(operand=inner):
            return Not(renamed(inner, columns))
        case BoolLiteral():
            return node
        case Wildcard() | Compare() | InSet() | StringTest() | Length():
            return _with_field(node, columns.get(node.field, node.field))
    raise TypeError(f"cannot rename the fields of {node!r}")


def _with_field(node: Node, field: str) -> Node:
    from dataclasses import replace

    return replace(node, field=field)  # type: ignore[type-var]


@dataclass(frozen=True)
class CompatRule:
    """One rule's two verdicts over a normalized input (`schema`)."""

    query: EventQuery
    exclusion: Node | None
    schema: Schema

    @property
    def fields(self) -> list[str]:
        read = list(analysis.fields(self.query))
        if self.exclusion is not None:
            read += list(analysis.walk_fields(self.exclusion))
        return keyword_fields(read, self.schema)

    @property
    def columns(self) -> dict[str, str]:
        """Field -> the column of its indexed values."""
        return {f: MASKED.format(f) for f in self.fields}

    def candidates(self, written: pl.Expr) -> pl.Expr:
        """Rows on which the Elasticsearch verdict may hold: the query as written holds
        (before exceptions), or a field it does not require is over-long."""
        # A required field that is over-long is missing, so the query false; not so for a
        # multi-valued one, which may keep other values.
        required = {
            f
            for f in analysis.required_fields(self.query)
            if not isinstance(self.schema.get(f), pl.List)
        }
        # More bytes than 1,024 is necessary for more UTF-16 code units (and cheap: the byte
        # length is stored): a superset of the rows, which is all a candidate needs to be.
        loose = [_byte_long(f, self.schema) for f in self.fields if f not in required]
        return pl.any_horizontal([written, *loose]) if loose else written

    def elastic(self) -> tuple[pl.Expr, pl.Expr]:
        """(the query holds, an exception drops it) as Elasticsearch decides them, over the
        indexed values; for the candidate rows only (their cost is the query's)."""
        columns = self.columns
        schema = {**self.schema, **{columns[f]: self.schema[f] for f in columns}}
        query = EventQuery(self.query.category, renamed(self.query.condition, columns))
        holds = compile_query(query, schema).predicate.fill_null(False)
        if self.exclusion is None:
            return holds, pl.lit(False)
        dropped = compile_node(renamed(self.exclusion, columns), schema).fill_null(False)
        return holds, dropped


def invariant(node: Node, keywords: set[str]) -> bool:
    """Whether `node` gives the same verdict on a row and on the row's indexed values: a test
    of equality or membership with values short enough to be indexed (an over-long value
    equals none of them, before and after), or a node of such tests. Such top-level conjuncts
    filter the events once for both verdicts (and are pushed into the reader)."""
    match node:
        case Compare(field=f, op=op, value=v):
            if op not in ("==", "!=") and f in keywords:
                return False  # `f < "b"` holds on a long value, not on a missing one
            return not isinstance(v, str) or len(v.encode("utf-16-le")) // 2 <= IGNORE_ABOVE
        case InSet(values=values, case_insensitive=False):
            return all(
                not isinstance(v, str) or len(v.encode("utf-16-le")) // 2 <= IGNORE_ABOVE
                for v in values
            )
        case BoolLiteral():
            return True
        case Not(operand=inner):
            return invariant(inner, keywords)
        case And(operands=ops) | Or(operands=ops):
            return all(invariant(op, keywords) for op in ops)
    return False


def shared_prefilter(queries: Sequence[EventQuery], schema: Schema) -> pl.Expr:
    """The top-level conjuncts every query has that both verdicts share (`invariant`)."""
    conjunct_lists = [top_level_conjuncts(q) for q in queries]
    keywords = set(keyword_fields([f for q in queries for f in analysis.fields(q)], schema))
    first, *others = conjunct_lists
    shared = [c for c in first if invariant(c, keywords) and all(c in other for other in others)]
    if not shared:
        return pl.lit(True)
    return pl.all_horizontal([compile_node(c, schema).fill_null(False) for c in shared])
