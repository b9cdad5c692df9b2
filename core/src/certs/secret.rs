//! The webhook certificate Secret (`self` mode): its keys, what it holds as far as the
//! rotation is concerned ([`Observed`]) and its contents as text ([`Material`]).
//!
//! The Secret holds a *trust bundle* (`ca.crt`, what goes into `caBundle`), the *signer*
//! CA that issues serving certificates (`signer.crt`/`signer.key`), while a CA rotation is
//! under way the *next* CA (`next.crt`/`next.key`), and the serving pair
//! (`tls.crt`/`tls.key`) every replica serves from.

use std::collections::BTreeMap;

use super::{CertInfo, Crypto, Pair, parse_certificates, parse_pair, pem_certificate};

/// Secret key of the serving certificate.
pub const KEY_TLS_CERT: &str = "tls.crt";
/// Secret key of the serving private key.
pub const KEY_TLS_KEY: &str = "tls.key";
/// Secret key of the trust bundle (PEM, one or two CA certificates).
pub const KEY_CA_BUNDLE: &str = "ca.crt";
/// Secret key of the CA that signs serving certificates.
pub const KEY_SIGNER_CERT: &str = "signer.crt";
/// Secret key of the signer's private key.
pub const KEY_SIGNER_KEY: &str = "signer.key";
/// Secret key of the CA that will become the signer (only during a rotation).
pub const KEY_NEXT_CERT: &str = "next.crt";
/// Secret key of the next CA's private key.
pub const KEY_NEXT_KEY: &str = "next.key";

/// The Secret's contents as far as rotation is concerned; anything unreadable is absent
/// and listed in `problems`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// The signing CA (certificate that is a CA, with its key).
    pub signer: Option<CertInfo>,
    /// The next CA during a rotation.
    pub next: Option<CertInfo>,
    /// The serving certificate (with its key).
    pub serving: Option<CertInfo>,
    /// The trust bundle.
    pub bundle: Vec<CertInfo>,
    /// What could not be used, for the log.
    pub problems: Vec<String>,
}

impl Observed {
    /// Reads Secret data (`None`: there is no Secret); `crypto` tells whether each private
    /// key belongs to its certificate.
    pub fn from_secret(data: Option<&BTreeMap<String, Vec<u8>>>, crypto: &impl Crypto) -> Self {
        let mut observed = Observed::default();
        let Some(data) = data else {
            return observed;
        };
        let get = |key: &str| data.get(key).map(Vec::as_slice);
        let mut pair =
            |what: &'static str, cert: &str, key: &str, ca: bool| match (get(cert), get(key)) {
                (None, None) => None,
                (Some(c), Some(k)) => match parse_pair(what, c, k, crypto) {
                    Ok(info) if info.is_ca == ca => Some(info),
                    Ok(_) => {
                        observed.problems.push(format!(
                            "{what} {} a CA certificate",
                            if ca { "is not" } else { "is" }
                        ));
                        None
                    }
                    Err(e) => {
                        observed.problems.push(e.to_string());
                        None
                    }
                },
                _ => {
                    observed
                        .problems
                        .push(format!("{cert} and {key} must both be present"));
                    None
                }
            };
        let signer = pair(KEY_SIGNER_CERT, KEY_SIGNER_CERT, KEY_SIGNER_KEY, true);
        let next = pair(KEY_NEXT_CERT, KEY_NEXT_CERT, KEY_NEXT_KEY, true);
        let serving = pair(KEY_TLS_CERT, KEY_TLS_CERT, KEY_TLS_KEY, false);
        observed.signer = signer;
        observed.next = next;
        observed.serving = serving;
        match get(KEY_CA_BUNDLE).map(|b| parse_certificates(KEY_CA_BUNDLE, b)) {
            Some(Ok(bundle)) => observed.bundle = bundle,
            Some(Err(e)) => observed.problems.push(e.to_string()),
            None => {}
        }
        observed
    }

    /// True when the trust bundle holds `cert`.
    pub fn in_bundle(&self, cert: &CertInfo) -> bool {
        self.bundle.iter().any(|b| b.der == cert.der)
    }
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
