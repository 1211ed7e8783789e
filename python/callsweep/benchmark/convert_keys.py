"""Convert contenders of `callsweep bench`: EVTX files to something a scanner reads, timed; what
each wrote is read back untimed, as the set of (file, record id) keys it holds, for the parity
gate against the records the generator wrote.

callsweep's Parquet is also scanned (untimed) and must alert on exactly the generated positives.
The Python pipeline writes raw Sysmon columns callsweep's rule does not map (no
`event.category`...), so its parity is on the records written only.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

import callsweep
from callsweep.benchmark.alert_keys import RECORD_ID, AlertKeys
from callsweep.convert import convert

PATH = "log.file.path"


@dataclass(frozen=True)
class ConvertContender:
    name: str
    note: str
    # Timed: (the files, the folders or files to give the converter, the output folder).
    run: Callable[[Sequence[Path], Sequence[Path], Path], object]
    written: Callable[[Path], AlertKeys]  # untimed: the (file stem, record id) of every record


def _stem_keys(frame: pl.DataFrame) -> AlertKeys:
    return frozenset((Path(path).stem, int(rid)) for path, rid in frame.iter_rows())


def parquet_written(out: Path) -> AlertKeys:
    """Every record of every Parquet file under `out`, keyed by the EVTX file it came from."""
    keys: set[tuple[str, int]] = set()
    for path in out.rglob("*.parquet"):
        keys |= _stem_keys(pl.read_parquet(path, columns=[PATH, RECORD_ID]))
    return frozenset(keys)


def scanned_alerts(out: Path) -> AlertKeys:
    """callsweep's alerts on a converted folder, keyed as the generator's positives are."""
    return _stem_keys(callsweep.scan(out).select(PATH, RECORD_ID))


def run_callsweep(files: Sequence[Path], roots: Sequence[Path], out: Path) -> object:
    return convert(list(roots), out, force=True)


def run_python_pipeline(files: Sequence[Path], roots: Sequence[Path], out: Path) -> object:
    from callsweep.benchmark import evtx_python_pipeline  # needs the `bench` extra

    return evtx_python_pipeline.convert_files(tuple(files), tuple(roots), out)


def evtx_dump_on_path() -> str | None:
    """The evtx crate's `evtx_dump`, if on the PATH (python-evtx installs a script of the same
    name: only a tool that says "EVTX Parser" for `--version` is taken)."""
    found = shutil.which("evtx_dump")
    if found is None:
        return None
    done = subprocess.run([found, "--version"], capture_output=True, text=True)
    return found if done.returncode == 0 and done.stdout.startswith("EVTX Parser") else None


def run_evtx_dump(tool: str) -> Callable[[Sequence[Path], Sequence[Path], Path], object]:
    def run(files: Sequence[Path], roots: Sequence[Path], out: Path) -> object:
        out.mkdir(parents=True, exist_ok=True)
        for path in files:  # it takes one file per run
            target = out / (path.stem + ".jsonl")
            command = [tool, "-o", "jsonl", "--no-confirm-overwrite", "-f", str(target), str(path)]
            subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return None

    return run


def jsonl_written(out: Path) -> AlertKeys:
    import orjson

    keys: set[tuple[str, int]] = set()
    for path in out.glob("*.jsonl"):
        with path.open("rb") as lines:
            for line in lines:
                record_id = orjson.loads(line)["Event"]["System"]["EventRecordID"]
                keys.add((path.stem, int(record_id)))
    return frozenset(keys)


def convert_contenders() -> tuple[list[ConvertContender], list[str]]:
    """callsweep first, then every alternative that can run here; and what was skipped, why."""
    contenders = [
        ConvertContender(
            "callsweep convert",
            "`callsweep.convert.convert([folder], out)`",
            run_callsweep,
            parquet_written,
        )
    ]
    skipped = []
    if all(importlib.util.find_spec(name) for name in ("evtx", "orjson")):
        contenders.append(
            ConvertContender(
                "evtx+orjson+pyarrow",
                "`PyEvtxParser.records_json()` + orjson + pyarrow `ParquetWriter`",
                run_python_pipeline,
                parquet_written,
            )
        )
    else:
        skipped.append("convert: evtx + orjson not installed (pip install 'callsweep[bench]')")
    tool = evtx_dump_on_path()
    if tool is not None:
        contenders.append(
            ConvertContender(
                "evtx_dump", "`evtx_dump -o jsonl` per file", run_evtx_dump(tool), jsonl_written
            )
        )
    else:
        skipped.append("convert: evtx_dump (the evtx crate's tool) not on the PATH")
    return contenders, skipped
