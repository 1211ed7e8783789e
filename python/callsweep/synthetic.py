"""Synthetic Sysmon events in flat ECS, for the demo and the benchmarks.

Built column-wise with polars (no per-row Python), in chunks written as row groups, so millions
of rows take seconds and little memory. Whether an event must alert is decided while it is
generated, from which ingredients were picked (a non-ntdll first frame, an excluded target...),
never by running a matcher: `expected_alert` is an independent answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

DRIVES = ("C", "D", "c", "E")

# First frames that go through the hooked API: the rule stays quiet on them.
API_FIRST_FRAMES = (
    "{d}:\\Windows\\SYSTEM32\\ntdll.dll",
    "{d}:\\WINDOWS\\System32\\ntdll.dll",
    "{d}:\\windows\\system32\\ntdll.dll",
    "{d}:\\Windows\\SysWOW64\\ntdll.dll",
    "{d}:\\Windows\\System32\\wow64cpu.dll",
    "{d}:\\Windows\\System32\\wow64win.dll",
    "{d}:\\Windows\\System32\\win32u.dll",
)
# First frames of direct system calls: unbacked memory or a module with its own stubs.
SYSCALL_FIRST_FRAMES = (
    "UNKNOWN(000001F3C35A{x})",
    "{d}:\\Users\\Public\\za3bollo.exe",
    "{d}:\\Users\\administrator\\Desktop\\x64\\Outflank-Dumpert.exe",
    "{d}:\\Windows\\System32\\sysfer.dll",
    "\\\\?\\{d}:\\Windows\\System32\\ntdll.dll",
)
LATER_FRAMES = (
    "C:\\Windows\\System32\\KERNELBASE.dll",
    "C:\\Windows\\System32\\kernel32.dll",
    "C:\\Windows\\SYSTEM32\\ntdll.dll",
    "C:\\Windows\\System32\\combase.dll",
    "C:\\Windows\\System32\\RPCRT4.dll",
    "C:\\Program Files\\Mozilla Firefox\\xul.dll",
    "C:\\Windows\\Microsoft.NET\\Framework64\\v4.0.30319\\clr.dll",
    "C:\\Windows\\System32\\ucrtbase.dll",
    "C:\\Windows\\System32\\sechost.dll",
    "C:\\Windows\\System32\\advapi32.dll",
)
SOURCES = (
    "C:\\Windows\\System32\\svchost.exe",
    "C:\\Windows\\System32\\csrss.exe",
    "C:\\Program Files\\Windows Defender\\MsMpEng.exe",
    "C:\\Windows\\System32\\wbem\\WmiPrvSE.exe",
    "C:\\Program Files (x86)\\Google\\Chrome\\Application\\chrome.exe",
    "C:\\Windows\\explorer.exe",
    "C:\\Users\\Public\\za3bollo.exe",
    "C:\\Windows\\System32\\rundll32.exe",
)
TARGETS = (
    "C:\\Windows\\system32\\lsass.exe",
    "C:\\Windows\\system32\\notepad.exe",
    "C:\\Windows\\System32\\svchost.exe",
    "C:\\Windows\\explorer.exe",
    "C:\\Program Files (x86)\\Google\\Chrome\\Application\\chrome.exe",
)
# Targets the rule excludes, whatever the first frame.
EXCLUDED_TARGETS = (
    "C:\\Program Files (x86)\\Malwarebytes Anti-Exploit\\mbae-svc.exe",
    "C:\\Program Files\\Cisco\\AMP\\8.1.3\\sfc.exe",
    "D:\\Program Files (x86)\\Microsoft\\EdgeWebView\\Application\\120.0\\msedgewebview2.exe",
)
HOSTS = ("WORKSTATION5", "DC01", "FILESRV02", "LAPTOP-7Q", "WEB01")
ACCESS = ("0x1fffff", "0x1010", "0x1410", "0x40", "0x1000")
OTHER_CODES = ("1", "3", "11", "13", "7")


@dataclass(frozen=True)
class Shape:
    """How a synthetic data set looks."""

    rows: int
    event10_share: float = 1.0  # share of rows that are Sysmon event 10
    syscall_share: float = 0.005  # share of event-10 rows whose first frame is not ntdll
    excluded_share: float = 0.05  # share of those whose target the rule excludes
    seed: int = 7
    chunk_rows: int = 500_000
    hosts: int = len(HOSTS)  # distinct host names
    time_span: timedelta | None = None  # rows spread evenly over it; None: one row per 37 ms
    call_trace_frames: tuple[int, int] = (5, 15)  # fewest and most CallTrace frames
    other_codes: tuple[str, ...] = OTHER_CODES  # event ids of the other rows, picked evenly

    def __post_init__(self) -> None:
        low, high = self.call_trace_frames
        if not 1 <= low <= high:
            raise ValueError(f"call_trace_frames must be 1 <= low <= high, not {low}, {high}")
        if self.hosts < 1 or not self.other_codes:
            raise ValueError("a shape needs at least one host and one other event code")


def host_names(count: int) -> tuple[str, ...]:
    """`count` host names: the usual five first, then numbered workstations."""
    extra = (f"WKS-{i:05d}" for i in range(count - len(HOSTS)))
    return (*HOSTS[:count], *extra)


def _pick(h: pl.Expr, choices: tuple[str, ...]) -> pl.Expr:
    return (h % len(choices)).replace_strict(list(range(len(choices))), list(choices))


def _uniform(h: pl.Expr) -> pl.Expr:
    """A float in [0, 1) from a hash column."""
    return (h % 1_000_003).cast(pl.Float64) / 1_000_003


def _frame(template: pl.Expr, h: pl.Expr) -> pl.Expr:
    """A template with `{d}` (drive) and `{x}` (hex digits) filled in from hash `h`."""
    drive = _pick(h // 7, DRIVES)
    digits = (h // 13 % 0xFFFF).cast(pl.String).str.zfill(4)
    return template.str.replace_all("{d}", drive, literal=True).str.replace_all(
        "{x}", digits, literal=True
    )


def chunk(shape: Shape, offset: int, rows: int) -> pl.DataFrame:
    """Rows `offset .. offset+rows` of the data set; the same rows for the same shape."""
    seed = shape.seed

    def h(k: int) -> pl.Expr:
        return pl.col("i").hash(seed * 1000 + k)

    is10 = _uniform(h(1)) < shape.event10_share
    syscall = is10 & (_uniform(h(2)) < shape.syscall_share)
    excluded = _uniform(h(3)) < shape.excluded_share
    first_base = (
        pl.when(syscall)
        .then(_pick(h(4), SYSCALL_FIRST_FRAMES))
        .otherwise(_pick(h(4), API_FIRST_FRAMES))
    )
    first = pl.concat_str(
        _frame(first_base, h(5)),
        pl.when(first_base.str.starts_with("UNKNOWN"))
        .then(pl.lit(""))
        .otherwise(pl.lit("+") + (h(6) % 0xFFFFF).cast(pl.String)),
    )
    low, high = shape.call_trace_frames
    n_later = (low - 1) + h(7) % (high - low + 1)  # low to high frames in all
    later = [
        pl.when(n_later > k).then(
            pl.concat_str(
                _pick(h(20 + k), LATER_FRAMES), pl.lit("+"), (h(40 + k) % 0xFFFFF).cast(pl.String)
            )
        )
        for k in range(high - 1)
    ]
    start = datetime(2024, 3, 1, tzinfo=UTC)
    if shape.time_span is None:
        timestamp = pl.lit(start) + pl.duration(milliseconds=pl.col("i") * 37)
    else:
        step_us = shape.time_span // timedelta(microseconds=1) / max(shape.rows, 1)
        timestamp = pl.lit(start) + pl.duration(microseconds=(pl.col("i") * step_us).cast(pl.Int64))
    frame = pl.DataFrame({"i": pl.int_range(offset, offset + rows, eager=True)}).with_columns(
        is10.alias("_is10"), syscall.alias("_syscall"), excluded.alias("_excluded")
    )
    return frame.select(
        timestamp.alias("@timestamp"),
        _pick(h(8), host_names(shape.hosts)).alias("host.name"),
        pl.lit("windows").alias("host.os.type"),
        pl.when(pl.col("_is10"))
        .then(pl.lit("10"))
        .otherwise(_pick(h(9), shape.other_codes))
        .alias("event.code"),
        pl.when(pl.col("_is10"))
        .then(pl.lit(["process"]))
        .otherwise(pl.lit(["file"]))
        .alias("event.category"),
        _pick(h(10), SOURCES).alias("process.executable"),
        (1000 + h(11) % 60000).cast(pl.Int64).alias("process.pid"),
        pl.format("{{39e4a257-{}-5f8d-4304-000000000700}}", (h(12) % 0xFFFF).cast(pl.String)).alias(
            "process.entity_id"
        ),
        pl.when(pl.col("_excluded"))
        .then(_pick(h(13), EXCLUDED_TARGETS))
        .otherwise(_pick(h(13), TARGETS))
        .alias("winlog.event_data.TargetImage"),
        (4 + h(14) % 60000).cast(pl.String).alias("winlog.event_data.TargetProcessId"),
        _pick(h(15), ACCESS).alias("winlog.event_data.GrantedAccess"),
        pl.when(pl.col("_is10"))
        .then(pl.concat_str([first, *later], separator="|", ignore_nulls=True))
        .alias("winlog.event_data.CallTrace"),
        (pl.col("i") + 1).alias("winlog.record_id"),
        pl.lit("Microsoft-Windows-Sysmon/Operational").alias("winlog.channel"),
        (pl.col("_syscall") & ~pl.col("_excluded")).alias("expected_alert"),
    )


def write_parquet(path: str | Path, shape: Shape, **parquet_options) -> Path:
    """Writes the data set to one Parquet file, a row group per chunk; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"compression": "zstd", **parquet_options}
    writer = None
    try:
        for offset in range(0, shape.rows, shape.chunk_rows):
            table = chunk(shape, offset, min(shape.chunk_rows, shape.rows - offset)).to_arrow()
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema, **options)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    return path


# Flat ECS name -> raw Sysmon / Windows name, to render the same events as EVTX EventData or an
# NXLog export would hold them.
RAW_NAMES = {
    "host.name": "Computer",
    "process.executable": "SourceImage",
    "process.pid": "SourceProcessId",
    "process.entity_id": "SourceProcessGUID",
    "winlog.event_data.TargetImage": "TargetImage",
    "winlog.event_data.TargetProcessId": "TargetProcessId",
    "winlog.event_data.GrantedAccess": "GrantedAccess",
    "winlog.event_data.CallTrace": "CallTrace",
    "winlog.record_id": "EventRecordID",
    "winlog.channel": "Channel",
}


def as_raw_sysmon(events: pl.DataFrame) -> pl.DataFrame:
    """The same events under Sysmon's own field names (`EventID`, `UtcTime`, `SourceImage`...)."""
    return events.select(
        pl.col("event.code").cast(pl.Int64).alias("EventID"),
        pl.col("@timestamp").dt.strftime("%Y-%m-%d %H:%M:%S%.3f").alias("UtcTime"),
        *(pl.col(ecs).alias(raw) for ecs, raw in RAW_NAMES.items()),
        pl.col("expected_alert"),
    )
