//! The server: the accept loop, per-request headers and faults, the `/_sim` admin API, and the
//! library handle.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::http::api::{self, ApiRequest, Reply};
use crate::http::clock::SimClock;
use crate::http::config::{API_VERSION, ApiKey, SimConfig};
use crate::http::error::ApiError;
use crate::http::ids;
use crate::http::limits::{IdemStore, RateLimiter};
use crate::http::params::Params;
use crate::http::webhooks::{self, DeliveryStats, Hub};
use crate::object::SimObject;
use crate::store::{Key, Store};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// Binding the listening socket failed.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// A configured key is not `sk_…`/`rk_…` with `_test_`/`_live_`.
    #[error("API key {0} must start with sk_test_, sk_live_, rk_test_ or rk_live_")]
    BadKey(String),
}

/// Shared state of one server.
pub(crate) struct State {
    pub(crate) config: SimConfig,
    store: RwLock<Store>,
    pub(crate) clock: SimClock,
    pub(crate) keys: HashMap<String, ApiKey>,
    pub(crate) limiter: RateLimiter,
    pub(crate) idem: IdemStore,
    pub(crate) requests: AtomicU64,
    pub(crate) hub: Hub,
    pub(crate) shutdown: CancellationToken,
}

impl State {
    pub(crate) fn read_store(&self) -> RwLockReadGuard<'_, Store> {
        self.store
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn write_store(&self) -> RwLockWriteGuard<'_, Store> {
        self.store
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A running simulator: the bound address, a control handle, and its tasks.
///
/// ```no_run
/// # async fn demo(objects: Vec<ledgerline_stripe_sim::object::SimObject>) -> Result<(), Box<dyn std::error::Error>> {
/// use ledgerline_stripe_sim::http::{SimConfig, SimServer};
/// let server = SimServer::start(SimConfig::default(), objects).await?;
/// let base = server.base_url(); // http://127.0.0.1:PORT
/// server.handle().advance(3600); // an hour of history unfolds
/// server.shutdown().await;
/// # Ok(()) }
/// ```
pub struct SimServer {
    addr: SocketAddr,
    handle: SimHandle,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Control of a running simulator from the library (tests, the demo): the clock, webhook
/// endpoints and secrets, delivery statistics. Cheap to clone.
#[derive(Clone)]
pub struct SimHandle {
    state: Arc<State>,
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for SimServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl SimServer {
    /// Builds the store from `objects` (in the generator's order), binds `config.addr` and
    /// starts serving and dispatching webhooks. Stop it with [`SimServer::shutdown`] (dropping
    /// the server leaves its tasks running until the runtime ends).
    pub async fn start(
        config: SimConfig,
        objects: impl IntoIterator<Item = SimObject>,
    ) -> Result<SimServer, SimError> {
        Self::start_with(config, objects, CancellationToken::new()).await
    }

    /// As [`SimServer::start`], stopping when `shutdown` is cancelled.
    pub async fn start_with(
        config: SimConfig,
        objects: impl IntoIterator<Item = SimObject>,
        shutdown: CancellationToken,
    ) -> Result<SimServer, SimError> {
        let mut keys = HashMap::new();
        for k in &config.keys {
            let ok = ["sk_test_", "sk_live_", "rk_test_", "rk_live_"]
                .iter()
                .any(|p| k.key.starts_with(p));
            if !ok {
                return Err(SimError::BadKey(crate::http::auth::mask_key(&k.key)));
            }
            keys.insert(k.key.clone(), k.clone());
        }
        let store = Store::from_objects(objects);
        let clock = SimClock::new(config.clock);
        let now = clock.now();
        let last_visible = store
            .events_after(None)
            .take_while(|(k, _)| k.created <= now)
            .last()
            .map(|(k, _)| k);
        let listener = TcpListener::bind(config.addr)
            .await
            .map_err(|source| SimError::Bind {
                addr: config.addr,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| SimError::Bind {
            addr: config.addr,
            source,
        })?;
        let state = Arc::new(State {
            config,
            store: RwLock::new(store),
            clock,
            keys,
            limiter: RateLimiter::default(),
            idem: IdemStore::default(),
            requests: AtomicU64::new(0),
            hub: Hub::default(),
            shutdown,
        });
        state.hub.init_cursor(last_visible);
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&state)));
        let dispatcher = tokio::spawn(webhooks::run_dispatcher(Arc::clone(&state)));
        tracing::info!(%addr, "stripe-sim listening");
        Ok(SimServer {
            addr,
            handle: SimHandle { state },
            tasks: vec![accept, dispatcher],
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://{addr}`, what a Stripe client takes as its API base.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The control handle.
    pub fn handle(&self) -> SimHandle {
        self.handle.clone()
    }

    /// Stops accepting, lets open connections finish their request, stops the dispatcher.
    pub async fn shutdown(self) {
        self.handle.state.shutdown.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
    }

    /// Serves until `shutdown` is cancelled.
    pub async fn wait(self) {
        let token = self.handle.state.shutdown.clone();
        token.cancelled().await;
        self.shutdown().await;
    }
}

/// Starts a server with `config` over `objects` and serves until `shutdown` is cancelled (the
/// `run(config, shutdown)` shape every Ledgerline service has).
pub async fn run(
    config: SimConfig,
    objects: impl IntoIterator<Item = SimObject>,
    shutdown: CancellationToken,
) -> Result<(), SimError> {
    SimServer::start_with(config, objects, shutdown)
        .await?
        .wait()
        .await;
    Ok(())
}

/// A webhook endpoint registered through the library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredEndpoint {
    /// `we_…`
    pub id: String,
    /// `whsec_…`
    pub secret: String,
}

impl SimHandle {
    /// Sim-now (unix seconds).
    pub fn now(&self) -> i64 {
        self.state.clock.now()
    }

    /// Moves sim-now forward; webhooks for the events it passes are dispatched. Returns the
    /// new now.
    pub fn advance(&self, seconds: i64) -> i64 {
        let now = self.state.clock.advance(seconds);
        self.state.hub.notify.notify_one();
        now
    }

    /// Moves sim-now to `t` (never backwards). Returns the new now.
    pub fn set_now(&self, t: i64) -> i64 {
        let now = self.state.clock.set(t);
        self.state.hub.notify.notify_one();
        now
    }

    /// Moves balance transaction `id`'s `available_on` to `t`, as Stripe may while the
    /// transaction is pending; no event announces it (balance transactions have none), so only
    /// a re-read sees it. Returns false when `id` is not a balance transaction here.
    pub fn move_available_on(&self, id: &str, t: i64) -> bool {
        let mut store = self.state.write_store();
        match store.lookup(id) {
            Some((idx, _)) => store.set_available_on(idx, t),
            None => false,
        }
    }

    /// Sets the clock's speed (simulated seconds per wall second; 0 stops it).
    pub fn set_speed(&self, speed: u32) {
        self.state.clock.set_speed(speed);
    }

    /// Registers a webhook endpoint as `POST /v1/webhook_endpoints` would, for `livemode`
    /// data of the platform (`connect = true`: events of connected accounts).
    pub fn register_webhook(
        &self,
        url: &str,
        enabled_events: &[&str],
        livemode: bool,
        connect: bool,
    ) -> Option<RegisteredEndpoint> {
        let frontier = self.state.read_store().next_seq();
        let ep = self
            .state
            .hub
            .create_endpoint(
                self.state.config.seed,
                url.to_owned(),
                enabled_events.iter().map(|s| (*s).to_owned()).collect(),
                connect,
                livemode,
                None,
                self.now(),
                frontier,
                None,
                None,
                Vec::new(),
            )
            .ok()?;
        let secret = ep.secrets.first()?.0.clone();
        Some(RegisteredEndpoint { id: ep.id, secret })
    }

    /// Rolls an endpoint's signing secret; the old secret keeps signing (a second `v1`) for
    /// `keep_old_for` simulated seconds. Returns the new secret.
    pub fn roll_webhook_secret(&self, endpoint_id: &str, keep_old_for: i64) -> Option<String> {
        let expires = self.now().saturating_add(keep_old_for);
        self.state
            .hub
            .roll_secret(self.state.config.seed, endpoint_id, expires)
    }

    /// Delivers an event to an endpoint again now (as `stripe events resend`).
    pub fn resend_event(&self, event_id: &str, endpoint_id: &str) -> bool {
        let idx = {
            let store = self.state.read_store();
            store
                .lookup(event_id)
                .filter(|(_, e)| e.kind == crate::object::ObjectKind::Event)
                .map(|(i, _)| i)
        };
        idx.is_some_and(|i| self.state.hub.resend(i, event_id, endpoint_id))
    }

    /// Webhook delivery counters and the log of attempts.
    pub fn webhook_stats(&self) -> DeliveryStats {
        self.state.hub.stats()
    }

    /// Waits until every event visible now has been dispatched and no delivery is queued or in
    /// flight (retries included); `false` on timeout.
    pub async fn settle_webhooks(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            self.state.hub.notify.notify_one();
            let now = self.now();
            let caught_up = {
                let store = self.state.read_store();
                let cursor = self.state.hub.cursor();
                store
                    .events_after(cursor)
                    .next()
                    .is_none_or(|(k, _): (Key, _)| k.created > now)
            };
            if caught_up && self.state.hub.idle() {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Number of requests served so far.
    pub fn requests_served(&self) -> u64 {
        self.state.requests.load(Ordering::Relaxed)
    }
}

// ---------------------------------------------------------------------------------------------
// Serving

async fn accept_loop(listener: TcpListener, state: Arc<State>) {
    loop {
        let accepted = tokio::select! {
            () = state.shutdown.cancelled() => break,
            a = listener.accept() => a,
        };
        let Ok((stream, _peer)) = accepted else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let st = Arc::clone(&state);
        tokio::spawn(async move {
            let svc_state = Arc::clone(&st);
            let svc = service_fn(move |req| serve(Arc::clone(&svc_state), req));
            let conn = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), svc);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                () = st.shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
                }
            }
        });
    }
}

/// Returned by the service to make hyper close the connection without an answer.
#[derive(Debug, thiserror::Error)]
#[error("stripe-sim fault: connection dropped")]
struct DroppedConnection;

type Body = Full<Bytes>;

async fn serve(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Body>, DroppedConnection> {
    let n = state.requests.fetch_add(1, Ordering::Relaxed);
    let seed = state.config.seed;
    let request_id = ids::stripe_id("req", ids::mix(seed ^ ids::mix(n)), 14);
    let stripe_version = req
        .headers()
        .get("stripe-version")
        .and_then(|v| v.to_str().ok())
        .map_or_else(|| API_VERSION.to_owned(), str::to_owned);
    let (parts, body) = req.into_parts();
    let method = parts.method.as_str().to_owned();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().unwrap_or("").to_owned();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };

    let reply = if let Some(admin_path) = path.strip_prefix("/_sim/") {
        let body = read_body(body).await;
        admin(&state, &method, admin_path, &query, &body)
    } else {
        let faults = state.config.faults;
        let h = |tag: u64| ids::mix(seed ^ ids::mix(n ^ tag));
        if ids::chance(h(0xd40f), faults.drop_ppm) {
            return Err(DroppedConnection);
        }
        if ids::chance(h(0x510e), faults.slow_ppm) {
            tokio::time::sleep(Duration::from_millis(u64::from(faults.slow_ms))).await;
        }
        if ids::chance(h(0x5e7f), faults.error_5xx_ppm) {
            Reply::from(ApiError::internal())
        } else {
            let body = read_body(body).await;
            let authorization = header("authorization");
            let stripe_account = header("stripe-account");
            let idempotency_key = header("idempotency-key");
            api::handle(
                &state,
                &ApiRequest {
                    method: &method,
                    path: &path,
                    query: &query,
                    body: &body,
                    authorization: authorization.as_deref(),
                    stripe_account: stripe_account.as_deref(),
                    idempotency_key: idempotency_key.as_deref(),
                    request_id: &request_id,
                    request_no: n,
                },
            )
        }
    };
    let mut b = Response::builder()
        .status(reply.status)
        .header("content-type", "application/json")
        .header("request-id", &request_id)
        .header("stripe-version", stripe_version)
        .header("cache-control", "no-cache, no-store");
    if let Some(retry) = reply.should_retry {
        b = b.header("stripe-should-retry", if retry { "true" } else { "false" });
    }
    if reply.replayed {
        b = b.header("idempotent-replayed", "true");
    }
    if reply.status == 429 && reply.body.contains("\"rate_limit\"") {
        b = b.header("stripe-rate-limited-reason", "global-rate");
    }
    if let Some(k) = header("idempotency-key")
        && method == "POST"
    {
        b = b.header("idempotency-key", k);
    }
    Ok(b.body(Full::new(Bytes::from(reply.body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()))))
}

async fn read_body(body: Incoming) -> Bytes {
    Limited::new(body, 1 << 20)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default()
}

/// `/_sim/…`: the simulator's own control API (no key needed; never part of Stripe's API).
///
/// - `GET /_sim/now` → `{"now": …}`
/// - `POST /_sim/advance` with `seconds=N` or `to=T` → `{"now": …}`
/// - `POST /_sim/speed` with `speed=N`
/// - `POST /_sim/webhook_endpoints/{id}/roll_secret` with `keep_old_for=SECS` (default 86400)
///   → `{"secret": "whsec_…"}`
/// - `POST /_sim/events/{id}/resend` with `webhook_endpoint=we_…`
/// - `GET /_sim/webhooks/stats` → counters
fn admin(state: &Arc<State>, method: &str, path: &str, query: &str, body: &[u8]) -> Reply {
    let handle = SimHandle {
        state: Arc::clone(state),
    };
    let raw = format!("{query}&{}", String::from_utf8_lossy(body));
    let params = match Params::parse(&raw) {
        Ok(p) => p,
        Err(e) => return e.into(),
    };
    let int = |k: &str| params.get(k).and_then(|v| v.parse::<i64>().ok());
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    match (method, segs.as_slice()) {
        ("GET", ["now"]) | ("GET", ["health"]) => {
            Reply::ok(format!("{{\"now\":{}}}", handle.now()))
        }
        ("POST", ["advance"]) => {
            let now = match (int("seconds"), int("to")) {
                (Some(s), _) => handle.advance(s),
                (None, Some(t)) => handle.set_now(t),
                _ => return ApiError::missing_param("seconds").into(),
            };
            Reply::ok(format!("{{\"now\":{now}}}"))
        }
        ("POST", ["speed"]) => match int("speed").and_then(|s| u32::try_from(s).ok()) {
            Some(s) => {
                handle.set_speed(s);
                Reply::ok(format!("{{\"speed\":{s}}}"))
            }
            None => ApiError::missing_param("speed").into(),
        },
        ("POST", ["webhook_endpoints", id, "roll_secret"]) => {
            match handle.roll_webhook_secret(id, int("keep_old_for").unwrap_or(86_400)) {
                Some(s) => Reply::ok(format!("{{\"secret\":\"{s}\"}}")),
                None => ApiError::no_such("webhook endpoint", id, Some("id")).into(),
            }
        }
        ("POST", ["events", id, "resend"]) => {
            let we = params.get("webhook_endpoint").unwrap_or("");
            if handle.resend_event(id, we) {
                Reply::ok("{\"resent\":true}".to_owned())
            } else {
                ApiError::no_such("event or webhook endpoint", id, Some("id")).into()
            }
        }
        ("GET", ["webhooks", "stats"]) => {
            let s = handle.webhook_stats();
            Reply::ok(format!(
                "{{\"scheduled\":{},\"attempts\":{},\"succeeded\":{},\"failed_attempts\":{},\"retries\":{},\"duplicates\":{},\"reordered\":{},\"dropped\":{},\"gave_up\":{}}}",
                s.scheduled,
                s.attempts,
                s.succeeded,
                s.failed_attempts,
                s.retries,
                s.duplicates,
                s.reordered,
                s.dropped,
                s.gave_up
            ))
        }
        _ => ApiError::unrecognized_url(method, &format!("/_sim/{path}")).into(),
    }
}
