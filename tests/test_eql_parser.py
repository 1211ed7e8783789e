"""Tests of the EQL subset parser (`callsweep.rules.eql`): exact trees, exact values, exact
error positions."""

# The rule query and its expected patterns are copied verbatim, so some lines are long.
# ruff: noqa: E501

from __future__ import annotations

import random

import pytest

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
from callsweep.rules.eql import EqlSyntaxError, parse_query

# The query of the built-in rule, exactly as given in RULE.md (EQL `\\` is one backslash).
RULE_QUERY = r"""process where host.os.type == "windows" and event.code == "10" and
 length(winlog.event_data.CallTrace) > 0 and

 /* Sysmon CallTrace starting with unknown memory module instead of ntdll which host Windows NT Syscalls */
 not winlog.event_data.CallTrace :
            ("?:\\WINDOWS\\SYSTEM32\\ntdll.dll*",
             "?:\\WINDOWS\\SysWOW64\\ntdll.dll*",
             "?:\\Windows\\System32\\wow64cpu.dll*",
             "?:\\WINDOWS\\System32\\wow64win.dll*",
             "?:\\Windows\\System32\\win32u.dll*") and

 not winlog.event_data.TargetImage :
            ("?:\\Program Files (x86)\\Malwarebytes Anti-Exploit\\mbae-svc.exe",
             "?:\\Program Files\\Cisco\\AMP\\*\\sfc.exe",
             "?:\\Program Files (x86)\\Microsoft\\EdgeWebView\\Application\\*\\msedgewebview2.exe",
             "?:\\Program Files\\Adobe\\Acrobat DC\\Acrobat\\*\\AcroCEF.exe") and

 not (process.executable : ("?:\\Program Files\\Adobe\\Acrobat DC\\Acrobat\\Acrobat.exe",
                            "?:\\Program Files (x86)\\World of Warcraft\\_classic_\\WowClassic.exe") and
      not winlog.event_data.TargetImage : "?:\\WINDOWS\\system32\\lsass.exe")
"""

# Python raw strings: one backslash each, as the parsed values must be.
RULE_TREE = EventQuery(
    category="process",
    condition=And(
        (
            Compare("host.os.type", "==", "windows"),
            Compare("event.code", "==", "10"),
            Length("winlog.event_data.CallTrace", ">", 0),
            Not(
                Wildcard(
                    "winlog.event_data.CallTrace",
                    (
                        r"?:\WINDOWS\SYSTEM32\ntdll.dll*",
                        r"?:\WINDOWS\SysWOW64\ntdll.dll*",
                        r"?:\Windows\System32\wow64cpu.dll*",
                        r"?:\WINDOWS\System32\wow64win.dll*",
                        r"?:\Windows\System32\win32u.dll*",
                    ),
                )
            ),
            Not(
                Wildcard(
                    "winlog.event_data.TargetImage",
                    (
                        r"?:\Program Files (x86)\Malwarebytes Anti-Exploit\mbae-svc.exe",
                        r"?:\Program Files\Cisco\AMP\*\sfc.exe",
                        r"?:\Program Files (x86)\Microsoft\EdgeWebView\Application\*\msedgewebview2.exe",
                        r"?:\Program Files\Adobe\Acrobat DC\Acrobat\*\AcroCEF.exe",
                    ),
                )
            ),
            Not(
                And(
                    (
                        Wildcard(
                            "process.executable",
                            (
                                r"?:\Program Files\Adobe\Acrobat DC\Acrobat\Acrobat.exe",
                                r"?:\Program Files (x86)\World of Warcraft\_classic_\WowClassic.exe",
                            ),
                        ),
                        Not(
                            Wildcard(
                                "winlog.event_data.TargetImage",
                                (r"?:\WINDOWS\system32\lsass.exe",),
                            )
                        ),
                    )
                )
            ),
        )
    ),
)


def cond(text: str) -> Node:
    """The condition of `any where TEXT`."""
    query = parse_query(f"any where {text}")
    assert query.category == "any"
    return query.condition


def string_value(eql_string: str) -> object:
    """The value of an EQL string literal, read through `f == LITERAL`."""
    node = cond(f"f == {eql_string}")
    assert isinstance(node, Compare)
    return node.value


def error(text: str) -> EqlSyntaxError:
    with pytest.raises(EqlSyntaxError) as info:
        parse_query(text)
    return info.value


A = Compare("a", "==", 1)
B = Compare("b", "==", 2)
C = Compare("c", "==", 3)
D = Compare("d", "==", 4)


# -- the rule ----------------------------------------------------------------------------------


def test_rule_query_parses_to_exact_tree() -> None:
    assert parse_query(RULE_QUERY) == RULE_TREE


def test_rule_query_backslashes_are_single() -> None:
    tree = parse_query(RULE_QUERY)
    assert isinstance(tree.condition, And)
    first = tree.condition.operands[3]
    assert isinstance(first, Not) and isinstance(first.operand, Wildcard)
    pattern = first.operand.patterns[0]
    assert pattern == "?:\\WINDOWS\\SYSTEM32\\ntdll.dll*"
    assert pattern.count("\\") == 3
    assert len(pattern) == 30
    # `_classic_` keeps its underscores; `?` and `*` are left to the matcher.
    last = tree.condition.operands[5]
    assert isinstance(last, Not) and isinstance(last.operand, And)
    executable = last.operand.operands[0]
    assert isinstance(executable, Wildcard)
    assert "\\_classic_\\" in executable.patterns[1]


# -- categories --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("process where true", "process"),
        ("any where true", "any"),
        ("file_2 where true", "file_2"),
        ('"my-event category" where true', "my-event category"),
        ('""".my.category""" where true', ".my.category"),
    ],
)
def test_category(text: str, category: str) -> None:
    assert parse_query(text) == EventQuery(category, BoolLiteral(True))


def test_quoted_any_category_is_rejected_as_ambiguous() -> None:
    e = error('"any" where true')
    assert (e.line, e.column) == (1, 1)
    assert "any" in e.reason


@pytest.mark.parametrize(
    ("text", "column", "needle"),
    [
        (
            "sequence [process where true] [file where true]",
            1,
            "sequence queries are not supported",
        ),
        ("join [process where true] [file where true]", 1, "join queries are not supported"),
        ("`process` where true", 1, "expected an event category but found '`process`'"),
        ("where true", 1, "expected an event category but found 'where'"),
        ("", 1, "expected an event category but found end of input"),
        ("process true", 9, "expected 'where' but found 'true'"),
        ("process WHERE true", 9, "expected 'where' but found 'WHERE'"),
        ("process where", 14, "expected a condition but found end of input"),
    ],
)
def test_category_and_where_errors(text: str, column: int, needle: str) -> None:
    e = error(text)
    assert (e.line, e.column) == (1, column)
    assert needle in e.reason


# -- comparisons and literal values ------------------------------------------------------------


@pytest.mark.parametrize("op", ["==", "!=", "<", "<=", ">", ">="])
def test_comparison_operators(op: str) -> None:
    assert cond(f"process.pid {op} 4") == Compare("process.pid", op, 4)
    assert cond(f"process.pid{op}4") == Compare("process.pid", op, 4)


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ('"windows"', "windows"),
        ('""', ""),
        ("10", 10),
        ("007", 7),
        ("-10", -10),
        ("- 3", -3),
        ("0", 0),
        ("1.5", 1.5),
        ("-1.5", -1.5),
        ("2.", 2.0),
        (".25", 0.25),
        ("1e3", 1000.0),
        ("2.5E-1", 0.25),
        ("true", True),
        ("false", False),
        ("null", None),
    ],
)
def test_literal_values(literal: str, value: object) -> None:
    node = cond(f"f == {literal}")
    assert node == Compare("f", "==", value)
    assert isinstance(node, Compare)
    assert type(node.value) is type(value)


def test_integer_literal_stays_int_and_decimal_is_float() -> None:
    assert type(string_value("10")) is int
    assert type(string_value("10.0")) is float
    assert type(string_value("1e1")) is float


@pytest.mark.parametrize(
    ("text", "column", "needle"),
    [
        # field must be on the left
        ('any where "x" == a', 11, 'expected a condition but found string "x"'),
        ("any where 1 == a", 11, "the field must be on the left"),
        ("any where null == a", 11, "the field must be on the left"),
        ("any where a == b", 16, "expected a value (string, number, true, false or null)"),
        ("any where a = 1", 13, "'=' is not an EQL comparison; use '=='"),
        ("any where a", 12, "expected a comparison, ':' or 'in' after 'a' but found end of input"),
        ("any where a == 1 == 2", 18, "expected 'and', 'or' or end of query but found '=='"),
        ("any where a == -", 17, "expected a number after '-' but found end of input"),
        ("any where a == -true", 17, "expected a number after '-' but found 'true'"),
        ("any where a ! = 1", 13, "unexpected character '!'"),
    ],
)
def test_comparison_errors(text: str, column: int, needle: str) -> None:
    e = error(text)
    assert (e.line, e.column) == (1, column)
    assert needle in e.reason


# -- wildcard ----------------------------------------------------------------------------------


def test_wildcard_single_pattern() -> None:
    assert cond('process.name : "cmd*.exe"') == Wildcard("process.name", ("cmd*.exe",))
    assert cond('process.name:"a?c"') == Wildcard("process.name", ("a?c",))


def test_wildcard_pattern_list() -> None:
    assert cond('f : ("p1", "p2*", "?p3")') == Wildcard("f", ("p1", "p2*", "?p3"))
    assert cond('f : ("only")') == Wildcard("f", ("only",))


@pytest.mark.parametrize(
    ("text", "column", "needle"),
    [
        ("any where f : 5", 15, "expected a string pattern but found '5'"),
        ('any where f : ("a", 5)', 21, "expected a string pattern but found '5'"),
        ("any where f : ()", 16, "expected a string pattern but found ')'"),
        ('any where f : ("a",)', 20, "expected a string pattern but found ')'"),
        ('any where f : ("a" "b")', 20, "expected ',' or ')' but found string \"b\""),
        ('any where f : ("a"', 19, "expected ',' or ')' but found end of input"),
        ('any where f :~ "a"', 14, "':~' is not supported"),
        ("any where f : null", 15, "expected a string pattern but found 'null'"),
    ],
)
def test_wildcard_errors(text: str, column: int, needle: str) -> None:
    e = error(text)
    assert (e.line, e.column) == (1, column)
    assert needle in e.reason


# -- in / not in -------------------------------------------------------------------------------


def test_in_set() -> None:
    assert cond('event.code in ("10", 10, -1, 1.5, true, null)') == InSet(
        "event.code", ("10", 10, -1, 1.5, True, None)
    )
    assert cond('f in ("x")') == InSet("f", ("x",))


def test_case_insensitive_forms() -> None:
    assert cond('f in~ ("a", "B")') == InSet("f", ("a", "B"), case_insensitive=True)
    assert cond('f not in~ ("a")') == Not(InSet("f", ("a",), case_insensitive=True))
    assert cond('f like "a*"') == Wildcard("f", ("a*",), case_sensitive=True)
    assert cond('f like~ ("a*", "b")') == Wildcard("f", ("a*", "b"))
    assert cond('startsWith~(?f.g, "x")') == StringTest("f.g", "starts", "x", True)
    assert cond('stringContains(f, "*")') == StringTest("f", "contains", "*")
    assert cond('?f != "x"') == Compare("f", "!=", "x")


def test_not_in_set() -> None:
    assert cond('f not in ("a", "b")') == Not(InSet("f", ("a", "b")))
    # the prefix form means the same
    assert cond('not f in ("a", "b")') == Not(InSet("f", ("a", "b")))


@pytest.mark.parametrize(
    ("text", "column", "needle"),
    [
        ("any where f like 1", 18, "expected a string pattern but found '1'"),
        ('any where f regex "a.*"', 13, "the 'regex' operator is not supported"),
        ('any where f in "a"', 16, "expected '(' but found string \"a\""),
        ("any where f in ()", 17, "expected a value"),
        (
            "any where f in (a)",
            17,
            "expected a value (string, number, true, false or null) but found 'a'",
        ),
        ('any where f not == "a"', 13, "after 'f' but found 'not'"),
    ],
)
def test_in_errors(text: str, column: int, needle: str) -> None:
    e = error(text)
    assert (e.line, e.column) == (1, column)
    assert needle in e.reason


# -- length() and other functions --------------------------------------------------------------


@pytest.mark.parametrize("op", ["==", "!=", "<", "<=", ">", ">="])
def test_length(op: str) -> None:
    assert cond(f"length(winlog.event_data.CallTrace) {op} 0") == Length(
        "winlog.event_data.CallTrace", op, 0
    )


def test_length_variants() -> None:
    assert cond("length ( `my field` ) > -1") == Length("my field", ">", -1)
    assert cond("not length(a) == 0") == Not(Length("a", "==", 0))
    # a field that happens to be called `length` is still a field
    assert cond("length == 3") == Compare("length", "==", 3)


@pytest.mark.parametrize(
    ("text", "column", "needle"),
    [
        ("any where length(a) > 1.5", 23, "length() must be compared with an integer, not '1.5'"),
        ("any where length(a) > true", 23, "length() must be compared with an integer, not 'true'"),
        ('any where length(a) > "1"', 23, "length() must be compared with an integer"),
        ("any where length(a) > null", 23, "length() must be compared with an integer"),
        ("any where length(a)", 20, "expected a comparison after length(a) but found end of input"),
        ('any where length(a) : "x"', 21, "expected a comparison after length(a) but found ':'"),
        ("any where length(a) in (1)", 21, "expected a comparison after length(a)"),
        ('any where length("a") > 0', 18, 'expected a field name but found string "a"'),
        ("any where length(a, b) > 0", 19, "expected ')' but found ','"),
        ("any where length() > 0", 18, "expected a field name but found ')'"),
        ('any where endswith(a, "x")', 11, "unsupported function endswith"),
        ("any where LENGTH(a) > 0", 11, "unsupported function LENGTH"),
        ("any where length~(a) > 0", 11, "unsupported function length~"),
    ],
)
def test_function_errors(text: str, column: int, needle: str) -> None:
    e = error(text)
    assert (e.line, e.column) == (1, column)
    assert needle in e.reason


# -- boolean literals, precedence, flattening --------------------------------------------------


def test_bare_booleans() -> None:
    assert cond("true") == BoolLiteral(True)
    assert cond("false") == BoolLiteral(False)
    assert cond("not true") == Not(BoolLiteral(True))
    assert cond("(false)") == BoolLiteral(False)
    assert cond("true and a == 1") == And((BoolLiteral(True), A))


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        ("a == 1 and b == 2", And((A, B))),
        ("a == 1 and b == 2 and c == 3", And((A, B, C))),
        ("a == 1 and b == 2 and c == 3 and d == 4", And((A, B, C, D))),
        ("a == 1 or b == 2 or c == 3", Or((A, B, C))),
        # and binds tighter than or
        ("a == 1 or b == 2 and c == 3", Or((A, And((B, C))))),
        ("a == 1 and b == 2 or c == 3", Or((And((A, B)), C))),
        ("a == 1 and b == 2 or c == 3 and d == 4", Or((And((A, B)), And((C, D))))),
        # not binds tighter than and
        ("not a == 1 and b == 2", And((Not(A), B))),
        ("not a == 1 or b == 2", Or((Not(A), B))),
        ("not (a == 1 and b == 2)", Not(And((A, B)))),
        ("not not a == 1", Not(Not(A))),
        # parentheses regroup; a parenthesised group stays its own node
        ("(a == 1 or b == 2) and c == 3", And((Or((A, B)), C))),
        ("a == 1 and (b == 2 and c == 3)", And((A, And((B, C))))),
        ("(a == 1 and b == 2) and c == 3", And((And((A, B)), C))),
        ("((a == 1))", A),
        ("(((a == 1)) or ((b == 2)))", Or((A, B))),
    ],
)
def test_precedence_and_flattening(text: str, tree: Node) -> None:
    assert cond(text) == tree


@pytest.mark.parametrize(
    ("text", "column", "needle"),
    [
        ("any where (a == 1 b == 2)", 19, "expected ')' but found 'b'"),
        ("any where (a == 1", 18, "expected ')' but found end of input"),
        ("any where a == 1)", 17, "expected 'and', 'or' or end of query but found ')'"),
        ("any where a == 1 and", 21, "expected a condition but found end of input"),
        ("any where a == 1 or or b == 2", 21, "expected a condition but found 'or'"),
        ("any where not", 14, "expected a condition but found end of input"),
        ("any where ()", 12, "expected a condition but found ')'"),
        # keywords are lower case only: `AND` is a field name, so it cannot follow a comparison
        ("any where a == 1 AND b == 2", 18, "expected 'and', 'or' or end of query but found 'AND'"),
        ("any where a == 1 | head 5", 18, "pipes ('|') are not supported"),
    ],
)
def test_boolean_structure_errors(text: str, column: int, needle: str) -> None:
    e = error(text)
    assert (e.line, e.column) == (1, column)
    assert needle in e.reason


def test_upper_case_keywords_are_field_names() -> None:
    assert cond("AND == 1") == Compare("AND", "==", 1)
    assert cond("Not.In == true") == Compare("Not.In", "==", True)


# -- field names -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field_text", "field"),
    [
        ("winlog.event_data.CallTrace", "winlog.event_data.CallTrace"),
        ("@timestamp", "@timestamp"),
        ("process.executable", "process.executable"),
        ("_private.x_1.y2", "_private.x_1.y2"),
        ("a . b", "a.b"),
        ("`my field.x`", "my field.x"),
        ("`my``field`", "my`field"),
        ("`a``b``c`", "a`b`c"),
        ("````", "`"),
        ("a.`b c`.d", "a.b c.d"),
        ("`in`", "in"),
        ("`6field`", "6field"),
        ("`my-field`", "my-field"),
    ],
)
def test_field_names(field_text: str, field: str) -> None:
    assert cond(f"{field_text} == 1") == Compare(field, "==", 1)


@pytest.mark.parametrize(
    ("text", "column", "needle"),
    [
        ("any where a. == 1", 14, "expected a field name but found '=='"),
        ("any where a.in == 1", 13, "expected a field name but found 'in' (quote keywords"),
        ("any where `` == 1", 11, "empty field name"),
        ("any where `abc == 1", 11, "unterminated field name"),
        ("any where in == 1", 11, "expected a condition but found 'in'"),
        ("any where a[0] == 1", 12, "after 'a' but found '['"),
        ("any where a-b == 1", 12, "after 'a' but found '-'"),
        ("any where a.1 == 1", 12, "after 'a' but found '.1'"),
        ("any where $a == 1", 11, "unexpected character '$'"),
    ],
)
def test_field_name_errors(text: str, column: int, needle: str) -> None:
    e = error(text)
    assert (e.line, e.column) == (1, column)
    assert needle in e.reason


# -- strings -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("eql", "value"),
    [
        (r'"a\\b"', "a\\b"),
        (r'"\\\\server"', "\\\\server"),
        (r'"say \"hi\""', 'say "hi"'),
        (r'"it\'s"', "it's"),
        (r'"a\nb"', "a\nb"),
        (r'"a\rb"', "a\rb"),
        (r'"a\tb"', "a\tb"),
        (r'"a\bb"', "a\bb"),
        (r'"a\fb"', "a\fb"),
        (r'"\u{41}"', "A"),
        (r'"\u{0041}"', "A"),
        (r'"\u{000041}"', "A"),
        (r'"\u{00000041}"', "A"),
        (r'"\u{200f}"', "\u200f"),
        (r'"\u{200F}"', "\u200f"),
        (r'"\u{1F600}"', "\U0001f600"),
        (r'"\u{10FFFF}"', "\U0010ffff"),
        (r'"x\u{41}\u{42}y"', "xABy"),
        ('"it\'s"', "it's"),  # an unescaped single quote inside double quotes is fine
        ('"tab\there"', "tab\there"),  # a literal tab character is kept
        ('"*?"', "*?"),
        ('"ünïcödé"', "ünïcödé"),
    ],
)
def test_string_escapes(eql: str, value: str) -> None:
    assert string_value(eql) == value


@pytest.mark.parametrize(
    ("eql", "column", "needle"),
    [
        (r'"\0"', 2, r"invalid escape sequence '\0'"),
        (r'"ab\x41"', 4, r"invalid escape sequence '\x'"),
        (r'"\a"', 2, r"invalid escape sequence '\a'"),
        (r'"\*"', 2, r"invalid escape sequence '\*'"),
        (r'"\u0041"', 2, "invalid unicode escape"),
        (r'"\u{4}"', 2, "2 to 8 hex digits"),
        (r'"\u{}"', 2, "2 to 8 hex digits"),
        (r'"\u{123456789}"', 2, "2 to 8 hex digits"),
        (r'"\u{zz}"', 2, "invalid unicode escape"),
        (r'"\u{41"', 2, "invalid unicode escape"),
        (r'"\u{D800}"', 2, "U+D800 is not a valid character"),
        (r'"\u{110000}"', 2, "U+110000 is not a valid character"),
        ('"abc', 1, "unterminated string"),
        ('"abc\\', 1, "unterminated string"),
        ('"ab\ncd"', 1, "unterminated string"),
        ("'abc'", 1, "use double quotes [\"] to define string literals, not single quotes [']"),
        ('?"abc"', 1, 'use triple double quotes ["""]'),
        ("?'abc'", 1, 'use triple double quotes ["""]'),
    ],
)
def test_string_errors(eql: str, column: int, needle: str) -> None:
    prefix = "any where f == "
    e = error(prefix + eql)
    assert (e.line, e.column) == (1, len(prefix) + column)
    assert needle in e.reason


@pytest.mark.parametrize(
    ("eql", "value"),
    [
        (r'"""C:\Windows\System32\*.dll"""', r"C:\Windows\System32\*.dll"),
        (r'"""\\"""', r"\\"),
        (r'"""\n\u{41}"""', r"\n\u{41}"),
        ('"""say "hi" there"""', 'say "hi" there'),
        ('"""two "" quotes"""', 'two "" quotes'),
        ('""""""', ""),
        ('"""a""""', 'a"'),  # up to two quotes after the closing triple quote belong to the value
        ('"""a"""""', 'a""'),
        ('"""it\'s"""', "it's"),
    ],
)
def test_raw_strings(eql: str, value: str) -> None:
    assert string_value(eql) == value


def test_raw_string_as_wildcard_pattern() -> None:
    assert cond(r'f : ("""?:\Windows\*""", "?:\\Temp\\*")') == Wildcard(
        "f", (r"?:\Windows\*", r"?:\Temp\*")
    )


@pytest.mark.parametrize(
    ("text", "line", "column", "needle"),
    [
        ('any where f == """abc', 1, 16, "unterminated raw string"),
        ('any where f == """ab\ncd"""', 1, 16, "unterminated raw string"),
        # after the closing triple quote and two extra quotes, a sixth quote opens a new string
        ('any where f == """a""""""', 1, 25, "unterminated string"),
    ],
)
def test_raw_string_errors(text: str, line: int, column: int, needle: str) -> None:
    e = error(text)
    assert (e.line, e.column) == (line, column)
    assert needle in e.reason


# -- comments and whitespace -------------------------------------------------------------------


def test_comments_and_whitespace_between_tokens() -> None:
    text = (
        "/* leading */ process // category\n"
        "where /* multi\n line\n comment */ a /*x*/ == /*y*/ 1\n"
        "\tand // trailing words and == (\n"
        '  b\r\n  :\r\n  ( /* inside */ "x" , // list\n "y" )  // end'
    )
    assert parse_query(text) == EventQuery("process", And((A, Wildcard("b", ("x", "y")))))


def test_nested_block_comment() -> None:
    assert cond("/* outer /* inner */ still outer */ a == 1") == A


def test_comment_markers_inside_strings_are_text() -> None:
    assert string_value('"/* not a comment */ // nor this"') == "/* not a comment */ // nor this"


def test_line_comment_at_end_without_newline() -> None:
    assert cond("a == 1 // done") == A


@pytest.mark.parametrize(
    ("text", "line", "column", "needle"),
    [
        ("any where a == 1 /* never closed", 1, 18, "unterminated comment"),
        ("any where\n  a == 1 /* outer /* inner */", 2, 10, "unterminated comment"),
        ("any where a == 1 */", 1, 18, "expected 'and', 'or' or end of query but found '*'"),
    ],
)
def test_comment_errors(text: str, line: int, column: int, needle: str) -> None:
    e = error(text)
    assert (e.line, e.column) == (line, column)
    assert needle in e.reason


# -- error reporting ---------------------------------------------------------------------------


def test_error_message_names_line_and_column() -> None:
    text = "process where\n  a == 1 and\n  (b == 2 and c == 3 d == 4)\n"
    e = error(text)
    assert isinstance(e, ValueError)
    assert (e.line, e.column) == (3, 22)
    assert e.reason == "expected ')' but found 'd'"
    assert str(e) == "line 3, column 22: expected ')' but found 'd'"


def test_error_column_counts_characters_not_bytes() -> None:
    e = error('any where f == "ü" and ü == 1')
    assert (e.line, e.column) == (1, 24)
    assert e.reason == "unexpected character 'ü'"


def test_error_column_after_crlf_line_ending() -> None:
    e = error("any where\r\n  a == 1 b")
    assert (e.line, e.column) == (2, 10)


def test_error_at_end_of_input_on_last_line() -> None:
    e = error("any where\n  a ==\n")
    assert (e.line, e.column) == (3, 1)
    assert "found end of input" in e.reason


def test_error_escape_position_on_later_line() -> None:
    e = error('any where\n  a == 1 and\n    b : ("ok", "bad\\q")')
    assert (e.line, e.column) == (3, 20)
    assert r"'\q'" in e.reason


@pytest.mark.parametrize(
    ("text", "column", "needle"),
    [
        ("any where a == 1 ; b == 2", 18, "unexpected character ';'"),
        ("any where a == 1 # x", 18, "unexpected character '#'"),
        ("any where a\u00a0== 1", 12, "unexpected character 'U+00A0'"),
        ("any where a == 1 and b of [process where true]", 24, "after 'b' but found 'of'"),
        ("any where a == 1 extra", 18, "expected 'and', 'or' or end of query but found 'extra'"),
        ('any where a == 1 "s"', 18, 'found string "s"'),
    ],
)
def test_unknown_tokens_and_trailing_garbage(text: str, column: int, needle: str) -> None:
    e = error(text)
    assert (e.line, e.column) == (1, column)
    assert needle in e.reason


def test_long_token_is_shortened_in_message() -> None:
    e = error('any where a == 1 "' + "x" * 100 + '"')
    assert e.reason == "expected 'and', 'or' or end of query but found string \"" + "x" * 36 + "..."


def test_mangled_queries_raise_only_positioned_syntax_errors() -> None:
    """Random edits of real queries either parse or raise EqlSyntaxError pointing into the text,
    never another exception (IndexError, ValueError from int(), ...)."""
    rng = random.Random(20240611)
    alphabet = "\"'`\\/*()[],.:=!<>-~|?@ \n\tanotindlegh0123456789u{}xyz_"
    seeds = [RULE_QUERY, 'any where a == "x\\u{41}" and `b`.c : ("""r""") or length(d) > -1']
    for _ in range(3000):
        chars = list(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(chars))
            edit = rng.random()
            if edit < 0.4:
                del chars[at]
            elif edit < 0.8:
                chars.insert(at, rng.choice(alphabet))
            else:
                chars[at] = rng.choice(alphabet)
        text = "".join(chars)
        try:
            parse_query(text)
        except EqlSyntaxError as e:
            lines = text.split("\n")
            assert 1 <= e.line <= len(lines), text
            assert 1 <= e.column <= len(lines[e.line - 1]) + 1, text
