//! The `/v1` API: authentication, rate limits, `Stripe-Account`, routing, permissions,
//! idempotency, and the read endpoints. Writes live in `writes.rs`.

use std::collections::BTreeMap;

use crate::http::auth::{Permission, mask_key};
use crate::http::config::ApiKey;
use crate::http::error::ApiError;
use crate::http::ids;
use crate::http::limits::Idem;
use crate::http::params::Params;
use crate::http::server::State;
use crate::http::writes;
use crate::object::ObjectKind;
use crate::store::{Cond, Cursor, ListQuery, PartKey, QueryError};

/// Stripe's Events API window.
pub const EVENT_RETENTION_SECS: i64 = 30 * 86_400;

/// An answer before it becomes an HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: String,
    /// `Stripe-Should-Retry`, when set.
    pub should_retry: Option<bool>,
    /// Replayed from an idempotency key (`Idempotent-Replayed: true`).
    pub replayed: bool,
}

impl Reply {
    /// 200 with a JSON body.
    pub fn ok(body: String) -> Reply {
        Reply {
            status: 200,
            body,
            should_retry: None,
            replayed: false,
        }
    }
}

impl From<ApiError> for Reply {
    fn from(e: ApiError) -> Reply {
        Reply {
            status: e.status,
            body: e.body(),
            should_retry: e.should_retry,
            replayed: false,
        }
    }
}

/// What a handler knows about its request.
pub(crate) struct Ctx<'a> {
    pub(crate) state: &'a State,
    pub(crate) key: &'a ApiKey,
    pub(crate) livemode: bool,
    pub(crate) account: Option<String>,
    pub(crate) now: i64,
    pub(crate) request_id: &'a str,
    pub(crate) idempotency_key: Option<&'a str>,
    pub(crate) request_no: u64,
}

impl Ctx<'_> {
    pub(crate) fn part(&self, kind: ObjectKind) -> PartKey {
        PartKey {
            kind,
            livemode: self.livemode,
            account: if kind == ObjectKind::Account {
                None
            } else {
                self.account.clone()
            },
        }
    }
}

/// A list endpoint: its kind, path, permission and filters (`(parameter, store filter)`).
pub(crate) struct ListSpec {
    pub(crate) kind: ObjectKind,
    pub(crate) path: &'static str,
    pub(crate) noun: &'static str,
    pub(crate) perm: Permission,
    pub(crate) filters: &'static [(&'static str, &'static str)],
}

pub(crate) const SPECS: &[ListSpec] = &[
    ListSpec {
        kind: ObjectKind::Event,
        path: "/v1/events",
        noun: "event",
        perm: Permission::EventRead,
        filters: &[],
    },
    ListSpec {
        kind: ObjectKind::BalanceTransaction,
        path: "/v1/balance_transactions",
        noun: "balance transaction",
        perm: Permission::BalanceTransactionRead,
        filters: &[
            ("payout", "payout"),
            ("type", "type"),
            ("source", "source"),
            ("currency", "currency"),
        ],
    },
    ListSpec {
        kind: ObjectKind::Payout,
        path: "/v1/payouts",
        noun: "payout",
        perm: Permission::PayoutRead,
        filters: &[("status", "status")],
    },
    ListSpec {
        kind: ObjectKind::Invoice,
        path: "/v1/invoices",
        noun: "invoice",
        perm: Permission::InvoiceRead,
        filters: &[
            ("customer", "customer"),
            ("status", "status"),
            ("subscription", "subscription"),
            ("collection_method", "collection_method"),
        ],
    },
    ListSpec {
        kind: ObjectKind::InvoicePayment,
        path: "/v1/invoice_payments",
        noun: "invoice payment",
        perm: Permission::InvoiceRead,
        filters: &[
            ("invoice", "invoice"),
            ("status", "status"),
            ("payment[type]", "payment.type"),
            ("payment[payment_record]", "payment.id"),
            ("payment[payment_intent]", "payment.id"),
        ],
    },
    ListSpec {
        kind: ObjectKind::CreditNote,
        path: "/v1/credit_notes",
        noun: "credit note",
        perm: Permission::CreditNoteRead,
        filters: &[("invoice", "invoice"), ("customer", "customer")],
    },
    ListSpec {
        kind: ObjectKind::Charge,
        path: "/v1/charges",
        noun: "charge",
        perm: Permission::ChargeRead,
        filters: &[
            ("customer", "customer"),
            ("payment_intent", "payment_intent"),
        ],
    },
    ListSpec {
        kind: ObjectKind::Refund,
        path: "/v1/refunds",
        noun: "refund",
        perm: Permission::RefundRead,
        filters: &[("charge", "charge"), ("payment_intent", "payment_intent")],
    },
    ListSpec {
        kind: ObjectKind::Dispute,
        path: "/v1/disputes",
        noun: "dispute",
        perm: Permission::DisputeRead,
        filters: &[("charge", "charge"), ("payment_intent", "payment_intent")],
    },
    ListSpec {
        kind: ObjectKind::Customer,
        path: "/v1/customers",
        noun: "customer",
        perm: Permission::CustomerRead,
        filters: &[("email", "email")],
    },
    ListSpec {
        kind: ObjectKind::Account,
        path: "/v1/accounts",
        noun: "account",
        perm: Permission::AccountRead,
        filters: &[],
    },
    ListSpec {
        kind: ObjectKind::PaymentRecord,
        path: "/v1/payment_records",
        noun: "payment record",
        perm: Permission::PaymentRecordRead,
        filters: &[],
    },
];

enum Route<'p> {
    List(&'static ListSpec),
    Retrieve(&'static ListSpec, &'p str),
    Balance,
    AttachPayment(&'p str),
    ReportPayment,
    WebhookCreate,
    WebhookList,
    WebhookGet(&'p str),
    WebhookDelete(&'p str),
}

impl Route<'_> {
    fn permission(&self) -> Permission {
        match self {
            Route::List(s) | Route::Retrieve(s, _) => s.perm,
            Route::Balance => Permission::BalanceRead,
            Route::AttachPayment(_) => Permission::InvoiceWrite,
            Route::ReportPayment => Permission::PaymentRecordWrite,
            Route::WebhookCreate | Route::WebhookDelete(_) => Permission::WebhookWrite,
            Route::WebhookList | Route::WebhookGet(_) => Permission::WebhookRead,
        }
    }

    fn is_write(&self) -> bool {
        matches!(
            self,
            Route::AttachPayment(_)
                | Route::ReportPayment
                | Route::WebhookCreate
                | Route::WebhookDelete(_)
        )
    }
}

fn route<'p>(method: &str, path: &'p str) -> Option<Route<'p>> {
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    match (method, segs.as_slice()) {
        ("GET", ["v1", "balance"]) => Some(Route::Balance),
        ("POST", ["v1", "invoices", id, "attach_payment"]) => Some(Route::AttachPayment(id)),
        ("POST", ["v1", "payment_records", "report_payment"]) => Some(Route::ReportPayment),
        ("POST", ["v1", "webhook_endpoints"]) => Some(Route::WebhookCreate),
        ("GET", ["v1", "webhook_endpoints"]) => Some(Route::WebhookList),
        ("GET", ["v1", "webhook_endpoints", id]) => Some(Route::WebhookGet(id)),
        ("DELETE", ["v1", "webhook_endpoints", id]) => Some(Route::WebhookDelete(id)),
        ("GET", ["v1", res]) => SPECS
            .iter()
            .find(|s| s.path.strip_prefix("/v1/") == Some(*res))
            .map(Route::List),
        ("GET", ["v1", res, id]) => SPECS
            .iter()
            .find(|s| s.path.strip_prefix("/v1/") == Some(*res))
            .map(|s| Route::Retrieve(s, id)),
        _ => None,
    }
}

/// Request data the API layer needs, already read off the wire.
pub(crate) struct ApiRequest<'a> {
    pub(crate) method: &'a str,
    pub(crate) path: &'a str,
    pub(crate) query: &'a str,
    pub(crate) body: &'a [u8],
    pub(crate) authorization: Option<&'a str>,
    pub(crate) stripe_account: Option<&'a str>,
    pub(crate) idempotency_key: Option<&'a str>,
    pub(crate) request_id: &'a str,
    pub(crate) request_no: u64,
}

/// Answers one `/v1` request.
pub(crate) fn handle(state: &State, req: &ApiRequest<'_>) -> Reply {
    match handle_inner(state, req) {
        Ok(r) => r,
        Err(e) => e.into(),
    }
}

fn handle_inner(state: &State, req: &ApiRequest<'_>) -> Result<Reply, ApiError> {
    let key = authenticate(state, req.authorization)?;
    let per_sec = key.rate_limit.unwrap_or(if key.livemode() {
        state.config.rate_limits.live_per_sec
    } else {
        state.config.rate_limits.test_per_sec
    });
    if !state.limiter.try_take(&key.key, per_sec) {
        return Err(ApiError::rate_limited());
    }
    let account = match req.stripe_account {
        None => None,
        Some(acct) => {
            let known = state.read_store().has_account(acct);
            if !known || acct.is_empty() {
                return Err(ApiError::invalid(format!(
                    "The provided key '{}' does not have access to account '{acct}' (or that account does not exist). Application access may have been revoked.",
                    mask_key(&key.key)
                ))
                .with_code("account_invalid")
                .with_status(403));
            }
            Some(acct.to_owned())
        }
    };
    let Some(route) = route(req.method, req.path) else {
        return Err(ApiError::unrecognized_url(req.method, req.path));
    };
    let needed = route.permission();
    if key.is_restricted()
        && !key.permissions.contains(&needed)
        && !needed
            .granted_by_write()
            .is_some_and(|w| key.permissions.contains(&w))
    {
        let on_account = account.as_deref().unwrap_or(&state.config.platform_account);
        return Err(ApiError::invalid(format!(
            "The provided key '{}' does not have the required permissions for this endpoint on account '{on_account}'. Having the '{needed}' permission would allow this request to continue.",
            mask_key(&key.key)
        ))
        .with_status(403));
    }
    let ctx = Ctx {
        state,
        key,
        livemode: key.livemode(),
        account,
        now: state.clock.now(),
        request_id: req.request_id,
        idempotency_key: req.idempotency_key,
        request_no: req.request_no,
    };
    let raw = if req.method == "GET" || req.method == "DELETE" {
        req.query.to_owned()
    } else {
        let body = std::str::from_utf8(req.body)
            .map_err(|_| ApiError::invalid("Invalid UTF-8 in the request body."))?;
        if req.query.is_empty() {
            body.to_owned()
        } else if body.is_empty() {
            req.query.to_owned()
        } else {
            format!("{}&{body}", req.query)
        }
    };
    let params = Params::parse(&raw)?;
    if route.is_write() {
        return idempotent(&ctx, req, &params, |ctx| run_write(ctx, &route, &params));
    }
    match route {
        Route::List(spec) => list(&ctx, spec, &params),
        Route::Retrieve(spec, id) => retrieve(&ctx, spec, id, &params),
        Route::Balance => balance(&ctx, &params),
        Route::WebhookList => writes::list_webhook_endpoints(&ctx, &params),
        Route::WebhookGet(id) => writes::get_webhook_endpoint(&ctx, id, &params),
        _ => Err(ApiError::unrecognized_url(req.method, req.path)),
    }
}

fn run_write(ctx: &Ctx<'_>, route: &Route<'_>, params: &Params) -> Result<Reply, ApiError> {
    if ids::chance(
        ids::mix(ctx.state.config.seed ^ ids::mix(ctx.request_no ^ 0x10c4)),
        ctx.state.config.faults.lock_timeout_ppm,
    ) {
        return Err(ApiError::lock_timeout());
    }
    match route {
        Route::AttachPayment(id) => writes::attach_payment(ctx, id, params),
        Route::ReportPayment => writes::report_payment(ctx, params),
        Route::WebhookCreate => writes::create_webhook_endpoint(ctx, params),
        Route::WebhookDelete(id) => writes::delete_webhook_endpoint(ctx, id),
        _ => Err(ApiError::internal()),
    }
}

fn authenticate<'s>(state: &'s State, authorization: Option<&str>) -> Result<&'s ApiKey, ApiError> {
    let missing = || {
        ApiError::invalid(
            "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.",
        )
        .with_status(401)
    };
    let Some(h) = authorization else {
        return Err(missing());
    };
    let token = h
        .strip_prefix("Bearer ")
        .or_else(|| h.strip_prefix("bearer "))
        .map(str::trim)
        .unwrap_or("");
    if token.is_empty() {
        return Err(missing());
    }
    state.keys.get(token).ok_or_else(|| {
        ApiError::invalid(format!("Invalid API Key provided: {}", mask_key(token))).with_status(401)
    })
}

/// Runs a write under its `Idempotency-Key`: the first answer that got past validation (2xx or
/// 5xx) is stored with its status and replayed for the same parameters; other parameters give
/// 400 `idempotency_error`; a concurrent request with the key gives 409.
fn idempotent(
    ctx: &Ctx<'_>,
    req: &ApiRequest<'_>,
    params: &Params,
    run: impl FnOnce(&Ctx<'_>) -> Result<Reply, ApiError>,
) -> Result<Reply, ApiError> {
    let Some(ikey) = req.idempotency_key else {
        return run(ctx);
    };
    if ikey.len() > 255 {
        return Err(
            ApiError::invalid("Idempotency-Key must be at most 255 characters long.")
                .with_param("Idempotency-Key"),
        );
    }
    let fp = params.fingerprint(req.method, req.path);
    let slot = (ctx.key.key.clone(), ctx.account.clone(), ikey.to_owned());
    match ctx.state.idem.begin(&slot) {
        Some(Idem::Done(stored_fp, reply)) if stored_fp == fp => Ok(Reply {
            replayed: true,
            ..reply
        }),
        Some(Idem::InFlight) => Err(ApiError {
            status: 409,
            kind: "idempotency_error",
            code: Some("idempotency_key_in_use"),
            message: format!(
                "There is currently another in-progress request using this Idempotency-Key ('{ikey}'). Please try again later."
            ),
            param: None,
            should_retry: Some(true),
        }),
        Some(Idem::Done(..)) => Err(ApiError {
            status: 400,
            kind: "idempotency_error",
            code: None,
            message: format!(
                "Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{ikey}' if you meant to execute a different request."
            ),
            param: None,
            should_retry: Some(false),
        }),
        None => {
            let result = run(ctx);
            let stored = match &result {
                Ok(r) if r.status < 400 || r.status >= 500 => Some(r.clone()),
                Err(e) if e.status >= 500 => Some(Reply::from(e.clone())),
                _ => None,
            };
            ctx.state.idem.finish(&slot, fp, stored);
            result
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reads

const PAGING: &[&str] = &[
    "limit",
    "starting_after",
    "ending_before",
    "created",
    "expand",
];

/// Parses `limit`, cursors and `created` into a query (filters are added by the caller).
pub(crate) fn base_query(part: PartKey, params: &Params, now: i64) -> Result<ListQuery, ApiError> {
    let limit = match params.get("limit") {
        None => 10,
        Some(v) => {
            let n: i64 = v
                .trim()
                .parse()
                .map_err(|_| ApiError::invalid_integer("limit", v))?;
            if !(1..=100).contains(&n) {
                return Err(ApiError::invalid(format!(
                    "Invalid limit: must be between 1 and 100 (got {n})."
                ))
                .with_code("parameter_invalid_integer")
                .with_param("limit"));
            }
            usize::try_from(n).unwrap_or(10)
        }
    };
    let cursor = match (params.get("starting_after"), params.get("ending_before")) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "You may only specify one of these parameters: starting_after, ending_before.",
            )
            .with_param("starting_after"));
        }
        (Some(id), None) if !id.is_empty() => Cursor::StartingAfter(id.to_owned()),
        (None, Some(id)) if !id.is_empty() => Cursor::EndingBefore(id.to_owned()),
        _ => Cursor::None,
    };
    let mut created_min = i64::MIN;
    let mut created_max = now;
    for (k, v) in params.pairs() {
        let op = if k == "created" {
            "eq"
        } else if let Some(op) = k.strip_prefix("created[").and_then(|r| r.strip_suffix(']')) {
            op
        } else {
            continue;
        };
        let n: i64 = v
            .trim()
            .parse()
            .map_err(|_| ApiError::invalid_integer(k, v))?;
        match op {
            "eq" => {
                created_min = created_min.max(n);
                created_max = created_max.min(n);
            }
            "gt" => created_min = created_min.max(n.saturating_add(1)),
            "gte" => created_min = created_min.max(n),
            "lt" => created_max = created_max.min(n.saturating_sub(1)),
            "lte" => created_max = created_max.min(n),
            _ => return Err(ApiError::unknown_param(k)),
        }
    }
    Ok(ListQuery {
        part,
        limit,
        cursor,
        created_min,
        created_max,
        conds: Vec::new(),
    })
}

fn list(ctx: &Ctx<'_>, spec: &ListSpec, params: &Params) -> Result<Reply, ApiError> {
    let mut allowed: Vec<&str> = PAGING.to_vec();
    allowed.extend(
        spec.filters
            .iter()
            .map(|(p, _)| crate::http::params::top_name(p)),
    );
    if spec.kind == ObjectKind::Event {
        allowed.extend(["type", "types", "delivery_success"]);
    }
    if let Some(unknown) = params.first_unknown(&allowed) {
        let full = params
            .pairs()
            .iter()
            .map(|(k, _)| k.as_str())
            .find(|k| crate::http::params::top_name(k) == unknown)
            .unwrap_or(unknown);
        return Err(ApiError::unknown_param(full));
    }
    let mut q = base_query(ctx.part(spec.kind), params, ctx.now)?;
    for (param, filter) in spec.filters {
        if let Some(v) = params.get(param) {
            q.conds.push(Cond::AnyOf(filter, vec![v.to_owned()]));
        }
    }
    if spec.kind == ObjectKind::Event {
        event_conds(params, &mut q.conds)?;
        q.created_min = q.created_min.max(ctx.now - EVENT_RETENTION_SECS);
    }
    let page = {
        let store = ctx.state.read_store();
        let page = store.list(&q).map_err(|e| match e {
            QueryError::CursorNotFound(id) => {
                let param = if matches!(q.cursor, Cursor::EndingBefore(_)) {
                    "ending_before"
                } else {
                    "starting_after"
                };
                ApiError::no_such(spec.noun, &id, Some(param))
            }
        })?;
        let mut body = String::with_capacity(page.items.len() * 1024 + 80);
        body.push_str("{\"object\":\"list\",\"data\":[");
        for (i, idx) in page.items.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            if let Some(e) = store.get(*idx) {
                e.render_into(ctx.now, &mut body);
            }
        }
        body.push_str("],\"has_more\":");
        body.push_str(if page.has_more { "true" } else { "false" });
        body.push_str(",\"url\":\"");
        body.push_str(spec.path);
        body.push_str("\"}");
        body
    };
    Ok(Reply::ok(page))
}

fn event_conds(params: &Params, conds: &mut Vec<Cond>) -> Result<(), ApiError> {
    let ty = params.get("type");
    let types = params.array("types");
    if ty.is_some() && !types.is_empty() {
        return Err(ApiError::invalid(
            "You may only specify one of these parameters: type, types.",
        )
        .with_param("type"));
    }
    if types.len() > 20 {
        return Err(
            ApiError::invalid("You may pass at most 20 event types in `types`.")
                .with_param("types"),
        );
    }
    if let Some(t) = ty {
        if t.contains('*') {
            if t != "*" {
                conds.push(Cond::Glob("type", t.to_owned()));
            }
        } else {
            conds.push(Cond::AnyOf("type", vec![t.to_owned()]));
        }
    }
    if !types.is_empty() {
        conds.push(Cond::AnyOf(
            "type",
            types.iter().map(|s| (*s).to_owned()).collect(),
        ));
    }
    match params.get("delivery_success") {
        None => {}
        Some("false") => conds.push(Cond::AnyOf("delivery_success", vec!["false".into()])),
        Some("true") => conds.push(Cond::Not("delivery_success", "false".into())),
        Some(v) => {
            return Err(ApiError::invalid(format!("Invalid boolean: {v}"))
                .with_code("parameter_invalid_boolean")
                .with_param("delivery_success"));
        }
    }
    Ok(())
}

fn retrieve(ctx: &Ctx<'_>, spec: &ListSpec, id: &str, params: &Params) -> Result<Reply, ApiError> {
    if let Some(unknown) = params.first_unknown(&["expand"]) {
        return Err(ApiError::unknown_param(unknown));
    }
    let store = ctx.state.read_store();
    let part = ctx.part(spec.kind);
    let found = store.lookup(id).map(|(_, e)| e).filter(|e| {
        e.kind == spec.kind
            && e.livemode == part.livemode
            && (e.kind == ObjectKind::Account || e.account == part.account)
            && e.key.created <= ctx.now
            && (e.kind != ObjectKind::Event || e.key.created >= ctx.now - EVENT_RETENTION_SECS)
    });
    match found {
        Some(e) => Ok(Reply::ok(e.render(ctx.now))),
        None => Err(ApiError::no_such(spec.noun, id, Some("id"))),
    }
}

fn balance(ctx: &Ctx<'_>, params: &Params) -> Result<Reply, ApiError> {
    if let Some(unknown) = params.first_unknown(&["expand"]) {
        return Err(ApiError::unknown_param(unknown));
    }
    let mut sums: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    {
        let store = ctx.state.read_store();
        for e in store.scan(&ctx.part(ObjectKind::BalanceTransaction), ctx.now) {
            if let Some((net, currency)) = &e.net {
                let s = sums.entry(currency.clone()).or_default();
                if e.available_on.is_some_and(|a| a <= ctx.now) {
                    s.0 += net;
                } else {
                    s.1 += net;
                }
            }
        }
    }
    let side = |pick: fn(&(i64, i64)) -> i64| {
        let items: Vec<String> = sums
            .iter()
            .map(|(c, s)| format!("{{\"amount\":{},\"currency\":\"{c}\"}}", pick(s)))
            .collect();
        format!("[{}]", items.join(","))
    };
    Ok(Reply::ok(format!(
        "{{\"object\":\"balance\",\"available\":{},\"livemode\":{},\"pending\":{}}}",
        side(|s| s.0),
        ctx.livemode,
        side(|s| s.1)
    )))
}
