//! Shared helpers for the world tests (included with `#[path]`, not a test target of its own).
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;

use ledgerline_stripe_sim::object::{ObjectKind, SimObject};
use serde_json::Value;

pub(crate) struct Parsed {
    pub(crate) obj: SimObject,
    pub(crate) v: Value,
}

pub(crate) fn parse_all(objects: &[SimObject]) -> Vec<Parsed> {
    objects
        .iter()
        .map(|o| {
            let v: Value = serde_json::from_str(&o.json)
                .unwrap_or_else(|e| panic!("{:?} {} is not JSON: {e}\n{}", o.kind, o.id, o.json));
            Parsed { obj: o.clone(), v }
        })
        .collect()
}

pub(crate) fn of_kind<'a>(
    all: &'a [Parsed],
    kind: ObjectKind,
) -> impl Iterator<Item = &'a Parsed> + 'a {
    all.iter().filter(move |p| p.obj.kind == kind)
}

pub(crate) fn int(v: &Value, k: &str) -> i64 {
    v.get(k)
        .and_then(Value::as_i64)
        .unwrap_or_else(|| panic!("no integer {k} in {v}"))
}

pub(crate) fn str_of<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string {k} in {v}"))
}

pub(crate) fn filter<'a>(o: &'a SimObject, k: &str) -> Option<&'a str> {
    o.filters
        .iter()
        .find(|(fk, _)| *fk == k)
        .map(|(_, v)| v.as_str())
}

/// (account, currency) → Σ.
pub(crate) type Sums = BTreeMap<(Option<String>, String), i64>;
