"""Several random rules in one pass, with random exceptions, against a plain reference.

Each example draws a small vocabulary, event-10 rows over it (nulls, a multi-valued TargetImage,
sometimes a stored CallTrace prefix column as callsweep's layout writes one), 3 to 5 rules whose
conditions are built from a shared pool of tests over the supported subset (so rules share tests
as sibling rules do), and exception items for one rule or for all. Each test is drawn as its EQL
text together with a plain Python predicate written from SEMANTICS.md; nothing of callsweep's
parser, syntax tree or compiler is used by the reference.

Checked: every single-rule scan alerts on exactly the events the reference says (its rule holds
and no exception drops it); one pass over all the rules gives exactly the union of those alerts,
each tagged with its rule, the same rows the single scans wrote; the excluded count is the
reference's.
"""

from __future__ import annotations

import json
import operator
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_condition_property import glob_matches, values_of

import callsweep
from callsweep.rules.exceptions import load_exceptions
from callsweep.rules.model import parse_rule
from callsweep.scan import Scanner

Event = dict[str, object]
Predicate = Callable[[Event], bool]

CALL_TRACE = "winlog.event_data.CallTrace"
TARGET = "winlog.event_data.TargetImage"
TEXT_FIELDS = (CALL_TRACE, TARGET, "winlog.event_data.GrantedAccess", "process.executable")
PID = "process.pid"
# A field no input has: tests on it see a missing value (`?field` makes that explicit).
ABSENT = "user.name"
# Folding is ASCII only: K (Kelvin sign) and é have no ASCII case partner.
ALPHABET = ["a", "A", "b", "B", "\\", ":", "é", "\u212a", "k", "(", "*", "?"]
LITERAL = [c for c in ALPHABET if c not in "*?"]
PREFIX_CHARS = 3

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def fold(text: str) -> str:
    return text.translate(_ASCII_LOWER)


def eql_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class Clause:
    """A condition as EQL text and the reference's verdict on an event."""

    text: str
    holds: Predicate


def present(field: str) -> Callable[[Event], list]:
    return lambda event: values_of(event, field)


# --- leaves, each from the semantics table ------------------------------------------------


def wildcard(field: str, patterns: list[str], syntax: str) -> Clause:
    """`:` and `like~` fold ASCII case, `like` does not; any pattern, any value."""
    folded = syntax != "like"
    listed = ", ".join(eql_string(p) for p in patterns)
    return Clause(
        f"{field} {syntax} ({listed})",
        lambda e: any(glob_matches(p, v, folded) for v in values_of(e, field) for p in patterns),
    )


_ORDER = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def compare(field: str, op: str, value: str | int) -> Clause:
    """`==` exact (any value equals); `!=` a must_not of it (true when missing); the order
    comparisons by code point on text, by value on numbers, any value."""
    text = f"{field} {op} {eql_string(value) if isinstance(value, str) else value}"
    if op == "==":
        return Clause(text, lambda e: any(v == value for v in values_of(e, field)))
    if op == "!=":
        return Clause(text, lambda e: not any(v == value for v in values_of(e, field)))
    return Clause(text, lambda e: any(_ORDER[op](v, value) for v in values_of(e, field)))


def membership(field: str, values: list[str], form: str) -> Clause:
    """`in` exact, `in~` ASCII-folded; `not in` true when no value is in the set (or missing)."""
    listed = ", ".join(eql_string(v) for v in values)
    if form == "in~":
        wanted = {fold(v) for v in values}
        return Clause(
            f"{field} in~ ({listed})", lambda e: any(fold(v) in wanted for v in values_of(e, field))
        )
    inside = Clause(
        f"{field} in ({listed})", lambda e: any(v in values for v in values_of(e, field))
    )
    if form == "in":
        return inside
    return Clause(f"{field} not in ({listed})", lambda e: not inside.holds(e))


_STRING_TESTS = {
    "startsWith": str.startswith,
    "endsWith": str.endswith,
    "stringContains": str.__contains__,
}


def string_function(name: str, field: str, value: str, folded: bool) -> Clause:
    test = _STRING_TESTS[name]
    if folded:
        return Clause(
            f"{name}~({field}, {eql_string(value)})",
            lambda e: any(test(fold(v), fold(value)) for v in values_of(e, field)),
        )
    return Clause(
        f"{name}({field}, {eql_string(value)})",
        lambda e: any(test(v, value) for v in values_of(e, field)),
    )


_LENGTH_OPS = {**_ORDER, "==": operator.eq, "!=": operator.ne}


def length(field: str, op: str, n: int) -> Clause:
    """`length(missing)` is null: no comparison holds."""
    return Clause(
        f"length({field}) {op} {n}",
        lambda e: any(_LENGTH_OPS[op](len(v), n) for v in values_of(e, field)),
    )


def optional(test: Clause) -> Clause:
    """`?field`: the same test; the mark only says the field may be missing."""
    head, _, rest = test.text.partition(" ")
    if "(" in head:  # a function: the field is its first argument
        name, _, field = head.partition("(")
        return Clause(f"{name}(?{field} {rest}", test.holds)
    return Clause(f"?{head} {rest}", test.holds)


# --- combinators -----------------------------------------------------------------------


def all_of(tests: list[Clause]) -> Clause:
    return Clause(
        "(" + " and ".join(t.text for t in tests) + ")", lambda e: all(t.holds(e) for t in tests)
    )


def any_of(tests: list[Clause]) -> Clause:
    return Clause(
        "(" + " or ".join(t.text for t in tests) + ")", lambda e: any(t.holds(e) for t in tests)
    )


def negation(test: Clause) -> Clause:
    return Clause(f"not {test.text}", lambda e: not test.holds(e))


# --- strategies ----------------------------------------------------------------------------


def leaf(vocabulary: list[str], literals: list[str]) -> st.SearchStrategy[Clause]:
    """Tests whose values come from the example's vocabulary, so that they often hold."""
    text_field = st.sampled_from([*TEXT_FIELDS, ABSENT])
    word = st.sampled_from(vocabulary)
    # A pattern: a vocabulary word with a few characters turned into `*` or `?`.
    pattern = st.builds(
        lambda w, cuts: "".join(
            "*?"[c] if c is not None else ch for ch, c in zip(w, cuts[: len(w)], strict=True)
        ),
        word,
        st.lists(st.one_of(st.none(), st.none(), st.integers(0, 1)), min_size=8, max_size=8),
    ) | st.sampled_from(["*", "?*", "*a*", "*:\\*"])
    literal = st.sampled_from(literals)
    tests = st.one_of(
        st.builds(
            wildcard,
            text_field,
            st.lists(pattern, min_size=1, max_size=3),
            st.sampled_from([":", ":", "like~", "like"]),
        ),
        st.builds(compare, text_field, st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), word),
        st.builds(
            compare,
            st.just(PID),
            st.sampled_from(["==", "!=", "<", "<=", ">", ">="]),
            st.integers(0, 6),
        ),
        st.builds(
            membership,
            text_field,
            st.lists(literal, min_size=1, max_size=3),
            st.sampled_from(["in", "in~", "not in"]),
        ),
        st.builds(
            string_function,
            st.sampled_from(list(_STRING_TESTS)),
            text_field,
            literal,
            st.booleans(),
        ),
        st.builds(
            length,
            text_field,
            st.sampled_from(["<", "<=", ">", ">=", "==", "!="]),
            st.integers(0, 5),
        ),
    )
    return st.one_of(tests, tests.map(optional))


def condition(pool: list[Clause]) -> st.SearchStrategy[Clause]:
    return st.recursive(
        st.sampled_from(pool),
        lambda inner: st.one_of(
            inner.map(negation),
            st.lists(inner, min_size=2, max_size=3).map(all_of),
            st.lists(inner, min_size=2, max_size=3).map(any_of),
        ),
        max_leaves=5,
    )


ROUTINE = Clause(
    'host.os.type == "windows" and event.code == "10"',
    lambda e: e["host.os.type"] == "windows" and e["event.code"] == "10",
)


@dataclass(frozen=True)
class DrawnRule:
    rule_id: str
    category: str
    test: Clause

    def holds(self, event: Event) -> bool:
        in_category = self.category == "any" or "process" in values_of(event, "event.category")
        return in_category and self.test.holds(event)

    def toml(self) -> str:
        query = f"{self.category} where {self.test.text}"
        return (
            f'[rule]\nrule_id = "{self.rule_id}"\nname = "drawn {self.rule_id[:8]}"\n'
            f'version = 1\nseverity = "low"\nrisk_score = 21\nquery = """\n'
            + query.replace("\\", "\\\\").replace('"', '\\"')
            + '\n"""\n'
        )


@dataclass(frozen=True)
class DrawnException:
    rule_id: str | None
    entries: tuple[dict, ...]

    def drops(self, event: Event) -> bool:
        return all(_entry_holds(entry, event) for entry in self.entries)


def _entry_holds(entry: dict, event: Event) -> bool:
    """Elastic's exception entries: `is` a term, `is one of` terms, `matches` a case-sensitive
    wildcard query (`\\` escapes the next character); a number compares as its text."""
    present = [str(v) for v in values_of(event, entry["field"])]
    if entry["operator"] == "is":
        return entry["value"] in present
    if entry["operator"] == "is one of":
        return any(v in entry["values"] for v in present)
    return any(glob_matches(entry["pattern"], v, fold=False) for v in present)


def exception_entry(vocabulary: list[str]) -> st.SearchStrategy[dict]:
    # Mostly the fields the events fill from the vocabulary, so that entries often hold.
    field = st.sampled_from([*TEXT_FIELDS, *TEXT_FIELDS, "host.name", PID, ABSENT])
    word = st.sampled_from([*vocabulary, "1", "2", "H1"])
    tail = st.sampled_from([w[-1:] for w in vocabulary] + [""])

    def matches(field: str, w: str, star: bool, escape_all: bool) -> dict:
        pattern = ("*" if star else "") + w
        # The value escapes every backslash (a literal one) and, sometimes, every other
        # literal character too (`\a` is `a`).
        value = "".join(
            c if c in "*?" else f"\\{c}" if c == "\\" or escape_all else c for c in pattern
        )
        return {"field": field, "operator": "matches", "value": value, "pattern": pattern}

    return st.one_of(
        st.builds(lambda f, w: {"field": f, "operator": "is", "value": w}, field, word),
        st.builds(
            lambda f, ws: {"field": f, "operator": "is one of", "values": ws},
            field,
            st.lists(word, min_size=1, max_size=3),
        ),
        st.builds(matches, field, word, st.booleans(), st.booleans()),
        st.builds(matches, field, tail, st.just(True), st.booleans()),
    )


def exceptions_file(items: list[DrawnException], rules: list[DrawnRule], as_yaml: bool) -> str:
    doc = {
        "exception": [
            {
                "name": f"item {i}",
                **({"rule_id": item.rule_id} if item.rule_id else {}),
                "entries": [
                    {k: v for k, v in entry.items() if k != "pattern"} for entry in item.entries
                ],
            }
            for i, item in enumerate(items)
        ]
    }
    if as_yaml:
        return yaml.safe_dump(doc, allow_unicode=True)
    lines = []
    for item in doc["exception"]:
        lines.append("[[exception]]")
        lines += [f"{key} = {json.dumps(item[key])}" for key in ("name", "rule_id") if key in item]
        for entry in item["entries"]:
            lines.append("[[exception.entries]]")
            lines += [f"{k} = {json.dumps(v, ensure_ascii=False)}" for k, v in entry.items()]
    return "\n".join(lines) + "\n"


def events(data: st.DataObject, vocabulary: list[str], multi_target: bool) -> list[Event]:
    text = st.one_of(st.none(), st.sampled_from(vocabulary))
    target = st.one_of(st.none(), st.lists(text, max_size=3)) if multi_target else text
    event = st.fixed_dictionaries(
        {
            "event.code": st.sampled_from(["10", "10", "10", "1", None]),
            "host.os.type": st.sampled_from(["windows", "windows", "Windows", None]),
            "event.category": st.sampled_from(
                [["process"], ["process"], ["network", "process"], ["network"], None]
            ),
            "host.name": st.sampled_from(["H1", "H2", None]),
            CALL_TRACE: text,
            TARGET: target,
            "winlog.event_data.GrantedAccess": text,
            "process.executable": text,
            PID: st.one_of(st.none(), st.integers(0, 6)),
        }
    )
    return data.draw(st.lists(event, min_size=8, max_size=30), label="events")


def write_events(rows: list[Event], multi_target: bool, prefix: bool, path: Path) -> None:
    schema = {
        "@timestamp": pl.Datetime("us", "UTC"),
        "event.code": pl.String(),
        "host.os.type": pl.String(),
        "event.category": pl.List(pl.String()),
        "host.name": pl.String(),
        CALL_TRACE: pl.String(),
        TARGET: pl.List(pl.String()) if multi_target else pl.String(),
        "winlog.event_data.GrantedAccess": pl.String(),
        "process.executable": pl.String(),
        PID: pl.Int64(),
        "winlog.record_id": pl.Int64(),
    }
    moment = datetime(2024, 3, 1, tzinfo=UTC)
    frame = pl.DataFrame(
        [{**row, "@timestamp": moment, "winlog.record_id": i} for i, row in enumerate(rows)],
        schema=schema,
        orient="row",
    )
    if prefix:
        # As callsweep's layout stores it: the first characters, on which the scan decides
        # every pattern that provably needs no more.
        frame = frame.with_columns(
            pl.col(CALL_TRACE).str.slice(0, PREFIX_CHARS).alias(f"{CALL_TRACE}[:{PREFIX_CHARS}]")
        )
    frame.write_parquet(path)


KEY = ["winlog.record_id", "kibana.alert.rule.rule_id"]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.data())
def test_one_pass_is_the_union_of_single_rules_and_both_are_the_reference(
    data: st.DataObject,
) -> None:
    word = st.text(alphabet=LITERAL, min_size=1, max_size=5)
    vocabulary = data.draw(st.lists(word, min_size=2, max_size=5, unique=True), label="words")
    # Values as written, ASCII-folded, cut, and with every letter's case swapped: Python's
    # swapcase also turns the Kelvin sign into `k` and `é` into `É`, which ASCII folding must
    # not equate, so `in~` and the `~` functions meet both kinds of near miss.
    literals = [*vocabulary, *(fold(w) for w in vocabulary), *(w[:2] for w in vocabulary)]
    literals += [w.swapcase() for w in vocabulary]
    pool = data.draw(st.lists(leaf(vocabulary, literals), min_size=2, max_size=6), label="pool")
    rules = []
    for i in range(data.draw(st.integers(3, 5), label="rules")):
        test = data.draw(condition(pool), label=f"condition {i}")
        if data.draw(st.booleans(), label=f"routine {i}"):
            test = all_of([ROUTINE, test])
        category = data.draw(st.sampled_from(["process", "process", "any"]), label="category")
        rules.append(
            DrawnRule(str(uuid.UUID(int=data.draw(st.integers(0, 2**64)))), category, test)
        )
    rules = list({r.rule_id: r for r in rules}.values())
    items = data.draw(
        st.lists(
            st.builds(
                DrawnException,
                st.sampled_from([None, *(r.rule_id for r in rules)]),
                st.lists(exception_entry(vocabulary), min_size=1, max_size=2).map(tuple),
            ),
            min_size=1,
            max_size=3,
        )
        | st.just([]),
        label="exceptions",
    )
    multi_target = data.draw(st.booleans(), label="multi-valued TargetImage")
    prefix = not multi_target and data.draw(st.booleans(), label="stored prefix")
    rows = events(data, vocabulary, multi_target)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.parquet"
        write_events(rows, multi_target, prefix, path)
        loaded = [parse_rule(r.toml(), source=f"drawn:{r.rule_id}") for r in rules]
        exceptions = []
        if items:
            as_yaml = data.draw(st.booleans(), label="exceptions in YAML")
            ex_path = Path(tmp) / ("ex.yaml" if as_yaml else "ex.toml")
            ex_path.write_text(exceptions_file(items, rules, as_yaml), encoding="utf-8")
            exceptions = load_exceptions(ex_path)

        expected: dict[str, set[int]] = {}
        dropped = 0
        for rule in rules:
            mine = [x for x in items if x.rule_id in (None, rule.rule_id)]
            held = [i for i, e in enumerate(rows) if rule.holds(e)]
            kept = {i for i in held if not any(x.drops(rows[i]) for x in mine)}
            expected[rule.rule_id] = kept
            dropped += len(held) - len(kept)

        singles = [callsweep.scan(path, rule=r, exceptions=exceptions) for r in loaded]
        for rule, alerts in zip(rules, singles, strict=True):
            got = alerts["winlog.record_id"].to_list()
            assert sorted(got) == sorted(expected[rule.rule_id]), rule.test.text

        frames: list[pl.DataFrame] = []
        summary = Scanner(loaded, exceptions=exceptions).run([path], on_alerts=frames.append)
        together = pl.concat(frames) if frames else singles[0].head(0)
        want = {(i, rid) for rid, ids in expected.items() for i in ids}
        assert together.height == len(want)  # one row per (event, rule): none twice
        assert set(together.select(KEY).iter_rows()) == want
        assert together.sort(KEY).equals(pl.concat(singles).sort(KEY))
        assert summary.excluded == dropped
