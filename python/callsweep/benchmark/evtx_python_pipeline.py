"""The Python pipeline contender: what a user writes today without callsweep.

`evtx` (PyPI) `PyEvtxParser(path).records_json()` yields one JSON text per record; orjson parses
it; the System fields and the EventData fields become columns; a pyarrow `ParquetWriter` writes
one zstd Parquet file per input in batches, so memory stays flat whatever the file size.

Columns: the System fields (`@timestamp` parsed to a UTC timestamp, the rest as JSON gave them),
one string column per EventData field that callsweep also gives a column of its own (the Sysmon
fields: the same names, so both outputs hold the same columns), and every other EventData /
UserData value in one JSON text column, so no value is lost. Single process: the parser's Rust
side uses its default threads, everything after it runs in this Python thread.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from pathlib import Path

import evtx
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from callsweep.sources.evtx import evtx_schema

BATCH_ROWS = 65_536
EVENT_DATA_PREFIX = "winlog.event_data."
OTHER = "winlog.event_data_other"
TIMESTAMP = "@timestamp"

# (column, type, path into `Event.System`); a path ending in "@Name" reads an attribute.
SYSTEM_FIELDS: tuple[tuple[str, pa.DataType, tuple[str, ...]], ...] = (
    ("event.code", pa.string(), ("EventID",)),
    ("winlog.record_id", pa.int64(), ("EventRecordID",)),
    ("winlog.channel", pa.string(), ("Channel",)),
    ("winlog.provider_name", pa.string(), ("Provider", "@Name")),
    ("winlog.provider_guid", pa.string(), ("Provider", "@Guid")),
    ("host.name", pa.string(), ("Computer",)),
    ("winlog.level", pa.int64(), ("Level",)),
    ("winlog.task", pa.int64(), ("Task",)),
    ("winlog.opcode", pa.int64(), ("Opcode",)),
    ("winlog.keywords", pa.string(), ("Keywords",)),
    ("winlog.version", pa.int64(), ("Version",)),
    ("winlog.process.pid", pa.int64(), ("Execution", "@ProcessID")),
    ("winlog.process.thread.id", pa.int64(), ("Execution", "@ThreadID")),
    ("winlog.user.identifier", pa.string(), ("Security", "@UserID")),
)


@cache
def event_data_columns() -> tuple[str, ...]:
    """The EventData fields with a column of their own: those callsweep's schema has."""
    return tuple(
        name.removeprefix(EVENT_DATA_PREFIX)
        for name in evtx_schema().names
        if name.startswith(EVENT_DATA_PREFIX)
    )


@cache
def schema() -> pa.Schema:
    fields = [pa.field(TIMESTAMP, pa.timestamp("us", tz="UTC"))]
    fields += [pa.field(name, kind) for name, kind, _ in SYSTEM_FIELDS]
    fields += [pa.field(EVENT_DATA_PREFIX + name, pa.string()) for name in event_data_columns()]
    fields += [pa.field(OTHER, pa.string()), pa.field("log.file.path", pa.string())]
    return pa.schema(fields)


def _system_value(system: dict, path: tuple[str, ...]) -> object:
    value: object = system
    for step in path:
        if not isinstance(value, dict):
            return None
        if step.startswith("@"):
            value = (value.get("#attributes") or {}).get(step[1:])
        else:
            value = value.get(step)
    # An element with attributes keeps its text under "#text" (EventID with Qualifiers).
    if isinstance(value, dict):
        value = value.get("#text")
    return value


def _as_text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value).decode() if isinstance(value, (dict, list)) else str(value)


def _as_int(value: object) -> int | None:
    if isinstance(value, int):
        return value
    try:
        return int(str(value), 0)
    except ValueError:
        return None


class _Columns:
    """Column lists for one batch."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.named = frozenset(event_data_columns())
        self.values: dict[str, list] = {name: [] for name in schema().names}
        self.rows = 0

    def add(self, event: dict) -> None:
        system = event.get("System") or {}
        values = self.values
        values[TIMESTAMP].append(_system_value(system, ("TimeCreated", "@SystemTime")))
        for name, kind, path in SYSTEM_FIELDS:
            value = _system_value(system, path)
            values[name].append(_as_int(value) if kind == pa.int64() else _as_text(value))
        self._add_event_data(event)
        values["log.file.path"].append(self.path)
        self.rows += 1

    def _add_event_data(self, event: dict) -> None:
        found: dict[str, object] = {}
        other: dict[str, object] = {}
        data = event.get("EventData")
        if isinstance(data, dict):
            for key, value in data.items():
                (found if key in self.named else other)[key] = value
        elif data is not None:
            other["EventData"] = data
        if event.get("UserData") is not None:
            other["UserData"] = event["UserData"]
        for name in self.named:
            self.values[EVENT_DATA_PREFIX + name].append(_as_text(found.get(name)))
        self.values[OTHER].append(orjson.dumps(other).decode() if other else None)

    def batch(self) -> pa.RecordBatch:
        arrays = []
        for field in schema():
            values = self.values[field.name]
            if field.name == TIMESTAMP:
                # ISO 8601 text with a Z: pyarrow's cast parses it in C, no per-row Python.
                arrays.append(pa.array(values, pa.string()).cast(field.type))
            else:
                arrays.append(pa.array(values, field.type))
        return pa.RecordBatch.from_arrays(arrays, schema=schema())


def _events(path: Path) -> Iterator[dict]:
    """The parsed `Event` of every record the parser can read; a record it cannot parse raises
    from `next` and the iteration goes on (it is passed over, as evtx_dump does)."""
    records = iter(evtx.PyEvtxParser(str(path)).records_json())
    while True:
        try:
            record = next(records)
        except StopIteration:
            return
        except RuntimeError:
            continue
        yield orjson.loads(record["data"]).get("Event") or {}


def convert_file(path: Path, out: Path) -> int:
    """Converts one EVTX file to `out`; returns the records written."""
    out.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with pq.ParquetWriter(out, schema(), compression="zstd") as writer:
        columns = _Columns(str(path))
        for event in _events(path):
            columns.add(event)
            if columns.rows >= BATCH_ROWS:
                writer.write_batch(columns.batch())
                written += columns.rows
                columns = _Columns(str(path))
        if columns.rows:
            writer.write_batch(columns.batch())
            written += columns.rows
    return written


def relative_output(path: Path, roots: tuple[Path, ...]) -> Path:
    """Where an output for `path` goes below the output folder: its place below the directory
    it was found in, or its name for a file given directly (callsweep's own mapping)."""
    for root in roots:
        if root in path.parents:
            return path.relative_to(root)
    return Path(path.name)


def convert_files(files: tuple[Path, ...], roots: tuple[Path, ...], out_dir: Path) -> int:
    """Converts every file (one Parquet file each, mirroring its place under its root, as
    callsweep does); returns the records written."""
    return sum(
        convert_file(path, out_dir / relative_output(path, roots).with_suffix(".parquet"))
        for path in files
    )
