//! A consumer written with another client reads what a real ledger run published: the ledger
//! folds a stripe-sim world (with duplicate deliveries) from real Kafka into real PostgreSQL
//! and publishes its entries on `ledger.entries.v1` through the outbox; then
//! `tests/python/ledger_entries_consumer.py` — Python, confluent-kafka, code generated from
//! `proto/` by grpcio-tools' protoc at run time — decodes every record and checks each entry
//! balances per currency in exact decimals. Its distinct entries must be exactly the ledger's
//! (ids from `ListEntries`), and the balances it sums must equal the ledger's `GetBalances`.
#![allow(clippy::unwrap_used)]

mod ledger_support;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use ledger_support::*;
use ledgerline_bus::Topics;
use ledgerline_ledger::Role;
use ledgerline_proto::ledger::v1 as pb;
use ledgerline_tests::{kafka_bootstrap_servers, unique_name};
use pb::ledger_query_client::LedgerQueryClient;
use rust_decimal::Decimal;
use tonic::transport::Channel;

const TOKEN: &str = "python-consumer-test-token";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn python() -> PathBuf {
    let cache =
        std::env::var("LEDGERLINE_CACHE_DIR").map_or_else(|_| repo().join(".cache"), PathBuf::from);
    let bin = cache.join("venv/bin/python");
    assert!(
        bin.exists(),
        "{} is missing: run scripts/install-deps",
        bin.display()
    );
    bin
}

fn req<T>(msg: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_python_consumer_decodes_every_published_entry() {
    let topics = Topics::with_prefix(format!("{}.", unique_name("py")));
    create_topics(&topics).await;
    let (_world, facts) = world_facts(11, 2_000);
    let records = produce(&topics, &facts, 20).await;
    let (pool, url) = fresh_db("ledger_python").await;
    let group = unique_name("ledger");
    let mut config = config(&url, &topics, &group);
    config.tokens = vec![(TOKEN.into(), Role::Auditor)];
    let (running, stop) = start(config).await;
    wait_for_offsets(&pool, &group, records, Duration::from_secs(240)).await;
    let model = model(&facts);

    // What the ledger says, over its public API.
    let channel = Channel::from_shared(format!("http://{}", running.grpc_addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut c = LedgerQueryClient::new(channel);
    let mut ids = BTreeSet::new();
    let mut token = String::new();
    loop {
        let page = c
            .list_entries(req(pb::ListEntriesRequest {
                page_size: 1000,
                page_token: token.clone(),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        ids.extend(page.entries.into_iter().map(|e| e.entry_id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(ids.len(), model.entries().len());
    let balances: BTreeSet<(String, String, String, Decimal)> = c
        .get_balances(req(pb::GetBalancesRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .balances
        .into_iter()
        .map(|b| (b.ledger, b.account, b.currency, b.amount.parse().unwrap()))
        .collect();

    // The Python consumer, on what the outbox published.
    let topic = topics.ledger_entries();
    let expect = ids.len().to_string();
    let script = repo().join("tests/python/ledger_entries_consumer.py");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python())
            .arg(script)
            .args(["--bootstrap", &kafka_bootstrap_servers()])
            .args(["--topic", &topic])
            .args(["--expect", &expect])
            .args(["--timeout", "180"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the Python consumer failed:\n{stderr}"
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let py_ids: BTreeSet<String> = summary["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        py_ids, ids,
        "the entries Python decoded are not the ledger's"
    );
    assert!(summary["records"].as_u64().unwrap() >= summary["entries"].as_u64().unwrap());
    let total_lines: usize = model.entries().iter().map(|e| e.lines().len()).sum();
    assert_eq!(
        usize::try_from(summary["lines"].as_u64().unwrap()).unwrap(),
        total_lines
    );
    let py_balances: BTreeSet<(String, String, String, Decimal)> = summary["balances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let s = |i: usize| r[i].as_str().unwrap().to_owned();
            (s(0), s(1), s(2), s(3).parse().unwrap())
        })
        .collect();
    assert!(!balances.is_empty());
    assert_eq!(
        py_balances, balances,
        "Python's sums differ from GetBalances"
    );

    stop.cancel();
    running.task.await.unwrap().unwrap();
}
