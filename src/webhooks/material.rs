//! Carries out a rotation [`Step`]: makes CAs and serving certificates (with
//! [`crate::certs`], at the time it is given) and gives the new Secret data. No I/O; the
//! time is passed in so tests can move it.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use base64::Engine;
use thiserror::Error;

use crate::certs::{CertError, CertificateAuthority};

use super::rotation::{
    KEY_CA_BUNDLE, KEY_NEXT_CERT, KEY_NEXT_KEY, KEY_SIGNER_CERT, KEY_SIGNER_KEY, KEY_TLS_CERT,
    KEY_TLS_KEY, Observed, Policy, Step,
};

/// A certificate and its private key, PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    /// Certificate PEM.
    pub cert_pem: String,
    /// Private key PEM (PKCS#8).
    pub key_pem: String,
}

/// Why certificates could not be made.
#[derive(Debug, Error)]
pub enum IssueError {
    /// A certificate could not be made (bad name, bad key, CA and key that do not match).
    #[error("cannot make a certificate: {0}")]
    Certificate(#[from] CertError),
    /// The step needs a CA the Secret does not hold.
    #[error("cannot {step:?}: the Secret holds no usable {missing}")]
    Missing {
        /// The step.
        step: Step,
        /// What is missing.
        missing: &'static str,
    },
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

/// Common name of the webhook CAs (each followed by a tag from its key).
const CA_NAME: &str = "homestead-webhook-ca";

/// Makes a CA valid from `now` (back-dated) for `validity`.
pub fn make_ca(now: SystemTime, validity: Duration) -> Result<Pair, IssueError> {
    let ca = CertificateAuthority::generate_at(CA_NAME, now, validity)?;
    Ok(Pair {
        cert_pem: ca.cert_pem().to_owned(),
        key_pem: ca.key_pem().to_owned(),
    })
}

/// Issues a serving certificate for `names` from `ca`, valid from `now` for `validity` but
/// never past the CA's own expiry. A name that is an IP address (the host of a
/// `--webhook-url` such as `https://192.0.2.7:8443`) becomes an IP SAN, the rest DNS
/// SANs: the API server checks an IP host against IP SANs only.
pub fn issue_serving(
    ca: &Pair,
    names: &[String],
    now: SystemTime,
    validity: Duration,
) -> Result<Pair, IssueError> {
    let (ips, dns_names): (Vec<_>, Vec<_>) = names
        .iter()
        .map(|name| name.parse::<IpAddr>().map_err(|_| name.clone()))
        .partition(Result::is_ok);
    let ips: Vec<IpAddr> = ips.into_iter().flatten().collect();
    let dns_names: Vec<String> = dns_names.into_iter().filter_map(Result::err).collect();
    let ca = CertificateAuthority::from_pem(&ca.cert_pem, &ca.key_pem)?;
    let serving = ca.issue_serving_at(&dns_names, &ips, now, validity)?;
    Ok(Pair {
        cert_pem: serving.cert_pem,
        key_pem: serving.key_pem,
    })
}

/// The Secret's certificate material as text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Material {
    /// Trust bundle: CA certificates, PEM each.
    pub bundle: Vec<String>,
    /// Signing CA.
    pub signer: Option<Pair>,
    /// Next CA during a rotation.
    pub next: Option<Pair>,
    /// Serving pair.
    pub serving: Option<Pair>,
}

impl Material {
    /// The usable material of a Secret, as [`Observed`] judged it.
    pub fn from_secret(data: &BTreeMap<String, Vec<u8>>, observed: &Observed) -> Self {
        let text = |key: &str| {
            data.get(key)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default()
        };
        let pair = |cert: &str, key: &str| Pair {
            cert_pem: text(cert),
            key_pem: text(key),
        };
        Material {
            bundle: observed
                .bundle
                .iter()
                .map(|c| pem_certificate(&c.der))
                .collect(),
            signer: observed
                .signer
                .as_ref()
                .map(|_| pair(KEY_SIGNER_CERT, KEY_SIGNER_KEY)),
            next: observed
                .next
                .as_ref()
                .map(|_| pair(KEY_NEXT_CERT, KEY_NEXT_KEY)),
            serving: observed
                .serving
                .as_ref()
                .map(|_| pair(KEY_TLS_CERT, KEY_TLS_KEY)),
        }
    }

    /// The trust bundle as one PEM text (what `caBundle` carries).
    pub fn bundle_pem(&self) -> String {
        self.bundle.concat()
    }

    /// Secret data.
    pub fn to_secret_data(&self) -> BTreeMap<String, Vec<u8>> {
        let mut data = BTreeMap::new();
        data.insert(KEY_CA_BUNDLE.to_owned(), self.bundle_pem().into_bytes());
        for (pair, cert, key) in [
            (&self.signer, KEY_SIGNER_CERT, KEY_SIGNER_KEY),
            (&self.next, KEY_NEXT_CERT, KEY_NEXT_KEY),
            (&self.serving, KEY_TLS_CERT, KEY_TLS_KEY),
        ] {
            if let Some(p) = pair {
                data.insert(cert.to_owned(), p.cert_pem.clone().into_bytes());
                data.insert(key.to_owned(), p.key_pem.clone().into_bytes());
            }
        }
        data
    }
}

/// Applies `step` to `material` (judged as `observed`) at `now`.
pub fn apply(
    step: Step,
    material: &Material,
    observed: &Observed,
    names: &[String],
    now: SystemTime,
    policy: &Policy,
) -> Result<Material, IssueError> {
    let missing = |missing| IssueError::Missing { step, missing };
    let mut out = material.clone();
    match step {
        Step::Create => {
            let ca = make_ca(now, policy.ca_validity)?;
            let serving = issue_serving(&ca, names, now, policy.cert_validity)?;
            out = Material {
                bundle: vec![ca.cert_pem.clone()],
                signer: Some(ca),
                next: None,
                serving: Some(serving),
            };
        }
        Step::RenewServing => {
            let signer = material
                .signer
                .as_ref()
                .filter(|_| observed.signer.is_some())
                .ok_or_else(|| missing("signing CA"))?;
            out.serving = Some(issue_serving(signer, names, now, policy.cert_validity)?);
        }
        Step::AddCa => {
            let next = make_ca(now, policy.ca_validity)?;
            // A next CA that was never trusted (or expired) is replaced, not kept beside.
            if let Some(old) = observed.next.as_ref() {
                let old_pem = pem_certificate(&old.der);
                out.bundle.retain(|b| *b != old_pem);
            }
            out.bundle.push(next.cert_pem.clone());
            out.next = Some(next);
        }
        Step::SwitchSigner => {
            let next = material
                .next
                .as_ref()
                .filter(|_| observed.next.is_some())
                .ok_or_else(|| missing("next CA"))?;
            out.serving = Some(issue_serving(next, names, now, policy.cert_validity)?);
            out.signer = Some(next.clone());
            out.next = None;
        }
        Step::DropRetiredCas => {
            let signer = observed
                .signer
                .as_ref()
                .ok_or_else(|| missing("signing CA"))?;
            let mut kept = vec![pem_certificate(&signer.der)];
            if let Some(next) = observed.next.as_ref() {
                kept.push(pem_certificate(&next.der));
            }
            out.bundle = kept;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhooks::rotation::parse_certificates;
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    use x509_parser::extensions::GeneralName;

    #[test]
    fn ip_hosts_become_ip_sans_and_read_back_as_asked() {
        let now = SystemTime::now();
        let ca = make_ca(now, Duration::from_secs(86_400)).expect("ca");
        let names: Vec<String> = ["192.0.2.7", "fd00::1", "homestead.homestead.svc"]
            .map(String::from)
            .into();
        let serving = issue_serving(&ca, &names, now, Duration::from_secs(3_600)).expect("serving");
        let der = CertificateDer::from_pem_slice(serving.cert_pem.as_bytes()).expect("pem");
        let (_, cert) = x509_parser::parse_x509_certificate(&der).expect("x509");
        let san = cert
            .subject_alternative_name()
            .expect("extension parses")
            .expect("has SANs");
        let (mut ips, mut dns) = (0, Vec::new());
        for name in &san.value.general_names {
            match name {
                GeneralName::IPAddress(_) => ips += 1,
                GeneralName::DNSName(d) => dns.push(*d),
                other => panic!("unexpected SAN {other:?}"),
            }
        }
        assert_eq!((ips, dns), (2, vec!["homestead.homestead.svc"]));
        // The rotation reads back exactly the names it asked for, so it does not renew
        // the certificate on every pass.
        let mut read = parse_certificates("tls", serving.cert_pem.as_bytes()).expect("parse")[0]
            .names
            .clone();
        read.sort();
        let mut want = names;
        want.sort();
        assert_eq!(read, want);
    }
}
