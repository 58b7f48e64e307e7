-- Minute cells: an as-of balance reads the journal for E's partial minute instead of E's
-- partial hour.
--
-- Why: the partial hour was the one part of an as-of balance (20261122000620) whose cost grew
-- with the ledger's rate: every entry of the ledger effective in [E's hour, E] (≈100 on the
-- 10M-line bench's platform ledger) had its lines read by primary key, a random leaf of
-- journal_lines_pkey each (entry ids are UUIDs), so a query on a journal larger than
-- shared_buffers paid ~100–200 buffer misses; that was the p99 tail (10–25 ms, `asof` example).
--
-- Now (grain 'i': one UTC minute of effective time, tier 'r' only, like hour cells):
--
--   balance = Σ 'm' cells before E's month, Σ 'd' cells in E's month before E's day
--             (by recording span, as before)
--           + Σ 'h' cells of E's day before E's hour, tier r, recorded ≤ R
--           + Σ 'i' cells of E's hour before E's minute, tier r, recorded ≤ R
--           + Σ the lines of the ledger's entries effective in [E's minute, E], recorded ≤ R
--
-- Minute cells of one key are adjacent in ledger_balance_cells_dh (≤ 59 × recordings, one or
-- two leaf pages), and E's partial minute holds a few entries. The cost: about one more cell
-- row per journal line for busy keys (written by the same statement-level trigger).
ALTER TABLE ledger_balance_cells DROP CONSTRAINT ledger_balance_cells_grain_check;
ALTER TABLE ledger_balance_cells DROP CONSTRAINT ledger_balance_cells_check;
ALTER TABLE ledger_balance_cells
    ADD CONSTRAINT ledger_balance_cells_grain_check CHECK (grain IN ('m', 'd', 'h', 'i')),
    ADD CONSTRAINT ledger_balance_cells_check
        CHECK (tier IN ('r', 'D', 'M') AND (grain IN ('m', 'd') OR tier = 'r'));

-- Same signature and cells as 20261122000800's `ledger_cells_add` (rolled up minute → hour →
-- day → month), plus the minute cells; without JIT like the other journal triggers.
CREATE OR REPLACE FUNCTION ledger_cells_add(p_account text[], p_currency text[], p_ledger text[],
                                            p_effective timestamptz[], p_recorded timestamptz[],
                                            p_amount numeric[])
RETURNS void
LANGUAGE sql
SET jit = off
AS $$
    WITH ic AS MATERIALIZED (
        SELECT p.account, p.currency, p.ledger,
               date_trunc('minute', p.eff AT TIME ZONE 'UTC') AS i, p.rec, sum(p.amount) AS amount
          FROM unnest(p_account, p_currency, p_ledger, p_effective, p_recorded, p_amount)
                 AS p (account, currency, ledger, eff, rec, amount)
         GROUP BY 1, 2, 3, 4, 5
    ), hc AS MATERIALIZED (
        SELECT ic.account, ic.currency, ic.ledger, date_trunc('hour', ic.i) AS h, ic.rec,
               sum(ic.amount) AS amount
          FROM ic
         GROUP BY 1, 2, 3, 4, 5
    ), dc AS MATERIALIZED (
        SELECT hc.account, hc.currency, hc.ledger, date_trunc('day', hc.h) AS d, hc.rec,
               sum(hc.amount) AS amount
          FROM hc
         GROUP BY 1, 2, 3, 4, 5
    ), mc AS MATERIALIZED (
        SELECT dc.account, dc.currency, dc.ledger, date_trunc('month', dc.d) AS m, dc.rec,
               sum(dc.amount) AS amount
          FROM dc
         GROUP BY 1, 2, 3, 4, 5
    ), cells AS MATERIALIZED (
        SELECT ic.account, ic.currency, ic.ledger, 'i'::"char" AS grain, 'r'::"char" AS tier,
               ic.i AT TIME ZONE 'UTC' AS bucket, ic.rec AS recorded, ic.amount
          FROM ic
        UNION ALL
        SELECT hc.account, hc.currency, hc.ledger, 'h', 'r', hc.h AT TIME ZONE 'UTC', hc.rec, hc.amount
          FROM hc
        UNION ALL
        SELECT dc.account, dc.currency, dc.ledger, 'd', 'r', dc.d AT TIME ZONE 'UTC', dc.rec, dc.amount
          FROM dc
        UNION ALL
        SELECT mc.account, mc.currency, mc.ledger, 'm', 'r', mc.m AT TIME ZONE 'UTC', mc.rec, mc.amount
          FROM mc
        UNION ALL
        SELECT g.account, g.currency, g.ledger, g.grain, t.tier, g.bucket AT TIME ZONE 'UTC',
               date_trunc(t.unit, g.rec AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', sum(g.amount)
          FROM (SELECT dc.account, dc.currency, dc.ledger, 'd'::"char" AS grain, dc.d AS bucket,
                       dc.rec, dc.amount
                  FROM dc
                UNION ALL
                SELECT mc.account, mc.currency, mc.ledger, 'm'::"char", mc.m, mc.rec, mc.amount
                  FROM mc) g
         CROSS JOIN (VALUES ('D'::"char", 'day'), ('M'::"char", 'month')) AS t (tier, unit)
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
      FROM (SELECT DISTINCT mc.account, mc.currency, mc.ledger FROM mc) k
     WHERE NOT EXISTS (SELECT 1 FROM ledger_balance_keys o
                        WHERE o.account = k.account AND o.currency = k.currency
                          AND o.ledger = k.ledger)
    ON CONFLICT DO NOTHING
$$;

-- The minute cells of what the journal already holds, in index order (one pass, sorted, so
-- the index is filled left to right instead of at random).
SET LOCAL work_mem = '256MB';
INSERT INTO ledger_balance_cells (account, currency, ledger, grain, tier, bucket, recorded, amount)
SELECT l.account, l.currency, e.ledger, 'i', 'r',
       date_trunc('minute', e.effective_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', e.recorded_at,
       sum(l.amount)
  FROM journal_lines l
  JOIN journal_entries e ON e.entry_id = l.entry_id
 GROUP BY 1, 2, 3, 6, 7
 ORDER BY 1, 2, 3, 6, 7;

-- Same signature and meaning as 20261122000620; the hour's part before E's minute comes from
-- the minute cells, and only [E's minute, E] from the journal. Without JIT: the generic plan
-- cannot know how short the journal range is and estimates it as a fixed share of
-- journal_entries (63,000 at 10M lines), so past ~16M lines every call would cross
-- jit_above_cost and JIT-compile a 1 ms query for 10-30 ms.
CREATE OR REPLACE FUNCTION ledger_balance(p_ledger text, p_account text, p_currency text,
                                          p_e timestamptz, p_em timestamptz, p_ed timestamptz,
                                          p_eh timestamptz, p_r timestamptz, p_rm timestamptz,
                                          p_rd timestamptz)
RETURNS numeric
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan
SET jit = off
AS $$
DECLARE
    total numeric;
    em timestamptz := coalesce(p_em, 'infinity');
    ed timestamptz := coalesce(p_ed, 'infinity');
    eh timestamptz := coalesce(p_eh, 'infinity');
    -- E's UTC minute (whatever the session's time zone)
    ei timestamptz := coalesce(date_trunc('minute', p_e AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
                               'infinity');
    e  timestamptz := coalesce(p_e, 'infinity');
    rm timestamptz := coalesce(p_rm, 'infinity');
    rd timestamptz := coalesce(p_rd, 'infinity');
    r  timestamptz := coalesce(p_r, 'infinity');
BEGIN
    SELECT coalesce(sum(x.amount), 0) INTO total FROM (
        -- month cells before E's month, by recording span
        SELECT c.amount FROM ledger_balance_cells c
         WHERE c.account = p_account AND c.currency = p_currency AND c.ledger = p_ledger
           AND c.grain = 'm' AND c.tier = 'M' AND c.recorded < rm AND c.bucket < em
        UNION ALL
        SELECT c.amount FROM ledger_balance_cells c
         WHERE c.account = p_account AND c.currency = p_currency AND c.ledger = p_ledger
           AND c.grain = 'm' AND c.tier = 'D' AND c.recorded >= rm AND c.recorded < rd
           AND c.bucket < em
        UNION ALL
        SELECT c.amount FROM ledger_balance_cells c
         WHERE c.account = p_account AND c.currency = p_currency AND c.ledger = p_ledger
           AND c.grain = 'm' AND c.tier = 'r' AND c.recorded >= rd AND c.recorded <= r
           AND c.bucket < em
        -- day cells of E's month before E's day, by recording span
        UNION ALL
        SELECT c.amount FROM ledger_balance_cells c
         WHERE c.account = p_account AND c.currency = p_currency AND c.ledger = p_ledger
           AND c.grain = 'd' AND c.tier = 'M' AND c.bucket >= em AND c.bucket < ed
           AND c.recorded < rm
        UNION ALL
        SELECT c.amount FROM ledger_balance_cells c
         WHERE c.account = p_account AND c.currency = p_currency AND c.ledger = p_ledger
           AND c.grain = 'd' AND c.tier = 'D' AND c.bucket >= em AND c.bucket < ed
           AND c.recorded >= rm AND c.recorded < rd
        UNION ALL
        SELECT c.amount FROM ledger_balance_cells c
         WHERE c.account = p_account AND c.currency = p_currency AND c.ledger = p_ledger
           AND c.grain = 'd' AND c.tier = 'r' AND c.bucket >= em AND c.bucket < ed
           AND c.recorded >= rd AND c.recorded <= r
        -- hour cells of E's day before E's hour
        UNION ALL
        SELECT c.amount FROM ledger_balance_cells c
         WHERE c.account = p_account AND c.currency = p_currency AND c.ledger = p_ledger
           AND c.grain = 'h' AND c.tier = 'r' AND c.bucket >= ed AND c.bucket < eh
           AND c.recorded <= r
        -- minute cells of E's hour before E's minute
        UNION ALL
        SELECT c.amount FROM ledger_balance_cells c
         WHERE c.account = p_account AND c.currency = p_currency AND c.ledger = p_ledger
           AND c.grain = 'i' AND c.tier = 'r' AND c.bucket >= eh AND c.bucket < ei
           AND c.recorded <= r
        -- the lines of the entries effective in [E's minute, E], each entry's lines by primary
        -- key only (OFFSET 0 keeps the planner from the account index: millions of rows for a
        -- busy account)
        UNION ALL
        SELECT l.amount FROM journal_entries j
         CROSS JOIN LATERAL (SELECT n.account, n.currency, n.amount FROM journal_lines n
                              WHERE n.entry_id = j.entry_id OFFSET 0) l
         WHERE j.ledger = p_ledger AND j.effective_at >= ei AND j.effective_at <= e
           AND j.recorded_at <= r AND l.account = p_account AND l.currency = p_currency
    ) x;
    RETURN total;
END;
$$;
