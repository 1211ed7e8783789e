//! A hasher for integer keys (string views, chunk offsets) in hot hash maps: a multiply-rotate
//! per 64-bit word, where the standard SipHash would cost more than the rest of the work.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A `HashMap` keyed by integers, hashed by `WordHasher`.
pub(crate) type WordMap<K, V> = HashMap<K, V, BuildHasherDefault<WordHasher>>;

#[derive(Default)]
pub(crate) struct WordHasher(u64);

impl Hasher for WordHasher {
    fn finish(&self) -> u64 {
        // The high bits folded down: the table indexes by the low ones, which a product of
        // aligned keys (chunk offsets, multiples of 2 or 4) would leave alike.
        self.0 ^ (self.0 >> 32)
    }

    fn write(&mut self, bytes: &[u8]) {
        for word in bytes.chunks(8) {
            let mut buf = [0u8; 8];
            buf[..word.len()].copy_from_slice(word);
            self.write_u64(u64::from_le_bytes(buf));
        }
    }

    fn write_u64(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(23) ^ word).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn write_u128(&mut self, word: u128) {
        self.write_u64(word as u64);
        self.write_u64((word >> 64) as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn aligned_offsets_spread_over_the_low_bits() {
        let build = BuildHasherDefault::<WordHasher>::default();
        let slots: std::collections::HashSet<u64> =
            (0..256usize).map(|i| build.hash_one(i * 8) & 255).collect();
        // A bare product of multiples of 8 would reach only 32 of the 256 low-bit slots.
        assert!(slots.len() > 128, "{}", slots.len());
    }
}
