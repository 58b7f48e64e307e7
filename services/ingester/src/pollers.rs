//! Pull side, per scope (one Stripe account or connected account): Events API catch-up and
//! `delivery_success=false` gap fill, balance-transaction polling with its look-back,
//! payout composition, and backfill. Every cursor moves only after Kafka acknowledged.

use std::collections::BTreeMap;
use std::sync::Arc;

use ledgerline_proto::stripe::v1::{IngestSource, PayoutCompositionRecord};
use ledgerline_stripe::{Client, RawObject, StripeError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

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
    /// Most objects a walk back to a cursor holds before it switches to forward pages.
    pub walk_buffer: usize,
}

/// Default bound of a walk's buffer: 10,000 objects (Stripe events are 2–5 KB: ≤ ~50 MB).
pub const DEFAULT_WALK_BUFFER: usize = 10_000;
/// Default bound of the gap-fill set (event ids already re-published by this process).
pub const DEFAULT_GAP_SEEN_MAX: usize = 100_000;

/// What a newest-first walk back to a stop object (or the end of the list) found.
struct WalkBack {
    /// Oldest first: everything newer than the stop, or, when `overflowed`, only the oldest
    /// page of it (the rest is read again forward, page by page, with `ending_before`).
    objects: Vec<RawObject>,
    overflowed: bool,
    /// The stop object was listed.
    reached: bool,
    newest_created: Option<i64>,
}

/// A walk's chunks, oldest first (see `Ctx::oldest_first`).
pub(crate) struct OldestFirst<'a> {
    ctx: &'a Ctx,
    scope: &'a Scope,
    path: &'a str,
    base: Vec<(&'a str, String)>,
    /// Oldest first; `pos` is the next to hand out.
    buf: Vec<RawObject>,
    pos: usize,
    /// Next forward page: the objects listed after (newer than) this one.
    anchor: Option<String>,
    pub(crate) info: Walked,
}

impl OldestFirst<'_> {
    /// The next chunk (≤ `CHUNK` objects, oldest first), `None` at the end.
    pub(crate) async fn next_chunk(&mut self) -> Result<Option<Vec<RawObject>>, IngesterError> {
        if self.pos < self.buf.len() {
            let end = (self.pos + CHUNK).min(self.buf.len());
            let chunk = self.buf[self.pos..end].to_vec();
            self.pos = end;
            if end == self.buf.len() {
                if self.info.overflowed {
                    self.anchor = self.buf.last().map(|o| o.id.clone());
                }
                self.buf = Vec::new();
                self.pos = 0;
            }
            self.info.objects += chunk.len();
            return Ok(Some(chunk));
        }
        let Some(anchor) = self.anchor.take() else {
            return Ok(None);
        };
        let mut params = self.base.clone();
        params.push(("ending_before", anchor));
        let page = self
            .scope
            .client
            .list_page(self.path, &params, self.scope.stripe_account.as_deref())
            .await
            .map_err(err)?;
        let mut objs = page.data;
        objs.reverse();
        self.ctx.metrics.buffered(objs.len());
        if page.has_more {
            self.anchor = objs.last().map(|o| o.id.clone());
        }
        self.info.objects += objs.len();
        Ok(Some(objs))
    }
}

/// Summary of a walk.
#[derive(Debug, Clone, Copy, Default)]
pub struct Walked {
    pub objects: usize,
    pub reached: bool,
    pub newest_created: Option<i64>,
    pub overflowed: bool,
}

/// The gap-fill set: ids of events this process already re-published, with their `created`,
/// pruned to the gap-fill window and capped (the oldest are forgotten first: at worst an event
/// is published once more, which at-least-once allows).
#[derive(Debug)]
pub struct GapSeen {
    ids: std::collections::HashMap<String, i64>,
    max: usize,
}

impl GapSeen {
    pub fn new(max: usize) -> GapSeen {
        GapSeen {
            ids: std::collections::HashMap::new(),
            max: max.max(1),
        }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn contains(&self, id: &str) -> bool {
        self.ids.contains_key(id)
    }

    /// True when `id` is new.
    pub fn insert(&mut self, id: &str, created: i64) -> bool {
        if self.ids.contains_key(id) {
            return false;
        }
        if self.ids.len() >= self.max {
            // Forget the oldest half at once (amortised O(1) per insert).
            let mut all: Vec<(i64, String)> = self.ids.drain().map(|(id, c)| (c, id)).collect();
            all.sort_unstable();
            let keep = all.split_off(all.len() / 2);
            self.ids = keep.into_iter().map(|(c, id)| (id, c)).collect();
        }
        self.ids.insert(id.to_owned(), created);
        true
    }

    /// Forgets events created before `since` (they are out of the gap-fill window).
    pub fn prune(&mut self, since: i64) {
        self.ids.retain(|_, c| *c >= since);
    }
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

    /// Newest-first pages of `path` back to `stop_id` (or the end), holding at most
    /// `walk_buffer` objects (+ one page): past that, only the oldest page is kept.
    async fn walk_back(
        &self,
        scope: &Scope,
        path: &str,
        base: &[(&str, String)],
        stop_id: Option<&str>,
    ) -> Result<WalkBack, IngesterError> {
        let mut buf: Vec<RawObject> = Vec::new();
        let mut overflowed = false;
        let mut reached = false;
        let mut newest_created = None;
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
            let last_listed = page.data.last().map(|o| o.id.clone());
            let mut objs = Vec::with_capacity(page.data.len());
            for o in page.data {
                if stop_id == Some(o.id.as_str()) {
                    reached = true;
                    break;
                }
                newest_created.get_or_insert(o.created);
                objs.push(o);
            }
            if overflowed {
                if !objs.is_empty() {
                    buf = objs;
                }
            } else {
                let n = objs.len();
                buf.extend(objs);
                // The peak: before an overflow drops all but the last page.
                self.metrics.buffered(buf.len());
                if buf.len() > self.walk_buffer && !reached && has_more {
                    overflowed = true;
                    buf = buf.split_off(buf.len() - n);
                }
            }
            self.metrics.buffered(buf.len());
            match last_listed {
                Some(id) if has_more && !reached => after = Some(id),
                _ => break,
            }
        }
        buf.reverse();
        Ok(WalkBack {
            objects: buf,
            overflowed,
            reached,
            newest_created,
        })
    }

    /// Every object of `path` (filtered by `base`) newer than `stop_id`, oldest first in chunks
    /// of at most `CHUNK` ([`OldestFirst::next_chunk`]): from memory when the walk back stayed
    /// within `walk_buffer`, else page by page forward (`ending_before`) from the oldest.
    async fn oldest_first<'a>(
        &'a self,
        scope: &'a Scope,
        path: &'a str,
        base: Vec<(&'a str, String)>,
        stop_id: Option<&str>,
    ) -> Result<OldestFirst<'a>, IngesterError> {
        let walk = self.walk_back(scope, path, &base, stop_id).await?;
        if walk.overflowed {
            tracing::info!(scope = %scope.key, path, bound = self.walk_buffer,
                "backlog beyond the walk buffer: reading it forward page by page");
        }
        Ok(OldestFirst {
            ctx: self,
            scope,
            path,
            base,
            anchor: None,
            pos: 0,
            info: Walked {
                objects: 0,
                reached: walk.reached,
                newest_created: walk.newest_created,
                overflowed: walk.overflowed,
            },
            buf: walk.objects,
        })
    }

    /// Publishes `chunk` (oldest first), queues reconciled payouts, then saves the cursor.
    async fn publish_events_chunk(
        &self,
        scope: &Scope,
        chunk: &[RawObject],
    ) -> Result<(), IngesterError> {
        let mut out = Vec::with_capacity(chunk.len());
        let mut payouts = Vec::new();
        for o in chunk {
            if let Some((rec, head)) = self.event_outgoing(scope, o, IngestSource::EventsApi) {
                if (head.event_type == "payout.reconciliation_completed"
                    || (head.data.object.object.as_deref() == Some("payout")
                        && head.data.object.reconciliation_status.as_deref() == Some("completed")))
                    && let Some(id) = &head.data.object.id
                {
                    payouts.push(id.clone());
                }
                out.push(rec);
            }
        }
        self.publisher.send_all(&out).await?;
        self.store.add_pending_payouts(&scope.key, &payouts).await?;
        if let Some(last) = chunk.last() {
            let c = EventCursor {
                id: last.id.clone(),
                created: last.created,
            };
            self.store.save_cursor(&scope.key, "events", &c).await?;
            self.metrics.cursor(&scope.key, "events", c.created);
        }
        Ok(())
    }

    /// Reads newest-first pages back to the cursor and publishes oldest first in chunks,
    /// saving the cursor after each acknowledged chunk; memory bounded by `walk_buffer`.
    /// Returns the number of events read.
    pub async fn catch_up_events(&self, scope: &Scope) -> Result<usize, IngesterError> {
        let cursor: Option<EventCursor> = self.store.cursor(&scope.key, "events").await?;
        let mut base: Vec<(&str, String)> = Vec::new();
        if let Some(c) = &cursor {
            base.push(("created[gte]", c.created.to_string()));
        }
        let mut walk = self
            .oldest_first(
                scope,
                "/v1/events",
                base,
                cursor.as_ref().map(|c| c.id.as_str()),
            )
            .await?;
        while let Some(chunk) = walk.next_chunk().await? {
            self.publish_events_chunk(scope, &chunk).await?;
        }
        let walked = walk.info;
        if let (Some(c), false) = (&cursor, walked.reached) {
            let newest = walked.newest_created.unwrap_or(c.created);
            if newest.saturating_sub(c.created) > EVENTS_WINDOW_SECS {
                tracing::warn!(scope = %scope.key, cursor = %c.id, cursor_created = c.created,
                    "the events cursor is older than Stripe's 30-day Events API window: events between it and the oldest listed event may be missing; run a backfill (--backfill) to recover them");
                self.metrics.window_exceeded(&scope.key);
            }
        }
        Ok(walked.objects)
    }

    /// Publishes events Stripe could not deliver to some endpoint (`delivery_success=false`)
    /// created since `since`, page by page; `seen` (bounded) keeps this process from
    /// re-publishing them every round.
    pub async fn gap_fill(
        &self,
        scope: &Scope,
        since: i64,
        seen: &mut GapSeen,
    ) -> Result<usize, IngesterError> {
        seen.prune(since);
        let mut after: Option<String> = None;
        let mut n = 0;
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
            let mut out = Vec::new();
            let mut new_ids = Vec::new();
            for o in &page.data {
                if !seen.contains(&o.id)
                    && let Some((rec, _)) = self.event_outgoing(scope, o, IngestSource::EventsApi)
                {
                    out.push(rec);
                    new_ids.push((o.id.as_str(), o.created));
                }
            }
            self.publisher.send_all(&out).await?;
            // Remembered only once Kafka acknowledged them.
            for (id, created) in new_ids {
                seen.insert(id, created);
            }
            n += out.len();
            if !page.has_more {
                break;
            }
            match page.data.last() {
                Some(o) => after = Some(o.id.clone()),
                None => break,
            }
        }
        Ok(n)
    }

    /// The ids of every object of `path` (filtered by `base`).
    async fn list_ids(
        &self,
        scope: &Scope,
        path: &str,
        base: &[(&str, String)],
    ) -> Result<Vec<String>, IngesterError> {
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
            all.extend(page.data.into_iter().map(|o| o.id));
            if !has_more {
                break;
            }
            after = all.last().cloned();
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
                let Some((rec, head)) = self.bt_outgoing(scope, o, source) else {
                    continue;
                };
                // Unchanged ones keep their pending state in step too (idempotent).
                match head.status.as_deref() {
                    Some("pending") => pending.push((o.id.clone(), o.created, head.available_on)),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gap_fill_set_is_bounded_and_forgets_the_oldest_first() {
        let mut seen = GapSeen::new(100);
        for i in 0..1_000i64 {
            assert!(seen.insert(&format!("evt_{i}"), i));
            assert!(seen.len() <= 100);
        }
        assert!(!seen.insert("evt_999", 999), "the newest are remembered");
        assert!(!seen.contains("evt_0"), "the oldest are forgotten");
        seen.prune(990);
        assert_eq!(seen.len(), 10);
    }
}
