-- The ledger service's tables beside the journal: the raw facts it consumed, per-entry
-- recording metadata with the hash chains, conflicts, the outbox to `ledger.entries.v1`.

-- Every distinct Stripe fact the ledger posted, raw JSON exactly as Stripe sent it, in
-- recording order. `fact_seq` is assigned by the single writer (an advisory lock serialises
-- writers), so it is gap-free in commit order: replaying it rebuilds the join state.
CREATE TABLE ledger_facts (
    fact_seq      bigint      PRIMARY KEY,
    -- Where it was read: topic, partition, offset.
    topic         text        NOT NULL,
    kafka_partition integer   NOT NULL,
    kafka_offset  bigint      NOT NULL,
    -- The Stripe account (ledger) and the fact's id (`evt_…`, `txn_…`, or an object id).
    ledger        text        NOT NULL,
    fact_id       text        NOT NULL,
    -- sha256(ledger, 0x00, raw): a second arrival of the same bytes is not stored again.
    digest        bytea       NOT NULL UNIQUE,
    raw           bytea       NOT NULL,
    recorded_at   timestamptz NOT NULL
);
CREATE INDEX ledger_facts_fact_id ON ledger_facts (fact_id);

-- One row per journal entry, written in the same statement batch as the entry: which fact's
-- processing recorded it, recording order, and its place in a hash chain.
--   chain `{topic}/{partition}`: entries posted directly by that partition's facts, in offset
--   order; chain_hash = sha256(previous chain_hash || entry_id || digest).
--   chain `derived`: entries a join derived once both sides were known (which side arrives
--   last depends on timing), folded into an order-independent XOR of sha256(entry_id || digest),
--   so a rebuild from the log yields the same heads.
CREATE TABLE ledger_entry_meta (
    entry_id      uuid        PRIMARY KEY REFERENCES journal_entries (entry_id),
    recorded_seq  bigint      NOT NULL UNIQUE,
    fact_seq      bigint      NOT NULL REFERENCES ledger_facts (fact_seq),
    chain         text        NOT NULL,
    chain_seq     bigint      NOT NULL,
    -- sha256 of the entry's canonical content (fields and lines).
    digest        bytea       NOT NULL,
    -- NULL for the `derived` set.
    chain_hash    bytea,
    UNIQUE (chain, chain_seq)
);
CREATE INDEX ledger_entry_meta_fact ON ledger_entry_meta (fact_seq);

CREATE TRIGGER ledger_entry_meta_append_only
    BEFORE UPDATE OR DELETE ON ledger_entry_meta
    FOR EACH ROW EXECUTE FUNCTION journal_is_append_only();
CREATE TRIGGER ledger_facts_append_only
    BEFORE UPDATE OR DELETE ON ledger_facts
    FOR EACH ROW EXECUTE FUNCTION journal_is_append_only();

-- Heads of the chains after the last committed batch (a cache the verifier checks).
CREATE TABLE ledger_chain_heads (
    chain         text        PRIMARY KEY,
    length        bigint      NOT NULL,
    head          bytea       NOT NULL
);

-- An incoming entry whose id already holds other content: recorded, never an overwrite.
CREATE TABLE ledger_conflicts (
    conflict_seq  bigserial   PRIMARY KEY,
    entry_id      uuid        NOT NULL REFERENCES journal_entries (entry_id),
    fact_seq      bigint      NOT NULL REFERENCES ledger_facts (fact_seq),
    fact_id       text        NOT NULL,
    incoming_digest bytea     NOT NULL,
    -- The refused entry, as JSON.
    incoming      jsonb       NOT NULL,
    recorded_at   timestamptz NOT NULL,
    UNIQUE (entry_id, incoming_digest)
);

-- Transactional outbox to `ledger.entries.v1`: written with the entries, deleted once the
-- broker acknowledged the record (at least once; consumers deduplicate by entry id).
CREATE TABLE ledger_outbox (
    outbox_seq    bigserial   PRIMARY KEY,
    record_key    text        NOT NULL,
    payload       bytea       NOT NULL
);

-- Queries by recording time and by source.
CREATE INDEX journal_entries_recorded ON journal_entries (recorded_at);
CREATE INDEX journal_entries_source_id ON journal_entries (source_id);
