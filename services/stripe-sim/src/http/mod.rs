//! The HTTP API of the simulator: Stripe's `/v1` subset served from a [`crate::store::Store`]
//! under a simulated clock, with Stripe's keys, permissions, errors, limits, idempotency and
//! webhooks. See `services/stripe-sim/README.md` for the endpoint and permission tables.

pub mod api;
pub mod auth;
pub mod clock;
pub mod config;
pub mod error;
pub mod ids;
pub(crate) mod limits;
pub mod params;
pub mod server;
pub mod synthetic;
pub mod webhooks;
pub(crate) mod writes;

pub use auth::Permission;
pub use config::{
    API_VERSION, ApiKey, ClockConfig, DEFAULT_LIVE_KEY, DEFAULT_TEST_KEY, Faults, RateLimits,
    SimConfig, WebhookConfig,
};
pub use server::{RegisteredEndpoint, SimError, SimHandle, SimServer, run};
pub use webhooks::{DeliveryRecord, DeliveryStats, sign};
