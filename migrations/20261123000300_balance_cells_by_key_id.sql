-- The balance cells keyed by a small integer per balance key instead of its three texts.
--
-- Why: the builder's cost is its cell upserts, and each is a descent of an index whose entries
-- began with (account, currency, ledger): variable-width texts, so every comparison on the way
-- down decoded the tuple's attributes afresh and compared strings. The same 500k random inserts
-- into an index on (account, currency, ledger, int) took 2.9 s, into one on (bigint, int) 0.96 s.
-- The cells now begin with `key_id`, fixed width, and the indexes are narrower; a balance query
-- finds its key's id once (`ledger_balance_keys` is small) and reads the same ranges as before.
-- Same cells, same sums, same functions' signatures and results.

-- No writer and no builder while the cells move (store/postgres.rs WRITER_LOCK; cells.rs).
-- 7810759523990400110 = `ledgerline`, 7810759523990397794 = `ledgercb` in ASCII
SELECT pg_advisory_xact_lock(7810759523990400110);
SELECT pg_advisory_xact_lock(7810759523990397794);

ALTER TABLE ledger_balance_keys ADD COLUMN key_id bigint GENERATED ALWAYS AS IDENTITY;
ALTER TABLE ledger_balance_keys ADD CONSTRAINT ledger_balance_keys_key_id UNIQUE (key_id);

CREATE TABLE ledger_balance_cells_by_key (
    key_id      bigint      NOT NULL,
    grain       "char"      NOT NULL CHECK (grain IN ('m', 'd', 'h', 'i')),
    tier        "char"      NOT NULL CHECK (tier IN ('r', 'D', 'M') AND (grain IN ('m', 'd') OR tier = 'r')),
    bucket      timestamptz NOT NULL,
    recorded    timestamptz NOT NULL,
    amount      numeric     NOT NULL
);
INSERT INTO ledger_balance_cells_by_key (key_id, grain, tier, bucket, recorded, amount)
SELECT k.key_id, c.grain, c.tier, c.bucket, c.recorded, c.amount
  FROM ledger_balance_cells c
  JOIN ledger_balance_keys k
    ON k.account = c.account AND k.currency = c.currency AND k.ledger = c.ledger
 ORDER BY 1, 2, 3, 4, 5;
DROP TABLE ledger_balance_cells;
ALTER TABLE ledger_balance_cells_by_key RENAME TO ledger_balance_cells;
-- Month cells are read by recording span (R's month, day), the others by effective bucket.
CREATE UNIQUE INDEX ledger_balance_cells_m
    ON ledger_balance_cells (key_id, tier, recorded, bucket) INCLUDE (amount)
    WHERE grain = 'm';
CREATE UNIQUE INDEX ledger_balance_cells_dh
    ON ledger_balance_cells (key_id, grain, tier, bucket, recorded) INCLUDE (amount)
    WHERE grain <> 'm';

-- 20261123000100's `ledger_cells_add`, cells by key id: the keys first (in their own
-- statement, so that the second one sees them), then the same roll-up per key id, inserted in
-- the order of the index each cell goes to.
CREATE OR REPLACE FUNCTION ledger_cells_add(p_account text[], p_currency text[], p_ledger text[],
                                            p_effective timestamptz[], p_recorded timestamptz[],
                                            p_amount numeric[])
RETURNS void
LANGUAGE sql
SET jit = off
AS $$
    INSERT INTO ledger_balance_keys (account, currency, ledger)
    SELECT DISTINCT p.account, p.currency, p.ledger
      FROM unnest(p_account, p_currency, p_ledger) AS p (account, currency, ledger)
     WHERE NOT EXISTS (SELECT 1 FROM ledger_balance_keys o
                        WHERE o.account = p.account AND o.currency = p.currency
                          AND o.ledger = p.ledger)
    ON CONFLICT DO NOTHING;

    WITH it AS MATERIALIZED (
        SELECT p.account, p.currency, p.ledger,
               date_trunc('minute', p.eff AT TIME ZONE 'UTC') AS i, p.rec, sum(p.amount) AS amount
          FROM unnest(p_account, p_currency, p_ledger, p_effective, p_recorded, p_amount)
                 AS p (account, currency, ledger, eff, rec, amount)
         GROUP BY 1, 2, 3, 4, 5
    ), ic AS MATERIALIZED (
        SELECT k.key_id, it.i, it.rec, it.amount
          FROM it
          JOIN ledger_balance_keys k
            ON k.account = it.account AND k.currency = it.currency AND k.ledger = it.ledger
    ), hc AS MATERIALIZED (
        SELECT ic.key_id, date_trunc('hour', ic.i) AS h, ic.rec, sum(ic.amount) AS amount
          FROM ic
         GROUP BY 1, 2, 3
    ), dc AS MATERIALIZED (
        SELECT hc.key_id, date_trunc('day', hc.h) AS d, hc.rec, sum(hc.amount) AS amount
          FROM hc
         GROUP BY 1, 2, 3
    ), mc AS MATERIALIZED (
        SELECT dc.key_id, date_trunc('month', dc.d) AS m, dc.rec, sum(dc.amount) AS amount
          FROM dc
         GROUP BY 1, 2, 3
    ), cells AS MATERIALIZED (
        SELECT ic.key_id, 'i'::"char" AS grain, 'r'::"char" AS tier,
               ic.i AT TIME ZONE 'UTC' AS bucket, ic.rec AS recorded, ic.amount
          FROM ic
        UNION ALL
        SELECT hc.key_id, 'h', 'r', hc.h AT TIME ZONE 'UTC', hc.rec, hc.amount FROM hc
        UNION ALL
        SELECT dc.key_id, 'd', 'r', dc.d AT TIME ZONE 'UTC', dc.rec, dc.amount FROM dc
        UNION ALL
        SELECT mc.key_id, 'm', 'r', mc.m AT TIME ZONE 'UTC', mc.rec, mc.amount FROM mc
        UNION ALL
        SELECT g.key_id, g.grain, t.tier, g.bucket AT TIME ZONE 'UTC',
               date_trunc(t.unit, g.rec AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', sum(g.amount)
          FROM (SELECT dc.key_id, 'd'::"char" AS grain, dc.d AS bucket, dc.rec, dc.amount FROM dc
                UNION ALL
                SELECT mc.key_id, 'm'::"char", mc.m, mc.rec, mc.amount FROM mc) g
         CROSS JOIN (VALUES ('D'::"char", 'day'), ('M'::"char", 'month')) AS t (tier, unit)
         GROUP BY 1, 2, 3, 4, 5
    ), month_cells AS (
        INSERT INTO ledger_balance_cells AS o
        SELECT * FROM cells WHERE cells.grain = 'm' ORDER BY 1, 3, 5, 4
        ON CONFLICT (key_id, tier, recorded, bucket) WHERE grain = 'm'
        DO UPDATE SET amount = o.amount + EXCLUDED.amount
    )
    INSERT INTO ledger_balance_cells AS o
    SELECT * FROM cells WHERE cells.grain <> 'm' ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (key_id, grain, tier, bucket, recorded) WHERE grain <> 'm'
    DO UPDATE SET amount = o.amount + EXCLUDED.amount;
$$;

-- 20261123000100's `ledger_balance_built`, reading the cells by the key's id.
CREATE OR REPLACE FUNCTION ledger_balance_built(p_ledger text, p_account text, p_currency text,
                                     p_e timestamptz, p_em timestamptz, p_ed timestamptz,
                                     p_eh timestamptz, p_r timestamptz, p_rm timestamptz,
                                     p_rd timestamptz)
RETURNS numeric
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan
SET jit = off
AS $$
DECLARE
    k bigint;
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
    SELECT b.key_id INTO k FROM ledger_balance_keys b
     WHERE b.account = p_account AND b.currency = p_currency AND b.ledger = p_ledger;
    IF NOT FOUND THEN
        -- no line was ever committed for this key (the writer adds the key with its lines)
        RETURN 0;
    END IF;
    SELECT coalesce(sum(x.amount), 0) INTO total FROM (
        -- month cells before E's month, by recording span
        SELECT c.amount FROM ledger_balance_cells c
         WHERE c.key_id = k
           AND c.grain = 'm' AND c.tier = 'M' AND c.recorded < rm AND c.bucket < em
        UNION ALL
        SELECT c.amount FROM ledger_balance_cells c
         WHERE c.key_id = k
           AND c.grain = 'm' AND c.tier = 'D' AND c.recorded >= rm AND c.recorded < rd
           AND c.bucket < em
           AND p_r IS NOT NULL
        UNION ALL
        SELECT c.amount FROM ledger_balance_cells c
         WHERE c.key_id = k
           AND c.grain = 'm' AND c.tier = 'r' AND c.recorded >= rd AND c.recorded <= r
           AND c.bucket < em
           AND p_r IS NOT NULL
        -- day cells of E's month before E's day, by recording span
        UNION ALL
        SELECT c.amount FROM ledger_balance_cells c
         WHERE c.key_id = k
           AND c.grain = 'd' AND c.tier = 'M' AND c.bucket >= em AND c.bucket < ed
           AND c.recorded < rm
           AND p_e IS NOT NULL
        UNION ALL
        SELECT c.amount FROM ledger_balance_cells c
         WHERE c.key_id = k
           AND c.grain = 'd' AND c.tier = 'D' AND c.bucket >= em AND c.bucket < ed
           AND c.recorded >= rm AND c.recorded < rd
           AND p_e IS NOT NULL AND p_r IS NOT NULL
        UNION ALL
        SELECT c.amount FROM ledger_balance_cells c
         WHERE c.key_id = k
           AND c.grain = 'd' AND c.tier = 'r' AND c.bucket >= em AND c.bucket < ed
           AND c.recorded >= rd AND c.recorded <= r
           AND p_e IS NOT NULL AND p_r IS NOT NULL
        -- hour cells of E's day before E's hour
        UNION ALL
        SELECT c.amount FROM ledger_balance_cells c
         WHERE c.key_id = k
           AND c.grain = 'h' AND c.tier = 'r' AND c.bucket >= ed AND c.bucket < eh
           AND c.recorded <= r
           AND p_e IS NOT NULL
        -- minute cells of E's hour before E's minute
        UNION ALL
        SELECT c.amount FROM ledger_balance_cells c
         WHERE c.key_id = k
           AND c.grain = 'i' AND c.tier = 'r' AND c.bucket >= eh AND c.bucket < ei
           AND c.recorded <= r
           AND p_e IS NOT NULL
        -- the lines of the entries effective in [E's minute, E], each entry's lines by primary
        -- key only (OFFSET 0 keeps the planner from the account index: millions of rows for a
        -- busy account)
        UNION ALL
        SELECT l.amount FROM journal_entries j
         CROSS JOIN LATERAL (SELECT n.account, n.currency, n.amount FROM journal_lines n
                              WHERE n.entry_id = j.entry_id OFFSET 0) l
         WHERE j.ledger = p_ledger AND j.effective_at >= ei AND j.effective_at <= e
           AND j.recorded_at <= r AND l.account = p_account AND l.currency = p_currency
           AND p_e IS NOT NULL
           -- only if the key has lines in E's minute (recorded by R): its minute cell says
           -- so, or a queued posting might
           AND (EXISTS (SELECT 1 FROM ledger_balance_cells c
                         WHERE c.key_id = k AND c.grain = 'i' AND c.tier = 'r'
                           AND c.bucket = ei AND c.recorded <= r)
                OR EXISTS (SELECT 1 FROM ledger_cells_pending))
    ) x;
    RETURN total;
END;
$$;

