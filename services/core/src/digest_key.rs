//! 128-bit SHA-256 prefixes as hash-map keys, for the state that grows with history: the
//! journal's join maps (keyed by ledger and Stripe id) and the ledger service's set of fact
//! digests.
//!
//! Why: a `String` key (`ledger \x1f id`, ~45 bytes) costs 72 bytes (its header and its heap
//! block) and a SipHash pass on every lookup; a [`Digest128`] costs 16 bytes inline and its hash
//! is its first 8 bytes, already uniform. Two different keys collide with probability about
//! n² / 2¹²⁹: for 10⁹ keys, ~10⁻²¹ — the same bound the journal already relies on when it tells
//! a duplicate entry from a conflict by a 16-byte digest prefix.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hash, Hasher};

use sha2::{Digest as _, Sha256};

/// The first 16 bytes of a SHA-256 digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Digest128([u8; 16]);

impl Digest128 {
    /// The first 16 bytes of `digest`.
    pub fn prefix_of(digest: &[u8; 32]) -> Self {
        let mut prefix = [0; 16];
        prefix.copy_from_slice(&digest[..16]);
        Self(prefix)
    }

    /// The digest of `parts`, each followed by a 0x1f separator (a byte no Stripe id or
    /// account id contains, so that different splits of the same text differ).
    pub fn of_parts(parts: &[&str]) -> Self {
        let mut h = Sha256::new();
        for part in parts {
            h.update(part.as_bytes());
            h.update([0x1f]);
        }
        Self::prefix_of(&h.finalize().into())
    }

    /// The 16 bytes.
    pub fn bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl Hash for Digest128 {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let mut first = [0; 8];
        first.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_le_bytes(first));
    }
}

/// A hasher that passes a [`Digest128`]'s first 8 bytes through: they are uniform already.
/// Anything else hashed with it is folded in with FNV-1a, so it stays a correct (if plain)
/// hasher for any key type.
#[derive(Debug, Clone, Copy)]
pub struct PassThroughHasher(u64);

impl Default for PassThroughHasher {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for PassThroughHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Builds [`PassThroughHasher`]s.
pub type DigestHashing = BuildHasherDefault<PassThroughHasher>;

/// A map keyed by [`Digest128`].
pub type DigestMap<V> = HashMap<Digest128, V, DigestHashing>;

/// A set of [`Digest128`]s.
pub type DigestSet = HashSet<Digest128, DigestHashing>;

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher as _;

    use super::*;

    #[test]
    fn parts_are_separated() {
        assert_ne!(
            Digest128::of_parts(&["acct_1", "ch_2"]),
            Digest128::of_parts(&["acct_1ch_2"])
        );
        assert_ne!(
            Digest128::of_parts(&["acct_1", "ch_2"]),
            Digest128::of_parts(&["acct_1c", "h_2"])
        );
        assert_eq!(
            Digest128::of_parts(&["acct_1", "ch_2"]),
            Digest128::of_parts(&["acct_1", "ch_2"])
        );
    }

    #[test]
    fn the_hash_is_the_first_eight_bytes() {
        let mut digest = [0u8; 32];
        for (i, b) in digest.iter_mut().enumerate() {
            *b = u8::try_from(i).unwrap_or(0);
        }
        let key = Digest128::prefix_of(&digest);
        assert_eq!(key.bytes()[..], digest[..16]);
        assert_eq!(
            DigestHashing::default().hash_one(key),
            u64::from_le_bytes([0, 1, 2, 3, 4, 5, 6, 7])
        );
        // Other keys still spread: no two of a few thousand strings share a hash.
        let hashes: HashSet<u64> = (0..5_000)
            .map(|i| DigestHashing::default().hash_one(format!("ch_{i}")))
            .collect();
        assert_eq!(hashes.len(), 5_000);
    }

    #[test]
    fn a_map_finds_what_it_holds() {
        let mut map: DigestMap<u32> = DigestMap::default();
        for i in 0..1_000u32 {
            map.insert(Digest128::of_parts(&["acct", &i.to_string()]), i);
        }
        for i in 0..1_000u32 {
            assert_eq!(
                map.get(&Digest128::of_parts(&["acct", &i.to_string()])),
                Some(&i)
            );
        }
        assert!(!map.contains_key(&Digest128::of_parts(&["acct", "1000"])));
    }
}
