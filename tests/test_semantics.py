"""End-to-end verdicts of the built-in rule (version 311) against SEMANTICS.md.

Every row of the "Worked cases" table, and the operator table's rules, is an event written to
Parquet as flat ECS and scanned with `callsweep.scan`; the verdict is what Elasticsearch decides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import polars as pl
import pytest

import callsweep

SYSMON_CHANNEL = "Microsoft-Windows-Sysmon/Operational"

LATER = r"C:\Windows\System32\KERNELBASE.dll+2c13e|C:\Windows\System32\kernel32.dll+17034"
NTDLL = r"C:\Windows\SYSTEM32\ntdll.dll+9d4c4"
UNKNOWN = "UNKNOWN(000001F3C35A0014)"
UNKNOWN_TRACE = f"{UNKNOWN}|{LATER}"
NTDLL_TRACE = f"{NTDLL}|{LATER}"

NOTEPAD = r"C:\Windows\system32\notepad.exe"
LSASS = r"C:\Windows\system32\lsass.exe"
ACROBAT = r"C:\Program Files\Adobe\Acrobat DC\Acrobat\Acrobat.exe"
WOW_CLASSIC = r"C:\Program Files (x86)\World of Warcraft\_classic_\WowClassic.exe"
SOURCE = r"C:\Users\Public\za3bollo.exe"

TS = datetime(2024, 3, 1, 12, 30, 15, 123000, tzinfo=UTC)

BASE: dict[str, Any] = {
    "@timestamp": TS,
    "host.name": "WORKSTATION5",
    "host.os.type": "windows",
    "event.code": "10",
    "event.category": ["process"],
    "process.executable": SOURCE,
    "process.pid": 4242,
    "process.entity_id": "{39e4a257-1234-5f8d-4304-000000000700}",
    "winlog.event_data.TargetImage": NOTEPAD,
    "winlog.event_data.TargetProcessId": "5120",
    "winlog.event_data.GrantedAccess": "0x1fffff",
    "winlog.event_data.CallTrace": UNKNOWN_TRACE,
    "winlog.record_id": 1,
    "winlog.channel": SYSMON_CHANNEL,
}
BASE_SCHEMA: dict[str, pl.DataType] = {
    "@timestamp": pl.Datetime("us", "UTC"),
    "host.name": pl.String(),
    "host.os.type": pl.String(),
    "event.code": pl.String(),
    "event.category": pl.List(pl.String()),
    "process.executable": pl.String(),
    "process.pid": pl.Int64(),
    "process.entity_id": pl.String(),
    "winlog.event_data.TargetImage": pl.String(),
    "winlog.event_data.TargetProcessId": pl.String(),
    "winlog.event_data.GrantedAccess": pl.String(),
    "winlog.event_data.CallTrace": pl.String(),
    "winlog.record_id": pl.Int64(),
    "winlog.channel": pl.String(),
}


@dataclass(frozen=True)
class Case:
    id: str
    alert: bool
    values: dict[str, Any] = field(default_factory=dict)
    # Columns the Parquet file does not have at all.
    absent: tuple[str, ...] = ()
    # dtypes replacing the base schema's (list columns for multi-valued fields, integers...).
    dtypes: dict[str, pl.DataType] = field(default_factory=dict)


def event_frame(cases: list[Case] | Case, first_id: int = 1000) -> pl.DataFrame:
    """One row per case (all cases share one schema), record ids first_id, first_id + 1..."""
    cases = [cases] if isinstance(cases, Case) else cases
    schema = dict(BASE_SCHEMA)
    for case in cases:
        schema.update(case.dtypes)
    absent = {name for case in cases for name in case.absent}
    rows = []
    for i, case in enumerate(cases):
        row = {**BASE, **case.values, "winlog.record_id": first_id + i}
        rows.append({k: v for k, v in row.items() if k not in absent})
    schema = {k: v for k, v in schema.items() if k not in absent}
    return pl.DataFrame(rows, schema=schema, orient="row")


def missing_variants(name: str, what: str, alert: bool, **values: Any) -> list[Case]:
    """A missing field twice: the column absent from the file, and present but null."""
    return [
        Case(f"{what}-column-absent", alert, values, absent=(name,)),
        Case(f"{what}-null", alert, {**values, name: None}),
    ]


def trace(first: str) -> dict[str, Any]:
    return {"winlog.event_data.CallTrace": f"{first}|{LATER}"}


# The "Worked cases" table of SEMANTICS.md, row by row.
WORKED_CASES: list[Case] = [
    Case("ntdll-first-frame", False, trace(NTDLL)),
    Case("unknown-first-frame", True, trace(UNKNOWN)),
    Case("ntdll-all-lower-case", False, trace(r"c:\windows\system32\ntdll.dll+9d4c4")),
    Case("unc-prefix-question-mark-cannot-cover-4-chars", True, trace("\\\\?\\" + NTDLL)),
    Case("no-drive-letter-question-mark-cannot-match-nothing", True, trace(NTDLL[1:])),
    Case("wow64cpu-first-frame", False, trace(r"C:\Windows\System32\wow64cpu.dll+1cf3")),
    Case("win32u-first-frame", False, trace(r"C:\Windows\System32\win32u.dll+1144")),
    Case("sysfer-first-frame-v311", True, trace(r"C:\Windows\System32\sysfer.dll+1a2b")),
    Case(
        "ntdll-first-unknown-later",
        False,
        {"winlog.event_data.CallTrace": f"{NTDLL}|{UNKNOWN}|{LATER}"},
    ),
    *missing_variants("winlog.event_data.CallTrace", "calltrace-missing", False),
    Case("calltrace-empty-string", False, {"winlog.event_data.CallTrace": ""}),
    Case(
        "cisco-target-star-spans-directories",
        False,
        {"winlog.event_data.TargetImage": r"C:\Program Files\Cisco\AMP\8.1.3\x\sfc.exe"},
    ),
    Case(
        "cisco-target-needs-directory-between",
        True,
        {"winlog.event_data.TargetImage": r"C:\Program Files\Cisco\AMP\sfc.exe"},
    ),
    Case(
        "acrobat-source-lsass-target",
        True,
        {"process.executable": ACROBAT, "winlog.event_data.TargetImage": LSASS},
    ),
    Case(
        "acrobat-source-notepad-target",
        False,
        {"process.executable": ACROBAT, "winlog.event_data.TargetImage": NOTEPAD},
    ),
    *missing_variants("process.executable", "process-executable-missing", True),
    *missing_variants("winlog.event_data.TargetImage", "targetimage-missing", True),
    Case("host-os-type-capital-windows", False, {"host.os.type": "Windows"}),
    *missing_variants("host.os.type", "host-os-type-missing", False),
    Case("event-category-network", False, {"event.category": ["network"]}),
]

# The other exclusions of the rule, and the operator table's finer points, through the whole rule.
OPERATOR_CASES: list[Case] = [
    # The remaining CallTrace exclusions.
    Case("syswow64-ntdll-first-frame", False, trace(r"D:\Windows\SysWOW64\ntdll.dll+7e1c")),
    Case("wow64win-first-frame", False, trace(r"C:\WINDOWS\System32\wow64win.dll+31c2")),
    # `*` runs over backslashes and newlines; `:` is a whole-value match.
    Case(
        "star-spans-newline-in-calltrace",
        False,
        {"winlog.event_data.CallTrace": "C:\\Windows\\System32\\ntdll.dll\n+9d4c4|" + LATER},
    ),
    Case(
        "star-spans-newline-in-target",
        False,
        {"winlog.event_data.TargetImage": "C:\\Program Files\\Cisco\\AMP\\8.1\n3\\sfc.exe"},
    ),
    Case(
        "excluded-target-exact",
        False,
        {
            "winlog.event_data.TargetImage": (
                r"C:\Program Files (x86)\Malwarebytes Anti-Exploit\mbae-svc.exe"
            )
        },
    ),
    Case(
        "excluded-target-with-suffix-is-not-whole-value",
        True,
        {
            "winlog.event_data.TargetImage": (
                r"C:\Program Files (x86)\Malwarebytes Anti-Exploit\mbae-svc.exe.bak"
            )
        },
    ),
    Case(
        "edgewebview-target-excluded",
        False,
        {
            "winlog.event_data.TargetImage": (
                r"D:\Program Files (x86)\Microsoft\EdgeWebView\Application\120.0\msedgewebview2.exe"
            )
        },
    ),
    # `?` is exactly one character, whatever its UTF-8 length.
    Case("question-mark-matches-non-ascii-drive", False, trace("é" + NTDLL[1:])),
    Case("question-mark-matches-emoji-drive", False, trace("\U0001f600" + NTDLL[1:])),
    # ASCII letters fold, nothing else: Turkish dotted I and dotless i stay themselves.
    Case(
        "dotted-capital-i-does-not-fold", True, trace("C:\\W\u0130NDOWS\\SYSTEM32\\ntdll.dll+9d4c4")
    ),
    Case("dotless-i-does-not-fold", True, trace("C:\\Windows\\System32\\w\u0131n32u.dll+1144")),
    Case(
        "lsass-matches-case-insensitively",
        True,
        {"process.executable": ACROBAT, "winlog.event_data.TargetImage": LSASS.upper()},
    ),
    # `_classic_` holds literal underscores (no SQL LIKE leaking through).
    Case("literal-underscores-excluded-source", False, {"process.executable": WOW_CLASSIC}),
    Case(
        "underscore-is-not-a-single-char-wildcard",
        True,
        {"process.executable": WOW_CLASSIC.replace("_classic_", "XclassicX")},
    ),
    # `==` is exact and case-sensitive.
    Case("host-os-type-upper-case", False, {"host.os.type": "WINDOWS"}),
    Case("host-os-type-trailing-space", False, {"host.os.type": "windows "}),
    Case("event-code-with-leading-zero", False, {"event.code": "010"}),
    Case("event-code-1", False, {"event.code": "1"}),
    # A numeric event.code 10 is the keyword "10".
    Case("event-code-int64-10", True, {"event.code": 10}, dtypes={"event.code": pl.Int64()}),
    Case("event-code-int32-10", True, {"event.code": 10}, dtypes={"event.code": pl.Int32()}),
    Case("event-code-uint16-10", True, {"event.code": 10}, dtypes={"event.code": pl.UInt16()}),
    Case("event-code-int64-1", False, {"event.code": 1}, dtypes={"event.code": pl.Int64()}),
    Case("event-code-int64-null", False, {"event.code": None}, dtypes={"event.code": pl.Int64()}),
    # `process where`: event.category contains "process"; a plain string is one value.
    Case(
        "event-category-plain-string",
        True,
        {"event.category": "process"},
        dtypes={"event.category": pl.String()},
    ),
    Case("event-category-list-with-process", True, {"event.category": ["network", "process"]}),
    Case("event-category-empty-list", False, {"event.category": []}),
    Case("event-category-null", False, {"event.category": None}),
    Case("event-category-capital-process", False, {"event.category": ["Process"]}),
    # length("") = 0.
    Case("calltrace-empty-string-length-zero", False, {"winlog.event_data.CallTrace": ""}),
]

_LIST = pl.List(pl.String())


def _multi(name: str, values: list[str | None] | None) -> dict[str, Any]:
    return {name: values}


CT = "winlog.event_data.CallTrace"
TI = "winlog.event_data.TargetImage"
PE = "process.executable"

# Multi-valued fields: `:` and `length` hold if any value does; `not f : (...)` only if none does.
MULTI_VALUED_CASES: list[Case] = [
    Case("calltrace-list-unknown", True, _multi(CT, [UNKNOWN_TRACE]), dtypes={CT: _LIST}),
    Case(
        "calltrace-list-one-value-ntdll",
        False,
        _multi(CT, [UNKNOWN_TRACE, NTDLL_TRACE]),
        dtypes={CT: _LIST},
    ),
    Case(
        "calltrace-list-empty-string-and-unknown",
        True,
        _multi(CT, ["", UNKNOWN_TRACE]),
        dtypes={CT: _LIST},
    ),
    Case("calltrace-list-only-empty-string", False, _multi(CT, [""]), dtypes={CT: _LIST}),
    Case("calltrace-list-empty", False, _multi(CT, []), dtypes={CT: _LIST}),
    Case("calltrace-list-null-element", False, _multi(CT, [None]), dtypes={CT: _LIST}),
    Case("calltrace-list-null", False, _multi(CT, None), dtypes={CT: _LIST}),
    Case(
        "calltrace-list-null-element-and-unknown",
        True,
        _multi(CT, [None, UNKNOWN_TRACE]),
        dtypes={CT: _LIST},
    ),
    Case(
        "target-list-one-value-excluded",
        False,
        _multi(TI, [NOTEPAD, r"C:\Program Files\Cisco\AMP\8.1.3\sfc.exe"]),
        dtypes={TI: _LIST},
    ),
    Case("target-list-none-excluded", True, _multi(TI, [NOTEPAD, LSASS]), dtypes={TI: _LIST}),
    Case("target-list-empty", True, _multi(TI, []), dtypes={TI: _LIST}),
    Case(
        "source-list-with-acrobat-target-notepad",
        False,
        _multi(PE, [SOURCE, ACROBAT]),
        dtypes={PE: _LIST},
    ),
    Case(
        "source-list-with-acrobat-target-lsass",
        True,
        {PE: [SOURCE, ACROBAT], TI: LSASS},
        dtypes={PE: _LIST},
    ),
    Case(
        "source-acrobat-target-list-with-lsass",
        True,
        {PE: ACROBAT, TI: [NOTEPAD, LSASS]},
        dtypes={TI: _LIST},
    ),
    Case(
        "host-os-type-list-with-windows",
        True,
        {"host.os.type": ["linux", "windows"]},
        dtypes={"host.os.type": _LIST},
    ),
    Case(
        "host-os-type-list-without-windows",
        False,
        {"host.os.type": ["linux", "Windows"]},
        dtypes={"host.os.type": _LIST},
    ),
    Case(
        "event-code-list-with-10",
        True,
        {"event.code": ["1", "10"]},
        dtypes={"event.code": _LIST},
    ),
    Case(
        "event-code-int-list-with-10",
        True,
        {"event.code": [1, 10]},
        dtypes={"event.code": pl.List(pl.Int64())},
    ),
]


def _ids(cases: list[Case]) -> list[str]:
    return [c.id for c in cases]


def scan_one(write_parquet, case: Case) -> pl.DataFrame:
    return callsweep.scan(write_parquet(event_frame(case, first_id=7)))


def assert_verdict(alerts: pl.DataFrame, case: Case, record_id: int = 7) -> None:
    if case.alert:
        assert alerts.height == 1, f"{case.id}: expected one alert, got {alerts.height}"
        assert alerts["winlog.record_id"].to_list() == [record_id]
    else:
        assert alerts.height == 0, f"{case.id}: expected no alert, got {alerts.to_dicts()}"


@pytest.mark.parametrize("case", WORKED_CASES, ids=_ids(WORKED_CASES))
def test_worked_case(write_parquet, case: Case) -> None:
    assert_verdict(scan_one(write_parquet, case), case)


@pytest.mark.parametrize("case", OPERATOR_CASES, ids=_ids(OPERATOR_CASES))
def test_operator_case(write_parquet, case: Case) -> None:
    assert_verdict(scan_one(write_parquet, case), case)


@pytest.mark.parametrize("case", MULTI_VALUED_CASES, ids=_ids(MULTI_VALUED_CASES))
def test_multi_valued_case(write_parquet, case: Case) -> None:
    assert_verdict(scan_one(write_parquet, case), case)


def test_all_worked_cases_in_one_file(write_parquet) -> None:
    """The rows together in one file (one row group, one batch): each keeps its own verdict."""
    cases = [c for c in WORKED_CASES if not c.absent]
    alerts = callsweep.scan(write_parquet(event_frame(cases, first_id=100)))
    expected = sorted(100 + i for i, c in enumerate(cases) if c.alert)
    assert sorted(alerts["winlog.record_id"].to_list()) == expected


def test_all_worked_cases_across_row_groups(tmp_path) -> None:
    """Many rows over many row groups: the verdicts stay attached to their rows."""
    cases = [c for c in WORKED_CASES if not c.absent] * 200
    frame = event_frame(cases, first_id=1)
    path = tmp_path / "many.parquet"
    frame.write_parquet(path, row_group_size=97)
    alerts = callsweep.scan(str(path))
    expected = sorted(1 + i for i, c in enumerate(cases) if c.alert)
    assert sorted(alerts["winlog.record_id"].to_list()) == expected


def test_calltrace_null_typed_column(write_parquet) -> None:
    """A CallTrace column holding only nulls, written with Arrow's null type, is missing."""
    frame = event_frame(Case("x", False)).with_columns(
        pl.lit(None, dtype=pl.Null).alias("winlog.event_data.CallTrace")
    )
    assert frame.schema["winlog.event_data.CallTrace"] == pl.Null
    assert callsweep.scan(write_parquet(frame)).height == 0


def test_alert_record(write_parquet) -> None:
    path = write_parquet(event_frame(Case("alert", True), first_id=31337), "sysmon.parquet")
    alerts = callsweep.scan(path)
    assert alerts.height == 1
    alert = alerts.row(0, named=True)

    assert alert["kibana.alert.rule.rule_id"] == "2dd480be-1263-4d9c-8672-172928f6789a"
    assert alert["kibana.alert.rule.name"] == "Suspicious Process Access via Direct System Call"
    assert alert["kibana.alert.rule.version"] == "311"
    assert alert["kibana.alert.severity"] == "high"
    assert alert["kibana.alert.risk_score"] == 73
    assert alert["threat.tactic.id"] == ["TA0005", "TA0002"]
    assert alert["threat.tactic.name"] == ["Defense Evasion", "Execution"]
    assert alert["threat.technique.id"] == ["T1055", "T1106"]
    assert alert["threat.technique.name"] == ["Process Injection", "Native API"]

    assert alert["log.file.path"] == path
    assert alert["callsweep.call_trace.first_frame"] == UNKNOWN
    assert alert["winlog.record_id"] == 31337
    assert alert["@timestamp"] == TS
    assert alerts.schema["@timestamp"] == pl.Datetime("us", "UTC")
    assert alert["host.name"] == "WORKSTATION5"
    assert alert["event.code"] == "10"
    assert alert["process.executable"] == SOURCE
    assert alert["process.pid"] == 4242
    assert alert["winlog.event_data.TargetImage"] == NOTEPAD
    assert alert["winlog.event_data.GrantedAccess"] == "0x1fffff"
    assert alert["winlog.event_data.CallTrace"] == UNKNOWN_TRACE


@pytest.mark.parametrize(
    ("call_trace", "first_frame"),
    [
        (UNKNOWN_TRACE, UNKNOWN),
        (UNKNOWN, UNKNOWN),
        (r"C:\Users\Public\za3bollo.exe+1b2f|" + NTDLL, r"C:\Users\Public\za3bollo.exe+1b2f"),
        (
            r"C:\Windows\SysWOW64\evil.dll+11(wow64)|C:\Windows\System32\wow64cpu.dll+1cf3",
            r"C:\Windows\SysWOW64\evil.dll+11(wow64)",
        ),
    ],
    ids=["unknown-then-frames", "single-frame", "module-frame", "wow64-frame"],
)
def test_first_frame(write_parquet, call_trace: str, first_frame: str) -> None:
    frame = event_frame(Case("x", True, {"winlog.event_data.CallTrace": call_trace}))
    alerts = callsweep.scan(write_parquet(frame))
    assert alerts["callsweep.call_trace.first_frame"].to_list() == [first_frame]
