//! The operator's HTTPS client: where to find the collector and the token,
//! and typed calls to the API.
//!
//! Settings are found in this order, first wins for each: command-line
//! flags; environment (`FATHOM_URL`, `FATHOM_TOKEN`, `FATHOM_FINGERPRINT`,
//! `FATHOM_CA_FILE`); a client config file: `--client-config` or
//! `FATHOM_CLIENT_CONFIG`, else `./fathom-data/client.toml` (which
//! `fathom quickstart` writes), else `$XDG_CONFIG_HOME/fathom/client.toml`
//! (default `~/.config/fathom/client.toml`).

// The operator CLI's home of reqwest (clippy.toml).
#![allow(clippy::disallowed_types)]

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use fathom_shared::tls::{client_config, Fingerprint, Trust};
use fathom_shared::wire::ErrorBody;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The client config file.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientFile {
    pub url: Option<String>,
    pub token: Option<String>,
    pub token_file: Option<PathBuf>,
    pub fingerprint: Option<String>,
    pub ca_file: Option<PathBuf>,
}

/// What the command line and environment said.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct ClientArgs {
    /// Collector base URL, e.g. https://collector:8443/
    #[arg(long, global = true, env = "FATHOM_URL")]
    pub url: Option<String>,
    /// Operator API token. Prefer --token-file: a command line is seen by
    /// every user of the host (ps).
    #[arg(long, global = true, env = "FATHOM_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// A file holding the operator API token (e.g. the collector's
    /// admin.token); it wins over --token.
    #[arg(long, global = true, env = "FATHOM_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Trust the collector certificate with this SHA-256 fingerprint.
    #[arg(long, global = true, env = "FATHOM_FINGERPRINT")]
    pub fingerprint: Option<String>,
    /// Trust collector certificates issued by this PEM CA bundle.
    #[arg(long, global = true, env = "FATHOM_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Client config file (see `fathom --help`).
    #[arg(long, global = true, env = "FATHOM_CLIENT_CONFIG")]
    pub client_config: Option<PathBuf>,
}

fn default_config_paths() -> Vec<PathBuf> {
    let mut paths = vec![PathBuf::from("fathom-data/client.toml")];
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
    if let Some(base) = base {
        paths.push(base.join("fathom/client.toml"));
    }
    paths
}

fn read_client_file(path: &Path) -> anyhow::Result<ClientFile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read client config {}", path.display()))?;
    toml::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "client config {} is not valid: {}",
            path.display(),
            e.to_string().trim_end()
        )
    })
}

#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: reqwest::Url,
    token: String,
}

impl Client {
    pub fn from_args(args: &ClientArgs) -> anyhow::Result<Client> {
        let file = match &args.client_config {
            Some(p) => Some((p.clone(), read_client_file(p)?)),
            None => default_config_paths()
                .into_iter()
                .find(|p| p.exists())
                .map(|p| read_client_file(&p).map(|f| (p, f)))
                .transpose()?,
        };
        let (file_path, file) = match file {
            Some((p, f)) => (Some(p), f),
            None => (None, ClientFile::default()),
        };
        let origin = |what: &str| match &file_path {
            Some(p) => format!("{what} (from {})", p.display()),
            None => what.to_owned(),
        };
        let Some(url) = args.url.clone().or(file.url.clone()) else {
            bail!("no collector URL: pass --url, set FATHOM_URL, or run `fathom quickstart` to write fathom-data/client.toml");
        };
        // Say where a bad value came from: the flag (or its environment
        // variable) wins over the file.
        let url_origin = match args.url {
            Some(_) => "--url (or FATHOM_URL)".to_owned(),
            None => origin("url"),
        };
        let base = reqwest::Url::parse(&url)
            .with_context(|| format!("{url_origin} {url:?} is not a URL"))?;
        if base.scheme() != "https" {
            bail!(
                "{url_origin} {url:?}: the collector speaks HTTPS only; use https://{}",
                url.split_once("://").map_or(url.as_str(), |(_, rest)| rest)
            );
        }
        let token_file = args
            .token_file
            .as_ref()
            .map(|p| (p, format!("--token-file {}", p.display())))
            .or_else(|| {
                file.token_file
                    .as_ref()
                    .map(|p| (p, origin(&format!("token_file {}", p.display()))))
            });
        let token = match (args.token.clone().or(file.token.clone()), token_file) {
            (Some(t), _) if args.token_file.is_none() => t,
            (_, Some((path, from))) => std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {from}"))?
                .trim()
                .to_owned(),
            (Some(t), None) => t,
            (None, None) => bail!("no operator token: pass --token or set FATHOM_TOKEN (the first admin token is in <data_dir>/admin.token)"),
        };
        let trust = match (args.fingerprint.clone().or(file.fingerprint.clone()), args.ca_file.clone().or(file.ca_file.clone())) {
            (Some(fp), _) => Trust::Pinned(fp.parse::<Fingerprint>().map_err(|e| {
                let from = match args.fingerprint {
                    Some(_) => "--fingerprint (or FATHOM_FINGERPRINT)".to_owned(),
                    None => origin("fingerprint"),
                };
                anyhow::anyhow!("{from}: {e}")
            })?),
            (None, Some(ca)) => {
                use rustls::pki_types::pem::PemObject;
                let pem = std::fs::read(&ca).with_context(|| format!("cannot read CA file {}", ca.display()))?;
                Trust::Roots(
                    rustls::pki_types::CertificateDer::pem_slice_iter(&pem)
                        .filter_map(Result::ok)
                        .collect(),
                )
            }
            (None, None) => bail!("no way to trust the collector: pass --fingerprint (printed by the collector) or --ca-file"),
        };
        Client::new(base, token, &trust)
    }

    pub fn new(base: reqwest::Url, token: String, trust: &Trust) -> anyhow::Result<Client> {
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(client_config(trust)?)
            .timeout(std::time::Duration::from_secs(30))
            .build()?;
        Ok(Client { http, base, token })
    }

    /// The collector's URL, as this client reaches it.
    pub fn base(&self) -> &reqwest::Url {
        &self.base
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.call(self.http.get(self.url(path)?)).await
    }

    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> anyhow::Result<T> {
        self.call(self.http.post(self.url(path)?).json(body)).await
    }

    fn url(&self, path: &str) -> anyhow::Result<reqwest::Url> {
        Ok(self.base.join(path.trim_start_matches('/'))?)
    }

    async fn call<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> anyhow::Result<T> {
        let response = request.bearer_auth(&self.token).send().await.map_err(|e| {
            anyhow::anyhow!(
                "cannot reach the collector at {}: {}",
                self.base,
                fathom_collector::error_chain(&e)
            )
        })?;
        let status = response.status();
        let bytes = response.bytes().await?;
        if !status.is_success() {
            let message = serde_json::from_slice::<ErrorBody>(&bytes)
                .map(|e| format!("{}: {}", e.code, e.message))
                .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).into_owned());
            bail!("the collector answered {status}: {message}");
        }
        serde_json::from_slice(&bytes).context("the collector's answer is not the expected JSON")
    }
}

/// The typed API client runs over this one: its trust options, its token.
impl fathom_api::client::Transport for Client {
    type Error = anyhow::Error;

    async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        Client::get(self, path).await
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        Client::post(self, path, &serde_json::to_value(body)?).await
    }
}
