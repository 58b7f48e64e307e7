//! grpcurl (a gRPC client written by others, installed by `scripts/install-deps` into
//! `.cache/bin`) against a real ledger seeded from a stripe-sim world: through server
//! reflection alone it lists the services, describes them, and calls every RPC of
//! `LedgerQuery` with a bearer token; each answers what the ledger holds. Without a token the
//! call is UNAUTHENTICATED; with a role that may not read it is PERMISSION_DENIED.
#![allow(clippy::unwrap_used)]

mod ledger_support;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use ledger_support::*;
use ledgerline_bus::Topics;
use ledgerline_core::Account;
use ledgerline_ledger::Role;
use ledgerline_tests::{grpcurl_binary, unique_name};
use serde_json::{Value, json};

const SERVICE: &str = "ledgerline.ledger.v1.LedgerQuery";
const AUDITOR: &str = "grpcurl-auditor-token";
const OTHER: &str = "grpcurl-other-token";

struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs grpcurl (plaintext, defaults emitted) with `args`, blocking a pool thread.
async fn grpcurl(args: Vec<String>) -> Out {
    let bin = grpcurl_binary();
    tokio::task::spawn_blocking(move || {
        let o = Command::new(bin)
            .arg("-plaintext")
            .args(&args)
            .output()
            .unwrap();
        Out {
            ok: o.status.success(),
            stdout: String::from_utf8(o.stdout).unwrap(),
            stderr: String::from_utf8(o.stderr).unwrap(),
        }
    })
    .await
    .unwrap()
}

/// Calls `method` of LedgerQuery with `body` (JSON), optionally with a bearer token.
async fn call(addr: &str, token: Option<&str>, method: &str, body: &Value) -> Out {
    let mut args = vec!["-emit-defaults".to_owned()];
    if let Some(t) = token {
        args.push("-H".into());
        args.push(format!("authorization: Bearer {t}"));
    }
    args.extend([
        "-d".into(),
        body.to_string(),
        addr.to_owned(),
        format!("{SERVICE}/{method}"),
    ]);
    grpcurl(args).await
}

fn json_of(o: &Out) -> Value {
    assert!(o.ok, "grpcurl failed: {}", o.stderr);
    serde_json::from_str(&o.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grpcurl_lists_describes_and_calls_every_rpc_through_reflection() {
    let topics = Topics::with_prefix(format!("{}.", unique_name("gc")));
    create_topics(&topics).await;
    let (_world, facts) = world_facts(9, 1_500);
    let records = produce(&topics, &facts, 0).await;
    let (pool, url) = fresh_db("ledger_grpcurl").await;
    let group = unique_name("ledger");
    let mut config = config(&url, &topics, &group);
    config.tokens = vec![(AUDITOR.into(), Role::Auditor), (OTHER.into(), Role::Other)];
    let (running, stop) = start(config).await;
    wait_for_offsets(&pool, &group, records, Duration::from_secs(240)).await;
    let model = model(&facts);
    let addr = running.grpc_addr.to_string();

    // list: the services, found through reflection alone.
    let list = grpcurl(vec![addr.clone(), "list".into()]).await;
    assert!(list.ok, "{}", list.stderr);
    let services: BTreeSet<&str> = list.stdout.lines().collect();
    for s in [
        SERVICE,
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
    ] {
        assert!(services.contains(s), "{s} not listed: {services:?}");
    }
    let methods = grpcurl(vec![addr.clone(), "list".into(), SERVICE.into()]).await;
    assert!(methods.ok, "{}", methods.stderr);
    let methods: BTreeSet<String> = methods
        .stdout
        .lines()
        .map(|m| m.trim_start_matches(&format!("{SERVICE}.")).to_owned())
        .collect();
    let expected: BTreeSet<String> = [
        "GetBalances",
        "GetTrialBalance",
        "ListEntries",
        "GetEntry",
        "GetAccountStatement",
        "VerifyChain",
    ]
    .map(str::to_owned)
    .into();
    // A new RPC fails here until this test calls it too.
    assert_eq!(methods, expected);

    // describe: the service's methods and a message's fields, from the server's descriptors.
    let d = grpcurl(vec![addr.clone(), "describe".into(), SERVICE.into()]).await;
    assert!(d.ok, "{}", d.stderr);
    assert!(
        d.stdout.contains(&format!("{SERVICE} is a service")),
        "{}",
        d.stdout
    );
    for m in &methods {
        assert!(
            d.stdout.contains(&format!("rpc {m} (")),
            "{m}: {}",
            d.stdout
        );
    }
    let d = grpcurl(vec![
        addr.clone(),
        "describe".into(),
        "ledgerline.ledger.v1.JournalEntry".into(),
    ])
    .await;
    assert!(d.ok, "{}", d.stderr);
    for field in [
        "string entry_id = 1;",
        "repeated .ledgerline.ledger.v1.Line lines = 10;",
    ] {
        assert!(d.stdout.contains(field), "{field}: {}", d.stdout);
    }

    // Every RPC with a token: each answers what the ledger holds.
    let aud = Some(AUDITOR);
    let mut called = BTreeSet::new();

    let tb = json_of(&call(&addr, aud, "GetTrialBalance", &json!({"ledger": PLATFORM})).await);
    called.insert("GetTrialBalance");
    assert_eq!(tb["balanced"], json!(true));
    let rows = tb["rows"].as_array().unwrap();
    assert_eq!(rows.len(), model.trial_balance(PLATFORM).rows.len());

    // The first row of the trial balance: one account's balance in one currency.
    let account_name = rows[0]["account"].as_str().unwrap().to_owned();
    let currency = rows[0]["currency"].as_str().unwrap().to_owned();
    let c = ledgerline_core::Currency::parse(&currency).unwrap();
    let account = Account::parse(&account_name).unwrap();
    let b = json_of(
        &call(
            &addr,
            aud,
            "GetBalances",
            &json!({"ledger": PLATFORM, "account": account_name, "currency": currency}),
        )
        .await,
    );
    called.insert("GetBalances");
    let balances = b["balances"].as_array().unwrap();
    assert_eq!(balances.len(), 1, "{b}");
    let want = model.balance(PLATFORM, &account, c).amount();
    assert!(!want.is_zero());
    assert_eq!(
        balances[0]["amount"]
            .as_str()
            .unwrap()
            .parse::<rust_decimal::Decimal>()
            .unwrap(),
        want
    );

    let page = json_of(&call(&addr, aud, "ListEntries", &json!({"pageSize": 25})).await);
    called.insert("ListEntries");
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 25);
    assert!(!page["nextPageToken"].as_str().unwrap().is_empty());
    let first = &entries[0];
    let id = first["entryId"].as_str().unwrap();
    assert!(
        model.entries().iter().any(|e| e.id().to_string() == id),
        "{id}"
    );

    let one = json_of(&call(&addr, aud, "GetEntry", &json!({"entryId": id})).await);
    called.insert("GetEntry");
    assert_eq!(one["entry"]["entryId"], first["entryId"]);
    assert_eq!(one["entry"]["lines"], first["lines"]);
    // `bytes` come base64-encoded in JSON; only check that the fact id is named.
    assert!(!one["rawFact"].as_str().unwrap().is_empty());
    assert_eq!(one["factId"], first["factId"]);

    let s = json_of(
        &call(
            &addr,
            aud,
            "GetAccountStatement",
            &json!({"ledger": PLATFORM, "account": account_name, "currency": currency, "pageSize": 1000}),
        )
        .await,
    );
    called.insert("GetAccountStatement");
    let lines = s["lines"].as_array().unwrap();
    assert!(!lines.is_empty());
    assert_eq!(
        s["nextPageToken"],
        json!(""),
        "one page holds the statement"
    );
    let last = lines.last().unwrap()["runningBalance"].as_str().unwrap();
    assert_eq!(last.parse::<rust_decimal::Decimal>().unwrap(), want);

    let v = json_of(&call(&addr, aud, "VerifyChain", &json!({})).await);
    called.insert("VerifyChain");
    assert_eq!(v["ok"], json!(true), "{v}");
    assert_eq!(
        v["entriesChecked"]
            .as_str()
            .unwrap()
            .parse::<usize>()
            .unwrap(),
        model.entries().len()
    );

    assert_eq!(
        called
            .into_iter()
            .map(str::to_owned)
            .collect::<BTreeSet<_>>(),
        methods
    );

    // No token: UNAUTHENTICATED; a role that may not read: PERMISSION_DENIED; a bad argument:
    // INVALID_ARGUMENT — as grpcurl reports them.
    let o = call(&addr, None, "VerifyChain", &json!({})).await;
    assert!(!o.ok);
    assert!(o.stderr.contains("Code: Unauthenticated"), "{}", o.stderr);
    let o = call(
        &addr,
        Some(OTHER),
        "GetTrialBalance",
        &json!({"ledger": PLATFORM}),
    )
    .await;
    assert!(!o.ok);
    assert!(o.stderr.contains("Code: PermissionDenied"), "{}", o.stderr);
    let o = call(&addr, aud, "ListEntries", &json!({"pageSize": 5000})).await;
    assert!(!o.ok);
    assert!(o.stderr.contains("Code: InvalidArgument"), "{}", o.stderr);

    // Health, through the standard service.
    let h = grpcurl(vec![
        "-d".into(),
        json!({"service": SERVICE}).to_string(),
        addr.clone(),
        "grpc.health.v1.Health/Check".into(),
    ])
    .await;
    assert_eq!(json_of(&h)["status"], json!("SERVING"));

    stop.cancel();
    running.task.await.unwrap().unwrap();
}
