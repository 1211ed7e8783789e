//! The lines of NDJSON text worth parsing, picked by a byte-level test before any parsing.
//!
//! A scan for Sysmon event 10 needs only the lines that contain its CallTrace: in a winlogbeat
//! export that is a fifth of the lines, and a JSON parser costs far more per byte than a
//! substring search. `select_lines` walks a block of text once, line by line, and keeps the
//! lines that contain any of the needles; each needle is searched for across the whole block
//! (not line by line), so the cost is that of the search itself (SIMD, several GB/s) plus a few
//! instructions per line.

use memchr::memmem::Finder;

use crate::value_prefix::ExcludedValues;

/// The lines of a block that passed the test, joined by `\n` (each without its line break and
/// a trailing `\r`), and what the block held.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Selection {
    /// The kept lines, each followed by `\n`.
    pub text: Vec<u8>,
    /// The 1-based number of each kept line in the whole file.
    pub numbers: Vec<u64>,
    /// Lines in the block that hold something other than white space.
    pub lines: u64,
    /// `(line number, length)` of every line longer than the limit; never kept.
    pub overlong: Vec<(u64, u64)>,
    /// The number the line after the block's last line has.
    pub next_number: u64,
    /// Lines that hold a needle but were proved unable to alert (`LineTest::excluding`).
    pub excluded: u64,
}

/// The needles a kept line must contain one of (none: every line is kept).
pub struct LineTest {
    finders: Vec<Finder<'static>>,
    excluded: Option<ExcludedValues>,
}

impl LineTest {
    pub fn new(needles: &[Vec<u8>]) -> Self {
        LineTest {
            finders: needles
                .iter()
                .filter(|n| !n.is_empty())
                .map(|n| Finder::new(n).into_owned())
                .collect(),
            excluded: None,
        }
    }

    /// The same test, but a line that holds a needle is still left out when `excluded` proves
    /// that it cannot alert (a first frame every rule excludes).
    pub fn excluding(mut self, excluded: ExcludedValues) -> Self {
        self.excluded = Some(excluded);
        self
    }

    pub fn keeps_all(&self) -> bool {
        self.finders.is_empty()
    }
}

/// Python's `bytes.strip()` white space: a line of nothing else is blank.
fn is_blank(line: &[u8]) -> bool {
    line.iter()
        .all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c))
}

/// The lines of `data` (whole lines; a last line without a line break counts) that contain
/// any needle of `test`, blank lines and lines longer than `max_line` bytes left out.
/// `first_number` is the number of the block's first line in its file.
pub fn select_lines(data: &[u8], test: &LineTest, max_line: usize, first_number: u64) -> Selection {
    let (spans, mut out) = select_spans(data, test, max_line, first_number);
    out.text = joined(data, &spans);
    out
}

/// What `select_lines` keeps, as `(start, end)` spans of `data` (each line without its break
/// and a trailing `\r`), with the rest of the selection (its `text` left empty): a caller that
/// has a buffer of its own copies the kept lines once, straight into it.
pub fn select_spans(
    data: &[u8],
    test: &LineTest,
    max_line: usize,
    first_number: u64,
) -> (Vec<(usize, usize)>, Selection) {
    let mut out = Selection::default();
    let mut spans = Vec::new();
    // Where each needle next occurs, at or after the current line's start once updated
    // (None: nowhere further on).
    let mut next: Vec<Option<usize>> = test.finders.iter().map(|f| f.find(data)).collect();
    let mut start = 0usize;
    let mut number = first_number;
    let ends = memchr::memchr_iter(b'\n', data).chain(
        // The last line when the block does not end with a line break.
        (data.last().is_some_and(|&b| b != b'\n')).then_some(data.len()),
    );
    for end in ends {
        let mut line = &data[start..end];
        if let Some(stripped) = line.strip_suffix(b"\r") {
            line = stripped;
        }
        if line.len() > max_line {
            out.overlong.push((number, line.len() as u64));
        } else if !is_blank(line) {
            out.lines += 1;
            let mut keep = test.keeps_all()
                || test
                    .finders
                    .iter()
                    .zip(next.iter_mut())
                    .any(|(finder, at)| {
                        if at.is_some_and(|p| p < start) {
                            // The last hit lies before this line: search on from here.
                            *at = finder.find(&data[start..]).map(|p| start + p);
                        }
                        at.is_some_and(|p| p + finder.needle().len() <= end)
                    });
            if keep && test.excluded.as_ref().is_some_and(|e| e.proves(line)) {
                keep = false;
                out.excluded += 1;
            }
            if keep {
                spans.push((start, start + line.len()));
                out.numbers.push(number);
            }
        }
        number += 1;
        start = end + 1;
    }
    out.next_number = number;
    (spans, out)
}

/// How many bytes the kept `spans` take as lines, each followed by `\n`.
pub fn joined_len(spans: &[(usize, usize)]) -> usize {
    spans.iter().map(|(s, e)| e - s + 1).sum()
}

/// The kept `spans` of `data` as lines, each followed by `\n`, written into `out`, which holds
/// exactly `joined_len(spans)` bytes.
pub fn join_into(data: &[u8], spans: &[(usize, usize)], out: &mut [u8]) {
    let mut at = 0;
    for &(start, end) in spans {
        let line = &data[start..end];
        out[at..at + line.len()].copy_from_slice(line);
        out[at + line.len()] = b'\n';
        at += line.len() + 1;
    }
}

fn joined(data: &[u8], spans: &[(usize, usize)]) -> Vec<u8> {
    let mut out = vec![0; joined_len(spans)];
    join_into(data, spans, &mut out);
    out
}

/// The lines at the 0-based `indices` (ascending) of `text`, whose lines each end with `\n`,
/// each followed by `\n`: the few lines of a block that alerted, cut out without splitting the
/// whole block into lines. Indices past the last line are ignored.
pub fn pick_lines(text: &[u8], indices: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut wanted = indices.iter().copied().peekable();
    let mut start = 0;
    for (index, end) in memchr::memchr_iter(b'\n', text).enumerate() {
        let Some(&next) = wanted.peek() else { break };
        if index == next {
            out.extend_from_slice(&text[start..=end]);
            while wanted.next_if(|&i| i <= index).is_some() {}
        }
        start = end + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn select(data: &[u8], needles: &[&[u8]], max_line: usize) -> Selection {
        let test = LineTest::new(&needles.iter().map(|n| n.to_vec()).collect::<Vec<_>>());
        select_lines(data, &test, max_line, 1)
    }

    /// The same selection done the plain way: split, then test each line on its own.
    fn reference(data: &[u8], needles: &[&[u8]], max_line: usize) -> Selection {
        let mut out = Selection::default();
        let mut pieces: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
        if data.last() == Some(&b'\n') || data.is_empty() {
            pieces.pop();
        }
        out.next_number = pieces.len() as u64 + 1;
        for (i, piece) in pieces.into_iter().enumerate() {
            let line = piece.strip_suffix(b"\r").unwrap_or(piece);
            let number = i as u64 + 1;
            if line.len() > max_line {
                out.overlong.push((number, line.len() as u64));
                continue;
            }
            if is_blank(line) {
                continue;
            }
            out.lines += 1;
            let hit = needles.is_empty()
                || needles
                    .iter()
                    .any(|n| !n.is_empty() && line.windows(n.len()).any(|w| w == *n))
                || needles.iter().all(|n| n.is_empty());
            if hit {
                out.text.extend_from_slice(line);
                out.text.push(b'\n');
                out.numbers.push(number);
            }
        }
        out
    }

    #[test]
    fn keeps_lines_with_a_needle_and_numbers_them() {
        let data =
            b"{\"a\":1}\n{\"CallTrace\":\"x\"}\r\n\n   \n{\"b\":\"\\u0043\"}\nlast CallTrace";
        let got = select(data, &[b"CallTrace", b"\\u00"], 1 << 20);
        assert_eq!(
            got.text,
            b"{\"CallTrace\":\"x\"}\n{\"b\":\"\\u0043\"}\nlast CallTrace\n".to_vec()
        );
        assert_eq!(got.numbers, vec![2, 5, 6]);
        assert_eq!(got.lines, 4);
        assert!(got.overlong.is_empty());
    }

    #[test]
    fn a_needle_across_a_line_break_is_no_hit() {
        let got = select(
            b"Call\nTrace\nCallTrace\n",
            &[b"Call\nTrace", b"CallTrace"],
            100,
        );
        assert_eq!(got.numbers, vec![3]);
    }

    #[test]
    fn overlong_lines_are_reported_not_kept() {
        let data = b"short CallTrace\nthis line is too long CallTrace\nok\n";
        let got = select(data, &[], 20);
        assert_eq!(got.overlong, vec![(2, 31)]);
        assert_eq!(got.numbers, vec![1, 3]);
        assert_eq!(got.lines, 2);
    }

    #[test]
    fn lines_proved_excluded_are_left_out_and_counted() {
        use crate::value_prefix::{ExcludedValues, JsonPrefix};
        let ntdll = JsonPrefix::new("?:\\WINDOWS\\SYSTEM32\\ntdll.dll", false).unwrap();
        let test = LineTest::new(&[b"CallTrace".to_vec(), b"\\u00".to_vec()])
            .excluding(ExcludedValues::new(b"CallTrace", vec![ntdll]));
        let data = concat!(
            r#"{"CallTrace":"C:\\Windows\\System32\\ntdll.dll+1"}"#,
            "\n{\"a\":1}\n",
            r#"{"CallTrace":"UNKNOWN(0)"}"#,
            "\n",
        );
        let got = select_lines(data.as_bytes(), &test, 1 << 20, 1);
        assert_eq!(got.numbers, vec![3]);
        assert_eq!((got.lines, got.excluded), (3, 1));
    }

    #[test]
    fn without_needles_every_line_is_kept() {
        let got = select(b"a\nb\n\nc", &[], 100);
        assert_eq!(got.text, b"a\nb\nc\n".to_vec());
        assert_eq!(got.numbers, vec![1, 2, 4]);
    }

    proptest::proptest! {
        #[test]
        fn picks_the_lines_splitting_would(
            lines in proptest::collection::vec("[a-z ]{0,5}", 0..30),
            picks in proptest::collection::btree_set(0usize..35, 0..10),
        ) {
            let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
            let indices: Vec<usize> = picks.into_iter().collect();
            let want: String = indices
                .iter()
                .filter_map(|&i| lines.get(i))
                .map(|l| format!("{l}\n"))
                .collect();
            proptest::prop_assert_eq!(pick_lines(text.as_bytes(), &indices), want.into_bytes());
        }

        #[test]
        fn agrees_with_splitting_line_by_line(
            words in proptest::collection::vec(
                proptest::sample::select(vec![
                    "CallTrace", "Call", "Trace", "\\u00", "\\u", "10", "\n", "\r\n", " ", "{}",
                    "x", "\"", "\n\n",
                ]),
                0..60,
            ),
            max_line in 1usize..40,
        ) {
            let data = words.concat().into_bytes();
            let needles: [&[u8]; 2] = [b"CallTrace", b"\\u00"];
            proptest::prop_assert_eq!(
                select(&data, &needles, max_line),
                reference(&data, &needles, max_line)
            );
            proptest::prop_assert_eq!(select(&data, &[], max_line), reference(&data, &[], max_line));
        }
    }
}
