//! API keys: a type that never shows the secret (Debug, Display, errors, logs).

use std::fmt;

use crate::error::StripeError;

/// Test (sandbox) or live data. Comes from the key; the two never mix in one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    Test,
    Live,
}

impl Mode {
    pub fn is_live(self) -> bool {
        self == Mode::Live
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Test => "test",
            Mode::Live => "live",
        }
    }
}

/// Secret (`sk_`) or restricted (`rk_`) key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Secret,
    Restricted,
}

/// A Stripe API key. `Debug` and `Display` print only `sk_test_****abcd` (Stripe's own
/// masking); the secret leaves this type only as the `Authorization` header value.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    secret: String,
    mode: Mode,
    kind: KeyKind,
}

impl ApiKey {
    /// Parses `sk_test_…`, `sk_live_…`, `rk_test_…` or `rk_live_…`. Publishable keys and
    /// webhook secrets are refused with a message that says which key is needed.
    pub fn parse(secret: impl Into<String>) -> Result<ApiKey, StripeError> {
        let secret = secret.into();
        let (kind, mode) = match secret.get(..8) {
            Some("sk_test_") => (KeyKind::Secret, Mode::Test),
            Some("sk_live_") => (KeyKind::Secret, Mode::Live),
            Some("rk_test_") => (KeyKind::Restricted, Mode::Test),
            Some("rk_live_") => (KeyKind::Restricted, Mode::Live),
            _ => {
                return Err(StripeError::InvalidKey {
                    masked: mask(&secret),
                });
            }
        };
        if secret.len() < 12
            || secret
                .chars()
                .any(|c| !c.is_ascii_alphanumeric() && c != '_')
        {
            return Err(StripeError::InvalidKey {
                masked: mask(&secret),
            });
        }
        Ok(ApiKey { secret, mode, kind })
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// `sk_test_****abcd`.
    pub fn masked(&self) -> String {
        mask(&self.secret)
    }

    pub(crate) fn bearer(&self) -> String {
        format!("Bearer {}", self.secret)
    }
}

/// Stripe's masking: the prefix up to the mode and the last four characters.
pub fn mask(secret: &str) -> String {
    let prefix_len = if secret.len() >= 8 && secret.is_char_boundary(8) {
        8
    } else {
        0
    };
    let prefix = secret.get(..prefix_len).unwrap_or("");
    let tail = if secret.len() >= prefix_len + 8 {
        secret.get(secret.len() - 4..).unwrap_or("")
    } else {
        ""
    };
    format!("{prefix}****{tail}")
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ApiKey").field(&self.masked()).finish()
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

/// Replaces anything that looks like a Stripe secret in `text` (a server message, a URL)
/// by its masked form, so upstream text can be logged safely.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = ["sk_test_", "sk_live_", "rk_test_", "rk_live_", "whsec_"]
        .iter()
        .filter_map(|p| rest.find(p))
        .min()
    {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        let end = tail
            .find(|c: char| !c.is_ascii_alphanumeric() && c != '_' && c != '*')
            .unwrap_or(tail.len());
        out.push_str(&mask(&tail[..end]));
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const SECRET: &str = "sk_live_51HsuperSecretValue9876wxyz";

    #[test]
    fn debug_display_and_errors_never_show_the_secret() {
        let key = ApiKey::parse(SECRET).unwrap();
        assert_eq!(key.mode(), Mode::Live);
        assert_eq!(key.kind(), KeyKind::Secret);
        for shown in [format!("{key:?}"), format!("{key}"), key.masked()] {
            assert!(!shown.contains("superSecret"), "{shown}");
            assert!(shown.contains("sk_live_****wxyz"), "{shown}");
        }
        let err = ApiKey::parse("pk_live_51HsuperSecretValue9876wxyz").unwrap_err();
        assert!(!err.to_string().contains("superSecret"), "{err}");
        assert!(!format!("{err:?}").contains("superSecret"));
    }

    #[test]
    fn mode_comes_from_the_key() {
        assert_eq!(
            ApiKey::parse("rk_test_abcdefgh1234").unwrap().mode(),
            Mode::Test
        );
        assert_eq!(
            ApiKey::parse("rk_test_abcdefgh1234").unwrap().kind(),
            KeyKind::Restricted
        );
        assert!(ApiKey::parse("whsec_abcdefgh1234").is_err());
    }

    #[test]
    fn redact_masks_keys_inside_text() {
        let s = redact(&format!(
            "bad key {SECRET}, secret whsec_abcdefghijkl1234 ok"
        ));
        assert!(
            !s.contains("superSecret") && !s.contains("abcdefghijkl"),
            "{s}"
        );
        assert!(s.contains("sk_live_****wxyz"), "{s}");
    }
}
