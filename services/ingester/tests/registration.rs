//! Webhook self-registration: the ingester registers its endpoint through the API, keeps the
//! secret in PostgreSQL, verifies what Stripe then signs with it, and reuses it on restart.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use ledgerline_proto::stripe::v1::{IngestSource, StripeEventRecord};
use ledgerline_stripe_sim::http::{ClockConfig, DEFAULT_TEST_KEY, SimConfig, SimServer};
use ledgerline_stripe_sim::world::{World, WorldConfig};
use prost::Message as _;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_its_endpoint_and_verifies_with_the_kept_secret() {
    let world = World::generate(&WorldConfig {
        connected_accounts: 0,
        ..WorldConfig::with_facts(5, 500)
    });
    let start = world.config.start;
    let sim_config = SimConfig {
        clock: ClockConfig {
            start: Some(start),
            speed: 0,
        },
        ..SimConfig::default()
    };
    let sim = SimServer::start(sim_config, world.objects).await.unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (mut cfg, db_url) = common::config(&sim.base_url(), DEFAULT_TEST_KEY, Vec::new()).await;
    cfg.listen = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    cfg.accounts[0].register_webhook_url =
        Some(format!("http://127.0.0.1:{port}/webhooks/default"));
    cfg.events = false;
    cfg.balance_transactions = false;
    cfg.payouts = false;
    cfg.gap_fill = false;
    let topic = cfg.topics.stripe_events();
    let shutdown = CancellationToken::new();
    let running = ledgerline_ingester::start(cfg.clone(), shutdown.clone())
        .await
        .unwrap();
    sim.handle().advance(2 * 86_400);
    assert!(sim.handle().settle_webhooks(Duration::from_secs(20)).await);
    let stats = sim.handle().webhook_stats();
    assert!(
        stats.succeeded > 0 && stats.failed_attempts == 0,
        "{:?}",
        (stats.succeeded, stats.failed_attempts)
    );
    shutdown.cancel();
    running.wait().await.unwrap();
    // The secret is kept; a restart reuses the endpoint instead of registering another.
    let pool = sqlx::PgPool::connect(&db_url).await.unwrap();
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM ingester_webhook_endpoints")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 1);
    let shutdown = CancellationToken::new();
    let running = ledgerline_ingester::start(cfg, shutdown.clone())
        .await
        .unwrap();
    sim.handle().advance(86_400);
    assert!(sim.handle().settle_webhooks(Duration::from_secs(20)).await);
    let stats2 = sim.handle().webhook_stats();
    assert!(stats2.succeeded > stats.succeeded && stats2.failed_attempts == 0);
    shutdown.cancel();
    running.wait().await.unwrap();
    let records = common::consume_all(&topic, Duration::from_secs(3)).await;
    assert_eq!(u64::try_from(records.len()).unwrap(), stats2.succeeded);
    for (_, v) in &records {
        assert_eq!(
            StripeEventRecord::decode(v.as_slice()).unwrap().source,
            IngestSource::Webhook as i32
        );
    }
    sim.shutdown().await;
}
