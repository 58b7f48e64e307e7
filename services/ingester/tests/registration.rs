//! Webhook self-registration: the ingester registers its endpoint through the API, keeps the
//! secret in PostgreSQL encrypted at rest (XChaCha20-Poly1305, key from the config), verifies
//! what Stripe then signs with it, and reuses it on restart; a secret kept in plain text by an
//! earlier version is encrypted in place; a wrong key or no key is refused at start.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use ledgerline_ingester::secretbox::{self, SecretKey};
use ledgerline_proto::stripe::v1::{IngestSource, StripeEventRecord};
use ledgerline_stripe_sim::http::{ClockConfig, DEFAULT_TEST_KEY, SimConfig, SimServer};
use ledgerline_stripe_sim::world::{World, WorldConfig};
use prost::Message as _;
use tokio_util::sync::CancellationToken;

const KEY: &str = "8f0e6a1c2b3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6071829304a5b6c7";

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
    let key = SecretKey::from_hex(KEY).unwrap();
    // No key: refused before anything is registered.
    let err = ledgerline_ingester::start(cfg.clone(), CancellationToken::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("encryption key") && err.contains("key_env"),
        "{err}"
    );
    cfg.webhook_secret_key = Some(key.clone());
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
    // Kept encrypted: the stored value is sealed, bound to its row, and opens to a whsec_.
    let (id, stored): (String, String) =
        sqlx::query_as("SELECT endpoint_id, secret FROM ingester_webhook_endpoints")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(stored.starts_with(secretbox::PREFIX), "{stored}");
    assert!(!stored.contains("whsec_"));
    let aad = format!("ledgerline-webhook-secret:default:test:{id}");
    let plain = secretbox::open(&key, &stored, &aad).unwrap();
    assert!(plain.starts_with("whsec_"));
    // A wrong key: refused at start, saying what to do, without the secret.
    let mut wrong = cfg.clone();
    wrong.webhook_secret_key = Some(SecretKey::from_hex(&KEY.replace('0', "f")).unwrap());
    let err = ledgerline_ingester::start(wrong, CancellationToken::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cannot be decrypted") && err.contains("ingester_webhook_endpoints"),
        "{err}"
    );
    assert!(!err.contains(&plain));
    // A plain-text secret kept by an earlier version is encrypted in place at the next start.
    sqlx::query("UPDATE ingester_webhook_endpoints SET secret = $1")
        .bind(&plain)
        .execute(&pool)
        .await
        .unwrap();
    let shutdown = CancellationToken::new();
    let running = ledgerline_ingester::start(cfg, shutdown.clone())
        .await
        .unwrap();
    let (resealed,): (String,) = sqlx::query_as("SELECT secret FROM ingester_webhook_endpoints")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(resealed.starts_with(secretbox::PREFIX) && resealed != stored);
    assert_eq!(secretbox::open(&key, &resealed, &aad).unwrap(), plain);
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
