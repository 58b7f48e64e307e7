//! The discrete-event simulation: a priority queue of timed actions over live state. Each action
//! mutates the state, emits events and balance transactions (facts) in time order, and
//! accumulates the ground truth. Objects leave the live state (and are emitted in their final
//! state) once no action remains scheduled for them.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};

use super::entities::*;
use super::json::Obj;
use super::money::{
    self, CURRENCIES, DAY, DISPUTE_FEE, EUR, USD, add_business_days, convert, cross_rate,
    scale_step,
};
use super::render::{self, Ctx, Ver};
use super::rng::{Rng, mix64};
use super::truth::{AccountCurrency, Balance, GroundTruth, Totals};
use super::{API_VERSION, LEGACY_API_VERSION, WorldConfig};
use crate::object::{ObjectKind, SimObject};

mod balances;
mod connect;
mod credit_notes;
mod customers;
mod disputes;
mod finish;
mod invoices;
mod payments;
mod payouts;

const HOUR: i64 = 3600;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Flow {
    SubInvoice,
    OneOffInvoice,
    SendInvoice,
    Charge,
    ConnectCharge,
    Transfer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Finalize,
    Attempt { ok: bool },
    PayPartial,
    CreditPre { per_mille: i64 },
    CreditPost { full: bool },
    Void,
    Uncollectible,
    Overdue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Act {
    Day,
    Flow(Flow),
    Inv(u64, Step),
    /// Refund of a payment; amount in presentment minor units, 0 = all that is left.
    Refund(u64, i64),
    DisputeOpen(u64),
    DisputeEvidence(u64),
    DisputeClose(u64),
    Payout(usize),
    PayoutReconciled(u64),
    PayoutTransit(u64),
    PayoutPaid(u64),
    PayoutFail(u64),
    PayoutCancel(u64),
}

#[derive(Debug, Clone, Copy)]
enum Req {
    Auto,
    Api,
}

struct BalState {
    acct: usize,
    cur: usize,
    /// Balance transactions not yet paid out (available or still pending).
    waiting: Vec<Bt>,
    pending: i64,
    available: i64,
    maturing: BinaryHeap<Reverse<(i64, i64)>>,
    /// (t, Δpending, Δavailable), unsorted until the end.
    hist: Vec<(i64, i64, i64)>,
    matured: bool,
}

const CATALOG: [(&str, i64, bool); 6] = [
    ("Ledgerline Starter", 2_900, true),
    ("Ledgerline Team", 9_900, true),
    ("Ledgerline Enterprise", 49_900, true),
    ("Additional seat", 1_500, true),
    ("Onboarding package", 150_000, false),
    ("Consulting hour", 20_000, false),
];

/// Tax rate (basis points) per presentment currency.
const TAX_BPS: [i64; 6] = [825, 2000, 2000, 1000, 1300, 500];

const ADJECTIVES: [&str; 24] = [
    "Acme", "Blue", "Bright", "Cedar", "Delta", "Ember", "Falcon", "Granite", "Harbor", "Indigo",
    "Juniper", "Kestrel", "Lumen", "Maple", "Nimbus", "Orbit", "Pioneer", "Quartz", "River",
    "Summit", "Tidal", "Union", "Vertex", "Willow",
];
const NOUNS: [&str; 20] = [
    "Analytics",
    "Bakery",
    "Logistics",
    "Robotics",
    "Studios",
    "Foods",
    "Health",
    "Labs",
    "Systems",
    "Media",
    "Energy",
    "Textiles",
    "Software",
    "Dental",
    "Travel",
    "Outfitters",
    "Capital",
    "Clinics",
    "Motors",
    "Games",
];
const SUFFIXES: [&str; 7] = ["Inc.", "LLC", "GmbH", "Ltd", "SAS", "KK", "B.V."];
const CARDS: [(&str, &str); 4] = [
    ("visa", "4242"),
    ("mastercard", "4444"),
    ("amex", "8431"),
    ("visa", "1881"),
];

const B62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn b62(mut v: u64, n: usize, out: &mut String) {
    let mut buf = [b'0'; 16];
    let n = n.min(16);
    for slot in buf.iter_mut().take(n).rev() {
        let d = usize::try_from(v % 62).unwrap_or(0);
        *slot = B62.get(d).copied().unwrap_or(b'0');
        v /= 62;
    }
    for b in buf.iter().take(n) {
        out.push(char::from(*b));
    }
}

fn cur_code(cur: usize) -> &'static str {
    CURRENCIES.get(cur).map_or("usd", |c| c.code)
}

fn cur_of(cur: usize) -> &'static money::Cur {
    CURRENCIES.get(cur).unwrap_or(&CURRENCIES[USD])
}

/// Renders `obj` with `render` into a new buffer of `cap` bytes.
fn rendered<T>(cap: usize, obj: &T, ctx: &Ctx, render: fn(&mut String, &T, &Ctx)) -> String {
    let mut out = String::with_capacity(cap);
    render(&mut out, obj, ctx);
    out
}

/// The current JSON of a live object (empty if it is no longer live).
fn live_json<T>(
    cap: usize,
    obj: Option<&T>,
    ctx: &Ctx,
    render: fn(&mut String, &T, &Ctx),
) -> String {
    obj.map_or_else(
        || String::with_capacity(cap),
        |o| rendered(cap, o, ctx, render),
    )
}

pub(crate) struct Sim {
    cfg: WorldConfig,
    rng: Rng,
    now: i64,
    salt: u64,
    id_seq: u64,
    qseq: u64,
    queue: BinaryHeap<Reverse<(i64, u64, Act)>>,
    out: VecDeque<SimObject>,
    finished: bool,
    truth: Option<GroundTruth>,
    facts: u64,
    events: u64,
    bts: u64,
    accounts: Vec<Account>,
    application: String,
    bals: Vec<BalState>,
    customers: Vec<Customer>,
    customer_cap: usize,
    flows_per_day: u64,
    products: Vec<Option<Product>>,
    prices: BTreeMap<(usize, usize), Price>,
    tax_rates: Vec<String>,
    next_key: u64,
    invoices: BTreeMap<u64, Invoice>,
    payments: BTreeMap<u64, Payment>,
    disputes: BTreeMap<u64, Dispute>,
    payouts: BTreeMap<u64, Payout>,
    usd_nano: [i64; 6],
    totals: BTreeMap<(usize, usize), Totals>,
    receivables: BTreeMap<(usize, String, usize), i64>,
    transfers: BTreeMap<(usize, usize), i64>,
    app_fees: BTreeMap<(usize, usize), i64>,
    cn_seq: u64,
}

impl Sim {
    pub(crate) fn new(cfg: WorldConfig) -> Sim {
        let salt = mix64(cfg.seed ^ 0x5EED_1ED6_E11E_0003);
        let mut rng = Rng::new(cfg.seed);
        let days = u64::from(cfg.period_days());
        let per_day = cfg.facts / days.max(1);
        let flows_per_day = (per_day.saturating_sub(17) / 7).max(1);
        let customer_cap = usize::try_from((cfg.facts / 40).clamp(5, 100_000)).unwrap_or(5);
        let mut tag = String::new();
        b62(mix64(cfg.seed ^ 0xACC7), 10, &mut tag);
        let mut accounts = vec![Account {
            id: None,
            tag,
            name: "Ledgerline Sim Platform".to_owned(),
            email: "finance@platform.example.com".to_owned(),
            bank: String::new(),
        }];
        for k in 0..cfg.connected_accounts {
            let mut tag = String::new();
            b62(mix64(cfg.seed ^ 0xC0_0000 ^ u64::from(k)), 10, &mut tag);
            let mut id = String::from("acct_1");
            id.push_str(&tag);
            b62(mix64(u64::from(k) ^ salt), 5, &mut id);
            let n = usize::try_from(k).unwrap_or(0);
            let name = format!(
                "{} {} Partners",
                ADJECTIVES
                    .get(n % ADJECTIVES.len())
                    .copied()
                    .unwrap_or("Acme"),
                NOUNS.get((n * 7) % NOUNS.len()).copied().unwrap_or("Labs")
            );
            accounts.push(Account {
                id: Some(id),
                tag,
                name,
                email: format!("owner{k}@connected.example.com"),
                bank: String::new(),
            });
        }
        let mut app = String::from("ca_");
        b62(mix64(salt ^ 0xA9), 11, &mut app);
        b62(mix64(salt ^ 0xAA), 5, &mut app);
        let mut usd_nano = [0i64; 6];
        for (i, c) in CURRENCIES.iter().enumerate() {
            usd_nano[i] = c.usd_nano;
        }
        let mut sim = Sim {
            rng: Rng::new(0),
            now: cfg.start,
            salt,
            id_seq: 0,
            qseq: 0,
            queue: BinaryHeap::new(),
            out: VecDeque::new(),
            finished: false,
            truth: None,
            facts: 0,
            events: 0,
            bts: 0,
            accounts,
            application: app,
            bals: Vec::new(),
            customers: Vec::new(),
            customer_cap,
            flows_per_day,
            products: vec![None; CATALOG.len()],
            prices: BTreeMap::new(),
            tax_rates: Vec::new(),
            next_key: 0,
            invoices: BTreeMap::new(),
            payments: BTreeMap::new(),
            disputes: BTreeMap::new(),
            payouts: BTreeMap::new(),
            usd_nano,
            totals: BTreeMap::new(),
            receivables: BTreeMap::new(),
            transfers: BTreeMap::new(),
            app_fees: BTreeMap::new(),
            cn_seq: 0,
            cfg,
        };
        std::mem::swap(&mut sim.rng, &mut rng);
        for i in 0..CURRENCIES.len() {
            let id = sim.new_id("txr", 0);
            let _ = i;
            sim.tax_rates.push(id);
        }
        for a in 0..sim.accounts.len() {
            let bank = sim.new_id("ba", a);
            if let Some(acc) = sim.accounts.get_mut(a) {
                acc.bank = bank;
            }
            let curs: &[usize] = if a == 0 { &[USD, EUR] } else { &[USD] };
            for &cur in curs {
                sim.bals.push(BalState {
                    acct: a,
                    cur,
                    waiting: Vec::new(),
                    pending: 0,
                    available: 0,
                    maturing: BinaryHeap::new(),
                    hist: Vec::new(),
                    matured: false,
                });
            }
        }
        // Connected accounts exist from the start (served by /v1/accounts; not facts).
        for a in 1..sim.accounts.len() {
            let mut json = String::new();
            let created = sim.cfg.start - 90 * DAY;
            if let Some(acc) = sim.accounts.get(a) {
                render::render_account(&mut json, acc, created);
                let id = acc.id.clone().unwrap_or_default();
                sim.out.push_back(SimObject {
                    kind: ObjectKind::Account,
                    id,
                    created,
                    account: None,
                    livemode: sim.cfg.livemode,
                    filters: Vec::new(),
                    available_on: None,
                    json,
                });
            }
        }
        let start = sim.cfg.start;
        sim.schedule(start, Act::Day);
        sim
    }

    pub(crate) fn truth(&self) -> Option<&GroundTruth> {
        self.truth.as_ref()
    }

    pub(crate) fn take_truth(&mut self) -> GroundTruth {
        while !self.finished {
            self.step();
        }
        self.out.clear();
        self.truth.take().unwrap_or_default()
    }

    pub(crate) fn next_object(&mut self) -> Option<SimObject> {
        loop {
            if let Some(o) = self.out.pop_front() {
                return Some(o);
            }
            if self.finished {
                return None;
            }
            self.step();
        }
    }

    // ------------------------------------------------------------------ plumbing

    fn schedule(&mut self, t: i64, act: Act) {
        self.qseq += 1;
        self.queue.push(Reverse((t.max(self.now), self.qseq, act)));
    }

    fn key(&mut self) -> u64 {
        self.next_key += 1;
        self.next_key
    }

    fn new_id(&mut self, prefix: &str, acct: usize) -> String {
        self.id_seq += 1;
        let mut s = String::with_capacity(prefix.len() + 26);
        s.push_str(prefix);
        s.push_str("_1");
        b62(mix64(self.id_seq ^ self.salt), 11, &mut s);
        if let Some(a) = self.accounts.get(acct) {
            s.push_str(&a.tag);
        }
        b62(mix64(self.id_seq.wrapping_add(self.salt)), 2, &mut s);
        s
    }

    fn ver(&self) -> Ver {
        match self.cfg.legacy_api_until {
            Some(until) if self.now < until => Ver::Legacy,
            _ => Ver::Current,
        }
    }

    fn ctx(&self) -> Ctx {
        Ctx {
            now: self.now,
            livemode: self.cfg.livemode,
            ver: self.ver(),
        }
    }

    fn final_ctx(&self) -> Ctx {
        Ctx {
            now: self.now,
            livemode: self.cfg.livemode,
            ver: Ver::Current,
        }
    }

    fn acct_id(&self, acct: usize) -> Option<String> {
        self.accounts.get(acct).and_then(|a| a.id.clone())
    }

    fn tot(&mut self, acct: usize, cur: usize) -> &mut Totals {
        self.totals.entry((acct, cur)).or_default()
    }

    fn event(&mut self, acct: usize, ty: &'static str, object: &str, prev: Option<&str>, req: Req) {
        let id = self.new_id("evt", acct);
        let account = self.acct_id(acct);
        let mut s = String::with_capacity(object.len() + 320);
        {
            let mut o = Obj::new(&mut s);
            if let Some(a) = &account {
                o.s("account", a);
            }
            o.s(
                "api_version",
                if self.ver() == Ver::Legacy {
                    LEGACY_API_VERSION
                } else {
                    API_VERSION
                },
            );
            o.i("created", self.now);
            {
                let mut d = o.obj("data");
                d.raw("object", object);
                if let Some(p) = prev {
                    d.raw("previous_attributes", p);
                }
                d.end();
            }
            o.s("id", &id)
                .b("livemode", self.cfg.livemode)
                .s("object", "event")
                .i("pending_webhooks", 0);
            match req {
                Req::Auto => {
                    o.raw("request", r#"{"id":null,"idempotency_key":null}"#);
                }
                Req::Api => {
                    let mut rid = String::from("req_");
                    b62(self.rng.next_u64(), 11, &mut rid);
                    b62(self.rng.next_u64(), 3, &mut rid);
                    let a = self.rng.next_u64();
                    let b = self.rng.next_u64();
                    let key = format!(
                        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
                        a >> 32,
                        (a >> 16) & 0xffff,
                        a & 0xfff,
                        0x8000 | (b >> 48 & 0x3fff),
                        b & 0xffff_ffff_ffff
                    );
                    let mut r = o.obj("request");
                    r.s("id", &rid).s("idempotency_key", &key);
                    r.end();
                }
            }
            o.s("type", ty);
            o.end();
        }
        self.facts += 1;
        self.events += 1;
        self.out.push_back(SimObject {
            kind: ObjectKind::Event,
            id,
            created: self.now,
            account,
            livemode: self.cfg.livemode,
            filters: vec![("type", ty.to_owned())],
            available_on: None,
            json: s,
        });
    }

    fn emit(
        &mut self,
        kind: ObjectKind,
        id: String,
        created: i64,
        acct: usize,
        filters: Vec<(&'static str, String)>,
        json: String,
    ) {
        let account = self.acct_id(acct);
        self.out.push_back(SimObject {
            kind,
            id,
            created,
            account,
            livemode: self.cfg.livemode,
            filters,
            available_on: None,
            json,
        });
    }

    // ------------------------------------------------------------------ main loop

    fn step(&mut self) {
        let Some(Reverse((t, _, act))) = self.queue.pop() else {
            self.finish();
            return;
        };
        self.now = t;
        self.run(act);
        if self.facts >= self.cfg.facts {
            self.finish();
        }
    }

    fn run(&mut self, act: Act) {
        match act {
            Act::Day => self.day(),
            Act::Flow(f) => self.flow(f),
            Act::Inv(k, s) => self.invoice_step(k, s),
            Act::Refund(k, amount) => {
                self.release_payment(k);
                self.refund(k, amount, None);
                self.maybe_final_payment(k);
            }
            Act::DisputeOpen(k) => {
                self.release_payment(k);
                self.dispute_open(k);
                self.maybe_final_payment(k);
            }
            Act::DisputeEvidence(k) => self.dispute_evidence(k),
            Act::DisputeClose(k) => self.dispute_close(k),
            Act::Payout(b) => self.payout(b),
            Act::PayoutReconciled(k) => self.payout_reconciled(k),
            Act::PayoutTransit(k) => self.payout_transit(k),
            Act::PayoutPaid(k) => self.payout_paid(k),
            Act::PayoutFail(k) => self.payout_fail(k),
            Act::PayoutCancel(k) => self.payout_cancel(k),
        }
    }

    fn day(&mut self) {
        let now = self.now;
        // exchange rates of the day: within ±0.4 % of the base mid rate
        for (i, c) in CURRENCIES.iter().enumerate() {
            if i == USD {
                continue;
            }
            let drift = self.rng.range(-4_000, 4_000);
            if let Some(r) = self.usd_nano.get_mut(i) {
                *r = money::to_i64(money::div_half_even(
                    i128::from(c.usd_nano) * i128::from(1_000_000 + drift),
                    1_000_000,
                ));
            }
        }
        self.advance_balances(now);
        for a in 0..self.accounts.len() {
            let matured = self.bals.iter().any(|b| b.acct == a && b.matured);
            if !matured {
                continue;
            }
            let rows: Vec<(usize, i64, i64)> = self
                .bals
                .iter()
                .filter(|b| b.acct == a)
                .map(|b| (b.cur, b.pending, b.available))
                .collect();
            let mut json = String::new();
            render::render_balance(&mut json, &rows, &self.ctx());
            self.event(a, "balance.available", &json, None, Req::Auto);
        }
        for b in &mut self.bals {
            b.matured = false;
        }
        let n = (self.flows_per_day * u64::try_from(self.rng.range(800, 1200)).unwrap_or(1000)
            + self.rng.below(1000))
            / 1000;
        let connect = self.accounts.len() > 1;
        let weights = [
            330,
            100,
            130,
            250,
            if connect { 140 } else { 0 },
            if connect { 50 } else { 0 },
        ];
        let flows = [
            Flow::SubInvoice,
            Flow::OneOffInvoice,
            Flow::SendInvoice,
            Flow::Charge,
            Flow::ConnectCharge,
            Flow::Transfer,
        ];
        for _ in 0..n {
            let f = flows
                .get(self.rng.weighted(&weights))
                .copied()
                .unwrap_or(Flow::Charge);
            let at = now + i64::try_from(self.rng.below(86_400)).unwrap_or(0);
            self.schedule(at, Act::Flow(f));
        }
        if money::is_business_day(now) {
            for b in 0..self.bals.len() {
                let at = now + 2 * HOUR + i64::try_from(b).unwrap_or(0) * 60;
                self.schedule(at, Act::Payout(b));
            }
        }
        self.schedule(now + DAY, Act::Day);
    }

    fn flow(&mut self, f: Flow) {
        match f {
            Flow::SubInvoice | Flow::OneOffInvoice | Flow::SendInvoice => self.new_invoice(f),
            Flow::Charge => self.new_charge(),
            Flow::ConnectCharge => self.new_connect_charge(),
            Flow::Transfer => self.new_transfer(),
        }
    }
}
