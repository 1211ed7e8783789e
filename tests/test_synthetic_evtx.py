"""The synthetic EVTX writer: files that the `evtx` crate (PyPI `evtx`) and python-evtx both read
back to exactly the generated events, with valid checksums, and that callsweep scans, directly
or converted, to exactly the generated positives."""

from __future__ import annotations

import itertools
import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

import callsweep
from callsweep.convert import convert
from callsweep.evtxwrite import EventKind, EvtxWriter, event_data_template, system_template, values
from callsweep.evtxwrite import binxml as bx
from callsweep.evtxwrite.chunk import RecordTooLarge
from callsweep.evtxwrite.event import event_data_values
from callsweep.sources.evtx import open_evtx
from callsweep.synthetic import Shape, chunk
from callsweep.synthetic_evtx import (
    CHANNEL,
    EVENTS,
    PROVIDER,
    PROVIDER_GUID,
    sysmon_events,
    write_evtx,
    write_evtx_files,
)

# Every event id, a dozen chunks, ~100 positives; small enough for a fast suite.
SHAPE = Shape(
    rows=3000,
    event10_share=0.4,
    syscall_share=0.1,
    excluded_share=0.2,
    seed=11,
    hosts=8,
    time_span=timedelta(hours=6),
)
# python-evtx re-parses each record's template, ~100 records/s: a few chunks' worth.
SMALL = Shape(rows=120, event10_share=0.4, syscall_share=0.2, seed=5, call_trace_frames=(1, 30))


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("evtx") / "sysmon.evtx"
    return write_evtx(path, SHAPE)


@pytest.fixture(scope="module")
def events() -> pl.DataFrame:
    return sysmon_events(SHAPE, 0, SHAPE.rows)


def crate_records(path: Path) -> list[dict]:
    import evtx

    return list(evtx.PyEvtxParser(str(path)).records_json())


def crate_text(value_type: int, value: object) -> object:
    """A value as the `evtx` package's JSON holds it."""
    if value is None:
        return ""
    if value_type == bx.GUID:
        return str(value).strip("{}").upper()
    if value_type in (bx.HEX32, bx.HEX64):
        return f"0x{value:x}"
    return value


def python_evtx_text(value_type: int, value: object) -> str | None:
    """A value as python-evtx's XML holds it."""
    if value is None:
        return None
    if value_type == bx.HEX32:
        return f"0x{value:08x}"
    if value_type == bx.HEX64:
        return f"0x{value:016x}"
    if value_type == bx.BOOL:
        return str(bool(value))
    return str(value)


def test_the_evtx_crate_reads_back_every_field_of_every_record(written, events):
    records = crate_records(written.path)
    assert [r["event_record_id"] for r in records] == events["EventRecordID"].to_list()
    for record, event in zip(records, events.iter_rows(named=True), strict=True):
        doc = json.loads(record["data"])["Event"]
        system = doc["System"]
        event_id = event["EventID"]
        version, fields = EVENTS[event_id]
        assert system == {
            "Provider": {
                "#attributes": {"Name": PROVIDER, "Guid": PROVIDER_GUID.strip("{}").upper()}
            },
            "EventID": event_id,
            "Version": version,
            "Level": 4,
            "Task": event_id,
            "Opcode": 0,
            "Keywords": "0x8000000000000000",
            "TimeCreated": {
                "#attributes": {
                    "SystemTime": event["TimeCreated"].strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                }
            },
            "EventRecordID": event["EventRecordID"],
            "Correlation": None,
            "Execution": {
                "#attributes": {"ProcessID": event["ProcessID"], "ThreadID": event["ThreadID"]}
            },
            "Channel": CHANNEL,
            "Computer": event["Computer"],
            "Security": {"#attributes": {"UserID": "S-1-5-18"}},
        }
        assert doc["EventData"] == {name: crate_text(t, event[name]) for name, t in fields}


def test_python_evtx_reads_back_every_field_of_every_record(tmp_path: Path):
    import Evtx.Evtx as python_evtx

    w = write_evtx(tmp_path / "small.evtx", SMALL)
    expected = sysmon_events(SMALL, 0, SMALL.rows).iter_rows(named=True)
    ns = {"e": "http://schemas.microsoft.com/win/2004/08/events/event"}
    with python_evtx.Evtx(str(w.path)) as log:
        header = log.get_file_header()
        # Magic, version 3.1, header size and the header's CRC32.
        assert header.verify() and not header.is_dirty()
        assert header.chunk_count() == w.chunks >= 3
        assert header.next_record_number() == SMALL.rows + 1
        chunks = list(log.chunks())
        # Header and records CRC32s of every chunk.
        assert all(c.verify() for c in chunks)
        # Each template is defined once per chunk: the System one and one per event id used.
        assert all(len(c.templates()) <= 1 + len(EVENTS) for c in chunks)
        records = [r for c in chunks for r in c.records()]
        assert len(records) == SMALL.rows
        for record, event in zip(records, expected, strict=True):
            assert record.verify()  # the size copy at its end
            root = ET.fromstring(record.xml())
            system = root.find("e:System", ns)

            def text(path: str, system=system) -> str | None:
                return system.find(path, ns).text

            def attr(path: str, name: str, system=system) -> str:
                return system.find(path, ns).attrib[name]

            assert record.record_num() == event["EventRecordID"]
            assert (attr("e:Provider", "Name"), attr("e:Provider", "Guid")) == (
                PROVIDER,
                PROVIDER_GUID,
            )
            event_id = event["EventID"]
            assert text("e:EventID") == str(event_id)
            assert text("e:Version") == str(EVENTS[event_id][0])
            assert (text("e:Level"), text("e:Task"), text("e:Opcode")) == ("4", str(event_id), "0")
            assert text("e:Keywords") == "0x8000000000000000"
            assert text("e:EventRecordID") == str(event["EventRecordID"])
            assert attr("e:Execution", "ProcessID") == str(event["ProcessID"])
            assert attr("e:Execution", "ThreadID") == str(event["ThreadID"])
            assert text("e:Channel") == CHANNEL
            assert text("e:Computer") == event["Computer"]
            assert attr("e:Security", "UserID") == "S-1-5-18"
            # python-evtx converts FILETIMEs through a float: a microsecond may be lost.
            when = datetime.fromisoformat(attr("e:TimeCreated", "SystemTime"))
            assert abs(when - event["TimeCreated"]) <= timedelta(microseconds=2)
            assert abs(record.timestamp().replace(tzinfo=UTC) - event["TimeCreated"]) <= (
                timedelta(microseconds=2)
            )
            data = [(d.attrib["Name"], d.text) for d in root.find("e:EventData", ns)]
            fields = EVENTS[event_id][1]
            assert data == [(name, python_evtx_text(t, event[name])) for name, t in fields]


def test_scanning_the_evtx_alerts_on_exactly_the_generated_positives(written, events):
    want = events.filter(pl.col("expected_alert"))["EventRecordID"].to_list()
    assert len(want) >= 30
    assert list(written.alert_record_ids) == want
    alerts = callsweep.scan(written.path)
    assert sorted(alerts["winlog.record_id"].to_list()) == want
    assert set(alerts["log.file.path"]) == {str(written.path)}


def test_converted_files_scan_to_exactly_the_generated_positives(tmp_path: Path):
    shape = Shape(rows=2400, event10_share=0.6, syscall_share=0.08, seed=23, hosts=3)
    files = write_evtx_files(tmp_path / "evtx", shape, 3)
    assert [f.path.name for f in files] == ["sysmon-000.evtx", "sysmon-001.evtx", "sysmon-002.evtx"]
    assert sum(f.records for f in files) == shape.rows
    assert [(f.first_record_id, f.last_record_id) for f in files] == [
        (1, 800),
        (801, 1600),
        (1601, 2400),
    ]
    summary = convert([tmp_path / "evtx"], tmp_path / "parquet")
    assert summary.errors == [] and summary.count("converted") == 3
    for f in files:
        alerts = callsweep.scan(tmp_path / "parquet" / f.path.with_suffix(".parquet").name)
        assert sorted(alerts["winlog.record_id"].to_list()) == list(f.alert_record_ids)
        assert set(alerts["log.file.path"]) <= {str(f.path)}
    every = callsweep.scan(tmp_path / "parquet")
    truth = chunk(shape, 0, shape.rows).filter(pl.col("expected_alert"))["winlog.record_id"]
    assert sorted(every["winlog.record_id"].to_list()) == truth.to_list()


def test_decoded_rows_are_the_synthetic_flat_ecs_events(written):
    stream = open_evtx(str(written.path))
    decoded = pl.concat(list(stream.frames())).sort("winlog.record_id")
    assert stream.skipped() == []  # no chunk or record the decoder could not read
    # Every record has the plain Windows shape that the decoder reads from template values.
    assert stream.reader.template_records == SHAPE.rows
    truth = chunk(SHAPE, 0, SHAPE.rows)
    every = ["@timestamp", "host.name", "event.code", "winlog.record_id", "winlog.channel"]
    access = [
        "process.executable",
        "process.pid",
        "winlog.event_data.TargetImage",
        "winlog.event_data.TargetProcessId",
        "winlog.event_data.GrantedAccess",
        "winlog.event_data.CallTrace",
    ]
    assert decoded.height == truth.height
    got = decoded.select(every).with_columns(pl.col("host.name", "winlog.channel").cast(pl.String))
    assert got.equals(truth.select(every))
    is10 = pl.col("event.code") == "10"
    assert decoded.filter(is10).select(access).equals(truth.filter(is10).select(access))
    # Other events name their process `Image` / `ProcessId`; they have no CallTrace.
    others = decoded.filter(~is10)
    assert others["winlog.event_data.Image"].equals(
        truth.filter(~is10)["process.executable"], check_names=False
    )
    assert others["winlog.event_data.ProcessId"].equals(
        truth.filter(~is10)["process.pid"].cast(pl.String), check_names=False
    )
    assert others["winlog.event_data.CallTrace"].null_count() == others.height


def test_the_same_seed_writes_the_same_bytes(tmp_path: Path):
    shape = Shape(rows=400, event10_share=0.5, seed=3)
    a = write_evtx(tmp_path / "a.evtx", shape)
    b = write_evtx(tmp_path / "b.evtx", shape)
    c = write_evtx(tmp_path / "c.evtx", Shape(rows=400, event10_share=0.5, seed=4))
    assert a.path.read_bytes() == b.path.read_bytes()
    assert a.path.read_bytes() != c.path.read_bytes()
    assert a.alert_record_ids == b.alert_record_ids


def test_file_and_chunk_layout(written):
    data = written.path.read_bytes()
    assert data[:8] == b"ElfFile\x00"
    assert len(data) == 4096 + written.chunks * 65536
    assert written.chunks >= 10 and written.records == SHAPE.rows
    ids = []
    for k in range(written.chunks):
        c = data[4096 + k * 65536 : 4096 + (k + 1) * 65536]
        assert c[:8] == b"ElfChnk\x00"
        first, last = int.from_bytes(c[8:16], "little"), int.from_bytes(c[16:24], "little")
        ids.append((first, last))
        free = int.from_bytes(c[48:52], "little")
        assert set(c[free:]) <= {0}  # unused space is zeros
    # Chunks hold consecutive records, in order.
    assert ids[0][0] == 1 and ids[-1][1] == SHAPE.rows
    assert all(a[1] + 1 == b[0] for a, b in itertools.pairwise(ids))


def test_knobs_shape_the_events():
    shape = Shape(
        rows=2000,
        event10_share=0.5,
        hosts=12,
        time_span=timedelta(days=2),
        call_trace_frames=(2, 4),
        other_codes=("1", "1", "13"),
        seed=9,
    )
    events = sysmon_events(shape, 0, shape.rows)
    assert events["Computer"].n_unique() == 12
    start, end = events["TimeCreated"].min(), events["TimeCreated"].max()
    assert timedelta(days=1, hours=23) < end - start < timedelta(days=2)
    frames = events["CallTrace"].drop_nulls().str.count_matches(r"\|") + 1
    assert (frames.min(), frames.max()) == (2, 4)
    assert set(events["EventID"].unique()) == {1, 10, 13}
    counts = dict(events.group_by("EventID").len().iter_rows())
    assert counts[1] > counts[13]
    # The defaults give the rows `synthetic.chunk` always gave.
    assert Shape(rows=10).hosts == 5 and Shape(rows=10).call_trace_frames == (5, 15)


def test_an_event_id_without_a_template_is_refused():
    with pytest.raises(ValueError, match="no EVTX template for event ids \\[22\\]"):
        sysmon_events(Shape(rows=50, event10_share=0.0, other_codes=("22",)), 0, 50)


# ---- the writer's parts ----


def test_name_hashes_are_the_ones_windows_stores():
    # As stored in a Windows-written Sysmon log (sbousseaden/EVTX-ATTACK-SAMPLES).
    stored = {"Event": 0x0CBA, "EventData": 0x8244, "Data": 0x6F8A, "SystemTime": 0x7B3C}
    assert {name: bx.name_hash(name) for name in stored} == stored


def test_values_are_encoded_as_windows_stores_them():
    assert values.sid_bytes("S-1-5-18") == bytes([1, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0])
    guid = "{5770385f-c22a-43e0-bf4c-06f5698ffbd9}"
    assert values.guid_bytes(guid)[:4] == bytes.fromhex("5f387057")  # first group little-endian
    moment = datetime(2020, 6, 30, 20, 50, 25, 546713, tzinfo=UTC)
    assert values.filetime(moment) == (1_593_550_225 + 11_644_473_600) * 10**7 + 5_467_130
    with pytest.raises(ValueError, match="more than a substitution holds"):
        values.encode_column(bx.STRING, ["x" * 40_000])


EVERY_TYPE = (
    ("Text", bx.STRING),
    ("Missing", bx.STRING),
    ("Byte", bx.UINT8),
    ("Word", bx.UINT16),
    ("Dword", bx.UINT32),
    ("Qword", bx.UINT64),
    ("Flag", bx.BOOL),
    ("Guid", bx.GUID),
    ("FileTime", bx.FILETIME),
    ("SystemTime", bx.SYSTEMTIME),
    ("Sid", bx.SID),
    ("Hex32", bx.HEX32),
    ("Hex64", bx.HEX64),
    ("Null", bx.NULL),
)


def test_every_value_type_reads_back(tmp_path: Path):
    import evtx
    import Evtx.Evtx as python_evtx

    kind = EventKind(
        provider_name="Callsweep-Test",
        provider_guid="{00000000-0000-0000-0000-000000000001}",
        channel="Callsweep/Test",
        event_id=4242,
        version=1,
        task=7,
        fields=EVERY_TYPE,
        system=system_template(bytes(range(16))),
        event_data=event_data_template(bytes(range(1, 17)), EVERY_TYPE),
    )
    moment = datetime(2024, 2, 29, 23, 59, 58, 123000, tzinfo=UTC)
    row = (
        '<a & "b"> caf\u00e9 \U0001f600',  # XML specials, non-ASCII, a surrogate pair
        None,
        255,
        65535,
        4_000_000_000,
        2**64 - 1,
        True,
        "{39e4a257-1234-5f8d-4304-000000000700}",
        moment,
        moment,
        "S-1-5-21-1004336348-1177238915-682003330-512",
        0x1FFFFF,
        0x3E7,
        None,
    )
    encoded = [values.encode_column(t, [v]) for (_, t), v in zip(EVERY_TYPE, row, strict=True)]
    payload = event_data_values([d[0] for d, _ in encoded], [v[0] for _, v in encoded])
    computer = "H\u00d6ST".encode("utf-16-le")
    path = tmp_path / "types.evtx"
    with EvtxWriter(path) as writer:
        for record_id in (1, 2):
            writer.add(
                record_id,
                values.filetime(moment),
                lambda chunk, at, r=record_id: kind.binxml(
                    chunk, at, values.filetime(moment), 4, 8, r, computer, payload
                ),
            )
    records = list(evtx.PyEvtxParser(str(path)).records_json())
    assert len(records) == 2
    doc = json.loads(records[1]["data"])["Event"]
    assert doc["System"]["Computer"] == "H\u00d6ST"
    assert doc["System"]["EventID"] == 4242
    assert doc["EventData"] == {
        "Text": row[0],
        "Missing": "",
        "Byte": 255,
        "Word": 65535,
        "Dword": 4_000_000_000,
        "Qword": 2**64 - 1,
        "Flag": True,
        "Guid": "39E4A257-1234-5F8D-4304-000000000700",
        "FileTime": "2024-02-29T23:59:58.123000Z",
        "SystemTime": "2024-02-29T23:59:58.123000Z",
        "Sid": row[10],
        "Hex32": "0x1fffff",
        "Hex64": "0x3e7",
        "Null": "",
    }
    with python_evtx.Evtx(str(path)) as log:
        xml = [r.xml() for r in log.records()]
    data = {d.attrib["Name"]: d.text for d in ET.fromstring(xml[1])[1]}
    assert data["Text"] == row[0]
    assert data["Sid"] == row[10]
    assert data["Guid"] == row[7]
    # python-evtx hands SYSTEMTIME's milliseconds to datetime as microseconds
    # (BinaryParser.unpack_systemtime), and leaves out the time zone.
    as_python_evtx = moment.replace(microsecond=moment.microsecond // 1000, tzinfo=None)
    assert datetime.fromisoformat(data["SystemTime"]) == as_python_evtx
    assert data["Missing"] is None and data["Null"] is None


def test_a_record_larger_than_a_chunk_is_refused(tmp_path: Path):
    fields = (("Text", bx.STRING), ("More", bx.STRING))
    kind = EventKind(
        provider_name="P",
        provider_guid="{00000000-0000-0000-0000-000000000002}",
        channel="C",
        event_id=1,
        version=1,
        task=1,
        fields=fields,
        system=system_template(bytes(range(2, 18))),
        event_data=event_data_template(bytes(range(3, 19)), fields),
    )
    encoded = [values.encode_column(bx.STRING, ["x" * 16_300]) for _ in fields]
    payload = event_data_values([d[0] for d, _ in encoded], [v[0] for _, v in encoded])
    with (
        pytest.raises(RecordTooLarge, match="record 1 needs"),
        EvtxWriter(tmp_path / "x.evtx") as w,
    ):
        w.add(1, 0, lambda chunk, at: kind.binxml(chunk, at, 0, 1, 1, 1, b"", payload))


WINDOWS_SYSMON = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "data"
    / "sbousseaden__EVTX-ATTACK-SAMPLES"
    / "sysmon_10_11_outlfank_dumpert_and_andrewspecial_memdump.evtx"
)


@pytest.mark.skipif(not WINDOWS_SYSMON.exists(), reason="../shared/data is not beside the project")
def test_templates_are_the_ones_windows_writes_for_sysmon(written):
    import Evtx.Evtx as python_evtx
    import Evtx.Views as views

    def templates(path: Path) -> tuple[str, str]:
        """The System and EventData templates of the first event 10, as python-evtx shows
        them (names, substitution indices and types)."""
        with python_evtx.Evtx(str(path)) as log:
            for record in log.records():
                values = record.root().substitutions()
                if values[3].string() == "10":
                    return (
                        views.evtx_template_readable_view(record.root()),
                        views.evtx_template_readable_view(values[17].root()),
                    )
        raise AssertionError(f"no event 10 in {path}")

    system, event_data = templates(written.path)
    windows_system, windows_event_data = templates(WINDOWS_SYSMON)
    # The same System template, but for the Computer: a literal in Windows' (one host per log),
    # a substitution here (one template for every host).
    computer = "<Computer>[Conditional Substitution(index=18, type=1)]</Computer>"
    assert computer in system
    assert system.replace(computer, "<Computer>alice.insecurebank.local</Computer>") == (
        windows_system
    )
    # Sysmon 13 added SourceUser and TargetUser at the end of event 10.
    assert event_data.startswith(windows_event_data.removesuffix("</EventData>\n"))
