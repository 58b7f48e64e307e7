//! Backfill: every object of each resource, page by page from its durable cursor.

use ledgerline_proto::stripe::v1::IngestSource;
use serde::{Deserialize, Serialize};

use super::{Ctx, Scope, err};
use crate::IngesterError;
use crate::records::{self, ObjectHead};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BackfillCursor {
    pub starting_after: Option<String>,
    pub done: bool,
    pub count: u64,
}

impl Ctx {
    /// Backfills one resource page by page from its durable cursor.
    pub async fn backfill(&self, scope: &Scope, resource: &str) -> Result<u64, IngesterError> {
        let stream = format!("backfill:{resource}");
        let mut cur: BackfillCursor = self
            .store
            .cursor(&scope.key, &stream)
            .await?
            .unwrap_or_default();
        let path = format!("/v1/{resource}");
        let api_version = scope.client.config().stripe_version.clone();
        while !cur.done {
            let mut params = Vec::new();
            if let Some(a) = &cur.starting_after {
                params.push(("starting_after", a.clone()));
            }
            let page = scope
                .client
                .list_page(&path, &params, scope.stripe_account.as_deref())
                .await
                .map_err(err)?;
            let mut out = Vec::with_capacity(page.data.len());
            let mut payouts = Vec::new();
            for o in &page.data {
                if resource == "balance_transactions" {
                    out.push(self.bt_outgoing(scope, o, IngestSource::Backfill).0);
                    continue;
                }
                let head = match serde_json::from_slice::<ObjectHead>(&o.raw) {
                    Ok(head) => head,
                    Err(e) => {
                        let listed = ObjectHead::listed(&o.id, o.created, &o.raw);
                        let rec =
                            records::backfill_record(&listed, &o.raw, &scope.account, &api_version);
                        let reason = format!(
                            "the ingester: an object of the backfill's {resource} list does not \
                             have the shape of a Stripe object: {e}"
                        );
                        out.push(self.publisher.event_dead_letter(&rec, &reason));
                        continue;
                    }
                };
                if !self.filters.accepts(None, &head) {
                    continue;
                }
                if resource == "payouts"
                    && head.reconciliation_status.as_deref() == Some("completed")
                    && let Some(id) = &head.id
                {
                    payouts.push(id.clone());
                }
                let rec = records::backfill_record(&head, &o.raw, &scope.account, &api_version);
                out.push(self.publisher.event(&rec));
            }
            self.publisher.send_all(&out).await?;
            self.store.add_pending_payouts(&scope.key, &payouts).await?;
            cur.count += u64::try_from(page.data.len()).unwrap_or(0);
            cur.starting_after = page
                .data
                .last()
                .map(|o| o.id.clone())
                .or(cur.starting_after);
            cur.done = !page.has_more;
            self.store.save_cursor(&scope.key, &stream, &cur).await?;
            self.metrics
                .backfill_progress(&scope.key, resource, cur.count, cur.done);
            tracing::info!(scope = %scope.key, resource, objects = cur.count, done = cur.done, "backfill progress");
        }
        self.metrics
            .backfill_progress(&scope.key, resource, cur.count, true);
        Ok(cur.count)
    }
}

/// Every resource the backfill reads.
pub const BACKFILL_RESOURCES: [&str; 9] = [
    "customers",
    "invoices",
    "invoice_payments",
    "credit_notes",
    "charges",
    "refunds",
    "disputes",
    "payouts",
    "balance_transactions",
];
