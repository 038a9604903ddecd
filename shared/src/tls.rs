//! How an agent or the CLI decides to trust a collector: either a CA bundle
//! (ordinary WebPKI validation, hostname included) or a pinned certificate
//! fingerprint, which `fathom token create` prints for collectors that made
//! their own self-signed certificate.
//!
//! The one crypto provider in the build is `ring`; configs are built with it
//! explicitly, never with a process-wide default.
//!
//! This module reads no files: callers pass certificates in.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};

/// SHA-256 of a certificate's DER encoding, written `sha256:<64 hex digits>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    pub fn of_der(der: &[u8]) -> Fingerprint {
        Fingerprint(Sha256::digest(der).into())
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", hex::encode(self.0))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid certificate fingerprint {0:?}: expected `sha256:` followed by 64 hexadecimal digits"
)]
pub struct ParseFingerprintError(String);

impl FromStr for Fingerprint {
    type Err = ParseFingerprintError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Accept the colon-separated form other tools print, too.
        let digits: String = s
            .trim()
            .strip_prefix("sha256:")
            .unwrap_or(s.trim())
            .chars()
            .filter(|c| *c != ':')
            .collect();
        let mut out = [0u8; 32];
        hex::decode_to_slice(&digits, &mut out).map_err(|_| ParseFingerprintError(s.to_owned()))?;
        Ok(Fingerprint(out))
    }
}

/// What the client trusts.
#[derive(Debug, Clone)]
pub enum Trust {
    /// Exactly the certificate with this fingerprint; hostnames are not checked.
    Pinned(Fingerprint),
    /// Certificates chaining to these roots, for the name being connected to.
    Roots(Vec<CertificateDer<'static>>),
}

#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    #[error("CA bundle holds no usable certificate")]
    NoRoots,
    #[error("TLS configuration failed")]
    Rustls(#[source] rustls::Error),
}

pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client configuration for talking to a collector.
pub fn client_config(trust: &Trust) -> Result<ClientConfig, TlsConfigError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(TlsConfigError::Rustls)?;
    let config = match trust {
        Trust::Pinned(fingerprint) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedVerifier {
                fingerprint: *fingerprint,
                provider,
            }))
            .with_no_client_auth(),
        Trust::Roots(certs) => {
            let mut roots = RootCertStore::empty();
            let (added, _ignored) = roots.add_parsable_certificates(certs.iter().cloned());
            if added == 0 {
                return Err(TlsConfigError::NoRoots);
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    Ok(config)
}

/// Accepts exactly one end-entity certificate, by fingerprint. Handshake
/// signatures are still verified, so the server must hold the private key.
#[derive(Debug)]
struct PinnedVerifier {
    fingerprint: Fingerprint,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if Fingerprint::of_der(end_entity) == self.fingerprint {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "server certificate {} does not match the pinned {}",
                Fingerprint::of_der(end_entity),
                self.fingerprint
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_in_both_common_spellings() {
        let fp = Fingerprint::of_der(b"certificate");
        let text = fp.to_string();
        assert!(text.starts_with("sha256:"));
        assert_eq!(text.parse::<Fingerprint>().unwrap(), fp);
        let colons = hex::encode(fp.0)
            .as_bytes()
            .chunks(2)
            .map(|c| std::str::from_utf8(c).unwrap().to_uppercase())
            .collect::<Vec<_>>()
            .join(":");
        assert_eq!(colons.parse::<Fingerprint>().unwrap(), fp);
        assert!("sha256:abc".parse::<Fingerprint>().is_err());
    }
}
