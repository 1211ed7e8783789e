"""Several rules compiled together, so that what they have in common is computed once.

Sibling rules repeat each other: every direct-syscall variant tests `event.code == "10"` and
`host.os.type == "windows"`, and 311, 316 and most siblings test CallTrace against the same five
ntdll / WOW64 / win32u patterns (316 adds two sysfer patterns to them). Compiled one rule at a
time, each rule re-tests the shared conjuncts and runs its own native matcher over CallTrace.

Here:

* The cheap top-level conjuncts every rule has become one filter, applied once (polars pushes
  it into the Parquet reader); each rule keeps only its other conjuncts.
* Every case-insensitive wildcard test (`:`, `like~`, and `in~` / the `~` functions, which
  `compile.folded` turns into wildcards) is split over the distinct patterns of its field: the
  patterns of a field are grouped by the set of tests they appear in, so that each distinct
  pattern lies in exactly one group, and a test is the `or` of its groups. Each group is
  compiled into one native matcher. A group several tests use is matched once per row (once
  per distinct value of a dictionary column) into a boolean column, before the rules run; a
  group only one test uses stays in that test, inside its rule's native program, where it is
  matched only on the rows the earlier conjuncts left. 311 and 316 together match the five
  ntdll patterns once, and 316's two sysfer patterns only where the ntdll ones did not match.
* Each rule is then one native program with short-circuits (`compile.compile_program`) over
  those columns, its own wildcards and its other leaves (polars expressions; those several
  rules share are equal expressions, which polars computes once).

A single rule is compiled as `compile.compile_query` does it (one native program with
short-circuits), which is cheaper when nothing is shared.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import polars as pl

from callsweep.rules.ast import And, EventQuery, Node, Not, Or, Wildcard
from callsweep.rules.compile import (
    BooleanColumn,
    Schema,
    compile_query,
    compile_rule_set,
    compile_shared_prefilter,
    folded,
    query_conjuncts,
    shared_conjuncts,
)

# The name of the k-th pattern group (a shared program of the native rules, when several tests
# use it).
MATCH_COLUMN = "callsweep.scan.match.{}"
# The struct column of every rule's verdict (`CompiledRules.each`; dropped before alerts).
RULES_COLUMN = "callsweep.scan.rules"


@dataclass(frozen=True)
class PatternGroup:
    """Patterns of one field that appear in exactly the same tests: one matcher, one column."""

    field: str
    patterns: tuple[str, ...]
    column: str


@dataclass(frozen=True)
class CompiledRules:
    """`prefilter` keeps the rows every rule may hold on; `any` is whether some rule holds
    there (a filter, which polars pushes into the reader with the prefilter); `each` every
    rule's value, as a struct column to be named `RULES_COLUMN` (`holds(i)` reads rule i's:
    never null). `each` is meant for the rows `any` left: there it costs least."""

    prefilter: pl.Expr
    any: pl.Expr
    each: pl.Expr
    groups: tuple[PatternGroup, ...] = ()
    # The groups that several tests use: matched once per row, inside the native program.
    shared: tuple[PatternGroup, ...] = ()

    @staticmethod
    def holds(i: int) -> pl.Expr:
        return pl.col(RULES_COLUMN).struct.field(str(i))


def compile_rules(queries: list[EventQuery], schema: Schema) -> CompiledRules:
    """The queries of several rules over one input, sharing their filter and their patterns."""
    schema = {name: dtype for name, dtype in schema.items() if dtype != pl.Null}
    if len(queries) == 1:
        compiled = compile_query(queries[0], schema)
        condition = compiled.condition.fill_null(False)
        return CompiledRules(compiled.prefilter, condition, pl.struct(condition.alias("0")))
    shared = shared_conjuncts(queries)
    rests = [[_folded_tree(c) for c in query_conjuncts(q) if c not in shared] for q in queries]
    groups, columns_of = _pattern_groups([c for rest in rests for c in rest], schema)
    # A group that only one test uses stays in that test, inside its rule's program, where it
    # is matched only on the rows the earlier conjuncts left; a group that several tests use
    # is a shared program, matched at most once per row, on the rows some rule asks it for.
    uses = Counter(
        c
        for rest in rests
        for node in rest
        for t in _kernel_wildcards(node, schema)
        for c in columns_of[(t.field, frozenset(t.patterns))]
    )
    precomputed = tuple(g for g in groups if uses[g.column] > 1)
    by_column = {g.column: g for g in groups}
    programs = [
        [_with_columns(c, schema, columns_of, by_column, uses) for c in rest] for rest in rests
    ]
    tests = {g.column: Wildcard(g.field, g.patterns) for g in precomputed}
    any_rule, each_rule = compile_rule_set(programs, tests, schema)
    return CompiledRules(
        compile_shared_prefilter(queries, schema),
        any_rule,
        each_rule,
        tuple(groups),
        precomputed,
    )


def _folded_tree(node: Node) -> Node:
    """`node` with every case-insensitive test written as the wildcard that decides it."""
    match node:
        case And(operands=ops):
            return And(tuple(_folded_tree(op) for op in ops))
        case Or(operands=ops):
            return Or(tuple(_folded_tree(op) for op in ops))
        case Not(operand=inner):
            return Not(_folded_tree(inner))
    return folded(node)


def _kernel_wildcards(node: Node, schema: Schema):
    """The case-insensitive wildcard tests on fields of the input, in order, with repeats."""
    match node:
        case And(operands=ops) | Or(operands=ops):
            for op in ops:
                yield from _kernel_wildcards(op, schema)
        case Not(operand=inner):
            yield from _kernel_wildcards(inner, schema)
        case Wildcard(field=f, case_sensitive=False) if f in schema:
            yield node


def _pattern_groups(
    nodes: list[Node], schema: Schema
) -> tuple[list[PatternGroup], dict[tuple[str, frozenset[str]], list[str]]]:
    """Per field, its distinct patterns grouped by the distinct tests (pattern sets) holding
    them, in first-use order, so that each pattern is in one group; and for each test, the
    columns of the groups it is the union of."""
    tests: dict[str, list[frozenset[str]]] = {}
    order: dict[str, dict[str, None]] = {}
    for node in nodes:
        for test in _kernel_wildcards(node, schema):
            sets = tests.setdefault(test.field, [])
            if frozenset(test.patterns) not in sets:
                sets.append(frozenset(test.patterns))
            order.setdefault(test.field, {}).update(dict.fromkeys(test.patterns))
    groups: list[PatternGroup] = []
    for field, patterns in order.items():
        by_signature: dict[tuple[int, ...], list[str]] = {}
        for pattern in patterns:
            signature = tuple(i for i, s in enumerate(tests[field]) if pattern in s)
            by_signature.setdefault(signature, []).append(pattern)
        for members in by_signature.values():
            groups.append(PatternGroup(field, tuple(members), MATCH_COLUMN.format(len(groups))))
    columns_of = {
        (field, test): [g.column for g in groups if g.field == field and test >= set(g.patterns)]
        for field, sets in tests.items()
        for test in sets
    }
    return groups, columns_of


def _with_columns(
    node: Node,
    schema: Schema,
    columns_of: dict[tuple[str, frozenset[str]], list[str]],
    groups: dict[str, PatternGroup],
    uses: Counter[str],
) -> Node:
    """`node` with each wildcard test written over its pattern groups: the precomputed ones as
    their columns, first, then one wildcard of the patterns of the others."""
    match node:
        case And(operands=ops):
            return And(tuple(_with_columns(op, schema, columns_of, groups, uses) for op in ops))
        case Or(operands=ops):
            return Or(tuple(_with_columns(op, schema, columns_of, groups, uses) for op in ops))
        case Not(operand=inner):
            return Not(_with_columns(inner, schema, columns_of, groups, uses))
        case Wildcard(field=f, patterns=patterns, case_sensitive=False) if f in schema:
            columns = columns_of[(f, frozenset(patterns))]
            parts: list[Node] = [BooleanColumn(c) for c in columns if uses[c] > 1]
            own = [p for c in columns if uses[c] <= 1 for p in groups[c].patterns]
            if own:
                parts.append(Wildcard(f, tuple(own)))
            return parts[0] if len(parts) == 1 else Or(tuple(parts))
    return node
