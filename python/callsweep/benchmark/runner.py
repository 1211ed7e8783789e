"""`callsweep bench`: callsweep and every available alternative on the same Parquet files, timed in
alternation pair by pair, at growing sizes, with the parity gate on their alert sets.

Each alternative runs A B A B ... with callsweep, so the ratio of one pair is taken under the same
load of a shared machine; the ratio quoted is the median of the pairs. Every run's alert set is
compared, by provenance key, with callsweep's, and callsweep's with the generator's own answer
(`expected_alert`, decided while generating, never by a matcher).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import shutil
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import polars as pl

from callsweep import synthetic, synthetic_evtx
from callsweep.benchmark.alert_keys import (
    CALLSWEEP,
    RECORD_ID,
    AlertKeys,
    KeyedContender,
    scan_contenders,
    slice_universe,
)
from callsweep.benchmark.convert_keys import ConvertContender, convert_contenders, scanned_alerts
from callsweep.benchmark.memory_probe import high_water_rss_mib
from callsweep.benchmark.run_support import callsweep_fingerprint
from callsweep.benchmark.timing import Timings, alternate, time_once
from callsweep.rules.model import default_rule

SIZES = {"small": 50_000, "medium": 500_000, "large": 5_000_000}
SCALES = (1, 4, 16)
GENERATOR = "generator"  # the answer the synthetic data was generated with


@dataclass(frozen=True)
class BenchConfig:
    """What one `callsweep bench` run measures."""

    out: Path
    shape: synthetic.Shape | None  # the 1x synthetic data set; None with the user's inputs
    inputs: tuple[Path, ...] = ()  # the user's Parquet files instead of synthetic data
    files: int = 1  # synthetic files per size (the rows are split between them)
    scales: tuple[int, ...] = SCALES
    rounds: int = 3
    slice_rows: int = 20_000
    memory: bool = True  # peak RSS of each contender in a fresh process per size
    convert: bool = True  # the EVTX conversion part (synthetic data only, at the 1x size)


@dataclass
class Parity:
    """One contender's alert set against the reference (callsweep's; callsweep's against the
    generator's): the keys it missed and the keys it added."""

    reference: str
    missing: list[tuple[str, int]] = field(default_factory=list)
    extra: list[tuple[str, int]] = field(default_factory=list)
    unstable: bool = False  # its timed runs did not all give the same set

    @property
    def ok(self) -> bool:
        return not self.missing and not self.extra and not self.unstable

    def describe(self) -> str:
        if self.ok:
            return f"ok (= {self.reference})"
        parts = [f"{len(self.missing)} missing", f"{len(self.extra)} extra"]
        if self.unstable:
            parts.append("differs between runs")
        return f"MISMATCH vs {self.reference}: " + ", ".join(parts)


@dataclass
class ToolResult:
    name: str
    note: str
    timings: Timings
    alerts: int
    parity: Parity
    ratios: list[float] = field(default_factory=list)  # its time / callsweep's, pair by pair
    peak_rss_mib: float | None = None

    @property
    def ratio(self) -> float | None:
        return statistics.median(self.ratios) if self.ratios else None


@dataclass
class SizeResult:
    scale: int
    rows: int
    bytes: int
    files: list[str]
    tools: list[ToolResult]
    imports_only_rss_mib: float | None = None


@dataclass
class BenchResult:
    sizes: list[SizeResult]
    skipped: list[str]
    code_before: str
    code_after: str = ""
    convert: SizeResult | None = None  # EVTX -> Parquet, at the 1x size

    @property
    def mismatches(self) -> list[str]:
        sizes = [("scan", size) for size in self.sizes]
        if self.convert is not None:
            sizes.append(("convert", self.convert))
        return [
            f"{kind}, {size.rows:,} rows, {tool.name}: {tool.parity.describe()}"
            for kind, size in sizes
            for tool in size.tools
            if not tool.parity.ok
        ]


# --- data ------------------------------------------------------------------------------------


def _file_shapes(shape: synthetic.Shape, files: int) -> list[synthetic.Shape]:
    """The shape of each of `files` files sharing `shape.rows`; a seed of their own each."""
    per_file = [shape.rows // files + (i < shape.rows % files) for i in range(files)]
    return [
        synthetic.Shape(**{**asdict(shape), "rows": rows, "seed": shape.seed + i})
        for i, rows in enumerate(per_file)
        if rows
    ]


def ensure_synthetic(folder: Path, shape: synthetic.Shape, files: int) -> list[Path]:
    """The data set's files under `folder`, generated unless a file of the same shape is there
    (the name is a digest of the shape, so a change of any knob generates anew)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for file_shape in _file_shapes(shape, files):
        digest = hashlib.sha256(repr(file_shape).encode()).hexdigest()[:12]
        path = folder / f"sysmon-{file_shape.rows}-{digest}.parquet"
        if not path.exists():
            partial = path.with_suffix(".partial")
            synthetic.write_parquet(partial, file_shape)
            partial.rename(path)  # never a half-written file under the final name
        paths.append(path)
    return paths


def expected_keys(paths: Sequence[str]) -> AlertKeys:
    found = set()
    for path in paths:
        hits = pl.scan_parquet(path).filter(pl.col("expected_alert")).select(RECORD_ID)
        found |= {(path, record_id) for record_id in hits.collect().to_series().to_list()}
    return frozenset(found)


def _row_count(paths: Sequence[str]) -> int:
    return sum(pl.scan_parquet(path).select(pl.len()).collect().item() for path in paths)


def _is_evtx(path: Path) -> bool:
    return path.suffix.lower() == ".evtx"


# --- peak memory -----------------------------------------------------------------------------


def _probe(name: str | None, paths: list[str], slice_rows: int) -> float:
    """In a fresh process: one run of contender `name` (none: imports only); its peak RSS."""
    if name is not None:
        by_name = {c.name: c for c in scan_contenders(default_rule().query, slice_rows)[0]}
        by_name[name].keys(paths)
    return high_water_rss_mib()


def peak_rss_alone(name: str | None, paths: list[str], slice_rows: int) -> float:
    # spawn, not fork: a forked child would inherit this process's memory (see memory_probe).
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_probe, (name, paths, slice_rows))


# --- timing and parity -----------------------------------------------------------------------


@dataclass
class AnswerLog:
    """A contender's first answer, and whether any later run answered otherwise: every run is
    checked, but only one set is kept (a set per run would grow with the rounds)."""

    first: AlertKeys | None = None
    unstable: bool = False

    def add(self, keys: AlertKeys) -> AlertKeys:
        if self.first is None:
            self.first = keys
        elif keys != self.first:
            self.unstable = True
        return keys


class _Recorded:
    """A contender's run as `alternate` times it (answering a count); logs its alert sets."""

    def __init__(self, contender: KeyedContender, paths: list[str]) -> None:
        self._contender, self._paths = contender, paths
        self.answers = AnswerLog()

    def __call__(self) -> int:
        return len(self.answers.add(self._contender.keys(self._paths)))


def _parity(answers: AnswerLog, reference: AlertKeys, reference_name: str) -> Parity:
    first = answers.first if answers.first is not None else frozenset()
    return Parity(
        reference=reference_name,
        missing=sorted(reference - first),
        extra=sorted(first - reference),
        unstable=answers.unstable,
    )


def measure_size(
    config: BenchConfig,
    scale: int,
    paths: list[str],
    contenders: list[KeyedContender],
    expected: AlertKeys | None,
    log: Callable[[str], None],
) -> SizeResult:
    rows = _row_count(paths)
    callsweep, alternatives = contenders[0], contenders[1:]
    assert callsweep.name == CALLSWEEP
    log(f"{rows:,} rows in {len(paths)} file(s): warming up (one untimed run each)")
    # The untimed first run also reads the files into the page cache for everyone.
    callsweep_runs = _Recorded(callsweep, paths)
    callsweep_runs()  # its untimed answer is the reference; the timed runs must repeat it
    reference = callsweep_runs.answers.first
    assert reference is not None
    callsweep_timings = Timings(CALLSWEEP, rows)
    tools = []
    for contender in alternatives:
        runs = _Recorded(contender, paths)
        runs()  # warm-up: DuckDB's connection, imports
        # A sliced contender sees the first rows of the first file: judged on those keys, its
        # time scaled by all rows / those rows (1.0 when the slice is the whole input).
        universe = None
        if contender.slice_rows is not None:
            universe = slice_universe(paths, contender.slice_rows)
        timed_rows = len(universe) if universe is not None else rows
        sliced = timed_rows < rows
        scale_up = rows / timed_rows if sliced else 1.0
        pair = {
            CALLSWEEP: Timings(CALLSWEEP, rows),
            contender.name: Timings(contender.name, timed_rows, scale=scale_up),
        }
        alternate({CALLSWEEP: callsweep_runs, contender.name: runs}, pair, config.rounds)
        callsweep_timings.seconds += pair[CALLSWEEP].seconds
        callsweep_timings.cpu_seconds += pair[CALLSWEEP].cpu_seconds
        callsweep_timings.answers += pair[CALLSWEEP].answers
        timings = pair[contender.name]
        ratios = [
            alt * timings.scale / ours
            for alt, ours in zip(timings.seconds, pair[CALLSWEEP].seconds, strict=True)
        ]
        wanted = reference & universe if sliced and universe is not None else reference
        parity = _parity(runs.answers, wanted, CALLSWEEP + (" on slice" if sliced else ""))
        tools.append(
            ToolResult(
                contender.name,
                contender.note,
                timings,
                len(runs.answers.first or ()),
                parity,
                ratios,
            )
        )
    if expected is not None:
        ours = _parity(callsweep_runs.answers, expected, GENERATOR)
    else:
        ours = _parity(callsweep_runs.answers, reference, "itself")
    tools.insert(
        0, ToolResult(CALLSWEEP, callsweep.note, callsweep_timings, len(reference), ours, [1.0])
    )
    result = SizeResult(scale, rows, sum(os.path.getsize(p) for p in paths), paths, tools)
    if config.memory:
        log("peak RSS: one run of each contender in a fresh process")
        result.imports_only_rss_mib = peak_rss_alone(None, paths, config.slice_rows)
        for tool in tools:
            tool.peak_rss_mib = peak_rss_alone(tool.name, paths, config.slice_rows)
    return result


# --- convert --------------------------------------------------------------------------------


def _convert_probe(name: str, files: list[str], roots: list[str], out: str) -> float:
    """In a fresh process: one run of convert contender `name`; its peak RSS."""
    by_name = {c.name: c for c in convert_contenders()[0]}
    by_name[name].run([Path(f) for f in files], [Path(r) for r in roots], Path(out))
    return high_water_rss_mib()


@dataclass(frozen=True)
class EvtxSet:
    """EVTX files to convert, the folders given to the converters (the files themselves when
    the user named them), and what they hold if known (synthetic): every (file stem, record
    id) and the positives among them."""

    files: list[Path]
    roots: list[Path]
    records: AlertKeys | None = None
    positives: AlertKeys | None = None


def synthetic_evtx_set(config: BenchConfig, shape: synthetic.Shape) -> EvtxSet:
    folder = config.out / "data" / "evtx"
    shutil.rmtree(folder, ignore_errors=True)
    written = synthetic_evtx.write_evtx_files(folder, shape, config.files)
    records = frozenset(
        (w.path.stem, rid)
        for w in written
        for rid in range(w.first_record_id, w.last_record_id + 1)
    )
    positives = frozenset((w.path.stem, rid) for w in written for rid in w.alert_record_ids)
    return EvtxSet([w.path for w in written], [folder], records, positives)


def measure_convert(
    config: BenchConfig, evtx: EvtxSet, log: Callable[[str], None]
) -> tuple[SizeResult, list[str]]:
    """The EVTX files converted by each contender, alternating with callsweep; parity on the
    records written, and callsweep's converted output scanned to the generated positives (the
    user's files: every tool against callsweep's records)."""
    contenders, skipped = convert_contenders()
    files, roots = evtx.files, evtx.roots
    runs_dir = config.out / "data" / "convert-runs"

    ours = contenders[0]
    ours_alerts = AnswerLog()  # callsweep's output must alert as generated

    def timed(contender: ConvertContender, answers: AnswerLog) -> tuple[float, float, int]:
        out = runs_dir / contender.name.replace(" ", "-")
        shutil.rmtree(out, ignore_errors=True)  # untimed: every run starts from an empty folder
        seconds, cpu, _ = time_once(lambda: contender.run(files, roots, out) or 0)
        written = answers.add(contender.written(out))
        if contender is ours and evtx.positives is not None:
            ours_alerts.add(scanned_alerts(out))
        return seconds, cpu, len(written)

    ours_answers = AnswerLog()
    if evtx.records is None:  # the user's files: callsweep's (untimed) answer is the reference
        timed(ours, ours_answers)
        reference, reference_name = ours_answers.first, "callsweep (records)"
        assert reference is not None
    else:
        reference, reference_name = evtx.records, GENERATOR + " (records)"
    rows = len(reference)
    ours_timings = Timings(ours.name, rows)
    tools = []
    for contender in contenders[1:]:
        timings, answers = Timings(contender.name, rows), AnswerLog()
        ratios = []
        for round_no in range(1, config.rounds + 1):
            pair = []
            for who, into, record in (
                (ours, ours_answers, ours_timings),
                (contender, answers, timings),
            ):
                seconds, cpu, answer = timed(who, into)
                record.seconds.append(seconds)
                record.cpu_seconds.append(cpu)
                record.answers.append(answer)
                pair.append(seconds)
                log(f"  round {round_no}/{config.rounds}  {who.name:<28} {seconds:8.3f} s")
            ratios.append(pair[1] / pair[0])
        parity = _parity(answers, reference, reference_name)
        count = len(answers.first or ())
        tools.append(ToolResult(contender.name, contender.note, timings, count, parity, ratios))
    if not ours_timings.seconds:  # no alternative ran: time callsweep alone
        for _ in range(config.rounds):
            seconds, cpu, answer = timed(ours, ours_answers)
            ours_timings.seconds.append(seconds)
            ours_timings.cpu_seconds.append(cpu)
            ours_timings.answers.append(answer)
    if evtx.positives is None:
        parity = _parity(ours_answers, reference, "itself")
    else:
        parity = _parity(ours_answers, reference, GENERATOR + " (records, alerts)")
        scanned = _parity(ours_alerts, evtx.positives, GENERATOR)
        parity.missing += scanned.missing
        parity.extra += scanned.extra
        parity.unstable |= scanned.unstable
    count = len(ours_answers.first or ())
    ours_result = ToolResult(ours.name, ours.note, ours_timings, count, parity, [1.0])
    tools.insert(0, ours_result)
    result = SizeResult(
        1, rows, sum(p.stat().st_size for p in files), [str(p) for p in files], tools
    )
    if config.memory:
        log("peak RSS: one conversion by each contender in a fresh process")
        for tool in tools:
            out = runs_dir / "probe"
            shutil.rmtree(out, ignore_errors=True)
            with multiprocessing.get_context("spawn").Pool(1) as pool:
                args = (tool.name, [str(f) for f in files], [str(r) for r in roots], str(out))
                tool.peak_rss_mib = pool.apply(_convert_probe, args)
    shutil.rmtree(runs_dir, ignore_errors=True)
    return result, skipped


def run_bench(config: BenchConfig, log: Callable[[str], None]) -> BenchResult:
    contenders, skipped = scan_contenders(default_rule().query, config.slice_rows)
    result = BenchResult(sizes=[], skipped=skipped, code_before=callsweep_fingerprint())
    if config.shape is None:
        paths = [str(path) for path in config.inputs if not _is_evtx(path)]
        if paths:
            result.sizes.append(measure_size(config, 1, paths, contenders, None, log))
        evtx_files = [path for path in config.inputs if _is_evtx(path)]
        if evtx_files and config.convert:
            log(f"convert: {len(evtx_files)} EVTX file(s) of yours")
            evtx = EvtxSet(evtx_files, evtx_files)
            result.convert, convert_skipped = measure_convert(config, evtx, log)
            result.skipped += convert_skipped
    else:
        for scale in config.scales:
            shape = synthetic.Shape(**{**asdict(config.shape), "rows": config.shape.rows * scale})
            log(f"data: {shape.rows:,} synthetic rows ({scale}x)")
            files = ensure_synthetic(config.out / "data", shape, config.files)
            paths = [str(path) for path in files]
            expected = expected_keys(paths)
            result.sizes.append(measure_size(config, scale, paths, contenders, expected, log))
        if config.convert:
            log(f"data: {config.shape.rows:,} synthetic events as EVTX ({config.files} file(s))")
            evtx = synthetic_evtx_set(config, config.shape)
            result.convert, convert_skipped = measure_convert(config, evtx, log)
            result.skipped += convert_skipped
    result.code_after = callsweep_fingerprint()
    return result
