//! Certificate directories: a CA and a serving pair as files, laid out as the webhook
//! certificate Secret is mounted (`ca.crt`, `tls.crt`, `tls.key`, plus `ca.key`), written
//! atomically with private keys readable by the owner only.

use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use super::{CertificateAuthority, Pair};
use homestead_core::certs::secret::{KEY_CA_BUNDLE, KEY_TLS_CERT, KEY_TLS_KEY};

/// File name of the CA certificate in a certificate directory.
pub const CA_CERT_FILE: &str = KEY_CA_BUNDLE;
/// File name of the CA private key in a certificate directory.
pub const CA_KEY_FILE: &str = "ca.key";
/// File name of the serving certificate in a certificate directory.
pub const TLS_CERT_FILE: &str = KEY_TLS_CERT;
/// File name of the serving private key in a certificate directory.
pub const TLS_KEY_FILE: &str = KEY_TLS_KEY;

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
            cert: dir.join(TLS_CERT_FILE),
            key: dir.join(TLS_KEY_FILE),
        }
    }
}

/// The paths [`write_files`] writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificatePaths {
    /// `ca.crt`.
    pub ca_cert: PathBuf,
    /// `ca.key`.
    pub ca_key: PathBuf,
    /// `tls.crt` and `tls.key`.
    pub serving: CertificateFiles,
}

impl CertificatePaths {
    /// The four files inside `dir`.
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            ca_cert: dir.join(CA_CERT_FILE),
            ca_key: dir.join(CA_KEY_FILE),
            serving: CertificateFiles::in_dir(dir),
        }
    }

    /// Every file, in the order they are listed to people.
    pub fn all(&self) -> [&Path; 4] {
        [
            &self.ca_cert,
            &self.ca_key,
            &self.serving.cert,
            &self.serving.key,
        ]
    }
}

/// Writes a file atomically (temporary file + rename), private keys readable by the owner only.
pub fn write_atomic(path: &Path, contents: &[u8], private: bool) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    {
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(if private { 0o600 } else { 0o644 });
        }
        #[cfg(not(unix))]
        let _ = private;
        let mut file = options.open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
    }
    fs::rename(&tmp, path)
}

/// Writes `ca.crt`, `ca.key`, `tls.crt` and `tls.key` into `dir` (created if missing).
/// Each file is replaced atomically; the serving key is written before its certificate.
pub fn write_files(
    dir: &Path,
    ca: &CertificateAuthority,
    serving: &Pair,
) -> anyhow::Result<CertificatePaths> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let paths = CertificatePaths::in_dir(dir);
    let files = [
        (&paths.ca_cert, ca.cert_pem().as_bytes(), false),
        (&paths.ca_key, ca.key_pem().as_bytes(), true),
        (&paths.serving.key, serving.key_pem.as_bytes(), true),
        (&paths.serving.cert, serving.cert_pem.as_bytes(), false),
    ];
    for (path, contents, private) in files {
        write_atomic(path, contents, private)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(paths)
}

/// Makes a new CA and a serving certificate for `dns_names`/`ips` and writes all four files.
pub fn generate_into(
    dir: &Path,
    dns_names: &[String],
    ips: &[IpAddr],
    validity: Duration,
) -> anyhow::Result<CertificatePaths> {
    let ca = CertificateAuthority::generate("homestead webhook CA", validity)?;
    let serving = ca.issue_serving(dns_names, ips, validity)?;
    write_files(dir, &ca, &serving)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn files_are_written_with_private_keys_private() {
        let dir = tempfile::tempdir().unwrap();
        let paths = generate_into(
            &dir.path().join("certs"),
            &["localhost".into()],
            &["127.0.0.1".parse().unwrap()],
            DAY,
        )
        .unwrap();
        for path in [&paths.ca_cert, &paths.serving.cert] {
            assert!(
                fs::read_to_string(path)
                    .unwrap()
                    .contains("BEGIN CERTIFICATE")
            );
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&paths.serving.key)
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let ca = CertificateAuthority::from_pem(
            &fs::read_to_string(&paths.ca_cert).unwrap(),
            &fs::read_to_string(&paths.ca_key).unwrap(),
        );
        assert!(ca.is_ok());
    }
}
