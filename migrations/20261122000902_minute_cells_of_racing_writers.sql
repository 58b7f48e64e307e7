-- Minute cells of the recordings a writer committed while 20261122000900 ran.
--
-- 20261122000900 filled in the minute cells of the journal as its snapshot saw it and replaced
-- the cell trigger in the same transaction. A ledger instance still writing meanwhile (a
-- rolling upgrade of several instances; migrations run at start) ran the old trigger, and a
-- recording it committed after that snapshot got no minute cells (or, for statements that
-- already saw the new trigger, only some): as-of balances inside those hours would miss its
-- lines. This recomputes, from the journal, the minute cells of every recording since an hour
-- before 20261122000900 was applied (a writer transaction is far shorter; `recorded_at` is its
-- start), holding the writers' lock (store/postgres.rs WRITER_LOCK) so that no writer is
-- between the old and the new trigger any more.
-- 7810759523990400110 = 0x6c65_6467_6572_6c6e, `ledgerline` in ASCII
SELECT pg_advisory_xact_lock(7810759523990400110);

INSERT INTO ledger_balance_cells AS o (account, currency, ledger, grain, tier, bucket, recorded, amount)
SELECT l.account, l.currency, e.ledger, 'i', 'r',
       date_trunc('minute', e.effective_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', e.recorded_at,
       sum(l.amount)
  FROM journal_entries e
  JOIN journal_lines l ON l.entry_id = e.entry_id
 WHERE e.recorded_at >= coalesce((SELECT m.installed_on FROM _sqlx_migrations m
                                   WHERE m.version = 20261122000900), '-infinity')
                        - interval '1 hour'
 GROUP BY 1, 2, 3, 6, 7
    ON CONFLICT (account, currency, ledger, grain, tier, bucket, recorded) WHERE grain <> 'm'
    DO UPDATE SET amount = EXCLUDED.amount;
