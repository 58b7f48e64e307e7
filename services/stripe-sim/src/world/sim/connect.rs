//! Connect: destination charges, transfers and application fees.

use super::*;

impl Sim {
    // ------------------------------------------------------------------ Connect

    pub(super) fn new_connect_charge(&mut self) {
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

    pub(super) fn new_transfer(&mut self) {
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
        let json = rendered(800, &t, &self.ctx(), render::render_transfer);
        let fj = rendered(800, &t, &self.final_ctx(), render::render_transfer);
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
}
