//! Outbound incident webhooks, so external ticketing can follow incidents.
//!
//! Incident writes queue an event in the CMDB's outbox **in the same
//! transaction** (see `cmdb::incident::put_incident`), so an event is never
//! lost between an incident and its notification. The **deliverer** task
//! ([`spawn`]) posts queued events in order, oldest first, and removes each
//! only after a 2xx answer: delivery is at least once, and receivers
//! deduplicate on `X-Fathom-Delivery`. A failing receiver is retried with
//! doubling delays (1 s to 5 min) while later events wait behind it, so
//! order holds.
//!
//! Each POST carries:
//! - `Content-Type: application/json`, body `{"event": "incident.created" |
//!   "incident.updated", "incident": {…}}`;
//! - `X-Fathom-Event`: the event name;
//! - `X-Fathom-Delivery`: the event's sequence number;
//! - `X-Fathom-Signature: t=<unix seconds>,sha256=<hex>`: HMAC-SHA256, keyed
//!   by the configured secret, over `<t>.<body>`. Receivers recompute it,
//!   compare in constant time, and refuse old `t` to stop replays.
//!
//! The task is woken after every durable write (`Handle::poke`) and also
//! looks every few seconds.

// The webhook deliverer's home of reqwest (clippy.toml).
#![allow(clippy::disallowed_types)]

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::Notify;
use tracing::Instrument;

use crate::cmdb::Cmdb;
use crate::config::WebhookConfig;
use crate::store::Store;

const IDLE_LOOK: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(300);
const TIMEOUT: Duration = Duration::from_secs(10);

/// Wakes the deliverer; stops it when dropped.
pub use crate::background::Handle;

/// `t=<t>,sha256=<hex HMAC-SHA256 over "<t>.<body>">`.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "t={timestamp},sha256={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// Reads the secret and starts the deliverer.
pub fn spawn<S: Store>(cmdb: Arc<Cmdb<S>>, config: &WebhookConfig) -> anyhow::Result<Handle> {
    let secret = std::fs::read_to_string(&config.secret_file)
        .with_context(|| {
            format!(
                "cannot read the webhook secret_file {}",
                config.secret_file.display()
            )
        })?
        .trim()
        .to_owned();
    if secret.len() < 16 {
        anyhow::bail!(
            "the webhook secret in {} is shorter than 16 characters",
            config.secret_file.display()
        );
    }
    let url = reqwest::Url::parse(&config.url)
        .with_context(|| format!("webhook url {:?}", config.url))?;
    let trust = fathom_shared::tls::Trust::Roots(system_roots());
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(fathom_shared::tls::client_config(&trust)?)
        .timeout(TIMEOUT)
        .build()?;
    let wake = Arc::new(Notify::new());
    let task = tokio::spawn(
        deliver_forever(cmdb, http, url, secret.into_bytes(), wake.clone())
            .instrument(tracing::info_span!("webhook")),
    );
    Ok(Handle::new(wake, task.abort_handle()))
}

/// The system's CA certificates (Debian's /etc/ssl/certs bundle).
fn system_roots() -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    const BUNDLES: [&str; 2] = [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
    ];
    BUNDLES
        .iter()
        .find_map(|p| std::fs::read(p).ok())
        .map(|pem| {
            rustls::pki_types::CertificateDer::pem_slice_iter(&pem)
                .filter_map(Result::ok)
                .collect()
        })
        .unwrap_or_default()
}

async fn deliver_forever<S: Store>(
    cmdb: Arc<Cmdb<S>>,
    http: reqwest::Client,
    url: reqwest::Url,
    secret: Vec<u8>,
    wake: Arc<Notify>,
) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let pending = match cmdb.outbox() {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %crate::error_chain(&e), "Cannot read the webhook outbox");
                Vec::new()
            }
        };
        if pending.is_empty() {
            let _ = tokio::time::timeout(IDLE_LOOK, wake.notified()).await;
            continue;
        }
        let mut failed = false;
        for (seq, body) in pending {
            let event = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["event"].as_str().map(str::to_owned))
                .unwrap_or_default();
            let timestamp = fathom_support::now_ms() / 1000;
            let result = http
                .post(url.clone())
                .header("content-type", "application/json")
                .header("x-fathom-event", &event)
                .header("x-fathom-delivery", seq.to_string())
                .header("x-fathom-signature", signature(&secret, timestamp, &body))
                .body(body)
                .send()
                .await;
            let outcome = match result {
                Ok(r) if r.status().is_success() => Ok(()),
                Ok(r) => Err(format!("the receiver answered {}", r.status())),
                Err(e) => Err(crate::error_chain(&e)),
            };
            match outcome {
                Ok(()) => {
                    tracing::debug!(seq, event = %event, "Webhook delivered");
                    if let Err(e) = cmdb.outbox_delivered(seq) {
                        tracing::error!(seq, error = %crate::error_chain(&e), "Cannot remove a delivered webhook event; it will be sent again");
                    }
                    backoff = Duration::from_secs(1);
                }
                Err(error) => {
                    tracing::warn!(seq, event = %event, %error, retry_in_s = backoff.as_secs(), "Webhook delivery failed; will retry");
                    failed = true;
                    break;
                }
            }
        }
        if failed {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_over_time_and_body() {
        // RFC 4231 test case 2 key and data, with our "<t>." prefix folded
        // into the data: HMAC("Jefe", "what do ya want for nothing?").
        let sig = signature(b"Jefe", 0, b"what do ya want for nothing?");
        assert!(sig.starts_with("t=0,sha256="));
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"0.what do ya want for nothing?");
        assert_eq!(
            sig,
            format!("t=0,sha256={}", hex::encode(mac.finalize().into_bytes()))
        );
        let plain = Hmac::<Sha256>::new_from_slice(b"Jefe")
            .unwrap()
            .chain_update(b"what do ya want for nothing?")
            .finalize()
            .into_bytes();
        assert_eq!(
            hex::encode(plain),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_ne!(sig, signature(b"Jefe", 1, b"what do ya want for nothing?"));
    }
}
