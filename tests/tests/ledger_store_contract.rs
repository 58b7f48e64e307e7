//! One contract, two stores: the same scenarios run against the PostgreSQL store and the
//! SQLite store, driving the fold directly (no broker): a stripe-sim world with duplicates
//! folds into exactly the core's entries (conflicts stored); refolding after a restart adds
//! nothing; the gRPC queries (trial balance, both time axes, paging, statement, chain
//! verification) answer the same; a hand-changed line is named by verification.
#![allow(clippy::unwrap_used)]

mod ledger_support;

use ledger_support::*;
use ledgerline_bus::EmbeddedLog;
use ledgerline_ledger::consumer::fold_and_commit;
use ledgerline_ledger::engine::{Engine, InRecord, TopicKind};
use ledgerline_ledger::grpc::Query;
use ledgerline_ledger::store::{PgStore, SqliteStore, Store};
use ledgerline_proto::ledger::v1 as pb;
use ledgerline_proto::ledger::v1::ledger_query_server::LedgerQuery as _;
use tonic::Request;

fn records(facts: &[WireFact]) -> Vec<InRecord> {
    // Every fact once, then every fifth again (duplicates), one partition per topic.
    let mut offsets = [0i64; 2];
    facts
        .iter()
        .chain(facts.iter().step_by(5))
        .map(|f| {
            let i = usize::from(!f.topic_is_events);
            offsets[i] += 1;
            InRecord {
                topic: if f.topic_is_events { "e" } else { "b" }.into(),
                kind: if f.topic_is_events {
                    TopicKind::Events
                } else {
                    TopicKind::BalanceTransactions
                },
                partition: 0,
                offset: offsets[i] - 1,
                key: Some(f.key.clone().into_bytes()),
                payload: Some(f.payload.clone()),
            }
        })
        .collect()
}

async fn contract<S: Store>(store: S, tamper: impl AsyncFnOnce(uuid::Uuid)) {
    let (world, facts) = world_facts(11, 1_500);
    let model = model(&facts);
    let batch = records(&facts);
    let dlq = EmbeddedLog::in_memory(1);
    let mut engine = Engine::new();
    for chunk in batch.chunks(700) {
        fold_and_commit(&store, &mut engine, &dlq, "g", chunk)
            .await
            .unwrap();
    }
    let stored: std::collections::BTreeMap<_, _> = store
        .stored_entries()
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.entry_id, c.digest()))
        .collect();
    assert_eq!(
        stored,
        model_digests(&model),
        "the store equals the core fold"
    );

    // Exactly once: a restarted engine refolding everything adds nothing.
    let mut restarted = Engine::new();
    let again = fold_and_commit(&store, &mut restarted, &dlq, "g", &batch)
        .await
        .unwrap();
    assert_eq!((again.records, again.entries), (0, 0));
    assert_eq!(store.stored_entries().await.unwrap().len(), stored.len());
    // A restart's catch-up reads the stored facts a page at a time: any page size rebuilds
    // the core's state whole.
    let mut replayed = Vec::new();
    for mut engine in [Engine::new(), Engine::with_catch_up_page(97)] {
        let mut tx = store.begin_write().await.unwrap();
        replayed.push(engine.catch_up(&mut tx).await.unwrap());
        assert_eq!(engine.catch_up(&mut tx).await.unwrap(), 0, "nothing new");
        drop(tx);
        assert_eq!(model_digests(engine.ledger()), stored);
    }
    assert!(replayed[0] > 97 * 2, "several pages: {replayed:?}");
    assert_eq!(replayed[0], replayed[1]);

    let q = Query::new(store.clone());
    let tb = q
        .get_trial_balance(Request::new(pb::GetTrialBalanceRequest {
            ledger: PLATFORM.into(),
            as_of: None,
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(tb.balanced && !tb.rows.is_empty());
    // Recorded before anything was written: nothing.
    let before = q
        .get_balances(Request::new(pb::GetBalancesRequest {
            as_of: Some(pb::AsOf {
                effective_as_of: None,
                recorded_as_of: Some(prost_types::Timestamp {
                    seconds: 1_000_000,
                    nanos: 0,
                }),
            }),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(before.balances.is_empty());
    // Effective as of the world's end: the ground truth's Stripe balances.
    for (ac, bal) in &world.truth.balances {
        let ledger = ac.account.clone().unwrap_or_else(|| PLATFORM.to_owned());
        let r = q
            .get_balances(Request::new(pb::GetBalancesRequest {
                ledger: ledger.clone(),
                currency: ac.currency.clone(),
                as_of: Some(pb::AsOf {
                    effective_as_of: Some(prost_types::Timestamp {
                        seconds: world.truth.end,
                        nanos: 0,
                    }),
                    recorded_as_of: None,
                }),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        let total: rust_decimal::Decimal = r
            .balances
            .iter()
            .filter(|b| b.account.starts_with("assets:stripe:"))
            .map(|b| b.amount.parse::<rust_decimal::Decimal>().unwrap())
            .sum();
        let cur = ledgerline_core::Currency::parse(&ac.currency).unwrap();
        assert_eq!(
            cur.decimal_to_minor(total).unwrap(),
            bal.total(),
            "{ledger}"
        );
    }
    // Paging covers every entry once.
    let (mut n, mut token) = (0, String::new());
    let mut first = None;
    loop {
        let page = q
            .list_entries(Request::new(pb::ListEntriesRequest {
                page_size: 300,
                page_token: token.clone(),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        n += page.entries.len();
        if first.is_none() {
            first = page.entries.first().cloned();
        }
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(n, stored.len());
    // One entry with its raw fact.
    let first = first.unwrap();
    let one = q
        .get_entry(Request::new(pb::GetEntryRequest {
            entry_id: first.entry_id.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    let raw: serde_json::Value = serde_json::from_slice(&one.raw_fact).unwrap();
    assert_eq!(raw["id"].as_str().unwrap(), one.fact_id);
    // Statement: the last running balance is the account's balance.
    let pending = ledgerline_core::Account::StripePending;
    let st = q
        .get_account_statement(Request::new(pb::GetAccountStatementRequest {
            ledger: PLATFORM.into(),
            account: pending.to_string(),
            currency: "usd".into(),
            page_size: 1000,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    if st.next_page_token.is_empty() {
        let last = st.lines.last().unwrap().running_balance.clone();
        let usd = ledgerline_core::Currency::parse("usd").unwrap();
        assert_eq!(
            last.parse::<rust_decimal::Decimal>().unwrap(),
            model.balance(PLATFORM, &pending, usd).amount()
        );
    }
    // Chain verification, then a hand-changed line.
    let v = store.verify_chain().await.unwrap();
    assert!(v.ok(), "{:?}", v.first_bad);
    let victim: uuid::Uuid = first.entry_id.parse().unwrap();
    tamper(victim).await;
    let v = store.verify_chain().await.unwrap();
    assert_eq!(v.first_bad.map(|b| b.0), Some(victim));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgresql_store_keeps_the_contract() {
    let (pool, url) = fresh_db("contract_pg").await;
    let store = PgStore::connect(&url).await.unwrap();
    let (_world, facts) = world_facts(11, 1_500);
    let raw_pool = pool.clone();
    contract(store, async |victim| {
        let mut conn = pool.acquire().await.unwrap();
        sqlx::query("SET session_replication_role = replica")
            .execute(&mut *conn)
            .await
            .unwrap();
        sqlx::query(
            "UPDATE journal_lines SET amount = amount + 1 WHERE entry_id = $1 AND line_no = 0",
        )
        .bind(victim)
        .execute(&mut *conn)
        .await
        .unwrap();
    })
    .await;
    assert_raw_facts_exact(&raw_pool, &facts).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_store_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("l.sqlite"))
        .await
        .unwrap();
    let pool = store.pool().clone();
    contract(store, async |victim| {
        sqlx::query("DROP TRIGGER journal_lines_append_only_u")
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query(
            "UPDATE journal_lines SET amount = '1' || amount WHERE entry_id = ? AND line_no = 0",
        )
        .bind(victim.hyphenated().to_string())
        .execute(&pool)
        .await
        .unwrap();
    })
    .await;
}

/// A batch that fails midway (here: at its lines' insert, after its facts were written in the
/// same transaction) is retried from the same prepared records with a rebuilt engine: the books
/// still equal the core's fold, nothing doubled, nothing missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_failing_midway_is_retried_into_the_same_books() {
    let (pool, url) = fresh_db("contract_retry").await;
    let store = PgStore::connect(&url).await.unwrap();
    // A sequence is not transactional: it counts the attempts the rollbacks undo.
    for sql in [
        "CREATE SEQUENCE lines_attempts",
        "CREATE FUNCTION fail_twice() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN IF nextval('lines_attempts') <= 2 THEN RAISE EXCEPTION 'injected failure'; END IF; \
         RETURN NULL; END $$",
        "CREATE TRIGGER fail_twice BEFORE INSERT ON journal_lines \
         FOR EACH STATEMENT EXECUTE FUNCTION fail_twice()",
    ] {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    let (_world, facts) = world_facts(12, 400);
    let model = model(&facts);
    let batch = records(&facts);
    let dlq = EmbeddedLog::in_memory(1);
    let mut engine = Engine::new();
    let mut folded = 0;
    for chunk in batch.chunks(200) {
        folded += fold_and_commit(&store, &mut engine, &dlq, "g", chunk)
            .await
            .unwrap()
            .entries;
    }
    let attempts: i64 = sqlx::query_scalar("SELECT last_value FROM lines_attempts")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(
        attempts >= 3,
        "the failure was injected twice ({attempts} attempts)"
    );
    let stored: std::collections::BTreeMap<_, _> = store
        .stored_entries()
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.entry_id, c.digest()))
        .collect();
    assert_eq!(stored.len(), folded, "each entry reported once");
    assert_eq!(
        stored,
        model_digests(&model),
        "the store equals the core fold"
    );
    assert!(store.verify_chain().await.unwrap().ok());
    assert_raw_facts_exact(&pool, &facts).await;
}

/// Every distinct fact is stored once, its raw JSON byte for byte (small batches take the
/// single-`INSERT` path, large ones `COPY`).
async fn assert_raw_facts_exact(pool: &sqlx::PgPool, facts: &[WireFact]) {
    let stored: Vec<(String, Vec<u8>)> =
        sqlx::query_as("SELECT ledger, raw FROM ledger_facts ORDER BY fact_seq")
            .fetch_all(pool)
            .await
            .unwrap();
    let sent: std::collections::BTreeSet<(String, Vec<u8>)> = facts
        .iter()
        .map(|f| (f.account.clone(), f.raw.clone()))
        .collect();
    assert_eq!(stored.len(), sent.len(), "each distinct fact once");
    assert_eq!(
        stored
            .into_iter()
            .collect::<std::collections::BTreeSet<_>>(),
        sent
    );
}
