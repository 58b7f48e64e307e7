//! Serving list pages of 100 over loopback HTTP.
//!
//! ```text
//! cargo bench -p ledgerline-stripe-sim --bench serve_pages
//! STRIPE_SIM_BENCH_FACTS=100000 STRIPE_SIM_BENCH_SECS=10 STRIPE_SIM_BENCH_CONNS=4 cargo bench -p ledgerline-stripe-sim --bench serve_pages
//! ```
//!
//! A world of `STRIPE_SIM_BENCH_FACTS` facts (default 100k) from the world generator is served
//! in-process on `127.0.0.1:0`; `STRIPE_SIM_BENCH_CONNS` keep-alive connections (default 4)
//! replay the cursor sequence of a full `starting_after` walk (`limit=100`) of one list for
//! `STRIPE_SIM_BENCH_SECS` seconds each (default 5), reading every body, and the bench prints
//! pages/s and MB/s per list. The cursors are collected first by a walk that parses every page
//! (so the timed loop measures the server, not the client's JSON parser). Client and server
//! share the machine's cores. The target (issue 3) is ≥ 2,000 pages/s.
//!
//! Under `cargo test` (no `--bench` argument) it runs a tiny smoke version.
#![allow(clippy::unwrap_used, clippy::print_stderr, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use ledgerline_stripe_sim::http::{DEFAULT_TEST_KEY, RateLimits, SimConfig, SimServer};
use ledgerline_stripe_sim::world::{World, WorldConfig};

type Sender = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;

async fn connect(addr: std::net::SocketAddr) -> Sender {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    sender
}

async fn get(sender: &mut Sender, path: &str) -> Bytes {
    sender.ready().await.unwrap();
    let req = hyper::Request::get(path)
        .header("host", "127.0.0.1")
        .header("authorization", format!("Bearer {DEFAULT_TEST_KEY}"))
        .body(Empty::new())
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.into_body().collect().await.unwrap().to_bytes()
}

/// The request paths of a full `starting_after` walk.
async fn walk(sender: &mut Sender, list: &str) -> Vec<String> {
    let mut paths = vec![format!("{list}?limit=100")];
    loop {
        let body = get(sender, paths.last().unwrap()).await;
        let page: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let data = page["data"].as_array().unwrap();
        if page["has_more"] != true || data.is_empty() {
            break;
        }
        let last = data.last().unwrap()["id"].as_str().unwrap().to_owned();
        paths.push(format!("{list}?limit=100&starting_after={last}"));
    }
    paths
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let facts = if bench {
        env("STRIPE_SIM_BENCH_FACTS", 100_000)
    } else {
        1_000
    };
    let secs = if bench {
        env("STRIPE_SIM_BENCH_SECS", 5)
    } else {
        1
    };
    let conns = env("STRIPE_SIM_BENCH_CONNS", 4);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let t = Instant::now();
        let world = World::generate(&WorldConfig::with_facts(7, facts));
        let objects = world.objects;
        let last = objects.iter().map(|o| o.created).max().unwrap_or(0);
        eprintln!(
            "serve_pages: world of {facts} facts, {} objects, generated in {:.1?}",
            objects.len(),
            t.elapsed()
        );
        let mut cfg = SimConfig {
            rate_limits: RateLimits::unlimited(),
            ..SimConfig::default()
        };
        cfg.clock.start = Some(last + 1);
        let server = SimServer::start(cfg, objects).await.unwrap();
        let addr = server.addr();
        let mut probe = connect(addr).await;
        for list in ["/v1/balance_transactions", "/v1/events", "/v1/invoices", "/v1/charges"] {
            let paths = Arc::new(walk(&mut probe, list).await);
            let pages = Arc::new(AtomicU64::new(0));
            let bytes = Arc::new(AtomicU64::new(0));
            let stop = Arc::new(AtomicBool::new(false));
            let start = Instant::now();
            let mut tasks = Vec::new();
            for c in 0..conns {
                let (paths, pages, bytes, stop) =
                    (paths.clone(), pages.clone(), bytes.clone(), stop.clone());
                tasks.push(tokio::spawn(async move {
                    let mut s = connect(addr).await;
                    let mut i = usize::try_from(c).unwrap_or(0) * 7;
                    while !stop.load(Ordering::Relaxed) {
                        let body = get(&mut s, &paths[i % paths.len()]).await;
                        bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
                        pages.fetch_add(1, Ordering::Relaxed);
                        i += 1;
                    }
                }));
            }
            tokio::time::sleep(Duration::from_secs(secs)).await;
            stop.store(true, Ordering::Relaxed);
            for t in tasks {
                t.await.unwrap();
            }
            let elapsed = start.elapsed().as_millis().max(1);
            let n = u128::from(pages.load(Ordering::Relaxed));
            let mb = u128::from(bytes.load(Ordering::Relaxed));
            eprintln!(
                "serve_pages: {list:<26} walk of {:>4} pages; {conns} conns: {:>6} pages/s, {:>5} MB/s, {:>6} bytes/page",
                paths.len(),
                n * 1000 / elapsed,
                mb * 1000 / elapsed / 1_000_000,
                mb / n.max(1),
            );
        }
        server.shutdown().await;
    });
}
