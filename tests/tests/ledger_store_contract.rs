//! One contract, two stores: the same scenarios run against the PostgreSQL store and the
//! SQLite store, driving the fold directly (no broker): a stripe-sim world with duplicates
//! folds into exactly the core's entries (conflicts stored); refolding after a restart adds
//! nothing; the gRPC queries (trial balance, both time axes, paging, statement, chain
//! verification) answer the same; a hand-changed line is named by verification. PostgreSQL
//! stores raw facts zstd-compressed: every reader gives back the bytes as sent, whatever a
//! row's encoding or dictionary, and a damaged row or a missing dictionary is an error naming
//! the fact.
#![allow(clippy::unwrap_used)]

mod ledger_support;

use ledger_support::*;
use ledgerline_bus::EmbeddedLog;
use ledgerline_ledger::consumer::fold_and_commit;
use ledgerline_ledger::engine::{Engine, InRecord};
use ledgerline_ledger::grpc::Query;
use ledgerline_ledger::raw::{Dictionary, RawEncoding, frame_dictionary};
use ledgerline_ledger::store::{PgStore, ReadFacts, SqliteStore, Store};
use ledgerline_proto::ledger::v1 as pb;
use ledgerline_proto::ledger::v1::ledger_query_server::LedgerQuery as _;
use std::time::Duration;
use tonic::Request;

/// Every fact once, then every fifth again (duplicates).
fn records(facts: &[WireFact]) -> Vec<InRecord> {
    in_records(facts.iter().chain(facts.iter().step_by(5)))
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
    let stored = store_digests(&store).await;
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
        assert_eq!(core_state(engine.ledger()), core_state(&model));
    }
    assert!(replayed[0] > 97 * 2, "several pages: {replayed:?}");
    assert_eq!(replayed[0], replayed[1]);
    // Exactly one full page, then an empty one: the pipeline's last page is applied too.
    let mut exact = Engine::with_catch_up_page(i64::try_from(replayed[0]).unwrap());
    let mut tx = store.begin_write().await.unwrap();
    assert_eq!(exact.catch_up(&mut tx).await.unwrap(), replayed[0]);
    drop(tx);
    assert_eq!(core_state(exact.ledger()), core_state(&model));
    // At start a ledger rebuilds from a snapshot, without the writer lock: the same state,
    // and a writer holding the lock meanwhile neither blocks it nor shows it what it has not
    // committed.
    let mut held = store.begin_write().await.unwrap();
    // Another world's facts, at offsets past the folded ones.
    let mut more = records(&world_facts(12, 40).1);
    for r in &mut more {
        r.offset += 1_000_000;
    }
    let mut writer = Engine::new();
    writer.catch_up(&mut held).await.unwrap();
    let mut prepared =
        ledgerline_ledger::engine::prepare(more, &store.raw_encoder(), writer.rules());
    let (written, _) = writer
        .fold_batch(&mut held, "g", &mut prepared)
        .await
        .unwrap();
    assert!(written.entries > 0, "{written:?}");
    let mut warmed = Engine::new();
    let warmed_up = tokio::time::timeout(Duration::from_secs(30), warmed.warm_up(&store))
        .await
        .expect("the snapshot waited for the writer lock")
        .unwrap();
    drop(held);
    assert_eq!(warmed_up, replayed[0], "only committed facts");
    assert_eq!(core_state(warmed.ledger()), core_state(&model));

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
    assert!(
        facts.iter().any(|f| f.raw == one.raw_fact),
        "the raw fact byte for byte as sent"
    );
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
    let encodings = assert_raw_facts_exact(&raw_pool, &facts).await;
    assert_eq!(
        encodings.keys().collect::<Vec<_>>(),
        ["zstd"],
        "{encodings:?}"
    );
    // Compressed, a row stays inline: (almost) nothing goes to TOAST, where every row of
    // ~2 KB raw JSON went before.
    let toasted = toasted_facts(&raw_pool).await;
    assert!(
        toasted * 20 < encodings["zstd"],
        "{toasted} of {} facts toasted",
        encodings["zstd"]
    );
    let storage: String = sqlx::query_scalar(
        "SELECT attstorage::text FROM pg_attribute \
         WHERE attrelid = 'ledger_facts'::regclass AND attname = 'raw'",
    )
    .fetch_one(&raw_pool)
    .await
    .unwrap();
    assert_eq!(
        storage, "e",
        "raw is STORAGE EXTERNAL: never compressed again"
    );
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

/// A batch that fails midway — at its lines' insert, after its facts were written in the same
/// transaction, and at its facts' insert, while its postings are being applied on another
/// thread — is taken back in memory (not rebuilt from the stored facts) and retried from the
/// same prepared records: the books still equal the core's fold, nothing doubled, nothing
/// missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_failing_midway_is_retried_into_the_same_books() {
    const FAILING: [&str; 2] = ["journal_lines", "ledger_facts"];
    let (pool, url) = fresh_db("contract_retry").await;
    let store = PgStore::connect(&url).await.unwrap();
    for table in FAILING {
        // A sequence is not transactional: it counts the attempts the rollbacks undo.
        for sql in [
            format!("CREATE SEQUENCE {table}_attempts"),
            format!(
                "CREATE FUNCTION {table}_fail_twice() RETURNS trigger LANGUAGE plpgsql AS $$ \
                 BEGIN IF nextval('{table}_attempts') <= 2 THEN RAISE EXCEPTION 'injected failure'; \
                 END IF; RETURN NULL; END $$"
            ),
            format!(
                "CREATE TRIGGER {table}_fail_twice BEFORE INSERT ON {table} \
                 FOR EACH STATEMENT EXECUTE FUNCTION {table}_fail_twice()"
            ),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&pool)
                .await
                .unwrap();
        }
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
    assert_eq!(
        engine.batches_taken_back(),
        4,
        "each injected failure taken back by the same engine"
    );
    assert_eq!(core_state(engine.ledger()), core_state(&model));
    for table in FAILING {
        let attempts: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT last_value FROM {table}_attempts"
        )))
        .fetch_one(&pool)
        .await
        .unwrap();
        assert!(
            attempts >= 3,
            "the failure on {table} was injected twice ({attempts} attempts)"
        );
    }
    let stored = store_digests(&store).await;
    assert_eq!(stored.len(), folded, "each entry reported once");
    assert_eq!(
        stored,
        model_digests(&model),
        "the store equals the core fold"
    );
    assert!(store.verify_chain().await.unwrap().ok());
    let encodings = assert_raw_facts_exact(&pool, &facts).await;
    assert_eq!(
        encodings.keys().collect::<Vec<_>>(),
        ["zstd"],
        "{encodings:?}"
    );
}

/// Every distinct fact is stored once, its raw JSON byte for byte once decoded here (with the
/// zstd library directly, not the ledger's reader; small batches take the single-`INSERT` path,
/// large ones `COPY`). Returns how many rows each `raw_encoding` has.
async fn assert_raw_facts_exact(
    pool: &sqlx::PgPool,
    facts: &[WireFact],
) -> std::collections::BTreeMap<String, usize> {
    let stored: Vec<(String, String, Vec<u8>)> =
        sqlx::query_as("SELECT ledger, raw_encoding, raw FROM ledger_facts ORDER BY fact_seq")
            .fetch_all(pool)
            .await
            .unwrap();
    let sent: std::collections::BTreeSet<(String, Vec<u8>)> = facts
        .iter()
        .map(|f| (f.account.clone(), f.raw.clone()))
        .collect();
    assert_eq!(stored.len(), sent.len(), "each distinct fact once");
    let mut encodings = std::collections::BTreeMap::new();
    let (mut zstd_bytes, mut zstd_raw_bytes) = (0, 0);
    let decoded: std::collections::BTreeSet<(String, Vec<u8>)> = stored
        .into_iter()
        .map(|(ledger, encoding, bytes)| {
            let raw = match encoding.as_str() {
                "identity" => bytes,
                "zstd" => {
                    let raw = zstd::decode_all(bytes.as_slice()).unwrap();
                    zstd_bytes += bytes.len();
                    zstd_raw_bytes += raw.len();
                    raw
                }
                other => panic!("raw_encoding {other}"),
            };
            *encodings.entry(encoding).or_insert(0) += 1;
            (ledger, raw)
        })
        .collect();
    assert_eq!(decoded, sent);
    assert!(
        zstd_bytes * 2 < zstd_raw_bytes || zstd_raw_bytes == 0,
        "zstd rows hold {zstd_bytes} bytes for {zstd_raw_bytes} raw"
    );
    encodings
}

/// How many facts have their raw bytes out of line (in `ledger_facts`' TOAST table).
async fn toasted_facts(pool: &sqlx::PgPool) -> usize {
    let toast: String = sqlx::query_scalar(
        "SELECT reltoastrelid::regclass::text FROM pg_class WHERE oid = 'ledger_facts'::regclass",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(DISTINCT chunk_id) FROM {toast}"
    )))
    .fetch_one(pool)
    .await
    .unwrap();
    usize::try_from(n).unwrap()
}

/// A table written partly before the zstd migration (rows `identity`, out of line) and partly
/// after (`zstd`), by both write paths: every reader — a restart's catch-up, one entry with its
/// raw fact over gRPC — gives back the bytes as sent; a damaged compressed row is an error
/// naming the fact, in each of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_facts_of_either_encoding_read_back_and_a_damaged_one_is_named() {
    let (pool, url) = fresh_db("raw_enc").await;
    let zstd_store = PgStore::connect(&url).await.unwrap();
    let identity_store = zstd_store.clone().with_raw_encoding(RawEncoding::Identity);
    let (_world, facts) = world_facts(13, 700);
    let model = model(&facts);
    let batch = records(&facts);
    let dlq = EmbeddedLog::in_memory(1);
    let mut engine = Engine::new();
    // identity by COPY (≥ 500 facts), then zstd by INSERT … UNNEST.
    let (old, new) = batch.split_at(550);
    fold_and_commit(&identity_store, &mut engine, &dlq, "g", old)
        .await
        .unwrap();
    for chunk in new.chunks(150) {
        fold_and_commit(&zstd_store, &mut engine, &dlq, "g", chunk)
            .await
            .unwrap();
    }
    let encodings = assert_raw_facts_exact(&pool, &facts).await;
    assert!(
        encodings.get("identity") > Some(&400) && encodings.get("zstd") > Some(&50),
        "{encodings:?}"
    );
    // A restart's catch-up reads both encodings.
    for mut engine in [Engine::new(), Engine::with_catch_up_page(61)] {
        let mut tx = zstd_store.begin_write().await.unwrap();
        engine.catch_up(&mut tx).await.unwrap();
        drop(tx);
        assert_eq!(core_state(engine.ledger()), core_state(&model));
    }
    // One entry with its raw fact, for every entry: the bytes as sent.
    let q = Query::new(zstd_store.clone());
    let by_fact: std::collections::HashMap<String, Vec<u8>> = facts
        .iter()
        .map(|f| {
            let v: serde_json::Value = serde_json::from_slice(&f.raw).unwrap();
            (v["id"].as_str().unwrap().to_owned(), f.raw.clone())
        })
        .collect();
    let entries: Vec<(uuid::Uuid, String)> = sqlx::query_as(
        "SELECT m.entry_id, f.raw_encoding FROM ledger_entry_meta m \
         JOIN ledger_facts f ON f.fact_seq = m.fact_seq",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(entries.len(), model.entries().len());
    for (id, _) in &entries {
        let one = q
            .get_entry(Request::new(pb::GetEntryRequest {
                entry_id: id.to_string(),
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(one.raw_fact, by_fact[&one.fact_id], "entry {id}");
    }

    // A damaged compressed row (its checksum's last byte changed by hand).
    let (victim, seq): (uuid::Uuid, i64) = sqlx::query_as(
        "SELECT m.entry_id, f.fact_seq FROM ledger_entry_meta m \
         JOIN ledger_facts f ON f.fact_seq = m.fact_seq \
         WHERE f.raw_encoding = 'zstd' ORDER BY f.fact_seq LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    sqlx::query("SET session_replication_role = replica")
        .execute(&mut *conn)
        .await
        .unwrap();
    let changed = sqlx::query(
        "UPDATE ledger_facts \
         SET raw = set_byte(raw, length(raw) - 1, 255 - get_byte(raw, length(raw) - 1)) \
         WHERE fact_seq = $1",
    )
    .bind(seq)
    .execute(&mut *conn)
    .await
    .unwrap();
    assert_eq!(changed.rows_affected(), 1);
    drop(conn);
    let named = format!("fact_seq {seq} ");
    let e = zstd_store.entry(victim).await.unwrap_err();
    assert!(
        matches!(e, ledgerline_ledger::Error::CorruptFact { fact_seq, .. } if fact_seq == seq),
        "{e}"
    );
    let status = q
        .get_entry(Request::new(pb::GetEntryRequest {
            entry_id: victim.to_string(),
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::DataLoss);
    assert!(status.message().contains(&named), "{}", status.message());
    let mut restarted = Engine::new();
    let mut tx = zstd_store.begin_write().await.unwrap();
    let e = restarted.catch_up(&mut tx).await.unwrap_err().to_string();
    assert!(e.contains(&named) && e.contains("damaged"), "{e}");
}

/// A row written before the zstd migration (no `raw_encoding` column yet) reads back as sent
/// once the migration ran: it is `identity`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_fact_written_before_the_zstd_migration_reads_back() {
    const ZSTD_MIGRATION: i64 = 20261123000200;
    let (pool, url) = fresh_db("raw_premigration").await;
    let before = ledgerline_ledger::MIGRATOR
        .iter()
        .map(|m| m.version)
        .filter(|v| *v < ZSTD_MIGRATION)
        .max()
        .unwrap();
    ledgerline_ledger::MIGRATOR
        .run_to(before, &pool)
        .await
        .unwrap();
    let (_world, facts) = world_facts(14, 20);
    let f = &facts[0];
    // The ledger's own insert of that time.
    sqlx::query(
        "INSERT INTO ledger_facts (fact_seq, topic, kafka_partition, kafka_offset, ledger, \
         fact_id, digest, raw, recorded_at) VALUES (1, 'e', 0, 0, $1, 'evt_x', $2, $3, now())",
    )
    .bind(&f.account)
    .bind(ledgerline_ledger::engine::fact_digest(&f.account, &f.raw).to_vec())
    .bind(&f.raw)
    .execute(&pool)
    .await
    .unwrap();
    let store = PgStore::connect(&url).await.unwrap();
    let encoding: String = sqlx::query_scalar("SELECT raw_encoding FROM ledger_facts")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(encoding, "identity");
    let mut tx = store.begin_write().await.unwrap();
    let read = tx.facts_since(0, 10).await.unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].clone().take_raw().unwrap(), f.raw);
    let mut engine = Engine::new();
    assert_eq!(engine.catch_up(&mut tx).await.unwrap(), 1);
}

/// Facts compressed with a dictionary trained on the first ones (as the consumer does): the
/// rows name it, the stored dictionary alone decodes them (as `zstd -d -D` would), an instance
/// that has not loaded it yet reads them (catch-up, one entry over gRPC), and a fact whose
/// dictionary is gone is an error naming both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn facts_compressed_with_a_trained_dictionary_read_back_anywhere() {
    let (pool, url) = fresh_db("raw_dict").await;
    let store = PgStore::connect(&url).await.unwrap();
    assert_eq!(store.load_raw_dictionaries().await.unwrap(), Some(4_000));
    assert_eq!(
        store
            .clone()
            .with_dictionary_samples(0)
            .load_raw_dictionaries()
            .await
            .unwrap(),
        None
    );
    let (_world, facts) = world_facts(15, 1_200);
    let model = model(&facts);
    let batch = records(&facts);
    let dlq = EmbeddedLog::in_memory(1);
    let mut engine = Engine::new();
    let (old, new) = batch.split_at(batch.len() / 2);
    fold_and_commit(&store, &mut engine, &dlq, "g", old)
        .await
        .unwrap();
    let samples: Vec<Vec<u8>> = facts
        .iter()
        .take(old.len())
        .map(|f| f.raw.clone())
        .collect();
    let dict = Dictionary::train(&samples).unwrap();
    store.add_raw_dictionary(dict.clone()).await.unwrap();
    assert_eq!(store.load_raw_dictionaries().await.unwrap(), None);
    // By COPY (≥ 500 facts) and by INSERT.
    let (copied, inserted) = new.split_at(new.len().min(520));
    for chunk in [copied].into_iter().chain(inserted.chunks(90)) {
        fold_and_commit(&store, &mut engine, &dlq, "g", chunk)
            .await
            .unwrap();
    }

    let stored_dict: Vec<u8> =
        sqlx::query_scalar("SELECT dictionary FROM ledger_raw_dictionaries WHERE dict_id = $1")
            .bind(i64::from(dict.id()))
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(stored_dict, dict.bytes());
    let rows: Vec<(String, String, Vec<u8>)> =
        sqlx::query_as("SELECT ledger, raw_encoding, raw FROM ledger_facts ORDER BY fact_seq")
            .fetch_all(&pool)
            .await
            .unwrap();
    let mut plain = zstd::bulk::Decompressor::new().unwrap();
    let mut with_dict = zstd::bulk::Decompressor::with_dictionary(&stored_dict).unwrap();
    let (mut named, mut bytes_with, mut raw_with) = (0, 0, 0);
    let decoded: std::collections::BTreeSet<(String, Vec<u8>)> = rows
        .iter()
        .map(|(ledger, encoding, stored)| {
            assert_eq!(encoding, "zstd");
            let raw = match frame_dictionary(stored) {
                None => plain.decompress(stored, 1 << 24).unwrap(),
                Some(id) => {
                    assert_eq!(id, dict.id());
                    named += 1;
                    let raw = with_dict.decompress(stored, 1 << 24).unwrap();
                    bytes_with += stored.len();
                    raw_with += raw.len();
                    raw
                }
            };
            (ledger.clone(), raw)
        })
        .collect();
    let sent: std::collections::BTreeSet<(String, Vec<u8>)> = facts
        .iter()
        .map(|f| (f.account.clone(), f.raw.clone()))
        .collect();
    assert_eq!(decoded, sent);
    assert!(
        named > 300 && named < rows.len(),
        "{named} of {}",
        rows.len()
    );
    assert!(
        bytes_with * 4 < raw_with,
        "{bytes_with} bytes stored for {raw_with} raw"
    );

    // An instance that has not loaded the dictionary reads every fact.
    let other = PgStore::new(pool.clone());
    let mut tx = other.begin_write().await.unwrap();
    let mut restarted = Engine::with_catch_up_page(97);
    restarted.catch_up(&mut tx).await.unwrap();
    drop(tx);
    assert_eq!(core_state(restarted.ledger()), core_state(&model));
    let last: uuid::Uuid = sqlx::query_scalar(
        "SELECT entry_id FROM ledger_entry_meta ORDER BY recorded_seq DESC LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let (_, raw) = PgStore::new(pool.clone())
        .entry(last)
        .await
        .unwrap()
        .unwrap();
    assert!(sent.iter().any(|(_, r)| *r == raw));

    // Dictionaries are append-only; one removed by hand leaves its facts unreadable, named.
    let refused = sqlx::query("DELETE FROM ledger_raw_dictionaries")
        .execute(&pool)
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("append-only"), "{refused}");
    let mut conn = pool.acquire().await.unwrap();
    sqlx::query("SET session_replication_role = replica")
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query("DELETE FROM ledger_raw_dictionaries")
        .execute(&mut *conn)
        .await
        .unwrap();
    drop(conn);
    let e = PgStore::new(pool.clone())
        .entry(last)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("fact_seq") && e.contains(&format!("dictionary {}", dict.id())),
        "{e}"
    );
    let mut tx = PgStore::new(pool.clone()).begin_write().await.unwrap();
    let e = Engine::new()
        .catch_up(&mut tx)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains(&format!("dictionary {}", dict.id())), "{e}");
}

/// Stored facts served from memory, whose last recording may fail to read.
struct FactsInMemory {
    facts: Vec<ledgerline_ledger::store::StoredFact>,
    last_recorded: Result<i64, ()>,
}

impl ReadFacts for FactsInMemory {
    async fn facts_since(
        &mut self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<ledgerline_ledger::store::StoredFact>, ledgerline_ledger::Error> {
        let limit = usize::try_from(limit).unwrap();
        Ok(self
            .facts
            .iter()
            .filter(|f| f.seq > after)
            .take(limit)
            .cloned()
            .collect())
    }

    async fn max_recorded_seq(&mut self) -> Result<i64, ledgerline_ledger::Error> {
        self.last_recorded.map_err(|()| {
            ledgerline_ledger::Error::Io(std::io::Error::other("the connection dropped"))
        })
    }
}

/// A catch-up cut short must not leave the facts in with an older last recording: the next
/// catch-up finds no new fact, and the engine's next entries would follow the wrong position.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catch_up_cut_short_leaves_no_stale_chain_position() {
    let (_world, facts) = world_facts(15, 300);
    let stored: Vec<ledgerline_ledger::store::StoredFact> = facts
        .iter()
        .enumerate()
        .map(|(i, f)| ledgerline_ledger::store::StoredFact {
            seq: i64::try_from(i).unwrap() + 1,
            ledger: f.account.clone(),
            digest: ledgerline_ledger::engine::fact_digest(&f.account, &f.raw).to_vec(),
            encoding: "identity".into(),
            stored: f.raw.clone(),
            dictionaries: std::sync::Arc::default(),
        })
        .collect();
    let mut engine = Engine::with_catch_up_page(50);
    let mut failing = FactsInMemory {
        facts: stored.clone(),
        last_recorded: Err(()),
    };
    assert!(engine.catch_up(&mut failing).await.is_err());
    let mut source = FactsInMemory {
        facts: stored,
        last_recorded: Ok(4_242),
    };
    engine.catch_up(&mut source).await.unwrap();
    assert_eq!(engine.last_recorded_seq(), 4_242);
    assert_eq!(core_state(engine.ledger()), core_state(&model(&facts)));
}
