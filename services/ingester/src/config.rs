//! The binary's configuration: a TOML file (`--config path`, see `ingester.example.toml`) with
//! environment overrides. Secrets (API keys, webhook secrets, the database URL, the key that
//! encrypts registered webhook secrets) are never in the file: it names the environment
//! variable or the file that holds each, and no error message ever contains one.
//!
//! Without a file (or with one that lists no account) the single-account environment of
//! earlier versions still works: `STRIPE_API_KEY`, `LEDGERLINE_STRIPE_ACCOUNT`,
//! `LEDGERLINE_WEBHOOK_SECRETS`, `LEDGERLINE_CONNECT`, `LEDGERLINE_REGISTER_WEBHOOK_URL`.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ledgerline_bus::{KafkaConfig, Topics};
use ledgerline_stripe::{ApiKey, ClientConfig, Mode, TlsConfig, WebhookSecret};

use crate::{AccountConfig, Filters, IngesterConfig};

mod file;
#[cfg(test)]
mod tests;

pub use file::{
    AccountSection, DatabaseSection, FileConfig, FilterSection, KafkaSection, OneOrMany, SecretRef,
    StripeSection, parse, read_file,
};

/// A configuration that cannot be used; `field` is the file's key path (`accounts[1].api_key_env`)
/// or the environment variable at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}: {message}")]
    Read { path: String, message: String },
    #[error("config file {path} is not valid: {message}")]
    Parse { path: String, message: String },
    #[error("config field `{field}`: {message}")]
    Field { field: String, message: String },
}

fn field(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Field {
        field: field.into(),
        message: message.into(),
    }
}

/// Environment lookup (injectable for tests).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// A secret's value; the error names `what` and where it was looked for, never a value.
fn secret(
    what: &str,
    env_name: Option<&str>,
    file: Option<&Path>,
    env: Env<'_>,
) -> Result<Option<String>, ConfigError> {
    match (env_name, file) {
        (Some(_), Some(_)) => Err(field(
            what,
            "give either the environment variable (`…_env`) or the file (`…_file`), not both",
        )),
        (Some(var), None) => match env(var) {
            Some(v) if !v.trim().is_empty() => Ok(Some(v.trim().to_owned())),
            _ => Err(field(
                what,
                format!("the environment variable {var} is not set (or empty)"),
            )),
        },
        (None, Some(path)) => match std::fs::read_to_string(path) {
            Ok(v) if !v.trim().is_empty() => Ok(Some(v.trim().to_owned())),
            Ok(_) => Err(field(what, format!("the file {} is empty", path.display()))),
            Err(e) => Err(field(
                what,
                format!("cannot read the file {}: {e}", path.display()),
            )),
        },
        (None, None) => Ok(None),
    }
}

fn env_parse<T: std::str::FromStr>(env: Env<'_>, var: &str) -> Result<Option<T>, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match env(var) {
        None => Ok(None),
        Some(v) if v.is_empty() => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|e| field(var, format!("cannot parse {v:?}: {e}"))),
    }
}

fn env_bool(env: Env<'_>, var: &str) -> Result<Option<bool>, ConfigError> {
    match env(var).as_deref() {
        None | Some("") => Ok(None),
        Some("1" | "true" | "yes") => Ok(Some(true)),
        Some("0" | "false" | "no") => Ok(Some(false)),
        Some(v) => Err(field(var, format!("{v:?} is not a boolean (true/false)"))),
    }
}

fn env_list(env: Env<'_>, var: &str) -> Option<Vec<String>> {
    env(var).map(|v| {
        v.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    })
}

fn pairs(map: &BTreeMap<String, OneOrMany>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (k, v) in map {
        match v {
            OneOrMany::One(s) => out.push((k.clone(), s.clone())),
            OneOrMany::Many(vs) => out.extend(vs.iter().map(|s| (k.clone(), s.clone()))),
        }
    }
    out
}

/// The file (possibly empty) with the environment's overrides applied, validated. Overrides:
/// `KAFKA_BOOTSTRAP_SERVERS`, `LEDGERLINE_LISTEN`, `LEDGERLINE_TOPIC_PREFIX`,
/// `LEDGERLINE_PARTITIONS`, `LEDGERLINE_POLL_MS`, `LEDGERLINE_BACKFILL`, `LEDGERLINE_MODE`,
/// `LEDGERLINE_STRIPE_BASE_URL`, `LEDGERLINE_STRIPE_VERSION`, `LEDGERLINE_STRIPE_RATE`,
/// `LEDGERLINE_STRIPE_CA_FILE`, `LEDGERLINE_INCLUDE_TYPES`, `LEDGERLINE_EXCLUDE_TYPES`
/// (comma-separated).
pub fn resolve(mut file: FileConfig, env: Env<'_>) -> Result<IngesterConfig, ConfigError> {
    // Single-account environment (no account in the file).
    if file.accounts.is_empty() {
        file.accounts.push(env_account(env)?);
    }
    let kafka = env("KAFKA_BOOTSTRAP_SERVERS")
        .or(file.kafka.bootstrap_servers.clone())
        .ok_or_else(|| {
            field(
                "kafka.bootstrap_servers",
                "not set (nor KAFKA_BOOTSTRAP_SERVERS)",
            )
        })?;
    let client_id = file
        .kafka
        .client_id
        .clone()
        .unwrap_or_else(|| "ledgerline-ingester".into());
    let database_url = secret(
        "database.url_env",
        Some(file.database.url_env.as_deref().unwrap_or("DATABASE_URL"))
            .filter(|_| file.database.url_file.is_none()),
        file.database.url_file.as_deref(),
        env,
    )?
    .ok_or_else(|| field("database.url_env", "no database URL"))?;

    let defaults = account_defaults(&file, env)?;
    let mut accounts = Vec::new();
    let mut first_mode: Option<(Mode, String)> = None;
    let mut names = HashSet::new();
    for (i, a) in file.accounts.iter().enumerate() {
        accounts.push(account(i, a, &defaults, &mut names, &mut first_mode, env)?);
    }

    let webhook_secret_key = webhook_secret_key(&file.webhook_secret_encryption, env)?;
    if webhook_secret_key.is_none()
        && let Some(i) = accounts
            .iter()
            .position(|a| a.register_webhook_url.is_some())
    {
        return Err(field(
            format!("accounts[{i}].register_webhook_url"),
            "the registered endpoint's secret is kept encrypted: set \
             [webhook_secret_encryption] key_env or key_file (32 random bytes as 64 hex \
             characters, e.g. `openssl rand -hex 32`)",
        ));
    }
    let mut cfg = IngesterConfig::new(KafkaConfig::new(kafka, client_id), database_url, accounts);
    cfg.webhook_secret_key = webhook_secret_key;
    cfg.listen = match env_parse(env, "LEDGERLINE_LISTEN")? {
        Some(a) => a,
        None => file
            .listen
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 8080))),
    };
    let prefix = env("LEDGERLINE_TOPIC_PREFIX")
        .or(file.topic_prefix.clone())
        .unwrap_or_default();
    cfg.topics = Topics::with_prefix(prefix);
    cfg.partitions = env_parse(env, "LEDGERLINE_PARTITIONS")?
        .or(file.partitions)
        .unwrap_or(6);
    if cfg.partitions < 1 {
        return Err(field("partitions", "must be at least 1"));
    }
    let poll_ms = env_parse(env, "LEDGERLINE_POLL_MS")?
        .or(file.poll_interval_ms)
        .unwrap_or(5_000);
    if poll_ms == 0 {
        return Err(field("poll_interval_ms", "must be above 0"));
    }
    cfg.poll_interval = Duration::from_millis(poll_ms);
    if let Some(ms) = file.webhook_ack_timeout_ms {
        if ms == 0 {
            return Err(field("webhook_ack_timeout_ms", "must be above 0"));
        }
        cfg.webhook_ack_timeout = Duration::from_millis(ms);
    }
    if let Some(ms) = file.bt_recheck_interval_ms {
        cfg.bt_recheck_interval = Duration::from_millis(ms);
    }
    cfg.events = file.events.unwrap_or(true);
    cfg.balance_transactions = file.balance_transactions.unwrap_or(true);
    cfg.payouts = file.payouts.unwrap_or(true);
    cfg.gap_fill = file.gap_fill.unwrap_or(true);
    cfg.backfill = env_bool(env, "LEDGERLINE_BACKFILL")?
        .or(file.backfill)
        .unwrap_or(false);
    if let Some(t) = file.webhook_tolerance_secs {
        cfg.webhook_tolerance_secs = t;
    }
    if let Some(b) = file.body_limit {
        cfg.body_limit = b;
    }
    if let Some(b) = file.catch_up_buffer {
        if b < 100 {
            return Err(field("catch_up_buffer", "must be at least 100 (one page)"));
        }
        cfg.catch_up_buffer = b;
    }
    if let Some(b) = file.gap_fill_seen_max {
        if b == 0 {
            return Err(field("gap_fill_seen_max", "must be above 0"));
        }
        cfg.gap_fill_seen_max = b;
    }
    cfg.filters = filters(&file.filters, env)?;
    Ok(cfg)
}

/// The account of the single-account environment (`LEDGERLINE_STRIPE_ACCOUNT`, …), for a
/// file that lists none.
fn env_account(env: Env<'_>) -> Result<AccountSection, ConfigError> {
    match env("LEDGERLINE_STRIPE_ACCOUNT") {
        Some(acct) if !acct.is_empty() => Ok(AccountSection {
            name: "default".into(),
            platform_account: acct,
            api_key_env: Some("STRIPE_API_KEY".into()),
            api_key_file: None,
            webhook_secrets_env: env("LEDGERLINE_WEBHOOK_SECRETS")
                .map(|_| "LEDGERLINE_WEBHOOK_SECRETS".to_owned()),
            webhook_secret_files: Vec::new(),
            connected_accounts: Vec::new(),
            discover_connected: env_bool(env, "LEDGERLINE_CONNECT")?.unwrap_or(false),
            register_webhook_url: env("LEDGERLINE_REGISTER_WEBHOOK_URL"),
            base_url: None,
            rate: None,
        }),
        _ => Err(field(
            "accounts",
            "no Stripe account configured: add an [[accounts]] table to the config file \
             (see ingester.example.toml) or set LEDGERLINE_STRIPE_ACCOUNT and STRIPE_API_KEY",
        )),
    }
}

/// What every account inherits: `[stripe]` with its environment overrides (the CA file read and
/// checked), and the deployment's `mode`.
struct AccountDefaults<'f> {
    stripe: &'f StripeSection,
    base_url: Option<String>,
    version: Option<String>,
    rate: Option<u32>,
    tls: TlsConfig,
    want_mode: Option<Mode>,
}

fn account_defaults<'f>(
    file: &'f FileConfig,
    env: Env<'_>,
) -> Result<AccountDefaults<'f>, ConfigError> {
    let base_url = env("LEDGERLINE_STRIPE_BASE_URL").or(file.stripe.base_url.clone());
    let version = env("LEDGERLINE_STRIPE_VERSION").or(file.stripe.version.clone());
    let rate = env_parse::<u32>(env, "LEDGERLINE_STRIPE_RATE")?.or(file.stripe.rate);
    let ca_file = env("LEDGERLINE_STRIPE_CA_FILE")
        .map(PathBuf::from)
        .or(file.stripe.ca_file.clone());
    let mut tls = TlsConfig {
        native_roots: file.stripe.native_roots.unwrap_or(false),
        ..TlsConfig::default()
    };
    if let Some(path) = &ca_file {
        let pem = std::fs::read(path).map_err(|e| {
            field(
                "stripe.ca_file",
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        tls.extra_ca_pem.push(pem);
        ledgerline_stripe::tls::rustls_config(&tls)
            .map_err(|e| field("stripe.ca_file", e.to_string()))?;
    }
    let want_mode = match env("LEDGERLINE_MODE").or(file.mode.clone()).as_deref() {
        None | Some("") => None,
        Some("test") => Some(Mode::Test),
        Some("live") => Some(Mode::Live),
        Some(other) => {
            return Err(field(
                "mode",
                format!("{other:?}: use \"test\" or \"live\""),
            ));
        }
    };
    Ok(AccountDefaults {
        stripe: &file.stripe,
        base_url,
        version,
        rate,
        tls,
        want_mode,
    })
}

/// `accounts[i]`, checked in the file's order: its name (unique across `names`), its platform
/// account, its key (one mode across the deployment: `first_mode` is the first account's), its
/// webhook secrets, its client and its connected accounts.
fn account(
    i: usize,
    a: &AccountSection,
    defaults: &AccountDefaults<'_>,
    names: &mut HashSet<String>,
    first_mode: &mut Option<(Mode, String)>,
    env: Env<'_>,
) -> Result<AccountConfig, ConfigError> {
    let at = |k: &str| format!("accounts[{i}].{k}");
    if a.name.is_empty()
        || !a
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(field(
            at("name"),
            format!("{:?}: use letters, digits, `-` and `_`", a.name),
        ));
    }
    if !names.insert(a.name.clone()) {
        return Err(field(
            at("name"),
            format!("{:?} is used by two accounts; names must be unique", a.name),
        ));
    }
    if !a.platform_account.starts_with("acct_") {
        return Err(field(
            at("platform_account"),
            format!("{:?} is not an account id (`acct_…`)", a.platform_account),
        ));
    }
    let key = api_key(i, a, defaults.want_mode, first_mode, env)?;
    let webhook_secrets = webhook_secrets(i, a, env)?;
    let url = a
        .base_url
        .clone()
        .or(defaults.base_url.clone())
        .unwrap_or_else(|| ledgerline_stripe::client::DEFAULT_BASE_URL.to_owned());
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(field(
            at("base_url"),
            format!("{url:?} is not an http(s) URL"),
        ));
    }
    let mut client = ClientConfig::new(url, key);
    if let Some(v) = &defaults.version {
        client.stripe_version = v.clone();
    }
    client.requests_per_sec = a.rate.or(defaults.rate);
    if let Some(r) = defaults.stripe.max_retries {
        client.max_retries = r;
    }
    if let Some(ms) = defaults.stripe.backoff_base_ms {
        client.backoff_base = Duration::from_millis(ms);
    }
    if let Some(ms) = defaults.stripe.backoff_max_ms {
        client.backoff_max = Duration::from_millis(ms);
    }
    client.tls = defaults.tls.clone();
    for (j, c) in a.connected_accounts.iter().enumerate() {
        if !c.starts_with("acct_") {
            return Err(field(
                format!("accounts[{i}].connected_accounts[{j}]"),
                format!("{c:?} is not an account id (`acct_…`)"),
            ));
        }
    }
    Ok(AccountConfig {
        name: a.name.clone(),
        client,
        platform_account: a.platform_account.clone(),
        connected_accounts: a.connected_accounts.clone(),
        discover_connected: a.discover_connected,
        webhook_secrets,
        register_webhook_url: a.register_webhook_url.clone(),
    })
}

/// `accounts[i]`'s API key: of `want_mode` when the deployment sets one, and of the first
/// account's mode (recorded in `first_mode` when `accounts[i]` is the first).
fn api_key(
    i: usize,
    a: &AccountSection,
    want_mode: Option<Mode>,
    first_mode: &mut Option<(Mode, String)>,
    env: Env<'_>,
) -> Result<ApiKey, ConfigError> {
    let at = |k: &str| format!("accounts[{i}].{k}");
    if a.api_key_env.is_none() && a.api_key_file.is_none() {
        return Err(field(
            at("api_key_env"),
            "missing: name the environment variable (or `api_key_file`) holding the key",
        ));
    }
    let raw = secret(
        &at(if a.api_key_file.is_some() && a.api_key_env.is_none() {
            "api_key_file"
        } else {
            "api_key_env"
        }),
        a.api_key_env.as_deref(),
        a.api_key_file.as_deref(),
        env,
    )?
    .unwrap_or_default();
    let key = ApiKey::parse(raw).map_err(|e| field(at("api_key_env"), e.to_string()))?;
    let mode = key.mode();
    if let Some(want) = want_mode
        && want != mode
    {
        return Err(field(
            at("api_key_env"),
            format!(
                "a {} key, but this deployment is `mode = \"{}\"`: test and live data never \
                 mix in one deployment",
                mode.as_str(),
                want.as_str()
            ),
        ));
    }
    match &*first_mode {
        Some((m, other)) if *m != mode => {
            return Err(field(
                at("api_key_env"),
                format!(
                    "a {} key, but account {other:?} has a {} key: test and live mode never \
                     mix in one deployment; run one ingester (with its own database and \
                     topics) per mode",
                    mode.as_str(),
                    m.as_str()
                ),
            ));
        }
        Some(_) => {}
        None => *first_mode = Some((mode, a.name.clone())),
    }
    Ok(key)
}

/// `accounts[i]`'s webhook signing secrets: those in `webhook_secrets_env` (each `whsec_…`),
/// then one per `webhook_secret_files` entry.
fn webhook_secrets(
    i: usize,
    a: &AccountSection,
    env: Env<'_>,
) -> Result<Vec<WebhookSecret>, ConfigError> {
    let at = |k: &str| format!("accounts[{i}].{k}");
    let mut webhook_secrets = Vec::new();
    if let Some(var) = &a.webhook_secrets_env {
        let v = secret(&at("webhook_secrets_env"), Some(var), None, env)?.unwrap_or_default();
        for s in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if !s.starts_with("whsec_") {
                return Err(field(
                    at("webhook_secrets_env"),
                    format!("{var} holds a value that is not a webhook signing secret (`whsec_…`)"),
                ));
            }
            webhook_secrets.push(WebhookSecret::new(s));
        }
    }
    for (j, path) in a.webhook_secret_files.iter().enumerate() {
        let s = secret(
            &format!("accounts[{i}].webhook_secret_files[{j}]"),
            None,
            Some(path),
            env,
        )?
        .unwrap_or_default();
        webhook_secrets.push(WebhookSecret::new(s));
    }
    Ok(webhook_secrets)
}

/// The key that encrypts registered webhook secrets (`[webhook_secret_encryption]`), if set.
fn webhook_secret_key(
    section: &SecretRef,
    env: Env<'_>,
) -> Result<Option<crate::secretbox::SecretKey>, ConfigError> {
    match secret(
        "webhook_secret_encryption.key_env",
        section.key_env.as_deref(),
        section.key_file.as_deref(),
        env,
    )? {
        Some(k) => crate::secretbox::SecretKey::from_hex(&k)
            .map(Some)
            .map_err(|e| {
                field(
                    if section.key_env.is_some() {
                        "webhook_secret_encryption.key_env"
                    } else {
                        "webhook_secret_encryption.key_file"
                    },
                    e.to_string(),
                )
            }),
        None => Ok(None),
    }
}

/// `[filters]` with the environment's type lists (`LEDGERLINE_INCLUDE_TYPES`,
/// `LEDGERLINE_EXCLUDE_TYPES`) in place of the file's; customer and invoice ids checked.
fn filters(f: &FilterSection, env: Env<'_>) -> Result<Filters, ConfigError> {
    let filters = Filters {
        include_event_types: env_list(env, "LEDGERLINE_INCLUDE_TYPES")
            .unwrap_or_else(|| f.include_event_types.clone()),
        exclude_event_types: env_list(env, "LEDGERLINE_EXCLUDE_TYPES")
            .unwrap_or_else(|| f.exclude_event_types.clone()),
        include_customers: f.include_customers.clone(),
        exclude_customers: f.exclude_customers.clone(),
        include_invoices: f.include_invoices.clone(),
        exclude_invoices: f.exclude_invoices.clone(),
        include_metadata: pairs(&f.include_metadata),
        exclude_metadata: pairs(&f.exclude_metadata),
    };
    for (list, name) in [
        (&filters.include_customers, "filters.include_customers"),
        (&filters.exclude_customers, "filters.exclude_customers"),
    ] {
        if let Some(bad) = list.iter().find(|c| !c.starts_with("cus_")) {
            return Err(field(
                name,
                format!("{bad:?} is not a customer id (`cus_…`)"),
            ));
        }
    }
    for (list, name) in [
        (&filters.include_invoices, "filters.include_invoices"),
        (&filters.exclude_invoices, "filters.exclude_invoices"),
    ] {
        if let Some(bad) = list.iter().find(|c| !c.starts_with("in_")) {
            return Err(field(
                name,
                format!("{bad:?} is not an invoice id (`in_…`)"),
            ));
        }
    }
    Ok(filters)
}
