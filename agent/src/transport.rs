//! HTTPS to the collector: the only module that uses reqwest.
//!
//! [`Transport::send`] posts one sealed envelope to `/v1/reports` and sorts
//! the answer into: acknowledged, retryable (connection trouble, 5xx, 429:
//! try again later), or rejected (any other 4xx: resending the same bytes
//! cannot help). Retries and backoff are the caller's business.

// The agent's home of reqwest (clippy.toml).
#![allow(clippy::disallowed_types)]

use std::time::Duration;

use fathom_shared::tls::{client_config, Trust};
use fathom_shared::wire::{Ack, ErrorBody};

use crate::config::{AgentConfig, CollectorTrust};

/// The largest answer the agent reads from the collector.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot read CA file {path}")]
    CaFile {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("CA file {path} holds no PEM certificate")]
    NoCertificates { path: std::path::PathBuf },
    #[error("TLS configuration")]
    Tls(#[source] fathom_shared::tls::TlsConfigError),
    #[error("HTTP client")]
    Client(#[source] reqwest::Error),
}

/// The outcome of one delivery attempt.
#[derive(Debug)]
pub enum SendOutcome {
    Acknowledged(Ack),
    /// Worth retrying later: the collector was unreachable, overloaded or failing.
    Retryable(String),
    /// The collector refused the report; sending it again would fail again.
    Rejected {
        status: u16,
        code: String,
        message: String,
        /// With `replay`: the last sequence the collector holds.
        last_seq: Option<u64>,
    },
}

#[derive(Debug, Clone)]
pub struct Transport {
    client: reqwest::Client,
    reports_url: reqwest::Url,
}

impl Transport {
    pub fn new(config: &AgentConfig) -> Result<Transport, TransportError> {
        let trust = match &config.trust {
            CollectorTrust::Pinned(fp) => Trust::Pinned(*fp),
            CollectorTrust::CaFile(path) => {
                use rustls::pki_types::pem::PemObject;
                let pem = std::fs::read(path).map_err(|source| TransportError::CaFile {
                    path: path.clone(),
                    source,
                })?;
                let certs: Vec<_> = rustls::pki_types::CertificateDer::pem_slice_iter(&pem)
                    .filter_map(Result::ok)
                    .collect();
                if certs.is_empty() {
                    return Err(TransportError::NoCertificates { path: path.clone() });
                }
                Trust::Roots(certs)
            }
        };
        let tls = client_config(&trust).map_err(TransportError::Tls)?;
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("fathom-agent/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(TransportError::Client)?;
        Ok(Transport {
            client,
            reports_url: config
                .collector_url
                .join("v1/reports")
                .expect("static path joins"),
        })
    }

    pub async fn send(&self, envelope: Vec<u8>) -> SendOutcome {
        let response = match self
            .client
            .post(self.reports_url.clone())
            .header("content-type", "application/vnd.fathom.envelope")
            .body(envelope)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => return SendOutcome::Retryable(crate::probe::error_chain(&e)),
        };
        let status = response.status();
        let body = match read_capped(response).await {
            Ok(b) => b,
            Err(e) => return SendOutcome::Retryable(e),
        };
        if status.is_success() {
            return match serde_json::from_slice::<Ack>(&body) {
                Ok(ack) => SendOutcome::Acknowledged(ack),
                // An answer we cannot read is not proof of storage.
                Err(e) => SendOutcome::Retryable(format!("unreadable acknowledgement: {e}")),
            };
        }
        let error: ErrorBody = serde_json::from_slice(&body).unwrap_or_else(|_| ErrorBody {
            code: "unknown".into(),
            message: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
            last_seq: None,
        });
        if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
            SendOutcome::Retryable(format!("collector answered {status}: {}", error.message))
        } else {
            SendOutcome::Rejected {
                status: status.as_u16(),
                code: error.code,
                message: error.message,
                last_seq: error.last_seq,
            }
        }
    }
}

async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| crate::probe::error_chain(&e))?
    {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(format!(
                "collector answer exceeds {MAX_RESPONSE_BYTES} bytes"
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
