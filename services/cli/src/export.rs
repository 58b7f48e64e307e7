//! `ledgerline export`: entries as CSV (RFC 4180), one row per line, streamed page by page.

use std::io::Write;
use std::path::PathBuf;

use ledgerline_proto::ledger::v1 as pb;

use crate::query::EntryFilter;
use crate::{Error, Outcome, Remote, RemoteArgs, time};

/// The header row.
pub const COLUMNS: [&str; 12] = [
    "entry_id",
    "ledger",
    "effective_at",
    "recorded_at",
    "rule",
    "source_kind",
    "source_id",
    "fact_id",
    "line",
    "account",
    "currency",
    "amount",
];

/// `ledgerline export`: every entry the filters select, as CSV with one row per line (entry
/// id, ledger, effective and recorded time in RFC 3339 UTC, rule, source, fact, line number,
/// account, currency, exact decimal amount: positive debit, negative credit).
#[derive(Debug, Clone, clap::Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
    #[command(flatten)]
    pub filter: EntryFilter,
    /// Write to this file instead of standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

/// How much an export wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Exported {
    pub entries: usize,
    pub rows: usize,
}

/// A CSV field: quoted when it holds a comma, a quote or a line break.
pub fn field(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\"")).into()
    } else {
        s.into()
    }
}

fn write_row(out: &mut dyn Write, cells: &[&str]) -> std::io::Result<()> {
    for (i, c) in cells.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        out.write_all(field(c).as_bytes())?;
    }
    out.write_all(b"\r\n")
}

/// The rows of one entry.
pub fn write_entry(out: &mut dyn Write, e: &pb::JournalEntry) -> std::io::Result<usize> {
    let effective = time::format(e.effective_at.as_ref());
    let recorded = time::format(e.recorded_at.as_ref());
    for (i, l) in e.lines.iter().enumerate() {
        let n = (i + 1).to_string();
        write_row(
            out,
            &[
                &e.entry_id,
                &e.ledger,
                &effective,
                &recorded,
                &e.rule,
                &e.source_kind,
                &e.source_id,
                &e.fact_id,
                &n,
                &l.account,
                &l.currency,
                &l.amount,
            ],
        )?;
    }
    Ok(e.lines.len())
}

impl ExportArgs {
    /// Streams the CSV (header first) to `out`, following every page.
    pub async fn write_csv(&self, remote: &Remote, out: &mut dyn Write) -> Result<Exported, Error> {
        write_row(out, &COLUMNS)?;
        let mut done = Exported::default();
        self.filter
            .for_each_page(remote, |page| {
                for e in &page {
                    done.rows += write_entry(out, e)?;
                    done.entries += 1;
                }
                Ok(true)
            })
            .await?;
        out.flush()?;
        Ok(done)
    }

    /// To `--output` (then a one-line summary on `out`) or to `out`.
    pub async fn run(&self, remote: &Remote, out: &mut dyn Write) -> Result<Outcome, Error> {
        match &self.output {
            None => {
                self.write_csv(remote, out).await?;
            }
            Some(path) => {
                let file = std::fs::File::create(path)
                    .map_err(|e| Error::Usage(format!("cannot create {}: {e}", path.display())))?;
                let mut w = std::io::BufWriter::new(file);
                let done = self.write_csv(remote, &mut w).await?;
                w.into_inner()
                    .map_err(|e| Error::Io(e.into_error()))?
                    .sync_all()?;
                writeln!(
                    out,
                    "exported {} entries ({} lines) to {}",
                    done.entries,
                    done.rows,
                    path.display()
                )?;
            }
        }
        Ok(Outcome::Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_only_when_needed() {
        assert_eq!(field("assets:stripe:pending"), "assets:stripe:pending");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("two\nlines"), "\"two\nlines\"");
    }
}
