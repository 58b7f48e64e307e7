-- The query API answers "unknown currency" from the journal itself.
CREATE INDEX journal_lines_currency ON journal_lines (currency);
