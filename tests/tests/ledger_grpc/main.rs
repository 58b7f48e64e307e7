//! The ledger's gRPC API end to end: auth (UNAUTHENTICATED / PERMISSION_DENIED), invalid
//! arguments, balances on both time axes, the trial balance against the core fold, paged
//! entries, one entry with its raw fact, a statement with running balance, chain
//! verification, health and reflection.
#![allow(clippy::unwrap_used)]

mod hostile_requests;
#[path = "../ledger_support/mod.rs"]
mod ledger_support;

use std::time::Duration;

use ledger_support::*;
use ledgerline_bus::Topics;
use ledgerline_core::Account;
use ledgerline_ledger::Role;
use ledgerline_proto::ledger::v1 as pb;
use ledgerline_tests::unique_name;
use pb::ledger_query_client::LedgerQueryClient;
use tonic::Code;
use tonic::transport::Channel;

fn req<T>(msg: T, token: Option<&str>) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    if let Some(t) = token {
        r.metadata_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    r
}

fn at(unix: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: unix,
        nanos: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn auditors_query_the_books_over_grpc() {
    let topics = Topics::with_prefix(format!("{}.", unique_name("lg")));
    create_topics(&topics).await;
    let (world, facts) = world_facts(3, 3_000);
    let records = produce(&topics, &facts, 0).await;
    let (pool, url) = fresh_db("ledger_grpc").await;
    let group = unique_name("ledger");
    let mut config = config(&url, &topics, &group);
    config.tokens = vec![
        ("aud-token".into(), Role::Auditor),
        ("adm-token".into(), Role::Admin),
        ("ingester-token".into(), Role::Other),
    ];
    let (running, stop) = start(config).await;
    wait_for_offsets(&pool, &group, records, Duration::from_secs(240)).await;
    let model = model(&facts);

    let channel = Channel::from_shared(format!("http://{}", running.grpc_addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut c = LedgerQueryClient::new(channel.clone());
    let aud = Some("aud-token");

    // Auth.
    let tb = pb::GetTrialBalanceRequest {
        ledger: PLATFORM.into(),
        as_of: None,
    };
    let e = c
        .get_trial_balance(req(tb.clone(), None))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    let e = c
        .get_trial_balance(req(tb.clone(), Some("nope")))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    let e = c
        .get_trial_balance(req(tb.clone(), Some("ingester-token")))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    c.get_trial_balance(req(tb.clone(), Some("adm-token")))
        .await
        .unwrap();

    // Trial balance equals the core's fold.
    let got = c
        .get_trial_balance(req(tb, aud))
        .await
        .unwrap()
        .into_inner();
    assert!(got.balanced);
    let want: Vec<(String, String, String)> = model
        .trial_balance(PLATFORM)
        .rows
        .iter()
        .map(|r| {
            (
                r.account.to_string(),
                r.balance.currency().code().to_owned(),
                r.balance.amount().normalize().to_string(),
            )
        })
        .collect();
    let mut have: Vec<(String, String, String)> = got
        .rows
        .iter()
        .map(|b| (b.account.clone(), b.currency.clone(), b.amount.clone()))
        .collect();
    let mut want_sorted = want.clone();
    want_sorted.sort();
    have.sort();
    assert_eq!(have, want_sorted);

    // Both axes: effective as of the world's end equals the ground truth; recorded before
    // the ledger ran shows nothing.
    for (ac, bal) in &world.truth.balances {
        let ledger = ac.account.clone().unwrap_or_else(|| PLATFORM.to_owned());
        let mut total = rust_decimal::Decimal::ZERO;
        for account in [Account::StripePending, Account::StripeAvailable] {
            let r = c
                .get_balances(req(
                    pb::GetBalancesRequest {
                        ledger: ledger.clone(),
                        account: account.to_string(),
                        currency: ac.currency.clone(),
                        as_of: Some(pb::AsOf {
                            effective_as_of: Some(at(world.truth.end)),
                            recorded_as_of: None,
                        }),
                    },
                    aud,
                ))
                .await
                .unwrap()
                .into_inner();
            for b in r.balances {
                total += b.amount.parse::<rust_decimal::Decimal>().unwrap();
            }
        }
        let currency = ledgerline_core::Currency::parse(&ac.currency).unwrap();
        assert_eq!(
            currency.decimal_to_minor(total).unwrap(),
            bal.pending + bal.available
        );
    }
    let before = c
        .get_balances(req(
            pb::GetBalancesRequest {
                as_of: Some(pb::AsOf {
                    effective_as_of: None,
                    recorded_as_of: Some(at(1_000_000)),
                }),
                ..Default::default()
            },
            aud,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(before.balances.is_empty());

    // Invalid arguments.
    let e = c
        .get_balances(req(
            pb::GetBalancesRequest {
                currency: "zzz".into(),
                ..Default::default()
            },
            aud,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("currency"), "{}", e.message());
    let e = c
        .list_entries(req(
            pb::ListEntriesRequest {
                page_size: 5000,
                ..Default::default()
            },
            aud,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = c
        .list_entries(req(
            pb::ListEntriesRequest {
                effective_from: Some(at(2_000)),
                effective_to: Some(at(1_000)),
                ..Default::default()
            },
            aud,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);

    // Every entry, paged.
    let mut all = Vec::new();
    let mut token = String::new();
    loop {
        let page = c
            .list_entries(req(
                pb::ListEntriesRequest {
                    page_size: 700,
                    page_token: token.clone(),
                    ..Default::default()
                },
                aud,
            ))
            .await
            .unwrap()
            .into_inner();
        all.extend(page.entries);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(all.len(), model.entries().len());

    // One entry with its raw fact.
    let one = c
        .get_entry(req(
            pb::GetEntryRequest {
                entry_id: all[0].entry_id.clone(),
            },
            aud,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(one.entry.unwrap().lines.len(), all[0].lines.len());
    let raw: serde_json::Value = serde_json::from_slice(&one.raw_fact).unwrap();
    assert_eq!(raw["id"].as_str().unwrap(), one.fact_id);

    // Statement: the last running balance is the account's balance.
    let pending = Account::StripePending.to_string();
    let currency = world
        .truth
        .balances
        .keys()
        .find(|k| k.account.is_none())
        .unwrap()
        .currency
        .clone();
    let mut token = String::new();
    let mut last = None;
    let mut lines = 0;
    loop {
        let page = c
            .get_account_statement(req(
                pb::GetAccountStatementRequest {
                    ledger: PLATFORM.into(),
                    account: pending.clone(),
                    currency: currency.clone(),
                    page_size: 500,
                    page_token: token.clone(),
                    ..Default::default()
                },
                aud,
            ))
            .await
            .unwrap()
            .into_inner();
        lines += page.lines.len();
        if let Some(l) = page.lines.last() {
            last = Some(l.running_balance.clone());
        }
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert!(lines > 0);
    let c_ = ledgerline_core::Currency::parse(&currency).unwrap();
    assert_eq!(
        last.unwrap().parse::<rust_decimal::Decimal>().unwrap(),
        model
            .balance(PLATFORM, &Account::StripePending, c_)
            .amount()
    );

    // Chain verification.
    let v = c
        .verify_chain(req(pb::VerifyChainRequest {}, aud))
        .await
        .unwrap()
        .into_inner();
    assert!(v.ok, "{}: {}", v.first_bad_entry_id, v.reason);
    assert_eq!(usize::try_from(v.entries_checked).unwrap(), all.len());

    // Health and reflection.
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let h = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "ledgerline.ledger.v1.LedgerQuery".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        h.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let mut refl = ServerReflectionClient::new(channel);
    let mut stream = refl
        .server_reflection_info(futures::stream::iter([ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        }]))
        .await
        .unwrap()
        .into_inner();
    let resp = stream.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = resp.message_response else {
        panic!("no service list");
    };
    assert!(
        list.service
            .iter()
            .any(|s| s.name == "ledgerline.ledger.v1.LedgerQuery")
    );

    // The database out of reach (a pool that was closed): UNAVAILABLE, which clients retry,
    // not INTERNAL.
    let gone = sqlx::PgPool::connect(&url).await.unwrap();
    gone.close().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server_stop = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(ledgerline_ledger::grpc::serve(
        ledgerline_ledger::PgStore::new(gone),
        vec![("aud-token".into(), Role::Auditor)],
        listener,
        None,
        server_stop.clone(),
    ));
    let mut unreachable = LedgerQueryClient::new(
        Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap(),
    );
    let e = unreachable
        .get_trial_balance(req(
            pb::GetTrialBalanceRequest {
                ledger: PLATFORM.into(),
                as_of: None,
            },
            aud,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    assert!(e.message().contains("retry"), "{e:?}");
    server_stop.cancel();
    server.await.unwrap().unwrap();

    stop.cancel();
    running.task.await.unwrap().unwrap();
}
