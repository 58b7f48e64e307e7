-- The Stripe mode whose facts this journal holds (services/ledger/src/rules.rs, StripeMode).
--
-- Test and live objects of one account share its id, so a ledger books one mode's facts only
-- (LEDGERLINE_STRIPE_MODE) and dead-letters the other's. That check is per process: restarted
-- with the other mode over the same database, a ledger would add that mode's facts to books
-- that hold the first mode's. So the first ledger to start over a database binds it to its
-- mode here, and a ledger of the other mode refuses to start over it (Error::StripeModeMismatch).
-- A database that held facts before this table existed is bound by the first ledger started
-- over it since: start that one with the mode its facts are in.
--
-- One row at most (the key is always 'stripe_mode'); never changed, never deleted.
CREATE TABLE ledger_stripe_mode (
    singleton text        PRIMARY KEY DEFAULT 'stripe_mode' CHECK (singleton = 'stripe_mode'),
    mode      text        NOT NULL CHECK (mode IN ('test', 'live')),
    bound_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TRIGGER ledger_stripe_mode_append_only
    BEFORE UPDATE OR DELETE ON ledger_stripe_mode
    FOR EACH ROW EXECUTE FUNCTION journal_is_append_only();
