"""Tests moved onto a stored prefix column give the answers of the whole value (rules.prefix)."""

from __future__ import annotations

import re

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from callsweep.rules.ast import And, EventQuery, Length, Not, Or, Wildcard
from callsweep.rules.compile import compile_query
from callsweep.rules.eql import parse_query
from callsweep.rules.model import default_rule
from callsweep.rules.prefix import decidable_on_prefix, prefix_column, use_stored_prefixes

# Letters that fold (ASCII), one that does not (é), the frame separator, multi-byte characters.
VALUE_CHARS = st.sampled_from(["a", "A", "b", "é", "|", "😀", "\\"])
PATTERN_CHARS = st.sampled_from(["a", "A", "b", "é", "|", "😀", "\\", "*", "?"])


def reference_match(pattern: str, value: str) -> bool:
    """SEMANTICS.md's wildcard: whole value, `*` any run, `?` one character, ASCII-only case
    folding (Python's re with ASCII | IGNORECASE folds exactly ASCII letters)."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(body, value, re.ASCII | re.IGNORECASE | re.DOTALL) is not None


@settings(max_examples=3000, deadline=None)
@given(
    pattern=st.text(PATTERN_CHARS, max_size=7),
    value=st.text(VALUE_CHARS, max_size=10),
    chars=st.integers(1, 8),
)
def test_a_decidable_pattern_answers_on_the_prefix_as_on_the_value(pattern, value, chars):
    if decidable_on_prefix(pattern, chars):
        assert reference_match(pattern, value[:chars]) == reference_match(pattern, value)


def test_which_patterns_are_decidable():
    assert decidable_on_prefix("?:\\WINDOWS\\SYSTEM32\\ntdll.dll*", 64)
    assert decidable_on_prefix("abc**", 3)
    assert not decidable_on_prefix("abcd*", 3)
    assert not decidable_on_prefix("*\\ntdll.dll*", 64)
    assert not decidable_on_prefix("?:\\ProgramData\\Symantec\\*\\sysfer.dll*", 64)
    assert decidable_on_prefix("ab", 3) and not decidable_on_prefix("abc", 3)
    assert decidable_on_prefix("*", 1)


def test_the_rule_reads_the_prefix_for_every_call_trace_pattern():
    rule = default_rule()
    columns = {"winlog.event_data.CallTrace": pl.String, "winlog.event_data.CallTrace[:64]": 0}
    rewritten = use_stored_prefixes(rule.query, columns)
    text = repr(rewritten.condition)
    assert "Wildcard(field='winlog.event_data.CallTrace'" not in text
    assert "Length(field='winlog.event_data.CallTrace'" not in text
    assert "winlog.event_data.CallTrace[:64]" in text


def test_without_the_whole_column_nothing_moves():
    rule = default_rule()
    assert use_stored_prefixes(rule.query, {"winlog.event_data.CallTrace[:64]": 0}) == rule.query


def test_mixed_patterns_split_into_prefix_or_whole_value():
    query = parse_query('any where not f : ("ab*", "*b*", "abc")')
    rewritten = use_stored_prefixes(query, {"f": 0, "f[:2]": 0})
    assert rewritten.condition == Not(
        Or((Wildcard("f[:2]", ("ab*",)), Wildcard("f", ("*b*", "abc"))))
    )


def test_length_moves_only_below_the_prefix_length():
    query = parse_query("any where length(f) > 1 and length(f) >= 3")
    rewritten = use_stored_prefixes(query, {"f": 0, "f[:3]": 0})
    assert rewritten.condition == And((Length("f[:3]", ">", 1), Length("f", ">=", 3)))


CONDITIONS = st.recursive(
    st.builds(
        Wildcard,
        st.just("f"),
        st.lists(st.text(PATTERN_CHARS, max_size=5), min_size=1, max_size=3).map(tuple),
    )
    | st.builds(
        Length, st.just("f"), st.sampled_from([">", ">=", "<", "<=", "=="]), st.integers(0, 5)
    ),
    lambda inner: (
        st.builds(Not, inner)
        | st.builds(And, st.lists(inner, min_size=2, max_size=3).map(tuple))
        | st.builds(Or, st.lists(inner, min_size=2, max_size=3).map(tuple))
    ),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(
    condition=CONDITIONS,
    values=st.lists(st.none() | st.text(VALUE_CHARS, max_size=8), min_size=1, max_size=12),
    chars=st.integers(1, 6),
)
def test_a_rewritten_query_selects_the_same_rows(condition, values, chars):
    frame = pl.DataFrame({"f": values}, schema={"f": pl.String})
    frame = frame.with_columns(pl.col("f").str.slice(0, chars).alias(prefix_column("f", chars)))
    query = EventQuery("any", condition)
    schema = dict(frame.schema)
    whole = frame.filter(compile_query(query, schema).predicate)
    on_prefix = frame.filter(compile_query(use_stored_prefixes(query, schema), schema).predicate)
    assert on_prefix.equals(whole)
