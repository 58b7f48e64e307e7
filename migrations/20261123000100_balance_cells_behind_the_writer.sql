-- The balance cells move off the writer's transaction: the lines trigger queues each statement's
-- postings, and a builder (`ledger_cells_build`, run by every ledger instance) adds them to
-- their cells later, in its own transaction.
--
-- Why: adding a batch's lines to their cells was most of the ledger's write (≈2 cell upserts a
-- line, every recording its own tier-'r' cells: 566k cells for 268k lines on the 200k-fact
-- bench), all of it in the single writer's transaction, on one core while the other idled. The
-- writer now appends one row per lines statement; the builder's upserts run beside it.
--
-- Exactness is unchanged: a posting is either in its cells or still queued, never both (the
-- builder deletes the queued row and adds its cells in one transaction), and every as-of
-- balance adds the queued postings to what the cells say:
--
--   balance(E, R) = Σ cells before E's minute (as in 20261122000901; built postings only)
--                 + Σ queued postings effective before E's minute, recorded ≤ R
--                 + Σ the journal's lines effective in [E's minute, E], recorded ≤ R (built
--                   or not: the cells never hold E's partial minute)
--
-- The balance keys stay in the writer's statement ("all accounts" queries and the unknown
-- currency check must see a key as soon as its lines are committed), as does the check that a
-- line's entry exists.

-- No writer between the old trigger and the new one (store/postgres.rs WRITER_LOCK).
-- 7810759523990400110 = 0x6c65_6467_6572_6c6e, `ledgerline` in ASCII
SELECT pg_advisory_xact_lock(7810759523990400110);

-- One row per statement that inserted journal lines: its lines' postings, as the arrays
-- `ledger_cells_add` takes. A handful of rows while the builder keeps up.
CREATE TABLE ledger_cells_pending (
    pending_seq bigserial     PRIMARY KEY,
    account     text[]        NOT NULL,
    currency    text[]        NOT NULL,
    ledger      text[]        NOT NULL,
    effective   timestamptz[] NOT NULL,
    recorded    timestamptz[] NOT NULL,
    amount      numeric[]     NOT NULL
);
ALTER TABLE ledger_cells_pending
    ALTER COLUMN account SET COMPRESSION lz4,
    ALTER COLUMN currency SET COMPRESSION lz4,
    ALTER COLUMN ledger SET COMPRESSION lz4,
    ALTER COLUMN effective SET COMPRESSION lz4,
    ALTER COLUMN recorded SET COMPRESSION lz4,
    ALTER COLUMN amount SET COMPRESSION lz4;

-- Same trigger, same checks; the postings are queued instead of added to their cells.
CREATE OR REPLACE FUNCTION journal_lines_to_cells() RETURNS trigger
LANGUAGE plpgsql
SET enable_seqscan = off
SET jit = off
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
    WITH p AS MATERIALIZED (
        SELECT n.account, n.currency, e.ledger, e.effective_at, e.recorded_at, n.amount
          FROM new_lines n
          JOIN (SELECT i.entry_id, x.ledger, x.effective_at, x.recorded_at
                  FROM (SELECT DISTINCT entry_id FROM new_lines) i
                  JOIN journal_entries x ON x.entry_id = i.entry_id) e ON e.entry_id = n.entry_id
    ), queued AS (
        INSERT INTO ledger_cells_pending (account, currency, ledger, effective, recorded, amount)
        SELECT array_agg(p.account), array_agg(p.currency), array_agg(p.ledger),
               array_agg(p.effective_at), array_agg(p.recorded_at), array_agg(p.amount)
          FROM p
        HAVING count(*) > 0
    )
    INSERT INTO ledger_balance_keys (account, currency, ledger)
    SELECT k.account, k.currency, k.ledger
      FROM (SELECT DISTINCT p.account, p.currency, p.ledger FROM p) k
     WHERE NOT EXISTS (SELECT 1 FROM ledger_balance_keys o
                        WHERE o.account = k.account AND o.currency = k.currency
                          AND o.ledger = k.ledger)
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END;
$$;

-- Adds up to `p_max_rows` queued statements (oldest first) to their cells and removes them from
-- the queue, in the caller's transaction; returns how many it took. One builder at a time (an
-- advisory lock; 7810759523990397794 = `ledgercb` in ASCII): a second caller returns 0 at once
-- instead of waiting or racing the first one's upserts.
CREATE FUNCTION ledger_cells_build(p_max_rows integer) RETURNS integer
LANGUAGE plpgsql
SET jit = off
AS $$
DECLARE
    taken integer;
BEGIN
    IF NOT pg_try_advisory_xact_lock(7810759523990397794) THEN
        RETURN 0;
    END IF;
    WITH taken_rows AS (
        DELETE FROM ledger_cells_pending
         WHERE pending_seq IN (SELECT q.pending_seq FROM ledger_cells_pending q
                                ORDER BY q.pending_seq LIMIT p_max_rows)
        RETURNING account, currency, ledger, effective, recorded, amount
    ), postings AS (
        SELECT p.*
          FROM taken_rows t
         CROSS JOIN LATERAL unnest(t.account, t.currency, t.ledger, t.effective, t.recorded,
                                   t.amount) AS p (account, currency, ledger, eff, rec, amount)
    ), added AS (
        SELECT ledger_cells_add(array_agg(p.account), array_agg(p.currency), array_agg(p.ledger),
                                array_agg(p.eff), array_agg(p.rec), array_agg(p.amount))
          FROM postings p
    )
    SELECT (SELECT count(*) FROM taken_rows) INTO taken FROM added;
    RETURN taken;
END;
$$;

-- 20261122000901's `ledger_balance` over the built cells only, under a new name: the cells
-- before E's minute plus E's partial minute from the journal. The partial minute's shortcut
-- (skip the journal unless the key has a minute cell for E's minute) holds only when nothing is
-- queued: a queued posting has no cell yet.
CREATE FUNCTION ledger_balance_built(p_ledger text, p_account text, p_currency text,
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
           AND p_r IS NOT NULL
        UNION ALL
        SELECT c.amount FROM ledger_balance_cells c
         WHERE c.account = p_account AND c.currency = p_currency AND c.ledger = p_ledger
           AND c.grain = 'm' AND c.tier = 'r' AND c.recorded >= rd AND c.recorded <= r
           AND c.bucket < em
           AND p_r IS NOT NULL
        -- day cells of E's month before E's day, by recording span
        UNION ALL
        SELECT c.amount FROM ledger_balance_cells c
         WHERE c.account = p_account AND c.currency = p_currency AND c.ledger = p_ledger
           AND c.grain = 'd' AND c.tier = 'M' AND c.bucket >= em AND c.bucket < ed
           AND c.recorded < rm
           AND p_e IS NOT NULL
        UNION ALL
        SELECT c.amount FROM ledger_balance_cells c
         WHERE c.account = p_account AND c.currency = p_currency AND c.ledger = p_ledger
           AND c.grain = 'd' AND c.tier = 'D' AND c.bucket >= em AND c.bucket < ed
           AND c.recorded >= rm AND c.recorded < rd
           AND p_e IS NOT NULL AND p_r IS NOT NULL
        UNION ALL
        SELECT c.amount FROM ledger_balance_cells c
         WHERE c.account = p_account AND c.currency = p_currency AND c.ledger = p_ledger
           AND c.grain = 'd' AND c.tier = 'r' AND c.bucket >= em AND c.bucket < ed
           AND c.recorded >= rd AND c.recorded <= r
           AND p_e IS NOT NULL AND p_r IS NOT NULL
        -- hour cells of E's day before E's hour
        UNION ALL
        SELECT c.amount FROM ledger_balance_cells c
         WHERE c.account = p_account AND c.currency = p_currency AND c.ledger = p_ledger
           AND c.grain = 'h' AND c.tier = 'r' AND c.bucket >= ed AND c.bucket < eh
           AND c.recorded <= r
           AND p_e IS NOT NULL
        -- minute cells of E's hour before E's minute
        UNION ALL
        SELECT c.amount FROM ledger_balance_cells c
         WHERE c.account = p_account AND c.currency = p_currency AND c.ledger = p_ledger
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
                         WHERE c.account = p_account AND c.currency = p_currency
                           AND c.ledger = p_ledger AND c.grain = 'i' AND c.tier = 'r'
                           AND c.bucket = ei AND c.recorded <= r)
                OR EXISTS (SELECT 1 FROM ledger_cells_pending))
    ) x;
    RETURN total;
END;
$$;

-- Same signature and meaning as before: one key's exact balance, now the built part plus the
-- key's queued postings before E's minute. (The service sums the queue once per query for all
-- keys instead: `services/ledger/src/balances.rs`.)
CREATE OR REPLACE FUNCTION ledger_balance(p_ledger text, p_account text, p_currency text,
                                          p_e timestamptz, p_em timestamptz, p_ed timestamptz,
                                          p_eh timestamptz, p_r timestamptz, p_rm timestamptz,
                                          p_rd timestamptz)
RETURNS numeric
LANGUAGE sql STABLE
SET jit = off
AS $$
    SELECT ledger_balance_built(p_ledger, p_account, p_currency, p_e, p_em, p_ed, p_eh,
                                p_r, p_rm, p_rd)
         + coalesce((SELECT sum(p.amount)
                       FROM ledger_cells_pending q
                      CROSS JOIN LATERAL unnest(q.account, q.currency, q.ledger, q.effective,
                                                q.recorded, q.amount)
                                 AS p (account, currency, ledger, eff, rec, amount)
                      WHERE p.ledger = p_ledger AND p.account = p_account
                        AND p.currency = p_currency
                        AND p.eff < coalesce(date_trunc('minute', p_e AT TIME ZONE 'UTC')
                                             AT TIME ZONE 'UTC', 'infinity')
                        AND p.rec <= coalesce(p_r, 'infinity')), 0)
$$;

-- 20261122000900's `ledger_cells_add` with its cells inserted in the order of the index they go
-- to: consecutive upserts land on the same leaf pages instead of all over an index larger than
-- shared_buffers (one builder statement of 3 recordings, 35k cells: ≈400 ms instead of ≈435 ms;
-- a plain insert of the same rows sorted 147 ms, unsorted 225 ms).
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
        SELECT * FROM cells WHERE cells.grain = 'm' ORDER BY 1, 2, 3, 5, 7, 6
        ON CONFLICT (account, currency, ledger, tier, recorded, bucket) WHERE grain = 'm'
        DO UPDATE SET amount = o.amount + EXCLUDED.amount
    ), other_cells AS (
        INSERT INTO ledger_balance_cells AS o
        SELECT * FROM cells WHERE cells.grain <> 'm' ORDER BY 1, 2, 3, 4, 5, 6, 7
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
