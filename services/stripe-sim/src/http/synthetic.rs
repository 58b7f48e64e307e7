//! A small synthetic Stripe history for the HTTP layer's own tests, benches and the binary's
//! fallback. It is *not* the world generator (`crate::world`): amounts and links are
//! plausible, not a consistent ledger. Deterministic given the seed.
//!
//! Per sale: an invoice (open for one sale in eight, for cash application), an invoice
//! payment, a charge, its balance transaction (pending two days), and events
//! (`invoice.finalized`, `charge.succeeded`, `invoice_payment.paid`, `invoice.paid`); some
//! refunds and disputes with their transactions; a customer every ten sales; a daily payout
//! whose transaction settles the day's transactions (`payout` filter); a few connected
//! accounts with their own charges and events; a sprinkle of live-mode objects.

use crate::http::ids;
use crate::object::{ObjectKind, SimObject};

/// Knobs of the synthetic history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Synthetic {
    /// Seed.
    pub seed: u64,
    /// Objects to make (events included), at least.
    pub objects: usize,
    /// `created` of the first object.
    pub start: i64,
    /// Seconds between the first and the last object.
    pub span: i64,
}

impl Default for Synthetic {
    fn default() -> Self {
        Synthetic {
            seed: 7,
            objects: 10_000,
            start: 1_767_225_600, // 2026-01-01
            span: 60 * 86_400,
        }
    }
}

struct Gen {
    seed: u64,
    n: u64,
    out: Vec<SimObject>,
}

impl Gen {
    fn id(&mut self, prefix: &str) -> String {
        self.n += 1;
        ids::stripe_id(prefix, ids::mix(self.seed ^ ids::mix(self.n)), 24)
    }

    fn rand(&mut self, tag: u64) -> u64 {
        ids::mix(self.seed ^ ids::mix(self.n.wrapping_mul(31) ^ tag))
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        kind: ObjectKind,
        id: String,
        created: i64,
        account: Option<&str>,
        livemode: bool,
        filters: Vec<(&'static str, String)>,
        available_on: Option<i64>,
        json: String,
    ) {
        self.out.push(SimObject {
            kind,
            id,
            created,
            account: account.map(str::to_owned),
            livemode,
            filters,
            available_on,
            json,
        });
    }

    fn event(
        &mut self,
        ty: &str,
        created: i64,
        account: Option<&str>,
        livemode: bool,
        object: &str,
    ) {
        let id = self.id("evt");
        let acct = account
            .map(|a| format!("\"account\":\"{a}\","))
            .unwrap_or_default();
        let json = format!(
            "{{\"id\":\"{id}\",\"object\":\"event\",{acct}\"api_version\":\"2026-07-29.dahlia\",\"created\":{created},\"data\":{{\"object\":{object}}},\"livemode\":{livemode},\"pending_webhooks\":0,\"request\":{{\"id\":null,\"idempotency_key\":null}},\"type\":\"{ty}\"}}"
        );
        self.push(
            ObjectKind::Event,
            id,
            created,
            account,
            livemode,
            vec![("type", ty.to_owned())],
            None,
            json,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn txn(
        &mut self,
        created: i64,
        account: Option<&str>,
        livemode: bool,
        ty: &str,
        amount: i64,
        fee: i64,
        source: &str,
        payout: Option<&str>,
    ) -> String {
        let id = self.id("txn");
        let available_on = created + 2 * 86_400;
        let net = amount - fee;
        let fee_details = if fee == 0 {
            "[]".to_owned()
        } else {
            format!(
                "[{{\"amount\":{fee},\"application\":null,\"currency\":\"usd\",\"description\":\"Stripe processing fees\",\"type\":\"stripe_fee\"}}]"
            )
        };
        let category = match ty {
            "payment" | "charge" => "charge",
            "adjustment" => "dispute",
            other => other,
        };
        let json = format!(
            "{{\"id\":\"{id}\",\"object\":\"balance_transaction\",\"amount\":{amount},\"available_on\":{available_on},\"balance_type\":\"payments\",\"created\":{created},\"currency\":\"usd\",\"description\":null,\"exchange_rate\":null,\"fee\":{fee},\"fee_details\":{fee_details},\"net\":{net},\"reporting_category\":\"{category}\",\"source\":\"{source}\",\"status\":\"pending\",\"type\":\"{ty}\"}}"
        );
        let mut filters = vec![
            ("type", ty.to_owned()),
            ("currency", "usd".to_owned()),
            ("source", source.to_owned()),
        ];
        if let Some(p) = payout {
            filters.push(("payout", p.to_owned()));
        }
        self.push(
            ObjectKind::BalanceTransaction,
            id.clone(),
            created,
            account,
            livemode,
            filters,
            Some(available_on),
            json,
        );
        id
    }
}

/// Makes the synthetic history, oldest first.
pub fn generate(cfg: Synthetic) -> Vec<SimObject> {
    let mut g = Gen {
        seed: cfg.seed,
        n: 0,
        out: Vec::with_capacity(cfg.objects + 64),
    };
    // Roughly 9 objects per sale.
    let sales = (cfg.objects / 9).max(1);
    let step = (cfg.span / i64::try_from(sales).unwrap_or(i64::MAX)).max(1);
    let accounts: Vec<String> = (0..3).map(|_| g.id("acct")).collect();
    for (i, a) in accounts.iter().enumerate() {
        let created = cfg.start + i64::try_from(i).unwrap_or(0);
        let json = format!(
            "{{\"id\":\"{a}\",\"object\":\"account\",\"charges_enabled\":true,\"country\":\"US\",\"created\":{created},\"default_currency\":\"usd\",\"payouts_enabled\":true,\"type\":\"express\"}}"
        );
        g.push(
            ObjectKind::Account,
            a.clone(),
            created,
            None,
            false,
            vec![],
            None,
            json,
        );
    }
    let mut customer = String::new();
    let mut day_txns: Vec<usize> = Vec::new();
    let mut day = cfg.start / 86_400;
    let mut sale: usize = 0;
    while g.out.len() < cfg.objects {
        // Two sales share each second now and then, so ties on `created` exist.
        let t = cfg.start + 10 + i64::try_from(sale).unwrap_or(0) * step - i64::from(sale % 5 == 1);
        if t / 86_400 != day {
            // Daily payout of the previous day's transactions.
            let po = g.id("po");
            let total: i64 = day_txns
                .iter()
                .filter_map(|&i| {
                    g.out
                        .get(i)
                        .and_then(|o| crate::store::top_level_i64(&o.json, "net"))
                })
                .sum();
            for &i in &day_txns {
                if let Some(o) = g.out.get_mut(i) {
                    o.filters.push(("payout", po.clone()));
                }
            }
            day_txns.clear();
            let pt = day * 86_400 + 86_400;
            let txn = g.txn(pt, None, false, "payout", -total, 0, &po, None);
            let json = format!(
                "{{\"id\":\"{po}\",\"object\":\"payout\",\"amount\":{total},\"arrival_date\":{arr},\"automatic\":true,\"balance_transaction\":\"{txn}\",\"created\":{pt},\"currency\":\"usd\",\"livemode\":false,\"reconciliation_status\":\"completed\",\"status\":\"paid\",\"type\":\"bank_account\"}}",
                arr = pt + 86_400
            );
            g.push(
                ObjectKind::Payout,
                po.clone(),
                pt,
                None,
                false,
                vec![("status", "paid".into())],
                None,
                json.clone(),
            );
            g.event("payout.paid", pt, None, false, &json);
            day = t / 86_400;
        }
        let account = (sale % 17 == 3).then(|| accounts[sale % accounts.len()].clone());
        let acct = account.as_deref();
        let livemode = sale % 41 == 7;
        if sale.is_multiple_of(10) || livemode || acct.is_some() {
            customer = g.id("cus");
            let json = format!(
                "{{\"id\":\"{customer}\",\"object\":\"customer\",\"created\":{t},\"email\":\"c{sale}@example.com\",\"livemode\":{livemode},\"metadata\":{{\"company_id\":\"co_{sale}\"}},\"name\":\"Customer {sale}\"}}"
            );
            g.push(
                ObjectKind::Customer,
                customer.clone(),
                t,
                acct,
                livemode,
                vec![("email", format!("c{sale}@example.com"))],
                None,
                json,
            );
        }
        let amount = i64::try_from(1000 + g.rand(1) % 90_000).unwrap_or(1000);
        let open = sale % 8 == 5;
        let inv = g.id("in");
        let status = if open { "open" } else { "paid" };
        let paid = if open { 0 } else { amount };
        let paid_at = if open {
            "null".to_owned()
        } else {
            t.to_string()
        };
        let inv_json = format!(
            "{{\"id\":\"{inv}\",\"object\":\"invoice\",\"amount_due\":{amount},\"amount_overpaid\":0,\"amount_paid\":{paid},\"amount_remaining\":{rem},\"collection_method\":\"{cm}\",\"created\":{t},\"currency\":\"usd\",\"customer\":\"{customer}\",\"livemode\":{livemode},\"metadata\":{{}},\"number\":\"SIM-{sale:06}\",\"status\":\"{status}\",\"status_transitions\":{{\"finalized_at\":{t},\"marked_uncollectible_at\":null,\"paid_at\":{paid_at},\"voided_at\":null}},\"total\":{amount}}}",
            rem = amount - paid,
            cm = if open {
                "send_invoice"
            } else {
                "charge_automatically"
            },
        );
        g.push(
            ObjectKind::Invoice,
            inv.clone(),
            t,
            acct,
            livemode,
            vec![("customer", customer.clone()), ("status", status.into())],
            None,
            inv_json.clone(),
        );
        g.event("invoice.finalized", t, acct, livemode, &inv_json);
        if !open {
            let ch = g.id("ch");
            let ch_json = format!(
                "{{\"id\":\"{ch}\",\"object\":\"charge\",\"amount\":{amount},\"amount_refunded\":0,\"created\":{t},\"currency\":\"usd\",\"customer\":\"{customer}\",\"livemode\":{livemode},\"paid\":true,\"status\":\"succeeded\"}}"
            );
            g.push(
                ObjectKind::Charge,
                ch.clone(),
                t,
                acct,
                livemode,
                vec![("customer", customer.clone())],
                None,
                ch_json.clone(),
            );
            let fee = amount * 29 / 1000 + 30;
            let txn_at = g.out.len();
            g.txn(t, acct, livemode, "charge", amount, fee, &ch, None);
            if acct.is_none() && !livemode {
                day_txns.push(txn_at);
            }
            g.event("charge.succeeded", t, acct, livemode, &ch_json);
            let ip = g.id("inpay");
            let ip_json = format!(
                "{{\"id\":\"{ip}\",\"object\":\"invoice_payment\",\"amount_paid\":{amount},\"amount_requested\":{amount},\"created\":{t},\"currency\":\"usd\",\"invoice\":\"{inv}\",\"is_default\":true,\"livemode\":{livemode},\"payment\":{{\"charge\":\"{ch}\",\"type\":\"charge\"}},\"status\":\"paid\",\"status_transitions\":{{\"canceled_at\":null,\"paid_at\":{t}}}}}"
            );
            g.push(
                ObjectKind::InvoicePayment,
                ip,
                t,
                acct,
                livemode,
                vec![
                    ("invoice", inv.clone()),
                    ("status", "paid".into()),
                    ("payment.type", "charge".into()),
                    ("payment.id", ch.clone()),
                ],
                None,
                ip_json.clone(),
            );
            g.event("invoice_payment.paid", t, acct, livemode, &ip_json);
            g.event("invoice.paid", t, acct, livemode, &inv_json);
            if sale % 13 == 4 {
                let rt = t + 3600;
                let re = g.id("re");
                let ramt = amount / 2;
                let re_json = format!(
                    "{{\"id\":\"{re}\",\"object\":\"refund\",\"amount\":{ramt},\"charge\":\"{ch}\",\"created\":{rt},\"currency\":\"usd\",\"status\":\"succeeded\"}}"
                );
                g.push(
                    ObjectKind::Refund,
                    re.clone(),
                    rt,
                    acct,
                    livemode,
                    vec![("charge", ch.clone())],
                    None,
                    re_json.clone(),
                );
                let cn = g.id("cn");
                let cn_json = format!(
                    "{{\"id\":\"{cn}\",\"object\":\"credit_note\",\"amount\":{ramt},\"created\":{rt},\"currency\":\"usd\",\"customer\":\"{customer}\",\"invoice\":\"{inv}\",\"refunds\":[{{\"refund\":\"{re}\"}}],\"status\":\"issued\"}}"
                );
                g.push(
                    ObjectKind::CreditNote,
                    cn,
                    rt,
                    acct,
                    livemode,
                    vec![("invoice", inv.clone()), ("customer", customer.clone())],
                    None,
                    cn_json.clone(),
                );
                let txn_at = g.out.len();
                g.txn(rt, acct, livemode, "refund", -ramt, 0, &re, None);
                if acct.is_none() && !livemode {
                    day_txns.push(txn_at);
                }
                g.event("charge.refunded", rt, acct, livemode, &ch_json);
                g.event("credit_note.created", rt, acct, livemode, &cn_json);
            }
            if sale % 29 == 11 {
                let dt = t + 7200;
                let dp = g.id("dp");
                let dp_json = format!(
                    "{{\"id\":\"{dp}\",\"object\":\"dispute\",\"amount\":{amount},\"charge\":\"{ch}\",\"created\":{dt},\"currency\":\"usd\",\"reason\":\"fraudulent\",\"status\":\"needs_response\"}}"
                );
                g.push(
                    ObjectKind::Dispute,
                    dp.clone(),
                    dt,
                    acct,
                    livemode,
                    vec![("charge", ch.clone())],
                    None,
                    dp_json.clone(),
                );
                let txn_at = g.out.len();
                g.txn(dt, acct, livemode, "adjustment", -amount, 1500, &dp, None);
                if acct.is_none() && !livemode {
                    day_txns.push(txn_at);
                }
                g.event("charge.dispute.created", dt, acct, livemode, &dp_json);
            }
        }
        sale += 1;
    }
    g.out.truncate(cfg.objects.max(3));
    g.out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_sized() {
        let cfg = Synthetic {
            objects: 2_000,
            ..Synthetic::default()
        };
        let a = generate(cfg);
        let b = generate(cfg);
        assert_eq!(a, b);
        assert_eq!(a.len(), 2_000);
        let kinds: std::collections::BTreeSet<_> = a.iter().map(|o| o.kind).collect();
        assert!(kinds.len() >= 10, "{kinds:?}");
    }
}
