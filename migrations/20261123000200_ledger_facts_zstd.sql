-- Raw facts compressed by the ledger itself (zstd level 1, in the consumer's reader stage, beside
-- the writer): ~2.2 KB of JSON becomes ~0.95 KB, so a row stays inline instead of going to
-- TOAST (out-of-line chunks, their index, and PostgreSQL's single-threaded lz4 on the writer's
-- path: most of the cost of the facts' COPY).
--
-- Each row names its encoding: `identity` (the bytes as Stripe sent them: every row written
-- before this migration, and what an instance not yet upgraded keeps writing) or `zstd` (one
-- standard zstd frame of those bytes, with its content size and checksum; `zstd -d` reads it).
-- The digest and the hash chains stay over the bytes as sent. Every reader decodes
-- (services/ledger/src/raw.rs); an instance built before this migration cannot read `zstd` rows
-- (nor start: the migrator refuses an unknown applied version), so upgrade all instances of a
-- group together.
ALTER TABLE ledger_facts
    ADD COLUMN raw_encoding text NOT NULL DEFAULT 'identity'
        CONSTRAINT ledger_facts_raw_encoding CHECK (raw_encoding IN ('identity', 'zstd'));

-- Never compress again what is compressed: EXTERNAL keeps an oversized value out of line but
-- uncompressed (the lz4 of …000500 no longer applies to new rows; old rows keep theirs).
ALTER TABLE ledger_facts ALTER COLUMN raw SET STORAGE EXTERNAL;
