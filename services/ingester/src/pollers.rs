//! Pull side, per scope (one Stripe account or connected account): Events API catch-up and
//! `delivery_success=false` gap fill, balance-transaction polling with its look-back,
//! payout composition, and backfill. Every cursor moves only after Kafka acknowledged.

use std::collections::HashSet;
use std::sync::Arc;

use ledgerline_proto::stripe::v1::{IngestSource, PayoutCompositionRecord};
use ledgerline_stripe::{Client, RawObject, StripeError};
use serde::{Deserialize, Serialize};

use crate::IngesterError;
use crate::filters::Filters;
use crate::metrics::Metrics;
use crate::publish::{Outgoing, Publisher};
use crate::records::{self, EventHead, ObjectHead};
use crate::store::Store;

/// Stripe's Events API window.
pub const EVENTS_WINDOW_SECS: i64 = 30 * 86_400;
const CHUNK: usize = 500;

/// One Stripe account (platform or connected) the ingester reads, with its own cursors.
#[derive(Debug, Clone)]
pub struct Scope {
    /// `{name}/{mode}/{account}`
    pub key: String,
    pub client: Client,
    /// The account id records are keyed by.
    pub account: String,
    /// `Stripe-Account` header (connected accounts only).
    pub stripe_account: Option<String>,
}

/// Shared by every poller.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub store: Store,
    pub publisher: Publisher,
    pub metrics: Arc<Metrics>,
    pub filters: Arc<Filters>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EventCursor {
    pub id: String,
    pub created: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BtCursor {
    /// Everything created before this was published at least once.
    pub created: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BackfillCursor {
    pub starting_after: Option<String>,
    pub done: bool,
    pub count: u64,
}

fn err(e: StripeError) -> IngesterError {
    IngesterError::Stripe(e)
}

impl Ctx {
    fn event_outgoing(
        &self,
        scope: &Scope,
        obj: &RawObject,
        source: IngestSource,
    ) -> Option<(Outgoing, EventHead)> {
        let head: EventHead = match serde_json::from_slice(&obj.raw) {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(id = %obj.id, error = %e, "event without the expected shape; published unparsed fields empty");
                return None;
            }
        };
        if !self
            .filters
            .accepts(Some(&head.event_type), &head.data.object)
        {
            return None;
        }
        let account = records::event_account(&head, &scope.account).to_owned();
        let rec = records::event_record(&head, &obj.raw, &account, source);
        Some((self.publisher.event(&rec), head))
    }

    /// Reads newest-first pages back to the cursor, publishes oldest first in chunks, saves
    /// the cursor after each acknowledged chunk. Returns the number published.
    pub async fn catch_up_events(&self, scope: &Scope) -> Result<usize, IngesterError> {
        let cursor: Option<EventCursor> = self.store.cursor(&scope.key, "events").await?;
        let mut collected: Vec<RawObject> = Vec::new();
        let mut after: Option<String> = None;
        let mut reached = false;
        loop {
            let mut params: Vec<(&str, String)> = Vec::new();
            if let Some(c) = &cursor {
                params.push(("created[gte]", c.created.to_string()));
            }
            if let Some(a) = &after {
                params.push(("starting_after", a.clone()));
            }
            let page = scope
                .client
                .list_page("/v1/events", &params, scope.stripe_account.as_deref())
                .await
                .map_err(err)?;
            let has_more = page.has_more;
            for o in page.data {
                if cursor.as_ref().is_some_and(|c| c.id == o.id) {
                    reached = true;
                    break;
                }
                collected.push(o);
            }
            if reached || !has_more {
                break;
            }
            after = collected.last().map(|o| o.id.clone());
        }
        if let (Some(c), false) = (&cursor, reached) {
            let newest = collected.first().map_or(c.created, |o| o.created);
            if newest.saturating_sub(c.created) > EVENTS_WINDOW_SECS {
                tracing::warn!(scope = %scope.key, cursor = %c.id, cursor_created = c.created,
                    "the events cursor is older than Stripe's 30-day Events API window: events between it and the oldest listed event may be missing; run a backfill (--backfill) to recover them");
                self.metrics.window_exceeded(&scope.key);
            }
        }
        collected.reverse();
        let n = collected.len();
        let mut payouts = Vec::new();
        for chunk in collected.chunks(CHUNK) {
            let mut out = Vec::with_capacity(chunk.len());
            for o in chunk {
                if let Some((rec, head)) = self.event_outgoing(scope, o, IngestSource::EventsApi) {
                    if (head.event_type == "payout.reconciliation_completed"
                        || (head.data.object.object.as_deref() == Some("payout")
                            && head.data.object.reconciliation_status.as_deref()
                                == Some("completed")))
                        && let Some(id) = &head.data.object.id
                    {
                        payouts.push(id.clone());
                    }
                    out.push(rec);
                }
            }
            self.publisher.send_all(&out).await?;
            self.store.add_pending_payouts(&scope.key, &payouts).await?;
            payouts.clear();
            if let Some(last) = chunk.last() {
                let c = EventCursor {
                    id: last.id.clone(),
                    created: last.created,
                };
                self.store.save_cursor(&scope.key, "events", &c).await?;
                self.metrics.cursor(&scope.key, "events", c.created);
            }
        }
        Ok(n)
    }

    /// Publishes events Stripe could not deliver to some endpoint (`delivery_success=false`)
    /// created since `since`; `seen` keeps this process from re-publishing them every round.
    pub async fn gap_fill(
        &self,
        scope: &Scope,
        since: i64,
        seen: &mut HashSet<String>,
    ) -> Result<usize, IngesterError> {
        let mut after: Option<String> = None;
        let mut out = Vec::new();
        loop {
            let mut params = vec![
                ("delivery_success", "false".to_owned()),
                ("created[gte]", since.to_string()),
            ];
            if let Some(a) = &after {
                params.push(("starting_after", a.clone()));
            }
            let page = scope
                .client
                .list_page("/v1/events", &params, scope.stripe_account.as_deref())
                .await
                .map_err(err)?;
            for o in &page.data {
                if seen.insert(o.id.clone())
                    && let Some((rec, _)) = self.event_outgoing(scope, o, IngestSource::EventsApi)
                {
                    out.push(rec);
                }
            }
            if !page.has_more {
                break;
            }
            after = page.data.last().map(|o| o.id.clone());
        }
        self.publisher.send_all(&out).await?;
        Ok(out.len())
    }

    async fn list_all(
        &self,
        scope: &Scope,
        path: &str,
        base: &[(&str, String)],
    ) -> Result<Vec<RawObject>, IngesterError> {
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut params = base.to_vec();
            if let Some(a) = &after {
                params.push(("starting_after", a.clone()));
            }
            let page = scope
                .client
                .list_page(path, &params, scope.stripe_account.as_deref())
                .await
                .map_err(err)?;
            let has_more = page.has_more;
            all.extend(page.data);
            if !has_more {
                break;
            }
            after = all.last().map(|o| o.id.clone());
        }
        Ok(all)
    }

    fn bt_outgoing(
        &self,
        scope: &Scope,
        obj: &RawObject,
        source: IngestSource,
    ) -> Option<(Outgoing, ObjectHead)> {
        let head: ObjectHead = serde_json::from_slice(&obj.raw).ok()?;
        let rec = records::bt_record(
            &head,
            &obj.raw,
            &scope.account,
            &scope.client.config().stripe_version,
            source,
        );
        Some((self.publisher.balance_transaction(&rec), head))
    }

    /// Publishes `objs` (newest first as listed) oldest first; tracks pending ones.
    async fn publish_bts(
        &self,
        scope: &Scope,
        mut objs: Vec<RawObject>,
        source: IngestSource,
        advance: bool,
    ) -> Result<usize, IngesterError> {
        objs.reverse();
        for chunk in objs.chunks(CHUNK) {
            let mut out = Vec::with_capacity(chunk.len());
            let mut pending = Vec::new();
            let mut available = Vec::new();
            for o in chunk {
                if let Some((rec, head)) = self.bt_outgoing(scope, o, source) {
                    match head.status.as_deref() {
                        Some("pending") => {
                            pending.push((o.id.clone(), o.created, head.available_on))
                        }
                        _ => available.push(o.id.clone()),
                    }
                    out.push(rec);
                }
            }
            self.publisher.send_all(&out).await?;
            self.store.upsert_pending_bts(&scope.key, &pending).await?;
            self.store
                .delete_pending_bts(&scope.key, &available)
                .await?;
            if advance && let Some(last) = chunk.last() {
                self.store
                    .save_cursor(
                        &scope.key,
                        "balance_transactions",
                        &BtCursor {
                            created: last.created,
                        },
                    )
                    .await?;
                self.metrics
                    .cursor(&scope.key, "balance_transactions", last.created);
            }
        }
        Ok(objs.len())
    }

    /// New balance transactions since the cursor (ties at the cursor's second re-read).
    pub async fn poll_balance_transactions(&self, scope: &Scope) -> Result<usize, IngesterError> {
        let cursor: BtCursor = self
            .store
            .cursor(&scope.key, "balance_transactions")
            .await?
            .unwrap_or_default();
        let objs = self
            .list_all(
                scope,
                "/v1/balance_transactions",
                &[("created[gte]", cursor.created.to_string())],
            )
            .await?;
        self.publish_bts(scope, objs, IngestSource::BalanceTransactionsApi, true)
            .await
    }

    /// The look-back: re-reads from the oldest still-pending transaction and re-publishes
    /// those whose status changed. `now_hint` is the newest `created` seen (≤ Stripe's now);
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
        let pending = self.store.pending_bt_ids(&scope.key).await?;
        let objs = self
            .list_all(
                scope,
                "/v1/balance_transactions",
                &[("created[gte]", min_created.to_string())],
            )
            .await?;
        let changed: Vec<RawObject> = objs
            .into_iter()
            .filter(|o| pending.contains(&o.id))
            .filter(|o| {
                serde_json::from_slice::<ObjectHead>(&o.raw)
                    .is_ok_and(|h| h.status.as_deref() != Some("pending"))
            })
            .collect();
        self.publish_bts(scope, changed, IngestSource::BalanceTransactionsApi, false)
            .await
    }

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
                .list_all(scope, "/v1/balance_transactions", &[("payout", id.clone())])
                .await?;
            let rec = PayoutCompositionRecord {
                payout_id: id.clone(),
                account: scope.account.clone(),
                livemode: head.livemode,
                amount: head.amount,
                currency: head.currency.clone().unwrap_or_default(),
                balance_transaction_ids: txns.iter().map(|t| t.id.clone()).collect(),
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
                let Ok(head) = serde_json::from_slice::<ObjectHead>(&o.raw) else {
                    continue;
                };
                if resource == "balance_transactions" {
                    let rec = records::bt_record(
                        &head,
                        &o.raw,
                        &scope.account,
                        &api_version,
                        IngestSource::Backfill,
                    );
                    out.push(self.publisher.balance_transaction(&rec));
                    continue;
                }
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
