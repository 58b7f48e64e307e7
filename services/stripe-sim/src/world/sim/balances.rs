//! Balance transactions and settlement: emitting and booking them, which balance a currency
//! settles to, pending funds becoming available.

use super::*;

impl Sim {
    pub(super) fn emit_bt(&mut self, bt: &Bt, payout: Option<&str>) {
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
    pub(super) fn book_bt(&mut self, bt: &Bt) {
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

    pub(super) fn wait_bt(&mut self, bt: Bt) {
        self.book_bt(&bt);
        if let Some(b) = self.bals.get_mut(bt.bal) {
            b.waiting.push(bt);
        }
    }

    pub(super) fn bal_for(&self, acct: usize, presentment: usize) -> usize {
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

    pub(super) fn advance_balances(&mut self, t: i64) {
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
}
