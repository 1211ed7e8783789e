"""The second test of the NDJSON prefilter: lines whose CallTrace every rule excludes.

A line kept by the needles (`ndjson.ALERT_NEEDLES`) may still be left unparsed when its bytes
prove that every value it could give `winlog.event_data.CallTrace` starts with a prefix that
makes every rule false: nearly every Sysmon event 10 has an ntdll first frame, which the
direct-syscall rule excludes with `not winlog.event_data.CallTrace : ("?:\\WINDOWS\\SYSTEM32\\
ntdll.dll*", ...)`. The byte-level proof is `callsweep_core::value_prefix` (see there what it
reads and what keeps a line); this module works out the prefixes from the rules.

A prefix qualifies when every rule has a top-level conjunct `not CallTrace : (..., "L*", ...)`
(or `not CallTrace like~ ...`; `like` gives a case-sensitive `L`) with that `L`, free of `*`:
a value that starts with `L` matches the pattern, so the conjunct, and the rule, is false. In
callsweep's two-valued evaluation (`SEMANTICS.md`) that holds for every value the reader can
give, except the values normalization reads as missing ("" and "-", which match nothing), which
no prefix of two characters or more begins. Elasticsearch's own evaluation differs on long
values (keyword `ignore_above`), so a scan that computes it never uses this test.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from callsweep.ecs import EMPTY_MEANS_MISSING
from callsweep.rules.ast import And, EventQuery, Node, Not, Or, Wildcard

CALL_TRACE = "winlog.event_data.CallTrace"
# The end of every key any shape gives the CallTrace (`CallTrace`, `winlog.event_data.CallTrace`).
KEY_NAME = b"CallTrace"

Prefix = tuple[str, bool]  # (characters with `?`, case-sensitive)


def excluded_prefixes(queries: Iterable[EventQuery]) -> tuple[Prefix, ...]:
    """The CallTrace prefixes that make every query false (empty when there is none, or no
    query)."""
    common: set[Prefix] | None = None
    for query in queries:
        found = set(_rule_prefixes(query.condition))
        # A case-sensitive prefix also proves what the folded one proves.
        found |= {(head, True) for head, sensitive in found if not sensitive}
        common = found if common is None else common & found
    if not common:
        return ()
    # The folded form where both are there: it proves more lines.
    return tuple(sorted(p for p in common if not (p[1] and (p[0], False) in common)))


def _rule_prefixes(condition: Node) -> Iterable[Prefix]:
    for conjunct in _conjuncts(condition):
        if not isinstance(conjunct, Not):
            continue
        inner = conjunct.operand
        for test in inner.operands if isinstance(inner, Or) else (inner,):
            if isinstance(test, Wildcard) and test.field == CALL_TRACE:
                for pattern in test.patterns:
                    head = pattern.rstrip("*")
                    if _usable(head, pattern):
                        yield head, test.case_sensitive


def _conjuncts(node: Node) -> Iterable[Node]:
    if isinstance(node, And):
        for operand in node.operands:
            yield from _conjuncts(operand)
    else:
        yield node


def _usable(head: str, pattern: str) -> bool:
    """A plain prefix (`head` then `*`), that no value read as missing starts with, in
    characters JSON writes plainly (no control characters: those it escapes)."""
    return (
        head != pattern
        and "*" not in head
        and len(head) > max(len(m) for m in EMPTY_MEANS_MISSING)
        and all(ord(c) >= 0x20 for c in head)
    )


def line_excluded(line: bytes, prefixes: tuple[Prefix, ...]) -> bool:
    """The test the native prefilter runs (`callsweep_core::value_prefix`), spelt out line by
    line: whether every key of `line` that may give the CallTrace holds a string starting with
    one of `prefixes`, and there is one. Defines what it drops; the tests hold it to the
    native one."""
    if not prefixes or b"\\u00" in line:
        return False
    keys = 0
    for found in re.finditer(re.escape(KEY_NAME), line):
        rest = line[found.end() :]
        if rest.startswith(b"\\"):
            return False  # maybe a key of JSON text escaped into a string
        key = re.match(rb'"[ \t\r\n]*:[ \t\r\n]*', rest)
        if key is None:
            continue  # inside some text, or a string value that ends with the name
        value = rest[key.end() :]
        if not value.startswith(b'"'):
            return False
        if not any(_spelt_start(value[1:], head, sensitive) for head, sensitive in prefixes):
            return False
        keys += 1
    return keys > 0


def _spelt_start(text: bytes, head: str, case_sensitive: bool) -> bool:
    """Whether JSON string text starts with `head`'s characters written plainly (`?`: one
    printable ASCII character other than `\\` and `"`)."""
    at = 0
    for char in head:
        if char == "?":
            if at >= len(text) or not (0x20 <= text[at] < 0x7F) or text[at] in b'\\"':
                return False
            at += 1
            continue
        spelt = ("\\" + char).encode() if char in '\\"' else char.encode()
        piece = text[at : at + len(spelt)]
        if not case_sensitive and char.isascii():
            piece, spelt = piece.lower(), spelt.lower()
        if piece != spelt:
            return False
        at += len(spelt)
    return True
