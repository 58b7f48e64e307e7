//! Errors of the Stripe client. Every message says what to do; none contains a key.

/// Stripe's error body `{"error": {…}}`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct ApiErrorBody {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub param: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StripeError {
    #[error(
        "not a Stripe secret or restricted key ({masked}): configure an `sk_test_`/`sk_live_` or \
         `rk_test_`/`rk_live_` key from the Dashboard (Developers → API keys)"
    )]
    InvalidKey { masked: String },
    #[error(
        "Stripe rejected the API key {masked} (401, request {request_id}): {message}. Check that \
         the key is current (not rolled or expired) and belongs to this account and mode"
    )]
    Unauthorized {
        masked: String,
        request_id: String,
        message: String,
    },
    #[error(
        "the restricted key {masked} lacks the permission `{permission}` (403, request \
         {request_id}): grant `{permission}` to the key in the Dashboard (Developers → API keys → \
         edit the restricted key) or use a key that has it"
    )]
    MissingPermission {
        masked: String,
        permission: String,
        request_id: String,
    },
    #[error("Stripe refused the request (403, request {request_id}): {message}")]
    Forbidden { request_id: String, message: String },
    #[error("Stripe answered {status} to {method} {path} (request {request_id}): {message}")]
    Api {
        status: u16,
        method: String,
        path: String,
        request_id: String,
        body: Box<ApiErrorBody>,
        message: String,
    },
    #[error(
        "Stripe kept failing {method} {path} after {attempts} attempts (last: {last}); the \
         request is safe to retry later"
    )]
    RetriesExhausted {
        method: String,
        path: String,
        attempts: u32,
        last: String,
    },
    #[error(
        "the TLS certificate of {base_url} is not trusted ({problem}); not retried. If a proxy \
         or private endpoint presents it, add its CA to the client's trusted CAs (`tls.extra_ca_pem`, \
         the ingester's `ca_file`); otherwise check the base URL"
    )]
    UntrustedCertificate { base_url: String, problem: String },
    #[error("could not reach Stripe at {base_url}: {message}")]
    Transport { base_url: String, message: String },
    #[error("Stripe's answer to {path} (request {request_id}) is not the expected JSON: {message}")]
    Decode {
        path: String,
        request_id: String,
        message: String,
    },
    #[error("mode mismatch: {0}")]
    ModeMismatch(String),
}

impl StripeError {
    /// HTTP status of an API error, if Stripe answered one.
    pub fn status(&self) -> Option<u16> {
        match self {
            StripeError::Unauthorized { .. } => Some(401),
            StripeError::MissingPermission { .. } | StripeError::Forbidden { .. } => Some(403),
            StripeError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Stripe's error `code` (`resource_missing`, `parameter_missing`, …).
    pub fn code(&self) -> Option<&str> {
        match self {
            StripeError::Api { body, .. } => body.code.as_deref(),
            _ => None,
        }
    }

    /// The `Request-Id` of the failing answer, when there was one.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            StripeError::Unauthorized { request_id, .. }
            | StripeError::MissingPermission { request_id, .. }
            | StripeError::Forbidden { request_id, .. }
            | StripeError::Api { request_id, .. }
            | StripeError::Decode { request_id, .. } => Some(request_id),
            _ => None,
        }
    }
}

/// Finds `rak_…` in a 403 message ("Having the 'rak_charge_read' permission would allow …").
pub(crate) fn permission_in(message: &str) -> Option<String> {
    let start = message.find("rak_")?;
    let rest = &message[start..];
    let end = rest
        .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .unwrap_or(rest.len());
    Some(rest[..end].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_permission_in_stripes_403_message() {
        let m = "The provided key 'rk_live_***…gbeftZ' does not have the required permissions for \
                 this endpoint on account 'acct_1'. Having the 'rak_payment_method_read' \
                 permission would allow this request to continue.";
        assert_eq!(permission_in(m).as_deref(), Some("rak_payment_method_read"));
        assert_eq!(permission_in("nothing"), None);
    }
}
