"""The syntax tree of the EQL subset callsweep evaluates.

Nodes are plain frozen dataclasses: the parser (`rules.eql`) builds them, the compiler
(`rules.compile`) turns them into polars expressions, and analyses such as "which fields does
this query need" walk them. Field names are kept exactly as written (ECS dotted names).
"""

from __future__ import annotations

from dataclasses import dataclass

# A literal value as EQL writes it: "string", 10, 1.5, true/false, null.
Value = str | int | float | bool | None


@dataclass(frozen=True)
class Wildcard:
    """`field : "pattern"` or `field : ("p1", "p2", ...)`: any pattern matches the whole value.

    `:` and `like~` fold ASCII case; `like` (`case_sensitive`) compares characters exactly."""

    field: str
    patterns: tuple[str, ...]
    case_sensitive: bool = False


@dataclass(frozen=True)
class Compare:
    """`field OP value` with OP one of `==`, `!=`, `<`, `<=`, `>`, `>=`."""

    field: str
    op: str
    value: Value


@dataclass(frozen=True)
class InSet:
    """`field in (v1, v2, ...)`: exact, case-sensitive membership. `in~` (`case_insensitive`)
    folds ASCII case, as a Lucene case-insensitive term query does."""

    field: str
    values: tuple[Value, ...]
    case_insensitive: bool = False


@dataclass(frozen=True)
class StringTest:
    """`startsWith(field, "s")`, `endsWith`, `stringContains` (`kind` "starts", "ends",
    "contains"); the `~` forms fold ASCII case (`case_insensitive`)."""

    field: str
    kind: str
    value: str
    case_insensitive: bool = False


@dataclass(frozen=True)
class Length:
    """`length(field) OP n`: the length in characters of a string value."""

    field: str
    op: str
    value: int


@dataclass(frozen=True)
class Not:
    operand: Node


@dataclass(frozen=True)
class And:
    operands: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    operands: tuple[Node, ...]


@dataclass(frozen=True)
class BoolLiteral:
    """A bare `true` or `false` condition."""

    value: bool


Node = Wildcard | Compare | InSet | StringTest | Length | Not | And | Or | BoolLiteral


@dataclass(frozen=True)
class EventQuery:
    """`CATEGORY where CONDITION`; category `any` matches every event."""

    category: str
    condition: Node
