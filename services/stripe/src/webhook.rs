//! Webhook signature verification as Stripe specifies it (`Stripe-Signature: t=…,v1=…`):
//! HMAC-SHA256 of `"{t}.{raw body}"` under the endpoint secret, compared in constant time
//! against every `v1` (two during a secret rotation), with a timestamp tolerance
//! (300 s by default). The clock is passed in, so tests control it.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Stripe's libraries' default tolerance.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

/// A `whsec_…` endpoint secret; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    pub fn new(secret: impl Into<String>) -> WebhookSecret {
        WebhookSecret(secret.into())
    }

    fn mac(&self, t: &str, body: &[u8]) -> Option<[u8; 32]> {
        let mut mac = HmacSha256::new_from_slice(self.0.as_bytes()).ok()?;
        mac.update(t.as_bytes());
        mac.update(b".");
        mac.update(body);
        Some(mac.finalize().into_bytes().into())
    }

    /// `hex(HMAC-SHA256(secret, "{t}.{body}"))`, as Stripe signs.
    pub fn sign(&self, t: i64, body: &[u8]) -> String {
        self.mac(&t.to_string(), body)
            .map(hex::encode)
            .unwrap_or_default()
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(whsec_****)")
    }
}

/// Why a delivery was refused. Each maps to a 400 without publishing anything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("missing Stripe-Signature header")]
    MissingHeader,
    #[error("malformed Stripe-Signature header")]
    MalformedHeader,
    #[error("no v1 signature matches any configured endpoint secret")]
    NoValidSignature,
    #[error("signature timestamp is {age_secs} s old, beyond the {tolerance_secs} s tolerance")]
    StaleTimestamp { age_secs: i64, tolerance_secs: i64 },
}

impl WebhookError {
    /// Short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            WebhookError::MissingHeader => "missing_header",
            WebhookError::MalformedHeader => "malformed_header",
            WebhookError::NoValidSignature => "bad_signature",
            WebhookError::StaleTimestamp { .. } => "stale_timestamp",
        }
    }
}

/// Verifies deliveries against one endpoint's secrets.
#[derive(Debug, Clone)]
pub struct WebhookVerifier {
    secrets: Vec<WebhookSecret>,
    tolerance_secs: i64,
}

impl WebhookVerifier {
    /// `tolerance_secs = 0` disables the timestamp check (as Stripe's libraries).
    pub fn new(secrets: Vec<WebhookSecret>, tolerance_secs: i64) -> WebhookVerifier {
        WebhookVerifier {
            secrets,
            tolerance_secs,
        }
    }

    pub fn add_secret(&mut self, secret: WebhookSecret) {
        if !self.secrets.contains(&secret) {
            self.secrets.push(secret);
        }
    }

    pub fn has_secrets(&self) -> bool {
        !self.secrets.is_empty()
    }

    /// Checks `header` against the raw `body` at `now_unix`; returns the signed timestamp.
    pub fn verify(
        &self,
        header: Option<&str>,
        body: &[u8],
        now_unix: i64,
    ) -> Result<i64, WebhookError> {
        let header = header.ok_or(WebhookError::MissingHeader)?;
        if header.trim().is_empty() {
            return Err(WebhookError::MissingHeader);
        }
        let mut t_raw: Option<&str> = None;
        let mut v1: Vec<[u8; 32]> = Vec::new();
        for part in header.split(',') {
            let mut kv = part.trim().splitn(2, '=');
            let (Some(k), Some(v)) = (kv.next(), kv.next()) else {
                return Err(WebhookError::MalformedHeader);
            };
            match k {
                "t" => t_raw = Some(v),
                "v1" => {
                    let mut sig = [0u8; 32];
                    if hex::decode_to_slice(v, &mut sig).is_ok() {
                        v1.push(sig);
                    }
                }
                _ => {} // v0 and unknown schemes are ignored (no downgrade)
            }
        }
        let t_raw = t_raw.ok_or(WebhookError::MalformedHeader)?;
        let t: i64 = t_raw.parse().map_err(|_| WebhookError::MalformedHeader)?;
        if v1.is_empty() {
            return Err(WebhookError::NoValidSignature);
        }
        let mut ok = subtle::Choice::from(0);
        for secret in &self.secrets {
            let Some(expected) = secret.mac(t_raw, body) else {
                continue;
            };
            for sig in &v1 {
                ok |= expected.ct_eq(sig);
            }
        }
        if !bool::from(ok) {
            return Err(WebhookError::NoValidSignature);
        }
        if self.tolerance_secs > 0 {
            let age = now_unix.saturating_sub(t);
            if age > self.tolerance_secs {
                return Err(WebhookError::StaleTimestamp {
                    age_secs: age,
                    tolerance_secs: self.tolerance_secs,
                });
            }
        }
        Ok(t)
    }
}

/// A `Stripe-Signature` header value with one `v1` per secret (for tests and benches).
pub fn signature_header(secrets: &[WebhookSecret], t: i64, body: &[u8]) -> String {
    let mut h = format!("t={t}");
    for s in secrets {
        h.push_str(",v1=");
        h.push_str(&s.sign(t, body));
    }
    h
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const BODY: &[u8] = br#"{"id":"evt_1","object":"event"}"#;
    const NOW: i64 = 1_800_000_000;

    fn verifier() -> WebhookVerifier {
        WebhookVerifier::new(
            vec![WebhookSecret::new("whsec_current")],
            DEFAULT_TOLERANCE_SECS,
        )
    }

    #[test]
    fn accepts_a_valid_signature_and_a_rotated_pair() {
        let h = signature_header(&[WebhookSecret::new("whsec_current")], NOW, BODY);
        assert_eq!(verifier().verify(Some(&h), BODY, NOW + 10), Ok(NOW));
        // Rotation: old secret first, new one second; either order works.
        let h = signature_header(
            &[
                WebhookSecret::new("whsec_old"),
                WebhookSecret::new("whsec_current"),
            ],
            NOW,
            BODY,
        );
        assert_eq!(verifier().verify(Some(&h), BODY, NOW), Ok(NOW));
        let h = format!("{h},v0=deadbeef");
        assert_eq!(verifier().verify(Some(&h), BODY, NOW), Ok(NOW));
    }

    #[test]
    fn rejects_every_bad_case() {
        let v = verifier();
        let good = signature_header(&[WebhookSecret::new("whsec_current")], NOW, BODY);
        assert_eq!(v.verify(None, BODY, NOW), Err(WebhookError::MissingHeader));
        assert_eq!(
            v.verify(Some(""), BODY, NOW),
            Err(WebhookError::MissingHeader)
        );
        assert_eq!(
            v.verify(Some("garbage"), BODY, NOW),
            Err(WebhookError::MalformedHeader)
        );
        assert_eq!(
            v.verify(Some("t=abc,v1=00"), BODY, NOW),
            Err(WebhookError::MalformedHeader)
        );
        assert_eq!(
            v.verify(Some("v1=00"), BODY, NOW),
            Err(WebhookError::MalformedHeader)
        );
        let only_v0 = format!(
            "t={NOW},v0={}",
            WebhookSecret::new("whsec_current").sign(NOW, BODY)
        );
        assert_eq!(
            v.verify(Some(&only_v0), BODY, NOW),
            Err(WebhookError::NoValidSignature)
        );
        let wrong = signature_header(&[WebhookSecret::new("whsec_other")], NOW, BODY);
        assert_eq!(
            v.verify(Some(&wrong), BODY, NOW),
            Err(WebhookError::NoValidSignature)
        );
        assert_eq!(
            v.verify(Some(&good), br#"{"id":"evt_1","object":"event" }"#, NOW),
            Err(WebhookError::NoValidSignature)
        );
        assert!(matches!(
            v.verify(Some(&good), BODY, NOW + 301),
            Err(WebhookError::StaleTimestamp { age_secs: 301, .. })
        ));
        let lax = WebhookVerifier::new(vec![WebhookSecret::new("whsec_current")], 0);
        assert_eq!(lax.verify(Some(&good), BODY, NOW + 100_000), Ok(NOW));
        assert!(!format!("{v:?}").contains("current"));
    }
}
