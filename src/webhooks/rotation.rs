//! When to make, renew and rotate the webhook certificates (`self` mode) — pure: it reads
//! the Secret's contents and the time it is given and says what to do next. No I/O, no
//! clock, no key generation (that is [`super::material`]).
//!
//! The Secret holds a *trust bundle* (`ca.crt`, what goes into `caBundle`), the *signer*
//! CA that issues serving certificates (`signer.crt`/`signer.key`), while a CA rotation is
//! under way the *next* CA (`next.crt`/`next.key`), and the serving pair
//! (`tls.crt`/`tls.key`) every replica serves from.
//!
//! A CA is replaced with overlap so the API server never sees a certificate it does not
//! trust:
//! 1. two thirds into the signer's life a next CA is made and **added** to the bundle;
//! 2. once the bundle with both CAs is published in the webhook configurations and has
//!    had [`Policy::overlap`] to reach every API server, the next CA **becomes the
//!    signer** and the serving certificate is re-issued by it (replicas still serving the
//!    old one are trusted through the old CA);
//! 3. once the new serving certificate has had [`Policy::overlap`] to reach every replica
//!    through the Secret volume, the **old CA is dropped** from the bundle.
//!
//! Serving certificates are renewed two thirds into their life, and never outlive their
//! signer.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use thiserror::Error;
use x509_parser::extensions::GeneralName;
use x509_parser::pem::Pem;

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

/// Certificates are valid from this long before they are made (clock skew between hosts);
/// the time a certificate was made is its `notBefore` plus this.
pub const BACKDATE: Duration = crate::certs::BACKDATE;

/// Lifetimes and the propagation allowance of the rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Lifetime of a CA.
    pub ca_validity: Duration,
    /// Lifetime of a serving certificate (capped at its signer's expiry).
    pub cert_validity: Duration,
    /// How long a change takes to reach every API server (webhook configuration) and every
    /// replica (Secret volume) before the next step may rely on it.
    pub overlap: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            ca_validity: Duration::from_secs(365 * 24 * 3600),
            cert_validity: Duration::from_secs(30 * 24 * 3600),
            overlap: Duration::from_secs(5 * 60),
        }
    }
}

/// Why a policy cannot work.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PolicyError {
    /// A CA rotation needs a third of the CA's life for two overlaps and a serving certificate.
    #[error(
        "CA validity {ca:?} is too short: a third of it must exceed twice the overlap ({overlap:?}) so a rotation can finish"
    )]
    CaTooShort {
        /// CA validity.
        ca: Duration,
        /// Overlap.
        overlap: Duration,
    },
    /// A serving certificate must live longer than the overlap.
    #[error(
        "certificate validity {cert:?} is too short: a third of it must exceed the overlap ({overlap:?})"
    )]
    CertTooShort {
        /// Certificate validity.
        cert: Duration,
        /// Overlap.
        overlap: Duration,
    },
}

impl Policy {
    /// Checks that a rotation can complete within the lifetimes.
    pub fn check(&self) -> Result<(), PolicyError> {
        if self.ca_validity / 3 <= self.overlap * 2 {
            return Err(PolicyError::CaTooShort {
                ca: self.ca_validity,
                overlap: self.overlap,
            });
        }
        if self.cert_validity / 3 <= self.overlap {
            return Err(PolicyError::CertTooShort {
                cert: self.cert_validity,
                overlap: self.overlap,
            });
        }
        Ok(())
    }
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
    /// The subject public key bits.
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

    /// The point two thirds into its life, when it is renewed.
    pub fn renew_at(&self) -> SystemTime {
        let life = self
            .not_after
            .duration_since(self.not_before)
            .unwrap_or_default();
        self.not_before + life * 2 / 3
    }

    /// True when `self` names `ca` as its issuer.
    pub fn issued_by(&self, ca: &CertInfo) -> bool {
        self.issuer == ca.subject
    }
}

/// Why certificate text could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MaterialError {
    /// No PEM certificate in the text.
    #[error("{0} holds no PEM certificate")]
    NoCertificate(&'static str),
    /// A PEM block is not an X.509 certificate.
    #[error("{what} is not a valid X.509 certificate: {reason}")]
    BadCertificate {
        /// Which Secret key.
        what: &'static str,
        /// The parser's complaint.
        reason: String,
    },
    /// The private key does not parse or does not belong to the certificate.
    #[error("{0} is not the private key of its certificate")]
    KeyMismatch(&'static str),
}

fn system_time(seconds: i64) -> SystemTime {
    if seconds >= 0 {
        UNIX_EPOCH + Duration::from_secs(seconds.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_secs(seconds.unsigned_abs())
    }
}

/// Parses every certificate in PEM text (`what` names it in errors).
pub fn parse_certificates(what: &'static str, pem: &[u8]) -> Result<Vec<CertInfo>, MaterialError> {
    let mut out = Vec::new();
    for block in Pem::iter_from_buffer(pem) {
        let block = block.map_err(|e| MaterialError::BadCertificate {
            what,
            reason: e.to_string(),
        })?;
        if block.label != "CERTIFICATE" {
            continue;
        }
        let cert = block
            .parse_x509()
            .map_err(|e| MaterialError::BadCertificate {
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
                            names.push(std::net::IpAddr::from(v4).to_string());
                        } else if let Ok(v6) = <[u8; 16]>::try_from(*ip) {
                            names.push(std::net::IpAddr::from(v6).to_string());
                        }
                    }
                    _ => {}
                }
            }
        }
        out.push(CertInfo {
            not_before: system_time(cert.validity().not_before.timestamp()),
            not_after: system_time(cert.validity().not_after.timestamp()),
            subject: cert.subject().as_raw().to_vec(),
            issuer: cert.issuer().as_raw().to_vec(),
            public_key: cert.public_key().subject_public_key.data.to_vec(),
            is_ca: cert.is_ca(),
            names,
            der: block.contents.clone(),
        });
    }
    if out.is_empty() {
        return Err(MaterialError::NoCertificate(what));
    }
    Ok(out)
}

/// Parses a certificate and checks that `key_pem` is its private key.
pub fn parse_pair(
    what: &'static str,
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<CertInfo, MaterialError> {
    let cert = parse_certificates(what, cert_pem)?
        .into_iter()
        .next()
        .ok_or(MaterialError::NoCertificate(what))?;
    let key = std::str::from_utf8(key_pem)
        .ok()
        .and_then(|k| rcgen::KeyPair::from_pem(k).ok())
        .ok_or(MaterialError::KeyMismatch(what))?;
    if key.public_key_raw() != cert.public_key.as_slice() {
        return Err(MaterialError::KeyMismatch(what));
    }
    Ok(cert)
}

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
    /// Reads Secret data (`None`: there is no Secret).
    pub fn from_secret(data: Option<&BTreeMap<String, Vec<u8>>>) -> Self {
        let mut observed = Observed::default();
        let Some(data) = data else {
            return observed;
        };
        let get = |key: &str| data.get(key).map(Vec::as_slice);
        let mut pair =
            |what: &'static str, cert: &str, key: &str, ca: bool| match (get(cert), get(key)) {
                (None, None) => None,
                (Some(c), Some(k)) => match parse_pair(what, c, k) {
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

    fn in_bundle(&self, cert: &CertInfo) -> bool {
        self.bundle.iter().any(|b| b.der == cert.der)
    }
}

/// One change to the Secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Start over: a new CA (the whole bundle) and a serving certificate signed by it.
    Create,
    /// A new serving certificate from the current signer.
    RenewServing,
    /// A new next CA, added to the bundle beside the signer.
    AddCa,
    /// The next CA becomes the signer and issues a new serving certificate.
    SwitchSigner,
    /// The bundle keeps only the signer (and the next CA if any).
    DropRetiredCas,
}

/// What to do now, and when to look again if nothing else happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The change to make now (`None`: keep the Secret as it is).
    pub step: Option<Step>,
    /// Why, for the log.
    pub reason: String,
    /// When the plan may change by the passing of time alone.
    pub recheck_at: SystemTime,
}

fn act(step: Step, reason: impl Into<String>, now: SystemTime) -> Plan {
    Plan {
        step: Some(step),
        reason: reason.into(),
        recheck_at: now,
    }
}

fn same_names(have: &[String], want: &[String]) -> bool {
    let mut a: Vec<&str> = have.iter().map(String::as_str).collect();
    let mut b: Vec<&str> = want.iter().map(String::as_str).collect();
    a.sort_unstable();
    a.dedup();
    b.sort_unstable();
    b.dedup();
    a == b
}

/// Decides the next change to the Secret. `names` are the DNS names/IPs the serving
/// certificate must carry; `published` is true when both webhook configurations carry
/// exactly the Secret's current bundle.
pub fn plan(
    observed: &Observed,
    names: &[String],
    published: bool,
    now: SystemTime,
    policy: &Policy,
) -> Plan {
    let Some(signer) = observed.signer.as_ref() else {
        return act(Step::Create, "there is no usable signing CA", now);
    };
    if signer.not_after <= now {
        return act(Step::Create, "the signing CA has expired", now);
    }
    if !observed.in_bundle(signer) {
        return act(
            Step::Create,
            "the trust bundle does not hold the signing CA",
            now,
        );
    }

    // The serving certificate must always be one the bundle trusts.
    let serving_problem = match observed.serving.as_ref() {
        None => Some("there is no usable serving certificate"),
        Some(s) if s.not_after <= now => Some("the serving certificate has expired"),
        Some(s) if !observed.bundle.iter().any(|ca| s.issued_by(ca)) => {
            Some("the serving certificate is not issued by a trusted CA")
        }
        Some(s) if !same_names(&s.names, names) => {
            Some("the serving certificate names other hosts")
        }
        Some(_) => None,
    };
    if let Some(reason) = serving_problem {
        return act(Step::RenewServing, reason, now);
    }
    let Some(serving) = observed.serving.as_ref() else {
        return act(Step::RenewServing, "there is no serving certificate", now);
    };

    let mut recheck = Vec::new();

    // A rotation under way: switch once the bundle with the next CA has settled.
    if let Some(next) = observed.next.as_ref() {
        if !observed.in_bundle(next) || next.not_after <= now {
            return act(
                Step::AddCa,
                "the next CA is not in the trust bundle; making it again",
                now,
            );
        }
        let switch_at = next.issued_at() + policy.overlap;
        if published && now >= switch_at {
            return act(
                Step::SwitchSigner,
                "the next CA has been trusted long enough to sign",
                now,
            );
        }
        recheck.push(if published {
            switch_at
        } else {
            now + policy.overlap / 10
        });
    } else if now >= signer.renew_at() {
        return act(
            Step::AddCa,
            "the signing CA is two thirds through its life",
            now,
        );
    } else {
        recheck.push(signer.renew_at());
    }

    if !serving.issued_by(signer) {
        // Still signed by a CA being retired: re-issue by the signer.
        return act(
            Step::RenewServing,
            "the serving certificate is not issued by the signing CA",
            now,
        );
    }
    if now >= serving.renew_at() {
        return act(
            Step::RenewServing,
            "the serving certificate is two thirds through its life",
            now,
        );
    }
    recheck.push(serving.renew_at());

    // CAs no longer signing leave the bundle once every replica serves the new certificate.
    let keep = |ca: &CertInfo| {
        ca.der == signer.der || observed.next.as_ref().is_some_and(|n| n.der == ca.der)
    };
    let retired: Vec<&CertInfo> = observed.bundle.iter().filter(|ca| !keep(ca)).collect();
    let duplicate = observed.bundle.len()
        != observed
            .bundle
            .iter()
            .enumerate()
            .filter(|(i, ca)| !observed.bundle[..*i].iter().any(|b| b.der == ca.der))
            .count();
    if duplicate {
        return act(
            Step::DropRetiredCas,
            "the trust bundle holds a CA twice",
            now,
        );
    }
    if !retired.is_empty() {
        if retired.iter().any(|ca| ca.not_after <= now) {
            return act(Step::DropRetiredCas, "a retired CA has expired", now);
        }
        let drop_at = serving.issued_at() + policy.overlap;
        if published && now >= drop_at {
            return act(
                Step::DropRetiredCas,
                "every replica has had time to load the new serving certificate",
                now,
            );
        }
        recheck.push(if published {
            drop_at
        } else {
            now + policy.overlap / 10
        });
        recheck.extend(retired.iter().map(|ca| ca.not_after));
    }

    Plan {
        step: None,
        reason: "certificates are current".into(),
        recheck_at: recheck.into_iter().min().unwrap_or(now + policy.overlap),
    }
}

#[cfg(test)]
mod tests {
    use super::super::material::{self, Material, Pair};
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);
    const DAY: Duration = Duration::from_secs(24 * 3600);

    fn policy() -> Policy {
        Policy {
            ca_validity: 30 * DAY,
            cert_validity: 3 * DAY,
            overlap: HOUR,
        }
    }

    fn names() -> Vec<String> {
        vec!["homestead.homestead.svc".into(), "homestead".into()]
    }

    fn start() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000)
    }

    /// Plans and applies steps until the plan keeps; returns the steps taken.
    fn settle(
        data: &mut Option<BTreeMap<String, Vec<u8>>>,
        names: &[String],
        published: bool,
        now: SystemTime,
    ) -> (Vec<Step>, Plan) {
        let mut steps = Vec::new();
        for _ in 0..6 {
            let observed = Observed::from_secret(data.as_ref());
            let plan = plan(&observed, names, published, now, &policy());
            let Some(step) = plan.step else {
                return (steps, plan);
            };
            let current = data
                .as_ref()
                .map(|d| Material::from_secret(d, &observed))
                .unwrap_or_default();
            let next =
                material::apply(step, &current, &observed, names, now, &policy()).expect("apply");
            *data = Some(next.to_secret_data());
            steps.push(step);
        }
        panic!("did not settle: {steps:?}");
    }

    fn fresh() -> BTreeMap<String, Vec<u8>> {
        let mut data = None;
        let (steps, _) = settle(&mut data, &names(), true, start());
        assert_eq!(steps, [Step::Create]);
        data.expect("data")
    }

    fn observed(data: &BTreeMap<String, Vec<u8>>) -> Observed {
        Observed::from_secret(Some(data))
    }

    #[test]
    fn policy_must_leave_room_for_a_rotation() {
        assert!(Policy::default().check().is_ok());
        assert!(policy().check().is_ok());
        let short_ca = Policy {
            ca_validity: 5 * HOUR,
            ..policy()
        };
        assert!(matches!(
            short_ca.check(),
            Err(PolicyError::CaTooShort { .. })
        ));
        let short_cert = Policy {
            cert_validity: 2 * HOUR,
            ..policy()
        };
        assert!(matches!(
            short_cert.check(),
            Err(PolicyError::CertTooShort { .. })
        ));
    }

    #[test]
    fn nothing_is_created_and_then_kept() {
        let data = fresh();
        let o = observed(&data);
        assert!(o.problems.is_empty(), "{:?}", o.problems);
        let signer = o.signer.as_ref().expect("signer");
        let serving = o.serving.as_ref().expect("serving");
        assert!(signer.is_ca && !serving.is_ca);
        assert!(serving.issued_by(signer));
        assert_eq!(o.bundle, vec![signer.clone()]);
        assert!(same_names(&serving.names, &names()));
        assert!(o.next.is_none());
        let p = plan(&o, &names(), true, start() + HOUR, &policy());
        assert_eq!(p.step, None);
        // Next look: when the serving certificate is two thirds through its life.
        assert_eq!(p.recheck_at, serving.renew_at());
    }

    #[test]
    fn table_of_single_decisions() {
        let data = fresh();
        let o = observed(&data);
        let serving = o.serving.clone().expect("serving");
        let signer = o.signer.clone().expect("signer");
        let foreign = material::make_ca(start(), 30 * DAY).expect("ca");
        let foreign_serving =
            material::issue_serving(&foreign, &names(), start(), DAY).expect("serving");
        // The same CA with a serving certificate renewed just before the CA's renewal point.
        let mut aged = Some(data.clone());
        let (steps, _) = settle(&mut aged, &names(), true, signer.renew_at() - HOUR);
        assert_eq!(steps, [Step::RenewServing]);
        let aged = aged.expect("data");
        let with = |changes: &[(&str, Option<&[u8]>)]| {
            let mut d = data.clone();
            for (k, v) in changes {
                match v {
                    Some(v) => d.insert((*k).to_owned(), v.to_vec()),
                    None => d.remove(*k),
                };
            }
            d
        };
        type Case = (
            &'static str,
            BTreeMap<String, Vec<u8>>,
            Vec<String>,
            SystemTime,
            Option<Step>,
        );
        let cases: Vec<Case> = vec![
            ("current", data.clone(), names(), start() + HOUR, None),
            (
                "serving young",
                data.clone(),
                names(),
                serving.renew_at() - HOUR,
                None,
            ),
            (
                "serving two thirds",
                data.clone(),
                names(),
                serving.renew_at(),
                Some(Step::RenewServing),
            ),
            (
                "serving expired",
                data.clone(),
                names(),
                serving.not_after,
                Some(Step::RenewServing),
            ),
            (
                "names changed",
                data.clone(),
                vec!["other.svc".into()],
                start() + HOUR,
                Some(Step::RenewServing),
            ),
            (
                "serving missing",
                with(&[(KEY_TLS_CERT, None), (KEY_TLS_KEY, None)]),
                names(),
                start() + HOUR,
                Some(Step::RenewServing),
            ),
            (
                "serving key is not its key",
                with(&[(KEY_TLS_KEY, Some(foreign_serving.key_pem.as_bytes()))]),
                names(),
                start() + HOUR,
                Some(Step::RenewServing),
            ),
            (
                "serving from a foreign CA",
                with(&[
                    (KEY_TLS_CERT, Some(foreign_serving.cert_pem.as_bytes())),
                    (KEY_TLS_KEY, Some(foreign_serving.key_pem.as_bytes())),
                ]),
                names(),
                start() + HOUR,
                Some(Step::RenewServing),
            ),
            (
                "signer two thirds",
                aged.clone(),
                names(),
                signer.renew_at(),
                Some(Step::AddCa),
            ),
            (
                "signer two thirds, serving expired first",
                data.clone(),
                names(),
                signer.renew_at(),
                Some(Step::RenewServing),
            ),
            (
                "signer expired",
                data.clone(),
                names(),
                signer.not_after,
                Some(Step::Create),
            ),
            (
                "signer missing",
                with(&[(KEY_SIGNER_CERT, None), (KEY_SIGNER_KEY, None)]),
                names(),
                start() + HOUR,
                Some(Step::Create),
            ),
            (
                "signer key missing",
                with(&[(KEY_SIGNER_KEY, None)]),
                names(),
                start() + HOUR,
                Some(Step::Create),
            ),
            (
                "signer is garbage",
                with(&[(KEY_SIGNER_CERT, Some(b"not a certificate"))]),
                names(),
                start() + HOUR,
                Some(Step::Create),
            ),
            (
                "bundle lost the signer",
                with(&[(KEY_CA_BUNDLE, Some(foreign.cert_pem.as_bytes()))]),
                names(),
                start() + HOUR,
                Some(Step::Create),
            ),
            (
                "bundle missing",
                with(&[(KEY_CA_BUNDLE, None)]),
                names(),
                start() + HOUR,
                Some(Step::Create),
            ),
            (
                "bundle has the signer twice",
                with(&[(
                    KEY_CA_BUNDLE,
                    Some(format!("{}{}", signer_pem(&data), signer_pem(&data)).as_bytes()),
                )]),
                names(),
                start() + HOUR,
                Some(Step::DropRetiredCas),
            ),
            (
                "bundle has an expired extra CA",
                with(&[(
                    KEY_CA_BUNDLE,
                    Some(format!("{}{}", signer_pem(&data), expired_ca()).as_bytes()),
                )]),
                names(),
                start() + HOUR,
                Some(Step::DropRetiredCas),
            ),
        ];
        for (name, data, want_names, now, want) in cases {
            let o = observed(&data);
            let p = plan(&o, &want_names, true, now, &policy());
            assert_eq!(p.step, want, "{name}: {}", p.reason);
            if want.is_none() {
                assert!(p.recheck_at > now, "{name}: recheck in the future");
            }
        }
    }

    fn signer_pem(data: &BTreeMap<String, Vec<u8>>) -> String {
        String::from_utf8(data[KEY_SIGNER_CERT].clone()).expect("utf8")
    }

    fn expired_ca() -> String {
        material::make_ca(start() - 40 * DAY, 30 * DAY)
            .expect("ca")
            .cert_pem
    }

    #[test]
    fn problems_name_what_is_wrong() {
        let mut data = fresh();
        data.insert(KEY_SIGNER_CERT.into(), b"junk".to_vec());
        let other = material::make_ca(start(), DAY).expect("ca");
        data.insert(KEY_TLS_KEY.into(), other.key_pem.into_bytes());
        let o = observed(&data);
        assert!(
            o.problems.iter().any(|p| p.contains("signer.crt")),
            "{:?}",
            o.problems
        );
        assert!(
            o.problems
                .iter()
                .any(|p| p.contains("tls.crt is not the private key")),
            "{:?}",
            o.problems
        );
    }

    /// Walks two CA lifetimes in half-hour ticks, publishing each pass, and checks at every
    /// tick that whatever a replica may still serve is trusted by the published bundle.
    #[test]
    fn rotation_keeps_every_served_certificate_trusted() {
        let mut data = Some(fresh());
        let mut now = start();
        let tick = Duration::from_secs(30 * 60);
        let mut all_steps = Vec::new();
        // Serving certificates handed out, with the time they were written.
        let mut served: Vec<(SystemTime, CertInfo)> = Vec::new();
        // Bundles published, with the time: an API server may still use any bundle
        // published less than an overlap ago, or the last one before that.
        let mut published: Vec<(SystemTime, Vec<CertInfo>)> =
            vec![(now, observed(data.as_ref().expect("data")).bundle)];
        served.push((
            now,
            observed(data.as_ref().expect("data"))
                .serving
                .expect("serving"),
        ));
        let end = start() + 2 * policy().ca_validity;
        let overlap = policy().overlap;
        while now < end {
            now += tick;
            let (steps, _) = settle(&mut data, &names(), true, now);
            let o = observed(data.as_ref().expect("data"));
            assert!(
                !steps.contains(&Step::Create),
                "no restart at {now:?}: {steps:?}"
            );
            assert!(o.bundle.len() <= 2, "bundle of {}", o.bundle.len());
            let serving = o.serving.clone().expect("serving");
            assert!(serving.not_after > now, "serving certificate expired");
            if served.last().is_none_or(|(_, s)| s.der != serving.der) {
                served.push((now, serving.clone()));
            }
            if published.last().is_none_or(|(_, b)| *b != o.bundle) {
                published.push((now, o.bundle.clone()));
            }
            let in_use = |history: &[(SystemTime, Vec<CertInfo>)]| -> Vec<usize> {
                (0..history.len())
                    .filter(|&i| history.get(i + 1).is_none_or(|(t, _)| now < *t + overlap))
                    .collect()
            };
            let bundles = in_use(&published);
            for (i, (_, cert)) in served.iter().enumerate() {
                let maybe_served = served.get(i + 1).is_none_or(|(t, _)| now < *t + overlap);
                if !maybe_served || cert.not_after <= now {
                    continue;
                }
                for &b in &bundles {
                    assert!(
                        published[b]
                            .1
                            .iter()
                            .any(|ca| cert.issued_by(ca) && ca.not_after > now),
                        "a served certificate is not trusted by a bundle in use at {now:?} after {all_steps:?}"
                    );
                }
            }
            all_steps.extend(steps);
        }
        let count = |s: Step| all_steps.iter().filter(|x| **x == s).count();
        assert!(count(Step::AddCa) >= 2, "{all_steps:?}");
        // The walk may end between adding a CA and switching to it.
        assert!(
            (0..=1).contains(&(count(Step::AddCa) - count(Step::SwitchSigner))),
            "{all_steps:?}"
        );
        assert!(count(Step::DropRetiredCas) >= count(Step::SwitchSigner) - 1);
        assert!(count(Step::RenewServing) >= 10);
        // Each rotation runs in order: add, switch, drop.
        let rotation: Vec<Step> = all_steps
            .iter()
            .copied()
            .filter(|s| *s != Step::RenewServing)
            .collect();
        for w in rotation.windows(2) {
            match w[0] {
                Step::AddCa => assert_eq!(w[1], Step::SwitchSigner, "{rotation:?}"),
                Step::SwitchSigner => assert_eq!(w[1], Step::DropRetiredCas, "{rotation:?}"),
                Step::DropRetiredCas => assert_eq!(w[1], Step::AddCa, "{rotation:?}"),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn unpublished_bundle_holds_the_switch_and_the_drop() {
        let data = fresh();
        let signer = observed(&data).signer.expect("signer");
        let mut data = Some(data);
        let at = signer.renew_at();
        let (steps, _) = settle(&mut data, &names(), true, at);
        // (The 3-day serving certificate has expired by then and is renewed first.)
        assert_eq!(steps, [Step::RenewServing, Step::AddCa]);
        // Long after the overlap, but the bundle with the next CA never got published.
        let later = at + 10 * policy().overlap;
        let (steps, plan_) = settle(&mut data, &names(), false, later);
        assert_eq!(steps, Vec::<Step>::new());
        assert!(plan_.recheck_at > later && plan_.recheck_at < later + policy().overlap);
        let (steps, _) = settle(&mut data, &names(), true, later);
        assert_eq!(steps, [Step::SwitchSigner]);
        let o = observed(data.as_ref().expect("data"));
        assert_eq!(o.bundle.len(), 2);
        assert!(
            o.serving
                .expect("serving")
                .issued_by(o.signer.as_ref().expect("signer"))
        );
        // The old CA stays until replicas have had the overlap to load the new certificate.
        let (steps, _) = settle(&mut data, &names(), true, later + policy().overlap / 2);
        assert_eq!(steps, Vec::<Step>::new());
        let (steps, _) = settle(&mut data, &names(), false, later + 2 * policy().overlap);
        assert_eq!(steps, Vec::<Step>::new());
        let (steps, _) = settle(&mut data, &names(), true, later + 2 * policy().overlap);
        assert_eq!(steps, [Step::DropRetiredCas]);
        assert_eq!(observed(data.as_ref().expect("data")).bundle.len(), 1);
    }

    #[test]
    fn serving_never_outlives_its_signer() {
        let ca: Pair = material::make_ca(start(), 2 * DAY).expect("ca");
        let ca_end = parse_certificates("ca", ca.cert_pem.as_bytes()).expect("ca")[0].not_after;
        let s = material::issue_serving(&ca, &names(), start() + DAY, 30 * DAY).expect("serving");
        let s = parse_pair("tls", s.cert_pem.as_bytes(), s.key_pem.as_bytes()).expect("pair");
        assert_eq!(s.not_after, ca_end);
    }
}
