-- As-of balances without summing the journal.
--
-- A cell holds the sum of the lines of one balance key (account, currency, ledger) whose
-- entries are effective in one bucket of effective time (`grain`: a UTC month 'm', day 'd' or
-- hour 'h'; `bucket` is its start) and were recorded in one span of recording time (`tier`:
-- 'r' one writer transaction, `recorded` = its recorded_at exactly; 'D' a UTC day and 'M' a
-- UTC month of recording, `recorded` = its start). Month and day cells exist in all three
-- tiers, hour cells in tier 'r'. For an effective time E and a recorded time R:
--
--   balance = Σ 'm' cells before E's month          ┐ recorded: tier M before R's month,
--           + Σ 'd' cells in E's month before E's day ┘ tier D in R's month before R's day,
--                                                      tier r from R's day to R itself
--           + Σ 'h' cells of E's day before E's hour, tier r, recorded ≤ R
--           + Σ the lines of the ledger's entries effective in [E's hour, E], recorded ≤ R
--
-- (without R: tier M only, which holds every recording). Both axes are exact: a cell never
-- straddles a bound, and the partial hour is read from the journal itself. A query reads
-- O(months × recording months + days × recording days + hours) cells, independent of how many
-- lines and recordings are behind them, plus one hour of one ledger's entries.
--
-- The cells are a derived cache maintained by the database in the statement that inserts the
-- lines (every writer, bulk or not, keeps them), never by the service.
CREATE TABLE ledger_balance_cells (
    account     text        NOT NULL,
    currency    text        NOT NULL,
    ledger      text        NOT NULL,
    grain       "char"      NOT NULL CHECK (grain IN ('m', 'd', 'h')),
    tier        "char"      NOT NULL CHECK (tier IN ('r', 'D', 'M') AND (grain <> 'h' OR tier = 'r')),
    bucket      timestamptz NOT NULL,
    recorded    timestamptz NOT NULL,
    amount      numeric     NOT NULL
);
-- Month cells are read by recording span (R's month, day), the others by effective bucket.
CREATE UNIQUE INDEX ledger_balance_cells_m
    ON ledger_balance_cells (account, currency, ledger, tier, recorded, bucket) INCLUDE (amount)
    WHERE grain = 'm';
CREATE UNIQUE INDEX ledger_balance_cells_dh
    ON ledger_balance_cells (account, currency, ledger, grain, tier, bucket, recorded) INCLUDE (amount)
    WHERE grain <> 'm';

-- Every balance key the journal has lines in: "all accounts" queries enumerate these, and the
-- "unknown currency" check reads them (so journal_lines needs no index on currency).
CREATE TABLE ledger_balance_keys (
    account  text NOT NULL,
    currency text NOT NULL,
    ledger   text NOT NULL,
    PRIMARY KEY (account, currency, ledger)
);
CREATE INDEX ledger_balance_keys_ledger ON ledger_balance_keys (ledger);
CREATE INDEX ledger_balance_keys_currency ON ledger_balance_keys (currency);

-- Adds postings (account, currency, ledger, effective_at, recorded_at, amount; as arrays) to
-- their cells and keys.
CREATE FUNCTION ledger_cells_add(p_account text[], p_currency text[], p_ledger text[],
                                 p_effective timestamptz[], p_recorded timestamptz[],
                                 p_amount numeric[])
RETURNS void
LANGUAGE sql AS $$
    WITH hc AS MATERIALIZED (
        -- per hour of effective time and recording, then rolled up
        SELECT p.account, p.currency, p.ledger,
               date_trunc('hour', p.eff AT TIME ZONE 'UTC') AS h, p.rec, sum(p.amount) AS amount
          FROM unnest(p_account, p_currency, p_ledger, p_effective, p_recorded, p_amount)
                 AS p (account, currency, ledger, eff, rec, amount)
         GROUP BY 1, 2, 3, 4, 5
    ), cells AS MATERIALIZED (
        SELECT hc.account, hc.currency, hc.ledger, 'h'::"char" AS grain, 'r'::"char" AS tier,
               hc.h AT TIME ZONE 'UTC' AS bucket, hc.rec AS recorded, hc.amount
          FROM hc
        UNION ALL
        SELECT hc.account, hc.currency, hc.ledger, g.grain, t.tier,
               date_trunc(g.unit, hc.h) AT TIME ZONE 'UTC',
               CASE t.tier WHEN 'r' THEN hc.rec
                           ELSE date_trunc(t.unit, hc.rec AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' END,
               sum(hc.amount)
          FROM hc
         CROSS JOIN (VALUES ('m'::"char", 'month'), ('d'::"char", 'day')) AS g (grain, unit)
         CROSS JOIN (VALUES ('r'::"char", ''), ('D'::"char", 'day'), ('M'::"char", 'month'))
                    AS t (tier, unit)
         GROUP BY 1, 2, 3, 4, 5, 6, 7
    ), month_cells AS (
        INSERT INTO ledger_balance_cells AS o
        SELECT * FROM cells WHERE cells.grain = 'm'
        ON CONFLICT (account, currency, ledger, tier, recorded, bucket) WHERE grain = 'm'
        DO UPDATE SET amount = o.amount + EXCLUDED.amount
    ), other_cells AS (
        INSERT INTO ledger_balance_cells AS o
        SELECT * FROM cells WHERE cells.grain <> 'm'
        ON CONFLICT (account, currency, ledger, grain, tier, bucket, recorded) WHERE grain <> 'm'
        DO UPDATE SET amount = o.amount + EXCLUDED.amount
    )
    INSERT INTO ledger_balance_keys (account, currency, ledger)
    SELECT k.account, k.currency, k.ledger
      FROM (SELECT DISTINCT hc.account, hc.currency, hc.ledger FROM hc) k
     WHERE NOT EXISTS (SELECT 1 FROM ledger_balance_keys o
                        WHERE o.account = k.account AND o.currency = k.currency
                          AND o.ledger = k.ledger)
    ON CONFLICT DO NOTHING
$$;

-- Statement-level (runs once per bulk insert), after the balance check. The new lines' entries
-- are looked up by primary key (seq scans off: the planner estimates a transition table at a
-- few hundred rows and would otherwise hash the whole journal_entries, O(books) per insert),
-- then added to their cells. A line whose entry does not exist is refused: the set-based twin
-- of a foreign key journal_lines → journal_entries.
CREATE FUNCTION journal_lines_to_cells() RETURNS trigger
LANGUAGE plpgsql
SET enable_seqscan = off
AS $$
DECLARE
    orphan uuid;
BEGIN
    SELECT n.entry_id INTO orphan
      FROM (SELECT DISTINCT entry_id FROM new_lines) n
     WHERE NOT EXISTS (SELECT 1 FROM journal_entries e WHERE e.entry_id = n.entry_id)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'journal line refers to entry %, which does not exist: insert the entry first',
            orphan
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    PERFORM ledger_cells_add(array_agg(n.account), array_agg(n.currency), array_agg(e.ledger),
                             array_agg(e.effective_at), array_agg(e.recorded_at),
                             array_agg(n.amount))
       FROM new_lines n
       JOIN (SELECT i.entry_id, x.ledger, x.effective_at, x.recorded_at
               FROM (SELECT DISTINCT entry_id FROM new_lines) i
               JOIN journal_entries x ON x.entry_id = i.entry_id) e ON e.entry_id = n.entry_id;
    RETURN NULL;
END;
$$;

CREATE TRIGGER journal_lines_cells
    AFTER INSERT ON journal_lines
    REFERENCING NEW TABLE AS new_lines
    FOR EACH STATEMENT EXECUTE FUNCTION journal_lines_to_cells();

-- What the journal already holds, one recording at a time.
DO $$
DECLARE
    rec timestamptz;
BEGIN
    FOR rec IN SELECT DISTINCT recorded_at FROM journal_entries ORDER BY 1 LOOP
        PERFORM ledger_cells_add(array_agg(l.account), array_agg(l.currency), array_agg(e.ledger),
                                 array_agg(e.effective_at), array_agg(e.recorded_at),
                                 array_agg(l.amount))
           FROM journal_entries e JOIN journal_lines l ON l.entry_id = e.entry_id
          WHERE e.recorded_at = rec;
    END LOOP;
END;
$$;

-- The partial hour of an as-of query reads entries by (ledger, effective_at) and filters on
-- recorded_at without visiting the heap.
CREATE INDEX journal_entries_effective_recorded
    ON journal_entries (ledger, effective_at) INCLUDE (recorded_at);
DROP INDEX journal_entries_effective;
