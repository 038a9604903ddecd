//! The collector's server certificate: the configured pair, or a self-signed
//! one made on first start and kept under `data_dir/tls/` (key mode 0600).
//! Agents trust it by the fingerprint that `fathom token create` prints.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fathom_shared::tls::{provider, Fingerprint};
use fathom_support::fsio::{fs_err as io, FsError};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(transparent)]
    Io(#[from] FsError),
    #[error("{path} holds no PEM {what}")]
    Pem { path: PathBuf, what: &'static str },
    #[error("cannot make a self-signed certificate")]
    Generate(#[source] rcgen::Error),
    #[error("the certificate and key do not make a usable TLS configuration")]
    Rustls(#[source] rustls::Error),
}

/// A ready server configuration and the fingerprint of its certificate.
#[derive(Debug, Clone)]
pub struct ServerTls {
    pub config: Arc<ServerConfig>,
    pub fingerprint: Fingerprint,
    pub cert_path: PathBuf,
}

pub fn load_or_create(
    configured: Option<&(PathBuf, PathBuf)>,
    data_dir: &Path,
) -> Result<ServerTls, TlsError> {
    let (cert_path, key_path) = match configured {
        Some((c, k)) => (c.clone(), k.clone()),
        None => {
            let dir = data_dir.join("tls");
            let cert = dir.join("cert.pem");
            let key = dir.join("key.pem");
            if !cert.exists() || !key.exists() {
                make_self_signed(&dir, &cert, &key)?;
            }
            (cert, key)
        }
    };
    load(cert_path, key_path)
}

/// The server configuration from a certificate chain and key in PEM files.
pub fn load(cert_path: PathBuf, key_path: PathBuf) -> Result<ServerTls, TlsError> {
    let cert_pem = fs::read(&cert_path).map_err(io("read", &cert_path))?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .filter_map(Result::ok)
        .collect();
    let leaf = certs.first().ok_or_else(|| TlsError::Pem {
        path: cert_path.clone(),
        what: "certificate",
    })?;
    let fingerprint = Fingerprint::of_der(leaf);
    let key_pem = fs::read(&key_path).map_err(io("read", &key_path))?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| TlsError::Pem {
        path: key_path.clone(),
        what: "private key",
    })?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Rustls)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(TlsError::Rustls)?;
    Ok(ServerTls {
        config: Arc::new(config),
        fingerprint,
        cert_path,
    })
}

fn make_self_signed(dir: &Path, cert: &Path, key: &Path) -> Result<(), TlsError> {
    fs::create_dir_all(dir).map_err(io("create", dir))?;
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if let Ok(h) = fs::read_to_string("/proc/sys/kernel/hostname") {
        let h = h.trim();
        if !h.is_empty() && h != "localhost" {
            names.push(h.to_owned());
        }
    }
    let generated = rcgen::generate_simple_self_signed(names).map_err(TlsError::Generate)?;
    let mut key_file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(key)
        .map_err(io("create", key))?;
    key_file
        .write_all(generated.signing_key.serialize_pem().as_bytes())
        .and_then(|()| key_file.sync_all())
        .map_err(io("write", key))?;
    fs::write(cert, generated.cert.pem()).map_err(io("write", cert))?;
    tracing::info!(cert = %cert.display(), fingerprint = %Fingerprint::of_der(generated.cert.der()), "Made a self-signed TLS certificate");
    Ok(())
}
