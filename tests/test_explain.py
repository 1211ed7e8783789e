"""`explain`: each alert says which clauses of its rule held, in words a hunter reads.

On the real data the first CallTrace frame named by each explanation is checked against the
frame computed here, by splitting the alert's CallTrace on `|`; worked cases give the exact
words for `and`, `or`, `not`, `in`, wildcards and functions.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from test_semantics import LSASS, NOTEPAD, UNKNOWN, Case, event_frame, trace

import callsweep
from callsweep.convert import convert
from callsweep.rules.exceptions import load_exceptions
from callsweep.rules.explain import EXPLAIN
from callsweep.rules.model import parse_rule

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CALL_TRACE = "winlog.event_data.CallTrace"
KEY = ["log.file.path", "winlog.record_id", "log.file.line"]
NT_OPEN_PROCESS = (
    "sbousseaden__EVTX-ATTACK-SAMPLES/Sysmon_10_Evasion_Suspicious_NtOpenProcess_CallTrace.evtx"
)


def rule(query: str, rule_id: str = "r-1", name: str = "worked case") -> callsweep.Rule:
    return parse_rule(
        f"[rule]\nrule_id = \"{rule_id}\"\nname = \"{name}\"\nquery = '''\n{query}\n'''\n"
    )


def explained(frame: pl.DataFrame, query: str, tmp_path: Path) -> list[list[str]]:
    path = tmp_path / "events.parquet"
    frame.write_parquet(path)
    alerts = callsweep.scan(path, rule=rule(query), explain=True)
    return alerts.sort("winlog.record_id")[EXPLAIN].to_list()


def first_frame_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith(f"{CALL_TRACE} first frame ")]


def check_first_frames(alerts: pl.DataFrame) -> None:
    """Every alert names its own first frame (split here, independently) as the value that
    matched no exclusion."""
    assert alerts.height
    for trace_text, lines in alerts.select(CALL_TRACE, EXPLAIN).iter_rows():
        frame = trace_text.split("|")[0]
        assert first_frame_lines(lines) == [
            f'{CALL_TRACE} first frame "{frame}" matched no exclusion (5 patterns)'
        ]


def test_every_real_alert_names_its_first_frame() -> None:
    # EVTX files and the OTRF NDJSON zips, scanned directly.
    alerts = callsweep.scan(DATA, explain=True)
    assert alerts.height == 5
    check_first_frames(alerts)
    # Explaining changes no verdict.
    plain = callsweep.scan(DATA)
    assert alerts.drop(EXPLAIN).sort(KEY).equals(plain.sort(KEY))


def test_every_real_alert_names_its_first_frame_on_converted_parquet(tmp_path: Path) -> None:
    # callsweep's layout, where the CallTrace tests run on the stored 64-character prefix.
    convert([DATA], tmp_path)
    alerts = callsweep.scan(tmp_path, explain=True)
    assert alerts.height == 5
    check_first_frames(alerts)


def test_the_built_in_rule_explained_clause_by_clause(tmp_path: Path) -> None:
    frame = event_frame(Case("unknown", True, trace(UNKNOWN)))
    path = tmp_path / "e.parquet"
    frame.write_parquet(path)
    [lines] = callsweep.scan(path, explain=True)[EXPLAIN].to_list()
    length = len(frame[CALL_TRACE][0])
    assert lines == [
        'event.category == "process"',
        'host.os.type == "windows"',
        'event.code == "10"',
        f"length({CALL_TRACE}) > 0: {length} characters",
        f'{CALL_TRACE} first frame "{UNKNOWN}" matched no exclusion (5 patterns)',
        f'winlog.event_data.TargetImage "{NOTEPAD}" matched no exclusion (4 patterns)',
        "not (process.executable : (2 patterns) and not winlog.event_data.TargetImage : "
        '"?:\\WINDOWS\\system32\\lsass.exe"): process.executable '
        '"C:\\Users\\Public\\za3bollo.exe" matched none of 2 patterns',
    ]


def test_not_of_a_conjunction_names_the_operand_that_failed(tmp_path: Path) -> None:
    acrobat = r"C:\Program Files\Adobe\Acrobat DC\Acrobat\Acrobat.exe"
    values = {"process.executable": acrobat, "winlog.event_data.TargetImage": LSASS}
    frame = event_frame(Case("acrobat-lsass", True, {**values, **trace(UNKNOWN)}))
    path = tmp_path / "e.parquet"
    frame.write_parquet(path)
    [lines] = callsweep.scan(path, explain=True)[EXPLAIN].to_list()
    assert lines[-1].endswith(
        f'): winlog.event_data.TargetImage "{LSASS}" matches "?:\\WINDOWS\\system32\\lsass.exe"'
    )


def test_missing_fields_are_said(tmp_path: Path) -> None:
    frame = event_frame(
        [
            Case("target-null", True, {"winlog.event_data.TargetImage": None}),
            Case("source-null", True, {"process.executable": None}),
        ]
    )
    path = tmp_path / "e.parquet"
    frame.write_parquet(path)
    first, second = callsweep.scan(path, explain=True).sort("winlog.record_id")[EXPLAIN]
    assert "winlog.event_data.TargetImage missing: no exclusion applies" in first
    assert second[-1].endswith("process.executable missing matched none of 2 patterns")


# (query, the event's values, the lines of its explanation after the category line)
WORKED: list[tuple[str, dict, list[str]]] = [
    (
        'process.executable : ("*\\\\cmd.exe", "*\\\\za3*.exe")',
        {},
        ['process.executable "C:\\Users\\Public\\za3bollo.exe" matches "*\\za3*.exe"'],
    ),
    (
        'process.executable like~ "c:\\\\users\\\\*"',
        {},
        ['process.executable "C:\\Users\\Public\\za3bollo.exe" matches "c:\\users\\*"'],
    ),
    (
        'process.executable like "C:\\\\Users\\\\*"',
        {},
        ['process.executable "C:\\Users\\Public\\za3bollo.exe" like "C:\\Users\\*"'],
    ),
    (
        'winlog.event_data.GrantedAccess in ("0x1010", "0x1fffff") and process.pid > 100',
        {},
        [
            'winlog.event_data.GrantedAccess "0x1fffff" in ("0x1010", "0x1fffff")',
            "process.pid 4242 > 100",
        ],
    ),
    (
        'host.name in~ ("workstation5", "a", "b", "c")',
        {},
        ['host.name "WORKSTATION5" in~ ("workstation5", "a", "b", … 4 values)'],
    ),
    (
        'host.name == "X" or process.pid == 4242 or host.name == "WORKSTATION5"',
        {},
        ["or branch 2 of 3: process.pid == 4242"],
    ),
    (
        'not (host.name == "X" or process.pid > 5000)',
        {},
        [
            'not (host.name == "X" or process.pid > 5000): host.name "WORKSTATION5" is not "X" '
            "and process.pid 4242 is not > 5000"
        ],
    ),
    (
        'host.name != "X" and not winlog.event_data.GrantedAccess in ("0x1410")',
        {},
        [
            'host.name "WORKSTATION5" != "X"',
            'not (winlog.event_data.GrantedAccess in ("0x1410")): '
            'winlog.event_data.GrantedAccess "0x1fffff" not in ("0x1410")',
        ],
    ),
    (
        'startsWith~(process.executable, "c:\\\\users") and '
        'not stringContains(winlog.event_data.TargetImage, "lsass")',
        {},
        [
            'process.executable "C:\\Users\\Public\\za3bollo.exe" starts with "c:\\users" '
            "(ASCII case folded)",
            'not (stringContains(winlog.event_data.TargetImage, "lsass")): '
            'winlog.event_data.TargetImage "C:\\Windows\\system32\\notepad.exe" '
            'does not contain "lsass"',
        ],
    ),
    (
        "length(winlog.event_data.GrantedAccess) == 8 and "
        '(host.name == "X" or (process.pid >= 4242 and endsWith(host.name, "5")))',
        {},
        [
            "length(winlog.event_data.GrantedAccess) == 8: 8 characters",
            'or branch 2 of 2: process.pid 4242 >= 4242 and host.name "WORKSTATION5" ends with "5"',
        ],
    ),
    (
        'event.category : "proc*" and host.name : "*"',
        {"event.category": ["process", "access"]},
        [
            'event.category "[process, access]" matches "proc*"',
            'host.name "WORKSTATION5" matches "*"',
        ],
    ),
]


@pytest.mark.parametrize(("condition", "values", "expected"), WORKED)
def test_worked_cases(condition: str, values: dict, expected: list[str], tmp_path: Path) -> None:
    frame = event_frame(Case("case", True, values))
    [lines] = explained(frame, f"process where {condition}", tmp_path)
    assert lines == ['event.category == "process"', *expected]


def test_long_values_are_truncated(tmp_path: Path) -> None:
    image = "C:\\" + "x" * 300 + ".exe"
    frame = event_frame(Case("long", True, {"process.executable": image}))
    [lines] = explained(frame, 'process where process.executable : "*.exe"', tmp_path)
    assert lines[1] == f'process.executable "{image[:120]}…" matches "*.exe"'


@pytest.fixture
def exceptions_file(tmp_path: Path) -> Path:
    path = tmp_path / "exceptions.toml"
    path.write_text(
        "[[exception]]\n"
        'name = "lsass from anything"\n'
        'entries = [{ field = "winlog.event_data.TargetImage", operator = "is", '
        f'value = "{LSASS.replace(chr(92), chr(92) * 2)}" }}]\n',
        encoding="utf-8",
    )
    return path


def test_several_rules_each_alert_explains_its_own_rule(
    tmp_path: Path, exceptions_file: Path
) -> None:
    by_host = rule('process where host.name == "WORKSTATION5"', "by-host", "by host")
    by_pid = rule("process where process.pid > 4000", "by-pid", "by pid")
    frame = event_frame(
        [
            Case("both", True, {}),
            Case("host-only", True, {"process.pid": 7}),
            Case("dropped", True, {"winlog.event_data.TargetImage": LSASS}),
        ]
    )
    path = tmp_path / "e.parquet"
    frame.write_parquet(path)
    alerts = callsweep.scan(
        path,
        rule=[by_host, by_pid],
        explain=True,
        exceptions=load_exceptions(exceptions_file),
    )
    got = {
        (record, rule_id): lines
        for record, rule_id, lines in alerts.select(
            "winlog.record_id", "kibana.alert.rule.rule_id", EXPLAIN
        ).iter_rows()
    }
    no_exception = "no exception applied (1 item)"
    host_lines = ['event.category == "process"', 'host.name == "WORKSTATION5"', no_exception]
    assert got == {
        (1000, "by-host"): host_lines,
        (1000, "by-pid"): ['event.category == "process"', "process.pid 4242 > 4000", no_exception],
        (1001, "by-host"): host_lines,
    }


def test_evtx_and_ndjson_inputs() -> None:
    evtx = DATA / NT_OPEN_PROCESS
    check_first_frames(callsweep.scan(evtx, explain=True))
    ndjson = DATA / "OTRF__Security-Datasets/cmd_lsass_memory_dumpert_syscalls.zip"
    alerts = callsweep.scan(ndjson, explain=True)
    assert alerts["log.file.line"].to_list() == [53]
    check_first_frames(alerts)


def test_no_alert_still_has_the_column(tmp_path: Path) -> None:
    frame = event_frame(Case("ntdll", False, {}))
    path = tmp_path / "e.parquet"
    frame.write_parquet(path)
    alerts = callsweep.scan(path, rule=rule('process where host.name == "nobody"'), explain=True)
    assert alerts.height == 0 and alerts.schema[EXPLAIN] == pl.List(pl.String)


@pytest.mark.parametrize("suffix", [".parquet", ".ndjson", ".csv"])
def test_cli_writes_the_explanation(suffix: str, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from callsweep.cli import app

    evtx = DATA / NT_OPEN_PROCESS
    out = tmp_path / f"alerts{suffix}"
    result = CliRunner().invoke(app, ["scan", str(evtx), "--explain", "-o", str(out)])
    assert result.exit_code == 0, result.output
    wanted = f'{CALL_TRACE} first frame "{UNKNOWN}" matched no exclusion (5 patterns)'
    if suffix == ".parquet":
        [lines] = pl.read_parquet(out)[EXPLAIN].to_list()
        assert wanted in lines
    elif suffix == ".ndjson":
        [doc] = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        assert wanted in doc["callsweep"]["explain"]
    else:
        assert wanted in pl.read_csv(out)[EXPLAIN][0].split("; ")


def test_cli_terminal_table_shows_the_short_form() -> None:
    from typer.testing import CliRunner

    from callsweep.cli import app, out_console

    evtx = DATA / NT_OPEN_PROCESS
    width = out_console._width
    out_console.width = 400  # one line per row, so that the words can be looked for
    try:
        result = CliRunner().invoke(app, ["scan", str(evtx), "--explain", "--no-progress"])
    finally:
        out_console._width = width
    assert result.exit_code == 0, result.output
    # The short form: the lines that depend on the event, without `winlog.event_data.`.
    assert f'CallTrace first frame "{UNKNOWN}" matched no exclusion (5 patterns)' in result.output
    assert 'event.code == "10"' not in result.output


def test_explained_after_the_filter_only(tmp_path: Path) -> None:
    """The explanation is computed above the rule's filter in the plan, so on alert rows
    only: a scan does not pay for it on the events that do not alert."""
    from callsweep.scan import Scanner

    path = tmp_path / "e.parquet"
    event_frame(Case("x", True)).write_parquet(path)
    two = [rule('process where host.name : "W*"', "a"), rule("process where process.pid > 1", "b")]
    for scanner in (Scanner(explain=True), Scanner(two, explain=True)):
        plan = scanner.alerts_query(str(path)).explain().splitlines()
        # The deepest step computing an explanation column.
        explained = max(
            i
            for i, line in enumerate(plan)
            if 'alias("callsweep.explain")' in line or 'alias("callsweep.scan.explain' in line
        )
        # The plan prints the last step first: the rule's filter comes below the explanation.
        assert any(
            ("FILTER" in line or "SELECTION" in line) and ("python_udf" in line or "hit" in line)
            for line in plan[explained + 1 :]
        )
