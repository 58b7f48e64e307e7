//! Webhook endpoints and deliveries.
//!
//! A dispatcher task walks the events in `(created, seq)` order as sim-now passes them and
//! schedules one delivery per matching endpoint: same mode, platform events to plain endpoints
//! and connected-account events to `connect` endpoints, `enabled_events` matching, and only
//! events that happened after the endpoint was created. Each delivery is a POST of the event's
//! stored JSON, signed `Stripe-Signature: t=…,v1=…[,v1=…]` (HMAC-SHA256 of `t.body` with each
//! active `whsec_` secret, so two `v1` during a rotation window).
//!
//! Mischief, decided by hashing the seed with the event and endpoint ids: some deliveries are
//! dropped (never attempted; the event stays `delivery_success=false`), some duplicated, some
//! held back so later events overtake them; non-2xx answers and timeouts are retried with
//! exponential backoff up to `max_attempts`, after which the event stays
//! `delivery_success=false`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use sha2::Sha256;

use crate::http::clock::wall_now;
use crate::http::ids;
use crate::http::server::State;
use crate::store::{Key, ObjIdx};

/// A registered webhook endpoint.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    pub(crate) id: String,
    pub(crate) url: String,
    /// Active secrets, newest first, each with the sim time it expires (`None` = never).
    pub(crate) secrets: Vec<(String, Option<i64>)>,
    pub(crate) enabled_events: Vec<String>,
    pub(crate) connect: bool,
    pub(crate) livemode: bool,
    pub(crate) account: Option<String>,
    pub(crate) created: i64,
    /// Events stored from this `seq` on are newer than the endpoint even if `created` ties.
    pub(crate) seq_frontier: u64,
    pub(crate) api_version: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) metadata: Vec<(String, String)>,
}

impl Endpoint {
    pub(crate) fn wants(&self, livemode: bool, account: Option<&str>, ty: &str) -> bool {
        let account_ok = if self.connect {
            account.is_some()
        } else {
            account == self.account.as_deref()
        };
        self.livemode == livemode
            && account_ok
            && self.enabled_events.iter().any(|e| e == "*" || e == ty)
    }

    fn after_creation(&self, key: Key) -> bool {
        key.created > self.created || key.seq >= self.seq_frontier
    }

    /// The JSON Stripe returns for the endpoint (the secret only at creation).
    pub(crate) fn to_json(&self, with_secret: bool) -> String {
        let metadata: serde_json::Map<String, serde_json::Value> = self
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::from(v.clone())))
            .collect();
        let mut m = serde_json::Map::new();
        m.insert("id".into(), self.id.clone().into());
        m.insert("object".into(), "webhook_endpoint".into());
        m.insert("api_version".into(), self.api_version.clone().into());
        m.insert("application".into(), serde_json::Value::Null);
        m.insert("created".into(), self.created.into());
        m.insert("description".into(), self.description.clone().into());
        m.insert("enabled_events".into(), self.enabled_events.clone().into());
        m.insert("livemode".into(), self.livemode.into());
        m.insert("metadata".into(), serde_json::Value::Object(metadata));
        if with_secret && let Some((s, _)) = self.secrets.first() {
            m.insert("secret".into(), s.clone().into());
        }
        m.insert("status".into(), "enabled".into());
        m.insert("url".into(), self.url.clone().into());
        serde_json::Value::Object(m).to_string()
    }
}

/// Counters of webhook deliveries, plus a log of the latest attempts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryStats {
    /// Deliveries scheduled (one per event and endpoint; duplicates not counted).
    pub scheduled: u64,
    /// HTTP attempts made, duplicates and retries included.
    pub attempts: u64,
    /// Attempts answered 2xx.
    pub succeeded: u64,
    /// Attempts answered non-2xx, timed out or refused.
    pub failed_attempts: u64,
    /// Attempts that were retries.
    pub retries: u64,
    /// Extra copies sent.
    pub duplicates: u64,
    /// Deliveries held back to be reordered.
    pub reordered: u64,
    /// Deliveries never attempted by design.
    pub dropped: u64,
    /// Deliveries abandoned after `max_attempts` failures (or whose endpoint was deleted).
    pub gave_up: u64,
    /// The latest attempts, oldest first (bounded by `WebhookConfig::log_capacity`).
    pub log: VecDeque<DeliveryRecord>,
}

/// One HTTP attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    /// `evt_…`
    pub event_id: String,
    /// `we_…`
    pub endpoint_id: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// An extra copy.
    pub duplicate: bool,
    /// HTTP status, `None` for a timeout or connection failure.
    pub status: Option<u16>,
    /// The `Stripe-Signature` header sent.
    pub signature: String,
    /// The exact body sent.
    pub body_len: usize,
}

#[derive(Debug, Clone)]
struct Job {
    event: ObjIdx,
    event_id: String,
    endpoint_id: String,
    attempt: u32,
    duplicate: bool,
}

#[derive(Debug, Default)]
struct EventDelivery {
    pending: u32,
    failed: bool,
}

#[derive(Debug, Default)]
struct HubInner {
    endpoints: Vec<Endpoint>,
    cursor: Option<Key>,
    queue: BTreeMap<(Instant, u64), Job>,
    job_seq: u64,
    in_flight: u32,
    deliveries: HashMap<ObjIdx, EventDelivery>,
    stats: DeliveryStats,
    created: u64,
}

/// Webhook state shared by the API, the dispatcher and the library handle.
#[derive(Debug, Default)]
pub(crate) struct Hub {
    inner: Mutex<HubInner>,
    pub(crate) notify: tokio::sync::Notify,
}

/// Most webhook endpoints per account and mode, as Stripe.
pub(crate) const MAX_ENDPOINTS: usize = 16;

type HmacSha256 = Hmac<Sha256>;

/// `hex(HMAC-SHA256(secret, "{t}.{body}"))`.
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    let Ok(mut mac) = HmacSha256::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, HubInner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts the dispatch cursor after every event visible at `now` (history is not sent).
    pub(crate) fn init_cursor(&self, last_visible: Option<Key>) {
        self.lock().cursor = last_visible;
    }

    /// Registers an endpoint; returns its JSON with the secret. `Err` when 16 exist already.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn create_endpoint(
        &self,
        seed: u64,
        url: String,
        enabled_events: Vec<String>,
        connect: bool,
        livemode: bool,
        account: Option<String>,
        now: i64,
        seq_frontier: u64,
        api_version: Option<String>,
        description: Option<String>,
        metadata: Vec<(String, String)>,
    ) -> Result<Endpoint, String> {
        let mut g = self.lock();
        let same_scope = g
            .endpoints
            .iter()
            .filter(|e| e.livemode == livemode && e.account == account)
            .count();
        if same_scope >= MAX_ENDPOINTS {
            return Err(format!(
                "You have reached the maximum of {MAX_ENDPOINTS} test webhook endpoints."
            ));
        }
        g.created += 1;
        let n = g.created.to_string();
        let id = ids::stripe_id("we", ids::hash(seed, "we", &[&n]), 24);
        let secret = ids::stripe_id("whsec", ids::hash(seed, "whsec", &[&n]), 32);
        let ep = Endpoint {
            id,
            url,
            secrets: vec![(secret, None)],
            enabled_events,
            connect,
            livemode,
            account,
            created: now,
            seq_frontier,
            api_version,
            description,
            metadata,
        };
        g.endpoints.push(ep.clone());
        Ok(ep)
    }

    pub(crate) fn endpoints(&self) -> Vec<Endpoint> {
        self.lock().endpoints.clone()
    }

    pub(crate) fn delete_endpoint(&self, id: &str) -> Option<Endpoint> {
        let mut g = self.lock();
        let pos = g.endpoints.iter().position(|e| e.id == id)?;
        Some(g.endpoints.remove(pos))
    }

    /// Rolls an endpoint's secret; the old one keeps signing until sim time `old_expires`.
    pub(crate) fn roll_secret(&self, seed: u64, id: &str, old_expires: i64) -> Option<String> {
        let mut g = self.lock();
        g.created += 1;
        let n = g.created.to_string();
        let ep = g.endpoints.iter_mut().find(|e| e.id == id)?;
        for s in &mut ep.secrets {
            s.1 = Some(s.1.map_or(old_expires, |e| e.min(old_expires)));
        }
        let secret = ids::stripe_id("whsec", ids::hash(seed, "whsec", &[&n]), 32);
        ep.secrets.insert(0, (secret.clone(), None));
        Some(secret)
    }

    /// How many endpoints want an event (its `pending_webhooks`).
    pub(crate) fn matching_count(&self, livemode: bool, account: Option<&str>, ty: &str) -> usize {
        self.lock()
            .endpoints
            .iter()
            .filter(|e| e.wants(livemode, account, ty))
            .count()
    }

    pub(crate) fn stats(&self) -> DeliveryStats {
        self.lock().stats.clone()
    }

    /// Nothing queued, nothing in flight.
    pub(crate) fn idle(&self) -> bool {
        let g = self.lock();
        g.queue.is_empty() && g.in_flight == 0
    }

    /// The dispatch cursor.
    pub(crate) fn cursor(&self) -> Option<Key> {
        self.lock().cursor
    }

    /// Queues a delivery of one event to one endpoint now (as `stripe events resend`).
    pub(crate) fn resend(&self, event: ObjIdx, event_id: &str, endpoint_id: &str) -> bool {
        let mut g = self.lock();
        if !g.endpoints.iter().any(|e| e.id == endpoint_id) {
            return false;
        }
        let d = g.deliveries.entry(event).or_default();
        d.pending += 1;
        g.stats.scheduled += 1;
        push_job(
            &mut g,
            Instant::now(),
            Job {
                event,
                event_id: event_id.to_owned(),
                endpoint_id: endpoint_id.to_owned(),
                attempt: 1,
                duplicate: false,
            },
        );
        drop(g);
        self.notify.notify_one();
        true
    }
}

fn push_job(g: &mut HubInner, due: Instant, job: Job) {
    g.job_seq += 1;
    let seq = g.job_seq;
    g.queue.insert((due, seq), job);
}

/// Schedules deliveries for events that became visible; returns events whose
/// `delivery_success` filter must be set to false.
fn scan_new_events(state: &State) -> Vec<ObjIdx> {
    let now = state.clock.now();
    let cfg = &state.config.webhooks;
    let seed = state.config.seed;
    let store = state.read_store();
    let mut g = state.hub.lock();
    let mut mark = Vec::new();
    let mut last = g.cursor;
    let wall = Instant::now();
    let batch: Vec<(Key, ObjIdx)> = store
        .events_after(g.cursor)
        .take_while(|(k, _)| k.created <= now)
        .take(20_000)
        .collect();
    for (key, idx) in batch {
        last = Some(key);
        if g.endpoints.is_empty() {
            continue;
        }
        let Some(e) = store.get(idx) else { continue };
        let ty = e.filter("type").unwrap_or("");
        let targets: Vec<String> = g
            .endpoints
            .iter()
            .filter(|ep| ep.wants(e.livemode, e.account.as_deref(), ty) && ep.after_creation(key))
            .map(|ep| ep.id.clone())
            .collect();
        for ep_id in targets {
            g.stats.scheduled += 1;
            let h = |tag: &str| ids::hash(seed, tag, &[&e.id, &ep_id]);
            let d = g.deliveries.entry(idx).or_default();
            if ids::chance(h("drop"), cfg.drop_ppm) {
                d.failed = true;
                g.stats.dropped += 1;
                mark.push(idx);
                continue;
            }
            d.pending += 1;
            mark.push(idx);
            let mut delay = u64::from(cfg.delay_ms);
            if cfg.jitter_ms > 0 {
                delay += h("jitter") % (u64::from(cfg.jitter_ms) + 1);
            }
            if ids::chance(h("reorder"), cfg.reorder_ppm) {
                delay += u64::from(cfg.reorder_delay_ms);
                g.stats.reordered += 1;
            }
            let job = Job {
                event: idx,
                event_id: e.id.clone(),
                endpoint_id: ep_id.clone(),
                attempt: 1,
                duplicate: false,
            };
            if ids::chance(h("dup"), cfg.duplicate_ppm) {
                g.stats.duplicates += 1;
                let extra = h("dupdelay") % (u64::from(cfg.jitter_ms) + 50);
                push_job(
                    &mut g,
                    wall + Duration::from_millis(delay + extra),
                    Job {
                        duplicate: true,
                        ..job.clone()
                    },
                );
            }
            push_job(&mut g, wall + Duration::from_millis(delay), job);
        }
    }
    g.cursor = last;
    mark
}

/// The dispatcher: finds newly visible events, starts due deliveries, sleeps until the next
/// tick, the next due delivery or a notification.
pub(crate) async fn run_dispatcher(state: Arc<State>) {
    let tick = Duration::from_millis(u64::from(state.config.webhooks.tick_ms.max(1)));
    loop {
        let mark = scan_new_events(&state);
        if !mark.is_empty() {
            let mut store = state.write_store();
            for idx in mark {
                store.set_filter(idx, "delivery_success", Some("false".into()));
            }
        }
        let next_due = start_due(&state);
        let sleep_for = next_due.map_or(tick, |d| {
            d.saturating_duration_since(Instant::now()).min(tick)
        });
        tokio::select! {
            () = state.shutdown.cancelled() => break,
            () = tokio::time::sleep(sleep_for) => {}
            () = state.hub.notify.notified() => {}
        }
    }
}

/// Spawns every due job while under the in-flight cap; returns when the next job is due.
fn start_due(state: &Arc<State>) -> Option<Instant> {
    let max = state.config.webhooks.max_in_flight.max(1);
    let mut g = state.hub.lock();
    let now = Instant::now();
    while g.in_flight < max {
        let Some((&(due, seq), _)) = g.queue.first_key_value() else {
            break;
        };
        if due > now {
            break;
        }
        let Some(job) = g.queue.remove(&(due, seq)) else {
            break;
        };
        g.in_flight += 1;
        let st = Arc::clone(state);
        tokio::spawn(async move { deliver(st, job).await });
    }
    if g.in_flight >= max {
        return None;
    }
    g.queue.first_key_value().map(|(&(due, _), _)| due)
}

async fn deliver(state: Arc<State>, job: Job) {
    let cfg = &state.config.webhooks;
    let now_sim = state.clock.now();
    let endpoint = state
        .hub
        .lock()
        .endpoints
        .iter()
        .find(|e| e.id == job.endpoint_id)
        .cloned();
    let body = state
        .read_store()
        .get(job.event)
        .map(|e| Bytes::from(e.raw_json().to_owned()));
    let (status, signature, body_len) = match (&endpoint, body) {
        (Some(ep), Some(body)) => {
            let t = if cfg.sign_with_sim_time {
                now_sim
            } else {
                wall_now()
            };
            let mut header = format!("t={t}");
            for (secret, expires) in &ep.secrets {
                if expires.is_none_or(|x| x > now_sim) {
                    header.push_str(",v1=");
                    header.push_str(&sign(secret, t, &body));
                }
            }
            let len = body.len();
            let timeout = Duration::from_millis(u64::from(cfg.timeout_ms.max(1)));
            let status = tokio::time::timeout(timeout, post(&ep.url, body, &header))
                .await
                .ok()
                .and_then(Result::ok);
            (status, header, len)
        }
        _ => (None, String::new(), 0),
    };
    let endpoint_gone = endpoint.is_none();
    let ok = status.is_some_and(|s| (200..300).contains(&s));
    let mut set_filter: Option<Option<String>> = None;
    {
        let mut g = state.hub.lock();
        g.in_flight = g.in_flight.saturating_sub(1);
        if !endpoint_gone {
            g.stats.attempts += 1;
            if job.attempt > 1 {
                g.stats.retries += 1;
            }
            if ok {
                g.stats.succeeded += 1;
            } else {
                g.stats.failed_attempts += 1;
            }
            if g.stats.log.len() >= cfg.log_capacity.max(1) {
                g.stats.log.pop_front();
            }
            g.stats.log.push_back(DeliveryRecord {
                event_id: job.event_id.clone(),
                endpoint_id: job.endpoint_id.clone(),
                attempt: job.attempt,
                duplicate: job.duplicate,
                status,
                signature,
                body_len,
            });
        }
        if !job.duplicate {
            let retry = !ok && !endpoint_gone && job.attempt < cfg.max_attempts.max(1);
            if retry {
                let shift = (job.attempt - 1).min(20);
                let backoff = u64::from(cfg.retry_base_ms)
                    .saturating_mul(1u64 << shift)
                    .min(u64::from(cfg.retry_max_ms));
                push_job(
                    &mut g,
                    Instant::now() + Duration::from_millis(backoff),
                    Job {
                        attempt: job.attempt + 1,
                        ..job.clone()
                    },
                );
            } else {
                if !ok {
                    g.stats.gave_up += 1;
                }
                let d = g.deliveries.entry(job.event).or_default();
                d.pending = d.pending.saturating_sub(1);
                if !ok {
                    d.failed = true;
                }
                if d.pending == 0 && !d.failed {
                    set_filter = Some(None);
                } else if d.failed {
                    set_filter = Some(Some("false".into()));
                }
            }
        }
    }
    if let Some(v) = set_filter {
        state
            .write_store()
            .set_filter(job.event, "delivery_success", v);
    }
    state.hub.notify.notify_one();
}

/// POSTs a webhook; returns the HTTP status.
async fn post(url: &str, body: Bytes, signature: &str) -> Result<u16, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("only http:// webhook URLs are supported: {url}"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let stream = tokio::net::TcpStream::connect(authority)
        .await
        .map_err(|e| e.to_string())?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = hyper::Request::post(path)
        .header(hyper::header::HOST, authority)
        .header(
            hyper::header::CONTENT_TYPE,
            "application/json; charset=utf-8",
        )
        .header(
            hyper::header::USER_AGENT,
            "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        )
        .header("Stripe-Signature", signature)
        .body(Full::new(body))
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    Ok(resp.status().as_u16())
}
