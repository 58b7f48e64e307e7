-- One key's as-of balance from the balance cells (20261122000600), as a function so that its
-- plan is prepared once per session and reused (planning the union of six index ranges cost
-- as much as running it). Absent bounds are NULL: an absent effective time reads every month
-- cell, an absent recorded time the 'M' tier, which holds every recording.
--   p_e, p_em, p_ed, p_eh: E and the starts of its UTC month, day and hour;
--   p_r, p_rm, p_rd: R and the starts of its UTC month and day.
CREATE FUNCTION ledger_balance(p_ledger text, p_account text, p_currency text,
                               p_e timestamptz, p_em timestamptz, p_ed timestamptz,
                               p_eh timestamptz, p_r timestamptz, p_rm timestamptz,
                               p_rd timestamptz)
RETURNS numeric
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    total numeric;
    em timestamptz := coalesce(p_em, 'infinity');
    ed timestamptz := coalesce(p_ed, 'infinity');
    eh timestamptz := coalesce(p_eh, 'infinity');
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
        -- the lines of the entries effective in [E's hour, E], each entry's lines by primary
        -- key only (OFFSET 0 keeps the planner from the account index: millions of rows for a
        -- busy account)
        UNION ALL
        SELECT l.amount FROM journal_entries j
         CROSS JOIN LATERAL (SELECT n.account, n.currency, n.amount FROM journal_lines n
                              WHERE n.entry_id = j.entry_id OFFSET 0) l
         WHERE j.ledger = p_ledger AND j.effective_at >= eh AND j.effective_at <= e
           AND j.recorded_at <= r AND l.account = p_account AND l.currency = p_currency
    ) x;
    RETURN total;
END;
$$;
