//! `ledgerline-ledger rebuild`: the log replayed into an empty database or schema up to exactly
//! where a live ledger stands gives the same facts, entries, chain heads and offsets; records
//! the live ledger had not read are left out; a line changed by hand in the live ledger is
//! named, and the binary's exit status tells the two outcomes apart.
#![allow(clippy::unwrap_used)]

mod ledger_support;

use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use ledger_support::*;
use ledgerline_bus::Topics;
use ledgerline_ledger::StripeMode;
use ledgerline_ledger::rebuild::{self, Counts, Progress, RebuildConfig};
use ledgerline_ledger::store::AdvisoryLocks;
use ledgerline_tests::{kafka_bootstrap_servers, unique_name};
use sqlx::{Connection as _, PgPool};
use tokio_util::sync::CancellationToken;

async fn count(pool: &PgPool, table: &str) -> u64 {
    let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
        .fetch_one(pool)
        .await
        .unwrap();
    u64::try_from(n).unwrap()
}

async fn offsets(pool: &PgPool, group: &str) -> Vec<(String, i32, i64)> {
    sqlx::query_as(
        "SELECT topic, partition, next_offset FROM consumer_offsets WHERE consumer_group = $1 \
         ORDER BY topic, partition",
    )
    .bind(group)
    .fetch_all(pool)
    .await
    .unwrap()
}

/// `ledgerline-ledger rebuild ARGS` against the live database: (exit code, stdout, stderr).
fn rebuild_binary(
    live_url: &str,
    prefix: &str,
    group: &str,
    args: &[&str],
) -> (i32, String, String) {
    let out = Command::new(ledger_binary())
        .arg("rebuild")
        .args(args)
        .env("DATABASE_URL", live_url)
        .env("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap_servers())
        .env("LEDGERLINE_TOPIC_PREFIX", prefix)
        .env("LEDGERLINE_GROUP", group)
        .env("LEDGERLINE_RAW_DICTIONARY_SAMPLES", "1000")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rebuild_stops_at_the_live_offsets_reproduces_the_books_and_names_a_changed_line() {
    let prefix = format!("{}.", unique_name("lr"));
    let topics = Topics::with_prefix(prefix.clone());
    create_topics(&topics).await;
    let (_world, facts) = world_facts(21, 3_000);
    let mut records = produce(&topics, &facts, 20).await;
    produce_raw(
        &topics.stripe_events(),
        "acct_x/evt_bad",
        b"not a protobuf record",
    )
    .await;
    records += 1;

    let (live, live_url) = fresh_db("rebuild_live").await;
    let group = unique_name("ledger");
    let (running, stop) = start(config(&live_url, &topics, &group)).await;
    wait_for_offsets(&live, &group, records, Duration::from_secs(180)).await;
    stop.cancel();
    running.task.await.unwrap().unwrap();
    let live_facts = count(&live, "ledger_facts").await;
    let live_entries = count(&live, "journal_entries").await;
    assert!(
        live_facts > 2_000 && live_entries > 500,
        "{live_facts} facts, {live_entries} entries"
    );

    // The log goes on past where the live ledger stopped: the rebuild must leave these out.
    let (_later_world, later) = world_facts(22, 300);
    let later_records = produce(&topics, &later, 1).await;
    assert!(later_records > 0);

    // The library, into a fresh database, the group found in the live database.
    let (target, target_url) = fresh_db("rebuild_target").await;
    let mut rc = RebuildConfig::new(&live_url, &target_url, kafka(&unique_name("rebuild")));
    rc.topics = topics.clone();
    rc.raw_dictionary_samples = 1_000;
    // The live database is bound to test mode: a rebuild that would fold live-mode facts is
    // refused before it touches the target (the rebuild below binds it to test mode).
    let mut live_mode = rc.clone();
    live_mode.stripe_mode = StripeMode::Live;
    let err = rebuild::run(live_mode, CancellationToken::new(), &|_| {})
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("books Stripe's test-mode facts") && err.contains("--stripe-mode test"),
        "{err}"
    );
    let seen: Mutex<Vec<Progress>> = Mutex::new(Vec::new());
    let report = rebuild::run(rc.clone(), CancellationToken::new(), &|p| {
        seen.lock().unwrap().push(p);
    })
    .await
    .unwrap();
    assert!(report.identical(), "{report}");
    assert_eq!(report.group, group);
    assert_eq!(report.records, i64::try_from(records).unwrap());
    assert_eq!(
        report.facts,
        Counts {
            live: live_facts,
            rebuilt: live_facts
        }
    );
    assert_eq!(
        report.entries,
        Counts {
            live: live_entries,
            rebuilt: live_entries
        }
    );
    let live_heads = chain_heads(&live).await;
    assert_eq!(report.heads.live, live_heads.len() as u64);
    assert_eq!(report.dead_letters.len(), 1, "{:?}", report.dead_letters);
    assert_eq!(
        report.dead_letters[0].0,
        format!("{}.dlq", topics.stripe_events())
    );
    let last = *seen.lock().unwrap().last().unwrap();
    assert_eq!(last.folded, last.records);
    // Independently of the report: the rebuilt rows themselves.
    assert_eq!(stored_digests(&target).await, stored_digests(&live).await);
    assert_eq!(chain_heads(&target).await, live_heads);
    assert_eq!(offsets(&target, &group).await, offsets(&live, &group).await);
    assert_eq!(
        count(&target, "ledger_facts").await,
        live_facts,
        "later records left out"
    );
    assert_eq!(
        count(&target, "ledger_cells_pending").await,
        0,
        "cells built"
    );
    assert!(count(&target, "ledger_balance_cells").await > 0);
    // A target that holds books already is refused, and left as it was.
    let again = rebuild::run(rc, CancellationToken::new(), &|_| {}).await;
    let err = again.unwrap_err().to_string();
    assert!(err.contains("already holds"), "{err}");
    assert_eq!(count(&target, "ledger_facts").await, live_facts);

    // The binary, into a new schema of the live database.
    let (code, stdout, stderr) = rebuild_binary(
        &live_url,
        &prefix,
        &group,
        &["--into-schema", "rebuild_check"],
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("IDENTICAL"), "{stdout}");
    assert_eq!(
        count(&live, "rebuild_check.journal_entries").await,
        live_entries
    );
    assert_eq!(count(&live, "public.journal_entries").await, live_entries);

    // Into a schema of the live database while the live ledger holds its writer's and cells
    // builder's advisory locks (database-wide, not per schema) throughout: the rebuild takes
    // locks of its own, so it neither waits for the live ledger nor holds it up. (The target
    // is migrated first: the migrations take the writer's lock themselves.)
    let beside = "rebuild_beside_live";
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {beside}")))
        .execute(&live)
        .await
        .unwrap();
    let in_schema = live_url
        .parse::<sqlx::postgres::PgConnectOptions>()
        .unwrap()
        .options([("search_path", beside)]);
    ledgerline_ledger::PgStore::connect_with(in_schema)
        .await
        .unwrap();
    let mut live_writer = sqlx::PgConnection::connect(&live_url).await.unwrap();
    let held = AdvisoryLocks::LEDGER;
    sqlx::query("SELECT pg_advisory_lock($1), pg_advisory_lock($2)")
        .bind(held.writer)
        .bind(held.builder)
        .execute(&mut live_writer)
        .await
        .unwrap();
    let mut rc = RebuildConfig::new(&live_url, &live_url, kafka(&unique_name("rebuild")));
    rc.topics = topics.clone();
    rc.group = Some(group.clone());
    rc.target_schema = Some(beside.to_owned());
    let report = tokio::time::timeout(
        Duration::from_secs(120),
        rebuild::run(rc, CancellationToken::new(), &|_| {}),
    )
    .await
    .expect("the rebuild waited for the live ledger's locks")
    .unwrap();
    assert!(report.identical(), "{report}");
    let still_held: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
           AND pid = pg_backend_pid()",
    )
    .fetch_one(&mut live_writer)
    .await
    .unwrap();
    assert_eq!(still_held, 2);
    live_writer.close().await.unwrap();
    assert_eq!(
        count(&live, &format!("{beside}.journal_entries")).await,
        live_entries
    );
    assert_eq!(
        count(&live, &format!("{beside}.ledger_cells_pending")).await,
        0,
        "its cells built under its own builder's lock"
    );

    // While the live ledger folds on: the rebuild cuts at one snapshot of it and matches that.
    let (running, stop) = start(config(&live_url, &topics, &group)).await;
    let (_busy_world, busy) = world_facts(23, 2_000);
    let total = records + later_records + produce(&topics, &busy, 20).await;
    let (_, concurrent_url) = fresh_db("rebuild_concurrent").await;
    let mut rc = RebuildConfig::new(&live_url, &concurrent_url, kafka(&unique_name("rebuild")));
    rc.topics = topics.clone();
    rc.group = Some(group.clone());
    let report = rebuild::run(rc, CancellationToken::new(), &|_| {})
        .await
        .unwrap();
    assert!(report.identical(), "{report}");
    assert!(report.records >= i64::try_from(records).unwrap());
    wait_for_offsets(&live, &group, total, Duration::from_secs(180)).await;
    stop.cancel();
    running.task.await.unwrap().unwrap();

    // The first target, cut before the live ledger moved on, is brought up to it: --continue
    // folds only what the live ledger read since, then compares the whole books.
    let (code, stdout, stderr) = rebuild_binary(
        &live_url,
        &prefix,
        &group,
        &["--into", &target_url, "--continue"],
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("IDENTICAL"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "replayed {total} records of group {group}, {records} of them folded by an earlier rebuild"
        )),
        "{stdout}"
    );
    assert_eq!(offsets(&target, &group).await, offsets(&live, &group).await);
    assert_eq!(stored_digests(&target).await, stored_digests(&live).await);
    assert_eq!(chain_heads(&target).await, chain_heads(&live).await);

    // A line changed by hand in the live ledger: the rebuild names its entry and exits 1.
    let victim: uuid::Uuid = sqlx::query_scalar(
        "SELECT entry_id FROM ledger_entry_meta ORDER BY recorded_seq OFFSET 50 LIMIT 1",
    )
    .fetch_one(&live)
    .await
    .unwrap();
    let mut conn = live.acquire().await.unwrap();
    change_line_by_hand(&mut conn, victim).await;
    drop(conn);
    let (_, tampered_url) = fresh_db("rebuild_tampered").await;
    let (code, stdout, stderr) =
        rebuild_binary(&live_url, &prefix, &group, &["--into", &tampered_url]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("DIFFERENT: 0 facts, 1 entries, 0 chain heads"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("entry {victim}")) && stdout.contains("line 0: live"),
        "{stdout}"
    );

    // Records deleted from the log (what a retention limit does): the metrics show it, and a
    // rebuild refuses, naming the partition, instead of folding a partial log.
    let events_0 = format!("{}/0", topics.stripe_events());
    let mut deleted = rdkafka::TopicPartitionList::new();
    deleted
        .add_partition_offset(&topics.stripe_events(), 0, rdkafka::Offset::Offset(1))
        .unwrap();
    kafka("rebuild-admin")
        .admin()
        .unwrap()
        .delete_records(&deleted, &rdkafka::admin::AdminOptions::new())
        .await
        .unwrap();
    let scraper = ledgerline_ledger::metrics::Scraper::new(
        live.clone(),
        &kafka("rebuild-metrics"),
        &group,
        &topics,
    )
    .unwrap();
    let start = samples(
        &scraper.render().await,
        "ledgerline_ledger_log_start_offset",
    );
    let label = format!("topic=\"{}\",partition=\"0\"", topics.stripe_events());
    assert_eq!(start.get(&label), Some(&1), "{start:?}");
    assert_eq!(start.values().sum::<i64>(), 1, "{start:?}");
    let (code, _, stderr) = rebuild_binary(
        &live_url,
        &prefix,
        &group,
        &["--into-schema", "rebuild_partial"],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(&format!("{events_0} starts at offset 1")),
        "{stderr}"
    );
    assert_eq!(
        count(&live, "rebuild_partial.ledger_facts").await,
        0,
        "nothing folded"
    );

    // Nothing to write into: exit 2 with what to do.
    let (code, _, stderr) = rebuild_binary(&live_url, &prefix, &group, &[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--into"), "{stderr}");
}
