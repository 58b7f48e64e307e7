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

    fn emit_bt(&mut self, bt: &Bt, payout: Option<&str>) {
        let acct = self.bals.get(bt.bal).map_or(0, |b| b.acct);
        let mut json = String::with_capacity(512);
        let ctx = Ctx {
            now: bt.created,
            livemode: self.cfg.livemode,
            ver: Ver::Current,
        };
        render::render_bt(&mut json, bt, &ctx);
        let mut filters = vec![
            ("type", bt.ty.to_owned()),
            ("source", bt.source.clone()),
            ("currency", cur_code(bt.cur).to_owned()),
        ];
        if let Some(p) = payout {
            filters.push(("payout", p.to_owned()));
        }
        let account = self.acct_id(acct);
        self.out.push_back(SimObject {
            kind: ObjectKind::BalanceTransaction,
            id: bt.id.clone(),
            created: bt.created,
            account,
            livemode: self.cfg.livemode,
            filters,
            available_on: Some(bt.available_on),
            json,
        });
    }

    /// Books a new balance transaction into its balance and the truth. Returns it for the caller
    /// to hand to the payout queue (`waiting`) or emit.
    fn book_bt(&mut self, bt: &Bt) {
        self.facts += 1;
        self.bts += 1;
        let net = bt.net();
        let now = self.now;
        let record = self.cfg.balance_history;
        let (acct, cur) = match self.bals.get_mut(bt.bal) {
            Some(b) => {
                if bt.available_on > now {
                    b.pending += net;
                    b.maturing.push(Reverse((bt.available_on, net)));
                    if record {
                        b.hist.push((now, net, 0));
                        b.hist.push((bt.available_on, -net, net));
                    }
                } else {
                    b.available += net;
                    if record {
                        b.hist.push((now, 0, net));
                    }
                }
                (b.acct, b.cur)
            }
            None => (0, USD),
        };
        let t = self.tot(acct, cur);
        t.net += net;
        for f in &bt.fees {
            *t.fees.entry(f.ty.to_owned()).or_default() += f.amount;
            t.fees_total += f.amount;
        }
    }

    fn wait_bt(&mut self, bt: Bt) {
        self.book_bt(&bt);
        if let Some(b) = self.bals.get_mut(bt.bal) {
            b.waiting.push(bt);
        }
    }

    fn bal_for(&self, acct: usize, presentment: usize) -> usize {
        let want = if acct == 0 && presentment == EUR {
            EUR
        } else {
            USD
        };
        self.bals
            .iter()
            .position(|b| b.acct == acct && b.cur == want)
            .unwrap_or(0)
    }

    fn advance_balances(&mut self, t: i64) {
        for b in &mut self.bals {
            while let Some(Reverse((when, net))) = b.maturing.peek().copied() {
                if when > t {
                    break;
                }
                b.maturing.pop();
                b.pending -= net;
                b.available += net;
                b.matured = true;
            }
        }
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

    // ------------------------------------------------------------------ customers and catalog

    fn pick_customer(&mut self, bank: bool) -> usize {
        let len = self.customers.len();
        let want_new = len < self.customer_cap && (len < 5 || self.rng.chance(250));
        if !want_new && len > 0 {
            for _ in 0..12 {
                let i =
                    usize::try_from(self.rng.below(u64::try_from(len).unwrap_or(1))).unwrap_or(0);
                if self.customers.get(i).is_some_and(|c| c.bank == bank) {
                    return i;
                }
            }
            if len >= self.customer_cap {
                // keep the pool bounded: scan from a random start for a matching customer
                let start =
                    usize::try_from(self.rng.below(u64::try_from(len).unwrap_or(1))).unwrap_or(0);
                if let Some(i) = (0..len)
                    .map(|d| (start + d) % len)
                    .find(|&i| self.customers.get(i).is_some_and(|c| c.bank == bank))
                {
                    return i;
                }
            }
        }
        self.create_customer(bank)
    }

    fn create_customer(&mut self, bank: bool) -> usize {
        let idx = self.customers.len();
        let cur = self.rng.weighted(&money::cur_weights());
        let adj = ADJECTIVES
            .get(usize::try_from(self.rng.below(24)).unwrap_or(0))
            .copied()
            .unwrap_or("Acme");
        let noun = NOUNS
            .get(usize::try_from(self.rng.below(20)).unwrap_or(0))
            .copied()
            .unwrap_or("Labs");
        let suffix = SUFFIXES
            .get(usize::try_from(self.rng.below(7)).unwrap_or(0))
            .copied()
            .unwrap_or("Inc.");
        let name = format!("{adj} {noun} {suffix}");
        let slug = format!("{}{}", adj.to_lowercase(), noun.to_lowercase());
        let email = format!("billing@{slug}{idx}.example.com");
        let company_id = format!("CMP-{:06}", 100_000 + idx);
        let mut prefix = String::new();
        b62(
            mix64(self.salt ^ u64::try_from(idx).unwrap_or(0)),
            8,
            &mut prefix,
        );
        let prefix = prefix.to_uppercase();
        let taxable = self.rng.chance(750);
        let id = self.new_id("cus", 0);
        let c = Customer {
            id: id.clone(),
            name,
            email: email.clone(),
            company_id,
            prefix,
            cur,
            bank,
            taxable,
            created: self.now,
            next_number: 1,
            subscription: None,
        };
        let mut json = String::with_capacity(900);
        render::render_customer(&mut json, &c, &self.final_ctx());
        let snapshot = if self.ver() == Ver::Current {
            json.clone()
        } else {
            let mut s = String::new();
            render::render_customer(&mut s, &c, &self.ctx());
            s
        };
        self.customers.push(c);
        self.emit(
            ObjectKind::Customer,
            id,
            self.now,
            0,
            vec![("email", email)],
            json,
        );
        self.event(0, "customer.created", &snapshot, None, Req::Api);
        idx
    }

    /// The price of catalog product `p` in `cur`, creating product and price on first use.
    fn price(&mut self, p: usize, cur: usize) -> Price {
        if let Some(pr) = self.prices.get(&(p, cur)) {
            return pr.clone();
        }
        let (name, usd_cents, recurring) = CATALOG.get(p).copied().unwrap_or(CATALOG[0]);
        if self.products.get(p).is_some_and(Option::is_none) {
            let id = self.new_id("prod", 0);
            let prod = Product {
                id: id.clone(),
                name,
                created: self.now,
            };
            let mut json = String::new();
            render::render_product(&mut json, &prod, &self.final_ctx());
            self.emit(
                ObjectKind::Product,
                id,
                self.now,
                0,
                Vec::new(),
                json.clone(),
            );
            self.event(0, "product.created", &json, None, Req::Api);
            if let Some(slot) = self.products.get_mut(p) {
                *slot = Some(prod);
            }
        }
        let product = self
            .products
            .get(p)
            .and_then(|x| x.as_ref())
            .map(|x| x.id.clone())
            .unwrap_or_default();
        let c = cur_of(cur);
        let rate = cross_rate(CURRENCIES[USD].usd_nano, c.usd_nano);
        let conv = convert(usd_cents, &CURRENCIES[USD], c, rate);
        let nice = if c.exp == 0 {
            100
        } else {
            money::to_i64(money::pow10(c.exp))
        };
        let unit = (money::to_i64(money::div_half_even(i128::from(conv), i128::from(nice))) * nice)
            .max(nice);
        let id = self.new_id("price", 0);
        let pr = Price {
            id: id.clone(),
            product: product.clone(),
            cur,
            unit_amount: unit,
            recurring,
            created: self.now,
        };
        let mut json = String::new();
        render::render_price(&mut json, &pr, &self.final_ctx());
        self.emit(
            ObjectKind::Price,
            id,
            self.now,
            0,
            vec![
                ("product", product),
                ("currency", cur_code(cur).to_owned()),
                (
                    "type",
                    if recurring { "recurring" } else { "one_time" }.to_owned(),
                ),
            ],
            json.clone(),
        );
        self.event(0, "price.created", &json, None, Req::Api);
        self.prices.insert((p, cur), pr.clone());
        pr
    }

    // ------------------------------------------------------------------ invoices

    fn new_invoice(&mut self, flow: Flow) {
        let bank = flow == Flow::SendInvoice;
        let ci = self.pick_customer(bank);
        let Some(cust) = self.customers.get(ci).cloned() else {
            return;
        };
        let cur = cust.cur;
        let step = cur_of(cur).step;
        let mut items: Vec<(usize, i64)> = Vec::new();
        match flow {
            Flow::SubInvoice => {
                let plan = self.rng.weighted(&[50, 35, 15]);
                items.push((plan, 1));
                if self.rng.chance(400) {
                    items.push((3, self.rng.range(1, 10)));
                }
            }
            Flow::OneOffInvoice => {
                if self.rng.chance(400) {
                    items.push((4, 1));
                } else {
                    items.push((5, self.rng.range(1, 20)));
                }
            }
            _ => {
                items.push((self.rng.weighted(&[40, 40, 20]), 1));
                if self.rng.chance(500) {
                    items.push((5, self.rng.range(1, 12)));
                }
            }
        }
        let discount_pct = if self.rng.chance(150) {
            Some(if self.rng.chance(500) { 10 } else { 25 })
        } else {
            None
        };
        let tax_bps = if cust.taxable {
            TAX_BPS.get(cur).copied().unwrap_or(0)
        } else {
            0
        };
        let key = self.key();
        let id = self.new_id("in", 0);
        let mut lines = Vec::new();
        for (p, qty) in items {
            let pr = self.price(p, cur);
            let amount = pr.unit_amount * qty;
            let discount = discount_pct.map_or(0, |pct| scale_step(amount, pct, 100, step));
            let tax = if tax_bps > 0 {
                scale_step(amount - discount, tax_bps, 10_000, step)
            } else {
                0
            };
            let name = CATALOG.get(p).map_or("Item", |c| c.0);
            lines.push(Line {
                id: self.new_id("il", 0),
                item_id: if flow == Flow::SubInvoice {
                    self.new_id("si", 0)
                } else {
                    self.new_id("ii", 0)
                },
                price: pr.id.clone(),
                product: pr.product.clone(),
                description: if qty == 1 {
                    name.to_owned()
                } else {
                    format!("{qty} × {name}")
                },
                quantity: qty,
                unit_amount: pr.unit_amount,
                amount,
                discount,
                tax,
            });
        }
        let subtotal: i64 = lines.iter().map(|l| l.amount).sum();
        let discount: i64 = lines.iter().map(|l| l.discount).sum();
        let tax: i64 = lines.iter().map(|l| l.tax).sum();
        let (subscription, billing_reason) = if flow == Flow::SubInvoice {
            match &cust.subscription {
                Some(s) => (Some(s.clone()), "subscription_cycle"),
                None => {
                    let s = self.new_id("sub", 0);
                    if let Some(c) = self.customers.get_mut(ci) {
                        c.subscription = Some(s.clone());
                    }
                    (Some(s), "subscription_create")
                }
            }
        } else {
            (None, "manual")
        };
        let discount_id = if discount_pct.is_some() {
            Some(self.new_id("di", 0))
        } else {
            None
        };
        let now = self.now;
        let inv = Invoice {
            id: id.clone(),
            cust: ci,
            customer: cust.id.clone(),
            customer_name: cust.name.clone(),
            customer_email: cust.email.clone(),
            account_name: self
                .accounts
                .first()
                .map(|a| a.name.clone())
                .unwrap_or_default(),
            cur,
            created: now,
            number: None,
            status: InvStatus::Draft,
            send_invoice: bank,
            billing_reason,
            subscription,
            description: if flow == Flow::SubInvoice {
                None
            } else {
                Some("Services as agreed".to_owned())
            },
            lines,
            discount_id,
            tax_rate_id: if tax_bps > 0 {
                self.tax_rates.get(cur).cloned()
            } else {
                None
            },
            tax_bps,
            subtotal,
            discount,
            tax,
            total: subtotal - discount + tax,
            amount_due: subtotal - discount + tax,
            amount_paid: 0,
            amount_remaining: subtotal - discount + tax,
            pre_cn: 0,
            post_cn: 0,
            attempt_count: 0,
            next_payment_attempt: None,
            planned_attempt: None,
            due_date: None,
            period_start: now,
            period_end: if flow == Flow::SubInvoice {
                now + 30 * DAY
            } else {
                now
            },
            finalized_at: None,
            paid_at: None,
            voided_at: None,
            uncollectible_at: None,
            payments: Vec::new(),
            open_payment: None,
            paying_payment: None,
            last_charge: None,
            last_payment_intent: None,
            pay_by_charge_ref: self.rng.chance(150),
            pending: 0,
        };
        // The invoice's fate, decided now: every step is scheduled up front.
        let fin = now + HOUR;
        let mut steps: Vec<(i64, Step)> = vec![(fin, Step::Finalize)];
        let days = |r: &mut Rng, lo: i64, hi: i64| r.range(lo, hi) * DAY + r.range(0, 6 * HOUR);
        if bank {
            let due = fin + 30 * DAY;
            match self.rng.weighted(&[600, 150, 100, 60, 90]) {
                0 => steps.push((due, Step::Overdue)),
                1 => {
                    steps.push((due, Step::Overdue));
                    let late = due + days(&mut self.rng, 2, 10);
                    steps.push((late, Step::Attempt { ok: true }));
                }
                2 => {
                    let t = fin + days(&mut self.rng, 5, 15);
                    steps.push((t, Step::Void));
                }
                3 => {
                    steps.push((due, Step::Overdue));
                    steps.push((due + 30 * DAY, Step::Uncollectible));
                }
                _ => {
                    let t = fin + days(&mut self.rng, 2, 10);
                    steps.push((t, Step::CreditPre { per_mille: 250 }));
                    steps.push((due, Step::Overdue));
                }
            }
        } else {
            let pay = fin + 60;
            match self.rng.weighted(&[680, 80, 50, 40, 30, 50, 50, 20]) {
                0 => steps.push((pay, Step::Attempt { ok: true })),
                1 => {
                    steps.push((pay, Step::Attempt { ok: false }));
                    steps.push((pay + 3 * DAY, Step::Attempt { ok: true }));
                }
                2 => {
                    steps.push((pay, Step::PayPartial));
                    steps.push((pay + 5 * DAY, Step::Attempt { ok: true }));
                }
                3 => {
                    steps.push((pay, Step::Attempt { ok: false }));
                    steps.push((pay + 7 * DAY, Step::Void));
                }
                4 => {
                    steps.push((pay, Step::Attempt { ok: false }));
                    steps.push((pay + 14 * DAY, Step::Uncollectible));
                }
                5 => {
                    steps.push((fin + 30 * 60, Step::CreditPre { per_mille: 200 }));
                    steps.push((pay + HOUR, Step::Attempt { ok: true }));
                }
                6 => {
                    steps.push((pay, Step::Attempt { ok: true }));
                    let t = pay + days(&mut self.rng, 5, 20);
                    steps.push((t, Step::CreditPost { full: false }));
                }
                _ => {
                    steps.push((pay, Step::Attempt { ok: true }));
                    let t = pay + days(&mut self.rng, 3, 10);
                    steps.push((t, Step::CreditPost { full: true }));
                }
            }
        }
        let mut inv = inv;
        inv.pending = u32::try_from(steps.len()).unwrap_or(0);
        if !bank {
            inv.planned_attempt = steps
                .iter()
                .find(|(_, s)| matches!(s, Step::Attempt { .. } | Step::PayPartial))
                .map(|(t, _)| *t);
        }
        let mut json = String::with_capacity(4096);
        render::render_invoice(&mut json, &inv, &self.ctx());
        self.invoices.insert(key, inv);
        for (t, s) in steps {
            self.schedule(t, Act::Inv(key, s));
        }
        let req = if flow == Flow::SubInvoice {
            Req::Auto
        } else {
            Req::Api
        };
        self.event(0, "invoice.created", &json, None, req);
    }

    fn invoice_json(&self, k: u64) -> String {
        let mut json = String::with_capacity(4096);
        if let Some(inv) = self.invoices.get(&k) {
            render::render_invoice(&mut json, inv, &self.ctx());
        }
        json
    }

    fn invoice_step(&mut self, k: u64, step: Step) {
        let Some(inv) = self.invoices.get_mut(&k) else {
            return;
        };
        inv.pending = inv.pending.saturating_sub(1);
        let status = inv.status;
        match step {
            Step::Finalize => self.finalize(k),
            Step::Attempt { ok } if status == InvStatus::Open => self.attempt(k, ok),
            Step::PayPartial if status == InvStatus::Open => self.pay_partial(k),
            Step::CreditPre { per_mille } if status == InvStatus::Open => {
                self.credit_pre(k, per_mille)
            }
            Step::CreditPost { full } if status == InvStatus::Paid => self.credit_post(k, full),
            Step::Void if status == InvStatus::Open => self.void(k),
            Step::Uncollectible if status == InvStatus::Open => self.uncollectible(k),
            Step::Overdue if status == InvStatus::Open => {
                let json = self.invoice_json(k);
                self.event(0, "invoice.overdue", &json, None, Req::Auto);
            }
            _ => {}
        }
        if self.invoices.get(&k).is_some_and(|i| i.pending == 0) {
            self.final_invoice(k);
        }
    }

    fn finalize(&mut self, k: u64) {
        let now = self.now;
        let ip_id = self.new_id("inpay", 0);
        let Some(inv) = self.invoices.get(&k) else {
            return;
        };
        let ci = inv.cust;
        let number = match self.customers.get_mut(ci) {
            Some(c) => {
                let n = format!("{}-{:04}", c.prefix, c.next_number);
                c.next_number += 1;
                n
            }
            None => format!("SIM-{k:06}"),
        };
        let Some(inv) = self.invoices.get_mut(&k) else {
            return;
        };
        inv.status = InvStatus::Open;
        inv.number = Some(number);
        inv.finalized_at = Some(now);
        if inv.send_invoice {
            inv.due_date = Some(now + 30 * DAY);
        } else {
            inv.next_payment_attempt = inv.planned_attempt;
        }
        inv.payments.push(InvoicePayment {
            id: ip_id,
            invoice: inv.id.clone(),
            cur: inv.cur,
            amount_requested: inv.total,
            amount_paid: None,
            is_default: true,
            status: "open",
            payment: None,
            created: now,
            paid_at: None,
            canceled_at: None,
        });
        let (cur, total, tax, cus, send) = (
            inv.cur,
            inv.total,
            inv.tax,
            inv.customer.clone(),
            inv.send_invoice,
        );
        *self.receivables.entry((0, cus, cur)).or_default() += total;
        let t = self.tot(0, cur);
        t.invoiced_total += total;
        t.invoiced_revenue += total - tax;
        t.invoiced_tax += tax;
        let json = self.invoice_json(k);
        let req = if send { Req::Api } else { Req::Auto };
        self.event(0, "invoice.finalized", &json, None, req);
        if send {
            self.event(0, "invoice.sent", &json, None, Req::Api);
        }
    }

    /// Creates a PaymentIntent (and its `payment_intent.created` event).
    fn new_payment(
        &mut self,
        acct: usize,
        cur: usize,
        amount: i64,
        cust: Option<usize>,
        invoice: Option<String>,
        description: Option<String>,
    ) -> u64 {
        let key = self.key();
        let pi_id = self.new_id("pi", acct);
        let pm_id = self.new_id("pm", acct);
        let (customer, name, email) = match cust.and_then(|c| self.customers.get(c)) {
            Some(c) => (
                Some(c.id.clone()),
                Some(c.name.clone()),
                Some(c.email.clone()),
            ),
            None => (None, None, None),
        };
        let (brand, last4) = CARDS
            .get(usize::try_from(self.rng.below(4)).unwrap_or(0))
            .copied()
            .unwrap_or(CARDS[0]);
        let bal = self.bal_for(acct, cur);
        let p = Payment {
            acct,
            pi_id,
            pm_id,
            latest_charge: None,
            charge_created: self.now,
            bt_id: None,
            cur,
            amount,
            amount_refunded: 0,
            status: PiStatus::RequiresPaymentMethod,
            created: self.now,
            canceled_at: None,
            customer,
            name,
            email,
            description,
            invoice,
            failed_attempts: 0,
            dispute: None,
            application: None,
            app_fee_id: None,
            app_fee_amount: None,
            brand,
            last4,
            bal,
            rate: None,
            settled: 0,
            pending: 0,
        };
        let mut json = String::with_capacity(2048);
        render::render_payment_intent(&mut json, &p, &self.ctx());
        self.payments.insert(key, p);
        let req = if acct == 0 { Req::Auto } else { Req::Api };
        self.event(acct, "payment_intent.created", &json, None, req);
        key
    }

    fn charge_json(&self, p: &Payment, ctx: &Ctx) -> String {
        let mut json = String::with_capacity(3072);
        let view = ChargeView {
            id: p.latest_charge.as_deref().unwrap_or(""),
            payment: Some(p),
            amount: p.amount,
            cur: p.cur,
            created: p.charge_created,
            succeeded: p.status == PiStatus::Succeeded,
            bt_id: p.bt_id.as_deref(),
            source_transfer: None,
        };
        render::render_charge(&mut json, &view, ctx);
        json
    }

    fn pi_json(&self, k: u64) -> String {
        let mut json = String::with_capacity(2048);
        if let Some(p) = self.payments.get(&k) {
            render::render_payment_intent(&mut json, p, &self.ctx());
        }
        json
    }

    /// A failed card attempt: a failed charge (final at once), `payment_intent.payment_failed`.
    fn charge_fail(&mut self, k: u64) {
        let Some(acct) = self.payments.get(&k).map(|p| p.acct) else {
            return;
        };
        let ch = self.new_id("ch", acct);
        let now = self.now;
        let Some(p) = self.payments.get_mut(&k) else {
            return;
        };
        p.latest_charge = Some(ch.clone());
        p.charge_created = now;
        p.failed_attempts += 1;
        let p = p.clone();
        let json = self.charge_json(&p, &self.ctx());
        let final_json = self.charge_json(&p, &self.final_ctx());
        let mut filters = vec![("payment_intent", p.pi_id.clone())];
        if let Some(c) = &p.customer {
            filters.push(("customer", c.clone()));
        }
        self.emit(ObjectKind::Charge, ch, now, acct, filters, final_json);
        self.event(acct, "charge.failed", &json, None, Req::Auto);
        let pi = self.pi_json(k);
        self.event(acct, "payment_intent.payment_failed", &pi, None, Req::Auto);
    }

    /// A succeeded charge with its balance transaction; returns the settled amount.
    fn charge_success(&mut self, k: u64, app_fee_pct: Option<i64>) {
        let Some(p) = self.payments.get(&k) else {
            return;
        };
        let (acct, cur, amount, bal) = (p.acct, p.cur, p.amount, p.bal);
        let ch = self.new_id("ch", acct);
        let txn = self.new_id("txn", acct);
        let now = self.now;
        let settle = self.bals.get(bal).map_or(USD, |b| b.cur);
        let rate = if settle == cur {
            None
        } else {
            Some(cross_rate(
                self.usd_nano.get(cur).copied().unwrap_or(1),
                self.usd_nano.get(settle).copied().unwrap_or(1),
            ))
        };
        let settled = rate.map_or(amount, |r| convert(amount, cur_of(cur), cur_of(settle), r));
        let sfee = money::stripe_fee(settled, cur_of(settle), rate.is_some());
        let mut fees = vec![Fee {
            amount: sfee,
            application: None,
            description: "Stripe processing fees",
            ty: "stripe_fee",
        }];
        if settle == EUR {
            fees.push(Fee {
                amount: money::fee_tax(sfee),
                application: None,
                description: "VAT",
                ty: "tax",
            });
        }
        let mut app = None;
        if let Some(pct) = app_fee_pct {
            let pres = scale_step(amount, pct, 100, cur_of(cur).step);
            let app_settled = rate.map_or(pres, |r| convert(pres, cur_of(cur), cur_of(settle), r));
            fees.push(Fee {
                amount: app_settled,
                application: Some(self.application.clone()),
                description: "Application fee",
                ty: "application_fee",
            });
            app = Some((pres, app_settled, self.new_id("fee", 0)));
        }
        let description = self.payments.get(&k).and_then(|p| p.description.clone());
        let bt = Bt {
            id: txn.clone(),
            bal,
            cur: settle,
            amount: settled,
            fees,
            created: now,
            available_on: add_business_days(now, 2),
            description: Some(description.unwrap_or_else(|| "Payment".to_owned())),
            rate,
            source: ch.clone(),
            ty: "charge",
            category: "charge",
        };
        let available_on = bt.available_on;
        self.wait_bt(bt);
        let has_invoice = {
            let Some(p) = self.payments.get_mut(&k) else {
                return;
            };
            p.latest_charge = Some(ch.clone());
            p.charge_created = now;
            p.bt_id = Some(txn);
            p.status = PiStatus::Succeeded;
            p.rate = rate;
            p.settled = settled;
            if let Some((pres, _, fee_id)) = &app {
                p.application = Some(self.application.clone());
                p.app_fee_id = Some(fee_id.clone());
                p.app_fee_amount = Some(*pres);
            }
            p.invoice.is_some()
        };
        {
            let t = self.tot(acct, cur);
            t.charges += amount;
            if !has_invoice {
                t.uninvoiced_sales += amount;
            }
        }
        {
            let t = self.tot(acct, settle);
            t.charges_settled += settled;
            if !has_invoice {
                t.uninvoiced_sales_settled += settled;
            }
        }
        let Some(p) = self.payments.get(&k).cloned() else {
            return;
        };
        let json = self.charge_json(&p, &self.ctx());
        self.event(acct, "charge.succeeded", &json, None, Req::Auto);
        let pi = self.pi_json(k);
        self.event(acct, "payment_intent.succeeded", &pi, None, Req::Auto);
        if let Some((_, app_settled, fee_id)) = app {
            // The platform's side of the application fee.
            let ptxn = self.new_id("txn", 0);
            let pbal = self.bal_for(0, settle);
            let pbt = Bt {
                id: ptxn.clone(),
                bal: pbal,
                cur: settle,
                amount: app_settled,
                fees: Vec::new(),
                created: now,
                available_on,
                description: Some("Application fee".to_owned()),
                rate: None,
                source: fee_id.clone(),
                ty: "application_fee",
                category: "platform_earning",
            };
            self.wait_bt(pbt);
            let account = self.acct_id(acct).unwrap_or_default();
            let fee = AppFee {
                id: fee_id.clone(),
                account,
                application: self.application.clone(),
                amount: app_settled,
                cur: settle,
                charge: ch.clone(),
                created: now,
                bt_id: ptxn,
            };
            let mut fj = String::with_capacity(800);
            render::render_application_fee(&mut fj, &fee, &self.ctx());
            self.emit(
                ObjectKind::ApplicationFee,
                fee_id,
                now,
                0,
                vec![("charge", ch)],
                fj.clone(),
            );
            self.event(0, "application_fee.created", &fj, None, Req::Auto);
            self.tot(0, settle).application_fees_earned += app_settled;
            *self.app_fees.entry((acct, settle)).or_default() += app_settled;
        }
    }

    fn hold_payment(&mut self, k: u64) {
        if let Some(p) = self.payments.get_mut(&k) {
            p.pending += 1;
        }
    }

    fn release_payment(&mut self, k: u64) {
        if let Some(p) = self.payments.get_mut(&k) {
            p.pending = p.pending.saturating_sub(1);
        }
    }

    fn maybe_final_payment(&mut self, k: u64) {
        if self.payments.get(&k).is_some_and(|p| p.pending == 0) {
            self.final_payment(k);
        }
    }

    fn final_payment(&mut self, k: u64) {
        let Some(p) = self.payments.remove(&k) else {
            return;
        };
        let ctx = self.final_ctx();
        let mut pij = String::with_capacity(2048);
        render::render_payment_intent(&mut pij, &p, &ctx);
        let mut filters = Vec::new();
        if let Some(c) = &p.customer {
            filters.push(("customer", c.clone()));
        }
        self.emit(
            ObjectKind::PaymentIntent,
            p.pi_id.clone(),
            p.created,
            p.acct,
            filters.clone(),
            pij,
        );
        if p.status == PiStatus::Succeeded
            && let Some(ch) = &p.latest_charge
        {
            let json = self.charge_json(&p, &ctx);
            filters.push(("payment_intent", p.pi_id.clone()));
            self.emit(
                ObjectKind::Charge,
                ch.clone(),
                p.charge_created,
                p.acct,
                filters,
                json,
            );
        }
    }

    /// Pays `amount` of invoice `k` with payment `pk` (already succeeded) through invoice
    /// payment `ip_idx` and emits `invoice_payment.paid`.
    fn apply_invoice_payment(&mut self, k: u64, pk: u64, amount: i64, default: bool) {
        let now = self.now;
        let ctx = self.ctx();
        let Some(p) = self.payments.get(&pk) else {
            return;
        };
        let (pi, ch) = (p.pi_id.clone(), p.latest_charge.clone().unwrap_or_default());
        let new_ip = if default {
            None
        } else {
            Some(self.new_id("inpay", 0))
        };
        let Some(inv) = self.invoices.get_mut(&k) else {
            return;
        };
        let payment = if inv.pay_by_charge_ref {
            (PayRef::Charge, ch.clone())
        } else {
            (PayRef::PaymentIntent, pi.clone())
        };
        let idx = if let Some(id) = new_ip {
            inv.payments.push(InvoicePayment {
                id,
                invoice: inv.id.clone(),
                cur: inv.cur,
                amount_requested: amount,
                amount_paid: None,
                is_default: false,
                status: "open",
                payment: None,
                created: now,
                paid_at: None,
                canceled_at: None,
            });
            inv.payments.len() - 1
        } else {
            inv.payments
                .iter()
                .position(|ip| ip.is_default)
                .unwrap_or(0)
        };
        inv.amount_paid += amount;
        inv.amount_remaining -= amount;
        inv.last_charge = Some(ch);
        inv.last_payment_intent = Some(pi);
        let remaining = inv.amount_remaining;
        if let Some(ip) = inv.payments.get_mut(idx) {
            ip.amount_paid = Some(amount);
            ip.amount_requested = amount;
            ip.status = "paid";
            ip.payment = Some(payment);
            ip.paid_at = Some(now);
        }
        if !default && let Some(d) = inv.payments.iter_mut().find(|ip| ip.is_default) {
            d.amount_requested = remaining;
        }
        let (cur, cus) = (inv.cur, inv.customer.clone());
        let mut ipj = String::with_capacity(512);
        if let Some(ip) = inv.payments.get(idx) {
            render::render_invoice_payment(&mut ipj, ip, &ctx);
        }
        *self.receivables.entry((0, cus, cur)).or_default() -= amount;
        self.tot(0, cur).invoice_payments += amount;
        if self.ver() == Ver::Current {
            self.event(0, "invoice_payment.paid", &ipj, None, Req::Auto);
        }
    }

    fn mark_paid(&mut self, k: u64) {
        let now = self.now;
        let Some(inv) = self.invoices.get_mut(&k) else {
            return;
        };
        inv.status = InvStatus::Paid;
        inv.paid_at = Some(now);
        inv.next_payment_attempt = None;
        let json = self.invoice_json(k);
        self.event(0, "invoice.paid", &json, None, Req::Auto);
        self.event(0, "invoice.payment_succeeded", &json, None, Req::Auto);
    }

    fn attempt(&mut self, k: u64, ok: bool) {
        let Some(inv) = self.invoices.get(&k) else {
            return;
        };
        let (cur, remaining, ci, id, open) = (
            inv.cur,
            inv.amount_remaining,
            inv.cust,
            inv.id.clone(),
            inv.open_payment,
        );
        let pk = match open {
            Some(pk) => pk,
            None => {
                let desc = Some(format!(
                    "Payment for Invoice {}",
                    inv.number.clone().unwrap_or_default()
                ));
                let pk = self.new_payment(0, cur, remaining, Some(ci), Some(id), desc);
                self.hold_payment(pk);
                if let Some(inv) = self.invoices.get_mut(&k) {
                    inv.open_payment = Some(pk);
                }
                pk
            }
        };
        if let Some(inv) = self.invoices.get_mut(&k) {
            inv.attempt_count += 1;
        }
        if ok {
            self.charge_success(pk, None);
            let full = self
                .invoices
                .get(&k)
                .is_some_and(|i| i.amount_paid == 0 && i.pre_cn == 0);
            self.apply_invoice_payment(k, pk, remaining, true);
            self.mark_paid(k);
            if let Some(inv) = self.invoices.get_mut(&k) {
                inv.open_payment = None;
                if full {
                    inv.paying_payment = Some(pk);
                }
            }
            // Disputes on invoice payments that nothing else will touch.
            let quiet = self.invoices.get(&k).is_some_and(|i| i.pending == 0);
            if quiet && self.rng.chance(12) {
                let t = self.now + self.rng.range(10, 40) * DAY;
                self.schedule(t, Act::DisputeOpen(pk));
                // keep held: the DisputeOpen releases it
            } else if full && !quiet {
                // a post-payment credit note will refund this charge: keep it live until then
            } else {
                self.release_payment(pk);
            }
            self.maybe_final_payment(pk);
        } else {
            self.charge_fail(pk);
            let now = self.now;
            if let Some(inv) = self.invoices.get_mut(&k) {
                inv.next_payment_attempt = Some(now + 3 * DAY);
            }
            let json = self.invoice_json(k);
            self.event(0, "invoice.payment_failed", &json, None, Req::Auto);
        }
    }

    fn pay_partial(&mut self, k: u64) {
        // Partial payments of an invoice came with 2025-05-28.basil (invoice payments,
        // `invoice_payment.paid`): before that an invoice had one `charge`, and a history
        // rendered in the legacy version has no way to show a second one. The invoice is then
        // paid in full by its next attempt.
        if self.ver() == Ver::Legacy {
            return;
        }
        let Some(inv) = self.invoices.get(&k) else {
            return;
        };
        let step = cur_of(inv.cur).step;
        let amount = scale_step(inv.amount_remaining, 400, 1000, step).max(step);
        if amount >= inv.amount_remaining {
            return;
        }
        let (cur, ci, id) = (inv.cur, inv.cust, inv.id.clone());
        let desc = Some(format!(
            "Partial payment for Invoice {}",
            inv.number.clone().unwrap_or_default()
        ));
        let before = (inv.amount_paid, inv.amount_remaining);
        let pk = self.new_payment(0, cur, amount, Some(ci), Some(id), desc);
        if let Some(inv) = self.invoices.get_mut(&k) {
            inv.attempt_count += 1;
        }
        self.charge_success(pk, None);
        self.apply_invoice_payment(k, pk, amount, false);
        let json = self.invoice_json(k);
        let prev = format!(
            r#"{{"amount_paid":{},"amount_remaining":{}}}"#,
            before.0, before.1
        );
        self.event(0, "invoice.updated", &json, Some(&prev), Req::Auto);
        self.maybe_final_payment(pk);
    }

    fn new_credit_note(
        &mut self,
        k: u64,
        subtotal: i64,
        tax: i64,
        post: bool,
        refund: Option<String>,
    ) -> Option<CreditNote> {
        let id = self.new_id("cn", 0);
        let line_id = self.new_id("cnli", 0);
        self.cn_seq += 1;
        let inv = self.invoices.get(&k)?;
        let line = inv.lines.first()?;
        Some(CreditNote {
            id,
            number: format!(
                "{}-CN-{:02}",
                inv.number.clone().unwrap_or_default(),
                self.cn_seq % 100
            ),
            invoice: inv.id.clone(),
            invoice_line: line.id.clone(),
            line_id,
            customer: inv.customer.clone(),
            cur: inv.cur,
            description: line.description.clone(),
            subtotal,
            tax,
            total: subtotal + tax,
            tax_rate_id: inv.tax_rate_id.clone(),
            post_payment: post,
            refund,
            reason: if post {
                "product_unsatisfactory"
            } else {
                "order_change"
            },
            created: self.now,
        })
    }

    fn emit_credit_note(&mut self, cn: &CreditNote) {
        let mut json = String::with_capacity(1500);
        render::render_credit_note(&mut json, cn, &self.ctx());
        let mut fj = String::with_capacity(1500);
        render::render_credit_note(&mut fj, cn, &self.final_ctx());
        self.emit(
            ObjectKind::CreditNote,
            cn.id.clone(),
            cn.created,
            0,
            vec![
                ("invoice", cn.invoice.clone()),
                ("customer", cn.customer.clone()),
            ],
            fj,
        );
        self.event(0, "credit_note.created", &json, None, Req::Api);
        let t = self.tot(0, cn.cur);
        t.credit_notes_total += cn.total;
        t.invoiced_revenue -= cn.subtotal;
        t.invoiced_tax -= cn.tax;
    }

    fn credit_pre(&mut self, k: u64, per_mille: i64) {
        let Some(inv) = self.invoices.get(&k) else {
            return;
        };
        let step = cur_of(inv.cur).step;
        let Some(line) = inv.lines.first() else {
            return;
        };
        let sub = scale_step(line.amount - line.discount, per_mille, 1000, step).max(step);
        let tax = if inv.tax_bps > 0 {
            scale_step(sub, inv.tax_bps, 10_000, step)
        } else {
            0
        };
        if sub + tax >= inv.amount_remaining {
            return;
        }
        let before = (inv.amount_due, inv.amount_remaining, inv.pre_cn);
        let Some(cn) = self.new_credit_note(k, sub, tax, false, None) else {
            return;
        };
        let Some(inv) = self.invoices.get_mut(&k) else {
            return;
        };
        inv.pre_cn += cn.total;
        inv.amount_due -= cn.total;
        inv.amount_remaining -= cn.total;
        let remaining = inv.amount_remaining;
        if let Some(d) = inv.payments.iter_mut().find(|ip| ip.is_default) {
            d.amount_requested = remaining;
        }
        *self
            .receivables
            .entry((0, cn.customer.clone(), cn.cur))
            .or_default() -= cn.total;
        self.emit_credit_note(&cn);
        let json = self.invoice_json(k);
        let prev = format!(
            r#"{{"amount_due":{},"amount_remaining":{},"pre_payment_credit_notes_amount":{}}}"#,
            before.0, before.1, before.2
        );
        self.event(0, "invoice.updated", &json, Some(&prev), Req::Api);
    }

    fn credit_post(&mut self, k: u64, full: bool) {
        let Some(inv) = self.invoices.get(&k) else {
            return;
        };
        let Some(pk) = inv.paying_payment else { return };
        let step = cur_of(inv.cur).step;
        let Some(line) = inv.lines.first() else {
            return;
        };
        let (sub, tax) = if full {
            (inv.total - inv.tax, inv.tax)
        } else {
            let pm = self.rng.range(300, 600);
            let sub = scale_step(line.amount - line.discount, pm, 1000, step).max(step);
            (
                sub,
                if inv.tax_bps > 0 {
                    scale_step(sub, inv.tax_bps, 10_000, step)
                } else {
                    0
                },
            )
        };
        let refundable = self
            .payments
            .get(&pk)
            .map_or(0, |p| p.amount - p.amount_refunded);
        let before = inv.post_cn;
        if sub + tax > refundable || sub + tax <= 0 {
            self.release_payment(pk);
            self.maybe_final_payment(pk);
            return;
        }
        let re_id = self.new_id("re", 0);
        let Some(cn) = self.new_credit_note(k, sub, tax, true, Some(re_id.clone())) else {
            return;
        };
        if let Some(inv) = self.invoices.get_mut(&k) {
            inv.post_cn += cn.total;
        }
        self.emit_credit_note(&cn);
        self.refund_with_id(pk, cn.total, Some(cn.id.clone()), re_id);
        let json = self.invoice_json(k);
        let prev = format!(r#"{{"post_payment_credit_notes_amount":{before}}}"#);
        self.event(0, "invoice.updated", &json, Some(&prev), Req::Api);
        self.release_payment(pk);
        self.maybe_final_payment(pk);
    }

    fn void(&mut self, k: u64) {
        let now = self.now;
        let Some(inv) = self.invoices.get_mut(&k) else {
            return;
        };
        if inv.pre_cn != 0 || inv.amount_paid != 0 {
            return;
        }
        inv.status = InvStatus::Void;
        inv.voided_at = Some(now);
        inv.next_payment_attempt = None;
        for ip in inv.payments.iter_mut().filter(|ip| ip.status == "open") {
            ip.status = "canceled";
            ip.canceled_at = Some(now);
        }
        let (cur, total, tax, rem, cus, open) = (
            inv.cur,
            inv.total,
            inv.tax,
            inv.amount_remaining,
            inv.customer.clone(),
            inv.open_payment.take(),
        );
        *self.receivables.entry((0, cus, cur)).or_default() -= rem;
        let t = self.tot(0, cur);
        t.invoiced_total -= total;
        t.invoiced_revenue -= total - tax;
        t.invoiced_tax -= tax;
        let json = self.invoice_json(k);
        self.event(0, "invoice.voided", &json, None, Req::Api);
        if let Some(pk) = open {
            if let Some(p) = self.payments.get_mut(&pk) {
                p.status = PiStatus::Canceled;
                p.canceled_at = Some(now);
            }
            let pi = self.pi_json(pk);
            self.event(0, "payment_intent.canceled", &pi, None, Req::Auto);
            self.release_payment(pk);
            self.maybe_final_payment(pk);
        }
    }

    fn uncollectible(&mut self, k: u64) {
        let now = self.now;
        let Some(inv) = self.invoices.get_mut(&k) else {
            return;
        };
        inv.status = InvStatus::Uncollectible;
        inv.uncollectible_at = Some(now);
        inv.next_payment_attempt = None;
        let (cur, rem, cus, open) = (
            inv.cur,
            inv.amount_remaining,
            inv.customer.clone(),
            inv.open_payment.take(),
        );
        *self.receivables.entry((0, cus, cur)).or_default() -= rem;
        self.tot(0, cur).uncollectible += rem;
        let json = self.invoice_json(k);
        self.event(0, "invoice.marked_uncollectible", &json, None, Req::Api);
        if let Some(pk) = open {
            self.release_payment(pk);
            self.maybe_final_payment(pk);
        }
    }

    fn final_invoice(&mut self, k: u64) {
        let Some(inv) = self.invoices.remove(&k) else {
            return;
        };
        let ctx = self.final_ctx();
        for ip in &inv.payments {
            let mut j = String::with_capacity(512);
            render::render_invoice_payment(&mut j, ip, &ctx);
            self.emit(
                ObjectKind::InvoicePayment,
                ip.id.clone(),
                ip.created,
                0,
                vec![
                    ("invoice", inv.id.clone()),
                    ("status", ip.status.to_owned()),
                ],
                j,
            );
        }
        let mut json = String::with_capacity(4096);
        render::render_invoice(&mut json, &inv, &ctx);
        let mut filters = vec![
            ("customer", inv.customer.clone()),
            ("status", inv.status.as_str().to_owned()),
            (
                "collection_method",
                if inv.send_invoice {
                    "send_invoice"
                } else {
                    "charge_automatically"
                }
                .to_owned(),
            ),
        ];
        if let Some(s) = &inv.subscription {
            filters.push(("subscription", s.clone()));
        }
        self.emit(
            ObjectKind::Invoice,
            inv.id.clone(),
            inv.created,
            0,
            filters,
            json,
        );
    }

    // ------------------------------------------------------------------ charges without invoices

    fn random_amount(&mut self, cur: usize, usd_lo: i64, usd_hi: i64) -> i64 {
        let usd = self.rng.range(usd_lo, usd_hi);
        let c = cur_of(cur);
        let rate = cross_rate(CURRENCIES[USD].usd_nano, c.usd_nano);
        let conv = convert(usd, &CURRENCIES[USD], c, rate);
        scale_step(conv, 1, 1, c.step).max(c.step * 50)
    }

    fn new_charge(&mut self) {
        let cust = if self.rng.chance(700) {
            Some(self.pick_customer(false))
        } else {
            None
        };
        let cur = match cust.and_then(|c| self.customers.get(c)) {
            Some(c) => c.cur,
            None => self.rng.weighted(&money::cur_weights()),
        };
        let amount = self.random_amount(cur, 500, 50_000);
        let mut order = String::from("Order ORD-");
        b62(self.rng.next_u64(), 8, &mut order);
        let pk = self.new_payment(0, cur, amount, cust, None, Some(order));
        self.charge_success(pk, None);
        match self.rng.weighted(&[880, 50, 40, 30]) {
            1 => {
                let t = self.now + self.rng.range(1, 10) * DAY;
                self.hold_payment(pk);
                self.schedule(t, Act::Refund(pk, 0));
            }
            2 => {
                let step = cur_of(cur).step;
                let part = scale_step(amount, self.rng.range(100, 700), 1000, step).max(step);
                let t = self.now + self.rng.range(1, 10) * DAY;
                self.hold_payment(pk);
                self.schedule(t, Act::Refund(pk, part));
            }
            3 => {
                let t = self.now + self.rng.range(5, 30) * DAY;
                self.hold_payment(pk);
                self.schedule(t, Act::DisputeOpen(pk));
            }
            _ => {}
        }
        self.maybe_final_payment(pk);
    }

    fn refund(&mut self, k: u64, amount: i64, cn: Option<String>) {
        let Some(acct) = self.payments.get(&k).map(|p| p.acct) else {
            return;
        };
        let id = self.new_id("re", acct);
        let amount = if amount == 0 {
            self.payments
                .get(&k)
                .map_or(0, |p| p.amount - p.amount_refunded)
        } else {
            amount
        };
        self.refund_with_id(k, amount, cn, id);
    }

    fn refund_with_id(&mut self, k: u64, amount: i64, cn: Option<String>, id: String) {
        let Some(p) = self.payments.get(&k).cloned() else {
            return;
        };
        if p.status != PiStatus::Succeeded || p.dispute.is_some() {
            return;
        }
        let amount = amount.min(p.amount - p.amount_refunded);
        if amount <= 0 {
            return;
        }
        let (acct, cur, bal) = (p.acct, p.cur, p.bal);
        let settle = self.bals.get(bal).map_or(USD, |b| b.cur);
        let rate = p.rate.map(|_| {
            cross_rate(
                self.usd_nano.get(cur).copied().unwrap_or(1),
                self.usd_nano.get(settle).copied().unwrap_or(1),
            )
        });
        let settled = rate.map_or(amount, |r| convert(amount, cur_of(cur), cur_of(settle), r));
        let txn = self.new_id("txn", acct);
        let now = self.now;
        let refund = Refund {
            id: id.clone(),
            charge: p.latest_charge.clone().unwrap_or_default(),
            payment_intent: p.pi_id.clone(),
            payment_method: p.pm_id.clone(),
            customer: p.customer.clone(),
            amount,
            cur,
            created: now,
            bt_id: txn.clone(),
            credit_note: cn,
        };
        let bt = Bt {
            id: txn,
            bal,
            cur: settle,
            amount: -settled,
            fees: Vec::new(),
            created: now,
            available_on: now,
            description: Some("REFUND FOR CHARGE".to_owned()),
            rate,
            source: id.clone(),
            ty: "refund",
            category: "refund",
        };
        self.wait_bt(bt);
        if let Some(p) = self.payments.get_mut(&k) {
            p.amount_refunded += amount;
        }
        {
            let t = self.tot(acct, cur);
            t.refunds += amount;
            if refund.credit_note.is_some() {
                t.refunds_for_credit_notes += amount;
            }
        }
        {
            let t = self.tot(acct, settle);
            t.refunds_settled += settled;
            if refund.credit_note.is_some() {
                t.credit_note_refunds_settled += settled;
            }
        }
        let Some(p) = self.payments.get(&k).cloned() else {
            return;
        };
        let cj = self.charge_json(&p, &self.ctx());
        self.event(acct, "charge.refunded", &cj, None, Req::Api);
        let mut rj = String::with_capacity(800);
        render::render_refund(&mut rj, &refund, &self.ctx());
        self.event(acct, "refund.created", &rj, None, Req::Api);
        let mut fj = String::with_capacity(800);
        render::render_refund(&mut fj, &refund, &self.final_ctx());
        self.emit(
            ObjectKind::Refund,
            id,
            now,
            acct,
            vec![
                ("charge", refund.charge.clone()),
                ("payment_intent", refund.payment_intent.clone()),
            ],
            fj,
        );
    }

    // ------------------------------------------------------------------ disputes

    fn dispute_json(&self, k: u64) -> String {
        let mut json = String::with_capacity(3000);
        if let Some(d) = self.disputes.get(&k) {
            render::render_dispute(&mut json, d, &self.ctx());
        }
        json
    }

    fn dispute_open(&mut self, pk: u64) {
        let Some(p) = self.payments.get(&pk).cloned() else {
            return;
        };
        if p.status != PiStatus::Succeeded || p.dispute.is_some() || p.amount_refunded > 0 {
            return;
        }
        let (acct, cur, bal, amount) = (p.acct, p.cur, p.bal, p.amount);
        let settle = self.bals.get(bal).map_or(USD, |b| b.cur);
        let rate = p.rate.map(|_| {
            cross_rate(
                self.usd_nano.get(cur).copied().unwrap_or(1),
                self.usd_nano.get(settle).copied().unwrap_or(1),
            )
        });
        let settled = rate.map_or(amount, |r| convert(amount, cur_of(cur), cur_of(settle), r));
        let key = self.key();
        let id = self.new_id("dp", acct);
        let txn = self.new_id("txn", acct);
        let now = self.now;
        let bt = Bt {
            id: txn,
            bal,
            cur: settle,
            amount: -settled,
            fees: vec![Fee {
                amount: DISPUTE_FEE,
                application: None,
                description: "Dispute fee",
                ty: "stripe_fee",
            }],
            created: now,
            available_on: now,
            description: Some(format!(
                "Chargeback withdrawal for {}",
                p.latest_charge.clone().unwrap_or_default()
            )),
            rate,
            source: id.clone(),
            ty: "adjustment",
            category: "dispute",
        };
        let win = self.rng.chance(550);
        let fee_returned = win && self.rng.chance(500);
        let reason = if self.rng.chance(600) {
            "fraudulent"
        } else {
            "product_not_received"
        };
        let d = Dispute {
            acct,
            id: id.clone(),
            charge: p.latest_charge.clone().unwrap_or_default(),
            payment_intent: p.pi_id.clone(),
            amount,
            cur,
            created: now,
            due_by: now + 21 * DAY,
            submissions: 0,
            reason,
            status: "needs_response",
            bts: vec![bt.clone()],
            bal,
            rate,
            settled,
            win,
            fee_returned,
            pending: 2,
        };
        self.wait_bt(bt);
        if let Some(p) = self.payments.get_mut(&pk) {
            p.dispute = Some(id);
        }
        self.disputes.insert(key, d);
        {
            let t = self.tot(acct, cur);
            t.disputed += amount;
        }
        {
            let t = self.tot(acct, settle);
            t.dispute_withdrawals += settled;
            t.dispute_fees += DISPUTE_FEE;
        }
        let json = self.dispute_json(key);
        self.event(acct, "charge.dispute.created", &json, None, Req::Auto);
        self.event(
            acct,
            "charge.dispute.funds_withdrawn",
            &json,
            None,
            Req::Auto,
        );
        let e = now + self.rng.range(2, 7) * DAY;
        self.schedule(e, Act::DisputeEvidence(key));
        let c = now + self.rng.range(30, 60) * DAY;
        self.schedule(c, Act::DisputeClose(key));
    }

    fn dispute_evidence(&mut self, k: u64) {
        let Some(d) = self.disputes.get_mut(&k) else {
            return;
        };
        d.pending = d.pending.saturating_sub(1);
        d.submissions = 1;
        d.status = "under_review";
        let acct = d.acct;
        let json = self.dispute_json(k);
        let prev = r#"{"evidence_details":{"has_evidence":false,"submission_count":0},"status":"needs_response"}"#;
        self.event(acct, "charge.dispute.updated", &json, Some(prev), Req::Api);
        self.maybe_final_dispute(k);
    }

    fn dispute_close(&mut self, k: u64) {
        let now = self.now;
        let Some(d) = self.disputes.get(&k) else {
            return;
        };
        let (acct, cur, win, fee_returned, bal, settled, rate, id, amount) = (
            d.acct,
            d.cur,
            d.win,
            d.fee_returned,
            d.bal,
            d.settled,
            d.rate,
            d.id.clone(),
            d.amount,
        );
        let settle = self.bals.get(bal).map_or(USD, |b| b.cur);
        if win {
            let txn = self.new_id("txn", acct);
            let fees = if fee_returned {
                vec![Fee {
                    amount: -DISPUTE_FEE,
                    application: None,
                    description: "Dispute fee refund",
                    ty: "stripe_fee",
                }]
            } else {
                Vec::new()
            };
            let bt = Bt {
                id: txn,
                bal,
                cur: settle,
                amount: settled,
                fees,
                created: now,
                available_on: now,
                description: Some(format!("Chargeback reversal for {id}")),
                rate,
                source: id.clone(),
                ty: "adjustment",
                category: "dispute_reversal",
            };
            if let Some(d) = self.disputes.get_mut(&k) {
                d.bts.push(bt.clone());
                d.status = "won";
            }
            self.wait_bt(bt);
            self.tot(acct, cur).disputes_won += amount;
            let t = self.tot(acct, settle);
            t.dispute_reinstatements += settled;
            if fee_returned {
                t.dispute_fees -= DISPUTE_FEE;
            }
            let json = self.dispute_json(k);
            self.event(
                acct,
                "charge.dispute.funds_reinstated",
                &json,
                None,
                Req::Auto,
            );
        } else {
            if let Some(d) = self.disputes.get_mut(&k) {
                d.status = "lost";
            }
            self.tot(acct, cur).disputes_lost += amount;
        }
        if let Some(d) = self.disputes.get_mut(&k) {
            d.pending = d.pending.saturating_sub(1);
        }
        let json = self.dispute_json(k);
        self.event(acct, "charge.dispute.closed", &json, None, Req::Auto);
        self.maybe_final_dispute(k);
    }

    fn maybe_final_dispute(&mut self, k: u64) {
        if self.disputes.get(&k).is_some_and(|d| d.pending == 0) {
            self.final_dispute(k);
        }
    }

    fn final_dispute(&mut self, k: u64) {
        let Some(d) = self.disputes.remove(&k) else {
            return;
        };
        let mut json = String::with_capacity(3000);
        render::render_dispute(&mut json, &d, &self.final_ctx());
        self.emit(
            ObjectKind::Dispute,
            d.id.clone(),
            d.created,
            d.acct,
            vec![
                ("charge", d.charge.clone()),
                ("payment_intent", d.payment_intent.clone()),
            ],
            json,
        );
    }

    // ------------------------------------------------------------------ Connect

    fn new_connect_charge(&mut self) {
        let n = self.accounts.len().saturating_sub(1);
        if n == 0 {
            return;
        }
        let acct = 1 + usize::try_from(self.rng.below(u64::try_from(n).unwrap_or(1))).unwrap_or(0);
        let cur = if self.rng.chance(800) { USD } else { EUR };
        let amount = self.random_amount(cur, 1_000, 100_000);
        let mut order = String::from("Booking BK-");
        b62(self.rng.next_u64(), 8, &mut order);
        let pk = self.new_payment(acct, cur, amount, None, None, Some(order));
        self.charge_success(pk, Some(5));
        if self.rng.chance(40) {
            let t = self.now + self.rng.range(1, 10) * DAY;
            self.hold_payment(pk);
            self.schedule(t, Act::Refund(pk, 0));
        }
        self.maybe_final_payment(pk);
    }

    fn new_transfer(&mut self) {
        let n = self.accounts.len().saturating_sub(1);
        if n == 0 {
            return;
        }
        let acct = 1 + usize::try_from(self.rng.below(u64::try_from(n).unwrap_or(1))).unwrap_or(0);
        let amount = self.rng.range(10_000, 200_000);
        let now = self.now;
        let tr = self.new_id("tr", 0);
        let py = self.new_id("py", acct);
        let ptxn = self.new_id("txn", 0);
        let ctxn = self.new_id("txn", acct);
        let destination = self.acct_id(acct).unwrap_or_default();
        let pbal = self.bal_for(0, USD);
        let cbal = self.bal_for(acct, USD);
        self.wait_bt(Bt {
            id: ptxn.clone(),
            bal: pbal,
            cur: USD,
            amount: -amount,
            fees: Vec::new(),
            created: now,
            available_on: now,
            description: Some("Monthly partner payout".to_owned()),
            rate: None,
            source: tr.clone(),
            ty: "transfer",
            category: "transfer",
        });
        self.wait_bt(Bt {
            id: ctxn.clone(),
            bal: cbal,
            cur: USD,
            amount,
            fees: Vec::new(),
            created: now,
            available_on: now,
            description: None,
            rate: None,
            source: py.clone(),
            ty: "payment",
            category: "transfer",
        });
        let t = Transfer {
            id: tr.clone(),
            amount,
            cur: USD,
            created: now,
            destination: destination.clone(),
            destination_payment: py.clone(),
            bt_id: ptxn,
        };
        let mut json = String::with_capacity(800);
        render::render_transfer(&mut json, &t, &self.ctx());
        let mut fj = String::with_capacity(800);
        render::render_transfer(&mut fj, &t, &self.final_ctx());
        self.emit(
            ObjectKind::Transfer,
            tr.clone(),
            now,
            0,
            vec![("destination", destination.clone())],
            fj,
        );
        let mut pj = String::with_capacity(1500);
        let view = ChargeView {
            id: &py,
            payment: None,
            amount,
            cur: USD,
            created: now,
            succeeded: true,
            bt_id: Some(&ctxn),
            source_transfer: Some(&tr),
        };
        render::render_charge(&mut pj, &view, &self.final_ctx());
        self.emit(ObjectKind::Charge, py, now, acct, Vec::new(), pj);
        self.event(0, "transfer.created", &json, None, Req::Api);
        self.tot(0, USD).transfers_out += amount;
        self.tot(acct, USD).transfers_received += amount;
        *self.transfers.entry((acct, USD)).or_default() += amount;
    }

    // ------------------------------------------------------------------ payouts

    fn payout_json(&self, k: u64) -> String {
        let mut json = String::with_capacity(900);
        if let Some(p) = self.payouts.get(&k) {
            render::render_payout(&mut json, p, &self.ctx());
        }
        json
    }

    fn payout(&mut self, b: usize) {
        let now = self.now;
        self.advance_balances(now);
        let Some(bal) = self.bals.get_mut(b) else {
            return;
        };
        let waiting = std::mem::take(&mut bal.waiting);
        let (ready, rest): (Vec<Bt>, Vec<Bt>) =
            waiting.into_iter().partition(|bt| bt.available_on <= now);
        let sum: i64 = ready.iter().map(Bt::net).sum();
        if ready.is_empty() || sum <= 0 {
            bal.waiting = ready;
            bal.waiting.extend(rest);
            return;
        }
        bal.waiting = rest;
        let (acct, cur) = (bal.acct, bal.cur);
        let key = self.key();
        let id = self.new_id("po", acct);
        let txn = self.new_id("txn", acct);
        let pbt = Bt {
            id: txn.clone(),
            bal: b,
            cur,
            amount: -sum,
            fees: Vec::new(),
            created: now,
            available_on: now,
            description: Some("STRIPE PAYOUT".to_owned()),
            rate: None,
            source: id.clone(),
            ty: "payout",
            category: "payout",
        };
        self.book_bt(&pbt);
        for bt in &ready {
            self.emit_bt(bt, Some(&id));
        }
        self.emit_bt(&pbt, Some(&id));
        let destination = self
            .accounts
            .get(acct)
            .map(|a| a.bank.clone())
            .unwrap_or_default();
        let arrival = add_business_days(now, 1);
        let fate = self.rng.weighted(&[950, 30, 20]);
        let p = Payout {
            acct,
            bal: b,
            id,
            amount: sum,
            cur,
            created: now,
            arrival_date: arrival,
            destination,
            bt_id: txn,
            failure_bt_id: None,
            status: "pending",
            reconciliation_status: "in_progress",
            pending: 3,
        };
        self.payouts.insert(key, p);
        self.tot(acct, cur).payouts_in_flight += sum;
        let json = self.payout_json(key);
        self.event(acct, "payout.created", &json, None, Req::Auto);
        self.schedule(now + HOUR, Act::PayoutReconciled(key));
        match fate {
            2 => {
                self.schedule(now + 2 * HOUR, Act::PayoutCancel(key));
                if let Some(p) = self.payouts.get_mut(&key) {
                    p.pending = 2;
                }
            }
            1 => {
                self.schedule(now + 3 * HOUR, Act::PayoutTransit(key));
                self.schedule(arrival + DAY + 6 * HOUR, Act::PayoutFail(key));
            }
            _ => {
                self.schedule(now + 3 * HOUR, Act::PayoutTransit(key));
                self.schedule(arrival + 6 * HOUR, Act::PayoutPaid(key));
            }
        }
    }

    fn payout_done_step(&mut self, k: u64) {
        if let Some(p) = self.payouts.get_mut(&k) {
            p.pending = p.pending.saturating_sub(1);
        }
        if self.payouts.get(&k).is_some_and(|p| p.pending == 0) {
            self.final_payout(k);
        }
    }

    fn final_payout(&mut self, k: u64) {
        let Some(p) = self.payouts.remove(&k) else {
            return;
        };
        let mut json = String::with_capacity(900);
        render::render_payout(&mut json, &p, &self.final_ctx());
        self.emit(
            ObjectKind::Payout,
            p.id.clone(),
            p.created,
            p.acct,
            vec![
                ("status", p.status.to_owned()),
                ("arrival_date", p.arrival_date.to_string()),
            ],
            json,
        );
    }

    fn payout_reconciled(&mut self, k: u64) {
        let Some(p) = self.payouts.get_mut(&k) else {
            return;
        };
        p.reconciliation_status = "completed";
        let acct = p.acct;
        let json = self.payout_json(k);
        self.event(
            acct,
            "payout.reconciliation_completed",
            &json,
            None,
            Req::Auto,
        );
        self.payout_done_step(k);
    }

    fn payout_transit(&mut self, k: u64) {
        let Some(p) = self.payouts.get_mut(&k) else {
            return;
        };
        p.status = "in_transit";
        let acct = p.acct;
        let json = self.payout_json(k);
        self.event(
            acct,
            "payout.updated",
            &json,
            Some(r#"{"status":"pending"}"#),
            Req::Auto,
        );
        self.payout_done_step(k);
    }

    fn payout_paid(&mut self, k: u64) {
        let Some(p) = self.payouts.get_mut(&k) else {
            return;
        };
        p.status = "paid";
        let (acct, cur, amount) = (p.acct, p.cur, p.amount);
        let t = self.tot(acct, cur);
        t.payouts_in_flight -= amount;
        t.payouts_paid += amount;
        let json = self.payout_json(k);
        self.event(acct, "payout.paid", &json, None, Req::Auto);
        self.payout_done_step(k);
    }

    fn payout_return(
        &mut self,
        k: u64,
        status: &'static str,
        ty: &'static str,
        event: &'static str,
    ) {
        let now = self.now;
        let Some(p) = self.payouts.get(&k) else {
            return;
        };
        let (acct, cur, amount, bal, id) = (p.acct, p.cur, p.amount, p.bal, p.id.clone());
        let txn = self.new_id("txn", acct);
        self.wait_bt(Bt {
            id: txn.clone(),
            bal,
            cur,
            amount,
            fees: Vec::new(),
            created: now,
            available_on: now,
            description: Some(
                if status == "failed" {
                    "Payout failure"
                } else {
                    "Payout cancellation"
                }
                .to_owned(),
            ),
            rate: None,
            source: id,
            ty,
            category: "payout_reversal",
        });
        if let Some(p) = self.payouts.get_mut(&k) {
            p.status = status;
            p.failure_bt_id = Some(txn);
        }
        let t = self.tot(acct, cur);
        t.payouts_in_flight -= amount;
        if status == "failed" {
            t.payouts_failed += amount;
        } else {
            t.payouts_canceled += amount;
        }
        let json = self.payout_json(k);
        self.event(acct, event, &json, None, Req::Auto);
        self.payout_done_step(k);
    }

    fn payout_fail(&mut self, k: u64) {
        self.payout_return(k, "failed", "payout_failure", "payout.failed");
    }

    fn payout_cancel(&mut self, k: u64) {
        self.payout_return(k, "canceled", "payout_cancel", "payout.canceled");
    }

    // ------------------------------------------------------------------ the end

    fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        let now = self.now;
        self.advance_balances(now);
        // Flush live objects in their state at the end, in a fixed order.
        let inv_keys: Vec<u64> = self.invoices.keys().copied().collect();
        for k in inv_keys {
            self.final_invoice(k);
        }
        let pay_keys: Vec<u64> = self.payments.keys().copied().collect();
        for k in pay_keys {
            self.final_payment(k);
        }
        let dis_keys: Vec<u64> = self.disputes.keys().copied().collect();
        for k in dis_keys {
            self.final_dispute(k);
        }
        let po_keys: Vec<u64> = self.payouts.keys().copied().collect();
        for k in po_keys {
            self.final_payout(k);
        }
        for b in 0..self.bals.len() {
            let waiting = self
                .bals
                .get_mut(b)
                .map(|x| std::mem::take(&mut x.waiting))
                .unwrap_or_default();
            for bt in &waiting {
                self.emit_bt(bt, None);
            }
        }
        self.queue.clear();
        let mut truth = GroundTruth {
            end: now,
            facts: self.facts,
            events: self.events,
            balance_transactions: self.bts,
            ..GroundTruth::default()
        };
        for b in &mut self.bals {
            let key = AccountCurrency {
                account: self.accounts.get(b.acct).and_then(|a| a.id.clone()),
                currency: cur_code(b.cur).to_owned(),
            };
            truth.balances.insert(
                key.clone(),
                Balance {
                    pending: b.pending,
                    available: b.available,
                },
            );
            if self.cfg.balance_history {
                let mut h = std::mem::take(&mut b.hist);
                h.sort_by_key(|x| x.0);
                let mut steps: Vec<(i64, i64, i64)> = Vec::new();
                let (mut p, mut a) = (0i64, 0i64);
                for (t, dp, da) in h {
                    p += dp;
                    a += da;
                    match steps.last_mut() {
                        Some(last) if last.0 == t => {
                            last.1 = p;
                            last.2 = a;
                        }
                        _ => steps.push((t, p, a)),
                    }
                }
                truth.history.insert(key, steps);
            }
        }
        let totals = std::mem::take(&mut self.totals);
        for ((acct, cur), mut t) in totals {
            t.revenue = t.invoiced_revenue + t.uninvoiced_sales;
            truth.totals.insert(
                AccountCurrency {
                    account: self.acct_id(acct),
                    currency: cur_code(cur).to_owned(),
                },
                t,
            );
        }
        for ((acct, cus, cur), v) in std::mem::take(&mut self.receivables) {
            if v != 0 {
                truth
                    .open_receivables
                    .insert((self.acct_id(acct), cus, cur_code(cur).to_owned()), v);
            }
        }
        for ((acct, cur), v) in std::mem::take(&mut self.transfers) {
            truth.transfers.insert(
                (
                    self.acct_id(acct).unwrap_or_default(),
                    cur_code(cur).to_owned(),
                ),
                v,
            );
        }
        for ((acct, cur), v) in std::mem::take(&mut self.app_fees) {
            truth.application_fees.insert(
                (
                    self.acct_id(acct).unwrap_or_default(),
                    cur_code(cur).to_owned(),
                ),
                v,
            );
        }
        self.truth = Some(truth);
    }
}
