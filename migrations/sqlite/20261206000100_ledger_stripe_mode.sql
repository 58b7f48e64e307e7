-- The Stripe mode whose facts this journal holds: bound by the first ledger started over the
-- file, a ledger of the other mode refuses to start over it. See migrations/ (PostgreSQL's
-- ledger_stripe_mode) for why.
CREATE TABLE ledger_stripe_mode (
    singleton TEXT PRIMARY KEY DEFAULT 'stripe_mode' CHECK (singleton = 'stripe_mode'),
    mode      TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    bound_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TRIGGER ledger_stripe_mode_append_only_u BEFORE UPDATE ON ledger_stripe_mode
BEGIN SELECT RAISE(ABORT, 'ledger_stripe_mode is never changed'); END;
CREATE TRIGGER ledger_stripe_mode_append_only_d BEFORE DELETE ON ledger_stripe_mode
BEGIN SELECT RAISE(ABORT, 'ledger_stripe_mode is never changed'); END;
