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

/// "00" to "99": two digits per division (integers are a tenth of a record's values).
const DIGIT_PAIRS: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

pub(crate) fn push_u64(out: &mut String, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    while v >= 100 {
        let pair = (v % 100) as usize * 2;
        v /= 100;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    }
    if v >= 10 {
        let pair = v as usize * 2;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    } else {
        i -= 1;
        buf[i] = b'0' + v as u8;
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
    // Byte `ORDER[i]` of the GUID is written at `AT[i]` of `{xxxxxxxx-xxxx-xxxx-xxxx-...}`.
    const ORDER: [usize; 16] = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15];
    const AT: [usize; 16] = [1, 3, 5, 7, 10, 12, 15, 17, 20, 22, 25, 27, 29, 31, 33, 35];
    let mut buf = *b"{00000000-0000-0000-0000-000000000000}";
    for (&at, &idx) in AT.iter().zip(&ORDER) {
        buf[at] = HEX_LOWER[usize::from(g[idx] >> 4)];
        buf[at + 1] = HEX_LOWER[usize::from(g[idx] & 0xf)];
    }
    // SAFETY: hex digits, braces and dashes: ASCII.
    unsafe { out.as_mut_vec() }.extend_from_slice(&buf);
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
        // Most text is ASCII: sixteen code units at a time where SSE2 is (every x86-64), then
        // eight at a time, straight into the string.
        i += push_ascii_blocks(vec, &units[i..]);
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

/// How many code units come before the first NUL unit (all of them when there is none): where
/// a string value ends (looked for one unit at a time, 3.5% of the decoder's instructions).
pub(crate) fn units_before_nul(units: &[[u8; 2]]) -> usize {
    let mut i = nul_free_blocks(units);
    while units.get(i).is_some_and(|u| *u != [0, 0]) {
        i += 1;
    }
    i
}

/// How many units `units` starts with, in blocks of eight, that hold no NUL unit.
#[cfg(target_arch = "x86_64")]
fn nul_free_blocks(units: &[[u8; 2]]) -> usize {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi16, _mm_loadu_si128, _mm_movemask_epi8, _mm_setzero_si128,
    };
    let mut i = 0;
    // SAFETY: SSE2 is part of x86-64; each load reads units i..i + 8, inside `units`.
    unsafe {
        while i + 8 <= units.len() {
            let x = _mm_loadu_si128(units.as_ptr().add(i).cast::<__m128i>());
            if _mm_movemask_epi8(_mm_cmpeq_epi16(x, _mm_setzero_si128())) != 0 {
                break;
            }
            i += 8;
        }
    }
    i
}

#[cfg(not(target_arch = "x86_64"))]
fn nul_free_blocks(_units: &[[u8; 2]]) -> usize {
    0
}

/// Appends the ASCII code units that `units` starts with, sixteen at a time (the rest of the
/// run, under sixteen, is left); returns how many it appended.
#[cfg(target_arch = "x86_64")]
fn push_ascii_blocks(vec: &mut Vec<u8>, units: &[[u8; 2]]) -> usize {
    use std::arch::x86_64::{
        __m128i, _mm_and_si128, _mm_cmpeq_epi16, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128,
        _mm_packus_epi16, _mm_set1_epi16, _mm_setzero_si128, _mm_storeu_si128,
    };
    let mut i = 0;
    // SAFETY: SSE2 is part of x86-64. The loads read units i..i + 16, inside `units`; the store
    // writes 16 bytes into capacity reserved just before, each an ASCII byte (every unit of the
    // block is below 0x80, and packing keeps such a unit's low byte), so the length may cover
    // them and the bytes stay valid UTF-8.
    unsafe {
        let not_ascii = _mm_set1_epi16(0xff80_u16 as i16);
        while i + 16 <= units.len() {
            let at = units.as_ptr().add(i).cast::<__m128i>();
            let (a, b) = (_mm_loadu_si128(at), _mm_loadu_si128(at.add(1)));
            let high = _mm_and_si128(_mm_or_si128(a, b), not_ascii);
            if _mm_movemask_epi8(_mm_cmpeq_epi16(high, _mm_setzero_si128())) != 0xffff {
                break;
            }
            vec.reserve(16);
            let end = vec.len();
            _mm_storeu_si128(
                vec.as_mut_ptr().add(end).cast::<__m128i>(),
                _mm_packus_epi16(a, b),
            );
            vec.set_len(end + 16);
            i += 16;
        }
    }
    i
}

#[cfg(not(target_arch = "x86_64"))]
fn push_ascii_blocks(_vec: &mut Vec<u8>, _units: &[[u8; 2]]) -> usize {
    0
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
        let mut powers: Vec<u64> = (0..20).map(|e| 10u64.pow(e)).collect();
        powers.extend(powers.clone().iter().map(|p| p - 1));
        powers.extend([99, 100, 101, 4_294_967_295, 12_345_678_901]);
        for v in powers {
            assert_eq!(with(|s| push_u64(s, v)), v.to_string());
        }
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
        // Against the fields formatted one by one (little-endian u32, u16, u16, then bytes).
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..1000 {
            let mut g = [0u8; 16];
            for b in &mut g {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                *b = (state >> 56) as u8;
            }
            let d1 = u32::from_le_bytes(g[..4].try_into().unwrap());
            let d2 = u16::from_le_bytes([g[4], g[5]]);
            let d3 = u16::from_le_bytes([g[6], g[7]]);
            let tail: String = g[8..].iter().map(|b| format!("{b:02x}")).collect();
            let want = format!(
                "{{{d1:08x}-{d2:04x}-{d3:04x}-{}-{}}}",
                &tail[..4],
                &tail[4..]
            );
            assert_eq!(with(|s| push_guid(s, &g)), want);
        }
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
        // A unit that is not ASCII at every place of and around the 16- and 8-unit blocks.
        for odd in ['\u{80}', '\u{e9}', '\u{7ff}', '\u{1F600}', '\u{100}'] {
            for before in 0..40 {
                let text = format!("{}{odd}{}", "a".repeat(before), "b".repeat(40 - before));
                let bytes: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
                assert_eq!(with(|s| push_utf16(s, &bytes)), text);
            }
        }
    }

    #[test]
    fn strings_end_at_their_first_nul_unit() {
        for len in 0..40 {
            // Units whose low or high byte alone is zero do not end a string.
            let mut units: Vec<[u8; 2]> = (0..len).map(|i| [i as u8 % 3, 1]).collect();
            assert_eq!(units_before_nul(&units), len);
            for nul in 0..len {
                let saved = units[nul];
                units[nul] = [0, 0];
                assert_eq!(units_before_nul(&units), nul, "{len} {nul}");
                units[nul] = saved;
            }
        }
    }

    #[test]
    fn escapes_are_found_at_every_place_of_a_block() {
        for special in ['"', '\\', '\n', '\u{0}', '\u{1f}'] {
            for before in 0..40 {
                // Bytes just around the escapes' ranges (space, DEL, non-ASCII) around it.
                let text = format!(
                    "{}{special}{}",
                    " \u{7f}\u{e9}~".repeat(before / 4),
                    "x".repeat(before)
                );
                assert_eq!(
                    with(|s| push_json_str(s, &text)),
                    serde_json::to_string(&text).unwrap()
                );
            }
        }
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
                0..80,
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
            // Mostly ASCII, with runs around the 16- and 8-unit blocks, non-ASCII, surrogates.
            units in proptest::collection::vec(
                proptest::prop_oneof![
                    8 => 0x20u16..0x7f,
                    1 => 0x80u16..0x800,
                    1 => 0xd800u16..0xe000,
                    1 => proptest::num::u16::ANY,
                ],
                0..80,
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
