//! `ledgerline health URL`: the probe compose's health checks run inside the services' image
//! (which has no curl and no grpcurl). `http://host:port/path` asks an HTTP endpoint (the
//! ingester's and the ledger's `/readyz`); `grpc://host:port` asks the standard
//! `grpc.health.v1.Health/Check` of a gRPC server (the ledger's `LedgerQuery`). Exit 0 when
//! ready or serving, 2 when it answers that it is not, 1 when it does not answer.

use std::time::Duration;

use clap::Args;
use http_body_util::{BodyExt as _, Empty};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::{Error, Outcome};

/// `ledgerline health` options.
#[derive(Debug, Clone, Args)]
pub struct HealthArgs {
    /// `http://host:port/path` (2xx: ready) or `grpc://host:port` (SERVING: ready).
    pub url: String,
    /// gRPC: the service to ask about (empty: the server as a whole).
    #[arg(long, default_value = "")]
    pub service: String,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 3)]
    pub timeout_secs: u64,
}

/// The most of an HTTP answer's body printed.
const BODY_LIMIT: usize = 4096;

impl HealthArgs {
    pub async fn run(&self, out: &mut dyn std::io::Write) -> Result<Outcome, Error> {
        let timeout = Duration::from_secs(self.timeout_secs.max(1));
        let probe = async {
            if let Some(rest) = self.url.strip_prefix("http://") {
                http(rest, out).await
            } else if let Some(rest) = self.url.strip_prefix("grpc://") {
                grpc(rest, &self.service, out).await
            } else {
                Err(Error::Usage(format!(
                    "{}: give an http://host:port/path or a grpc://host:port URL",
                    self.url
                )))
            }
        };
        tokio::time::timeout(timeout, probe)
            .await
            .unwrap_or_else(|_| {
                Err(Error::Connect {
                    addr: self.url.clone(),
                    reason: format!("no answer within {} s", timeout.as_secs()),
                })
            })
    }
}

fn unreachable(addr: &str, e: impl std::fmt::Display) -> Error {
    Error::Connect {
        addr: addr.to_owned(),
        reason: e.to_string(),
    }
}

async fn http(rest: &str, out: &mut dyn std::io::Write) -> Result<Outcome, Error> {
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let stream = tokio::net::TcpStream::connect(authority)
        .await
        .map_err(|e| unreachable(authority, e))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| unreachable(authority, e))?;
    tokio::spawn(connection);
    let request = hyper::Request::get(path)
        .header(hyper::header::HOST, authority)
        .body(Empty::<bytes::Bytes>::new())
        .map_err(|e| Error::Usage(format!("{rest}: {e}")))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| unreachable(authority, e))?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| unreachable(authority, e))?
        .to_bytes();
    let text = String::from_utf8_lossy(&body[..body.len().min(BODY_LIMIT)]);
    writeln!(out, "{} {}", status.as_u16(), text.trim_end())?;
    Ok(if status.is_success() {
        Outcome::Ok
    } else {
        Outcome::Failed
    })
}

async fn grpc(
    authority: &str,
    service: &str,
    out: &mut dyn std::io::Write,
) -> Result<Outcome, Error> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{authority}"))
        .map_err(|e| Error::Usage(format!("grpc://{authority}: {e}")))?
        .connect()
        .await
        .map_err(|e| unreachable(authority, e))?;
    let answer = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await;
    let status = match answer {
        Ok(r) => r.into_inner().status(),
        Err(s) if s.code() == tonic::Code::NotFound => {
            writeln!(out, "{authority}: no service named {service:?}")?;
            return Ok(Outcome::Failed);
        }
        Err(s) => return Err(unreachable(authority, s.message())),
    };
    writeln!(out, "{}", status.as_str_name())?;
    Ok(if status == ServingStatus::Serving {
        Outcome::Ok
    } else {
        Outcome::Failed
    })
}
