//! Shared helpers for Ledgerline's end-to-end tests.
