//! What the raw-fact zstd dictionary ([`ledgerline_ledger::raw::Dictionary`]) buys, on the
//! facts of an existing ledger database (e.g. one the throughput bench left behind): it
//! trains a dictionary on the first facts, as the ledger does, then compresses later facts
//! with and without it on one core and prints the time and the bytes a fact of each, and the
//! decompression time.
//!
//!     cargo run --release -p ledgerline-ledger --example dictionary -- postgres://…/bench123
//!
//! The line without a dictionary is also a fixed CPU reference: on a shared machine, compare
//! rates measured at different times by it.
#![allow(
    clippy::print_stderr,
    clippy::float_arithmetic,
    clippy::cast_precision_loss
)]

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use ledgerline_ledger::raw::{
    DICTIONARY_SAMPLES, Dictionaries, Dictionary, RawEncoder, RawEncoding, decode,
};
use ledgerline_ledger::store::{PgStore, ReadFacts as _, Store as _};

/// Facts compressed in each measurement (spread over the facts after the training ones).
const MEASURED: usize = 25_000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::args()
        .nth(1)
        .context("usage: dictionary <database url of a ledger with facts>")?;
    let store = PgStore::new(sqlx::PgPool::connect(&url).await?);
    store.load_raw_dictionaries().await?;
    // Read through the store (it decodes any stored encoding); the transaction is rolled back.
    let mut tx = store.begin_snapshot().await?;
    let mut facts = Vec::new();
    for mut f in tx.facts_since(0, i64::MAX).await? {
        facts.push(f.take_raw()?);
    }
    drop(tx);
    anyhow::ensure!(
        facts.len() > DICTIONARY_SAMPLES,
        "{} facts: more than {DICTIONARY_SAMPLES} needed",
        facts.len()
    );
    let (train, rest) = facts.split_at(DICTIONARY_SAMPLES);
    let step = rest.len().div_ceil(MEASURED).max(1);
    let measured: Vec<&Vec<u8>> = rest.iter().step_by(step).collect();
    let raw_bytes: usize = measured.iter().map(|f| f.len()).sum();
    eprintln!(
        "{} facts; trained on the first {}, measured on {} later ones ({} bytes a fact as sent)",
        facts.len(),
        train.len(),
        measured.len(),
        raw_bytes / measured.len()
    );

    let started = Instant::now();
    let dict = Dictionary::train(train).map_err(anyhow::Error::msg)?;
    eprintln!(
        "dictionary: {} bytes, trained in {:.0} ms",
        dict.bytes().len(),
        started.elapsed().as_secs_f64() * 1e3
    );
    let dictionaries = Dictionaries::default();
    dictionaries.insert(dict.clone(), true);
    for (name, encoder) in [
        (
            "zstd level 1, no dictionary",
            RawEncoder::plain(RawEncoding::Zstd),
        ),
        (
            "zstd level 1, dictionary",
            RawEncoder::zstd(Some(Arc::new(dict))),
        ),
    ] {
        // Once to warm the thread's context up, then timed.
        let _ = encoder.encode(measured[0]);
        let started = Instant::now();
        let stored: Vec<Vec<u8>> = measured.iter().map(|f| encoder.encode(f).1).collect();
        let encoded = started.elapsed();
        let started = Instant::now();
        for (seq, s) in (0i64..).zip(&stored) {
            decode(seq, "zstd", s.clone(), &dictionaries)?;
        }
        let decoded = started.elapsed();
        let n = measured.len() as f64;
        eprintln!(
            "{name:28}: {:6.2} µs a fact, {:5} bytes a fact stored; decoded in {:5.2} µs a fact",
            encoded.as_secs_f64() * 1e6 / n,
            stored.iter().map(Vec::len).sum::<usize>() / measured.len(),
            decoded.as_secs_f64() * 1e6 / n
        );
    }
    Ok(())
}
