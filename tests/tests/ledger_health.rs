//! A ledger's probes, and the core state rebuilt at start: a ledger restarted on stored books
//! rebuilds its state before any new record arrives (a quiet restart used to leave that to the
//! first record, which then waited for the whole replay), and says so on `/readyz`; gRPC
//! health answers SERVING; `ledgerline health` tells a closed port from a ready service.
#![allow(clippy::unwrap_used)]

mod ledger_support;

use std::time::Duration;

use ledger_support::*;
use ledgerline_bus::Topics;
use ledgerline_tests::unique_name;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_ledger_is_ready_once_its_state_is_rebuilt_before_any_new_record() {
    let topics = Topics::with_prefix(format!("{}.", unique_name("lh")));
    create_topics(&topics).await;
    let (_world, facts) = world_facts(41, 1_500);
    let records = produce(&topics, &facts, 0).await;
    let (pool, url) = fresh_db("ledger_health").await;
    let group = unique_name("ledger");
    let metrics = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));

    let mut first = config(&url, &topics, &group);
    first.metrics_addr = metrics;
    let (running, stop) = start(first).await;
    wait_for_offsets(&pool, &group, records, Duration::from_secs(120)).await;
    let addr = running.metrics_addr.unwrap();
    let (ready, said) = probe(format!("http://{addr}/readyz")).await;
    assert!(ready, "{said}");
    assert!(said.contains("rebuilt from 0 stored facts"), "{said}");
    let (serving, said) = probe(format!("grpc://{}", running.grpc_addr)).await;
    assert!(serving && said.trim() == "SERVING", "{said}");
    stop.cancel();
    running.task.await.unwrap().unwrap();

    // Restarted on the same books, nothing new on the topics: ready once the state is rebuilt
    // from every stored fact, with no batch to trigger it.
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM ledger_facts")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(stored > 1_000, "{stored} facts stored");
    let mut again = config(&url, &topics, &group);
    again.metrics_addr = metrics;
    let (running, stop) = start(again).await;
    let readyz = format!("http://{}/readyz", running.metrics_addr.unwrap());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let said = loop {
        let (ready, said) = probe(readyz.clone()).await;
        if ready {
            break said;
        }
        assert!(
            said.starts_with("503 not ready: rebuilding"),
            "not ready for another reason: {said}"
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "never ready: {said}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        said.contains(&format!("rebuilt from {stored} stored facts")),
        "{said}"
    );
    let page = scrape(running.metrics_addr.unwrap()).await;
    let one = |name: &str| samples(&page, name).get("").copied();
    assert_eq!(one("ledgerline_ledger_core_state_built"), Some(1), "{page}");
    assert_eq!(
        one("ledgerline_ledger_core_state_facts_at_start"),
        Some(stored),
        "{page}"
    );
    // Nothing was written to get there.
    assert_eq!(folded(&pool, &group).await, records);
    stop.cancel();
    running.task.await.unwrap().unwrap();

    // A closed port: no answer (an error, not "not ready").
    let (up, said) = probe(format!("http://{addr}/readyz")).await;
    assert!(!up && said.contains("cannot connect"), "{said}");
    let (up, said) = probe("ftp://example".to_owned()).await;
    assert!(!up && said.contains("http://host:port/path"), "{said}");
}
