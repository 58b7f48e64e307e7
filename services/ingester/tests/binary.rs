//! The `ledgerline-ingester` binary and its TOML configuration: two Stripe accounts (two
//! stripe-sim servers, each its own platform account and key) read by one process, each
//! with its own cursors, the include/exclude filters from the file applied end to end; and
//! bad configurations refused with an error naming the field, never a secret.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use ledgerline_ingester::Filters;
use ledgerline_ingester::records::EventHead;
use ledgerline_proto::stripe::v1::{BalanceTransactionRecord, StripeEventRecord};
use ledgerline_stripe_sim::http::{ApiKey, ClockConfig, SimConfig, SimServer};
use ledgerline_stripe_sim::object::ObjectKind;
use ledgerline_stripe_sim::world::{World, WorldConfig};
use prost::Message as _;

const EU: &str = "acct_1LedgerlineEuPlat";
const US: &str = "acct_1LedgerlineUsPlat";
const EU_KEY: &str = "sk_test_ledgerlineeu0000000000000000";
const US_KEY: &str = "rk_test_ledgerlineus0000000000000000";

struct Account {
    sim: SimServer,
    /// Events of the world: (id, head).
    events: Vec<(String, EventHead)>,
    bts: HashSet<String>,
    last_event: String,
}

async fn account(seed: u64, platform: &str, key: &str) -> Account {
    let world = World::generate(&WorldConfig {
        connected_accounts: 0,
        ..WorldConfig::with_facts(seed, 400)
    });
    let mut events = Vec::new();
    let mut bts = HashSet::new();
    let mut last_event = String::new();
    for o in &world.objects {
        match o.kind {
            ObjectKind::Event => {
                events.push((o.id.clone(), serde_json::from_str(&o.json).unwrap()));
                last_event = o.id.clone();
            }
            ObjectKind::BalanceTransaction => {
                bts.insert(o.id.clone());
            }
            _ => {}
        }
    }
    let mut api_key = ApiKey::secret(key);
    if key.starts_with("rk_") {
        use ledgerline_stripe_sim::http::auth::Permission;
        api_key.permissions = Permission::ALL.into_iter().collect();
    }
    let config = SimConfig {
        platform_account: platform.to_owned(),
        keys: vec![api_key],
        // The whole world has happened.
        clock: ClockConfig {
            start: Some(world.truth.end + 1),
            speed: 0,
        },
        ..SimConfig::default()
    };
    Account {
        sim: SimServer::start(config, world.objects).await.unwrap(),
        events,
        bts,
        last_event,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_accounts_from_a_config_file_each_with_its_own_cursors_and_filters() {
    let eu = account(11, EU, EU_KEY).await;
    let us = account(12, US, US_KEY).await;
    // Filters that each remove something of these worlds.
    let excluded_customer = eu
        .events
        .iter()
        .find_map(|(_, h)| {
            (h.data.object.object.as_deref() == Some("invoice"))
                .then(|| h.data.object.customer_id().map(str::to_owned))
                .flatten()
        })
        .unwrap();
    let (meta_customer, company) = us
        .events
        .iter()
        .find_map(|(_, h)| {
            let o = &h.data.object;
            (o.object.as_deref() == Some("customer"))
                .then(|| {
                    o.metadata_value("company_id")
                        .map(|c| (o.id.clone().unwrap(), c.to_owned()))
                })
                .flatten()
        })
        .unwrap();
    let filters = Filters {
        exclude_event_types: vec!["charge.*".into()],
        exclude_customers: vec![excluded_customer.clone()],
        exclude_metadata: vec![("company_id".into(), company.clone())],
        ..Filters::default()
    };

    let db_url = common::fresh_database_url().await;
    let prefix = ledgerline_tests::unique_name("bin").to_lowercase() + ".";
    let topics = ledgerline_bus::Topics::with_prefix(prefix.clone());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let us_key_file = dir.path().join("us.key");
    std::fs::write(&us_key_file, format!("{US_KEY}\n")).unwrap();
    let config = dir.path().join("ingester.toml");
    std::fs::write(
        &config,
        format!(
            r#"
mode = "test"
listen = "127.0.0.1:{port}"
topic_prefix = "{prefix}"
partitions = 2
poll_interval_ms = 200
[kafka]
bootstrap_servers = "{kafka}"
[database]
url_env = "BIN_DATABASE_URL"
[stripe]
rate = 0
[filters]
exclude_event_types = ["charge.*"]
exclude_customers = ["{excluded_customer}"]
exclude_metadata = {{ company_id = "{company}" }}
[[accounts]]
name = "eu"
platform_account = "{EU}"
api_key_env = "BIN_EU_KEY"
base_url = "{eu_url}"
[[accounts]]
name = "us"
platform_account = "{US}"
api_key_file = "{us_key_file}"
base_url = "{us_url}"
"#,
            kafka = ledgerline_tests::kafka_bootstrap_servers(),
            eu_url = eu.sim.base_url(),
            us_url = us.sim.base_url(),
            us_key_file = us_key_file.display(),
        ),
    )
    .unwrap();
    let env = [
        ("BIN_DATABASE_URL", db_url.clone()),
        ("BIN_EU_KEY", EU_KEY.to_owned()),
    ];
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let bin = common::Bin::start(&config, &env, addr, dir.path().join("log")).await;

    // Each account's events cursor reaches its own world's last event.
    let pool = sqlx::PgPool::connect(&db_url).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let rows = loop {
        let rows: Vec<(String, String, serde_json::Value)> =
            sqlx::query_as("SELECT scope, stream, position FROM ingester_cursors")
                .fetch_all(&pool)
                .await
                .unwrap();
        let at = |scope: &str, last: &str| {
            rows.iter()
                .any(|(s, st, p)| s == scope && st == "events" && p["id"] == last)
        };
        // The balance-transaction poll runs on its own schedule: wait for its cursors too.
        let bt_cursor = |scope: &str| {
            rows.iter()
                .any(|(s, st, _)| s == scope && st == "balance_transactions")
        };
        if at(&format!("eu/test/{EU}"), &eu.last_event)
            && at(&format!("us/test/{US}"), &us.last_event)
            && bt_cursor(&format!("eu/test/{EU}"))
            && bt_cursor(&format!("us/test/{US}"))
        {
            break rows;
        }
        assert!(
            Instant::now() < deadline,
            "cursors did not reach the end: {rows:?}\n{}",
            bin.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for scope in [format!("eu/test/{EU}"), format!("us/test/{US}")] {
        for stream in ["events", "balance_transactions"] {
            assert!(
                rows.iter().any(|(s, st, _)| *s == scope && st == stream),
                "no {stream} cursor for {scope}: {rows:?}"
            );
        }
    }
    assert!(
        rows.iter()
            .all(|(s, _, _)| s.starts_with("eu/test/") || s.starts_with("us/test/")),
        "{rows:?}"
    );
    let metrics = bin.metrics().await;
    for name in ["eu", "us"] {
        assert!(
            common::counter(
                &metrics,
                "ledgerline_stripe_api_calls_total",
                &format!("account=\"{name}\",status=\"200\"")
            ) > 0,
            "{name}: {metrics}"
        );
    }
    drop(bin);

    // Both accounts' facts, each exactly the events its filters keep.
    let records = common::consume_all(&topics.stripe_events(), Duration::from_secs(3)).await;
    let mut seen: HashMap<String, HashSet<String>> = HashMap::new();
    for (key, v) in &records {
        let r = StripeEventRecord::decode(v.as_slice()).unwrap();
        assert!(key.starts_with(&format!("{}/", r.account)), "{key}");
        let head: EventHead = serde_json::from_slice(&r.raw_json).unwrap();
        assert!(
            !head.event_type.starts_with("charge."),
            "{}",
            head.event_type
        );
        assert_ne!(
            head.data.object.customer_id(),
            Some(excluded_customer.as_str())
        );
        assert_ne!(
            head.data.object.metadata_value("company_id"),
            Some(company.as_str()),
            "{meta_customer}"
        );
        seen.entry(r.account).or_default().insert(r.event_id);
    }
    for (acct, a) in [(EU, &eu), (US, &us)] {
        let want: HashSet<String> = a
            .events
            .iter()
            .filter(|(_, h)| filters.accepts(Some(&h.event_type), &h.data.object))
            .map(|(id, _)| id.clone())
            .collect();
        assert!(
            want.len() < a.events.len(),
            "{acct}: the filters removed nothing"
        );
        assert_eq!(
            seen.get(acct).cloned().unwrap_or_default(),
            want,
            "{acct}: published events != the world's events the filters keep"
        );
    }
    let bts = common::consume_all(
        &topics.stripe_balance_transactions(),
        Duration::from_secs(3),
    )
    .await;
    let mut bt_seen: HashMap<String, HashSet<String>> = HashMap::new();
    for (_, v) in &bts {
        let r = BalanceTransactionRecord::decode(v.as_slice()).unwrap();
        bt_seen
            .entry(r.account)
            .or_default()
            .insert(r.balance_transaction_id);
    }
    assert_eq!(bt_seen.get(EU), Some(&eu.bts));
    assert_eq!(bt_seen.get(US), Some(&us.bts));
    eu.sim.shutdown().await;
    us.sim.shutdown().await;
}

/// Runs the binary on `toml` with `env`; it must fail at once; returns its stderr.
fn refused(toml: &str, env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, toml).unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ledgerline-ingester"));
    cmd.arg("--config").arg(&path).env("RUST_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(!out.status.success(), "accepted: {toml}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_bad_config_is_refused_naming_the_field_never_a_secret() {
    let live = "sk_live_ledgerlinesecret000000000000";
    let ok_account = r#"
[database]
url_env = "BAD_DB"
[[accounts]]
name = "a"
platform_account = "acct_1"
api_key_env = "BAD_KEY_A"
"#;
    let env = [("BAD_DB", "postgres://h/db"), ("BAD_KEY_A", EU_KEY)];
    // A misspelt key.
    let e = refused(&format!("{ok_account}platform_acount = \"acct_2\"\n"), &env);
    assert!(e.contains("platform_acount"), "{e}");
    // Test and live in one deployment.
    let e = refused(
        &format!(
            "{ok_account}[[accounts]]\nname = \"b\"\nplatform_account = \"acct_2\"\napi_key_env = \"BAD_KEY_B\"\n"
        ),
        &[
            ("BAD_DB", "postgres://h/db"),
            ("BAD_KEY_A", EU_KEY),
            ("BAD_KEY_B", live),
        ],
    );
    assert!(e.contains("accounts[1].api_key_env"), "{e}");
    assert!(e.contains("never mix"), "{e}");
    assert!(!e.contains(live) && !e.contains(EU_KEY), "{e}");
    // A variable that is not set.
    let e = refused(ok_account, &[("BAD_DB", "postgres://h/db")]);
    assert!(
        e.contains("accounts[0].api_key_env") && e.contains("BAD_KEY_A"),
        "{e}"
    );
    // A value of the wrong type.
    let e = refused(&format!("partitions = \"six\"\n{ok_account}"), &env);
    assert!(e.contains("partitions"), "{e}");
    // A webhook secret that is not one (and is not printed).
    let e = refused(
        &ok_account.replace(
            "api_key_env = \"BAD_KEY_A\"",
            "api_key_env = \"BAD_KEY_A\"\nwebhook_secrets_env = \"BAD_WH\"",
        ),
        &[
            ("BAD_DB", "postgres://h/db"),
            ("BAD_KEY_A", EU_KEY),
            ("BAD_WH", "not-a-secret-xyz"),
        ],
    );
    assert!(e.contains("accounts[0].webhook_secrets_env"), "{e}");
    assert!(!e.contains("not-a-secret-xyz"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restricted_key_lacking_a_permission_stops_the_binary_naming_it() {
    use ledgerline_stripe_sim::http::auth::Permission;
    let rk = "rk_test_ledgerlinenobt000000000000000";
    let mut key = ApiKey::secret(rk);
    key.permissions = Permission::ALL
        .into_iter()
        .filter(|p| *p != Permission::BalanceTransactionRead)
        .collect();
    let sim = SimServer::start(
        SimConfig {
            keys: vec![key],
            ..SimConfig::default()
        },
        Vec::new(),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ingester.toml");
    std::fs::write(
        &config,
        format!(
            r#"
listen = "127.0.0.1:0"
[kafka]
bootstrap_servers = "{kafka}"
[database]
url_env = "RK_DATABASE_URL"
[stripe]
base_url = "{base}"
[[accounts]]
name = "default"
platform_account = "acct_1LedgerlineSimPlat"
api_key_env = "RK_KEY"
"#,
            kafka = ledgerline_tests::kafka_bootstrap_servers(),
            base = sim.base_url(),
        ),
    )
    .unwrap();
    let log = dir.path().join("log");
    let out = std::fs::File::create(&log).unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ledgerline-ingester"));
    cmd.arg("--config")
        .arg(&config)
        .env("RUST_LOG", "warn")
        .env("RK_DATABASE_URL", ledgerline_tests::database_url())
        .env("RK_KEY", rk)
        .stdout(out.try_clone().unwrap())
        .stderr(out);
    // Reaped whatever happens: a binary that does not stop is killed by the guard.
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Reap(cmd.spawn().unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "still running 30 s after start with a key lacking a permission"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!status.success(), "{text}");
    assert!(text.contains("rak_balance_transaction_read"), "{text}");
    assert!(text.contains("grant"), "says what to do: {text}");
    assert!(!text.contains(rk), "{text}");
    sim.shutdown().await;
}
