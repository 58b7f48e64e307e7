//! The `LedgerQuery` gRPC API, with health and reflection (v1 and v1alpha).
//!
//! Bearer tokens map to roles; every RPC here reads, so `auditor` and `admin` may call them
//! and any other role gets PERMISSION_DENIED; a missing or unknown token gets UNAUTHENTICATED.

use chrono::{DateTime, Utc};
use ledgerline_core::Currency;
use ledgerline_proto::ledger::v1 as pb;
use pb::ledger_query_server::{LedgerQuery, LedgerQueryServer};
use rust_decimal::Decimal;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::Error;
use crate::store::{BalanceQuery, EntryQuery, StatementQuery, Store, StoredEntry};
use crate::wire::{entry_to_proto, ts};

/// What a bearer token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Read everything.
    Auditor,
    /// Read everything (and, later, operate).
    Admin,
    /// Any other role: authenticated, but may call nothing here.
    Other,
}

/// Largest page.
pub const MAX_PAGE: i32 = 1000;
const DEFAULT_PAGE: i32 = 100;

/// The query service over a journal [`Store`].
#[derive(Debug, Clone)]
pub struct Query<S> {
    store: S,
}

impl<S: Store> Query<S> {
    pub fn new(store: S) -> Self {
        Self { store }
    }
}

#[allow(clippy::needless_pass_by_value)] // used as `map_err(db)`
fn db(e: Error) -> Status {
    tracing::warn!(error = %e, "query failed");
    match &e {
        // Retrying will not help; the message names the damaged row.
        Error::CorruptFact { .. } => Status::data_loss(e.to_string()),
        _ if e.is_transient() => Status::unavailable(
            "the ledger database cannot be reached right now; retry with backoff",
        ),
        Error::Database(sqlx::Error::Database(d)) if d.code().as_deref() == Some("57014") => {
            Status::deadline_exceeded(
                "the query ran past the database's statement timeout; ask for less (a shorter \
                 time range, a smaller page)",
            )
        }
        _ => Status::internal(
            "the ledger database failed on this query; the ledger's log has the error",
        ),
    }
}

fn invalid(msg: impl Into<String>) -> Status {
    Status::invalid_argument(msg.into())
}

/// The range `google.protobuf.Timestamp` allows: 0001-01-01T00:00:00Z to
/// 9999-12-31T23:59:59.999999999Z, in Unix seconds (both stores hold all of it).
const TIMESTAMP_SECONDS: std::ops::RangeInclusive<i64> = -62_135_596_800..=253_402_300_799;

fn time(t: Option<&prost_types::Timestamp>, field: &str) -> Result<Option<DateTime<Utc>>, Status> {
    t.map(|t| {
        u32::try_from(t.nanos)
            .ok()
            .filter(|n| *n < 1_000_000_000 && TIMESTAMP_SECONDS.contains(&t.seconds))
            .and_then(|n| DateTime::from_timestamp(t.seconds, n))
            .ok_or_else(|| {
                invalid(format!(
                    "{field} is not a valid timestamp (0001-01-01 to 9999-12-31, nanos \
                     0..=999999999)"
                ))
            })
    })
    .transpose()
}

/// The longest name a request may give (a ledger, an account, a source id). An account name
/// is a prefix and a Stripe id of at most 255 characters, so a longer one names nothing; it is
/// refused before an index of the store is asked to key it.
const MAX_NAME_CHARS: usize = 512;

/// A ledger, account or source id from a request, as the stores can compare it.
fn name(field: &str, v: &str) -> Result<(), Status> {
    if v.contains('\0') {
        return Err(invalid(format!(
            "{field} holds a NUL character, which no {field} in the ledger does"
        )));
    }
    if v.len() > MAX_NAME_CHARS && v.chars().count() > MAX_NAME_CHARS {
        return Err(invalid(format!(
            "{field} is {} characters long: none in the ledger is longer than {MAX_NAME_CHARS}",
            v.chars().count()
        )));
    }
    Ok(())
}

/// A request's value as an error message shows it: quoted, and cut short past 64 characters
/// (a status message travels in an HTTP/2 header, whose size is limited).
fn shown(v: &str) -> String {
    const SHOWN_CHARS: usize = 64;
    let chars = v.chars().count();
    if chars <= SHOWN_CHARS {
        format!("{v:?}")
    } else {
        let start: String = v.chars().take(SHOWN_CHARS).collect();
        format!("{start:?}… ({chars} characters)")
    }
}

fn currency(c: &str) -> Result<(), Status> {
    if c.is_empty() {
        return Ok(());
    }
    // Not the parse error's own text: it quotes the whole value.
    Currency::parse(c).map(|_| ()).map_err(|_| {
        invalid(format!(
            "unknown currency {}: expected three ASCII letters (an ISO 4217 code, like usd)",
            shown(c)
        ))
    })
}

/// A currency the request names must be a well-formed code the journal has lines in.
async fn known_currency<S: Store>(store: &S, c: &str) -> Result<(), Status> {
    currency(c)?;
    if c.is_empty() {
        return Ok(());
    }
    let seen = store.currency_seen(c).await.map_err(db)?;
    if seen {
        Ok(())
    } else {
        Err(invalid(format!(
            "unknown currency {}: the ledger has no entry in it",
            shown(c)
        )))
    }
}

fn page_size(p: i32) -> Result<i64, Status> {
    match p {
        0 => Ok(i64::from(DEFAULT_PAGE)),
        1..=MAX_PAGE => Ok(i64::from(p)),
        _ => Err(invalid(format!(
            "page_size {p} is out of bounds (1..={MAX_PAGE}, or 0 for {DEFAULT_PAGE})"
        ))),
    }
}

fn page_token(t: &str) -> Result<i64, Status> {
    if t.is_empty() {
        return Ok(0);
    }
    t.parse::<i64>()
        .ok()
        .filter(|v| *v >= 0)
        .ok_or_else(|| invalid("page_token is not one this server issued"))
}

fn range(
    from: Option<&prost_types::Timestamp>,
    to: Option<&prost_types::Timestamp>,
) -> Result<(Bound, Bound), Status> {
    let from = time(from, "effective_from")?;
    let to = time(to, "effective_to")?;
    if let (Some(from), Some(to)) = (from, to)
        && from >= to
    {
        return Err(invalid(
            "bad time range: effective_from must be before effective_to",
        ));
    }
    Ok((from, to))
}

type Bound = Option<DateTime<Utc>>;

fn as_of(a: Option<&pb::AsOf>) -> Result<(Bound, Bound), Status> {
    let eff = time(
        a.and_then(|a| a.effective_as_of.as_ref()),
        "effective_as_of",
    )?;
    let rec = time(a.and_then(|a| a.recorded_as_of.as_ref()), "recorded_as_of")?;
    Ok((eff, rec))
}

fn dec(d: Decimal) -> String {
    d.normalize().to_string()
}

async fn balances<S: Store>(
    store: &S,
    ledger: &str,
    account: &str,
    currency: &str,
    eff: Bound,
    rec: Bound,
) -> Result<Vec<pb::Balance>, Status> {
    let rows = store
        .balances(&BalanceQuery {
            ledger: ledger.to_owned(),
            account: account.to_owned(),
            currency: currency.to_owned(),
            effective_as_of: eff,
            recorded_as_of: rec,
        })
        .await
        .map_err(db)?;
    Ok(rows
        .into_iter()
        .map(|r| pb::Balance {
            ledger: r.ledger,
            account: r.account,
            currency: r.currency,
            amount: dec(r.amount),
        })
        .collect())
}

fn entry_from_stored(e: &StoredEntry) -> pb::JournalEntry {
    entry_to_proto(
        &e.canonical,
        Some(e.recorded_at),
        &e.chain,
        e.chain_seq,
        e.chain_hash.clone().unwrap_or_default(),
        &e.fact_id,
    )
}

#[tonic::async_trait]
impl<S: Store> LedgerQuery for Query<S> {
    async fn get_balances(
        &self,
        request: Request<pb::GetBalancesRequest>,
    ) -> Result<Response<pb::GetBalancesResponse>, Status> {
        let r = request.into_inner();
        name("ledger", &r.ledger)?;
        name("account", &r.account)?;
        known_currency(&self.store, &r.currency).await?;
        let (eff, rec) = as_of(r.as_of.as_ref())?;
        let balances = balances(&self.store, &r.ledger, &r.account, &r.currency, eff, rec).await?;
        Ok(Response::new(pb::GetBalancesResponse { balances }))
    }

    async fn get_trial_balance(
        &self,
        request: Request<pb::GetTrialBalanceRequest>,
    ) -> Result<Response<pb::GetTrialBalanceResponse>, Status> {
        let r = request.into_inner();
        if r.ledger.is_empty() {
            return Err(invalid("ledger is required (a Stripe account id, acct_…)"));
        }
        name("ledger", &r.ledger)?;
        let (eff, rec) = as_of(r.as_of.as_ref())?;
        let rows = balances(&self.store, &r.ledger, "", "", eff, rec).await?;
        let mut sums: std::collections::BTreeMap<&str, Decimal> = Default::default();
        for b in &rows {
            let v: Decimal = b.amount.parse().unwrap_or_default();
            *sums.entry(b.currency.as_str()).or_default() += v;
        }
        let balanced = sums.values().all(Decimal::is_zero);
        Ok(Response::new(pb::GetTrialBalanceResponse {
            rows,
            balanced,
        }))
    }

    async fn list_entries(
        &self,
        request: Request<pb::ListEntriesRequest>,
    ) -> Result<Response<pb::ListEntriesResponse>, Status> {
        let r = request.into_inner();
        name("ledger", &r.ledger)?;
        name("account", &r.account)?;
        name("source_id", &r.source_id)?;
        let size = page_size(r.page_size)?;
        let after = page_token(&r.page_token)?;
        let (from, to) = range(r.effective_from.as_ref(), r.effective_to.as_ref())?;
        let rows = self
            .store
            .entries(&EntryQuery {
                after_recorded_seq: after,
                ledger: r.ledger.clone(),
                source_id: r.source_id.clone(),
                account: r.account.clone(),
                effective_from: from,
                effective_to: to,
                limit: size,
            })
            .await
            .map_err(db)?;
        let entries = rows.iter().map(entry_from_stored).collect();
        let next_page_token = if i64::try_from(rows.len()).unwrap_or(0) == size {
            rows.last()
                .map(|r| r.recorded_seq.to_string())
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListEntriesResponse {
            entries,
            next_page_token,
        }))
    }

    async fn get_entry(
        &self,
        request: Request<pb::GetEntryRequest>,
    ) -> Result<Response<pb::GetEntryResponse>, Status> {
        let r = request.into_inner();
        let id = Uuid::parse_str(&r.entry_id)
            .map_err(|_| invalid(format!("entry_id {} is not a UUID", shown(&r.entry_id))))?;
        let (stored, raw_fact) = self
            .store
            .entry(id)
            .await
            .map_err(db)?
            .ok_or_else(|| Status::not_found(format!("no entry {id}")))?;
        let entry = entry_from_stored(&stored);
        Ok(Response::new(pb::GetEntryResponse {
            fact_id: entry.fact_id.clone(),
            entry: Some(entry),
            raw_fact,
        }))
    }

    async fn get_account_statement(
        &self,
        request: Request<pb::GetAccountStatementRequest>,
    ) -> Result<Response<pb::GetAccountStatementResponse>, Status> {
        let r = request.into_inner();
        if r.ledger.is_empty() || r.account.is_empty() || r.currency.is_empty() {
            return Err(invalid("ledger, account and currency are required"));
        }
        name("ledger", &r.ledger)?;
        name("account", &r.account)?;
        known_currency(&self.store, &r.currency).await?;
        let size = page_size(r.page_size)?;
        let skip = page_token(&r.page_token)?;
        let (from, to) = range(r.effective_from.as_ref(), r.effective_to.as_ref())?;
        let rows = self
            .store
            .statement(&StatementQuery {
                ledger: r.ledger.clone(),
                account: r.account.clone(),
                currency: r.currency.clone(),
                effective_from: from,
                effective_to: to,
                skip,
                limit: size,
            })
            .await
            .map_err(db)?;
        let mut lines = Vec::with_capacity(rows.len());
        let mut opening = None;
        for row in &rows {
            if opening.is_none() {
                opening = Some(row.running - row.amount);
            }
            lines.push(pb::StatementLine {
                entry_id: row.entry_id.hyphenated().to_string(),
                effective_at: Some(ts(row.effective_at)),
                rule: row.rule.clone(),
                source_id: row.source_id.clone(),
                amount: dec(row.amount),
                running_balance: dec(row.running),
            });
        }
        let opening = match (opening, from) {
            (Some(o), _) => o,
            (None, Some(from)) => self
                .store
                .balance_before(&r.ledger, &r.account, &r.currency, from)
                .await
                .map_err(db)?,
            (None, None) => Decimal::ZERO,
        };
        let next_page_token = if i64::try_from(lines.len()).unwrap_or(0) == size {
            (skip + size).to_string()
        } else {
            String::new()
        };
        Ok(Response::new(pb::GetAccountStatementResponse {
            opening_balance: dec(opening),
            lines,
            next_page_token,
        }))
    }

    async fn verify_chain(
        &self,
        _request: Request<pb::VerifyChainRequest>,
    ) -> Result<Response<pb::VerifyChainResponse>, Status> {
        let v = self.store.verify_chain().await.map_err(|e| {
            tracing::warn!(error = %e, "verification failed to run");
            Status::internal("verification could not read the journal")
        })?;
        let (bad, reason) = v
            .first_bad
            .clone()
            .map(|(id, why)| (id.hyphenated().to_string(), why))
            .unwrap_or_default();
        Ok(Response::new(pb::VerifyChainResponse {
            ok: v.ok(),
            entries_checked: v.entries_checked,
            first_bad_entry_id: bad,
            reason,
            heads: v
                .heads
                .into_iter()
                .map(|(chain, length, head)| pb::ChainHead {
                    chain,
                    length,
                    head: head.to_vec(),
                })
                .collect(),
        }))
    }
}

/// Checks `authorization: Bearer <token>` against the configured tokens.
pub fn authorize(tokens: &[(String, Role)], request: &Request<()>) -> Result<Role, Status> {
    let header = request
        .metadata()
        .get("authorization")
        .ok_or_else(|| Status::unauthenticated("missing `authorization: Bearer <token>`"))?;
    let token = header
        .to_str()
        .ok()
        .and_then(|h| h.strip_prefix("Bearer "))
        .ok_or_else(|| Status::unauthenticated("authorization must be `Bearer <token>`"))?;
    let role = tokens
        .iter()
        .find(|(t, _)| {
            use subtle_eq::ct_eq;
            ct_eq(t.as_bytes(), token.as_bytes())
        })
        .map(|(_, r)| *r)
        .ok_or_else(|| Status::unauthenticated("unknown token"))?;
    match role {
        Role::Auditor | Role::Admin => Ok(role),
        Role::Other => Err(Status::permission_denied(
            "this token's role may not read the ledger (needs auditor or admin)",
        )),
    }
}

mod subtle_eq {
    /// Constant-time comparison of equal-length secrets.
    pub(super) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

/// Serves until `shutdown`, over TLS when `tls` is given.
pub async fn serve<S: Store>(
    store: S,
    tokens: Vec<(String, Role)>,
    listener: tokio::net::TcpListener,
    tls: Option<crate::tls::GrpcTls>,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_service_status(
            "ledgerline.ledger.v1.LedgerQuery",
            tonic_health::ServingStatus::Serving,
        )
        .await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| Error::Reflection(e.to_string()))?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(|e| Error::Reflection(e.to_string()))?;
    let query = LedgerQueryServer::with_interceptor(Query::new(store), move |req: Request<()>| {
        authorize(&tokens, &req).map(|_| req)
    });
    let mut server = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        server = server
            .tls_config(tls.server_config())
            .map_err(|e| Error::Tls(format!("{e}: check the certificate and key files")))?;
    }
    server
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(query)
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener),
            shutdown.cancelled_owned(),
        )
        .await?;
    Ok(())
}
