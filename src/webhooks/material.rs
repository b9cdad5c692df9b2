//! Carries out a rotation [`Step`]: makes CAs and serving certificates (with
//! [`crate::certs`], at the time it is given) and gives the new Secret data. No I/O; the
//! time is passed in so tests can move it.

use std::collections::BTreeMap;
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

/// Issues a serving certificate for the DNS `names` from `ca`, valid from `now` for
/// `validity` but never past the CA's own expiry.
pub fn issue_serving(
    ca: &Pair,
    names: &[String],
    now: SystemTime,
    validity: Duration,
) -> Result<Pair, IssueError> {
    let ca = CertificateAuthority::from_pem(&ca.cert_pem, &ca.key_pem)?;
    let serving = ca.issue_serving_at(names, &[], now, validity)?;
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
