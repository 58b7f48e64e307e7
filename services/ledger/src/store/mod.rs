//! Where the journal lives: the [`Store`] trait and its implementations.
//!
//! The fold ([`crate::engine`]) builds a batch of [`Rows`] in memory; a store writes that
//! batch, the chain heads and the consumed offsets in one transaction ([`WriteTx`]), and
//! answers the queries of the gRPC API and of chain verification. Everything a store does is
//! storage: it never posts, never decides a chain link, never decides which records to drop.
//!
//! - [`postgres::PgStore`]: PostgreSQL (`migrations/`), the distributed deployment;
//! - [`sqlite::SqliteStore`]: one SQLite file (`migrations/sqlite/`), the embedded mode.

pub mod postgres;
pub mod sqlite;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::Error;
use crate::chain::{Canonical, Head, Verification};
use crate::raw::{Dictionaries, Dictionary, RawEncoder, RawEncoding};
use crate::rules::StripeMode;

pub use postgres::{AdvisoryLocks, PgStore};
pub use sqlite::SqliteStore;

/// One batch's rows, column by column (the layout bulk writes want).
#[derive(Debug, Default)]
pub struct Rows {
    // facts
    pub f_seq: Vec<i64>,
    pub f_topic: Vec<String>,
    pub f_partition: Vec<i32>,
    pub f_offset: Vec<i64>,
    pub f_ledger: Vec<String>,
    pub f_fact_id: Vec<String>,
    pub f_digest: Vec<Vec<u8>>,
    /// The raw fact in `f_encoding` (the store's [`Store::raw_encoder`], or `identity`).
    pub f_raw: Vec<Vec<u8>>,
    pub f_encoding: Vec<RawEncoding>,
    // entries
    pub e_id: Vec<Uuid>,
    pub e_ledger: Vec<String>,
    pub e_rule: Vec<String>,
    pub e_kind: Vec<String>,
    pub e_source: Vec<String>,
    pub e_effective: Vec<DateTime<Utc>>,
    pub e_description: Vec<String>,
    pub e_reverses: Vec<Option<Uuid>>,
    // lines
    pub l_entry: Vec<Uuid>,
    pub l_no: Vec<i32>,
    pub l_account: Vec<String>,
    pub l_currency: Vec<String>,
    pub l_amount: Vec<Decimal>,
    // meta
    pub m_recorded: Vec<i64>,
    pub m_fact: Vec<i64>,
    pub m_chain: Vec<String>,
    pub m_chain_seq: Vec<i64>,
    pub m_digest: Vec<Vec<u8>>,
    pub m_hash: Vec<Option<Vec<u8>>>,
    // conflicts
    pub c_entry: Vec<Uuid>,
    pub c_fact: Vec<i64>,
    pub c_fact_id: Vec<String>,
    pub c_digest: Vec<Vec<u8>>,
    pub c_incoming: Vec<serde_json::Value>,
    // outbox
    pub o_key: Vec<String>,
    pub o_payload: Vec<Vec<u8>>,
}

/// A stored fact, as the fold replays it: its raw bytes still in their stored form (decoded by
/// [`StoredFact::take_raw`] on the catch-up's parsing thread, not on the reading task).
#[derive(Debug, Clone)]
pub struct StoredFact {
    pub seq: i64,
    pub ledger: String,
    pub digest: Vec<u8>,
    /// The `raw_encoding` column (`identity` or `zstd`).
    pub encoding: String,
    /// The `raw` column, in `encoding`.
    pub stored: Vec<u8>,
    /// The store's dictionaries, holding any that `stored` names (see [`crate::raw`]).
    pub dictionaries: Arc<Dictionaries>,
}

impl StoredFact {
    /// The raw bytes as Stripe sent them (taken out of `stored`), or [`Error::CorruptFact`]
    /// naming this fact.
    pub fn take_raw(&mut self) -> Result<Vec<u8>, Error> {
        crate::raw::decode(
            self.seq,
            &self.encoding,
            std::mem::take(&mut self.stored),
            &self.dictionaries,
        )
    }
}

/// The statement that binds a store to a mode, for both stores: the table has one row at most,
/// and the first ledger's insert wins.
const BIND_STRIPE_MODE: &str =
    "INSERT INTO ledger_stripe_mode (mode) VALUES ($1) ON CONFLICT DO NOTHING";
/// The mode a store is bound to.
const BOUND_STRIPE_MODE: &str = "SELECT mode FROM ledger_stripe_mode";

/// Whether a ledger of `mode` may fold into a store bound to `bound`.
fn check_bound_mode(bound: String, mode: StripeMode) -> Result<(), Error> {
    if bound == mode.name() {
        Ok(())
    } else {
        Err(Error::StripeModeMismatch {
            bound,
            configured: mode.name(),
        })
    }
}

/// Consumed offsets: (topic, partition) → next offset to fold.
pub type Offsets = HashMap<(String, i32), i64>;

/// What a catch-up reads ([`crate::Engine::catch_up`]): the stored facts in recording order
/// and the last recording, both from one consistent view of the store.
pub trait ReadFacts: Send {
    /// At most `limit` facts recorded after `after` (by `fact_seq`), in recording order.
    fn facts_since(
        &mut self,
        after: i64,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<StoredFact>, Error>> + Send;
    /// The largest `recorded_seq` stored (0 when empty).
    fn max_recorded_seq(&mut self) -> impl Future<Output = Result<i64, Error>> + Send;
}

/// One open write transaction. Writers are serialised: from [`Store::begin_write`] to
/// [`WriteTx::commit`] no other writer of the same store commits. Dropping it without
/// committing rolls everything back.
pub trait WriteTx: ReadFacts {
    /// The transaction's time: the `recorded_at` of what it writes. Read under the writer lock,
    /// and later than every stored entry's (by a microsecond at least), so recorded times
    /// follow the recording order whatever the clock does (a writer that began before another
    /// but waited longer for the lock, a clock stepped back): the entries recorded by any time
    /// are the books as they stood after some batch, never a mix.
    fn now(&mut self) -> impl Future<Output = Result<DateTime<Utc>, Error>> + Send;
    /// The offsets `group` has folded so far.
    fn offsets(&mut self, group: &str) -> impl Future<Output = Result<Offsets, Error>> + Send;
    /// The stored chain heads.
    fn heads(&mut self) -> impl Future<Output = Result<HashMap<String, Head>, Error>> + Send;
    /// Writes a batch's new facts (the `f_*` columns of `rows`), first: the other rows refer
    /// to them.
    fn write_facts(
        &mut self,
        rows: &Rows,
        recorded_at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), Error>> + Send;
    /// Writes the rest of a folded batch: its entries, lines, metadata, outbox rows and
    /// conflicts (every column of `rows` but the facts'), the changed heads and `group`'s new
    /// offsets (an offset never moves backwards).
    fn write(
        &mut self,
        rows: &Rows,
        heads: &HashMap<String, Head>,
        group: &str,
        offsets: &Offsets,
        recorded_at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), Error>> + Send;
    /// Commits everything written.
    fn commit(self) -> impl Future<Output = Result<(), Error>> + Send;
}

/// Filter of [`Store::balances`]; empty strings and `None` mean "any".
#[derive(Debug, Clone, Default)]
pub struct BalanceQuery {
    pub ledger: String,
    pub account: String,
    pub currency: String,
    /// Only entries effective at or before.
    pub effective_as_of: Option<DateTime<Utc>>,
    /// Only entries recorded at or before.
    pub recorded_as_of: Option<DateTime<Utc>>,
}

/// A non-zero balance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceRow {
    pub ledger: String,
    pub account: String,
    pub currency: String,
    pub amount: Decimal,
}

/// Filter of [`Store::entries`]; empty strings and `None` mean "any".
#[derive(Debug, Clone, Default)]
pub struct EntryQuery {
    /// Only entries with `recorded_seq` above (the page token).
    pub after_recorded_seq: i64,
    pub ledger: String,
    pub source_id: String,
    /// Only entries with a line on this account.
    pub account: String,
    /// Effective at or after.
    pub effective_from: Option<DateTime<Utc>>,
    /// Effective before.
    pub effective_to: Option<DateTime<Utc>>,
    pub limit: i64,
}

/// An entry as stored, with its chain link and the fact behind it.
#[derive(Debug, Clone)]
pub struct StoredEntry {
    pub canonical: Canonical,
    pub recorded_at: DateTime<Utc>,
    pub recorded_seq: i64,
    pub chain: String,
    pub chain_seq: i64,
    pub chain_hash: Option<Vec<u8>>,
    pub fact_id: String,
}

/// Filter of [`Store::statement`].
#[derive(Debug, Clone, Default)]
pub struct StatementQuery {
    pub ledger: String,
    pub account: String,
    pub currency: String,
    pub effective_from: Option<DateTime<Utc>>,
    pub effective_to: Option<DateTime<Utc>>,
    pub skip: i64,
    pub limit: i64,
}

/// One line of an account statement, with the running balance from the beginning.
#[derive(Debug, Clone)]
pub struct StatementRow {
    pub entry_id: Uuid,
    pub effective_at: DateTime<Utc>,
    pub rule: String,
    pub source_id: String,
    pub amount: Decimal,
    pub running: Decimal,
}

/// A journal store.
pub trait Store: Clone + Send + Sync + 'static {
    type Write: WriteTx;
    type Snapshot: ReadFacts;

    /// How this store wants raw facts encoded ([`crate::raw`]). The store decides (it is about
    /// its storage: PostgreSQL's TOAST; SQLite keeps them as sent), but it does not encode: the
    /// consumer's reader stage does ([`crate::engine::prepare`]), so the CPU work stays off the
    /// writer's path and [`WriteTx::write`] only copies bytes. Every row says its own encoding,
    /// so a store reads what any setting wrote.
    fn raw_encoder(&self) -> RawEncoder;

    /// Loads the store's raw-fact dictionaries ([`crate::raw::Dictionary`]) and compresses
    /// new facts with the newest; `Some(n)` when the store would like one trained on the next
    /// `n` facts (it compresses with zstd and has none yet).
    fn load_raw_dictionaries(&self) -> impl Future<Output = Result<Option<usize>, Error>> + Send;
    /// Stores a dictionary trained on this ledger's facts, durably, then compresses new facts
    /// with it (so no fact that needs it commits before it does).
    fn add_raw_dictionary(&self, d: Dictionary) -> impl Future<Output = Result<(), Error>> + Send;

    /// Binds the store to the Stripe mode whose facts it holds, if nothing bound it yet;
    /// [`Error::StripeModeMismatch`] if it is bound to the other one. Called at start, before
    /// anything is folded: the mode check of each fact holds within one process, this one
    /// across restarts.
    fn bind_stripe_mode(&self, mode: StripeMode) -> impl Future<Output = Result<(), Error>> + Send;

    /// Opens a write transaction holding the store's single-writer lock.
    fn begin_write(&self) -> impl Future<Output = Result<Self::Write, Error>> + Send;
    /// Opens a read-only view of the store as committed now, without the writer lock: writers
    /// commit one at a time, so the facts it shows are every fact up to the last commit. A
    /// ledger rebuilds its core state from one at start ([`crate::Engine::warm_up`]) without
    /// holding up the other instances' writers.
    fn begin_snapshot(&self) -> impl Future<Output = Result<Self::Snapshot, Error>> + Send;
    /// Work derived from the journal that is still to be done: for PostgreSQL the lines
    /// statements waiting for the balance-cells builder (`cells.rs`); none for SQLite.
    fn derived_backlog(&self) -> impl Future<Output = Result<u64, Error>> + Send;
    /// The offsets `group` has folded so far (outside any write transaction: a hint).
    fn load_offsets(&self, group: &str) -> impl Future<Output = Result<Offsets, Error>> + Send;
    /// Whether any line is in `currency`.
    fn currency_seen(&self, currency: &str) -> impl Future<Output = Result<bool, Error>> + Send;
    /// Non-zero balances by ledger, account and currency, ordered by ledger, currency, account.
    fn balances(
        &self,
        q: &BalanceQuery,
    ) -> impl Future<Output = Result<Vec<BalanceRow>, Error>> + Send;
    /// Entries in recording order.
    fn entries(
        &self,
        q: &EntryQuery,
    ) -> impl Future<Output = Result<Vec<StoredEntry>, Error>> + Send;
    /// One entry and the raw fact behind it.
    fn entry(
        &self,
        id: Uuid,
    ) -> impl Future<Output = Result<Option<(StoredEntry, Vec<u8>)>, Error>> + Send;
    /// An account's lines in (effective time, recording order, line) order.
    fn statement(
        &self,
        q: &StatementQuery,
    ) -> impl Future<Output = Result<Vec<StatementRow>, Error>> + Send;
    /// The account's balance from the lines effective before `before`.
    fn balance_before(
        &self,
        ledger: &str,
        account: &str,
        currency: &str,
        before: DateTime<Utc>,
    ) -> impl Future<Output = Result<Decimal, Error>> + Send;
    /// Recomputes every chain from the stored rows.
    fn verify_chain(&self) -> impl Future<Output = Result<Verification, Error>> + Send;
    /// Every stored entry in canonical form, by id.
    fn stored_entries(&self) -> impl Future<Output = Result<Vec<Canonical>, Error>> + Send;
}
