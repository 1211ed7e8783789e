"""Worked cases for every operator and function of the EQL subset, with the verdict
Elasticsearch gives (SEMANTICS.md style: the event, the condition, ALERT or -).

Sources for the verdicts: the Elasticsearch EQL syntax reference (`like` is case-sensitive,
`like~`, `:` and `in~` fold case; `!=` is a `must_not` of the term query and so holds on a
missing field; `startsWith` / `endsWith` / `stringContains` are case-sensitive unless written with
`~`; `?field` marks an optional field) and Lucene's case-insensitive automata, which fold ASCII
letters only (so the Kelvin sign U+212A is not `k`).
"""

from __future__ import annotations

import re

import polars as pl
import pytest

from callsweep.rules.compile import compile_query
from callsweep.rules.eql import EqlSyntaxError, parse_query

ALERT, NO = True, False

# One event per name; `s` a keyword, `n` a number, `l` a multi-valued keyword.
EVENTS: dict[str, dict[str, object]] = {
    "upper": {"s": r"C:\Windows\Ntdll.DLL", "n": 10, "l": ["alpha", "Beta"]},
    "lower": {"s": r"c:\windows\ntdll.dll", "n": 3, "l": ["gamma"]},
    "kelvin": {"s": "\u212aernel", "n": -1, "l": []},
    "star": {"s": "a*b?c", "n": 0, "l": ["x*y"]},
    "newline": {"s": "a\nb", "n": 1024, "l": None},
    "missing": {"s": None, "n": None, "l": None},
}

CASES: list[tuple[str, str, bool]] = [
    # like: case-sensitive whole-value wildcard
    (r's like "C:\\Windows\\*"', "upper", ALERT),
    (r's like "C:\\Windows\\*"', "lower", NO),
    (r's like ("x", "?:\\windows\\ntdll.dll")', "lower", ALERT),
    ('s like "a?b"', "newline", ALERT),  # ? covers a line break
    ('s like "a*"', "missing", NO),
    ('s like "a*b?c"', "star", ALERT),
    ('l like "Beta"', "upper", ALERT),  # any value of a multi-valued field
    ('l like "beta"', "upper", NO),
    # like~ and `:`: ASCII case folded only
    (r's like~ "C:\\WINDOWS\\NTDLL.dll"', "lower", ALERT),
    (r's : "c:\\windows\\ntdll.dll"', "upper", ALERT),
    ('s like~ "kernel"', "kelvin", NO),
    ('s : "?ernel"', "kelvin", ALERT),
    # in / in~
    (r's in ("C:\\Windows\\Ntdll.DLL")', "upper", ALERT),
    (r's in ("c:\\windows\\ntdll.DLL")', "upper", NO),
    (r's in~ ("c:\\windows\\ntdll.DLL", "zzz")', "upper", ALERT),
    ('s in~ ("kernel")', "kelvin", NO),
    ('s in~ ("x")', "missing", NO),
    ('s not in~ ("x")', "missing", ALERT),
    ('l in~ ("BETA")', "upper", ALERT),
    ('l in ("x*y")', "star", ALERT),  # `in` compares exactly: `*` is literal
    # != is a must_not: true on a missing field
    ('s != "a*b?c"', "star", NO),
    ('s != "a*b?c"', "upper", ALERT),
    ('s != "a*b?c"', "missing", ALERT),
    ("n != 10", "missing", ALERT),
    ("n != 10", "upper", NO),
    # numeric comparisons on a number field
    ("n > 3", "upper", ALERT),
    ("n > 3", "lower", NO),
    ("n >= 3", "lower", ALERT),
    ("n < 0", "kelvin", ALERT),
    ("n <= 1024", "newline", ALERT),
    ("n > -5", "missing", NO),
    ('n == "10"', "upper", ALERT),  # the number is indexed as its text in a keyword
    # keyword comparisons order by code point (UTF-8 bytes)
    ('s > "a"', "star", ALERT),
    ('s > "a"', "upper", NO),  # "C" < "a"
    ('s < "b"', "newline", ALERT),
    ('s >= "zz"', "missing", NO),
    # startsWith / endsWith / stringContains, case-sensitive; ~ folds ASCII
    ('startsWith(s, "C:")', "upper", ALERT),
    ('startsWith(s, "c:")', "upper", NO),
    ('startsWith~(s, "c:")', "upper", ALERT),
    ('endsWith(s, ".dll")', "lower", ALERT),
    ('endsWith(s, ".dll")', "upper", NO),
    ('endsWith~(s, ".dll")', "upper", ALERT),
    ('stringContains(s, "*b?")', "star", ALERT),  # literal, not a wildcard
    ('stringContains(s, "*b?")', "upper", NO),
    ('stringContains(s, "NTDLL")', "upper", NO),
    ('stringContains~(s, "NTDLL")', "upper", ALERT),
    ('stringContains~(s, "kern")', "kelvin", NO),
    ('startsWith(s, "")', "upper", ALERT),
    ('startsWith(s, "")', "missing", NO),
    ('not startsWith(s, "x")', "missing", ALERT),
    ('stringContains(l, "amm")', "lower", ALERT),
    # length(): characters; a missing field's length is null, so no comparison holds
    ("length(s) != 5", "star", NO),
    ("length(s) != 4", "star", ALERT),
    ("length(s) != 4", "missing", NO),
    ("length(s) == 6", "kelvin", ALERT),  # U+212A is one character (three UTF-8 bytes)
    # ?field: optional field, read as the field
    ('?s : "a*"', "star", ALERT),
    ('?s : "a*"', "missing", NO),
    ('?nope == "x"', "upper", NO),
    ('not ?nope : "x"', "upper", ALERT),
]


def _frame() -> pl.DataFrame:
    return pl.DataFrame(
        [EVENTS[name] for name in EVENTS],
        schema={"s": pl.String, "n": pl.Int64, "l": pl.List(pl.String)},
        orient="row",
    )


def verdicts(condition: str) -> dict[str, bool]:
    frame = _frame()
    query = parse_query(f"any where {condition}")
    compiled = compile_query(query, frame.schema)
    held = frame.with_columns(compiled.predicate.fill_null(False).alias("held"))["held"]
    return dict(zip(EVENTS, held.to_list(), strict=True))


@pytest.mark.parametrize(("condition", "event", "verdict"), CASES)
def test_worked_case(condition: str, event: str, verdict: bool) -> None:
    assert verdicts(condition)[event] is verdict


# The field `s` where a condition reads it (not inside a string, not `startsWith`'s `s`).
_FIELD_S = re.compile(r'(?<![\w"\\])s(?=[\s,)])')


@pytest.mark.parametrize("condition", sorted({c for c, _, _ in CASES if _FIELD_S.search(c)}))
def test_a_missing_field_is_missing_whole(condition: str) -> None:
    """The same test on a field the input does not have at all gives what it gives on a row
    where the field is null (the compiler folds such tests to constants)."""
    frame = _frame()
    renamed = _FIELD_S.sub("absent_s", condition, count=1)
    query = parse_query(f"any where {renamed}")
    predicate = compile_query(query, frame.schema).predicate.fill_null(False)
    whole = frame.with_columns(predicate.alias("held"))["held"]
    assert set(whole.to_list()) == {verdicts(condition)["missing"]}


def test_a_number_against_a_text_field_is_refused() -> None:
    frame = _frame()
    with pytest.raises(ValueError, match=r"s > 4: a number compared with a text field"):
        compile_query(parse_query("any where s > 4"), frame.schema)


@pytest.mark.parametrize(
    ("text", "column", "needle"),
    [
        ('any where s in~ ("a*")', 18, "'*' and '?' in the value of a case-insensitive (~) test"),
        ('any where startsWith~(s, "a?")', 26, "'*' and '?' in the value"),
        ("any where s in~ (1)", 18, "a case-insensitive test takes strings only, not '1'"),
        ('any where startsWith(s, "a", "b")', 28, "with more than one string is not supported"),
        ("any where startsWith(s, 1)", 25, "startsWith() takes a string, not '1'"),
        ('any where startswith(s, "a")', 11, "unsupported function startswith"),
        ('any where s regex "a.*"', 13, "the 'regex' operator is not supported"),
        ('any where s :~ "a"', 14, "':~' is not supported"),
        ('any where s == "a" | head 1', 20, "pipes ('|') are not supported"),
        ('sequence [any where s == "a"]', 1, "sequence queries are not supported"),
        ('any where s regex~ "a"', 13, "case-insensitive 'regex~' is not supported"),
        ('any where cidrMatch(s, "10.0.0.0/8")', 11, "unsupported function cidrMatch"),
    ],
)
def test_refusals_point_at_the_construct(text: str, column: int, needle: str) -> None:
    with pytest.raises(EqlSyntaxError) as info:
        parse_query(text)
    assert (info.value.line, info.value.column) == (1, column)
    assert needle in info.value.reason
