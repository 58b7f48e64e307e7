-- Raw Stripe JSON (~2 KB a fact) crosses the TOAST threshold: with the default pglz, compressing
-- it was most of the cost of a batch's write. lz4 compresses JSON about as well, much faster.
ALTER TABLE ledger_facts ALTER COLUMN raw SET COMPRESSION lz4;
