//! Certificates, as far as they are pure: reading X.509 certificates (validity, names,
//! issuer, public key), converting X.509 times, the webhook certificate Secret's layout
//! ([`secret`]) and the planner that rotates it ([`rotation`]).
//!
//! What needs cryptography — making keys, signing, reading a private key — is the shell's
//! (`src/certs/`), reached through the [`Crypto`] trait.

pub mod rotation;
pub mod secret;

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use thiserror::Error;
use x509_parser::extensions::GeneralName;
use x509_parser::pem::Pem;

/// Certificates are valid from this long before they are made (clock skew between hosts);
/// the time a certificate was made is its `notBefore` plus this.
pub const BACKDATE: Duration = Duration::from_secs(5 * 60);

/// A certificate and its private key, PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct Pair {
    /// Certificate PEM.
    pub cert_pem: String,
    /// Private key PEM (PKCS#8).
    pub key_pem: String,
}

impl std::fmt::Debug for Pair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("Pair")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

/// What certificates need that takes cryptography (randomness, signing, key parsing); the
/// shell implements it with rcgen.
pub trait Crypto {
    /// Why a certificate could not be made.
    type Error: std::error::Error + Send + Sync + 'static;

    /// True when `key_pem` is a PEM private key whose public half is `cert`'s
    /// ([`CertInfo::public_key`]).
    fn key_matches(&self, cert: &CertInfo, key_pem: &[u8]) -> bool;

    /// A new CA whose common name starts with `name`, valid from `now` (back-dated by
    /// [`BACKDATE`]) for `validity`.
    fn make_ca(&self, name: &str, now: SystemTime, validity: Duration)
    -> Result<Pair, Self::Error>;

    /// A serving certificate from `ca` for the DNS names and IP addresses, valid from `now`
    /// (back-dated by [`BACKDATE`]) for `validity` but never past the CA's own expiry.
    fn issue_serving(
        &self,
        ca: &Pair,
        dns_names: &[String],
        ips: &[IpAddr],
        now: SystemTime,
        validity: Duration,
    ) -> Result<Pair, Self::Error>;
}

/// What matters of one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Start of validity.
    pub not_before: SystemTime,
    /// End of validity.
    pub not_after: SystemTime,
    /// DER of the subject name.
    pub subject: Vec<u8>,
    /// DER of the issuer name.
    pub issuer: Vec<u8>,
    /// The subject public key info (DER: algorithm and key), which a private key must match.
    pub public_key: Vec<u8>,
    /// Basic constraints say CA.
    pub is_ca: bool,
    /// DNS names and IP addresses in the subject alternative names.
    pub names: Vec<String>,
    /// The whole certificate, DER.
    pub der: Vec<u8>,
}

impl CertInfo {
    /// When the certificate was made (`notBefore` + [`BACKDATE`]).
    pub fn issued_at(&self) -> SystemTime {
        self.not_before + BACKDATE
    }

    /// The point two thirds into its life, when it is renewed. Its life starts when it
    /// was made, not at the back-dated `notBefore`: counted from there, a certificate
    /// valid for less than twice [`BACKDATE`] would be due for renewal the moment it was
    /// made, and renewed again and again.
    pub fn renew_at(&self) -> SystemTime {
        let issued = self.issued_at().min(self.not_after);
        let life = self.not_after.duration_since(issued).unwrap_or_default();
        issued + life * 2 / 3
    }

    /// True when `self` names `ca` as its issuer.
    pub fn issued_by(&self, ca: &CertInfo) -> bool {
        self.issuer == ca.subject
    }
}

/// Why certificate text could not be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MaterialError {
    /// No PEM certificate in the text.
    #[error("{0} holds no PEM certificate")]
    NoCertificate(&'static str),
    /// A PEM block is not an X.509 certificate.
    #[error("{what} is not a valid X.509 certificate: {reason}")]
    BadCertificate {
        /// What was read (a Secret key, a file, a flag).
        what: &'static str,
        /// The parser's complaint.
        reason: String,
    },
    /// The private key does not parse or does not belong to the certificate.
    #[error("{0}: the private key does not belong to the certificate")]
    KeyMismatch(&'static str),
}

/// The time `seconds` after the Unix epoch (before it when negative): X.509 times have
/// second precision.
pub fn from_unix_seconds(seconds: i64) -> SystemTime {
    if seconds >= 0 {
        UNIX_EPOCH + Duration::from_secs(seconds.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_secs(seconds.unsigned_abs())
    }
}

/// Whole seconds since the Unix epoch (negative before it), saturating.
pub fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// Parses every certificate in PEM text (`what` names it in errors); other PEM blocks
/// (a private key beside the certificate) are passed over.
pub fn parse_certificates(what: &'static str, pem: &[u8]) -> Result<Vec<CertInfo>, MaterialError> {
    let mut out = Vec::new();
    for block in Pem::iter_from_buffer(pem) {
        let block = block.map_err(|e| MaterialError::BadCertificate {
            what,
            reason: e.to_string(),
        })?;
        if block.label == "CERTIFICATE" {
            out.push(parse_der(what, &block.contents)?);
        }
    }
    if out.is_empty() {
        return Err(MaterialError::NoCertificate(what));
    }
    Ok(out)
}

/// Parses one DER certificate (`what` names it in errors).
pub fn parse_der(what: &'static str, der: &[u8]) -> Result<CertInfo, MaterialError> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|e| MaterialError::BadCertificate {
            what,
            reason: e.to_string(),
        })?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(dns) => names.push((*dns).to_owned()),
                GeneralName::IPAddress(ip) => {
                    if let Ok(v4) = <[u8; 4]>::try_from(*ip) {
                        names.push(IpAddr::from(v4).to_string());
                    } else if let Ok(v6) = <[u8; 16]>::try_from(*ip) {
                        names.push(IpAddr::from(v6).to_string());
                    }
                }
                _ => {}
            }
        }
    }
    Ok(CertInfo {
        not_before: from_unix_seconds(cert.validity().not_before.timestamp()),
        not_after: from_unix_seconds(cert.validity().not_after.timestamp()),
        subject: cert.subject().as_raw().to_vec(),
        issuer: cert.issuer().as_raw().to_vec(),
        public_key: cert.public_key().raw.to_vec(),
        is_ca: cert.is_ca(),
        names,
        der: der.to_vec(),
    })
}

/// Parses a certificate (the first in `cert_pem`) and checks that `key_pem` is its
/// private key.
pub fn parse_pair(
    what: &'static str,
    cert_pem: &[u8],
    key_pem: &[u8],
    crypto: &impl Crypto,
) -> Result<CertInfo, MaterialError> {
    let cert = parse_certificates(what, cert_pem)?
        .into_iter()
        .next()
        .ok_or(MaterialError::NoCertificate(what))?;
    if crypto.key_matches(&cert, key_pem) {
        Ok(cert)
    } else {
        Err(MaterialError::KeyMismatch(what))
    }
}

/// Encodes DER as a PEM certificate.
pub fn pem_certificate(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// Splits certificate names into DNS names and IP addresses (an IP host, as in
/// `https://192.0.2.7:8443`, must be an IP SAN: the API server checks it against those only).
pub fn split_names(names: &[String]) -> (Vec<String>, Vec<IpAddr>) {
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    for name in names {
        match name.parse::<IpAddr>() {
            Ok(ip) => ips.push(ip),
            Err(_) => dns.push(name.clone()),
        }
    }
    (dns, ips)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_seconds_round_trip_on_both_sides_of_the_epoch() {
        for seconds in [0, 1, 1_800_000_000, -86_400] {
            assert_eq!(unix_seconds(from_unix_seconds(seconds)), seconds);
        }
        assert_eq!(from_unix_seconds(-1), UNIX_EPOCH - Duration::from_secs(1));
    }

    #[test]
    fn text_without_a_certificate_is_refused_naming_it() {
        assert_eq!(
            parse_certificates("ca.crt", b"not a certificate"),
            Err(MaterialError::NoCertificate("ca.crt"))
        );
        let junk = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let err = parse_certificates("tls.crt", junk.as_bytes()).unwrap_err();
        assert!(
            matches!(
                err,
                MaterialError::BadCertificate {
                    what: "tls.crt",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn renewal_falls_two_thirds_after_a_certificate_was_made_whatever_its_back_dating() {
        let made = from_unix_seconds(1_800_000_000);
        let cert = |validity: u64| CertInfo {
            not_before: made - BACKDATE,
            not_after: made + Duration::from_secs(validity),
            subject: Vec::new(),
            issuer: Vec::new(),
            public_key: Vec::new(),
            is_ca: false,
            names: Vec::new(),
            der: Vec::new(),
        };
        for (validity, renew_after) in [
            // Shorter than the back-dating: counted from notBefore it was due at once.
            (30, 20),
            (60, 40),
            (3 * 3600, 2 * 3600),
            (365 * 86_400, 2 * 365 * 86_400 / 3),
        ] {
            let renew_at = cert(validity).renew_at();
            assert_eq!(
                renew_at,
                made + Duration::from_secs(renew_after),
                "{validity}s"
            );
        }
        // Made after it expired (a cap in the past): due at once, never before notAfter.
        let expired = CertInfo {
            not_after: made - Duration::from_secs(1),
            ..cert(30)
        };
        assert_eq!(expired.renew_at(), expired.not_after);
    }

    #[test]
    fn pem_lines_are_64_characters() {
        let pem = pem_certificate(&[7u8; 100]);
        let lines: Vec<&str> = pem.lines().collect();
        assert_eq!(lines[0], "-----BEGIN CERTIFICATE-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines.last(), Some(&"-----END CERTIFICATE-----"));
    }

    #[test]
    fn names_split_into_dns_and_ip() {
        let names: Vec<String> = ["192.0.2.7", "fd00::1", "homestead.homestead.svc"]
            .map(String::from)
            .into();
        let (dns, ips) = split_names(&names);
        assert_eq!(dns, ["homestead.homestead.svc"]);
        assert_eq!(
            ips,
            [
                "192.0.2.7".parse::<IpAddr>().unwrap(),
                "fd00::1".parse().unwrap()
            ]
        );
    }
}
