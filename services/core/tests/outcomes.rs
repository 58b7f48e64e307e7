//! What applying a fact reports: posted, duplicate, conflict, waiting, skipped, errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{PLATFORM, bt, event, invoice, invoice_payment};
use ledgerline_core::{
    Account, Currency, EntryId, Ledger, MAX_ID_CHARS, ParseError, PostError, SkipKind, post_raw,
};
use serde_json::json;

#[test]
fn unknown_event_types_are_skipped_with_a_reason() {
    let raw = event(
        "evt_1",
        "customer.subscription.created",
        1,
        json!({"id": "sub_1", "object": "subscription"}),
    );
    let out = Ledger::new().apply(PLATFORM, &raw).unwrap();
    let skip = out.skip.unwrap();
    assert_eq!(skip.kind, SkipKind::Unsupported);
    assert!(skip.reason.contains("customer.subscription.created"));
    assert!(out.posted.is_empty());
}

#[test]
fn malformed_and_impossible_facts_are_typed_errors() {
    let mut l = Ledger::new();
    assert!(matches!(
        l.apply(PLATFORM, b"{\"object\":\"event\""),
        Err(PostError::Parse(ParseError::Json(_)))
    ));
    // A supported event whose object misses a needed field.
    let raw = event(
        "evt_2",
        "invoice.finalized",
        1,
        json!({"id": "in_1", "object": "invoice", "currency": "usd", "total": 100}),
    );
    assert!(matches!(
        l.apply(PLATFORM, &raw),
        Err(PostError::Parse(ParseError::MissingField {
            field: "customer",
            ..
        }))
    ));
    // A currency that is not one.
    let raw = bt(
        "txn_1", "charge", "charge", "dollars", 100, 0, 1, 1, true, "ch_1",
    );
    assert!(matches!(
        l.apply(PLATFORM, &raw),
        Err(PostError::Parse(ParseError::Money(_)))
    ));
    // A credit note whose parts exceed its total.
    let raw = event(
        "evt_3",
        "credit_note.created",
        1,
        json!({"id": "cn_1", "object": "credit_note", "currency": "usd", "customer": "cus_1",
               "invoice": "in_1", "total": 100, "pre_payment_amount": 0,
               "post_payment_amount": 100, "out_of_band_amount": 80,
               "refunds": [{"amount_refunded": 50, "refund": "re_1"}]}),
    );
    assert!(matches!(
        l.apply(PLATFORM, &raw),
        Err(PostError::Parse(ParseError::ImpossibleAmounts { .. }))
    ));
    assert!(l.entries().is_empty(), "errors leave the journal unchanged");
}

/// Text or a time no store can keep, or an id no Stripe fact holds, is refused with the fact,
/// wherever the posting carries it: in an entry, in a join a later fact derives an entry from,
/// in a waiting entry.
#[test]
fn values_no_store_can_keep_are_refused_with_the_fact() {
    let unstorable = |raw: &[u8]| match Ledger::new().apply(PLATFORM, raw) {
        Err(PostError::Parse(ParseError::Unstorable { reason, .. })) => reason,
        // An entry of its own at that time is refused as it is built.
        Err(e @ PostError::Entry { .. }) => e.to_string(),
        other => panic!("not refused: {other:?}"),
    };
    // A NUL in the id, and in the customer an invoice joins a later payment to.
    let nul_id = bt(
        "txn_1\u{0}",
        "charge",
        "charge",
        "usd",
        100,
        0,
        1,
        1,
        true,
        "ch_1",
    );
    assert!(unstorable(&nul_id).starts_with("the id holds a NUL character"));
    let nul_customer = event(
        "evt_1",
        "invoice.finalized",
        5,
        invoice("in_1", "cus_\u{0}", "usd", 500, 0, 5),
    );
    assert!(unstorable(&nul_customer).contains("holds a NUL character"));
    // A settlement time the derived entry could not take, and a waiting entry's time.
    let far = 1_000_000_000_000_000;
    let cash = bt(
        "txn_2", "charge", "charge", "usd", 100, 0, far, far, true, "ch_2",
    );
    assert!(
        unstorable(&cash).contains("is not one Stripe could have written"),
        "{}",
        unstorable(&cash)
    );
    let waiting = event(
        "evt_p",
        "invoice_payment.paid",
        10,
        invoice_payment(
            "inpay_1",
            "in_9",
            "usd",
            500,
            json!({"type": "payment_record", "payment_record": "pr_1"}),
            -5,
        ),
    );
    assert!(
        unstorable(&waiting).starts_with("an entry's effective time @-5 is not one"),
        "{}",
        unstorable(&waiting)
    );
    // Times at both ends of what the stores hold are fine.
    let ok = bt(
        "txn_3",
        "charge",
        "charge",
        "usd",
        100,
        0,
        0,
        253_402_300_799,
        true,
        "ch_3",
    );
    assert!(Ledger::new().apply(PLATFORM, &ok).is_ok());

    // An id longer than Stripe's 255 characters (counted as characters, not bytes): in the
    // fact's own id, and in a customer a later fact's entry would carry.
    let longest = format!("txn_{}", "é".repeat(MAX_ID_CHARS - 4));
    let at_the_limit = bt(
        &longest, "charge", "charge", "usd", 100, 0, 1, 1, true, "ch_4",
    );
    assert!(Ledger::new().apply(PLATFORM, &at_the_limit).is_ok());
    let too_long = bt(
        &format!("{longest}x"),
        "charge",
        "charge",
        "usd",
        100,
        0,
        1,
        1,
        true,
        "ch_5",
    );
    assert_eq!(
        unstorable(&too_long),
        "the id is 256 characters long, beyond the 255 of Stripe's ids: an index of the \
         journal cannot key one this long"
    );
    let long_customer = event(
        "evt_2",
        "invoice.finalized",
        5,
        invoice("in_2", &"c".repeat(300), "usd", 500, 0, 5),
    );
    assert!(
        unstorable(&long_customer).contains("is 300 characters long"),
        "{}",
        unstorable(&long_customer)
    );

    // An empty id: no Stripe id is, and it would join facts that have nothing in common.
    let empty_id = bt("", "charge", "charge", "usd", 100, 0, 1, 1, true, "ch_6");
    assert_eq!(
        unstorable(&empty_id),
        "the id is empty, which no Stripe id is"
    );
}

#[test]
fn same_id_with_other_content_is_a_conflict_not_an_overwrite() {
    let mut l = Ledger::new();
    let first = bt(
        "txn_1", "charge", "charge", "usd", 1000, 30, 1, 2, false, "ch_1",
    );
    let out = l.apply(PLATFORM, &first).unwrap();
    assert_eq!(out.posted.len(), 2);
    let again = l.apply(PLATFORM, &first).unwrap();
    assert!(again.posted.is_empty());
    assert_eq!(again.duplicates.len(), 2);
    // Stripe never changes an amount; if the bytes say otherwise, keep the first and report.
    let changed = bt(
        "txn_1", "charge", "charge", "usd", 1200, 30, 1, 2, false, "ch_1",
    );
    let out = l.apply(PLATFORM, &changed).unwrap();
    assert_eq!(out.conflicts.len(), 2);
    assert_eq!(l.conflicts().len(), 2);
    let usd = Currency::parse("usd").unwrap();
    assert_eq!(
        l.balance(PLATFORM, &Account::UninvoicedSales, usd).minor(),
        -1000
    );
    let id = EntryId::derive(PLATFORM, "txn_1", "balance_transaction");
    assert_eq!(out.conflicts[0].id, id);
    assert_eq!(l.entry(id).unwrap().lines().len(), 3);
}

/// A lean journal (the ledger service's) keeps the balance transaction's entry only as a
/// digest and its availability reclass whole; it must tell duplicates from conflicts exactly
/// as a journal that keeps everything does, through both.
#[test]
fn a_lean_journal_tells_duplicates_from_conflicts_like_a_full_one() {
    let first = bt(
        "txn_1", "charge", "charge", "usd", 1000, 30, 1, 2, false, "ch_1",
    );
    let changed = bt(
        "txn_1", "charge", "charge", "usd", 1200, 30, 1, 2, false, "ch_1",
    );
    let mut full = Ledger::new();
    let mut lean = Ledger::lean();
    assert!(full.keeps_history() && !lean.keeps_history());
    for raw in [&first, &first, &changed, &first] {
        let expected = full.apply(PLATFORM, raw).unwrap();
        let out = lean.apply(PLATFORM, raw).unwrap();
        assert_eq!(out, expected);
        let posted = lean.take_posted();
        let ids: Vec<_> = posted.iter().map(|e| e.id()).collect();
        assert_eq!(ids, expected.posted);
        for e in &posted {
            assert_eq!(Some(e), full.entry(e.id()));
        }
    }
    assert_eq!(lean.conflicts(), full.conflicts());
    assert_eq!(lean.conflicts().len(), 2);
    assert_eq!(lean.trial_balance(PLATFORM), full.trial_balance(PLATFORM));
    // The reclass is kept whole (a later observation may reverse it), the sale only as a digest.
    let sale = EntryId::derive(PLATFORM, "txn_1", "balance_transaction");
    assert!(lean.entry(sale).is_none());
    assert_eq!(lean.entries().len(), 1);
    assert_eq!(lean.entries()[0].rule(), "balance_transaction.available");
    assert!(
        full.take_posted().is_empty(),
        "a full journal keeps its entries instead"
    );
}

#[test]
fn invoice_payments_wait_for_the_invoice_customer() {
    let mut l = Ledger::new();
    let pay = event(
        "evt_p",
        "invoice_payment.paid",
        10,
        invoice_payment(
            "inpay_1",
            "in_1",
            "usd",
            500,
            json!({"type": "payment_record", "payment_record": "pr_1"}),
            10,
        ),
    );
    let out = l.apply(PLATFORM, &pay).unwrap();
    assert_eq!(out.waiting, 1);
    assert_eq!(l.awaiting().count(), 1);
    let fin = event(
        "evt_f",
        "invoice.finalized",
        5,
        invoice("in_1", "cus_7", "usd", 500, 0, 5),
    );
    let out = l.apply(PLATFORM, &fin).unwrap();
    assert_eq!(
        out.posted.len(),
        2,
        "the finalization and the waiting payment"
    );
    assert_eq!(l.awaiting().count(), 0);
    let usd = Currency::parse("usd").unwrap();
    assert!(
        l.balance(PLATFORM, &Account::Receivable("cus_7".into()), usd)
            .is_zero()
    );
}

#[test]
fn events_of_connected_accounts_post_to_their_own_ledger() {
    let mut raw: serde_json::Value = serde_json::from_slice(&event(
        "evt_c",
        "invoice.finalized",
        5,
        invoice("in_9", "cus_9", "usd", 700, 0, 5),
    ))
    .unwrap();
    raw["account"] = json!("acct_connected");
    let posting = post_raw(PLATFORM, &serde_json::to_vec(&raw).unwrap()).unwrap();
    assert_eq!(&*posting.ledger, "acct_connected");
    assert_eq!(posting.entries[0].ledger(), "acct_connected");
}

#[test]
fn entry_ids_are_stable() {
    // Every store keys entries by these ids: this pins the derivation (checked independently
    // with Python's uuid.uuid5 over the same namespace and name).
    assert_eq!(
        EntryId::derive("acct_1", "txn_1", "balance_transaction").to_string(),
        "0a8dd99d-61f5-5cff-81a9-e9e584cc7379"
    );
    assert_ne!(
        EntryId::derive("acct_1", "txn_1", "balance_transaction"),
        EntryId::derive("acct_2", "txn_1", "balance_transaction")
    );
    // A long source takes the heap path and gives the same id as computed directly.
    let long = "x".repeat(300);
    assert_eq!(
        EntryId::derive("acct_1", &long, "r").as_uuid(),
        uuid::Uuid::new_v5(
            &ledgerline_core::entry::ENTRY_ID_NAMESPACE,
            format!("acct_1\u{1f}{long}\u{1f}r").as_bytes()
        )
    );
}

#[test]
fn understood_events_without_effect_say_so() {
    let raw = event(
        "evt_pc",
        "payout.canceled",
        1,
        common::payout("po_9", "usd", 100),
    );
    let out = Ledger::new().apply(PLATFORM, &raw).unwrap();
    assert_eq!(out.skip.unwrap().kind, SkipKind::NoAccountingEffect);
}

#[test]
fn an_unknown_payment_type_goes_to_suspense_with_a_reason() {
    let mut l = Ledger::new();
    let fin = event(
        "evt_f",
        "invoice.finalized",
        5,
        invoice("in_1", "cus_1", "usd", 800, 0, 5),
    );
    l.apply(PLATFORM, &fin).unwrap();
    let pay = event(
        "evt_p",
        "invoice_payment.paid",
        6,
        invoice_payment(
            "inpay_1",
            "in_1",
            "usd",
            800,
            json!({"type": "bank_transfer_of_the_future"}),
            6,
        ),
    );
    l.apply(PLATFORM, &pay).unwrap();
    let id = EntryId::derive(PLATFORM, "inpay_1", "invoice_payment.paid");
    let e = l.entry(id).unwrap();
    assert_eq!(e.lines()[0].account(), &Account::Suspense);
    assert!(e.memo().unwrap().contains("bank_transfer_of_the_future"));
}
