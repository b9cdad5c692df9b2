//! TLS for the admission listener: rustls (TLS 1.2 and 1.3 only, h2 and http/1.1 by ALPN)
//! with a serving certificate that is re-read from its files when they change.
//!
//! [`ReloadingCertificate`] holds the pair in use. [`ReloadingCertificate::refresh`] is
//! called before every TLS handshake (and on a timer): it compares the files' metadata with
//! what was last loaded — a `stat` each, no reading — and only when they differ reads both
//! files, parses them and checks that the key belongs to the certificate. Only a complete,
//! matching pair replaces the one in use; a half-written pair (a certificate without its
//! new key, a truncated file) is refused and the old pair stays until the files are whole.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use thiserror::Error;

/// Installs ring as the process-wide rustls crypto provider (once; later calls are no-ops).
pub fn install_crypto_provider() {
    // Err means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Where the serving certificate and key are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

impl CertificateFiles {
    /// `tls.crt` and `tls.key` inside `dir`.
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            cert: dir.join(crate::certs::TLS_CERT_FILE),
            key: dir.join(crate::certs::TLS_KEY_FILE),
        }
    }
}

/// Why a certificate pair could not be loaded.
#[derive(Debug, Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The certificate file holds no PEM certificate.
    #[error("{0}: no PEM certificate found")]
    NoCertificate(PathBuf),
    /// The key file holds no usable PEM private key.
    #[error("{path}: no usable PEM private key: {reason}")]
    Key {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The key does not belong to the certificate (often: one of the pair is not yet rewritten).
    #[error("{key} does not match {cert}: {reason}")]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// Why.
        reason: String,
    },
    /// The leaf certificate does not parse.
    #[error("{path}: {source}")]
    Certificate {
        /// The file.
        path: PathBuf,
        /// Why.
        source: crate::certs::CertError,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// A loaded pair: what rustls serves, and when its leaf expires.
#[derive(Debug, Clone)]
pub struct LoadedPair {
    /// Certificate chain and signing key.
    pub key: Arc<CertifiedKey>,
    /// Leaf `notAfter`.
    pub not_after: SystemTime,
}

/// Reads, parses and checks a certificate/key pair.
pub fn load_pair(files: &CertificateFiles) -> Result<LoadedPair, TlsError> {
    let cert_pem = fs::read(&files.cert).map_err(|source| TlsError::Read {
        path: files.cert.clone(),
        source,
    })?;
    let key_pem = fs::read(&files.key).map_err(|source| TlsError::Read {
        path: files.key.clone(),
        source,
    })?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|_| TlsError::NoCertificate(files.cert.clone()))?;
    let Some(leaf) = chain.first() else {
        return Err(TlsError::NoCertificate(files.cert.clone()));
    };
    let not_after = crate::certs::not_after_der(leaf).map_err(|source| TlsError::Certificate {
        path: files.cert.clone(),
        source,
    })?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::Key {
        path: files.key.clone(),
        reason: e.to_string(),
    })?;
    let provider = CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| TlsError::Key {
            path: files.key.clone(),
            reason: e.to_string(),
        })?;
    let certified = CertifiedKey::new(chain, signing_key);
    certified.keys_match().map_err(|e| TlsError::Mismatch {
        cert: files.cert.clone(),
        key: files.key.clone(),
        reason: e.to_string(),
    })?;
    Ok(LoadedPair {
        key: Arc::new(certified),
        not_after,
    })
}

/// What the files looked like when last examined: changes to any of these trigger a reload.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    cert: FileStamp,
    key: FileStamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    changed: i64,
    changed_nanos: i64,
    len: u64,
    inode: u64,
}

fn file_stamp(path: &Path) -> Option<FileStamp> {
    // Follow symlinks: Kubernetes Secret volumes swap a `..data` symlink.
    let meta = fs::metadata(path).ok()?;
    #[cfg(unix)]
    let (changed, changed_nanos, inode) = {
        use std::os::unix::fs::MetadataExt;
        (meta.ctime(), meta.ctime_nsec(), meta.ino())
    };
    #[cfg(not(unix))]
    let (changed, changed_nanos, inode) = (0, 0, 0);
    Some(FileStamp {
        modified: meta.modified().ok(),
        changed,
        changed_nanos,
        len: meta.len(),
        inode,
    })
}

fn stamp(files: &CertificateFiles) -> Option<Stamp> {
    Some(Stamp {
        cert: file_stamp(&files.cert)?,
        key: file_stamp(&files.key)?,
    })
}

/// What [`ReloadingCertificate::refresh`] did.
#[derive(Debug)]
pub enum Refresh {
    /// The files are as last seen.
    Unchanged,
    /// A new pair was loaded and will be served to new connections.
    Reloaded(LoadedPair),
    /// The files changed but do not hold a complete matching pair; the old pair stays.
    Rejected(TlsError),
}

/// A pair that failed to load is retried this often even if the files look unchanged
/// (file timestamps are coarse: a second write can keep the same metadata).
const RETRY_REJECTED: Duration = Duration::from_secs(1);

#[derive(Debug)]
struct Seen {
    loaded: Option<Stamp>,
    rejected: Option<(Stamp, Instant)>,
}

/// The serving certificate in use, reloaded from its files when they change.
#[derive(Debug)]
pub struct ReloadingCertificate {
    files: CertificateFiles,
    current: ArcSwap<LoadedPair>,
    seen: Mutex<Seen>,
}

impl ReloadingCertificate {
    /// Loads the pair; fails if the files do not hold a complete, matching pair now.
    pub fn load(files: CertificateFiles) -> Result<Self, TlsError> {
        // Stamp before reading: a write racing the read shows up as a change next time.
        let before = stamp(&files);
        let pair = load_pair(&files)?;
        Ok(Self {
            files,
            current: ArcSwap::from_pointee(pair),
            seen: Mutex::new(Seen {
                loaded: before,
                rejected: None,
            }),
        })
    }

    /// The files this certificate is read from.
    pub fn files(&self) -> &CertificateFiles {
        &self.files
    }

    /// The pair in use.
    pub fn current(&self) -> Arc<LoadedPair> {
        self.current.load_full()
    }

    /// Reloads the pair if the files changed since they were last loaded (see the module
    /// documentation). Cheap when nothing changed: two `stat` calls.
    pub fn refresh(&self) -> Refresh {
        let Some(now) = stamp(&self.files) else {
            // A file is missing (mid-rename): keep the old pair and look again later.
            return Refresh::Unchanged;
        };
        let Ok(mut seen) = self.seen.lock() else {
            return Refresh::Unchanged;
        };
        if seen.loaded.as_ref() == Some(&now) {
            return Refresh::Unchanged;
        }
        if let Some((stamp, at)) = &seen.rejected
            && *stamp == now
            && at.elapsed() < RETRY_REJECTED
        {
            return Refresh::Unchanged;
        }
        match load_pair(&self.files) {
            Ok(pair) => {
                self.current.store(Arc::new(pair.clone()));
                seen.loaded = Some(now);
                seen.rejected = None;
                Refresh::Reloaded(pair)
            }
            Err(e) => {
                seen.rejected = Some((now, Instant::now()));
                Refresh::Rejected(e)
            }
        }
    }
}

impl ResolvesServerCert for ReloadingCertificate {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load().key.clone())
    }
}

/// The rustls configuration of the admission listener: TLS 1.2 and 1.3, ALPN h2 then
/// http/1.1, certificates from `certificate`.
pub fn server_config(certificate: Arc<ReloadingCertificate>) -> Result<ServerConfig, TlsError> {
    let provider = CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(certificate);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::{CertificateAuthority, write_atomic};

    const DAY: Duration = Duration::from_secs(86_400);

    fn issue(ca: &CertificateAuthority, name: &str) -> crate::certs::Pair {
        ca.issue_serving(&[name.to_owned()], &[], DAY).unwrap()
    }

    fn leaf(pair: &LoadedPair) -> Vec<u8> {
        pair.key.cert[0].to_vec()
    }

    fn pem_der(pem: &str) -> Vec<u8> {
        CertificateDer::from_pem_slice(pem.as_bytes())
            .unwrap()
            .to_vec()
    }

    #[test]
    fn reloads_a_complete_pair_and_refuses_a_half_written_one() {
        install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let files = CertificateFiles::in_dir(dir.path());
        let ca = CertificateAuthority::generate("ca", DAY).unwrap();
        let first = issue(&ca, "first.example");
        write_atomic(&files.cert, first.cert_pem.as_bytes(), false).unwrap();
        write_atomic(&files.key, first.key_pem.as_bytes(), true).unwrap();
        let reloading = ReloadingCertificate::load(files.clone()).unwrap();
        assert!(matches!(reloading.refresh(), Refresh::Unchanged));
        assert_eq!(leaf(&reloading.current()), pem_der(&first.cert_pem));

        // Only the certificate is rewritten: the pair does not match, the old one stays.
        let second = issue(&ca, "second.example");
        write_atomic(&files.cert, second.cert_pem.as_bytes(), false).unwrap();
        assert!(matches!(
            reloading.refresh(),
            Refresh::Rejected(TlsError::Mismatch { .. })
        ));
        assert_eq!(leaf(&reloading.current()), pem_der(&first.cert_pem));

        // A truncated key is refused too.
        let half = &second.key_pem[..second.key_pem.len() / 2];
        write_atomic(&files.key, half.as_bytes(), true).unwrap();
        assert!(matches!(reloading.refresh(), Refresh::Rejected(_)));
        assert_eq!(leaf(&reloading.current()), pem_der(&first.cert_pem));

        // Once both files are whole, the new pair is served.
        write_atomic(&files.key, second.key_pem.as_bytes(), true).unwrap();
        assert!(matches!(reloading.refresh(), Refresh::Reloaded(_)));
        assert_eq!(leaf(&reloading.current()), pem_der(&second.cert_pem));
        assert!(matches!(reloading.refresh(), Refresh::Unchanged));
    }

    #[test]
    fn start_up_needs_a_valid_pair() {
        install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let files = CertificateFiles::in_dir(dir.path());
        assert!(matches!(
            ReloadingCertificate::load(files.clone()),
            Err(TlsError::Read { .. })
        ));
        let ca = CertificateAuthority::generate("ca", DAY).unwrap();
        let a = issue(&ca, "a.example");
        let b = issue(&ca, "b.example");
        write_atomic(&files.cert, a.cert_pem.as_bytes(), false).unwrap();
        write_atomic(&files.key, b.key_pem.as_bytes(), true).unwrap();
        let err = ReloadingCertificate::load(files).unwrap_err();
        assert!(err.to_string().contains("does not match"), "{err}");
    }
}
