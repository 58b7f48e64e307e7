//! Invoices: creation, finalisation, payment attempts, partial payments, voiding and the final state.

use super::*;

impl Sim {
    // ------------------------------------------------------------------ invoices

    pub(super) fn new_invoice(&mut self, flow: Flow) {
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
        let json = rendered(4096, &inv, &self.ctx(), render::render_invoice);
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

    pub(super) fn invoice_json(&self, k: u64) -> String {
        live_json(
            4096,
            self.invoices.get(&k),
            &self.ctx(),
            render::render_invoice,
        )
    }

    pub(super) fn invoice_step(&mut self, k: u64, step: Step) {
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

    pub(super) fn finalize(&mut self, k: u64) {
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

    /// Pays `amount` of invoice `k` with payment `pk` (already succeeded) through invoice
    /// payment `ip_idx` and emits `invoice_payment.paid`.
    pub(super) fn apply_invoice_payment(&mut self, k: u64, pk: u64, amount: i64, default: bool) {
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

    pub(super) fn mark_paid(&mut self, k: u64) {
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

    pub(super) fn attempt(&mut self, k: u64, ok: bool) {
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

    pub(super) fn pay_partial(&mut self, k: u64) {
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

    pub(super) fn void(&mut self, k: u64) {
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

    pub(super) fn uncollectible(&mut self, k: u64) {
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

    pub(super) fn final_invoice(&mut self, k: u64) {
        let Some(inv) = self.invoices.remove(&k) else {
            return;
        };
        let ctx = self.final_ctx();
        for ip in &inv.payments {
            let j = rendered(512, ip, &ctx, render::render_invoice_payment);
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
        let json = rendered(4096, &inv, &ctx, render::render_invoice);
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
}
