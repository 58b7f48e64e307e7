//! The config file's schema, as written: every section and key `--config path` may hold
//! (`deny_unknown_fields`), read and parsed but not yet checked; `resolve` in `config.rs` applies
//! the environment and validates. Secrets appear here only as references (`…_env`, `…_file`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ConfigError;

/// The file, as written (`deny_unknown_fields`: a misspelt key is an error naming it).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<SocketAddr>,
    /// `test` or `live`: when set, every account's key must be of that mode.
    pub mode: Option<String>,
    #[serde(default)]
    pub kafka: KafkaSection,
    #[serde(default)]
    pub database: DatabaseSection,
    pub topic_prefix: Option<String>,
    pub partitions: Option<i32>,
    pub poll_interval_ms: Option<u64>,
    pub bt_recheck_interval_ms: Option<u64>,
    pub events: Option<bool>,
    pub balance_transactions: Option<bool>,
    pub payouts: Option<bool>,
    pub gap_fill: Option<bool>,
    pub backfill: Option<bool>,
    pub webhook_tolerance_secs: Option<i64>,
    /// How long a webhook waits for the log's acknowledgement before a 503 (default 10,000).
    pub webhook_ack_timeout_ms: Option<u64>,
    pub body_limit: Option<usize>,
    /// Most Stripe objects a catch-up holds in memory (default 10,000).
    pub catch_up_buffer: Option<usize>,
    /// Most event ids the gap fill remembers per scope (default 100,000).
    pub gap_fill_seen_max: Option<usize>,
    #[serde(default)]
    pub stripe: StripeSection,
    #[serde(default)]
    pub webhook_secret_encryption: SecretRef,
    #[serde(default)]
    pub filters: FilterSection,
    #[serde(default)]
    pub accounts: Vec<AccountSection>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSection {
    pub bootstrap_servers: Option<String>,
    pub client_id: Option<String>,
}

/// Where a secret is: an environment variable's name or a file's path (exactly one).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    pub key_env: Option<String>,
    pub key_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSection {
    /// Default `DATABASE_URL`.
    pub url_env: Option<String>,
    pub url_file: Option<PathBuf>,
}

/// Defaults for every account.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StripeSection {
    pub base_url: Option<String>,
    pub version: Option<String>,
    /// Client-side requests per second (default 80 live, 20 test; 0 = unlimited).
    pub rate: Option<u32>,
    /// Extra CA (PEM) to trust besides Mozilla's roots (a TLS-inspecting proxy's).
    pub ca_file: Option<PathBuf>,
    /// Also trust the system's CA store.
    pub native_roots: Option<bool>,
    pub max_retries: Option<u32>,
    /// First retry delay (doubling, with jitter); default 500.
    pub backoff_base_ms: Option<u64>,
    /// Longest retry delay; default 8000.
    pub backoff_max_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterSection {
    #[serde(default)]
    pub include_event_types: Vec<String>,
    #[serde(default)]
    pub exclude_event_types: Vec<String>,
    #[serde(default)]
    pub include_customers: Vec<String>,
    #[serde(default)]
    pub exclude_customers: Vec<String>,
    #[serde(default)]
    pub include_invoices: Vec<String>,
    #[serde(default)]
    pub exclude_invoices: Vec<String>,
    /// `{ key = "value" }` or `{ key = ["v1", "v2"] }`: keep objects whose `metadata[key]` is one.
    #[serde(default)]
    pub include_metadata: BTreeMap<String, OneOrMany>,
    #[serde(default)]
    pub exclude_metadata: BTreeMap<String, OneOrMany>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSection {
    /// Names the account in cursors (`{name}/{mode}/{acct}`), metrics and `/webhooks/{name}`.
    pub name: String,
    pub platform_account: String,
    pub api_key_env: Option<String>,
    pub api_key_file: Option<PathBuf>,
    /// An environment variable holding the endpoint secret(s), comma-separated (two during a
    /// rotation).
    pub webhook_secrets_env: Option<String>,
    #[serde(default)]
    pub webhook_secret_files: Vec<PathBuf>,
    #[serde(default)]
    pub connected_accounts: Vec<String>,
    #[serde(default)]
    pub discover_connected: bool,
    pub register_webhook_url: Option<String>,
    pub base_url: Option<String>,
    pub rate: Option<u32>,
}

/// Reads and parses `path`.
pub fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    parse(&text).map_err(|message| ConfigError::Parse {
        path: path.display().to_string(),
        message,
    })
}

/// Parses TOML text (the error names the key and line).
pub fn parse(text: &str) -> Result<FileConfig, String> {
    toml::from_str(text).map_err(|e| e.to_string().trim_end().replace('\n', " | "))
}
