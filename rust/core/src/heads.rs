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

/// The bit of a slot's `decided` that says the slot holds an entry (sets use bits `0..63`).
const STORED: u64 = 1 << 63;

/// Per distinct head, which sets it decides and their answers; one table per thread, allocated
/// on first use and sized for the call's rows. Like the view memos, it switches itself off for
/// the rest of a call when a window of lookups finds few repeats (`memo_window_ends`).
pub(crate) struct HeadMemo {
    slots: Vec<Slot>,
    bits: u32,
    lookups: u32,
    hits: u32,
    on: bool,
}

#[derive(Clone, Copy, Default)]
struct Slot {
    head: [u64; 4],
    decided: u64,
    answers: u64,
}

impl HeadMemo {
    /// A table for a call over `rows` values: 64 slots for a few thousand rows, at most 4,096
    /// (192 KiB) from 256k rows on.
    pub(crate) fn new(rows: usize) -> HeadMemo {
        HeadMemo {
            slots: Vec::new(),
            bits: (rows / 16).max(1).ilog2().clamp(6, 14),
            lookups: 0,
            hits: 0,
            on: true,
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
        if self.slots.is_empty() {
            self.slots = vec![Slot::default(); 1 << self.bits];
        }
        let head: [u64; 4] = std::array::from_fn(|k| {
            u64::from_le_bytes(value[8 * k..8 * k + 8].try_into().expect("eight bytes"))
        });
        let mixed = head[0] ^ head[1].rotate_left(16) ^ head[2].rotate_left(32) ^ head[3];
        let slot = (mixed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - self.bits)) as usize;
        let stored = self.slots[slot];
        let hit = stored.decided & STORED != 0 && stored.head == head;
        if memo_window_ends(&mut self.lookups, &mut self.hits, hit) {
            self.on = false;
        }
        if hit {
            return (stored.decided & !STORED, stored.answers);
        }
        let (decided, answers) = decide(&value[..HEAD_BYTES]);
        debug_assert!(decided & STORED == 0 && answers & !decided == 0);
        self.slots[slot] = Slot {
            head,
            decided: decided | STORED,
            answers,
        };
        (decided, answers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_is_decided_once_and_remembered() {
        let mut memo = HeadMemo::new(1000);
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
        let mut memo = HeadMemo::new(1 << 20);
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
}
