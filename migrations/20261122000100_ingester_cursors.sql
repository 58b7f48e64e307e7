-- Ingester state: cursors advanced only after Kafka acknowledged what they cover.
-- `scope` is `{name}/{mode}/{stripe account}`: every Stripe account and connected account
-- the ingester reads has cursors of its own.

CREATE TABLE ingester_cursors (
    scope      text        NOT NULL,
    -- `events`, `balance_transactions`, `gap_fill`, `backfill:{resource}`
    stream     text        NOT NULL,
    -- JSON position (last event id and created, created watermark, starting_after, done, count)
    position   jsonb       NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, stream)
);

-- Balance transactions published as `pending`: re-read until seen `available` (the
-- look-back of the balance-transaction poller starts at the oldest of them).
CREATE TABLE ingester_pending_balance_transactions (
    scope        text   NOT NULL,
    id           text   NOT NULL,
    created      bigint NOT NULL,
    available_on bigint NOT NULL,
    PRIMARY KEY (scope, id)
);
CREATE INDEX ingester_pending_bt_created ON ingester_pending_balance_transactions (scope, created);

-- Payouts whose reconciliation completed and whose composition is not yet published.
CREATE TABLE ingester_pending_payouts (
    scope     text NOT NULL,
    payout_id text NOT NULL,
    PRIMARY KEY (scope, payout_id)
);

-- Webhook endpoints the ingester registered itself, with the signing secret Stripe returns
-- only once.
CREATE TABLE ingester_webhook_endpoints (
    name        text        NOT NULL,
    mode        text        NOT NULL,
    endpoint_id text        NOT NULL,
    url         text        NOT NULL,
    secret      text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, mode)
);
