//! Configuration of the simulated Stripe HTTP API.
//!
//! Every rate is an integer in parts per million (ppm) so that no float touches the simulator
//! (`10_000` = 1 %). Every random choice is a hash of the seed and a stable input (the request
//! number, the event id and the endpoint id), so the same seed makes the same choices.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use crate::http::auth::Permission;

/// API version the simulator renders and echoes by default.
pub const API_VERSION: &str = "2026-07-29.dahlia";

/// Everything the server needs besides its objects.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Address to bind; `127.0.0.1:0` (the default) picks a free port.
    pub addr: SocketAddr,
    /// Seed of every random choice (ids of created objects, faults, webhook mischief).
    pub seed: u64,
    /// The platform account's id (named in 403 messages).
    pub platform_account: String,
    /// API keys the server accepts.
    pub keys: Vec<ApiKey>,
    /// Requests per second per key; `0` = unlimited.
    pub rate_limits: RateLimits,
    /// The simulated clock.
    pub clock: ClockConfig,
    /// Faults injected into `/v1` requests.
    pub faults: Faults,
    /// Webhook delivery behaviour.
    pub webhooks: WebhookConfig,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            seed: 0,
            platform_account: "acct_1LedgerlineSimPlat".to_owned(),
            keys: vec![
                ApiKey::secret(DEFAULT_TEST_KEY),
                ApiKey::secret(DEFAULT_LIVE_KEY),
            ],
            rate_limits: RateLimits::default(),
            clock: ClockConfig::default(),
            faults: Faults::default(),
            webhooks: WebhookConfig::default(),
        }
    }
}

/// The test-mode secret key configured by default.
pub const DEFAULT_TEST_KEY: &str = "sk_test_ledgerlinesim0000000000000000";
/// The live-mode secret key configured by default.
pub const DEFAULT_LIVE_KEY: &str = "sk_live_ledgerlinesim0000000000000000";

/// One API key. `sk_…` keys may do everything; `rk_…` keys only what `permissions` grants.
/// `livemode` comes from the key: `_live_` in the prefix means live, anything else test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// The key as sent in `Authorization: Bearer …`.
    pub key: String,
    /// Permissions of a restricted key (ignored for `sk_` keys).
    pub permissions: BTreeSet<Permission>,
    /// Per-key rate limit override (requests per second, `0` = unlimited).
    pub rate_limit: Option<u32>,
}

impl ApiKey {
    /// A secret key (`sk_test_…` or `sk_live_…`).
    pub fn secret(key: &str) -> ApiKey {
        ApiKey {
            key: key.to_owned(),
            permissions: BTreeSet::new(),
            rate_limit: None,
        }
    }

    /// A restricted key (`rk_test_…` or `rk_live_…`) with the given permissions.
    pub fn restricted(key: &str, permissions: impl IntoIterator<Item = Permission>) -> ApiKey {
        ApiKey {
            key: key.to_owned(),
            permissions: permissions.into_iter().collect(),
            rate_limit: None,
        }
    }

    /// Whether the key addresses live data.
    pub fn livemode(&self) -> bool {
        self.key.starts_with("sk_live_") || self.key.starts_with("rk_live_")
    }

    /// Whether it is a restricted key.
    pub fn is_restricted(&self) -> bool {
        self.key.starts_with("rk_")
    }
}

/// Per-key request rates, Stripe's defaults (100 r/s live, 25 r/s test).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Requests per second for live keys; `0` = unlimited.
    pub live_per_sec: u32,
    /// Requests per second for test keys; `0` = unlimited.
    pub test_per_sec: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            live_per_sec: 100,
            test_per_sec: 25,
        }
    }
}

impl RateLimits {
    /// No limit at all (handy for tests and benches).
    pub fn unlimited() -> RateLimits {
        RateLimits {
            live_per_sec: 0,
            test_per_sec: 0,
        }
    }
}

/// How simulated time moves. `now = start + advanced + speed × wall seconds since start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClockConfig {
    /// Sim-now at start (unix seconds). `None`: the wall clock's now.
    pub start: Option<i64>,
    /// Simulated seconds per wall second; `0` = the clock moves only when advanced.
    pub speed: u32,
}

/// Faults injected into `/v1/…` requests, decided per request before it runs (nothing is
/// stored under an idempotency key for them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Faults {
    /// Share of requests answered `500 api_error` (ppm).
    pub error_5xx_ppm: u32,
    /// Share of requests answered after `slow_ms` (ppm).
    pub slow_ppm: u32,
    /// Delay of a slow answer.
    pub slow_ms: u32,
    /// Share of requests whose connection is closed without an answer (ppm).
    pub drop_ppm: u32,
    /// Share of POST requests answered `429 lock_timeout` (ppm).
    pub lock_timeout_ppm: u32,
}

/// Webhook delivery: timing, retries and mischief.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// How often the dispatcher looks for newly visible events (wall ms).
    pub tick_ms: u32,
    /// Delay before the first attempt (wall ms).
    pub delay_ms: u32,
    /// Extra random delay, uniform in `0..=jitter_ms` per delivery (wall ms).
    pub jitter_ms: u32,
    /// Share of deliveries sent twice (ppm).
    pub duplicate_ppm: u32,
    /// Share of deliveries held back by `reorder_delay_ms` so later events overtake them (ppm).
    pub reorder_ppm: u32,
    /// Hold-back of a reordered delivery (wall ms).
    pub reorder_delay_ms: u32,
    /// Share of deliveries never attempted (the event then stays `delivery_success=false`).
    pub drop_ppm: u32,
    /// Attempts per delivery, the first included (Stripe's sandbox: 4).
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubles each time (wall ms).
    pub retry_base_ms: u32,
    /// Cap of the backoff (wall ms).
    pub retry_max_ms: u32,
    /// An attempt that gets no answer within this counts as failed (wall ms).
    pub timeout_ms: u32,
    /// Deliveries in flight at once, over all endpoints.
    pub max_in_flight: u32,
    /// Signature timestamp `t`: the wall clock (as Stripe, so receivers' 300 s tolerance holds)
    /// or sim-now.
    pub sign_with_sim_time: bool,
    /// How many delivery records [`crate::http::DeliveryStats::log`] keeps (oldest dropped).
    pub log_capacity: usize,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            tick_ms: 20,
            delay_ms: 0,
            jitter_ms: 0,
            duplicate_ppm: 0,
            reorder_ppm: 0,
            reorder_delay_ms: 200,
            drop_ppm: 0,
            max_attempts: 4,
            retry_base_ms: 500,
            retry_max_ms: 30_000,
            timeout_ms: 10_000,
            max_in_flight: 32,
            sign_with_sim_time: false,
            log_capacity: 100_000,
        }
    }
}
