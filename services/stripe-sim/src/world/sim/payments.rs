//! Card payments: PaymentIntents and charges (with or without invoices), success and failure, refunds.

use super::*;

impl Sim {
    /// Creates a PaymentIntent (and its `payment_intent.created` event).
    pub(super) fn new_payment(
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
        let json = rendered(2048, &p, &self.ctx(), render::render_payment_intent);
        self.payments.insert(key, p);
        let req = if acct == 0 { Req::Auto } else { Req::Api };
        self.event(acct, "payment_intent.created", &json, None, req);
        key
    }

    pub(super) fn charge_json(&self, p: &Payment, ctx: &Ctx) -> String {
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

    pub(super) fn pi_json(&self, k: u64) -> String {
        live_json(
            2048,
            self.payments.get(&k),
            &self.ctx(),
            render::render_payment_intent,
        )
    }

    /// A failed card attempt: a failed charge (final at once), `payment_intent.payment_failed`.
    pub(super) fn charge_fail(&mut self, k: u64) {
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
    pub(super) fn charge_success(&mut self, k: u64, app_fee_pct: Option<i64>) {
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
            let fj = rendered(800, &fee, &self.ctx(), render::render_application_fee);
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

    pub(super) fn hold_payment(&mut self, k: u64) {
        if let Some(p) = self.payments.get_mut(&k) {
            p.pending += 1;
        }
    }

    pub(super) fn release_payment(&mut self, k: u64) {
        if let Some(p) = self.payments.get_mut(&k) {
            p.pending = p.pending.saturating_sub(1);
        }
    }

    pub(super) fn maybe_final_payment(&mut self, k: u64) {
        if self.payments.get(&k).is_some_and(|p| p.pending == 0) {
            self.final_payment(k);
        }
    }

    pub(super) fn final_payment(&mut self, k: u64) {
        let Some(p) = self.payments.remove(&k) else {
            return;
        };
        let ctx = self.final_ctx();
        let pij = rendered(2048, &p, &ctx, render::render_payment_intent);
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

    // ------------------------------------------------------------------ charges without invoices

    pub(super) fn random_amount(&mut self, cur: usize, usd_lo: i64, usd_hi: i64) -> i64 {
        let usd = self.rng.range(usd_lo, usd_hi);
        let c = cur_of(cur);
        let rate = cross_rate(CURRENCIES[USD].usd_nano, c.usd_nano);
        let conv = convert(usd, &CURRENCIES[USD], c, rate);
        scale_step(conv, 1, 1, c.step).max(c.step * 50)
    }

    pub(super) fn new_charge(&mut self) {
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

    pub(super) fn refund(&mut self, k: u64, amount: i64, cn: Option<String>) {
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

    pub(super) fn refund_with_id(&mut self, k: u64, amount: i64, cn: Option<String>, id: String) {
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
        let rj = rendered(800, &refund, &self.ctx(), render::render_refund);
        self.event(acct, "refund.created", &rj, None, Req::Api);
        let fj = rendered(800, &refund, &self.final_ctx(), render::render_refund);
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
}
