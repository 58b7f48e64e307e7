//! Hostile requests to every query of the gRPC API, on both stores: text the stores cannot
//! hold or key (a NUL, 10,000 characters), empty and odd names, times at and past the ends of
//! what the stores and `google.protobuf.Timestamp` allow, page tokens and sizes at the limits.
//! Each is answered OK, INVALID_ARGUMENT or NOT_FOUND with a message — never INTERNAL (which
//! tells the caller nothing it can fix) nor a dropped connection.
use crate::ledger_support::*;
use ledgerline_bus::EmbeddedLog;
use ledgerline_ledger::Role;
use ledgerline_ledger::consumer::fold_and_commit;
use ledgerline_ledger::engine::Engine;
use ledgerline_ledger::store::{PgStore, SqliteStore, Store};
use ledgerline_proto::ledger::v1 as pb;
use pb::ledger_query_client::LedgerQueryClient;
use tonic::Code;
use tonic::transport::Channel;

fn hostile_texts() -> Vec<String> {
    vec![
        String::new(),
        "\0".into(),
        "acct_\0platform".into(),
        "x".repeat(10_000),
        "ü".repeat(3_000),
        "' OR 1=1 --".into(),
        "%".into(),
        "\u{202E}".into(),
        PLATFORM.into(),
        "assets:stripe:available".into(),
    ]
}

fn hostile_times() -> Vec<Option<prost_types::Timestamp>> {
    let at = |seconds, nanos| Some(prost_types::Timestamp { seconds, nanos });
    vec![
        None,
        at(0, 0),
        at(-62_135_596_800, 0),           // 0001-01-01, the Timestamp's first
        at(-62_135_596_801, 0),           // before it
        at(253_402_300_799, 999_999_999), // 9999-12-31, its last
        at(253_402_300_800, 0),           // after it
        at(-300_000_000_000, 0),          // 7537 BC: chrono's, not PostgreSQL's
        at(i64::MAX, 0),
        at(i64::MIN, 0),
        at(1_767_225_600, -1),
        at(1_767_225_600, 1_000_000_000),
    ]
}

fn req<T>(msg: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut()
        .insert("authorization", "Bearer aud".parse().unwrap());
    r
}

/// OK, or a refusal the caller can act on, with a message.
fn acceptable<T>(what: &str, answer: Result<tonic::Response<T>, tonic::Status>) {
    if let Err(status) = answer {
        assert!(
            matches!(status.code(), Code::InvalidArgument | Code::NotFound)
                && !status.message().is_empty(),
            "{what}: {status:?}"
        );
    }
}

async fn hostile_requests_are_answered<S: Store>(store: S) {
    let (_world, facts) = world_facts(5, 400);
    let mut engine = Engine::new();
    let dlq = EmbeddedLog::in_memory(1);
    fold_and_commit(&store, &mut engine, &dlq, "g", &in_records(&facts))
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(ledgerline_ledger::grpc::serve(
        store,
        vec![("aud".into(), Role::Auditor)],
        listener,
        None,
        stop.clone(),
    ));
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut c = LedgerQueryClient::new(channel);

    let texts = hostile_texts();
    let times = hostile_times();
    for text in &texts {
        let short: String = text.chars().take(24).collect();
        for time in &times {
            let as_of = Some(pb::AsOf {
                effective_as_of: *time,
                recorded_as_of: *time,
            });
            let what = format!("{short:?} at {time:?}");
            acceptable(
                &format!("GetBalances ledger {what}"),
                c.get_balances(req(pb::GetBalancesRequest {
                    ledger: text.clone(),
                    account: String::new(),
                    currency: String::new(),
                    as_of,
                }))
                .await,
            );
            acceptable(
                &format!("GetBalances account {what}"),
                c.get_balances(req(pb::GetBalancesRequest {
                    ledger: PLATFORM.into(),
                    account: text.clone(),
                    currency: "usd".into(),
                    as_of,
                }))
                .await,
            );
            acceptable(
                &format!("GetTrialBalance {what}"),
                c.get_trial_balance(req(pb::GetTrialBalanceRequest {
                    ledger: text.clone(),
                    as_of,
                }))
                .await,
            );
            acceptable(
                &format!("ListEntries {what}"),
                c.list_entries(req(pb::ListEntriesRequest {
                    ledger: text.clone(),
                    account: text.clone(),
                    source_id: text.clone(),
                    effective_from: *time,
                    effective_to: None,
                    page_size: 1_000,
                    page_token: String::new(),
                }))
                .await,
            );
            acceptable(
                &format!("GetAccountStatement {what}"),
                c.get_account_statement(req(pb::GetAccountStatementRequest {
                    ledger: PLATFORM.into(),
                    account: text.clone(),
                    currency: "usd".into(),
                    effective_from: None,
                    effective_to: *time,
                    page_size: 0,
                    page_token: String::new(),
                }))
                .await,
            );
        }
        acceptable(
            &format!("GetBalances currency {short:?}"),
            c.get_balances(req(pb::GetBalancesRequest {
                ledger: PLATFORM.into(),
                account: String::new(),
                currency: text.clone(),
                as_of: None,
            }))
            .await,
        );
        acceptable(
            &format!("GetEntry {short:?}"),
            c.get_entry(req(pb::GetEntryRequest {
                entry_id: text.clone(),
            }))
            .await,
        );
        for page_token in [text.clone(), i64::MAX.to_string(), "-1".into()] {
            for page_size in [i32::MIN, -1, 0, 1, 1_000, 1_001, i32::MAX] {
                let what = format!("page {page_token:.24?} of {page_size}");
                acceptable(
                    &format!("ListEntries {what}"),
                    c.list_entries(req(pb::ListEntriesRequest {
                        ledger: PLATFORM.into(),
                        page_size,
                        page_token: page_token.clone(),
                        ..Default::default()
                    }))
                    .await,
                );
                acceptable(
                    &format!("GetAccountStatement {what}"),
                    c.get_account_statement(req(pb::GetAccountStatementRequest {
                        ledger: PLATFORM.into(),
                        account: "assets:stripe:available".into(),
                        currency: "usd".into(),
                        page_size,
                        page_token: page_token.clone(),
                        ..Default::default()
                    }))
                    .await,
                );
            }
        }
    }
    // The server is still up and answers a plain question.
    c.verify_chain(req(pb::VerifyChainRequest {}))
        .await
        .unwrap();
    stop.cancel();
    server.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_are_answered_in_postgresql() {
    let (_pool, url) = fresh_db("grpc_hostile").await;
    hostile_requests_are_answered(PgStore::connect(&url).await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_are_answered_in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    hostile_requests_are_answered(
        SqliteStore::open(&dir.path().join("l.sqlite"))
            .await
            .unwrap(),
    )
    .await;
}
