//! The HTTP API over a world from the world generator (100k facts): every list endpoint pages
//! each object exactly once in Stripe's order, for the platform and for a connected account;
//! balance transactions by payout; `/v1/balance` equals the world's ground truth.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod http_support;

use std::collections::BTreeSet;

use http_support::{Client, LISTS, ids, start};
use ledgerline_stripe_sim::http::{ClockConfig, RateLimits, SimConfig};
use ledgerline_stripe_sim::object::{ObjectKind, SimObject};
use ledgerline_stripe_sim::world::{AccountCurrency, World, WorldConfig};

fn expected(
    objects: &[SimObject],
    kind: ObjectKind,
    account: Option<&str>,
    now: i64,
    keep: impl Fn(&SimObject) -> bool,
) -> Vec<String> {
    let mut v: Vec<(i64, usize, &str)> = objects
        .iter()
        .enumerate()
        .filter(|(_, o)| {
            o.kind == kind
                && !o.livemode
                && (kind == ObjectKind::Account || o.account.as_deref() == account)
                && o.created <= now
                && (kind != ObjectKind::Event || o.created >= now - 30 * 86_400)
                && keep(o)
        })
        .map(|(i, o)| (o.created, i, o.id.as_str()))
        .collect();
    v.sort_by_key(|x| std::cmp::Reverse((x.0, x.1)));
    v.into_iter().map(|(_, _, id)| id.to_owned()).collect()
}

async fn walk(c: &mut Client, path: &str) -> Vec<String> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut all: Vec<String> = Vec::new();
    loop {
        let url = match all.last() {
            None => format!("{path}{sep}limit=100"),
            Some(last) => format!("{path}{sep}limit=100&starting_after={last}"),
        };
        let r = c.get(&url).await;
        assert_eq!(r.status, 200, "{url}: {}", r.body);
        let page = r.json();
        all.extend(ids(&page));
        if page["has_more"] != true {
            return all;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_world_pages_exactly_once_and_balances_match_ground_truth() {
    let world = World::generate(&WorldConfig::with_facts(11, 100_000));
    assert!(world.truth.facts >= 100_000);
    let objects = world.objects;
    let now = objects.iter().map(|o| o.created).max().unwrap();
    let cfg = SimConfig {
        rate_limits: RateLimits::unlimited(),
        clock: ClockConfig {
            start: Some(now),
            speed: 0,
        },
        ..SimConfig::default()
    };
    let server = start(objects.clone(), cfg).await;
    let mut c = Client::new(&server);

    for (path, kind) in LISTS {
        let want = expected(&objects, *kind, None, now, |_| true);
        let got = walk(&mut c, path).await;
        assert_eq!(got.len(), want.len(), "{path}");
        assert!(got == want, "{path}: order differs");
        let unique: BTreeSet<&String> = got.iter().collect();
        assert_eq!(unique.len(), got.len(), "{path}: duplicates");
    }

    // A connected account sees its own objects.
    let acct = objects
        .iter()
        .find(|o| o.kind == ObjectKind::Charge && o.account.is_some())
        .and_then(|o| o.account.clone())
        .expect("the world has Connect");
    let mut ca = Client::new(&server);
    ca.headers.push(("Stripe-Account".into(), acct.clone()));
    for (path, kind) in LISTS.iter().filter(|(_, k)| *k != ObjectKind::Account) {
        let want = expected(&objects, *kind, Some(&acct), now, |_| true);
        assert!(walk(&mut ca, path).await == want, "{path} on {acct}");
    }

    // Balance transactions by payout, for a few payouts.
    let payouts: Vec<&SimObject> = objects
        .iter()
        .filter(|o| o.kind == ObjectKind::Payout && o.account.is_none())
        .step_by(7)
        .take(10)
        .collect();
    assert!(!payouts.is_empty());
    for po in payouts {
        let want = expected(&objects, ObjectKind::BalanceTransaction, None, now, |o| {
            o.filters.iter().any(|(k, v)| *k == "payout" && *v == po.id)
        });
        let got = walk(
            &mut c,
            &format!("/v1/balance_transactions?payout={}", po.id),
        )
        .await;
        assert_eq!(got, want, "payout {}", po.id);
    }

    // `/v1/balance` = the ground truth at sim-now.
    let balance = c.get("/v1/balance").await.json();
    for side in ["available", "pending"] {
        for b in balance[side].as_array().unwrap() {
            let key = AccountCurrency {
                account: None,
                currency: b["currency"].as_str().unwrap().to_owned(),
            };
            let truth = world
                .truth
                .balance_at(&key, now)
                .or_else(|| world.truth.balances.get(&key).copied())
                .unwrap();
            let want = if side == "available" {
                truth.available
            } else {
                truth.pending
            };
            assert_eq!(
                b["amount"].as_i64().unwrap(),
                want,
                "{side} {}",
                key.currency
            );
        }
    }
    server.shutdown().await;
}
