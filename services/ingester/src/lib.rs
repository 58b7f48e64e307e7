//! Ledgerline's ingester (being built: webhook receiver, Events API catch-up,
//! balance-transaction polling, payouts, backfill).
