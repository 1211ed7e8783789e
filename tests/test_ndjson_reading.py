"""How NDJSON text is read: pieces of whole lines (one reused buffer, plain or decompressed)
through the native line scanner, and ECS blocks read field by field natively. Checked against
plain Python (split the text, test each line) and against reading whole blocks."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_ndjson import DATA, SHAPES, _events, _write

from callsweep._native import pick_lines, select_lines
from callsweep.scan import Scanner
from callsweep.sources import ndjson

needs_data = pytest.mark.skipif(
    not DATA.exists(), reason="../shared/data is not beside the project"
)

WORDS = ['{"a": 1}', '{"CallTrace": "x|y"}', "\\u0043", "\\\\users", "  ", "", "\r", "10", "é"]


def _text(rng: random.Random, lines: int, long_every: int) -> bytes:
    out = []
    for i in range(lines):
        line = "".join(rng.choice(WORDS) for _ in range(rng.randint(0, 6)))
        if long_every and i % long_every == long_every - 1:
            line = '{"CallTrace": "' + "A" * rng.randint(300, 900) + '"}'
        out.append(line)
    return ("\n".join(out) + rng.choice(["", "\n"])).encode()


def _reference(text: bytes, needles: tuple[bytes, ...] | None, limit: int):
    """(kept (number, line) pairs, overlong (number, length), non-blank lines) the plain way."""
    pieces = text.split(b"\n")
    if text.endswith(b"\n") or not text:
        pieces.pop()
    kept, overlong, seen = [], [], 0
    for number, piece in enumerate(pieces, 1):
        line = piece.removesuffix(b"\r")
        if len(line) > limit:
            overlong.append((number, len(line)))
        elif line.strip():
            seen += 1
            if needles is None or any(n in line for n in needles):
                kept.append((number, line))
    return kept, overlong, seen


@pytest.mark.parametrize("container", ["plain", "gz", "zst"])
@pytest.mark.parametrize("needles", [None, ndjson.ALERT_NEEDLES])
@pytest.mark.parametrize("seed", range(4))
def test_blocks_hold_exactly_the_lines_a_plain_split_keeps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, container: str, needles, seed: int
) -> None:
    # Small windows, blocks and line limit, so that every boundary case occurs: lines across
    # windows, lines longer than a window, overlong lines at a window's start and end.
    monkeypatch.setattr(ndjson, "READ_BYTES", 256)
    monkeypatch.setattr(ndjson, "BLOCK_BYTES", 512)
    monkeypatch.setattr(ndjson, "MAX_LINE_BYTES", 400)
    rng = random.Random(seed)
    text = _text(rng, 400, long_every=rng.choice([0, 7, 23]))
    path = tmp_path / "lines.ndjson"
    if container == "zst":
        with pa.CompressedOutputStream(str(path), "zstd") as out:
            out.write(text)
    else:
        path.write_bytes(gzip.compress(text) if container == "gz" else text)
    skipped: list = []
    blocks = list(ndjson.read_blocks(str(path), skipped, needles, block_lines=50))
    kept, overlong, seen = _reference(text, needles, 400)
    got = [pair for b in blocks for pair in zip(b.numbers, b.lines, strict=True)]
    assert got == kept
    assert all(len(b.numbers) <= 50 for b in blocks)
    assert sum(b.seen for b in blocks) == seen
    assert [int(e.where.removeprefix("line ")) for e in skipped] == [n for n, _ in overlong]
    assert all(f"({size})" in e.message for e, (_, size) in zip(skipped, overlong, strict=True))


def test_an_empty_file_has_no_blocks(tmp_path: Path) -> None:
    path = tmp_path / "empty.ndjson"
    path.write_bytes(b"")
    assert list(ndjson.read_blocks(str(path), [])) == []


def _alerts(path: Path) -> list[dict]:
    summary_alerts = []
    Scanner().run([path], on_alerts=lambda frame: summary_alerts.extend(frame.to_dicts()))
    return sorted(summary_alerts, key=lambda row: row["log.file.line"])


@needs_data
@pytest.mark.parametrize("shape", ["ecs", "es-hit"])
def test_reading_only_the_scanned_fields_gives_what_reading_every_field_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shape: str
) -> None:
    path = _write(tmp_path / "e.ndjson", [SHAPES[shape](e) for e in _events()], "plain")
    projected = _alerts(path)
    assert projected  # the Dumpert positive
    monkeypatch.setattr(ndjson.NdjsonStream, "_read_fields", lambda self, *args: None)
    assert projected == _alerts(path)


@needs_data
def test_an_event_without_category_or_calltrace_scans_without_the_prefilter(
    tmp_path: Path,
) -> None:
    """A filter that leaves no rows before the native program ran (a constant column of one
    value beside columns of none) once failed with "index is out of bounds"."""
    event = next(e for e in _events() if e.get("EventID") == 10)
    event = {k: v for k, v in event.items() if k != "CallTrace"} | {"EventID": "10"}
    path = _write(tmp_path / "one.ndjson", [SHAPES["ecs"](event)], "plain")
    result = Scanner().scan_ndjson(str(path), prefilter=False)
    assert result.alerts is None
    assert result.rows == 1


@pytest.mark.parametrize("container", ["plain", "gz"])
def test_a_100_mb_line_is_reported_and_never_held(tmp_path: Path, container: str) -> None:
    """The real limit and buffer: a 100 MB line between two events is reported with its line
    number and length, the events around it are read, and reading holds a few MB at most."""
    import tracemalloc

    size = 100 << 20
    head = b'{"EventID": 10, "CallTrace": "a"}\n'
    long_line = b'{"CallTrace": "' + b"A" * size + b'"}'
    body = head + long_line + b"\n" + head
    path = tmp_path / "long.ndjson"
    path.write_bytes(gzip.compress(body, compresslevel=1) if container == "gz" else body)
    del body
    skipped: list = []
    tracemalloc.start()
    try:
        blocks = list(ndjson.read_blocks(str(path), skipped, ndjson.ALERT_NEEDLES))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [n for b in blocks for n in b.numbers] == [1, 3]
    (error,) = skipped
    assert error.where == "line 2"
    assert f"({len(long_line)})" in error.message
    # The read buffer, a piece's copy, the decompressor's own buffers (gzip's are about 24 MB
    # here): bounded, far below the line.
    assert peak < 5 * ndjson.READ_BYTES < size / 2


# --- the native pieces of block building ------------------------------------------------------

LINE_WORDS = st.lists(
    st.sampled_from(["CallTrace", "\\u00", "x", " ", "\r", "{}", "\n"]), max_size=40
)


@settings(max_examples=200, deadline=None)
@given(words=LINE_WORDS, prefix=st.binary(max_size=8), max_line=st.integers(1, 30))
def test_select_lines_into_a_buffer_appends_what_it_returns(
    words: list[str], prefix: bytes, max_line: int
) -> None:
    """The kept lines appended straight into a block's buffer are the text it returns alone."""
    data = "".join(words).encode()
    needles = list(ndjson.ALERT_NEEDLES)
    text, *rest = select_lines(data, needles, max_line, 3)
    out = bytearray(prefix)
    empty, *rest_into = select_lines(data, needles, max_line, 3, out)
    assert empty == b"" and bytes(out) == prefix + text and rest_into == rest


@settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(st.binary(max_size=6).map(lambda b: b.replace(b"\n", b"")), max_size=30),
    picks=st.sets(st.integers(0, 35), max_size=10),
)
def test_pick_lines_cuts_out_the_lines_splitting_would(lines: list[bytes], picks: set[int]) -> None:
    text = b"".join(line + b"\n" for line in lines)
    want = b"".join(lines[i] + b"\n" for i in sorted(picks) if i < len(lines))
    assert pick_lines(text, sorted(picks)) == want
    assert pick_lines(bytearray(text), sorted(picks)) == want
