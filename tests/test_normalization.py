"""One set of events in three shapes (flat ECS, nested ECS structs, raw Sysmon names) gives one
set of alerts; time windows, missing fields, unreadable inputs and directory walking."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import callsweep

SYSMON = "Microsoft-Windows-Sysmon/Operational"
CAPI2 = "Microsoft-Windows-CAPI2/Operational"

LATER = r"C:\Windows\System32\KERNELBASE.dll+2c13e|C:\Windows\System32\kernel32.dll+17034"
UNKNOWN_TRACE = "UNKNOWN(000001F3C35A0014)|" + LATER
NTDLL_TRACE = r"C:\Windows\SYSTEM32\ntdll.dll+9d4c4|" + LATER
SYSFER_TRACE = r"C:\Windows\System32\sysfer.dll+1a2b|C:\Windows\SYSTEM32\ntdll.dll+9d4c4"
UNC_TRACE = "\\\\?\\C:\\Windows\\System32\\ntdll.dll+9d4c4|" + LATER

LSASS = r"C:\Windows\system32\lsass.exe"
NOTEPAD = r"C:\Windows\system32\notepad.exe"
CISCO = r"C:\Program Files\Cisco\AMP\8.1.3\sfc.exe"
ACROBAT = r"C:\Program Files\Adobe\Acrobat DC\Acrobat\Acrobat.exe"
DUMPERT = r"C:\Users\administrator\Desktop\x64\Outflank-Dumpert.exe"


@dataclass(frozen=True)
class Event:
    record_id: int
    utc_time: str  # Sysmon UtcTime text
    call_trace: str | None
    source: str | None = DUMPERT
    target: str | None = LSASS
    event_id: int = 10
    channel: str = SYSMON
    host: str = "WORKSTATION5"
    source_pid: int | None = 4242
    target_pid: int | None = 612
    access: str | None = "0x1fffff"

    @property
    def is_sysmon(self) -> bool:
        return self.channel == SYSMON

    @property
    def timestamp(self) -> datetime:
        return datetime.strptime(self.utc_time, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)

    @property
    def guid(self) -> str | None:
        if self.source_pid is None:
            return None
        return f"{{39e4a257-{self.source_pid:04x}-5f8d-4304-000000000700}}"

    def ecs_call_trace(self) -> str | None:
        # The ingest pipeline removes empty and "-" values.
        return None if self.call_trace in ("", "-") else self.call_trace


EVENTS = [
    Event(101, "2020-10-19 02:56:14.360", UNKNOWN_TRACE),
    Event(102, "2020-10-19 02:56:15.001", NTDLL_TRACE),
    Event(103, "2020-10-19 02:57:00.999", SYSFER_TRACE, target=NOTEPAD, host="DC01"),
    Event(104, "2020-10-19 02:58:30.500", UNKNOWN_TRACE, target=CISCO),
    # EID 10 of another provider: no CallTrace, no Sysmon mapping.
    Event(105, "2020-10-19 03:00:00.000", None, source=None, target=None, channel=CAPI2),
    Event(106, "2020-10-19 03:00:01.250", ""),
    Event(107, "2020-10-19 03:00:02.250", "-"),
    # Process creation: not an access event.
    Event(108, "2020-10-19 03:01:00.000", None, source=None, target=None, event_id=1),
    Event(109, "2020-10-19 03:02:00.000", UNKNOWN_TRACE, source=ACROBAT, target=NOTEPAD),
    Event(110, "2020-10-19 23:59:59.999", UNC_TRACE, host="FILESRV02", source_pid=None),
]
EXPECTED_ALERTS = [101, 103, 110]


def flat_frame(events: list[Event]) -> pl.DataFrame:
    rows = [
        {
            "@timestamp": e.timestamp,
            "host.name": e.host,
            "host.os.type": "windows",
            "event.code": str(e.event_id),
            "event.category": ["process"] if e.is_sysmon else None,
            "process.executable": e.source,
            "process.pid": e.source_pid,
            "process.entity_id": e.guid,
            "winlog.event_data.TargetImage": e.target,
            "winlog.event_data.TargetProcessId": None
            if e.target_pid is None
            else str(e.target_pid),
            "winlog.event_data.GrantedAccess": e.access if e.is_sysmon else None,
            "winlog.event_data.CallTrace": e.ecs_call_trace(),
            "winlog.record_id": e.record_id,
            "winlog.channel": e.channel,
        }
        for e in events
    ]
    schema = {
        "@timestamp": pl.Datetime("ms", "UTC"),
        "host.name": pl.String,
        "host.os.type": pl.String,
        "event.code": pl.String,
        "event.category": pl.List(pl.String),
        "process.executable": pl.String,
        "process.pid": pl.Int64,
        "process.entity_id": pl.String,
        "winlog.event_data.TargetImage": pl.String,
        "winlog.event_data.TargetProcessId": pl.String,
        "winlog.event_data.GrantedAccess": pl.String,
        "winlog.event_data.CallTrace": pl.String,
        "winlog.record_id": pl.Int64,
        "winlog.channel": pl.String,
    }
    return pl.DataFrame(rows, schema=schema, orient="row")


def nested_frame(events: list[Event], call_trace: bool = True) -> pl.DataFrame:
    event_data_fields = {
        "TargetImage": pl.String,
        "TargetProcessId": pl.String,
        "GrantedAccess": pl.String,
    }
    if call_trace:
        event_data_fields["CallTrace"] = pl.String
    schema = {
        # ISO-8601 text with a Z, as Elasticsearch returns `@timestamp` in `_source`.
        "@timestamp": pl.String,
        "host": pl.Struct({"name": pl.String, "os": pl.Struct({"type": pl.String})}),
        "event": pl.Struct({"code": pl.String, "category": pl.List(pl.String)}),
        "process": pl.Struct({"executable": pl.String, "pid": pl.Int64, "entity_id": pl.String}),
        "winlog": pl.Struct(
            {
                "record_id": pl.Int64,
                "channel": pl.String,
                "event_data": pl.Struct(event_data_fields),
            }
        ),
    }
    rows = []
    for e in events:
        event_data = {
            "TargetImage": e.target,
            "TargetProcessId": None if e.target_pid is None else str(e.target_pid),
            "GrantedAccess": e.access if e.is_sysmon else None,
        }
        if call_trace:
            event_data["CallTrace"] = e.ecs_call_trace()
        rows.append(
            {
                "@timestamp": e.timestamp.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                "host": {"name": e.host, "os": {"type": "windows"}},
                "event": {
                    "code": str(e.event_id),
                    "category": ["process"] if e.is_sysmon else None,
                },
                "process": {"executable": e.source, "pid": e.source_pid, "entity_id": e.guid},
                "winlog": {
                    "record_id": e.record_id,
                    "channel": e.channel,
                    "event_data": event_data,
                },
            }
        )
    return pl.DataFrame(rows, schema=schema, orient="row")


def raw_frame(events: list[Event], host_column: str = "Computer") -> pl.DataFrame:
    rows = [
        {
            "EventID": e.event_id,
            "Channel": e.channel,
            host_column: e.host,
            "UtcTime": e.utc_time,
            "SourceImage": e.source,
            "SourceProcessGUID": e.guid,
            "SourceProcessId": e.source_pid,
            "TargetImage": e.target,
            "TargetProcessId": e.target_pid,
            "GrantedAccess": e.access if e.is_sysmon else None,
            "CallTrace": e.call_trace,
            "EventRecordID": e.record_id,
        }
        for e in events
    ]
    schema = {
        "EventID": pl.Int32,
        "Channel": pl.String,
        host_column: pl.String,
        "UtcTime": pl.String,
        "SourceImage": pl.String,
        "SourceProcessGUID": pl.String,
        "SourceProcessId": pl.Int64,
        "TargetImage": pl.String,
        "TargetProcessId": pl.Int64,
        "GrantedAccess": pl.String,
        "CallTrace": pl.String,
        "EventRecordID": pl.Int64,
    }
    return pl.DataFrame(rows, schema=schema, orient="row")


SHAPES = {
    "ecs-flat": flat_frame,
    "ecs-nested": nested_frame,
    "sysmon-raw-computer": raw_frame,
    "sysmon-raw-hostname": lambda events: raw_frame(events, host_column="Hostname"),
}

COMPARED = [
    "winlog.record_id",
    "@timestamp",
    "host.name",
    "event.code",
    "process.executable",
    "process.pid",
    "process.entity_id",
    "winlog.event_data.TargetImage",
    "winlog.event_data.TargetProcessId",
    "winlog.event_data.GrantedAccess",
    "winlog.event_data.CallTrace",
    "callsweep.call_trace.first_frame",
]


def expected_alerts() -> list[dict[str, object]]:
    by_id = {e.record_id: e for e in EVENTS}
    return [
        {
            "winlog.record_id": rid,
            "@timestamp": by_id[rid].timestamp,
            "host.name": by_id[rid].host,
            "event.code": "10",
            "process.executable": by_id[rid].source,
            "process.pid": by_id[rid].source_pid,
            "process.entity_id": by_id[rid].guid,
            "winlog.event_data.TargetImage": by_id[rid].target,
            "winlog.event_data.TargetProcessId": str(by_id[rid].target_pid),
            "winlog.event_data.GrantedAccess": by_id[rid].access,
            "winlog.event_data.CallTrace": by_id[rid].call_trace,
            "callsweep.call_trace.first_frame": str(by_id[rid].call_trace).split("|")[0],
        }
        for rid in EXPECTED_ALERTS
    ]


def alert_records(alerts: pl.DataFrame) -> list[dict[str, object]]:
    return alerts.sort("winlog.record_id").select(COMPARED).to_dicts()


@pytest.mark.parametrize("shape", list(SHAPES))
def test_shapes_give_the_same_alerts(write_parquet, shape: str) -> None:
    path = write_parquet(SHAPES[shape](EVENTS), f"{shape}.parquet")
    alerts = callsweep.scan(path)
    assert alerts.schema["@timestamp"] == pl.Datetime("us", "UTC")
    assert alert_records(alerts) == expected_alerts()


@pytest.mark.parametrize(
    ("shape", "detected"),
    [
        ("ecs-flat", "ecs-flat"),
        ("ecs-nested", "ecs-nested"),
        ("sysmon-raw-computer", "sysmon-raw"),
        ("sysmon-raw-hostname", "sysmon-raw"),
    ],
)
def test_summary_per_shape(write_parquet, shape: str, detected: str) -> None:
    path = write_parquet(SHAPES[shape](EVENTS), f"{shape}.parquet")
    summary = callsweep.Scanner().run([path])
    assert summary.errors == []
    [report] = summary.inputs
    assert report.error is None
    assert report.shape == detected
    assert report.rows == len(EVENTS)
    assert report.alerts == len(EXPECTED_ALERTS)
    assert report.missing == ()
    # Rows whose event.code is "10" (whatever the channel).
    assert report.event10_rows == sum(1 for e in EVENTS if e.event_id == 10)
    assert summary.alerts_by_host == {"WORKSTATION5": 1, "DC01": 1, "FILESRV02": 1}


def test_raw_event_10_from_capi2_with_call_trace_does_not_alert(write_parquet) -> None:
    """EID 10 outside the Sysmon channel is not a process access, whatever its fields hold."""
    events = [
        Event(1, "2020-10-19 02:56:14.360", UNKNOWN_TRACE, channel=CAPI2),
        Event(2, "2020-10-19 02:56:14.360", UNKNOWN_TRACE),
    ]
    alerts = callsweep.scan(write_parquet(raw_frame(events)))
    assert alerts["winlog.record_id"].to_list() == [2]


def test_raw_event_10_from_capi2_only(write_parquet) -> None:
    events = [Event(1, "2020-10-19 02:56:14.360", None, source=None, target=None, channel=CAPI2)]
    assert callsweep.scan(write_parquet(raw_frame(events))).height == 0


@pytest.mark.parametrize("value", ["", "-"], ids=["empty", "dash"])
def test_raw_empty_call_trace_is_missing(write_parquet, value: str) -> None:
    events = [Event(1, "2020-10-19 02:56:14.360", value)]
    assert callsweep.scan(write_parquet(raw_frame(events))).height == 0


def test_raw_event_id_as_string(write_parquet) -> None:
    frame = raw_frame(EVENTS).with_columns(pl.col("EventID").cast(pl.String))
    alerts = callsweep.scan(write_parquet(frame))
    assert alerts.sort("winlog.record_id")["winlog.record_id"].to_list() == EXPECTED_ALERTS


def test_raw_process_name_is_basename(write_parquet) -> None:
    """Not part of the alert, but the pipeline derives it: checked through normalize."""
    from callsweep.ecs import normalize

    lf = raw_frame(EVENTS[:1]).lazy()
    norm = normalize(lf, ["process.name", "process.executable", "event.code"])
    row = norm.frame.collect().row(0, named=True)
    assert row == {
        "process.name": "Outflank-Dumpert.exe",
        "process.executable": DUMPERT,
        "event.code": "10",
    }


MISSING_CALL_TRACE = {
    "ecs-flat": lambda: flat_frame(EVENTS).drop("winlog.event_data.CallTrace"),
    "ecs-nested": lambda: nested_frame(EVENTS, call_trace=False),
    "sysmon-raw": lambda: raw_frame(EVENTS).drop("CallTrace"),
}


@pytest.mark.parametrize("shape", list(MISSING_CALL_TRACE))
def test_input_without_call_trace(write_parquet, shape: str) -> None:
    path = write_parquet(MISSING_CALL_TRACE[shape](), f"{shape}.parquet")
    assert callsweep.scan(path).height == 0
    summary = callsweep.Scanner().run([path])
    assert summary.errors == []
    [report] = summary.inputs
    assert report.error is None
    assert report.alerts == 0
    assert "winlog.event_data.CallTrace" in report.missing


# --- time window ---------------------------------------------------------------------------

WINDOW_EVENTS = [
    Event(1, "2020-10-19 02:59:59.999", UNKNOWN_TRACE),
    Event(2, "2020-10-19 03:00:00.000", UNKNOWN_TRACE),
    Event(3, "2020-10-19 03:30:00.000", UNKNOWN_TRACE),
    Event(4, "2020-10-19 03:59:59.999", UNKNOWN_TRACE),
    Event(5, "2020-10-19 04:00:00.000", UNKNOWN_TRACE),
]
WINDOW_SHAPES = {
    "ecs-flat": flat_frame,
    "ecs-nested": nested_frame,
    "sysmon-raw": raw_frame,
}
PLUS_TWO = timezone(timedelta(hours=2))


@pytest.mark.parametrize("shape", list(WINDOW_SHAPES))
@pytest.mark.parametrize(
    ("since", "until", "expected"),
    [
        (None, None, [1, 2, 3, 4, 5]),
        (datetime(2020, 10, 19, 3), None, [2, 3, 4, 5]),
        (None, datetime(2020, 10, 19, 4), [1, 2, 3, 4]),
        (datetime(2020, 10, 19, 3), datetime(2020, 10, 19, 4), [2, 3, 4]),
        (datetime(2020, 10, 19, 3, tzinfo=UTC), datetime(2020, 10, 19, 4, tzinfo=UTC), [2, 3, 4]),
        (
            datetime(2020, 10, 19, 5, tzinfo=PLUS_TWO),
            datetime(2020, 10, 19, 6, tzinfo=PLUS_TWO),
            [
                2,
                3,
                4,
            ],
        ),
        (datetime(2020, 10, 19, 3, 30), datetime(2020, 10, 19, 3, 30), []),
        (datetime(2020, 10, 19, 3, 30), datetime(2020, 10, 19, 3, 30, 0, 1000), [3]),
        (datetime(2020, 10, 19, 4, 0, 0, 1), None, []),
    ],
    ids=[
        "open",
        "since-inclusive",
        "until-exclusive",
        "window",
        "utc-aware",
        "other-timezone",
        "empty-window",
        "one-millisecond",
        "after-all",
    ],
)
def test_time_window(write_parquet, shape, since, until, expected) -> None:
    path = write_parquet(WINDOW_SHAPES[shape](WINDOW_EVENTS))
    alerts = callsweep.scan(path, since=since, until=until)
    assert sorted(alerts["winlog.record_id"].to_list()) == expected


def test_time_window_leaves_events_without_time_out(write_parquet) -> None:
    frame = flat_frame(WINDOW_EVENTS).with_columns(
        pl.when(pl.col("winlog.record_id") == 3)
        .then(None)
        .otherwise(pl.col("@timestamp"))
        .alias("@timestamp")
    )
    path = write_parquet(frame)
    assert sorted(callsweep.scan(path)["winlog.record_id"].to_list()) == [1, 2, 3, 4, 5]
    alerts = callsweep.scan(path, since=datetime(2020, 10, 19))
    assert sorted(alerts["winlog.record_id"].to_list()) == [1, 2, 4, 5]


INSTANT = datetime(2020, 10, 19, 2, 56, 14, 360000, tzinfo=UTC)


@pytest.mark.parametrize(
    "column",
    [
        pl.Series("@timestamp", [INSTANT], dtype=pl.Datetime("ms", "UTC")),
        pl.Series("@timestamp", [INSTANT], dtype=pl.Datetime("ns", "UTC")),
        pl.Series("@timestamp", [INSTANT]).dt.convert_time_zone("Europe/Paris"),
        pl.Series("@timestamp", [INSTANT.replace(tzinfo=None)], dtype=pl.Datetime("us")),
        pl.Series("@timestamp", ["2020-10-19T02:56:14.360Z"]),
        pl.Series("@timestamp", ["2020-10-19T02:56:14.36Z"]),
        pl.Series("@timestamp", ["2020-10-19 02:56:14.360"]),
        pl.Series("@timestamp", ["2020-10-19T04:56:14.360+02:00"]),
        pl.Series("@timestamp", [int(INSTANT.timestamp() * 1000)], dtype=pl.Int64),
    ],
    ids=[
        "datetime-ms-utc",
        "datetime-ns-utc",
        "datetime-paris",
        "naive-datetime",
        "iso-z",
        "iso-z-two-digit-fraction",
        "sysmon-utctime-text",
        "iso-with-offset",
        "epoch-millis",
    ],
)
def test_timestamp_is_utc(write_parquet, column: pl.Series) -> None:
    frame = flat_frame([Event(1, "2020-10-19 02:56:14.360", UNKNOWN_TRACE)]).with_columns(column)
    alerts = callsweep.scan(write_parquet(frame))
    assert alerts["@timestamp"].to_list() == [INSTANT]
    window = callsweep.scan(
        write_parquet(frame, "again.parquet"),
        since=datetime(2020, 10, 19, 2, 56, 14, 360000),
        until=datetime(2020, 10, 19, 2, 56, 14, 361000),
    )
    assert window.height == 1


@pytest.mark.parametrize(
    "utc_time",
    ["2020-10-19 02:56:14.360", "2020-10-19 02:56:14.3600000", "2020-10-19 02:56:14.36"],
)
def test_raw_utc_time_precision(write_parquet, utc_time: str) -> None:
    frame = raw_frame([Event(1, utc_time, UNKNOWN_TRACE)])
    alerts = callsweep.scan(write_parquet(frame))
    assert alerts["@timestamp"].to_list() == [INSTANT]


# --- unreadable inputs ---------------------------------------------------------------------


def _good(write_parquet) -> str:
    return write_parquet(flat_frame(EVENTS), "good.parquet")


def _corrupt_parquet(path: Path) -> None:
    path.write_bytes(b"PAR1" + b"\x00\x17not really parquet\xff" * 20 + b"PAR1")


def _truncated_parquet(path: Path) -> None:
    table = pa.table({"winlog.event_data.CallTrace": [UNKNOWN_TRACE] * 1000})
    pq.write_table(table, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _text_file(path: Path) -> None:
    path.write_text("EventID,CallTrace\n10,UNKNOWN(0)\n", encoding="utf-8")


BAD_INPUTS = {
    "corrupt-parquet": ("bad.parquet", _corrupt_parquet),
    "truncated-parquet": ("truncated.parquet", _truncated_parquet),
    "text-named-parquet": ("notes.parquet", _text_file),
    "text-file": ("notes.txt", _text_file),
}


@pytest.mark.parametrize("bad", list(BAD_INPUTS))
def test_bad_input_is_reported_and_others_still_scanned(write_parquet, tmp_path, bad) -> None:
    good = _good(write_parquet)
    name, make = BAD_INPUTS[bad]
    bad_path = tmp_path / name
    make(bad_path)

    summary = callsweep.Scanner().run([str(bad_path), good])
    assert [e.path for e in summary.errors] == [str(bad_path)]
    assert str(bad_path) in str(summary.errors[0])
    assert summary.errors[0].message
    scanned = [r for r in summary.inputs if r.error is None]
    assert [r.path for r in scanned] == [good]
    assert scanned[0].alerts == len(EXPECTED_ALERTS)
    assert summary.alerts == len(EXPECTED_ALERTS)
    assert summary.failed == 1

    with pytest.raises(callsweep.ScanError, match=re.escape(str(bad_path))):
        callsweep.scan([good, str(bad_path)])


def test_several_bad_inputs(write_parquet, tmp_path) -> None:
    good = _good(write_parquet)
    bad_paths = []
    for name, make in BAD_INPUTS.values():
        path = tmp_path / name
        make(path)
        bad_paths.append(str(path))
    summary = callsweep.Scanner().run([*bad_paths[:2], good, *bad_paths[2:]])
    assert sorted(e.path for e in summary.errors) == sorted(bad_paths)
    assert summary.files == 1
    assert summary.alerts == len(EXPECTED_ALERTS)


def test_missing_path_is_an_error(write_parquet, tmp_path) -> None:
    good = _good(write_parquet)
    missing = str(tmp_path / "nope.parquet")
    summary = callsweep.Scanner().run([missing, good])
    assert [e.path for e in summary.errors] == [missing]
    assert summary.alerts == len(EXPECTED_ALERTS)
    with pytest.raises(callsweep.ScanError, match=re.escape(missing)):
        callsweep.scan([good, missing])


# --- directories ---------------------------------------------------------------------------


def test_directory_walk(tmp_path, write_parquet) -> None:
    first = [Event(1, "2020-10-19 02:56:14.360", UNKNOWN_TRACE)]
    second = [Event(2, "2020-10-19 02:56:15.360", SYSFER_TRACE)]
    write_parquet(flat_frame(first), "logs/a.parquet")
    write_parquet(raw_frame(second), "logs/sub/b.parquet")
    write_parquet(flat_frame([Event(3, "2020-10-19 02:56:16.000", NTDLL_TRACE)]), "logs/c.parquet")
    (tmp_path / "logs" / "notes.txt").write_text("not an event log\n", encoding="utf-8")

    summary = callsweep.Scanner().run([tmp_path / "logs"])
    assert summary.errors == []
    assert summary.files == 3
    assert summary.passed_over[".txt"] == 1
    assert sum(summary.passed_over.values()) == 1
    assert summary.alerts == 2
    alerts = callsweep.scan(tmp_path / "logs")
    assert sorted(alerts["winlog.record_id"].to_list()) == [1, 2]
    paths = dict(zip(alerts["winlog.record_id"], alerts["log.file.path"], strict=True))
    assert Path(paths[1]) == tmp_path / "logs" / "a.parquet"
    assert Path(paths[2]) == tmp_path / "logs" / "sub" / "b.parquet"
