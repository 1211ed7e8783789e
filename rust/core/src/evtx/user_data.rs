//! UserData read from its template values, rendered as JSON exactly as the evtx crate renders
//! it (`winlog.event_data_other` keeps it whole under `UserData`).
//!
//! Records with UserData (CAPI2, Setup, many operational logs) are the ones the crate renders
//! slowest: their `<UserData>%n</UserData>` defeats its compiled templates, so each record's
//! tree is built, copied and walked, and its JSON then parsed back. Here the template
//! definitions parsed for the fast path (`template.rs`) are rendered straight from the record's
//! values, following the rules of the crate's tree renderer (`JsonCompiler::*_plain` in
//! evtx 0.15.1) for the shapes taken:
//! - an element with no element child and no attribute text is its content's value: `null`
//!   when empty, a bare number for an integer or bool value, else a string;
//! - else an object: `"#attributes"` (the attributes with text, numbers bare), `"#text"`, then
//!   each child element under its name, `_1`, `_2`, ... after the first of a name;
//! - an element whose dependency value is NULL is left out; a nested instance (a BinXML
//!   substitution) is its definition's root element.
//!
//! Anything else (text next to elements, several pieces of content, `Data` in a container,
//! nested containers, names JSON would need escaped, instances nested deeper) is declined and
//! the record goes the JSON way. The tests compare both ways on every sample record.

use super::row::{Row, Val};
use super::template::{
    left_out, value_val, Child, Content, Element, FragmentSource, FragmentUse, Plan, Value,
    BIN_XML, NULL,
};
use super::template::{name_at, Reader};
use super::text::{push_json_escaped_upper, push_u64, push_utf16, units_before_nul};
use crate::word_hash::WordMap;

/// Whether `element`, a definition's `<UserData>`, is of a shape rendered here.
pub(super) fn renders(element: &Element) -> bool {
    renders_in(element, true)
}

/// Whether the root of a nested instance's definition is of a shape rendered here (as the
/// record's `<UserData>`, or inside it: see [`fragment_root_renders`]).
pub(super) fn fragment_renders(root: &Element) -> bool {
    !matches!(root.name.as_str(), "Data" | "EventData") && renders_in(root, root.name == "UserData")
}

/// Whether an element a BinXML value holds is rendered here, inside UserData.
pub(super) fn fragment_root_renders(root: &Element) -> bool {
    !matches!(root.name.as_str(), "Data" | "EventData" | "UserData") && renders_in(root, false)
}

fn renders_in(element: &Element, container: bool) -> bool {
    plain_name(&element.name)
        && element
            .attrs
            .iter()
            .all(|(name, value)| plain_name(name) && value.len() <= 1)
        // Literal text only alone: the crate would join it with the rest.
        && (element.children.len() <= 1
            || !element
                .children
                .iter()
                .any(|c| matches!(c, Child::Content(Content::Text(_)))))
        && element.children.iter().all(|child| match child {
            // A container's `Data` children are flattened by their names; a nested container
            // starts those rules again.
            Child::Element(e) => {
                let refused = match e.name.as_str() {
                    "EventData" | "UserData" => true,
                    "Data" => container,
                    _ => false,
                };
                !refused && renders_in(e, false)
            }
            Child::Content(_) => true,
        })
}

/// A name the crate writes as a JSON key as it is (it does not escape names).
fn plain_name(name: &str) -> bool {
    !name.is_empty() && !name.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\')
}

/// What a record's UserData rendering reads besides its own values.
pub(super) struct Json<'c> {
    pub data: &'c [u8],
    pub plans: &'c [Option<Plan>],
    pub fragments: &'c [FragmentUse],
    pub fragment_values: &'c [Value],
    pub raw_roots: &'c [RawRoot],
    pub raw_json: &'c str,
}

/// An element a BinXML value writes out itself (no template), rendered when the record's
/// values are read: its name and JSON value, ranges of `Json::raw_json`.
#[derive(Debug, Clone, Copy)]
pub(super) struct RawRoot {
    name: (usize, usize),
    value: (usize, usize),
}

/// A child element: a definition's (with the values it reads and their scope), or one a
/// BinXML value writes out (its name and JSON value).
enum ChildElement<'e> {
    Template(&'e Element, &'e [Value], u8),
    Raw(&'e str, &'e str),
}

impl<'e> ChildElement<'e> {
    fn name(&self) -> &'e str {
        match self {
            ChildElement::Template(e, _, _) => &e.name,
            ChildElement::Raw(name, _) => name,
        }
    }
}

impl<'c> Json<'c> {
    /// Calls `f` for each element the BinXML value of substitution `subst` of `scope` holds.
    fn fragment(
        &self,
        scope: u8,
        subst: u16,
        f: &mut impl FnMut(ChildElement<'c>) -> Option<()>,
    ) -> Option<()> {
        let used = self
            .fragments
            .iter()
            .find(|f| f.scope == scope && f.subst == subst)?;
        match used.source {
            FragmentSource::Template { plan, values } => {
                let Some(Plan::Fragment(root)) = &self.plans[plan] else {
                    return None;
                };
                let values = &self.fragment_values[values.0..values.1];
                f(ChildElement::Template(root, values, scope + 1))
            }
            FragmentSource::Raw(first, end) => {
                for root in &self.raw_roots[first..end] {
                    let text = |(a, b): (usize, usize)| &self.raw_json[a..b];
                    f(ChildElement::Raw(text(root.name), text(root.value)))?;
                }
                Some(())
            }
        }
    }
}

/// Renders the `<UserData>` `element` (with the `values` of `scope`) into the row as its
/// `UserData` item, as the JSON way reads the crate's rendering: an object kept whole, nothing
/// for `null`. `None`: not rendered here (the row must then be cleared).
pub(super) fn push_user_data(
    row: &mut Row,
    json: &Json<'_>,
    element: &Element,
    values: &[Value],
    scope: u8,
    scratch: &mut String,
) -> Option<()> {
    let start = row.text.len();
    write_value(row, json, element, values, scope, scratch)?;
    match row.text.as_bytes().get(start) {
        Some(b'{') => {
            let span = row.span_from(start);
            row.push_item("UserData", Val::Raw(span), None);
        }
        Some(b'n') => row.text.truncate(start),
        // A bare value (never seen): the JSON way reads those.
        _ => return None,
    }
    Some(())
}

/// A piece of content: literal text or a substitution value, not empty.
#[derive(Clone, Copy)]
enum Piece<'e> {
    Text(&'e str),
    Value(Value),
}

/// The piece an attribute's value (at most one piece of content) is; `Some(None)` when empty.
fn attr_piece<'e>(
    values: &[Value],
    content: &'e [Content],
    data: &[u8],
) -> Option<Option<Piece<'e>>> {
    Some(match content {
        [] => None,
        [Content::Text(t)] => (!t.is_empty()).then_some(Piece::Text(t)),
        [Content::Subst(i)] => {
            let value = *values.get(usize::from(*i))?;
            if value.ty == BIN_XML {
                return None; // an element in an attribute: the crate fails the record
            }
            (!is_empty(data, &value)).then_some(Piece::Value(value))
        }
        _ => return None,
    })
}

/// Whether the crate takes a value as empty (`is_optional_empty`): NULL, an empty string (up
/// to its first NUL), empty binary.
fn is_empty(data: &[u8], value: &Value) -> bool {
    match value.ty {
        NULL => true,
        0x01 => value.size < 2 || data.get(value.at..value.at + 2) == Some(&[0, 0]),
        0x0e => value.size == 0,
        _ => false,
    }
}

/// Calls `f` for each child element of `element` as the crate's tree has them: a definition's
/// elements (but those left out), and the elements of nested BinXML values. Stops at the first
/// `None`.
fn for_each_element<'e>(
    json: &Json<'e>,
    element: &'e Element,
    values: &'e [Value],
    scope: u8,
    mut f: impl FnMut(ChildElement<'e>) -> Option<()>,
) -> Option<()> {
    for child in &element.children {
        match child {
            Child::Element(e) => {
                if !left_out(values, e.dependency)? {
                    f(ChildElement::Template(e, values, scope))?;
                }
            }
            Child::Content(Content::Subst(i)) if values.get(usize::from(*i))?.ty == BIN_XML => {
                json.fragment(scope, *i, &mut f)?;
            }
            Child::Content(_) => {}
        }
    }
    Some(())
}

/// Writes the JSON value of `element` (`write_element_value_plain`).
fn write_value(
    row: &mut Row,
    json: &Json<'_>,
    element: &Element,
    values: &[Value],
    scope: u8,
    scratch: &mut String,
) -> Option<()> {
    let mut elements = 0usize;
    for_each_element(json, element, values, scope, |_| {
        elements += 1;
        Some(())
    })?;
    let mut contents = 0usize;
    let mut content = None;
    for child in &element.children {
        match child {
            Child::Content(Content::Text(t)) => {
                contents += 1;
                if !t.is_empty() {
                    content = Some(Piece::Text(t));
                }
            }
            Child::Content(Content::Subst(i)) => {
                let value = *values.get(usize::from(*i))?;
                if value.ty == BIN_XML {
                    continue;
                }
                contents += 1;
                if !is_empty(json.data, &value) {
                    content = Some(Piece::Value(value));
                }
            }
            Child::Element(_) => {}
        }
    }
    // Several pieces are joined, and text next to elements goes to `#text`: not taken here.
    if contents > 1 || (content.is_some() && elements > 0) {
        return None;
    }
    let mut attrs_text = false;
    for (_, value) in &element.attrs {
        attrs_text |= attr_piece(values, value, json.data)?.is_some();
    }
    if elements == 0 && !attrs_text {
        return match content {
            None => {
                row.text.push_str("null");
                Some(())
            }
            Some(piece) => write_piece(row, json.data, piece, scratch),
        };
    }
    row.text.push('{');
    let mut wrote_any = false;
    if attrs_text {
        row.text.push_str("\"#attributes\":{");
        let mut first = true;
        for (name, value) in &element.attrs {
            let Some(piece) = attr_piece(values, value, json.data)? else {
                continue;
            };
            if !first {
                row.text.push(',');
            }
            first = false;
            row.text.push('"');
            row.text.push_str(name);
            row.text.push_str("\":");
            write_piece(row, json.data, piece, scratch)?;
        }
        row.text.push('}');
        wrote_any = true;
    }
    if let Some(piece) = content {
        if wrote_any {
            row.text.push(',');
        }
        wrote_any = true;
        row.text.push_str("\"#text\":");
        write_piece(row, json.data, piece, scratch)?;
    }
    // Repeated names are numbered: `_1` for the second, and so on.
    let mut names: Vec<&str> = Vec::new();
    for_each_element(json, element, values, scope, |child| {
        let name = child.name();
        let suffix = names.iter().filter(|&&n| n == name).count();
        names.push(name);
        if wrote_any {
            row.text.push(',');
        }
        wrote_any = true;
        row.text.push('"');
        row.text.push_str(name);
        if suffix > 0 {
            row.text.push('_');
            push_u64(&mut row.text, suffix as u64);
        }
        row.text.push_str("\":");
        match child {
            ChildElement::Template(child, inner, inner_scope) => {
                write_value(row, json, child, inner, inner_scope, scratch)
            }
            ChildElement::Raw(_, value) => {
                row.text.push_str(value);
                Some(())
            }
        }
    })?;
    row.text.push('}');
    Some(())
}

/// Writes a piece of content as a JSON value: integers and bools bare, the rest a string.
fn write_piece(row: &mut Row, data: &[u8], piece: Piece<'_>, scratch: &mut String) -> Option<()> {
    let value = match piece {
        Piece::Text(t) => {
            row.text.push('"');
            push_json_escaped_upper(&mut row.text, t);
            row.text.push('"');
            return Some(());
        }
        Piece::Value(value) => value,
    };
    match value.ty {
        0x01 => {
            let bytes = data.get(value.at..value.at + value.size)?;
            let len = units_before_nul(bytes.as_chunks::<2>().0);
            scratch.clear();
            push_utf16(scratch, &bytes[..len * 2]);
            row.text.push('"');
            push_json_escaped_upper(&mut row.text, scratch);
            row.text.push('"');
        }
        // Integers and bools: `value_val` writes their digits (a bool, nothing).
        0x03..=0x0a | 0x0d => match value_val(row, data, &value)? {
            Val::Bool(b) => row.text.push_str(if b { "true" } else { "false" }),
            Val::Num(_) => {}
            _ => return None,
        },
        // GUIDs, hex numbers, times, SIDs, binary: ASCII text needing no escape.
        _ => {
            row.text.push('"');
            let at = row.text.len();
            let val = value_val(row, data, &value)?;
            if !matches!(val, Val::Text(_))
                || row.text[at..]
                    .bytes()
                    .any(|b| b == b'"' || b == b'\\' || b < 0x20)
            {
                return None;
            }
            row.text.push('"');
        }
    }
    Some(())
}

// ---- elements a BinXML value writes out itself ----

/// Renders the elements that `data[start..end]`, a BinXML value that is not a template
/// instance, writes out (a fragment header, elements of literal names, attributes and text,
/// nothing or EOF after them): each one's name and JSON value go into `out`, and where they are
/// into `roots`. `None` for any other token (substitutions, references, CDATA, ...) or shape
/// not taken (see the module's list).
pub(super) fn render_raw(
    data: &[u8],
    start: usize,
    end: usize,
    out: &mut String,
    roots: &mut Vec<RawRoot>,
    scratch: &mut String,
    keys: &mut NameKeys,
) -> Option<()> {
    let mut c = Reader {
        data,
        pos: start,
        end: end.min(data.len()),
    };
    if c.peek()? == 0x0f {
        c.take(4)?;
    }
    // The names of the elements being written, for their numbering (`raw_value`).
    let mut names = Vec::new();
    while let Some(token @ (0x01 | 0x41)) = c.peek() {
        c.pos += 1;
        let name = element_start(&mut c, token)?;
        let key = keys.key(data, name)?;
        if matches!(keys.text(key), "Data" | "EventData" | "UserData") {
            return None;
        }
        let at = out.len();
        out.push_str(keys.text(key));
        let value_at = out.len();
        raw_value(&mut c, out, scratch, keys, &mut names, 0)?;
        roots.push(RawRoot {
            name: (at, value_at),
            value: (value_at, out.len()),
        });
    }
    matches!(c.peek(), None | Some(0x00)).then_some(())
}

/// After an element start token (BinXML written out: no dependency): its data size, name and
/// attribute list size; the name's offset in the chunk.
fn element_start(r: &mut Reader<'_>, token: u8) -> Option<usize> {
    r.u32()?; // data size
    let name = r.name_offset()?;
    if token & 0x40 != 0 {
        r.u32()?; // attribute list size
    }
    Some(name)
}

/// The JSON keys of the element names that BinXML values write out, by the name's offset in
/// the chunk (names are in the chunk's string table, each at one offset): CAPI2's records
/// name the same few elements thousands of times in a chunk, and decoding each name from
/// UTF-16 and checking it again was 8% of the decoder's instructions on a mix of the sample
/// logs (callgrind). Offsets are the
/// chunk's own: cleared with the chunk's template offsets (`TemplateCache::clear`).
#[derive(Default)]
pub(crate) struct NameKeys {
    /// Offset -> its key's span in `text`; `None`: a name declined (`key`). Offsets are below
    /// 64 KiB and a chunk names few elements: keys a file chose to collide only make a lookup
    /// walk that chunk's few names.
    spans: WordMap<usize, Option<Key>>,
    text: String,
}

/// A name's key: its span in `NameKeys::text`. Two names are the same string exactly when
/// their keys' texts are equal (keys are names decoded from well-formed UTF-16 only).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Key(u32, u32);

impl NameKeys {
    pub fn clear(&mut self) {
        self.spans.clear();
        self.text.clear();
    }

    /// The key of the name at `offset` of the chunk `data`, if the crate writes it as a JSON
    /// key as it is (no escaping needed, no unpaired surrogate).
    fn key(&mut self, data: &[u8], offset: usize) -> Option<Key> {
        if let Some(&known) = self.spans.get(&offset) {
            return known;
        }
        let at = self.text.len();
        let key = name_at(data, offset).and_then(|utf16| {
            push_utf16(&mut self.text, utf16);
            // U+FFFD: an unpaired surrogate (or the character itself): declined either way.
            let name = &self.text[at..];
            (plain_name(name) && !name.contains('\u{FFFD}'))
                .then_some(Key(at as u32, self.text.len() as u32))
        });
        if key.is_none() {
            self.text.truncate(at);
        }
        self.spans.insert(offset, key);
        key
    }

    fn text(&self, key: Key) -> &str {
        &self.text[key.0 as usize..key.1 as usize]
    }
}

fn push_text(out: &mut String, utf16: &[u8], scratch: &mut String) {
    scratch.clear();
    push_utf16(scratch, utf16);
    out.push('"');
    push_json_escaped_upper(out, scratch);
    out.push('"');
}

/// Attributes an element may have here.
const MAX_ATTRIBUTES: usize = 16;

/// Writes the JSON value of the element whose start `c` has read, reading the rest of it
/// (`write_value`'s rules for literal content).
fn raw_value(
    c: &mut Reader<'_>,
    out: &mut String,
    scratch: &mut String,
    keys: &mut NameKeys,
    names: &mut Vec<Key>,
    depth: usize,
) -> Option<()> {
    if depth > 32 {
        return None;
    }
    let data = c.data;
    let mut attrs = [(0usize, &[][..]); MAX_ATTRIBUTES];
    let mut count = 0;
    let mut attrs_text = false;
    let has_children = loop {
        match c.u8()? {
            0x06 | 0x46 => {
                let name = c.name_offset()?;
                let value = match c.peek()? {
                    0x05 | 0x45 => {
                        c.pos += 1;
                        c.text()?
                    }
                    _ => &[][..],
                };
                // One piece of text at most.
                if matches!(c.peek()?, 0x05 | 0x45 | 0x0d | 0x0e) || count == MAX_ATTRIBUTES {
                    return None;
                }
                attrs[count] = (name, value);
                count += 1;
                attrs_text |= !value.is_empty();
            }
            0x02 => break true,
            0x03 => break false,
            _ => return None,
        }
    };
    let attrs = &attrs[..count];
    let (mut text, mut first_child) = (&[][..], None);
    if has_children {
        match c.u8()? {
            0x04 => {}
            0x05 | 0x45 => {
                text = c.text()?;
                if c.u8()? != 0x04 {
                    return None; // text with more content: not taken here
                }
            }
            token @ (0x01 | 0x41) => first_child = Some(token),
            _ => return None,
        }
    }
    if first_child.is_none() && !attrs_text {
        if text.is_empty() {
            out.push_str("null");
        } else {
            push_text(out, text, scratch);
        }
        return Some(());
    }
    out.push('{');
    let mut wrote_any = false;
    if attrs_text {
        out.push_str("\"#attributes\":{");
        let mut first = true;
        for &(name, value) in attrs {
            if value.is_empty() {
                continue;
            }
            if !first {
                out.push(',');
            }
            first = false;
            let key = keys.key(data, name)?;
            out.push('"');
            out.push_str(keys.text(key));
            out.push_str("\":");
            push_text(out, value, scratch);
        }
        out.push('}');
        wrote_any = true;
    }
    if !text.is_empty() {
        if wrote_any {
            out.push(',');
        }
        wrote_any = true;
        out.push_str("\"#text\":");
        push_text(out, text, scratch);
    }
    // Names repeat within an element when they are the same string (the same UTF-16 bytes).
    // This element's children's names are `names[base..]`: a child's own go after them while
    // it is written, and are dropped when it is done.
    let base = names.len();
    let mut token = first_child;
    while let Some(t) = token {
        let name = element_start(c, t)?;
        let key = keys.key(data, name)?;
        let text = keys.text(key);
        if matches!(text, "EventData" | "UserData") {
            return None;
        }
        let suffix = names[base..]
            .iter()
            .filter(|&&n| keys.text(n) == text)
            .count();
        names.push(key);
        if wrote_any {
            out.push(',');
        }
        wrote_any = true;
        out.push('"');
        out.push_str(keys.text(key));
        if suffix > 0 {
            out.push('_');
            push_u64(out, suffix as u64);
        }
        out.push_str("\":");
        raw_value(c, out, scratch, keys, names, depth + 1)?;
        token = match c.u8()? {
            t @ (0x01 | 0x41) => Some(t),
            0x04 => None,
            _ => return None, // text next to elements: not taken here
        };
    }
    names.truncate(base);
    out.push('}');
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// BinXML written out, built by hand: names stored inline where they are used.
    #[derive(Default)]
    struct Bytes(Vec<u8>);

    impl Bytes {
        fn u16(&mut self, v: u16) -> &mut Self {
            self.0.extend_from_slice(&v.to_le_bytes());
            self
        }
        fn u32(&mut self, v: u32) -> &mut Self {
            self.0.extend_from_slice(&v.to_le_bytes());
            self
        }
        fn utf16(&mut self, s: &str) -> &mut Self {
            for unit in s.encode_utf16() {
                self.u16(unit);
            }
            self
        }
        fn name(&mut self, s: &str) -> &mut Self {
            let here = self.0.len() as u32 + 4;
            self.u32(here).u32(0).u16(0);
            self.u16(s.encode_utf16().count() as u16).utf16(s).u16(0)
        }
        fn start(&mut self, name: &str, attrs: bool) -> &mut Self {
            self.0.push(if attrs { 0x41 } else { 0x01 });
            self.u32(0).name(name);
            if attrs {
                self.u32(0);
            }
            self
        }
        fn attr(&mut self, name: &str, value: Option<&str>) -> &mut Self {
            self.0.push(0x06);
            self.name(name);
            if let Some(v) = value {
                self.text(v);
            }
            self
        }
        fn text(&mut self, v: &str) -> &mut Self {
            self.0.extend_from_slice(&[0x05, 0x01]);
            self.u16(v.encode_utf16().count() as u16).utf16(v)
        }
        fn token(&mut self, t: u8) -> &mut Self {
            self.0.push(t);
            self
        }
    }

    /// The names and JSON values `render_raw` gives for `bytes`, or `None` when it declines.
    fn rendered(bytes: &Bytes) -> Option<Vec<(String, String)>> {
        let (mut out, mut roots, mut scratch) = (String::new(), Vec::new(), String::new());
        let mut keys = NameKeys::default();
        let data = &bytes.0;
        render_raw(
            data,
            0,
            data.len(),
            &mut out,
            &mut roots,
            &mut scratch,
            &mut keys,
        )?;
        Some(
            roots
                .iter()
                .map(|r| {
                    let text = |(a, b): (usize, usize)| out[a..b].to_owned();
                    (text(r.name), text(r.value))
                })
                .collect(),
        )
    }

    fn pair(name: &str, value: &str) -> Vec<(String, String)> {
        vec![(name.to_owned(), value.to_owned())]
    }

    #[test]
    fn elements_render_as_the_crate_renders_them() {
        // <A x="1" e=""><B>t</B><B/><C>"\u{1}é</C></A><D y="2"/>
        let mut b = Bytes::default();
        b.start("A", true)
            .attr("x", Some("1"))
            .attr("e", Some(""))
            .token(0x02);
        b.start("B", false).token(0x02).text("t").token(0x04);
        b.start("B", false).token(0x03);
        b.start("C", false).token(0x02).text("\"\u{1}é").token(0x04);
        b.token(0x04);
        b.start("D", true)
            .attr("y", Some("2"))
            .token(0x03)
            .token(0x00);
        let expected = vec![
            (
                "A".to_owned(),
                r##"{"#attributes":{"x":"1"},"B":"t","B_1":null,"C":"\"\u0001é"}"##.to_owned(),
            ),
            ("D".to_owned(), r##"{"#attributes":{"y":"2"}}"##.to_owned()),
        ];
        assert_eq!(rendered(&b), Some(expected));

        // Only empty attributes: the element's value is its text, or null.
        let mut b = Bytes::default();
        b.start("E", true)
            .attr("z", None)
            .token(0x02)
            .text("v")
            .token(0x04);
        assert_eq!(rendered(&b), Some(pair("E", r#""v""#)));
        let mut b = Bytes::default();
        b.start("E", true).attr("z", Some("")).token(0x03);
        assert_eq!(rendered(&b), Some(pair("E", "null")));

        // Attributes and text: an object with both.
        let mut b = Bytes::default();
        b.start("F", true)
            .attr("k", Some("x\ty"))
            .token(0x02)
            .text("w")
            .token(0x04);
        assert_eq!(
            rendered(&b),
            Some(pair("F", r##"{"#attributes":{"k":"x\ty"},"#text":"w"}"##))
        );
    }

    #[test]
    fn shapes_left_to_the_crate_are_declined() {
        // Text next to an element.
        let mut b = Bytes::default();
        b.start("A", false).token(0x02).text("t");
        b.start("B", false).token(0x03).token(0x04);
        assert_eq!(rendered(&b), None);
        // An element after text.
        let mut b = Bytes::default();
        b.start("A", false).token(0x02);
        b.start("B", false).token(0x03).text("t").token(0x04);
        assert_eq!(rendered(&b), None);
        // A substitution (only template definitions have those).
        let mut b = Bytes::default();
        b.start("A", false)
            .token(0x02)
            .token(0x0d)
            .u16(0)
            .token(0x01)
            .token(0x04);
        assert_eq!(rendered(&b), None);
        // A name JSON would need escaped, a container, `Data` as a root.
        for name in ["a\"b", "EventData", "UserData", "Data"] {
            let mut b = Bytes::default();
            b.start(name, false).token(0x03);
            assert_eq!(rendered(&b), None, "{name}");
        }
        // Truncated.
        let mut b = Bytes::default();
        b.start("A", false).token(0x02).text("t");
        assert_eq!(rendered(&b), None);
    }

    #[test]
    fn crate_escapes_use_upper_case_hex() {
        let mut s = String::new();
        push_json_escaped_upper(&mut s, "a\u{1f}\"\\\n");
        assert_eq!(s, r#"a\u001F\"\\\n"#);
    }
}
