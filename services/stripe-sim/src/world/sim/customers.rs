//! Customers and the price catalogue: picking or creating customers, prices per currency.

use super::*;

impl Sim {
    // ------------------------------------------------------------------ customers and catalog

    pub(super) fn pick_customer(&mut self, bank: bool) -> usize {
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

    pub(super) fn create_customer(&mut self, bank: bool) -> usize {
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
        let json = rendered(900, &c, &self.final_ctx(), render::render_customer);
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
    pub(super) fn price(&mut self, p: usize, cur: usize) -> Price {
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
}
