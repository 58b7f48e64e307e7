//! The query subcommands: `balances`, `trial-balance`, `entries`, `entry`, `statement`,
//! `verify`. Each has `fetch` (the typed answer, every page followed), `render` (plain-text
//! tables) and `run` (both).

use std::collections::BTreeMap;
use std::io::Write;

use ledgerline_proto::ledger::v1 as pb;
use rust_decimal::Decimal;

use crate::time::{self, Instant};
use crate::{Error, Outcome, Remote, RemoteArgs};

/// Largest page the ledger serves.
pub const MAX_PAGE: i32 = 1000;

/// Columns padded to their widest cell, two spaces apart; the last column unpadded.
#[derive(Debug, Default)]
pub(crate) struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(header: &[&str]) -> Table {
        Table {
            rows: vec![header.iter().map(|h| (*h).to_owned()).collect()],
        }
    }

    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub(crate) fn write(&self, out: &mut dyn Write, indent: &str) -> std::io::Result<()> {
        let cols = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..cols)
            .map(|c| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|s| s.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for r in &self.rows {
            let mut line = String::from(indent);
            for (i, cell) in r.iter().enumerate() {
                if i + 1 == r.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(&format!("{cell:<w$}  ", w = widths[i]));
                }
            }
            writeln!(out, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

fn dec(s: &str, what: &str) -> Result<Decimal, Error> {
    s.parse::<Decimal>()
        .map_err(|e| Error::Malformed(format!("{what} {s:?} is not a decimal ({e})")))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn as_of(effective: Option<Instant>, recorded: Option<Instant>) -> Option<pb::AsOf> {
    (effective.is_some() || recorded.is_some()).then(|| pb::AsOf {
        effective_as_of: time::proto(effective),
        recorded_as_of: time::proto(recorded),
    })
}

/// `--effective-as-of` / `--recorded-as-of`: the two axes of time.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AsOfArgs {
    /// Entries effective at or before this time (RFC 3339, a date, or unix seconds).
    #[arg(long)]
    pub effective_as_of: Option<Instant>,
    /// Entries the ledger had recorded at or before this time: "what did the books say then".
    #[arg(long)]
    pub recorded_as_of: Option<Instant>,
}

/// `ledgerline balances`: balances of one account or of all, as of either axis of time.
#[derive(Debug, Clone, clap::Args)]
pub struct BalancesArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// The Stripe account whose books to read (`acct_…`); all ledgers if omitted.
    #[arg(long, default_value = "")]
    pub ledger: String,
    /// One account (e.g. `assets:stripe:available`); every account if omitted.
    #[arg(long, default_value = "")]
    pub account: String,
    /// One currency (ISO 4217, lower case); every currency if omitted.
    #[arg(long, default_value = "")]
    pub currency: String,
    #[command(flatten)]
    pub as_of: AsOfArgs,
}

impl BalancesArgs {
    pub async fn fetch(&self, remote: &Remote) -> Result<Vec<pb::Balance>, Error> {
        let request = pb::GetBalancesRequest {
            ledger: self.ledger.clone(),
            account: self.account.clone(),
            currency: self.currency.to_lowercase(),
            as_of: as_of(self.as_of.effective_as_of, self.as_of.recorded_as_of),
        };
        remote
            .client()
            .get_balances(request)
            .await
            .map(|r| r.into_inner().balances)
            .map_err(|s| remote.status_error("GetBalances", &s))
    }

    pub fn render(balances: &[pb::Balance], out: &mut dyn Write) -> std::io::Result<()> {
        let mut t = Table::new(&["ledger", "account", "currency", "amount"]);
        for b in balances {
            t.row(vec![
                b.ledger.clone(),
                b.account.clone(),
                b.currency.clone(),
                b.amount.clone(),
            ]);
        }
        t.write(out, "")
    }

    pub async fn run(&self, remote: &Remote, out: &mut dyn Write) -> Result<Outcome, Error> {
        let b = self.fetch(remote).await?;
        Self::render(&b, out)?;
        Ok(Outcome::Ok)
    }
}

/// `ledgerline trial-balance`: every non-zero balance of one ledger and the per-currency
/// totals (zero when the books balance; exit 2 when they do not).
#[derive(Debug, Clone, clap::Args)]
pub struct TrialBalanceArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// The Stripe account whose books to read (`acct_…`).
    #[arg(long)]
    pub ledger: String,
    #[command(flatten)]
    pub as_of: AsOfArgs,
}

impl TrialBalanceArgs {
    pub async fn fetch(&self, remote: &Remote) -> Result<pb::GetTrialBalanceResponse, Error> {
        let request = pb::GetTrialBalanceRequest {
            ledger: self.ledger.clone(),
            as_of: as_of(self.as_of.effective_as_of, self.as_of.recorded_as_of),
        };
        remote
            .client()
            .get_trial_balance(request)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| remote.status_error("GetTrialBalance", &s))
    }

    /// Per-currency totals of the rows (recomputed here, not taken on trust).
    pub fn totals(tb: &pb::GetTrialBalanceResponse) -> Result<BTreeMap<String, Decimal>, Error> {
        let mut sums: BTreeMap<String, Decimal> = BTreeMap::new();
        for r in &tb.rows {
            *sums.entry(r.currency.clone()).or_default() += dec(&r.amount, "amount")?;
        }
        Ok(sums)
    }

    pub async fn run(&self, remote: &Remote, out: &mut dyn Write) -> Result<Outcome, Error> {
        let tb = self.fetch(remote).await?;
        let totals = Self::totals(&tb)?;
        let mut t = Table::new(&["account", "currency", "debit", "credit"]);
        for r in &tb.rows {
            let v = dec(&r.amount, "amount")?;
            let (dr, cr) = if v.is_sign_negative() {
                (String::new(), (-v).to_string())
            } else {
                (v.to_string(), String::new())
            };
            t.row(vec![r.account.clone(), r.currency.clone(), dr, cr]);
        }
        t.write(out, "")?;
        writeln!(out)?;
        let mut t = Table::new(&["currency", "total"]);
        for (c, v) in &totals {
            t.row(vec![c.clone(), v.normalize().to_string()]);
        }
        t.write(out, "")?;
        let balanced = tb.balanced && totals.values().all(Decimal::is_zero);
        writeln!(
            out,
            "\n{}: {}",
            self.ledger,
            if balanced {
                "balanced (every currency sums to zero)"
            } else {
                "NOT BALANCED"
            }
        )?;
        Ok(if balanced {
            Outcome::Ok
        } else {
            Outcome::Failed
        })
    }
}

/// Filters of `entries` and `export`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct EntryFilter {
    /// Only this Stripe account's books (`acct_…`).
    #[arg(long, default_value = "")]
    pub ledger: String,
    /// Only entries with a line on this account.
    #[arg(long, default_value = "")]
    pub account: String,
    /// Only entries of this source object (e.g. `txn_…`).
    #[arg(long, default_value = "")]
    pub source: String,
    /// Effective at or after this time.
    #[arg(long)]
    pub from: Option<Instant>,
    /// Effective before this time.
    #[arg(long)]
    pub to: Option<Instant>,
    /// Entries per request (1..=1000).
    #[arg(long, default_value_t = 500)]
    pub page_size: i32,
}

impl EntryFilter {
    fn request(&self, page_token: String) -> pb::ListEntriesRequest {
        pb::ListEntriesRequest {
            ledger: self.ledger.clone(),
            account: self.account.clone(),
            source_id: self.source.clone(),
            effective_from: time::proto(self.from),
            effective_to: time::proto(self.to),
            page_size: self.page_size,
            page_token,
        }
    }

    /// Calls `each` with every page, following page tokens to the end (or until `each`
    /// returns false).
    pub async fn for_each_page(
        &self,
        remote: &Remote,
        mut each: impl FnMut(Vec<pb::JournalEntry>) -> Result<bool, Error>,
    ) -> Result<(), Error> {
        if !(1..=MAX_PAGE).contains(&self.page_size) {
            return Err(Error::Usage(format!(
                "--page-size {} is out of bounds: 1..={MAX_PAGE}",
                self.page_size
            )));
        }
        let mut client = remote.client();
        let mut token = String::new();
        loop {
            let page = client
                .list_entries(self.request(token.clone()))
                .await
                .map_err(|s| remote.status_error("ListEntries", &s))?
                .into_inner();
            if page.next_page_token == token && !token.is_empty() {
                return Err(Error::Malformed(
                    "the ledger returned the same page token twice".into(),
                ));
            }
            let more = each(page.entries)?;
            if !more || page.next_page_token.is_empty() {
                return Ok(());
            }
            token = page.next_page_token;
        }
    }
}

/// `ledgerline entries`: entries by account, time range or source, in recording order; every
/// page is fetched.
#[derive(Debug, Clone, clap::Args)]
pub struct EntriesArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
    #[command(flatten)]
    pub filter: EntryFilter,
    /// Stop after this many entries.
    #[arg(long)]
    pub limit: Option<usize>,
}

impl EntriesArgs {
    pub async fn fetch(&self, remote: &Remote) -> Result<Vec<pb::JournalEntry>, Error> {
        let mut all = Vec::new();
        let limit = self.limit.unwrap_or(usize::MAX);
        self.filter
            .for_each_page(remote, |page| {
                all.extend(page);
                Ok(all.len() < limit)
            })
            .await?;
        all.truncate(limit);
        Ok(all)
    }

    /// One header line per entry (id, effective and recorded time, ledger, rule, source),
    /// its lines indented below.
    pub fn render(entries: &[pb::JournalEntry], out: &mut dyn Write) -> std::io::Result<()> {
        for e in entries {
            writeln!(
                out,
                "{}  {}  recorded {}  {}  {}  {}:{}",
                e.entry_id,
                time::format(e.effective_at.as_ref()),
                time::format(e.recorded_at.as_ref()),
                e.ledger,
                e.rule,
                e.source_kind,
                e.source_id
            )?;
            let mut t = Table::default();
            for l in &e.lines {
                t.row(vec![
                    l.account.clone(),
                    l.currency.clone(),
                    l.amount.clone(),
                ]);
            }
            t.write(out, "    ")?;
        }
        writeln!(out, "{} entries", entries.len())
    }

    pub async fn run(&self, remote: &Remote, out: &mut dyn Write) -> Result<Outcome, Error> {
        let entries = self.fetch(remote).await?;
        Self::render(&entries, out)?;
        Ok(Outcome::Ok)
    }
}

/// `ledgerline entry <id>`: one entry with its lines and the raw Stripe fact behind it.
#[derive(Debug, Clone, clap::Args)]
pub struct EntryArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// The entry id (a UUID).
    pub entry_id: String,
}

impl EntryArgs {
    pub async fn fetch(&self, remote: &Remote) -> Result<pb::GetEntryResponse, Error> {
        remote
            .client()
            .get_entry(pb::GetEntryRequest {
                entry_id: self.entry_id.clone(),
            })
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| remote.status_error("GetEntry", &s))
    }

    pub fn render(r: &pb::GetEntryResponse, out: &mut dyn Write) -> Result<(), Error> {
        let e = r
            .entry
            .as_ref()
            .ok_or_else(|| Error::Malformed("GetEntry answered without an entry".into()))?;
        let mut t = Table::default();
        let mut field = |k: &str, v: String| t.row(vec![k.to_owned(), v]);
        field("entry", e.entry_id.clone());
        field("ledger", e.ledger.clone());
        field("rule", e.rule.clone());
        field("source", format!("{}:{}", e.source_kind, e.source_id));
        field("effective", time::format(e.effective_at.as_ref()));
        field("recorded", time::format(e.recorded_at.as_ref()));
        if !e.description.is_empty() {
            field("description", e.description.clone());
        }
        if !e.reverses.is_empty() {
            field("reverses", e.reverses.clone());
        }
        if e.chain_hash.is_empty() {
            field("chain", e.chain.clone());
        } else {
            field(
                "chain",
                format!("{} #{} {}", e.chain, e.chain_seq, hex(&e.chain_hash)),
            );
        }
        field("fact", r.fact_id.clone());
        t.write(out, "")?;
        writeln!(out, "lines:")?;
        let mut lines = Table::new(&["account", "currency", "amount"]);
        for l in &e.lines {
            lines.row(vec![
                l.account.clone(),
                l.currency.clone(),
                l.amount.clone(),
            ]);
        }
        lines.write(out, "    ")?;
        writeln!(out, "raw fact {}:", r.fact_id)?;
        // Pretty-printed when it is JSON (it always is from Stripe); as received otherwise.
        match serde_json::from_slice::<serde_json::Value>(&r.raw_fact) {
            Ok(v) => writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&v).unwrap_or_default()
            )?,
            Err(_) => writeln!(out, "{}", String::from_utf8_lossy(&r.raw_fact))?,
        }
        Ok(())
    }

    pub async fn run(&self, remote: &Remote, out: &mut dyn Write) -> Result<Outcome, Error> {
        let r = self.fetch(remote).await?;
        Self::render(&r, out)?;
        Ok(Outcome::Ok)
    }
}

/// `ledgerline statement`: the lines of one account in one currency, in effective order, with
/// the running balance; every page is fetched.
#[derive(Debug, Clone, clap::Args)]
pub struct StatementArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// The Stripe account whose books to read (`acct_…`).
    #[arg(long)]
    pub ledger: String,
    /// The account, e.g. `assets:stripe:available`.
    #[arg(long)]
    pub account: String,
    /// ISO 4217, lower case.
    #[arg(long)]
    pub currency: String,
    /// Effective at or after this time.
    #[arg(long)]
    pub from: Option<Instant>,
    /// Effective before this time.
    #[arg(long)]
    pub to: Option<Instant>,
    /// Lines per request (1..=1000).
    #[arg(long, default_value_t = 500)]
    pub page_size: i32,
}

/// A whole statement: the opening balance and every line.
#[derive(Debug, Clone, Default)]
pub struct Statement {
    pub opening_balance: String,
    pub lines: Vec<pb::StatementLine>,
}

impl StatementArgs {
    pub async fn fetch(&self, remote: &Remote) -> Result<Statement, Error> {
        let mut client = remote.client();
        let mut token = String::new();
        let mut statement = Statement::default();
        let mut first = true;
        loop {
            let page = client
                .get_account_statement(pb::GetAccountStatementRequest {
                    ledger: self.ledger.clone(),
                    account: self.account.clone(),
                    currency: self.currency.to_lowercase(),
                    effective_from: time::proto(self.from),
                    effective_to: time::proto(self.to),
                    page_size: self.page_size,
                    page_token: token.clone(),
                })
                .await
                .map_err(|s| remote.status_error("GetAccountStatement", &s))?
                .into_inner();
            if first {
                statement.opening_balance = page.opening_balance;
                first = false;
            }
            statement.lines.extend(page.lines);
            if page.next_page_token.is_empty() {
                return Ok(statement);
            }
            if page.next_page_token == token {
                return Err(Error::Malformed(
                    "the ledger returned the same page token twice".into(),
                ));
            }
            token = page.next_page_token;
        }
    }

    pub fn render(&self, s: &Statement, out: &mut dyn Write) -> std::io::Result<()> {
        writeln!(
            out,
            "{} {} {}: opening balance {}",
            self.ledger, self.account, self.currency, s.opening_balance
        )?;
        let mut t = Table::new(&["effective", "entry", "rule", "source", "amount", "balance"]);
        for l in &s.lines {
            t.row(vec![
                time::format(l.effective_at.as_ref()),
                l.entry_id.clone(),
                l.rule.clone(),
                l.source_id.clone(),
                l.amount.clone(),
                l.running_balance.clone(),
            ]);
        }
        t.write(out, "")?;
        let closing = s
            .lines
            .last()
            .map_or(s.opening_balance.as_str(), |l| l.running_balance.as_str());
        writeln!(
            out,
            "closing balance {closing} after {} lines",
            s.lines.len()
        )
    }

    pub async fn run(&self, remote: &Remote, out: &mut dyn Write) -> Result<Outcome, Error> {
        let s = self.fetch(remote).await?;
        self.render(&s, out)?;
        Ok(Outcome::Ok)
    }
}

/// `ledgerline verify`: recomputes every hash chain on the ledger; names the first bad entry
/// and exits 2 if one does not match.
#[derive(Debug, Clone, clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
}

impl VerifyArgs {
    pub async fn fetch(&self, remote: &Remote) -> Result<pb::VerifyChainResponse, Error> {
        remote
            .client()
            .verify_chain(pb::VerifyChainRequest {})
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| remote.status_error("VerifyChain", &s))
    }

    pub fn render(v: &pb::VerifyChainResponse, out: &mut dyn Write) -> std::io::Result<()> {
        if v.ok {
            writeln!(
                out,
                "chain verified: {} entries, {} chains",
                v.entries_checked,
                v.heads.len()
            )?;
        } else {
            writeln!(
                out,
                "CHAIN BROKEN at entry {}: {} ({} entries checked)",
                v.first_bad_entry_id, v.reason, v.entries_checked
            )?;
        }
        let mut t = Table::new(&["chain", "length", "head"]);
        for h in &v.heads {
            t.row(vec![h.chain.clone(), h.length.to_string(), hex(&h.head)]);
        }
        t.write(out, "")
    }

    pub async fn run(&self, remote: &Remote, out: &mut dyn Write) -> Result<Outcome, Error> {
        let v = self.fetch(remote).await?;
        Self::render(&v, out)?;
        Ok(if v.ok { Outcome::Ok } else { Outcome::Failed })
    }
}
