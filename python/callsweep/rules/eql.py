r"""Parser for the subset of Elasticsearch EQL that callsweep evaluates.

`parse_query(text)` turns `CATEGORY where CONDITION` into the frozen nodes of `rules.ast`. The
module is a tokenizer plus a recursive-descent parser; both follow the Elasticsearch EQL lexer and
grammar (`x-pack/plugin/eql/src/main/antlr/EqlBase.g4`) and its string unquoting
(`AbstractBuilder.unquoteString`), so that a query Elasticsearch reads one way is never read another
way here. Whatever the subset does not cover (sequences, pipes, `regex`, functions other than
`length`, `startsWith`, `endsWith` and `stringContains`, `~` forms the native matcher cannot
evaluate exactly, ...) is an `EqlSyntaxError` naming line and column, never a silent
approximation.

Choices, with their reason:

* Keywords (`and`, `or`, `not`, `in`, `where`, `any`, `true`, `false`, `null`, ...) are lower case
  only: the Elasticsearch lexer matches them as literal lower-case tokens with no case-insensitive
  stream, so `AND` is an ordinary field name there (and therefore here too).
* String escapes are exactly Elasticsearch's: `\\ \" \' \n \r \t \b \f` and `\u{XX}` with 2 to 8
  hex digits; any other escape (`\0`, `\x`, ...) is rejected, as the Elasticsearch lexer does.
* Triple-quoted raw strings do no escape processing and, as in Elasticsearch, cannot span lines;
  up to two extra quotes right after the closing triple quote belong to the value.
* `/* ... */` comments nest, as in the Elasticsearch lexer.
* The case-insensitive forms (`in~`, `like~`, `startsWith~`, ...) fold ASCII letters only, as
  Lucene's case-insensitive automata do (`:` too). They run in the wildcard kernel, which has no
  escape for `*` and `?`: a value holding one of them is refused in `in~` and the `~` functions.
* `?field` (an optional field) reads the field: a field missing from an event or from the
  whole input is missing either way here, so the mark changes nothing.
* Function names are case-sensitive, as written in the Elasticsearch reference.
* `a and b and c` flattens to one `And`; a parenthesised group stays its own node, so the tree
  keeps the structure the query author wrote.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn, TypeVar

from .ast import (
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

__all__ = ["EqlSyntaxError", "parse_query"]


class EqlSyntaxError(ValueError):
    """A query that is not valid EQL, or uses EQL this subset does not support.

    `line` and `column` are 1-based and point at the offending character; `reason` is the
    message without the position.
    """

    def __init__(self, reason: str, line: int, column: int) -> None:
        super().__init__(f"line {line}, column {column}: {reason}")
        self.reason = reason
        self.line = line
        self.column = column


# Reserved words of the Elasticsearch EQL lexer. They can never be field names unless quoted
# with backticks, even the ones (`by`, `with`, ...) this subset does not otherwise use.
_KEYWORDS = frozenset(
    {
        *("and", "or", "not", "in", "where", "any", "true", "false", "null"),
        *("by", "join", "like", "maxspan", "of", "regex", "sequence", "until", "with"),
    }
)
_COMPARISONS = frozenset({"==", "!=", "<", "<=", ">", ">="})
# Longest first, so that `<=` is not read as `<` followed by `=`.
_OPERATORS = (
    *("==", "!=", "<=", ">=", "<", ">", "=", ":"),
    *("(", ")", ",", ".", "-", "+", "*", "/", "%", "|", "[", "]", "~", "?"),
)
_ESCAPES = {"\\": "\\", '"': '"', "'": "'", "n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f"}
_WHITESPACE = " \t\r\n"  # the only whitespace the Elasticsearch lexer skips
_IDENTIFIER = re.compile(r"[A-Za-z_@][A-Za-z0-9_]*")
_NUMBER = re.compile(r"\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?")
_LINE_BREAK = re.compile(r"[\r\n]")
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_STRING_FUNCTIONS = {"startsWith": "starts", "endsWith": "ends", "stringContains": "contains"}


@dataclass(frozen=True)
class _Token:
    # "name", "quoted" (backtick field name), "keyword", "tilde" (`in~`, `like~`, ...),
    # "string", "number", "op" or "eof".
    kind: str
    text: str  # the source text, for error messages
    value: Value  # decoded string / number / field name
    offset: int  # index into the query text, turned into line and column only on error


def _show(char: str) -> str:
    """A character as an error message can print it."""
    return char if char.isprintable() and not char.isspace() else f"U+{ord(char):04X}"


def _describe(token: _Token) -> str:
    if token.kind == "eof":
        return "end of input"
    text = token.text if len(token.text) <= 40 else token.text[:37] + "..."
    return f"string {text}" if token.kind == "string" else f"'{text}'"


class _Source:
    """The query text, able to turn an offset into a line and column for errors."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._line_starts = [0] + [i + 1 for i, c in enumerate(text) if c == "\n"]

    def fail(self, offset: int, reason: str) -> NoReturn:
        line = bisect.bisect_right(self._line_starts, offset)
        raise EqlSyntaxError(reason, line, offset - self._line_starts[line - 1] + 1)


def _tokenize(src: _Source) -> list[_Token]:
    text, pos = src.text, 0
    tokens: list[_Token] = []
    while True:
        # Whitespace and comments separate tokens and are otherwise dropped.
        while pos < len(text):
            if text[pos] in _WHITESPACE:
                pos += 1
            elif text.startswith("//", pos):
                end = text.find("\n", pos)
                pos = len(text) if end == -1 else end + 1
            elif text.startswith("/*", pos):
                pos = _skip_block_comment(src, pos)
            else:
                break
        if pos >= len(text):
            tokens.append(_Token("eof", "", None, pos))
            return tokens
        token, pos = _next_token(src, pos)
        tokens.append(token)


def _skip_block_comment(src: _Source, start: int) -> int:
    text, pos, depth = src.text, start + 2, 1
    while depth:
        if pos >= len(text):
            src.fail(start, "unterminated comment: '/*' has no matching '*/'")
        if text.startswith("/*", pos):
            depth, pos = depth + 1, pos + 2
        elif text.startswith("*/", pos):
            depth, pos = depth - 1, pos + 2
        else:
            pos += 1
    return pos


def _next_token(src: _Source, pos: int) -> tuple[_Token, int]:
    text, char = src.text, src.text[pos]
    if char == '"':
        return _raw_string(src, pos) if text.startswith('"""', pos) else _string(src, pos)
    if char == "'":
        src.fail(pos, "use double quotes [\"] to define string literals, not single quotes [']")
    if char == "?" and text[pos + 1 : pos + 2] in ('"', "'"):
        src.fail(pos, 'use triple double quotes ["""] to define unescaped string literals, not [?]')
    if char == "`":
        return _quoted_name(src, pos)
    if match := _IDENTIFIER.match(text, pos):
        word, end = match.group(), match.end()
        # `in~`, `like~`, `startsWith~`...: one token in Elasticsearch (a letter must come first).
        if text.startswith("~", end) and word[0].isalpha():
            return _Token("tilde", word + "~", word + "~", pos), end + 1
        return _Token("keyword" if word in _KEYWORDS else "name", word, word, pos), end
    if match := _NUMBER.match(text, pos):
        digits = match.group()
        number: int | float = int(digits) if digits.isdigit() else float(digits)
        return _Token("number", digits, number, pos), match.end()
    for op in _OPERATORS:
        if text.startswith(op, pos):
            return _Token("op", op, op, pos), pos + len(op)
    src.fail(pos, f"unexpected character '{_show(char)}'")


def _raw_string(src: _Source, start: int) -> tuple[_Token, int]:
    text = src.text
    close = text.find('"""', start + 3)
    line_break = _LINE_BREAK.search(text, start + 3, len(text) if close == -1 else close)
    if close == -1 or line_break:
        src.fail(start, 'unterminated raw string: """ must be closed by """ on the same line')
    end = close + 3
    # Elasticsearch's lexer rule is '"""' .*? '"""' '"'? '"'?: quotes right after the closing
    # triple quote extend the token, and the value is everything but the last three.
    for _ in range(2):
        if text.startswith('"', end):
            end += 1
    return _Token("string", text[start:end], text[start + 3 : end - 3], start), end


def _string(src: _Source, start: int) -> tuple[_Token, int]:
    text, pos = src.text, start + 1
    out: list[str] = []
    while True:
        if pos >= len(text) or text[pos] in "\r\n":
            src.fail(start, "unterminated string: missing closing '\"' on this line")
        char = text[pos]
        if char == '"':
            return _Token("string", text[start : pos + 1], "".join(out), start), pos + 1
        if char != "\\":
            out.append(char)
            pos += 1
            continue
        escape = text[pos + 1 : pos + 2]
        if escape in ("", "\r", "\n"):
            src.fail(start, "unterminated string: missing closing '\"' on this line")
        elif escape in _ESCAPES:
            out.append(_ESCAPES[escape])
            pos += 2
        elif escape == "u":
            char, pos = _unicode_escape(src, pos)
            out.append(char)
        else:
            src.fail(
                pos,
                f"invalid escape sequence '\\{_show(escape)}' in string "
                "(valid: \\\\ \\\" \\' \\n \\r \\t \\b \\f \\u{XXXX})",
            )


def _unicode_escape(src: _Source, pos: int) -> tuple[str, int]:
    """`\\u{XX}` to `\\u{XXXXXXXX}` at `pos` (the backslash): the character and the next offset."""
    text, digits_start = src.text, pos + 3
    end = digits_start
    while end < len(text) and text[end] in _HEX_DIGITS:
        end += 1
    digits = text[digits_start:end]
    if (
        not text.startswith("{", pos + 2)
        or not text.startswith("}", end)
        or not 2 <= len(digits) <= 8
    ):
        src.fail(
            pos, "invalid unicode escape: write \\u{XX} with 2 to 8 hex digits between the braces"
        )
    code = int(digits, 16)
    if 0xD800 <= code <= 0xDFFF or code > 0x10FFFF:
        src.fail(pos, f"invalid unicode escape: U+{code:X} is not a valid character")
    return chr(code), end + 1


def _quoted_name(src: _Source, start: int) -> tuple[_Token, int]:
    """A backtick-quoted field name; a doubled backtick stands for one backtick."""
    text, pos = src.text, start + 1
    parts: list[str] = []
    while True:
        close = text.find("`", pos)
        if close == -1:
            src.fail(start, "unterminated field name: missing closing '`'")
        parts.append(text[pos:close])
        if text.startswith("``", close):
            parts.append("`")
            pos = close + 2
            continue
        name = "".join(parts)
        if not name:
            src.fail(start, "empty field name ``")
        return _Token("quoted", text[start : close + 1], name, start), close + 1


_T = TypeVar("_T")


class _Parser:
    """Recursive descent over the token list; one method per grammar level."""

    def __init__(self, text: str) -> None:
        self.src = _Source(text)
        self.tokens = _tokenize(self.src)
        self.pos = 0

    # -- token helpers -------------------------------------------------------------------------

    def peek(self, ahead: int = 0) -> _Token:
        return self.tokens[min(self.pos + ahead, len(self.tokens) - 1)]

    def advance(self) -> _Token:
        token = self.peek()
        self.pos += token.kind != "eof"
        return token

    def at(self, kind: str, text: str | None = None, ahead: int = 0) -> bool:
        token = self.peek(ahead)
        return token.kind == kind and (text is None or token.text == text)

    def fail(self, token: _Token, reason: str) -> NoReturn:
        self.src.fail(token.offset, reason)

    def expect_op(self, op: str) -> _Token:
        if not self.at("op", op):
            self.fail(self.peek(), f"expected '{op}' but found {_describe(self.peek())}")
        return self.advance()

    # -- grammar -------------------------------------------------------------------------------

    def query(self) -> EventQuery:
        category = self.category()
        if not self.at("keyword", "where"):
            self.fail(self.peek(), f"expected 'where' but found {_describe(self.peek())}")
        self.advance()
        condition = self.or_expr()
        token = self.peek()
        if token.kind != "eof":
            if token.text == "|" and token.kind == "op":
                self.fail(token, "pipes ('|') are not supported")
            self.fail(token, f"expected 'and', 'or' or end of query but found {_describe(token)}")
        return EventQuery(category, condition)

    def category(self) -> str:
        token = self.advance()
        if token.kind == "name" or (token.kind == "keyword" and token.text == "any"):
            return token.text
        if token.kind == "string":
            # `"any" where` means the category value "any", which EventQuery cannot tell from the
            # match-everything keyword `any`: refuse rather than widen the query.
            if token.value == "any":
                self.fail(
                    token, 'quoted category "any" is not supported; write any to match every event'
                )
            assert isinstance(token.value, str)
            return token.value
        if token.kind == "keyword" and token.text in ("sequence", "join"):
            self.fail(
                token, f"{token.text} queries are not supported, only CATEGORY where CONDITION"
            )
        self.fail(token, f"expected an event category but found {_describe(token)}")

    def or_expr(self) -> Node:
        operands = [self.and_expr()]
        while self.at("keyword", "or"):
            self.advance()
            operands.append(self.and_expr())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def and_expr(self) -> Node:
        operands = [self.not_expr()]
        while self.at("keyword", "and"):
            self.advance()
            operands.append(self.not_expr())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def not_expr(self) -> Node:
        # `not` binds tighter than `and`: `not a and b` is `(not a) and b`, as in Elasticsearch.
        if self.at("keyword", "not"):
            self.advance()
            return Not(self.not_expr())
        return self.primary()

    def primary(self) -> Node:
        token = self.peek()
        if self.at("op", "("):
            self.advance()
            inner = self.or_expr()
            self.expect_op(")")
            return inner
        if token.kind == "keyword" and token.text in ("true", "false"):
            self.advance()
            return BoolLiteral(token.text == "true")
        if token.kind in ("name", "tilde") and self.at("op", "(", ahead=1):
            return self.function()
        if token.kind in ("name", "quoted") or self.at("op", "?"):
            return self.predicate(self.field())
        if token.kind in ("string", "number") or token.text in ("null", "-"):
            self.fail(
                token,
                f"expected a condition but found {_describe(token)}; the field must be on the left",
            )
        self.fail(token, f"expected a condition but found {_describe(token)}")

    def field(self) -> str:
        """A field name: dotted parts, each plain or backtick-quoted, joined by '.'; a leading
        `?` (optional field) is dropped (see the module docstring)."""
        if self.at("op", "?"):
            self.advance()
        parts = [self.field_part()]
        while self.at("op", "."):
            self.advance()
            parts.append(self.field_part())
        return ".".join(parts)

    def field_part(self) -> str:
        token = self.peek()
        if token.kind not in ("name", "quoted"):
            hint = (
                " (quote keywords used as field names with backticks)"
                if token.kind == "keyword"
                else ""
            )
            self.fail(token, f"expected a field name but found {_describe(token)}{hint}")
        self.advance()
        assert isinstance(token.value, str)
        return token.value

    def predicate(self, field: str) -> Node:
        token = self.peek()
        if token.kind == "op" and token.text in _COMPARISONS:
            self.advance()
            return Compare(field, token.text, self.literal())
        if self.at("op", ":"):
            self.advance()
            if self.at("op", "~"):
                self.fail(
                    self.peek(), "':~' is not supported; ':' already matches case-insensitively"
                )
            if self.at("op", "("):
                return Wildcard(field, self.parenthesised(self.pattern))
            return Wildcard(field, (self.pattern(),))
        if self.at("keyword", "in") or self.at("tilde", "in~"):
            return self.membership(field)
        if self.at("keyword", "not") and (
            self.at("keyword", "in", ahead=1) or self.at("tilde", ahead=1)
        ):
            self.advance()
            if self.at("tilde") and self.peek().text != "in~":
                self.unsupported_tilde(self.peek())
            return Not(self.membership(field))
        if self.at("keyword", "like") or self.at("tilde", "like~"):
            sensitive = self.advance().kind == "keyword"
            if self.at("op", "("):
                return Wildcard(field, self.parenthesised(self.pattern), sensitive)
            return Wildcard(field, (self.pattern(),), sensitive)
        if token.kind == "tilde":
            self.unsupported_tilde(token)
        if token.kind == "keyword" and token.text == "regex":
            self.fail(
                token,
                f"the '{token.text}' operator is not supported; use ':' for wildcard matching",
            )
        if self.at("op", "="):
            self.fail(
                token,
                "'=' is not an EQL comparison; use '==' (or ':' for a case-insensitive match)",
            )
        self.fail(
            token,
            f"expected a comparison, ':' or 'in' after '{field}' but found {_describe(token)}",
        )

    def membership(self, field: str) -> InSet:
        """`in (...)` or `in~ (...)`, at the operator."""
        if self.advance().kind == "keyword":
            return InSet(field, self.parenthesised(self.literal))
        return InSet(field, self.parenthesised(self.folded_string), case_insensitive=True)

    def folded_string(self) -> str:
        """A string a case-insensitive (`~`) test compares with: the wildcard kernel evaluates
        those tests, so `*` and `?` in it would be read as wildcards; refused."""
        token = self.peek()
        if token.kind != "string":
            self.fail(token, f"a case-insensitive test takes strings only, not {_describe(token)}")
        assert isinstance(token.value, str)
        if "*" in token.value or "?" in token.value:
            self.fail(
                token,
                "'*' and '?' in the value of a case-insensitive (~) test are not supported",
            )
        self.advance()
        return token.value

    def unsupported_tilde(self, token: _Token) -> NoReturn:
        self.fail(token, f"case-insensitive '{token.text}' is not supported")

    def function(self) -> Node:
        name = self.peek()
        base = name.text.removesuffix("~")
        if base in _STRING_FUNCTIONS:
            return self.string_function()
        self.advance()
        if name.text != "length":
            known = "length, startsWith, endsWith, stringContains"
            self.fail(name, f"unsupported function {name.text} (supported: {known})")
        self.expect_op("(")
        field = self.field()
        self.expect_op(")")
        op = self.peek()
        if not (op.kind == "op" and op.text in _COMPARISONS):
            self.fail(op, f"expected a comparison after length({field}) but found {_describe(op)}")
        self.advance()
        value_token = self.peek()
        value = self.literal()
        # bool is an int subclass in Python; `length(f) == true` must not pass as 1.
        if not isinstance(value, int) or isinstance(value, bool):
            self.fail(
                value_token,
                f"length() must be compared with an integer, not {_describe(value_token)}",
            )
        return Length(field, op.text, value)

    def string_function(self) -> StringTest:
        """`startsWith(field, "s")` and its siblings, `~` forms included."""
        name = self.advance()
        folded = name.kind == "tilde"
        self.expect_op("(")
        field = self.field()
        self.expect_op(",")
        if folded:
            value = self.folded_string()
        else:
            token = self.peek()
            if token.kind != "string":
                self.fail(token, f"{name.text}() takes a string, not {_describe(token)}")
            self.advance()
            assert isinstance(token.value, str)
            value = token.value
        if self.at("op", ","):
            self.fail(self.peek(), f"{name.text}() with more than one string is not supported")
        self.expect_op(")")
        return StringTest(field, _STRING_FUNCTIONS[name.text.removesuffix("~")], value, folded)

    def parenthesised(self, element: Callable[[], _T]) -> tuple[_T, ...]:
        """`( e1, e2, ... )` with at least one element."""
        self.expect_op("(")
        items = [element()]
        while self.at("op", ","):
            self.advance()
            items.append(element())
        if not self.at("op", ")"):
            self.fail(self.peek(), f"expected ',' or ')' but found {_describe(self.peek())}")
        self.advance()
        return tuple(items)

    def pattern(self) -> str:
        token = self.peek()
        if token.kind != "string":
            self.fail(token, f"expected a string pattern but found {_describe(token)}")
        self.advance()
        assert isinstance(token.value, str)
        return token.value

    def literal(self) -> Value:
        token = self.advance()
        if token.kind in ("string", "number"):
            return token.value
        if token.kind == "keyword" and token.text in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[token.text]
        if token.kind == "op" and token.text == "-":
            number = self.advance()
            if number.kind != "number":
                self.fail(number, f"expected a number after '-' but found {_describe(number)}")
            assert isinstance(number.value, (int, float))
            return -number.value
        self.fail(
            token,
            f"expected a value (string, number, true, false or null) but found {_describe(token)}",
        )


def parse_query(text: str) -> EventQuery:
    """Parse `CATEGORY where CONDITION`; raise `EqlSyntaxError` for anything else."""
    return _Parser(text).query()
