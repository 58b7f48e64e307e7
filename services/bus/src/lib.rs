//! Ledgerline's event log.
//!
//! One place names the topics and their keys ([`topics`]) and builds correctly configured
//! Kafka clients ([`kafka`]): an idempotent producer, consumers that never commit on their
//! own, and topic creation at start-up. Services publish and consume through the
//! [`log::LogPublisher`] / [`log::LogConsumer`] traits, which Kafka and the in-process
//! [`embedded::EmbeddedLog`] both implement. Services publish and consume through this crate so
//! the wire contract of ARCHITECTURE.md lives in code exactly once.
//!
//! Architecture invariant: this crate knows envelopes and topics, never accounting rules.

pub mod embedded;
pub mod kafka;
pub mod log;
pub mod topics;

pub use embedded::{EmbeddedConsumer, EmbeddedLog};
pub use log::{LogConsumer, LogPublisher, LogRecord, OutRecord};

pub use kafka::{
    BusError, KafkaConfig, TopicSpec, ensure_topics, retention_warnings, warn_about_retention,
};
pub use topics::Topics;
