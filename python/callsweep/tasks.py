"""The unit of work of a scan, the same for every engine: `scan_partition(task, rule)`.

A task is plain data (where to read, how much): it pickles in a few hundred bytes and carries
no credentials, so it can go to another process or another machine, whose own environment
gives access to the files. The rule travels as its TOML text and is compiled once per process.

Tasks are packed to a sensible size: the parts of a large input (runs of whole row groups, see
`Scanner.plan`) are one task each; the small inputs most collections are made of are packed
together until a task holds about `TASK_ROWS` rows, so that per-task overhead (a scheduler round
trip on a cluster) stays small against the work.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from callsweep.rules.exceptions import ExceptionItem
from callsweep.rules.model import parse_rule
from callsweep.scan import Part, PartResult, ScanError, Scanner

# Small enough that a few files of moderate size still make several tasks to run side by side,
# large enough that a task's overhead (a scheduler round trip, ~1 ms) is small against its work.
TASK_ROWS = 100_000
TASK_ITEMS = 64


@dataclass(frozen=True)
class TaskItem:
    """One part of one input: a run of row groups of a Parquet file, or a whole EVTX file."""

    path: str
    format: str
    part: Part
    # Set on a whole Parquet file: consecutive items with the same key are read by one query.
    schema_key: str = ""


@dataclass(frozen=True)
class Task:
    items: tuple[TaskItem, ...]


# What one item gave: its alerts (Arrow, to travel cheaply) and counts, or its errors.
ItemResult = PartResult


@dataclass(frozen=True)
class ScanSettings:
    """The rules as their TOML text, and the time window: all a process needs to scan."""

    rule_text: str
    rule_source: str = "<rule>"
    since: datetime | None = None
    until: datetime | None = None
    # The other rules of a multi-rule scan, as (TOML text, source).
    more_rules: tuple[tuple[str, str], ...] = ()
    # Exception items (plain frozen data: they pickle and hash).
    exceptions: tuple[ExceptionItem, ...] = ()
    # An NDJSON shape forced by the user; None: detected per file.
    ndjson_shape: str | None = None
    # Alerts say which clauses held (`callsweep.explain`).
    explain: bool = False
    # Alerts as Elasticsearch would raise them; both modes counted (`rules.compat`).
    elastic_compat: bool = False
    compare_modes: bool = False


def scan_partition(task: Task, settings: ScanSettings) -> tuple[ItemResult, ...]:
    """Scans every item of `task`; an item that fails is reported in its result, the others
    are still scanned. Never raises for bad input."""
    scanner = _scanner(settings)
    results: list[ItemResult] = []
    for group in _groups(task.items):
        if len(group) > 1:
            try:
                results.extend(scanner.scan_files([item.path for item in group]))
                continue
            except ScanError:
                pass  # one by one, so that the error is put on the file it belongs to
        results.extend(_scan_item(scanner, item) for item in group)
    return tuple(results)


def _groups(items: Iterable[TaskItem]) -> Iterator[list[TaskItem]]:
    """Runs of consecutive items with the same schema key (items without one, alone)."""
    group: list[TaskItem] = []
    for item in items:
        if group and (not item.schema_key or item.schema_key != group[0].schema_key):
            yield group
            group = []
        group.append(item)
        if not item.schema_key:
            yield group
            group = []
    if group:
        yield group


def _scan_item(scanner: Scanner, item: TaskItem) -> ItemResult:
    if not item.part.read:
        return ItemResult(event10_rows=item.part.event10_rows)
    try:
        if item.format == "evtx":
            return scanner.scan_evtx(item.path)
        if item.format == "ndjson":
            return scanner.scan_ndjson(item.path)
        return scanner.scan_part(item.path, item.part)
    except ScanError as exc:
        return ItemResult(errors=tuple(exc.errors))


_scanners: dict[ScanSettings, Scanner] = {}
_scanners_lock = threading.Lock()


def _scanner(settings: ScanSettings) -> Scanner:
    """The process's scanner for these settings: the rule is parsed and compiled once."""
    with _scanners_lock:
        scanner = _scanners.get(settings)
        if scanner is None:
            texts = [(settings.rule_text, settings.rule_source), *settings.more_rules]
            rules = [parse_rule(text, source) for text, source in texts]
            # One thread per task: the engine runs as many tasks at once as there are cores.
            scanner = Scanner(
                rules,
                settings.since,
                settings.until,
                workers=1,
                exceptions=settings.exceptions,
                explain=settings.explain,
                elastic_compat=settings.elastic_compat,
                compare_modes=settings.compare_modes,
            )
            scanner.ndjson_shape = settings.ndjson_shape
            _scanners[settings] = scanner
        return scanner


def pack(items: Iterable[tuple[TaskItem, int]], task_rows: int = TASK_ROWS) -> Iterator[Task]:
    """Consecutive `(item, rows)` gathered into tasks of about `task_rows` rows (at most
    `TASK_ITEMS` items); input order is kept. A part that is large alone is a task alone."""
    batch: list[TaskItem] = []
    rows = 0
    for item, item_rows in items:
        if batch and (rows + item_rows > task_rows or len(batch) >= TASK_ITEMS):
            yield Task(tuple(batch))
            batch, rows = [], 0
        batch.append(item)
        rows += item_rows
    if batch:
        yield Task(tuple(batch))
