//! Webhook endpoints and deliveries, and the writes that emit events: signatures checked with
//! an independent HMAC, secret rotation, duplicates, retries, drops and `delivery_success`;
//! `report_payment` + `attach_payment` changing the invoice and emitting events.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod http_support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use http_support::{Client, Receiver, config, ids, start, world};
use ledgerline_stripe_sim::http::{DeliveryStats, SimConfig, WebhookConfig};
use ledgerline_stripe_sim::object::ObjectKind;
use serde_json::Value;
use sha2::Sha256;

/// Verifies a `Stripe-Signature` header as Stripe's SDKs do (written here from the spec, not
/// with the simulator's code): every `v1` is tried; returns how many `v1` there were and
/// whether one matched.
fn verify(header: &str, body: &[u8], secret: &str) -> (usize, bool) {
    let mut t = None;
    let mut v1 = Vec::new();
    for part in header.split(',') {
        let (k, v) = part.split_once('=').unwrap();
        match k {
            "t" => t = Some(v.to_owned()),
            "v1" => v1.push(hex::decode(v).unwrap()),
            _ => {}
        }
    }
    let t = t.expect("t=");
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let want = mac.finalize().into_bytes().to_vec();
    (v1.len(), v1.contains(&want))
}

fn fast_webhooks(w: &WebhookConfig) -> SimConfig {
    let mut c = config();
    c.webhooks = WebhookConfig {
        tick_ms: 5,
        retry_base_ms: 20,
        retry_max_ms: 100,
        timeout_ms: 2_000,
        ..w.clone()
    };
    c
}

fn event_id(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap();
    v["id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_are_signed_and_secrets_rotate() {
    let objects = world(3_000);
    let first = objects.iter().map(|o| o.created).min().unwrap();
    let mut cfg = fast_webhooks(&WebhookConfig::default());
    cfg.clock.start = Some(first + 86_400);
    let server = start(objects.clone(), cfg).await;
    let sim = server.handle();
    let rx = Receiver::start(|_, _| 200).await;
    let mut c = Client::new(&server);
    let r = c
        .post(
            "/v1/webhook_endpoints",
            &format!("url={}&enabled_events[]=*&description=ledgerline", rx.url),
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let ep = r.json();
    let secret = ep["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let we = ep["id"].as_str().unwrap().to_owned();
    // The secret is shown once.
    let again = c.get(&format!("/v1/webhook_endpoints/{we}")).await.json();
    assert!(again.get("secret").is_none());
    assert_eq!(again["url"], rx.url.as_str());
    let listed = c.get("/v1/webhook_endpoints").await.json();
    assert_eq!(ids(&listed), vec![we.clone()]);
    assert!(!listed.to_string().contains(&secret));

    // History before the endpoint is not sent; the next hour is.
    let before = sim.now();
    sim.advance(12 * 3_600);
    assert!(sim.settle_webhooks(Duration::from_secs(20)).await);
    let expected: BTreeSet<String> = objects
        .iter()
        .filter(|o| {
            o.kind == ObjectKind::Event
                && !o.livemode
                && o.account.is_none()
                && o.created > before
                && o.created <= before + 12 * 3_600
        })
        .map(|o| o.id.clone())
        .collect();
    assert!(!expected.is_empty());
    let got = rx.received();
    let got_ids: BTreeSet<String> = got.iter().map(|r| event_id(&r.body)).collect();
    assert_eq!(got_ids, expected);
    for r in &got {
        let (n, ok) = verify(&r.signature, &r.body, &secret);
        assert_eq!(n, 1);
        assert!(ok, "signature verifies");
        // The body is the event exactly as the API serves it.
        let id = event_id(&r.body);
        let served = c.get(&format!("/v1/events/{id}")).await;
        assert_eq!(served.body.as_bytes(), &r.body[..]);
    }

    // Roll the secret: for a day both sign.
    let new_secret = sim.roll_webhook_secret(&we, 86_400).unwrap();
    let seen = got.len();
    sim.advance(12 * 3_600);
    assert!(sim.settle_webhooks(Duration::from_secs(20)).await);
    let got = rx.received();
    assert!(got.len() > seen);
    for r in &got[seen..] {
        let (n, ok_new) = verify(&r.signature, &r.body, &new_secret);
        let (_, ok_old) = verify(&r.signature, &r.body, &secret);
        assert_eq!(n, 2, "two v1 during rotation: {}", r.signature);
        assert!(ok_new && ok_old);
    }
    // After the window only the new secret signs.
    sim.advance(86_400);
    assert!(sim.settle_webhooks(Duration::from_secs(30)).await);
    let after = rx.received();
    let last = after.last().unwrap();
    let (n, ok_new) = verify(&last.signature, &last.body, &new_secret);
    assert_eq!((n, ok_new), (1, true));
    assert!(!verify(&last.signature, &last.body, &secret).1);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_retries_drops_and_delivery_success() {
    let objects = world(6_000);
    let first = objects.iter().map(|o| o.created).min().unwrap();
    let mut cfg = fast_webhooks(&WebhookConfig {
        duplicate_ppm: 100_000,
        drop_ppm: 50_000,
        reorder_ppm: 100_000,
        reorder_delay_ms: 30,
        jitter_ms: 5,
        max_attempts: 3,
        ..WebhookConfig::default()
    });
    cfg.clock.start = Some(first + 86_400);
    let server = start(objects.clone(), cfg).await;
    let sim = server.handle();
    // The receiver fails the first attempt of every fifth event, and every attempt of one in
    // 13 events (so those are given up).
    let rx = Receiver::start(|body, seen| {
        let id = event_id(body);
        let h = id
            .bytes()
            .fold(0u32, |a, b| a.wrapping_mul(31).wrapping_add(u32::from(b)));
        if h % 13 == 0 {
            500
        } else if h % 5 == 0 && seen == 0 {
            503
        } else {
            200
        }
    })
    .await;
    let ep = sim.register_webhook(&rx.url, &["*"], false, false).unwrap();
    let before = sim.now();
    sim.advance(4 * 86_400);
    assert!(sim.settle_webhooks(Duration::from_secs(60)).await);
    let stats = sim.webhook_stats();
    let expected: BTreeSet<String> = objects
        .iter()
        .filter(|o| {
            o.kind == ObjectKind::Event
                && !o.livemode
                && o.account.is_none()
                && o.created > before
                && o.created <= sim.now()
        })
        .map(|o| o.id.clone())
        .collect();
    assert_eq!(stats.scheduled, expected.len() as u64);
    assert!(
        stats.duplicates > 0
            && stats.dropped > 0
            && stats.retries > 0
            && stats.gave_up > 0
            && stats.reordered > 0,
        "{:?}",
        DeliveryStats {
            log: Default::default(),
            ..stats.clone()
        }
    );

    let got = rx.received();
    let mut per_event: BTreeMap<String, Vec<u16>> = BTreeMap::new();
    for r in &got {
        let (_, ok) = verify(&r.signature, &r.body, &ep.secret);
        assert!(ok);
        per_event
            .entry(event_id(&r.body))
            .or_default()
            .push(r.answered);
    }
    assert!(
        per_event
            .values()
            .any(|v| v.len() > 1 && v.iter().all(|s| *s == 200)),
        "a duplicate arrived"
    );
    assert!(
        per_event
            .values()
            .any(|v| v.first() == Some(&503) && v.last() == Some(&200)),
        "a retry succeeded"
    );
    let never: BTreeSet<String> = expected
        .iter()
        .filter(|id| !per_event.contains_key(*id))
        .cloned()
        .collect();
    assert_eq!(
        never.len() as u64,
        stats.dropped,
        "dropped deliveries never arrive"
    );
    let given_up: BTreeSet<String> = per_event
        .iter()
        .filter(|(_, v)| v.iter().all(|s| *s != 200))
        .map(|(k, _)| k.clone())
        .collect();
    for id in &given_up {
        let attempts: Vec<u32> = stats
            .log
            .iter()
            .filter(|r| &r.event_id == id && !r.duplicate)
            .map(|r| r.attempt)
            .collect();
        assert_eq!(attempts, [1, 2, 3], "max_attempts attempts, then given up");
    }
    assert_eq!(given_up.len() as u64, stats.gave_up);
    // Arrival order differs from creation order somewhere.
    let order: Vec<String> = got.iter().map(|r| event_id(&r.body)).collect();
    let created: BTreeMap<&str, (i64, usize)> = objects
        .iter()
        .enumerate()
        .filter(|(_, o)| o.kind == ObjectKind::Event)
        .map(|(i, o)| (o.id.as_str(), (o.created, i)))
        .collect();
    assert!(
        order
            .windows(2)
            .any(|w| created[w[0].as_str()] > created[w[1].as_str()]),
        "reordered"
    );

    // delivery_success=false lists exactly the dropped and given-up events.
    let mut c = Client::new(&server);
    let mut failed = BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            None => "/v1/events?delivery_success=false&limit=100".to_owned(),
            Some(c) => format!("/v1/events?delivery_success=false&limit=100&starting_after={c}"),
        };
        let page = c.get(&url).await.json();
        let got = ids(&page);
        cursor = got.last().cloned();
        failed.extend(got);
        if page["has_more"] != true {
            break;
        }
    }
    let want: BTreeSet<String> = never.union(&given_up).cloned().collect();
    assert_eq!(failed, want);
    let ok_page = c
        .get("/v1/events?delivery_success=true&limit=100")
        .await
        .json();
    assert!(ids(&ok_page).iter().all(|id| !want.contains(id)));

    // Resending a failed one on demand delivers it.
    let one = never.iter().next().unwrap().clone();
    assert!(sim.resend_event(&one, &ep.id));
    assert!(sim.settle_webhooks(Duration::from_secs(10)).await);
    assert!(rx.received().iter().any(|r| event_id(&r.body) == one));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_payment_and_attach_payment_pay_the_invoice_and_emit_events() {
    let objects = world(3_000);
    let server = start(objects.clone(), fast_webhooks(&WebhookConfig::default())).await;
    let sim = server.handle();
    let rx = Receiver::start(|_, _| 200).await;
    let mut c = Client::new(&server);
    let ep = c
        .post(
            "/v1/webhook_endpoints",
            &format!(
                "url={}&enabled_events[0]=invoice.paid&enabled_events[1]=invoice_payment.paid",
                rx.url
            ),
            &[],
        )
        .await
        .json();
    let secret = ep["secret"].as_str().unwrap().to_owned();
    let invoice = c.get("/v1/invoices?status=open&limit=1").await.json();
    let inv = &invoice["data"][0];
    let inv_id = inv["id"].as_str().unwrap().to_owned();
    let due = inv["amount_due"].as_i64().unwrap();
    let customer = inv["customer"].as_str().unwrap().to_owned();
    let part = due / 3;

    let report = |value: i64, reference: &str| {
        format!(
            "amount_requested[currency]=usd&amount_requested[value]={value}&initiated_at={now}\
             &customer_details[customer]={customer}&payment_method_details[type]=custom\
             &processor_details[type]=custom&processor_details[custom][payment_reference]={reference}\
             &outcome=guaranteed&guaranteed[guaranteed_at]={now}&metadata[source]=cashapp",
            now = sim.now()
        )
    };
    // A partial payment.
    let pr1 = c
        .post(
            "/v1/payment_records/report_payment",
            &report(part, "WIRE-1"),
            &[("Idempotency-Key", "rp-1")],
        )
        .await;
    assert_eq!(pr1.status, 200, "{}", pr1.body);
    let pr1 = pr1.json();
    assert_eq!(pr1["object"], "payment_record");
    assert_eq!(
        pr1["processor_details"]["custom"]["payment_reference"],
        "WIRE-1"
    );
    assert_eq!(pr1["amount_requested"]["value"], part);
    let pr1_id = pr1["id"].as_str().unwrap().to_owned();
    assert_eq!(
        c.get(&format!("/v1/payment_records/{pr1_id}")).await.json()["id"],
        pr1_id.as_str()
    );

    let r = c
        .post(
            &format!("/v1/invoices/{inv_id}/attach_payment"),
            &format!("payment_record={pr1_id}"),
            &[("Idempotency-Key", "ap-1")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let after1 = r.json();
    assert_eq!(after1["amount_paid"], part);
    assert_eq!(after1["amount_remaining"], due - part);
    assert_eq!(after1["status"], "open");
    // Attaching the same record twice is refused (and the replay gives the stored answer).
    let replay = c
        .post(
            &format!("/v1/invoices/{inv_id}/attach_payment"),
            &format!("payment_record={pr1_id}"),
            &[("Idempotency-Key", "ap-1")],
        )
        .await;
    assert_eq!(replay.json(), after1);
    let twice = c
        .post(
            &format!("/v1/invoices/{inv_id}/attach_payment"),
            &format!("payment_record={pr1_id}"),
            &[],
        )
        .await;
    assert_eq!(twice.status, 400);

    // The rest.
    let pr2 = c
        .post(
            "/v1/payment_records/report_payment",
            &report(due - part, "WIRE-2"),
            &[],
        )
        .await
        .json();
    let pr2_id = pr2["id"].as_str().unwrap().to_owned();
    let after2 = c
        .post(
            &format!("/v1/invoices/{inv_id}/attach_payment"),
            &format!("payment_record={pr2_id}"),
            &[],
        )
        .await
        .json();
    assert_eq!(after2["amount_paid"], due);
    assert_eq!(after2["amount_remaining"], 0);
    assert_eq!(after2["status"], "paid");
    assert_eq!(after2["status_transitions"]["paid_at"], sim.now());
    assert_eq!(
        c.get(&format!("/v1/invoices/{inv_id}")).await.json(),
        after2
    );
    // A paid invoice takes no more payments.
    let pr3 = c
        .post(
            "/v1/payment_records/report_payment",
            &report(1, "WIRE-3"),
            &[],
        )
        .await
        .json();
    let r = c
        .post(
            &format!("/v1/invoices/{inv_id}/attach_payment"),
            &format!("payment_record={}", pr3["id"].as_str().unwrap()),
            &[],
        )
        .await;
    assert_eq!(r.status, 400);

    // Invoice payments, the status filter, and the events.
    let ips = c
        .get(&format!("/v1/invoice_payments?invoice={inv_id}&limit=100"))
        .await
        .json();
    let recs: Vec<&Value> = ips["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["payment"]["type"] == "payment_record")
        .collect();
    assert_eq!(recs.len(), 2);
    assert!(recs.iter().all(|p| p["status"] == "paid"));
    let by_record = c
        .get(&format!(
            "/v1/invoice_payments?payment[type]=payment_record&payment[payment_record]={pr2_id}"
        ))
        .await
        .json();
    assert_eq!(by_record["data"][0]["amount_paid"], due - part);
    let open = c.get("/v1/invoices?status=open&limit=100").await.json();
    assert!(!ids(&open).contains(&inv_id));
    let paid = c
        .get(&format!(
            "/v1/invoices?status=paid&customer={customer}&limit=100"
        ))
        .await
        .json();
    assert!(ids(&paid).contains(&inv_id));

    let events = c.get("/v1/events?limit=10").await.json();
    let types: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types[..5],
        [
            "invoice.paid",
            "invoice.updated",
            "invoice_payment.paid",
            "invoice.updated",
            "invoice_payment.paid"
        ]
    );
    let paid_evt = &events["data"][0];
    assert_eq!(paid_evt["data"]["object"]["id"], inv_id.as_str());
    assert_eq!(paid_evt["data"]["object"]["status"], "paid");
    assert_eq!(paid_evt["api_version"], "2026-07-29.dahlia");
    assert!(
        paid_evt["request"]["id"]
            .as_str()
            .unwrap()
            .starts_with("req_")
    );
    let upd = &events["data"][1];
    assert_eq!(upd["data"]["previous_attributes"]["status"], "open");
    let ip_evt = &events["data"][4];
    assert_eq!(ip_evt["request"]["idempotency_key"], "ap-1");
    assert_eq!(
        ip_evt["data"]["object"]["payment"]["payment_record"],
        pr1_id.as_str()
    );

    // Delivered to the endpoint, which asked for invoice.paid and invoice_payment.paid only.
    assert!(sim.settle_webhooks(Duration::from_secs(10)).await);
    let got = rx.received();
    let got_types: Vec<String> = got
        .iter()
        .map(|r| {
            assert!(verify(&r.signature, &r.body, &secret).1);
            serde_json::from_slice::<Value>(&r.body).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let mut sorted = got_types.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            "invoice.paid",
            "invoice_payment.paid",
            "invoice_payment.paid"
        ]
    );
    server.shutdown().await;
}
