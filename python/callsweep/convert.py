"""`callsweep convert`: EVTX files to Parquet, one output file per input, mirroring the input tree.

Each output is written to a temporary name and renamed when complete, so a reader never sees half
a file and an interrupted run leaves nothing behind. The source's size and modification time are
kept in the output's metadata: a rerun skips inputs already converted and unchanged.

The Parquet is written in the layout of `callsweep.layout`, which a scan for the rule reads
little of.
"""

from __future__ import annotations

import csv
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePath

import pyarrow as pa
import pyarrow.parquet as pq

from callsweep import _native
from callsweep.engines import Engine, LocalEngine
from callsweep.layout import ROW_GROUP_ROWS, EventLayoutWriter
from callsweep.sources.discover import InputError, InputFile, discover
from callsweep.sources.evtx import evtx_layout_schema, local_evtx, open_evtx
from callsweep.sources.json_shapes import SHAPES as JSON_SHAPES
from callsweep.sources.json_shapes import ndjson_schema
from callsweep.sources.ndjson import NdjsonStream

SOURCE_KEY = b"callsweep.source"
CONVERTIBLE = ("evtx", "ndjson")


@dataclass
class ConvertReport:
    input: str
    output: str
    status: str  # "converted", "unchanged" or "failed"
    records: int = 0
    skipped: int = 0
    bytes: int = 0
    error: str | None = None


@dataclass
class ConvertSummary:
    reports: list[ConvertReport] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)
    # Damaged records or chunks passed over in inputs that were otherwise converted.
    skipped: list[InputError] = field(default_factory=list)
    passed_over: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(1 for r in self.reports if r.status == status)

    @property
    def records(self) -> int:
        return sum(r.records for r in self.reports)

    @property
    def bytes(self) -> int:
        return sum(r.bytes for r in self.reports if r.status == "converted")


def output_path(source: InputFile, out_dir: Path, base: PurePath | None = None) -> Path:
    """`<out>/<path below base>` with the suffix `.parquet` for an input found in a folder,
    `base` being the folders' common parent (`mirror_base`), by default the input's own root;
    `<out>/<name>.parquet` for a file named alone."""
    if source.root is None:
        return out_dir / Path(source.path.name).with_suffix(".parquet")
    base = _absolute(base or source.root)
    return out_dir / _absolute(source.path).relative_to(base).with_suffix(".parquet")


def mirror_base(inputs: Iterable[InputFile]) -> PurePath | None:
    """The deepest folder holding the roots of all inputs found in folders: one directory
    argument mirrors the tree below it, several mirror theirs side by side (`a/x.evtx` and
    `b/x.evtx` become `out/a/x.parquet` and `out/b/x.parquet`). Inputs from object storage
    and local ones have a base each (their paths have no common parent)."""
    roots = {_absolute(s.root) for s in inputs if s.root is not None}
    if not roots:
        return None
    return type(next(iter(roots)))(os.path.commonpath(sorted(str(r) for r in roots)))


def _absolute(path: PurePath) -> PurePath:
    # An object's `bucket/key` is already whole; a local path may be relative.
    return path.absolute() if isinstance(path, Path) else path


def _fingerprint(source: InputFile) -> bytes:
    if source.url:
        size, mtime_ns = source.size, source.mtime_ns
    else:
        stat = source.path.stat()
        size, mtime_ns = stat.st_size, stat.st_mtime_ns
    return json.dumps(
        {
            "path": source.location,
            "size": size,
            "mtime_ns": mtime_ns,
            "callsweep": _native.__version__,
        },
        sort_keys=True,
    ).encode()


def is_unchanged(source: InputFile, out: Path) -> bool:
    """The output exists and was written from this very input (same size and mtime)."""
    try:
        metadata = pq.read_metadata(out).metadata or {}
    except (OSError, ValueError):
        return False
    return metadata.get(SOURCE_KEY) == _fingerprint(source)


def convert_file(
    source: InputFile,
    out: Path,
    threads: int = 0,
    row_group_rows: int = ROW_GROUP_ROWS,
    json_shape: str | None = None,
) -> tuple[ConvertReport, list[InputError]]:
    """Converts one EVTX or NDJSON file; returns its report and the records it had to skip.
    Raises OSError or ValueError (naming the file) when the input cannot be read at all."""
    if source.format == "ndjson":
        return convert_ndjson_file(source, out, row_group_rows, json_shape)
    schema = evtx_layout_schema().with_metadata({SOURCE_KEY: _fingerprint(source)})
    with local_evtx(source.location) as local:
        stream = open_evtx(
            local, threads=threads, name=source.location, by_code_kind=True, layout_form=True
        )
        batches = stream.batches()
        skipped = _write_output(out, schema, batches, row_group_rows, stream.skipped, True)
    report = ConvertReport(
        source.location, str(out), "converted", stream.records, len(skipped), source.size
    )
    return report, skipped


def convert_ndjson_file(
    source: InputFile, out: Path, row_group_rows: int = ROW_GROUP_ROWS, shape: str | None = None
) -> tuple[ConvertReport, list[InputError]]:
    """Converts one NDJSON input (every line: no prefilter) through the same layout writer,
    into the EVTX columns plus `log.file.line`; bad lines go to `.skipped.csv`."""
    schema = ndjson_schema().with_metadata({SOURCE_KEY: _fingerprint(source)})
    stream = NdjsonStream(source.location, shape=shape)
    batches = (batch for table in stream.tables() for batch in table.to_batches())
    skipped = _write_output(out, schema, batches, row_group_rows, lambda: list(stream.skipped))
    report = ConvertReport(
        source.location, str(out), "converted", stream.lines, len(skipped), source.size
    )
    return report, skipped


def _write_output(
    out: Path,
    schema: pa.Schema,
    batches: Iterable[pa.RecordBatch],
    row_group_rows: int,
    skipped: Callable[[], list[InputError]],
    one_kind_batches: bool = False,
) -> list[InputError]:
    """Writes `batches` to `out` in callsweep's layout under a temporary name, renamed when
    complete, and the report of what the reader passed over beside it (`skipped` is asked once
    every batch is read; no report when nothing was). Returns what was skipped.
    `one_kind_batches`: see `EventLayoutWriter`."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        writer = EventLayoutWriter(tmp, schema, row_group_rows, one_kind_batches)
        try:
            for batch in batches:
                writer.write(batch)
        finally:
            writer.close()
        passed_over = skipped()
        report_path = out.with_name(out.name + ".skipped.csv")
        if passed_over:
            _write_skipped(report_path, passed_over)
        else:
            report_path.unlink(missing_ok=True)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return passed_over


def _write_skipped(path: Path, skipped: list[InputError]) -> None:
    """The report of what was passed over: file, chunk, offset, error."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        rows = csv.writer(fh)
        rows.writerow(["file", "where", "error"])
        for error in skipped:
            rows.writerow([error.path, error.where, error.message])


@dataclass(frozen=True)
class ConvertTask:
    """One input to convert: plain data, the same for every engine."""

    source: InputFile
    out: Path
    force: bool
    threads: int  # decoder threads for this file
    row_group_rows: int = ROW_GROUP_ROWS
    json_shape: str | None = None  # NDJSON: the shape forced by the user; None: detected


def convert_partition(task: ConvertTask) -> tuple[ConvertReport, list[InputError]]:
    """Converts one input (unless already converted and unchanged); reports a failure in the
    result rather than raising, so the run goes on."""
    source, out = task.source, task.out
    if not task.force and is_unchanged(source, out):
        return ConvertReport(source.location, str(out), "unchanged", bytes=0), []
    try:
        return convert_file(source, out, task.threads, task.row_group_rows, task.json_shape)
    except (OSError, ValueError, RuntimeError) as exc:
        message = str(exc).removeprefix(f"{source.location}: ")
        return ConvertReport(source.location, str(out), "failed", error=message), []


def convert(
    paths: Iterable[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    jobs: int = 0,
    force: bool = False,
    row_group_rows: int = ROW_GROUP_ROWS,
    on_file: Callable[[ConvertReport], None] | None = None,
    on_start: Callable[[list[InputFile]], None] | None = None,
    engine: Engine | None = None,
    json_shape: str | None = None,
) -> ConvertSummary:
    """Converts every EVTX and NDJSON input under `paths` into `out_dir`, `jobs` files at once
    (0: one per core) on `engine` (by default threads of this process); one bad input never
    stops the run: it is reported and the others are converted. `json_shape` forces the shape
    of NDJSON inputs (`sources.json_shapes.SHAPES`) instead of detecting it per file.

    Several files at once pay off on the many small files of collected logs, where writing
    Parquet (per row group) costs more than decoding; one large file is decoded on every core
    anyway."""
    if json_shape is not None and json_shape not in JSON_SHAPES:
        raise ValueError(f"json_shape must be one of {', '.join(JSON_SHAPES)}, not {json_shape!r}")
    started = time.perf_counter()
    found = discover(paths)
    summary = ConvertSummary(errors=list(found.errors), passed_over=found.passed_over)
    inputs = []
    for source in found.files:
        if source.format in CONVERTIBLE:
            inputs.append(source)
        elif source.root is None:
            summary.errors.append(
                InputError(
                    source.location,
                    f"{source.format} is already a format callsweep scans; nothing to convert",
                )
            )
        else:
            summary.passed_over[source.path.suffix.lower()] += 1
    if on_start is not None:
        on_start(inputs)
    out_root = Path(out_dir)
    # Objects and local files have no common parent: each kind is mirrored below its own.
    bases = {remote: mirror_base(s for s in inputs if bool(s.url) == remote) for remote in (0, 1)}
    cores = os.cpu_count() or 1
    # More files at once than there are files would only take decoder threads from them.
    jobs = max(1, min(jobs if jobs > 0 else cores, len(inputs)))
    if engine is None:
        engine = LocalEngine(jobs)
        # Each file at once gets its share of the cores to decode on. Writing its Parquet
        # (outside the GIL, `layout.EventLayoutWriter`) comes on top: measured on one 256 MiB
        # file, with pyarrow's writer, 1 decoder thread 1.45 s, 2 threads and the writer 1.0 s.
        threads = max(1, cores // jobs)
    else:
        threads = 1  # a cluster worker thread runs one task: one decoder thread with it

    targets: dict[Path, InputFile] = {}
    tasks = []
    for source in inputs:
        out = output_path(source, out_root, bases[bool(source.url)])
        if out in targets:
            summary.errors.append(
                InputError(
                    source.location, f"would be written to {out}, as {targets[out].location} is"
                )
            )
            continue
        targets[out] = source
        tasks.append(ConvertTask(source, out, force, threads, row_group_rows, json_shape))
    try:
        for _, (report, skipped) in engine.map(convert_partition, tasks):
            summary.reports.append(report)
            summary.skipped.extend(skipped)
            if report.status == "failed":
                summary.errors.append(InputError(report.input, report.error or "failed"))
            if on_file is not None:
                on_file(report)
    finally:
        engine.close()
    summary.seconds = time.perf_counter() - started
    return summary
