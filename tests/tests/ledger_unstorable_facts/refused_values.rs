//! A value the database refuses, which the core's checks did not foresee, would fail its batch
//! at every retry and every restart: the ledger would stop on it for good. Here rules that
//! post three facts of a world with such values (an entry's memo with a NUL, which
//! PostgreSQL's `text` refuses; a ledger too long for a B-tree index entry; an empty ledger,
//! which a `CHECK` constraint refuses) stand in for the unforeseen: the
//! fold splits each batch until the record is alone, commits the rest part by part, and sends
//! the record to the dead-letter topic with the database's reason. The books equal the core's
//! fold of the world without the three, and the stored offsets cover every record once.
//! PostgreSQL only: SQLite keeps all three (what it refuses — a value over 1 GB, a currency
//! its `CHECK` does not take — the core refuses first, or is not worth a test's memory).
use std::sync::OnceLock;

use crate::ledger_support::*;
use ledgerline_bus::EmbeddedLog;
use ledgerline_core::entry::EntryDraft;
use ledgerline_core::{JournalEntry, PostError, Posting, post_raw};
use ledgerline_ledger::consumer::fold_and_commit;
use ledgerline_ledger::engine::Engine;
use ledgerline_ledger::rules::PostingRules;
use ledgerline_ledger::store::{PgStore, Store};

/// The world, and the ids of its three facts posted with refused values (events whose posting
/// holds an entry: one in each third).
struct Refused {
    facts: Vec<WireFact>,
    nul_memo: String,
    long_ledger: String,
    empty_ledger: String,
}

fn refused() -> &'static Refused {
    static WORLD: OnceLock<Refused> = OnceLock::new();
    WORLD.get_or_init(|| {
        let (_world, facts) = world_facts(17, 600);
        let posting_events: Vec<(usize, String)> = facts
            .iter()
            .enumerate()
            .filter_map(|(i, f)| {
                let posting = post_raw(&f.account, &f.raw).ok()?;
                (f.topic_is_events && !posting.entries.is_empty())
                    .then(|| (i, posting.fact_id.to_string()))
            })
            .collect();
        let third = facts.len() / 3;
        let mut chosen = (0..3).map(|n| {
            let (_, id) = posting_events
                .iter()
                .find(|(i, _)| *i >= n * third)
                .unwrap();
            id.clone()
        });
        Refused {
            nul_memo: chosen.next().unwrap(),
            long_ledger: chosen.next().unwrap(),
            empty_ledger: chosen.next().unwrap(),
            facts,
        }
    })
}

/// 3,000 characters that do not compress (PostgreSQL compresses an index entry before it
/// checks its size, so a repeated pattern would pass).
fn incompressible(len: usize) -> String {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(
                b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                    [(x % 62) as usize],
            )
        })
        .collect()
}

/// The core's posting, with the first entry of the three chosen facts rebuilt around a value
/// the database refuses (past the core's own checks, as an unforeseen value would be).
fn posts_refused_values(account: &str, raw: &[u8]) -> Result<Posting, PostError> {
    let mut posting = post_raw(account, raw)?;
    let world = refused();
    let (mut ledger, mut memo) = (None, None);
    if *posting.fact_id == *world.nul_memo {
        memo = Some("refused by PostgreSQL: \0".into());
    } else if *posting.fact_id == *world.long_ledger {
        ledger = Some(incompressible(3_000).into());
    } else if *posting.fact_id == *world.empty_ledger {
        ledger = Some("".into());
    } else {
        return Ok(posting);
    }
    let first = &posting.entries[0];
    posting.entries[0] = JournalEntry::new(EntryDraft {
        ledger: ledger.unwrap_or_else(|| first.ledger().into()),
        source: first.source().into(),
        rule: first.rule(),
        effective_at: first.effective_at(),
        lines: first.lines().to_vec(),
        reverses: first.reverses(),
        memo: memo.or_else(|| first.memo().map(Into::into)),
    })
    .unwrap();
    Ok(posting)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_values_go_to_the_dead_letters_and_the_rest_is_folded() {
    let (_pool, url) = fresh_db("refused_values").await;
    let store = PgStore::connect(&url).await.unwrap();
    let world = refused();
    let refused_ids = [
        world.nul_memo.as_str(),
        world.long_ledger.as_str(),
        world.empty_ledger.as_str(),
    ];
    let dlq = EmbeddedLog::in_memory(1);
    let mut engine = Engine::with_rules(PostingRules {
        post: posts_refused_values,
        ..PostingRules::default()
    });
    let records = in_records(&world.facts);
    let (mut folded, mut dead_letters) = (0, 0);
    for chunk in records.chunks(150) {
        let report = fold_and_commit(&store, &mut engine, &dlq, "g", chunk)
            .await
            .unwrap();
        folded += report.records;
        dead_letters += report.dead_letters;
    }
    assert_eq!((folded, dead_letters), (records.len(), 3));

    let dead = dead_events(&dlq, "e.dlq");
    assert_eq!(
        dead.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(),
        refused_ids,
        "{dead:?}"
    );
    for ((_, reason), refusal) in dead.iter().zip([
        "invalid byte sequence for encoding \"UTF8\": 0x00",
        "exceeds btree version 4 maximum 2704",
        "violates check constraint \"journal_entries_ledger_check\"",
    ]) {
        assert!(
            reason.starts_with("the database refuses a value of it: ") && reason.contains(refusal),
            "{reason}"
        );
    }

    let kept = facts_without(&world.facts, &refused_ids);
    assert_eq!(kept.len(), world.facts.len() - 3);
    let model = model(&kept);
    assert_eq!(
        store_digests(&store).await,
        model_digests(&model),
        "the books equal the fold without the three facts"
    );
    assert!(store.verify_chain().await.unwrap().ok());
    assert_eq!(core_state(engine.ledger()), core_state(&model));

    // Each part committed its own records' offsets: nothing is folded twice, nothing skipped.
    for chunk in records.chunks(150) {
        let again = fold_and_commit(&store, &mut engine, &dlq, "g", chunk)
            .await
            .unwrap();
        assert_eq!((again.records, again.dead_letters), (0, 0), "{again:?}");
    }
    let mut restarted = Engine::new();
    let mut tx = store.begin_write().await.unwrap();
    assert_eq!(restarted.catch_up(&mut tx).await.unwrap(), kept.len());
}
