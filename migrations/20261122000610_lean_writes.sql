-- Leaner journal writes (the ledger's batch write was dominated by per-row work):
--
-- Indexes nothing reads any more:
--   journal_entries_source (source_kind, source_id): by-source queries use journal_entries_source_id;
--   journal_entries_recorded: recorded-time balances read ledger_balance_cells;
--   journal_lines_currency: the unknown-currency check reads ledger_balance_keys;
--   ledger_entry_meta_fact, ledger_facts_fact_id: no query reads metadata or facts by those.
DROP INDEX journal_entries_source;
DROP INDEX journal_entries_recorded;
DROP INDEX journal_lines_currency;
DROP INDEX ledger_entry_meta_fact;
DROP INDEX ledger_facts_fact_id;

-- Per-row foreign keys become statement-level checks (one anti-join per bulk insert instead of
-- one trigger call per row): journal_lines → journal_entries is checked by journal_lines_to_cells
-- (20261122000600); ledger_entry_meta → ledger_facts by the trigger below.
ALTER TABLE journal_lines DROP CONSTRAINT journal_lines_entry_id_fkey;
ALTER TABLE ledger_entry_meta DROP CONSTRAINT ledger_entry_meta_fact_seq_fkey;

CREATE FUNCTION ledger_entry_meta_has_fact() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    orphan bigint;
BEGIN
    SELECT n.fact_seq INTO orphan
      FROM (SELECT DISTINCT fact_seq FROM new_meta) n
     WHERE NOT EXISTS (SELECT 1 FROM ledger_facts f WHERE f.fact_seq = n.fact_seq)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'entry metadata refers to fact %, which is not stored: insert the fact first',
            orphan
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER ledger_entry_meta_fact_exists
    AFTER INSERT ON ledger_entry_meta
    REFERENCING NEW TABLE AS new_meta
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_entry_meta_has_fact();

-- The balance check of 20261122000400 in one pass over the touched entries' lines instead of
-- two (same rules, same messages): per entry and currency the sum, and the entry's line count.
CREATE OR REPLACE FUNCTION journal_lines_must_balance() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    bad record;
BEGIN
    SELECT t.entry_id, l.currency, l.total, l.lines
      INTO bad
      FROM (SELECT DISTINCT entry_id FROM new_lines) t
      CROSS JOIN LATERAL (SELECT j.currency, sum(j.amount) AS total,
                                 sum(count(*)) OVER () AS lines
                            FROM journal_lines j
                           WHERE j.entry_id = t.entry_id GROUP BY j.currency) l
     WHERE l.total <> 0 OR l.lines < 2
     ORDER BY l.total = 0
     LIMIT 1;
    IF FOUND AND bad.total <> 0 THEN
        RAISE EXCEPTION 'journal entry % does not balance in %: lines sum to %',
            bad.entry_id, bad.currency, bad.total
            USING ERRCODE = 'check_violation';
    ELSIF FOUND THEN
        RAISE EXCEPTION 'journal entry % has a single line: an entry needs a debit and a credit',
            bad.entry_id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END;
$$;
