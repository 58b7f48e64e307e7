-- The embedded ledger's journal in SQLite: the same tables as the PostgreSQL journal
-- (migrations/), for one process. Ids are hyphenated UUID text, amounts exact decimal text
-- (summed in Rust, never by SQLite's floating point), `effective_at` unix seconds,
-- `recorded_at` unix microseconds. The journal, facts and chain links are append-only
-- (triggers); an entry's balance per currency is checked by the store before it is written.

CREATE TABLE ledger_facts (
    fact_seq        INTEGER PRIMARY KEY,
    topic           TEXT    NOT NULL,
    kafka_partition INTEGER NOT NULL,
    kafka_offset    INTEGER NOT NULL,
    ledger          TEXT    NOT NULL,
    fact_id         TEXT    NOT NULL,
    digest          BLOB    NOT NULL UNIQUE,
    raw             BLOB    NOT NULL,
    recorded_at     INTEGER NOT NULL
);

CREATE TABLE journal_entries (
    entry_id     TEXT    PRIMARY KEY,
    ledger       TEXT    NOT NULL,
    rule         TEXT    NOT NULL,
    source_kind  TEXT    NOT NULL,
    source_id    TEXT    NOT NULL,
    effective_at INTEGER NOT NULL,
    recorded_at  INTEGER NOT NULL,
    description  TEXT    NOT NULL,
    reverses     TEXT
);
CREATE INDEX journal_entries_ledger_effective ON journal_entries (ledger, effective_at);
CREATE INDEX journal_entries_source ON journal_entries (source_id);

CREATE TABLE journal_lines (
    entry_id TEXT    NOT NULL REFERENCES journal_entries (entry_id),
    line_no  INTEGER NOT NULL,
    account  TEXT    NOT NULL,
    currency TEXT    NOT NULL CHECK (currency = lower(currency) AND length(currency) = 3),
    amount   TEXT    NOT NULL,
    PRIMARY KEY (entry_id, line_no)
);
CREATE INDEX journal_lines_account ON journal_lines (account, currency);

CREATE TABLE ledger_entry_meta (
    entry_id     TEXT    PRIMARY KEY REFERENCES journal_entries (entry_id),
    recorded_seq INTEGER NOT NULL UNIQUE,
    fact_seq     INTEGER NOT NULL REFERENCES ledger_facts (fact_seq),
    chain        TEXT    NOT NULL,
    chain_seq    INTEGER NOT NULL,
    digest       BLOB    NOT NULL,
    chain_hash   BLOB,
    UNIQUE (chain, chain_seq)
);

CREATE TABLE ledger_chain_heads (
    chain  TEXT    PRIMARY KEY,
    length INTEGER NOT NULL,
    head   BLOB    NOT NULL
);

CREATE TABLE ledger_conflicts (
    entry_id        TEXT    NOT NULL,
    fact_seq        INTEGER NOT NULL REFERENCES ledger_facts (fact_seq),
    fact_id         TEXT    NOT NULL,
    incoming_digest BLOB    NOT NULL,
    incoming        TEXT    NOT NULL,
    recorded_at     INTEGER NOT NULL,
    PRIMARY KEY (entry_id, incoming_digest)
);

CREATE TABLE ledger_outbox (
    outbox_seq INTEGER PRIMARY KEY AUTOINCREMENT,
    record_key TEXT    NOT NULL,
    payload    BLOB    NOT NULL
);

CREATE TABLE consumer_offsets (
    consumer_group TEXT    NOT NULL,
    topic          TEXT    NOT NULL,
    partition      INTEGER NOT NULL,
    next_offset    INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    PRIMARY KEY (consumer_group, topic, partition)
);

CREATE TRIGGER journal_entries_append_only_u BEFORE UPDATE ON journal_entries
BEGIN SELECT RAISE(ABORT, 'journal_entries is append-only'); END;
CREATE TRIGGER journal_entries_append_only_d BEFORE DELETE ON journal_entries
BEGIN SELECT RAISE(ABORT, 'journal_entries is append-only'); END;
CREATE TRIGGER journal_lines_append_only_u BEFORE UPDATE ON journal_lines
BEGIN SELECT RAISE(ABORT, 'journal_lines is append-only'); END;
CREATE TRIGGER journal_lines_append_only_d BEFORE DELETE ON journal_lines
BEGIN SELECT RAISE(ABORT, 'journal_lines is append-only'); END;
CREATE TRIGGER ledger_facts_append_only_u BEFORE UPDATE ON ledger_facts
BEGIN SELECT RAISE(ABORT, 'ledger_facts is append-only'); END;
CREATE TRIGGER ledger_facts_append_only_d BEFORE DELETE ON ledger_facts
BEGIN SELECT RAISE(ABORT, 'ledger_facts is append-only'); END;
CREATE TRIGGER ledger_entry_meta_append_only_u BEFORE UPDATE ON ledger_entry_meta
BEGIN SELECT RAISE(ABORT, 'ledger_entry_meta is append-only'); END;
CREATE TRIGGER ledger_entry_meta_append_only_d BEFORE DELETE ON ledger_entry_meta
BEGIN SELECT RAISE(ABORT, 'ledger_entry_meta is append-only'); END;

-- The ingester's durable state (the same tables as in migrations/).
CREATE TABLE ingester_cursors (
    scope      TEXT    NOT NULL,
    stream     TEXT    NOT NULL,
    position   TEXT    NOT NULL,
    updated_at INTEGER NOT NULL DEFAULT (unixepoch()),
    PRIMARY KEY (scope, stream)
);

CREATE TABLE ingester_pending_balance_transactions (
    scope        TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    created      INTEGER NOT NULL,
    available_on INTEGER NOT NULL,
    PRIMARY KEY (scope, id)
);
CREATE INDEX ingester_pending_bt_created ON ingester_pending_balance_transactions (scope, created);

CREATE TABLE ingester_pending_payouts (
    scope     TEXT NOT NULL,
    payout_id TEXT NOT NULL,
    PRIMARY KEY (scope, payout_id)
);

CREATE TABLE ingester_webhook_endpoints (
    name        TEXT    NOT NULL,
    mode        TEXT    NOT NULL,
    endpoint_id TEXT    NOT NULL,
    url         TEXT    NOT NULL,
    secret      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL DEFAULT (unixepoch()),
    PRIMARY KEY (name, mode)
);
