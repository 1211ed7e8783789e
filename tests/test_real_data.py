"""Real Sysmon events from ../shared/data, scanned as Parquet in Sysmon's own field names.

The OTRF Security-Datasets exports are flat NXLog-style JSON lines (`EventID`, `Channel`,
`SourceImage`, `CallTrace`, `Hostname`, `UtcTime`...). Reading JSON lines is not this suite's
subject: the lines are loaded here with polars, written to Parquet as they are (plus their line
number), and the scan must then alert on exactly the lines `expected.json` lists.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import polars as pl
import pytest

import callsweep

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
EXPECTED = json.loads((DATA / "expected.json").read_text()) if DATA.exists() else {}

# The Sentinel-shaped export keeps EventData as a JSON string: reading it is the NDJSON issue's.
NXLOG_SHAPED = [name for name in EXPECTED.get("ndjson", {}) if "log4shell" not in name]

pytestmark = pytest.mark.skipif(
    not DATA.exists(), reason="../shared/data is not beside the project"
)


def _lines_to_parquet(zip_path: Path, member: str, out: Path) -> int:
    raw = zipfile.ZipFile(zip_path).read(member).decode("utf-8")
    lines = raw.splitlines()
    assert all(line.strip() for line in lines), "a blank line would shift line numbers"
    frame = pl.read_ndjson(io.StringIO(raw), infer_schema_length=None)
    assert frame.height == len(lines)
    frame.with_columns(
        pl.int_range(1, frame.height + 1, dtype=pl.Int64).alias("log.file.line"),
        pl.lit(f"{zip_path}!{member}").alias("log.file.path"),
    ).write_parquet(out)
    return frame.height


def test_the_otrf_sets_cover_both_verdicts():
    positives = [EXPECTED["ndjson"][n]["positive_lines"] for n in NXLOG_SHAPED]
    assert len(NXLOG_SHAPED) == 3
    assert sum(len(p) for p in positives) == 1


@pytest.mark.parametrize("name", NXLOG_SHAPED)
def test_alerts_on_exactly_the_expected_lines(name: str, tmp_path: Path):
    entry = EXPECTED["ndjson"][name]
    out = tmp_path / (Path(name).stem + ".parquet")
    rows = _lines_to_parquet(DATA / name, entry["member"], out)
    alerts = callsweep.scan(out)
    summary = callsweep.Scanner().run([out])
    expected_lines = sorted(entry["positive_lines"])
    assert sorted(alerts["log.file.line"].to_list()) == expected_lines
    assert summary.rows == rows
    assert summary.inputs[0].shape == "sysmon-raw"
    assert summary.inputs[0].missing == ()
    assert summary.errors == []
    if expected_lines:
        assert alerts["log.file.path"].to_list() == [f"{DATA / name}!{entry['member']}"]
        assert alerts["callsweep.call_trace.first_frame"][0].endswith("Outflank-Dumpert.exe+13542")
        assert alerts["host.name"][0].upper().startswith("WORKSTATION5")
