"""`callsweep bench` end to end on a tiny size: every tool's alert set equals the generator's
answer, the files are written, and a tool that gives a wrong answer fails the parity gate.
No timings are asserted (speed is measured in bench/, not tested)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from callsweep import synthetic, synthetic_evtx
from callsweep.benchmark import alert_keys, convert_keys, runner
from callsweep.benchmark.alert_keys import KeyedContender
from callsweep.benchmark.convert_keys import ConvertContender
from callsweep.cli import EXIT_PARITY_FAILED, app

TINY = ["--size", "3000", "--scales", "1,2", "--rounds", "2", "--slice-rows", "700"]


def _json(out: Path) -> dict:
    (report,) = out.glob("bench-*.json")
    return json.loads(report.read_text())


def test_every_tool_agrees_and_the_reports_are_written(tmp_path: Path):
    pytest.importorskip("duckdb")
    pytest.importorskip("matplotlib")
    out = tmp_path / "results"
    result = CliRunner().invoke(app, ["bench", *TINY, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "parity ok" in result.output
    report = _json(out)
    assert report["parity_ok"] and report["mismatches"] == []
    assert [size["rows"] for size in report["sizes"]] == [3000, 6000]
    assert report["machine"]["cores"] >= 1 and report["machine"]["versions"]["polars"]
    for size in report["sizes"]:
        tools = {tool["name"]: tool for tool in size["tools"]}
        assert set(tools) == {"callsweep", "polars-regex", "duckdb", "pyarrow-match-like",
                              "python-re"}  # fmt: skip
        # callsweep is judged by the generator's own answer, the others by callsweep's.
        assert tools["callsweep"]["parity"]["reference"] == runner.GENERATOR
        expected = sum(
            synthetic.chunk(synthetic.Shape(rows=size["rows"]), 0, size["rows"])["expected_alert"]
        )
        assert expected > 0 and tools["callsweep"]["alerts"] == expected
        assert all(tool["parity"]["ok"] for tool in tools.values())
        assert tools["python-re"]["extrapolated"] and tools["python-re"]["alerts"] < expected
        assert all(tool["peak_rss_mib"] > 0 for tool in tools.values())
        assert len(tools["duckdb"]["ratios_pair_by_pair"]) == 2
    convert = {tool["name"]: tool for tool in report["convert"]["tools"]}
    assert set(convert) - {"evtx_dump"} == {"callsweep convert", "evtx+orjson+pyarrow"}
    assert convert["callsweep convert"]["parity"]["reference"] == "generator (records, alerts)"
    assert all(tool["parity"]["ok"] for tool in convert.values())
    assert all(tool["records"] == 3000 for tool in convert.values())
    for chart in ("throughput", "time", "memory"):
        assert len(list(out.glob(f"bench-*-{chart}.png"))) == 1


def _loses_one_record(out):
    return frozenset(sorted(convert_keys.parquet_written(out))[1:])


def _drops_one_alert(paths):
    return frozenset(sorted(alert_keys.callsweep_keys(paths))[1:])


def test_a_wrong_answer_fails_the_parity_gate(tmp_path: Path, monkeypatch):
    real = runner.scan_contenders

    def with_a_wrong_one(query, slice_rows):
        contenders, skipped = real(query, slice_rows)
        wrong = KeyedContender("fast-but-wrong", _drops_one_alert, "drops an alert")
        return [*contenders, wrong], skipped

    real_convert = runner.convert_contenders

    def with_a_wrong_converter():
        contenders, skipped = real_convert()
        wrong = ConvertContender(
            "converts-but-loses-one", "", convert_keys.run_callsweep, _loses_one_record
        )
        return [*contenders, wrong], skipped

    monkeypatch.setattr(runner, "scan_contenders", with_a_wrong_one)
    monkeypatch.setattr(runner, "convert_contenders", with_a_wrong_converter)
    out = tmp_path / "results"
    args = ["bench", *TINY, "--scales", "1", "--no-memory", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == EXIT_PARITY_FAILED, result.output
    assert "MISMATCH vs callsweep: 1 missing, 0 extra" in result.output
    report = _json(out)
    assert not report["parity_ok"]
    (wrong,) = [t for t in report["sizes"][0]["tools"] if t["name"] == "fast-but-wrong"]
    assert wrong["parity"]["missing"] == 1 and not wrong["parity"]["ok"]
    others = [t for t in report["sizes"][0]["tools"] if t["name"] != "fast-but-wrong"]
    assert all(t["parity"]["ok"] for t in others)
    by_name = {t["name"]: t for t in report["convert"]["tools"]}
    assert by_name["converts-but-loses-one"]["parity"]["missing"] == 1
    assert by_name["callsweep convert"]["parity"]["ok"]
    assert len(report["mismatches"]) == 2


def _log(*answers):
    log = runner.AnswerLog()
    for answer in answers:
        log.add(answer)
    return log


def test_runs_that_disagree_with_each_other_fail_too():
    first = frozenset({("a", 1), ("a", 2)})
    parity = runner._parity(_log(first, first - {("a", 2)}), first, "callsweep")
    assert parity.unstable and not parity.ok
    assert runner._parity(_log(first, first), first, "callsweep").ok


def test_the_generated_data_is_deterministic_per_seed(tmp_path: Path):
    shape = synthetic.Shape(rows=2000, seed=3)
    (a,) = runner.ensure_synthetic(tmp_path / "a", shape, files=1)
    (b,) = runner.ensure_synthetic(tmp_path / "b", shape, files=1)
    assert a.name == b.name and a.read_bytes() == b.read_bytes()
    (c,) = runner.ensure_synthetic(tmp_path / "c", synthetic.Shape(rows=2000, seed=4), files=1)
    assert c.name != a.name and c.read_bytes() != a.read_bytes()
    parts = runner.ensure_synthetic(tmp_path / "d", shape, files=3)
    assert runner._row_count([str(p) for p in parts]) == 2000 and len(set(parts)) == 3


def test_the_users_own_parquet_and_evtx_files(tmp_path: Path):
    shape = synthetic.Shape(rows=2000, seed=5)
    parquet = synthetic.write_parquet(tmp_path / "mine" / "a.parquet", shape)
    evtx = synthetic_evtx.write_evtx(tmp_path / "mine" / "b.evtx", shape)
    out = tmp_path / "results"
    args = ["bench", str(parquet), str(evtx.path), "--rounds", "1", "--no-memory"]
    result = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = _json(out)
    assert [size["files"] for size in report["sizes"]] == [[str(parquet)]]
    scan = {tool["name"]: tool for tool in report["sizes"][0]["tools"]}
    # No generator's answer for the user's files: callsweep's own is the reference.
    assert scan["callsweep"]["parity"]["reference"] == "itself"
    assert scan["callsweep"]["alerts"] == sum(synthetic.chunk(shape, 0, 2000)["expected_alert"])
    assert all(tool["parity"]["ok"] for tool in scan.values())
    convert = {tool["name"]: tool for tool in report["convert"]["tools"]}
    assert convert["callsweep convert"]["records"] == evtx.records == 2000
    assert convert["evtx+orjson+pyarrow"]["parity"]["reference"] == "callsweep (records)"
    assert all(tool["parity"]["ok"] for tool in convert.values())


def test_other_inputs_are_refused_with_their_name(tmp_path: Path):
    other = tmp_path / "alerts.csv"
    other.write_text("x\n")
    result = CliRunner().invoke(app, ["bench", str(other), "--out", str(tmp_path)])
    assert result.exit_code == 1 and "alerts.csv" in result.output
