//! One record on its way into the columns.
//!
//! Both ways of reading a record (the template fast path and the JSON path) only fill a [`Row`]
//! with the same kind of values ([`Val`]: what the record's JSON rendering would hold); one
//! function, [`Row::commit`], decides the columns, so the two ways give the same rows.

use super::columns::Columns;
use super::schema::{Layout, NameInfo, Rename, Target, SYSMON_CHANNEL, SYSMON_PROVIDER};
use super::text::push_json_str;

/// A span of [`Row::text`].
pub(crate) type Span = (u32, u32);

/// A value, as the evtx crate's JSON rendering of the record has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Val {
    /// JSON `null`: an empty element or a NULL substitution.
    Null,
    /// A string (unescaped). Never empty: an empty string is `Null`.
    Text(Span),
    /// A number, as its decimal text.
    Num(Span),
    Bool(bool),
    /// An object or array: its compact JSON text.
    Raw(Span),
}

/// The System fields with a column of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SysField {
    ProviderName,
    ProviderGuid,
    EventId,
    Version,
    Level,
    Task,
    Opcode,
    Keywords,
    SystemTime,
    RecordId,
    ExecPid,
    ExecTid,
    Channel,
    Computer,
    UserId,
    /// Kept in `winlog.event_data_other` as `"System.<path>"`.
    Other,
}

impl SysField {
    /// The field at `path` under System: an element name, or `element.attribute`.
    pub fn of(path: &str) -> SysField {
        match path {
            "Provider.Name" => SysField::ProviderName,
            "Provider.Guid" => SysField::ProviderGuid,
            "EventID" => SysField::EventId,
            "Version" => SysField::Version,
            "Level" => SysField::Level,
            "Task" => SysField::Task,
            "Opcode" => SysField::Opcode,
            "Keywords" => SysField::Keywords,
            "TimeCreated.SystemTime" => SysField::SystemTime,
            "EventRecordID" => SysField::RecordId,
            "Execution.ProcessID" => SysField::ExecPid,
            "Execution.ThreadID" => SysField::ExecTid,
            "Channel" => SysField::Channel,
            "Computer" => SysField::Computer,
            "Security.UserID" => SysField::UserId,
            _ => SysField::Other,
        }
    }
}

/// An EventData / UserData value (or a System value no column holds).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Item {
    pub key: Span,
    pub val: Val,
    /// A System value (its key is `System.<path>`): never a Sysmon column.
    pub system: bool,
    /// The Sysmon mapping of the key, when the caller already knows it.
    pub info: Option<NameInfo>,
}

/// The values of one record.
#[derive(Default)]
pub(crate) struct Row {
    /// Backing text of every span.
    pub text: String,
    pub items: Vec<Item>,
    /// Microseconds since the epoch, from System/TimeCreated/@SystemTime.
    pub timestamp: Option<i64>,
    /// From the EVTX record header: used when the record has no usable SystemTime.
    pub header_timestamp: Option<i64>,
    pub event_id: Option<i64>,
    pub record_id: Option<i64>,
    pub version: Option<i64>,
    pub level: Option<i64>,
    pub task: Option<i64>,
    pub opcode: Option<i64>,
    pub exec_pid: Option<i64>,
    pub exec_tid: Option<i64>,
    pub provider_name: Option<Span>,
    pub provider_guid: Option<Span>,
    pub keywords: Option<Span>,
    pub channel: Option<Span>,
    pub computer: Option<Span>,
    pub user_id: Option<Span>,
    pub record_number: i64,
    pub chunk: i32,
    /// Scratch: the items that go to the `winlog.event_data_other` object.
    others: Vec<u32>,
}

impl Row {
    /// Empties the row for a new record.
    pub fn clear(&mut self) {
        self.text.clear();
        self.items.clear();
        self.timestamp = None;
        self.header_timestamp = None;
        self.event_id = None;
        self.record_id = None;
        self.version = None;
        self.level = None;
        self.task = None;
        self.opcode = None;
        self.exec_pid = None;
        self.exec_tid = None;
        self.provider_name = None;
        self.provider_guid = None;
        self.keywords = None;
        self.channel = None;
        self.computer = None;
        self.user_id = None;
    }

    pub fn get(&self, span: Span) -> &str {
        &self.text[span.0 as usize..span.1 as usize]
    }

    /// Stores `s` in the row's text.
    pub fn push_str(&mut self, s: &str) -> Span {
        let start = self.text.len() as u32;
        self.text.push_str(s);
        (start, self.text.len() as u32)
    }

    /// The span of what was written to `text` since `start`.
    pub fn span_from(&self, start: usize) -> Span {
        (start as u32, self.text.len() as u32)
    }

    /// A text value: `Null` when empty.
    pub fn text_val(&mut self, s: &str) -> Val {
        if s.is_empty() {
            Val::Null
        } else {
            Val::Text(self.push_str(s))
        }
    }

    /// An EventData / UserData (or other Event part) value named `key`.
    pub fn push_item(&mut self, key: &str, val: Val, info: Option<NameInfo>) {
        let key = self.push_str(key);
        self.items.push(Item {
            key,
            val,
            system: false,
            info,
        });
    }

    /// A System value at `path` (`Element` or `Element.attribute`), which `field` names.
    pub fn set_system(&mut self, field: SysField, path: &str, val: Val) {
        if val == Val::Null {
            return;
        }
        let kept = match field {
            SysField::ProviderName => set_text(&mut self.provider_name, val),
            SysField::ProviderGuid => set_text(&mut self.provider_guid, val),
            SysField::Keywords => set_text(&mut self.keywords, val),
            SysField::Channel => set_text(&mut self.channel, val),
            SysField::Computer => set_text(&mut self.computer, val),
            SysField::UserId => set_text(&mut self.user_id, val),
            SysField::EventId => set_int(&self.text, &mut self.event_id, val, true),
            SysField::Version => set_int(&self.text, &mut self.version, val, true),
            SysField::Level => set_int(&self.text, &mut self.level, val, true),
            SysField::Task => set_int(&self.text, &mut self.task, val, true),
            SysField::Opcode => set_int(&self.text, &mut self.opcode, val, true),
            SysField::RecordId => set_int(&self.text, &mut self.record_id, val, false),
            SysField::ExecPid => set_int(&self.text, &mut self.exec_pid, val, false),
            SysField::ExecTid => set_int(&self.text, &mut self.exec_tid, val, false),
            SysField::SystemTime => match val {
                Val::Text(span) if self.timestamp.is_none() => {
                    self.timestamp = parse_timestamp(self.get(span));
                    self.timestamp.is_some()
                }
                _ => false,
            },
            SysField::Other => false,
        };
        if !kept {
            let start = self.text.len();
            self.text.push_str("System.");
            self.text.push_str(path);
            let key = self.span_from(start);
            self.items.push(Item {
                key,
                val,
                system: true,
                info: None,
            });
        }
    }

    /// Writes the row into `cols` (one more row).
    pub fn commit(&mut self, cols: &mut Columns) {
        let layout = Layout::get();
        let r = cols.rows;
        let text = &self.text;
        let get = |span: Span| &text[span.0 as usize..span.1 as usize];

        let sysmon = self
            .provider_name
            .is_some_and(|s| get(s).eq_ignore_ascii_case(SYSMON_PROVIDER))
            || self
                .channel
                .is_some_and(|s| get(s).eq_ignore_ascii_case(SYSMON_CHANNEL));

        if let Some(ts) = self.timestamp.or(self.header_timestamp) {
            cols.timestamp.push(r, ts);
        }
        if let Some(id) = self.event_id {
            cols.event_id.push(r, id as i32);
            let mut buf = itoa_buf();
            cols.event_code.push(r, fmt_i64(&mut buf, id));
        }
        cols.category_process
            .push(sysmon && self.event_id == Some(10));
        if let Some(s) = self.computer {
            cols.host_name.push(r, get(s));
        }
        if let Some(v) = self.record_id {
            cols.record_id.push(r, v);
        }
        if let Some(s) = self.channel {
            cols.channel.push(r, get(s));
        }
        if let Some(s) = self.provider_name {
            cols.provider_name.push(r, get(s));
        }
        if let Some(s) = self.provider_guid {
            cols.provider_guid.push(r, get(s));
        }
        if let Some(s) = self.keywords {
            cols.keywords.push(r, get(s));
        }
        for (value, col) in [
            (self.level, &mut cols.level),
            (self.task, &mut cols.task),
            (self.opcode, &mut cols.opcode),
            (self.version, &mut cols.version),
        ] {
            if let Some(v) = value {
                col.push(r, v as i32);
            }
        }
        if let Some(v) = self.exec_pid {
            cols.exec_pid.push(r, v);
        }
        if let Some(v) = self.exec_tid {
            cols.exec_tid.push(r, v);
        }
        if let Some(s) = self.user_id {
            cols.user_id.push(r, get(s));
        }

        // The values no column holds go to the JSON object of the others, written straight
        // into its column (it holds whole UserData renderings: copies of them cost).
        let others = &mut self.others;
        others.clear();
        for (i, item) in self.items.iter().enumerate() {
            if sysmon && !item.system {
                let info = item.info.unwrap_or_else(|| layout.name_info(get(item.key)));
                if place_sysmon(cols, r, info.target(self.event_id), item.val, &get) {
                    continue;
                }
            }
            others.push(i as u32);
        }
        if !others.is_empty() {
            let items = &self.items;
            cols.other.push_built(r, |other| {
                for (n, &i) in others.iter().enumerate() {
                    let item = &items[i as usize];
                    other.push(if n == 0 { '{' } else { ',' });
                    push_json_str(other, get(item.key));
                    other.push(':');
                    match item.val {
                        Val::Null => other.push_str("null"),
                        Val::Text(s) => push_json_str(other, get(s)),
                        Val::Num(s) | Val::Raw(s) => other.push_str(get(s)),
                        Val::Bool(b) => other.push_str(if b { "true" } else { "false" }),
                    }
                }
                other.push('}');
                true
            });
        }
        cols.record_number.push(self.record_number);
        cols.chunk.push(self.chunk);
        cols.rows += 1;
    }
}

/// Puts a Sysmon EventData value in its column; false when it belongs in the JSON of the
/// others (no column, or a value the column can't hold). Empty and `-` values are dropped, as
/// the ingest pipeline drops them.
fn place_sysmon<'t>(
    cols: &mut Columns,
    r: usize,
    target: Target,
    val: Val,
    get: &impl Fn(Span) -> &'t str,
) -> bool {
    let text = match val {
        Val::Null => return true,
        Val::Text(s) | Val::Num(s) => get(s),
        Val::Bool(b) => {
            if b {
                "true"
            } else {
                "false"
            }
        }
        Val::Raw(_) => return false,
    };
    if text.is_empty() || text == "-" {
        return true;
    }
    match target {
        Target::Column(i) => cols.sysmon[i as usize].push(r, text),
        Target::Rename(Rename::Executable) => cols.executable.push(r, text),
        Target::Rename(Rename::EntityId) => cols.entity_id.push(r, text),
        Target::Rename(Rename::Pid) => parse_int(text).is_some_and(|v| cols.pid.push(r, v)),
        Target::Rename(Rename::ThreadId) => {
            parse_int(text).is_some_and(|v| cols.thread_id.push(r, v))
        }
        Target::Other => false,
    }
}

fn set_text(slot: &mut Option<Span>, val: Val) -> bool {
    match val {
        Val::Text(s) | Val::Num(s) if slot.is_none() => {
            *slot = Some(s);
            true
        }
        _ => false,
    }
}

fn set_int(text: &str, slot: &mut Option<i64>, val: Val, int32: bool) -> bool {
    let parsed = match val {
        Val::Text(s) | Val::Num(s) => parse_int(&text[s.0 as usize..s.1 as usize]),
        _ => None,
    };
    match parsed {
        Some(v) if slot.is_none() && (!int32 || i32::try_from(v).is_ok()) => {
            *slot = Some(v);
            true
        }
        _ => false,
    }
}

/// A decimal integer (surrounding whitespace allowed).
pub(crate) fn parse_int(s: &str) -> Option<i64> {
    // Nearly always the digits that `value_val` wrote for a System value (half a million a
    // 64 MiB log): read in one pass; 18 digits cannot overflow.
    let b = s.as_bytes();
    if !b.is_empty() && b.len() <= 18 && b.iter().all(u8::is_ascii_digit) {
        return Some(b.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')));
    }
    s.trim().parse().ok()
}

pub(crate) fn itoa_buf() -> [u8; 20] {
    [0; 20]
}

/// `v` in decimal.
pub(crate) fn fmt_i64(buf: &mut [u8; 20], v: i64) -> &str {
    let mut n = v.unsigned_abs();
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    std::str::from_utf8(&buf[i..]).expect("ASCII digits")
}

/// Microseconds since the epoch of `YYYY-MM-DDTHH:MM:SS[.fraction][Z]`, the form the evtx
/// crate renders FILETIME and SYSTEMTIME values in (always UTC).
pub(crate) fn parse_timestamp(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    if b[16] != b':' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = &b[range];
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(
            digits
                .iter()
                .fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0')),
        )
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 {
        return None;
    }
    let mut rest = &b[19..];
    let mut micros = 0i64;
    if let [b'.', tail @ ..] = rest {
        let digits = tail.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        for i in 0..6 {
            micros = micros * 10
                + tail
                    .get(i)
                    .filter(|_| i < digits)
                    .map_or(0, |d| i64::from(d - b'0'));
        }
        rest = &tail[digits..];
    }
    if !(rest.is_empty() || rest == b"Z") {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3_600 + minute * 60 + second;
    Some(secs * 1_000_000 + micros)
}

/// Days from 1970-01-01 to the proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_read_as_rust_reads_them_trimmed() {
        let cases = [
            "0",
            "7",
            "007",
            "4294967295",
            "999999999999999999",
            "9223372036854775807",
            "9223372036854775808",
            "99999999999999999999",
            " 12 ",
            "-5",
            "+5",
            "",
            " ",
            "1a",
            "0x10",
            "1.0",
            "\u{0661}",
        ];
        for case in cases {
            assert_eq!(parse_int(case), case.trim().parse::<i64>().ok(), "{case:?}");
        }
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_timestamp("2020-06-30T20:50:25.5467139Z"),
            Some(1_593_550_225_546_713)
        );
        assert_eq!(
            parse_timestamp("1601-01-01T00:00:00.0000000Z"),
            Some(-11_644_473_600_000_000)
        );
        assert_eq!(parse_timestamp("2020-06-30 20:50:25.546"), None);
        assert_eq!(parse_timestamp("2020-13-30T20:50:25Z"), None);
    }

    #[test]
    fn integers() {
        let mut buf = itoa_buf();
        assert_eq!(fmt_i64(&mut buf, 0), "0");
        assert_eq!(fmt_i64(&mut buf, -42), "-42");
        assert_eq!(fmt_i64(&mut buf, i64::MIN), i64::MIN.to_string());
    }
}
