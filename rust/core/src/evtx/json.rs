//! The general way of reading a record: the evtx crate renders it as JSON
//! (`EvtxRecord::into_json_bytes`), which is walked here member by member into a [`Row`].
//!
//! This is the path for every record the template fast path (`template.rs`) does not take:
//! UserData of other shapes, positional or repeated `Data`, arrays, ... It reads whatever the
//! crate renders. The walk borrows from the JSON text: objects are visited member by member
//! with `serde_json::value::RawValue`, strings are unescaped straight into the row's text, and
//! the key buffers are reused, so a record costs no allocation beyond the crate's own.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::row::{Row, SysField, Val};

/// Reusable buffers for the walk.
#[derive(Default)]
pub(crate) struct JsonScratch {
    keys: [String; 5],
    path: String,
}

/// Reads a record's JSON rendering into `row` (its System values and its other values).
pub(crate) fn read_json(
    json: &str,
    row: &mut Row,
    scratch: &mut JsonScratch,
) -> Result<(), String> {
    // The crate renders a record as its one root element, `{"Event":{...}}`. Its inside is read
    // straight away: walking the outer object first would have serde scan the whole record
    // (UserData of kilobytes) once more only to find where its one member ends. `members`
    // checks that the inside is one whole object, so anything else (never seen) fails here
    // and is read the general way.
    if let Some(event) = json
        .strip_prefix("{\"Event\":")
        .and_then(|rest| rest.strip_suffix('}'))
        .filter(|event| event.starts_with('{'))
    {
        if read_event(event, row, scratch).is_ok() {
            return Ok(());
        }
        let header_timestamp = row.header_timestamp;
        row.clear();
        row.header_timestamp = header_timestamp;
    }
    let mut key = std::mem::take(&mut scratch.keys[0]);
    let result = members(json, &mut key, |name, value| {
        if name == "Event" && value.starts_with('{') {
            return read_event(value, row, scratch);
        }
        let val = val_of(row, value);
        row.push_item(name, val, None);
        Ok(())
    });
    scratch.keys[0] = key;
    result.map_err(|e| e.to_string())
}

/// Reads the members of the record's `Event` object (the JSON text `value`).
fn read_event(value: &str, row: &mut Row, scratch: &mut JsonScratch) -> Result<(), String> {
    let JsonScratch { keys, path } = scratch;
    let [_, k1, k2, k3, k4] = keys;
    members(value, k1, |key, value| {
        match key {
            "#attributes" => {}
            "System" if value.starts_with('{') => {
                members(value, k2, |element, value| {
                    read_system_element(row, element, value, [k3, k4], path)
                })?;
            }
            "EventData" if value.starts_with('{') => {
                members(value, k2, |name, value| {
                    let val = val_of(row, value);
                    row.push_item(name, val, None);
                    Ok(())
                })?;
            }
            _ => {
                // UserData, RenderingInfo, ...: kept whole under their element name.
                let val = val_of(row, value);
                if val != Val::Null {
                    row.push_item(key, val, None);
                }
            }
        }
        Ok(())
    })
}

/// One member of System: `"Element": value` or `"Element": {"#attributes": {...}, "#text": v}`.
fn read_system_element(
    row: &mut Row,
    element: &str,
    value: &str,
    [key, attrs_key]: [&mut String; 2],
    path: &mut String,
) -> Result<(), String> {
    if !value.starts_with('{') {
        let val = val_of(row, value);
        row.set_system(SysField::of(element), element, val);
        return Ok(());
    }
    members(value, key, |member, value| {
        match member {
            "#attributes" if value.starts_with('{') => {
                members(value, attrs_key, |attr, value| {
                    path.clear();
                    path.push_str(element);
                    path.push('.');
                    path.push_str(attr);
                    let val = val_of(row, value);
                    row.set_system(SysField::of(path), path, val);
                    Ok(())
                })?;
            }
            "#text" => {
                let val = val_of(row, value);
                row.set_system(SysField::of(element), element, val);
            }
            _ => {
                // A child element of a System element: kept whole.
                path.clear();
                path.push_str(element);
                path.push('.');
                path.push_str(member);
                let val = val_of(row, value);
                row.set_system(SysField::Other, path, val);
            }
        }
        Ok(())
    })
    .map_err(|e| e.to_string())
}

/// The value of a JSON text (a member's raw value), stored in the row.
fn val_of(row: &mut Row, raw: &str) -> Val {
    let raw = raw.trim();
    match raw.as_bytes().first() {
        None | Some(b'n') => Val::Null,
        Some(b't') => Val::Bool(true),
        Some(b'f') => Val::Bool(false),
        Some(b'"') => {
            let start = row.text.len();
            unescape_into(&mut row.text, &raw[1..raw.len() - 1]);
            if row.text.len() == start {
                Val::Null
            } else {
                Val::Text(row.span_from(start))
            }
        }
        Some(b'{' | b'[') => Val::Raw(row.push_str(raw)),
        Some(_) => Val::Num(row.push_str(raw)),
    }
}

/// Appends the text of a JSON string's inside (valid JSON, as serde_json checked it). An
/// unpaired surrogate escape becomes U+FFFD.
pub(crate) fn unescape_into(out: &mut String, s: &str) {
    let Some(first) = s.find('\\') else {
        out.push_str(s);
        return;
    };
    out.push_str(&s[..first]);
    let bytes = s.as_bytes();
    let mut i = first;
    let hex4 = |at: usize| -> Option<u32> {
        s.get(at..at + 4)
            .and_then(|h| u32::from_str_radix(h, 16).ok())
    };
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            // `i` is on a character boundary (the start, or just past an escape); so is the
            // next backslash.
            let next = memchr::memchr(b'\\', &bytes[i..]).map_or(bytes.len(), |n| i + n);
            out.push_str(&s[i..next]);
            i = next;
            continue;
        }
        let Some(&e) = bytes.get(i + 1) else {
            break;
        };
        i += 2;
        match e {
            b'n' => out.push('\n'),
            b'r' => out.push('\r'),
            b't' => out.push('\t'),
            b'b' => out.push('\u{8}'),
            b'f' => out.push('\u{c}'),
            b'u' => {
                let Some(unit) = hex4(i) else {
                    out.push('\u{FFFD}');
                    continue;
                };
                i += 4;
                let ch = if (0xD800..0xDC00).contains(&unit) {
                    // A high surrogate: a low one must follow as `\uXXXX`.
                    match (bytes.get(i..i + 2), hex4(i + 2)) {
                        (Some(b"\\u"), Some(low)) if (0xDC00..0xE000).contains(&low) => {
                            i += 6;
                            char::from_u32(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00))
                        }
                        _ => None,
                    }
                } else {
                    char::from_u32(unit)
                };
                out.push(ch.unwrap_or('\u{FFFD}'));
            }
            other => out.push(other as char), // `"`, `\`, `/`
        }
    }
}

/// Calls `f(key, raw value text)` for each member of the JSON object `raw`.
fn members<'de>(
    raw: &'de str,
    key: &mut String,
    f: impl FnMut(&str, &'de str) -> Result<(), String>,
) -> Result<(), String> {
    let mut de = serde_json::Deserializer::from_str(raw);
    de.deserialize_map(MemberVisitor { key, f })
        .and_then(|()| de.end())
        .map_err(|e| e.to_string())
}

struct MemberVisitor<'k, F> {
    key: &'k mut String,
    f: F,
}

impl<'de, F> Visitor<'de> for MemberVisitor<'_, F>
where
    F: FnMut(&str, &'de str) -> Result<(), String>,
{
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        while map.next_key_seed(KeySeed(self.key))?.is_some() {
            let value: &'de RawValue = map.next_value()?;
            (self.f)(self.key, value.get()).map_err(de::Error::custom)?;
        }
        Ok(())
    }
}

/// Reads an object key into a reused buffer.
struct KeySeed<'k>(&'k mut String);

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.0.clear();
        self.0.push_str(v);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unescaped(s: &str) -> String {
        let mut out = String::new();
        unescape_into(&mut out, s);
        out
    }

    #[test]
    fn unescapes_like_serde_json() {
        for json in [
            r#""C:\\Windows\\system32\\lsass.exe""#,
            r#""a\"b\/c\n\t\r\b\f""#,
            r#""\u00e9\u0001 \ud83d\ude00 x""#,
            r#""plain""#,
            r#""Security\u0001Č㘅᪭ \\ é\\é""#,
            r#""""#,
        ] {
            let expected: String = serde_json::from_str(json).unwrap();
            assert_eq!(unescaped(&json[1..json.len() - 1]), expected, "{json}");
        }
        assert_eq!(unescaped(r"\ud800x"), "\u{FFFD}x");
    }

    fn items(row: &Row) -> Vec<(String, String)> {
        row.items
            .iter()
            .map(|i| {
                let val = match i.val {
                    Val::Text(s) | Val::Num(s) | Val::Raw(s) => row.get(s).to_owned(),
                    other => format!("{other:?}"),
                };
                (row.get(i.key).to_owned(), val)
            })
            .collect()
    }

    #[test]
    fn the_one_root_and_other_shapes_read_alike() {
        let user_data = r##"{"A":{"#attributes":{"x":"1"},"B":[1,2]}}"##;
        let event = format!(r#"{{"System":{{"EventID":4,"Channel":"c"}},"UserData":{user_data}}}"#);
        // The crate's shape (read without the outer walk), then two it never renders (read
        // the general way): another root member, and an Event that is not an object.
        let one_root = format!(r#"{{"Event":{event}}}"#);
        let two_roots = format!(r#"{{"Event":{event},"Other":1}}"#);
        let mut scratch = JsonScratch::default();
        let mut row = Row::default();
        read_json(&one_root, &mut row, &mut scratch).unwrap();
        assert_eq!(row.event_id, Some(4));
        assert_eq!(row.get(row.channel.unwrap()), "c");
        assert_eq!(items(&row), [("UserData".to_owned(), user_data.to_owned())]);
        let mut row = Row::default();
        row.header_timestamp = Some(7);
        read_json(&two_roots, &mut row, &mut scratch).unwrap();
        assert_eq!(row.event_id, Some(4));
        assert_eq!(row.header_timestamp, Some(7));
        assert_eq!(
            items(&row),
            [
                ("UserData".to_owned(), user_data.to_owned()),
                ("Other".to_owned(), "1".to_owned())
            ]
        );
        let mut row = Row::default();
        read_json(r#"{"Event":"x"}"#, &mut row, &mut scratch).unwrap();
        assert_eq!(items(&row), [("Event".to_owned(), "x".to_owned())]);
        assert!(read_json(r#"{"Event":{"System":}}"#, &mut row, &mut scratch).is_err());
    }

    #[test]
    fn reads_a_sysmon_record() {
        let json = r##"{"Event":{"#attributes":{"xmlns":"x"},"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Sysmon","Guid":"{5770385f-c22a-43e0-bf4c-06f5698ffbd9}"}},"EventID":{"#attributes":{"Qualifiers":16384},"#text":10},"Version":3,"Level":4,"Task":10,"Opcode":0,"Keywords":"0x8000000000000000","TimeCreated":{"#attributes":{"SystemTime":"2020-06-30T20:50:25.5467139Z"}},"EventRecordID":303867,"Correlation":null,"Execution":{"#attributes":{"ProcessID":3248,"ThreadID":4128}},"Channel":"Microsoft-Windows-Sysmon/Operational","Computer":"MSEDGEWIN10","Security":{"#attributes":{"UserID":"S-1-5-18"}}},"EventData":{"SourceImage":"C:\\Users\\Public\\za3bollo.exe","SourceProcessId":1972,"CallTrace":"UNKNOWN(000001F3C35A0014)","Empty":null}}}"##;
        let mut row = Row::default();
        read_json(json, &mut row, &mut JsonScratch::default()).unwrap();
        assert_eq!(row.event_id, Some(10));
        assert_eq!(row.record_id, Some(303867));
        assert_eq!(row.exec_pid, Some(3248));
        assert_eq!(row.timestamp, Some(1_593_550_225_546_713));
        assert_eq!(row.get(row.computer.unwrap()), "MSEDGEWIN10");
        assert_eq!(row.get(row.user_id.unwrap()), "S-1-5-18");
        let items: Vec<(String, Val)> = row
            .items
            .iter()
            .map(|i| (row.get(i.key).to_owned(), i.val))
            .collect();
        assert_eq!(items[0].0, "System.EventID.Qualifiers");
        assert_eq!(items[1].0, "SourceImage");
        let Val::Text(s) = items[1].1 else { panic!() };
        assert_eq!(row.get(s), r"C:\Users\Public\za3bollo.exe");
        assert!(matches!(items[2].1, Val::Num(_)));
        assert_eq!(items[4], ("Empty".to_owned(), Val::Null));
    }
}
