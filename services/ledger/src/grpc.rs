//! The `LedgerQuery` gRPC API, with health and reflection (v1 and v1alpha).
//!
//! Bearer tokens map to roles; every RPC here reads, so `auditor` and `admin` may call them
//! and any other role gets PERMISSION_DENIED; a missing or unknown token gets UNAUTHENTICATED.

use chrono::{DateTime, Utc};
use ledgerline_core::Currency;
use ledgerline_proto::ledger::v1 as pb;
use pb::ledger_query_server::{LedgerQuery, LedgerQueryServer};
use rust_decimal::Decimal;
use sqlx::{PgPool, Row};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::Error;
use crate::chain::{self, ENTRY_COLUMNS};
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

/// The query service over the PostgreSQL journal.
#[derive(Debug, Clone)]
pub struct Query {
    pool: PgPool,
}

impl Query {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[allow(clippy::needless_pass_by_value)] // used as `map_err(db)`
fn db(e: sqlx::Error) -> Status {
    tracing::warn!(error = %e, "query failed");
    Status::internal("the ledger database failed; retry later")
}

fn invalid(msg: impl Into<String>) -> Status {
    Status::invalid_argument(msg.into())
}

fn time(t: Option<&prost_types::Timestamp>, field: &str) -> Result<Option<DateTime<Utc>>, Status> {
    t.map(|t| {
        u32::try_from(t.nanos)
            .ok()
            .and_then(|n| DateTime::from_timestamp(t.seconds, n))
            .ok_or_else(|| invalid(format!("{field} is not a valid timestamp")))
    })
    .transpose()
}

fn currency(c: &str) -> Result<(), Status> {
    if c.is_empty() {
        return Ok(());
    }
    Currency::parse(c)
        .map(|_| ())
        .map_err(|e| invalid(format!("unknown currency {c:?}: {e}")))
}

/// A currency the request names must be a well-formed code the journal has lines in.
async fn known_currency(pool: &PgPool, c: &str) -> Result<(), Status> {
    currency(c)?;
    if c.is_empty() {
        return Ok(());
    }
    let seen: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM journal_lines WHERE currency = $1)")
            .bind(c)
            .fetch_one(pool)
            .await
            .map_err(db)?;
    if seen {
        Ok(())
    } else {
        Err(invalid(format!(
            "unknown currency {c:?}: the ledger has no entry in it"
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

async fn balances(
    pool: &PgPool,
    ledger: &str,
    account: &str,
    currency: &str,
    eff: Bound,
    rec: Bound,
) -> Result<Vec<pb::Balance>, Status> {
    let rows = sqlx::query(
        "SELECT e.ledger, l.account, l.currency, sum(l.amount) \
         FROM journal_lines l JOIN journal_entries e ON e.entry_id = l.entry_id \
         WHERE ($1 = '' OR e.ledger = $1) AND ($2 = '' OR l.account = $2) \
           AND ($3 = '' OR l.currency = $3) AND ($4::timestamptz IS NULL OR e.effective_at <= $4) \
           AND ($5::timestamptz IS NULL OR e.recorded_at <= $5) \
         GROUP BY 1, 2, 3 HAVING sum(l.amount) <> 0 ORDER BY 1, 3, 2",
    )
    .bind(ledger)
    .bind(account)
    .bind(currency)
    .bind(eff)
    .bind(rec)
    .fetch_all(pool)
    .await
    .map_err(db)?;
    rows.iter()
        .map(|r| {
            Ok(pb::Balance {
                ledger: r.try_get(0)?,
                account: r.try_get(1)?,
                currency: r.try_get(2)?,
                amount: dec(r.try_get(3)?),
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(db)
}

/// Entries selected by `filter` (a WHERE clause over `e` and `m`, binding $1..$n), in
/// recording order, as wire entries.
fn entry_from_row(r: &sqlx::postgres::PgRow) -> Result<pb::JournalEntry, sqlx::Error> {
    let canon = chain::canonical_from_row(r)?;
    let recorded_at: DateTime<Utc> = r.try_get(11)?;
    let chain: String = r.try_get(13)?;
    let seq: i64 = r.try_get(14)?;
    let hash: Option<Vec<u8>> = r.try_get(15)?;
    let fact_id: String = r.try_get(16)?;
    Ok(entry_to_proto(
        &canon,
        Some(recorded_at),
        &chain,
        seq,
        hash.unwrap_or_default(),
        &fact_id,
    ))
}

const ENTRY_META: &str = "m.chain, m.chain_seq, m.chain_hash, f.fact_id, m.recorded_seq, f.raw";
const ENTRY_FROM: &str = "FROM journal_entries e \
    JOIN ledger_entry_meta m ON m.entry_id = e.entry_id \
    JOIN ledger_facts f ON f.fact_seq = m.fact_seq";

#[tonic::async_trait]
impl LedgerQuery for Query {
    async fn get_balances(
        &self,
        request: Request<pb::GetBalancesRequest>,
    ) -> Result<Response<pb::GetBalancesResponse>, Status> {
        let r = request.into_inner();
        known_currency(&self.pool, &r.currency).await?;
        let (eff, rec) = as_of(r.as_of.as_ref())?;
        let balances = balances(&self.pool, &r.ledger, &r.account, &r.currency, eff, rec).await?;
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
        let (eff, rec) = as_of(r.as_of.as_ref())?;
        let rows = balances(&self.pool, &r.ledger, "", "", eff, rec).await?;
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
        let size = page_size(r.page_size)?;
        let after = page_token(&r.page_token)?;
        let (from, to) = range(r.effective_from.as_ref(), r.effective_to.as_ref())?;
        let sql = format!(
            "SELECT {ENTRY_COLUMNS}, {ENTRY_META} {ENTRY_FROM} \
             WHERE m.recorded_seq > $1 AND ($2 = '' OR e.ledger = $2) \
               AND ($3 = '' OR e.source_id = $3) \
               AND ($4 = '' OR EXISTS (SELECT 1 FROM journal_lines a \
                                       WHERE a.entry_id = e.entry_id AND a.account = $4)) \
               AND ($5::timestamptz IS NULL OR e.effective_at >= $5) \
               AND ($6::timestamptz IS NULL OR e.effective_at < $6) \
             ORDER BY m.recorded_seq LIMIT $7"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(after)
            .bind(&r.ledger)
            .bind(&r.source_id)
            .bind(&r.account)
            .bind(from)
            .bind(to)
            .bind(size)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        let entries = rows
            .iter()
            .map(entry_from_row)
            .collect::<Result<Vec<_>, _>>()
            .map_err(db)?;
        let next_page_token = if i64::try_from(rows.len()).unwrap_or(0) == size {
            rows.last()
                .map(|r| r.try_get::<i64, _>(17))
                .transpose()
                .map_err(db)?
                .map(|s| s.to_string())
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
            .map_err(|_| invalid(format!("entry_id {:?} is not a UUID", r.entry_id)))?;
        let sql =
            format!("SELECT {ENTRY_COLUMNS}, {ENTRY_META} {ENTRY_FROM} WHERE e.entry_id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .ok_or_else(|| Status::not_found(format!("no entry {id}")))?;
        let entry = entry_from_row(&row).map_err(db)?;
        let raw_fact: Vec<u8> = row.try_get(18).map_err(db)?;
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
        known_currency(&self.pool, &r.currency).await?;
        let size = page_size(r.page_size)?;
        let skip = page_token(&r.page_token)?;
        let (from, to) = range(r.effective_from.as_ref(), r.effective_to.as_ref())?;
        let rows = sqlx::query(
            "WITH s AS ( \
               SELECT e.entry_id, e.effective_at, e.rule, e.source_id, l.amount, m.recorded_seq, l.line_no, \
                      sum(l.amount) OVER (ORDER BY e.effective_at, m.recorded_seq, l.line_no) AS running \
               FROM journal_lines l JOIN journal_entries e ON e.entry_id = l.entry_id \
               JOIN ledger_entry_meta m ON m.entry_id = e.entry_id \
               WHERE e.ledger = $1 AND l.account = $2 AND l.currency = $3 \
                 AND ($5::timestamptz IS NULL OR e.effective_at < $5)) \
             SELECT entry_id, effective_at, rule, source_id, amount, running FROM s \
             WHERE ($4::timestamptz IS NULL OR effective_at >= $4) ORDER BY effective_at, recorded_seq, line_no OFFSET $6 LIMIT $7",
        )
        .bind(&r.ledger)
        .bind(&r.account)
        .bind(&r.currency)
        .bind(from)
        .bind(to)
        .bind(skip)
        .bind(size)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let mut lines = Vec::with_capacity(rows.len());
        let mut opening = None;
        for row in &rows {
            let amount: Decimal = row.try_get(4).map_err(db)?;
            let running: Decimal = row.try_get(5).map_err(db)?;
            if opening.is_none() {
                opening = Some(running - amount);
            }
            let id: Uuid = row.try_get(0).map_err(db)?;
            let at: DateTime<Utc> = row.try_get(1).map_err(db)?;
            lines.push(pb::StatementLine {
                entry_id: id.hyphenated().to_string(),
                effective_at: Some(ts(at)),
                rule: row.try_get(2).map_err(db)?,
                source_id: row.try_get(3).map_err(db)?,
                amount: dec(amount),
                running_balance: dec(running),
            });
        }
        let opening = match opening {
            Some(o) => o,
            None => sqlx::query_scalar::<_, Option<Decimal>>(
                "SELECT sum(l.amount) FROM journal_lines l \
                 JOIN journal_entries e ON e.entry_id = l.entry_id \
                 WHERE e.ledger = $1 AND l.account = $2 AND l.currency = $3 \
                   AND $4::timestamptz IS NOT NULL AND e.effective_at < $4",
            )
            .bind(&r.ledger)
            .bind(&r.account)
            .bind(&r.currency)
            .bind(from)
            .fetch_one(&self.pool)
            .await
            .map_err(db)?
            .unwrap_or_default(),
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
        let mut conn = self.pool.acquire().await.map_err(db)?;
        let v = chain::verify(&mut conn).await.map_err(|e| {
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

/// Serves until `shutdown`.
pub async fn serve(
    pool: PgPool,
    tokens: Vec<(String, Role)>,
    listener: tokio::net::TcpListener,
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
    let query = LedgerQueryServer::with_interceptor(Query::new(pool), move |req: Request<()>| {
        authorize(&tokens, &req).map(|_| req)
    });
    tonic::transport::Server::builder()
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
