//! The permission manifest (`permissions.json`, shipped with the crate) and the start-up
//! probe: each permission the enabled features need is tried with a request that changes
//! nothing (a `limit=1` list, or a POST without its required parameters, which Stripe checks
//! after the key's permissions) and reported as granted or missing.

use serde::Deserialize;

use crate::client::Client;
use crate::error::StripeError;
use crate::key::KeyKind;

/// The manifest, as shipped.
pub const MANIFEST_JSON: &str = include_str!("../permissions.json");

/// A feature of Ledgerline that needs Stripe permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Feature {
    Events,
    BalanceTransactions,
    Payouts,
    Backfill,
    Connect,
    WebhookRegistration,
    WriteBack,
}

impl Feature {
    pub fn as_str(self) -> &'static str {
        match self {
            Feature::Events => "events",
            Feature::BalanceTransactions => "balance_transactions",
            Feature::Payouts => "payouts",
            Feature::Backfill => "backfill",
            Feature::Connect => "connect",
            Feature::WebhookRegistration => "webhook_registration",
            Feature::WriteBack => "write_back",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Probe {
    pub method: String,
    pub path: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PermissionSpec {
    pub name: String,
    pub features: Vec<String>,
    pub probe: Probe,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    pub permissions: Vec<PermissionSpec>,
}

impl Manifest {
    pub fn shipped() -> Result<Manifest, StripeError> {
        serde_json::from_str(MANIFEST_JSON).map_err(|e| StripeError::Decode {
            path: "permissions.json".to_owned(),
            request_id: "(none)".to_owned(),
            message: e.to_string(),
        })
    }

    /// The permissions the given features need, in manifest order.
    pub fn needed(&self, features: &[Feature]) -> Vec<&PermissionSpec> {
        self.permissions
            .iter()
            .filter(|p| {
                features
                    .iter()
                    .any(|f| p.features.iter().any(|n| n == f.as_str()))
            })
            .collect()
    }
}

/// One line of the probe's report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionStatus {
    pub name: String,
    pub granted: bool,
    pub features: Vec<String>,
}

/// The probe's result.
#[derive(Debug, Clone)]
pub struct PermissionReport {
    pub key: String,
    pub statuses: Vec<PermissionStatus>,
}

impl PermissionReport {
    pub fn missing(&self) -> Vec<&PermissionStatus> {
        self.statuses.iter().filter(|s| !s.granted).collect()
    }

    /// Fails with a message naming every missing permission and what needs it.
    pub fn require_all(&self) -> Result<(), StripeError> {
        let missing = self.missing();
        let Some(first) = missing.first() else {
            return Ok(());
        };
        let all: Vec<String> = missing
            .iter()
            .map(|s| format!("{} (for {})", s.name, s.features.join(", ")))
            .collect();
        Err(StripeError::MissingPermission {
            masked: self.key.clone(),
            permission: if missing.len() == 1 {
                first.name.clone()
            } else {
                all.join("; ")
            },
            request_id: "(start-up probe)".to_owned(),
        })
    }
}

/// Probes each permission `features` need. A 401 aborts with its own error.
pub async fn probe(
    client: &Client,
    features: &[Feature],
    account: Option<&str>,
) -> Result<PermissionReport, StripeError> {
    let manifest = Manifest::shipped()?;
    let mut statuses = Vec::new();
    for spec in manifest.needed(features) {
        let granted = if client.config().key.kind() == KeyKind::Secret
            && spec.probe.method == "POST"
        {
            // A secret key may do everything; do not send write probes with it.
            true
        } else {
            let result = if spec.probe.method == "POST" {
                client
                    .post_form(&spec.probe.path, &[], account, None)
                    .await
                    .map(|_| ())
            } else {
                client
                    .get(&spec.probe.path, &[("limit", "1".to_owned())], account)
                    .await
                    .map(|_| ())
            };
            match result {
                Ok(()) => true,
                Err(e @ StripeError::Unauthorized { .. }) => return Err(e),
                Err(StripeError::MissingPermission { .. } | StripeError::Forbidden { .. }) => false,
                // 400/404: the request got past the permission check.
                Err(StripeError::Api { .. }) => true,
                Err(e) => return Err(e),
            }
        };
        let features: Vec<String> = spec
            .features
            .iter()
            .filter(|n| features.iter().any(|f| f.as_str() == n.as_str()))
            .cloned()
            .collect();
        tracing::info!(permission = %spec.name, granted, features = %features.join(","), "Stripe permission probe");
        statuses.push(PermissionStatus {
            name: spec.name.clone(),
            granted,
            features,
        });
    }
    Ok(PermissionReport {
        key: client.config().key.masked(),
        statuses,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn read_only_ingestion_needs_far_fewer_permissions_than_write_back() {
        let m = Manifest::shipped().unwrap();
        let ingest: Vec<_> = m
            .needed(&[
                Feature::Events,
                Feature::BalanceTransactions,
                Feature::Payouts,
            ])
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(
            ingest,
            [
                "rak_event_read",
                "rak_balance_transaction_read",
                "rak_payout_read"
            ]
        );
        assert!(ingest.iter().all(|p| p.ends_with("_read")));
        let write: Vec<_> = m
            .needed(&[Feature::WriteBack])
            .iter()
            .map(|p| p.name.clone())
            .collect();
        assert_eq!(write, ["rak_invoice_write", "rak_payment_record_write"]);
    }
}
