"""The scan: a lazy polars plan per part of each input, the rule as its filter, alerts streamed
out in input order.

An input is cut into parts, runs of whole row groups. Per part: read only the columns the rule
and the alert need, normalize them to ECS, filter by the cheap conjuncts first (polars pushes
`event.code == "10"` into the Parquet reader, which skips row groups by their statistics), then
by the wildcard tests (the Rust kernel, GIL released), and project the alert. The streaming
engine keeps each part's memory flat; parts run side by side, one per core, because polars
decodes a single Parquet scan on about one core. An EVTX input is one part: the Rust decoder
streams its batches (using every core itself) and each batch goes through the same plan.
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from callsweep import _native
from callsweep import alerts as alert_schema
from callsweep.ecs import TIMESTAMP, normalize
from callsweep.rules import compat
from callsweep.rules.analysis import walk_fields
from callsweep.rules.ast import And, Compare, EventQuery, InSet
from callsweep.rules.compile import compile_node, compile_query
from callsweep.rules.exceptions import ExceptionItem, exclusion_for
from callsweep.rules.explain import EXPLAIN, explanation
from callsweep.rules.model import Rule, default_rule
from callsweep.rules.prefix import stored_prefixes, use_stored_prefixes
from callsweep.rules.shared import RULES_COLUMN, compile_rules
from callsweep.rules.statistics import never_matches, row_group_stats, stats_columns
from callsweep.sources import storage
from callsweep.sources.discover import InputError, InputFile, discover
from callsweep.sources.evtx import empty_evtx_frame, local_evtx, open_evtx
from callsweep.sources.json_shapes import empty_ndjson_frame
from callsweep.sources.ndjson import ALERT_NEEDLES, LineBlock, NdjsonStream
from callsweep.sources.prefilter import excluded_prefixes
from callsweep.tally import alert_groups

if TYPE_CHECKING:
    from callsweep.engines import Engine

ENGINE = "streaming"
# The column naming each row's file when several files are scanned by one query.
FILE_COLUMN = "callsweep.scan.file"
# Present (true) when the query copied the alerts' CallTraces into buffers of their own already
# and cut their first frames (`_with_owned_call_trace`), for `_owning` not to copy them again
# nor `Scanner._tag` to cut them.
OWNED_COLUMN = "callsweep.scan.owned_call_trace"
# With several rules, the column saying whether rule i holds on the row (dropped from alerts).
HIT_COLUMN = "callsweep.scan.hit.{}"
# Whether rule i held on the row but an exception dropped the alert.
EXCLUDED_COLUMN = "callsweep.scan.excluded.{}"
# With several rules and `explain`, why rule i held (becomes `callsweep.explain` on its alerts).
EXPLAIN_COLUMN = "callsweep.scan.explain.{}"


class ScanError(RuntimeError):
    """Inputs (or parts of inputs) that could not be scanned; the message names each."""

    def __init__(self, errors: Sequence[InputError]) -> None:
        self.errors = list(errors)
        super().__init__("; ".join(str(e) for e in self.errors))


@dataclass
class InputReport:
    path: str
    format: str
    bytes: int = 0
    shape: str = ""
    rows: int = 0
    event10_rows: int = 0
    alerts: int = 0
    # Alerts dropped by exceptions.
    excluded: int = 0
    # When both modes are computed: alerts of the mode not written out, and alerts of both.
    other_mode: int = 0
    both_modes: int = 0
    # Fields the rule cannot do without that this input does not have.
    missing: tuple[str, ...] = ()
    error: str | None = None
    # Records the reader passed over (damaged EVTX records and chunks).
    skipped: int = 0
    # NDJSON lines the prefilter proved unable to alert, never parsed: all of them, and of
    # those the lines with a CallTrace that every rule excludes (`sources.prefilter`).
    unparsed: int = 0
    unparsed_excluded: int = 0


@dataclass
class ScanSummary:
    rule: Rule
    # Every rule of the scan (the first is `rule`).
    rules: list[Rule] = field(default_factory=list)
    inputs: list[InputReport] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)
    # Damaged records or chunks passed over inside inputs that were otherwise read.
    skipped: list[InputError] = field(default_factory=list)
    passed_over: Counter[str] = field(default_factory=Counter)
    alerts_by_host: Counter[str] = field(default_factory=Counter)
    alerts_by_pair: Counter[tuple[str, str]] = field(default_factory=Counter)
    alerts_by_rule: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    # NDJSON inputs, per shape: events parsed, and how many had each field the rule needs
    # (lines the prefilter proved unable to alert are not parsed, so not counted: see
    # `unparsed`; nor are they among `event10_rows`).
    shape_events: Counter[str] = field(default_factory=Counter)
    shape_fields: dict[str, Counter[str]] = field(default_factory=dict)

    @property
    def files(self) -> int:
        return sum(1 for r in self.inputs if r.error is None)

    @property
    def rows(self) -> int:
        return sum(r.rows for r in self.inputs)

    @property
    def bytes(self) -> int:
        return sum(r.bytes for r in self.inputs if r.error is None)

    @property
    def event10_rows(self) -> int:
        return sum(r.event10_rows for r in self.inputs)

    @property
    def unparsed(self) -> int:
        return sum(r.unparsed for r in self.inputs)

    @property
    def unparsed_excluded(self) -> int:
        return sum(r.unparsed_excluded for r in self.inputs)

    @property
    def alerts(self) -> int:
        return sum(r.alerts for r in self.inputs)

    @property
    def excluded(self) -> int:
        return sum(r.excluded for r in self.inputs)

    # Whether alerts were decided as Elasticsearch would (`ignore_above`), and whether the
    # other mode was counted beside (see `Scanner.compare_modes`).
    elastic_compat: bool = False
    compared: bool = False

    @property
    def alerts_as_written(self) -> int:
        return self._mode(elastic=False)

    @property
    def alerts_elastic(self) -> int:
        """The alerts Elasticsearch would raise (keyword `ignore_above` applied)."""
        return self._mode(elastic=True)

    @property
    def both_modes(self) -> int:
        return sum(r.both_modes for r in self.inputs)

    def _mode(self, elastic: bool) -> int:
        if elastic == self.elastic_compat:
            return self.alerts
        return sum(r.other_mode for r in self.inputs)

    @property
    def failed(self) -> int:
        return len(self.errors)

    def count(self, alerts: pl.DataFrame) -> None:
        """Adds a batch of alerts to the per-host, per source -> target and per-rule tallies."""
        for host, source, target, name, version, n in alert_groups(alerts).iter_rows():
            self.alerts_by_host[host] += n
            self.alerts_by_pair[(source, target)] += n
            self.alerts_by_rule[f"{name} v{version}"] += n


@dataclass(frozen=True)
class Part:
    """A run of whole row groups of one input: the unit of work, and of progress."""

    offset: int
    rows: int
    bytes: int
    # False when the row groups' statistics show that no row can alert (none is event 10, or
    # the rules are false on every row, `rules.statistics`): the part is counted, never read.
    read: bool = True
    # For a part not read: its event-10 rows, known from the statistics.
    event10_rows: int = 0


@dataclass(frozen=True)
class PartResult:
    """What scanning one part gave: its alerts as Arrow (they travel between processes, and
    Arrow's plain strings own their bytes, where polars' filtered string views would keep the
    whole part's buffers alive), counts, and what went wrong."""

    event10_rows: int = 0
    alerts: pa.Table | None = None  # None: no alert
    # For inputs whose row count is known only once read (EVTX): rows read, records skipped.
    rows: int | None = None
    skipped: tuple[InputError, ...] = ()
    errors: tuple[InputError, ...] = ()
    # Alerts dropped by exceptions.
    excluded: int = 0
    # Both modes computed: (alerts of the mode not written out, alerts of both modes).
    modes: tuple[int, int] = (0, 0)
    # NDJSON: per shape read, (events parsed, events having each field the rule needs).
    shapes: dict[str, tuple[int, dict[str, int]]] | None = None
    # NDJSON: lines the prefilter left unparsed, and of those the ones whose CallTrace every
    # rule excludes.
    unparsed: tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class InputPlan:
    """What scanning one input will do, before anything but its metadata is read."""

    input: InputFile
    shape: str
    rows: int
    parts: tuple[Part, ...]
    missing: tuple[str, ...]
    # Inputs with the same key have the same Parquet schema: whole files of one key can be
    # scanned by one query (`Scanner.scan_files`). Empty: scanned alone.
    schema_key: str = ""


class Scanner:
    # Row groups are gathered into parts of about this many rows: large enough that the
    # per-query overhead vanishes, small enough that progress moves on a big file.
    PART_ROWS = 500_000
    # Small inputs are packed into tasks of about this many rows (see `tasks.pack`).
    TASK_ROWS = 100_000

    def __init__(
        self,
        rule: Rule | Sequence[Rule] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        workers: int | None = None,
        exceptions: Sequence[ExceptionItem] = (),
        explain: bool = False,
        elastic_compat: bool = False,
        compare_modes: bool = False,
    ) -> None:
        # polars runs one Parquet scan on about one core (decoding a large string column is
        # serial), so parts are scanned side by side, one per core.
        self.workers = workers or pl.thread_pool_size()
        # Several rules are evaluated in one pass: the union of their fields is read and
        # decoded once, the filter they share applied once; an alert row per (event, rule).
        self.rules = [rule] if isinstance(rule, Rule) else list(rule or [default_rule()])
        self.rule = self.rules[0]
        self.since = _as_utc(since)
        self.until = _as_utc(until)
        self.exceptions = tuple(exceptions)
        # Each alert says which clauses of its rule held (`callsweep.explain`), computed on
        # alert rows only.
        self.explain = explain
        # Alerts decided as Elasticsearch would (keyword `ignore_above: 1024`, `rules.compat`),
        # instead of on the query as written; with either, or `compare_modes`, the other mode is
        # decided in the same pass and counted.
        self.elastic_compat = elastic_compat
        self.compare_modes = compare_modes or elastic_compat
        self._exclusions = [exclusion_for(r, list(self.exceptions)) for r in self.rules]
        read = [f for r in self.rules for f in r.fields]
        read += [f for x in self._exclusions if x is not None for f in walk_fields(x)]
        self._fields = tuple(dict.fromkeys([*read, *alert_schema.EVENT_FIELDS]))
        # What decides which events alert (rules, exceptions, the time window, the event-10
        # count); the rest of `_fields` only fills alerts in.
        window = [TIMESTAMP] if self.since is not None or self.until is not None else []
        self._deciding_fields = tuple(dict.fromkeys([*read, *window, "event.code"]))
        self._rule_columns = [alert_schema.rule_columns(r) for r in self.rules]
        self._needs_event10 = all(_requires_event10(r.query) for r in self.rules)
        # What an input must have for some rule to alert: the fields every rule requires.
        self._required = tuple(
            f for f in self.rule.required_fields if all(f in r.required_fields for r in self.rules)
        )
        # Per Parquet schema: its shape, the required fields it lacks, and for
        # `rules.statistics` the rules' queries as that schema evaluates them (stored prefixes
        # in use) with the leaf columns whose statistics they read.
        self._shapes: dict[
            str, tuple[str, tuple[str, ...], tuple[list[EventQuery], list[int]]]
        ] = {}
        # An NDJSON shape forced by the user (`--format`); None: detected per file.
        self.ndjson_shape: str | None = None
        # Threads parsing the blocks of one NDJSON file (a file is one task).
        self.ndjson_threads = pl.thread_pool_size()

    def plan(self, source: InputFile) -> InputPlan:
        path = source.location
        if source.format == "evtx":
            # Decoded as one stream: a single part; the row count is known once it is read.
            _, _, _, schema = self._queries(empty_evtx_frame().lazy(), pl.lit(path))
            missing = tuple(f for f in self._required if f not in schema)
            return InputPlan(source, "evtx", 0, (Part(0, 0, source.size),), missing)
        if source.format == "ndjson":
            # Read as one stream of blocks; the shape is known per member once read.
            _, _, _, schema = self._queries(empty_ndjson_frame().lazy(), pl.lit(path))
            missing = tuple(f for f in self.rule.required_fields if f not in schema)
            return InputPlan(source, "ndjson", 0, (Part(0, 0, source.size),), missing)
        try:
            metadata = storage.read_parquet_metadata(path) if source.url else pq.read_metadata(path)
        except (OSError, ValueError) as exc:  # pyarrow raises ArrowInvalid (a ValueError)
            error = InputError(path, f"not a readable Parquet file: {exc}")
            raise ScanError([error]) from exc
        key = _schema_key(metadata)
        if key not in self._shapes:
            # Files of one schema (a converted collection) share their shape and what they
            # lack: worked out once, not per file.
            _, _, shape, schema = self._queries(pl.scan_parquet(path), pl.lit(path))
            missing = tuple(f for f in self._required if f not in schema)
            queries = [use_stored_prefixes(r.query, schema) for r in self.rules]
            fields = ["event.code", *(f for q in queries for f in walk_fields(q.condition))]
            self._shapes[key] = (shape, missing, (queries, stats_columns(metadata, fields)))
        shape, missing, (queries, columns) = self._shapes[key]
        skippable = known_event10 = None
        if self._needs_event10 and shape == "ecs-flat":
            skippable = _event10_skippable(metadata)
            # Both modes differ on long values, which the statistics do not see: read all then.
            if skippable is not None and not self.compare_modes:
                known_event10 = _never_alerting(metadata, queries, columns, skippable)
        parts = _parts(metadata, source.size, self.PART_ROWS, skippable, known_event10)
        return InputPlan(source, shape, metadata.num_rows, parts, missing, key)

    def alerts_query(self, path: str) -> pl.LazyFrame:
        """The alerts of a whole Parquet input, as a lazy frame."""
        hits = self._queries(pl.scan_parquet(path), pl.lit(path))[0]
        if not self._tagged:
            return hits
        return pl.concat([self._alerts_of(hits, i) for i in range(len(self.rules))])

    def _alerts_of(self, hits: pl.LazyFrame, i: int) -> pl.LazyFrame:
        hit_columns = [HIT_COLUMN.format(j) for j in range(len(self.rules))]
        hit_columns += [EXCLUDED_COLUMN.format(j) for j in range(len(self.rules))]
        if self.explain:
            hit_columns += [EXPLAIN_COLUMN.format(j) for j in range(len(self.rules)) if j != i]
        if self.compare_modes:
            hit_columns += [compat.OTHER_COLUMN.format(j) for j in range(len(self.rules))]
        return (
            hits.filter(pl.col(hit_columns[i]))
            .drop(hit_columns)
            .drop(OWNED_COLUMN, strict=False)
            .rename({EXPLAIN_COLUMN.format(i): EXPLAIN} if self.explain else {})
            .with_columns(
                alert_schema.first_frame(pl.col(alert_schema.CALL_TRACE)).alias(
                    alert_schema.FIRST_FRAME
                ),
                *self._rule_columns[i],
            )
        )

    @property
    def _tagged(self) -> bool:
        """Whether the query marks each row per rule (several rules, or exceptions to count)."""
        return (
            len(self.rules) > 1
            or any(x is not None for x in self._exclusions)
            or self.compare_modes
        )

    def _tag(self, hits: pl.DataFrame) -> pl.DataFrame:
        """The collected rows of a query as alerts owning their bytes (`_owning`): for several
        rules, one row per (event, rule that holds on it and no exception drops), rule by rule,
        as `_alerts_of` gives them. The event rows are compacted first and then gathered: the
        alerts of one event share its bytes, copied once, and the rules' columns are gathered
        from a table of one row per rule (measured on 81k alerts of ten rules: 10 ms to
        broadcast their constants rule by rule, 1 ms to gather them)."""
        # First frames cut in the query (`_with_owned_call_trace`), or here, below.
        frames_cut = OWNED_COLUMN in hits.columns
        hits = _owning(hits)
        if not self._tagged:
            return hits
        n = len(self.rules)
        rows = [hits.get_column(HIT_COLUMN.format(i)).arg_true() for i in range(n)]
        marks = [HIT_COLUMN.format(i) for i in range(n)] + [
            EXCLUDED_COLUMN.format(i) for i in range(n)
        ]
        if self.explain:
            marks += [EXPLAIN_COLUMN.format(i) for i in range(n)]
        if self.compare_modes:
            marks += [compat.OTHER_COLUMN.format(i) for i in range(n)]
        events = hits.drop(marks)
        if not frames_cut:
            events = events.with_columns(_first_frames(hits))
        columns = [events[pl.concat(rows)]]
        if self.explain:
            why = [hits.get_column(EXPLAIN_COLUMN.format(i))[r] for i, r in enumerate(rows)]
            columns.append(pl.DataFrame(pl.concat(why).alias(EXPLAIN)))
        # Each row's rule, in one query (`pl.repeat` would run one per rule); rules without
        # alerts left out, as `explode` of polars 1 makes an empty list a null row.
        counts = pl.DataFrame({"rule": range(n), "n": [r.len() for r in rows]})
        rule_of = (
            counts.filter(pl.col("n") > 0)
            .select(pl.col("rule").cast(pl.UInt32).repeat_by("n").explode())
            .to_series()
        )
        columns.append(self._rules_table[rule_of])
        return pl.concat(columns, how="horizontal")

    @functools.cached_property
    def _rules_table(self) -> pl.DataFrame:
        """The rules' alert columns, one row per rule (`alerts.rule_columns`)."""
        # One chunk: polars gathers from a frame of many chunks about 20 times slower.
        return pl.concat([pl.select(*columns) for columns in self._rule_columns], rechunk=True)

    def _modes(self, hits: pl.DataFrame) -> pl.DataFrame:
        """Of the collected rows, per row: `other`, the alerts of the mode not written out;
        `both`, the alerts of both modes (zeros unless `compare_modes`)."""
        if not self.compare_modes:
            return hits.head(0).with_columns(other=pl.lit(0), both=pl.lit(0))
        other = [pl.col(compat.OTHER_COLUMN.format(i)) for i in range(len(self.rules))]
        hit = [pl.col(HIT_COLUMN.format(i)) for i in range(len(self.rules))]
        return hits.with_columns(
            other=pl.sum_horizontal(other),
            both=pl.sum_horizontal([h & o for h, o in zip(hit, other, strict=True)]),
        )

    def _counted_modes(self, hits: pl.DataFrame) -> tuple[int, int]:
        modes = self._modes(hits)
        return int(modes["other"].sum()), int(modes["both"].sum())

    def _excluded(self, hits: pl.DataFrame) -> pl.DataFrame:
        """Of the collected rows, those on which an exception dropped some alert, with `n`
        the number of rules whose alert was dropped."""
        if all(x is None for x in self._exclusions):
            # No exception applies: nothing is dropped (and untagged rows have no marks).
            return hits.head(0).with_columns(n=pl.lit(0))
        names = [EXCLUDED_COLUMN.format(i) for i in range(len(self.rules))]
        return hits.with_columns(n=pl.sum_horizontal(names)).filter(pl.col("n") > 0)

    def _queries(
        self, raw: pl.LazyFrame, origin: pl.Expr, by_file: bool = False
    ) -> tuple[pl.LazyFrame, pl.LazyFrame, str, dict[str, pl.DataType]]:
        """The alert query and the event-10 count over `raw`, its shape and normalized schema;
        `origin` is the input's path for alerts whose data do not name their file. `by_file`:
        `raw` holds several files, named in `FILE_COLUMN`, which the alerts keep and by which
        event 10 is counted."""
        # Stored prefixes of long fields (callsweep's Parquet layout) are read in their stead
        # wherever they decide a test.
        prefixes = [column for column, _ in stored_prefixes(raw.collect_schema().names()).values()]
        kept = [FILE_COLUMN] if by_file else []
        norm = normalize(raw, [*self._fields, *prefixes, *kept])
        schema = dict(norm.frame.collect_schema())
        events = norm.frame
        if self.since is not None or self.until is not None:
            events = events.filter(self._time_window(schema))
        projection = alert_schema.alert_projection(schema, origin)
        if self._tagged:
            # Not cut here from the part's cold CallTraces: cut where the kept rows' CallTraces
            # are copied (`_with_owned_call_trace`, below), or else after the rows are tagged
            # (`_tag`, `_alerts_of`), from the alerts' own copies.
            projection = _with_first_frame(projection, pl.lit(None, pl.String))
        if self.compare_modes:
            alerts = self._both_modes(events, schema, projection, kept)
        elif not self._tagged:
            compiled = compile_query(use_stored_prefixes(self.rule.query, schema), schema)
            alerts = (
                events.filter(compiled.prefilter)
                .filter(compiled.condition)
                .select(*projection, *self._rule_columns[0], *kept, *self._explained(schema))
            )
        else:
            # The rules' shared filter once, each distinct pattern matched once (`shared`).
            rules = compile_rules(
                [use_stored_prefixes(r.query, schema) for r in self.rules], schema
            )
            marks = []
            for i, exclusion in enumerate(self._exclusions):
                holds = rules.holds(i)
                if exclusion is None:
                    marks.append(holds.alias(HIT_COLUMN.format(i)))
                    marks.append(pl.lit(False).alias(EXCLUDED_COLUMN.format(i)))
                    continue
                dropped = compile_node(exclusion, schema).fill_null(False)
                marks.append((holds & ~dropped).alias(HIT_COLUMN.format(i)))
                marks.append((holds & dropped).alias(EXCLUDED_COLUMN.format(i)))
            names = [m.meta.output_name() for m in marks]
            # One filter, pushed into the reader with the prefilter: the other columns are
            # then decoded only for the rows some rule holds on, where each rule's verdict is
            # taken (every row left has one).
            rows_kept, owned = _with_owned_call_trace(
                events.filter(rules.prefilter).filter(rules.any), schema
            )
            if owned:
                projection = _with_first_frame(projection, pl.col(alert_schema.FIRST_FRAME))
            alerts = (
                rows_kept.with_columns(rules.each.alias(RULES_COLUMN))
                .with_columns(marks)
                .select(
                    *projection,
                    *names,
                    *kept,
                    *self._explained(schema, tagged=True),
                    *([pl.col(OWNED_COLUMN)] if owned else []),
                )
            )
        is_event10 = compile_node(Compare("event.code", "==", "10"), schema)
        if by_file:
            event10 = events.group_by(FILE_COLUMN).agg(is_event10.sum().alias("n"))
        else:
            event10 = events.select(is_event10.sum().alias("n"))
        return alerts, event10, norm.shape, schema

    def _both_modes(
        self,
        events: pl.LazyFrame,
        schema: dict[str, pl.DataType],
        projection: list[pl.Expr],
        kept: list[str],
    ) -> pl.LazyFrame:
        """The alert query marking, per rule, the verdict of both modes (`rules.compat`): the
        query as written on every event, Elasticsearch's only on the rows where it may hold."""
        plans = [
            compat.CompatRule(r.query, x, schema)
            for r, x in zip(self.rules, self._exclusions, strict=True)
        ]
        written, candidates = [], []
        for i, (rule, plan) in enumerate(zip(self.rules, plans, strict=True)):
            holds = compile_query(use_stored_prefixes(rule.query, schema), schema).predicate
            holds = holds.fill_null(False)
            exclusion = self._exclusions[i]
            dropped = pl.lit(False) if exclusion is None else compile_node(exclusion, schema)
            written += [holds.alias(f"w.holds.{i}"), dropped.fill_null(False).alias(f"w.drop.{i}")]
            candidates.append(plan.candidates(holds))
        masked = dict.fromkeys(f for plan in plans for f in plan.fields)
        marks = []
        for i, plan in enumerate(plans):
            e_holds, e_dropped = plan.elastic()
            w_holds, w_dropped = pl.col(f"w.holds.{i}"), pl.col(f"w.drop.{i}")
            as_written, elastic = w_holds & ~w_dropped, e_holds & ~e_dropped
            chosen, other = (elastic, as_written) if self.elastic_compat else (as_written, elastic)
            excluded = (e_holds & e_dropped) if self.elastic_compat else (w_holds & w_dropped)
            marks += [
                chosen.alias(HIT_COLUMN.format(i)),
                excluded.alias(EXCLUDED_COLUMN.format(i)),
                other.alias(compat.OTHER_COLUMN.format(i)),
            ]
        names = [m.meta.output_name() for m in marks]
        return (
            events.filter(compat.shared_prefilter([r.query for r in self.rules], schema))
            # A filter, as in a scan of the query alone (polars reads the other columns only
            # for the rows it leaves); the marks are then computed on these rows only.
            .filter(pl.any_horizontal(candidates))
            .with_columns(written)
            .with_columns(compat.indexed_values(f, schema) for f in masked)
            .with_columns(marks)
            .filter(pl.any_horizontal(names))
            .select(*projection, *names, *kept, *self._explained(schema, tagged=True))
        )

    def _explained(self, schema: dict[str, pl.DataType], tagged: bool = False) -> list[pl.Expr]:
        """With `explain`, why each rule held, computed where the query's filter has left only
        the rows that may alert. `tagged`: a query marking rows per rule (`HIT_COLUMN`), where
        each rule is explained on the rows it holds on."""
        if not self.explain:
            return []
        exceptions = [
            sum(1 for x in self.exceptions if x.rule_id in (None, r.rule_id)) for r in self.rules
        ]
        # With Elasticsearch's verdicts written out, explained on the values it indexes.
        columns = [
            compat.CompatRule(r.query, x, schema).columns if self.elastic_compat else None
            for r, x in zip(self.rules, self._exclusions, strict=True)
        ]
        if not tagged:
            return [explanation(self.rule.query, schema, exceptions[0])]
        return [
            pl.when(pl.col(HIT_COLUMN.format(i)))
            .then(explanation(r.query, schema, exceptions[i], columns[i]))
            .alias(EXPLAIN_COLUMN.format(i))
            for i, r in enumerate(self.rules)
        ]

    def _time_window(self, schema: dict[str, pl.DataType]) -> pl.Expr:
        if TIMESTAMP not in schema:
            return pl.lit(False)  # a range query never matches an event without a time
        ts = pl.col(TIMESTAMP)
        conds = []
        if self.since is not None:
            conds.append(ts >= self.since)
        if self.until is not None:
            conds.append(ts < self.until)
        return pl.all_horizontal(conds).fill_null(False)

    def scan_part(self, path: str, part: Part) -> PartResult:
        """Scans one part of a Parquet input; raises ScanError naming the file and the rows."""
        # The slice is pushed into the reader, which then reads only these row groups and still
        # skips those whose statistics exclude event code 10.
        raw = pl.scan_parquet(path).slice(part.offset, part.rows)
        try:
            alerts, event10, _, _ = self._queries(raw, pl.lit(path))
            hits = alerts.collect(engine=ENGINE)
            found, excluded = self._tag(hits), int(self._excluded(hits)["n"].sum())
            modes = self._counted_modes(hits)
            # A second query rather than `collect_all`, whose common-subplan elimination would
            # cache the shared scan (the part in memory); it reads one column.
            count = int(event10.collect(engine=ENGINE).item())
        except (KeyboardInterrupt, SystemExit, MemoryError):
            raise
        except BaseException as exc:
            # Whatever one part does (a polars error, a decoding failure, even a panic in native
            # code, which surfaces as a BaseException), the other parts and inputs are scanned.
            where = f"rows {part.offset}..{part.offset + part.rows}"
            raise ScanError([InputError(path, f"{type(exc).__name__}: {exc}", where)]) from exc
        return PartResult(count, _alerts_table(found), excluded=excluded, modes=modes)

    def scan_files(self, paths: Sequence[str]) -> list[PartResult]:
        """Scans whole Parquet files of one schema with one query, a result per file: on the
        many small files of a converted EVTX collection, a query per file costs more than its
        rows (measured: 6.8 ms a file for 2,000 rows). Raises ScanError naming the files."""
        raw = pl.scan_parquet(list(paths), include_file_paths=FILE_COLUMN)
        try:
            alerts, event10, _, _ = self._queries(raw, pl.col(FILE_COLUMN), by_file=True)
            hits = alerts.collect(engine=ENGINE)
            found = self._tag(hits)
            dropped = dict(
                self._excluded(hits).group_by(FILE_COLUMN).agg(pl.col("n").sum()).iter_rows()
            )
            modes = {
                path: (other, both)
                for path, other, both in self._modes(hits)
                .group_by(FILE_COLUMN)
                .agg(pl.col("other").sum(), pl.col("both").sum())
                .iter_rows()
            }
            counts = dict(event10.collect(engine=ENGINE).iter_rows())
        except (KeyboardInterrupt, SystemExit, MemoryError):
            raise
        except BaseException as exc:
            message = f"{type(exc).__name__}: {exc}"
            raise ScanError([InputError(p, message, "read with others") for p in paths]) from exc
        by_file = found.partition_by(FILE_COLUMN, as_dict=True, include_key=False)
        results = []
        for path in paths:
            mine = by_file.get((path,))
            results.append(
                PartResult(
                    int(counts.get(path) or 0),
                    None if mine is None else _alerts_table(mine),
                    excluded=int(dropped.get(path) or 0),
                    modes=modes.get(path, (0, 0)),
                )
            )
        return results

    def scan_evtx(self, path: str) -> PartResult:
        """Scans an EVTX file batch by batch as the decoder streams it (one pass: the event-10
        count and the alerts come from the same batches); raises ScanError naming the file when
        it cannot be read at all. Damaged records are skipped and reported, not raised."""
        try:
            with local_evtx(path) as local:
                stream = open_evtx(local, name=path)
                event10, found, excluded, other, both = 0, [], 0, 0, 0
                for frame in stream.frames():
                    alerts, count, _, _ = self._queries(frame.lazy(), pl.lit(path))
                    event10 += int(count.collect().item())
                    hits = alerts.collect()
                    batch = self._tag(hits)
                    excluded += int(self._excluded(hits)["n"].sum())
                    counted = self._counted_modes(hits)
                    other, both = other + counted[0], both + counted[1]
                    if batch.height:
                        found.append(_alerts_table(batch))
        except (KeyboardInterrupt, SystemExit, MemoryError):
            raise
        except BaseException as exc:
            message = str(exc).removeprefix(f"{path}: ")
            raise ScanError([InputError(path, f"{type(exc).__name__}: {message}")]) from exc
        alerts = pa.concat_tables(found) if found else None
        return PartResult(
            event10,
            alerts,
            stream.records,
            tuple(stream.skipped()),
            excluded=excluded,
            modes=(other, both),
        )

    def scan_ndjson(
        self, path: str, shape: str | None = None, prefilter: bool = True
    ) -> PartResult:
        """Scans an NDJSON input block by block through the same plan as an EVTX batch; lines
        that the byte-level prefilter proves cannot alert are never parsed. Bad lines are
        skipped and reported with their file and line; ScanError when the file cannot be
        opened at all."""
        # Sound only when every rule needs a Sysmon event 10 with a CallTrace; the CallTrace
        # prefixes only for the query as written (Elasticsearch's differs on long values).
        may_skip = prefilter and all(_prefilter_applies(r) for r in self.rules)
        exclude = () if self.compare_modes else excluded_prefixes(r.query for r in self.rules)
        stream = NdjsonStream(
            path,
            shape=shape or self.ndjson_shape,
            needles=ALERT_NEEDLES if may_skip else None,
            exclude=exclude if may_skip else (),
            fields=tuple(dict.fromkeys(f for r in self.rules for f in r.fields)),
            # What decides the rules is read from every line; an alert's other fields only
            # from the lines that alert. The file's own provenance is added by the reader.
            project=self._deciding_fields,
            later=tuple(
                f
                for f in self._fields
                if f not in self._deciding_fields and f not in ("log.file.path", "log.file.line")
            ),
        )
        try:
            event10, found, excluded, other, both = 0, [], 0, 0, 0

            def scan_block(
                item: tuple[LineBlock, Callable[[], pl.DataFrame | None]],
            ) -> tuple[int, pa.Table | None, int, tuple[int, int]]:
                block, job = item
                frame = job()
                if frame is None:
                    return 0, None, 0, (0, 0)
                alerts, count, _, _ = self._queries(frame.lazy(), pl.lit(path))
                hits = alerts.collect()
                if hits.height:
                    # The alerting lines read again with every field an alert shows, and
                    # the same query run on them: the same verdicts, the whole alerts.
                    whole = stream.complete(block, hits["log.file.line"].unique().to_list())
                    if whole is not None:
                        hits = self._queries(whole.lazy(), pl.lit(path))[0].collect()
                # As for EVTX batches: one alert row per (event, rule), exceptions applied.
                batch = self._tag(hits)
                dropped = int(self._excluded(hits)["n"].sum())
                table = _alerts_table(batch)
                return int(count.collect().item()), table, dropped, self._counted_modes(hits)

            # Blocks parsed on every core (polars' reader and the plan release the GIL), a few
            # in flight at a time so memory holds a few blocks.
            jobs = stream.frame_jobs()
            for count, table, dropped, modes in bounded_map(scan_block, jobs, self.ndjson_threads):
                event10 += count
                excluded += dropped
                other, both = other + modes[0], both + modes[1]
                if table is not None:
                    found.append(table)
        except (KeyboardInterrupt, SystemExit, MemoryError):
            raise
        except OSError as exc:
            raise ScanError([InputError(path, f"{type(exc).__name__}: {exc}")]) from exc
        alerts = pa.concat_tables(found) if found else None
        shapes = {
            shape: (events, dict(stream.field_counts.get(shape, {})))
            for shape, events in stream.shapes.items()
        }
        return PartResult(
            event10,
            alerts,
            stream.lines,
            tuple(stream.skipped),
            shapes=shapes,
            excluded=excluded,
            modes=(other, both),
            unparsed=(stream.lines - stream.parsed, stream.excluded),
        )

    def run(
        self,
        paths: Iterable[str | Path],
        on_alerts: Callable[[pl.DataFrame], None] | None = None,
        on_part: Callable[[Part], None] | None = None,
        on_input: Callable[[InputReport], None] | None = None,
        on_start: Callable[[Sequence[InputFile]], None] | None = None,
        engine: Engine | None = None,
    ) -> ScanSummary:
        """Scans every input; a bad one (or a bad part of one) is reported and the rest is still
        scanned. Parts run as tasks on `engine` (by default threads of this process, one per
        core); results are delivered in input order."""
        from callsweep.engines import LocalEngine
        from callsweep.tasks import ScanSettings, TaskItem, pack, scan_partition

        started = time.perf_counter()
        found = discover(paths)
        summary = ScanSummary(
            rule=self.rule,
            rules=list(self.rules),
            errors=list(found.errors),
            passed_over=found.passed_over,
            elastic_compat=self.elastic_compat,
            compared=self.compare_modes,
        )
        if on_start is not None:
            on_start(found.files)
        engine = engine or LocalEngine(self.workers)
        settings = ScanSettings(
            self.rule.text,
            self.rule.source,
            self.since,
            self.until,
            more_rules=tuple((r.text, r.source) for r in self.rules[1:]),
            exceptions=self.exceptions,
            ndjson_shape=self.ndjson_shape,
            explain=self.explain,
            elastic_compat=self.elastic_compat,
            compare_modes=self.compare_modes,
        )
        # What each task item stands for, in item order: (report, part, last part of its
        # input); inputs that cannot even be planned have no item (part None) and are
        # reported in their place in the input order.
        entries: deque[tuple[InputReport, Part | None, bool]] = deque()

        def items() -> Iterator[tuple[TaskItem, int]]:
            for source in found.files:
                report = InputReport(source.location, source.format, source.size)
                try:
                    plan = self.plan(source)
                except ScanError as exc:
                    report.error = str(exc)
                    summary.errors.extend(exc.errors)
                    entries.append((report, None, True))
                    continue
                report.shape, report.rows, report.missing = plan.shape, plan.rows, plan.missing
                whole = len(plan.parts) == 1 and plan.parts[0].read and source.format == "parquet"
                key = plan.schema_key if whole else ""
                for i, part in enumerate(plan.parts):
                    entries.append((report, part, i == len(plan.parts) - 1))
                    # An EVTX file's rows are known once decoded: about one per 500 bytes.
                    rows = part.rows if source.format == "parquet" else part.bytes // 500
                    item = TaskItem(source.location, source.format, part, key)
                    yield item, rows if part.read else 0

        def finish(report: InputReport, last: bool) -> None:
            if last:
                summary.inputs.append(report)
                if on_input is not None:
                    on_input(report)

        def settle_unplanned() -> None:
            while entries and entries[0][1] is None:
                report, _, last = entries.popleft()
                finish(report, last)

        try:
            scan_task = functools.partial(scan_partition, settings=settings)
            for _, results in engine.map(scan_task, pack(items(), self.TASK_ROWS)):
                # A task's alerts are handed on together: one conversion to polars per task,
                # not per file (a conversion costs about a millisecond, a small file less).
                tables = []
                for result in results:
                    settle_unplanned()
                    report, part, last = entries.popleft()
                    self._apply(result, report, summary)
                    if result.alerts is not None and not result.errors:
                        tables.append(result.alerts)
                    if part is not None and on_part is not None:
                        on_part(part)
                    finish(report, last)
                if tables:
                    alerts = pl.from_arrow(pa.concat_tables(tables))
                    assert isinstance(alerts, pl.DataFrame)
                    summary.count(alerts)
                    if on_alerts is not None:
                        on_alerts(alerts)
            settle_unplanned()
        finally:
            engine.close()
        summary.seconds = time.perf_counter() - started
        return summary

    def _apply(self, result: PartResult, report: InputReport, summary: ScanSummary) -> None:
        """Adds one task item's counts to its input's report and the summary."""
        if result.errors:
            # The other parts of this input are still read: what can be read is kept.
            report.error = report.error or str(ScanError(result.errors))
            summary.errors.extend(result.errors)
            return
        if result.rows is not None:
            report.rows += result.rows
        report.skipped += len(result.skipped)
        summary.skipped.extend(result.skipped)
        report.event10_rows += result.event10_rows
        report.unparsed += result.unparsed[0]
        report.unparsed_excluded += result.unparsed[1]
        report.excluded += result.excluded
        report.other_mode += result.modes[0]
        report.both_modes += result.modes[1]
        for shape, (events, counts) in (result.shapes or {}).items():
            report.shape = shape if report.shape in ("ndjson", shape) else "ndjson (mixed)"
            summary.shape_events[shape] += events
            summary.shape_fields.setdefault(shape, Counter()).update(counts)
        if result.alerts is not None:
            report.alerts += result.alerts.num_rows


def bounded_map(function, jobs: Iterable, threads: int) -> Iterator:
    """`map(function, jobs)` on `threads` threads, results in order, at most `2 * threads`
    jobs drawn ahead (the job iterator itself runs on the caller's thread)."""
    from concurrent.futures import ThreadPoolExecutor

    if threads <= 1:
        yield from map(function, jobs)
        return
    with ThreadPoolExecutor(threads) as pool:
        pending: deque = deque()
        for job in jobs:
            pending.append(pool.submit(function, job))
            if len(pending) >= 2 * threads:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _alerts_table(alerts: pl.DataFrame) -> pa.Table | None:
    """The alerts (`Scanner._tag`, owning their bytes) as Arrow."""
    if not alerts.height:
        return None
    return alerts.to_arrow(compat_level=pl.CompatLevel.newest())


def _owning(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` with its string views owning their bytes: polars' filtered string views still
    point into the buffers the reader decoded the whole part into, and keeping them would keep
    every part's CallTraces alive (measured: 1.4 GB held for 10 MB of alerts from 5M rows).
    The views are copied natively into buffers of their own, once; they stay views, which
    polars takes back without converting (plain Arrow strings cost a copy each way: 0.2 s per
    300k alerts)."""
    # The CallTraces and their first frames copied in the query (`_with_owned_call_trace`).
    trace_owned = OWNED_COLUMN in frame.columns
    if trace_owned:
        frame = frame.drop(OWNED_COLUMN)
    if not frame.height:
        return frame
    # One chunk per column (the streaming engine hands over several), which polars gathers
    # from (`Scanner._tag`) about ten times faster; it copies views, not their bytes.
    table = frame.rechunk().to_arrow(compat_level=pl.CompatLevel.newest())
    for i, column in enumerate(table.schema):
        if _holds_views(column.type) and not (
            trace_owned and column.name in (alert_schema.CALL_TRACE, alert_schema.FIRST_FRAME)
        ):
            chunks = [pa.array(_native.compact_views(c)) for c in table.column(i).chunks]
            table = table.set_column(i, column, pa.chunked_array(chunks, column.type))
    owned = pl.from_arrow(table)
    assert isinstance(owned, pl.DataFrame)
    return owned


def _with_first_frame(projection: list[pl.Expr], first_frame: pl.Expr) -> list[pl.Expr]:
    """The alert projection with `first_frame` as the first frame's expression."""
    return [
        first_frame.alias(alert_schema.FIRST_FRAME)
        if p.meta.output_name() == alert_schema.FIRST_FRAME
        else p
        for p in projection
    ]


def _with_owned_call_trace(
    rows: pl.LazyFrame, schema: dict[str, pl.DataType]
) -> tuple[pl.LazyFrame, bool]:
    """The rows a filter kept, with their CallTraces copied into buffers of their own and their
    first frames cut in the same pass, batch by batch (`alerts.owned_with_first_frame`), before
    the rules' verdicts read them again: scattered over the part's buffers, each was a cache
    miss for `each` (measured: 72-80 ms of CPU on the 306k rows ten rules keep of 2M; 40-58 ms
    once copied), and `_owning` would copy them anyway. `OWNED_COLUMN` tells `_owning` and
    `Scanner._tag` they are. Returns the frame and whether it was done (a CallTrace of
    strings)."""
    if schema.get(alert_schema.CALL_TRACE) != pl.String:
        return rows, False
    pair = "callsweep.scan.owned_pair"
    fields = [alert_schema.CALL_TRACE, alert_schema.FIRST_FRAME]
    owned = rows.with_columns(
        alert_schema.owned_with_first_frame(pl.col(alert_schema.CALL_TRACE)).alias(pair),
        pl.lit(True).alias(OWNED_COLUMN),
    ).with_columns(pl.col(pair).struct.field(f).alias(f) for f in fields)
    return owned.drop(pair), True


def _first_frames(events: pl.DataFrame) -> pl.Series:
    """The first frames of the events' CallTraces (owned: `_owning`), copied into a buffer of
    their own: views into the CallTraces' would make polars copy them at every gather."""
    trace = events.get_column(alert_schema.CALL_TRACE)
    if trace.dtype == pl.Null or not trace.len():
        return pl.Series(alert_schema.FIRST_FRAME, [None] * trace.len(), dtype=pl.String)
    frames = _native.compact_views(pa.array(_native.first_frames(trace.rechunk())))
    return pl.Series(alert_schema.FIRST_FRAME, pa.array(frames))


def _holds_views(dtype: pa.DataType) -> bool:
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype):
        return _holds_views(dtype.value_type)
    return pa.types.is_string_view(dtype)


def _parts(
    metadata: pq.FileMetaData,
    file_bytes: int,
    part_rows: int,
    skippable: list[bool] | None = None,
    known_event10: list[int] | None = None,
) -> tuple[Part, ...]:
    """Consecutive row groups gathered into parts of at least `part_rows` rows (the last may be
    smaller); bytes are the row groups' compressed sizes, so progress follows the file. Runs of
    `skippable` row groups form parts of their own that are not read; `known_event10` (per
    row group) are the event-10 rows of those skipped for their rules, else none."""
    parts: list[Part] = []
    offset = rows = size = event10 = 0
    for i in range(metadata.num_row_groups):
        group = metadata.row_group(i)
        skip = skippable is not None and skippable[i]
        rows += group.num_rows
        size += sum(group.column(c).total_compressed_size for c in range(group.num_columns))
        if skip and known_event10 is not None:
            event10 += known_event10[i]
        last = i == metadata.num_row_groups - 1
        changes = not last and skippable is not None and skippable[i + 1] != skip
        if rows >= part_rows or last or changes:
            parts.append(Part(offset, rows, size, read=not skip, event10_rows=event10))
            offset, rows, size, event10 = offset + rows, 0, 0, 0
    if not parts:  # a file without row groups still gets its (empty) part
        parts.append(Part(0, 0, file_bytes))
    return tuple(parts)


def _prefilter_applies(rule: Rule) -> bool:
    """The byte-level prefilter holds for rules that need Sysmon event 10 with a CallTrace."""
    return _requires_event10(rule.query) and "winlog.event_data.CallTrace" in rule.required_fields


def _requires_event10(query: EventQuery) -> bool:
    """Whether every event the query matches has `event.code` "10" (a top-level conjunct)."""
    cond = query.condition
    conjuncts = cond.operands if isinstance(cond, And) else (cond,)
    return any(
        c == Compare("event.code", "==", "10") or c == InSet("event.code", ("10",))
        for c in conjuncts
    )


def _event10_skippable(metadata: pq.FileMetaData) -> list[bool] | None:
    """Per row group: whether its `event.code` statistics exclude "10" (min/max of text
    compare as Python strings do: by code point, which is UTF-8 byte order). polars skips such
    row groups too, but only after a query per part has been planned and run; on a file in
    callsweep's layout most parts are then never started."""
    names = metadata.schema.names
    if "event.code" not in names:
        return None
    column = names.index("event.code")
    if metadata.schema.column(column).logical_type.type != "STRING":
        return None
    skippable = []
    for i in range(metadata.num_row_groups):
        group = metadata.row_group(i)
        stats = group.column(column).statistics
        if stats is None or not stats.has_null_count:
            skippable.append(False)
        elif stats.null_count == group.num_rows:
            skippable.append(True)  # no code at all
        elif not stats.has_min_max:
            skippable.append(False)
        else:
            skippable.append(not stats.min <= "10" <= stats.max)
    return skippable


def _schema_key(metadata: pq.FileMetaData) -> str:
    """The same for files of the same Parquet schema. (The schema's text begins with its
    Python object's address: that line is left out, or no two files would share a key.)"""
    text = str(metadata.schema)
    if text.startswith("<"):
        text = text.split("\n", 1)[-1]
    return hashlib.sha1(text.encode()).hexdigest()


def _never_alerting(
    metadata: pq.FileMetaData, queries: list[EventQuery], columns: list[int], skippable: list[bool]
) -> list[int]:
    """Marks in `skippable` the row groups of event 10 only (statistics: `event.code` is "10"
    on every row) on which the statistics prove every query false (`rules.statistics`); returns
    per row group the event-10 rows so known (the rows of those marked, else 0)."""
    known = [0] * metadata.num_row_groups
    for i in range(metadata.num_row_groups):
        if skippable[i]:
            continue
        stats = row_group_stats(metadata, i, columns)
        code = stats.get("event.code")
        only_10 = code is not None and code.nulls == 0 and code.low == code.high == "10"
        if only_10 and all(never_matches(q, stats) for q in queries):
            skippable[i] = True
            known[i] = metadata.row_group(i).num_rows
    return known


def _as_utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def scan(
    paths: str | Path | Iterable[str | Path],
    rule: Rule | Sequence[Rule] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    exceptions: Sequence[ExceptionItem] = (),
    explain: bool = False,
    elastic_compat: bool = False,
) -> pl.DataFrame:
    """Scans `paths` (files, directories, globs) and returns the alerts; `explain`: each alert
    says which clauses of its rule held, in `callsweep.explain` (a list of strings);
    `elastic_compat`: the alerts Elasticsearch would raise, where keyword fields ignore values
    over 1,024 characters (`rules.compat`), instead of those of the query as written.

    Raises ScanError when any input cannot be read; use `Scanner.run` to scan what can be
    read and get the failures reported instead.
    """
    frames = []
    scanner = Scanner(
        rule, since, until, exceptions=exceptions, explain=explain, elastic_compat=elastic_compat
    )
    summary = scanner.run(_as_list(paths), on_alerts=frames.append)
    if summary.errors:
        raise ScanError(summary.errors)
    if frames:
        return pl.concat(frames)
    empty = alert_schema.empty_alerts()
    return empty.with_columns(pl.lit([], pl.List(pl.String)).alias(EXPLAIN)) if explain else empty


def scan_lazy(
    paths: str | Path | Iterable[str | Path],
    rule: Rule | Sequence[Rule] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    explain: bool = False,
    elastic_compat: bool = False,
) -> pl.LazyFrame:
    """The alerts of every Parquet input as one lazy frame, for more polars work before
    collecting (`explain`, `elastic_compat` as for `scan`). EVTX is decoded as a stream, not
    planned lazily: convert it, or use `scan`."""
    scanner = Scanner(rule, since, until, explain=explain, elastic_compat=elastic_compat)
    found = discover(_as_list(paths))
    streamed = [
        InputError(f.location, "EVTX cannot be scanned lazily; convert it or use scan()")
        for f in found.files
        if f.format == "evtx"
    ]
    if found.errors or streamed:
        raise ScanError([*found.errors, *streamed])
    plans = [scanner.alerts_query(f.location) for f in found.files]
    if not plans:
        return alert_schema.empty_alerts().lazy()
    return pl.concat(plans, how="vertical")


def _as_list(paths: str | Path | Iterable[str | Path]) -> list[str | Path]:
    if isinstance(paths, (str, Path)):
        return [paths]
    return list(paths)
