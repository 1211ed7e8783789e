"""Synthetic events rendered as the documents winlogbeat 8.x writes to its file output.

As the real shipper does, each event carries only its own fields: an event 10 has TargetImage,
GrantedAccess and CallTrace; a process creation (1) has an Image, a CommandLine and Hashes; a
network connection (3) addresses and ports; and so on. Absent fields are left out, never written
as `null`, and every document carries the agent, ecs, host and log metadata and the rendered
`message` text winlogbeat adds, so lines are the 1.5-3 KB of a real export.

Each event code is rendered by polars as a whole column of structs (no per-row Python), and the
lines are put back in the events' order.
"""

from __future__ import annotations

import io

import polars as pl

c = pl.col
TASKS = {
    "1": "Process Create (rule: ProcessCreate)",
    "3": "Network connection detected (rule: NetworkConnect)",
    "7": "Image loaded (rule: ImageLoad)",
    "10": "Process accessed (rule: ProcessAccess)",
    "11": "File created (rule: FileCreate)",
    "13": "Registry value set (rule: RegistryEvent)",
}
CATEGORIES = {
    "1": ["process"],
    "3": ["network"],
    "7": ["process"],
    "10": ["process"],
    "11": ["file"],
    "13": ["configuration", "registry"],
}
HASHES = (
    "SHA1=6A8D1F9C0B3E4D5F6A7B8C9D0E1F2A3B4C5D6E7F,MD5=0C1D2E3F4A5B6C7D8E9F0A1B2C3D4E5F,"
    "SHA256=3F2E1D0C9B8A7F6E5D4C3B2A1F0E9D8C7B6A5F4E3D2C1B0A9F8E7D6C5B4A3F2E1D,"
    "IMPHASH=9D8C7B6A5F4E3D2C1B0A9F8E7D6C5B4A"
)


def _guid(k: int) -> pl.Expr:
    return pl.format("{{39e4a257-{}-5f8d-4304-00000000{}}}", c("process.pid"), pl.lit(k))


def _event_data(code: str) -> tuple[pl.Expr, pl.Expr]:
    """The `winlog.event_data` struct of one event code and its `message` text."""
    utc = c("@timestamp").dt.strftime("%Y-%m-%d %H:%M:%S%.3f")
    image = c("process.executable")
    common = [
        pl.lit("-").alias("RuleName"),
        utc.alias("UtcTime"),
        _guid(700).alias("ProcessGuid"),
        c("process.pid").cast(pl.String).alias("ProcessId"),
        image.alias("Image"),
    ]
    if code == "10":
        fields = [
            pl.lit("-").alias("RuleName"),
            utc.alias("UtcTime"),
            _guid(700).alias("SourceProcessGUID"),
            c("process.pid").cast(pl.String).alias("SourceProcessId"),
            pl.lit("4412").alias("SourceThreadId"),
            image.alias("SourceImage"),
            _guid(900).alias("TargetProcessGUID"),
            c("winlog.event_data.TargetProcessId").alias("TargetProcessId"),
            c("winlog.event_data.TargetImage").alias("TargetImage"),
            c("winlog.event_data.GrantedAccess").alias("GrantedAccess"),
            c("winlog.event_data.CallTrace").alias("CallTrace"),
            pl.lit("NT AUTHORITY\\SYSTEM").alias("SourceUser"),
            pl.lit("NT AUTHORITY\\SYSTEM").alias("TargetUser"),
        ]
    elif code == "1":
        fields = [
            *common,
            pl.lit("10.0.19041.1 (WinBuild.160101.0800)").alias("FileVersion"),
            pl.lit("Microsoft Corporation").alias("Company"),
            pl.format('"{}" -k netsvcs -p -s Schedule', image).alias("CommandLine"),
            pl.lit("C:\\Windows\\system32\\").alias("CurrentDirectory"),
            pl.lit("NT AUTHORITY\\SYSTEM").alias("User"),
            pl.lit("System").alias("IntegrityLevel"),
            pl.lit(HASHES).alias("Hashes"),
            _guid(500).alias("ParentProcessGuid"),
            pl.lit("C:\\Windows\\System32\\services.exe").alias("ParentImage"),
            pl.lit("C:\\Windows\\system32\\services.exe").alias("ParentCommandLine"),
        ]
    elif code == "3":
        fields = [
            *common,
            pl.lit("NT AUTHORITY\\NETWORK SERVICE").alias("User"),
            pl.lit("tcp").alias("Protocol"),
            pl.lit("true").alias("Initiated"),
            pl.format("10.1.{}.{}", c("process.pid") % 250, c("process.pid") % 199).alias(
                "SourceIp"
            ),
            (49152 + c("process.pid") % 16000).cast(pl.String).alias("SourcePort"),
            pl.lit("52.96.165.2").alias("DestinationIp"),
            pl.lit("443").alias("DestinationPort"),
            pl.lit("https").alias("DestinationPortName"),
        ]
    elif code == "7":
        fields = [
            *common,
            pl.lit("C:\\Windows\\System32\\combase.dll").alias("ImageLoaded"),
            pl.lit("Microsoft COM for Windows").alias("Description"),
            pl.lit(HASHES).alias("Hashes"),
            pl.lit("true").alias("Signed"),
            pl.lit("Microsoft Windows").alias("Signature"),
            pl.lit("Valid").alias("SignatureStatus"),
        ]
    elif code == "11":
        fields = [
            *common,
            pl.format("C:\\Users\\user\\AppData\\Local\\Temp\\{}.tmp", c("winlog.record_id")).alias(
                "TargetFilename"
            ),
            utc.alias("CreationUtcTime"),
        ]
    else:  # 13 and any other code: a registry value set
        fields = [
            pl.lit("SetValue").alias("EventType"),
            *common,
            pl.format(
                "HKLM\\System\\CurrentControlSet\\Services\\bam\\State\\UserSettings\\S-1-5-18\\{}",
                image,
            ).alias("TargetObject"),
            pl.lit("Binary Data").alias("Details"),
        ]
    names = [f.meta.output_name() for f in fields]
    message = pl.concat_str(
        [pl.lit(TASKS.get(code, TASKS["13"]).split(" (")[0] + ":")]
        + [pl.format(f"{n}: {{}}", c("event_data").struct.field(n)) for n in names],
        separator="\n",
    )
    return pl.struct(fields).alias("event_data"), message.alias("message")


def _documents(events: pl.DataFrame, code: str) -> pl.DataFrame:
    """The events of one code as winlogbeat documents (one struct column per top-level key)."""
    data, message = _event_data(code)
    task = TASKS.get(code, TASKS["13"])
    frame = events.with_columns(data).with_columns(message)
    return frame.select(
        c("@timestamp").dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ"),
        pl.struct(
            pl.lit("winlogbeat").alias("beat"),
            pl.lit("_doc").alias("type"),
            pl.lit("8.11.0").alias("version"),
        ).alias("@metadata"),
        pl.struct(
            pl.lit(task).alias("action"),
            c("event.code").alias("code"),
            pl.lit("Microsoft-Windows-Sysmon").alias("provider"),
            pl.lit("event").alias("kind"),
            pl.lit(CATEGORIES.get(code, ["configuration"])).alias("category"),
            pl.lit("sysmon").alias("module"),
            c("@timestamp").dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").alias("created"),
        ).alias("event"),
        pl.struct(
            c("process.executable").alias("executable"),
            c("process.pid").alias("pid"),
            c("process.entity_id").alias("entity_id"),
            c("process.executable").str.split("\\").list.last().alias("name"),
        ).alias("process"),
        pl.struct(
            c("host.name").alias("name"),
            c("host.name").str.to_lowercase().alias("hostname"),
            pl.lit("x86_64").alias("architecture"),
            pl.struct(
                pl.lit("windows").alias("family"),
                pl.lit("Windows 10 Enterprise").alias("name"),
                pl.lit("10.0.19041.3636 (WinBuild.160101.0800)").alias("kernel"),
                pl.lit("19045.3693").alias("build"),
                pl.lit("windows").alias("platform"),
                pl.lit("10.0").alias("version"),
                c("host.os.type").alias("type"),
            ).alias("os"),
            pl.lit(["fe80::a1b2:c3d4:e5f6:7788", "10.1.20.31"]).alias("ip"),
            pl.lit(["00-50-56-A1-B2-C3"]).alias("mac"),
        ).alias("host"),
        pl.struct(
            pl.lit("a7e1c2d3-0b4f-4e5a-9c8d-7f6e5d4c3b2a").alias("id"),
            pl.lit("winlogbeat").alias("type"),
            pl.lit("8.11.0").alias("version"),
            c("host.name").alias("name"),
        ).alias("agent"),
        pl.struct(pl.lit("8.0.0").alias("version")).alias("ecs"),
        pl.struct(pl.lit("information").alias("level")).alias("log"),
        c("message"),
        pl.struct(
            pl.lit("wineventlog").alias("api"),
            c("winlog.channel").alias("channel"),
            c("host.name").alias("computer_name"),
            c("event.code").alias("event_id"),
            pl.lit("Info").alias("opcode"),
            pl.lit("{5770385f-c22a-43e0-bf4c-06f5698ffbd9}").alias("provider_guid"),
            pl.lit("Microsoft-Windows-Sysmon").alias("provider_name"),
            c("winlog.record_id").alias("record_id"),
            pl.lit(task).alias("task"),
            pl.lit(5 if code == "1" else 2).alias("version"),
            pl.struct(
                pl.lit(3372).alias("pid"), pl.struct(pl.lit(4412).alias("id")).alias("thread")
            ).alias("process"),
            pl.struct(
                pl.lit("S-1-5-18").alias("identifier"),
                pl.lit("NT AUTHORITY").alias("domain"),
                pl.lit("SYSTEM").alias("name"),
                pl.lit("Well Known Group").alias("type"),
            ).alias("user"),
            c("event_data"),
        ).alias("winlog"),
    )


def winlogbeat_ndjson(events: pl.DataFrame) -> bytes:
    """The events (a `callsweep.synthetic.chunk`) as winlogbeat NDJSON, one line each, in order."""
    order = events.with_row_index("_row")
    lines: list[bytes] = [b""] * events.height
    for (code,), group in order.group_by("event.code"):
        buffer = io.BytesIO()
        _documents(group.drop("_row"), str(code)).write_ndjson(buffer)
        rendered = buffer.getvalue().split(b"\n")
        for row, line in zip(group["_row"].to_list(), rendered, strict=False):
            lines[row] = line
    return b"\n".join(lines) + b"\n"
