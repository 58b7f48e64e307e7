//! Payout composition: the balance transactions of each payout whose reconciliation completed.

use ledgerline_proto::stripe::v1::{IngestSource, PayoutCompositionRecord};

use super::{Ctx, Scope, err};
use crate::IngesterError;
use crate::records::{self, ObjectHead};

impl Ctx {
    /// Publishes the composition of every payout whose reconciliation completed.
    pub async fn payouts(&self, scope: &Scope) -> Result<usize, IngesterError> {
        let mut n = 0;
        for id in self.store.pending_payouts(&scope.key).await? {
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
                    self.store.done_payout(&scope.key, &id).await?;
                    continue;
                }
                Err(e) => return Err(err(e)),
            };
            let head: ObjectHead = serde_json::from_slice(&resp.body)
                .map_err(|e| IngesterError::Internal(e.to_string()))?;
            if head.reconciliation_status.as_deref() != Some("completed") {
                continue;
            }
            let txns = self
                .list_ids(scope, "/v1/balance_transactions", &[("payout", id.clone())])
                .await?;
            let rec = PayoutCompositionRecord {
                payout_id: id.clone(),
                account: scope.account.clone(),
                livemode: head.livemode,
                amount: head.amount,
                currency: head.currency.clone().unwrap_or_default(),
                balance_transaction_ids: txns,
                source: IngestSource::BalanceTransactionsApi as i32,
                received_at: Some(records::timestamp_now()),
                arrival_date: head.arrival_date,
            };
            self.publisher
                .send_all(&[self.publisher.payout(&rec)])
                .await?;
            self.store.done_payout(&scope.key, &id).await?;
            n += 1;
        }
        Ok(n)
    }
}
