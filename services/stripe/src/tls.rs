//! TLS for `https://api.stripe.com`: rustls with the `ring` crypto provider (a small C/asm
//! build, unlike aws-lc's cmake one), built here rather than through a process-wide default.
//! Trusted roots: Mozilla's (bundled, `webpki-roots`) unless turned off, the system's when
//! asked (`native_roots`), and any CA the deployment adds (`extra_ca_pem`, e.g. a TLS-inspecting
//! proxy's or a test CA).
//!
//! The workspace's `reqwest` has rustls without a built-in provider: an HTTP client built with
//! plain `reqwest::Client::new()` panics ("No rustls crypto provider"). Build one with
//! [`http_client_builder`], or call [`install_default_provider`] first.

use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// Which certificates the client trusts.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// Mozilla's root program, bundled in the binary (works in images without a CA store).
    pub webpki_roots: bool,
    /// The operating system's store (`/etc/ssl/certs`, `SSL_CERT_FILE`, `SSL_CERT_DIR`).
    pub native_roots: bool,
    /// Extra CAs, each a PEM bundle (one or more `CERTIFICATE` blocks).
    pub extra_ca_pem: Vec<Vec<u8>>,
}

impl Default for TlsConfig {
    fn default() -> TlsConfig {
        TlsConfig {
            webpki_roots: true,
            native_roots: false,
            extra_ca_pem: Vec::new(),
        }
    }
}

/// A CA that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    #[error(
        "extra CA #{index} is not a PEM certificate bundle ({message}): give a file with \
         `-----BEGIN CERTIFICATE-----` blocks"
    )]
    BadPem { index: usize, message: String },
    #[error("extra CA #{index} was refused as a trust anchor ({message})")]
    BadCa { index: usize, message: String },
    #[error("no trusted root certificates: enable `webpki_roots` or `native_roots`, or add a CA")]
    NoRoots,
    #[error("TLS setup failed: {0}")]
    Rustls(String),
}

/// The `ring` provider rustls uses here.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Installs `ring` as the process-wide rustls provider (no-op when one is installed), for code
/// that builds a plain `reqwest::Client`.
pub fn install_default_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The rustls client configuration for `tls`.
pub fn rustls_config(tls: &TlsConfig) -> Result<rustls::ClientConfig, TlsConfigError> {
    let mut roots = rustls::RootCertStore::empty();
    if tls.webpki_roots {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    if tls.native_roots {
        let native = rustls_native_certs::load_native_certs();
        for e in &native.errors {
            tracing::warn!(error = %e, "could not load part of the system's CA store");
        }
        let (added, ignored) = roots.add_parsable_certificates(native.certs);
        tracing::debug!(added, ignored, "system CA store loaded");
    }
    for (index, pem) in tls.extra_ca_pem.iter().enumerate() {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<_, _>>()
            .map_err(|e| TlsConfigError::BadPem {
                index,
                message: e.to_string(),
            })?;
        if certs.is_empty() {
            return Err(TlsConfigError::BadPem {
                index,
                message: "no CERTIFICATE block".to_owned(),
            });
        }
        for cert in certs {
            roots.add(cert).map_err(|e| TlsConfigError::BadCa {
                index,
                message: e.to_string(),
            })?;
        }
    }
    if roots.is_empty() {
        return Err(TlsConfigError::NoRoots);
    }
    Ok(rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsConfigError::Rustls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// A `reqwest` builder using [`rustls_config`].
pub fn http_client_builder(tls: &TlsConfig) -> Result<reqwest::ClientBuilder, TlsConfigError> {
    Ok(reqwest::Client::builder().tls_backend_preconfigured(rustls_config(tls)?))
}

/// When `err` (or what caused it) is a certificate the client does not trust, what is wrong with
/// it: such a failure is not retried (another attempt meets the same certificate).
pub fn certificate_problem(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(r) = e.downcast_ref::<rustls::Error>() {
            return match r {
                rustls::Error::InvalidCertificate(c) => Some(format!("{c:?}")),
                rustls::Error::NoCertificatesPresented => {
                    Some("the server presented no certificate".to_owned())
                }
                _ => None,
            };
        }
        // `io::Error::source` skips the error it wraps: look into it instead (hyper-rustls
        // nests rustls's error in two of them).
        cur = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    None
}

/// `err` and its causes, `: `-joined (reqwest's own message is only "error sending request").
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = e.source();
    }
    out
}
