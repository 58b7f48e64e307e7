//! Webhook receiver end to end: every rejection case answers 400 and publishes nothing; a
//! valid delivery and a rotated pair (two `v1`) are published byte for byte; an event of the
//! other mode (a live event at this test-mode deployment, as Stripe sends a live Connect
//! endpoint test events) is answered 200 and not published; what the official `stripe` Python
//! library signs is accepted and what it rejects is rejected.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use ledgerline_proto::stripe::v1::{IngestSource, StripeEventRecord};
use ledgerline_stripe::{WebhookSecret, signature_header};
use ledgerline_stripe_sim::http::{DEFAULT_TEST_KEY, SimConfig, SimServer};
use prost::Message as _;
use tokio_util::sync::CancellationToken;

fn event(id: &str) -> Vec<u8> {
    format!(r#"{{"id":"{id}","object":"event","type":"invoice.paid","livemode":false,"created":1767225600,"api_version":"2026-07-29.dahlia","data":{{"object":{{"id":"in_{id}","object":"invoice","customer":"cus_1"}}}},"account":null,"pending_webhooks":1,  "request":{{"id":null}}}}"#).into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejections_rotation_and_the_official_library() {
    let sim = SimServer::start(SimConfig::default(), Vec::new())
        .await
        .unwrap();
    let current = WebhookSecret::new("whsec_currentsecret0001");
    let old = WebhookSecret::new("whsec_oldsecret0000002");
    let (mut cfg, _) =
        common::config(&sim.base_url(), DEFAULT_TEST_KEY, vec![current.clone()]).await;
    cfg.events = false;
    cfg.balance_transactions = false;
    cfg.payouts = false;
    cfg.gap_fill = false;
    cfg.body_limit = 64 * 1024;
    let topic = cfg.topics.stripe_events();
    let shutdown = CancellationToken::new();
    let running = ledgerline_ingester::start(cfg, shutdown.clone())
        .await
        .unwrap();
    let url = format!("http://{}/webhooks/default", running.addr);
    // The workspace's reqwest has rustls without a built-in provider (see ledgerline_stripe::tls).
    let http = ledgerline_stripe::tls::http_client_builder(&Default::default())
        .unwrap()
        .build()
        .unwrap();
    let post = |body: Vec<u8>, header: Option<String>| {
        let mut req = http.post(&url).body(body);
        if let Some(h) = header {
            req = req.header("Stripe-Signature", h);
        }
        req.send()
    };
    let t = common::now();
    let body = event("evt_rejected");
    let good = signature_header(std::slice::from_ref(&current), t, &body);
    let cases: Vec<(&str, Vec<u8>, Option<String>, u16)> = vec![
        ("missing header", body.clone(), None, 400),
        (
            "malformed header",
            body.clone(),
            Some("nonsense".into()),
            400,
        ),
        (
            "no t",
            body.clone(),
            Some(format!("v1={}", current.sign(t, &body))),
            400,
        ),
        (
            "wrong secret",
            body.clone(),
            Some(signature_header(
                &[WebhookSecret::new("whsec_other")],
                t,
                &body,
            )),
            400,
        ),
        (
            "tampered body",
            event("evt_tampered"),
            Some(good.clone()),
            400,
        ),
        (
            "stale timestamp",
            body.clone(),
            Some(signature_header(
                std::slice::from_ref(&current),
                t - 301,
                &body,
            )),
            400,
        ),
        (
            "not JSON",
            b"not json".to_vec(),
            Some(signature_header(
                std::slice::from_ref(&current),
                t,
                b"not json",
            )),
            400,
        ),
        (
            "too large",
            vec![b' '; 100 * 1024],
            Some(signature_header(
                std::slice::from_ref(&current),
                t,
                &vec![b' '; 100 * 1024],
            )),
            413,
        ),
    ];
    for (name, body, header, status) in cases {
        let resp = post(body, header).await.unwrap();
        assert_eq!(resp.status().as_u16(), status, "{name}");
    }
    let ok1 = event("evt_ok1");
    let resp = post(
        ok1.clone(),
        Some(signature_header(std::slice::from_ref(&current), t, &ok1)),
    )
    .await
    .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let rotated = event("evt_rotated");
    let h = signature_header(&[old.clone(), current.clone()], t, &rotated);
    assert_eq!(
        post(rotated.clone(), Some(h))
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    let live = String::from_utf8(event("evt_live"))
        .unwrap()
        .replace(r#""livemode":false"#, r#""livemode":true"#)
        .into_bytes();
    let resp = post(
        live.clone(),
        Some(signature_header(std::slice::from_ref(&current), t, &live)),
    )
    .await
    .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.text().await.unwrap(), "other mode: not ingested");

    // The official library: sign with stripe.WebhookSignature.generate_signature_header.
    let py = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache/venv/bin/python");
    assert!(
        py.exists(),
        "{} missing: run scripts/install-deps (installs the `stripe` PyPI package)",
        py.display()
    );
    let official = event("evt_official");
    let script = r#"
import sys, time, stripe
payload = sys.stdin.read()
secret, age = sys.argv[1], int(sys.argv[2])
ts = int(time.time()) - age
header = stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp=ts)
try:
    stripe.Webhook.construct_event(payload, header, secret, tolerance=300)
    verdict = "accept"
except Exception:
    verdict = "reject"
print(verdict + " " + header)
"#;
    for age in [0, 400] {
        let mut child = std::process::Command::new(&py)
            .args(["-c", script, "whsec_currentsecret0001", &age.to_string()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write as _;
        child.stdin.take().unwrap().write_all(&official).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let (verdict, header) = text.trim().split_once(' ').unwrap();
        let status = post(official.clone(), Some(header.to_owned()))
            .await
            .unwrap()
            .status()
            .as_u16();
        assert_eq!(
            verdict == "accept",
            status == 200,
            "age {age}: python {verdict}, ingester {status}"
        );
        assert_eq!(verdict, if age == 0 { "accept" } else { "reject" });
    }

    // Exactly the accepted deliveries are on the topic, raw bytes untouched.
    let records = common::consume_all(&topic, Duration::from_secs(3)).await;
    let mut decoded: Vec<(String, StripeEventRecord)> = records
        .iter()
        .map(|(k, v)| (k.clone(), StripeEventRecord::decode(v.as_slice()).unwrap()))
        .collect();
    decoded.sort_by(|a, b| a.1.event_id.cmp(&b.1.event_id));
    let ids: Vec<&str> = decoded.iter().map(|r| r.1.event_id.as_str()).collect();
    assert_eq!(ids, ["evt_official", "evt_ok1", "evt_rotated"], "{ids:?}");
    assert_eq!(decoded[1].1.raw_json, ok1);
    assert_eq!(decoded[2].1.raw_json, rotated);
    assert_eq!(decoded[1].1.source, IngestSource::Webhook as i32);
    assert_eq!(decoded[1].0, format!("{}/in_evt_ok1", common::PLATFORM));
    let metrics = http
        .get(format!("http://{}/metrics", running.addr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("ledgerline_ingester_records_total{source=\"webhook\""),
        "{metrics}"
    );
    assert!(
        metrics.contains("reason=\"stale_timestamp\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("\nledgerline_ingester_webhooks_other_mode_total 1\n"),
        "{metrics}"
    );
    assert_eq!(
        http.get(format!("http://{}/readyz", running.addr))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    shutdown.cancel();
    running.wait().await.unwrap();
    sim.shutdown().await;
}
