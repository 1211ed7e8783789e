"""The alert record: its schema, how it is built from an event, and where it is written.

Columns carry flat ECS dotted names; the rule's metadata is written as Elastic writes it on
alerts (`kibana.alert.rule.*`, `threat.*`). `.ndjson` output nests the dotted names into ECS
documents that can be bulk-loaded into Elasticsearch.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import IO

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from callsweep import _native
from callsweep.ecs import TIMESTAMP
from callsweep.rules.model import Rule

FIRST_FRAME = "callsweep.call_trace.first_frame"
CALL_TRACE = "winlog.event_data.CallTrace"

# Event fields an alert carries, with the type they are written as.
EVENT_FIELDS: dict[str, pl.DataType] = {
    TIMESTAMP: pl.Datetime("us", "UTC"),
    "host.name": pl.String(),
    "event.code": pl.String(),
    "process.executable": pl.String(),
    "process.pid": pl.Int64(),
    "process.entity_id": pl.String(),
    "winlog.event_data.TargetImage": pl.String(),
    "winlog.event_data.TargetProcessId": pl.String(),
    "winlog.event_data.GrantedAccess": pl.String(),
    CALL_TRACE: pl.String(),
    "winlog.record_id": pl.Int64(),
    "log.file.path": pl.String(),
    "log.file.line": pl.Int64(),
}

RULE_FIELDS: dict[str, pl.DataType] = {
    "kibana.alert.rule.rule_id": pl.String(),
    "kibana.alert.rule.name": pl.String(),
    "kibana.alert.rule.version": pl.String(),
    "kibana.alert.severity": pl.String(),
    "kibana.alert.risk_score": pl.Int64(),
    "threat.tactic.id": pl.List(pl.String()),
    "threat.tactic.name": pl.List(pl.String()),
    "threat.technique.id": pl.List(pl.String()),
    "threat.technique.name": pl.List(pl.String()),
}

ALERT_SCHEMA: dict[str, pl.DataType] = {
    **EVENT_FIELDS,
    FIRST_FRAME: pl.String(),
    **RULE_FIELDS,
}


def empty_alerts() -> pl.DataFrame:
    return pl.DataFrame(schema=ALERT_SCHEMA)


def alert_projection(available: Mapping[str, pl.DataType], origin: pl.Expr) -> list[pl.Expr]:
    """Expressions turning a normalized event frame into the event part of an alert.

    `log.file.path` is the file the event was first read from when the data says so (Parquet
    converted by callsweep keeps the EVTX path), else `origin`, the input itself.
    """
    exprs = []
    for name, dtype in EVENT_FIELDS.items():
        expr = _as_scalar(name, available.get(name), dtype)
        if name == "log.file.path":
            expr = pl.coalesce(expr, origin)
        exprs.append(expr.alias(name))
    call_trace = _as_scalar(CALL_TRACE, available.get(CALL_TRACE), pl.String())
    exprs.append(first_frame(call_trace).alias(FIRST_FRAME))
    return exprs


def owned_with_first_frame(call_trace: pl.Expr) -> pl.Expr:
    """The CallTraces copied into buffers of their own, batch by batch as the query runs, so
    that they no longer keep alive the buffers the reader decoded the whole part into, with
    their first frames cut in the same pass while each value is in cache
    (`_native.compact_with_first_frames`): a struct of `CALL_TRACE` and `FIRST_FRAME`. Used on
    the rows a multi-rule filter kept (`scan._with_owned_call_trace`): read afterwards, the
    CallTraces are contiguous."""
    dtype = pl.Struct({CALL_TRACE: pl.String(), FIRST_FRAME: pl.String()})

    def copy(values: pl.Series) -> pl.Series:
        if not values.len():
            return pl.Series(values.name, [], dtype=dtype)
        traces, frames = _native.compact_with_first_frames(values.rechunk())
        # (A Series made from an Arrow array takes the array's field name: set it after.)
        pair = pl.DataFrame(
            [pl.Series(traces).alias(CALL_TRACE), pl.Series(frames).alias(FIRST_FRAME)]
        )
        return pair.to_struct(values.name)

    return call_trace.map_batches(copy, return_dtype=dtype, is_elementwise=True)


def first_frame(call_trace: pl.Expr) -> pl.Expr:
    """The CallTrace up to its first `|` (the whole of it without one), cut by the native
    kernel without copying (a regular expression cost 0.1 s per 300k alerts)."""

    def cut(column: pl.Series) -> pl.Series:
        if column.dtype == pl.Null:
            return pl.Series(column.name, [None] * column.len(), dtype=pl.String)
        return pl.Series(column.name, _native.first_frames(column.rechunk()))

    return call_trace.map_batches(cut, return_dtype=pl.String, is_elementwise=True)


def _as_scalar(name: str, source: pl.DataType | None, dtype: pl.DataType) -> pl.Expr:
    """Column `name` as one value of `dtype` per alert.

    A multi-valued (list) field becomes its values joined by ", " for text, its first value for
    numbers. For a CallTrace list that alerted, no element starts in ntdll, so the first
    element's first frame stands for all of them.
    """
    if source is None or source == pl.Null:
        return pl.lit(None, dtype=dtype)
    expr = pl.col(name)
    if isinstance(source, pl.List):
        if name == CALL_TRACE or dtype != pl.String:
            expr = expr.list.first()
        else:
            expr = expr.list.eval(pl.element().cast(pl.String)).list.join(", ")
        source = source.inner
    if source != dtype:
        expr = expr.cast(dtype, strict=False)
    return expr


def rule_columns(rule: Rule) -> list[pl.Expr]:
    """Constant columns describing the rule, in Elastic's alert field names."""
    tactics = [t for t in rule.threat]
    techniques = [tech for t in rule.threat for tech in t.techniques]
    values = {
        "kibana.alert.rule.rule_id": rule.rule_id,
        "kibana.alert.rule.name": rule.name,
        "kibana.alert.rule.version": str(rule.version),
        "kibana.alert.severity": rule.severity,
        "kibana.alert.risk_score": rule.risk_score,
        "threat.tactic.id": [t.tactic_id for t in tactics],
        "threat.tactic.name": [t.tactic_name for t in tactics],
        "threat.technique.id": [t.id for t in techniques],
        "threat.technique.name": [t.name for t in techniques],
    }
    return [
        pl.lit(pl.Series(name, [values[name]], dtype=dtype)).first().alias(name)
        if isinstance(dtype, pl.List)
        else pl.lit(values[name], dtype=dtype).alias(name)
        for name, dtype in RULE_FIELDS.items()
    ]


def nest(record: Mapping[str, object]) -> dict[str, object]:
    """`{"a.b": 1, "a.c": 2}` -> `{"a": {"b": 1, "c": 2}}`, dropping nulls as ECS documents do."""
    doc: dict[str, object] = {}
    for key, value in record.items():
        if value is None:
            continue
        *parents, leaf = key.split(".")
        node = doc
        for part in parents:
            node = node.setdefault(part, {})  # type: ignore[assignment]
        node[leaf] = value
    return doc


class AlertWriter:
    """Writes alert batches to `.parquet`, `.csv` or `.ndjson` as they come, then renames the
    finished file into place, so a reader never sees half a file."""

    FORMATS = (".parquet", ".csv", ".ndjson", ".jsonl")

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.format = self.path.suffix.lower()
        if self.format not in self.FORMATS:
            raise ValueError(
                f"{self.path}: unknown alert output format {self.format or '(none)'}; "
                f"use one of {', '.join(self.FORMATS)}"
            )
        self.rows = 0
        self._tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._parquet: pq.ParquetWriter | None = None
        self._text: IO[str] | None = None
        if self.format != ".parquet":
            self._text = open(self._tmp, "w", encoding="utf-8", newline="")  # noqa: SIM115

    def write(self, alerts: pl.DataFrame) -> None:
        if self.format == ".parquet":
            table = alerts.to_arrow()
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self._tmp, table.schema, compression="zstd")
            self._parquet.write_table(table)
        elif self.format == ".csv":
            assert self._text is not None
            flat = alerts.with_columns(
                pl.col(n).list.join("; ")
                for n, t in alerts.schema.items()
                if isinstance(t, pl.List)
            )
            flat.write_csv(self._text, include_header=self.rows == 0 and alerts.height > 0)
        else:
            assert self._text is not None
            for record in _json_ready(alerts).iter_rows(named=True):
                self._text.write(json.dumps(nest(record), ensure_ascii=False) + "\n")
        self.rows += alerts.height

    def close(self) -> None:
        if self.format == ".parquet":
            if self._parquet is None:  # no alert at all: still write a valid, empty file
                self._parquet = pq.ParquetWriter(
                    self._tmp, empty_alerts().to_arrow().schema, compression="zstd"
                )
            self._parquet.close()
        else:
            assert self._text is not None
            if self.format == ".csv" and self.rows == 0:
                self._text.write(",".join(ALERT_SCHEMA) + "\n")
            self._text.close()
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
        if self._text is not None:
            self._text.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> AlertWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _json_ready(alerts: pl.DataFrame) -> pl.DataFrame:
    """Timestamps as ISO-8601 with a Z, as Elasticsearch's `date` type reads them."""
    return alerts.with_columns(
        pl.col(n).dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        for n, t in alerts.schema.items()
        if isinstance(t, pl.Datetime)
    )


def as_arrow_schema() -> pa.Schema:
    return empty_alerts().to_arrow().schema
