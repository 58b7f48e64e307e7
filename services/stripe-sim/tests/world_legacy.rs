//! The API-version knob: early history rendered in `2024-06-20`, the rest in the current version.
#![allow(clippy::unwrap_used)]

use ledgerline_stripe_sim::object::ObjectKind;
use ledgerline_stripe_sim::world::{API_VERSION, LEGACY_API_VERSION, World, WorldConfig};
use serde_json::Value;

#[test]
fn early_events_use_the_legacy_shape() {
    let start = 1_767_225_600;
    let until = start + 20 * 86_400;
    let cfg = WorldConfig {
        legacy_api_until: Some(until),
        days: Some(40),
        ..WorldConfig::with_facts(3, 12_000)
    };
    let world = World::generate(&cfg);
    let (mut legacy_invoices, mut current_invoices, mut early_ip_events, mut late_ip_events) =
        (0, 0, 0, 0);
    for o in world.objects.iter().filter(|o| o.kind == ObjectKind::Event) {
        let v: Value = serde_json::from_str(&o.json).unwrap();
        let version = v["api_version"].as_str().unwrap();
        let ty = v["type"].as_str().unwrap();
        if o.created < until {
            assert_eq!(version, LEGACY_API_VERSION);
            if ty == "invoice_payment.paid" {
                early_ip_events += 1;
            }
            if ty == "invoice.paid" {
                let inv = &v["data"]["object"];
                assert_eq!(inv["paid"], Value::Bool(true));
                assert_eq!(inv["paid_out_of_band"], Value::Bool(false));
                assert!(inv["charge"].as_str().unwrap().starts_with("ch_"));
                assert!(inv["payment_intent"].as_str().unwrap().starts_with("pi_"));
                assert!(inv.get("parent").is_none());
                legacy_invoices += 1;
            }
            if ty == "invoice.updated" {
                // No partial payments before the basil versions: one charge pays an invoice.
                assert!(
                    v["data"]["previous_attributes"]
                        .get("amount_paid")
                        .is_none()
                );
            }
            if ty == "charge.succeeded" && o.account.is_none() {
                assert!(v["data"]["object"].get("invoice").is_some());
            }
        } else {
            assert_eq!(version, API_VERSION);
            if ty == "invoice_payment.paid" {
                late_ip_events += 1;
            }
            if ty == "invoice.paid" {
                let inv = &v["data"]["object"];
                assert!(inv.get("paid").is_none() && inv.get("charge").is_none());
                current_invoices += 1;
            }
        }
    }
    assert_eq!(
        early_ip_events, 0,
        "no invoice_payment.paid before the basil versions"
    );
    assert!(legacy_invoices > 10 && current_invoices > 10 && late_ip_events > 10);
    // Objects served by the API are in the current version.
    for o in world
        .objects
        .iter()
        .filter(|o| o.kind == ObjectKind::Invoice)
    {
        let v: Value = serde_json::from_str(&o.json).unwrap();
        assert!(v.get("paid").is_none());
    }
}
