-- The journal: append-only, balanced per currency, every entry traced to its source fact.
-- Later migrations add the ledger service's tables (facts, conflicts, outbox, chain).

CREATE TABLE journal_entries (
    -- Deterministic (UUIDv5 of ledger, source fact and rule): replaying the log gives the same ids.
    entry_id      uuid        PRIMARY KEY,
    -- The Stripe account whose books this entry belongs to (`acct_…`).
    ledger        text        NOT NULL CHECK (ledger <> ''),
    -- The posting rule that produced the entry (e.g. `balance_transaction.charge`).
    rule          text        NOT NULL CHECK (rule <> ''),
    -- What caused it: `event`, `balance_transaction` or `cash_application`, and its id.
    source_kind   text        NOT NULL CHECK (source_kind IN ('event', 'balance_transaction', 'cash_application')),
    source_id     text        NOT NULL CHECK (source_id <> ''),
    -- When it happened, from the fact itself; and when the ledger wrote it.
    effective_at  timestamptz NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    description   text        NOT NULL DEFAULT '',
    -- Corrections are reversing entries that point at what they reverse.
    reverses      uuid        REFERENCES journal_entries (entry_id)
);

CREATE INDEX journal_entries_source ON journal_entries (source_kind, source_id);
CREATE INDEX journal_entries_effective ON journal_entries (ledger, effective_at);

CREATE TABLE journal_lines (
    entry_id  uuid    NOT NULL REFERENCES journal_entries (entry_id),
    line_no   integer NOT NULL CHECK (line_no >= 0),
    account   text    NOT NULL CHECK (account <> ''),
    -- ISO 4217, lower case as Stripe writes it.
    currency  text    NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    -- Major units, exact. Positive is a debit, negative a credit. Never zero.
    amount    numeric NOT NULL CHECK (amount <> 0),
    PRIMARY KEY (entry_id, line_no)
);

CREATE INDEX journal_lines_account ON journal_lines (account, currency);

-- An entry's lines are written in one statement; after it, every touched entry must balance
-- per currency and have at least two lines. Statement-level, so bulk inserts pay one check.
CREATE FUNCTION journal_lines_must_balance() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    bad record;
BEGIN
    SELECT l.entry_id, l.currency, sum(l.amount) AS total
      INTO bad
      FROM journal_lines l
     WHERE l.entry_id IN (SELECT DISTINCT entry_id FROM new_lines)
     GROUP BY l.entry_id, l.currency
    HAVING sum(l.amount) <> 0
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'journal entry % does not balance in %: lines sum to %',
            bad.entry_id, bad.currency, bad.total
            USING ERRCODE = 'check_violation';
    END IF;
    SELECT l.entry_id, count(*) AS lines
      INTO bad
      FROM journal_lines l
     WHERE l.entry_id IN (SELECT DISTINCT entry_id FROM new_lines)
     GROUP BY l.entry_id
    HAVING count(*) < 2
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'journal entry % has a single line: an entry needs a debit and a credit',
            bad.entry_id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER journal_lines_balanced
    AFTER INSERT ON journal_lines
    REFERENCING NEW TABLE AS new_lines
    FOR EACH STATEMENT EXECUTE FUNCTION journal_lines_must_balance();

-- Append-only: corrections are new, reversing entries.
CREATE FUNCTION journal_is_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the journal is append-only: % on % refused (post a reversing entry instead)',
        TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE TRIGGER journal_entries_append_only
    BEFORE UPDATE OR DELETE ON journal_entries
    FOR EACH ROW EXECUTE FUNCTION journal_is_append_only();
CREATE TRIGGER journal_lines_append_only
    BEFORE UPDATE OR DELETE ON journal_lines
    FOR EACH ROW EXECUTE FUNCTION journal_is_append_only();
CREATE TRIGGER journal_entries_no_truncate
    BEFORE TRUNCATE ON journal_entries
    FOR EACH STATEMENT EXECUTE FUNCTION journal_is_append_only();
CREATE TRIGGER journal_lines_no_truncate
    BEFORE TRUNCATE ON journal_lines
    FOR EACH STATEMENT EXECUTE FUNCTION journal_is_append_only();

-- Consumed Kafka offsets, committed in the same transaction as the rows they produced.
CREATE TABLE consumer_offsets (
    consumer_group text        NOT NULL,
    topic          text        NOT NULL,
    partition      integer     NOT NULL CHECK (partition >= 0),
    -- The next offset to read (Kafka's convention: last processed + 1).
    next_offset    bigint      NOT NULL CHECK (next_offset >= 0),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, partition)
);
