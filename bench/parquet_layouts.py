"""The scan half of the conversion benchmark: the same events in two Parquet layouts.

- `callsweep`: what `callsweep convert` writes (row groups split by event code, dictionary
  columns, whatever else it does for the scan).
- `flat-ecs`: the same rows and ECS columns written the plain way: callsweep's output read with
  polars, rows sorted by `@timestamp` (event 10 rows interleaved with the rest, as in a real log),
  dictionary columns as plain strings, callsweep's own `callsweep.*` columns dropped (anything
  derived for the scan must not help the plain copy), written with polars' defaults and zstd, one
  file per input.

`callsweep.scan(folder)` runs on both; both must alert on the same events, and on exactly those
`expected.json` lists for each copy of each sample.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
from evtx_inputs import SAMPLES, EvtxInput, chunk_occurrences, sample_chunk_count

import callsweep
from callsweep.convert import convert
from callsweep.rules.prefix import stored_prefixes

CALLSWEEP_LAYOUT = "callsweep"
FLAT_LAYOUT = "flat-ecs"
PATH = "log.file.path"
RECORD_ID = "winlog.record_id"
TIMESTAMP = "@timestamp"


def write_callsweep_layout(inp: EvtxInput, out: Path) -> int:
    """`callsweep convert` of the input into `out`; returns the records written."""
    summary = convert(inp.paths, out, jobs=1, force=True)
    if summary.errors:
        raise RuntimeError(f"callsweep convert failed: {summary.errors[:3]}")
    return summary.records


def _plain(frame: pl.DataFrame) -> pl.DataFrame:
    """Dictionary columns (polars Categorical) as plain strings; callsweep's columns dropped
    (its own `callsweep.*` ones and stored prefixes such as `winlog.event_data.CallTrace[:64]`)."""
    derived = [c for c, _ in stored_prefixes(frame.columns).values()]
    frame = frame.select(pl.exclude("^callsweep\\..*$", *derived))
    categorical = [n for n, t in frame.schema.items() if t == pl.Categorical]
    return frame.with_columns(pl.col(categorical).cast(pl.String))


def write_flat_layout(callsweep_dir: Path, out: Path) -> int:
    """The flat-ECS copy of every file under `callsweep_dir`; returns the rows written."""
    rows = 0
    for source in sorted(callsweep_dir.rglob("*.parquet")):
        target = out / source.relative_to(callsweep_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        frame = _plain(pl.read_parquet(source)).sort(
            TIMESTAMP, nulls_last=True, maintain_order=True
        )
        frame.write_parquet(target, compression="zstd")
        rows += frame.height
    return rows


def layout_facts(folder: Path) -> dict[str, int]:
    files = sorted(folder.rglob("*.parquet"))
    metadata = [pq.read_metadata(f) for f in files]
    return {
        "files": len(files),
        "bytes": sum(f.stat().st_size for f in files),
        "rows": sum(m.num_rows for m in metadata),
        "row_groups": sum(m.num_row_groups for m in metadata),
        "columns": metadata[0].num_columns if metadata else 0,
    }


def alert_keys(alerts: pl.DataFrame) -> list[tuple[str, int]]:
    """What identifies each alert: the EVTX file it came from and its XML EventRecordID."""
    return sorted(alerts.select(PATH, RECORD_ID).iter_rows())


def scan_alerts(folder: Path) -> tuple[int, list[tuple[str, int]]]:
    """`callsweep.scan(folder)`: the alert count (the timed answer) and the alerts' keys."""
    alerts = callsweep.scan(folder)
    return alerts.height, alert_keys(alerts)


def expected_keys(inp: EvtxInput) -> Counter[tuple[str, int]]:
    """expected.json's alerts for the input, as (EVTX path, EventRecordID) with multiplicity.

    A corpus copy of a sample keeps the sample's path below its copy folder, so it gets the
    sample's EventRecordIDs. The large file holds sample chunks repeated: a sample's IDs count
    as many times as its chunk occurs (a sample with alerts must be a single chunk to tell
    which IDs a chunk holds; the samples with alerts are).
    """
    per_sample = json.loads((SAMPLES / "expected.json").read_text())["evtx"]
    wanted: Counter[tuple[str, int]] = Counter()
    for path in inp.files:
        sample = "/".join(path.parts[-2:])
        if sample in per_sample:
            for record_id in per_sample[sample]:
                wanted[(str(path), record_id)] += 1
            continue
        for sample, record_ids in per_sample.items():
            if not record_ids:
                continue
            if sample_chunk_count(SAMPLES / sample) != 1:
                raise ValueError(f"{sample}: alerts in a sample of several chunks")
            times = chunk_occurrences(path, SAMPLES / sample)
            for record_id in record_ids:
                wanted[(str(path), record_id)] += times
    return +wanted


def check_alerts(
    layout: str, found: list[tuple[str, int]], wanted: Counter[tuple[str, int]]
) -> str | None:
    """What differs between a layout's alerts and the expected ones (None: nothing)."""
    got = Counter((_source_path(path), record_id) for path, record_id in found)
    if got == wanted:
        return None
    missing, extra = sum((wanted - got).values()), sum((got - wanted).values())
    return f"{layout}: {missing} expected alerts missing, {extra} unexpected"


def _source_path(path: str) -> str:
    """`log.file.path` as written (the path the converter was given, perhaps relative)."""
    return str(Path(path).resolve()) if not Path(path).is_absolute() else path
