//! The connection to a running ledger: address, bearer token, and gRPC statuses turned into
//! messages that say what to do.

use ledgerline_proto::ledger::v1::ledger_query_client::LedgerQueryClient;
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Request, Status};

use crate::Error;

/// The environment variable the bearer token comes from (never a flag: flags show in `ps`).
pub const TOKEN_ENV: &str = "LEDGERLINE_TOKEN";
/// The ledger's default gRPC address.
pub const DEFAULT_ADDR: &str = "http://127.0.0.1:50051";

/// A bearer token. Its `Debug` is redacted; it is only ever put into the request header.
#[derive(Clone)]
pub struct Token(AsciiMetadataValue);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Token {
    /// The `authorization` header value for `token`.
    pub fn new(token: &str) -> Result<Token, Error> {
        let token = token.trim();
        if token.is_empty() {
            return Err(Error::Usage(format!(
                "{TOKEN_ENV} is empty: set it to a token of the ledger's LEDGERLINE_TOKENS"
            )));
        }
        let mut value: AsciiMetadataValue = MetadataValue::try_from(format!("Bearer {token}"))
            .map_err(|_| {
                Error::Usage(format!(
                    "{TOKEN_ENV} holds characters an HTTP header cannot carry (the token is not shown)"
                ))
            })?;
        value.set_sensitive(true);
        Ok(Token(value))
    }

    /// The token of `LEDGERLINE_TOKEN`, if set.
    pub fn from_env() -> Result<Option<Token>, Error> {
        match std::env::var(TOKEN_ENV) {
            Ok(t) => Token::new(&t).map(Some),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(Error::Usage(format!(
                "{TOKEN_ENV} is not valid UTF-8 (the token is not shown)"
            ))),
        }
    }
}

/// Adds `authorization: Bearer <token>` to every request.
#[derive(Debug, Clone)]
pub struct Auth(Option<Token>);

impl Interceptor for Auth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(Token(v)) = &self.0 {
            request.metadata_mut().insert("authorization", v.clone());
        }
        Ok(request)
    }
}

/// The generated client with the token interceptor.
pub type Client = LedgerQueryClient<InterceptedService<Channel, Auth>>;

/// The `--addr` every query subcommand takes.
#[derive(Debug, Clone, clap::Args)]
pub struct RemoteArgs {
    /// The ledger's gRPC address (`host:port`, `http://host:port`, or `https://host:port` for a
    /// ledger that serves TLS).
    #[arg(long, env = "LEDGERLINE_ADDR", hide_env_values = true, default_value = DEFAULT_ADDR)]
    pub addr: String,
    /// For an `https://` address: the PEM file of the CA that signed the ledger's certificate
    /// (default: the public web's CAs, Mozilla's list).
    #[arg(long, env = "LEDGERLINE_CA_CERT", hide_env_values = true)]
    pub ca_cert: Option<std::path::PathBuf>,
}

/// A connected ledger.
#[derive(Debug, Clone)]
pub struct Remote {
    addr: String,
    has_token: bool,
    /// Plain HTTP/2 (`http://`): a connection cut below gRPC may be a ledger serving TLS.
    plain: bool,
    client: Client,
}

impl Remote {
    /// Connects to `addr`: plain HTTP/2, or TLS for an `https://` address, trusting the public
    /// web's CAs.
    pub async fn connect(addr: &str, token: Option<Token>) -> Result<Remote, Error> {
        Remote::connect_trusting(addr, token, None).await
    }

    /// [`Remote::connect`], trusting only the CA in `ca_pem` (PEM) for an `https://` address.
    pub async fn connect_trusting(
        addr: &str,
        token: Option<Token>,
        ca_pem: Option<Vec<u8>>,
    ) -> Result<Remote, Error> {
        let uri = if addr.contains("://") {
            addr.to_owned()
        } else {
            format!("http://{addr}")
        };
        let tls = uri.starts_with("https://");
        if ca_pem.is_some() && !tls {
            return Err(Error::Usage(format!(
                "--ca-cert is for a ledger that serves TLS: use an https:// address, not {addr}"
            )));
        }
        let mut endpoint = Endpoint::from_shared(uri).map_err(|e| Error::Connect {
            addr: addr.to_owned(),
            reason: format!("not a valid address ({e})"),
        })?;
        if tls {
            let config = match ca_pem {
                Some(ca) => ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca)),
                None => ClientTlsConfig::new().with_webpki_roots(),
            };
            endpoint = endpoint.tls_config(config).map_err(|e| Error::Connect {
                addr: addr.to_owned(),
                reason: format!("TLS cannot be set up ({})", source_chain(&e)),
            })?;
        }
        let channel = endpoint
            .connect_timeout(std::time::Duration::from_secs(10))
            .connect()
            .await
            .map_err(|e| Error::Connect {
                addr: addr.to_owned(),
                reason: connect_failure(&e, tls),
            })?;
        let has_token = token.is_some();
        Ok(Remote {
            addr: addr.to_owned(),
            has_token,
            plain: !tls,
            client: LedgerQueryClient::with_interceptor(channel, Auth(token))
                // Large pages and raw facts.
                .max_decoding_message_size(64 << 20),
        })
    }

    /// Connects as `args` say, with the token from the environment.
    pub async fn from_args(args: &RemoteArgs) -> Result<Remote, Error> {
        let ca = match &args.ca_cert {
            Some(path) => Some(std::fs::read(path).map_err(|e| {
                Error::Usage(format!("cannot read --ca-cert {}: {e}", path.display()))
            })?),
            None => None,
        };
        Remote::connect_trusting(&args.addr, Token::from_env()?, ca).await
    }

    /// A clone of the client (cheap: it shares the channel).
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// For a plain address, the hint that the ledger may be serving TLS.
    fn tls_hint(&self) -> &'static str {
        if self.plain { PLAIN_TO_TLS_HINT } else { "" }
    }

    /// The error for a status the ledger answered `rpc` with.
    pub fn status_error(&self, rpc: &str, s: &Status) -> Error {
        let detail = s.message();
        let message = match s.code() {
            Code::Unauthenticated if !self.has_token => format!(
                "the ledger wants a bearer token ({detail}): set {TOKEN_ENV} to a token of its LEDGERLINE_TOKENS"
            ),
            Code::Unauthenticated => format!(
                "the ledger rejected the token ({detail}): check that {TOKEN_ENV} holds a token of its LEDGERLINE_TOKENS"
            ),
            Code::PermissionDenied => format!(
                "the token may not call {rpc} ({detail}): use a token with the auditor or admin role"
            ),
            Code::InvalidArgument => format!("the ledger refused the request: {detail}"),
            Code::NotFound => format!("not found: {detail}"),
            Code::Unavailable => format!(
                "the ledger at {} is unavailable ({detail}): is it running and reachable? retry, or check --addr{}",
                self.addr,
                self.tls_hint()
            ),
            Code::Cancelled => format!(
                "the call to the ledger at {} was cut off ({detail}): retry, or check --addr{}",
                self.addr,
                self.tls_hint()
            ),
            Code::DeadlineExceeded => format!(
                "the ledger at {} did not answer {rpc} in time: retry, or narrow the query",
                self.addr
            ),
            Code::Unimplemented => format!(
                "the ledger at {} does not serve {rpc}: is --addr a Ledgerline ledger of this version?",
                self.addr
            ),
            Code::ResourceExhausted => {
                format!("the answer to {rpc} is too large ({detail}): narrow the query or page it")
            }
            Code::Unknown | Code::Internal if broke_below_grpc(detail) => format!(
                "the connection to the ledger at {} failed ({detail}): is it running and reachable \
                 at --addr?{}",
                self.addr,
                self.tls_hint()
            ),
            Code::Internal | Code::Unknown | Code::DataLoss => format!(
                "the ledger failed on {rpc} ({detail}): retry later, or check the ledger's logs"
            ),
            other => format!("{rpc} failed: {other:?}: {detail}"),
        };
        Error::Rpc {
            code: s.code(),
            message,
        }
    }
}

/// Whether tonic's status is a connection that broke below gRPC (HTTP/2 or the transport: the
/// server speaks TLS to a plain client, a proxy cut it), which a ledger never answers itself.
fn broke_below_grpc(detail: &str) -> bool {
    [
        "transport error",
        "h2 protocol error",
        "http2 error",
        "connection reset",
    ]
    .iter()
    .any(|m| detail.contains(m))
}

/// Said when a plain `http://` connection or call fails: the ledger may serve TLS only.
const PLAIN_TO_TLS_HINT: &str = " (a ledger that serves TLS needs an https:// address)";

/// Why a connection failed, with what to do when it is TLS's doing.
fn connect_failure(e: &dyn std::error::Error, tls: bool) -> String {
    let chain = source_chain(e);
    if !tls {
        return format!("{chain}{PLAIN_TO_TLS_HINT}");
    }
    let lower = chain.to_lowercase();
    if lower.contains("certificate") || lower.contains("unknownissuer") {
        format!(
            "{chain}: the ledger's certificate is not trusted, or not for this host; give the CA \
             that signed it with --ca-cert (or LEDGERLINE_CA_CERT), and an address its \
             certificate names"
        )
    } else {
        chain
    }
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        cur = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_token_never_shows_in_debug() {
        let t = Token::new("s3cr3t-value").unwrap();
        assert!(!format!("{t:?}").contains("s3cr3t"));
        assert!(!format!("{:?}", Auth(Some(t))).contains("s3cr3t"));
    }

    #[test]
    fn a_token_a_header_cannot_carry_is_refused_without_showing_it() {
        let e = Token::new("bad\ntoken-xyz").unwrap_err();
        assert!(!e.to_string().contains("token-xyz"), "{e}");
        assert!(Token::new("   ").is_err());
    }
}
