//! Facts of the other Stripe mode: test and live objects of one account share its id, so a
//! ledger books one mode's facts only (`LEDGERLINE_STRIPE_MODE`, test by default). A log that
//! mixes both (a test and a live ingester publishing under one topic prefix) leaves each
//! ledger's books those of its own mode, on both stores, the other mode's facts dead-lettered
//! with the reason. Before, both modes were booked into one journal.
use crate::ledger_support::*;
use ledgerline_ledger::engine::{Engine, InRecord};
use ledgerline_ledger::store::{PgStore, SqliteStore, Store};
use ledgerline_ledger::{PostingRules, StripeMode};
use ledgerline_proto::stripe::v1::{BalanceTransactionRecord, StripeEventRecord};
use prost::Message as _;

/// A test-mode world's facts with every third one's envelope saying live mode (as a live
/// ingester's would), and which those are.
fn mixed_world() -> (Vec<WireFact>, Vec<WireFact>, Vec<WireFact>) {
    let (_world, mut facts) = world_facts(23, 900);
    let (mut live, mut test) = (Vec::new(), Vec::new());
    for (n, f) in facts.iter_mut().enumerate() {
        if n % 3 == 0 {
            f.payload = if f.topic_is_events {
                let mut r = StripeEventRecord::decode(f.payload.as_slice()).unwrap();
                r.livemode = true;
                r.encode_to_vec()
            } else {
                let mut r = BalanceTransactionRecord::decode(f.payload.as_slice()).unwrap();
                r.livemode = true;
                r.encode_to_vec()
            };
            live.push(f.clone());
        } else {
            test.push(f.clone());
        }
    }
    (facts, live, test)
}

/// Folds the records into `store` with a ledger of `mode`; returns the dead letters' reasons.
async fn fold_all<S: Store>(store: &S, mode: StripeMode, records: &[InRecord]) -> Vec<String> {
    fold_all_with(
        store,
        &mut Engine::with_rules(PostingRules::of_mode(mode)),
        records,
    )
    .await
}

async fn each_ledger_books_its_own_mode<S: Store>(test_store: S, live_store: S) {
    let (facts, live, test) = mixed_world();
    let records = in_records(&facts);

    let reasons = fold_all(&test_store, StripeMode::Test, &records).await;
    assert_eq!(reasons.len(), live.len());
    assert!(
        reasons.iter().all(|r| r.starts_with(
            "a live-mode fact, and this ledger books test-mode facts (LEDGERLINE_STRIPE_MODE)"
        )),
        "{reasons:#?}"
    );
    assert_eq!(
        store_digests(&test_store).await,
        model_digests(&model(&test)),
        "the test ledger's books are the test facts' alone"
    );

    let reasons = fold_all(&live_store, StripeMode::Live, &records).await;
    assert_eq!(reasons.len(), test.len());
    assert!(
        reasons
            .iter()
            .all(|r| r.starts_with("a test-mode fact, and this ledger books live-mode facts")),
        "{reasons:#?}"
    );
    let live_books = store_digests(&live_store).await;
    assert!(!live_books.is_empty());
    assert_eq!(live_books, model_digests(&model(&live)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_postgresql_ledger_books_its_own_mode_and_dead_letters_the_other() {
    let (_pool, test_url) = fresh_db("mode_test").await;
    let (_pool, live_url) = fresh_db("mode_live").await;
    each_ledger_books_its_own_mode(
        PgStore::connect(&test_url).await.unwrap(),
        PgStore::connect(&live_url).await.unwrap(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_sqlite_ledger_books_its_own_mode_and_dead_letters_the_other() {
    let dir = tempfile::tempdir().unwrap();
    each_ledger_books_its_own_mode(
        SqliteStore::open(&dir.path().join("test.sqlite"))
            .await
            .unwrap(),
        SqliteStore::open(&dir.path().join("live.sqlite"))
            .await
            .unwrap(),
    )
    .await;
}
