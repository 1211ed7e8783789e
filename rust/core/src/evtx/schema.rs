//! The fixed schema of decoded EVTX records: one row per record, flat ECS column names.
//!
//! Every batch of every file has exactly these columns, in this order, so that batches of many
//! files can go into one Parquet dataset.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// The Sysmon EventData names of each Sysmon event (schema 4.90: events 1-29 and 255), in the
/// order Sysmon writes them. Each name gets a `winlog.event_data.<Name>` column (Utf8), except
/// the four that event 10 renames (see [`SYSMON_EVENT10_RENAMES`]) where no other event has them.
#[rustfmt::skip]
pub const SYSMON_EVENT_DATA: &[(u16, &[&str])] = &[
    (1, &[
        "RuleName", "UtcTime", "ProcessGuid", "ProcessId", "Image", "FileVersion", "Description",
        "Product", "Company", "OriginalFileName", "CommandLine", "CurrentDirectory", "User",
        "LogonGuid", "LogonId", "TerminalSessionId", "IntegrityLevel", "Hashes",
        "ParentProcessGuid", "ParentProcessId", "ParentImage", "ParentCommandLine", "ParentUser",
    ]),
    (2, &[
        "RuleName", "UtcTime", "ProcessGuid", "ProcessId", "Image", "TargetFilename",
        "CreationUtcTime", "PreviousCreationUtcTime", "User",
    ]),
    (3, &[
        "RuleName", "UtcTime", "ProcessGuid", "ProcessId", "Image", "User", "Protocol",
        "Initiated", "SourceIsIpv6", "SourceIp", "SourceHostname", "SourcePort", "SourcePortName",
        "DestinationIsIpv6", "DestinationIp", "DestinationHostname", "DestinationPort",
        "DestinationPortName",
    ]),
    (4, &["UtcTime", "State", "Version", "SchemaVersion"]),
    (5, &["RuleName", "UtcTime", "ProcessGuid", "ProcessId", "Image", "User"]),
    (6, &[
        "RuleName", "UtcTime", "ImageLoaded", "Hashes", "Signed", "Signature", "SignatureStatus",
    ]),
    (7, &[
        "RuleName", "UtcTime", "ProcessGuid", "ProcessId", "Image", "ImageLoaded", "FileVersion",
        "Description", "Product", "Company", "OriginalFileName", "Hashes", "Signed", "Signature",
        "SignatureStatus", "User",
    ]),
    (8, &[
        "RuleName", "UtcTime", "SourceProcessGuid", "SourceProcessId", "SourceImage",
        "TargetProcessGuid", "TargetProcessId", "TargetImage", "NewThreadId", "StartAddress",
        "StartModule", "StartFunction", "SourceUser", "TargetUser",
    ]),
    (9, &["RuleName", "UtcTime", "ProcessGuid", "ProcessId", "Image", "Device", "User"]),
    (10, &[
        "RuleName", "UtcTime", "SourceProcessGUID", "SourceProcessId", "SourceThreadId",
        "SourceImage", "TargetProcessGUID", "TargetProcessId", "TargetImage", "GrantedAccess",
        "CallTrace", "SourceUser", "TargetUser",
    ]),
    (11, &[
        "RuleName", "UtcTime", "ProcessGuid", "ProcessId", "Image", "TargetFilename",
        "CreationUtcTime", "User",
    ]),
    (12, &[
        "RuleName", "EventType", "UtcTime", "ProcessGuid", "ProcessId", "Image", "TargetObject",
        "User",
    ]),
    (13, &[
        "RuleName", "EventType", "UtcTime", "ProcessGuid", "ProcessId", "Image", "TargetObject",
        "Details", "User",
    ]),
    (14, &[
        "RuleName", "EventType", "UtcTime", "ProcessGuid", "ProcessId", "Image", "TargetObject",
        "NewName", "User",
    ]),
    (15, &[
        "RuleName", "UtcTime", "ProcessGuid", "ProcessId", "Image", "TargetFilename",
        "CreationUtcTime", "Hash", "Contents", "User",
    ]),
    (16, &["UtcTime", "Configuration", "ConfigurationFileHash"]),
    (17, &[
        "RuleName", "EventType", "UtcTime", "ProcessGuid", "ProcessId", "PipeName", "Image",
        "User",
    ]),
    (18, &[
        "RuleName", "EventType", "UtcTime", "ProcessGuid", "ProcessId", "PipeName", "Image",
        "User",
    ]),
    (19, &[
        "RuleName", "EventType", "UtcTime", "Operation", "User", "EventNamespace", "Name", "Query",
    ]),
    (20, &[
        "RuleName", "EventType", "UtcTime", "Operation", "User", "Name", "Type", "Destination",
    ]),
    (21, &["RuleName", "EventType", "UtcTime", "Operation", "User", "Consumer", "Filter"]),
    (22, &[
        "RuleName", "UtcTime", "ProcessGuid", "ProcessId", "QueryName", "QueryStatus",
        "QueryResults", "Image", "User",
    ]),
    (23, &[
        "RuleName", "UtcTime", "ProcessGuid", "ProcessId", "User", "Image", "TargetFilename",
        "Hashes", "IsExecutable", "Archived",
    ]),
    (24, &[
        "RuleName", "UtcTime", "ProcessGuid", "ProcessId", "Image", "Session", "ClientInfo",
        "Hashes", "Archived", "User",
    ]),
    (25, &["RuleName", "UtcTime", "ProcessGuid", "ProcessId", "Image", "Type", "User"]),
    (26, &[
        "RuleName", "UtcTime", "ProcessGuid", "ProcessId", "User", "Image", "TargetFilename",
        "Hashes", "IsExecutable",
    ]),
    (27, &[
        "RuleName", "UtcTime", "ProcessGuid", "ProcessId", "User", "Image", "TargetFilename",
        "Hashes",
    ]),
    (28, &[
        "RuleName", "UtcTime", "ProcessGuid", "ProcessId", "User", "Image", "TargetFilename",
        "Hashes", "IsExecutable",
    ]),
    (29, &[
        "RuleName", "UtcTime", "ProcessGuid", "ProcessId", "User", "Image", "TargetFilename",
        "Hashes",
    ]),
    (255, &["UtcTime", "ID", "Description"]),
];

/// Sysmon event 10's EventData names that Elastic's Sysmon ingest pipeline renames
/// (`SEMANTICS.md`): they become these ECS columns instead of `winlog.event_data.*`.
pub const SYSMON_EVENT10_RENAMES: &[(&str, Rename)] = &[
    ("SourceImage", Rename::Executable),
    ("SourceProcessGUID", Rename::EntityId),
    ("SourceProcessId", Rename::Pid),
    ("SourceThreadId", Rename::ThreadId),
];

/// Where a renamed Sysmon event 10 value goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rename {
    /// `process.executable` (Utf8)
    Executable,
    /// `process.entity_id` (Utf8)
    EntityId,
    /// `process.pid` (Int64)
    Pid,
    /// `process.thread.id` (Int64)
    ThreadId,
}

/// Provider and channel that mark a Sysmon record (ASCII case-insensitive, either one).
pub const SYSMON_PROVIDER: &str = "Microsoft-Windows-Sysmon";
pub const SYSMON_CHANNEL: &str = "Microsoft-Windows-Sysmon/Operational";

/// Column names, in schema order up to the Sysmon EventData columns.
pub const TIMESTAMP: &str = "@timestamp";
pub const EVENT_CODE: &str = "event.code";
pub const EVENT_CATEGORY: &str = "event.category";
pub const HOST_NAME: &str = "host.name";
pub const HOST_OS_TYPE: &str = "host.os.type";
pub const PROCESS_EXECUTABLE: &str = "process.executable";
pub const PROCESS_ENTITY_ID: &str = "process.entity_id";
pub const PROCESS_PID: &str = "process.pid";
pub const PROCESS_THREAD_ID: &str = "process.thread.id";
pub const EVENT_ID: &str = "winlog.event_id";
pub const RECORD_ID: &str = "winlog.record_id";
pub const CHANNEL: &str = "winlog.channel";
pub const PROVIDER_NAME: &str = "winlog.provider_name";
pub const PROVIDER_GUID: &str = "winlog.provider_guid";
pub const KEYWORDS: &str = "winlog.keywords";
pub const LEVEL: &str = "winlog.level";
pub const TASK: &str = "winlog.task";
pub const OPCODE: &str = "winlog.opcode";
pub const VERSION: &str = "winlog.version";
pub const EXECUTION_PID: &str = "winlog.process.pid";
pub const EXECUTION_TID: &str = "winlog.process.thread.id";
pub const USER_ID: &str = "winlog.user.identifier";
/// Prefix of the Sysmon EventData columns.
pub const EVENT_DATA_PREFIX: &str = "winlog.event_data.";
/// Every EventData / UserData value no typed column holds, as one compact JSON object.
pub const EVENT_DATA_OTHER: &str = "winlog.event_data_other";
pub const FILE_PATH: &str = "log.file.path";
pub const RECORD_NUMBER: &str = "callsweep.evtx.record_number";
pub const CHUNK: &str = "callsweep.evtx.chunk";

/// The schema's columns, computed once.
pub(crate) struct Layout {
    pub schema: SchemaRef,
    /// Names of the Sysmon EventData columns (`winlog.event_data.<name>`), in schema order.
    pub sysmon_names: Vec<&'static str>,
    sysmon_index: HashMap<&'static str, u16>,
}

impl Layout {
    pub fn get() -> &'static Layout {
        static LAYOUT: OnceLock<Layout> = OnceLock::new();
        LAYOUT.get_or_init(Layout::build)
    }

    fn build() -> Layout {
        let mut sysmon_names: Vec<&'static str> = Vec::new();
        for &(event, names) in SYSMON_EVENT_DATA {
            for &name in names {
                let renamed = event == 10 && SYSMON_EVENT10_RENAMES.iter().any(|(n, _)| *n == name);
                if !renamed && !sysmon_names.contains(&name) {
                    sysmon_names.push(name);
                }
            }
        }
        let sysmon_index = sysmon_names
            .iter()
            .enumerate()
            .map(|(i, n)| (*n, i as u16))
            .collect();

        let utf8 = |name: &str| Field::new(name, DataType::Utf8, true);
        let dict = |name: &str| {
            Field::new(
                name,
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
                true,
            )
        };
        let int32 = |name: &str| Field::new(name, DataType::Int32, true);
        let int64 = |name: &str| Field::new(name, DataType::Int64, true);

        let mut fields = vec![
            Field::new(
                TIMESTAMP,
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            utf8(EVENT_CODE),
            Field::new(
                EVENT_CATEGORY,
                DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))),
                true,
            ),
            dict(HOST_NAME),
            utf8(HOST_OS_TYPE),
            utf8(PROCESS_EXECUTABLE),
            utf8(PROCESS_ENTITY_ID),
            int64(PROCESS_PID),
            int64(PROCESS_THREAD_ID),
            int32(EVENT_ID),
            int64(RECORD_ID),
            dict(CHANNEL),
            dict(PROVIDER_NAME),
            utf8(PROVIDER_GUID),
            utf8(KEYWORDS),
            int32(LEVEL),
            int32(TASK),
            int32(OPCODE),
            int32(VERSION),
            int64(EXECUTION_PID),
            int64(EXECUTION_TID),
            utf8(USER_ID),
        ];
        for name in &sysmon_names {
            fields.push(utf8(&format!("{EVENT_DATA_PREFIX}{name}")));
        }
        fields.push(utf8(EVENT_DATA_OTHER));
        fields.push(utf8(FILE_PATH));
        fields.push(Field::new(RECORD_NUMBER, DataType::Int64, false));
        fields.push(Field::new(CHUNK, DataType::Int32, false));

        Layout {
            schema: Arc::new(Schema::new(fields)),
            sysmon_names,
            sysmon_index,
        }
    }

    /// What a Sysmon EventData name maps to (independent of the event id).
    pub fn name_info(&self, name: &str) -> NameInfo {
        NameInfo {
            column: self.sysmon_index.get(name).copied(),
            rename10: SYSMON_EVENT10_RENAMES
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, r)| *r),
        }
    }
}

/// Where a Sysmon EventData name can go: its `winlog.event_data.<name>` column (an index into
/// [`Layout::sysmon_names`]) and, in event 10, its ECS rename.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct NameInfo {
    pub column: Option<u16>,
    pub rename10: Option<Rename>,
}

/// Where an EventData value of a Sysmon record goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// `winlog.event_data.<name>`: index into [`Layout::sysmon_names`].
    Column(u16),
    /// One of event 10's ECS renames.
    Rename(Rename),
    /// `winlog.event_data_other`.
    Other,
}

impl NameInfo {
    pub fn target(self, event_id: Option<i64>) -> Target {
        match (self.rename10, self.column) {
            (Some(rename), _) if event_id == Some(10) => Target::Rename(rename),
            (_, Some(column)) => Target::Column(column),
            _ => Target::Other,
        }
    }
}

/// The schema of every batch [`crate::evtx::EvtxBatches`] yields.
pub fn evtx_schema() -> SchemaRef {
    Layout::get().schema.clone()
}
