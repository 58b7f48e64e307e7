//! The webhook receiver: verifies `Stripe-Signature` over the raw body, publishes the body
//! untouched, and answers 2xx only after Kafka acknowledged. Refusals (a bad signature, a body
//! that is not JSON) are 400 and publish nothing; a signed JSON body without the shape of a
//! Stripe event is authentic, so it is kept: dead-lettered, then answered 200.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use ledgerline_proto::stripe::v1::IngestSource;
use ledgerline_stripe::{Client, WebhookSecret, WebhookVerifier};
use serde::Deserialize;

use crate::filters::Filters;
use crate::metrics::Metrics;
use crate::publish::{Outgoing, Publisher};
use crate::records::{self, EventHead};
use crate::secretbox::{self, SecretKey};
use crate::store::Store;
use crate::{Clock, IngesterError};

#[derive(Debug, Clone)]
pub struct Endpoint {
    pub name: String,
    pub platform_account: String,
    pub verifier: WebhookVerifier,
    /// The deployment's mode (its keys'): events of the other mode are not ingested. Stripe
    /// sends a live Connect endpoint the test-mode events of accounts connected in both
    /// modes, signed with the live endpoint's secret, and says to check `livemode`.
    pub livemode: bool,
}

#[derive(Clone)]
pub struct AppState {
    pub endpoints: Arc<Vec<Endpoint>>,
    pub publisher: Publisher,
    pub metrics: Arc<Metrics>,
    pub clock: Clock,
    pub filters: Arc<Filters>,
    pub ready: Arc<AtomicBool>,
    /// [`crate::IngesterConfig::webhook_ack_timeout`].
    pub ack_timeout: std::time::Duration,
}

pub fn router(state: AppState, body_limit: usize) -> Router {
    Router::new()
        .route("/webhooks/{name}", post(receive))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

async fn readyz(State(s): State<AppState>) -> impl IntoResponse {
    if s.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting")
    }
}

async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    (
        [("content-type", "text/plain; version=0.0.4")],
        s.metrics.render((s.clock)()),
    )
}

async fn receive(
    State(s): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let Some(ep) = s.endpoints.iter().find(|e| e.name == name) else {
        return (StatusCode::NOT_FOUND, "unknown webhook endpoint".to_owned());
    };
    let header = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    if let Err(e) = ep.verifier.verify(header, &body, (s.clock)()) {
        s.metrics.webhook_rejected(e.label());
        return (StatusCode::BAD_REQUEST, e.to_string());
    }
    let head: EventHead = match serde_json::from_slice(&body) {
        Ok(h) => h,
        Err(e) if e.is_data() => {
            let loose: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let listed = EventHead {
                id: loose["id"].as_str().unwrap_or_default().to_owned(),
                created: loose["created"].as_i64().unwrap_or_default(),
                ..EventHead::default()
            };
            let rec =
                records::event_record(&listed, &body, &ep.platform_account, IngestSource::Webhook);
            let reason =
                format!("the ingester: a signed webhook without the shape of a Stripe event: {e}");
            let dead = [s.publisher.event_dead_letter(&rec, &reason)];
            return publish(
                &s,
                &dead,
                &listed.id,
                "dead-lettered: not a Stripe event's shape",
            )
            .await;
        }
        Err(_) => {
            s.metrics.webhook_rejected("not_json");
            return (StatusCode::BAD_REQUEST, "body is not JSON".to_owned());
        }
    };
    if head.livemode.is_some_and(|live| live != ep.livemode) {
        // A 2xx: Stripe would retry a refusal, and disable an endpoint that keeps failing.
        s.metrics.webhook_other_mode();
        tracing::debug!(event = %head.id, "webhook of the other mode (livemode) not ingested");
        return (StatusCode::OK, "other mode: not ingested".to_owned());
    }
    if !s.filters.accepts(Some(&head.event_type), &head.data.object) {
        return (StatusCode::OK, "filtered".to_owned());
    }
    let account = records::event_account(&head, &ep.platform_account).to_owned();
    let rec = records::event_record(&head, &body, &account, IngestSource::Webhook);
    publish(&s, &[s.publisher.event(&rec)], &head.id, "ok").await
}

/// Publishes a delivery's records: `answer` once the log acknowledged them, 503 (Stripe retries)
/// if it did not in time.
async fn publish(
    s: &AppState,
    records: &[Outgoing],
    event_id: &str,
    answer: &str,
) -> (StatusCode, String) {
    let outcome = match tokio::time::timeout(s.ack_timeout, s.publisher.send_all(records)).await {
        Ok(Ok(())) => return (StatusCode::OK, answer.to_owned()),
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no acknowledgement within {:?}", s.ack_timeout),
    };
    s.metrics.webhook_unacknowledged();
    tracing::error!(event = %event_id, error = %outcome, "webhook not acknowledged by the log; Stripe will retry");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "not stored; retry".to_owned(),
    )
}

#[derive(Deserialize)]
struct Created {
    id: String,
    secret: Option<String>,
}

/// Associated data binding a sealed secret to its row.
fn row_aad(name: &str, mode: &str, endpoint_id: &str) -> String {
    format!("ledgerline-webhook-secret:{name}:{mode}:{endpoint_id}")
}

/// Registers `url` as a webhook endpoint (all events of the platform account) unless one
/// was registered before, and returns its signing secret (kept in the database, encrypted
/// with `key`: Stripe shows it only once). A secret kept in plain text by an earlier version
/// is encrypted in place.
pub async fn register(
    store: &Store,
    client: &Client,
    name: &str,
    url: &str,
    key: &SecretKey,
) -> Result<WebhookSecret, IngesterError> {
    let mode = client.mode().as_str();
    if let Some((id, saved_url, stored)) = store.webhook_endpoint(name, mode).await?
        && saved_url == url
    {
        let aad = row_aad(name, mode, &id);
        if secretbox::is_sealed(&stored) {
            let secret = secretbox::open(key, &stored, &aad).map_err(|e| {
                IngesterError::Config(format!(
                    "the kept secret of webhook endpoint {name:?} ({mode}) cannot be decrypted: \
                     {e}. Configure the key it was encrypted with, or delete its row from \
                     ingester_webhook_endpoints (and the endpoint {id} in the Dashboard) to \
                     register a new one"
                ))
            })?;
            return Ok(WebhookSecret::new(secret));
        }
        let sealed = secretbox::seal(key, &stored, &aad)
            .map_err(|e| IngesterError::Internal(e.to_string()))?;
        store
            .save_webhook_endpoint(name, mode, &id, url, &sealed)
            .await?;
        tracing::info!(endpoint = %id, "kept webhook secret encrypted at rest");
        return Ok(WebhookSecret::new(stored));
    }
    let idem = format!("ledgerline-webhook-{name}-{mode}-{url}");
    let idem: String = idem.chars().take(255).collect();
    let resp = client
        .post_form(
            "/v1/webhook_endpoints",
            &[
                ("url", url.to_owned()),
                ("enabled_events[]", "*".to_owned()),
                ("connect", "false".to_owned()),
                ("description", format!("Ledgerline ingester {name}")),
            ],
            None,
            Some(&idem),
        )
        .await?;
    let created: Created =
        serde_json::from_slice(&resp.body).map_err(|e| IngesterError::Internal(e.to_string()))?;
    let secret = created.secret.ok_or_else(|| {
        IngesterError::Internal("webhook endpoint created without a secret".into())
    })?;
    let sealed = secretbox::seal(key, &secret, &row_aad(name, mode, &created.id))
        .map_err(|e| IngesterError::Internal(e.to_string()))?;
    store
        .save_webhook_endpoint(name, mode, &created.id, url, &sealed)
        .await?;
    tracing::info!(endpoint = %created.id, url, "webhook endpoint registered");
    Ok(WebhookSecret::new(secret))
}
