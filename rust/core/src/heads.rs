//! What a value's first bytes decide, remembered per distinct first bytes.
//!
//! The rules' CallTrace patterns are mostly anchored prefixes (`?:\WINDOWS\SYSTEM32\ntdll.dll*`,
//! `UNKNOWN(*`), decided within a value's first 32 bytes; and CallTraces, nearly all distinct as
//! wholes, start in few ways (2,431 distinct first 32 bytes among 500k synthetic ones: the first
//! module and the start of its offset). So the kernels look a long value's first `HEAD_BYTES`
//! up in a table of what those bytes decide (`PatternSet::decided_by_head`) and match only the
//! sets they leave open (a search for a contained literal, a tail).

use crate::kernel::memo_window_ends;

/// How many first bytes of a value are looked up: enough for the ntdll patterns (a `?`, 28 or
/// 31 bytes of literal), few enough that the first module's offset adds few distinct heads.
pub(crate) const HEAD_BYTES: usize = 32;

/// The most sets a table answers for: an entry packs which of them a head decides and their
/// answers into one word.
pub(crate) const HEAD_SETS_MAX: usize = 31;

/// The bit of an entry that says it holds one (sets use bits `0..31` of each half).
const STORED: u64 = 1 << 31;

/// Per distinct head, which sets it decides and their answers; one table per thread, allocated
/// on first use and sized for the call's rows. Like the view memos, it switches itself off for
/// the rest of a call when a window of lookups finds few repeats (`memo_window_ends`).
///
/// The heads and the entries are two arrays: a 32-byte head aligned to 32 bytes never spans
/// two cache lines, where a 48-byte slot holding both spans two for every other head (ten
/// rules' filter over 500k CallTraces: 47 ms of CPU against 48-50 ms with such slots).
pub(crate) struct HeadMemo {
    heads: Vec<Head>,
    entries: Vec<u64>,
    bits: u32,
    lookups: u32,
    hits: u32,
    on: bool,
}

#[derive(Clone, Copy, Default, PartialEq, Eq)]
#[repr(C, align(32))]
struct Head([u64; 4]);

impl HeadMemo {
    /// A table for a call over `rows` values of `sets` sets: 64 heads for a thousand rows, at
    /// most 16,384 (640 KiB) from 256k rows on; none for more than `HEAD_SETS_MAX` sets.
    pub(crate) fn new(rows: usize, sets: usize) -> HeadMemo {
        HeadMemo {
            heads: Vec::new(),
            entries: Vec::new(),
            bits: (rows / 16).max(1).ilog2().clamp(6, 14),
            lookups: 0,
            hits: 0,
            on: sets <= HEAD_SETS_MAX,
        }
    }

    /// For a value longer than `HEAD_BYTES`: the sets (bits) its head decides, and their
    /// answers; stored, or found by `decide` (given the head) and stored. Nothing is decided
    /// once the table is off.
    #[inline]
    pub(crate) fn decided(
        &mut self,
        value: &[u8],
        decide: impl FnOnce(&[u8]) -> (u64, u64),
    ) -> (u64, u64) {
        debug_assert!(value.len() > HEAD_BYTES);
        if !self.on {
            return (0, 0);
        }
        if self.heads.is_empty() {
            self.heads = vec![Head::default(); 1 << self.bits];
            self.entries = vec![0; 1 << self.bits];
        }
        let head = Head(std::array::from_fn(|k| {
            u64::from_le_bytes(value[8 * k..8 * k + 8].try_into().expect("eight bytes"))
        }));
        let [a, b, c, d] = head.0;
        let mixed = a ^ b.rotate_left(16) ^ c.rotate_left(32) ^ d;
        let slot = (mixed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - self.bits)) as usize;
        let entry = self.entries[slot];
        let hit = entry & STORED != 0 && self.heads[slot] == head;
        if memo_window_ends(&mut self.lookups, &mut self.hits, hit) {
            self.on = false;
        }
        if hit {
            return (entry & (STORED - 1), entry >> 32);
        }
        let (decided, answers) = decide(&value[..HEAD_BYTES]);
        debug_assert!(decided < STORED && answers & !decided == 0);
        self.heads[slot] = head;
        self.entries[slot] = answers << 32 | decided | STORED;
        (decided, answers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_is_decided_once_and_remembered() {
        let mut memo = HeadMemo::new(1000, 3);
        let value = b"C:\\Windows\\SYSTEM32\\ntdll.dll+9d4c4|C:\\Windows\\System32\\KERNELBASE.dll";
        let mut calls = 0;
        for _ in 0..3 {
            let got = memo.decided(value, |head| {
                calls += 1;
                assert_eq!(head, &value[..HEAD_BYTES]);
                (0b101, 0b001)
            });
            assert_eq!(got, (0b101, 0b001));
        }
        assert_eq!(calls, 1);
        // Another value with the same first 32 bytes shares the entry; one that differs in its
        // 32nd byte does not.
        let same = b"C:\\Windows\\SYSTEM32\\ntdll.dll+9dFFFF|UNKNOWN(0000)";
        assert_eq!(memo.decided(same, |_| unreachable!()), (0b101, 0b001));
        let other = b"C:\\Windows\\SYSTEM32\\ntdll.dll+9e4c4|C:\\Windows";
        assert_eq!(memo.decided(other, |_| (0, 0)), (0, 0));
    }

    #[test]
    fn distinct_heads_switch_the_table_off() {
        let mut memo = HeadMemo::new(1 << 20, 1);
        let mut decided = 0;
        for i in 0..3 * 4096u32 {
            let value = format!("{i:08}{}", "-".repeat(32));
            let (bits, _) = memo.decided(value.as_bytes(), |_| (1, 1));
            decided += bits;
        }
        // The first window (4,096 lookups, none a repeat) decides every value; then the table
        // is off and decides nothing.
        assert_eq!(decided, 4096);
        assert!(!memo.on);
    }

    #[test]
    fn more_sets_than_an_entry_holds_are_never_decided() {
        let mut memo = HeadMemo::new(1000, HEAD_SETS_MAX + 1);
        let value = [b'x'; 40];
        assert_eq!(memo.decided(&value, |_| unreachable!()), (0, 0));
    }
}
