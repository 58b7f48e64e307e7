//! Deterministic randomness: every choice is a hash of the seed and stable inputs.

/// SplitMix64 finaliser.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A stable 64-bit hash of the seed, a purpose tag and some strings (FNV-1a then SplitMix).
pub fn hash(seed: u64, tag: &str, parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ mix(seed);
    for s in std::iter::once(tag).chain(parts.iter().copied()) {
        for b in s.bytes().chain(std::iter::once(0xff)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    mix(h)
}

/// Whether a choice with probability `ppm` parts per million happens for hash `h`.
pub fn chance(h: u64, ppm: u32) -> bool {
    ppm > 0 && h % 1_000_000 < u64::from(ppm)
}

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `prefix_` followed by `len` base-62 characters drawn from `h`.
pub fn stripe_id(prefix: &str, h: u64, len: usize) -> String {
    let mut s = String::with_capacity(prefix.len() + 1 + len);
    s.push_str(prefix);
    s.push('_');
    let mut x = h;
    for i in 0..len {
        if i % 10 == 0 && i > 0 {
            x = mix(x);
        }
        s.push(char::from(ALPHABET[usize::try_from(x % 62).unwrap_or(0)]));
        x /= 62;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable() {
        assert_eq!(hash(1, "a", &["b"]), hash(1, "a", &["b"]));
        assert_ne!(hash(1, "a", &["b"]), hash(2, "a", &["b"]));
        assert_ne!(hash(1, "ab", &[]), hash(1, "a", &["b"]));
        let id = stripe_id("in", 42, 24);
        assert_eq!(id.len(), 27);
        assert!(id.starts_with("in_"));
    }
}
