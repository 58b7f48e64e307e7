//! Payouts: creation, transit, paid, failure or cancellation (returns), reconciliation.

use super::*;

impl Sim {
    // ------------------------------------------------------------------ payouts

    pub(super) fn payout_json(&self, k: u64) -> String {
        live_json(
            900,
            self.payouts.get(&k),
            &self.ctx(),
            render::render_payout,
        )
    }

    pub(super) fn payout(&mut self, b: usize) {
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

    pub(super) fn payout_done_step(&mut self, k: u64) {
        if let Some(p) = self.payouts.get_mut(&k) {
            p.pending = p.pending.saturating_sub(1);
        }
        if self.payouts.get(&k).is_some_and(|p| p.pending == 0) {
            self.final_payout(k);
        }
    }

    pub(super) fn final_payout(&mut self, k: u64) {
        let Some(p) = self.payouts.remove(&k) else {
            return;
        };
        let json = rendered(900, &p, &self.final_ctx(), render::render_payout);
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

    /// Applies `change` to live payout `k`, emits `ty` (with `prev`, the changed fields' old
    /// values) and ends one of its pending steps.
    fn payout_step(
        &mut self,
        k: u64,
        ty: &'static str,
        prev: Option<&str>,
        change: impl FnOnce(&mut Payout),
    ) {
        let Some(p) = self.payouts.get_mut(&k) else {
            return;
        };
        change(p);
        let acct = p.acct;
        let json = self.payout_json(k);
        self.event(acct, ty, &json, prev, Req::Auto);
        self.payout_done_step(k);
    }

    pub(super) fn payout_reconciled(&mut self, k: u64) {
        self.payout_step(k, "payout.reconciliation_completed", None, |p| {
            p.reconciliation_status = "completed";
        });
    }

    pub(super) fn payout_transit(&mut self, k: u64) {
        self.payout_step(k, "payout.updated", Some(r#"{"status":"pending"}"#), |p| {
            p.status = "in_transit";
        });
    }

    pub(super) fn payout_paid(&mut self, k: u64) {
        let Some((acct, cur, amount)) = self.payouts.get(&k).map(|p| (p.acct, p.cur, p.amount))
        else {
            return;
        };
        let t = self.tot(acct, cur);
        t.payouts_in_flight -= amount;
        t.payouts_paid += amount;
        self.payout_step(k, "payout.paid", None, |p| p.status = "paid");
    }

    pub(super) fn payout_return(
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

    pub(super) fn payout_fail(&mut self, k: u64) {
        self.payout_return(k, "failed", "payout_failure", "payout.failed");
    }

    pub(super) fn payout_cancel(&mut self, k: u64) {
        self.payout_return(k, "canceled", "payout_cancel", "payout.canceled");
    }
}
