//! Stripe JSON for every simulated object, in the current API version (`2026-07-29.dahlia`) or,
//! for events in the early part of a history when so configured, the legacy `2024-06-20` shape.
//! Key order follows Stripe's own fixtures (`shared/stripe-fixtures/`).

use super::entities::*;
use super::json::{Arr, Obj, write_i64, write_str};
use super::money::{CURRENCIES, write_rate};

/// Which API version an object is rendered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ver {
    Current,
    Legacy,
}

/// What every renderer needs besides the object itself.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx {
    pub(crate) now: i64,
    pub(crate) livemode: bool,
    pub(crate) ver: Ver,
}

pub(crate) const NULL_ADDRESS: &str =
    r#"{"city":null,"country":null,"line1":null,"line2":null,"postal_code":null,"state":null}"#;

fn code(cur: usize) -> &'static str {
    CURRENCIES.get(cur).map_or("usd", |c| c.code)
}

fn empty_list(o: &mut Obj<'_>, key: &str, url: &str) {
    let mut l = o.obj(key);
    l.s("object", "list")
        .raw("data", "[]")
        .b("has_more", false)
        .i("total_count", 0)
        .s("url", url);
    l.end();
}

mod balance;
mod connect;
mod credit_notes;
mod customers;
mod disputes;
mod invoices;
mod payments;
mod payouts;

pub(crate) use balance::*;
pub(crate) use connect::*;
pub(crate) use credit_notes::*;
pub(crate) use customers::*;
pub(crate) use disputes::*;
pub(crate) use invoices::*;
pub(crate) use payments::*;
pub(crate) use payouts::*;
