"""Synthetic Sysmon logs as EVTX files: the events of `synthetic.chunk`, written as Windows would.

`sysmon_events` turns the flat-ECS synthetic rows into the Sysmon events they stand for
(EventData under Sysmon's names, for events 1, 3, 7, 10, 11 and 13, System fields), adding the
fields the rule does not read from the same row hashes, column-wise. Every field the rule reads
(event code, CallTrace, TargetImage, SourceImage, host) is the synthetic row's own value, so
`expected_alert` stays the independent answer. `write_evtx` writes those events with
`callsweep.evtxwrite`; the bytes depend on the shape alone (same seed, same file).

EventData value types are Sysmon's own (from Windows-written logs): GUIDs as GUID values,
process and thread ids as UInt32, GrantedAccess as HexInt32, LogonId as HexInt64, ports as
UInt16, booleans as Boolean, the rest (times included: `UtcTime` is text in Sysmon) as strings.
An absent value (`None`) is a NULL value. `process.entity_id` of the synthetic rows is not a
GUID (its second group is a decimal number of up to 5 digits): the GUID written holds that
number in hex.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import polars as pl

from callsweep import synthetic
from callsweep.evtxwrite import EventKind, EvtxWriter, event_data_template, system_template
from callsweep.evtxwrite import binxml as bx
from callsweep.evtxwrite.chunk import Chunk
from callsweep.evtxwrite.event import event_data_values
from callsweep.evtxwrite.values import encode_column
from callsweep.synthetic import Shape

PROVIDER = "Microsoft-Windows-Sysmon"
PROVIDER_GUID = "{5770385f-c22a-43e0-bf4c-06f5698ffbd9}"
CHANNEL = "Microsoft-Windows-Sysmon/Operational"

_S, _U16, _U32, _GUID, _HEX32, _HEX64, _BOOL = (
    bx.STRING,
    bx.UINT16,
    bx.UINT32,
    bx.GUID,
    bx.HEX32,
    bx.HEX64,
    bx.BOOL,
)
# EventData of each event written: (schema version, fields in Sysmon's order with their types).
EVENTS: dict[int, tuple[int, tuple[tuple[str, int], ...]]] = {
    1: (
        5,
        (
            ("RuleName", _S),
            ("UtcTime", _S),
            ("ProcessGuid", _GUID),
            ("ProcessId", _U32),
            ("Image", _S),
            ("FileVersion", _S),
            ("Description", _S),
            ("Product", _S),
            ("Company", _S),
            ("OriginalFileName", _S),
            ("CommandLine", _S),
            ("CurrentDirectory", _S),
            ("User", _S),
            ("LogonGuid", _GUID),
            ("LogonId", _HEX64),
            ("TerminalSessionId", _U32),
            ("IntegrityLevel", _S),
            ("Hashes", _S),
            ("ParentProcessGuid", _GUID),
            ("ParentProcessId", _U32),
            ("ParentImage", _S),
            ("ParentCommandLine", _S),
            ("ParentUser", _S),
        ),
    ),
    3: (
        5,
        (
            ("RuleName", _S),
            ("UtcTime", _S),
            ("ProcessGuid", _GUID),
            ("ProcessId", _U32),
            ("Image", _S),
            ("User", _S),
            ("Protocol", _S),
            ("Initiated", _BOOL),
            ("SourceIsIpv6", _BOOL),
            ("SourceIp", _S),
            ("SourceHostname", _S),
            ("SourcePort", _U16),
            ("SourcePortName", _S),
            ("DestinationIsIpv6", _BOOL),
            ("DestinationIp", _S),
            ("DestinationHostname", _S),
            ("DestinationPort", _U16),
            ("DestinationPortName", _S),
        ),
    ),
    7: (
        3,
        (
            ("RuleName", _S),
            ("UtcTime", _S),
            ("ProcessGuid", _GUID),
            ("ProcessId", _U32),
            ("Image", _S),
            ("ImageLoaded", _S),
            ("FileVersion", _S),
            ("Description", _S),
            ("Product", _S),
            ("Company", _S),
            ("OriginalFileName", _S),
            ("Hashes", _S),
            ("Signed", _S),
            ("Signature", _S),
            ("SignatureStatus", _S),
            ("User", _S),
        ),
    ),
    10: (
        3,
        (
            ("RuleName", _S),
            ("UtcTime", _S),
            ("SourceProcessGUID", _GUID),
            ("SourceProcessId", _U32),
            ("SourceThreadId", _U32),
            ("SourceImage", _S),
            ("TargetProcessGUID", _GUID),
            ("TargetProcessId", _U32),
            ("TargetImage", _S),
            ("GrantedAccess", _HEX32),
            ("CallTrace", _S),
            ("SourceUser", _S),
            ("TargetUser", _S),
        ),
    ),
    11: (
        2,
        (
            ("RuleName", _S),
            ("UtcTime", _S),
            ("ProcessGuid", _GUID),
            ("ProcessId", _U32),
            ("Image", _S),
            ("TargetFilename", _S),
            ("CreationUtcTime", _S),
            ("User", _S),
        ),
    ),
    13: (
        2,
        (
            ("RuleName", _S),
            ("EventType", _S),
            ("UtcTime", _S),
            ("ProcessGuid", _GUID),
            ("ProcessId", _U32),
            ("Image", _S),
            ("TargetObject", _S),
            ("Details", _S),
            ("User", _S),
        ),
    ),
}


def _template_guid(name: str) -> bytes:
    # Fixed per template, so that files are the same for the same shape.
    return uuid.uuid5(uuid.NAMESPACE_URL, f"callsweep:synthetic-sysmon:{name}").bytes_le


_SYSTEM_TEMPLATE = system_template(_template_guid("System"))
KINDS: dict[int, EventKind] = {
    event_id: EventKind(
        provider_name=PROVIDER,
        provider_guid=PROVIDER_GUID,
        channel=CHANNEL,
        event_id=event_id,
        version=version,
        task=event_id,  # Sysmon's task is its event id
        fields=fields,
        system=_SYSTEM_TEMPLATE,
        event_data=event_data_template(_template_guid(f"EventData-{event_id}"), fields),
    )
    for event_id, (version, fields) in EVENTS.items()
}

USERS = ("NT AUTHORITY\\SYSTEM", "CONTOSO\\alice", "CONTOSO\\bob", "NT AUTHORITY\\LOCAL SERVICE")
RULE_NAMES = ("-", "-", "technique_id=T1055,technique_name=Process Injection")
MODULES = (
    ("C:\\Windows\\System32\\kernel32.dll", "KERNEL32.DLL", "Windows NT BASE API Client DLL"),
    ("C:\\Windows\\System32\\combase.dll", "COMBASE.DLL", "Microsoft COM for Windows"),
    ("C:\\Windows\\System32\\dbgcore.dll", "DBGCORE.DLL", "Windows Core Debugging Helpers"),
    ("C:\\Program Files\\Mozilla Firefox\\xul.dll", "xul.dll", "Firefox"),
)
HASHES = (
    "SHA1=E3FA87C983008D4D2A5D31708415F88548FC7702,MD5=0D4E3D6B9B2E1A43B54A5C2F8C0A7D11",
    "SHA1=D241DF7B9D2EC0B8194751CD5CE153E27CC40FA4,MD5=B1A0C3F5E2D4A6B8C0D2E4F6A8B0C2D4",
    "SHA256=9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08",
)
FILES = (
    "C:\\Users\\alice\\AppData\\Local\\Temp\\~DF3A21.tmp",
    "C:\\Windows\\Prefetch\\SVCHOST.EXE-1234ABCD.pf",
    "C:\\Users\\Public\\Downloads\\report.docx",
    "C:\\Windows\\Tasks\\SA.DAT",
)
REGISTRY = (
    "HKLM\\System\\CurrentControlSet\\Services\\bam\\State\\UserSettings\\S-1-5-18",
    "HKU\\S-1-5-21-1004336348-1177238915-682003330-1001\\Software\\Microsoft\\Run\\updater",
    "HKLM\\SOFTWARE\\Microsoft\\Windows Defender\\Features\\TamperProtection",
)
DETAILS = ("DWORD (0x00000001)", "Binary Data", "C:\\Users\\Public\\updater.exe", "QWORD (0x0-0x1)")
PORTS = ((443, "https"), (80, "http"), (445, "microsoft-ds"), (53, "domain"))
_HEX_DIGITS = tuple("0123456789abcdef")


def _hex(value: pl.Expr, digits: int) -> pl.Expr:
    """`value` (0 <= value < 16**digits) as lower-case hex of exactly `digits` digits."""
    return pl.concat_str(
        [
            (value // 16 ** (digits - 1 - k) % 16).replace_strict(
                list(range(16)), list(_HEX_DIGITS), return_dtype=pl.String
            )
            for k in range(digits)
        ]
    )


def _pick(h: pl.Expr, choices: tuple) -> pl.Expr:
    return (h % len(choices)).replace_strict(list(range(len(choices))), list(choices))


def sysmon_events(shape: Shape, offset: int, rows: int) -> pl.DataFrame:
    """Rows `offset .. offset+rows` of the shape as the Sysmon events written to EVTX: `EventID`,
    `EventRecordID`, `TimeCreated`, `Computer`, `ProcessID` / `ThreadID` (System/Execution),
    every EventData field of `EVENTS` (null where the event has no such field, or where the
    value is absent), and `expected_alert`."""
    ecs = synthetic.chunk(shape, offset, rows)
    unknown = set(ecs["event.code"].unique().cast(pl.Int64).to_list()) - set(EVENTS)
    if unknown:
        raise ValueError(f"no EVTX template for event ids {sorted(unknown)}")
    seed = shape.seed

    def h(k: int) -> pl.Expr:
        # Other hash seeds than `synthetic.chunk` uses (it stays below seed * 1000 + 100).
        return pl.col("winlog.record_id").hash(seed * 1000 + 500 + k)

    def guid(head: str, h: pl.Expr, tail: str) -> pl.Expr:
        return pl.concat_str(pl.lit("{" + head + "-"), _hex(h % 0x10000, 4), pl.lit(tail + "}"))

    # `process.entity_id` holds a decimal number where a GUID has 4 hex digits: the same
    # number, in hex, makes it a GUID.
    entity = pl.col("process.entity_id").str.extract(r"^\{39e4a257-(\d+)-").cast(pl.Int64)
    image = pl.col("process.executable")
    utc_time = pl.col("@timestamp").dt.strftime("%Y-%m-%d %H:%M:%S%.3f")
    module = h(20) % len(MODULES)
    port = h(21) % len(PORTS)
    data: dict[str, pl.Expr] = {
        "RuleName": pl.when(h(1) % 5 == 4).then(None).otherwise(_pick(h(1), RULE_NAMES)),
        "UtcTime": utc_time,
        "ProcessGuid": guid("39e4a257", entity, "-5f8d-4304-000000000700"),
        "ProcessId": pl.col("process.pid"),
        "Image": image,
        "FileVersion": pl.lit("10.0.19041.1 (WinBuild.160101.0800)"),
        "Description": _pick(module, tuple(m[2] for m in MODULES)),
        "Product": pl.lit("Microsoft\u00ae Windows\u00ae Operating System"),
        "Company": pl.lit("Microsoft Corporation"),
        "OriginalFileName": _pick(module, tuple(m[1] for m in MODULES)),
        "CommandLine": pl.format('"{}" -k netsvcs -p -s {}', image, h(2) % 100),
        "CurrentDirectory": pl.lit("C:\\Windows\\system32\\"),
        "User": _pick(h(3), USERS),
        "LogonGuid": guid("39e4a257", h(4), "-5f8d-e703-000000000000"),
        "LogonId": (h(5) % 0x1000000).cast(pl.Int64),
        "TerminalSessionId": (h(6) % 3).cast(pl.Int64),
        "IntegrityLevel": _pick(h(7), ("System", "High", "Medium")),
        "Hashes": _pick(h(8), HASHES),
        "ParentProcessGuid": guid("39e4a257", h(9), "-5f8d-0b00-000000000700"),
        "ParentProcessId": (4 + h(10) % 60000).cast(pl.Int64),
        "ParentImage": _pick(h(11), synthetic.SOURCES),
        "ParentCommandLine": _pick(h(11), synthetic.SOURCES),
        "ParentUser": _pick(h(12), USERS),
        "Protocol": _pick(h(13), ("tcp", "udp")),
        "Initiated": h(14) % 2 == 0,
        "SourceIsIpv6": pl.lit(False),
        "SourceIp": pl.format("10.0.{}.{}", h(15) % 256, h(16) % 254 + 1),
        "SourceHostname": pl.col("host.name"),
        "SourcePort": (49152 + h(17) % 16000).cast(pl.Int64),
        "SourcePortName": pl.lit(None, pl.String),
        "DestinationIsIpv6": pl.lit(False),
        "DestinationIp": pl.format("192.0.2.{}", h(18) % 254 + 1),
        "DestinationHostname": pl.format("srv{}.contoso.com", h(19) % 40),
        "DestinationPort": _pick(port, tuple(p for p, _ in PORTS)).cast(pl.Int64),
        "DestinationPortName": _pick(port, tuple(n for _, n in PORTS)),
        "ImageLoaded": _pick(module, tuple(m[0] for m in MODULES)),
        "Signed": _pick(h(22), ("true", "true", "false")),
        "Signature": pl.lit("Microsoft Windows"),
        "SignatureStatus": pl.lit("Valid"),
        "SourceProcessGUID": guid("39e4a257", entity, "-5f8d-4304-000000000700"),
        "SourceProcessId": pl.col("process.pid"),
        "SourceThreadId": (1000 + h(23) % 20000).cast(pl.Int64),
        "SourceImage": image,
        "TargetProcessGUID": guid("39e4a257", h(24), "-5f8d-0c00-000000000600"),
        "TargetProcessId": pl.col("winlog.event_data.TargetProcessId").cast(pl.Int64),
        "TargetImage": pl.col("winlog.event_data.TargetImage"),
        "GrantedAccess": pl.col("winlog.event_data.GrantedAccess")
        .str.strip_prefix("0x")
        .str.to_integer(base=16),
        "CallTrace": pl.col("winlog.event_data.CallTrace"),
        "SourceUser": _pick(h(25), USERS),
        "TargetUser": _pick(h(26), USERS),
        "TargetFilename": _pick(h(27), FILES),
        "CreationUtcTime": utc_time,
        "EventType": pl.lit("SetValue"),
        "TargetObject": _pick(h(28), REGISTRY),
        "Details": _pick(h(29), DETAILS),
    }
    event_id = pl.col("event.code").cast(pl.Int64)
    # Sysmon's service: one process per host, its threads varying.
    host_hash = pl.col("host.name").hash(seed)
    return ecs.select(
        event_id.alias("EventID"),
        pl.col("winlog.record_id").alias("EventRecordID"),
        pl.col("@timestamp").alias("TimeCreated"),
        pl.col("host.name").alias("Computer"),
        (1000 + host_hash % 8000).cast(pl.Int64).alias("ProcessID"),
        (1000 + h(30) % 9000).cast(pl.Int64).alias("ThreadID"),
        *(
            pl.when(event_id.is_in([e for e, (_, f) in EVENTS.items() if name in dict(f)]))
            .then(expr)
            .alias(name)
            for name, expr in data.items()
        ),
        pl.col("expected_alert"),
    )


@dataclass(frozen=True)
class WrittenEvtx:
    """What `write_evtx` wrote."""

    path: Path
    records: int
    chunks: int
    first_record_id: int
    last_record_id: int
    # EventRecordIDs of the events the rule must alert on, ascending.
    alert_record_ids: tuple[int, ...]


# Rows generated and encoded at a time: bounds memory whatever the file size.
BATCH_ROWS = 20_000
# 100 ns ticks between 1601-01-01 and 1970-01-01.
_FILETIME_UNIX_EPOCH = 116_444_736_000_000_000


def _event_data_payloads(events: pl.DataFrame) -> list[bytes]:
    """Each event's EventData instance values (count, descriptors, bytes), in row order."""
    payloads: list[bytes] = [b""] * events.height
    for event_id, (_, fields) in EVENTS.items():
        rows = events.filter(pl.col("EventID") == event_id)
        if rows.height == 0:
            continue
        where = events.select(pl.arg_where(pl.col("EventID") == event_id)).to_series().to_list()
        encoded = [encode_column(kind, rows[name].to_list()) for name, kind in fields]
        descriptors = zip(*(d for d, _ in encoded), strict=True)
        values = zip(*(v for _, v in encoded), strict=True)
        for i, d, v in zip(where, descriptors, values, strict=True):
            payloads[i] = event_data_values(d, v)
    return payloads


def _binxml(
    kind: EventKind,
    filetime: int,
    process_id: int,
    thread_id: int,
    record_id: int,
    computer: bytes,
    event_data: bytes,
    chunk: Chunk,
    at: int,
) -> bytes:
    return kind.binxml(chunk, at, filetime, process_id, thread_id, record_id, computer, event_data)


def _batches(shape: Shape, offset: int, rows: int) -> Iterator[pl.DataFrame]:
    for start in range(offset, offset + rows, BATCH_ROWS):
        yield sysmon_events(shape, start, min(BATCH_ROWS, offset + rows - start))


def write_evtx(
    path: str | Path, shape: Shape, offset: int = 0, rows: int | None = None
) -> WrittenEvtx:
    """Writes rows `offset .. offset+rows` of the shape (default: all) to an EVTX file."""
    rows = shape.rows - offset if rows is None else rows
    alerts: list[int] = []
    first = last = 0
    with EvtxWriter(path) as writer:
        for events in _batches(shape, offset, rows):
            payloads = _event_data_payloads(events)
            filetimes = events.select(
                pl.col("TimeCreated").dt.epoch("us") * 10 + _FILETIME_UNIX_EPOCH
            ).to_series()
            computers = {h: h.encode("utf-16-le") for h in events["Computer"].unique().to_list()}
            columns = zip(
                events["EventRecordID"].to_list(),
                filetimes.to_list(),
                events["EventID"].to_list(),
                events["Computer"].to_list(),
                events["ProcessID"].to_list(),
                events["ThreadID"].to_list(),
                payloads,
                strict=True,
            )
            for record_id, filetime, event_id, computer, pid, tid, payload in columns:
                name = computers[computer]
                build = partial(
                    _binxml, KINDS[event_id], filetime, pid, tid, record_id, name, payload
                )
                writer.add(record_id, filetime, build)
            alerts += events.filter(pl.col("expected_alert"))["EventRecordID"].to_list()
            first = first or events["EventRecordID"][0]
            last = events["EventRecordID"][-1]
    return WrittenEvtx(Path(path), writer.records, writer.chunks, first, last, tuple(alerts))


def write_evtx_files(directory: str | Path, shape: Shape, files: int) -> list[WrittenEvtx]:
    """Writes the shape's rows to `files` EVTX files (`sysmon-000.evtx`...), consecutive
    slices of the rows; record ids go on from file to file, as the rows' do."""
    directory = Path(directory)
    bounds = [shape.rows * k // files for k in range(files + 1)]
    return [
        write_evtx(directory / f"sysmon-{k:03d}.evtx", shape, start, end - start)
        for k, (start, end) in enumerate(itertools.pairwise(bounds))
    ]
