//! Every list endpoint pages through a 100k-object store with `starting_after` and back with
//! `ending_before`, each object exactly once, in Stripe's order (newest first, ties by the
//! store's insertion order); filters and `created` ranges select what an independent
//! computation over the same objects selects.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod http_support;

use http_support::{Client, LISTS, config, ids, start, world};
use ledgerline_stripe_sim::object::{ObjectKind, SimObject};

const EVENT_WINDOW: i64 = 30 * 86_400;

/// What a test-mode platform list must return, newest first, computed without the server.
fn expected(
    objects: &[SimObject],
    kind: ObjectKind,
    now: i64,
    keep: impl Fn(&SimObject) -> bool,
) -> Vec<String> {
    let mut v: Vec<(i64, usize, &str)> = objects
        .iter()
        .enumerate()
        .filter(|(_, o)| {
            o.kind == kind
                && !o.livemode
                && (kind == ObjectKind::Account || o.account.is_none())
                && o.created <= now
                && (kind != ObjectKind::Event || o.created >= now - EVENT_WINDOW)
                && keep(o)
        })
        .map(|(i, o)| (o.created, i, o.id.as_str()))
        .collect();
    v.sort_by_key(|x| std::cmp::Reverse((x.0, x.1)));
    v.into_iter().map(|(_, _, id)| id.to_owned()).collect()
}

async fn page_forward(c: &mut Client, path_and_query: &str) -> Vec<String> {
    let sep = if path_and_query.contains('?') {
        '&'
    } else {
        '?'
    };
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            None => format!("{path_and_query}{sep}limit=100"),
            Some(c) => format!("{path_and_query}{sep}limit=100&starting_after={c}"),
        };
        let r = c.get(&url).await;
        assert_eq!(r.status, 200, "{url}: {}", r.body);
        let page = r.json();
        assert_eq!(page["object"], "list");
        assert_eq!(page["url"], path_and_query.split('?').next().unwrap());
        let got = ids(&page);
        all.extend(got.iter().cloned());
        if !page["has_more"].as_bool().unwrap() {
            break;
        }
        assert_eq!(got.len(), 100, "a page with has_more is full");
        cursor = got.last().cloned();
    }
    all
}

async fn page_backward(c: &mut Client, path: &str, oldest: &str) -> Vec<String> {
    let mut pages: Vec<Vec<String>> = Vec::new();
    let mut cursor = oldest.to_owned();
    loop {
        let r = c
            .get(&format!("{path}?limit=100&ending_before={cursor}"))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let page = r.json();
        let got = ids(&page);
        if let Some(first) = got.first() {
            cursor = first.clone();
        }
        let more = page["has_more"].as_bool().unwrap();
        pages.push(got);
        if !more {
            break;
        }
    }
    let mut all: Vec<String> = pages.into_iter().rev().flatten().collect();
    all.push(oldest.to_owned());
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_list_pages_each_object_exactly_once_both_ways() {
    let objects = world(100_000);
    assert_eq!(objects.len(), 100_000);
    let cfg = config();
    let now = cfg.clock.start.unwrap();
    let server = start(objects.clone(), cfg).await;
    let mut c = Client::new(&server);
    let mut total = 0;
    for (path, kind) in LISTS {
        let want = expected(&objects, *kind, now, |_| true);
        assert!(!want.is_empty(), "{path} has objects");
        let got = page_forward(&mut c, path).await;
        assert_eq!(got.len(), want.len(), "{path}");
        assert!(got == want, "{path}: forward order differs");
        let oldest = want.last().unwrap();
        let back = page_backward(&mut c, path, oldest).await;
        assert!(back == want, "{path}: backward paging differs");
        total += got.len();
    }
    // Everything in the store but live-mode, connected-account and too-old events is listed.
    assert!(total > 60_000, "{total}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_and_created_ranges_select_what_they_should() {
    let objects = world(20_000);
    let cfg = config();
    let now = cfg.clock.start.unwrap();
    let server = start(objects.clone(), cfg).await;
    let mut c = Client::new(&server);
    let has = |o: &SimObject, k: &str, v: &str| o.filters.iter().any(|(n, x)| *n == k && x == v);

    // Balance transactions of one payout.
    let payout = objects
        .iter()
        .find(|o| o.kind == ObjectKind::Payout && o.created > objects[0].created + 10 * 86_400)
        .unwrap()
        .id
        .clone();
    let want = expected(&objects, ObjectKind::BalanceTransaction, now, |o| {
        has(o, "payout", &payout)
    });
    assert!(want.len() > 10);
    let got = page_forward(&mut c, &format!("/v1/balance_transactions?payout={payout}")).await;
    assert_eq!(got, want);

    // By type, source and currency.
    let want = expected(&objects, ObjectKind::BalanceTransaction, now, |o| {
        has(o, "type", "refund")
    });
    assert_eq!(
        page_forward(&mut c, "/v1/balance_transactions?type=refund").await,
        want
    );
    let charge = objects
        .iter()
        .find(|o| o.kind == ObjectKind::Charge && o.account.is_none() && !o.livemode)
        .unwrap()
        .id
        .clone();
    let want = expected(&objects, ObjectKind::BalanceTransaction, now, |o| {
        has(o, "source", &charge)
    });
    assert_eq!(want.len(), 1);
    assert_eq!(
        page_forward(
            &mut c,
            &format!("/v1/balance_transactions?source={charge}&currency=usd")
        )
        .await,
        want
    );
    assert!(
        page_forward(
            &mut c,
            &format!("/v1/balance_transactions?source={charge}&currency=eur")
        )
        .await
        .is_empty()
    );

    // Invoices by status and customer.
    let want = expected(&objects, ObjectKind::Invoice, now, |o| {
        has(o, "status", "open")
    });
    assert_eq!(page_forward(&mut c, "/v1/invoices?status=open").await, want);
    let cus = objects
        .iter()
        .find(|o| o.kind == ObjectKind::Customer && o.account.is_none() && !o.livemode)
        .unwrap()
        .id
        .clone();
    let want = expected(&objects, ObjectKind::Invoice, now, |o| {
        has(o, "customer", &cus)
    });
    assert!(!want.is_empty());
    assert_eq!(
        page_forward(&mut c, &format!("/v1/invoices?customer={cus}")).await,
        want
    );

    // Invoice payments by invoice.
    let inv = objects
        .iter()
        .find(|o| o.kind == ObjectKind::InvoicePayment && o.account.is_none() && !o.livemode)
        .unwrap();
    let inv_id = inv
        .filters
        .iter()
        .find(|(k, _)| *k == "invoice")
        .unwrap()
        .1
        .clone();
    assert_eq!(
        page_forward(&mut c, &format!("/v1/invoice_payments?invoice={inv_id}")).await,
        vec![inv.id.clone()]
    );

    // Events: wildcard, types[], created ranges.
    let want = expected(&objects, ObjectKind::Event, now, |o| {
        o.filters
            .iter()
            .any(|(k, v)| *k == "type" && v.starts_with("invoice."))
    });
    assert_eq!(
        page_forward(&mut c, "/v1/events?type=invoice.*").await,
        want
    );
    let want = expected(&objects, ObjectKind::Event, now, |o| {
        has(o, "type", "payout.paid") || has(o, "type", "charge.refunded")
    });
    assert_eq!(
        page_forward(
            &mut c,
            "/v1/events?types[]=payout.paid&types%5B%5D=charge.refunded"
        )
        .await,
        want
    );
    let lo = now - 20 * 86_400;
    let hi = now - 12 * 86_400;
    let want = expected(&objects, ObjectKind::Charge, now, |o| {
        o.created >= lo && o.created < hi
    });
    assert!(!want.is_empty());
    assert_eq!(
        page_forward(
            &mut c,
            &format!("/v1/charges?created[gte]={lo}&created[lt]={hi}")
        )
        .await,
        want
    );
    let exact = objects
        .iter()
        .find(|o| o.kind == ObjectKind::Charge && !o.livemode && o.account.is_none())
        .unwrap();
    let want = expected(&objects, ObjectKind::Charge, now, |o| {
        o.created == exact.created
    });
    assert_eq!(
        page_forward(&mut c, &format!("/v1/charges?created={}", exact.created)).await,
        want
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_errors_look_like_stripe() {
    let server = start(world(2_000), config()).await;
    let mut c = Client::new(&server);
    for bad in ["0", "101", "-1"] {
        let r = c.get(&format!("/v1/charges?limit={bad}")).await;
        assert_eq!(r.status, 400, "{}", r.body);
        let e = &r.json()["error"];
        assert_eq!(e["type"], "invalid_request_error");
        assert_eq!(e["param"], "limit");
    }
    let r = c.get("/v1/charges?limit=abc").await;
    assert_eq!(r.json()["error"]["param"], "limit");
    let r = c.get("/v1/charges?starting_after=ch_doesnotexist").await;
    assert_eq!(r.status, 404);
    let e = &r.json()["error"];
    assert_eq!(e["code"], "resource_missing");
    assert_eq!(e["param"], "starting_after");
    assert_eq!(e["message"], "No such charge: 'ch_doesnotexist'");
    let r = c.get("/v1/charges?foo=1").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], "parameter_unknown");
    let r = c.get("/v1/events?type=a.b&types[]=c.d").await;
    assert_eq!(r.status, 400);
    let many: String = (0..21).map(|i| format!("types[]=t{i}&")).collect();
    let r = c.get(&format!("/v1/events?{many}")).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["param"], "types");
    let r = c.get("/v1/nothing_here").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");
    let r = c.get("/v1/charges").await;
    assert_eq!(ids(&r.json()).len(), 10, "default limit");
    assert!(r.header("request-id").unwrap().starts_with("req_"));
    assert_eq!(r.header("stripe-version"), Some("2026-07-29.dahlia"));
    let r = c
        .try_send(
            "GET",
            "/v1/charges?limit=1",
            "",
            &[("Stripe-Version", "2025-10-29.clover")],
        )
        .await
        .unwrap();
    assert_eq!(r.header("stripe-version"), Some("2025-10-29.clover"));
    server.shutdown().await;
}
