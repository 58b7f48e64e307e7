//! The pull side end to end, through the binary: payout compositions on `stripe.payouts.v1`
//! once reconciliation completed, and the warning (log + metric, naming the remedy: backfill)
//! when the events cursor is older than Stripe's 30-day Events window.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use ledgerline_ingester::records::EventHead;
use ledgerline_proto::stripe::v1::PayoutCompositionRecord;
use ledgerline_stripe_sim::http::{ClockConfig, DEFAULT_TEST_KEY, SimConfig, SimHandle, SimServer};
use ledgerline_stripe_sim::object::ObjectKind;
use ledgerline_stripe_sim::world::{World, WorldConfig};
use prost::Message as _;

struct Setup {
    dir: tempfile::TempDir,
    config: std::path::PathBuf,
    env: Vec<(&'static str, String)>,
    addr: std::net::SocketAddr,
    db_url: String,
    topics: ledgerline_bus::Topics,
}

async fn setup(sim: &SimServer) -> Setup {
    let db_url = common::fresh_database_url().await;
    let prefix = ledgerline_tests::unique_name("pull").to_lowercase() + ".";
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ingester.toml");
    std::fs::write(
        &config,
        format!(
            r#"
listen = "127.0.0.1:{port}"
topic_prefix = "{prefix}"
partitions = 2
poll_interval_ms = 200
[kafka]
bootstrap_servers = "{kafka}"
[database]
url_env = "PULL_DATABASE_URL"
[stripe]
base_url = "{base}"
rate = 0
[[accounts]]
name = "default"
platform_account = "{platform}"
api_key_env = "PULL_STRIPE_KEY"
"#,
            kafka = ledgerline_tests::kafka_bootstrap_servers(),
            base = sim.base_url(),
            platform = common::PLATFORM,
        ),
    )
    .unwrap();
    Setup {
        config,
        env: vec![
            ("PULL_DATABASE_URL", db_url.clone()),
            ("PULL_STRIPE_KEY", DEFAULT_TEST_KEY.to_owned()),
        ],
        addr: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        db_url,
        topics: ledgerline_bus::Topics::with_prefix(prefix),
        dir,
    }
}

impl Setup {
    async fn start(&self) -> common::Bin {
        common::Bin::start(
            &self.config,
            &self.env,
            self.addr,
            self.dir.path().join("ingester.log"),
        )
        .await
    }

    /// Waits until the platform's events cursor is at the newest event, created at `last` (ties
    /// in the same second are listed in Stripe's order, not by id), and `also` holds.
    async fn wait_cursor(&self, bin: &common::Bin, last: i64, also: &str) {
        let pool = sqlx::PgPool::connect(&self.db_url).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let at: Option<(serde_json::Value,)> = sqlx::query_as(
                "SELECT position FROM ingester_cursors WHERE stream = 'events' AND scope LIKE '%/' || $1",
            )
            .bind(common::PLATFORM)
            .fetch_optional(&pool)
            .await
            .unwrap();
            let (extra,): (bool,) = sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {also}")))
                .fetch_one(&pool)
                .await
                .unwrap();
            if at.as_ref().is_some_and(|(p,)| p["created"] == last) && extra {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "events cursor not at {last} ({at:?}, {also} = {extra}): {}",
                bin.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// `created` of the platform's newest event at `t`.
fn last_event_until(world_objects: &[ledgerline_stripe_sim::object::SimObject], t: i64) -> i64 {
    world_objects
        .iter()
        .filter(|o| o.kind == ObjectKind::Event && o.account.is_none() && o.created <= t)
        .map(|o| o.created)
        .max()
        .unwrap()
}

fn sim_config(now: i64) -> SimConfig {
    SimConfig {
        clock: ClockConfig {
            start: Some(now),
            speed: 0,
        },
        ..SimConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payout_compositions_reach_the_payouts_topic_once_reconciliation_completed() {
    // 20 days: the whole world is inside the Events window.
    let world = World::generate(&WorldConfig {
        connected_accounts: 0,
        days: Some(20),
        ..WorldConfig::with_facts(21, 1_500)
    });
    let end = world.truth.end;
    let mut completed: BTreeSet<String> = BTreeSet::new();
    let mut by_payout: HashMap<String, BTreeSet<String>> = HashMap::new();
    for o in world.objects.iter().filter(|o| o.account.is_none()) {
        match o.kind {
            ObjectKind::Event => {
                let h: EventHead = serde_json::from_str(&o.json).unwrap();
                if h.event_type == "payout.reconciliation_completed" {
                    completed.insert(h.data.object.id.unwrap());
                }
            }
            ObjectKind::BalanceTransaction => {
                for (k, v) in &o.filters {
                    if *k == "payout" {
                        by_payout.entry(v.clone()).or_default().insert(o.id.clone());
                    }
                }
            }
            _ => {}
        }
    }
    assert!(!completed.is_empty(), "the world has no reconciled payout");
    let last = last_event_until(&world.objects, end + 1);
    let sim = SimServer::start(sim_config(end + 1), world.objects)
        .await
        .unwrap();
    let s = setup(&sim).await;
    let bin = s.start().await;
    s.wait_cursor(
        &bin,
        last,
        "NOT EXISTS (SELECT 1 FROM ingester_pending_payouts)",
    )
    .await;
    drop(bin);
    let records = common::consume_all(&s.topics.stripe_payouts(), Duration::from_secs(3)).await;
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for (key, v) in &records {
        let r = PayoutCompositionRecord::decode(v.as_slice()).unwrap();
        assert_eq!(key, &format!("{}/{}", common::PLATFORM, r.payout_id));
        assert_eq!(r.account, common::PLATFORM);
        assert!(r.amount != 0 && !r.currency.is_empty(), "{r:?}");
        let ids: BTreeSet<String> = r.balance_transaction_ids.iter().cloned().collect();
        assert_eq!(
            Some(&ids),
            by_payout.get(&r.payout_id),
            "composition of {}",
            r.payout_id
        );
        assert!(!ids.is_empty());
        seen.insert(r.payout_id);
    }
    assert_eq!(
        seen, completed,
        "one composition per payout whose reconciliation completed"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_older_than_the_events_window_warns_naming_backfill_and_counts() {
    let world = World::generate(&WorldConfig {
        connected_accounts: 0,
        days: Some(70),
        ..WorldConfig::with_facts(22, 700)
    });
    let start = world.config.start;
    let end = world.truth.end;
    let early = start + 5 * 86_400;
    let first_last = last_event_until(&world.objects, early);
    let last = last_event_until(&world.objects, end + 1);
    let sim = SimServer::start(sim_config(early), world.objects)
        .await
        .unwrap();
    let handle: SimHandle = sim.handle();
    let s = setup(&sim).await;
    let bin = s.start().await;
    s.wait_cursor(&bin, first_last, "true").await;
    let m = bin.metrics().await;
    assert_eq!(
        common::counter(&m, "ledgerline_ingester_events_window_exceeded_total", ""),
        0,
        "{m}"
    );
    bin.kill();
    // Two months pass while the ingester is down: its cursor leaves the 30-day window.
    handle.set_now(end + 1);
    let bin = s.start().await;
    s.wait_cursor(&bin, last, "true").await;
    let m = bin.metrics().await;
    let scope = format!("default/test/{}", common::PLATFORM);
    assert!(
        common::counter(
            &m,
            "ledgerline_ingester_events_window_exceeded_total",
            &format!("scope=\"{scope}\"")
        ) >= 1,
        "{m}"
    );
    let log = std::fs::read_to_string(s.dir.path().join("ingester.log")).unwrap();
    let warning = log
        .lines()
        .find(|l| l.contains("older than Stripe's 30-day Events API window"))
        .unwrap_or_else(|| panic!("no warning in the log:\n{log}"));
    assert!(warning.contains("WARN"), "{warning}");
    assert!(warning.contains("backfill"), "{warning}");
    assert!(warning.contains(&scope), "{warning}");
    drop(bin);
    sim.shutdown().await;
}
