"""Property tests of the wildcard kernel against an independent reference: Python's `re`.

The reference: a pattern becomes a regex (`*` -> `.*`, `?` -> `.`, every other character
escaped), matched with `re.fullmatch` under `re.ASCII | re.IGNORECASE | re.DOTALL`: only ASCII
letters fold case, `.` takes newlines, `?` is one code point. A value matches a pattern set when
it matches any pattern; a null never matches; a list matches when any element does.
"""

from __future__ import annotations

import re
from functools import lru_cache

import polars as pl
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import callsweep
from callsweep import _native

SETTINGS = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# Characters of values and of patterns' literal parts: ASCII letters of both cases (with the
# letters that have non-ASCII case partners: k/K and the Kelvin sign, s/S and long s, i/I and
# the Turkish dotted and dotless i), the path punctuation, non-ASCII letters, CJK, a 4-byte emoji
# and a newline. In values `*` and `?` are ordinary characters.
LETTERS = "abikstxABIKSTX"
OTHERS = "\\:.|+_%- é É ß ẞ \u212a \u0130 \u0131 \u017f 中 文 \U0001f600 \n".replace(" ", "")
VALUE_CHARS = LETTERS + OTHERS + "*?"
PATTERN_CHARS = LETTERS + OTHERS

value_chars = st.sampled_from(VALUE_CHARS)
values = st.text(alphabet=value_chars, max_size=12)

pattern_items = st.one_of(
    st.text(alphabet=st.sampled_from(PATTERN_CHARS), min_size=1, max_size=4),
    st.sampled_from(["*", "?", "**", "?*", "*?"]),
)
patterns = st.one_of(
    st.lists(pattern_items, max_size=6).map("".join),
    st.text(alphabet=st.sampled_from("*?"), max_size=5),  # only wildcards, and ""
)
pattern_sets = st.lists(patterns, min_size=1, max_size=4)


def _regex(pattern: str) -> str:
    return "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)


@lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(_regex(pattern), re.ASCII | re.IGNORECASE | re.DOTALL)


def reference(value: str | None, pats: list[str]) -> bool:
    if value is None:
        return False
    return any(_compiled(p).fullmatch(value) is not None for p in pats)


def reference_list(items: list[str | None] | None, pats: list[str]) -> bool:
    return items is not None and any(reference(v, pats) for v in items)


def flip_ascii_case(text: str, mask: int) -> str:
    return "".join(
        c.swapcase() if c.isascii() and c.isalpha() and mask >> (i % 30) & 1 else c
        for i, c in enumerate(text)
    )


@st.composite
def instance_of(draw, pattern: str) -> str:
    """A value built from `pattern` (wildcards filled in, ASCII case flipped), often a match."""
    out = []
    for c in pattern:
        if c == "*":
            out.append(draw(st.text(alphabet=value_chars, max_size=3)))
        elif c == "?":
            out.append(draw(value_chars))
        else:
            out.append(c)
    text = flip_ascii_case("".join(out), draw(st.integers(0, 2**30)))
    if draw(st.integers(0, 4)) == 0:  # now and then, spoil it
        pos = draw(st.integers(0, len(text)))
        text = text[:pos] + draw(st.text(alphabet=value_chars, max_size=2)) + text[pos + 1 :]
    return text


@st.composite
def case(draw, n_values: tuple[int, int] = (1, 1), nulls: bool = False):
    """A pattern set and values, half of them derived from the patterns."""
    pats = draw(pattern_sets)
    one = st.one_of(values, st.sampled_from(pats).flatmap(instance_of))
    if nulls:
        one = st.one_of(st.none(), one)
    vals = draw(st.lists(one, min_size=n_values[0], max_size=n_values[1]))
    return pats, vals


def as_list(result) -> list[object]:
    return pa.array(result).to_pylist()


# --- scalar ------------------------------------------------------------------------------------


@SETTINGS
@given(case())
@example((["?:\\WINDOWS\\SYSTEM32\\ntdll.dll*"], ["c:\\windows\\system32\\NTDLL.DLL+9d4c4"]))
@example((["?:\\WINDOWS\\SYSTEM32\\ntdll.dll*"], ["\\\\?\\C:\\Windows\\System32\\ntdll.dll"]))
@example((["?:\\WINDOWS\\SYSTEM32\\ntdll.dll*"], [":\\WINDOWS\\SYSTEM32\\ntdll.dll"]))
@example((["k"], ["\u212a"]))
@example((["K"], ["\u212a"]))
@example((["\u212a"], ["k"]))
@example((["i"], ["\u0130"]))
@example((["I"], ["\u0131"]))
@example((["\u0131"], ["I"]))
@example((["s"], ["\u017f"]))
@example((["é"], ["É"]))
@example((["ß"], ["ẞ"]))
@example((["ß"], ["ss"]))
@example((["?"], ["\U0001f600"]))
@example((["?"], ["é"]))
@example((["??"], ["é"]))
@example((["?"], ["中"]))
@example((["?"], [""]))
@example(([""], [""]))
@example(([""], ["a"]))
@example((["*"], [""]))
@example((["*"], ["\n"]))
@example((["a*b"], ["a\nb"]))
@example((["?"], ["\n"]))
@example((["*?*"], [""]))
@example((["a\\*"], ["a\\bc"]))
@example((["a\\?"], ["a\\b"]))
@example((["a\\*"], ["a*"]))
@example((["*.dll"], ["x.DLL"]))
@example((["?*?"], ["\U0001f600"]))
@example((["?*?"], ["\U0001f600\U0001f600"]))
@example((["*%*"], ["abc"]))
@example((["_"], ["a"]))
def test_scalar_is_match(data) -> None:
    pats, [value] = data
    assert _native.WildcardMatcher(pats).is_match(value) is reference(value, pats)


@SETTINGS
@given(case())
def test_each_pattern_alone_and_any(data) -> None:
    pats, [value] = data
    alone = [_native.WildcardMatcher([p]).is_match(value) for p in pats]
    assert alone == [reference(value, [p]) for p in pats]
    assert _native.WildcardMatcher(pats).is_match(value) is any(alone)


# --- polars -------------------------------------------------------------------------------


@SETTINGS
@given(case(n_values=(0, 20), nulls=True))
def test_match_series(data) -> None:
    pats, vals = data
    expected = [reference(v, pats) for v in vals]
    result = callsweep.match_series(pl.Series("v", vals, dtype=pl.String), pats)
    assert result.dtype == pl.Boolean
    assert result.to_list() == expected


@SETTINGS
@given(case(n_values=(0, 20), nulls=True), st.integers(0, 20))
def test_match_series_chunked(data, cut) -> None:
    """A series made of several Arrow chunks (as a scan hands batches over) is read whole."""
    pats, vals = data
    cut = min(cut, len(vals))
    series = pl.concat(
        [pl.Series("v", vals[:cut], dtype=pl.String), pl.Series("v", vals[cut:], dtype=pl.String)],
        rechunk=False,
    )
    result = callsweep.match_series(series, pats)
    assert result.to_list() == [reference(v, pats) for v in vals]


@SETTINGS
@given(case(n_values=(0, 20), nulls=True))
def test_match_series_categorical(data) -> None:
    pats, vals = data
    result = callsweep.match_series(pl.Series("v", vals, dtype=pl.Categorical), pats)
    assert result.to_list() == [reference(v, pats) for v in vals]


@SETTINGS
@given(case(n_values=(0, 20), nulls=True))
def test_polars_expression(data) -> None:
    pats, vals = data
    frame = pl.DataFrame({"v": pl.Series(vals, dtype=pl.String)})
    result = frame.select(pl.col("v").eql.wildcard(pats)).to_series()
    assert result.dtype == pl.Boolean
    assert result.to_list() == [reference(v, pats) for v in vals]
    lazy = frame.lazy().select(callsweep.wildcard("v", pats)).collect().to_series()
    assert lazy.to_list() == result.to_list()


@SETTINGS
@given(case(n_values=(0, 12), nulls=True))
def test_polars_list_column(data) -> None:
    pats, vals = data
    lists: list[list[str | None] | None] = [
        vals[: len(vals) // 2],
        None,
        [],
        vals[len(vals) // 2 :],
    ]
    lists += [[v] for v in vals]
    series = pl.Series("v", lists, dtype=pl.List(pl.String))
    expected = [reference_list(items, pats) for items in lists]
    assert callsweep.match_series(series, pats).to_list() == expected
    frame = pl.DataFrame({"v": series})
    assert frame.select(pl.col("v").eql.wildcard(pats)).to_series().to_list() == expected


def test_null_typed_series_never_matches() -> None:
    """A column of nulls only (polars' Null type) matches nothing."""
    for series in (pl.Series("v", [None, None]), pl.Series("v", [], dtype=pl.Null)):
        assert series.dtype == pl.Null
        result = callsweep.match_series(series, ["*"])
        assert result.to_list() == [False] * len(series)


def test_non_string_series_is_matched_as_text() -> None:
    assert callsweep.match_series(pl.Series("v", [10, 1, None]), ["1?"]).to_list() == [
        True,
        False,
        False,
    ]


# --- Arrow arrays ---------------------------------------------------------------------------

ARROW_TYPES = {
    "string": pa.string(),
    "large_string": pa.large_string(),
    "string_view": pa.string_view(),
    "dictionary": pa.dictionary(pa.int32(), pa.string()),
}


def _arrow_array(vals: list[str | None], kind: str) -> pa.Array:
    if kind == "dictionary":
        return pa.array(vals, pa.string()).dictionary_encode()
    return pa.array(vals, ARROW_TYPES[kind])


@pytest.mark.parametrize("kind", list(ARROW_TYPES))
@SETTINGS
@given(data=case(n_values=(0, 20), nulls=True), offset=st.integers(0, 3))
def test_match_arrow(kind, data, offset) -> None:
    pats, vals = data
    matcher = _native.WildcardMatcher(pats)
    arr = _arrow_array(vals, kind)
    assert arr.type == ARROW_TYPES[kind]
    expected = [reference(v, pats) for v in vals]
    result = as_list(matcher.match_arrow(arr))
    assert result == expected
    # A slice (an array with an offset) is read from its offset.
    offset = min(offset, len(vals))
    assert as_list(matcher.match_arrow(arr.slice(offset))) == expected[offset:]


@SETTINGS
@given(data=case(n_values=(0, 12), nulls=True), offset=st.integers(0, 3))
def test_match_arrow_dictionary_with_repeats(data, offset) -> None:
    """Dictionary indices pointing at the same entries many times, in any order."""
    pats, vals = data
    distinct = list(dict.fromkeys(v for v in vals if v is not None)) or ["x"]
    indices = [None if v is None else distinct.index(v) for v in vals] * 2
    arr = pa.DictionaryArray.from_arrays(pa.array(indices, pa.int32()), pa.array(distinct))
    expected = [False if i is None else reference(distinct[i], pats) for i in indices]
    matcher = _native.WildcardMatcher(pats)
    assert as_list(matcher.match_arrow(arr)) == expected
    offset = min(offset, len(indices))
    assert as_list(matcher.match_arrow(arr.slice(offset))) == expected[offset:]


@SETTINGS
@given(data=case(n_values=(0, 12), nulls=True), offset=st.integers(0, 3))
def test_match_arrow_list(data, offset) -> None:
    pats, vals = data
    lists: list[list[str | None] | None] = [
        vals[: len(vals) // 2],
        None,
        [],
        vals[len(vals) // 2 :],
    ]
    lists += [[v] for v in vals]
    arr = pa.array(lists, pa.list_(pa.string()))
    expected = [reference_list(items, pats) for items in lists]
    matcher = _native.WildcardMatcher(pats)
    assert as_list(matcher.match_arrow(arr)) == expected
    assert as_list(matcher.match_arrow(arr.slice(offset))) == expected[offset:]


@pytest.mark.parametrize("kind", list(ARROW_TYPES))
def test_match_arrow_nulls_only(kind) -> None:
    matcher = _native.WildcardMatcher(["*", ""])
    result = as_list(matcher.match_arrow(_arrow_array([None, None, None], kind)))
    assert result == [False, False, False]
    assert as_list(matcher.match_arrow(_arrow_array([], kind))) == []


def test_match_arrow_result_has_no_nulls() -> None:
    matcher = _native.WildcardMatcher(["a*"])
    result = pa.array(matcher.match_arrow(pa.array(["ab", None, "b"])))
    assert result.type == pa.bool_()
    assert result.null_count == 0


def test_no_pattern_is_an_error() -> None:
    with pytest.raises(ValueError):
        _native.WildcardMatcher([])
    with pytest.raises(ValueError):
        callsweep.match_series(pl.Series("v", ["a"]), [])
