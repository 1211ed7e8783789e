//! Writing values as text, without `core::fmt` (which costs more than the rest of a record's
//! conversion: GUIDs, numbers and times are in every record).

const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";
const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// Appends ASCII bytes (callers only pass ASCII).
fn push_ascii(out: &mut String, ascii: &[u8]) {
    assert!(ascii.is_ascii());
    // SAFETY: ASCII bytes are valid UTF-8 (checked above, which costs less than `from_utf8`).
    unsafe { out.as_mut_vec() }.extend_from_slice(ascii);
}

pub(crate) fn push_u64(out: &mut String, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    push_ascii(out, &buf[i..]);
}

pub(crate) fn push_i64(out: &mut String, v: i64) {
    if v < 0 {
        out.push('-');
    }
    push_u64(out, v.unsigned_abs());
}

/// `v` in decimal, zero-padded to `width` digits (at least).
pub(crate) fn push_padded(out: &mut String, mut v: u64, width: usize) {
    let mut buf = [b'0'; 20];
    let mut i = buf.len();
    while v > 0 {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    let start = i.min(buf.len() - width.min(buf.len()));
    push_ascii(out, &buf[start..]);
}

/// `0x` and `v` in lower-case hex, without leading zeros.
pub(crate) fn push_hex_prefixed(out: &mut String, mut v: u64) {
    let mut buf = [0u8; 18];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = HEX_LOWER[(v & 0xf) as usize];
        v >>= 4;
        if v == 0 {
            break;
        }
    }
    i -= 2;
    buf[i] = b'0';
    buf[i + 1] = b'x';
    push_ascii(out, &buf[i..]);
}

/// Bytes as upper-case hex pairs.
pub(crate) fn push_hex_bytes_upper(out: &mut String, bytes: &[u8]) {
    let mut buf = [0u8; 128];
    for chunk in bytes.chunks(buf.len() / 2) {
        for (i, b) in chunk.iter().enumerate() {
            buf[2 * i] = HEX_UPPER[usize::from(b >> 4)];
            buf[2 * i + 1] = HEX_UPPER[usize::from(b & 0xf)];
        }
        push_ascii(out, &buf[..2 * chunk.len()]);
    }
}

/// A GUID as Windows renders it: `{d1-d2-d3-d4[0..2]-d4[2..8]}`, lower case, data1-3 little
/// endian.
pub(crate) fn push_guid(out: &mut String, g: &[u8; 16]) {
    const ORDER: [usize; 16] = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15];
    let mut buf = [b'-'; 38];
    buf[0] = b'{';
    buf[37] = b'}';
    let mut n = 1;
    for (i, &idx) in ORDER.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            n += 1;
        }
        buf[n] = HEX_LOWER[usize::from(g[idx] >> 4)];
        buf[n + 1] = HEX_LOWER[usize::from(g[idx] & 0xf)];
        n += 2;
    }
    push_ascii(out, &buf);
}

/// Appends UTF-16LE text (unpaired surrogates become U+FFFD).
pub(crate) fn push_utf16(out: &mut String, bytes: &[u8]) {
    let units = bytes.as_chunks::<2>().0;
    // SAFETY: only ASCII bytes (each checked below) and whole UTF-8 encoded `char`s are
    // appended, so the vector stays valid UTF-8.
    let vec = unsafe { out.as_mut_vec() };
    vec.reserve(units.len());
    let mut i = 0;
    while i < units.len() {
        // Most text is ASCII: eight code units at a time, straight into the string.
        while let Some(block) = units.get(i..i + 8) {
            let block = block.as_flattened();
            let a = u64::from_le_bytes(block[..8].try_into().expect("8 bytes"));
            let b = u64::from_le_bytes(block[8..].try_into().expect("8 bytes"));
            if (a | b) & 0xff80_ff80_ff80_ff80 != 0 {
                break;
            }
            vec.extend_from_slice(&[
                block[0], block[2], block[4], block[6], block[8], block[10], block[12], block[14],
            ]);
            i += 8;
        }
        while let Some(&[lo, 0]) = units.get(i) {
            if lo >= 0x80 {
                break;
            }
            vec.push(lo);
            i += 1;
        }
        let start = i;
        while units.get(i).is_some_and(|&[lo, hi]| hi != 0 || lo >= 0x80) {
            i += 1;
        }
        let other = units[start..i].iter().map(|u| u16::from_le_bytes(*u));
        for c in char::decode_utf16(other) {
            let mut buf = [0u8; 4];
            vec.extend_from_slice(c.unwrap_or('\u{FFFD}').encode_utf8(&mut buf).as_bytes());
        }
    }
}

/// Whether a byte needs escaping in a JSON string.
const JSON_ESCAPE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// The index of the first byte at or after `i` that needs escaping in a JSON string (the
/// length when none does).
fn next_escape(bytes: &[u8], mut i: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Most values need no escape at all: eight bytes at a time, with the usual tests for a byte
    // below 0x20 and for a zero byte (of the block XOR `"` and XOR `\`). They tell only
    // whether the block has such a byte, never wrongly: the bytes are then looked at one by one.
    while let Some(block) = bytes.get(i..i + 8) {
        let x = u64::from_le_bytes(block.try_into().expect("8 bytes"));
        let control = x.wrapping_sub(ONES * 0x20) & !x;
        let quote =
            (x ^ (ONES * u64::from(b'"'))).wrapping_sub(ONES) & !(x ^ (ONES * u64::from(b'"')));
        let backslash =
            (x ^ (ONES * u64::from(b'\\'))).wrapping_sub(ONES) & !(x ^ (ONES * u64::from(b'\\')));
        if (control | quote | backslash) & HIGH != 0 {
            break;
        }
        i += 8;
    }
    while bytes.get(i).is_some_and(|&b| !JSON_ESCAPE[usize::from(b)]) {
        i += 1;
    }
    i
}

/// Appends `s` as a JSON string.
pub(crate) fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    push_json_escaped(out, s, HEX_LOWER);
    out.push('"');
}

/// Appends `s` as the inside of a JSON string, as the evtx crate's renderer escapes text:
/// the same escapes as [`push_json_str`], but other control characters as `\u00XX` in upper
/// case.
pub(crate) fn push_json_escaped_upper(out: &mut String, s: &str) {
    push_json_escaped(out, s, HEX_UPPER);
}

fn push_json_escaped(out: &mut String, s: &str, hex: &[u8; 16]) {
    let bytes = s.as_bytes();
    let mut run = 0;
    let mut i = next_escape(bytes, 0);
    while let Some(&b) = bytes.get(i) {
        // `i` is at an ASCII byte: a character boundary.
        out.push_str(&s[run..i]);
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x08 => out.push_str("\\b"),
            0x0c => out.push_str("\\f"),
            _ => {
                out.push_str("\\u00");
                out.push(char::from(hex[usize::from(b >> 4)]));
                out.push(char::from(hex[usize::from(b & 0xf)]));
            }
        }
        run = i + 1;
        i = next_escape(bytes, run);
    }
    out.push_str(&s[run..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(f: impl FnOnce(&mut String)) -> String {
        let mut s = String::new();
        f(&mut s);
        s
    }

    #[test]
    fn numbers() {
        for v in [0u64, 7, 10, 1972, u64::MAX] {
            assert_eq!(with(|s| push_u64(s, v)), v.to_string());
            assert_eq!(with(|s| push_hex_prefixed(s, v)), format!("0x{v:x}"));
        }
        for v in [0i64, -1, 42, i64::MIN, i64::MAX] {
            assert_eq!(with(|s| push_i64(s, v)), v.to_string());
        }
        assert_eq!(with(|s| push_padded(s, 5, 7)), "0000005");
        assert_eq!(with(|s| push_padded(s, 2020, 4)), "2020");
        assert_eq!(with(|s| push_padded(s, 0, 2)), "00");
        assert_eq!(with(|s| push_padded(s, 123, 2)), "123");
        assert_eq!(
            with(|s| push_hex_bytes_upper(s, &[0x00, 0xab, 0x1f])),
            "00AB1F"
        );
        let long: Vec<u8> = (0..=255).collect();
        let expected: String = long.iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(with(|s| push_hex_bytes_upper(s, &long)), expected);
    }

    #[test]
    fn guids() {
        let g = [
            0x96, 0x3d, 0x7f, 0x74, 0x91, 0xa5, 0xfb, 0x5e, 0x00, 0x00, 0x00, 0x10, 0x9f, 0xe4,
            0xcc, 0x01,
        ];
        assert_eq!(
            with(|s| push_guid(s, &g)),
            "{747f3d96-a591-5efb-0000-00109fe4cc01}"
        );
    }

    #[test]
    fn json_strings() {
        let mut out = String::new();
        push_json_str(&mut out, "C:\\a\"b\n\u{1}\u{1f}é\t");
        assert_eq!(out, r#""C:\\a\"b\n\u0001\u001fé\t""#);
        let back: String = serde_json::from_str(&out).unwrap();
        assert_eq!(back, "C:\\a\"b\n\u{1}\u{1f}é\t");
    }

    #[test]
    fn utf16() {
        for text in [
            "",
            "ascii only",
            "ab\u{e9}c\u{1F600}d",
            "\u{e9}\u{e8}",
            &"x".repeat(600),
        ] {
            let bytes: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
            assert_eq!(with(|s| push_utf16(s, &bytes)), text);
        }
        assert_eq!(with(|s| push_utf16(s, &[0x00, 0xd8, b'x', 0])), "\u{FFFD}x");
    }

    proptest::proptest! {
        #[test]
        fn json_strings_are_escaped_as_serde_json_escapes_them(
            // Runs of plain bytes around the eight-byte blocks, and every kind of escape.
            chars in proptest::collection::vec(
                proptest::prop_oneof![
                    8 => proptest::char::range(' ', '~'),
                    1 => proptest::char::range('\u{0}', '\u{1f}'),
                    1 => proptest::sample::select(vec!['"', '\\', '\u{7f}', '\u{e9}', '\u{1F600}']),
                    1 => proptest::char::any(),
                ],
                0..40,
            ),
        ) {
            let text: String = chars.into_iter().collect();
            proptest::prop_assert_eq!(
                with(|s| push_json_str(s, &text)),
                serde_json::to_string(&text).unwrap()
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn utf16_is_decoded_as_std_decodes_it(
            // Mostly ASCII, with runs around the eight-unit blocks, non-ASCII, surrogates.
            units in proptest::collection::vec(
                proptest::prop_oneof![
                    8 => 0x20u16..0x7f,
                    1 => 0x80u16..0x800,
                    1 => 0xd800u16..0xe000,
                    1 => proptest::num::u16::ANY,
                ],
                0..40,
            ),
        ) {
            let bytes: Vec<u8> = units.iter().flat_map(|u| u.to_le_bytes()).collect();
            proptest::prop_assert_eq!(
                with(|s| push_utf16(s, &bytes)),
                String::from_utf16_lossy(&units)
            );
        }
    }
}
