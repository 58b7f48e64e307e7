//! Disputes (with their evidence).

use super::*;

pub(super) const EVIDENCE: &str = r#"{"access_activity_log":null,"billing_address":null,"cancellation_policy":null,"cancellation_policy_disclosure":null,"cancellation_rebuttal":null,"customer_communication":null,"customer_email_address":null,"customer_name":null,"customer_purchase_ip":null,"customer_signature":null,"duplicate_charge_documentation":null,"duplicate_charge_explanation":null,"duplicate_charge_id":null,"product_description":null,"receipt":null,"refund_policy":null,"refund_policy_disclosure":null,"refund_refusal_explanation":null,"service_date":null,"service_documentation":null,"shipping_address":null,"shipping_carrier":null,"shipping_date":null,"shipping_documentation":null,"shipping_tracking_number":null,"uncategorized_file":null,"uncategorized_text":null,"enhanced_evidence":{}}"#;
pub(super) const EVIDENCE_SUBMITTED: &str = r#"{"access_activity_log":null,"billing_address":null,"cancellation_policy":null,"cancellation_policy_disclosure":null,"cancellation_rebuttal":null,"customer_communication":null,"customer_email_address":null,"customer_name":null,"customer_purchase_ip":null,"customer_signature":null,"duplicate_charge_documentation":null,"duplicate_charge_explanation":null,"duplicate_charge_id":null,"product_description":"Subscription to Ledgerline services.","receipt":null,"refund_policy":null,"refund_policy_disclosure":null,"refund_refusal_explanation":null,"service_date":null,"service_documentation":null,"shipping_address":null,"shipping_carrier":null,"shipping_date":null,"shipping_documentation":null,"shipping_tracking_number":null,"uncategorized_file":null,"uncategorized_text":"Customer used the service for the whole period.","enhanced_evidence":{}}"#;

pub(crate) fn render_dispute(out: &mut String, d: &Dispute, ctx: &Ctx) {
    let mut o = Obj::new(out);
    o.i("amount", d.amount);
    {
        let mut a = o.arr("balance_transactions");
        for bt in &d.bts {
            render_bt(a.value(), bt, ctx);
        }
        a.end();
    }
    o.s("charge", &d.charge)
        .i("created", d.created)
        .s("currency", code(d.cur))
        .raw(
            "evidence",
            if d.submissions > 0 {
                EVIDENCE_SUBMITTED
            } else {
                EVIDENCE
            },
        );
    {
        let mut e = o.obj("evidence_details");
        e.i("due_by", d.due_by)
            .b("has_evidence", d.submissions > 0)
            .b("past_due", false)
            .i("submission_count", d.submissions)
            .raw("enhanced_eligibility", "{}");
        e.end();
    }
    o.s("id", &d.id)
        .b("is_charge_refundable", false)
        .b("livemode", ctx.livemode)
        .raw("metadata", "{}")
        .s("object", "dispute")
        .s("payment_intent", &d.payment_intent)
        .raw(
            "payment_method_details",
            r#"{"card":{"brand":"visa","case_type":"chargeback","network_reason_code":"10.4","network":"visa"},"type":"card"}"#,
        )
        .s("reason", d.reason)
        .s("status", d.status)
        .raw("enhanced_eligibility_types", "[]");
    o.end();
}
