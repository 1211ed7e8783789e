"""`elastic_compat`: the alerts Elasticsearch would raise, where a keyword value over
`ignore_above: 1024` (UTF-16 code units) is not indexed and so missing (SEMANTICS.md,
CallTrace); both modes counted in one pass.

Worked cases first, then generated events against a plain reference evaluator: the value
masking written here from the Elasticsearch documentation, the verdict by the reference
evaluator of test_condition_property (written from SEMANTICS.md).
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import polars as pl
import pytest
from test_condition_property import reference
from test_semantics import LATER, NOTEPAD, UNKNOWN, Case, event_frame

import callsweep
from callsweep.rules.ast import Node
from callsweep.rules.compat import utf16_length
from callsweep.rules.exceptions import exclusion_for, load_exceptions
from callsweep.rules.explain import EXPLAIN
from callsweep.rules.model import builtin_rules, default_rule
from callsweep.scan import Scanner

CALL_TRACE = "winlog.event_data.CallTrace"
TARGET = "winlog.event_data.TargetImage"
NTDLL = r"C:\Windows\SYSTEM32\ntdll.dll+9d4c4"
CISCO = "C:\\Program Files\\Cisco\\AMP\\{}\\sfc.exe"


def padded(first: str, length: int, filler: str = "x") -> str:
    """A CallTrace of `length` characters whose first frame is `first`."""
    head = f"{first}|{LATER}|"
    return head + filler * (length - len(head))


def both_modes(path: Path, **kwargs) -> tuple[list[int], list[int]]:
    """The record ids alerted as written and in compat mode, each mode's scan counting the
    other; the two runs must agree on both counts."""
    ids = []
    for elastic in (False, True):
        frames: list[pl.DataFrame] = []
        summary = Scanner(elastic_compat=elastic, compare_modes=True, **kwargs).run(
            [path], on_alerts=frames.append
        )
        alerts = pl.concat(frames) if frames else pl.DataFrame({"winlog.record_id": []})
        ids.append(sorted(alerts["winlog.record_id"].to_list()))
        counted = (summary.alerts_as_written, summary.alerts_elastic)
        assert summary.alerts == counted[elastic]
        ids.append(counted)
    written, counts_a, elastic, counts_b = ids
    assert counts_a == counts_b == (len(written), len(elastic))
    return written, elastic


def write(tmp_path: Path, cases: list[Case]) -> Path:
    path = tmp_path / "events.parquet"
    event_frame(cases).write_parquet(path)
    return path


def test_a_long_unbacked_call_trace_alerts_only_as_written(tmp_path: Path) -> None:
    path = write(tmp_path, [Case("long", True, {CALL_TRACE: padded(UNKNOWN, 1100)})])
    assert both_modes(path) == ([1000], [])


def test_an_exclusion_on_a_long_target_no_longer_applies(tmp_path: Path) -> None:
    # `*` spans directories, so the exclusion matches as written; over 1,024 characters the
    # target is missing to Elasticsearch, and `not TargetImage : (...)` holds.
    long_target = CISCO.format("d" * 1100)
    short_target = CISCO.format("8.1.3")
    cases = [
        Case("long-target", False, {TARGET: long_target, CALL_TRACE: f"{UNKNOWN}|{LATER}"}),
        Case("short-target", False, {TARGET: short_target, CALL_TRACE: f"{UNKNOWN}|{LATER}"}),
    ]
    assert both_modes(write(tmp_path, cases)) == ([], [1000])


def test_the_limit_is_1024_utf16_code_units(tmp_path: Path) -> None:
    emoji = "\U0001f600"  # one character, two UTF-16 code units
    astral = padded(UNKNOWN, 1013, filler=emoji)
    assert len(astral) == 1013
    cases = [
        Case("1024", True, {CALL_TRACE: padded(UNKNOWN, 1024)}),
        Case("1025", True, {CALL_TRACE: padded(UNKNOWN, 1025)}),
        # 1,013 characters, but more than 1,024 code units.
        Case("astral", True, {CALL_TRACE: astral}),
        # 1,024 characters of 3 UTF-8 bytes each: long in bytes, not in code units.
        Case("bmp", True, {CALL_TRACE: padded(UNKNOWN, 1024, filler="\u20ac")}),
    ]
    assert both_modes(write(tmp_path, cases)) == ([1000, 1001, 1002, 1003], [1000, 1003])
    assert pl.select(utf16_length(pl.lit(astral))).item() > 1024


def test_each_value_of_a_multi_valued_field_on_its_own(tmp_path: Path) -> None:
    dtypes = {CALL_TRACE: pl.List(pl.String)}
    cases = [
        # As written the long ntdll value matches an exclusion (`not :` fails); dropped, it
        # leaves the unbacked one alone.
        Case("ntdll-dropped", False, {CALL_TRACE: [padded(NTDLL, 1100), UNKNOWN]}, dtypes=dtypes),
        # The ntdll value is short: excluded in both modes.
        Case("ntdll-kept", False, {CALL_TRACE: [padded(UNKNOWN, 1100), NTDLL]}, dtypes=dtypes),
        # Unbacked either way: alerts in both.
        Case("unknown", True, {CALL_TRACE: [padded(UNKNOWN, 1100), UNKNOWN]}, dtypes=dtypes),
    ]
    assert both_modes(write(tmp_path, cases)) == ([1002], [1000, 1002])


def test_exceptions_see_the_missing_values_too(tmp_path: Path) -> None:
    exceptions = tmp_path / "exceptions.toml"
    exceptions.write_text(
        '[[exception]]\nentries = [{ field = "winlog.event_data.TargetImage", '
        'operator = "matches", value = "C:\\\\\\\\Temp\\\\\\\\*" }]\n',
        encoding="utf-8",
    )
    items = load_exceptions(exceptions)
    long_temp = "C:\\Temp\\" + "t" * 1100 + ".exe"
    cases = [
        Case("short-temp", False, {TARGET: "C:\\Temp\\a.exe"}),
        Case("long-temp", False, {TARGET: long_temp}),
        Case("notepad", True, {TARGET: NOTEPAD}),
    ]
    path = write(tmp_path, cases)
    assert both_modes(path, exceptions=items) == ([1002], [1001, 1002])
    summary = Scanner(elastic_compat=True, exceptions=items).run([path])
    assert summary.excluded == 1  # Elasticsearch's exception dropped the short one only


def test_explained_on_the_values_elasticsearch_indexes(tmp_path: Path) -> None:
    long_target = CISCO.format("d" * 1100)
    path = write(tmp_path, [Case("long", False, {TARGET: long_target})])
    [lines] = callsweep.scan(path, elastic_compat=True, explain=True)[EXPLAIN].to_list()
    assert f"{TARGET} missing: no exclusion applies" in lines
    assert (
        f"{TARGET}: {len(long_target)} characters, over ignore_above 1024: not indexed, so "
        "missing to Elasticsearch" in lines
    )


def test_the_default_is_the_query_as_written(tmp_path: Path) -> None:
    path = write(tmp_path, [Case("long", True, {CALL_TRACE: padded(UNKNOWN, 1100)})])
    assert callsweep.scan(path).height == 1
    assert callsweep.scan(path, elastic_compat=True).height == 0
    assert callsweep.scan_lazy(path, elastic_compat=True, explain=True).collect().height == 0
    lazy = callsweep.scan_lazy(path, explain=True).collect()
    assert lazy.height == 1 and EXPLAIN in lazy.columns
    summary = Scanner().run([path])
    assert not summary.compared


def test_cli_summary_says_the_difference(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from callsweep.cli import app

    cases = [
        Case("long-trace", True, {CALL_TRACE: padded(UNKNOWN, 1100)}),
        Case("long-target", False, {TARGET: CISCO.format("d" * 1100)}),
        Case("plain", True, {}),
    ]
    path = write(tmp_path, cases)
    out = tmp_path / "alerts.ndjson"
    result = CliRunner().invoke(
        app, ["scan", str(path), "--elastic-compat", "-o", str(out), "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "alerts as written 2" in text
    assert "alerts Elasticsearch would raise 2" in text
    assert "differ by 1 only as written, 1 only in Elasticsearch" in text
    assert len(out.read_text(encoding="utf-8").splitlines()) == 2
    report = tmp_path / "summary.json"
    result = CliRunner().invoke(
        app, ["scan", str(path), "--elastic-compat", "--summary-json", str(report)]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(report.read_text())["elastic_compat"] == {
        "alerts_written_out": "elasticsearch",
        "alerts_as_written": 2,
        "alerts_elasticsearch": 2,
        "only_as_written": 1,
        "only_elasticsearch": 1,
    }
    result = CliRunner().invoke(app, ["scan", str(path), "--compare-elastic", "--no-progress"])
    assert "alerts Elasticsearch would raise 2" in " ".join(result.output.split())


# -- generated events against the reference --------------------------------------------------

FIRST_FRAMES = [NTDLL, UNKNOWN, r"C:\Windows\System32\sysfer.dll+1a2b", r"c:\x\ntdll.dll+1"]
TARGETS = [NOTEPAD, r"C:\Windows\system32\lsass.exe", CISCO.format("8"), None]
SOURCES = [
    r"C:\Users\Public\za3bollo.exe",
    r"C:\Program Files\Adobe\Acrobat DC\Acrobat\Acrobat.exe",
    None,
]


def generated(seed: int, n: int = 400) -> list[dict]:
    rng = random.Random(seed)
    events = []
    for i in range(n):
        length = rng.choice([60, 500, 1023, 1024, 1025, 1100, 3000])
        filler = rng.choice(["x", "\u20ac", "\U0001f600"])
        trace = rng.choice([padded(rng.choice(FIRST_FRAMES), length, filler), None])
        target = rng.choice(TARGETS)
        if rng.random() < 0.3:  # excluded as written; over 1,024 characters when deep
            target = CISCO.format("\\".join(["d"] * rng.choice([3, 520])))
        source = rng.choice(SOURCES)
        if source is not None and rng.random() < 0.2:
            source = source + "\u00e9" * 1100
        events.append(
            {
                "event.category": ["process"],
                "host.os.type": "windows",
                "event.code": rng.choice(["10", "10", "1"]),
                CALL_TRACE: trace,
                TARGET: target,
                "process.executable": source,
                "winlog.record_id": i,
            }
        )
    return events


def indexed(event: dict) -> dict:
    """What Elasticsearch indexes of an event: text values of at most 1,024 UTF-16 code
    units (written from the ignore_above documentation, not from callsweep's code)."""

    def keep(v: object) -> bool:
        return not isinstance(v, str) or len(v.encode("utf-16-le")) // 2 <= 1024

    out: dict = {}
    for key, value in event.items():
        if isinstance(value, list):
            out[key] = [v for v in value if keep(v)]
        else:
            out[key] = value if keep(value) else None
    return out


def _like(pattern: str, value: str) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL) is not None


def alerts_of(rule, exclusion: Node | None, event: dict) -> bool:
    if "process" not in (event.get("event.category") or []):
        return False
    if not reference(rule.query.condition, event):
        return False
    if exclusion is None:
        return True
    # The exception items of the test are `matches` (case-sensitive) entries.
    entries = exclusion.operands
    return not all(
        any(_like(p, v) for p in e.patterns for v in ([event[e.field]] if event[e.field] else []))
        for e in entries
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_generated_events_against_the_reference(seed: int, tmp_path: Path) -> None:
    events = generated(seed)
    path = tmp_path / "events.parquet"
    pl.DataFrame(events).write_parquet(path, row_group_size=64)
    exceptions = tmp_path / "exceptions.toml"
    exceptions.write_text(
        '[[exception]]\nentries = [{ field = "process.executable", '
        'operator = "matches", value = "*\u00e9\u00e9\u00e9*" }]\n',
        encoding="utf-8",
    )
    items = load_exceptions(exceptions)
    rules = [default_rule(), builtin_rules()["2dd480be-1263-4d9c-8672-172928f6789a@316"]]
    for rule in rules:
        exclusion = exclusion_for(rule, items)
        want_written = [e["winlog.record_id"] for e in events if alerts_of(rule, exclusion, e)]
        want_elastic = [
            e["winlog.record_id"] for e in events if alerts_of(rule, exclusion, indexed(e))
        ]
        assert want_written != want_elastic, "the generator must make the modes differ"
        got = both_modes(path, rule=rule, exceptions=items)
        assert got == (want_written, want_elastic)
    # Both rules in one pass: each rule's alerts, in both modes.
    together = callsweep.scan(path, rule=rules, exceptions=items, elastic_compat=True)
    for rule in rules:
        exclusion = exclusion_for(rule, items)
        mine = together.filter(pl.col("kibana.alert.rule.version") == str(rule.version))
        assert sorted(mine["winlog.record_id"]) == [
            e["winlog.record_id"] for e in events if alerts_of(rule, exclusion, indexed(e))
        ]


def test_the_options_travel_with_the_task_settings(tmp_path: Path) -> None:
    """What a Dask worker gets: the settings alone rebuild a scanner with both options."""
    from callsweep.scan import Part
    from callsweep.tasks import ScanSettings, Task, TaskItem, scan_partition

    cases = [
        Case("long-trace", True, {CALL_TRACE: padded(UNKNOWN, 1100)}),
        Case("plain", True, {}),
    ]
    path = write(tmp_path, cases)
    rule = default_rule()
    settings = ScanSettings(
        rule.text, rule.source, explain=True, elastic_compat=True, compare_modes=True
    )
    task = Task((TaskItem(str(path), "parquet", Part(0, 2, path.stat().st_size)),))
    [result] = scan_partition(task, settings)
    alerts = pl.from_arrow(result.alerts)
    assert alerts["winlog.record_id"].to_list() == [1001]
    assert EXPLAIN in alerts.columns
    assert result.modes == (2, 1)  # as written: 2 alerts, 1 of them also Elasticsearch's
