"""Field names, and raw Sysmon -> ECS normalization as Elastic's Sysmon ingest pipeline does it.

An input arrives in one of three shapes, told apart by its columns:

- `ecs-flat`: columns named by dotted ECS names (`winlog.event_data.CallTrace`);
- `ecs-nested`: ECS documents kept as structs (a `winlog` struct holding `event_data`);
- `sysmon-raw`: Sysmon's own names (`EventID`, `SourceImage`, `CallTrace`, `Computer`, `UtcTime`),
  as EVTX EventData or NXLog-style flat exports hold them.

`normalize` returns a frame whose columns are the dotted ECS names of the wanted fields that the
input has (or from which they derive), so the rule compiler sees one data model.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import polars as pl

SYSMON_CHANNEL = "Microsoft-Windows-Sysmon/Operational"
SYSMON_PROVIDER = "Microsoft-Windows-Sysmon"
PROCESS_ACCESS_EVENT_ID = 10

TIMESTAMP = "@timestamp"

# Sysmon EventData names the ingest pipeline leaves under `winlog.event_data.*`.
EVENT_DATA_FIELDS = (
    "TargetImage",
    "TargetProcessGUID",
    "TargetProcessId",
    "GrantedAccess",
    "CallTrace",
    "SourceUser",
    "TargetUser",
    "RuleName",
)

# ECS field -> Sysmon / Windows names it comes from (first present wins). These are renames the
# pipeline makes (`SourceImage` -> `process.executable`) or System fields winlogbeat maps.
RAW_SOURCES: dict[str, tuple[str, ...]] = {
    "process.executable": ("SourceImage",),
    "process.entity_id": ("SourceProcessGUID", "SourceProcessGuid"),
    "process.pid": ("SourceProcessId",),
    "process.thread.id": ("SourceThreadId",),
    "host.name": ("Computer", "Hostname", "ComputerName"),
    "winlog.computer_name": ("Computer", "Hostname", "ComputerName"),
    "winlog.record_id": ("EventRecordID", "EventRecordId", "RecordNumber"),
    "winlog.channel": ("Channel",),
    "winlog.provider_name": ("ProviderName", "Provider_Name", "SourceName"),
    **{f"winlog.event_data.{name}": (name,) for name in EVENT_DATA_FIELDS},
}
RAW_EVENT_ID = ("EventID", "EventId", "event_id")
RAW_TIME = ("UtcTime",)

# Fields the pipeline drops when their value is empty or "-" (so an empty CallTrace is missing).
EMPTY_MEANS_MISSING = ("", "-")


@dataclass(frozen=True)
class Normalized:
    frame: pl.LazyFrame
    shape: str
    # ECS field -> the input column (or path) it was read from, for messages.
    sources: dict[str, str]


def detect_shape(schema: Mapping[str, pl.DataType]) -> str:
    names = set(schema)
    if any(n in names for n in RAW_EVENT_ID) or "CallTrace" in names or "SourceImage" in names:
        return "sysmon-raw"
    if any(isinstance(schema[n], pl.Struct) for n in ("winlog", "event", "process") if n in names):
        return "ecs-nested"
    return "ecs-flat"


def resolve(schema: Mapping[str, pl.DataType], field: str) -> tuple[pl.Expr, pl.DataType] | None:
    """The expression reading ECS `field` as it is stored: a dotted column, or a path through
    struct columns (`winlog` -> `event_data` -> `CallTrace`), or a mix of both."""
    if field in schema:
        return pl.col(field), schema[field]
    parts = field.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        head = ".".join(parts[:cut])
        if head not in schema:
            continue
        expr, dtype = pl.col(head), schema[head]
        for part in parts[cut:]:
            if not isinstance(dtype, pl.Struct):
                break
            inner = {f.name: f.dtype for f in dtype.fields}
            if part not in inner:
                break
            expr, dtype = expr.struct.field(part), inner[part]
        else:
            return expr, dtype
    return None


def normalize(lf: pl.LazyFrame, fields: Iterable[str]) -> Normalized:
    """Projects `lf` onto the wanted ECS `fields` that it has or from which they derive."""
    schema = dict(lf.collect_schema())
    shape = detect_shape(schema)
    exprs: list[pl.Expr] = []
    sources: dict[str, str] = {}
    for field in dict.fromkeys(fields):
        found = _raw_field(schema, field) if shape == "sysmon-raw" else None
        if found is None:
            found = _ecs_field(schema, field)
        if found is None:
            continue
        expr, source = found
        exprs.append(expr.alias(field))
        sources[field] = source
    return Normalized(lf.select(exprs), shape, sources)


def _ecs_field(schema: Mapping[str, pl.DataType], field: str) -> tuple[pl.Expr, str] | None:
    resolved = resolve(schema, field)
    if resolved is None:
        return None
    expr, dtype = resolved
    if field == TIMESTAMP:
        expr = to_utc_datetime(expr, dtype)
    return expr, field


def _first_present(schema: Mapping[str, pl.DataType], names: Iterable[str]) -> str | None:
    return next((n for n in names if n in schema), None)


def _raw_field(schema: Mapping[str, pl.DataType], field: str) -> tuple[pl.Expr, str] | None:
    """`field` derived from Sysmon's own names, or None when the input does not have them."""
    event_id = _first_present(schema, RAW_EVENT_ID)
    if field == "event.code" and event_id:
        return pl.col(event_id).cast(pl.String), event_id
    if field == TIMESTAMP and (name := _first_present(schema, RAW_TIME)):
        return to_utc_datetime(pl.col(name), schema[name]), name
    if field == "host.os.type":
        # Added by the shipper from host metadata; every Sysmon host runs Windows.
        return pl.lit("windows"), "(Sysmon data: Windows host)"
    if field == "event.category" and event_id:
        is_process_access = (pl.col(event_id).cast(pl.Int64, strict=False) == 10) & _is_sysmon(
            schema
        )
        return pl.when(is_process_access).then(pl.lit("process")), f"{event_id} == 10, Sysmon"
    if field == "process.name" and "SourceImage" in schema:
        image = _drop_empty(pl.col("SourceImage"), schema["SourceImage"])
        return image.str.extract(r"([^\\/]*)$"), "SourceImage"
    name = _first_present(schema, RAW_SOURCES.get(field, ()))
    if name is None:
        return None
    return _drop_empty(pl.col(name), schema[name]), name


def _is_sysmon(schema: Mapping[str, pl.DataType]) -> pl.Expr:
    """Only Sysmon's events get the Sysmon mapping: event 10 of CAPI2 or Kernel-Audit is not a
    process access. Without a channel or provider column, the Sysmon-only field names decide."""
    if "Channel" in schema:
        return (pl.col("Channel") == SYSMON_CHANNEL).fill_null(False)
    provider = _first_present(schema, RAW_SOURCES["winlog.provider_name"])
    if provider:
        return (pl.col(provider) == SYSMON_PROVIDER).fill_null(False)
    return pl.lit(True)


def _drop_empty(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    if dtype == pl.String:
        return pl.when(expr.is_in(EMPTY_MEANS_MISSING)).then(None).otherwise(expr)
    return expr


def to_utc_datetime(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """A timestamp column as Datetime(us, UTC): ISO-8601 or Sysmon `UtcTime` text, naive
    datetimes taken as UTC, integers as epoch milliseconds (Elasticsearch's default)."""
    if isinstance(dtype, pl.Datetime):
        expr = expr.cast(pl.Datetime("us", dtype.time_zone))
        if dtype.time_zone is None:
            return expr.dt.replace_time_zone("UTC")
        return expr.dt.convert_time_zone("UTC")
    if dtype.is_integer():
        return pl.from_epoch(expr, time_unit="ms").dt.replace_time_zone("UTC")
    if dtype == pl.Date:
        return expr.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    text = expr.cast(pl.String)
    # ISO-8601 with a zone (`Z`, `+02:00`, `+0200`), then zone-less text taken as UTC, as
    # Sysmon's `UtcTime` ("2020-10-19 02:56:14.360") is.
    zoned = text.str.to_datetime(
        "%Y-%m-%dT%H:%M:%S%.f%#z", time_zone="UTC", time_unit="us", strict=False
    )
    naive = text.str.replace("T", " ", literal=True).str.to_datetime(
        "%Y-%m-%d %H:%M:%S%.f", time_zone="UTC", time_unit="us", strict=False
    )
    # Text of digits only: epoch milliseconds, as Elasticsearch's default date format reads it.
    epoch = pl.when(text.str.contains(r"^\d+$")).then(
        pl.from_epoch(text.cast(pl.Int64, strict=False), time_unit="ms").dt.replace_time_zone("UTC")
    )
    return pl.coalesce(zoned, naive, epoch)
