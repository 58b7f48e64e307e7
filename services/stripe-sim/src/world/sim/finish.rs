//! The end of the run: the final state of what is left and the ground truth.

use super::*;

impl Sim {
    // ------------------------------------------------------------------ the end

    pub(super) fn finish(&mut self) {
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
