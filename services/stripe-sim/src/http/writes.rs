//! The write endpoints: webhook endpoints, `report_payment` and `attach_payment`.

use serde_json::{Map, Value, json};

use crate::http::api::{Ctx, Reply, base_query};
use crate::http::config::API_VERSION;
use crate::http::error::ApiError;
use crate::http::ids;
use crate::http::params::Params;
use crate::object::{ObjectKind, SimObject};
use crate::store::{Store, replace_at, top_level_i64, top_level_string};

fn new_id(ctx: &Ctx<'_>, store: &Store, prefix: &str) -> String {
    let n = store.next_seq().to_string();
    ids::stripe_id(prefix, ids::hash(ctx.state.config.seed, prefix, &[&n]), 24)
}

fn require<'p>(params: &'p Params, key: &str) -> Result<&'p str, ApiError> {
    params
        .get(key)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::missing_param(key))
}

fn int_param(params: &Params, key: &str) -> Result<Option<i64>, ApiError> {
    params
        .get(key)
        .map(|v| {
            v.trim()
                .parse()
                .map_err(|_| ApiError::invalid_integer(key, v))
        })
        .transpose()
}

fn json_str(s: &str) -> String {
    Value::from(s).to_string()
}

/// Builds and stores an event caused by this request; returns nothing (webhooks pick it up).
fn emit_event(
    ctx: &Ctx<'_>,
    store: &mut Store,
    ty: &str,
    object_json: &str,
    previous_attributes: Option<&Value>,
) {
    let id = new_id(ctx, store, "evt");
    let pending = ctx
        .state
        .hub
        .matching_count(ctx.livemode, ctx.account.as_deref(), ty);
    let account = ctx
        .account
        .as_deref()
        .map(|a| format!("\"account\":{},", json_str(a)))
        .unwrap_or_default();
    let prev = previous_attributes
        .map(|p| format!(",\"previous_attributes\":{p}"))
        .unwrap_or_default();
    let idem = ctx.idempotency_key.map_or("null".to_owned(), json_str);
    let body = format!(
        "{{\"id\":\"{id}\",\"object\":\"event\",{account}\"api_version\":\"{API_VERSION}\",\"created\":{now},\"data\":{{\"object\":{object_json}{prev}}},\"livemode\":{live},\"pending_webhooks\":{pending},\"request\":{{\"id\":\"{req}\",\"idempotency_key\":{idem}}},\"type\":{ty_json}}}",
        now = ctx.now,
        live = ctx.livemode,
        req = ctx.request_id,
        ty_json = json_str(ty),
    );
    store.insert(SimObject {
        kind: ObjectKind::Event,
        id,
        created: ctx.now,
        account: ctx.account.clone(),
        livemode: ctx.livemode,
        filters: vec![("type", ty.to_owned())],
        available_on: None,
        json: body,
    });
}

// ---------------------------------------------------------------------------------------------
// Webhook endpoints

/// `POST /v1/webhook_endpoints`.
pub(crate) fn create_webhook_endpoint(ctx: &Ctx<'_>, params: &Params) -> Result<Reply, ApiError> {
    let allowed = [
        "url",
        "enabled_events",
        "api_version",
        "connect",
        "description",
        "metadata",
        "expand",
    ];
    if let Some(u) = params.first_unknown(&allowed) {
        return Err(ApiError::unknown_param(u));
    }
    let url = require(params, "url")?;
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(ApiError::invalid(format!("Invalid URL: {url}")).with_param("url"));
    }
    let enabled: Vec<String> = params
        .array("enabled_events")
        .into_iter()
        .map(str::to_owned)
        .collect();
    if enabled.is_empty() {
        return Err(ApiError::missing_param("enabled_events"));
    }
    let connect = match params.get("connect") {
        None | Some("false") => false,
        Some("true") => true,
        Some(v) => {
            return Err(ApiError::invalid(format!("Invalid boolean: {v}"))
                .with_code("parameter_invalid_boolean")
                .with_param("connect"));
        }
    };
    let frontier = ctx.state.read_store().next_seq();
    let ep = ctx
        .state
        .hub
        .create_endpoint(
            ctx.state.config.seed,
            url.to_owned(),
            enabled,
            connect,
            ctx.livemode,
            ctx.account.clone(),
            ctx.now,
            frontier,
            params.get("api_version").map(str::to_owned),
            params.get("description").map(str::to_owned),
            params
                .hash("metadata")
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        )
        .map_err(ApiError::invalid)?;
    Ok(Reply::ok(ep.to_json(true)))
}

/// `GET /v1/webhook_endpoints` (no secrets).
pub(crate) fn list_webhook_endpoints(ctx: &Ctx<'_>, params: &Params) -> Result<Reply, ApiError> {
    if let Some(u) = params.first_unknown(&["limit", "starting_after", "ending_before", "expand"]) {
        return Err(ApiError::unknown_param(u));
    }
    let q = base_query(ctx.part(ObjectKind::WebhookEndpoint), params, ctx.now)?;
    let mut eps: Vec<_> = ctx
        .state
        .hub
        .endpoints()
        .into_iter()
        .filter(|e| e.livemode == ctx.livemode && e.account == ctx.account)
        .collect();
    eps.reverse();
    let start = match &q.cursor {
        crate::store::Cursor::StartingAfter(id) => {
            eps.iter()
                .position(|e| &e.id == id)
                .ok_or_else(|| ApiError::no_such("webhook endpoint", id, Some("starting_after")))?
                + 1
        }
        _ => 0,
    };
    let page: Vec<String> = eps
        .iter()
        .skip(start)
        .take(q.limit)
        .map(|e| e.to_json(false))
        .collect();
    let has_more = eps.len() > start + q.limit;
    Ok(Reply::ok(format!(
        "{{\"object\":\"list\",\"data\":[{}],\"has_more\":{has_more},\"url\":\"/v1/webhook_endpoints\"}}",
        page.join(",")
    )))
}

/// `GET /v1/webhook_endpoints/{id}` (no secret).
pub(crate) fn get_webhook_endpoint(
    ctx: &Ctx<'_>,
    id: &str,
    params: &Params,
) -> Result<Reply, ApiError> {
    if let Some(u) = params.first_unknown(&["expand"]) {
        return Err(ApiError::unknown_param(u));
    }
    ctx.state
        .hub
        .endpoints()
        .into_iter()
        .find(|e| e.id == id && e.livemode == ctx.livemode)
        .map(|e| Reply::ok(e.to_json(false)))
        .ok_or_else(|| ApiError::no_such("webhook endpoint", id, Some("id")))
}

/// `DELETE /v1/webhook_endpoints/{id}`.
pub(crate) fn delete_webhook_endpoint(ctx: &Ctx<'_>, id: &str) -> Result<Reply, ApiError> {
    let exists = ctx
        .state
        .hub
        .endpoints()
        .iter()
        .any(|e| e.id == id && e.livemode == ctx.livemode);
    if !exists || ctx.state.hub.delete_endpoint(id).is_none() {
        return Err(ApiError::no_such("webhook endpoint", id, Some("id")));
    }
    Ok(Reply::ok(format!(
        "{{\"id\":{},\"object\":\"webhook_endpoint\",\"deleted\":true}}",
        json_str(id)
    )))
}

// ---------------------------------------------------------------------------------------------
// Payment records

const REPORT_PAYMENT_PARAMS: &[&str] = &[
    "amount_requested",
    "initiated_at",
    "payment_method_details",
    "customer_details",
    "customer_presence",
    "description",
    "failed",
    "guaranteed",
    "outcome",
    "shipping_details",
    "metadata",
    "expand",
    "processor_details",
];

fn opt(params: &Params, key: &str) -> Value {
    params.get(key).map_or(Value::Null, Value::from)
}

fn amount(currency: &str, value: i64) -> Value {
    json!({"currency": currency, "value": value})
}

/// `POST /v1/payment_records/report_payment`: stores a PaymentRecord (`reported_by: self`).
pub(crate) fn report_payment(ctx: &Ctx<'_>, params: &Params) -> Result<Reply, ApiError> {
    if let Some(u) = params.first_unknown(REPORT_PAYMENT_PARAMS) {
        return Err(ApiError::unknown_param(u));
    }
    if !params.has("amount_requested") {
        return Err(ApiError::missing_param("amount_requested"));
    }
    let currency = require(params, "amount_requested[currency]")?.to_ascii_lowercase();
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_lowercase()) {
        return Err(ApiError::invalid(format!("Invalid currency: {currency}"))
            .with_param("amount_requested[currency]"));
    }
    let value = int_param(params, "amount_requested[value]")?
        .ok_or_else(|| ApiError::missing_param("amount_requested[value]"))?;
    if value < 0 {
        return Err(
            ApiError::invalid("Amount must be non-negative.").with_param("amount_requested[value]")
        );
    }
    let initiated_at = int_param(params, "initiated_at")?
        .ok_or_else(|| ApiError::missing_param("initiated_at"))?;
    if !params.has("payment_method_details") {
        return Err(ApiError::missing_param("payment_method_details"));
    }
    let outcome = params.get("outcome");
    match outcome {
        None => {}
        Some("guaranteed") => {
            require(params, "guaranteed[guaranteed_at]")?;
        }
        Some("failed") => {
            require(params, "failed[failed_at]")?;
        }
        Some(v) => {
            return Err(ApiError::invalid(format!(
                "Invalid outcome: must be one of failed, guaranteed (got {v})"
            ))
            .with_param("outcome"));
        }
    }
    if params.has("processor_details") {
        let ty = require(params, "processor_details[type]")?;
        if ty != "custom" {
            return Err(ApiError::invalid(format!(
                "Invalid processor_details[type]: must be custom (got {ty})"
            ))
            .with_param("processor_details[type]"));
        }
        require(params, "processor_details[custom][payment_reference]")?;
    }
    if let Some(pm_type) = params.get("payment_method_details[type]")
        && pm_type != "custom"
    {
        return Err(ApiError::invalid(format!(
            "Invalid payment_method_details[type]: must be custom (got {pm_type})"
        ))
        .with_param("payment_method_details[type]"));
    }
    let mut store = ctx.state.write_store();
    if let Some(cus) = params.get("customer_details[customer]") {
        let ok = store
            .lookup(cus)
            .is_some_and(|(_, e)| e.kind == ObjectKind::Customer && e.livemode == ctx.livemode);
        if !ok {
            return Err(
                ApiError::no_such("customer", cus, Some("customer_details[customer]"))
                    .with_status(400),
            );
        }
    }
    let id = new_id(ctx, &store, "pr");
    let attempt_id = new_id(ctx, &store, "par").replace("par_", "par_a");
    let zero = amount(&currency, 0);
    let full = amount(&currency, value);
    let guaranteed = outcome == Some("guaranteed");
    let failed = outcome == Some("failed");
    let metadata: Map<String, Value> = params
        .hash("metadata")
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Value::from(v)))
        .collect();
    let processor_details = if params.has("processor_details") {
        json!({"type": "custom", "custom": {"payment_reference": opt(params, "processor_details[custom][payment_reference]")}})
    } else {
        json!({"type": "custom"})
    };
    let record = json!({
        "id": id,
        "object": "payment_record",
        "amount": full,
        "amount_authorized": if failed { zero.clone() } else { full.clone() },
        "amount_canceled": zero.clone(),
        "amount_failed": if failed { full.clone() } else { zero.clone() },
        "amount_guaranteed": if guaranteed { full.clone() } else { zero.clone() },
        "amount_refunded": zero,
        "amount_requested": full,
        "application": null,
        "created": ctx.now,
        "customer_details": {
            "customer": opt(params, "customer_details[customer]"),
            "email": opt(params, "customer_details[email]"),
            "name": opt(params, "customer_details[name]"),
            "phone": opt(params, "customer_details[phone]"),
        },
        "customer_presence": opt(params, "customer_presence"),
        "description": opt(params, "description"),
        "initiated_at": initiated_at,
        "latest_payment_attempt_record": attempt_id,
        "livemode": ctx.livemode,
        "metadata": metadata,
        "payment_method_details": {
            "billing_details": {
                "address": {"city": null, "country": null, "line1": null, "line2": null, "postal_code": null, "state": null},
                "email": opt(params, "payment_method_details[billing_details][email]"),
                "name": opt(params, "payment_method_details[billing_details][name]"),
                "phone": opt(params, "payment_method_details[billing_details][phone]"),
            },
            "custom": {
                "display_name": opt(params, "payment_method_details[custom][display_name]"),
                "type": opt(params, "payment_method_details[custom][type]"),
            },
            "payment_method": opt(params, "payment_method_details[payment_method]"),
            "type": "custom",
        },
        "processor_details": processor_details,
        "reported_by": "self",
        "shipping_details": null,
    });
    let body = record.to_string();
    let mut filters = vec![("currency", currency.clone())];
    if let Some(cus) = params.get("customer_details[customer]") {
        filters.push(("customer", cus.to_owned()));
    }
    if let Some(o) = outcome {
        filters.push(("outcome", o.to_owned()));
    }
    filters.push(("amount", value.to_string()));
    store.insert(SimObject {
        kind: ObjectKind::PaymentRecord,
        id,
        created: ctx.now,
        account: ctx.account.clone(),
        livemode: ctx.livemode,
        filters,
        available_on: None,
        json: body.clone(),
    });
    Ok(Reply::ok(body))
}

/// `POST /v1/invoices/{id}/attach_payment` with `payment_record`: credits the record's amount
/// to the invoice (`amount_paid`, `amount_remaining`, `status` → `paid` when nothing remains),
/// creates the InvoicePayment, and emits `invoice_payment.paid`, `invoice.updated` and, when the
/// invoice is now paid, `invoice.paid`.
pub(crate) fn attach_payment(
    ctx: &Ctx<'_>,
    invoice_id: &str,
    params: &Params,
) -> Result<Reply, ApiError> {
    if let Some(u) = params.first_unknown(&["payment_record", "payment_intent", "expand"]) {
        return Err(ApiError::unknown_param(u));
    }
    if params.get("payment_intent").is_some() {
        return Err(ApiError::invalid(
            "stripe-sim: attaching a payment_intent is not simulated; report a payment record and pass `payment_record`.",
        )
        .with_param("payment_intent"));
    }
    let pr_id = require(params, "payment_record")?;
    let mut store = ctx.state.write_store();
    let part = ctx.part(ObjectKind::Invoice);
    let (inv_idx, inv) = store
        .lookup(invoice_id)
        .filter(|(_, e)| {
            e.kind == ObjectKind::Invoice
                && e.livemode == part.livemode
                && e.account == part.account
                && e.key.created <= ctx.now
        })
        .ok_or_else(|| ApiError::no_such("invoice", invoice_id, Some("invoice")))?;
    let mut inv_json = inv.raw_json().to_owned();
    let (pr_idx, pr) = store
        .lookup(pr_id)
        .filter(|(_, e)| {
            e.kind == ObjectKind::PaymentRecord
                && e.livemode == ctx.livemode
                && e.account == ctx.account
        })
        .ok_or_else(|| {
            ApiError::no_such("payment_record", pr_id, Some("payment_record")).with_status(400)
        })?;
    if let Some(other) = pr.filter("invoice") {
        return Err(ApiError::invalid(format!(
            "The payment record {pr_id} is already attached to invoice {other}."
        ))
        .with_param("payment_record"));
    }
    if pr.filter("outcome") == Some("failed") {
        return Err(ApiError::invalid(format!(
            "The payment record {pr_id} failed and cannot pay an invoice."
        ))
        .with_param("payment_record"));
    }
    let pr_currency = pr.filter("currency").unwrap_or("").to_owned();
    let amount: i64 = pr
        .filter("amount")
        .and_then(|a| a.parse().ok())
        .or_else(|| {
            crate::store::value_at(pr.raw_json(), &["amount_requested", "value"])
                .and_then(|r| pr.raw_json()[r].trim().parse().ok())
        })
        .unwrap_or(0);
    let status = top_level_string(&inv_json, "status").unwrap_or_default();
    if status != "open" {
        return Err(ApiError::invalid(format!(
            "You can only attach payments to an open invoice; invoice {invoice_id} is {status}."
        ))
        .with_code("invoice_not_editable")
        .with_param("invoice"));
    }
    let currency = top_level_string(&inv_json, "currency").unwrap_or_default();
    if currency != pr_currency {
        return Err(ApiError::invalid(format!(
            "The payment record's currency ({pr_currency}) does not match the invoice's ({currency})."
        ))
        .with_param("payment_record"));
    }
    let due = top_level_i64(&inv_json, "amount_due").unwrap_or(0);
    let paid_before = top_level_i64(&inv_json, "amount_paid").unwrap_or(0);
    let remaining_before =
        top_level_i64(&inv_json, "amount_remaining").unwrap_or(due - paid_before);
    let paid = paid_before.saturating_add(amount);
    let remaining = (due - paid).max(0);
    let overpaid = (paid - due).max(0);
    let now_paid = remaining == 0;
    replace_at(&mut inv_json, &["amount_paid"], &paid.to_string());
    replace_at(&mut inv_json, &["amount_remaining"], &remaining.to_string());
    replace_at(&mut inv_json, &["amount_overpaid"], &overpaid.to_string());
    let mut previous = Map::new();
    previous.insert("amount_paid".into(), paid_before.into());
    previous.insert("amount_remaining".into(), remaining_before.into());
    if now_paid {
        replace_at(&mut inv_json, &["status"], "\"paid\"");
        replace_at(
            &mut inv_json,
            &["status_transitions", "paid_at"],
            &ctx.now.to_string(),
        );
        previous.insert("status".into(), Value::from(status.clone()));
    }

    // The invoice payment.
    let ip_id = new_id(ctx, &store, "inpay");
    let ip = json!({
        "id": ip_id,
        "object": "invoice_payment",
        "amount_paid": amount,
        "amount_requested": amount,
        "created": ctx.now,
        "currency": currency,
        "invoice": invoice_id,
        "is_default": false,
        "livemode": ctx.livemode,
        "payment": {"payment_record": pr_id, "type": "payment_record"},
        "status": "paid",
        "status_transitions": {"canceled_at": null, "paid_at": ctx.now},
    })
    .to_string();
    store.insert(SimObject {
        kind: ObjectKind::InvoicePayment,
        id: ip_id,
        created: ctx.now,
        account: ctx.account.clone(),
        livemode: ctx.livemode,
        filters: vec![
            ("invoice", invoice_id.to_owned()),
            ("status", "paid".to_owned()),
            ("payment.type", "payment_record".to_owned()),
            ("payment.id", pr_id.to_owned()),
        ],
        available_on: None,
        json: ip.clone(),
    });
    store.set_filter(pr_idx, "invoice", Some(invoice_id.to_owned()));
    store.set_json(inv_idx, inv_json.clone());
    if now_paid {
        store.set_filter(inv_idx, "status", Some("paid".to_owned()));
    }
    emit_event(ctx, &mut store, "invoice_payment.paid", &ip, None);
    emit_event(
        ctx,
        &mut store,
        "invoice.updated",
        &inv_json,
        Some(&Value::Object(previous)),
    );
    if now_paid {
        emit_event(ctx, &mut store, "invoice.paid", &inv_json, None);
    }
    drop(store);
    ctx.state.hub.notify.notify_one();
    Ok(Reply::ok(inv_json))
}
