//! Errors in Stripe's JSON shape: `{"error": {"code", "doc_url", "message", "param", "type"}}`.

use serde_json::{Map, Value};

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// `error.type`: `invalid_request_error`, `api_error`, `idempotency_error`, …
    pub kind: &'static str,
    /// `error.code`, e.g. `resource_missing`, `rate_limit`.
    pub code: Option<&'static str>,
    /// `error.message`.
    pub message: String,
    /// `error.param`.
    pub param: Option<String>,
    /// `Stripe-Should-Retry` header value, if the answer carries one.
    pub should_retry: Option<bool>,
}

impl ApiError {
    /// 400 `invalid_request_error` without code.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError {
            status: 400,
            kind: "invalid_request_error",
            code: None,
            message: message.into(),
            param: None,
            should_retry: Some(false),
        }
    }

    /// 400 `parameter_unknown`.
    pub fn unknown_param(param: &str) -> ApiError {
        ApiError::invalid(format!("Received unknown parameter: {param}"))
            .with_code("parameter_unknown")
            .with_param(param)
    }

    /// 400 `parameter_missing`.
    pub fn missing_param(param: &str) -> ApiError {
        ApiError::invalid(format!("Missing required param: {param}."))
            .with_code("parameter_missing")
            .with_param(param)
    }

    /// 400 `parameter_invalid_integer`.
    pub fn invalid_integer(param: &str, value: &str) -> ApiError {
        ApiError::invalid(format!("Invalid integer: {value}"))
            .with_code("parameter_invalid_integer")
            .with_param(param)
    }

    /// 404 `resource_missing`: `No such {what}: '{id}'`.
    pub fn no_such(what: &str, id: &str, param: Option<&str>) -> ApiError {
        let mut e =
            ApiError::invalid(format!("No such {what}: '{id}'")).with_code("resource_missing");
        e.status = 404;
        e.param = param.map(str::to_owned);
        e
    }

    /// 404 for a path the API does not have.
    pub fn unrecognized_url(method: &str, path: &str) -> ApiError {
        let mut e = ApiError::invalid(format!(
            "Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/."
        ));
        e.status = 404;
        e
    }

    /// 500 `api_error` (retryable).
    pub fn internal() -> ApiError {
        ApiError {
            status: 500,
            kind: "api_error",
            code: None,
            message: "An unknown error occurred".to_owned(),
            param: None,
            should_retry: Some(true),
        }
    }

    /// 429 `rate_limit`.
    pub fn rate_limited() -> ApiError {
        ApiError {
            status: 429,
            kind: "invalid_request_error",
            code: Some("rate_limit"),
            message: "Request rate limit exceeded. You can learn more about rate limits here https://stripe.com/docs/rate-limits.".to_owned(),
            param: None,
            should_retry: Some(true),
        }
    }

    /// 429 `lock_timeout` (an object is locked; safe to retry).
    pub fn lock_timeout() -> ApiError {
        ApiError {
            status: 429,
            kind: "invalid_request_error",
            code: Some("lock_timeout"),
            message: "This object cannot be accessed right now because another API request or Stripe process is currently accessing it. If you see this error intermittently, retry the request. If you see this error frequently and are making multiple concurrent requests to a single object, make your requests serially or at a lower rate.".to_owned(),
            param: None,
            should_retry: Some(true),
        }
    }

    /// Sets `code`.
    pub fn with_code(mut self, code: &'static str) -> ApiError {
        self.code = Some(code);
        self
    }

    /// Sets `param`.
    pub fn with_param(mut self, param: &str) -> ApiError {
        self.param = Some(param.to_owned());
        self
    }

    /// Sets the status.
    pub fn with_status(mut self, status: u16) -> ApiError {
        self.status = status;
        self
    }

    /// The JSON body.
    pub fn body(&self) -> String {
        let mut m = Map::new();
        if let Some(code) = self.code {
            m.insert("code".into(), Value::from(code));
            m.insert(
                "doc_url".into(),
                Value::from(format!(
                    "https://stripe.com/docs/error-codes/{}",
                    code.replace('_', "-")
                )),
            );
        }
        m.insert("message".into(), Value::from(self.message.clone()));
        if let Some(p) = &self.param {
            m.insert("param".into(), Value::from(p.clone()));
        }
        m.insert("type".into(), Value::from(self.kind));
        let mut outer = Map::new();
        outer.insert("error".into(), Value::Object(m));
        Value::Object(outer).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_matches_fixture() {
        let e = ApiError::unknown_param("foo");
        let got: Value = serde_json::from_str(&e.body()).expect("json");
        let want: Value = serde_json::json!({"error": {
            "code": "parameter_unknown",
            "doc_url": "https://stripe.com/docs/error-codes/parameter-unknown",
            "message": "Received unknown parameter: foo",
            "param": "foo",
            "type": "invalid_request_error"
        }});
        assert_eq!(got, want);
    }
}
