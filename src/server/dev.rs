//! `serve --dev`: everything needed to try homestead on a laptop, no cluster.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use crate::certs::{CA_CERT_FILE, TLS_CERT_FILE, TLS_KEY_FILE};

/// Admission listener in dev mode (loopback only).
pub const DEV_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8443);
/// Admin listener in dev mode (loopback only).
pub const DEV_ADMIN_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);
/// Where dev certificates are written, relative to the working directory.
pub const DEV_CERTS_DIR: &str = "certs";
/// Validity of generated dev certificates.
pub const DEV_CERT_VALIDITY: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// Makes sure `dir` holds a serving pair for localhost/127.0.0.1 and its CA. Existing
/// files are kept; returns true when new ones were written.
pub fn ensure_certificates(dir: &Path) -> anyhow::Result<bool> {
    if dir.join(TLS_CERT_FILE).exists() && dir.join(TLS_KEY_FILE).exists() {
        return Ok(false);
    }
    crate::certs::generate_into(
        dir,
        &["localhost".to_owned()],
        &[
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
        ],
        DEV_CERT_VALIDITY,
    )
    .with_context(|| format!("writing development certificates into {}", dir.display()))?;
    Ok(true)
}

/// The CA certificate a client should trust for certificates in `dir`.
pub fn ca_path(dir: &Path) -> PathBuf {
    dir.join(CA_CERT_FILE)
}

/// A ready-to-paste curl command posting `review` to the mutating webhook at `addr`.
pub fn curl_line(addr: SocketAddr, ca: &Path, review: &str) -> String {
    let host = match addr.ip() {
        ip if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST).to_string(),
        IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    format!(
        "curl --cacert {} -H 'Content-Type: application/json' --data @{} https://{}:{}/mutate",
        ca.display(),
        review,
        host,
        addr.port()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_are_written_once() {
        let dir = tempfile::tempdir().unwrap();
        let certs = dir.path().join("certs");
        assert!(ensure_certificates(&certs).unwrap());
        let first = std::fs::read(certs.join(TLS_CERT_FILE)).unwrap();
        assert!(!ensure_certificates(&certs).unwrap());
        assert_eq!(std::fs::read(certs.join(TLS_CERT_FILE)).unwrap(), first);
        assert!(ca_path(&certs).exists());
    }

    #[test]
    fn the_curl_line_is_pasteable() {
        let line = curl_line(
            DEV_LISTEN,
            Path::new("certs/ca.crt"),
            "manifests/examples/review-pod.json",
        );
        assert_eq!(
            line,
            "curl --cacert certs/ca.crt -H 'Content-Type: application/json' --data @manifests/examples/review-pod.json https://127.0.0.1:8443/mutate"
        );
    }
}
