//! The client against stripe-sim: keys and errors, the permission probe, pagination, retries
//! through injected 5xx and 429s, `Stripe-Account`.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;

use ledgerline_stripe::{ApiKey, Client, ClientConfig, Feature, StripeError, probe};
use ledgerline_stripe_sim::http::{
    ApiKey as SimKey, DEFAULT_TEST_KEY, Faults, Permission, RateLimits, SimConfig, SimServer,
};
use ledgerline_stripe_sim::world::{World, WorldConfig};

fn client(base: &str, key: &str, rate: Option<u32>) -> Client {
    let mut cfg = ClientConfig::new(base, ApiKey::parse(key).unwrap());
    cfg.requests_per_sec = rate;
    cfg.backoff_base = std::time::Duration::from_millis(20);
    cfg.backoff_max = std::time::Duration::from_millis(200);
    Client::new(cfg).unwrap()
}

#[tokio::test]
async fn restricted_key_lacking_a_permission_fails_fast_naming_it() {
    let rk = "rk_test_restrictedkey000000000000abcd";
    let config = SimConfig {
        keys: vec![
            SimKey::secret(DEFAULT_TEST_KEY),
            SimKey::restricted(rk, [Permission::EventRead, Permission::PayoutRead]),
        ],
        ..SimConfig::default()
    };
    let server = SimServer::start(config, Vec::new()).await.unwrap();
    let c = client(&server.base_url(), rk, Some(0));
    let report = probe(
        &c,
        &[
            Feature::Events,
            Feature::BalanceTransactions,
            Feature::Payouts,
        ],
        None,
    )
    .await
    .unwrap();
    let missing: Vec<_> = report.missing().iter().map(|s| s.name.clone()).collect();
    assert_eq!(missing, ["rak_balance_transaction_read"]);
    let err = report.require_all().unwrap_err().to_string();
    assert!(err.contains("rak_balance_transaction_read"), "{err}");
    assert!(!err.contains("restrictedkey"), "{err}");
    // A direct call gets the same named error.
    let err = c
        .list_page("/v1/balance_transactions", &[], None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StripeError::MissingPermission { permission, .. } if permission == "rak_balance_transaction_read"),
        "{err}"
    );
    assert!(err.request_id().unwrap().starts_with("req_"));
    // Write probes: webhook registration missing.
    let report = probe(&c, &[Feature::WebhookRegistration], None)
        .await
        .unwrap();
    assert_eq!(report.missing()[0].name, "rak_webhook_write");
    // A secret key has everything.
    let sk = client(&server.base_url(), DEFAULT_TEST_KEY, Some(0));
    let report = probe(
        &sk,
        &[Feature::Events, Feature::Backfill, Feature::Connect],
        None,
    )
    .await
    .unwrap();
    assert!(report.missing().is_empty());
    // 401 says what to do and never shows the key.
    let bad = client(
        &server.base_url(),
        "sk_test_notconfigured00000000000009999",
        Some(0),
    );
    let err = bad.list_page("/v1/events", &[], None).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, StripeError::Unauthorized { .. }), "{text}");
    assert!(
        text.contains("sk_test_****9999") && !text.contains("notconfigured"),
        "{text}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn pages_everything_once_through_5xx_faults_and_429s() {
    let world = World::generate(&WorldConfig::with_facts(7, 2_000));
    let expected: HashSet<String> = world
        .objects
        .iter()
        .filter(|o| {
            o.kind == ledgerline_stripe_sim::object::ObjectKind::BalanceTransaction
                && o.account.is_none()
                && !o.livemode
        })
        .map(|o| o.id.clone())
        .collect();
    let config = SimConfig {
        rate_limits: RateLimits {
            live_per_sec: 0,
            test_per_sec: 40,
        },
        faults: Faults {
            error_5xx_ppm: 100_000,
            ..Faults::default()
        },
        clock: ledgerline_stripe_sim::http::ClockConfig {
            start: Some(world.truth.end + 86_400 * 30),
            speed: 0,
        },
        ..SimConfig::default()
    };
    let server = SimServer::start(config, world.objects).await.unwrap();
    // No client-side limit: the server's 429s must be absorbed by retries.
    let c = client(&server.base_url(), DEFAULT_TEST_KEY, Some(0));
    let mut seen = HashSet::new();
    let mut params = vec![("limit", "10".to_owned())];
    loop {
        let page = c
            .list_page("/v1/balance_transactions", &params, None)
            .await
            .unwrap();
        for o in &page.data {
            assert!(seen.insert(o.id.clone()), "duplicate {}", o.id);
            let v: serde_json::Value = serde_json::from_slice(&o.raw).unwrap();
            assert_eq!(v["id"], o.id.as_str());
        }
        if !page.has_more {
            break;
        }
        params = vec![
            ("limit", "10".to_owned()),
            ("starting_after", page.data.last().unwrap().id.clone()),
        ];
    }
    assert_eq!(seen, expected);
    let stats = c.stats().by_status();
    assert!(stats.get(&500).copied().unwrap_or(0) > 0, "{stats:?}");
    // Connected account partition via Stripe-Account.
    let accounts = c.list_page("/v1/accounts", &[], None).await.unwrap();
    let acct = accounts.data[0].id.clone();
    let page = c
        .list_page("/v1/events", &[("limit", "5".to_owned())], Some(&acct))
        .await
        .unwrap();
    for e in &page.data {
        let v: serde_json::Value = serde_json::from_slice(&e.raw).unwrap();
        assert_eq!(v["account"], acct.as_str());
    }
    server.shutdown().await;
}

#[tokio::test]
async fn client_side_limiter_keeps_under_the_server_limit() {
    let config = SimConfig {
        rate_limits: RateLimits {
            live_per_sec: 0,
            test_per_sec: 25,
        },
        ..SimConfig::default()
    };
    let server = SimServer::start(config, Vec::new()).await.unwrap();
    let c = client(&server.base_url(), DEFAULT_TEST_KEY, None); // default: 20 r/s in test mode
    let start = std::time::Instant::now();
    let q = [("limit", "1".to_owned())];
    for _ in 0..60 {
        c.get("/v1/events", &q, None).await.unwrap();
    }
    let elapsed = start.elapsed();
    assert!(
        elapsed >= std::time::Duration::from_millis(2_700),
        "{elapsed:?}"
    );
    assert_eq!(
        c.stats().by_status().get(&429),
        None,
        "{:?}",
        c.stats().by_status()
    );
    server.shutdown().await;
}

/// A server that answers every request with `200` and `body` (HTTP/1.1, one request a
/// connection); returns its base URL and how many requests it answered.
async fn answering(body: &'static str) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = answered.clone();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match tcp.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nrequest-id: req_empty\r\n\
                 content-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = tcp.write_all(answer.as_bytes()).await;
        }
    });
    (base, answered)
}

#[tokio::test]
async fn an_empty_page_that_says_more_follow_is_an_error_not_an_endless_walk() {
    let (base, answered) = answering(r#"{"object":"list","data":[],"has_more":true}"#).await;
    let c = client(&base, DEFAULT_TEST_KEY, Some(0));
    let err = c
        .list_page("/v1/balance_transactions", &[], None)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, StripeError::Decode { .. }), "{text}");
    assert!(
        text.contains("has_more") && text.contains("req_empty"),
        "{text}"
    );
    assert_eq!(answered.load(std::sync::atomic::Ordering::SeqCst), 1);
    // The same page without `has_more` is the end of a list, not an error.
    let (base, _) = answering(r#"{"object":"list","data":[],"has_more":false}"#).await;
    let page = client(&base, DEFAULT_TEST_KEY, Some(0))
        .list_page("/v1/balance_transactions", &[], None)
        .await
        .unwrap();
    assert!(page.data.is_empty() && !page.has_more);
}
