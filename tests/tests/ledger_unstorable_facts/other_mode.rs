//! Facts of the other Stripe mode: test and live objects of one account share its id, so a
//! ledger books one mode's facts only (`LEDGERLINE_STRIPE_MODE`, test by default). A log that
//! mixes both (a test and a live ingester publishing under one topic prefix) leaves each
//! ledger's books those of its own mode, on both stores, the other mode's facts dead-lettered
//! with the reason. Before, both modes were booked into one journal.
//!
//! Across restarts, the database is bound to the mode of the first ledger started over it: a
//! ledger of the other mode refuses to start over it. Before, a test ledger restarted as a live
//! one (or `ledgerline run` with a live key over a test run's data directory) booked live facts
//! into books that held test ones.
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

/// Binds a fresh store to test mode, then checks that test mode is welcome again, live mode is
/// refused with what to do, and the binding cannot be changed in the database either.
async fn a_store_keeps_the_mode_it_was_bound_to<S: Store>(store: &S) {
    store.bind_stripe_mode(StripeMode::Test).await.unwrap();
    store.bind_stripe_mode(StripeMode::Test).await.unwrap();
    let err = store.bind_stripe_mode(StripeMode::Live).await.unwrap_err();
    assert!(
        matches!(&err, ledgerline_ledger::Error::StripeModeMismatch { bound, configured: "live" } if bound == "test"),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("holds the books of Stripe's test mode")
            && message.contains("start it with LEDGERLINE_STRIPE_MODE=test"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_database_refuses_a_ledger_of_the_other_mode() {
    let (pool, url) = fresh_db("mode_bound").await;
    let store = PgStore::connect(&url).await.unwrap();
    a_store_keeps_the_mode_it_was_bound_to(&store).await;
    let changed = sqlx::query("UPDATE ledger_stripe_mode SET mode = 'live'")
        .execute(&pool)
        .await;
    assert!(changed.is_err(), "the binding was changed by hand");

    // The service refuses to start (before it touches Kafka), naming the remedy.
    let mut live = config(&url, &ledgerline_bus::Topics::default(), "g");
    live.stripe_mode = StripeMode::Live;
    let err = ledgerline_ledger::start(live, tokio_util::sync::CancellationToken::new())
        .await
        .unwrap_err();
    assert!(
        matches!(err, ledgerline_ledger::Error::StripeModeMismatch { .. }),
        "{err:?}"
    );

    // A database first started over by a live ledger is bound to live mode.
    let (_pool, url) = fresh_db("mode_bound_live").await;
    let store = PgStore::connect(&url).await.unwrap();
    store.bind_stripe_mode(StripeMode::Live).await.unwrap();
    let err = store.bind_stripe_mode(StripeMode::Test).await.unwrap_err();
    assert!(
        err.to_string().contains("LEDGERLINE_STRIPE_MODE=live"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_file_refuses_a_ledger_of_the_other_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bound.sqlite");
    let store = SqliteStore::open(&path).await.unwrap();
    a_store_keeps_the_mode_it_was_bound_to(&store).await;
    let changed = sqlx::query("DELETE FROM ledger_stripe_mode")
        .execute(store.pool())
        .await;
    assert!(changed.is_err(), "the binding was deleted by hand");
    drop(store);

    // Reopened (a restart), the embedded ledger of the other mode refuses to start.
    let store = SqliteStore::open(&path).await.unwrap();
    let config = ledgerline_ledger::EmbeddedConfig {
        stripe_mode: StripeMode::Live,
        ..Default::default()
    };
    let err = ledgerline_ledger::start_embedded(
        store,
        ledgerline_bus::EmbeddedLog::in_memory(1),
        config,
        tokio_util::sync::CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, ledgerline_ledger::Error::StripeModeMismatch { .. }),
        "{err:?}"
    );
}
