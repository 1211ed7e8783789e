"""Tests on a long field decided on a stored prefix of it, where that is provably the same.

callsweep's Parquet layout stores, next to `winlog.event_data.CallTrace`, the column
`winlog.event_data.CallTrace[:64]`: the first 64 characters (Unicode scalars) of each value,
dictionary-encoded. CallTraces run to kilobytes and are nearly all distinct; their first 64
characters take a few hundred distinct values, so reading and matching the prefix costs a
fraction of the whole column.

A test may move to the prefix column `f[:K]` only when it gives the same answer on every value
`v` of `f` as on `v[:K]` (a missing value is missing in both):

* wildcard `L*` (any run of trailing `*`), `L` free of `*` and at most K characters long: `v`
  matches iff its first len(L) characters match `L`, and these are `v[:K]`'s first len(L)
  characters whenever `v` has that many; `?` is one character on both sides.
* wildcard without `*` (exact up to ASCII case and `?` slots), shorter than K characters: a
  value that long or longer is not cut, and a longer value is cut to K characters, which still
  differs in length from `L`.
* `length(f) OP n` with n < K: `min(len(v), K)` compares with n exactly as `len(v)` does.

Any other test stays on the whole value. A wildcard with patterns of both kinds is split into
`f[:K] : (decidable patterns) or f : (the others)`, which the native program evaluates with a
short circuit: the whole value is looked at only where the prefix did not already match.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace

from callsweep.rules.ast import And, EventQuery, Length, Node, Not, Or, Wildcard

# `<field>[:<K>]`: the name says what the column holds, so a file rewritten by another tool
# (which drops custom metadata) still says it.
_PREFIX_COLUMN = re.compile(r"^(?P<field>.+)\[:(?P<chars>[1-9][0-9]*)\]$")


def prefix_column(field: str, chars: int) -> str:
    return f"{field}[:{chars}]"


def stored_prefixes(columns: Mapping[str, object] | list[str]) -> dict[str, tuple[str, int]]:
    """`{field: (prefix column, K)}` for the prefix columns among `columns` (the longest K
    when a field has several)."""
    found: dict[str, tuple[str, int]] = {}
    for name in columns:
        match = _PREFIX_COLUMN.match(name)
        if match:
            field, chars = match["field"], int(match["chars"])
            if field not in found or found[field][1] < chars:
                found[field] = (name, chars)
    return found


def decidable_on_prefix(pattern: str, chars: int) -> bool:
    """Whether `pattern` matches `v` exactly when it matches `v[:chars]`, for every `v`."""
    head = pattern.rstrip("*")
    if "*" in head:
        return False
    if head == pattern:  # no `*`: the whole value is compared
        return len(pattern) < chars
    return len(head) <= chars


def use_stored_prefixes(query: EventQuery, columns: Mapping[str, object]) -> EventQuery:
    """`query` with every test that a stored prefix column decides moved onto that column."""
    prefixes = {
        field: prefix
        for field, prefix in stored_prefixes(columns).items()
        if field in columns  # the whole value stays readable for the rest and for the alert
    }
    if not prefixes:
        return query
    return replace(query, condition=_rewrite(query.condition, prefixes))


def _rewrite(node: Node, prefixes: dict[str, tuple[str, int]]) -> Node:
    match node:
        case And(operands=ops):
            return And(tuple(_rewrite(op, prefixes) for op in ops))
        case Or(operands=ops):
            return Or(tuple(_rewrite(op, prefixes) for op in ops))
        case Not(operand=inner):
            return Not(_rewrite(inner, prefixes))
        case Wildcard(field=field, patterns=patterns, case_sensitive=False) if field in prefixes:
            column, chars = prefixes[field]
            on_prefix = tuple(p for p in patterns if decidable_on_prefix(p, chars))
            rest = tuple(p for p in patterns if not decidable_on_prefix(p, chars))
            if not on_prefix:
                return node
            if not rest:
                return Wildcard(column, on_prefix)
            return Or((Wildcard(column, on_prefix), Wildcard(field, rest)))
        case Length(field=field, value=n) if field in prefixes and n < prefixes[field][1]:
            return replace(node, field=prefixes[field][0])
    # Every other test (and any node kind this module does not know) reads the whole value.
    return node
