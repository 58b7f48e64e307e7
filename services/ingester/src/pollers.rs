//! Pull side, per scope (one Stripe account or connected account): Events API catch-up and
//! `delivery_success=false` gap fill, balance-transaction polling with its look-back,
//! payout composition, and backfill. Every cursor moves only after Kafka acknowledged.
//!
//! This file holds what every poller shares (`Scope`, `Ctx`, the constants, the walks over a
//! list); each resource's poller is in its own module: `events`, `balance_transactions`,
//! `payouts`, `backfill`.

use std::sync::Arc;

use ledgerline_stripe::{Client, RawObject, StripeError};

use crate::IngesterError;
use crate::filters::Filters;
use crate::metrics::Metrics;
use crate::publish::Publisher;
use crate::store::Store;

mod backfill;
mod balance_transactions;
mod events;
mod payouts;

pub use backfill::{BACKFILL_RESOURCES, BackfillCursor};
pub use balance_transactions::{BtCursor, bt_digest};
pub use events::{EventCursor, GapSeen};

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

fn err(e: StripeError) -> IngesterError {
    IngesterError::Stripe(e)
}

impl Ctx {
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
}
