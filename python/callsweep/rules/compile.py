"""EQL syntax tree -> polars expressions, with Elasticsearch semantics.

Every leaf compiles to a boolean expression that is never null: a test on a missing field is
false, exactly as an Elasticsearch term/wildcard query does not match a document without the
field. So `not` is plain negation and there is no three-valued logic to leak through
(`not f : "x"` holds when `f` is missing, as a `must_not` does).

The compiler knows the input's schema: a field absent from it is missing on every row and its
tests fold to constants; a list column is a multi-valued field, where a test holds when any value
satisfies it.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import polars as pl

from callsweep import _native
from callsweep.rules.analysis import CATEGORY_FIELD
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
    Value,
    Wildcard,
)
from callsweep.wildcard import COUNTS, NATIVE_TYPES, kernel_input, wildcard

Schema = Mapping[str, pl.DataType]

_OPS: dict[str, Callable[[pl.Expr, object], pl.Expr]] = {
    "==": operator.eq,
    # Reached only by `length(f) != n`: a field's `!=` is the negated term query (see
    # `compile_node`), while a length is a script comparison, false on a missing field.
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


@dataclass(frozen=True)
class BooleanColumn:
    """A leaf computed before the condition runs: the boolean column `name`, never null (a
    test several rules share, evaluated once; see `rules.shared`)."""

    name: str


@dataclass(frozen=True)
class CompiledQuery:
    """The query as two filters: `prefilter` holds the cheap top-level conjuncts (equality and
    membership tests, which polars pushes into the Parquet reader and its statistics), and
    `condition` the rest. Both together are the whole query. They are filters: the prefilter
    may be null where the query is false (a filter drops the row either way)."""

    prefilter: pl.Expr
    condition: pl.Expr

    @property
    def predicate(self) -> pl.Expr:
        return self.prefilter & self.condition


def folded(node: Node) -> Node:
    """A case-insensitive test (`in~`, the `~` functions) as the kernel wildcard that decides
    it exactly: the parser refused values holding `*` or `?`, so every character of a pattern
    stands for itself, ASCII case folded."""
    match node:
        case InSet(field=f, values=values, case_insensitive=True):
            return Wildcard(f, tuple(str(v) for v in values))
        case StringTest(field=f, kind=kind, value=v, case_insensitive=True):
            pattern = {"starts": f"{v}*", "ends": f"*{v}", "contains": f"*{v}*"}[kind]
            return Wildcard(f, (pattern,))
    return node


def compile_query(query: EventQuery, schema: Schema) -> CompiledQuery:
    # A column of the Null type holds no value on any row: the field is missing throughout.
    schema = {name: dtype for name, dtype in schema.items() if dtype != pl.Null}
    conjuncts = query_conjuncts(query)
    cheap = [c for c in conjuncts if _is_cheap(c)]
    rest = [c for c in conjuncts if not _is_cheap(c)]
    return CompiledQuery(
        prefilter=all_of([_filter_conjunct(c, schema) for c in cheap]),
        condition=compile_program(rest, schema),
    )


def query_conjuncts(query: EventQuery) -> list[Node]:
    """The query's top-level conjuncts, its category test first (none for `any`)."""
    conjuncts: list[Node] = []
    if query.category != "any":
        conjuncts.append(InSet(CATEGORY_FIELD, (query.category,)))
    cond = query.condition
    conjuncts.extend(cond.operands if isinstance(cond, And) else (cond,))
    return conjuncts


def compile_shared_prefilter(queries: list[EventQuery], schema: Schema) -> pl.Expr:
    """The cheap top-level conjuncts every one of `queries` has (sibling rules share
    `event.code == "10"` and the host test), as one filter: several rules in one pass read and
    filter the events once, and polars pushes it into the reader as for a single rule."""
    schema = {name: dtype for name, dtype in schema.items() if dtype != pl.Null}
    return all_of([_filter_conjunct(c, schema) for c in shared_conjuncts(queries)])


def shared_conjuncts(queries: list[EventQuery]) -> list[Node]:
    """The cheap top-level conjuncts (category included) that every one of `queries` has."""
    first, *others = [query_conjuncts(q) for q in queries]
    return [c for c in first if _is_cheap(c) and all(c in other for other in others)]


def _filter_conjunct(node: Node, schema: Schema) -> pl.Expr:
    """A top-level conjunct as a filter: there a null drops the row as false does, so a
    positive equality needs no `fill_null(False)`, and without it polars skips row groups by
    their statistics (measured: 27 ms -> 8 ms to find the event-10 rows of 5M events in
    callsweep's layout)."""
    match node:
        case (
            Compare(field=f, op="==", value=v) | InSet(field=f, values=(v,), case_insensitive=False)
        ) if f in schema and v is not None:
            dtype = schema[f]
            if isinstance(dtype, pl.List) and _same_kind(dtype.inner, v):
                return pl.col(f).list.contains(v)
            if _same_kind(dtype, v):
                return pl.col(f) == v
    return compile_node(node, schema)


def compile_program(conjuncts: list[Node], schema: Schema) -> pl.Expr:
    """`c1 and c2 and ...` as one native program with short-circuits: a later conjunct is
    evaluated only on the rows the earlier ones left (polars would evaluate every conjunct on
    every row). Wildcards run in the Rust kernel on the raw columns; other leaves are computed
    by polars and handed over as boolean columns."""
    builder = _ProgramBuilder(schema)
    spec = ("and", [builder.build(c) for c in conjuncts])
    if not builder.columns:
        return all_of([compile_node(c, schema) for c in conjuncts])
    condition = _native.Condition(spec)
    COUNTS.compiled.update(builder.patterns)

    def evaluate(columns: list[pl.Series]) -> pl.Series:
        COUNTS.evaluated.update(builder.patterns)
        return pl.Series(condition.evaluate(_one_batch(columns)))

    return pl.map_batches(builder.columns, evaluate, return_dtype=pl.Boolean, is_elementwise=True)


def _one_batch(columns: list[pl.Series]) -> list[pl.Series]:
    """One chunk per column, so that rows line up across columns in the kernel; a column that
    folded to a constant arrives as one value and is repeated (also to no rows, when a filter
    before left none)."""
    rows = next((c.len() for c in columns if c.len() != 1), 1)
    columns = [c.new_from_index(0, rows) if c.len() != rows else c for c in columns]
    return [c.rechunk() for c in columns]


def compile_rule_set(
    rests: list[list[Node]], shared: Mapping[str, Node], schema: Schema
) -> tuple[pl.Expr, pl.Expr]:
    """Several rules, each given as its conjuncts, as one native program (`_native.Rules`):
    a `BooleanColumn` named in `shared` is that shared test, evaluated at most once per row
    and only on the rows some rule asks it for. Returns `(any, each)`: whether some rule holds
    (a filter: each rule is evaluated only where no rule before it held), and every rule's
    value as a struct of booleans, field `str(i)` rule i's (never null)."""
    dtype = pl.Struct({str(i): pl.Boolean() for i in range(len(rests))})
    builder = _ProgramBuilder(schema, list(shared))
    shared_specs = [builder.build(test) for test in shared.values()]
    specs = [("and", [builder.build(c) for c in rest]) for rest in rests]
    if not builder.columns:
        # No native leaf at all: constants and polars tests only.
        holds = [all_of([compile_node(c, schema) for c in rest]).fill_null(False) for rest in rests]
        return pl.any_horizontal(holds), pl.struct(h.alias(str(i)) for i, h in enumerate(holds))
    rules = _native.Rules(shared_specs, specs)
    COUNTS.compiled.update(builder.patterns)

    def any_rule(columns: list[pl.Series]) -> pl.Series:
        COUNTS.evaluated.update(builder.patterns)
        return pl.Series(rules.any(_one_batch(columns)))

    def each_rule(columns: list[pl.Series]) -> pl.Series:
        COUNTS.evaluated.update(builder.patterns)
        return pl.Series(rules.each(_one_batch(columns))).cast(dtype)

    return (
        pl.map_batches(builder.columns, any_rule, return_dtype=pl.Boolean, is_elementwise=True),
        pl.map_batches(builder.columns, each_rule, return_dtype=dtype, is_elementwise=True),
    )


class _ProgramBuilder:
    """Turns a syntax tree into the nested tuples `_native.Condition` reads, collecting the
    columns the program needs (each field read by wildcards once)."""

    def __init__(self, schema: Schema, shared: list[str] | None = None) -> None:
        self.schema = schema
        # `BooleanColumn`s that are shared programs of a `_native.Rules`, by index.
        self._shared = {name: k for k, name in enumerate(shared or [])}
        self.columns: list[pl.Expr] = []
        self._wildcard_columns: dict[str, int] = {}
        # Every pattern the program's wildcards hold (see `wildcard.COUNTS`).
        self.patterns: list[str] = []

    def build(self, node: Node) -> tuple:
        match folded(node):
            case And(operands=ops):
                return ("and", [self.build(op) for op in ops])
            case Or(operands=ops):
                return ("or", [self.build(op) for op in ops])
            case Not(operand=inner):
                return ("not", self.build(inner))
            case BoolLiteral(value=v):
                return ("const", v)
            case BooleanColumn(name=name) if name in self._shared:
                return ("shared", self._shared[name])
            case BooleanColumn(name=name):
                return ("column", self._add(pl.col(name)))
            case Wildcard(field=f, patterns=patterns, case_sensitive=case_sensitive):
                if f not in self.schema:
                    return ("const", False)
                if not case_sensitive:
                    self.patterns.extend(patterns)
                return ("like" if case_sensitive else "wildcard", self._field(f), list(patterns))
            case Compare(field=f, op="==", value=str(v)) if _native_strings(f, self.schema):
                # In the program rather than computed by polars on every row: `==` and `in`
                # then run only on the rows the earlier conjuncts left, and on a dictionary
                # column once per distinct value.
                return ("equals", self._field(f), [v])
            case InSet(field=f, values=values, case_insensitive=False) if (
                _native_strings(f, self.schema)
                and 0 < len(values) <= _NATIVE_SET_MAX
                and all(isinstance(v, str) for v in values)
            ):
                return ("equals", self._field(f), list(values))
            case _:
                return ("column", self._add(compile_node(node, self.schema)))

    def _field(self, name: str) -> int:
        """The column of `name` as the kernel reads it, added once per program."""
        if name not in self._wildcard_columns:
            column = kernel_input(pl.col(name), self.schema[name])
            self._wildcard_columns[name] = self._add(column)
        return self._wildcard_columns[name]

    def _add(self, expr: pl.Expr) -> int:
        # Rules in one program repeat leaves (`length(CallTrace) > 0`): each is read once.
        for i, known in enumerate(self.columns):
            if known.meta.eq(expr):
                return i
        self.columns.append(expr)
        return len(self.columns) - 1


# Up to this many values an `in` test is a list of literals in the kernel; a longer list is
# left to polars' hashed `is_in`.
_NATIVE_SET_MAX = 32


def _native_strings(field: str, schema: Schema) -> bool:
    """Whether `field` holds strings the kernel reads as they are (strings, categoricals, or
    lists of them), so that string equality there is byte equality, as in polars."""
    dtype = schema.get(field)
    if isinstance(dtype, pl.List):
        dtype = dtype.inner
    return dtype is not None and isinstance(dtype, NATIVE_TYPES)


def _is_cheap(node: Node) -> bool:
    match node:
        case InSet(case_insensitive=False) | Compare() | BoolLiteral():
            return True
        case Not(operand=inner):
            return _is_cheap(inner)
        case And(operands=ops) | Or(operands=ops):
            return all(_is_cheap(op) for op in ops)
        case _:
            return False


def all_of(exprs: list[pl.Expr]) -> pl.Expr:
    """`e1 and e2 and ...`; true for none."""
    if not exprs:
        return pl.lit(True)
    return exprs[0] if len(exprs) == 1 else pl.all_horizontal(exprs)


def compile_node(node: Node | BooleanColumn, schema: Schema) -> pl.Expr:
    if isinstance(node, BooleanColumn):
        return pl.col(node.name)
    match folded(node):
        case And(operands=ops):
            return pl.all_horizontal([compile_node(op, schema) for op in ops])
        case Or(operands=ops):
            return pl.any_horizontal([compile_node(op, schema) for op in ops])
        case Not(operand=inner):
            return ~compile_node(inner, schema)
        case BoolLiteral(value=v):
            return pl.lit(v)
        case Wildcard(field=f, patterns=patterns, case_sensitive=True):
            if f not in schema:
                return pl.lit(False)
            column, multi = _values_of(f, schema, "")
            return _any_value(f, multi, column.str.contains(like_regex(patterns)))
        case Wildcard(field=f, patterns=patterns):
            if f not in schema:
                return pl.lit(False)
            return wildcard(pl.col(f), patterns)
        case StringTest(field=f, kind=kind, value=v):
            if f not in schema:
                return pl.lit(False)
            column, multi = _values_of(f, schema, "")
            test = {
                "starts": lambda: column.str.starts_with(v),
                "ends": lambda: column.str.ends_with(v),
                "contains": lambda: column.str.contains(v, literal=True),
            }[kind]()
            return _any_value(f, multi, test)
        case Compare(field=f, op="!=", value=v):
            # Elasticsearch translates `!=` into a must_not of the term query: true when missing.
            return ~compile_node(Compare(f, "==", v), schema)
        case Compare(field=f, op=op, value=v):
            return _compare(f, op, v, schema)
        case InSet(field=f, values=values):
            return _in_set(f, values, schema)
        case Length(field=f, op=op, value=n):
            return _length(f, op, n, schema)
    raise TypeError(f"cannot compile {node!r}")


# Characters with a meaning in a Rust regex outside a class; every other one stands for itself.
_REGEX_META = frozenset("\\.+*?()|[]{}^$#&-~")


def like_regex(patterns: tuple[str, ...]) -> str:
    """EQL `like` patterns (case-sensitive, whole value; `*` any run, `?` one character) as one
    anchored regex; `(?s)` lets `*` and `?` cover line breaks, as they do in Elasticsearch."""

    def one(pattern: str) -> str:
        return "".join(
            ".*" if c == "*" else "." if c == "?" else f"\\{c}" if c in _REGEX_META else c
            for c in pattern
        )

    return "(?s)^(?:" + "|".join(one(p) for p in patterns) + ")$"


def _values_of(field: str, schema: Schema, value: Value) -> tuple[pl.Expr, bool]:
    """The column, cast so it compares with `value`, and whether it is multi-valued."""
    dtype = schema[field]
    column = pl.col(field)
    if isinstance(dtype, pl.List):
        inner = dtype.inner
        element = pl.element()
        if isinstance(value, str) and not isinstance(inner, pl.String):
            element = element.cast(pl.String)
        return element, True
    if isinstance(value, str) and not isinstance(dtype, pl.String):
        # A number indexed in a keyword field is its decimal text: `event.code == "10"` holds
        # for a numeric 10.
        column = column.cast(pl.String)
    return column, False


def _any_value(field: str, multi: bool, test: pl.Expr) -> pl.Expr:
    if multi:
        test = pl.col(field).list.eval(test).list.any()
    return test.fill_null(False)


def _compare(field: str, op: str, value: Value, schema: Schema) -> pl.Expr:
    if field not in schema:
        # `f == null` asks for a missing field; every other comparison needs a value.
        return pl.lit(value is None and op == "==")
    if value is None:
        if op != "==":
            raise ValueError(f"{field} {op} null: only == and != compare with null")
        return pl.col(field).is_null()
    dtype = schema[field]
    inner = dtype.inner if isinstance(dtype, pl.List) else dtype  # type: ignore[attr-defined]
    if isinstance(value, int | float) and not isinstance(value, bool) and inner == pl.String:
        # Elasticsearch compares a keyword field with a number only after a conversion this
        # subset does not reproduce; refused rather than guessed.
        raise ValueError(
            f"{field} {op} {value}: a number compared with a text field; write the value as a "
            f'string ("{value}") for keyword order'
        )
    column, multi = _values_of(field, schema, value)
    if multi and op == "==" and _same_kind(schema[field].inner, value):  # type: ignore[attr-defined]
        # `list.contains` answers without evaluating an expression per element.
        return pl.col(field).list.contains(value).fill_null(False)
    return _any_value(field, multi, _OPS[op](column, value))


def _same_kind(dtype: pl.DataType, value: Value) -> bool:
    if isinstance(value, str):
        return dtype == pl.String
    return isinstance(value, int | float) and not isinstance(value, bool) and dtype.is_numeric()


def _in_set(field: str, values: tuple[Value, ...], schema: Schema) -> pl.Expr:
    if field not in schema:
        return pl.lit(False)
    present = [v for v in values if v is not None]
    if len(present) == 1:
        return _compare(field, "==", present[0], schema)
    column, multi = _values_of(field, schema, present[0] if present else None)
    test = column.is_in(present) if present else pl.lit(False)
    return _any_value(field, multi, test)


def _length(field: str, op: str, n: int, schema: Schema) -> pl.Expr:
    if field not in schema:
        return pl.lit(False)  # length(missing) is null, and null > 0 does not hold
    column, multi = _values_of(field, schema, "")
    if (op, n) in ((">", 0), (">=", 1)):
        # Non-empty in characters is non-empty in bytes, and the byte length is stored, while
        # counting characters reads the whole value: CallTraces run to kilobytes.
        return _any_value(field, multi, column.str.len_bytes() > 0)
    return _any_value(field, multi, _OPS[op](column.str.len_chars(), n))
