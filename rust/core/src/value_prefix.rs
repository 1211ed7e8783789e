//! Proving on a line's bytes, before any parsing, that a JSON line's value of one field starts
//! with one of some wildcard prefixes: a rule that excludes those prefixes (the direct-syscall
//! rule's `not CallTrace : ("?:\\WINDOWS\\SYSTEM32\\ntdll.dll*", ...)`) cannot alert on it.
//!
//! Nearly every Sysmon event 10 has an ntdll first frame, so a scan that proves this skips
//! parsing nearly all of them. The proof must hold whatever the JSON spelling, so it only ever
//! concludes from what the bytes leave no doubt about, and keeps the line otherwise:
//!
//! * A `\u00XX` escape anywhere could spell the key's letters: no proof.
//! * Every occurrence of the key's name that ends a JSON string (followed by an unescaped `"`:
//!   the name's last byte is a letter, never the backslash of an escaped quote) and is followed
//!   by `:` is a key, whatever comes before the name in the key (`"CallTrace"`, ECS's dotted
//!   `"winlog.event_data.CallTrace"`). Its value must be a string whose first characters match
//!   a prefix, spelt as JSON spells them (a `\` is `\\`; any other escape is no match). A value
//!   of another type (a list, null) is no proof.
//! * An occurrence followed by a backslash may be a key inside JSON text escaped into a string
//!   (Sentinel's `EventData`): no proof. One followed by anything else lies inside some text (a
//!   message) and is no key at all.
//! * At least one such key must be there.
//!
//! So every key the line could give the field holds an excluded value: whichever a reader takes
//! (a repeated key, a key of another object whose name ends the same way), the rule is false.

use memchr::memmem::Finder;

/// One character of a wildcard prefix, as it must appear in JSON text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    /// This byte exactly.
    Byte(u8),
    /// This ASCII letter (lowercase) in either case.
    Letter(u8),
    /// `?`: any one printable ASCII character JSON writes as itself (a wider character is no
    /// match, which keeps the line: sound, only less selective).
    AnyAscii,
}

/// A wildcard prefix (`?` for one character, ASCII case folded unless case-sensitive), as the
/// JSON bytes of a string value that starts with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPrefix {
    units: Vec<Unit>,
}

impl JsonPrefix {
    /// None for a prefix with a `*` (not a plain prefix) or a character JSON must escape as
    /// `\u00XX` (a control character), which the test does not read.
    pub fn new(head: &str, case_sensitive: bool) -> Option<JsonPrefix> {
        let mut units = Vec::with_capacity(head.len());
        for c in head.chars() {
            match c {
                '*' => return None,
                '?' => units.push(Unit::AnyAscii),
                '\\' | '"' => units.extend([Unit::Byte(b'\\'), Unit::Byte(c as u8)]),
                c if (c as u32) < 0x20 => return None,
                c if c.is_ascii_alphabetic() && !case_sensitive => {
                    units.push(Unit::Letter(c.to_ascii_lowercase() as u8))
                }
                c => {
                    let mut utf8 = [0; 4];
                    units.extend(c.encode_utf8(&mut utf8).bytes().map(Unit::Byte));
                }
            }
        }
        Some(JsonPrefix { units })
    }

    /// Whether the JSON string text `value` (what follows its opening quote) starts with the
    /// prefix's characters.
    fn starts(&self, value: &[u8]) -> bool {
        value.len() >= self.units.len()
            && self.units.iter().zip(value).all(|(unit, &b)| match *unit {
                Unit::Byte(want) => b == want,
                Unit::Letter(lower) => b.to_ascii_lowercase() == lower,
                Unit::AnyAscii => (0x20..0x7f).contains(&b) && b != b'\\' && b != b'"',
            })
    }
}

/// The test: does a line give the field `name` only values starting with one of `prefixes`?
pub struct ExcludedValues {
    name: Finder<'static>,
    escape: Finder<'static>,
    prefixes: Vec<JsonPrefix>,
}

impl ExcludedValues {
    pub fn new(name: &[u8], prefixes: Vec<JsonPrefix>) -> ExcludedValues {
        ExcludedValues {
            name: Finder::new(name).into_owned(),
            escape: Finder::new(b"\\u00").into_owned(),
            prefixes,
        }
    }

    /// Whether every key `line` may give the field holds a string value that starts with one
    /// of the prefixes, and there is one (see the module's proof).
    pub fn proves(&self, line: &[u8]) -> bool {
        if self.prefixes.is_empty() || self.name.needle().is_empty() {
            return false;
        }
        if self.escape.find(line).is_some() {
            return false;
        }
        let mut keys = 0;
        for at in self.name.find_iter(line) {
            let after = at + self.name.needle().len();
            match line.get(after) {
                Some(b'"') => {
                    let colon = skip_space(line, after + 1);
                    if line.get(colon) != Some(&b':') {
                        continue; // a string value that ends with the name
                    }
                    let quote = skip_space(line, colon + 1);
                    if line.get(quote) != Some(&b'"') {
                        return false;
                    }
                    let value = &line[quote + 1..];
                    if !self.prefixes.iter().any(|p| p.starts(value)) {
                        return false;
                    }
                    keys += 1;
                }
                Some(b'\\') => return false,
                _ => {}
            }
        }
        keys > 0
    }
}

/// The index of the first byte at or after `at` that is not JSON white space.
fn skip_space(line: &[u8], mut at: usize) -> usize {
    while matches!(line.get(at), Some(b' ' | b'\t' | b'\r' | b'\n')) {
        at += 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    const NTDLL: &str = "?:\\WINDOWS\\SYSTEM32\\ntdll.dll";

    fn excluded(line: &str) -> bool {
        let prefixes = vec![JsonPrefix::new(NTDLL, false).unwrap()];
        ExcludedValues::new(b"CallTrace", prefixes).proves(line.as_bytes())
    }

    #[test]
    fn an_ntdll_first_frame_is_proved_in_every_plain_spelling() {
        let ntdll = r#""C:\\Windows\\System32\\ntdll.dll+9d1e4|C:\\x.dll+1""#;
        for line in [
            format!(r#"{{"CallTrace":{ntdll}}}"#),
            format!(r#"{{"winlog":{{"event_data":{{"CallTrace" :  {ntdll}}}}}}}"#),
            format!(r#"{{"winlog.event_data.CallTrace":{ntdll},"m":"CallTrace: x"}}"#),
            format!(r#"{{"CallTrace":{ntdll},"CallTrace":{ntdll}}}"#),
            format!(r#"{{"a":"CallTrace","CallTrace":{ntdll}}}"#),
        ] {
            assert!(excluded(&line), "{line}");
        }
    }

    #[test]
    fn anything_in_doubt_keeps_the_line() {
        for line in [
            // Another first frame; one key of two not excluded; not a string; no key at all.
            r#"{"CallTrace":"C:\\Users\\x.exe+1|C:\\Windows\\System32\\ntdll.dll+1"}"#,
            r#"{"CallTrace":"C:\\Windows\\System32\\ntdll.dll+1","CallTrace":"UNKNOWN(0)"}"#,
            r#"{"CallTrace":["C:\\Windows\\System32\\ntdll.dll+1"]}"#,
            r#"{"CallTrace":null}"#,
            r#"{"message":"CallTrace: C:\\Windows\\System32\\ntdll.dll+1"}"#,
            // An escape that may spell a key; escaped JSON inside a string (Sentinel).
            r#"{"Call\u0054race":"x","CallTrace":"C:\\Windows\\System32\\ntdll.dll+1"}"#,
            r#"{"EventData":"{\"CallTrace\":\"C:\\\\Windows\\\\System32\\\\ntdll.dll\"}"}"#,
            // The value's characters spelt otherwise, or too short.
            r#"{"CallTrace":"\u0043:\\Windows\\System32\\ntdll.dll+1"}"#,
            r#"{"CallTrace":"C:\/Windows\\System32\\ntdll.dll+1"}"#,
            r#"{"CallTrace":"C:\\Windows\\System32\\ntdll.dl"}"#,
            r#"{"CallTrace":"é:\\Windows\\System32\\ntdll.dll+1"}"#,
        ] {
            assert!(!excluded(line), "{line}");
        }
    }

    #[test]
    fn case_folds_unless_case_sensitive() {
        let line = br#"{"CallTrace":"c:\\windows\\system32\\NTDLL.DLL+1"}"#;
        let folded =
            ExcludedValues::new(b"CallTrace", vec![JsonPrefix::new(NTDLL, false).unwrap()]);
        let exact = ExcludedValues::new(b"CallTrace", vec![JsonPrefix::new(NTDLL, true).unwrap()]);
        assert!(folded.proves(line));
        assert!(!exact.proves(line));
    }

    #[test]
    fn prefixes_json_cannot_spell_plainly_are_refused() {
        assert_eq!(JsonPrefix::new("a*b", false), None);
        assert_eq!(JsonPrefix::new("a\tb", false), None);
        let quote = JsonPrefix::new("a\"b", true).unwrap();
        assert!(quote.starts(br#"a\"bc"#));
        assert!(!quote.starts(br#"a"bc"#));
    }

    /// A JSON value with every member of its objects, repeated keys included (a reader may
    /// take the first or the last).
    enum Doc {
        Object(Vec<(String, Doc)>),
        List(Vec<Doc>),
        Text(String),
        Other,
    }

    impl<'de> serde::Deserialize<'de> for Doc {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Doc, D::Error> {
            struct Visit;
            impl<'de> serde::de::Visitor<'de> for Visit {
                type Value = Doc;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("JSON")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    mut m: A,
                ) -> Result<Doc, A::Error> {
                    let mut members = Vec::new();
                    while let Some(member) = m.next_entry()? {
                        members.push(member);
                    }
                    Ok(Doc::Object(members))
                }
                fn visit_seq<A: serde::de::SeqAccess<'de>>(
                    self,
                    mut s: A,
                ) -> Result<Doc, A::Error> {
                    let mut items = Vec::new();
                    while let Some(item) = s.next_element()? {
                        items.push(item);
                    }
                    Ok(Doc::List(items))
                }
                fn visit_str<E>(self, v: &str) -> Result<Doc, E> {
                    Ok(Doc::Text(v.to_owned()))
                }
                fn visit_unit<E>(self) -> Result<Doc, E> {
                    Ok(Doc::Other)
                }
                fn visit_u64<E>(self, _: u64) -> Result<Doc, E> {
                    Ok(Doc::Other)
                }
            }
            d.deserialize_any(Visit)
        }
    }

    /// Every value a reader could take for the field from `doc`: of every key, at any depth,
    /// whose name ends with `CallTrace`, also inside strings that hold JSON text themselves.
    fn field_values<'a>(doc: &'a Doc, out: &mut Vec<&'a Doc>) {
        match doc {
            Doc::Object(members) => {
                for (key, value) in members {
                    if key.ends_with("CallTrace") {
                        out.push(value);
                    }
                    field_values(value, out);
                }
            }
            Doc::List(items) => items.iter().for_each(|v| field_values(v, out)),
            Doc::Text(text) => {
                if let Ok(inner) = serde_json::from_str::<Doc>(text) {
                    // Leaked: a test's few documents, borrowed like the rest.
                    field_values(Box::leak(Box::new(inner)), out);
                }
            }
            Doc::Other => {}
        }
    }

    proptest::proptest! {
        /// A proof is never wrong: every value any reader could take for the field is a string
        /// the wildcard `?:\WINDOWS\SYSTEM32\ntdll.dll*` matches (the crate's own matcher).
        #[test]
        fn a_proof_holds_for_every_value_a_reader_could_take(
            members in proptest::collection::vec(
                (
                    proptest::sample::select(vec![
                        "\"CallTrace\"", "\"winlog.event_data.CallTrace\"", "\"Call\\u0054race\"",
                        "\"message\"", "\"EventData\"", "\"x\"", "\"CallTraceX\"",
                    ]),
                    proptest::sample::select(vec![
                        "\"C:\\\\Windows\\\\System32\\\\ntdll.dll+1|x\"",
                        "\"d:\\\\WINDOWS\\\\SYSTEM32\\\\NTDLL.DLL\"",
                        "\"C:\\\\Windows\\\\System32\\\\ntdll.dl\"",
                        "\"\\u0043:\\\\Windows\\\\System32\\\\ntdll.dll\"",
                        "\"C:\\\\Users\\\\x.exe+1\"", "\"UNKNOWN(0)\"", "null", "10",
                        "[\"C:\\\\Windows\\\\System32\\\\ntdll.dll\"]",
                        "\"CallTrace: C:\\\\Users\\\\x\"", "\"CallTrace\"",
                        "{\"CallTrace\":\"UNKNOWN(0)\"}",
                        "{\"CallTrace\" : \"C:\\\\Windows\\\\System32\\\\ntdll.dll\"}",
                        "\"{\\\"CallTrace\\\":\\\"UNKNOWN(0)\\\"}\"",
                    ]),
                ),
                0..6,
            ),
        ) {
            let body: Vec<String> = members.iter().map(|(k, v)| format!("{k}:{v}")).collect();
            let line = format!("{{{}}}", body.join(","));
            let prefixes = vec![JsonPrefix::new(NTDLL, false).unwrap()];
            if ExcludedValues::new(b"CallTrace", prefixes).proves(line.as_bytes()) {
                let doc: Doc = serde_json::from_str(&line).unwrap();
                let mut values = Vec::new();
                field_values(&doc, &mut values);
                let pattern = crate::Pattern::new(&format!("{NTDLL}*"));
                proptest::prop_assert!(!values.is_empty());
                for value in values {
                    let matched = matches!(value, Doc::Text(t) if pattern.is_match(t));
                    proptest::prop_assert!(matched, "{line}");
                }
            }
        }
    }
}
