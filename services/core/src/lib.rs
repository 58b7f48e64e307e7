//! Ledgerline's accounting core.
