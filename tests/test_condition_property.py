"""The compiled condition (polars expressions and the native short-circuit program) against a
plain reference evaluator written from SEMANTICS.md, on random queries and random events."""

from __future__ import annotations

import re

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from callsweep.rules.ast import And, BoolLiteral, Compare, Length, Node, Not, Or, Wildcard
from callsweep.rules.compile import compile_node, compile_program

ALPHABET = ["a", "A", "b", "\\", ":", "é", "K", "\u212a", "*", "?"]
FIELDS = {"s": pl.String(), "t": pl.String(), "l": pl.List(pl.String())}
ABSENT = "absent"  # a field no event has: every test on it sees a missing value

text = st.text(alphabet=ALPHABET, max_size=5)
pattern = st.text(alphabet=ALPHABET, max_size=4)
field_name = st.sampled_from([*FIELDS, ABSENT])

leaf = st.one_of(
    st.builds(Wildcard, field_name, st.lists(pattern, min_size=1, max_size=3).map(tuple)),
    st.builds(Compare, field_name, st.just("=="), text),
    st.builds(Length, field_name, st.sampled_from([">", ">=", "<", "=="]), st.integers(0, 3)),
    st.builds(BoolLiteral, st.booleans()),
)
query = st.recursive(
    leaf,
    lambda inner: st.one_of(
        st.builds(Not, inner),
        st.builds(And, st.lists(inner, min_size=2, max_size=3).map(tuple)),
        st.builds(Or, st.lists(inner, min_size=2, max_size=3).map(tuple)),
    ),
    max_leaves=6,
)
value = st.one_of(st.none(), text)
event = st.fixed_dictionaries(
    {"s": value, "t": value, "l": st.one_of(st.none(), st.lists(value, max_size=3))}
)


def glob_matches(p: str, v: str, fold: bool = True) -> bool:
    """Whole-value wildcard: `*` any run, `?` one character; `fold`: ASCII letters only (`re`
    with ASCII and IGNORECASE folds nothing else: not K, not é)."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in p)
    flags = re.DOTALL | (re.ASCII | re.IGNORECASE if fold else 0)
    return re.fullmatch(regex, v, flags) is not None


def values_of(event: dict, field: str) -> list:
    """The present values of a field: none when missing, several for a list."""
    v = event.get(field)
    if v is None:
        return []
    return [x for x in v if x is not None] if isinstance(v, list) else [v]


def reference(node: Node, event: dict) -> bool:
    match node:
        case And(operands=ops):
            return all(reference(op, event) for op in ops)
        case Or(operands=ops):
            return any(reference(op, event) for op in ops)
        case Not(operand=inner):
            return not reference(inner, event)
        case BoolLiteral(value=v):
            return v
        case Wildcard(field=f, patterns=ps):
            return any(glob_matches(p, v) for v in values_of(event, f) for p in ps)
        case Compare(field=f, value=x):
            return any(v == x for v in values_of(event, f))
        case Length(field=f, op=op, value=n):
            cmp = {">": int.__gt__, ">=": int.__ge__, "<": int.__lt__, "==": int.__eq__}[op]
            return any(cmp(len(v), n) for v in values_of(event, f))
    raise AssertionError(node)


@settings(max_examples=300, deadline=None)
@given(query, st.lists(event, min_size=1, max_size=8))
def test_compiled_condition_agrees_with_the_reference(node: Node, events: list[dict]):
    frame = pl.DataFrame(events, schema=FIELDS)
    want = [reference(node, e) for e in events]
    plain = frame.with_columns(compile_node(node, FIELDS).alias("v"))["v"].to_list()
    program = frame.with_columns(compile_program([node], FIELDS).alias("v"))["v"].to_list()
    assert plain == want
    assert program == want
