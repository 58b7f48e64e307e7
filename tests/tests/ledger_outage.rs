//! The database out of reach mid-fold: the ledger waits it out instead of stopping (its gRPC
//! API answers UNAVAILABLE meanwhile) and, once the database is back, ends with exactly the
//! core's fold. The outage is real: the ledger reaches PostgreSQL through a TCP relay that this
//! test cuts (every open connection dropped, new ones refused) and restores.
#![allow(clippy::unwrap_used)]

mod ledger_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ledger_support::*;
use ledgerline_bus::Topics;
use ledgerline_ledger::Role;
use ledgerline_proto::ledger::v1 as pb;
use ledgerline_tests::unique_name;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

/// A TCP relay to PostgreSQL that can be cut and restored.
struct Relay {
    addr: std::net::SocketAddr,
    up: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Relay {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (is_up, all) = (Arc::clone(&up), Arc::clone(&links));
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if !is_up.load(Ordering::SeqCst) {
                    drop(client); // refused: the connection closes at once
                    continue;
                }
                let upstream = upstream.clone();
                all.lock().await.push(tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                }));
            }
        });
        Self { addr, up, links }
    }

    /// Drops every open connection and refuses new ones.
    async fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for link in self.links.lock().await.drain(..) {
            link.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// `postgres://user@host:port/db` → (`host:port`, the same URL through `relay`).
fn through(url: &str, relay: std::net::SocketAddr) -> (String, String) {
    let after_scheme = url.split_once("://").unwrap().1;
    let authority = after_scheme.split('/').next().unwrap();
    let host_port = authority.rsplit('@').next().unwrap().to_owned();
    (
        host_port.clone(),
        url.replacen(&host_port, &relay.to_string(), 1),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_ledger_waits_out_a_database_outage_and_ends_with_the_same_books() {
    let topics = Topics::with_prefix(format!("{}.", unique_name("lo")));
    create_topics(&topics).await;
    let (_world, facts) = world_facts(31, 3_000);
    let records = produce(&topics, &facts, 25).await;
    let (pool, url) = fresh_db("ledger_outage").await;
    let (upstream, _) = through(&url, "127.0.0.1:1".parse().unwrap());
    let relay = Relay::start(upstream).await;
    let (_, relayed) = through(&url, relay.addr);

    let group = unique_name("ledger");
    let mut config = config(&relayed, &topics, &group);
    config.batch.max_records = 200; // many batches: the cut lands mid-fold
    config.tokens = vec![("aud".into(), Role::Auditor)];
    config.metrics_addr = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    let (running, stop) = start(config).await;
    let readyz = format!("http://{}/readyz", running.metrics_addr.unwrap());
    wait_for_random_point(&pool, &group, 0, records, 7).await;
    let (ready, said) = probe(readyz.clone()).await;
    assert!(ready && said.starts_with("200 ready"), "{said}");
    relay.cut().await;
    // A COMMIT already on its way when the relay was cut may still land: count after it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = folded(&pool, &group).await;
    assert!(before < records, "the fold finished before the cut");
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", running.grpc_addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = pb::ledger_query_client::LedgerQueryClient::new(channel);
    let mut request = tonic::Request::new(pb::GetTrialBalanceRequest {
        ledger: PLATFORM.into(),
        as_of: None,
    });
    request
        .metadata_mut()
        .insert("authorization", "Bearer aud".parse().unwrap());
    let e = client.get_trial_balance(request).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unavailable, "{e:?}");
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        !running.task.is_finished(),
        "the ledger stopped during the outage"
    );
    // Not ready while its database is out of reach, and says so; alive all along.
    let (ready, said) = probe(readyz.clone()).await;
    assert!(
        !ready && said.starts_with("503 not ready: the database"),
        "{said}"
    );
    let healthz = readyz.replace("/readyz", "/healthz");
    let (alive, said) = probe(healthz).await;
    assert!(alive && said.starts_with("200 ok"), "{said}");
    assert_eq!(
        folded(&pool, &group).await,
        before,
        "nothing committed while cut"
    );

    relay.restore();
    wait_for_offsets(&pool, &group, records, Duration::from_secs(180)).await;
    let (ready, said) = probe(readyz).await;
    assert!(ready, "{said}");
    stop.cancel();
    running.task.await.unwrap().unwrap();
    assert_eq!(stored_digests(&pool).await, model_digests(&model(&facts)));
    let mut conn = pool.acquire().await.unwrap();
    let v = ledgerline_ledger::chain::verify(&mut conn).await.unwrap();
    assert!(v.ok(), "{:?}", v.first_bad);
}
