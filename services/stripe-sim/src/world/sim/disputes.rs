//! Disputes: opening, evidence, closing (won or lost) and the final state.

use super::*;

impl Sim {
    // ------------------------------------------------------------------ disputes

    pub(super) fn dispute_json(&self, k: u64) -> String {
        live_json(
            3000,
            self.disputes.get(&k),
            &self.ctx(),
            render::render_dispute,
        )
    }

    pub(super) fn dispute_open(&mut self, pk: u64) {
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

    pub(super) fn dispute_evidence(&mut self, k: u64) {
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

    pub(super) fn dispute_close(&mut self, k: u64) {
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

    pub(super) fn maybe_final_dispute(&mut self, k: u64) {
        if self.disputes.get(&k).is_some_and(|d| d.pending == 0) {
            self.final_dispute(k);
        }
    }

    pub(super) fn final_dispute(&mut self, k: u64) {
        let Some(d) = self.disputes.remove(&k) else {
            return;
        };
        let json = rendered(3000, &d, &self.final_ctx(), render::render_dispute);
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
}
