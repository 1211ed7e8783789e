"""The native field reader of NDJSON scans (`_native.extract_fields`) against a plain Python
reference: `json.loads`, then the wanted dotted paths looked up through nested and dotted keys,
values as text the way the reader documents them."""

from __future__ import annotations

import json

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from callsweep._native import extract_fields

FIELDS = ["winlog.event_data.CallTrace", "event.code", "event.category", "process.pid", "a"]
KEYS = ["winlog", "event_data", "CallTrace", "event", "code", "category", "process", "pid", "a"]


def _lookup(doc: dict, path: list[str]):
    """The value at `path`, where any run of segments may be one dotted key; the last key in
    document order wins when a field is written twice."""
    found = _MISSING
    for key, value in doc.items():
        parts = key.split(".")
        if parts == path[: len(parts)]:
            rest = path[len(parts) :]
            if not rest:
                found = value
            elif isinstance(value, dict):
                inner = _lookup(value, rest)
                if inner is not _MISSING:
                    found = inner
    return found


_MISSING = object()


def _as_text(value) -> tuple[str, object]:
    """How the reader gives a value: ("missing",), ("one", text), ("many", texts) or ("json",
    value) for what it gives as JSON text (numbers, booleans, objects, other lists)."""
    if value is _MISSING or value is None:
        return ("missing", None)
    if isinstance(value, str):
        return ("one", value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ("many", list(value))
    return ("json", value)


def _reference(line: str) -> list:
    doc = json.loads(line)
    return [_as_text(_lookup(doc, f.split("."))) for f in FIELDS]


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.text(alphabet=st.sampled_from('ab|\\"é\u2028\n C:'), max_size=8),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.lists(st.sampled_from(KEYS), min_size=1, max_size=3).map(".".join),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=12,
)
documents = st.dictionaries(
    st.lists(st.sampled_from(KEYS), min_size=1, max_size=3).map(".".join), values, max_size=6
)


@settings(max_examples=300, deadline=None)
@given(docs=st.lists(documents, min_size=1, max_size=8), ascii_only=st.booleans())
def test_fields_are_those_a_plain_lookup_finds(docs: list[dict], ascii_only: bool) -> None:
    lines = [json.dumps(d, ensure_ascii=ascii_only) for d in docs]
    columns, bad = extract_fields(("\n".join(lines) + "\n").encode(), FIELDS)
    assert bad is None
    frame = pl.Series(columns).struct.unnest()
    assert frame.columns == FIELDS
    for row, line in zip(frame.iter_rows(), lines, strict=True):
        for got, (kind, want), field in zip(row, _reference(line), FIELDS, strict=True):
            listed = isinstance(frame.schema[field], pl.List)
            if kind == "missing":
                assert got is None, (field, line)
            elif kind == "many":
                assert got == want, (field, line)
            elif kind == "one":
                assert got == ([want] if listed else want), (field, line)
            else:  # numbers, booleans as written; objects and other lists as JSON text
                assert json.loads(got[0] if listed else got) == want, (field, line)


def test_bad_lines_are_named() -> None:
    text = b'{"a": "x"}\n{"a": \n'
    columns, bad = extract_fields(text, ["a"])
    assert columns is None
    assert bad[0] == 1
    assert "EOF" in bad[1]
    assert extract_fields(b'{"a": 1}\n"just a string"\n', ["a"])[1][0] == 1
