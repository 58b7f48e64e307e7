//! Customers, the catalogue (products and prices) and connected accounts.

use super::*;

pub(crate) fn render_customer(out: &mut String, c: &Customer, ctx: &Ctx) {
    let mut o = Obj::new(out);
    o.raw("address", NULL_ADDRESS)
        .i("balance", 0)
        .i("created", c.created)
        .s("currency", code(c.cur))
        .null("default_source")
        .b("delinquent", false)
        .null("description")
        .null("discount")
        .s("email", &c.email)
        .s("id", &c.id)
        .s("invoice_prefix", &c.prefix);
    {
        let mut s = o.obj("invoice_settings");
        s.null("custom_fields")
            .null("default_payment_method")
            .null("footer")
            .null("rendering_options");
        s.end();
    }
    o.b("livemode", ctx.livemode);
    {
        let mut m = o.obj("metadata");
        m.s("company_id", &c.company_id);
        m.s(
            "payment_terms",
            if c.bank { "bank_transfer" } else { "card" },
        );
        m.end();
    }
    o.s("name", &c.name)
        .i("next_invoice_sequence", 1)
        .s("object", "customer")
        .null("phone")
        .raw("preferred_locales", "[]")
        .null("shipping")
        .s("tax_exempt", if c.taxable { "none" } else { "exempt" })
        .null("test_clock")
        .null("customer_account");
    o.end();
}

pub(crate) fn render_product(out: &mut String, p: &Product, ctx: &Ctx) {
    let mut o = Obj::new(out);
    o.b("active", true)
        .raw("attributes", "[]")
        .i("created", p.created)
        .null("default_price")
        .null("description")
        .s("id", &p.id)
        .raw("images", "[]")
        .b("livemode", ctx.livemode)
        .raw("marketing_features", "[]")
        .raw("metadata", "{}")
        .s("name", p.name)
        .s("object", "product")
        .null("package_dimensions")
        .null("shippable")
        .null("statement_descriptor")
        .null("tax_code")
        .s("type", "service")
        .null("unit_label")
        .i("updated", p.created)
        .null("url");
    o.end();
}

pub(crate) fn render_price(out: &mut String, p: &Price, ctx: &Ctx) {
    let mut o = Obj::new(out);
    o.b("active", true)
        .s("billing_scheme", "per_unit")
        .i("created", p.created)
        .s("currency", code(p.cur))
        .null("custom_unit_amount")
        .s("id", &p.id)
        .b("livemode", ctx.livemode)
        .null("lookup_key")
        .raw("metadata", "{}")
        .null("nickname")
        .s("object", "price")
        .s("product", &p.product);
    if p.recurring {
        o.raw(
            "recurring",
            r#"{"interval":"month","interval_count":1,"meter":null,"trial_period_days":null,"usage_type":"licensed"}"#,
        );
    } else {
        o.null("recurring");
    }
    o.s("tax_behavior", "exclusive")
        .null("tiers_mode")
        .null("transform_quantity")
        .s("type", if p.recurring { "recurring" } else { "one_time" })
        .i("unit_amount", p.unit_amount);
    write_str(o.value("unit_amount_decimal"), &p.unit_amount.to_string());
    o.end();
}

pub(crate) fn render_account(out: &mut String, a: &Account, created: i64) {
    let mut o = Obj::new(out);
    {
        let mut b = o.obj("business_profile");
        b.null("mcc")
            .s("name", &a.name)
            .null("support_email")
            .null("url");
        b.end();
    }
    o.s("business_type", "company")
        .raw("capabilities", r#"{"card_payments":"active","transfers":"active"}"#)
        .b("charges_enabled", true)
        .raw("controller", r#"{"type":"account"}"#)
        .s("country", "US")
        .i("created", created)
        .s("default_currency", "usd")
        .b("details_submitted", true)
        .s("email", &a.email)
        .s("id", a.id.as_deref().unwrap_or(""))
        .raw("metadata", "{}")
        .s("object", "account")
        .b("payouts_enabled", true)
        .raw(
            "settings",
            r#"{"payouts":{"debit_negative_balances":true,"schedule":{"delay_days":2,"interval":"daily"},"statement_descriptor":null}}"#,
        )
        .s("type", "standard");
    o.end();
}
