"""The shapes of exported JSON events, told apart per document, and their flattening into the
columns of a decoded EVTX file (`evtx_schema()`), so that a JSON line and an EVTX record of the
same event give the same row.

- `ecs`: winlogbeat / Elastic Agent documents (nested or dotted keys), read as they are: what
  ECS data says is kept (`host.os.type` is not invented when absent);
- `es-hit`: an Elasticsearch hit, whose `_source` is an ECS document;
- `sysmon-flat`: NXLog / Logstash / OTRF objects with Sysmon's names (`EventID`, `CallTrace`);
- `sentinel`: Azure Sentinel `WindowsEvent`, whose `EventData` is a JSON string;
- `evtx-dump`: the evtx crate's `evtx_dump` JSONL (`Event.System`, `Event.EventData`).

The three raw shapes are mapped as Elastic's Sysmon pipeline maps EVTX records (`SourceImage`
-> `process.executable`, `host.os.type` "windows", `event.category` "process" for event 10).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from typing import Any

import polars as pl
import pyarrow as pa

from callsweep.ecs import RAW_SOURCES, SYSMON_CHANNEL, SYSMON_PROVIDER
from callsweep.sources.evtx import evtx_schema

SHAPES = ("ecs", "es-hit", "sysmon-flat", "sentinel", "evtx-dump")
LINE = "log.file.line"
OTHER = "winlog.event_data_other"
EVENT_DATA = "winlog.event_data."
_EMPTY = ("", "-")


@cache
def ndjson_schema() -> pa.Schema:
    """The EVTX schema plus the line of each event in its file."""
    return evtx_schema().append(pa.field(LINE, pa.int64()))


def empty_ndjson_frame() -> pl.DataFrame:
    """No rows, the columns of a read NDJSON file: to plan a scan before reading."""
    return pl.DataFrame(pl.from_arrow(ndjson_schema().empty_table()))


@cache
def _columns() -> frozenset[str]:
    return frozenset(ndjson_schema().names)


def detect(doc: Mapping[str, Any]) -> str | None:
    """The shape of one parsed document, or None when it is none of them."""
    if "_source" in doc and isinstance(doc["_source"], dict):
        return "es-hit"
    event = doc.get("Event")
    if isinstance(event, dict) and "System" in event:
        return "evtx-dump"
    if isinstance(doc.get("EventData"), str) or doc.get("Type") == "WindowsEvent":
        return "sentinel"
    if "EventID" in doc or "EventId" in doc:
        return "sysmon-flat"
    if "winlog" in doc or "event" in doc or "winlog.channel" in doc or "event.code" in doc:
        return "ecs"
    return None


def flatten(doc: Mapping[str, Any], shape: str) -> dict[str, Any]:
    """`doc` (of `shape`) as a row of `ndjson_schema()` columns (absent ones left out).
    ValueError / TypeError when the document does not have the shape's types."""
    if shape == "es-hit":
        return flatten(doc["_source"], "ecs")
    if shape == "ecs":
        return _from_ecs(doc)
    if shape == "sentinel":
        data = doc.get("EventData")
        fields = json.loads(data) if isinstance(data, str) and data else (data or {})
        if not isinstance(fields, dict):
            raise TypeError("EventData is not an object")
        raw = {**{k: v for k, v in doc.items() if k != "EventData"}, **fields}
        raw.setdefault("ProviderName", doc.get("Provider"))
        return _from_raw(raw)
    if shape == "evtx-dump":
        return _from_raw(_evtx_dump_raw(doc["Event"]))
    return _from_raw(dict(doc))


def _text(value: Any) -> Any:
    """evtx_dump writes an element with attributes as {"#text": v, "#attributes": {...}}."""
    if isinstance(value, dict) and "#text" in value:
        return value["#text"]
    return value


def _evtx_dump_raw(event: Mapping[str, Any]) -> dict[str, Any]:
    system = event["System"]
    if not isinstance(system, dict):
        raise TypeError("Event.System is not an object")
    raw: dict[str, Any] = {}
    data = event.get("EventData") or {}
    if isinstance(data, dict):
        raw.update({k: _text(v) for k, v in data.items() if k != "#attributes"})
    raw["EventID"] = _text(system.get("EventID"))
    raw["Channel"] = system.get("Channel")
    raw["Computer"] = system.get("Computer")
    raw["EventRecordID"] = system.get("EventRecordID")
    provider = system.get("Provider")
    if isinstance(provider, dict):
        raw["ProviderName"] = (provider.get("#attributes") or {}).get("Name")
    return raw


def _present(value: Any) -> bool:
    return value is not None and value not in _EMPTY


def _as_int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise TypeError(f"a boolean where a number belongs: {value}")
    return int(value)


def _lenient_int(value: Any) -> int | None:
    """A process or record number as the pipeline reads it: decimal or 0x-hex text; anything
    else is left out rather than losing the event."""
    try:
        return _as_int(value) if not isinstance(value, str) else int(value, 0)
    except (TypeError, ValueError):
        return None


def _timestamp(value: Any) -> datetime | None:
    """ISO-8601 or Sysmon's `UtcTime` text (zone-less: UTC), epoch milliseconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, UTC)
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        text = value.replace("Z", "").replace("T", " ")
        head, _, frac = text.partition(".")
        try:
            moment = datetime.fromisoformat(f"{head}.{frac[:6]}" if frac else head)
        except ValueError:
            return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _from_raw(raw: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    event_id = next((raw[k] for k in ("EventID", "EventId") if k in raw), None)
    if isinstance(event_id, (dict, list)):
        raise TypeError("EventID is not a number")
    code = _as_int(event_id)
    if code is not None:
        row["event.code"] = str(code)
        row["winlog.event_id"] = code
    channel, provider = raw.get("Channel"), raw.get("ProviderName") or raw.get("SourceName")
    sysmon = channel == SYSMON_CHANNEL if channel is not None else provider == SYSMON_PROVIDER
    if code == 10 and sysmon:
        row["event.category"] = ["process"]
    row["host.os.type"] = "windows"
    used: set[str] = {"EventID", "EventId"}
    for target, names in RAW_SOURCES.items():
        name = next((n for n in names if n in raw), None)
        if name is None or not _present(raw[name]):
            continue
        if target.startswith(EVENT_DATA):
            continue  # event data is taken below, every name alike
        used.add(name)
        value = raw[name]
        row[target] = _lenient_int(value) if target in _INT_COLUMNS else str(value)
    if _present(raw.get("UtcTime")):
        row["@timestamp"] = _timestamp(raw["UtcTime"])
    other: dict[str, Any] = {}
    columns = _columns()
    for name, value in raw.items():
        if not _present(value):
            continue
        column = EVENT_DATA + name
        if column in columns:
            row[column] = value if isinstance(value, str) else json.dumps(value)
        elif name not in used and name in _EVENT_DATA_ONLY:
            other[name] = value
    if other:
        row[OTHER] = json.dumps(other)
    return row


# Raw names that are Sysmon EventData (not System or shipper metadata) but have no column.
_EVENT_DATA_ONLY = frozenset({"SourceProcessGUID", "SourceThreadId"})
_INT_COLUMNS = frozenset(
    {"process.pid", "process.thread.id", "winlog.record_id", "winlog.event_id", "winlog.level"}
)


def _dotted(doc: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in doc.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and name != OTHER:
            out.update(_dotted(value, name + "."))
        else:
            out[name] = value
    return out


def _from_ecs(doc: Mapping[str, Any]) -> dict[str, Any]:
    flat = _dotted(doc)
    columns = _columns()
    row: dict[str, Any] = {}
    other: dict[str, Any] = {}
    for name, value in flat.items():
        if value is None:
            continue
        if name in columns and name not in (LINE, "log.file.path"):
            row[name] = value
        elif name.startswith(EVENT_DATA):
            other[name.removeprefix(EVENT_DATA)] = value
    if "event.code" in row:
        row["event.code"] = str(_as_int(row["event.code"]))
    if isinstance(row.get("event.category"), str):
        row["event.category"] = [row["event.category"]]
    for name in _INT_COLUMNS & row.keys():
        row[name] = _lenient_int(row[name])
    if "@timestamp" in row:
        row["@timestamp"] = _timestamp(row["@timestamp"])
    for name in list(row):
        if name.startswith(EVENT_DATA) and not isinstance(row[name], str):
            row[name] = json.dumps(row[name])
    if other:
        row[OTHER] = json.dumps(other)
    return row
