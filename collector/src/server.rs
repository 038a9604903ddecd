//! Starting and stopping a collector: open the store, load or make the TLS
//! certificate, make sure an admin token exists, bind, serve.
//!
//! [`start`] returns a [`Collector`] handle with what a caller needs to talk
//! to it (address, certificate fingerprint, admin token path), so the daemon,
//! `fathom quickstart` and tests start it the same way.

use std::future::Future;
use std::net::SocketAddr;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use fathom_shared::tls::Fingerprint;
use tokio::net::TcpListener;
use tracing::Instrument;

use crate::api::{self, Api};
use crate::cmdb::{Cmdb, Role};
use crate::commit::GroupCommit;
use crate::config::CollectorConfig;
use crate::ingest::Ingest;
use crate::store::sled_store::SledStore;
use fathom_support::config::ConfigError;

/// How long stopping waits for the last flush.
pub const FINAL_FLUSH_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// A running collector.
#[derive(Debug)]
pub struct Collector {
    pub local_addr: SocketAddr,
    pub fingerprint: Fingerprint,
    pub cert_path: PathBuf,
    pub admin_token_path: PathBuf,
    pub cmdb: Arc<Cmdb<SledStore>>,
    /// Folds metrics into the metric store and rolls them up.
    pub capacity: crate::capacity::task::Handle,
    /// Opens and closes outages.
    pub availability: crate::availability::task::Handle,
    task: tokio::task::JoinHandle<()>,
}

impl Collector {
    /// `https://<address>/`, with 127.0.0.1 standing in for an unspecified address.
    pub fn url(&self) -> String {
        let mut addr = self.local_addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        format!("https://{addr}/")
    }

    /// Waits until the server has stopped (after its shutdown future resolved)
    /// and everything is flushed. A store that cannot be flushed (a full
    /// disk, a hung device) fails the stop after [`FINAL_FLUSH_WAIT`]
    /// instead of holding it: what it held was never acknowledged.
    pub async fn stopped(self) -> anyhow::Result<()> {
        self.task.await?;
        let cmdb = self.cmdb.clone();
        let flush = tokio::task::spawn_blocking(move || cmdb.flush());
        match tokio::time::timeout(FINAL_FLUSH_WAIT, flush).await {
            Ok(flushed) => {
                flushed?.context("the final flush failed; unacknowledged writes are dropped")?
            }
            Err(_) => anyhow::bail!(
                "the final flush did not finish within {} s; unacknowledged writes are dropped",
                FINAL_FLUSH_WAIT.as_secs()
            ),
        }
        Ok(())
    }
}

/// What `start` would refuse, checked without starting: the data
/// directory can be one, and a configured certificate and key load. The
/// error names the file and key, as config errors do; `validate-config`
/// runs it too, so a config it passes is one `run` takes.
pub fn preflight(config: &CollectorConfig, path: &Path) -> Result<(), ConfigError> {
    let invalid = ConfigError::invalid(path);
    if let Some(nearest) = config.data_dir.ancestors().find(|p| p.exists()) {
        if !nearest.is_dir() {
            return Err(invalid(
                "data_dir",
                format!("{} is not a directory", nearest.display()),
            ));
        }
    }
    if let Some((cert, key)) = &config.tls {
        crate::tls::load(cert.clone(), key.clone()).map_err(|e| {
            let which = match &e {
                crate::tls::TlsError::Pem { path, .. } if path == key => "tls_key",
                crate::tls::TlsError::Io(f) if f.path == *key => "tls_key",
                _ => "tls_cert",
            };
            invalid(which, fathom_support::error_chain(&e))
        })?;
    }
    Ok(())
}

pub async fn start(
    config: &CollectorConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Collector> {
    // Everything the collector writes is its own: the store, keys and
    // tokens are readable by its user alone (as PostgreSQL does).
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    let store = SledStore::open_with(&config.data_dir.join("cmdb"), config.store_sync)?;
    let cmdb =
        Arc::new(Cmdb::new(store, config.policy.clone()).with_webhooks(config.webhook.is_some()));
    let tls = crate::tls::load_or_create(config.tls.as_ref(), &config.data_dir)?;
    let admin_token_path = config.data_dir.join("admin.token");
    if !cmdb.has_operator_tokens()? {
        // The file first, atomically, then the store: a crash between the
        // two leaves a file whose token the next start makes anew, never a
        // token in the store that nobody knows.
        let secret = crate::cmdb::new_secret("fop");
        fathom_support::fsio::write_atomic(
            &admin_token_path,
            format!("{secret}\n").as_bytes(),
            0o600,
        )
        .with_context(|| format!("cannot write {}", admin_token_path.display()))?;
        cmdb.add_operator_token(&secret, "admin", Role::Admin, fathom_support::now_ms())?;
        cmdb.flush()?;
        tracing::info!(path = %admin_token_path.display(), "Created the first admin token");
    }
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let local_addr = listener.local_addr()?;
    let commit = GroupCommit::spawn(cmdb.clone());
    let webhook = config
        .webhook
        .as_ref()
        .map(|w| crate::webhook::spawn(cmdb.clone(), w))
        .transpose()?;
    let capacity = crate::capacity::task::spawn(
        cmdb.clone(),
        config.metrics.clone(),
        config.report_records_ms,
    );
    let availability = crate::availability::task::spawn(cmdb.clone(), config.availability.clone());
    let api = Arc::new(Api {
        metrics: config.metrics.clone(),
        cmdb: cmdb.clone(),
        ingest: Ingest::new(cmdb.clone(), config.max_body_bytes, config.clock_skew),
        commit,
        max_body: config.max_body_bytes,
        intake: api::intake::Intake::new(api::intake::Limits {
            max_concurrent_reports: config.max_concurrent_reports,
            max_reports_per_address: config.max_reports_per_address,
            report_body_budget_bytes: config.report_body_budget_bytes,
            min_body_bytes_per_sec: config.min_body_bytes_per_sec,
        }),
        fingerprint: tls.fingerprint,
        webhook,
    });
    tracing::info!(listen = %local_addr, fingerprint = %tls.fingerprint, data_dir = %config.data_dir.display(), "Collector listening");
    let task = tokio::spawn(
        api::serve(listener, tls.config.clone(), api, shutdown)
            .instrument(tracing::info_span!("api")),
    );
    Ok(Collector {
        local_addr,
        fingerprint: tls.fingerprint,
        cert_path: tls.cert_path,
        admin_token_path,
        cmdb,
        capacity,
        availability,
        task,
    })
}
