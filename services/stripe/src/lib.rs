//! Ledgerline's Stripe client and webhook verification.
//!
//! - [`Client`]: secret or restricted keys ([`ApiKey`], never printed), `Stripe-Version`
//!   pinned, `Stripe-Account`, a client-side rate limiter, retries with backoff and jitter
//!   that obey `Stripe-Should-Retry`, pagination, errors that say what to do.
//! - [`permissions`]: the manifest of the permissions each feature needs and the start-up probe.
//! - [`webhook`]: `Stripe-Signature` verification.
//!
//! Architecture invariant: knows Stripe's HTTP API, never Kafka or the database.

pub mod client;
pub mod error;
pub mod key;
pub mod permissions;
pub mod ratelimit;
pub mod tls;
pub mod webhook;

pub use client::{
    Client, ClientConfig, ClientStats, DEFAULT_STRIPE_VERSION, ListPage, RawObject, Response,
};
pub use error::StripeError;
pub use key::{ApiKey, KeyKind, Mode};
pub use permissions::{Feature, PermissionReport, PermissionStatus, probe};
pub use tls::TlsConfig;
pub use webhook::{WebhookError, WebhookSecret, WebhookVerifier, signature_header};
