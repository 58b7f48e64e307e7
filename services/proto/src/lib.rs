//! Ledgerline's wire contracts, generated from the repository's `proto/` directory.
//!
//! The `.proto` files are the public contract for topic payloads and gRPC services,
//! versioned by package (`ledgerline.stripe.v1`). This crate holds the generated code and,
//! as the project grows, the conversions between wire types and `ledgerline-core` types;
//! it holds no logic of its own.

/// Envelopes of the Stripe facts on `stripe.events.v1`, `stripe.balance_transactions.v1` and
/// `stripe.payouts.v1`.
pub mod stripe {
    pub mod v1 {
        #![allow(unreachable_pub, clippy::doc_markdown)]
        include!(concat!(env!("OUT_DIR"), "/ledgerline.stripe.v1.rs"));
    }
}

/// The ledger's journal entries (`ledger.entries.v1`) and its gRPC `LedgerQuery` service.
pub mod ledger {
    pub mod v1 {
        #![allow(unreachable_pub, clippy::doc_markdown, clippy::large_enum_variant)]
        include!(concat!(env!("OUT_DIR"), "/ledgerline.ledger.v1.rs"));

        /// Encoded descriptors of `ledgerline.ledger.v1`, for gRPC reflection.
        pub const FILE_DESCRIPTOR_SET: &[u8] =
            include_bytes!(concat!(env!("OUT_DIR"), "/ledgerline.ledger.v1.bin"));
    }
}

#[cfg(test)]
mod tests {
    use super::stripe::v1::{IngestSource, StripeEventRecord};
    use prost::Message;

    #[test]
    fn event_record_round_trips_raw_json_byte_for_byte() {
        let raw = br#"{"id":"evt_1","object":"event","amount":  1000}"#.to_vec();
        let record = StripeEventRecord {
            event_id: "evt_1".into(),
            event_type: "charge.succeeded".into(),
            account: "acct_1".into(),
            source: IngestSource::Webhook as i32,
            raw_json: raw.clone(),
            ..Default::default()
        };
        let decoded = StripeEventRecord::decode(record.encode_to_vec().as_slice()).unwrap();
        assert_eq!(decoded.raw_json, raw);
        assert_eq!(decoded.source(), IngestSource::Webhook);
    }
}
