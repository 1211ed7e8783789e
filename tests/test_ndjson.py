"""NDJSON inputs: the OTRF zips against expected.json (scanned directly and after conversion),
the same real events rendered in every shape and container, and bad-line accounting."""

from __future__ import annotations

import gzip
import json
import zipfile
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest

from callsweep.convert import convert
from callsweep.rules.exceptions import load_exceptions
from callsweep.rules.model import default_rule, find_rule
from callsweep.scan import Scanner, scan
from callsweep.sources import ndjson
from callsweep.sources.discover import discover
from callsweep.sources.evtx import evtx_schema
from callsweep.sources.prefilter import excluded_prefixes, line_excluded

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
EXPECTED = json.loads((DATA / "expected.json").read_text()) if DATA.exists() else {}
OTRF = sorted(EXPECTED.get("ndjson", {}))
DUMPERT = "OTRF__Security-Datasets/cmd_lsass_memory_dumpert_syscalls.zip"

needs_data = pytest.mark.skipif(
    not DATA.exists(), reason="../shared/data is not beside the project"
)

# Keys of a flat Sysmon export that are Sysmon's EventData (the rest is System or shipper data).
EVENT_DATA = {name.removeprefix("winlog.event_data.") for name in evtx_schema().names} | {
    "SourceProcessGUID",
    "SourceThreadId",
}


def _positives(alerts: pl.DataFrame) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for path, line in alerts.select("log.file.path", "log.file.line").iter_rows():
        found.setdefault(path, []).append(line)
    return {k: sorted(v) for k, v in found.items()}


def _expected_positives() -> dict[str, list[int]]:
    return {
        f"{DATA / name}!/{entry['member']}": entry["positive_lines"]
        for name, entry in EXPECTED["ndjson"].items()
        if entry["positive_lines"]
    }


@needs_data
@pytest.mark.parametrize("name", OTRF)
def test_otrf_zip_gives_exactly_the_expected_lines(name: str) -> None:
    entry = EXPECTED["ndjson"][name]
    alerts = scan(DATA / name)
    member = f"{DATA / name}!/{entry['member']}"
    assert alerts["log.file.path"].unique().to_list() in ([], [member])
    assert sorted(alerts["log.file.line"].to_list()) == entry["positive_lines"]
    for key in entry["positive_keys"]:
        row = alerts.filter(pl.col("log.file.line") == key["line"]).row(0, named=True)
        assert row["host.name"] == key["Hostname"]
        assert row["process.executable"] == key["SourceImage"]
        assert row["winlog.event_data.TargetImage"] == key["TargetImage"]
        assert row["callsweep.call_trace.first_frame"] == key["CallTrace_first_frame"]


@needs_data
def test_otrf_zips_after_conversion_give_the_same_lines(tmp_path: Path) -> None:
    result = convert([DATA / name for name in OTRF], tmp_path)
    assert not result.errors
    alerts = scan(tmp_path)
    assert _positives(alerts) == _expected_positives()
    # Every line is kept by conversion: the prefilter is for scans only.
    rows = pl.scan_parquet(tmp_path / "**" / "*.parquet").select(pl.len()).collect().item()
    assert rows == sum(1 for n in OTRF for _ in _member_lines(n))


@needs_data
def test_scan_summary_counts_lines_and_event10() -> None:
    summary = Scanner().run([DATA / DUMPERT])
    (report,) = summary.inputs
    assert report.rows == 118 and report.skipped == 0 and report.alerts == 1
    # What the prefilter left unparsed, line by line by its definitions; the rest is parsed.
    with zipfile.ZipFile(DATA / DUMPERT) as archive:
        (member,) = archive.namelist()
        lines = [line for line in archive.read(member).splitlines() if line.strip()]
    excluded = excluded_prefixes([default_rule().query])
    no_trace = [line for line in lines if not ndjson.line_may_alert(line)]
    ntdll = [
        line for line in lines if ndjson.line_may_alert(line) and line_excluded(line, excluded)
    ]
    assert report.unparsed == len(no_trace) + len(ntdll) and report.unparsed_excluded == len(ntdll)
    assert ntdll and no_trace
    tens = sum(1 for e in _member_lines(DUMPERT) if e.get("EventID") == 10)
    assert report.event10_rows == tens - len(ntdll)  # of the lines parsed


def test_summary_says_what_the_prefilter_left_unparsed(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from callsweep.cli import app

    record = tmp_path / "summary.json"
    args = ["scan", str(DATA / DUMPERT), "--no-progress", "--summary-json", str(record)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    unparsed = Scanner().run([DATA / DUMPERT]).inputs[0]
    text = " ".join(result.output.split())
    assert (
        f"lines not parsed {unparsed.unparsed:,} NDJSON lines the prefilter proved unable to "
        f"alert ({unparsed.unparsed - unparsed.unparsed_excluded:,} without a CallTrace, "
        f"{unparsed.unparsed_excluded:,} whose CallTrace every rule excludes)"
    ) in text
    assert json.loads(record.read_text())["ndjson_lines_not_parsed"] == {
        "total": unparsed.unparsed,
        "calltrace_excluded": unparsed.unparsed_excluded,
    }


def _member_lines(name: str) -> list[dict]:
    with zipfile.ZipFile(DATA / name) as archive:
        (member,) = archive.namelist()
        text = archive.read(member).decode()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# --- the same events in every shape -------------------------------------------------------


def _split(raw: dict) -> tuple[dict, dict]:
    data = {k: v for k, v in raw.items() if k in EVENT_DATA}
    return data, {k: v for k, v in raw.items() if k not in EVENT_DATA}


def as_ecs(raw: dict, code_as_number: bool = False, with_os_type: bool = True) -> dict:
    data, system = _split(raw)
    sysmon = system.get("Channel") == "Microsoft-Windows-Sysmon/Operational"
    event: dict = {"code": raw["EventID"] if code_as_number else str(raw["EventID"])}
    if raw["EventID"] == 10 and sysmon:
        event["category"] = ["process"]
    host: dict = {"name": system.get("Hostname")}
    if with_os_type:
        host["os"] = {"type": "windows"}
    process = {
        "executable": data.pop("SourceImage", None),
        "pid": data.pop("SourceProcessId", None),
    }
    return {
        "@timestamp": raw.get("UtcTime"),
        "event": event,
        "host": host,
        "process": process,
        "winlog": {
            "channel": system.get("Channel"),
            "event_id": raw["EventID"],
            "event_data": data,
        },
    }


def as_es_hit(raw: dict) -> dict:
    return {"_index": ".ds-logs-windows.sysmon_operational", "_id": "x", "_source": as_ecs(raw)}


def as_sentinel(raw: dict) -> dict:
    data, system = _split(raw)
    return {
        "Type": "WindowsEvent",
        "Computer": system.get("Hostname"),
        "Channel": system.get("Channel"),
        "Provider": system.get("SourceName"),
        "EventID": raw["EventID"],
        "EventData": json.dumps(data),
    }


def as_evtx_dump(raw: dict) -> dict:
    data, system = _split(raw)
    return {
        "Event": {
            "#attributes": {"xmlns": "http://schemas.microsoft.com/win/2004/08/events/event"},
            "System": {
                "Provider": {"#attributes": {"Name": system.get("SourceName")}},
                "EventID": raw["EventID"],
                "Channel": system.get("Channel"),
                "Computer": system.get("Hostname"),
            },
            "EventData": data,
        }
    }


SHAPES = {
    "sysmon-flat": lambda raw: raw,
    "ecs": as_ecs,
    "ecs-code-number": lambda raw: as_ecs(raw, code_as_number=True),
    "es-hit": as_es_hit,
    "sentinel": as_sentinel,
    "evtx-dump": as_evtx_dump,
}
COMPARED = [
    "log.file.line",
    "host.name",
    "event.code",
    "process.executable",
    "winlog.event_data.TargetImage",
    "winlog.event_data.GrantedAccess",
    "callsweep.call_trace.first_frame",
]


def _write(path: Path, docs: list[dict], container: str) -> Path:
    body = "".join(json.dumps(d) + "\n" for d in docs).encode()
    if container == "gz":
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(body))
    elif container == "zst":
        path = path.with_name(path.name + ".zst")
        with pa.CompressedOutputStream(str(path), "zstd") as out:
            out.write(body)
    elif container == "zip":
        inner = path.name
        path = path.with_suffix(".zip")
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("empty.json", b"")
            archive.writestr(inner, body)
    else:
        path.write_bytes(body)
    return path


def _events() -> list[dict]:
    # Real events: the Dumpert export (its positive and near-miss negatives) and the
    # covenant export's first 600 lines (many event 10 with UNKNOWN frames, no positive);
    # one event 10 of a non-Sysmon channel must not match in any shape.
    events = _member_lines(DUMPERT) + _member_lines(OTRF[1])[:600]
    positive = next(e for e in events if e.get("CallTrace", "").startswith("C:\\Users\\wardog"))
    events.append({**positive, "Channel": "Microsoft-Windows-CAPI2/Operational"})
    return events


@needs_data
@pytest.mark.parametrize("container", ["plain", "gz", "zst", "zip"])
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_every_shape_gives_the_same_alerts(tmp_path: Path, shape: str, container: str) -> None:
    events = _events()
    reference = scan(_write(tmp_path / "flat.ndjson", events, "plain")).select(COMPARED)
    assert reference.height == 1  # the Dumpert positive; the CAPI2 copy does not match
    path = _write(tmp_path / f"{shape}.json", [SHAPES[shape](e) for e in events], container)
    (found,) = discover([path]).files
    assert found.format == "ndjson"
    alerts = scan(path)
    assert alerts.select(COMPARED).equals(reference)
    name = alerts["log.file.path"].item()
    assert name == (f"{path}!/{shape}.json" if container == "zip" else str(path))


@needs_data
def test_ecs_without_host_os_type_is_not_given_one(tmp_path: Path) -> None:
    """ECS data is read as it is: the rule needs host.os.type, which such documents lack."""
    docs = [as_ecs(e, with_os_type=False) for e in _events()]
    summary = Scanner().run([_write(tmp_path / "old.ndjson", docs, "plain")])
    assert summary.alerts == 0


@needs_data
def test_format_forces_the_shape(tmp_path: Path) -> None:
    path = _write(tmp_path / "hits.ndjson", [as_es_hit(e) for e in _events()], "plain")
    scanner = Scanner()
    scanner.ndjson_shape = "sysmon-flat"  # wrong on purpose: nothing is read as an event 10
    assert scanner.run([path]).alerts == 0
    scanner = Scanner()
    scanner.ndjson_shape = "es-hit"
    assert scanner.run([path]).alerts == 1


# --- bad lines ------------------------------------------------------------------------------


@needs_data
def test_bad_lines_are_counted_with_their_line_and_the_rest_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ndjson, "MAX_LINE_BYTES", 10_000)
    good = [json.dumps(e).encode() for e in _events()]
    bad = {
        3: b'{"EventID": 10, "CallTrace": "UNKNOWN',  # broken JSON
        # Each names CallTrace and 10, so the scan's prefilter lets it through to the parser.
        5: b"\x00\xff\xfe binary junk CallTrace 10 \x89PNG",
        7: b'{"EventID": {"nested": 10}, "CallTrace": "x"}',  # wrong type
        9: b'{"EventID": 10, "CallTrace": "' + b"A" * 50_000 + b'"}',  # overlong
        11: b'[10, "CallTrace"]',
        13: b'{"EventID": true, "CallTrace": "x10"}',  # a boolean event id
    }
    lines: list[bytes] = []
    for line in good:
        while len(lines) + 1 in bad:
            lines.append(bad[len(lines) + 1])
        lines.append(line)
    path = tmp_path / "mixed.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\n")
    summary = Scanner().run([path])
    assert summary.alerts == 1 and not summary.errors
    assert sorted(int(e.where.removeprefix("line ")) for e in summary.skipped) == sorted(bad)
    assert all(e.path == str(path) for e in summary.skipped)
    # Rows read: every line but the overlong one, which is passed over unread.
    assert summary.inputs[0].rows == len(lines) - 1
    out = tmp_path / "out"
    result = convert([path], out)
    assert not result.errors
    assert pl.read_parquet(out / "mixed.parquet").height == len(good)
    report = (out / "mixed.parquet.skipped.csv").read_text().splitlines()
    assert len(report) - 1 == len(bad)  # a header, then a row per bad line


@needs_data
def test_summary_counts_rule_fields_per_shape(tmp_path: Path) -> None:
    events = _events()
    flat = _write(tmp_path / "flat.ndjson", events, "plain")
    old = _write(tmp_path / "old.ndjson", [as_ecs(e, with_os_type=False) for e in events], "plain")
    summary = Scanner().run([flat, old])

    excluded = excluded_prefixes([default_rule().query])

    def parsed(path: Path) -> list[dict]:  # the lines the prefilter lets through
        lines = path.read_bytes().splitlines()
        return [
            json.loads(line)
            for line in lines
            if ndjson.line_may_alert(line) and not line_excluded(line, excluded)
        ]

    assert summary.shape_events == {"sysmon-flat": len(parsed(flat)), "ecs": len(parsed(old))}
    traces = [e.get("CallTrace") for e in parsed(flat)]
    with_trace = sum(1 for t in traces if t not in (None, "", "-"))
    old_traces = [e["winlog"]["event_data"].get("CallTrace") for e in parsed(old)]
    assert summary.shape_fields["sysmon-flat"]["winlog.event_data.CallTrace"] == with_trace
    assert summary.shape_fields["ecs"]["winlog.event_data.CallTrace"] == sum(
        1 for t in old_traces if t is not None
    )
    assert summary.shape_fields["sysmon-flat"]["host.os.type"] == len(parsed(flat))
    assert summary.shape_fields["ecs"]["host.os.type"] == 0  # read as the data says


def test_several_rules_and_exceptions_apply_to_ndjson_inputs(tmp_path: Path):
    """NDJSON goes through the same per-rule tagging and exceptions as every other input."""
    zipped = DATA / "OTRF__Security-Datasets" / "cmd_lsass_memory_dumpert_syscalls.zip"
    rules = [find_rule("2dd480be"), find_rule("2dd480be@316")]
    both = scan(zipped, rule=rules)
    assert sorted(both["kibana.alert.rule.version"].cast(pl.String).to_list()) == ["311", "316"]
    assert set(both["log.file.line"]) == {53}
    spec = tmp_path / "exceptions.toml"
    spec.write_text(
        '[[exception]]\nname = "this host"\nentries = [\n'
        '  { field = "host.name", operator = "is", value = "WORKSTATION5" },\n]\n'
    )
    summary = Scanner(rules, exceptions=load_exceptions(spec)).run([zipped])
    assert summary.errors == []
    assert summary.alerts == 0
    assert summary.excluded == 2


@needs_data
def test_convert_format_forces_the_shape(tmp_path: Path) -> None:
    """`convert --format` reads every file in the shape given: right, the events convert as
    detection would have them; wrong, no line is an event of that shape and each is reported."""
    from typer.testing import CliRunner

    from callsweep.cli import app

    events = _events()
    path = _write(tmp_path / "sentinel.json", [as_sentinel(e) for e in events], "plain")
    runner = CliRunner()
    forced = runner.invoke(
        app,
        [
            "convert",
            str(path),
            "--out",
            str(tmp_path / "forced"),
            "--format",
            "sentinel",
            "--no-progress",
        ],
    )
    assert forced.exit_code == 0, forced.output
    detected = convert([path], tmp_path / "detected")
    assert not detected.errors
    read = [
        pl.read_parquet(next((tmp_path / d).rglob("*.parquet"))) for d in ("forced", "detected")
    ]
    assert read[0].drop("callsweep.evtx.chunk").equals(read[1].drop("callsweep.evtx.chunk"))
    assert scan(tmp_path / "forced").height == 1  # the Dumpert positive

    wrong = convert([path], tmp_path / "wrong", json_shape="evtx-dump")
    (report,) = wrong.reports
    assert report.skipped == len(events)  # no line is an evtx_dump record
    bad = runner.invoke(
        app, ["convert", str(path), "--out", str(tmp_path / "x"), "--format", "xml"]
    )
    assert bad.exit_code == 1  # a usage error, as for every bad option
    assert "--format must be one of" in bad.output
