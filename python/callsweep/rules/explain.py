"""Why an alert fired: the clauses of its rule that held on its event, in words a hunter reads.

`explanation(query, schema)` is a polars expression giving, per row, a list of strings: one per
top-level conjunct of the query (the category of `process where` included), each naming the
field, its value on this event (truncated) and what about it made the clause hold:

    event.code == "10"
    length(winlog.event_data.CallTrace) > 0: 412 characters
    winlog.event_data.CallTrace first frame "UNKNOWN(000001F3C35A0014)" matched no exclusion
      (5 patterns)
    winlog.event_data.TargetImage "C:\\Windows\\system32\\notepad.exe" matched no exclusion
      (4 patterns)

A CallTrace is shown by its first frame (the part before the first `|`): that is what the
direct-syscall rule's exclusions test, and the whole value runs to kilobytes. `or` says which
branch held (the first that did), `not` says why its operand failed (for `not (a and b)`, the
first operand that was false), `:` which pattern matched.

The expression is meant for rows on which the query holds: the scan adds it after its filter,
so it runs on alert rows only and costs nothing on the others. The truth of every sub-clause
comes from the same compiler as the scan (`compile_node`), so the words cannot disagree with
the verdict.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

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
from callsweep.rules.compat import IGNORE_ABOVE, over_long, renamed
from callsweep.rules.compile import compile_node
from callsweep.rules.compile import query_conjuncts as top_level_conjuncts

Schema = Mapping[str, pl.DataType]

# The alert column holding the explanation.
EXPLAIN = "callsweep.explain"
# Values are shown up to this many characters; longer ones end in "…".
SHOWN_CHARS = 120
# Lists of patterns or values are shown up to this many items.
SHOWN_ITEMS = 3

# Fields whose value is a `|`-joined stack, shown by its first frame.
_STACK_FIELDS = ("winlog.event_data.CallTrace",)
_VERBS = {"starts": "starts with", "ends": "ends with", "contains": "contains"}
_NEGATED_VERBS = {
    "starts": "does not start with",
    "ends": "does not end with",
    "contains": "does not contain",
}


def explanation(
    query: EventQuery,
    schema: Schema,
    exceptions: int = 0,
    columns: Mapping[str, str] | None = None,
) -> pl.Expr:
    """One line per top-level conjunct of `query`, as a list of strings, for rows on which
    `query` holds. `exceptions`: how many exception items could have dropped the alert (they
    did not, since it is an alert), said in a last line. `columns`: field -> the column its
    values are read from (the values Elasticsearch indexes, `rules.compat`); a field whose value
    was dropped gets a line saying so."""
    schema = {name: dtype for name, dtype in schema.items() if dtype != pl.Null}
    columns = dict(columns or {})
    schema = {**schema, **{columns[f]: schema[f] for f in columns if f in schema}}
    explainer = _Explainer(schema, columns)
    # The top-level conjuncts as the compiler splits them (the category first).
    lines = [explainer.held(c) for c in top_level_conjuncts(query)]
    for field in columns:
        lines.append(explainer.dropped(field))
    if exceptions:
        lines.append(pl.lit(f"no exception applied ({_count(exceptions, 'item')})"))
    listed = pl.concat_list([line.cast(pl.String) for line in lines])
    # A field whose values were all kept has no line (its entry is null).
    return listed.list.drop_nulls().alias(EXPLAIN)


def short_form(explained: pl.Expr) -> pl.Expr:
    """The explanation on one line, for the terminal table: without the plain equalities
    (`event.code == "10"`) and the exceptions line, which read the same on every alert of a
    rule, and with `winlog.event_data.` left out of field names."""
    constant = r"^[\w.@]+ == |^no exception applied"
    kept = explained.list.eval(pl.element().filter(~pl.element().str.contains(constant)))
    return kept.list.join("; ").str.replace_all("winlog.event_data.", "", literal=True)


class _Explainer:
    """Builds the string expression that says why a node held (`held`) or failed (`failed`)."""

    def __init__(self, schema: Schema, columns: Mapping[str, str]) -> None:
        self.schema = schema
        self.columns = columns

    def holds(self, node: Node) -> pl.Expr:
        return compile_node(renamed(node, self.columns), self.schema).fill_null(False)

    def dropped(self, field: str) -> pl.Expr:
        """A line for a field whose value Elasticsearch does not index (null otherwise)."""
        return pl.when(over_long(field, self.schema)).then(
            _concat(
                f"{field}: ",
                self._length(field, self.schema),
                f" characters, over "
                f"ignore_above {IGNORE_ABOVE}: not indexed, so missing to Elasticsearch",
            )
        )

    # -- why a node that holds holds ------------------------------------------------------
    def held(self, node: Node) -> pl.Expr:
        match node:
            case And(operands=ops):
                return _joined([self.held(op) for op in ops], " and ")
            case Or(operands=ops):
                return self._first(
                    [
                        (op, _concat(f"or branch {i + 1} of {len(ops)}: ", self.held(op)))
                        for i, op in enumerate(ops)
                    ]
                )
            case Not(operand=Wildcard() as inner):
                return self._no_exclusion(inner)
            case Not(operand=inner):
                return _concat(f"not ({outline(inner)}): ", self.failed(inner))
            case BoolLiteral(value=v):
                return pl.lit(str(v).lower())
            case (
                Compare(field=f, op="==", value=v)
                | InSet(field=f, values=(v,), case_insensitive=False)
            ):
                # The value is the literal (or, on a multi-valued field, one of its values).
                return pl.lit(f"{f} == {_literal(v)}")
            case Compare(field=f, op=op, value=v):
                return _concat(f"{f} ", self.shown(f), f" {op} {_literal(v)}")
            case InSet(field=f, values=values, case_insensitive=ci):
                op = "in~" if ci else "in"
                return _concat(f"{f} ", self.shown(f), f" {op} {_items(values)}")
            case Wildcard(field=f, patterns=patterns, case_sensitive=cs):
                verb = "like" if cs else "matches"
                matched = self._first(
                    [(Wildcard(f, (p,), cs), pl.lit(_literal(p))) for p in patterns]
                )
                return _concat(f"{f} ", self.shown(f), f" {verb} ", matched)
            case StringTest(field=f, kind=kind, value=v, case_insensitive=ci):
                fold = " (ASCII case folded)" if ci else ""
                return _concat(f"{f} ", self.shown(f), f" {_VERBS[kind]} {_literal(v)}{fold}")
            case Length(field=f, op=op, value=n):
                return _concat(f"length({f}) {op} {n}: ", self._length(f), " characters")
        raise TypeError(f"cannot explain {node!r}")

    # -- why a node that fails fails (it sits under a `not`) ------------------------------
    def failed(self, node: Node) -> pl.Expr:
        match node:
            case And(operands=ops):
                # The first operand that is false is enough to make the conjunction false.
                return self._first(
                    [(Not(op), self.failed(op)) for op in ops], default="(every operand held)"
                )
            case Or(operands=ops):
                return _joined([self.failed(op) for op in ops], " and ")
            case Not(operand=inner):
                return self.held(inner)
            case BoolLiteral(value=v):
                return pl.lit(str(v).lower())
            case Compare(field=f, op="!=", value=v):
                return pl.lit(f"{f} == {_literal(v)}")
            case Compare(field=f, op=op, value=v):
                what = "is not" if op == "==" else f"is not {op}"
                return _concat(f"{f} ", self.shown(f), f" {what} {_literal(v)}")
            case InSet(field=f, values=values, case_insensitive=ci):
                op = "in~" if ci else "in"
                return _concat(f"{f} ", self.shown(f), f" not {op} {_items(values)}")
            case Wildcard(field=f, patterns=patterns):
                return _concat(
                    f"{f} ", self.shown(f), f" matched none of {_count(len(patterns), 'pattern')}"
                )
            case StringTest(field=f, kind=kind, value=v):
                return _concat(f"{f} ", self.shown(f), f" {_NEGATED_VERBS[kind]} {_literal(v)}")
            case Length(field=f, op=op, value=n):
                return _concat(f"length({f}) {op} {n} fails: ", self._length(f), " characters")
        raise TypeError(f"cannot explain {node!r}")

    def _no_exclusion(self, node: Wildcard) -> pl.Expr:
        """`not f : (...)`: the value that no exclusion pattern matched (or the missing field,
        on which no exclusion can apply)."""
        if node.field not in self.schema:
            return pl.lit(f"{node.field} missing: no exclusion applies")
        text = self.shown(node.field)
        return (
            pl.when(self._value(node.field).is_null())
            .then(pl.lit(f"{node.field} missing: no exclusion applies"))
            .otherwise(
                _concat(
                    f"{node.field} ",
                    text,
                    f" matched no exclusion ({_count(len(node.patterns), 'pattern')})",
                )
            )
        )

    def _first(self, cases: list[tuple[Node, pl.Expr]], default: str = "?") -> pl.Expr:
        """The text of the first case whose node holds on the row."""
        chain = pl.when(self.holds(cases[0][0])).then(cases[0][1])
        for node, text in cases[1:]:
            chain = chain.when(self.holds(node)).then(text)
        return chain.otherwise(pl.lit(default))

    # -- values as text ----------------------------------------------------------------------
    def _value(self, field: str) -> pl.Expr:
        """The field's value as one string (a list's values joined), null when missing."""
        dtype = self.schema.get(field)
        if dtype is None:
            return pl.lit(None, dtype=pl.String)
        column = pl.col(self.columns.get(field, field))
        if isinstance(dtype, pl.List):
            if field in _STACK_FIELDS:
                return column.list.first().cast(pl.String)
            joined = column.list.eval(pl.element().cast(pl.String)).list.join(", ")
            return pl.when(column.list.len() > 0).then(_concat("[", joined, "]"))
        return column.cast(pl.String)

    def shown(self, field: str) -> pl.Expr:
        """`"value"` (truncated), `first frame "..."` for a stack, or `missing`."""
        value = self._value(field)
        if field in _STACK_FIELDS:
            value = value.str.extract(r"^([^|]*)")
            label = "first frame "
        else:
            label = ""
        cut = (
            pl.when(value.str.len_chars() > SHOWN_CHARS)
            .then(pl.concat_str([value.str.slice(0, SHOWN_CHARS), pl.lit("…")]))
            .otherwise(value)
        )
        dtype = self.schema.get(field)
        inner = dtype.inner if isinstance(dtype, pl.List) else dtype  # type: ignore[union-attr]
        if inner is not None and (inner.is_numeric() or inner == pl.Boolean):
            quoted = cut  # a number is shown as one
        else:
            quoted = pl.concat_str([pl.lit(f'{label}"'), cut, pl.lit('"')])
        return pl.when(value.is_null()).then(pl.lit("missing")).otherwise(quoted)

    def _length(self, field: str, schema: Schema | None = None) -> pl.Expr:
        """The value's length in characters, as text ("no" when missing)."""
        dtype = self.schema.get(field)
        if dtype is None:
            return pl.lit("no")
        column = pl.col(field if schema is not None else self.columns.get(field, field))
        if isinstance(dtype, pl.List):
            length = column.list.eval(pl.element().cast(pl.String).str.len_chars()).list.max()
        else:
            length = column.cast(pl.String).str.len_chars()
        return length.cast(pl.String).fill_null("no")


def outline(node: Node) -> str:
    """A node as short EQL text: pattern and value lists by their count past the first."""
    match node:
        case And(operands=ops):
            return " and ".join(_grouped(op) for op in ops)
        case Or(operands=ops):
            return " or ".join(_grouped(op) for op in ops)
        case Not(operand=inner):
            return f"not {_grouped(inner)}"
        case BoolLiteral(value=v):
            return str(v).lower()
        case Compare(field=f, op=op, value=v):
            return f"{f} {op} {_literal(v)}"
        case InSet(field=f, values=values, case_insensitive=ci):
            return f"{f} {'in~' if ci else 'in'} {_items(values)}"
        case Wildcard(field=f, patterns=patterns, case_sensitive=cs):
            op = "like" if cs else ":"
            if len(patterns) == 1:
                return f"{f} {op} {_literal(patterns[0])}"
            return f"{f} {op} ({_count(len(patterns), 'pattern')})"
        case StringTest(field=f, kind=kind, value=v, case_insensitive=ci):
            name = {"starts": "startsWith", "ends": "endsWith", "contains": "stringContains"}[kind]
            return f"{name}{'~' if ci else ''}({f}, {_literal(v)})"
        case Length(field=f, op=op, value=n):
            return f"length({f}) {op} {n}"
    raise TypeError(f"cannot outline {node!r}")


def _grouped(node: Node) -> str:
    return f"({outline(node)})" if isinstance(node, And | Or) else outline(node)


def _literal(value: Value) -> str:
    """A literal as the query writes it, backslashes shown once (as the value holds them)."""
    if isinstance(value, str):
        return f'"{value}"'
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _items(values: tuple[Value, ...]) -> str:
    shown = ", ".join(_literal(v) for v in values[:SHOWN_ITEMS])
    more = f", … {len(values)} values" if len(values) > SHOWN_ITEMS else ""
    return f"({shown}{more})"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _concat(*parts: str | pl.Expr) -> pl.Expr:
    return pl.concat_str([pl.lit(p) if isinstance(p, str) else p for p in parts])


def _joined(parts: list[pl.Expr], separator: str) -> pl.Expr:
    return pl.concat_str(parts, separator=separator)
