"""Rules compiled together share their patterns: each distinct pattern is compiled into one
native matcher and matched once per batch, whatever the number of rules that test it (311 and
316 share every CallTrace, TargetImage and source-image pattern but 316's two sysfer ones)."""

from __future__ import annotations

from collections import Counter

import polars as pl
import pytest
from test_semantics import WORKED_CASES, event_frame

from callsweep.rules.analysis import walk_fields
from callsweep.rules.ast import And, Node, Not, Or, Wildcard
from callsweep.rules.compile import compile_query, folded
from callsweep.rules.model import find_rule
from callsweep.rules.shared import RULES_COLUMN, compile_rules
from callsweep.rules.siblings import sibling_rules
from callsweep.wildcard import COUNTS, matcher


def kernel_patterns(node: Node) -> list[tuple[str, str]]:
    """(field, pattern) of every case-insensitive wildcard test of a condition, with repeats."""
    match folded(node):
        case And(operands=ops) | Or(operands=ops):
            return [p for op in ops for p in kernel_patterns(op)]
        case Not(operand=inner):
            return kernel_patterns(inner)
        case Wildcard(field=f, patterns=ps, case_sensitive=False):
            return [(f, p) for p in ps]
    return []


def one_pass(rules, frame: pl.DataFrame) -> pl.DataFrame:
    """Every rule's verdict on every row, compiled together and run as one batch."""
    COUNTS.clear()
    matcher.cache_clear()
    schema = dict(frame.schema)
    compiled = compile_rules([r.query for r in rules], schema)
    return (
        frame.lazy()
        .filter(compiled.prefilter)
        .with_columns(compiled.each.alias(RULES_COLUMN))
        .select(
            pl.col("winlog.record_id"),
            *(compiled.holds(i).alias(str(i)) for i in range(len(rules))),
        )
        .collect(engine="in-memory")
    )


@pytest.fixture(scope="module")
def events() -> pl.DataFrame:
    # The cases over one schema with every field (a field absent from the input folds its
    # tests to constants, which compile no pattern).
    cases = [c for c in WORKED_CASES if not c.absent and not c.dtypes]
    frame = event_frame(cases)
    assert {"winlog.event_data.CallTrace", "process.executable"} <= set(frame.columns)
    return frame


@pytest.mark.parametrize(
    "rules",
    [
        pytest.param([find_rule("2dd480be@311"), find_rule("2dd480be@316")], id="311+316"),
        pytest.param(sibling_rules(10), id="10 siblings"),
    ],
)
def test_each_distinct_pattern_is_compiled_and_matched_once(events: pl.DataFrame, rules) -> None:
    verdicts = one_pass(rules, events)
    tests = [p for r in rules for p in kernel_patterns(r.query.condition)]
    distinct = {pattern for _, pattern in tests}
    # Rule by rule the shared patterns would be compiled and matched once per rule.
    assert len(tests) > len(distinct)
    assert COUNTS.compiled == Counter(dict.fromkeys(distinct, 1))
    assert COUNTS.evaluated == Counter(dict.fromkeys(distinct, 1))
    # And the verdicts are the rules' own, compiled one at a time.
    for i, rule in enumerate(rules):
        alone = compile_query(rule.query, dict(events.schema))
        want = events.filter(alone.prefilter).filter(alone.condition)["winlog.record_id"]
        got = verdicts.filter(pl.col(str(i)))["winlog.record_id"]
        assert got.to_list() == want.to_list(), rule.name


def test_311_and_316_match_the_ntdll_patterns_once() -> None:
    rules = [find_rule("2dd480be@311"), find_rule("2dd480be@316")]
    fields = {f for r in rules for f in walk_fields(r.query.condition)}
    schema = {f: pl.String() for f in fields if f != "event.category"}
    schema["event.category"] = pl.List(pl.String())
    compiled = compile_rules([r.query for r in rules], schema)
    call_trace = [g.patterns for g in compiled.groups if g.field == "winlog.event_data.CallTrace"]
    assert call_trace == [
        (
            "?:\\WINDOWS\\SYSTEM32\\ntdll.dll*",
            "?:\\WINDOWS\\SysWOW64\\ntdll.dll*",
            "?:\\Windows\\System32\\wow64cpu.dll*",
            "?:\\WINDOWS\\System32\\wow64win.dll*",
            "?:\\Windows\\System32\\win32u.dll*",
        ),
        (
            "?:\\Windows\\System32\\sysfer.dll*",
            "?:\\ProgramData\\Symantec\\Symantec Endpoint Protection\\*\\sysfer.dll*",
        ),
    ]
    # The five both rules test are matched once, a program both rules read; every other
    # group but 316's sysfer one too.
    assert len(compiled.shared) == len({g.column for g in compiled.groups}) - 1
    assert call_trace[0] == compiled.shared[0].patterns


@pytest.mark.parametrize("n", [2, 10])
def test_the_filter_is_some_rule_holding(events: pl.DataFrame, n: int) -> None:
    """`any` (the filter pushed into the reader) keeps exactly the rows some rule holds on,
    and there `each` gives every rule's own verdict."""
    rules = sibling_rules(n)
    schema = dict(events.schema)
    compiled = compile_rules([r.query for r in rules], schema)
    verdicts = one_pass(rules, events)
    some = verdicts.filter(pl.any_horizontal(pl.exclude("winlog.record_id")))
    kept = (
        events.lazy()
        .filter(compiled.prefilter)
        .filter(compiled.any)
        .with_columns(compiled.each.alias(RULES_COLUMN))
        .select(pl.col("winlog.record_id"), *(compiled.holds(i).alias(str(i)) for i in range(n)))
        .collect(engine="in-memory")
    )
    assert some.height > 0
    assert kept.equals(some)
