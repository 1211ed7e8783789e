//! Chosen fields of JSON documents, one per line, read into Arrow string columns without
//! building the rest of each document.
//!
//! A winlogbeat document holds a hundred values, of which a scan for the rule reads about
//! fifteen. A general reader builds every one of them; `extract_fields` walks each document
//! once, descends only into the objects on the way to a wanted field, captures a wanted value
//! as it is written and skips everything else without allocating (serde's `IgnoredAny`).
//!
//! Field names are dotted ECS paths (`winlog.event_data.CallTrace`); a document may write one
//! nested (`{"winlog": {"event_data": {...}}}`), with dotted keys (`{"winlog.event_data.CallTrace":
//! ...}`) or mixed, as Elasticsearch reads them all. A value is given as text: a string
//! unescaped, a number or boolean as written; a list of strings as a list (Elasticsearch's
//! multi-valued field), any other list or an object as its JSON text; `null` as missing. A
//! column with a list in any row is a list column, its single values lists of one.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use arrow_array::builder::{ListBuilder, StringBuilder};
use arrow_array::{ArrayRef, StructArray};
use arrow_schema::Field;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// The wanted fields as a tree of path segments.
#[derive(Debug, Default)]
pub struct FieldTree {
    names: Vec<String>,
    root: Node,
}

#[derive(Debug, Default)]
struct Children(Vec<(String, Node)>);

impl Children {
    fn get(&self, key: &str) -> Option<&Node> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, n)| n)
    }

    fn entry(&mut self, key: &str) -> &mut Node {
        let at = match self.0.iter().position(|(k, _)| k == key) {
            Some(at) => at,
            None => {
                self.0.push((key.to_owned(), Node::default()));
                self.0.len() - 1
            }
        };
        &mut self.0[at].1
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[derive(Debug, Default)]
struct Node {
    // Few children per node: a short list searched in order beats hashing every key.
    children: Children,
    column: Option<usize>,
}

impl FieldTree {
    pub fn new(names: &[String]) -> Self {
        let mut root = Node::default();
        for (i, name) in names.iter().enumerate() {
            let mut node = &mut root;
            for part in name.split('.') {
                node = node.children.entry(part);
            }
            node.column.get_or_insert(i);
        }
        FieldTree {
            names: names.to_vec(),
            root,
        }
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }
}

/// A line that is not a JSON object: its index in the block (0-based) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    pub index: usize,
    pub message: String,
}

/// The wanted fields of every line of `text` (lines end with `\n`; empty lines are not
/// expected: the caller drops blank lines), as a struct array with a field per wanted name, in
/// order. The first line that is not a JSON object stops the block: the caller reads such a
/// block line by line, reporting its bad lines.
pub fn extract_fields(text: &[u8], tree: &FieldTree) -> Result<StructArray, BadLine> {
    let width = tree.names.len();
    let mut rows: Vec<Vec<Option<&RawValue>>> = vec![Vec::new(); width];
    let mut found: Vec<Option<&RawValue>> = vec![None; width];
    // Lines found with memchr (SIMD): a byte-by-byte split was a tenth of the reader's time.
    let mut start = 0;
    let ends = memchr::memchr_iter(b'\n', text)
        .chain((start_of_tail(text) < text.len()).then_some(text.len()));
    for (index, end) in ends.enumerate() {
        let line = &text[start..end];
        start = end + 1;
        if line.is_empty() {
            continue;
        }
        found.iter_mut().for_each(|slot| *slot = None);
        read_line(line, &tree.root, &mut found).map_err(|err| BadLine {
            index,
            message: err.to_string(),
        })?;
        for (column, value) in rows.iter_mut().zip(&found) {
            column.push(*value);
        }
    }
    let mut fields = Vec::with_capacity(width);
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(width);
    for (name, values) in tree.names.iter().zip(&rows) {
        let array = to_array(values);
        fields.push(Field::new(name, array.data_type().clone(), true));
        arrays.push(array);
    }
    Ok(StructArray::new(fields.into(), arrays, None))
}

/// Where the text after the last line break starts (a last line without one still counts).
fn start_of_tail(text: &[u8]) -> usize {
    memchr::memrchr(b'\n', text).map_or(0, |at| at + 1)
}

fn read_line<'de>(
    line: &'de [u8],
    root: &Node,
    found: &mut [Option<&'de RawValue>],
) -> Result<(), serde_json::Error> {
    // The whole line checked as UTF-8 at once (as `json.loads` of its bytes does): the parser
    // then reads text it need not check string by string, and a bad byte in a skipped string
    // makes a bad line too, not only one in a string it reads.
    let line = std::str::from_utf8(line).map_err(de::Error::custom)?;
    let mut de = serde_json::Deserializer::from_str(line);
    de.deserialize_map(ObjectVisitor { node: root, found })?;
    de.end()
}

/// Walks one object: keys on the way to a wanted field are followed, wanted values captured,
/// the rest skipped.
struct ObjectVisitor<'a, 'de> {
    node: &'a Node,
    found: &'a mut [Option<&'de RawValue>],
}

impl<'de> Visitor<'de> for ObjectVisitor<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key_seed(KeySeed)? {
            // Most keys have no dot: one lookup, no splitting (the splitter's search for the
            // dot cost more than the lookup).
            let node = if memchr::memchr(b'.', key.as_bytes()).is_none() {
                self.node.children.get(&key)
            } else {
                key.split('.')
                    .try_fold(self.node, |n, part| n.children.get(part))
            };
            match node {
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
                Some(node) if node.children.is_empty() => {
                    let raw: &'de RawValue = map.next_value()?;
                    if let Some(column) = node.column {
                        self.found[column] = Some(raw);
                    }
                }
                Some(node) if node.column.is_none() => {
                    // On the way to wanted fields: an object is walked, anything else skipped.
                    map.next_value_seed(Inner {
                        node,
                        found: &mut *self.found,
                    })?;
                }
                Some(node) => {
                    // Wanted whole and on the way to wanted fields (`a` and `a.b`).
                    let raw: &'de RawValue = map.next_value()?;
                    self.found[node.column.expect("a column")] = Some(raw);
                    if raw.get().starts_with('{') {
                        let mut de = serde_json::Deserializer::from_str(raw.get());
                        de.deserialize_map(ObjectVisitor {
                            node,
                            found: &mut *self.found,
                        })
                        .map_err(de::Error::custom)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// The value of a key on the way to wanted fields: an object is walked, anything else skipped.
struct Inner<'a, 'de> {
    node: &'a Node,
    found: &'a mut [Option<&'de RawValue>],
}

impl<'de> DeserializeSeed<'de> for Inner<'_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Inner<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        ObjectVisitor {
            node: self.node,
            found: self.found,
        }
        .visit_map(map)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

/// A key, borrowed from the line unless it has escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(KeySeed)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
}

/// Whether a captured value stands for a missing field: `null` (as Elasticsearch reads it).
fn is_missing(json: &str) -> bool {
    matches!(json.as_bytes().first(), None | Some(b'n'))
}

/// The items of a JSON list whose items are all strings (Elasticsearch's multi-valued field),
/// borrowed from the line; None for anything else.
fn string_items(json: &str) -> Option<Vec<&RawValue>> {
    if !json.starts_with('[') {
        return None;
    }
    let items: Vec<&RawValue> = serde_json::from_str(json).ok()?;
    items
        .iter()
        .all(|i| i.get().starts_with('"'))
        .then_some(items)
}

/// A single value as text: a string unescaped (into `scratch` when it has escapes), anything
/// else (numbers, booleans, objects, lists that are not all strings) as its JSON text.
fn text_of<'a>(json: &'a str, scratch: &'a mut String) -> &'a str {
    if json.starts_with('"') {
        unquote_into(json, scratch)
    } else {
        json
    }
}

/// The text of a JSON string (`json` with its quotes, already checked by the parser),
/// borrowed when it has no escapes, else unescaped into `scratch` (one buffer reused for every
/// value of a column rather than a string allocated per value).
fn unquote_into<'a>(json: &'a str, scratch: &'a mut String) -> &'a str {
    let inner = &json[1..json.len() - 1];
    if memchr::memchr(b'\\', inner.as_bytes()).is_none() {
        return inner;
    }
    scratch.clear();
    if unescape_into(inner, scratch).is_none() {
        // A lone surrogate escape, which has no text: as serde_json would read it, or raw.
        scratch.clear();
        match serde_json::from_str::<String>(json) {
            Ok(text) => scratch.push_str(&text),
            Err(_) => scratch.push_str(inner),
        }
    }
    scratch
}

/// JSON escapes resolved, appended to `out`; None for a `\u` escape that is not a whole code
/// point.
fn unescape_into(inner: &str, out: &mut String) -> Option<()> {
    out.reserve(inner.len());
    let mut rest = inner;
    while let Some(at) = memchr::memchr(b'\\', rest.as_bytes()) {
        out.push_str(&rest[..at]);
        let bytes = rest.as_bytes();
        let (ch, used) = match bytes.get(at + 1)? {
            b'"' => ('"', 2),
            b'\\' => ('\\', 2),
            b'/' => ('/', 2),
            b'b' => ('\u{8}', 2),
            b'f' => ('\u{c}', 2),
            b'n' => ('\n', 2),
            b'r' => ('\r', 2),
            b't' => ('\t', 2),
            b'u' => {
                let hex = |from: usize| {
                    rest.get(from..from + 4)
                        .and_then(|h| u32::from_str_radix(h, 16).ok())
                };
                let first = hex(at + 2)?;
                if (0xD800..0xDC00).contains(&first) {
                    if rest.get(at + 6..at + 8) != Some("\\u") {
                        return None;
                    }
                    let second = hex(at + 8)?;
                    if !(0xDC00..0xE000).contains(&second) {
                        return None;
                    }
                    let code = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
                    (char::from_u32(code)?, 12)
                } else {
                    (char::from_u32(first)?, 6)
                }
            }
            _ => return None,
        };
        out.push(ch);
        rest = &rest[at + used..];
    }
    out.push_str(rest);
    Some(())
}

/// A column of the captured values: text, or lists of text when any row holds a list of
/// strings (its single values then lists of one). Values go straight into the builder.
fn to_array(values: &[Option<&RawValue>]) -> ArrayRef {
    let mut scratch = String::new();
    let present = || {
        values
            .iter()
            .map(|v| v.map(RawValue::get).filter(|j| !is_missing(j)))
    };
    if present().flatten().any(|j| string_items(j).is_some()) {
        let mut builder = ListBuilder::new(StringBuilder::new());
        for json in present() {
            let Some(json) = json else {
                builder.append(false);
                continue;
            };
            match string_items(json) {
                Some(items) => {
                    for item in items {
                        builder
                            .values()
                            .append_value(unquote_into(item.get(), &mut scratch));
                    }
                }
                None => builder.values().append_value(text_of(json, &mut scratch)),
            }
            builder.append(true);
        }
        return Arc::new(builder.finish());
    }
    let mut builder = StringBuilder::with_capacity(values.len(), 0);
    for json in present() {
        match json {
            Some(json) => builder.append_value(text_of(json, &mut scratch)),
            None => builder.append_null(),
        }
    }
    Arc::new(builder.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Array, ListArray, StringArray};

    fn tree(names: &[&str]) -> FieldTree {
        FieldTree::new(&names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    fn strings(array: &StructArray, i: usize) -> Vec<Option<String>> {
        let column = array
            .column(i)
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("a string column");
        (0..column.len())
            .map(|r| column.is_valid(r).then(|| column.value(r).to_owned()))
            .collect()
    }

    #[test]
    fn nested_dotted_and_mixed_keys_give_the_same_field() {
        let text = concat!(
            r#"{"winlog": {"event_data": {"CallTrace": "a|b", "Other": {"x": [1, 2]}}}, "m": "x"}"#,
            "\n",
            r#"{"winlog.event_data.CallTrace": "c"}"#,
            "\n",
            r#"{"winlog": {"event_data.CallTrace": "d\u0041"}, "winlog.record_id": 7}"#,
            "\n",
            r#"{"other": 1}"#,
            "\n",
        );
        let got = extract_fields(
            text.as_bytes(),
            &tree(&["winlog.event_data.CallTrace", "winlog.record_id"]),
        )
        .unwrap();
        assert_eq!(
            strings(&got, 0),
            vec![
                Some("a|b".into()),
                Some("c".into()),
                Some("dA".into()),
                None
            ]
        );
        assert_eq!(strings(&got, 1), vec![None, None, Some("7".into()), None]);
    }

    #[test]
    fn lists_of_strings_make_a_list_column() {
        let text = b"{\"event\": {\"category\": [\"process\", \"x\"]}}\n{\"event\": {\"category\": \"file\"}}\n{}\n";
        let got = extract_fields(text, &tree(&["event.category"])).unwrap();
        let column = got.column(0).as_any().downcast_ref::<ListArray>().unwrap();
        assert_eq!(column.value_length(0), 2);
        assert_eq!(column.value_length(1), 1);
        assert!(column.is_null(2));
    }

    #[test]
    fn escaped_keys_and_values_are_read() {
        let text =
            b"{\"Call\\u0054race\": \"\\u0043:\\\\x\", \"n\": null, \"b\": true, \"f\": 1.5e3}\n";
        let got = extract_fields(text, &tree(&["CallTrace", "n", "b", "f"])).unwrap();
        assert_eq!(strings(&got, 0), vec![Some("C:\\x".into())]);
        assert_eq!(strings(&got, 1), vec![None]);
        assert_eq!(strings(&got, 2), vec![Some("true".into())]);
        assert_eq!(strings(&got, 3), vec![Some("1.5e3".into())]);
    }

    #[test]
    fn a_line_that_is_not_an_object_is_named() {
        let text = b"{\"a\": 1}\n[1, 2]\n";
        let err = extract_fields(text, &tree(&["a"])).unwrap_err();
        assert_eq!(err.index, 1);
        let err = extract_fields(b"{\"a\": 1} x\n", &tree(&["a"])).unwrap_err();
        assert_eq!(err.index, 0);
        let err = extract_fields(b"{\"a\": \n", &tree(&["a"])).unwrap_err();
        assert_eq!(err.index, 0);
    }

    #[test]
    fn bad_utf8_makes_a_bad_line_even_in_a_skipped_string() {
        // As `json.loads` of the line's bytes: not text, whichever field holds the bad byte.
        let text = b"{\"a\": 1, \"skipped\": \"x\xff\"}\n";
        assert_eq!(extract_fields(text, &tree(&["a"])).unwrap_err().index, 0);
        let text = b"{\"a\": 1, \"skipped\": \"x\xc3\xa9\"}\n";
        assert!(extract_fields(text, &tree(&["a"])).is_ok());
    }
}

#[cfg(test)]
mod unescape_tests {
    proptest::proptest! {
        #[test]
        fn unescape_reads_what_serde_json_reads(parts in proptest::collection::vec(
            proptest::sample::select(vec![
                "a", "é", "\\\\", "\\\"", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t", "\\u0041",
                "\\u00e9", "\\uD83D\\uDE00", "\\ud83d", "\\ude00", "\\u20AC", "x\\u0000",
            ]), 0..8)) {
            let json = format!("\"{}\"", parts.concat());
            if let Ok(want) = serde_json::from_str::<String>(&json) {
                let mut scratch = String::new();
                proptest::prop_assert_eq!(super::unquote_into(&json, &mut scratch), want);
            }
        }
    }
}
