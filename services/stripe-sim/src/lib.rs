//! stripe-sim: a deterministic, stateful Stripe account to test, demo and benchmark against.

pub mod http;
pub mod object;
pub mod store;
pub mod world;
