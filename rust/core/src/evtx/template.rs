//! The fast way of reading a record: straight from its BinXML template substitution values.
//!
//! A record is (almost always) a BinXML template instance: a reference to a template definition
//! stored once in the chunk, plus the record's substitution values; Windows puts the EventData
//! in a nested instance, carried by one substitution of the record's instance. The evtx crate
//! parses all this, but keeps its model private (the public `EvtxRecord::template_instances`
//! has the values of the record's own instance only, not the nested EventData, nor the names
//! the values go by). So this module reads the layout itself (MS-EVEN6: template instance =
//! definition offset, value descriptors, values), from the chunk's bytes: each template
//! definition once per chunk, to learn which substitution fills which System field and which
//! named `Data` element, then each record's values. Nothing is rendered as text and parsed
//! back.
//!
//! It reads only records of chunks the crate has parsed (their headers and string tables), and
//! takes only the plain shape: `Event` holding `System` and an `EventData` of uniquely named `Data`
//! elements (direct, or nested in a substitution), each with one literal or one substitution, or a
//! `UserData` of the shapes `user_data.rs` renders (direct, or nested; the BinXML values inside it
//! one level deep); values of plain types (strings, integers, GUIDs, SIDs, times, hex numbers,
//! binary) whose sizes are exactly right. Anything else (positional or repeated `Data`, arrays,
//! floats, ANSI strings, ...) makes [`read_template`] decline, and the record goes the JSON way
//! (`json.rs`), which reads whatever the crate renders. Values are converted to exactly what the
//! crate's JSON rendering holds (same text for GUIDs, SIDs, times, hex numbers; empty strings as
//! null; a NULL substitution leaves out the elements that depend on it); the tests check that both
//! ways give the same rows for every record of every sample file.

use std::collections::HashMap;

use evtx::binxml::value_variant::SysTime;

use super::row::{Row, SysField, Val};
use super::schema::{Layout, NameInfo};
use super::text::{
    push_guid, push_hex_bytes_upper, push_hex_prefixed, push_i64, push_padded, push_u64,
    push_utf16, units_before_nul,
};
use super::user_data::{self, push_user_data, Json, RawRoot};

/// Where a value comes from in a template definition.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Src {
    /// Nothing: JSON `null`.
    Empty,
    /// Literal text of the definition.
    Text(Box<str>),
    /// Substitution `n` of the instance.
    Subst(u16),
}

#[derive(Debug)]
pub(super) struct SysSlot {
    field: SysField,
    path: Box<str>,
    src: Src,
    /// The substitution whose NULL leaves the element out.
    dependency: Option<u16>,
}

#[derive(Debug)]
struct DataSlot {
    name: Box<str>,
    info: NameInfo,
    src: Src,
    dependency: Option<u16>,
}

#[derive(Debug)]
pub(super) struct EventData {
    dependency: Option<u16>,
    data: Vec<DataSlot>,
}

/// How to read the records of one template definition.
#[derive(Debug)]
pub(super) enum Plan {
    /// `<Event>`: System, then EventData (in the definition, or nested in a substitution).
    Event {
        dependency: Option<u16>,
        system: Vec<SysSlot>,
        event_data: Option<EventData>,
        /// `<UserData>` in the definition itself, rendered as JSON (`json_value`).
        user_data: Option<Element>,
        nested: Option<u16>,
    },
    /// `<EventData>`: the definition of a nested instance.
    EventData(EventData),
    /// Any other root: the definition of a nested instance that UserData holds (or the
    /// record's `<UserData>` itself), rendered as JSON where it is used.
    Fragment(Element),
}

/// A nested BinXML value inside UserData: the substitution it is the value of (in the values
/// of `scope`: 0 the record's, 1 the nested instance's), and what it holds.
#[derive(Debug, Clone, Copy)]
pub(super) struct FragmentUse {
    pub scope: u8,
    pub subst: u16,
    pub source: FragmentSource,
}

#[derive(Debug, Clone, Copy)]
pub(super) enum FragmentSource {
    /// A template instance: its plan, and where its values are in
    /// `TemplateCache::fragment_values`.
    Template { plan: usize, values: (usize, usize) },
    /// Elements written out (no template), rendered already: a range of
    /// `TemplateCache::raw_roots`.
    Raw(usize, usize),
}

/// A substitution value: its type and where its bytes are in the chunk.
#[derive(Debug, Clone, Copy)]
pub(super) struct Value {
    pub ty: u8,
    pub at: usize,
    pub size: usize,
}

/// The plans of template definitions, and reused buffers.
///
/// A chunk holds each definition it uses once; the next chunk holds them again (at other
/// offsets, with the names in its own string table). So plans are kept by signature (the
/// definition's tokens with the names spelled out, from which the plan follows), and each
/// chunk's definitions are matched to them by offset.
#[derive(Default)]
pub(crate) struct TemplateCache {
    /// This chunk's definitions: offset -> index into `plans`.
    offsets: HashMap<u32, usize>,
    /// Definitions by signature: index into `plans`.
    known: HashMap<Box<[u8]>, usize>,
    /// `None`: a definition the fast path does not take.
    plans: Vec<Option<Plan>>,
    signature: Vec<u8>,
    values: Vec<Value>,
    nested_values: Vec<Value>,
    /// The nested instances UserData holds, for the record being read.
    fragments: Vec<FragmentUse>,
    fragment_values: Vec<Value>,
    raw_roots: Vec<RawRoot>,
    /// The names and JSON values of `raw_roots`.
    raw_json: String,
    instance_values: Vec<Value>,
    /// A string value's text, before it is escaped into JSON.
    scratch: String,
    /// The keys of the element names that this chunk's BinXML values write out.
    name_keys: user_data::NameKeys,
}

/// Plans kept at most (a bound on memory, whatever the input).
const MAX_PLANS: usize = 4096;

impl TemplateCache {
    /// Starts a chunk: its offsets are its own.
    pub fn clear(&mut self) {
        self.offsets.clear();
        self.name_keys.clear();
        if self.plans.len() > MAX_PLANS {
            self.known.clear();
            self.plans.clear();
        }
    }
}

/// The index (into `plans`) of the plan of the definition at `def` in the chunk `data`.
fn plan_index(
    offsets: &mut HashMap<u32, usize>,
    known: &mut HashMap<Box<[u8]>, usize>,
    plans: &mut Vec<Option<Plan>>,
    signature: &mut Vec<u8>,
    data: &[u8],
    def: u32,
) -> usize {
    if let Some(&index) = offsets.get(&def) {
        return index;
    }
    let index = if definition_signature(data, def, signature).is_some() {
        match known.get(signature.as_slice()) {
            Some(&index) => index,
            None => {
                plans.push(plan_of(data, def));
                known.insert(signature.as_slice().into(), plans.len() - 1);
                plans.len() - 1
            }
        }
    } else {
        plans.push(None);
        plans.len() - 1
    };
    offsets.insert(def, index);
    index
}

pub(super) const NULL: u8 = 0x00;
pub(super) const BIN_XML: u8 = 0x21;

/// Reads a record into `row` from its template values; false when the record is not of a shape
/// this path takes (the row may then hold part of it and must be cleared).
pub(crate) fn read_template(
    data: &[u8],
    start: usize,
    end: usize,
    cache: &mut TemplateCache,
    row: &mut Row,
) -> bool {
    read(data, start, end, cache, row).is_some()
}

/// Reads the record whose BinXML is `data[start..end]` (`data`: its chunk).
fn read(
    data: &[u8],
    start: usize,
    end: usize,
    cache: &mut TemplateCache,
    row: &mut Row,
) -> Option<()> {
    let TemplateCache {
        offsets,
        known,
        plans,
        signature,
        values,
        nested_values,
        fragments,
        fragment_values,
        raw_roots,
        raw_json,
        instance_values,
        scratch,
        name_keys,
    } = cache;
    let def = read_instance(data, start, end, values)?;
    let outer = plan_index(offsets, known, plans, signature, data, def);
    let Some(Plan::Event {
        dependency,
        nested,
        user_data,
        ..
    }) = &plans[outer]
    else {
        return None;
    };
    if left_out(values, *dependency)? {
        return None; // no Event at all: leave it to the JSON way
    }
    let nested = *nested;
    let outer_user_data = user_data.is_some();
    let inner = match nested {
        None => None,
        Some(n) => {
            let value = *values.get(usize::from(n))?;
            match value.ty {
                NULL => None,
                BIN_XML => {
                    let def = read_instance(data, value.at, value.at + value.size, nested_values)?;
                    Some(plan_index(offsets, known, plans, signature, data, def))
                }
                _ => return None,
            }
        }
    };
    let inner_user_data = inner.is_some_and(
        |i| matches!(&plans[i], Some(Plan::Fragment(root)) if root.name == "UserData"),
    );
    // Nested BinXML only where the EventData or UserData is expected, and inside UserData:
    // there, nested instances one level deep.
    fragments.clear();
    fragment_values.clear();
    raw_roots.clear();
    raw_json.clear();
    for (scope, scope_values, takes) in [
        (0, &*values, outer_user_data),
        (1, &*nested_values, inner_user_data),
    ] {
        if scope == 1 && inner.is_none() {
            break;
        }
        for (i, value) in scope_values.iter().enumerate() {
            if value.ty != BIN_XML || (scope == 0 && Some(i) == nested.map(usize::from)) {
                continue;
            }
            if !takes {
                return None;
            }
            let (at, end) = (value.at, value.at + value.size);
            let source = match read_instance(data, at, end, instance_values) {
                Some(def) => {
                    if instance_values.iter().any(|v| v.ty == BIN_XML) {
                        return None;
                    }
                    let plan = plan_index(offsets, known, plans, signature, data, def);
                    let Some(Plan::Fragment(root)) = &plans[plan] else {
                        return None;
                    };
                    if !user_data::fragment_root_renders(root) {
                        return None;
                    }
                    let at = fragment_values.len();
                    fragment_values.extend_from_slice(instance_values);
                    FragmentSource::Template {
                        plan,
                        values: (at, fragment_values.len()),
                    }
                }
                None => {
                    let first = raw_roots.len();
                    user_data::render_raw(data, at, end, raw_json, raw_roots, scratch, name_keys)?;
                    FragmentSource::Raw(first, raw_roots.len())
                }
            };
            fragments.push(FragmentUse {
                scope,
                subst: i as u16,
                source,
            });
        }
    }
    let Some(Plan::Event {
        system,
        event_data,
        user_data,
        ..
    }) = &plans[outer]
    else {
        return None;
    };
    for slot in system {
        if left_out(values, slot.dependency)? {
            continue;
        }
        let val = resolve(row, data, values, &slot.src)?;
        row.set_system(slot.field, &slot.path, val);
    }
    if let Some(event_data) = event_data {
        read_event_data(row, data, values, event_data)?;
    }
    let json = Json {
        data,
        plans,
        fragments,
        fragment_values,
        raw_roots,
        raw_json,
    };
    if let Some(element) = user_data {
        if !left_out(values, element.dependency)? {
            push_user_data(row, &json, element, values, 0, scratch)?;
        }
    }
    if let Some(inner) = inner {
        match &plans[inner] {
            Some(Plan::EventData(event_data)) => {
                read_event_data(row, data, nested_values, event_data)?;
            }
            Some(Plan::Fragment(root)) if inner_user_data => {
                push_user_data(row, &json, root, nested_values, 1, scratch)?;
            }
            _ => return None,
        }
    }
    Some(())
}

fn read_event_data(
    row: &mut Row,
    data: &[u8],
    values: &[Value],
    event_data: &EventData,
) -> Option<()> {
    if left_out(values, event_data.dependency)? {
        return Some(());
    }
    for slot in &event_data.data {
        if left_out(values, slot.dependency)? {
            continue;
        }
        let val = resolve(row, data, values, &slot.src)?;
        row.push_item(&slot.name, val, Some(slot.info));
    }
    Some(())
}

/// Whether the element depending on `dependency` is left out (its value is NULL).
pub(super) fn left_out(values: &[Value], dependency: Option<u16>) -> Option<bool> {
    match dependency {
        None => Some(false),
        Some(d) => values.get(usize::from(d)).map(|v| v.ty == NULL),
    }
}

fn resolve(row: &mut Row, data: &[u8], values: &[Value], src: &Src) -> Option<Val> {
    match src {
        Src::Empty => Some(Val::Null),
        Src::Text(t) => Some(row.text_val(t)),
        Src::Subst(i) => value_val(row, data, values.get(usize::from(*i))?),
    }
}

/// Reads the template instance that `data[start..end]` holds (a fragment header, the instance,
/// then nothing or EOF): its values' descriptors go into `values`; returns the offset of its
/// template definition.
fn read_instance(data: &[u8], start: usize, end: usize, values: &mut Vec<Value>) -> Option<u32> {
    let mut r = Reader {
        data,
        pos: start,
        end: end.min(data.len()),
    };
    if r.peek()? == 0x0f {
        r.take(4)?;
    }
    if r.u8()? != 0x0c {
        return None;
    }
    r.u8()?; // unknown
    r.u32()?; // template id
    let def = r.u32()?;
    if def as usize == r.pos {
        // The definition is stored here, on its first use in the chunk.
        r.take(4 + 16)?;
        let size = r.u32()? as usize;
        r.take(size)?;
    }
    let count = r.u32()? as usize;
    values.clear();
    let descriptors = r.take(count.checked_mul(4)?)?;
    let mut at = r.pos;
    for d in descriptors.as_chunks::<4>().0 {
        let size = usize::from(u16::from_le_bytes([d[0], d[1]]));
        let value = Value { ty: d[2], at, size };
        at += size;
        if at > r.end || !plain_value(data, &value) {
            return None;
        }
        values.push(value);
    }
    r.pos = at;
    matches!(r.peek(), None | Some(0x00)).then_some(def)
}

/// Whether a value is of a type this path converts, with exactly the size of its type; every
/// value of an instance must be (used or not: the crate parses them all, and a value it may
/// reject is left to it). Nested BinXML is checked where it is expected.
fn plain_value(data: &[u8], value: &Value) -> bool {
    let size = value.size;
    match value.ty {
        NULL | 0x0e | BIN_XML => true,
        0x01 => size.is_multiple_of(2),
        0x03 | 0x04 => size == 1,
        0x05 | 0x06 => size == 2,
        0x07 | 0x08 | 0x0d | 0x14 => size == 4,
        0x09 | 0x0a | 0x11 | 0x15 => size == 8,
        0x0f | 0x12 => size == 16,
        0x10 => size == 4 || size == 8,
        0x13 => data
            .get(value.at + 1)
            .is_some_and(|&count| size == 8 + 4 * usize::from(count)),
        _ => false,
    }
}

/// Whether the crate knows a value type (a declared substitution type in a definition).
fn known_type(ty: u8) -> bool {
    matches!(ty, 0x00..=0x15 | 0x20 | 0x21 | 0x23 | 0x81..=0x95)
}

/// A substitution value as the crate's JSON rendering holds it; `None` for the types this path
/// leaves to the JSON way (arrays, nested BinXML, floats, ANSI strings, handles) and for sizes
/// that are not exactly the type's.
pub(super) fn value_val(row: &mut Row, data: &[u8], value: &Value) -> Option<Val> {
    let bytes = data.get(value.at..value.at + value.size)?;
    let start = row.text.len();
    let text = |row: &mut Row| {
        if row.text.len() == start {
            Val::Null
        } else {
            Val::Text(row.span_from(start))
        }
    };
    let num = |row: &mut Row, v: i64| {
        push_i64(&mut row.text, v);
        Val::Num(row.span_from(start))
    };
    fn le<const N: usize>(bytes: &[u8]) -> Option<[u8; N]> {
        bytes.try_into().ok()
    }
    Some(match value.ty {
        NULL => Val::Null,
        // UTF-16LE, cut at the first NUL
        0x01 => {
            if bytes.len() % 2 != 0 {
                return None;
            }
            let len = units_before_nul(bytes.as_chunks::<2>().0);
            push_utf16(&mut row.text, &bytes[..len * 2]);
            text(row)
        }
        0x03 => num(row, i64::from(i8::from_le_bytes(le(bytes)?))),
        0x04 => num(row, i64::from(u8::from_le_bytes(le(bytes)?))),
        0x05 => num(row, i64::from(i16::from_le_bytes(le(bytes)?))),
        0x06 => num(row, i64::from(u16::from_le_bytes(le(bytes)?))),
        0x07 => num(row, i64::from(i32::from_le_bytes(le(bytes)?))),
        0x08 => num(row, i64::from(u32::from_le_bytes(le(bytes)?))),
        0x09 => num(row, i64::from_le_bytes(le(bytes)?)),
        0x0a => {
            push_u64(&mut row.text, u64::from_le_bytes(le(bytes)?));
            Val::Num(row.span_from(start))
        }
        // A bool other than 0 or 1 stays the integer it is, as in the crate.
        0x0d => match i32::from_le_bytes(le(bytes)?) {
            0 => Val::Bool(false),
            1 => Val::Bool(true),
            other => num(row, i64::from(other)),
        },
        0x0e => {
            push_hex_bytes_upper(&mut row.text, bytes);
            text(row)
        }
        0x0f => {
            push_guid(&mut row.text, &le(bytes)?);
            text(row)
        }
        // SizeT: a hex number of its width; HexInt32 / HexInt64.
        0x10 | 0x14 | 0x15 => {
            let v = match (value.ty, bytes.len()) {
                (0x10 | 0x14, 4) => u64::from(u32::from_le_bytes(le(bytes)?)),
                (0x10 | 0x15, 8) => u64::from_le_bytes(le(bytes)?),
                _ => return None,
            };
            push_hex_prefixed(&mut row.text, v);
            text(row)
        }
        0x11 => {
            push_datetime(
                &mut row.text,
                filetime_fields(u64::from_le_bytes(le(bytes)?)),
            );
            text(row)
        }
        0x12 => {
            push_datetime(
                &mut row.text,
                systime_fields(&SysTime::from_bytes(&le(bytes)?)),
            );
            text(row)
        }
        0x13 => {
            let count = usize::from(*bytes.get(1)?);
            if bytes.len() != 8 + 4 * count {
                return None;
            }
            push_sid(&mut row.text, bytes);
            text(row)
        }
        _ => return None,
    })
}

/// A SID as `S-R-A-S1-...-Sn`, as the crate writes it.
fn push_sid(out: &mut String, bytes: &[u8]) {
    let &[revision, count, a0, a1, a2, a3, a4, a5, ref subs @ ..] = bytes else {
        out.push_str("S-?");
        return;
    };
    let authority = u64::from_be_bytes([0, 0, a0, a1, a2, a3, a4, a5]);
    out.push_str("S-");
    push_u64(out, u64::from(revision));
    out.push('-');
    push_u64(out, authority);
    for sub in subs.chunks_exact(4).take(usize::from(count)) {
        out.push('-');
        push_u64(
            out,
            u64::from(u32::from_le_bytes([sub[0], sub[1], sub[2], sub[3]])),
        );
    }
}

/// Year, month, day, hour, minute, second, 100 ns ticks.
type DateTime = (u64, u64, u64, u64, u64, u64, u64);

/// The date and time the crate renders for a FILETIME: years past 9999 keep their last four
/// digits, a value past `i64::MAX` is all zeros.
fn filetime_fields(ft: u64) -> DateTime {
    const TICKS_PER_SEC: u64 = 10_000_000;
    const TICKS_PER_DAY: u64 = 86_400 * TICKS_PER_SEC;
    if ft > i64::MAX as u64 {
        return (0, 0, 0, 0, 0, 0, 0);
    }
    let (days, ticks) = (ft / TICKS_PER_DAY, ft % TICKS_PER_DAY);
    // Days since 1601-01-01, counted from 0000-03-01 in eras of 400 years (Howard Hinnant's
    // `civil_from_days`), as the crate does.
    let z = days + 584_694;
    let (era, doe) = (z / 146_097, z % 146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = era * 400 + yoe + u64::from(month <= 2);
    let secs = ticks / TICKS_PER_SEC;
    (
        year % 10_000,
        month,
        day,
        secs / 3_600,
        secs / 60 % 60,
        secs % 60,
        ticks % TICKS_PER_SEC,
    )
}

/// The date and time the crate renders for a SYSTEMTIME (1601-01-01 when not valid).
fn systime_fields(st: &SysTime) -> DateTime {
    if !st.is_valid() {
        return (1601, 1, 1, 0, 0, 0, 0);
    }
    (
        u64::from(st.year % 10_000),
        u64::from(st.month),
        u64::from(st.day),
        u64::from(st.hour),
        u64::from(st.minute),
        u64::from(st.second),
        u64::from(st.milliseconds) * 10_000,
    )
}

fn push_datetime(out: &mut String, (y, mo, d, h, mi, s, ticks): DateTime) {
    // Every record has a time or two: written into a fixed buffer, digits from the right
    // (seven `push_padded` calls and six pushes were 4% of the decoder's instructions). A
    // field wider than its place (not a time these functions give) is written as
    // `push_padded` writes it.
    let fits = y < 10_000 && [mo, d, h, mi, s].iter().all(|&v| v < 100) && ticks < 10_000_000;
    if !fits {
        for (v, width, sep) in [
            (y, 4, '-'),
            (mo, 2, '-'),
            (d, 2, 'T'),
            (h, 2, ':'),
            (mi, 2, ':'),
            (s, 2, '.'),
        ] {
            push_padded(out, v, width);
            out.push(sep);
        }
        push_padded(out, ticks, 7);
        out.push('Z');
        return;
    }
    let mut text = *b"0000-00-00T00:00:00.0000000Z";
    for (v, range) in [
        (y, 0..4),
        (mo, 5..7),
        (d, 8..10),
        (h, 11..13),
        (mi, 14..16),
        (s, 17..19),
        (ticks, 20..27),
    ] {
        let mut v = v;
        for digit in text[range].iter_mut().rev() {
            *digit = b'0' + (v % 10) as u8;
            v /= 10;
        }
    }
    // SAFETY: the buffer is ASCII (digits and the separators above).
    unsafe { out.as_mut_vec() }.extend_from_slice(&text);
}

// ---- template definitions ----

/// Literal text or a substitution, in an attribute value or an element's content.
#[derive(Debug)]
pub(super) enum Content {
    Text(String),
    Subst(u16),
}

#[derive(Debug)]
pub(super) enum Child {
    Element(Element),
    Content(Content),
}

#[derive(Debug)]
pub(super) struct Element {
    pub name: String,
    pub dependency: Option<u16>,
    pub attrs: Vec<(String, Vec<Content>)>,
    pub children: Vec<Child>,
}

/// The plan for the definition at `offset` of the chunk, if it has the plain shape.
fn plan_of(data: &[u8], offset: u32) -> Option<Plan> {
    let root = parse_definition(data, offset)?;
    match root.name.as_str() {
        "Event" => {}
        "EventData" => return event_data_plan(&root).map(Plan::EventData),
        _ => return user_data::fragment_renders(&root).then_some(Plan::Fragment(root)),
    }
    let (mut system, mut event_data, mut user_data, mut nested) = (None, None, None, None);
    for child in root.children {
        let free = event_data.is_none() && user_data.is_none() && nested.is_none();
        match child {
            Child::Element(e) if e.name == "System" && system.is_none() => {
                system = Some(system_plan(&e)?);
            }
            Child::Element(e) if e.name == "EventData" && free => {
                event_data = Some(event_data_plan(&e)?);
            }
            // After System, as the crate's JSON has them (the row's values keep that order).
            Child::Element(e)
                if e.name == "UserData" && free && system.is_some() && user_data::renders(&e) =>
            {
                user_data = Some(e);
            }
            // A substitution whose value is a nested instance: the EventData (or UserData), in
            // Windows' logs.
            Child::Content(Content::Subst(n)) if free => {
                nested = Some(n);
            }
            _ => return None,
        }
    }
    Some(Plan::Event {
        dependency: root.dependency,
        system: system?,
        event_data,
        user_data,
        nested,
    })
}

fn system_plan(element: &Element) -> Option<Vec<SysSlot>> {
    if !element.attrs.is_empty() || element.dependency.is_some() {
        return None;
    }
    let mut slots = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    for child in &element.children {
        let Child::Element(field) = child else {
            return None;
        };
        if names.contains(&field.name.as_str()) {
            return None;
        }
        names.push(&field.name);
        for (attr, content) in &field.attrs {
            let path = format!("{}.{attr}", field.name);
            slots.push(SysSlot {
                field: SysField::of(&path),
                path: path.into(),
                src: single(content)?,
                dependency: field.dependency,
            });
        }
        let src = single(&contents(&field.children)?)?;
        if src != Src::Empty {
            slots.push(SysSlot {
                field: SysField::of(&field.name),
                path: field.name.as_str().into(),
                src,
                dependency: field.dependency,
            });
        }
    }
    Some(slots)
}

fn event_data_plan(element: &Element) -> Option<EventData> {
    if !element.attrs.is_empty() {
        return None;
    }
    let layout = Layout::get();
    let mut data: Vec<DataSlot> = Vec::new();
    for child in &element.children {
        let Child::Element(d) = child else {
            return None;
        };
        let [(attr, name)] = d.attrs.as_slice() else {
            return None;
        };
        let [Content::Text(name)] = name.as_slice() else {
            return None;
        };
        if d.name != "Data"
            || attr != "Name"
            || name.is_empty()
            || data.iter().any(|s| *s.name == **name)
        {
            return None;
        }
        data.push(DataSlot {
            name: name.as_str().into(),
            info: layout.name_info(name),
            src: single(&contents(&d.children)?)?,
            dependency: d.dependency,
        });
    }
    Some(EventData {
        dependency: element.dependency,
        data,
    })
}

/// The children, when they are all content (no element).
fn contents(children: &[Child]) -> Option<Vec<&Content>> {
    children
        .iter()
        .map(|c| match c {
            Child::Content(c) => Some(c),
            Child::Element(_) => None,
        })
        .collect()
}

/// The one piece of content (none: `Empty`); `None` for more than one.
fn single<C: std::borrow::Borrow<Content>>(content: &[C]) -> Option<Src> {
    Some(match content {
        [] => Src::Empty,
        [one] => match one.borrow() {
            Content::Text(t) if t.is_empty() => Src::Empty,
            Content::Text(t) => Src::Text(t.as_str().into()),
            Content::Subst(i) => Src::Subst(*i),
        },
        _ => return None,
    })
}

/// Reads BinXML of a chunk; every read is bounds-checked (`None` past the end).
pub(super) struct Reader<'a> {
    pub data: &'a [u8],
    pub pos: usize,
    pub end: usize,
}

impl<'a> Reader<'a> {
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        if end > self.end {
            return None;
        }
        let bytes = &self.data[self.pos..end];
        self.pos = end;
        Some(bytes)
    }
    pub fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    pub fn peek(&self) -> Option<u8> {
        (self.pos < self.end).then(|| self.data[self.pos])
    }
    pub fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }
    pub fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A name reference: an offset into the chunk's strings, with the string stored right
    /// here when the offset is where the reader is.
    fn name(&mut self) -> Option<String> {
        let offset = self.name_offset()?;
        utf16_strict(name_at(self.data, offset)?)
    }

    /// A name reference, skipping the string when it is stored right here: the offset of the
    /// name in the chunk.
    pub fn name_offset(&mut self) -> Option<usize> {
        let offset = self.u32()? as usize;
        if offset == self.pos {
            self.take(6)?; // next string offset, hash
            let chars = usize::from(self.u16()?);
            self.take(chars * 2 + 2)?;
        }
        Some(offset)
    }

    /// A literal value token's value: only UTF-16 strings are taken.
    fn value(&mut self) -> Option<String> {
        utf16_strict(self.text()?)
    }

    /// A literal value token's UTF-16 bytes, up to the first NUL (as the crate cuts them): only
    /// strings are taken.
    pub fn text(&mut self) -> Option<&'a [u8]> {
        if self.u8()? != 0x01 {
            return None;
        }
        let chars = usize::from(self.u16()?);
        let bytes = self.take(chars * 2)?;
        let len = units_before_nul(bytes.as_chunks::<2>().0);
        Some(&bytes[..len * 2])
    }

    fn substitution(&mut self) -> Option<u16> {
        let id = self.u16()?;
        let declared = self.u8()?;
        known_type(declared).then_some(id)
    }

    fn element(&mut self, token: u8, depth: usize) -> Option<Element> {
        if depth > 32 {
            return None;
        }
        let dependency = self.u16()?;
        self.u32()?; // data size
        let name = self.name()?;
        if token & 0x40 != 0 {
            self.u32()?; // attribute list size
        }
        let mut element = Element {
            name,
            dependency: (dependency != 0xffff).then_some(dependency),
            attrs: Vec::new(),
            children: Vec::new(),
        };
        loop {
            match self.u8()? {
                0x06 | 0x46 => {
                    let name = self.name()?;
                    let mut value = Vec::new();
                    loop {
                        match self.peek()? {
                            0x05 | 0x45 => {
                                self.pos += 1;
                                value.push(Content::Text(self.value()?));
                            }
                            0x0d | 0x0e => {
                                self.pos += 1;
                                value.push(Content::Subst(self.substitution()?));
                            }
                            _ => break,
                        }
                    }
                    element.attrs.push((name, value));
                }
                0x03 => return Some(element),
                0x02 => break,
                _ => return None,
            }
        }
        loop {
            match self.u8()? {
                token @ (0x01 | 0x41) => {
                    let child = self.element(token, depth + 1)?;
                    element.children.push(Child::Element(child));
                }
                0x05 | 0x45 => element
                    .children
                    .push(Child::Content(Content::Text(self.value()?))),
                0x0d | 0x0e => {
                    let id = self.substitution()?;
                    element.children.push(Child::Content(Content::Subst(id)));
                }
                0x04 => return Some(element),
                _ => return None,
            }
        }
    }
}

/// The template definition at `offset` of the chunk: its header (next definition offset,
/// GUID, size), then a fragment header and the root element.
fn parse_definition(data: &[u8], offset: u32) -> Option<Element> {
    let mut reader = Reader {
        data,
        pos: offset as usize,
        end: data.len(),
    };
    reader.take(4 + 16)?;
    let size = reader.u32()? as usize;
    reader.end = reader
        .pos
        .checked_add(size)
        .filter(|&end| end <= data.len())?;
    if reader.peek()? == 0x0f {
        reader.take(4)?;
    }
    let token = reader.u8()?;
    if token & !0x40 != 0x01 {
        return None;
    }
    let root = reader.element(token, 0)?;
    matches!(reader.peek(), None | Some(0x00)).then_some(root)
}

/// The signature of the definition at `offset`: its GUID and tokens, with each name reference
/// replaced by the name itself and the sizes (which depend on where names are stored) left
/// out. [`plan_of`] reads nothing else, so equal signatures have equal plans. `None` for a
/// definition with tokens the plans never take.
fn definition_signature(data: &[u8], offset: u32, out: &mut Vec<u8>) -> Option<()> {
    out.clear();
    let mut r = Reader {
        data,
        pos: offset as usize,
        end: data.len(),
    };
    r.take(4)?;
    out.extend_from_slice(r.take(16)?);
    let size = r.u32()? as usize;
    r.end = r.pos.checked_add(size).filter(|&end| end <= data.len())?;
    let name = |r: &mut Reader<'_>, out: &mut Vec<u8>| -> Option<()> {
        let offset = r.u32()? as usize;
        if offset == r.pos {
            r.take(6)?;
            let chars = usize::from(r.u16()?);
            r.take(chars * 2 + 2)?;
        }
        let name = name_at(data, offset)?;
        out.extend_from_slice(&(name.len() as u32).to_le_bytes());
        out.extend_from_slice(name);
        Some(())
    };
    while let Some(token) = r.peek() {
        r.pos += 1;
        out.push(token);
        match token {
            0x00 => break,
            0x0f => out.extend_from_slice(r.take(3)?),
            0x01 | 0x41 => {
                out.extend_from_slice(r.take(2)?); // dependency
                r.take(4)?; // data size
                name(&mut r, out)?;
                if token == 0x41 {
                    r.take(4)?; // attribute list size
                }
            }
            0x06 | 0x46 => name(&mut r, out)?,
            0x02..=0x04 => {}
            0x05 | 0x45 => {
                let ty = r.u8()?;
                out.push(ty);
                let chars = r.u16()?;
                out.extend_from_slice(&chars.to_le_bytes());
                if ty != 0x01 {
                    return None;
                }
                out.extend_from_slice(r.take(usize::from(chars) * 2)?);
            }
            0x0d | 0x0e => {
                let substitution = r.take(3)?;
                if !known_type(substitution[2]) {
                    return None;
                }
                out.extend_from_slice(substitution);
            }
            _ => return None,
        }
    }
    Some(())
}

/// The UTF-16 bytes of the name stored at `offset` of the chunk (next-string offset, hash,
/// length, characters), up to its first NUL, as the crate reads names.
pub(super) fn name_at(data: &[u8], offset: usize) -> Option<&[u8]> {
    let len = data.get(offset + 6..offset + 8)?;
    let chars = usize::from(u16::from_le_bytes([len[0], len[1]]));
    let bytes = data.get(offset + 8..offset + 8 + chars * 2)?;
    let end = units_before_nul(bytes.as_chunks::<2>().0);
    Some(&bytes[..end * 2])
}

fn utf16_strict(bytes: &[u8]) -> Option<String> {
    let units = bytes
        .as_chunks::<2>()
        .0
        .iter()
        .map(|u| u16::from_le_bytes(*u));
    char::decode_utf16(units)
        .collect::<Result<String, _>>()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_render_as_the_crate_renders_them() {
        let mut s = String::new();
        // 2020-06-30T20:50:25.5467139Z
        let ft = (1_593_550_225u64 + 11_644_473_600) * 10_000_000 + 5_467_139;
        push_datetime(&mut s, filetime_fields(ft));
        assert_eq!(s, "2020-06-30T20:50:25.5467139Z");
        s.clear();
        push_datetime(&mut s, filetime_fields(0));
        assert_eq!(s, "1601-01-01T00:00:00.0000000Z");
        s.clear();
        let st = SysTime::from_bytes(&[
            0xe4, 0x07, 6, 0, 2, 0, 30, 0, 20, 0, 50, 0, 25, 0, 0x22, 0x02,
        ]);
        push_datetime(&mut s, systime_fields(&st));
        assert_eq!(s, "2020-06-30T20:50:25.5460000Z");
        // Fields wider than their place are written whole, as `push_padded` writes them.
        s.clear();
        push_datetime(&mut s, (12_345, 7, 8, 9, 1, 2, 30));
        assert_eq!(s, "12345-07-08T09:01:02.0000030Z");
        s.clear();
        push_datetime(&mut s, (987, 123, 4, 5, 6, 7, 10_000_000));
        assert_eq!(s, "0987-123-04T05:06:07.10000000Z");
    }

    #[test]
    fn sids_and_utf16() {
        let mut s = String::new();
        push_sid(&mut s, &[1, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0]);
        assert_eq!(s, "S-1-5-18");
        s.clear();
        let text: Vec<u8> = "ab\u{e9}\u{1F600}"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        push_utf16(&mut s, &text);
        assert_eq!(s, "ab\u{e9}\u{1F600}");
        s.clear();
        push_utf16(&mut s, &[0x00, 0xd8, b'x', 0]);
        assert_eq!(s, "\u{FFFD}x");
    }
}
