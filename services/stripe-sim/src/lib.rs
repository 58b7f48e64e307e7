//! stripe-sim: a deterministic, stateful Stripe account to test, demo and benchmark against.

pub mod object;
pub mod world;
