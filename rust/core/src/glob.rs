//! Elasticsearch EQL wildcard patterns (`field : "pattern"`), compiled once into the cheapest
//! strategy that decides them.
//!
//! Semantics (see `SEMANTICS.md`): the pattern covers the whole value; `*` is any run of
//! characters (none included, newlines and backslashes included); `?` is exactly one character,
//! i.e. one Unicode scalar value, which is one to four bytes of UTF-8; letters compare
//! case-insensitively for ASCII only (`K`, the Kelvin sign, does not fold to `k`). There is no
//! escape: a pattern cannot ask for a literal `*` or `?`.
//!
//! Matching works on the UTF-8 bytes of the value. Folding only ASCII bytes is exactly
//! "ASCII-only case folding" because every byte of a multi-byte UTF-8 sequence is >= 0x80 and
//! so never equals a folded ASCII byte.
//!
//! The same machinery decides EQL's case-sensitive tests: `like` patterns (`*` and `?` as above,
//! characters compared exactly) and string equality (`==`, `in`: the value is a literal, `*` and
//! `?` included), so that they run inside a rule's native program, with its short-circuits.

use memchr::{memchr, memchr2};

/// One compiled pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    source: String,
    strategy: Strategy,
}

/// How a pattern is decided, cheapest first.
#[derive(Debug, Clone, PartialEq)]
enum Strategy {
    /// No wildcard at all: equal length, equal bytes up to ASCII case.
    Exact(Folded),
    /// `lit*`: only the first `lit.len()` bytes are looked at.
    Prefix(Folded),
    /// `lit`/`?` slots followed by `*`, e.g. `?:\Windows\*`: fixed width in characters, so only
    /// the first few characters are looked at.
    PrefixSlots(Segment),
    /// Slots with no `*`: the whole value must be consumed by them.
    Slots(Segment),
    /// `*lit`.
    Suffix(Folded),
    /// `*lit*`.
    Contains(Folded),
    /// Only `*`: every value, the empty string included.
    Anything,
    /// Anything else: anchored head, leftmost middle segments, anchored tail.
    Segments {
        head: Segment,
        middle: Vec<Segment>,
        tail: Segment,
    },
}

/// A run of pattern pieces between two `*`: literals and `?` slots.
#[derive(Debug, Clone, PartialEq, Default)]
struct Segment {
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Literal(Folded),
    AnyChar,
}

/// A literal ready for case-insensitive comparison eight bytes at a time.
///
/// `lower` is the literal with ASCII letters lower-cased; `mask` has 0x20 where `lower` has an
/// ASCII letter and 0 elsewhere. A value byte `h` equals the literal byte `l` up to ASCII case
/// exactly when `h | m == l`: for a letter, `h | 0x20 == l` holds only for `l` and its
/// upper-case form `l - 0x20` (both ASCII); elsewhere the mask is 0 and bytes must be equal. So
/// a whole 64-bit word compares in three instructions, with no per-byte branches.
///
/// A case-sensitive literal has `lower` as written and a zero mask: bytes must be equal.
///
/// `anchor` is the byte a search for the literal looks for first (`find_fold`): the one least
/// likely to occur in paths and call traces, so that the search stops rarely on a false start
/// (in `*unknown(*` the `(`, not the `u` of every `ntdll`).
#[derive(Debug, Clone, PartialEq, Default)]
struct Folded {
    lower: Vec<u8>,
    mask: Vec<u8>,
    anchor: usize,
}

impl Folded {
    fn new(bytes: Vec<u8>, fold: bool) -> Folded {
        let lower: Vec<u8> = if fold {
            bytes.iter().map(|b| b.to_ascii_lowercase()).collect()
        } else {
            bytes
        };
        let mask: Vec<u8> = lower
            .iter()
            .map(|b| {
                if fold && b.is_ascii_lowercase() {
                    0x20
                } else {
                    0
                }
            })
            .collect();
        let anchor = (0..lower.len())
            .min_by_key(|&i| (anchor_rank(lower[i], mask[i] != 0), i))
            .unwrap_or(0);
        Folded {
            lower,
            mask,
            anchor,
        }
    }

    #[inline]
    fn len(&self) -> usize {
        self.lower.len()
    }

    /// `hay` (of the same length) equals the literal up to ASCII case.
    #[inline]
    fn eq(&self, hay: &[u8]) -> bool {
        if hay.len() != self.lower.len() {
            return false;
        }
        let mut words = hay.chunks_exact(8);
        let mut lower = self.lower.chunks_exact(8);
        let mut mask = self.mask.chunks_exact(8);
        for ((h, l), m) in (&mut words).zip(&mut lower).zip(&mut mask) {
            if (word(h) | word(m)) != word(l) {
                return false;
            }
        }
        words
            .remainder()
            .iter()
            .zip(lower.remainder())
            .zip(mask.remainder())
            .all(|((h, l), m)| h | m == *l)
    }

    /// `hay` starts with the literal, up to ASCII case.
    #[inline]
    fn is_prefix_of(&self, hay: &[u8]) -> bool {
        hay.len() >= self.len() && self.eq(&hay[..self.len()])
    }

    /// Whether bytes matching this literal, from `at` on, always match `other` (a literal that
    /// fits there): a byte compared exactly must pass `other`'s test; a letter this literal
    /// folds must be one `other` folds too.
    fn forces_at(&self, other: &Folded, at: usize) -> bool {
        at + other.len() <= self.len()
            && (0..other.len()).all(|k| {
                let (held, mask) = (self.lower[at + k], self.mask[at + k]);
                if mask == 0 {
                    held | other.mask[k] == other.lower[k]
                } else {
                    other.mask[k] != 0 && other.lower[k] == held
                }
            })
    }

    /// Whether bytes matching this literal always hold a match of `other` somewhere.
    fn forces_within(&self, other: &Folded) -> bool {
        self.len() >= other.len()
            && (0..=self.len() - other.len()).any(|at| self.forces_at(other, at))
    }

    /// The literal and `head` agree on the bytes they both have.
    #[inline]
    fn agrees_with_start(&self, head: &[u8]) -> bool {
        let n = head.len().min(self.len());
        head[..n]
            .iter()
            .zip(&self.lower[..n])
            .zip(&self.mask[..n])
            .all(|((h, l), m)| h | m == *l)
    }
}

/// How often a byte is expected in the values searched (paths, call traces), lowest first. A
/// letter that folds counts for both cases. A rough table is enough: it only picks where a
/// search looks first, never what it finds.
fn anchor_rank(byte: u8, folds: bool) -> u8 {
    match byte {
        _ if folds => 250,
        b'a'..=b'z' => 200,
        b'0'..=b'9' | b'\\' | b'.' | b'+' | b'|' | b':' | b' ' => 180,
        b'A'..=b'Z' => 150,
        b'_' | b'-' | b'/' => 120,
        0x80.. => 90,
        _ => 50,
    }
}

#[inline(always)]
fn word(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes.try_into().expect("an 8-byte chunk"))
}

impl Pattern {
    /// Compiles `source` (already unescaped: the EQL string `"a\\b"` is the pattern `a\b`),
    /// ASCII case folded, as `:` and `like~` compare.
    pub fn new(source: &str) -> Pattern {
        Pattern::with_case(source, false)
    }

    /// Compiles `source` with letters folded (`:`, `like~`) or compared exactly (`like`).
    pub fn with_case(source: &str, case_sensitive: bool) -> Pattern {
        let parts: Vec<&str> = source.split('*').collect();
        let segments: Vec<Segment> = parts
            .iter()
            .map(|p| Segment::parse(p, !case_sensitive))
            .collect();
        let strategy = choose_strategy(segments);
        Pattern {
            source: source.to_owned(),
            strategy,
        }
    }

    /// Equality with `value`, byte for byte (`==`, `in`): every character stands for itself.
    pub fn literal(value: &str) -> Pattern {
        Pattern {
            source: value.to_owned(),
            strategy: Strategy::Exact(Folded::new(value.as_bytes().to_vec(), false)),
        }
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// The strategy's name, for tests and for explaining a plan to a user.
    pub fn strategy_name(&self) -> &'static str {
        match self.strategy {
            Strategy::Exact(_) => "exact",
            Strategy::Prefix(_) => "prefix",
            Strategy::PrefixSlots(_) => "prefix-slots",
            Strategy::Slots(_) => "slots",
            Strategy::Suffix(_) => "suffix",
            Strategy::Contains(_) => "contains",
            Strategy::Anything => "anything",
            Strategy::Segments { .. } => "segments",
        }
    }

    /// Whether the whole of `value` matches.
    #[inline]
    pub fn is_match(&self, value: &str) -> bool {
        let hay = value.as_bytes();
        match &self.strategy {
            Strategy::Exact(lit) => lit.eq(hay),
            Strategy::Prefix(lit) => lit.is_prefix_of(hay),
            Strategy::PrefixSlots(seg) => seg.match_at(hay, 0).is_some(),
            Strategy::Slots(seg) => seg.match_at(hay, 0) == Some(hay.len()),
            Strategy::Suffix(lit) => {
                hay.len() >= lit.len() && lit.eq(&hay[hay.len() - lit.len()..])
            }
            Strategy::Contains(lit) => find_fold(hay, lit, 0).is_some(),
            Strategy::Anything => true,
            Strategy::Segments { head, middle, tail } => match_segments(hay, head, middle, tail),
        }
    }

    /// Whether every value this pattern matches is matched by `other` too (a sufficient test:
    /// false may also mean "not known"). `match_rows_many` then skips this pattern's set on a
    /// value `other`'s set rejected: `like "*UNKNOWN(*"` on the CallTraces where
    /// `stringContains~(CallTrace, "unknown(")` found no `(` to stop at.
    pub fn implies(&self, other: &Pattern) -> bool {
        if self.strategy == other.strategy {
            return true;
        }
        match &other.strategy {
            Strategy::Anything => true,
            Strategy::Contains(lit) => self.literals().any(|held| held.forces_within(lit)),
            Strategy::Prefix(lit) => self.anchored_head().is_some_and(|h| h.forces_at(lit, 0)),
            Strategy::Suffix(lit) => self
                .anchored_tail()
                .is_some_and(|t| t.len() >= lit.len() && t.forces_at(lit, t.len() - lit.len())),
            Strategy::Exact(lit) => match &self.strategy {
                Strategy::Exact(held) => held.len() == lit.len() && held.forces_at(lit, 0),
                _ => false,
            },
            _ => false,
        }
    }

    /// The literals every matching value holds somewhere.
    fn literals(&self) -> Box<dyn Iterator<Item = &Folded> + '_> {
        match &self.strategy {
            Strategy::Exact(lit)
            | Strategy::Prefix(lit)
            | Strategy::Suffix(lit)
            | Strategy::Contains(lit) => Box::new(std::iter::once(lit)),
            Strategy::PrefixSlots(seg) | Strategy::Slots(seg) => Box::new(seg.literals()),
            Strategy::Segments { head, middle, tail } => Box::new(
                head.literals()
                    .chain(middle.iter().flat_map(Segment::literals))
                    .chain(tail.literals()),
            ),
            Strategy::Anything => Box::new(std::iter::empty()),
        }
    }

    /// The literal every matching value starts with, if the pattern has one.
    fn anchored_head(&self) -> Option<&Folded> {
        match &self.strategy {
            Strategy::Exact(lit) | Strategy::Prefix(lit) => Some(lit),
            Strategy::PrefixSlots(seg) | Strategy::Slots(seg) => seg.first_literal(),
            Strategy::Segments { head, .. } => head.first_literal(),
            _ => None,
        }
    }

    /// The literal every matching value ends with, if the pattern has one.
    fn anchored_tail(&self) -> Option<&Folded> {
        match &self.strategy {
            Strategy::Exact(lit) | Strategy::Suffix(lit) => Some(lit),
            Strategy::Slots(seg) => seg.last_literal(),
            Strategy::Segments { tail, .. } => tail.last_literal(),
            _ => None,
        }
    }

    /// Whether a value longer than `head` and starting with it may match: false only when the
    /// first bytes alone rule the value out. The kernel asks this of the four bytes a string
    /// view holds inline, and so skips reading most values that fail an anchored pattern.
    #[inline]
    pub fn may_start_with(&self, head: &[u8]) -> bool {
        match &self.strategy {
            Strategy::Exact(lit) | Strategy::Prefix(lit) => lit.agrees_with_start(head),
            Strategy::PrefixSlots(seg) | Strategy::Slots(seg) => seg.may_start(head),
            Strategy::Segments { head: first, .. } => first.may_start(head),
            Strategy::Suffix(_) | Strategy::Contains(_) | Strategy::Anything => true,
        }
    }

    /// The answer on every value longer than `head` that starts with it, when those bytes
    /// decide it: a prefix that fits in `head`, a literal or slot the head already fails, a
    /// contained literal found in it. None when the bytes after `head` may still change it.
    /// (`head` may end inside a character: a `?` on a character the head cuts matches it, as
    /// the value holds all of it.)
    pub fn decided_by_head(&self, head: &[u8]) -> Option<bool> {
        let ruled_out = !self.may_start_with(head);
        match &self.strategy {
            // The value is longer than the head, so longer than a literal that fits in it.
            Strategy::Exact(lit) => (ruled_out || lit.len() <= head.len()).then_some(false),
            Strategy::Prefix(lit) if lit.len() <= head.len() => Some(lit.is_prefix_of(head)),
            Strategy::PrefixSlots(seg) if seg.match_at(head, 0).is_some() => Some(true),
            Strategy::Contains(lit) => find_fold(head, lit, 0).is_some().then_some(true),
            Strategy::Anything => Some(true),
            _ => ruled_out.then_some(false),
        }
    }
}

fn choose_strategy(mut segments: Vec<Segment>) -> Strategy {
    // `a**b` is `a*b`: empty segments between stars carry nothing.
    if segments.len() > 2 {
        let last = segments.len() - 1;
        let mut i = 0;
        segments.retain(|s| {
            let keep = i == 0 || i == last || !s.pieces.is_empty();
            i += 1;
            keep
        });
    }
    let n = segments.len();
    if n == 1 {
        let seg = segments.pop().unwrap_or_default();
        return match seg.as_literal() {
            Some(lit) => Strategy::Exact(lit),
            None => Strategy::Slots(seg),
        };
    }
    let head_empty = segments[0].pieces.is_empty();
    let tail_empty = segments[n - 1].pieces.is_empty();
    if n == 2 {
        if head_empty && tail_empty {
            return Strategy::Anything;
        }
        if tail_empty {
            let head = segments.swap_remove(0);
            return match head.as_literal() {
                Some(lit) => Strategy::Prefix(lit),
                None => Strategy::PrefixSlots(head),
            };
        }
        if head_empty {
            if let Some(lit) = segments[1].as_literal() {
                return Strategy::Suffix(lit);
            }
        }
    }
    if n == 3 && head_empty && tail_empty {
        if let Some(lit) = segments[1].as_literal() {
            return Strategy::Contains(lit);
        }
    }
    let tail = segments.pop().unwrap_or_default();
    let head = segments.remove(0);
    Strategy::Segments {
        head,
        middle: segments,
        tail,
    }
}

impl Segment {
    fn literals(&self) -> impl Iterator<Item = &Folded> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Literal(lit) => Some(lit),
            Piece::AnyChar => None,
        })
    }

    fn first_literal(&self) -> Option<&Folded> {
        match self.pieces.first() {
            Some(Piece::Literal(lit)) => Some(lit),
            _ => None,
        }
    }

    fn last_literal(&self) -> Option<&Folded> {
        match self.pieces.last() {
            Some(Piece::Literal(lit)) => Some(lit),
            _ => None,
        }
    }

    fn parse(text: &str, fold: bool) -> Segment {
        let mut pieces = Vec::new();
        let mut literal = Vec::new();
        for ch in text.chars() {
            if ch == '?' {
                if !literal.is_empty() {
                    let bytes = std::mem::take(&mut literal);
                    pieces.push(Piece::Literal(Folded::new(bytes, fold)));
                }
                pieces.push(Piece::AnyChar);
            } else {
                let mut buf = [0u8; 4];
                literal.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            }
        }
        if !literal.is_empty() {
            pieces.push(Piece::Literal(Folded::new(literal, fold)));
        }
        Segment { pieces }
    }

    /// Whether a value starting with `head` (and longer) may match the segment at its start.
    #[inline]
    fn may_start(&self, head: &[u8]) -> bool {
        let mut at = 0;
        for piece in &self.pieces {
            if at >= head.len() {
                return true;
            }
            match piece {
                Piece::Literal(lit) => {
                    if !lit.agrees_with_start(&head[at..]) {
                        return false;
                    }
                    at += lit.len();
                }
                Piece::AnyChar => at += utf8_width(head[at]),
            }
        }
        true
    }

    fn as_literal(&self) -> Option<Folded> {
        match self.pieces.as_slice() {
            [] => Some(Folded::default()),
            [Piece::Literal(lit)] => Some(lit.clone()),
            _ => None,
        }
    }

    fn char_count(&self) -> usize {
        self.pieces
            .iter()
            .map(|p| match p {
                Piece::Literal(lit) => lit.lower.iter().filter(|&&b| !is_continuation(b)).count(),
                Piece::AnyChar => 1,
            })
            .sum()
    }

    /// Matches the segment starting at byte `at` (a character boundary); returns where it ends.
    #[inline]
    fn match_at(&self, hay: &[u8], mut at: usize) -> Option<usize> {
        for piece in &self.pieces {
            match piece {
                Piece::Literal(lit) => {
                    let end = at + lit.len();
                    if end > hay.len() || !lit.eq(&hay[at..end]) {
                        return None;
                    }
                    at = end;
                }
                Piece::AnyChar => {
                    let &lead = hay.get(at)?;
                    at += utf8_width(lead);
                }
            }
        }
        Some(at)
    }

    /// Leftmost character boundary `p >= from` where the segment matches; returns its end.
    fn find_from(&self, hay: &[u8], from: usize) -> Option<usize> {
        match self.pieces.first() {
            None => Some(from),
            // Starts with a literal: jump between occurrences of it instead of trying every
            // position. A literal occurrence always starts on a character boundary, because the
            // literal itself is UTF-8 and starts with a non-continuation byte.
            Some(Piece::Literal(lit)) => {
                let mut start = from;
                while let Some(p) = find_fold(hay, lit, start) {
                    if let Some(end) = self.match_at(hay, p) {
                        return Some(end);
                    }
                    start = p + 1;
                }
                None
            }
            Some(Piece::AnyChar) => {
                let mut p = from;
                while p <= hay.len() {
                    if let Some(end) = self.match_at(hay, p) {
                        return Some(end);
                    }
                    if p == hay.len() {
                        break;
                    }
                    p += utf8_width(hay[p]);
                }
                None
            }
        }
    }
}

/// `head*m1*m2*...*tail`. The head is anchored at the start and the tail at the end; the tail
/// has a fixed width in characters, so it has exactly one possible start. Taking the leftmost
/// occurrence of each middle segment is optimal: any match using a later occurrence can use the
/// earlier one instead, leaving more room for what follows.
fn match_segments(hay: &[u8], head: &Segment, middle: &[Segment], tail: &Segment) -> bool {
    let Some(mut at) = head.match_at(hay, 0) else {
        return false;
    };
    let Some(tail_start) = nth_char_from_end(hay, tail.char_count()) else {
        return false;
    };
    if tail_start < at || tail.match_at(hay, tail_start) != Some(hay.len()) {
        return false;
    }
    for seg in middle {
        match seg.find_from(&hay[..tail_start], at) {
            Some(end) => at = end,
            None => return false,
        }
    }
    true
}

/// Byte index where the `n`-th character counted from the end starts.
fn nth_char_from_end(hay: &[u8], n: usize) -> Option<usize> {
    let mut at = hay.len();
    for _ in 0..n {
        if at == 0 {
            return None;
        }
        at -= 1;
        while at > 0 && is_continuation(hay[at]) {
            at -= 1;
        }
    }
    Some(at)
}

#[inline]
fn is_continuation(b: u8) -> bool {
    b & 0xC0 == 0x80
}

/// Width of the UTF-8 sequence that starts with `lead` (values are valid UTF-8).
#[inline]
fn utf8_width(lead: u8) -> usize {
    match lead {
        0x00..=0x7F => 1,
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

/// Leftmost occurrence of `lit` in `hay` at or after `from`, up to ASCII case (for a folded
/// literal). Candidates are found by searching for the literal's anchor byte: every occurrence
/// starting at `p` has it at `p + anchor`, so taking candidates in order finds the leftmost.
fn find_fold(hay: &[u8], lit: &Folded, from: usize) -> Option<usize> {
    if lit.lower.is_empty() {
        return (from <= hay.len()).then_some(from);
    }
    let k = lit.anchor;
    let byte = lit.lower[k];
    let folds = lit.mask[k] != 0;
    let mut start = from;
    while start + lit.len() <= hay.len() {
        let window = &hay[start + k..=hay.len() - lit.len() + k];
        let offset = if folds {
            memchr2(byte, byte.to_ascii_uppercase(), window)?
        } else {
            memchr(byte, window)?
        };
        let p = start + offset;
        if lit.eq(&hay[p..p + lit.len()]) {
            return Some(p);
        }
        start = p + 1;
    }
    None
}

/// Several patterns on one field: `field : (p1, p2, ...)` holds when any of them matches.
#[derive(Debug, Clone)]
pub struct PatternSet {
    patterns: Vec<Pattern>,
}

impl PatternSet {
    /// Wildcard patterns, ASCII case folded (`:`, `like~`).
    pub fn new<S: AsRef<str>>(sources: &[S]) -> PatternSet {
        PatternSet::with_case(sources, false)
    }

    /// Wildcard patterns, folded or compared exactly (`like`).
    pub fn with_case<S: AsRef<str>>(sources: &[S], case_sensitive: bool) -> PatternSet {
        PatternSet {
            patterns: sources
                .iter()
                .map(|s| Pattern::with_case(s.as_ref(), case_sensitive))
                .collect(),
        }
    }

    /// Equality with any of `values`, byte for byte (`==`, `in`).
    pub fn literals<S: AsRef<str>>(values: &[S]) -> PatternSet {
        PatternSet {
            patterns: values
                .iter()
                .map(|v| Pattern::literal(v.as_ref()))
                .collect(),
        }
    }

    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    #[inline]
    pub fn is_match(&self, value: &str) -> bool {
        self.patterns.iter().any(|p| p.is_match(value))
    }

    /// Whether every value this set matches is matched by `other` (each of its patterns implies
    /// one of `other`'s: `Pattern::implies`).
    pub fn implies(&self, other: &PatternSet) -> bool {
        self.patterns
            .iter()
            .all(|p| other.patterns.iter().any(|q| p.implies(q)))
    }

    /// Whether a value longer than `head` and starting with it may match some pattern.
    #[inline]
    pub fn may_start_with(&self, head: &[u8]) -> bool {
        self.patterns.iter().any(|p| p.may_start_with(head))
    }

    /// The set's answer on every value longer than `head` that starts with it, when those bytes
    /// decide it (`Pattern::decided_by_head`): one pattern decided true, or all decided false.
    pub fn decided_by_head(&self, head: &[u8]) -> Option<bool> {
        let mut all_false = true;
        for pattern in &self.patterns {
            match pattern.decided_by_head(head) {
                Some(true) => return Some(true),
                Some(false) => {}
                None => all_false = false,
            }
        }
        all_false.then_some(false)
    }
}

#[cfg(test)]
mod tests {
    use super::{Pattern, PatternSet};
    use proptest::prelude::*;
    use proptest::strategy::Strategy;

    /// The reference: a plain dynamic programme over characters, written from the definition.
    fn reference(pattern: &str, value: &str) -> bool {
        reference_with_case(pattern, value, false)
    }

    fn reference_with_case(pattern: &str, value: &str, case_sensitive: bool) -> bool {
        let p: Vec<char> = pattern.chars().collect();
        let v: Vec<char> = value.chars().collect();
        // m[i][j]: p[..i] matches v[..j]
        let mut m = vec![vec![false; v.len() + 1]; p.len() + 1];
        m[0][0] = true;
        for i in 1..=p.len() {
            for j in 0..=v.len() {
                m[i][j] = match p[i - 1] {
                    '*' => m[i - 1][j] || (j > 0 && m[i][j - 1]),
                    '?' => j > 0 && m[i - 1][j - 1],
                    c => {
                        j > 0
                            && m[i - 1][j - 1]
                            && (c == v[j - 1]
                                || (!case_sensitive
                                    && c.is_ascii()
                                    && c.eq_ignore_ascii_case(&v[j - 1])))
                    }
                };
            }
        }
        m[p.len()][v.len()]
    }

    fn strategy(p: &str) -> &'static str {
        Pattern::new(p).strategy_name()
    }

    #[test]
    fn strategies() {
        assert_eq!(strategy("abc"), "exact");
        assert_eq!(strategy(""), "exact");
        assert_eq!(strategy("abc*"), "prefix");
        assert_eq!(
            strategy("?:\\WINDOWS\\SYSTEM32\\ntdll.dll*"),
            "prefix-slots"
        );
        assert_eq!(strategy("a?c"), "slots");
        assert_eq!(strategy("*abc"), "suffix");
        assert_eq!(strategy("*abc*"), "contains");
        assert_eq!(strategy("*"), "anything");
        assert_eq!(strategy("***"), "anything");
        assert_eq!(
            strategy("?:\\Program Files\\Cisco\\AMP\\*\\sfc.exe"),
            "segments"
        );
        assert_eq!(strategy("*a?c"), "segments");
    }

    #[test]
    fn rule_cases() {
        let ntdll = Pattern::new("?:\\WINDOWS\\SYSTEM32\\ntdll.dll*");
        assert!(ntdll.is_match("C:\\Windows\\SYSTEM32\\ntdll.dll+9d4c4|C:\\x.dll+1"));
        assert!(ntdll.is_match("c:\\windows\\system32\\ntdll.dll+9d4c4"));
        assert!(!ntdll.is_match("\\\\?\\C:\\Windows\\System32\\ntdll.dll+9d4c4"));
        assert!(!ntdll.is_match(":\\Windows\\System32\\ntdll.dll+9d4c4"));
        assert!(!ntdll.is_match("UNKNOWN(000001F3C35A0014)"));
        // `?` is one character even when that character takes several bytes.
        assert!(ntdll.is_match("é:\\Windows\\System32\\ntdll.dll"));
        let cisco = Pattern::new("?:\\Program Files\\Cisco\\AMP\\*\\sfc.exe");
        assert!(cisco.is_match("C:\\Program Files\\Cisco\\AMP\\8.1.3\\x\\sfc.exe"));
        assert!(!cisco.is_match("C:\\Program Files\\Cisco\\AMP\\sfc.exe"));
        assert!(cisco.is_match("C:\\Program Files\\Cisco\\AMP\\\\sfc.exe"));
    }

    #[test]
    fn ascii_only_folding() {
        // U+212A KELVIN SIGN does not fold to `k`, nor Turkish dotted I to `i`.
        assert!(!Pattern::new("k").is_match("\u{212A}"));
        assert!(!Pattern::new("i").is_match("\u{130}"));
        assert!(Pattern::new("K").is_match("k"));
        assert!(Pattern::new("é").is_match("é"));
        assert!(!Pattern::new("é").is_match("É"));
    }

    #[test]
    fn case_sensitive_and_literal_cases() {
        let unknown = Pattern::with_case("*UNKNOWN(*", true);
        assert!(unknown.is_match("C:\\x.dll+1|UNKNOWN(0000)"));
        assert!(!unknown.is_match("C:\\x.dll+1|unknown(0000)"));
        assert!(Pattern::new("*UNKNOWN(*").is_match("C:\\x.dll+1|unknown(0000)"));
        assert!(Pattern::with_case("a?c", true).is_match("a日c"));
        assert!(Pattern::literal("0x1fffff").is_match("0x1fffff"));
        assert!(!Pattern::literal("0x1fffff").is_match("0x1FFFFF"));
        assert!(Pattern::literal("a*").is_match("a*"));
        assert!(!Pattern::literal("a*").is_match("ab"));
        // The anchor of a search is the rarest byte, wherever it sits in the literal.
        let contains = Pattern::new("*unknown(*");
        assert!(contains.is_match("(((unknown((("));
        assert!(contains.is_match("UnKnOwN("));
        assert!(!contains.is_match("unknown)unknown"));
    }

    #[test]
    fn first_bytes_rule_out_anchored_patterns() {
        let ntdll = Pattern::new("?:\\WINDOWS\\SYSTEM32\\ntdll.dll*");
        assert!(ntdll.may_start_with(b"C:\\W"));
        assert!(ntdll.may_start_with(b"c:\\w"));
        assert!(!ntdll.may_start_with(b"UNKN"));
        assert!(!ntdll.may_start_with(b"C:\\P"));
        // `?` takes a whole character, however many bytes.
        assert!(ntdll.may_start_with("é:\\".as_bytes()));
        assert!(Pattern::new("*x").may_start_with(b"abcd"));
        assert!(!Pattern::with_case("UNKNOWN(*", true).may_start_with(b"unkn"));
        assert!(!Pattern::literal("0x1fffff").may_start_with(b"0x14"));
    }

    #[test]
    fn implications_the_rules_have() {
        let contains = Pattern::new("*unknown(*");
        let exact_contains = Pattern::with_case("*UNKNOWN(*", true);
        assert!(exact_contains.implies(&contains));
        assert!(!contains.implies(&exact_contains));
        assert!(Pattern::new("UNKNOWN(*").implies(&contains));
        assert!(Pattern::with_case("UNKNOWN(*", true).implies(&exact_contains));
        assert!(!Pattern::new("UNKNOWN(*").implies(&exact_contains));
        assert!(Pattern::literal("unknown(").implies(&contains));
        let ntdll = Pattern::new("?:\\WINDOWS\\SYSTEM32\\ntdll.dll*");
        assert!(ntdll.implies(&Pattern::new("*\\ntdll.dll*")));
        assert!(ntdll.implies(&Pattern::new("*")));
        assert!(!ntdll.implies(&Pattern::new("c:\\*")));
        assert!(Pattern::new("c:\\windows\\*").implies(&Pattern::new("C:\\*")));
        assert!(Pattern::new("*\\lsass.exe").implies(&Pattern::new("*.exe")));
        assert!(!Pattern::new("*\\lsass.exe").implies(&Pattern::with_case("*.exe", true)));
        assert!(
            Pattern::with_case("*\\lsass.exe", true).implies(&Pattern::with_case("*.exe", true))
        );
        assert!(!Pattern::new("*").implies(&contains));
        let ntdll_316 = PatternSet::new(&["?:\\WINDOWS\\SYSTEM32\\ntdll.dll*", "*sysfer.dll*"]);
        assert!(PatternSet::new(&["*sysfer.dll*"]).implies(&ntdll_316));
        assert!(!ntdll_316.implies(&PatternSet::new(&["*sysfer.dll*"])));
        assert!(PatternSet::new(&[] as &[&str]).implies(&ntdll_316));
    }

    #[test]
    fn a_calltrace_head_decides_the_anchored_patterns() {
        let ntdll = PatternSet::new(&[
            "?:\\WINDOWS\\SYSTEM32\\ntdll.dll*",
            "?:\\Windows\\System32\\wow64cpu.dll*",
        ]);
        let head = b"C:\\Windows\\SYSTEM32\\ntdll.dll+9d";
        assert_eq!(ntdll.decided_by_head(head), Some(true));
        assert_eq!(
            ntdll.decided_by_head(b"UNKNOWN(00000000000000000000001)"),
            Some(false)
        );
        // A 32-byte head holds `wow64cpu.dll` after a one-byte drive letter, not after `é`.
        assert_eq!(
            ntdll.decided_by_head(b"C:\\Windows\\System32\\wow64cpu.dll"),
            Some(true)
        );
        assert_eq!(
            ntdll.decided_by_head(&"é:\\Windows\\System32\\wow64cpu.dll".as_bytes()[..32]),
            None
        );
        // A contains search is decided only where the head holds the literal.
        let unknown = PatternSet::new(&["*unknown(*"]);
        assert_eq!(unknown.decided_by_head(head), None);
        assert_eq!(
            unknown.decided_by_head(b"C:\\x.dll+1|UNKNOWN(0000000000001)"),
            Some(true)
        );
        // The value is longer than its head: an exact value that fits in the head is false.
        assert_eq!(
            PatternSet::literals(&["C:\\x.dll"]).decided_by_head(b"C:\\x.dll+12"),
            Some(false)
        );
        assert_eq!(
            PatternSet::new(&["*.dll"]).decided_by_head(b"C:\\x.dll"),
            None
        );
    }

    #[test]
    fn anything_matches_empty() {
        assert!(Pattern::new("*").is_match(""));
        assert!(!Pattern::new("?").is_match(""));
        assert!(Pattern::new("").is_match(""));
        assert!(!Pattern::new("").is_match("a"));
    }

    fn alphabet() -> impl Strategy<Value = char> {
        prop::sample::select(vec![
            'a', 'A', 'b', 'k', 'K', '\\', ':', '.', 'é', 'É', '\u{212A}', '日', '😀', '\n', '+',
        ])
    }

    /// A value `pattern` matches: each `?` replaced by `fill[0]`, each `*` by the rest of `fill`.
    fn filled_in(pattern: &[char], fill: &[char]) -> String {
        pattern
            .iter()
            .flat_map(|&c| match c {
                '*' => fill[1..].to_vec(),
                '?' => vec![fill[0]],
                c => vec![c],
            })
            .collect()
    }

    fn pattern_char() -> impl Strategy<Value = char> {
        prop_oneof![3 => alphabet(), 1 => Just('*'), 1 => Just('?')]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]
        #[test]
        fn agrees_with_reference(
            pattern in prop::collection::vec(pattern_char(), 0..8),
            value in prop::collection::vec(alphabet(), 0..12),
        ) {
            let pattern: String = pattern.into_iter().collect();
            let value: String = value.into_iter().collect();
            prop_assert_eq!(
                Pattern::new(&pattern).is_match(&value),
                reference(&pattern, &value),
                "pattern {:?} value {:?}", pattern, value
            );
        }

        #[test]
        fn case_sensitive_agrees_with_reference(
            pattern in prop::collection::vec(pattern_char(), 0..8),
            value in prop::collection::vec(alphabet(), 0..12),
        ) {
            let pattern: String = pattern.into_iter().collect();
            let value: String = value.into_iter().collect();
            prop_assert_eq!(
                Pattern::with_case(&pattern, true).is_match(&value),
                reference_with_case(&pattern, &value, true),
                "pattern {:?} value {:?}", pattern, value
            );
        }

        #[test]
        fn a_literal_is_byte_equality(
            literal in prop::collection::vec(pattern_char(), 0..6),
            value in prop::collection::vec(pattern_char(), 0..6),
        ) {
            let literal: String = literal.into_iter().collect();
            let value: String = value.into_iter().collect();
            prop_assert_eq!(Pattern::literal(&literal).is_match(&value), literal == value);
            prop_assert!(Pattern::literal(&literal).is_match(&literal));
        }

        /// The check on a value's first bytes never rules out a value that matches: the
        /// kernel skips a value on its word alone.
        #[test]
        fn the_first_bytes_never_rule_out_a_match(
            pattern in prop::collection::vec(pattern_char(), 0..8),
            value in prop::collection::vec(alphabet(), 0..12),
            head in 0usize..6,
            case_sensitive in any::<bool>(),
        ) {
            let pattern: String = pattern.into_iter().collect();
            let value: String = value.into_iter().collect();
            let compiled = Pattern::with_case(&pattern, case_sensitive);
            let head = &value.as_bytes()[..head.min(value.len())];
            if compiled.is_match(&value) {
                prop_assert!(compiled.may_start_with(head), "pattern {:?} value {:?}", pattern, value);
            }
            let literal = Pattern::literal(&pattern);
            if literal.is_match(&value) {
                prop_assert!(literal.may_start_with(head));
            }
        }

        /// `implies` is sound: whatever the one pattern matches, the other matches too. The
        /// other is often cut from the first (a piece of it between optional stars), so that
        /// implications are there to be found; the values include ones the first matches.
        #[test]
        fn an_implied_pattern_matches_whatever_implies_it(
            first in prop::collection::vec(pattern_char(), 0..8),
            cut in (0usize..9, 0usize..9),
            stars in (any::<bool>(), any::<bool>()),
            random in prop::collection::vec(pattern_char(), 0..6),
            use_random in any::<bool>(),
            cases in (any::<bool>(), any::<bool>()),
            fill in prop::collection::vec(alphabet(), 1..6),
            values in prop::collection::vec(prop::collection::vec(alphabet(), 0..12), 0..6),
        ) {
            let second: String = if use_random {
                random.into_iter().collect()
            } else {
                let (a, b) = (cut.0.min(first.len()), cut.1.min(first.len()));
                let piece: String = first[a.min(b)..a.max(b)].iter().collect();
                format!("{}{piece}{}", if stars.0 { "*" } else { "" }, if stars.1 { "*" } else { "" })
            };
            // `first` with its wildcards filled in: a value it matches (case-insensitively, in
            // every spelling of case).
            let filled = filled_in(&first, &fill);
            let first: String = first.into_iter().collect();
            let mut values: Vec<String> = values.into_iter().map(|v| v.into_iter().collect()).collect();
            values.extend([filled.clone(), filled.to_ascii_uppercase(), filled.to_ascii_lowercase()]);
            let p = Pattern::with_case(&first, cases.0);
            let q = Pattern::with_case(&second, cases.1);
            for (p, q) in [(&p, &q), (&Pattern::literal(&first), &q), (&p, &Pattern::literal(&second))] {
                if p.implies(q) {
                    for value in &values {
                        prop_assert!(
                            !p.is_match(value) || q.is_match(value),
                            "{:?} implies {:?}, yet value {:?}", p.source(), q.source(), value
                        );
                    }
                }
            }
        }

        /// `decided_by_head` is sound: what it decides on a value's first bytes (cut anywhere,
        /// inside a character too) holds for every longer value starting with them. The values
        /// include one the first pattern matches (its wildcards filled in), in either case.
        #[test]
        fn what_a_head_decides_holds_for_every_longer_value(
            sources in prop::collection::vec(prop::collection::vec(pattern_char(), 0..8), 1..3),
            fill in prop::collection::vec(alphabet(), 1..6),
            random in prop::collection::vec(alphabet(), 1..12),
            use_filled in any::<bool>(),
            upper in any::<bool>(),
            cut in 0usize..64,
            tails in prop::collection::vec(prop::collection::vec(alphabet(), 0..6), 1..5),
            case_sensitive in any::<bool>(),
        ) {
            let mut value: String = if use_filled {
                filled_in(&sources[0], &fill)
            } else {
                random.into_iter().collect()
            };
            if upper {
                value = value.to_ascii_uppercase();
            }
            prop_assume!(!value.is_empty());
            let cut = cut % value.len();
            let head = &value.as_bytes()[..cut];
            // The same head with other tails: from the end of the character the cut is in.
            let boundary = (cut..=value.len()).find(|&b| value.is_char_boundary(b)).unwrap();
            let mut values = vec![value.clone()];
            for tail in tails {
                let tail: String = tail.into_iter().collect();
                let other = format!("{}{tail}", &value[..boundary]);
                if other.len() > cut {
                    values.push(other);
                }
            }
            let sources: Vec<String> = sources.into_iter().map(|p| p.into_iter().collect()).collect();
            let mut sets = vec![PatternSet::with_case(&sources, case_sensitive), PatternSet::literals(&sources)];
            sets.extend(sources.iter().map(|p| PatternSet::with_case(&[p], case_sensitive)));
            for set in &sets {
                if let Some(answer) = set.decided_by_head(head) {
                    for v in &values {
                        prop_assert_eq!(
                            set.is_match(v), answer,
                            "patterns {:?} head {:?} value {:?}", sources, head, v
                        );
                    }
                }
            }
        }

        #[test]
        fn pattern_built_from_value_matches_it(
            value in prop::collection::vec(alphabet(), 0..12),
            holes in prop::collection::vec(0usize..3, 0..12),
        ) {
            // Replace some characters by `?` and some runs by `*`: the result must match.
            let chars: Vec<char> = value.to_vec();
            let mut pattern = String::new();
            for (i, c) in chars.iter().enumerate() {
                match holes.get(i) {
                    Some(1) => pattern.push('?'),
                    Some(2) => pattern.push('*'),
                    _ => pattern.push(*c),
                }
            }
            let value: String = chars.into_iter().collect();
            prop_assert!(Pattern::new(&pattern).is_match(&value), "pattern {:?} value {:?}", pattern, value);
        }
    }
}
