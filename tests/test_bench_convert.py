"""`bench/bench_convert.py`: choosing the inputs timed (`--inputs`) and skipping the scan phase."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture
def bench_convert(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(BENCH))
    import bench_convert

    built: list[tuple] = []

    def corpus(folder, megabytes, share):
        built.append(("corpus", megabytes))
        return folder / "evtx-corpus", {}

    def large(folder, megabytes):
        built.append(("large", megabytes))
        return f"large-{megabytes:g}"

    monkeypatch.setattr(bench_convert, "ensure_corpus", corpus)
    monkeypatch.setattr(bench_convert, "corpus_inputs", lambda root, facts: ("whole", "subset"))
    monkeypatch.setattr(bench_convert, "ensure_large_file", large)
    bench_convert.built = built
    yield bench_convert
    sys.modules.pop("bench_convert", None)


def test_every_input_by_default(bench_convert, tmp_path: Path) -> None:
    args = bench_convert.parse_args(["--data", str(tmp_path), "--large-mb", "8"])
    timed, scanned = bench_convert.build_inputs(args)
    assert timed == ["whole", "subset", "large-8", "large-2"]
    assert scanned == ["whole", "large-8"]


def test_some_inputs_and_no_scan(bench_convert, tmp_path: Path) -> None:
    args = bench_convert.parse_args(["--data", str(tmp_path), "--inputs", "large-small,large"])
    timed, scanned = bench_convert.build_inputs(args)
    # In the usual order, whatever order they were named in; no corpus built.
    assert timed == ["large-256", "large-64"]
    assert scanned == ["large-256"]
    assert [kind for kind, _ in bench_convert.built] == ["large", "large"]
    args = bench_convert.parse_args(["--data", str(tmp_path), "--inputs", "subset", "--no-scan"])
    timed, scanned = bench_convert.build_inputs(args)
    assert timed == ["subset"]
    assert scanned == []


@pytest.mark.parametrize("inputs", ["huge", "large,huge", ","])
def test_unknown_inputs_are_refused(bench_convert, tmp_path: Path, inputs: str) -> None:
    with pytest.raises(SystemExit):
        bench_convert.parse_args(["--data", str(tmp_path), "--inputs", inputs])
