"""The command line, end to end: outputs, exit statuses, messages, rules, demo."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from callsweep.cli import EXIT_ALERTS, EXIT_INPUT_FAILED, app
from callsweep.synthetic import Shape, chunk

RULE_ID = "2dd480be-1263-4d9c-8672-172928f6789a"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def events(tmp_path: Path) -> tuple[Path, set[int]]:
    """A Parquet file of synthetic events and the record ids that must alert."""
    frame = chunk(Shape(rows=3000, event10_share=0.6, syscall_share=0.03, seed=5), 0, 3000)
    path = tmp_path / "events.parquet"
    frame.drop("expected_alert").write_parquet(path)
    expected = set(frame.filter("expected_alert")["winlog.record_id"].to_list())
    assert expected, "the fixture must hold alerting events"
    return path, expected


def test_scan_to_parquet(runner, events, tmp_path):
    path, expected = events
    out = tmp_path / "alerts.parquet"
    result = runner.invoke(app, ["scan", str(path), "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    alerts = pl.read_parquet(out)
    assert set(alerts["winlog.record_id"]) == expected
    assert set(alerts["kibana.alert.rule.rule_id"]) == {RULE_ID}
    assert f"{len(expected):,} alert(s) written to {out}" in result.output


def test_scan_to_csv_flattens_lists(runner, events, tmp_path):
    path, expected = events
    out = tmp_path / "alerts.csv"
    result = runner.invoke(app, ["scan", str(path), "-o", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    with open(out, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert {int(r["winlog.record_id"]) for r in rows} == expected
    assert rows[0]["threat.tactic.id"] == "TA0005; TA0002"
    assert "winlog.event_data.CallTrace" in rows[0]


def test_scan_to_ndjson_nests_ecs_documents(runner, events, tmp_path):
    path, expected = events
    out = tmp_path / "alerts.ndjson"
    result = runner.invoke(app, ["scan", str(path), "-o", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    docs = [json.loads(line) for line in out.read_text().splitlines()]
    assert {d["winlog"]["record_id"] for d in docs} == expected
    doc = docs[0]
    assert doc["kibana"]["alert"]["rule"]["rule_id"] == RULE_ID
    assert doc["threat"]["technique"]["id"] == ["T1055", "T1106"]
    assert doc["@timestamp"].endswith("Z") and doc["@timestamp"].startswith("2024-03-01T")
    assert doc["winlog"]["event_data"]["CallTrace"].startswith(
        doc["callsweep"]["call_trace"]["first_frame"]
    )
    assert doc["log"]["file"]["path"] == str(path)
    assert "line" not in doc["log"]["file"]  # a Parquet source has no line numbers


def test_empty_result_still_writes_a_valid_file(runner, tmp_path):
    frame = chunk(Shape(rows=200, syscall_share=0.0), 0, 200).drop("expected_alert")
    path = tmp_path / "quiet.parquet"
    frame.write_parquet(path)
    for suffix in (".parquet", ".csv", ".ndjson"):
        out = tmp_path / f"alerts{suffix}"
        result = runner.invoke(app, ["scan", str(path), "-o", str(out), "--no-progress"])
        assert result.exit_code == 0, result.output
        assert out.exists()
    assert pl.read_parquet(tmp_path / "alerts.parquet").height == 0
    assert (tmp_path / "alerts.csv").read_text().startswith("@timestamp,host.name,")
    assert (tmp_path / "alerts.ndjson").read_text() == ""


def test_terminal_table_and_summary(runner, events):
    path, expected = events
    result = runner.invoke(app, ["scan", str(path), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert f"{len(expected):,} alert(s)" in result.output
    assert "rows read" in result.output and "3,000" in result.output
    assert "event-10 rows" in result.output
    assert "alerts per host" in result.output
    assert "alerts per source -> target" in result.output


def test_fail_on_alert(runner, events):
    path, _ = events
    result = runner.invoke(app, ["scan", str(path), "--fail-on-alert", "--no-progress"])
    assert result.exit_code == EXIT_ALERTS


def test_fail_on_alert_without_alerts_is_success(runner, tmp_path):
    path = tmp_path / "quiet.parquet"
    chunk(Shape(rows=100, syscall_share=0.0), 0, 100).drop("expected_alert").write_parquet(path)
    result = runner.invoke(app, ["scan", str(path), "--fail-on-alert", "--no-progress"])
    assert result.exit_code == 0, result.output


def test_bad_inputs_are_named_and_the_rest_is_scanned(runner, events, tmp_path):
    path, expected = events
    not_parquet = tmp_path / "notes.txt"
    not_parquet.write_text("hello")
    corrupt = tmp_path / "broken.parquet"
    corrupt.write_bytes(b"PAR1" + b"\x00" * 64)
    missing = tmp_path / "nowhere.parquet"
    out = tmp_path / "alerts.parquet"
    result = runner.invoke(
        app,
        [
            "scan",
            str(not_parquet),
            str(corrupt),
            str(missing),
            str(path),
            "-o",
            str(out),
            "--no-progress",
        ],
    )
    assert result.exit_code == EXIT_INPUT_FAILED
    assert set(pl.read_parquet(out)["winlog.record_id"]) == expected
    assert f"{not_parquet}: not a format callsweep reads" in result.output
    assert f"{corrupt}: not a readable Parquet file" in result.output
    assert f"{missing}: no such file or directory" in result.output
    assert "inputs failed" in result.output


def test_directory_walk_counts_what_it_passes_over(runner, events, tmp_path):
    path, expected = events
    (tmp_path / "readme.txt").write_text("not data")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "more.parquet").write_bytes(path.read_bytes())
    out = tmp_path / "out" / "alerts.parquet"
    result = runner.invoke(app, ["scan", str(tmp_path), "-o", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert pl.read_parquet(out).height == 2 * len(expected)
    assert "passed over" in result.output and ".txt" in result.output


def test_glob_inputs(runner, events, tmp_path):
    _, expected = events
    result = runner.invoke(
        app,
        ["scan", str(tmp_path / "*.parquet"), "-o", str(tmp_path / "a.ndjson"), "--no-progress"],
    )
    assert result.exit_code == 0, result.output
    assert len((tmp_path / "a.ndjson").read_text().splitlines()) == len(expected)
    result = runner.invoke(app, ["scan", str(tmp_path / "*.nothing"), "--no-progress"])
    assert result.exit_code == EXIT_INPUT_FAILED
    assert "no file matches this pattern" in result.output


def test_missing_fields_are_reported_per_input(runner, tmp_path):
    frame = chunk(Shape(rows=100, syscall_share=0.5), 0, 100).drop(
        "expected_alert", "winlog.event_data.CallTrace"
    )
    path = tmp_path / "no-calltrace.parquet"
    frame.write_parquet(path)
    result = runner.invoke(app, ["scan", str(path), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert f"{path} (ecs-flat) has no winlog.event_data.CallTrace" in result.output
    assert "inputs lacking fields" in result.output


def test_since_until(runner, events, tmp_path):
    path, _ = events
    all_alerts = tmp_path / "all.parquet"
    runner.invoke(app, ["scan", str(path), "-o", str(all_alerts), "--no-progress"])
    times = pl.read_parquet(all_alerts)["@timestamp"].sort()
    middle = times[len(times) // 2]
    window = tmp_path / "window.parquet"
    result = runner.invoke(
        app,
        ["scan", str(path), "-o", str(window), "--since", middle.isoformat(), "--no-progress"],
    )
    assert result.exit_code == 0, result.output
    assert pl.read_parquet(window)["@timestamp"].min() == middle
    assert pl.read_parquet(window).height == (times >= middle).sum()
    result = runner.invoke(app, ["scan", str(path), "--until", "yesterday", "--no-progress"])
    assert result.exit_code != 0
    assert "not an ISO-8601 time" in result.output


def test_unknown_output_format_is_a_usage_error(runner, events, tmp_path):
    path, _ = events
    result = runner.invoke(app, ["scan", str(path), "-o", str(tmp_path / "a.xlsx")])
    assert result.exit_code == 1
    assert "unknown alert output format .xlsx" in result.output


def test_rules_list_and_show(runner):
    result = runner.invoke(app, ["rules", "list"])
    assert result.exit_code == 0
    assert RULE_ID in result.output and "Suspicious Process Access" in result.output
    result = runner.invoke(app, ["rules", "show", RULE_ID[:8]])
    assert result.exit_code == 0, result.output
    assert "?:\\\\WINDOWS\\\\SYSTEM32\\\\ntdll.dll*" in result.output  # the query as written
    assert "TA0005 Defense Evasion -> T1055 Process Injection" in result.output
    assert "triage" in result.output and "first frame" in result.output
    result = runner.invoke(app, ["rules", "show", "no-such-rule"])
    assert result.exit_code == 1
    assert "no rule 'no-such-rule'" in result.output


def test_demo_finds_exactly_the_planted_events(runner, tmp_path):
    result = runner.invoke(app, ["demo", "--dir", str(tmp_path), "--rows", "4000"])
    assert result.exit_code == 0, result.output
    assert "ok: exactly the" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "evtx-export-sysmon.parquet",
        "winlogbeat-sysmon.parquet",
    ]
