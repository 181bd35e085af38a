//! A cheap hasher for maps on hot paths, and the map and set types that use it.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// A hasher for maps on hot paths (Fx-style: a rotate, xor and multiply per word).
///
/// Meant for keys the program itself hands out or trusts (ids, peer addresses it dials,
/// endpoint names it registered): SipHash's defence against chosen keys buys nothing there,
/// while its cost shows on every message. Keep std's default hasher for maps keyed by
/// what an untrusted peer chooses.
#[derive(Debug, Default, Clone, Copy)]
pub struct FastHasher(u64);

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FastHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(FX_SEED);
    }
}

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            // The last 1-7 bytes as one word, their count in the top byte so that trailing
            // zero bytes still change the hash.
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            word[7] = rest.len() as u8;
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }
}

/// A map with the cheap hasher.
pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;
/// A set with the cheap hasher.
pub type FastSet<T> = HashSet<T, BuildHasherDefault<FastHasher>>;

#[cfg(test)]
mod tests {
    use std::hash::{BuildHasher, BuildHasherDefault};

    use super::FastHasher;

    fn hash<T: std::hash::Hash>(value: T) -> u64 {
        BuildHasherDefault::<FastHasher>::default().hash_one(value)
    }

    #[test]
    fn neighbouring_ids_hash_apart() {
        let hashes: std::collections::HashSet<u64> = (0u64..10_000).map(hash).collect();
        assert_eq!(hashes.len(), 10_000);
    }

    #[test]
    fn every_byte_of_a_string_counts() {
        // Names that differ only in the word-sized chunk, or only in the remainder.
        assert_ne!(hash("executor-00000001"), hash("executor-00000002"));
        assert_ne!(hash("host-a.example:7077"), hash("host-b.example:7077"));
        assert_ne!(hash("12345678x"), hash("12345678y"));
        assert_ne!(hash(("a", "bc")), hash(("ab", "c")));
        assert_ne!(hash("ab"), hash("ab\0"));
    }
}
