//! Certificates, the shell half: whatever needs cryptography or files. The pure half —
//! X.509 parsing and times, the webhook certificate Secret's layout and the rotation
//! planner — is `homestead_core::certs`; this module gives it its cryptography ([`Ring`]).
//! The dev server, the TLS reloader (`server::tls`) and the in-cluster rotation
//! (`webhooks`) all go through here.
//!
//! - [`private_key`] and [`key_matches`] — the one place a private key is read (PKCS#8,
//!   PKCS#1 or SEC1, with the process's rustls crypto provider) and matched to its
//!   certificate;
//! - [`Ring`] — the core's [`Crypto`]: key matching, and making CAs and serving
//!   certificates;
//! - [`authority`] — [`CertificateAuthority`]: make or load a CA, issue serving
//!   certificates (rcgen, ECDSA P-256);
//! - [`files`] — certificate directories (`ca.crt`, `ca.key`, `tls.crt`, `tls.key`).

pub mod authority;
pub mod files;
#[cfg(test)]
mod rotation;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::sign::SigningKey;
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;
use thiserror::Error;

pub use authority::{CertificateAuthority, is_dns_name};
pub use files::{
    CA_CERT_FILE, CA_KEY_FILE, CertificateFiles, CertificatePaths, TLS_CERT_FILE, TLS_KEY_FILE,
    generate_into, write_atomic, write_files,
};
pub use homestead_core::certs::{BACKDATE, CertInfo, Crypto, MaterialError, Pair};

/// What went wrong making or loading a certificate.
#[derive(Debug, Error)]
pub enum CertError {
    /// Key generation, signing or encoding failed.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// The CA private key is not a PEM private key rcgen can sign with.
    #[error("CA private key: {0}")]
    CaKey(rcgen::Error),
    /// The CA certificate cannot issue certificates.
    #[error("CA certificate: {0}")]
    CaCert(rcgen::Error),
    /// A certificate does not parse, or its key does not belong to it.
    #[error(transparent)]
    Certificate(#[from] MaterialError),
    /// A serving certificate needs at least one DNS name or IP address.
    #[error("a serving certificate needs at least one DNS name or IP address")]
    NoNames,
    /// A DNS name is not valid in a certificate.
    #[error("invalid DNS name {name:?}: {reason}")]
    DnsName {
        /// The name.
        name: String,
        /// Why.
        reason: String,
    },
    /// The validity is zero or too long to represent.
    #[error("invalid validity period {0:?}")]
    Validity(Duration),
}

/// Installs ring as the process-wide rustls crypto provider (once, at start-up; later
/// calls are no-ops). Everything that speaks TLS — the admission server, the Kubernetes
/// client, the LDAP client — uses it.
pub fn install_crypto_provider() {
    // Err means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The process's rustls crypto provider: the one installed at start-up (ring), or ring
/// when none is (tests, library use).
pub fn crypto_provider() -> Arc<CryptoProvider> {
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()))
}

/// Reads a PEM private key (PKCS#8, PKCS#1 or SEC1) into a signing key.
pub fn private_key(key_pem: &[u8]) -> Result<Arc<dyn SigningKey>, String> {
    let der = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| e.to_string())?;
    crypto_provider()
        .key_provider
        .load_private_key(der)
        .map_err(|e| e.to_string())
}

/// True when `key` is the private key of `cert`: their public key infos are equal.
pub fn key_matches(cert: &CertInfo, key: &dyn SigningKey) -> bool {
    key.public_key()
        .is_some_and(|spki| spki.as_ref() == cert.public_key.as_slice())
}

/// The core's certificate operations, done with ring: keys read through rustls's ring
/// provider, CAs and serving certificates made with rcgen.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ring;

impl Crypto for Ring {
    type Error = CertError;

    fn key_matches(&self, cert: &CertInfo, key_pem: &[u8]) -> bool {
        private_key(key_pem).is_ok_and(|key| key_matches(cert, key.as_ref()))
    }

    fn make_ca(&self, name: &str, now: SystemTime, validity: Duration) -> Result<Pair, CertError> {
        let ca = CertificateAuthority::generate_at(name, now, validity)?;
        Ok(Pair {
            cert_pem: ca.cert_pem().to_owned(),
            key_pem: ca.key_pem().to_owned(),
        })
    }

    fn issue_serving(
        &self,
        ca: &Pair,
        dns_names: &[String],
        ips: &[IpAddr],
        now: SystemTime,
        validity: Duration,
    ) -> Result<Pair, CertError> {
        CertificateAuthority::from_pem(&ca.cert_pem, &ca.key_pem)?
            .issue_serving_at(dns_names, ips, now, validity)
    }
}
