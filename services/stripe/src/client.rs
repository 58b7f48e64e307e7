//! The Stripe HTTP client: authentication, `Stripe-Version`, `Stripe-Account`, a client-side
//! rate limiter, retries with exponential backoff and jitter (429 `rate_limit`/`lock_timeout`,
//! 409, 5xx, connection errors; `Stripe-Should-Retry` overrides), `Idempotency-Key` on every
//! POST, pagination, and errors that say what to do. `Request-Id` is kept in logs and errors;
//! the key never is.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::{ApiErrorBody, StripeError, permission_in};
use crate::key::{ApiKey, Mode, redact};
use crate::ratelimit::RateLimiter;
use crate::tls::{TlsConfig, certificate_problem, error_chain, http_client_builder};

/// The API version this client is written and tested against.
pub const DEFAULT_STRIPE_VERSION: &str = "2026-07-29.dahlia";
/// Stripe's production API.
pub const DEFAULT_BASE_URL: &str = "https://api.stripe.com";
/// Default client rate: 80 % of Stripe's 100 r/s (live) and 25 r/s (test).
pub const DEFAULT_LIVE_RATE: u32 = 80;
pub const DEFAULT_TEST_RATE: u32 = 20;

/// Everything a [`Client`] needs.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub base_url: String,
    pub key: ApiKey,
    /// Sent as `Stripe-Version` on every request.
    pub stripe_version: String,
    /// Requests per second; `None` = the default for the key's mode, `Some(0)` = unlimited.
    pub requests_per_sec: Option<u32>,
    /// Requests allowed at once before pacing starts.
    pub burst: u32,
    /// Retries after the first attempt.
    pub max_retries: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Per-attempt timeout.
    pub timeout: Duration,
    /// Trusted CAs for `https://` (Mozilla's roots by default).
    pub tls: TlsConfig,
}

impl ClientConfig {
    pub fn new(base_url: impl Into<String>, key: ApiKey) -> ClientConfig {
        ClientConfig {
            base_url: base_url.into(),
            key,
            stripe_version: DEFAULT_STRIPE_VERSION.to_owned(),
            requests_per_sec: None,
            burst: 4,
            max_retries: 8,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(8),
            timeout: Duration::from_secs(30),
            tls: TlsConfig::default(),
        }
    }

    /// The rate the limiter enforces.
    pub fn effective_rate(&self) -> u32 {
        self.requests_per_sec.unwrap_or(match self.key.mode() {
            Mode::Live => DEFAULT_LIVE_RATE,
            Mode::Test => DEFAULT_TEST_RATE,
        })
    }
}

/// Counters for metrics: API calls by status (0 = no answer), retries, 429s, limiter waits.
#[derive(Debug, Default)]
pub struct ClientStats {
    by_status: Mutex<BTreeMap<u16, u64>>,
    pub retries: AtomicU64,
    pub rate_limited: AtomicU64,
}

impl ClientStats {
    fn record(&self, status: u16) {
        let mut m = self
            .by_status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *m.entry(status).or_insert(0) += 1;
    }

    /// Calls per HTTP status (`0` = connection error or timeout).
    pub fn by_status(&self) -> BTreeMap<u16, u64> {
        self.by_status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub fn total(&self) -> u64 {
        self.by_status().values().sum()
    }
}

/// A successful answer.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub request_id: String,
    pub body: Bytes,
}

/// One object of a list page: its id, `created` and its bytes exactly as Stripe sent them.
#[derive(Debug, Clone)]
pub struct RawObject {
    pub id: String,
    pub created: i64,
    pub raw: Bytes,
}

/// One page of a list endpoint, newest first.
#[derive(Debug, Clone)]
pub struct ListPage {
    pub data: Vec<RawObject>,
    pub has_more: bool,
    pub request_id: String,
}

#[derive(Deserialize)]
struct ListBody<'a> {
    #[serde(borrow)]
    data: Vec<&'a RawValue>,
    #[serde(default)]
    has_more: bool,
}

#[derive(Deserialize)]
struct IdCreated<'a> {
    #[serde(borrow)]
    id: &'a str,
    #[serde(default)]
    created: i64,
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: ApiErrorBody,
}

/// Stripe API client; cheap to clone (shares the connection pool, limiter and counters).
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    config: Arc<ClientConfig>,
    limiter: Arc<RateLimiter>,
    stats: Arc<ClientStats>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Post,
    Delete,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Delete => "DELETE",
        }
    }
}

impl Client {
    pub fn new(config: ClientConfig) -> Result<Client, StripeError> {
        let http = http_client_builder(&config.tls)
            .map_err(|e| StripeError::Transport {
                base_url: config.base_url.clone(),
                message: e.to_string(),
            })?
            .timeout(config.timeout)
            .pool_max_idle_per_host(32)
            .build()
            .map_err(|e| StripeError::Transport {
                base_url: config.base_url.clone(),
                message: e.to_string(),
            })?;
        let limiter = Arc::new(RateLimiter::new(config.effective_rate(), config.burst));
        Ok(Client {
            http,
            config: Arc::new(config),
            limiter,
            stats: Arc::new(ClientStats::default()),
        })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    pub fn mode(&self) -> Mode {
        self.config.key.mode()
    }

    pub fn stats(&self) -> &Arc<ClientStats> {
        &self.stats
    }

    pub fn limiter(&self) -> &Arc<RateLimiter> {
        &self.limiter
    }

    /// `GET path?query`, as `account` when given (`Stripe-Account`).
    pub async fn get(
        &self,
        path: &str,
        query: &[(&str, String)],
        account: Option<&str>,
    ) -> Result<Response, StripeError> {
        self.send(Method::Get, path, query, account, None).await
    }

    /// `POST path` with a form body. An `Idempotency-Key` is always sent (the given one, or a
    /// fresh one shared by all retries of this call), so a retry never acts twice.
    pub async fn post_form(
        &self,
        path: &str,
        form: &[(&str, String)],
        account: Option<&str>,
        idempotency_key: Option<&str>,
    ) -> Result<Response, StripeError> {
        let key = idempotency_key
            .map(str::to_owned)
            .unwrap_or_else(fresh_idempotency_key);
        self.send(Method::Post, path, form, account, Some(&key))
            .await
    }

    pub async fn delete(&self, path: &str, account: Option<&str>) -> Result<Response, StripeError> {
        self.send(Method::Delete, path, &[], account, None).await
    }

    /// One page of a list endpoint (`limit` is added when absent: 100).
    pub async fn list_page(
        &self,
        path: &str,
        params: &[(&str, String)],
        account: Option<&str>,
    ) -> Result<ListPage, StripeError> {
        let mut query: Vec<(&str, String)> = params.to_vec();
        if !query.iter().any(|(k, _)| *k == "limit") {
            query.push(("limit", "100".to_owned()));
        }
        let resp = self.get(path, &query, account).await?;
        let decode = |message: String| StripeError::Decode {
            path: path.to_owned(),
            request_id: resp.request_id.clone(),
            message,
        };
        let list: ListBody<'_> =
            serde_json::from_slice(&resp.body).map_err(|e| decode(e.to_string()))?;
        // Paging goes on from the last object listed: with none, every caller would ask for the
        // same page again, forever.
        if list.has_more && list.data.is_empty() {
            return Err(decode(
                "an empty page that says more objects follow (`has_more`); there is no object to                  page on from"
                    .to_owned(),
            ));
        }
        let mut data = Vec::with_capacity(list.data.len());
        for raw in list.data {
            let ic: IdCreated<'_> =
                serde_json::from_str(raw.get()).map_err(|e| decode(e.to_string()))?;
            let start = raw.get().as_ptr() as usize - resp.body.as_ptr() as usize;
            data.push(RawObject {
                id: ic.id.to_owned(),
                created: ic.created,
                raw: resp.body.slice(start..start + raw.get().len()),
            });
        }
        Ok(ListPage {
            data,
            has_more: list.has_more,
            request_id: resp.request_id,
        })
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        params: &[(&str, String)],
        account: Option<&str>,
        idempotency_key: Option<&str>,
    ) -> Result<Response, StripeError> {
        let url = format!("{}{path}", self.config.base_url.trim_end_matches('/'));
        let mut attempt: u32 = 0;
        loop {
            self.limiter.acquire().await;
            let mut req = match method {
                Method::Get => self.http.get(&url).query(params),
                Method::Post => self.http.post(&url).form(params),
                Method::Delete => self.http.delete(&url),
            };
            req = req
                .header("Authorization", self.config.key.bearer())
                .header("Stripe-Version", &self.config.stripe_version)
                .header("User-Agent", "ledgerline-stripe/0.1");
            if let Some(a) = account {
                req = req.header("Stripe-Account", a);
            }
            if let Some(k) = idempotency_key {
                req = req.header("Idempotency-Key", k);
            }
            let outcome = match req.send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let header = |name: &str| {
                        resp.headers()
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned)
                    };
                    let request_id = header("request-id").unwrap_or_else(|| "(none)".to_owned());
                    let should_retry = header("stripe-should-retry");
                    match resp.bytes().await {
                        Ok(body) => Ok((status, request_id, should_retry, body)),
                        Err(e) => Err(e.to_string()),
                    }
                }
                Err(e) => {
                    if let Some(problem) = certificate_problem(&e) {
                        self.stats.record(0);
                        return Err(StripeError::UntrustedCertificate {
                            base_url: self.config.base_url.clone(),
                            problem,
                        });
                    }
                    Err(redact(&error_chain(&e)))
                }
            };
            let (status, request_id, should_retry, body) = match outcome {
                Ok(v) => v,
                Err(message) => {
                    self.stats.record(0);
                    tracing::warn!(method = method.as_str(), path, attempt, error = %message, "Stripe request failed without an answer");
                    if attempt < self.config.max_retries {
                        self.backoff(attempt).await;
                        attempt += 1;
                        continue;
                    }
                    return Err(StripeError::RetriesExhausted {
                        method: method.as_str().to_owned(),
                        path: path.to_owned(),
                        attempts: attempt + 1,
                        last: message,
                    });
                }
            };
            self.stats.record(status);
            if (200..300).contains(&status) {
                tracing::debug!(
                    method = method.as_str(),
                    path,
                    status,
                    request_id,
                    "Stripe request"
                );
                return Ok(Response {
                    status,
                    request_id,
                    body,
                });
            }
            let err_body = serde_json::from_slice::<ErrorEnvelope>(&body)
                .map(|e| e.error)
                .unwrap_or_default();
            let retryable = match should_retry.as_deref() {
                Some("true") => true,
                Some("false") => false,
                _ => status == 409 || status == 429 || status >= 500,
            };
            if status == 429 {
                self.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
                if err_body.code.as_deref() != Some("lock_timeout") {
                    // Everyone slows down, not just this call.
                    self.limiter.pause(self.backoff_delay(attempt));
                }
            }
            tracing::debug!(method = method.as_str(), path, status, request_id, attempt, retryable, code = ?err_body.code, "Stripe error answer");
            if retryable && attempt < self.config.max_retries {
                self.stats.retries.fetch_add(1, Ordering::Relaxed);
                self.backoff(attempt).await;
                attempt += 1;
                continue;
            }
            let message = redact(err_body.message.as_deref().unwrap_or("(no message)"));
            return Err(match status {
                401 => StripeError::Unauthorized {
                    masked: self.config.key.masked(),
                    request_id,
                    message,
                },
                403 => match permission_in(&message) {
                    Some(permission) => StripeError::MissingPermission {
                        masked: self.config.key.masked(),
                        permission,
                        request_id,
                    },
                    None => StripeError::Forbidden {
                        request_id,
                        message,
                    },
                },
                _ if retryable => StripeError::RetriesExhausted {
                    method: method.as_str().to_owned(),
                    path: path.to_owned(),
                    attempts: attempt + 1,
                    last: format!("{status} request {request_id}: {message}"),
                },
                _ => StripeError::Api {
                    status,
                    method: method.as_str().to_owned(),
                    path: path.to_owned(),
                    request_id,
                    body: Box::new(err_body),
                    message,
                },
            });
        }
    }

    fn backoff_delay(&self, attempt: u32) -> Duration {
        let exp = self
            .config
            .backoff_base
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.config.backoff_max);
        // Jitter: uniformly in [exp/2, exp].
        let half = exp / 2;
        let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        let jitter = if nanos == 0 {
            0
        } else {
            pseudo_random() % nanos
        };
        half + Duration::from_nanos(jitter)
    }

    async fn backoff(&self, attempt: u32) {
        tokio::time::sleep(self.backoff_delay(attempt)).await;
    }
}

fn pseudo_random() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::from(d.subsec_nanos()))
        .unwrap_or(0);
    let mut x = COUNTER.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed) ^ nanos;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x
}

fn fresh_idempotency_key() -> String {
    format!("ll-{:016x}{:016x}", pseudo_random(), pseudo_random())
}
