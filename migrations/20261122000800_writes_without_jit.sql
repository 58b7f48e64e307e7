-- The journal's statement-level triggers without JIT, and a cheaper cell roll-up.
--
-- `journal_lines_to_cells` runs with `enable_seqscan = off` (20261122000600), which makes the
-- planner's cost estimates astronomically high, so every bulk insert of lines JIT-compiled its
-- queries with inlining and optimisation: 150–300 ms of compilation per batch for statements
-- that run in a few milliseconds (EXPLAIN ANALYZE: "JIT: Timing ... Total 165 ms" against an
-- execution of 23 ms). The trigger bodies are short, set-based statements: never worth a JIT.
ALTER FUNCTION journal_lines_to_cells() SET jit = off;
ALTER FUNCTION journal_lines_must_balance() SET jit = off;
ALTER FUNCTION ledger_entry_meta_has_fact() SET jit = off;

-- The same cells as 20261122000600's `ledger_cells_add` (checked row for row, several
-- recordings in one call included), rolled up hour → day → month instead of regrouping every
-- hour cell six times: the D and M tiers group the day and month cells, not the hour cells.
CREATE OR REPLACE FUNCTION ledger_cells_add(p_account text[], p_currency text[], p_ledger text[],
                                 p_effective timestamptz[], p_recorded timestamptz[],
                                 p_amount numeric[])
RETURNS void
LANGUAGE sql
SET jit = off
AS $$
   WITH hc AS MATERIALIZED (
        SELECT p.account, p.currency, p.ledger,
               date_trunc('hour', p.eff AT TIME ZONE 'UTC') AS h, p.rec, sum(p.amount) AS amount
          FROM unnest(p_account, p_currency, p_ledger, p_effective, p_recorded, p_amount)
                 AS p (account, currency, ledger, eff, rec, amount)
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
        SELECT hc.account, hc.currency, hc.ledger, 'h'::"char" AS grain, 'r'::"char" AS tier,
               hc.h AT TIME ZONE 'UTC' AS bucket, hc.rec AS recorded, hc.amount
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
