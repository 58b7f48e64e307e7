//! Crashes and rebuilds: a ledger aborted at random moments mid-fold ends with exactly the
//! entries of the core's uninterrupted fold; a rebuild from the log into a fresh database
//! (another group) reproduces the same entries and the same chain heads.
#![allow(clippy::unwrap_used)]

mod ledger_support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ledger_support::*;
use ledgerline_bus::Topics;
use ledgerline_tests::unique_name;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aborted_at_random_moments_then_rebuilt_from_the_log_gives_the_same_books() {
    let topics = Topics::with_prefix(format!("{}.", unique_name("lc")));
    create_topics(&topics).await;
    let (world, facts) = world_facts(11, 12_000);
    let records = produce(&topics, &facts, 25).await;

    let (pool, url) = fresh_db("ledger_crash").await;
    let group = unique_name("ledger");
    let mut seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let mut progress = Vec::new();
    for round in 0..6 {
        let before = folded(&pool, &group).await;
        if before >= records {
            break;
        }
        let mut config = config(&url, &topics, &group);
        config.batch.max_records = 500; // many transactions to die in
        let (running, _stop) = start(config).await;
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        if round % 2 == 1 {
            // A random moment in time: may land in start-up, the replay or a batch.
            let ms = 150 + u64::from(seed % 900);
            tokio::time::sleep(Duration::from_millis(ms)).await;
        } else {
            wait_for_random_point(&pool, &group, before, records, seed).await;
        }
        running.task.abort(); // drops the consumer, publisher and server mid-flight
        let _ = running.task.await;
        progress.push(folded(&pool, &group).await);
    }
    // The aborts hit the fold midway, not only before or after it.
    assert!(
        progress.iter().any(|p| *p > 0 && *p < records),
        "no abort landed mid-fold: {progress:?} of {records}"
    );
    let (running, stop) = start(config(&url, &topics, &group)).await;
    wait_for_offsets(&pool, &group, records, Duration::from_secs(300)).await;
    stop.cancel();
    running.task.await.unwrap().unwrap();

    let model = model(&facts);
    let crashed = stored_digests(&pool).await;
    assert_eq!(crashed, model_digests(&model), "entries after crashes");
    assert_ground_truth(&pool, &world).await;
    let mut conn = pool.acquire().await.unwrap();
    let v = ledgerline_ledger::chain::verify(&mut conn).await.unwrap();
    assert!(v.ok(), "{:?}", v.first_bad);

    // Rebuild: the log from the beginning into a fresh database, another group.
    let (pool2, url2) = fresh_db("ledger_rebuild").await;
    let group2 = unique_name("rebuild");
    let (running, stop) = start(config(&url2, &topics, &group2)).await;
    wait_for_offsets(&pool2, &group2, records, Duration::from_secs(300)).await;
    stop.cancel();
    running.task.await.unwrap().unwrap();
    assert_eq!(stored_digests(&pool2).await, crashed, "rebuilt entries");
    assert_eq!(
        chain_heads(&pool2).await,
        chain_heads(&pool).await,
        "rebuilt chain heads"
    );
}
