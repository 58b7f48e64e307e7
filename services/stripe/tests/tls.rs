//! HTTPS: the client talks TLS (rustls, `ring`) to a local server whose certificate is issued by a
//! test CA it is told to trust, and refuses, at once and saying why, a server whose certificate
//! it does not trust. Certificates are generated here (rcgen).
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use ledgerline_stripe::tls::{TlsConfig, TlsConfigError, rustls_config};
use ledgerline_stripe::{ApiKey, Client, ClientConfig, StripeError};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const KEY: &str = "sk_test_123456789012345678901234";

struct Pki {
    ca_pem: String,
    chain: Vec<CertificateDer<'static>>,
    key: PrivatePkcs8KeyDer<'static>,
}

/// A CA and a leaf for `127.0.0.1`/`localhost` it signed.
fn pki(ca_name: &str) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, ca_name);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    Pki {
        ca_pem: ca.pem(),
        chain: vec![leaf.der().clone(), ca.der().clone()],
        key: PrivatePkcs8KeyDer::from(leaf_key.serialize_der()),
    }
}

/// An HTTPS server answering every request with a balance; returns its base URL and the request
/// lines it received.
async fn serve(pki: &Pki) -> (String, Arc<Mutex<Vec<String>>>) {
    let config = rustls::ServerConfig::builder_with_provider(ledgerline_stripe::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(pki.chain.clone(), PrivateKeyDer::Pkcs8(pki.key.clone_key()))
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let seen = seen2.clone();
            tokio::spawn(async move {
                // A client that does not trust us aborts the handshake: nothing to answer.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf);
                seen.lock()
                    .unwrap()
                    .push(head.lines().next().unwrap_or("").to_owned());
                let body = r#"{"object":"balance","livemode":false,"available":[],"pending":[]}"#;
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nRequest-Id: req_tls\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(resp.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (format!("https://127.0.0.1:{port}"), seen)
}

fn client(base: &str, tls: TlsConfig) -> Client {
    let mut cfg = ClientConfig::new(base, ApiKey::parse(KEY).unwrap());
    cfg.tls = tls;
    cfg.requests_per_sec = Some(0);
    Client::new(cfg).unwrap()
}

#[tokio::test]
async fn https_to_a_server_signed_by_a_trusted_ca() {
    let pki = pki("Ledgerline test CA");
    let (base, seen) = serve(&pki).await;
    let tls = TlsConfig {
        extra_ca_pem: vec![pki.ca_pem.clone().into_bytes()],
        ..TlsConfig::default()
    };
    let c = client(&base, tls);
    let resp = c.get("/v1/balance", &[], None).await.unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.request_id, "req_tls");
    assert!(resp.body.starts_with(br#"{"object":"balance""#));
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        ["GET /v1/balance HTTP/1.1"]
    );
}

#[tokio::test]
async fn refuses_a_server_whose_certificate_it_does_not_trust() {
    let pki = pki("Ledgerline test CA");
    let (base, seen) = serve(&pki).await;
    let other = self::pki("Some other CA");
    for (what, tls) in [
        ("Mozilla's roots only", TlsConfig::default()),
        (
            "another CA",
            TlsConfig {
                webpki_roots: false,
                extra_ca_pem: vec![other.ca_pem.clone().into_bytes()],
                ..TlsConfig::default()
            },
        ),
    ] {
        let c = client(&base, tls);
        let err = c.get("/v1/balance", &[], None).await.unwrap_err();
        assert!(
            matches!(err, StripeError::UntrustedCertificate { .. }),
            "{what}: {err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("is not trusted"), "{what}: {msg}");
        assert!(msg.contains("UnknownIssuer"), "{what}: {msg}");
        assert!(msg.contains("ca_file"), "{what}: says what to do: {msg}");
        assert!(!msg.contains(KEY), "{what}: {msg}");
        // Not retried: one attempt, no answer.
        assert_eq!(c.stats().by_status().get(&0), Some(&1), "{what}");
        assert_eq!(
            c.stats().retries.load(std::sync::atomic::Ordering::Relaxed),
            0
        );
    }
    assert!(seen.lock().unwrap().is_empty(), "no request got through");
}

#[test]
fn a_bad_ca_bundle_is_a_clear_error() {
    let err = rustls_config(&TlsConfig {
        extra_ca_pem: vec![b"not a certificate".to_vec()],
        ..TlsConfig::default()
    })
    .unwrap_err();
    assert!(
        matches!(err, TlsConfigError::BadPem { index: 0, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("BEGIN CERTIFICATE"), "{err}");
    let err = rustls_config(&TlsConfig {
        webpki_roots: false,
        ..TlsConfig::default()
    })
    .unwrap_err();
    assert!(matches!(err, TlsConfigError::NoRoots), "{err:?}");
}
