//! Payout composition: the balance transactions of each payout whose reconciliation completed.

use ledgerline_proto::stripe::v1::{IngestSource, PayoutCompositionRecord};
use prost::Message as _;

use super::{Ctx, Scope, err};
use crate::IngesterError;
use crate::records::{self, ObjectHead};

impl Ctx {
    /// Publishes the composition of every payout whose reconciliation completed. A payout that
    /// fails is logged and left pending for the next round, after the others had their turn
    /// (one that always fails would otherwise hold back every payout after it); the round then
    /// fails with its error.
    pub async fn payouts(&self, scope: &Scope) -> Result<usize, IngesterError> {
        let mut n = 0;
        let mut failed = None;
        for id in self.store.pending_payouts(&scope.key).await? {
            match self.payout(scope, &id).await {
                Ok(published) => n += usize::from(published),
                Err(e) => {
                    tracing::error!(scope = %scope.key, payout = %id, error = %e, "payout composition not published; retried next round");
                    failed.get_or_insert(e);
                }
            }
        }
        failed.map_or(Ok(n), Err)
    }

    /// Publishes payout `id`'s composition if its reconciliation completed: whether it did.
    async fn payout(&self, scope: &Scope, id: &str) -> Result<bool, IngesterError> {
        let resp = match scope
            .client
            .get(
                &format!("/v1/payouts/{id}"),
                &[],
                scope.stripe_account.as_deref(),
            )
            .await
        {
            Ok(r) => r,
            Err(e) if e.status() == Some(404) => {
                self.store.done_payout(&scope.key, id).await?;
                return Ok(false);
            }
            Err(e) => return Err(err(e)),
        };
        let head: ObjectHead = serde_json::from_slice(&resp.body).map_err(|e| {
            IngesterError::Internal(format!("payout {id} is not the JSON of a payout: {e}"))
        })?;
        if head.reconciliation_status.as_deref() != Some("completed") {
            return Ok(false);
        }
        let txns = self
            .list_ids(
                scope,
                "/v1/balance_transactions",
                &[("payout", id.to_owned())],
            )
            .await?;
        let rec = PayoutCompositionRecord {
            payout_id: id.to_owned(),
            account: scope.account.clone(),
            livemode: head.livemode,
            amount: head.amount,
            currency: head.currency.clone().unwrap_or_default(),
            balance_transaction_ids: txns,
            source: IngestSource::BalanceTransactionsApi as i32,
            received_at: Some(records::timestamp_now()),
            arrival_date: head.arrival_date,
            part: 0,
            parts: 0,
        };
        let out: Vec<_> = in_parts(rec, PAYOUT_PART_BYTES)
            .iter()
            .map(|part| self.publisher.payout(part))
            .collect();
        self.publisher.send_all(&out).await?;
        self.store.done_payout(&scope.key, id).await?;
        Ok(true)
    }
}

/// The most a payout composition's record holds (its envelope and ids), in bytes: well under
/// the producer's limit ([`crate::publish::MAX_RECORD_BYTES`]), which one payout of ~33,000
/// transactions would pass (the payouts poller then failed on it at every round, and every
/// payout after it waited).
const PAYOUT_PART_BYTES: usize = 512 * 1024;

/// `whole` as the records that carry it, each at most `max_bytes` encoded: itself when it fits,
/// else parts numbered from 0 with its ids split in order (see `PayoutCompositionRecord.parts`).
fn in_parts(whole: PayoutCompositionRecord, max_bytes: usize) -> Vec<PayoutCompositionRecord> {
    if whole.encoded_len() <= max_bytes {
        return vec![whole];
    }
    let empty = PayoutCompositionRecord {
        balance_transaction_ids: Vec::new(),
        part: u32::MAX,
        parts: u32::MAX,
        ..whole.clone()
    };
    // An id costs its bytes and at most 4 more: its tag (1) and its length's varint (≤ 3 for
    // any id under 2 MiB).
    let room = max_bytes.saturating_sub(empty.encoded_len()).max(1);
    let mut parts: Vec<PayoutCompositionRecord> = Vec::new();
    let mut used = room;
    for id in whole.balance_transaction_ids {
        let cost = id.len() + 4;
        if used + cost > room {
            parts.push(PayoutCompositionRecord {
                balance_transaction_ids: Vec::new(),
                ..empty.clone()
            });
            used = 0;
        }
        used += cost;
        if let Some(part) = parts.last_mut() {
            part.balance_transaction_ids.push(id);
        }
    }
    let count = u32::try_from(parts.len()).unwrap_or(u32::MAX);
    for (n, part) in (0..).zip(parts.iter_mut()) {
        part.part = n;
        part.parts = count;
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn composition(ids: usize, id_len: usize) -> PayoutCompositionRecord {
        PayoutCompositionRecord {
            payout_id: "po_1".into(),
            account: "acct_1".into(),
            amount: 123_456_789,
            currency: "usd".into(),
            balance_transaction_ids: (0..ids)
                .map(|n| format!("txn_{n:0>width$}", width = id_len - 4))
                .collect(),
            ..PayoutCompositionRecord::default()
        }
    }

    #[test]
    fn a_composition_that_fits_is_one_record_as_before() {
        let whole = composition(10_000, 28);
        assert_eq!(in_parts(whole.clone(), PAYOUT_PART_BYTES), vec![whole]);
    }

    #[test]
    fn a_large_composition_comes_in_parts_that_each_fit_with_every_id_once_in_order() {
        for (ids, id_len) in [(100_000, 28), (9_000, 255)] {
            let whole = composition(ids, id_len);
            assert!(whole.encoded_len() > crate::publish::MAX_RECORD_BYTES);
            let parts = in_parts(whole.clone(), PAYOUT_PART_BYTES);
            assert!(parts.len() > 1);
            let count = u32::try_from(parts.len()).unwrap_or(u32::MAX);
            for (n, part) in (0..).zip(&parts) {
                assert!(
                    part.encoded_len() <= PAYOUT_PART_BYTES,
                    "{}",
                    part.encoded_len()
                );
                assert_eq!((part.part, part.parts), (n, count));
                assert_eq!(
                    (&part.payout_id, part.amount, &part.currency),
                    (&whole.payout_id, whole.amount, &whole.currency)
                );
                assert!(!part.balance_transaction_ids.is_empty());
            }
            let joined: Vec<String> = parts
                .into_iter()
                .flat_map(|p| p.balance_transaction_ids)
                .collect();
            assert_eq!(joined, whole.balance_transaction_ids);
        }
    }
}
