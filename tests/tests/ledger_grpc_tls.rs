//! The gRPC API over TLS: a ledger given a certificate (issued here by a test CA, rcgen) serves
//! only TLS. The `ledgerline` CLI reaches it at `https://` trusting that CA (`--ca-cert`), and
//! says what to do when it does not trust it or uses `http://`; grpcurl (Go's TLS, another
//! client) lists the services through reflection with `-cacert` and fails without TLS. A
//! certificate or key file that is not one is refused at start, naming which, never showing it.
#![allow(clippy::unwrap_used)]

mod ledger_support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use ledger_support::*;
use ledgerline_bus::Topics;
use ledgerline_cli::query::{AsOfArgs, TrialBalanceArgs};
use ledgerline_cli::{Outcome, Remote, RemoteArgs, Token};
use ledgerline_ledger::Role;
use ledgerline_ledger::tls::GrpcTls;
use ledgerline_tests::unique_name;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

const AUDITOR: &str = "tls-auditor-token";

/// A CA's certificate, and a chain and key for `127.0.0.1`/`localhost` it signed (PEM).
fn pki() -> (String, String, String) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Ledgerline test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    (
        ca.pem(),
        format!("{}{}", leaf.pem(), ca.pem()),
        key.serialize_pem(),
    )
}

fn grpcurl(args: &[&str]) -> (bool, String) {
    let bin = ledgerline_tests::grpcurl_binary();
    let out = Command::new(bin).args(args).output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grpc_api_is_served_over_tls_to_clients_that_trust_its_ca() {
    let (ca_pem, chain_pem, key_pem) = pki();
    let topics = Topics::with_prefix(format!("{}.", unique_name("tls")));
    create_topics(&topics).await;
    let (_world, facts) = world_facts(19, 300);
    let records = produce(&topics, &facts, 0).await;
    let (pool, url) = fresh_db("ledger_tls").await;
    let group = unique_name("ledger");
    let mut config = config(&url, &topics, &group);
    config.tokens = vec![(AUDITOR.into(), Role::Auditor)];
    config.grpc_tls =
        Some(GrpcTls::from_pem(chain_pem.into_bytes(), key_pem.into_bytes()).unwrap());
    let (running, stop) = start(config).await;
    wait_for_offsets(&pool, &group, records, Duration::from_secs(120)).await;
    let port = running.grpc_addr.port();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca_pem).unwrap();

    // The CLI, trusting the CA: the books, over TLS.
    let trial_balance = |addr: String, ca_cert: Option<PathBuf>| TrialBalanceArgs {
        remote: RemoteArgs { addr, ca_cert },
        ledger: PLATFORM.into(),
        as_of: AsOfArgs::default(),
    };
    let https = format!("https://127.0.0.1:{port}");
    let args = trial_balance(https.clone(), Some(ca_file.clone()));
    let remote = Remote::connect_trusting(
        &https,
        Some(Token::new(AUDITOR).unwrap()),
        Some(ca_pem.clone().into_bytes()),
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    assert_eq!(args.run(&remote, &mut out).await.unwrap(), Outcome::Ok);
    let printed = String::from_utf8(out).unwrap();
    assert!(
        printed.contains("balanced (every currency sums to zero)"),
        "{printed}"
    );
    assert!(!args.fetch(&remote).await.unwrap().rows.is_empty());
    // The same through the arguments as the binary reads them (the CA from a file), by name.
    let by_name = Remote::from_args(
        &trial_balance(format!("https://localhost:{port}"), Some(ca_file.clone())).remote,
    )
    .await;
    assert!(by_name.is_ok(), "{by_name:?}");

    // Not trusting the CA, or not speaking TLS: errors that say what to do.
    let untrusted = match Remote::connect(&https, Some(Token::new(AUDITOR).unwrap())).await {
        Ok(r) => trial_balance(https.clone(), None)
            .fetch(&r)
            .await
            .unwrap_err()
            .to_string(),
        Err(e) => e.to_string(),
    };
    assert!(
        untrusted.contains("certificate is not trusted") && untrusted.contains("--ca-cert"),
        "{untrusted}"
    );
    let plain_addr = format!("http://127.0.0.1:{port}");
    let plain = match Remote::connect(&plain_addr, Some(Token::new(AUDITOR).unwrap())).await {
        Ok(r) => trial_balance(plain_addr, None)
            .fetch(&r)
            .await
            .unwrap_err()
            .to_string(),
        Err(e) => e.to_string(),
    };
    assert!(plain.contains("https://"), "{plain}");

    // grpcurl, another TLS stack.
    let target = format!("127.0.0.1:{port}");
    let (ok, listed) = grpcurl(&["-cacert", ca_file.to_str().unwrap(), &target, "list"]);
    assert!(
        ok && listed.contains("ledgerline.ledger.v1.LedgerQuery"),
        "{listed}"
    );
    let (ok, said) = grpcurl(&["-plaintext", "-connect-timeout", "3", &target, "list"]);
    assert!(!ok, "plaintext answered: {said}");

    stop.cancel();
    running.task.await.unwrap().unwrap();
}

#[test]
fn a_file_that_is_not_a_certificate_or_key_is_refused_naming_which() {
    let (_, chain_pem, key_pem) = pki();
    let secret_looking = b"not a certificate: s3cr3t".to_vec();
    for (cert, key, says) in [
        (
            secret_looking.clone(),
            key_pem.clone().into_bytes(),
            "the certificate file holds no",
        ),
        (
            chain_pem.clone().into_bytes(),
            secret_looking.clone(),
            "the key file holds no PEM private key",
        ),
    ] {
        let e = GrpcTls::from_pem(cert, key).unwrap_err().to_string();
        assert!(e.contains(says), "{e}");
        assert!(!e.contains("s3cr3t"), "{e}");
    }
    let tls = GrpcTls::from_pem(chain_pem.into_bytes(), key_pem.into_bytes()).unwrap();
    assert!(!format!("{tls:?}").contains("PRIVATE KEY"));
}

/// The binary: a certificate without its key is a usage error; files that cannot be read or
/// are not PEM stop the start (exit 2) before anything connects, naming which file.
#[test]
fn the_binary_refuses_tls_files_it_cannot_use() {
    let dir = tempfile::tempdir().unwrap();
    let (_, chain_pem, key_pem) = pki();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate: s3cr3t").unwrap();
    let key = dir.path().join("key.pem");
    std::fs::write(&key, key_pem).unwrap();
    let chain = dir.path().join("chain.pem");
    std::fs::write(&chain, chain_pem).unwrap();
    let missing = dir.path().join("missing.pem");
    let run = |cert: &std::path::Path, key: Option<&std::path::Path>| {
        let mut cmd = Command::new(ledger_binary());
        cmd.env("DATABASE_URL", "postgres://127.0.0.1:1/nowhere")
            .env("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
            .env_remove("LEDGERLINE_GRPC_TLS_KEY")
            .env("LEDGERLINE_GRPC_TLS_CERT", cert);
        if let Some(key) = key {
            cmd.env("LEDGERLINE_GRPC_TLS_KEY", key);
        }
        let out = cmd.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, said) = run(&chain, None);
    assert_eq!(code, Some(2), "{said}");
    assert!(said.contains("--grpc-tls-key"), "{said}");
    let (code, said) = run(&garbage, Some(&key));
    assert_eq!(code, Some(2), "{said}");
    assert!(said.contains("the certificate file holds no"), "{said}");
    assert!(!said.contains("s3cr3t"), "{said}");
    let (code, said) = run(&missing, Some(&key));
    assert_eq!(code, Some(2), "{said}");
    assert!(
        said.contains("cannot read the gRPC TLS certificate file") && said.contains("missing.pem"),
        "{said}"
    );
}
