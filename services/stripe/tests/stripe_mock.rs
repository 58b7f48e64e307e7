//! Every kind of request the client (and the ingester through it) sends, against Stripe's
//! own stripe-mock, which validates them against Stripe's OpenAPI spec. Installed by
//! `scripts/install-deps` into `.cache/bin/stripe-mock`; a missing binary fails the test.
#![allow(clippy::unwrap_used)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ledgerline_stripe::{ApiKey, Client, ClientConfig, Feature, probe};

struct Mock(Child);

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn start() -> (Mock, String) {
    let bin = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache/bin/stripe-mock");
    assert!(
        bin.exists(),
        "{} missing: run scripts/install-deps",
        bin.display()
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // Owned by `Mock` at once: whatever happens next, its drop kills and reaps the process.
    let mock = Mock(
        Command::new(bin)
            .args(["-http-port", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return (mock, base);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("stripe-mock did not start");
}

#[tokio::test]
async fn stripe_mock_accepts_every_request_the_client_sends() {
    let (_mock, base) = start().await;
    let mut cfg = ClientConfig::new(
        &base,
        ApiKey::parse("sk_test_123456789012345678901234").unwrap(),
    );
    cfg.requests_per_sec = Some(0);
    cfg.max_retries = 0;
    let c = Client::new(cfg).unwrap();
    let s = |v: &str| v.to_owned();
    let lists: Vec<(&str, Vec<(&str, String)>)> = vec![
        (
            "/v1/events",
            vec![
                ("created[gte]", s("1767225600")),
                ("starting_after", s("evt_1")),
            ],
        ),
        (
            "/v1/events",
            vec![
                ("delivery_success", s("false")),
                ("created[gte]", s("1767225600")),
            ],
        ),
        ("/v1/events", vec![("type", s("invoice.*"))]),
        // A backlog beyond the catch-up buffer is read forward (ingester `oldest_first`).
        (
            "/v1/events",
            vec![
                ("created[gte]", s("1767225600")),
                ("ending_before", s("evt_1")),
            ],
        ),
        (
            "/v1/balance_transactions",
            vec![
                ("created[gte]", s("1767225600")),
                ("ending_before", s("txn_1")),
            ],
        ),
        (
            "/v1/balance_transactions",
            vec![
                ("created[gte]", s("1767225600")),
                ("starting_after", s("txn_1")),
            ],
        ),
        ("/v1/balance_transactions", vec![("payout", s("po_1"))]),
        ("/v1/customers", vec![]),
        ("/v1/invoices", vec![("starting_after", s("in_1"))]),
        ("/v1/invoice_payments", vec![]),
        ("/v1/credit_notes", vec![]),
        ("/v1/charges", vec![]),
        ("/v1/refunds", vec![]),
        ("/v1/disputes", vec![]),
        ("/v1/payouts", vec![]),
        ("/v1/accounts", vec![]),
    ];
    for (path, params) in &lists {
        let page = c.list_page(path, params, None).await;
        assert!(page.is_ok(), "{path} {params:?}: {page:?}");
    }
    // Connected account header.
    c.list_page("/v1/events", &[], Some("acct_1"))
        .await
        .unwrap();
    c.get("/v1/payouts/po_1", &[], None).await.unwrap();
    // Webhook self-registration as the ingester sends it (with an Idempotency-Key).
    let form = [
        ("url", s("https://example.com/webhooks/default")),
        ("enabled_events[]", s("*")),
        ("connect", s("false")),
        ("description", s("Ledgerline ingester default")),
    ];
    c.post_form(
        "/v1/webhook_endpoints",
        &form,
        None,
        Some("ledgerline-webhook-default"),
    )
    .await
    .unwrap();
    // The permission probe's requests are all answered (reads 200, write probes 400: past auth).
    let report = probe(
        &c,
        &[
            Feature::Events,
            Feature::BalanceTransactions,
            Feature::Payouts,
            Feature::Backfill,
            Feature::Connect,
        ],
        None,
    )
    .await
    .unwrap();
    assert!(report.missing().is_empty(), "{:?}", report.statuses);
}
