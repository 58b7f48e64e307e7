-- ledger_balance (20261122000900) without the index descents that cannot find anything.
--
-- Its generic plan descended all eight cell ranges on every call, also those that are empty
-- by construction: without R, the recording-day and single-recording tiers (their bounds are
-- +infinity); without E, every day, hour and minute range. On a journal far larger than
-- shared_buffers each descent costs a cold leaf page (a disk read on a machine that pages out
-- idle page cache), so an effective-time-only query paid 8 instead of 4, a recorded-time-only
-- one 8 instead of 3. Each branch now carries its condition on the parameters (p_e / p_r IS
-- NOT NULL), which the executor checks once before starting the scan (a one-time filter of
-- the generic plan), and E's partial minute is read from the journal only if the key has a
-- minute cell for E's minute recorded by R (the lines of busy keys only; the cell sits next to
-- the minute cells already read). Same signature, same results.
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
           -- only if the key has lines in E's minute (recorded by R): its minute cell says so
           AND EXISTS (SELECT 1 FROM ledger_balance_cells c
                        WHERE c.account = p_account AND c.currency = p_currency
                          AND c.ledger = p_ledger AND c.grain = 'i' AND c.tier = 'r'
                          AND c.bucket = ei AND c.recorded <= r)
    ) x;
    RETURN total;
END;
$$;
