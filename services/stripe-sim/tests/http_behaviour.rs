//! Stripe's behaviour around the data: keys, permissions, rate limits, idempotency,
//! `Stripe-Account`, faults, the simulated clock, and the balance.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod http_support;

use http_support::{Client, config, ids, start, world};
use ledgerline_stripe_sim::http::{ApiKey, Faults, Permission, RateLimits, SimConfig};
use ledgerline_stripe_sim::object::{ObjectKind, SimObject};

const RK: &str = "rk_test_readonlyevents00000000wxyz";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_missing_keys_get_401_with_the_key_masked() {
    let server = start(world(500), config()).await;
    let r = Client::new(&server).with_key(None).get("/v1/events").await;
    assert_eq!(r.status, 401);
    let e = &r.json()["error"];
    assert_eq!(e["type"], "invalid_request_error");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .starts_with("You did not provide an API key")
    );
    assert!(r.header("request-id").is_some());

    let r = Client::new(&server)
        .with_key(Some("sk_test_notaconfiguredkey1234"))
        .get("/v1/events")
        .await;
    assert_eq!(r.status, 401);
    let msg = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert_eq!(msg, "Invalid API Key provided: sk_test_****1234");
    assert!(!r.body.contains("notaconfigured"), "the key is masked");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restricted_keys_get_403_naming_the_missing_permission() {
    let mut cfg = config();
    cfg.keys.push(ApiKey::restricted(
        RK,
        [Permission::EventRead, Permission::InvoiceWrite],
    ));
    let platform = cfg.platform_account.clone();
    let server = start(world(2_000), cfg).await;
    let mut c = Client::new(&server).with_key(Some(RK));
    assert_eq!(c.get("/v1/events?limit=1").await.status, 200);
    // A write permission grants the read.
    assert_eq!(c.get("/v1/invoices?limit=1").await.status, 200);
    for (path, perm) in [
        (
            "/v1/balance_transactions?limit=1",
            "rak_balance_transaction_read",
        ),
        ("/v1/balance", "rak_balance_read"),
        ("/v1/payouts", "rak_payout_read"),
        ("/v1/charges", "rak_charge_read"),
        ("/v1/customers/cus_x", "rak_customer_read"),
    ] {
        let r = c.get(path).await;
        assert_eq!(r.status, 403, "{path}");
        let msg = r.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(
            msg.contains(&format!(
                "Having the '{perm}' permission would allow this request to continue."
            )),
            "{msg}"
        );
        assert!(msg.contains("rk_test_****wxyz"), "{msg}");
        assert!(msg.contains(&platform), "{msg}");
    }
    let r = c
        .post(
            "/v1/webhook_endpoints",
            "url=http://x/y&enabled_events[]=*",
            &[],
        )
        .await;
    assert_eq!(r.status, 403);
    assert!(r.body.contains("rak_webhook_write"));
    let r = c
        .post("/v1/payment_records/report_payment", "initiated_at=1", &[])
        .await;
    assert!(r.body.contains("rak_payment_record_write"));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_keys_see_test_data_and_live_keys_live_data() {
    let objects = world(3_000);
    let server = start(objects.clone(), config()).await;
    let live_count = objects
        .iter()
        .filter(|o| o.kind == ObjectKind::Charge && o.livemode && o.account.is_none())
        .count();
    assert!(live_count > 0);
    let mut live =
        Client::new(&server).with_key(Some(ledgerline_stripe_sim::http::DEFAULT_LIVE_KEY));
    let page = live.get("/v1/charges?limit=100").await.json();
    assert_eq!(ids(&page).len(), live_count);
    assert!(
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["livemode"] == true)
    );
    let mut test = Client::new(&server);
    let page = test.get("/v1/charges?limit=100").await.json();
    assert!(
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["livemode"] == false)
    );
    // A live object is invisible to a test key.
    let live_id = objects
        .iter()
        .find(|o| o.kind == ObjectKind::Charge && o.livemode)
        .unwrap();
    assert_eq!(
        test.get(&format!("/v1/charges/{}", live_id.id))
            .await
            .status,
        404
    );
    assert_eq!(
        live.get(&format!("/v1/charges/{}", live_id.id))
            .await
            .status,
        200
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_account_selects_a_connected_account() {
    let objects = world(5_000);
    let server = start(objects.clone(), config()).await;
    let acct = objects
        .iter()
        .find(|o| o.kind == ObjectKind::Charge && o.account.is_some() && !o.livemode)
        .unwrap()
        .account
        .clone()
        .unwrap();
    let want: Vec<&SimObject> = objects
        .iter()
        .filter(|o| {
            o.kind == ObjectKind::Charge && o.account.as_deref() == Some(&acct) && !o.livemode
        })
        .collect();
    let mut c = Client::new(&server);
    c.headers.push(("Stripe-Account".into(), acct.clone()));
    let page = c.get("/v1/charges?limit=100").await.json();
    let got = ids(&page);
    assert_eq!(got.len(), want.len());
    assert!(want.iter().all(|o| got.contains(&o.id)));
    let ev = c.get("/v1/events?limit=5").await.json();
    assert!(
        ev["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["account"] == acct.as_str())
    );
    // The platform does not see them.
    let mut p = Client::new(&server);
    let page = p.get("/v1/charges?limit=100").await.json();
    assert!(
        ids(&page)
            .iter()
            .all(|id| !want.iter().any(|o| &o.id == id))
    );
    // The accounts list shows the connected accounts.
    let accts = p.get("/v1/accounts").await.json();
    assert!(ids(&accts).contains(&acct));
    // An unknown account is refused.
    let mut bad = Client::new(&server);
    bad.headers
        .push(("Stripe-Account".into(), "acct_nope".into()));
    let r = bad.get("/v1/charges").await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"]["code"], "account_invalid");
    server.shutdown().await;
}

fn report_form(reference: &str, value: i64) -> String {
    format!(
        "amount_requested[currency]=usd&amount_requested[value]={value}&initiated_at=1767225600\
         &payment_method_details[type]=custom&payment_method_details[custom][display_name]=Wire\
         &processor_details[type]=custom&processor_details[custom][payment_reference]={reference}\
         &outcome=guaranteed&guaranteed[guaranteed_at]=1767225600"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_replay_or_refuse() {
    let server = start(world(500), config()).await;
    let mut c = Client::new(&server);
    let form = report_form("BANKREF-1", 12_345);
    let a = c
        .post(
            "/v1/payment_records/report_payment",
            &form,
            &[("Idempotency-Key", "k1")],
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let b = c
        .post(
            "/v1/payment_records/report_payment",
            &form,
            &[("Idempotency-Key", "k1")],
        )
        .await;
    assert_eq!(b.status, 200);
    assert_eq!(a.body, b.body, "same key, same params: same stored answer");
    assert_eq!(b.header("idempotent-replayed"), Some("true"));
    // Same params in another order are the same params.
    let reordered: Vec<&str> = form.split('&').rev().collect();
    let b2 = c
        .post(
            "/v1/payment_records/report_payment",
            &reordered.join("&"),
            &[("Idempotency-Key", "k1")],
        )
        .await;
    assert_eq!(b2.body, a.body);
    let other = c
        .post(
            "/v1/payment_records/report_payment",
            &report_form("BANKREF-2", 1),
            &[("Idempotency-Key", "k1")],
        )
        .await;
    assert_eq!(other.status, 400);
    assert_eq!(other.json()["error"]["type"], "idempotency_error");
    // Without a key, each call creates a new record.
    let x = c
        .post("/v1/payment_records/report_payment", &form, &[])
        .await
        .json();
    let y = c
        .post("/v1/payment_records/report_payment", &form, &[])
        .await
        .json();
    assert_ne!(x["id"], y["id"]);
    // A validation failure stores nothing: the key can be used again.
    let bad = c
        .post(
            "/v1/payment_records/report_payment",
            "initiated_at=5",
            &[("Idempotency-Key", "k2")],
        )
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["error"]["code"], "parameter_missing");
    let good = c
        .post(
            "/v1/payment_records/report_payment",
            &form,
            &[("Idempotency-Key", "k2")],
        )
        .await;
    assert_eq!(good.status, 200);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_answer_429_with_stripe_shape_and_headers() {
    let mut cfg = config();
    cfg.rate_limits = RateLimits {
        live_per_sec: 100,
        test_per_sec: 25,
    };
    let server = start(world(500), cfg).await;
    let mut c = Client::new(&server);
    let mut ok = 0;
    let mut limited = None;
    for _ in 0..60 {
        let r = c.get("/v1/charges?limit=1").await;
        match r.status {
            200 => ok += 1,
            429 => limited = Some(r),
            s => panic!("unexpected {s}"),
        }
    }
    assert!(
        (25..=30).contains(&ok),
        "{ok} got through a 25 r/s test limit"
    );
    let r = limited.expect("some 429");
    let e = &r.json()["error"];
    assert_eq!(e["code"], "rate_limit");
    assert_eq!(e["type"], "invalid_request_error");
    assert_eq!(r.header("stripe-should-retry"), Some("true"));
    assert!(r.header("request-id").unwrap().starts_with("req_"));
    // The bucket refills.
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_eq!(c.get("/v1/charges?limit=1").await.status, 200);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_5xx_lock_timeouts_and_dropped_connections() {
    let cfg = SimConfig {
        faults: Faults {
            error_5xx_ppm: 200_000,
            drop_ppm: 100_000,
            lock_timeout_ppm: 300_000,
            slow_ppm: 100_000,
            slow_ms: 30,
        },
        ..config()
    };
    let server = start(world(500), cfg).await;
    let mut c = Client::new(&server);
    let (mut ok, mut e5, mut dropped) = (0, 0, 0);
    for _ in 0..300 {
        match c.try_send("GET", "/v1/charges?limit=1", "", &[]).await {
            Ok(r) if r.status == 200 => ok += 1,
            Ok(r) => {
                assert_eq!(r.status, 500);
                let e = &r.json()["error"];
                assert_eq!(e["type"], "api_error");
                assert_eq!(r.header("stripe-should-retry"), Some("true"));
                e5 += 1;
            }
            Err(_) => dropped += 1,
        }
    }
    assert!(
        ok > 150 && e5 > 20 && dropped > 10,
        "ok {ok} 5xx {e5} dropped {dropped}"
    );
    let mut locks = 0;
    for i in 0..60 {
        if let Ok(r) = c
            .try_send(
                "POST",
                "/v1/payment_records/report_payment",
                &report_form(&format!("R{i}"), 5),
                &[],
            )
            .await
            && r.status == 429
        {
            assert_eq!(r.json()["error"]["code"], "lock_timeout");
            assert_eq!(r.header("stripe-should-retry"), Some("true"));
            locks += 1;
        }
    }
    assert!(locks > 3, "{locks}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_unfolds_as_the_clock_advances() {
    let objects = world(5_000);
    let first = objects.iter().map(|o| o.created).min().unwrap();
    let mut cfg = config();
    cfg.clock.start = Some(first + 86_400);
    let server = start(objects.clone(), cfg).await;
    let sim = server.handle();
    let mut c = Client::new(&server);
    let visible = |now: i64| {
        objects
            .iter()
            .filter(|o| {
                o.kind == ObjectKind::Event
                    && !o.livemode
                    && o.account.is_none()
                    && o.created <= now
            })
            .count()
    };
    let count = |page: &serde_json::Value| ids(page).len();
    let newest = c.get("/v1/events?limit=1").await.json();
    let cursor = ids(&newest)[0].clone();
    assert!(count(&c.get("/v1/events?limit=100").await.json()) < visible(sim.now()) + 1);
    // Nothing newer than the newest yet.
    let r = c
        .get(&format!("/v1/events?ending_before={cursor}&limit=100"))
        .await
        .json();
    assert_eq!(count(&r), 0);
    let before = sim.now();
    sim.advance(12 * 3_600);
    let r = c
        .get(&format!("/v1/events?ending_before={cursor}&limit=100"))
        .await
        .json();
    let newly = objects
        .iter()
        .filter(|o| {
            o.kind == ObjectKind::Event
                && !o.livemode
                && o.account.is_none()
                && o.created > before
                && o.created <= before + 12 * 3_600
        })
        .count();
    assert!(newly > 0);
    assert_eq!(count(&r), newly.min(100));

    // A balance transaction turns available at `available_on`.
    let txn = objects
        .iter()
        .find(|o| {
            o.kind == ObjectKind::BalanceTransaction
                && o.created <= sim.now()
                && o.available_on.unwrap() > sim.now()
                && o.account.is_none()
                && !o.livemode
        })
        .unwrap();
    let t = c
        .get(&format!("/v1/balance_transactions/{}", txn.id))
        .await
        .json();
    assert_eq!(t["status"], "pending");
    let bal_before = c.get("/v1/balance").await.json();
    sim.set_now(txn.available_on.unwrap());
    let t = c
        .get(&format!("/v1/balance_transactions/{}", txn.id))
        .await
        .json();
    assert_eq!(t["status"], "available");
    let bal_after = c.get("/v1/balance").await.json();
    assert_eq!(bal_before["object"], "balance");
    assert_ne!(bal_before["available"], bal_after["available"]);
    // Admin API over HTTP moves the clock too.
    let r = c.post("/_sim/advance", "seconds=60", &[]).await.json();
    assert_eq!(r["now"].as_i64().unwrap(), sim.now());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn balance_sums_net_by_availability() {
    let objects = world(3_000);
    let cfg = config();
    let now = cfg.clock.start.unwrap();
    let server = start(objects.clone(), cfg).await;
    let (mut avail, mut pend) = (0i64, 0i64);
    for o in objects.iter().filter(|o| {
        o.kind == ObjectKind::BalanceTransaction
            && !o.livemode
            && o.account.is_none()
            && o.created <= now
    }) {
        let v: serde_json::Value = serde_json::from_str(&o.json).unwrap();
        let net = v["net"].as_i64().unwrap();
        if o.available_on.unwrap() <= now {
            avail += net;
        } else {
            pend += net;
        }
    }
    let b = Client::new(&server).get("/v1/balance").await.json();
    assert_eq!(b["available"][0]["currency"], "usd");
    assert_eq!(b["available"][0]["amount"].as_i64().unwrap(), avail);
    assert_eq!(b["pending"][0]["amount"].as_i64().unwrap(), pend);
    server.shutdown().await;
}
