//! Events API catch-up back to the events cursor, and the `delivery_success=false` gap fill.

use ledgerline_proto::stripe::v1::IngestSource;
use ledgerline_stripe::RawObject;
use serde::{Deserialize, Serialize};

use super::{Ctx, EVENTS_WINDOW_SECS, Scope, err};
use crate::IngesterError;
use crate::publish::Outgoing;
use crate::records::{self, EventHead};

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

impl Ctx {
    fn event_outgoing(
        &self,
        scope: &Scope,
        obj: &RawObject,
        source: IngestSource,
    ) -> Option<(Outgoing, Option<EventHead>)> {
        let head: EventHead = match serde_json::from_slice(&obj.raw) {
            Ok(h) => h,
            Err(e) => {
                let listed = EventHead {
                    id: obj.id.clone(),
                    created: obj.created,
                    ..EventHead::default()
                };
                let rec = records::event_record(&listed, &obj.raw, &scope.account, source);
                let reason = format!(
                    "the ingester: the event does not have the shape of a Stripe event: {e}"
                );
                return Some((self.publisher.event_dead_letter(&rec, &reason), None));
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
        Some((self.publisher.event(&rec), Some(head)))
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
                if let Some(head) = head
                    && (head.event_type == "payout.reconciliation_completed"
                        || (head.data.object.object.as_deref() == Some("payout")
                            && head.data.object.reconciliation_status.as_deref()
                                == Some("completed")))
                    && let Some(id) = head.data.object.id
                {
                    payouts.push(id);
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
}

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
