//! The in-memory store the HTTP API serves from.
//!
//! Objects live in one arena; each *partition* — one object kind, one mode (test or live), one
//! account (the platform or a connected account) — keeps them in Stripe's list order and keeps
//! one secondary index per filter value (`("type","charge")`, `("payout","po_…")`, …), so a page
//! of a filtered list costs a B-tree range walk, not a scan.
//!
//! **Order.** Every object has a [`Key`] `(created, seq)`; `seq` is the order in which objects
//! entered the store (the generator's order, then writes made through the API). Lists return
//! keys descending (newest first); ties on `created` are broken by `seq`, so the order, the
//! cursors and `has_more` are all deterministic and consistent with one another. An object
//! written through the API gets `created = sim-now` and a `seq` above every other, so it always
//! sorts as the newest visible object: a poller reading back to its cursor never misses it.
//!
//! **Visibility.** Queries take `now`; objects with `created > now` are invisible.
//!
//! Architecture invariant: the store never reads a clock; callers pass `now` in.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::{Bound, Range};

use crate::object::{ObjectKind, SimObject};

mod json;
pub use json::{replace_at, top_level_i64, top_level_string, top_level_value, value_at};

/// Position of an object in Stripe's list order: `(created, seq)`, ascending = oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    /// Unix seconds, the object's `created`.
    pub created: i64,
    /// Insertion order into the store; unique.
    pub seq: u64,
}

/// Handle of an object inside the store's arena.
pub type ObjIdx = u32;

/// Which list an object belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PartKey {
    /// Object kind.
    pub kind: ObjectKind,
    /// Test (`false`) or live (`true`) data.
    pub livemode: bool,
    /// `None` = the platform account; `Some("acct_…")` = a connected account.
    pub account: Option<String>,
}

/// One stored object.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Object kind.
    pub kind: ObjectKind,
    /// Stripe id.
    pub id: String,
    /// Order key.
    pub key: Key,
    /// Owning connected account, `None` for the platform.
    pub account: Option<String>,
    /// Test or live.
    pub livemode: bool,
    /// Filter values by parameter name.
    pub filters: Vec<(&'static str, String)>,
    /// Balance transactions: `available_on`.
    pub available_on: Option<i64>,
    /// Balance transactions: `net` and `currency` (for `/v1/balance`).
    pub net: Option<(i64, String)>,
    json: String,
    /// Balance transactions: byte range of the top-level `status` value (a JSON string).
    status_span: Option<Range<usize>>,
}

impl Entry {
    /// The object's JSON as stored (balance transactions: with the stored `status`).
    pub fn raw_json(&self) -> &str {
        &self.json
    }

    /// Appends the JSON as the API renders it at `now` (a balance transaction's `status` is
    /// `pending` before `available_on` and `available` from then on).
    pub fn render_into(&self, now: i64, out: &mut String) {
        match (&self.status_span, self.available_on) {
            (Some(span), Some(available_on)) => {
                out.push_str(&self.json[..span.start]);
                out.push_str(if available_on <= now {
                    "\"available\""
                } else {
                    "\"pending\""
                });
                out.push_str(&self.json[span.end..]);
            }
            _ => out.push_str(&self.json),
        }
    }

    /// The JSON as rendered at `now`.
    pub fn render(&self, now: i64) -> String {
        let mut s = String::with_capacity(self.json.len() + 4);
        self.render_into(now, &mut s);
        s
    }

    /// First value of a filter.
    pub fn filter(&self, name: &str) -> Option<&str> {
        self.filters
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    fn has_filter(&self, name: &str, value: &str) -> bool {
        self.filters.iter().any(|(n, v)| *n == name && v == value)
    }
}

#[derive(Debug, Default)]
struct Partition {
    primary: BTreeMap<Key, ObjIdx>,
    index: HashMap<(&'static str, String), BTreeMap<Key, ObjIdx>>,
}

impl Partition {
    fn add(&mut self, key: Key, idx: ObjIdx, filters: &[(&'static str, String)]) {
        self.primary.insert(key, idx);
        for (name, value) in filters {
            self.index
                .entry((name, value.clone()))
                .or_default()
                .insert(key, idx);
        }
    }
}

/// A condition of a list query on filter values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cond {
    /// The object has filter `name` equal to one of the values (served from the index).
    AnyOf(&'static str, Vec<String>),
    /// The object has filter `name` matching a pattern with `*` wildcards (`invoice.*`).
    Glob(&'static str, String),
    /// The object does not have filter `name` equal to this value.
    Not(&'static str, String),
}

impl Cond {
    fn matches(&self, e: &Entry) -> bool {
        match self {
            Cond::AnyOf(name, values) => values.iter().any(|v| e.has_filter(name, v)),
            Cond::Glob(name, pattern) => e
                .filters
                .iter()
                .any(|(n, v)| n == name && glob_match(pattern, v)),
            Cond::Not(name, value) => !e.has_filter(name, value),
        }
    }
}

/// `*` matches any run of characters; everything else is literal.
pub fn glob_match(pattern: &str, s: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == s;
    }
    let (first, rest) = match parts.split_first() {
        Some(x) => x,
        None => return false,
    };
    let Some(mut tail) = s.strip_prefix(first) else {
        return false;
    };
    let (last, middle) = match rest.split_last() {
        Some(x) => x,
        None => return false,
    };
    for part in middle {
        match tail.find(part) {
            Some(pos) => tail = &tail[pos + part.len()..],
            None => return false,
        }
    }
    tail.len() >= last.len() && tail.ends_with(last)
}

/// Pagination cursor of a list query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    /// First page (newest objects).
    None,
    /// Objects older than this id.
    StartingAfter(String),
    /// Objects newer than this id.
    EndingBefore(String),
}

/// A list query against one partition.
#[derive(Debug, Clone)]
pub struct ListQuery {
    /// Which list.
    pub part: PartKey,
    /// 1–100.
    pub limit: usize,
    /// Pagination cursor.
    pub cursor: Cursor,
    /// Inclusive lower bound on `created`.
    pub created_min: i64,
    /// Inclusive upper bound on `created` (the caller folds sim-now in).
    pub created_max: i64,
    /// Filter conditions, all of which must hold.
    pub conds: Vec<Cond>,
}

/// One page of a list, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Objects, newest first.
    pub items: Vec<ObjIdx>,
    /// Whether more objects exist past this page in the paging direction.
    pub has_more: bool,
}

/// Why a list query failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// The cursor id does not name an object of this list.
    #[error("No such object: '{0}'")]
    CursorNotFound(String),
}

/// The store: every object, its order, its indexes.
#[derive(Debug, Default)]
pub struct Store {
    entries: Vec<Entry>,
    by_id: HashMap<String, ObjIdx>,
    parts: HashMap<PartKey, Partition>,
    events: BTreeMap<Key, ObjIdx>,
    accounts: HashSet<String>,
    next_seq: u64,
}

impl Store {
    /// Builds a store from objects in the generator's order (which breaks ties on `created`).
    pub fn from_objects(objects: impl IntoIterator<Item = SimObject>) -> Store {
        let mut store = Store::default();
        for o in objects {
            store.insert(o);
        }
        store
    }

    /// Number of objects.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds one object; it sorts after every object already stored with the same `created`.
    /// An id already present replaces nothing: the new object gets a fresh entry and the id
    /// then resolves to it.
    pub fn insert(&mut self, o: SimObject) -> ObjIdx {
        let SimObject {
            kind,
            id,
            created,
            account,
            livemode,
            mut filters,
            available_on,
            json,
        } = o;
        let key = Key {
            created,
            seq: self.next_seq,
        };
        self.next_seq += 1;
        add_derived_filters(kind, &json, &mut filters);
        let (status_span, net) = if kind == ObjectKind::BalanceTransaction {
            let span =
                top_level_value(&json, "status").filter(|r| json[r.clone()].starts_with('"'));
            let net =
                top_level_value(&json, "net").and_then(|r| json[r].trim().parse::<i64>().ok());
            let currency = top_level_string(&json, "currency");
            (span, net.zip(currency))
        } else {
            (None, None)
        };
        if let Some(a) = &account {
            self.accounts.insert(a.clone());
        }
        if kind == ObjectKind::Account {
            self.accounts.insert(id.clone());
        }
        let idx = ObjIdx::try_from(self.entries.len()).unwrap_or(ObjIdx::MAX);
        let part = PartKey {
            kind,
            livemode,
            // Connected accounts are listed by the platform (`GET /v1/accounts`).
            account: if kind == ObjectKind::Account {
                None
            } else {
                account.clone()
            },
        };
        self.parts.entry(part).or_default().add(key, idx, &filters);
        if kind == ObjectKind::Event {
            self.events.insert(key, idx);
        }
        self.by_id.insert(id.clone(), idx);
        self.entries.push(Entry {
            kind,
            id,
            key,
            account,
            livemode,
            filters,
            available_on,
            net,
            json,
            status_span,
        });
        idx
    }

    /// The next `seq` an inserted object will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// An object by handle.
    pub fn get(&self, idx: ObjIdx) -> Option<&Entry> {
        self.entries.get(idx as usize)
    }

    /// An object by id.
    pub fn lookup(&self, id: &str) -> Option<(ObjIdx, &Entry)> {
        let idx = *self.by_id.get(id)?;
        Some((idx, self.get(idx)?))
    }

    /// Whether `acct_…` is a connected account known to the store.
    pub fn has_account(&self, account: &str) -> bool {
        self.accounts.contains(account)
    }

    /// Every event by order key, oldest first (for webhook dispatch).
    pub fn events_after(&self, after: Option<Key>) -> impl Iterator<Item = (Key, ObjIdx)> + '_ {
        let lo = match after {
            Some(k) => Bound::Excluded(k),
            None => Bound::Unbounded,
        };
        self.events
            .range((lo, Bound::Unbounded))
            .map(|(k, i)| (*k, *i))
    }

    /// Replaces an object's JSON (the filters are changed separately with [`Store::set_filter`]).
    pub fn set_json(&mut self, idx: ObjIdx, json: String) {
        if let Some(e) = self.entries.get_mut(idx as usize) {
            if e.kind == ObjectKind::BalanceTransaction {
                e.status_span =
                    top_level_value(&json, "status").filter(|r| json[r.clone()].starts_with('"'));
            }
            e.json = json;
        }
    }

    /// Moves a balance transaction's `available_on` (as Stripe may while it is pending: its
    /// status and `/v1/balance` follow the new time). Returns false for anything else, or when
    /// the stored JSON has no numeric top-level `available_on` to rewrite.
    pub fn set_available_on(&mut self, idx: ObjIdx, available_on: i64) -> bool {
        let Some(e) = self.entries.get_mut(idx as usize) else {
            return false;
        };
        if e.kind != ObjectKind::BalanceTransaction
            || e.available_on.is_none()
            || top_level_i64(&e.json, "available_on").is_none()
        {
            return false;
        }
        let mut json = std::mem::take(&mut e.json);
        replace_at(&mut json, &["available_on"], &available_on.to_string());
        e.available_on = Some(available_on);
        self.set_json(idx, json); // the status span moves with the rewrite
        true
    }

    /// Sets filter `name` to `value` (or removes it with `None`), keeping the indexes true.
    pub fn set_filter(&mut self, idx: ObjIdx, name: &'static str, value: Option<String>) {
        let Some(e) = self.entries.get_mut(idx as usize) else {
            return;
        };
        let part_key = PartKey {
            kind: e.kind,
            livemode: e.livemode,
            account: if e.kind == ObjectKind::Account {
                None
            } else {
                e.account.clone()
            },
        };
        let key = e.key;
        let old: Vec<String> = e
            .filters
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .collect();
        if old.len() == 1 && value.as_deref() == old.first().map(String::as_str) {
            return;
        }
        e.filters.retain(|(n, _)| *n != name);
        if let Some(v) = &value {
            e.filters.push((name, v.clone()));
        }
        let Some(part) = self.parts.get_mut(&part_key) else {
            return;
        };
        for v in old {
            let k = (name, v);
            if let Some(ix) = part.index.get_mut(&k) {
                ix.remove(&key);
                if ix.is_empty() {
                    part.index.remove(&k);
                }
            }
        }
        if let Some(v) = value {
            part.index.entry((name, v)).or_default().insert(key, idx);
        }
    }

    /// Runs a list query.
    pub fn list(&self, q: &ListQuery) -> Result<Page, QueryError> {
        let empty = Page {
            items: Vec::new(),
            has_more: false,
        };
        let cursor_key = match &q.cursor {
            Cursor::None => None,
            Cursor::StartingAfter(id) | Cursor::EndingBefore(id) => {
                let found = self.lookup(id).filter(|(_, e)| {
                    e.kind == q.part.kind
                        && e.livemode == q.part.livemode
                        && (e.kind == ObjectKind::Account || e.account == q.part.account)
                });
                match found {
                    Some((_, e)) => Some(e.key),
                    None => return Err(QueryError::CursorNotFound(id.clone())),
                }
            }
        };
        let Some(part) = self.parts.get(&q.part) else {
            return Ok(empty);
        };
        if q.created_min > q.created_max {
            return Ok(empty);
        }
        let mut lo = Bound::Included(Key {
            created: q.created_min,
            seq: 0,
        });
        let mut hi = Bound::Included(Key {
            created: q.created_max,
            seq: u64::MAX,
        });
        let newest_first = !matches!(q.cursor, Cursor::EndingBefore(_));
        match (&q.cursor, cursor_key) {
            (Cursor::StartingAfter(_), Some(k)) => hi = tighter_hi(hi, k),
            (Cursor::EndingBefore(_), Some(k)) => lo = tighter_lo(lo, k),
            _ => {}
        }
        if range_is_empty(lo, hi) {
            return Ok(empty);
        }
        let want = q.limit.saturating_add(1);
        let accept = |idx: &ObjIdx| {
            self.entries
                .get(*idx as usize)
                .is_some_and(|e| q.conds.iter().all(|c| c.matches(e)))
        };

        // Drive by the most selective indexed condition, if any.
        let driver = q
            .conds
            .iter()
            .filter_map(|c| match c {
                Cond::AnyOf(name, values) => {
                    let maps: Vec<&BTreeMap<Key, ObjIdx>> = values
                        .iter()
                        .filter_map(|v| part.index.get(&(*name, v.clone())))
                        .collect();
                    let size: usize = maps.iter().map(|m| m.len()).sum();
                    Some((size, maps))
                }
                _ => None,
            })
            .min_by_key(|(size, _)| *size);

        let mut got: Vec<(Key, ObjIdx)> = match driver {
            Some((_, maps)) => {
                let mut all = Vec::new();
                for m in maps {
                    take_range(m, lo, hi, newest_first, want, &accept, &mut all);
                }
                if newest_first {
                    all.sort_by_key(|x| std::cmp::Reverse(x.0));
                } else {
                    all.sort_by_key(|x| x.0);
                }
                all.dedup_by_key(|x| x.0);
                all
            }
            None => {
                let mut all = Vec::new();
                take_range(&part.primary, lo, hi, newest_first, want, &accept, &mut all);
                all
            }
        };
        let has_more = got.len() > q.limit;
        got.truncate(q.limit);
        if !newest_first {
            got.reverse();
        }
        Ok(Page {
            items: got.into_iter().map(|(_, i)| i).collect(),
            has_more,
        })
    }

    /// Every visible object of a partition, unpaged, newest first (for `/v1/balance`).
    pub fn scan(&self, part: &PartKey, now: i64) -> impl Iterator<Item = &Entry> + '_ {
        self.parts
            .get(part)
            .into_iter()
            .flat_map(move |p| {
                p.primary
                    .range(
                        ..=Key {
                            created: now,
                            seq: u64::MAX,
                        },
                    )
                    .rev()
            })
            .filter_map(|(_, i)| self.entries.get(*i as usize))
    }
}

fn tighter_hi(hi: Bound<Key>, k: Key) -> Bound<Key> {
    match hi {
        Bound::Included(h) if h < k => Bound::Included(h),
        _ => Bound::Excluded(k),
    }
}

fn tighter_lo(lo: Bound<Key>, k: Key) -> Bound<Key> {
    match lo {
        Bound::Included(l) if l > k => Bound::Included(l),
        _ => Bound::Excluded(k),
    }
}

fn range_is_empty(lo: Bound<Key>, hi: Bound<Key>) -> bool {
    match (lo, hi) {
        (Bound::Included(l), Bound::Included(h)) => l > h,
        (Bound::Included(l), Bound::Excluded(h))
        | (Bound::Excluded(l), Bound::Included(h))
        | (Bound::Excluded(l), Bound::Excluded(h)) => l >= h,
        _ => false,
    }
}

fn take_range(
    m: &BTreeMap<Key, ObjIdx>,
    lo: Bound<Key>,
    hi: Bound<Key>,
    newest_first: bool,
    want: usize,
    accept: &impl Fn(&ObjIdx) -> bool,
    out: &mut Vec<(Key, ObjIdx)>,
) {
    let r = m.range((lo, hi));
    let it: Box<dyn Iterator<Item = (&Key, &ObjIdx)>> = if newest_first {
        Box::new(r.rev())
    } else {
        Box::new(r)
    };
    out.extend(
        it.filter(|(_, i)| accept(i))
            .take(want)
            .map(|(k, i)| (*k, *i)),
    );
}

/// Filters the HTTP API needs that a generator may have left out, read from the JSON.
fn add_derived_filters(kind: ObjectKind, json: &str, filters: &mut Vec<(&'static str, String)>) {
    let derive: &[&'static str] = match kind {
        ObjectKind::Event => &["type"],
        ObjectKind::BalanceTransaction => &["type", "currency", "source"],
        ObjectKind::Invoice => &["customer", "status", "subscription", "collection_method"],
        ObjectKind::InvoicePayment => &["invoice", "status"],
        ObjectKind::CreditNote => &["invoice", "customer"],
        ObjectKind::Charge => &["customer", "payment_intent"],
        ObjectKind::Refund | ObjectKind::Dispute => &["charge", "payment_intent"],
        ObjectKind::Customer => &["email"],
        ObjectKind::Payout => &["status"],
        _ => &[],
    };
    for name in derive {
        if filters.iter().any(|(n, _)| n == name) {
            continue;
        }
        if let Some(v) = top_level_string(json, name) {
            filters.push((name, v));
        }
    }
    if kind == ObjectKind::InvoicePayment
        && !filters.iter().any(|(n, _)| *n == "payment.type")
        && let Some(r) = top_level_value(json, "payment")
    {
        let sub = &json[r];
        if let Some(t) = top_level_string(sub, "type") {
            if let Some(id) = top_level_string(sub, &t) {
                filters.push(("payment.id", id));
            }
            filters.push(("payment.type", t));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scanner_finds_top_level_values_only() {
        let j = r#"{ "a": {"status": "x"}, "s\"k": "v", "status" : "pending", "n": -12, "arr": [1, {"b": "]"}] }"#;
        assert_eq!(top_level_string(j, "status").as_deref(), Some("pending"));
        assert_eq!(top_level_i64(j, "n"), Some(-12));
        assert_eq!(value_at(j, &["a", "status"]).map(|r| &j[r]), Some("\"x\""));
        assert_eq!(
            top_level_value(j, "arr").map(|r| &j[r]),
            Some(r#"[1, {"b": "]"}]"#)
        );
        assert_eq!(top_level_value(j, "missing"), None);
        let mut m = j.to_owned();
        assert!(replace_at(&mut m, &["a", "status"], "\"y\""));
        assert_eq!(top_level_string(&m, "status").as_deref(), Some("pending"));
        assert_eq!(value_at(&m, &["a", "status"]).map(|r| &m[r]), Some("\"y\""));
    }

    #[test]
    fn globs() {
        assert!(glob_match("invoice.*", "invoice.paid"));
        assert!(glob_match("*", "anything"));
        assert!(!glob_match("invoice.*", "invoice_payment.paid"));
        assert!(glob_match("*.paid", "invoice_payment.paid"));
        assert!(glob_match("charge.*.created", "charge.dispute.created"));
        assert!(!glob_match("charge.*.created", "charge.created"));
        assert!(glob_match("invoice.paid", "invoice.paid"));
    }

    fn obj(id: &str, created: i64, ty: &str) -> SimObject {
        SimObject {
            kind: ObjectKind::Event,
            id: id.to_owned(),
            created,
            account: None,
            livemode: false,
            filters: vec![("type", ty.to_owned())],
            available_on: None,
            json: format!(r#"{{"id":"{id}","object":"event","type":"{ty}"}}"#),
        }
    }

    #[test]
    fn pages_both_ways_with_ties() {
        let mut s = Store::default();
        for i in 0..25 {
            let ty = if i % 3 == 0 { "a.x" } else { "b.y" };
            s.insert(obj(&format!("evt_{i:02}"), 100 + i / 4, ty));
        }
        let part = PartKey {
            kind: ObjectKind::Event,
            livemode: false,
            account: None,
        };
        let mut q = ListQuery {
            part,
            limit: 4,
            cursor: Cursor::None,
            created_min: i64::MIN,
            created_max: i64::MAX,
            conds: vec![],
        };
        let mut seen = Vec::new();
        loop {
            let p = s.list(&q).expect("list");
            for i in &p.items {
                seen.push(s.get(*i).expect("entry").id.clone());
            }
            if !p.has_more {
                break;
            }
            let last = seen.last().expect("last").clone();
            q.cursor = Cursor::StartingAfter(last);
        }
        let expected: Vec<String> = (0..25).rev().map(|i| format!("evt_{i:02}")).collect();
        assert_eq!(seen, expected);
        // Back up from the oldest.
        q.cursor = Cursor::EndingBefore("evt_00".into());
        let p = s.list(&q).expect("list");
        let ids: Vec<_> = p
            .items
            .iter()
            .map(|i| s.get(*i).expect("e").id.clone())
            .collect();
        assert_eq!(ids, ["evt_04", "evt_03", "evt_02", "evt_01"]);
        assert!(p.has_more);
        q.conds = vec![Cond::AnyOf("type", vec!["a.x".into()])];
        q.cursor = Cursor::None;
        let p = s.list(&q).expect("list");
        let ids: Vec<_> = p
            .items
            .iter()
            .map(|i| s.get(*i).expect("e").id.clone())
            .collect();
        assert_eq!(ids, ["evt_24", "evt_21", "evt_18", "evt_15"]);
        q.cursor = Cursor::StartingAfter("nope".into());
        assert!(s.list(&q).is_err());
    }
}
