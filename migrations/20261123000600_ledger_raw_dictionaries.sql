-- zstd dictionaries the ledger trained on its own first facts (services/ledger/src/raw.rs).
--
-- A raw fact is ~2 KB of JSON that shares most of its bytes with every other fact (field names,
-- id prefixes, shapes); a zstd frame of one fact cannot learn that on its own, a dictionary
-- trained on a few thousand facts can: on the bench's facts 976 bytes a fact become ~255, and
-- compressing takes ~1/3 of the time. The ledger trains one when it finds none (the consumer's
-- reader stage, on its first 4,000 facts), stores it here, and compresses with it only once it
-- is committed, so every frame's dictionary can be found.
--
-- `ledger_facts` rows keep `raw_encoding = 'zstd'`: a frame names its dictionary in its header
-- (`dict_id`, the id in the dictionary's own header; 0/absent = none). With the dictionary
-- saved to a file, `zstd -d -D dict.bin` reads a row. Rows are never changed or deleted: a fact
-- needs its dictionary forever. Several instances may each train one; new facts use the
-- newest (`installed_seq`), old ones keep theirs.
CREATE TABLE ledger_raw_dictionaries (
    dict_id       bigint      PRIMARY KEY CHECK (dict_id > 0 AND dict_id < 4294967296),
    dictionary    bytea       NOT NULL,
    installed_seq bigint      GENERATED ALWAYS AS IDENTITY,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TRIGGER ledger_raw_dictionaries_append_only
    BEFORE UPDATE OR DELETE ON ledger_raw_dictionaries
    FOR EACH ROW EXECUTE FUNCTION journal_is_append_only();
