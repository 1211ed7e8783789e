"""EVTX inputs, on the real logs of ../shared/data: scanned directly, converted then scanned,
compared record by record with the `evtx` package (the same Rust parser, through its own JSON)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import callsweep
from callsweep.cli import EXIT_INPUT_FAILED, app
from callsweep.convert import convert
from callsweep.layout import (
    CALL_TRACE,
    CALL_TRACE_PREFIX,
    PREFIX_CHARS,
    EventLayoutWriter,
    layout_schema,
)
from callsweep.sources.evtx import evtx_layout_schema, evtx_schema, open_evtx

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
EXPECTED = json.loads((DATA / "expected.json").read_text())["evtx"] if DATA.exists() else {}
NDJSON_EXPECTED = (
    list(json.loads((DATA / "expected.json").read_text())["ndjson"].values())
    if DATA.exists()
    else []
)
FILES = sorted(EXPECTED)
DAMAGED = {
    "omerbenamram__evtx/sample_with_a_bad_chunk_magic.evtx",
    "omerbenamram__evtx/2-vss_0-Microsoft-Windows-RemoteDesktopServices-RdpCoreTS%4Operational.evtx",
}

pytestmark = pytest.mark.skipif(
    not DATA.exists(), reason="../shared/data is not beside the project"
)


def reference_records(path: Path) -> tuple[list[dict], int]:
    """Records the `evtx` package reads (its JSON, parsed) and how many it fails on."""
    import evtx

    records, failures = [], 0
    iterator = evtx.PyEvtxParser(str(path)).records_json()
    while True:
        try:
            record = next(iterator)
        except StopIteration:
            return records, failures
        except Exception:  # the package raises on a bad record and can then go on
            failures += 1
            continue
        records.append(json.loads(record["data"]))


@pytest.mark.parametrize("name", FILES)
def test_scan_alerts_on_exactly_the_expected_records(name: str):
    alerts = callsweep.scan(DATA / name)
    assert sorted(alerts["winlog.record_id"].to_list()) == EXPECTED[name]
    assert set(alerts["log.file.path"]) <= {str(DATA / name)}


def test_convert_then_scan_gives_the_same_alerts(tmp_path: Path):
    summary = convert([DATA], tmp_path / "parquet")
    assert summary.errors == []
    # The EVTX files and the OTRF zips (NDJSON, tested in test_ndjson.py).
    zips = list(DATA.glob("OTRF__Security-Datasets/*.zip"))
    assert summary.count("converted") == len(FILES) + len(zips)
    for name in FILES:
        out = tmp_path / "parquet" / Path(name).with_suffix(".parquet")
        alerts = callsweep.scan(out)
        assert sorted(alerts["winlog.record_id"].to_list()) == EXPECTED[name], name
        # Provenance points at the EVTX file the event came from, not at the Parquet copy.
        assert set(alerts["log.file.path"]) <= {str(DATA / name)}


@pytest.mark.parametrize("name", FILES)
def test_every_record_the_reference_reads_is_read(name: str):
    summary = callsweep.Scanner().run([DATA / name])
    reference, failures = reference_records(DATA / name)
    report = summary.inputs[0]
    assert report.error is None
    if name in DAMAGED:
        assert report.rows >= len(reference)
        assert report.skipped >= 1 and summary.skipped
        assert all(e.path == str(DATA / name) and "chunk" in e.where for e in summary.skipped)
    else:
        assert (report.rows, report.skipped, failures) == (len(reference), 0, 0)


CAPI2 = "E_Windows_system32_winevt_logs_Microsoft-Windows-CAPI2%4Operational.evtx"
SYSMON = (
    "sbousseaden__EVTX-ATTACK-SAMPLES/sysmon_10_11_outlfank_dumpert_and_andrewspecial_memdump.evtx"
)


def test_field_values_equal_the_parsers_json(tmp_path: Path):
    out = tmp_path / "sysmon.parquet"
    convert([DATA / SYSMON], tmp_path)
    out = tmp_path / Path(SYSMON).with_suffix(".parquet").name
    rows = {r["winlog.record_id"]: r for r in pl.read_parquet(out).iter_rows(named=True)}
    reference, _ = reference_records(DATA / SYSMON)
    assert len(rows) == len(reference)
    for event in reference:
        system = event["Event"]["System"]
        data = event["Event"].get("EventData") or {}
        row = rows[system["EventRecordID"]]
        assert row["event.code"] == str(system["EventID"])
        assert row["host.name"] == system["Computer"]
        assert row["winlog.channel"] == system["Channel"]
        assert row["winlog.provider_name"] == system["Provider"]["#attributes"]["Name"]
        when = system["TimeCreated"]["#attributes"]["SystemTime"]
        assert row["@timestamp"].strftime("%Y-%m-%dT%H:%M:%S.%f") == when.rstrip("Z")[:26]
        if system["EventID"] == 10:
            assert row["process.executable"] == data["SourceImage"]
            assert row["winlog.event_data.TargetImage"] == data["TargetImage"]
            assert row["winlog.event_data.CallTrace"] == data["CallTrace"]
            assert row["winlog.event_data.GrantedAccess"] == data["GrantedAccess"]
            assert row["event.category"] == ["process"]


def test_non_sysmon_event_10_has_no_process_category(tmp_path: Path):
    name = "omerbenamram__evtx/" + CAPI2
    convert([DATA / name], tmp_path)
    frame = pl.read_parquet(tmp_path / Path(name).with_suffix(".parquet").name)
    event10 = frame.filter(pl.col("event.code") == "10")
    assert event10.height == 42
    assert event10["event.category"].null_count() == 42
    assert event10["winlog.event_data.CallTrace"].null_count() == 42
    # What is not a Sysmon field is kept, not dropped.
    assert frame["winlog.event_data_other"].null_count() < frame.height


MIXED_CODES = (
    "sbousseaden__EVTX-ATTACK-SAMPLES/ppl_bypass_ppldump_knowdll_hijack_sysmon_security.evtx"
)


def test_row_group_statistics_let_a_scan_skip_all_but_event_10(tmp_path: Path):
    # Row groups of 8 rows: the file's 20 records outgrow one, as a large file does.
    name = MIXED_CODES
    convert([DATA / name], tmp_path, row_group_rows=8)
    out = tmp_path / Path(name).with_suffix(".parquet").name
    metadata = pq.read_metadata(out)
    column = metadata.schema.names.index("event.code")
    frame = pl.read_parquet(out)
    kinds = []
    for i in range(metadata.num_row_groups):
        stats = metadata.row_group(i).column(column).statistics
        only_10 = stats.min == "10" and stats.max == "10"
        without_10 = not (stats.min <= "10" <= stats.max)
        assert only_10 or without_10, (stats.min, stats.max)
        kinds.append(only_10)
    # The file mixes event 10 (Sysmon) with other codes on both sides of "10".
    assert True in kinds and False in kinds
    event10 = (frame["event.code"] == "10").sum()
    assert sum(metadata.row_group(i).num_rows for i, ten in enumerate(kinds) if ten) == event10
    assert event10 == 11


def test_a_file_within_one_row_group_is_one_with_event_10_rows_together(tmp_path: Path):
    convert([DATA / MIXED_CODES], tmp_path)
    out = tmp_path / Path(MIXED_CODES).with_suffix(".parquet").name
    assert pq.read_metadata(out).num_row_groups == 1
    codes = pl.read_parquet(out)["event.code"].to_list()
    first, last = codes.index("10"), len(codes) - codes[::-1].index("10")
    assert codes[first:last] == ["10"] * 11
    assert all(c < "10" for c in codes[:first]) and all(c > "10" for c in codes[last:])


def test_stored_call_trace_prefix_is_the_first_64_characters(tmp_path: Path):
    convert([DATA / SYSMON], tmp_path)
    frame = pl.read_parquet(tmp_path / Path(SYSMON).with_suffix(".parquet").name)
    call_trace = frame["winlog.event_data.CallTrace"]
    assert call_trace.str.len_chars().max() > 64
    assert frame["winlog.event_data.CallTrace[:64]"].to_list() == [
        None if v is None else v[:64] for v in call_trace.to_list()
    ]


def test_rerun_skips_unchanged_inputs_and_force_converts_again(tmp_path: Path):
    first = convert([DATA / SYSMON], tmp_path)
    again = convert([DATA / SYSMON], tmp_path)
    forced = convert([DATA / SYSMON], tmp_path, force=True)
    assert (first.count("converted"), again.count("unchanged"), forced.count("converted")) == (
        1,
        1,
        1,
    )
    assert not list(tmp_path.glob(".*.tmp"))


def test_damaged_input_is_converted_with_a_report(tmp_path: Path):
    name = "omerbenamram__evtx/sample_with_a_bad_chunk_magic.evtx"
    summary = convert([DATA / name], tmp_path)
    assert summary.errors == [] and summary.count("converted") == 1
    out = tmp_path / Path(name).with_suffix(".parquet").name
    assert pl.read_parquet(out).height == summary.records >= 270
    with open(out.with_name(out.name + ".skipped.csv"), newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows and all(
        r["file"] == str(DATA / name) and r["where"].startswith("chunk") for r in rows
    )


def test_convert_cli_reports_bad_inputs_and_goes_on(tmp_path: Path):
    not_evtx = tmp_path / "fake.evtx"
    not_evtx.write_bytes(b"ElfFile\x00" + b"\x00" * 100)  # right magic, no valid header
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    result = CliRunner().invoke(
        app,
        [
            "convert",
            str(not_evtx),
            str(text),
            str(DATA / SYSMON),
            "-o",
            str(tmp_path / "out"),
            "--no-progress",
        ],
    )
    assert result.exit_code == EXIT_INPUT_FAILED, result.output
    assert (
        f"{not_evtx}" in result.output and f"{text}: not a format callsweep reads" in result.output
    )
    assert (tmp_path / "out" / Path(SYSMON).with_suffix(".parquet").name).exists()
    assert "converted" in result.output and "records" in result.output


def test_scan_cli_on_a_directory_of_evtx(tmp_path: Path):
    out = tmp_path / "alerts.ndjson"
    result = CliRunner().invoke(app, ["scan", str(DATA), "-o", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    docs = [json.loads(line) for line in out.read_text().splitlines()]
    # The OTRF zips' alerts (NDJSON, checked in test_ndjson.py) have lines, not record ids.
    evtx = [d for d in docs if d["log"]["file"]["path"].endswith(".evtx")]
    assert len(docs) - len(evtx) == sum(len(e["positive_lines"]) for e in NDJSON_EXPECTED)
    found = sorted((d["log"]["file"]["path"], d["winlog"]["record_id"]) for d in evtx)
    want = sorted((str(DATA / n), r) for n, ids in EXPECTED.items() for r in ids)
    assert found == want
    assert "records skipped" in result.output and "skipped:" in result.output


def test_several_folders_are_mirrored_side_by_side(tmp_path: Path):
    for host in ("host-a", "host-b"):
        (tmp_path / "logs" / host).mkdir(parents=True)
        shutil.copy(DATA / SYSMON, tmp_path / "logs" / host / "Sysmon.evtx")
    out = tmp_path / "out"
    summary = convert([tmp_path / "logs" / "host-a", tmp_path / "logs" / "host-b"], out)
    assert not summary.errors and summary.count("converted") == 2
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.parquet")) == [
        "host-a/Sysmon.parquet",
        "host-b/Sysmon.parquet",
    ]


def code_kind(code: str | None) -> int:
    """The layout's kind of an event code, as plain Python compares text."""
    return 0 if code is None or code < "10" else 1 if code == "10" else 2


def kinds_of(table: pa.Table | pa.RecordBatch) -> list[int]:
    return [code_kind(c) for c in table.column("event.code").to_pylist()]


def plain(table: pa.Table) -> pa.Table:
    """Dictionary columns as their values (each batch has its own dictionary)."""
    fields = [
        f.with_type(f.type.value_type) if pa.types.is_dictionary(f.type) else f
        for f in table.schema
    ]
    return table.cast(pa.schema(fields))


@pytest.mark.parametrize("name", FILES)
def test_batches_split_by_code_kind_hold_the_same_rows_in_the_same_order(name: str):
    # Small batches: several groups of chunks, each split apart by the decoder.
    path = str(DATA / name)
    whole = plain(pa.Table.from_batches(list(open_evtx(path, batch_rows=200).batches())))
    split = list(open_evtx(path, batch_rows=200, by_code_kind=True).batches())
    for batch in split:
        assert len(set(kinds_of(batch))) == 1
    split_table = plain(pa.Table.from_batches(split))
    assert split_table.num_rows == whole.num_rows
    whole_kinds, split_kinds = kinds_of(whole), kinds_of(split_table)
    for kind in range(3):
        assert whole.filter(pa.array([k == kind for k in whole_kinds])).equals(
            split_table.filter(pa.array([k == kind for k in split_kinds]))
        )


MULTI_CHUNK = (
    "omerbenamram__evtx/2-vss_0-Microsoft-Windows-RemoteDesktopServices-RdpCoreTS%4Operational.evtx"
)


@pytest.mark.parametrize("row_group_rows", [8, 300, 128 * 1024])
@pytest.mark.parametrize("name", [MIXED_CODES, SYSMON, MULTI_CHUNK])
def test_the_layout_is_the_same_from_split_and_from_mixed_batches(
    tmp_path: Path, name: str, row_group_rows: int
):
    # The writer's shortcuts for one-kind batches (no filtering, no sorting; with the decoder's
    # layout form, no casts either and each batch's kind read off its first row) must not
    # change what it writes: the rows, their order, the row groups. One chunk per group of the
    # decoder (`batch_rows=4`), so a multi-chunk file gives many groups.
    written = []
    for by_kind, form in ((False, False), (True, False), (True, True)):
        out = tmp_path / f"by_kind_{by_kind}_{form}.parquet"
        schema = evtx_layout_schema() if form else evtx_schema()
        writer = EventLayoutWriter(out, schema, row_group_rows, one_kind_batches=form)
        batches = open_evtx(str(DATA / name), batch_rows=4, by_code_kind=by_kind, layout_form=form)
        for batch in batches.batches():
            writer.write(batch)
        writer.close()
        metadata = pq.read_metadata(out)
        sizes = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
        written.append((pq.read_table(out), sizes))
    (mixed, mixed_sizes), *others = written
    assert mixed.num_rows > 0
    for table, sizes in others:
        assert mixed.equals(table)
        assert mixed_sizes == sizes


@pytest.mark.parametrize("name", FILES)
def test_batches_in_layout_form_are_the_decoded_ones_as_the_layout_writes_them(name: str):
    # Dictionary columns as plain strings, the CallTrace prefix as pyarrow would cut it.
    assert evtx_layout_schema().equals(layout_schema(evtx_schema()))
    path = str(DATA / name)
    decoded = list(open_evtx(path, batch_rows=200, by_code_kind=True).batches())
    in_form = list(open_evtx(path, batch_rows=200, by_code_kind=True, layout_form=True).batches())
    assert [b.num_rows for b in decoded] == [b.num_rows for b in in_form]
    for batch, formed in zip(decoded, in_form, strict=True):
        assert formed.schema.equals(evtx_layout_schema())
        table = plain(pa.Table.from_batches([batch]))
        prefix = pc.utf8_slice_codeunits(table.column(CALL_TRACE), 0, PREFIX_CHARS)
        expected = table.append_column(CALL_TRACE_PREFIX, prefix)
        assert pa.Table.from_batches([formed]).equals(expected)
