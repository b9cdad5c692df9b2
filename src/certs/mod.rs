//! Certificates for the admission webhook: a private certificate authority (ECDSA P-256)
//! and serving certificates it issues, as PEM text.
//!
//! The CA is kept separate from the serving certificate so the serving pair can be
//! re-issued (rotated) while the API server keeps trusting the same `caBundle`.
//!
//! - [`CertificateAuthority::generate`] / [`CertificateAuthority::from_pem`] — make or load a CA;
//! - [`CertificateAuthority::issue_serving`] — a serving certificate with the given SANs;
//! - [`CertificateAuthority::generate_at`] / [`CertificateAuthority::issue_serving_at`] —
//!   the same at a given time (the in-cluster rotation plans with a time it is passed);
//! - [`not_after`] — when a PEM certificate expires;
//! - [`write_files`] — `ca.crt`, `ca.key`, `tls.crt`, `tls.key` into a directory;
//! - [`CertsArgs`] / [`run`] — the `homestead certs` subcommand.

use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType,
};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use thiserror::Error;
use time::OffsetDateTime;

pub use homestead_core::certs::{BACKDATE, Pair};
use homestead_core::certs::{Crypto, from_unix_seconds, unix_seconds};

/// File name of the CA certificate in a certificate directory.
pub const CA_CERT_FILE: &str = "ca.crt";
/// File name of the CA private key in a certificate directory.
pub const CA_KEY_FILE: &str = "ca.key";
/// File name of the serving certificate in a certificate directory.
pub const TLS_CERT_FILE: &str = "tls.crt";
/// File name of the serving private key in a certificate directory.
pub const TLS_KEY_FILE: &str = "tls.key";

/// What went wrong making, loading or reading a certificate.
#[derive(Debug, Error)]
pub enum CertError {
    /// Key generation, signing or encoding failed.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// The CA private key is not a PEM private key rcgen can sign with.
    #[error("CA private key: {0}")]
    CaKey(rcgen::Error),
    /// The CA certificate is not a PEM X.509 certificate.
    #[error("CA certificate: {0}")]
    CaCert(rcgen::Error),
    /// The CA key does not belong to the CA certificate.
    #[error("the CA private key does not match the CA certificate")]
    CaKeyMismatch,
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
    /// Text that should hold a PEM certificate does not.
    #[error("no PEM certificate found")]
    NoCertificate,
    /// A certificate that does not parse as X.509.
    #[error("certificate does not parse: {0}")]
    Parse(String),
}

/// A certificate authority that issues serving certificates.
pub struct CertificateAuthority {
    cert_pem: String,
    key_pem: String,
    not_after: SystemTime,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("CertificateAuthority")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

/// Valid from `now` (back-dated by [`BACKDATE`]) for `validity`, but never past `cap`.
fn validity_window(
    now: SystemTime,
    validity: Duration,
    cap: Option<SystemTime>,
) -> Result<(OffsetDateTime, OffsetDateTime), CertError> {
    if validity.is_zero() {
        return Err(CertError::Validity(validity));
    }
    let not_before = now
        .checked_sub(BACKDATE)
        .ok_or(CertError::Validity(validity))?;
    let not_after = now
        .checked_add(validity)
        .ok_or(CertError::Validity(validity))?;
    let not_after = cap.map_or(not_after, |cap| not_after.min(cap));
    let offset = |t: SystemTime| {
        OffsetDateTime::from_unix_timestamp(unix_seconds(t))
            .map_err(|_| CertError::Validity(validity))
    };
    Ok((offset(not_before)?, offset(not_after)?))
}

/// Hex of the tail of a public key: tells CAs made under the same name apart.
fn key_tag(key: &KeyPair) -> String {
    let raw = key.public_key_raw();
    raw[raw.len().saturating_sub(6)..]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl CertificateAuthority {
    /// A new CA with a fresh ECDSA P-256 key, valid from now for `validity`. Its common
    /// name is `name` followed by a tag from its public key, so that successive CAs made
    /// under one name have distinct subjects (a serving certificate names its own).
    pub fn generate(name: &str, validity: Duration) -> Result<Self, CertError> {
        Self::generate_at(name, SystemTime::now(), validity)
    }

    /// As [`generate`](Self::generate), valid from `now` (back-dated by [`BACKDATE`]) for
    /// `validity`.
    pub fn generate_at(name: &str, now: SystemTime, validity: Duration) -> Result<Self, CertError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, format!("{name} {}", key_tag(&key)));
        dn.push(DnType::OrganizationName, "homestead");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        (params.not_before, params.not_after) = validity_window(now, validity, None)?;
        let cert = params.self_signed(&key)?;
        let not_after = not_after_der(cert.der())?;
        let key_pem = key.serialize_pem();
        Ok(Self {
            cert_pem: cert.pem(),
            key_pem,
            not_after,
            issuer: Issuer::new(params, key),
        })
    }

    /// Loads a CA from its PEM certificate and PEM private key.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, CertError> {
        let key = KeyPair::from_pem(key_pem).map_err(CertError::CaKey)?;
        let der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|_| CertError::NoCertificate)?;
        let (_, parsed) = x509_parser::parse_x509_certificate(&der)
            .map_err(|e| CertError::Parse(e.to_string()))?;
        if parsed.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
            return Err(CertError::CaKeyMismatch);
        }
        let not_after = not_after_der(&der)?;
        let issuer = Issuer::from_ca_cert_der(&der, key).map_err(CertError::CaCert)?;
        Ok(Self {
            cert_pem: cert_pem.to_owned(),
            key_pem: key_pem.to_owned(),
            not_after,
            issuer,
        })
    }

    /// The CA certificate as PEM (the webhook's `caBundle`, base64 of this).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA private key as PKCS#8 PEM.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// When the CA certificate expires.
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    /// Issues a serving certificate (fresh ECDSA P-256 key, server-auth) for the given DNS
    /// names and IP addresses, valid from now for `validity` (never past the CA).
    pub fn issue_serving(
        &self,
        dns_names: &[String],
        ips: &[IpAddr],
        validity: Duration,
    ) -> Result<Pair, CertError> {
        self.issue_serving_at(dns_names, ips, SystemTime::now(), validity)
    }

    /// As [`issue_serving`](Self::issue_serving), valid from `now` (back-dated by [`BACKDATE`])
    /// for `validity`, never past the CA's own expiry.
    pub fn issue_serving_at(
        &self,
        dns_names: &[String],
        ips: &[IpAddr],
        now: SystemTime,
        validity: Duration,
    ) -> Result<Pair, CertError> {
        if dns_names.is_empty() && ips.is_empty() {
            return Err(CertError::NoNames);
        }
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::default();
        let mut sans = Vec::with_capacity(dns_names.len() + ips.len());
        for name in dns_names {
            if !is_dns_name(name) {
                return Err(CertError::DnsName {
                    name: name.clone(),
                    reason:
                        "not a DNS name (letters, digits, '-' and '.'; an optional leading '*.')"
                            .into(),
                });
            }
            let dns = name
                .clone()
                .try_into()
                .map_err(|e: rcgen::Error| CertError::DnsName {
                    name: name.clone(),
                    reason: e.to_string(),
                })?;
            sans.push(SanType::DnsName(dns));
        }
        sans.extend(ips.iter().copied().map(SanType::IpAddress));
        params.subject_alt_names = sans;
        let common_name = dns_names
            .first()
            .cloned()
            .or_else(|| ips.first().map(IpAddr::to_string))
            .unwrap_or_default();
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, common_name);
        params.distinguished_name = name;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        (params.not_before, params.not_after) =
            validity_window(now, validity, Some(self.not_after))?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Pair {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// What the core's certificate planners need that takes cryptography, done with rcgen
/// (ECDSA P-256 keys from ring): reading a private key's public half, making CAs and
/// issuing serving certificates.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rcgen;

impl Crypto for Rcgen {
    type Error = CertError;

    fn public_key(&self, key_pem: &[u8]) -> Option<Vec<u8>> {
        let text = std::str::from_utf8(key_pem).ok()?;
        let key = KeyPair::from_pem(text).ok()?;
        Some(key.public_key_raw().to_vec())
    }

    fn make_ca(&self, name: &str, now: SystemTime, validity: Duration) -> Result<Pair, CertError> {
        let ca = CertificateAuthority::generate_at(name, now, validity)?;
        Ok(Pair {
            cert_pem: ca.cert_pem,
            key_pem: ca.key_pem,
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

/// True for a DNS name a certificate may carry: dot-separated labels of letters, digits
/// and inner hyphens (at most 63 characters each, 253 in all), optionally `*.` first.
pub fn is_dns_name(name: &str) -> bool {
    let rest = name.strip_prefix("*.").unwrap_or(name);
    !rest.is_empty()
        && name.len() <= 253
        && rest.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// When the first certificate in `pem` expires.
pub fn not_after(pem: &[u8]) -> Result<SystemTime, CertError> {
    let der = CertificateDer::from_pem_slice(pem).map_err(|_| CertError::NoCertificate)?;
    not_after_der(&der)
}

/// When a DER certificate expires.
pub fn not_after_der(der: &[u8]) -> Result<SystemTime, CertError> {
    let (_, parsed) =
        x509_parser::parse_x509_certificate(der).map_err(|e| CertError::Parse(e.to_string()))?;
    Ok(from_unix_seconds(parsed.validity().not_after.timestamp()))
}

/// The paths [`write_files`] writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificatePaths {
    /// `ca.crt`.
    pub ca_cert: PathBuf,
    /// `ca.key`.
    pub ca_key: PathBuf,
    /// `tls.crt`.
    pub tls_cert: PathBuf,
    /// `tls.key`.
    pub tls_key: PathBuf,
}

impl CertificatePaths {
    /// The four files inside `dir`.
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            ca_cert: dir.join(CA_CERT_FILE),
            ca_key: dir.join(CA_KEY_FILE),
            tls_cert: dir.join(TLS_CERT_FILE),
            tls_key: dir.join(TLS_KEY_FILE),
        }
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
        (&paths.tls_key, serving.key_pem.as_bytes(), true),
        (&paths.tls_cert, serving.cert_pem.as_bytes(), false),
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

/// `homestead certs`: writes a CA and a serving certificate signed by it.
#[derive(Debug, Clone, clap::Args)]
pub struct CertsArgs {
    /// Directory to write ca.crt, ca.key, tls.crt and tls.key into (created if missing).
    #[arg(long, env = "HOMESTEAD_CERTS_OUT", value_name = "DIR")]
    pub out: PathBuf,
    /// A DNS name for the serving certificate (repeatable), e.g.
    /// homestead.homestead.svc.
    #[arg(
        long = "dns",
        value_name = "NAME",
        env = "HOMESTEAD_CERTS_DNS",
        value_delimiter = ','
    )]
    pub dns: Vec<String>,
    /// An IP address for the serving certificate (repeatable). Without --dns and --ip:
    /// localhost and 127.0.0.1.
    #[arg(
        long = "ip",
        value_name = "IP",
        env = "HOMESTEAD_CERTS_IP",
        value_delimiter = ','
    )]
    pub ip: Vec<IpAddr>,
    /// Validity of both certificates, in days.
    #[arg(long, env = "HOMESTEAD_CERTS_DAYS", default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub days: u32,
}

/// Runs `homestead certs`.
pub fn run(args: CertsArgs) -> ExitCode {
    let validity = Duration::from_secs(u64::from(args.days) * 24 * 60 * 60);
    let (dns, ip) = if args.dns.is_empty() && args.ip.is_empty() {
        (
            vec!["localhost".to_owned()],
            vec![IpAddr::from([127, 0, 0, 1])],
        )
    } else {
        (args.dns, args.ip)
    };
    match generate_into(&args.out, &dns, &ip, validity) {
        Ok(paths) => {
            for path in [
                &paths.ca_cert,
                &paths.ca_key,
                &paths.tls_cert,
                &paths.tls_key,
            ] {
                println!("wrote {}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("homestead certs: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod rotation;

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn serving_certificate_has_sans_and_is_signed_by_the_ca() {
        let ca = CertificateAuthority::generate("test CA", DAY).unwrap();
        let serving = ca
            .issue_serving(
                &["homestead.homestead.svc".into(), "localhost".into()],
                &["127.0.0.1".parse().unwrap()],
                DAY,
            )
            .unwrap();
        let leaf = CertificateDer::from_pem_slice(serving.cert_pem.as_bytes()).unwrap();
        let (_, parsed) = x509_parser::parse_x509_certificate(&leaf).unwrap();
        let sans = parsed.subject_alternative_name().unwrap().unwrap();
        let text = format!("{:?}", sans.value.general_names);
        assert!(text.contains("homestead.homestead.svc"), "{text}");
        assert!(text.contains("localhost"), "{text}");
        assert!(!parsed.is_ca());
        let ca_der = CertificateDer::from_pem_slice(ca.cert_pem().as_bytes()).unwrap();
        let (_, ca_parsed) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
        assert!(ca_parsed.is_ca());
        assert_eq!(parsed.issuer(), ca_parsed.subject());
        parsed
            .verify_signature(Some(ca_parsed.public_key()))
            .unwrap();
        // A different CA did not sign it.
        let other = CertificateAuthority::generate("other", DAY).unwrap();
        let other_der = CertificateDer::from_pem_slice(other.cert_pem().as_bytes()).unwrap();
        let (_, other_parsed) = x509_parser::parse_x509_certificate(&other_der).unwrap();
        assert!(
            parsed
                .verify_signature(Some(other_parsed.public_key()))
                .is_err()
        );
    }

    #[test]
    fn expiry_follows_the_validity() {
        let ca = CertificateAuthority::generate("test CA", 10 * DAY).unwrap();
        let serving = ca
            .issue_serving(&["a.example".into()], &[], 3 * DAY)
            .unwrap();
        let expiry = not_after(serving.cert_pem.as_bytes()).unwrap();
        let left = expiry.duration_since(SystemTime::now()).unwrap();
        assert!(
            left > 3 * DAY - Duration::from_secs(120) && left <= 3 * DAY,
            "{left:?}"
        );
        assert!(not_after(b"not a certificate").is_err());
    }

    #[test]
    fn certificates_made_at_a_given_time_never_outlive_their_ca() {
        let then = UNIX_EPOCH + Duration::from_secs(1_900_000_000);
        let ca = CertificateAuthority::generate_at("test CA", then, 2 * DAY).unwrap();
        assert_eq!(ca.not_after(), then + 2 * DAY);
        let der = CertificateDer::from_pem_slice(ca.cert_pem().as_bytes()).unwrap();
        let (_, parsed) = x509_parser::parse_x509_certificate(&der).unwrap();
        assert_eq!(
            parsed.validity().not_before.timestamp(),
            unix_seconds(then - BACKDATE)
        );
        // Asked for 30 days a day later, the serving certificate stops with its CA.
        let serving = ca
            .issue_serving_at(&["a.example".into()], &[], then + DAY, 30 * DAY)
            .unwrap();
        assert_eq!(
            not_after(serving.cert_pem.as_bytes()).unwrap(),
            then + 2 * DAY
        );
        // A CA loaded from PEM knows its expiry too.
        let loaded = CertificateAuthority::from_pem(ca.cert_pem(), ca.key_pem()).unwrap();
        assert_eq!(loaded.not_after(), ca.not_after());
        // Two CAs made under one name have distinct subjects.
        let other = CertificateAuthority::generate_at("test CA", then, DAY).unwrap();
        let subject = |pem: &str| {
            let der = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
            let (_, parsed) = x509_parser::parse_x509_certificate(&der).unwrap();
            parsed.subject().to_string()
        };
        assert_ne!(subject(ca.cert_pem()), subject(other.cert_pem()));
        assert!(subject(ca.cert_pem()).contains("CN=test CA "));
    }

    #[test]
    fn a_ca_round_trips_through_pem_and_rejects_a_foreign_key() {
        let ca = CertificateAuthority::generate("test CA", DAY).unwrap();
        let loaded = CertificateAuthority::from_pem(ca.cert_pem(), ca.key_pem()).unwrap();
        let serving = loaded
            .issue_serving(&["x.example".into()], &[], DAY)
            .unwrap();
        let leaf = CertificateDer::from_pem_slice(serving.cert_pem.as_bytes()).unwrap();
        let (_, parsed) = x509_parser::parse_x509_certificate(&leaf).unwrap();
        let ca_der = CertificateDer::from_pem_slice(ca.cert_pem().as_bytes()).unwrap();
        let (_, ca_parsed) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
        parsed
            .verify_signature(Some(ca_parsed.public_key()))
            .unwrap();

        let other = CertificateAuthority::generate("other", DAY).unwrap();
        assert!(matches!(
            CertificateAuthority::from_pem(ca.cert_pem(), other.key_pem()),
            Err(CertError::CaKeyMismatch)
        ));
    }

    #[test]
    fn bad_names_and_no_names_are_refused() {
        let ca = CertificateAuthority::generate("test CA", DAY).unwrap();
        assert!(matches!(
            ca.issue_serving(&[], &[], DAY),
            Err(CertError::NoNames)
        ));
        for bad in ["bad name!", "", "a..b", "-a.b", "a.*.b"] {
            assert!(
                matches!(
                    ca.issue_serving(&[bad.into()], &[], DAY),
                    Err(CertError::DnsName { .. })
                ),
                "{bad}"
            );
        }
        for good in [
            "*.homestead.svc",
            "homestead.homestead.svc.cluster.local",
            "localhost",
        ] {
            assert!(is_dns_name(good), "{good}");
        }
        assert!(CertificateAuthority::generate("x", Duration::ZERO).is_err());
    }

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
        for path in [&paths.ca_cert, &paths.tls_cert] {
            assert!(
                fs::read_to_string(path)
                    .unwrap()
                    .contains("BEGIN CERTIFICATE")
            );
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&paths.tls_key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let ca = CertificateAuthority::from_pem(
            &fs::read_to_string(&paths.ca_cert).unwrap(),
            &fs::read_to_string(&paths.ca_key).unwrap(),
        );
        assert!(ca.is_ok());
    }
}
