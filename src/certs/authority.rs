//! The private certificate authority (ECDSA P-256, rcgen) that issues serving
//! certificates, as PEM text. The CA is kept separate from the serving certificate so the
//! serving pair can be re-issued (rotated) while the API server keeps trusting the same
//! `caBundle`.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType,
};
use time::OffsetDateTime;

use super::files::{CA_CERT_FILE, CA_KEY_FILE};
use super::{BACKDATE, CertError, Pair, Ring};
use homestead_core::certs::{parse_der, parse_pair, unix_seconds};

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
        let not_after = parse_der(CA_CERT_FILE, cert.der())?.not_after;
        let key_pem = key.serialize_pem();
        Ok(Self {
            cert_pem: cert.pem(),
            key_pem,
            not_after,
            issuer: Issuer::new(params, key),
        })
    }

    /// Loads a CA from its PEM certificate and PEM private key (PKCS#8), checking that the
    /// key is the certificate's.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, CertError> {
        let key = KeyPair::from_pem(key_pem).map_err(CertError::CaKey)?;
        let cert = parse_pair(CA_KEY_FILE, cert_pem.as_bytes(), key_pem.as_bytes(), &Ring)?;
        let issuer = Issuer::from_ca_cert_der(&cert.der.as_slice().into(), key)
            .map_err(CertError::CaCert)?;
        Ok(Self {
            cert_pem: cert_pem.to_owned(),
            key_pem: key_pem.to_owned(),
            not_after: cert.not_after,
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

#[cfg(test)]
mod tests {
    use super::*;
    use homestead_core::certs::{MaterialError, parse_certificates};
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    use std::time::UNIX_EPOCH;

    /// When the first certificate in `pem` expires.
    fn not_after(pem: &[u8]) -> Result<SystemTime, MaterialError> {
        Ok(parse_certificates("certificate", pem)?[0].not_after)
    }

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
            Err(CertError::Certificate(MaterialError::KeyMismatch(
                CA_KEY_FILE
            )))
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
}
