//! Credit notes, before and after an invoice is paid.

use super::*;

impl Sim {
    pub(super) fn new_credit_note(
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

    pub(super) fn emit_credit_note(&mut self, cn: &CreditNote) {
        let json = rendered(1500, cn, &self.ctx(), render::render_credit_note);
        let fj = rendered(1500, cn, &self.final_ctx(), render::render_credit_note);
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

    pub(super) fn credit_pre(&mut self, k: u64, per_mille: i64) {
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

    pub(super) fn credit_post(&mut self, k: u64, full: bool) {
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
}
