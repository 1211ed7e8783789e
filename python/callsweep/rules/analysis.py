"""What a query reads, and what it cannot do without."""

from __future__ import annotations

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

CATEGORY_FIELD = "event.category"


def fields(query: EventQuery) -> tuple[str, ...]:
    """Every field the query reads (the category field first unless the category is `any`)."""
    seen: dict[str, None] = {}
    if query.category != "any":
        seen[CATEGORY_FIELD] = None
    for name in walk_fields(query.condition):
        seen.setdefault(name)
    return tuple(seen)


def walk_fields(node: Node):
    """The fields a condition reads, with repeats, in order."""
    match node:
        case (Wildcard(field=f) | Compare(field=f) | InSet(field=f) | Length(field=f)) | StringTest(
            field=f
        ):
            yield f
        case Not(operand=inner):
            yield from walk_fields(inner)
        case And(operands=ops) | Or(operands=ops):
            for op in ops:
                yield from walk_fields(op)
        case BoolLiteral():
            return


def required_fields(query: EventQuery) -> tuple[str, ...]:
    """Fields whose absence makes the query false for every event.

    A leaf test on a missing field is false (`:`, `==`, `length`...), so a field tested outside
    any `not` in a conjunction is required; under `or`, only fields every branch requires are.
    What `not` tests is never required: `not f : "x"` holds when `f` is missing.
    """
    required = _required(query.condition)
    if query.category != "any":
        required = {CATEGORY_FIELD} | required
    order = fields(query)
    return tuple(f for f in order if f in required)


def _required(node: Node) -> set[str]:
    match node:
        case Compare(field=f, op="!="):
            return set()
        case (Wildcard(field=f) | Compare(field=f) | InSet(field=f) | Length(field=f)) | StringTest(
            field=f
        ):
            return {f}
        case And(operands=ops):
            return set().union(*(_required(op) for op in ops))
        case Or(operands=ops):
            branches = [_required(op) for op in ops]
            return set.intersection(*branches) if branches else set()
        case _:
            return set()
