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
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, PoisonError, RwLock};

use crate::Error;

/// zstd's level 1: on stripe-sim's facts (2,163 bytes on average) levels 1, 3, 9 and 19 give
/// 941, 935, 911 and 900 bytes a fact, so the fastest positive level keeps almost all of the
/// gain; `--fast=3` is ~1.8× faster (380 vs 210 MB/s on ~2.2 KB inputs, one core) but leaves
/// ~1,365 bytes. The bytes are what the writer pays for; the CPU is spent in the reader stage.
pub const ZSTD_LEVEL: i32 = 1;

/// A decoded fact is never larger than this (a damaged frame header claiming more is refused
/// before anything is allocated). Stripe objects are a few KB; the largest are well under 1 MB.
pub const MAX_RAW_BYTES: usize = 64 << 20;

/// The size of a trained dictionary. On 25,000 bench facts (2,076 bytes on average; trained on
/// the 5,000 before them) 16 KB, 64 KB and 110 KB dictionaries give 288, 255 and 301 bytes a
/// fact at level 1 (976 without one), at 2.8–4.3 µs a fact (7.8 without) — a one-off
/// comparison by hand; `cargo run --release -p ledgerline-ledger --example dictionary` measures
/// the size chosen here.
pub const DICTIONARY_BYTES: usize = 64 << 10;

/// How many facts, or bytes of facts, a dictionary is trained on (whichever comes first):
/// zstd's guidance is ~100× the dictionary's size; training takes ~0.2 s on one core.
pub const DICTIONARY_SAMPLES: usize = 4_000;
pub const DICTIONARY_SAMPLE_BYTES: usize = 100 * DICTIONARY_BYTES;

/// The encoding of a stored fact's raw bytes (the `raw_encoding` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RawEncoding {
    /// The bytes as Stripe sent them (every row written before the zstd migration).
    #[default]
    Identity,
    /// A zstd frame (content size and checksum included) of the bytes as sent; the frame's
    /// header names the dictionary it needs, if any (`ledger_raw_dictionaries`).
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

    /// Encodes `raw` for a store that wants `self`, without a dictionary (see
    /// [`RawEncoder::encode`]).
    pub fn encode(self, raw: &[u8]) -> (RawEncoding, Vec<u8>) {
        RawEncoder::plain(self).encode(raw)
    }
}

/// A zstd dictionary trained on a ledger's own facts: small facts share most of their bytes
/// (field names, ids' prefixes, shapes), which a frame of ~2 KB cannot learn on its own. Its id
/// is the one in its header, which every frame compressed with it carries.
#[derive(Clone, PartialEq, Eq)]
pub struct Dictionary {
    id: NonZeroU32,
    bytes: Vec<u8>,
}

impl std::fmt::Debug for Dictionary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dictionary")
            .field("id", &self.id)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

impl Dictionary {
    /// A dictionary from its stored bytes; `None` unless they are a zstd dictionary with an id.
    pub fn from_bytes(bytes: Vec<u8>) -> Option<Self> {
        let id = NonZeroU32::new(zstd::zstd_safe::get_dict_id_from_dict(&bytes)?.get())?;
        Some(Self { id, bytes })
    }

    /// Trains a dictionary on `samples` (raw facts as sent); an error (too few or too small
    /// samples) says why.
    pub fn train(samples: &[Vec<u8>]) -> Result<Self, String> {
        let bytes = zstd::dict::from_samples(samples, DICTIONARY_BYTES)
            .map_err(|e| format!("zstd dictionary training: {e}"))?;
        Self::from_bytes(bytes).ok_or_else(|| "the trained dictionary has no id".to_owned())
    }

    pub fn id(&self) -> u32 {
        self.id.get()
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// The dictionaries a store knows, by id, and the one new facts are compressed with. Shared
/// by a store's clones; a reader that meets a frame whose dictionary is missing loads it
/// first (another instance may have trained it).
#[derive(Debug, Default)]
pub struct Dictionaries {
    by_id: RwLock<HashMap<u32, Arc<Dictionary>>>,
    active: RwLock<Option<Arc<Dictionary>>>,
}

impl Dictionaries {
    /// Adds `d`; with `activate`, new facts are compressed with it from now on.
    pub fn insert(&self, d: Dictionary, activate: bool) {
        let d = Arc::new(d);
        self.by_id
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(d.id(), Arc::clone(&d));
        if activate {
            *self.active.write().unwrap_or_else(PoisonError::into_inner) = Some(d);
        }
    }

    pub fn get(&self, id: u32) -> Option<Arc<Dictionary>> {
        self.by_id
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned()
    }

    /// The dictionary new facts are compressed with.
    pub fn active(&self) -> Option<Arc<Dictionary>> {
        self.active
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The dictionaries that `zstd` rows name and this set lacks.
    pub fn missing<'a>(&self, rows: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Vec<u32> {
        let mut out: Vec<u32> = rows
            .into_iter()
            .filter(|(encoding, _)| *encoding == RawEncoding::Zstd.as_str())
            .filter_map(|(_, stored)| frame_dictionary(stored))
            .filter(|id| self.get(*id).is_none())
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// The dictionary id a zstd frame's header names (`None`: none needed, or not a frame).
pub fn frame_dictionary(stored: &[u8]) -> Option<u32> {
    zstd::zstd_safe::get_dict_id_from_frame(stored).map(NonZeroU32::get)
}

/// How a store wants new raw facts encoded: its [`RawEncoding`] and, for zstd, the dictionary
/// to compress with (cheap to clone).
#[derive(Debug, Clone, Default)]
pub struct RawEncoder {
    encoding: RawEncoding,
    dictionary: Option<Arc<Dictionary>>,
}

impl RawEncoder {
    /// `encoding` without a dictionary.
    pub fn plain(encoding: RawEncoding) -> Self {
        Self {
            encoding,
            dictionary: None,
        }
    }

    /// zstd with `dictionary` (or none).
    pub fn zstd(dictionary: Option<Arc<Dictionary>>) -> Self {
        Self {
            encoding: RawEncoding::Zstd,
            dictionary,
        }
    }

    pub fn encoding(&self) -> RawEncoding {
        self.encoding
    }

    /// The dictionary new zstd frames use, if any.
    pub fn dictionary(&self) -> Option<&Dictionary> {
        self.dictionary.as_deref()
    }

    /// Encodes `raw`, returning the encoding actually used: `identity` when zstd would not
    /// save a byte (tiny facts) or, which should not happen, cannot compress — `identity` is
    /// always correct.
    pub fn encode(&self, raw: &[u8]) -> (RawEncoding, Vec<u8>) {
        match self.encoding {
            RawEncoding::Identity => (RawEncoding::Identity, raw.to_vec()),
            RawEncoding::Zstd => match compress(raw, self.dictionary.as_deref()) {
                Some(z) if z.len() < raw.len() => (RawEncoding::Zstd, z),
                Some(_) => (RawEncoding::Identity, raw.to_vec()),
                None => {
                    tracing::warn!(bytes = raw.len(), "zstd failed; fact stored uncompressed");
                    (RawEncoding::Identity, raw.to_vec())
                }
            },
        }
    }
}

thread_local! {
    // One context per thread, for one dictionary (0: none) at a time: creating one per fact
    // would cost more than compressing it.
    static COMPRESSOR: RefCell<Option<(u32, zstd::bulk::Compressor<'static>)>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<(u32, zstd::bulk::Decompressor<'static>)>> = const { RefCell::new(None) };
}

fn compress(raw: &[u8], dictionary: Option<&Dictionary>) -> Option<Vec<u8>> {
    let id = dictionary.map_or(0, Dictionary::id);
    COMPRESSOR.with(|c| {
        let mut c = c.try_borrow_mut().ok()?;
        if c.as_ref().is_none_or(|(have, _)| *have != id) {
            let mut z = match dictionary {
                Some(d) => zstd::bulk::Compressor::with_dictionary(ZSTD_LEVEL, d.bytes()).ok()?,
                None => zstd::bulk::Compressor::new(ZSTD_LEVEL).ok()?,
            };
            z.include_checksum(true).ok()?;
            z.include_contentsize(true).ok()?;
            z.include_dictid(true).ok()?;
            *c = Some((id, z));
        }
        c.as_mut()?.1.compress(raw).ok()
    })
}

fn decompress(stored: &[u8], dictionaries: &Dictionaries) -> Result<Vec<u8>, String> {
    let dictionary =
        match frame_dictionary(stored) {
            None => None,
            Some(id) => Some(dictionaries.get(id).ok_or_else(|| {
                format!("zstd dictionary {id} is not in ledger_raw_dictionaries")
            })?),
        };
    let id = dictionary.as_ref().map_or(0, |d| d.id());
    DECOMPRESSOR.with(|d| {
        let mut d = d
            .try_borrow_mut()
            .map_err(|_| "zstd decoder busy".to_owned())?;
        if d.as_ref().is_none_or(|(have, _)| *have != id) {
            let z = match &dictionary {
                Some(dict) => zstd::bulk::Decompressor::with_dictionary(dict.bytes()),
                None => zstd::bulk::Decompressor::new(),
            };
            *d = Some((id, z.map_err(|e| e.to_string())?));
        }
        let Some((_, d)) = d.as_mut() else {
            return Err("zstd decoder unavailable".to_owned());
        };
        d.decompress(stored, MAX_RAW_BYTES)
            .map_err(|e| format!("zstd: {e}"))
    })
}

/// The raw bytes of stored fact `fact_seq` from its stored form and its `raw_encoding`, with
/// the dictionaries its frame may name; a damaged row, a missing dictionary or an unknown
/// encoding is [`Error::CorruptFact`] naming the fact.
pub fn decode(
    fact_seq: i64,
    encoding: &str,
    stored: Vec<u8>,
    dictionaries: &Dictionaries,
) -> Result<Vec<u8>, Error> {
    let corrupt = |reason: String| Error::CorruptFact { fact_seq, reason };
    match encoding {
        "identity" => Ok(stored),
        "zstd" => decompress(&stored, dictionaries).map_err(corrupt),
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
        assert_eq!(
            decode(7, "zstd", stored, &Dictionaries::default()).unwrap(),
            raw
        );
    }

    #[test]
    fn identity_is_the_bytes_as_sent() {
        let raw = stripe_like();
        let (enc, stored) = RawEncoding::Identity.encode(&raw);
        assert_eq!((enc, &stored), (RawEncoding::Identity, &raw));
        assert_eq!(
            decode(7, "identity", stored, &Dictionaries::default()).unwrap(),
            raw
        );
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
            match decode(42, "zstd", bad, &Dictionaries::default()) {
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
        let e = decode(42, "zstd", cut, &Dictionaries::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("fact_seq 42"), "{e}");
        let e = decode(42, "brotli", stored, &Dictionaries::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("fact_seq 42") && e.contains("brotli"), "{e}");
    }

    /// Event-like facts that share their shape and differ in ids and amounts.
    fn facts(n: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| {
                format!(
                    r#"{{"id":"evt_{:016x}","object":"event","api_version":"2024-06-20","created":{},"data":{{"object":{{"id":"ch_{:016x}","object":"charge","amount":{},"amount_captured":{},"currency":"{}","customer":"cus_{:08}","description":"Invoice {}","metadata":{{"order_id":"{}"}},"paid":true,"refunded":false,"status":"succeeded","balance_transaction":"txn_{:016x}"}}}},"livemode":false,"pending_webhooks":1,"type":"charge.succeeded"}}"#,
                    i * 7919,
                    1_700_000_000 + i * 17,
                    i * 104_729,
                    (i * 37) % 100_000,
                    (i * 37) % 100_000,
                    ["usd", "eur", "gbp"][i % 3],
                    i % 250,
                    i,
                    i * 13,
                    i * 65_537,
                )
                .into_bytes()
            })
            .collect()
    }

    #[test]
    fn a_dictionary_trained_on_facts_round_trips_and_names_itself() {
        let all = facts(3_000);
        let dict = Dictionary::train(&all[..2_000]).unwrap();
        assert!(dict.bytes().len() <= DICTIONARY_BYTES);
        let encoder = RawEncoder::zstd(Some(Arc::new(dict.clone())));
        let dictionaries = Dictionaries::default();
        dictionaries.insert(dict.clone(), true);
        assert_eq!(dictionaries.active().as_deref(), Some(&dict));
        let (mut with, mut without) = (0, 0);
        for raw in &all[2_000..] {
            let (enc, stored) = encoder.encode(raw);
            assert_eq!(enc, RawEncoding::Zstd);
            assert_eq!(frame_dictionary(&stored), Some(dict.id()));
            // Plain frames on the same thread in between: the context follows the dictionary.
            let (_, plain) = RawEncoding::Zstd.encode(raw);
            assert_eq!(frame_dictionary(&plain), None);
            assert_eq!(
                decode(1, "zstd", plain.clone(), &dictionaries).unwrap(),
                *raw
            );
            with += stored.len();
            without += plain.len();
            assert_eq!(decode(1, "zstd", stored, &dictionaries).unwrap(), *raw);
        }
        assert!(
            with * 2 < without,
            "{with} bytes with the dictionary, {without} without"
        );
    }

    #[test]
    fn a_frame_whose_dictionary_is_missing_is_an_error_naming_both() {
        let all = facts(2_100);
        let dict = Dictionary::train(&all[..2_000]).unwrap();
        let (_, stored) = RawEncoder::zstd(Some(Arc::new(dict.clone()))).encode(&all[2_050]);
        let none = Dictionaries::default();
        assert_eq!(none.missing([("zstd", stored.as_slice())]), vec![dict.id()]);
        assert!(none.missing([("identity", stored.as_slice())]).is_empty());
        let e = decode(77, "zstd", stored.clone(), &none)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("fact_seq 77") && e.contains(&format!("dictionary {}", dict.id())),
            "{e}"
        );
        none.insert(dict, false);
        assert!(none.active().is_none());
        assert!(none.missing([("zstd", stored.as_slice())]).is_empty());
        assert_eq!(decode(77, "zstd", stored, &none).unwrap(), all[2_050]);
    }

    #[test]
    fn only_a_zstd_dictionary_with_an_id_is_one() {
        assert!(Dictionary::from_bytes(b"not a dictionary".to_vec()).is_none());
        assert!(Dictionary::train(&[b"{}".to_vec()]).is_err());
    }
}
