//! Balance-transaction polling from its cursor, and the look-back over pending transactions.

use std::collections::BTreeMap;

use ledgerline_proto::stripe::v1::IngestSource;
use ledgerline_stripe::RawObject;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{CHUNK, Ctx, Scope};
use crate::IngesterError;
use crate::publish::Outgoing;
use crate::records::{self, ObjectHead};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BtCursor {
    /// Everything created before this was published at least once.
    pub created: i64,
    /// The transactions created in the second `created` that were published, each with the
    /// digest ([`bt_digest`]) of the JSON last published. Every poll re-reads that second
    /// (Stripe's `created` has one-second resolution: more may still appear in it); a re-read
    /// whose JSON is unchanged is not published again, a changed one is. Absent in cursors
    /// saved before it existed: their second is published once more.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub published: BTreeMap<String, String>,
}

/// The digest a [`BtCursor`] keeps of a balance transaction's raw JSON: the first 128 bits of
/// its SHA-256, in hex.
pub fn bt_digest(raw: &[u8]) -> String {
    let d = Sha256::digest(raw);
    hex::encode(&d[..16])
}

impl Ctx {
    /// The record of a listed balance transaction, and its head; one the ingester cannot read
    /// is a dead letter, without a head.
    pub(super) fn bt_outgoing(
        &self,
        scope: &Scope,
        obj: &RawObject,
        source: IngestSource,
    ) -> (Outgoing, Option<ObjectHead>) {
        let parsed = serde_json::from_slice::<ObjectHead>(&obj.raw);
        let head = match &parsed {
            Ok(head) => head,
            Err(_) => &ObjectHead::listed(&obj.id, obj.created, &obj.raw),
        };
        let rec = records::bt_record(
            head,
            &obj.raw,
            &scope.account,
            &scope.client.config().stripe_version,
            source,
            scope.client.mode().is_live(),
        );
        match parsed {
            Ok(head) => (self.publisher.balance_transaction(&rec), Some(head)),
            Err(e) => {
                let reason = format!(
                    "the ingester: the balance transaction does not have the shape of a Stripe \
                     object: {e}"
                );
                (
                    self.publisher
                        .balance_transaction_dead_letter(&rec, &reason),
                    None,
                )
            }
        }
    }

    /// Publishes `objs` (oldest first) in chunks, except those created in `cursor`'s second
    /// whose JSON is the one it records as published; tracks pending ones; records what it
    /// published in `cursor` (moving it to the newest second read when `advance`) and saves
    /// it after each acknowledged chunk that changed it. Returns the number published.
    async fn publish_bts(
        &self,
        scope: &Scope,
        objs: &[RawObject],
        source: IngestSource,
        cursor: &mut BtCursor,
        advance: bool,
    ) -> Result<usize, IngesterError> {
        let mut n = 0;
        for chunk in objs.chunks(CHUNK) {
            let mut out = Vec::with_capacity(chunk.len());
            let mut published = Vec::with_capacity(chunk.len());
            let mut pending = Vec::new();
            let mut available = Vec::new();
            for o in chunk {
                let (rec, head) = self.bt_outgoing(scope, o, source);
                // Unchanged ones keep their pending state in step too (idempotent).
                match head.as_ref().map(|h| (h.status.as_deref(), h.available_on)) {
                    Some((Some("pending"), available_on)) => {
                        pending.push((o.id.clone(), o.created, available_on));
                    }
                    _ => available.push(o.id.clone()),
                }
                let digest = bt_digest(&o.raw);
                if o.created == cursor.created && cursor.published.get(&o.id) == Some(&digest) {
                    continue;
                }
                out.push(rec);
                published.push((o, digest));
            }
            self.publisher.send_all(&out).await?;
            n += out.len();
            self.store.upsert_pending_bts(&scope.key, &pending).await?;
            self.store
                .delete_pending_bts(&scope.key, &available)
                .await?;
            let mut changed = false;
            if advance
                && let Some(last) = chunk.last()
                && last.created > cursor.created
            {
                cursor.created = last.created;
                cursor.published.clear();
                changed = true;
            }
            for (o, digest) in published {
                if o.created == cursor.created {
                    cursor.published.insert(o.id.clone(), digest);
                    changed = true;
                }
            }
            if changed {
                self.store
                    .save_cursor(&scope.key, "balance_transactions", cursor)
                    .await?;
                self.metrics
                    .cursor(&scope.key, "balance_transactions", cursor.created);
            }
        }
        Ok(n)
    }

    /// New balance transactions since the cursor, oldest first, memory bounded by
    /// `walk_buffer`. The cursor's second is re-read (more may appear in it), but only the
    /// transactions of it that are new or whose JSON changed are published again.
    /// Returns the number read.
    pub async fn poll_balance_transactions(&self, scope: &Scope) -> Result<usize, IngesterError> {
        let mut cursor: BtCursor = self
            .store
            .cursor(&scope.key, "balance_transactions")
            .await?
            .unwrap_or_default();
        let mut walk = self
            .oldest_first(
                scope,
                "/v1/balance_transactions",
                vec![("created[gte]", cursor.created.to_string())],
                None,
            )
            .await?;
        while let Some(chunk) = walk.next_chunk().await? {
            self.publish_bts(
                scope,
                &chunk,
                IngestSource::BalanceTransactionsApi,
                &mut cursor,
                true,
            )
            .await?;
        }
        if cursor.created > 0 {
            self.metrics
                .cursor(&scope.key, "balance_transactions", cursor.created);
        }
        Ok(walk.info.objects)
    }

    /// The look-back: re-reads from the oldest still-pending transaction and re-publishes
    /// those whose status or `available_on` changed. `now_hint` is the newest `created` seen (≤ Stripe's now);
    /// `force` re-reads even when no `available_on` has passed it.
    pub async fn recheck_pending(
        &self,
        scope: &Scope,
        now_hint: i64,
        force: bool,
    ) -> Result<usize, IngesterError> {
        let Some((min_created, min_available, _)) =
            self.store.pending_bt_window(&scope.key).await?
        else {
            return Ok(0);
        };
        if !force && min_available > now_hint {
            return Ok(0);
        }
        let pending = self.store.pending_bts(&scope.key).await?;
        // Those in the cursor's second are recorded there as published in their new version,
        // so that the next poll's re-read of that second does not publish them again.
        let mut cursor: BtCursor = self
            .store
            .cursor(&scope.key, "balance_transactions")
            .await?
            .unwrap_or_default();
        let mut n = 0;
        let mut walk = self
            .oldest_first(
                scope,
                "/v1/balance_transactions",
                vec![("created[gte]", min_created.to_string())],
                None,
            )
            .await?;
        while let Some(chunk) = walk.next_chunk().await? {
            // Changed: no longer pending, or still pending with another `available_on`
            // (Stripe may move it; the ledger then reverses its reclass and posts a new one).
            let changed: Vec<RawObject> = chunk
                .into_iter()
                .filter(|o| {
                    pending.get(&o.id).is_some_and(|published_available_on| {
                        serde_json::from_slice::<ObjectHead>(&o.raw).is_ok_and(|h| {
                            h.status.as_deref() != Some("pending")
                                || h.available_on != *published_available_on
                        })
                    })
                })
                .collect();
            n += self
                .publish_bts(
                    scope,
                    &changed,
                    IngestSource::BalanceTransactionsApi,
                    &mut cursor,
                    false,
                )
                .await?;
        }
        Ok(n)
    }
}
