//! TLS for the gRPC API: bearer tokens and the books travel in its requests and answers, so a
//! ledger reachable beyond its own host serves them over TLS (rustls with `ring`, through
//! tonic). The identity is checked when it is loaded, so a wrong file stops the start with a
//! message that names it instead of failing every handshake later.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::Error;

/// The gRPC server's identity: its certificate chain (leaf first) and private key, PEM.
#[derive(Clone)]
pub struct GrpcTls {
    cert_chain_pem: Vec<u8>,
    key_pem: Vec<u8>,
}

impl std::fmt::Debug for GrpcTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcTls")
            .field(
                "cert_chain_pem",
                &format!("{} bytes", self.cert_chain_pem.len()),
            )
            .field("key_pem", &"<hidden>")
            .finish()
    }
}

impl GrpcTls {
    /// Checks that `cert_chain_pem` holds at least one certificate and `key_pem` a private key
    /// (PKCS#8, PKCS#1 or SEC1); the messages name which file is wrong, never its contents.
    pub fn from_pem(cert_chain_pem: Vec<u8>, key_pem: Vec<u8>) -> Result<Self, Error> {
        let certs = CertificateDer::pem_slice_iter(&cert_chain_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                Error::Tls(format!(
                    "the certificate file is not PEM ({e}): give the server's certificate \
                     chain, `-----BEGIN CERTIFICATE-----` blocks, leaf first"
                ))
            })?;
        if certs.is_empty() {
            return Err(Error::Tls(
                "the certificate file holds no `-----BEGIN CERTIFICATE-----` block: give the \
                 server's certificate chain, leaf first"
                    .into(),
            ));
        }
        PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| {
            Error::Tls(
                "the key file holds no PEM private key (`-----BEGIN PRIVATE KEY-----`, or an RSA \
                 or EC one): give the key of the server's certificate"
                    .into(),
            )
        })?;
        Ok(Self {
            cert_chain_pem,
            key_pem,
        })
    }

    /// tonic's server configuration for this identity.
    pub(crate) fn server_config(&self) -> tonic::transport::ServerTlsConfig {
        tonic::transport::ServerTlsConfig::new().identity(tonic::transport::Identity::from_pem(
            &self.cert_chain_pem,
            &self.key_pem,
        ))
    }
}
