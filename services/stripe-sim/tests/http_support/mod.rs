//! Shared helpers of the `http_*` tests: a plain HTTP/1.1 client over loopback, a webhook
//! receiver, and a server over the synthetic history.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use ledgerline_stripe_sim::http::synthetic::{self, Synthetic};
use ledgerline_stripe_sim::http::{
    ClockConfig, DEFAULT_TEST_KEY, RateLimits, SimConfig, SimServer,
};
use ledgerline_stripe_sim::object::{ObjectKind, SimObject};
use serde_json::Value;

pub const TEST_KEY: &str = DEFAULT_TEST_KEY;

/// An answer.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One keep-alive connection; reconnects after an error.
pub struct Client {
    addr: std::net::SocketAddr,
    sender: Option<hyper::client::conn::http1::SendRequest<Full<Bytes>>>,
    pub key: Option<String>,
    pub headers: Vec<(String, String)>,
}

impl Client {
    pub fn new(server: &SimServer) -> Client {
        Client {
            addr: server.addr(),
            sender: None,
            key: Some(TEST_KEY.to_owned()),
            headers: Vec::new(),
        }
    }

    pub fn with_key(mut self, key: Option<&str>) -> Client {
        self.key = key.map(str::to_owned);
        self
    }

    async fn sender(
        &mut self,
    ) -> Result<&mut hyper::client::conn::http1::SendRequest<Full<Bytes>>, String> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            let stream = tokio::net::TcpStream::connect(self.addr)
                .await
                .map_err(|e| e.to_string())?;
            stream.set_nodelay(true).map_err(|e| e.to_string())?;
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| e.to_string())?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            self.sender = Some(sender);
        }
        self.sender
            .as_mut()
            .ok_or_else(|| "no connection".to_owned())
    }

    /// Sends a request; `Err` when the connection broke without an answer.
    pub async fn try_send(
        &mut self,
        method: &str,
        path: &str,
        body: &str,
        extra: &[(&str, &str)],
    ) -> Result<Resp, String> {
        let mut b = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr.to_string());
        if let Some(k) = &self.key {
            b = b.header("authorization", format!("Bearer {k}"));
        }
        for (k, v) in &self.headers {
            b = b.header(k.as_str(), v.as_str());
        }
        for (k, v) in extra {
            b = b.header(*k, *v);
        }
        if method == "POST" {
            b = b.header("content-type", "application/x-www-form-urlencoded");
        }
        let req = b
            .body(Full::new(Bytes::from(body.to_owned())))
            .map_err(|e| e.to_string())?;
        if self.sender().await?.ready().await.is_err() {
            // The server closed the kept-alive connection: open a new one.
            self.sender = None;
            self.sender()
                .await?
                .ready()
                .await
                .map_err(|e| e.to_string())?;
        }
        let sender = self.sender().await?;
        let resp = match sender.send_request(req).await {
            Ok(r) => r,
            Err(e) => {
                self.sender = None;
                return Err(e.to_string());
            }
        };
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok(Resp {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        })
    }

    pub async fn get(&mut self, path: &str) -> Resp {
        self.try_send("GET", path, "", &[])
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    pub async fn post(&mut self, path: &str, form: &str, extra: &[(&str, &str)]) -> Resp {
        self.try_send("POST", path, form, extra).await.unwrap()
    }
}

/// Synthetic history of `n` objects.
pub fn world(n: usize) -> Vec<SimObject> {
    synthetic::generate(Synthetic {
        objects: n,
        ..Synthetic::default()
    })
}

/// A config with no rate limit, the clock after the whole synthetic history.
pub fn config() -> SimConfig {
    let s = Synthetic::default();
    SimConfig {
        rate_limits: RateLimits::unlimited(),
        clock: ClockConfig {
            start: Some(s.start + s.span + 5 * 86_400),
            speed: 0,
        },
        ..SimConfig::default()
    }
}

pub async fn start(objects: Vec<SimObject>, config: SimConfig) -> SimServer {
    SimServer::start(config, objects).await.unwrap()
}

/// One received webhook.
#[derive(Debug, Clone)]
pub struct Received {
    pub signature: String,
    pub body: Bytes,
    pub answered: u16,
}

/// A webhook receiver on loopback that answers according to `answer` (called with the body and
/// how many times this body was received before).
pub struct Receiver {
    pub url: String,
    pub got: Arc<Mutex<Vec<Received>>>,
    stop: tokio_util::sync::CancellationToken,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

type Answer = Arc<dyn Fn(&[u8], usize) -> u16 + Send + Sync>;

impl Receiver {
    pub async fn start(answer: impl Fn(&[u8], usize) -> u16 + Send + Sync + 'static) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let stop = tokio_util::sync::CancellationToken::new();
        let answer: Answer = Arc::new(answer);
        let (g, s) = (Arc::clone(&got), stop.clone());
        tokio::spawn(async move {
            loop {
                let (stream, _) = tokio::select! {
                    () = s.cancelled() => break,
                    a = listener.accept() => match a { Ok(x) => x, Err(_) => continue },
                };
                let (g, answer) = (Arc::clone(&g), Arc::clone(&answer));
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                        let (g, answer) = (Arc::clone(&g), Arc::clone(&answer));
                        async move {
                            let signature = req
                                .headers()
                                .get("stripe-signature")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("")
                                .to_owned();
                            let body = req
                                .into_body()
                                .collect()
                                .await
                                .map(|c| c.to_bytes())
                                .unwrap_or_default();
                            let mut v = g.lock().unwrap();
                            let before = v.iter().filter(|r| r.body == body).count();
                            let status = answer(&body, before);
                            v.push(Received {
                                signature,
                                body,
                                answered: status,
                            });
                            drop(v);
                            Ok::<_, std::convert::Infallible>(
                                hyper::Response::builder()
                                    .status(status)
                                    .body(Full::new(Bytes::new()))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Receiver {
            url: format!("http://{addr}/webhooks"),
            got,
            stop,
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

/// The ids of a list page.
pub fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_owned())
        .collect()
}

pub async fn eventually(mut f: impl FnMut() -> bool, timeout: Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    f()
}

/// Every list endpoint the simulator serves, with the kind of object it lists.
pub const LISTS: &[(&str, ObjectKind)] = &[
    ("/v1/events", ObjectKind::Event),
    ("/v1/balance_transactions", ObjectKind::BalanceTransaction),
    ("/v1/payouts", ObjectKind::Payout),
    ("/v1/invoices", ObjectKind::Invoice),
    ("/v1/invoice_payments", ObjectKind::InvoicePayment),
    ("/v1/credit_notes", ObjectKind::CreditNote),
    ("/v1/charges", ObjectKind::Charge),
    ("/v1/refunds", ObjectKind::Refund),
    ("/v1/disputes", ObjectKind::Dispute),
    ("/v1/customers", ObjectKind::Customer),
    ("/v1/accounts", ObjectKind::Account),
];
