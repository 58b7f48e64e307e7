//! Facts with values no store can keep go to the dead-letter topic with the reason, on both
//! stores, and the rest of the batch is folded:
//! - a time no calendar the stores keep can hold (Stripe writes Unix seconds; these are ~31.7
//!   million years away, or before 1970). Before, the ledger stored its entries at 1970-01-01
//!   (the conversion's fallback): the books were misdated, and chain verification, recomputing
//!   the digest from the stored time, reported the entry as changed by hand;
//! - text with a NUL character, in the fact or in its envelope's account. Before, PostgreSQL
//!   refused the batch (`invalid byte sequence for encoding "UTF8": 0x00`) at every retry and
//!   every restart: the ledger stopped on that record for good;
//! - an id longer than Stripe's 255 characters, in the fact or in its envelope's account.
//!   Before, PostgreSQL refused a random 3,000-character ledger the same way (`index row size
//!   3040 exceeds btree version 4 maximum 2704`); SQLite stored it.
//!
//! And facts of the other Stripe mode than the ledger's (`other_mode.rs`).
#![allow(clippy::unwrap_used)]

mod hostile_values;
#[path = "../ledger_support/mod.rs"]
mod ledger_support;
mod other_mode;
mod refused_values;

use ledger_support::*;
use ledgerline_bus::EmbeddedLog;
use ledgerline_bus::topics::DLQ_REASON_HEADER;
use ledgerline_ledger::consumer::fold_and_commit;
use ledgerline_ledger::engine::{Engine, InRecord, TopicKind};
use ledgerline_ledger::store::{PgStore, SqliteStore, Store};
use ledgerline_proto::stripe::v1::BalanceTransactionRecord;
use prost::Message as _;

fn charge_bt(id: &str, created: i64) -> InRecord {
    charge_bt_of(PLATFORM, id, created)
}

fn charge_bt_of(account: &str, id: &str, created: i64) -> InRecord {
    let raw = format!(
        r#"{{"id":"{id}","object":"balance_transaction","amount":1000,"available_on":{created},
        "created":{created},"currency":"usd","exchange_rate":null,"fee":59,"net":941,
        "fee_details":[{{"amount":59,"application":null,"currency":"usd","description":"Stripe processing fees","type":"stripe_fee"}}],
        "reporting_category":"charge","source":"ch_{id}","status":"pending","type":"charge"}}"#
    );
    let record = BalanceTransactionRecord {
        balance_transaction_id: id.into(),
        account: account.into(),
        raw_json: raw.into_bytes(),
        ..Default::default()
    };
    InRecord {
        topic: "bts".into(),
        kind: TopicKind::BalanceTransactions,
        partition: 0,
        offset: 0,
        key: Some(format!("{PLATFORM}/{id}").into_bytes()),
        payload: Some(record.encode_to_vec()),
    }
}

async fn unstorable_facts_are_dead_letters<S: Store>(store: S) {
    let dlq = EmbeddedLog::in_memory(1);
    let mut engine = Engine::new();
    let mut batch = vec![
        charge_bt("txn_far", 1_000_000_000_000_000),
        charge_bt("txn_before_1970", -86_400),
        charge_bt("txn_nul\\u0000", 1_767_225_600),
        charge_bt_of("acct_\0nul", "txn_nul_account", 1_767_225_600),
        charge_bt(&format!("txn_{}", "l".repeat(300)), 1_767_225_600),
        charge_bt_of(
            &format!("acct_{}", "l".repeat(300)),
            "txn_long_account",
            1_767_225_600,
        ),
        charge_bt("txn_fine", 1_767_225_600),
    ];
    for (offset, r) in (0..).zip(&mut batch) {
        r.offset = offset;
    }
    let report = fold_and_commit(&store, &mut engine, &dlq, "g", &batch)
        .await
        .unwrap();
    assert_eq!((report.dead_letters, report.facts), (6, 1), "{report:?}");
    let reasons: Vec<String> = dlq
        .read("bts.dlq", 0, 0)
        .iter()
        .map(|r| String::from_utf8(r.header(DLQ_REASON_HEADER).unwrap().to_vec()).unwrap())
        .collect();
    assert_eq!(reasons.len(), 6);
    for (reason, time) in reasons.iter().zip(["@1000000000000000", "@-86400"]) {
        assert!(
            reason.contains(&format!(
                "effective time {time} is not one Stripe could have written"
            )),
            "{reason}"
        );
    }
    assert!(
        reasons[2].contains("the id holds a NUL character"),
        "{}",
        reasons[2]
    );
    assert!(
        reasons[3].starts_with("envelope's account holds a NUL character"),
        "{}",
        reasons[3]
    );
    assert!(
        reasons[4].contains("the id is 304 characters long, beyond the 255 of Stripe's ids"),
        "{}",
        reasons[4]
    );
    assert_eq!(
        reasons[5],
        "envelope's account is 305 characters long: Stripe's ids are at most 255"
    );
    let stored = store.stored_entries().await.unwrap();
    assert!(!stored.is_empty());
    assert!(
        stored.iter().all(|e| e.source_id.starts_with("txn_fine")),
        "{stored:?}"
    );
    assert!(store.verify_chain().await.unwrap().ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unstorable_facts_are_dead_letters_in_postgresql() {
    let (_pool, url) = fresh_db("unstorable").await;
    unstorable_facts_are_dead_letters(PgStore::connect(&url).await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unstorable_facts_are_dead_letters_in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    unstorable_facts_are_dead_letters(
        SqliteStore::open(&dir.path().join("l.sqlite"))
            .await
            .unwrap(),
    )
    .await;
}
