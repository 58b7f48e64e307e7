//! How a fact's raw bytes are stored: as Stripe sent them (`identity`) or zstd-compressed
//! (`zstd`), named per row (`ledger_facts.raw_encoding`).
//!
//! Raw Stripe JSON averages ~2.2 KB a fact: stored as is, every PostgreSQL row crossed the TOAST
//! threshold and the backend compressed it (lz4, single-threaded, on the writer's path) into
//! out-of-line chunks. zstd level 1 makes it ~0.95 KB, so the row stays inline and PostgreSQL
//! never compresses it again (`raw` has `STORAGE EXTERNAL`); the compression runs in the
//! consumer's reader stage ([`crate::engine::prepare`]), beside the writer, not in it.
//!
//! The digest and the hash chains are over the raw bytes as sent, never over the stored form;
//! every reader decodes ([`decode`]), so what leaves the ledger (the gRPC `raw_fact`, a rebuild)
//! is byte for byte what Stripe sent. A `zstd` row is a standard zstd frame with its content
//! size and a checksum: `zstd -d` reads it, and a damaged row is an error naming the fact,
//! never wrong bytes.

use std::cell::RefCell;

use crate::Error;

/// zstd's level 1: on stripe-sim's facts (2,163 bytes on average) levels 1, 3, 9 and 19 give
/// 941, 935, 911 and 900 bytes a fact, so the fastest positive level keeps almost all of the
/// gain; `--fast=3` is ~1.8× faster (380 vs 210 MB/s on ~2.2 KB inputs, one core) but leaves
/// ~1,365 bytes. The bytes are what the writer pays for; the CPU is spent in the reader stage.
pub const ZSTD_LEVEL: i32 = 1;

/// A decoded fact is never larger than this (a damaged frame header claiming more is refused
/// before anything is allocated). Stripe objects are a few KB; the largest are well under 1 MB.
pub const MAX_RAW_BYTES: usize = 64 << 20;

/// The encoding of a stored fact's raw bytes (the `raw_encoding` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RawEncoding {
    /// The bytes as Stripe sent them (every row written before the zstd migration).
    #[default]
    Identity,
    /// A zstd frame (content size and checksum included) of the bytes as sent.
    Zstd,
}

impl RawEncoding {
    /// The column's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Identity => "identity",
            Self::Zstd => "zstd",
        }
    }

    /// Encodes `raw` for a store that wants `self`, returning the encoding actually used:
    /// `identity` when zstd would not save a byte (tiny facts) or, which should not happen,
    /// cannot compress — `identity` is always correct.
    pub fn encode(self, raw: &[u8]) -> (RawEncoding, Vec<u8>) {
        match self {
            Self::Identity => (Self::Identity, raw.to_vec()),
            Self::Zstd => match compress(raw) {
                Some(z) if z.len() < raw.len() => (Self::Zstd, z),
                Some(_) => (Self::Identity, raw.to_vec()),
                None => {
                    tracing::warn!(bytes = raw.len(), "zstd failed; fact stored uncompressed");
                    (Self::Identity, raw.to_vec())
                }
            },
        }
    }
}

thread_local! {
    // One context per thread: creating one per fact would cost more than compressing it.
    static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

fn compress(raw: &[u8]) -> Option<Vec<u8>> {
    COMPRESSOR.with(|c| {
        let mut c = c.try_borrow_mut().ok()?;
        if c.is_none() {
            let mut z = zstd::bulk::Compressor::new(ZSTD_LEVEL).ok()?;
            z.include_checksum(true).ok()?;
            z.include_contentsize(true).ok()?;
            *c = Some(z);
        }
        c.as_mut()?.compress(raw).ok()
    })
}

fn decompress(stored: &[u8]) -> Result<Vec<u8>, String> {
    DECOMPRESSOR.with(|d| {
        let mut d = d
            .try_borrow_mut()
            .map_err(|_| "zstd decoder busy".to_owned())?;
        if d.is_none() {
            *d = Some(zstd::bulk::Decompressor::new().map_err(|e| e.to_string())?);
        }
        let Some(d) = d.as_mut() else {
            return Err("zstd decoder unavailable".to_owned());
        };
        d.decompress(stored, MAX_RAW_BYTES)
            .map_err(|e| format!("zstd: {e}"))
    })
}

/// The raw bytes of stored fact `fact_seq` from its stored form and its `raw_encoding`; a
/// damaged row or an unknown encoding is [`Error::CorruptFact`] naming the fact.
pub fn decode(fact_seq: i64, encoding: &str, stored: Vec<u8>) -> Result<Vec<u8>, Error> {
    let corrupt = |reason: String| Error::CorruptFact { fact_seq, reason };
    match encoding {
        "identity" => Ok(stored),
        "zstd" => decompress(&stored).map_err(corrupt),
        other => Err(corrupt(format!("unknown raw_encoding {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn stripe_like() -> Vec<u8> {
        let mut s = String::from(r#"{"id":"evt_1","object":"event","data":{"object":{"#);
        for i in 0..40 {
            s.push_str(&format!(
                r#""field_{i}":{{"amount":{i}00,"currency":"usd"}},"#
            ));
        }
        s.push_str(r#""livemode":false}}}"#);
        s.into_bytes()
    }

    #[test]
    fn zstd_round_trips_byte_for_byte_and_is_smaller() {
        let raw = stripe_like();
        let (enc, stored) = RawEncoding::Zstd.encode(&raw);
        assert_eq!(enc, RawEncoding::Zstd);
        assert!(
            stored.len() * 2 < raw.len(),
            "{} of {}",
            stored.len(),
            raw.len()
        );
        assert_ne!(stored, raw);
        // A standard frame with a checksum (`zstd -d` reads it).
        assert_eq!(&stored[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
        assert_eq!(decode(7, "zstd", stored).unwrap(), raw);
    }

    #[test]
    fn identity_is_the_bytes_as_sent() {
        let raw = stripe_like();
        let (enc, stored) = RawEncoding::Identity.encode(&raw);
        assert_eq!((enc, &stored), (RawEncoding::Identity, &raw));
        assert_eq!(decode(7, "identity", stored).unwrap(), raw);
    }

    #[test]
    fn a_tiny_fact_is_stored_as_sent() {
        let (enc, stored) = RawEncoding::Zstd.encode(b"{}");
        assert_eq!(
            (enc, stored.as_slice()),
            (RawEncoding::Identity, &b"{}"[..])
        );
    }

    #[test]
    fn a_damaged_row_is_an_error_naming_the_fact() {
        let raw = stripe_like();
        let (_, stored) = RawEncoding::Zstd.encode(&raw);
        // A flipped byte never yields other bytes (the frame's checksum covers the content): it
        // is refused, or it fell where the decoder does not look.
        let mut refused = 0;
        for i in 0..stored.len() {
            let mut bad = stored.clone();
            bad[i] ^= 0x40;
            match decode(42, "zstd", bad) {
                Err(Error::CorruptFact { fact_seq: 42, .. }) => refused += 1,
                Err(e) => panic!("byte {i}: {e}"),
                Ok(decoded) => assert_eq!(decoded, raw, "byte {i}"),
            }
        }
        assert!(
            refused * 10 >= stored.len() * 9,
            "{refused} of {}",
            stored.len()
        );
        let mut cut = stored.clone();
        cut.truncate(stored.len() / 2);
        let e = decode(42, "zstd", cut).unwrap_err().to_string();
        assert!(e.contains("fact_seq 42"), "{e}");
        let e = decode(42, "brotli", stored).unwrap_err().to_string();
        assert!(e.contains("fact_seq 42") && e.contains("brotli"), "{e}");
    }
}
