//! When to make, renew and rotate the webhook certificates (`self` mode), and how: the
//! planner reads the Secret ([`Observed`]) and the time it is given and says what to do
//! next ([`plan`]); [`apply`] carries a step out on the Secret's [`Material`] with the
//! shell's [`Crypto`]. No I/O, no clock.
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

use std::time::{Duration, SystemTime};

use thiserror::Error;

use super::secret::{Material, Observed};
use super::{CertInfo, Crypto, Pair, pem_certificate, split_names};

/// Common name of the webhook CAs (each followed by a tag from its key).
pub const WEBHOOK_CA_NAME: &str = "homestead-webhook-ca";

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
pub struct RotationPlan {
    /// The change to make now (`None`: keep the Secret as it is).
    pub step: Option<Step>,
    /// Why, for the log.
    pub reason: String,
    /// When the plan may change by the passing of time alone.
    pub recheck_at: SystemTime,
}

fn act(step: Step, reason: impl Into<String>, now: SystemTime) -> RotationPlan {
    RotationPlan {
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
) -> RotationPlan {
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
    // A certificate cut short by its signer's expiry gains nothing from the same signer:
    // it waits for the next CA to sign it (renewing it again and again, each time shorter,
    // would only churn the Secret while a rotation waits for its bundle to be published).
    // Should the rotation never complete, the expired signer is replaced above.
    if serving.not_after >= signer.not_after {
        recheck.push(signer.not_after);
    } else if now >= serving.renew_at() {
        return act(
            Step::RenewServing,
            "the serving certificate is two thirds through its life",
            now,
        );
    } else {
        recheck.push(serving.renew_at());
    }

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

    RotationPlan {
        step: None,
        reason: "certificates are current".into(),
        recheck_at: recheck.into_iter().min().unwrap_or(now + policy.overlap),
    }
}

/// Why a step could not be carried out.
#[derive(Debug, Error)]
pub enum RotationError<E: std::error::Error + 'static> {
    /// A certificate could not be made (bad name, bad key, CA and key that do not match).
    #[error("cannot make a certificate: {0}")]
    Certificate(#[source] E),
    /// The step needs a CA the Secret does not hold.
    #[error("cannot {step:?}: the Secret holds no usable {missing}")]
    Missing {
        /// The step.
        step: Step,
        /// What is missing.
        missing: &'static str,
    },
}

/// Carries out `step` on `material` (judged as `observed`) at `now`: the Secret's new
/// material. New CAs and serving certificates are made by `crypto`.
pub fn apply<C: Crypto>(
    step: Step,
    material: &Material,
    observed: &Observed,
    names: &[String],
    now: SystemTime,
    policy: &Policy,
    crypto: &C,
) -> Result<Material, RotationError<C::Error>> {
    let missing = |missing| RotationError::Missing { step, missing };
    let make_ca = || {
        crypto
            .make_ca(WEBHOOK_CA_NAME, now, policy.ca_validity)
            .map_err(RotationError::Certificate)
    };
    let issue_serving = |ca: &Pair| {
        let (dns, ips) = split_names(names);
        crypto
            .issue_serving(ca, &dns, &ips, now, policy.cert_validity)
            .map_err(RotationError::Certificate)
    };
    let mut out = material.clone();
    match step {
        Step::Create => {
            let ca = make_ca()?;
            let serving = issue_serving(&ca)?;
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
            out.serving = Some(issue_serving(signer)?);
        }
        Step::AddCa => {
            let next = make_ca()?;
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
            out.serving = Some(issue_serving(next)?);
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

/// The lifetimes, start time and names the rotation's tests share, here and in the shell.
#[cfg(any(test, feature = "testing"))]
pub mod testing {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use super::Policy;

    /// An hour.
    pub const HOUR: Duration = Duration::from_secs(3600);
    /// A day.
    pub const DAY: Duration = Duration::from_secs(24 * 3600);

    /// 30-day CAs, 3-day serving certificates, an hour's overlap.
    pub fn policy() -> Policy {
        Policy {
            ca_validity: 30 * DAY,
            cert_validity: 3 * DAY,
            overlap: HOUR,
        }
    }

    /// When the tests' Secret is first made.
    pub fn start() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000)
    }

    /// The names the serving certificate must carry.
    pub fn names() -> Vec<String> {
        vec!["homestead.homestead.svc".into(), "homestead".into()]
    }
}

#[cfg(test)]
mod tests {
    //! The planner on certificates described directly (no keys: what it reads of a
    //! certificate is its validity, names, issuer and DER). The rotation carried out with
    //! real keys over whole CA lifetimes is tested in the shell (`src/certs/rotation.rs`).

    use super::testing::{DAY, HOUR, names, policy, start};
    use super::*;
    use crate::certs::BACKDATE;

    /// A certificate made at `made` for `life`, as the parser would describe it.
    fn cert(subject: &str, issuer: &str, made: SystemTime, life: Duration) -> CertInfo {
        CertInfo {
            not_before: made - BACKDATE,
            not_after: made + life,
            subject: subject.as_bytes().to_vec(),
            issuer: issuer.as_bytes().to_vec(),
            public_key: Vec::new(),
            is_ca: false,
            names: Vec::new(),
            der: format!("{subject} by {issuer} at {made:?}").into_bytes(),
        }
    }

    fn ca(subject: &str, made: SystemTime) -> CertInfo {
        CertInfo {
            is_ca: true,
            ..cert(subject, subject, made, 30 * DAY)
        }
    }

    fn serving(issuer: &str, made: SystemTime) -> CertInfo {
        CertInfo {
            names: names(),
            ..cert("serving", issuer, made, 3 * DAY)
        }
    }

    /// A Secret just created at `start()`.
    fn fresh() -> Observed {
        let signer = ca("ca-1", start());
        Observed {
            serving: Some(serving("ca-1", start())),
            bundle: vec![signer.clone()],
            signer: Some(signer),
            ..Observed::default()
        }
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
    fn table_of_single_decisions() {
        let signer = ca("ca-1", start());
        let next_made = signer.renew_at();
        let next = ca("ca-2", next_made);
        let old = ca("ca-0", start() - 20 * DAY);
        let with = |change: &dyn Fn(&mut Observed)| {
            let mut o = fresh();
            change(&mut o);
            o
        };
        // Renewed just before the CA's own renewal point.
        let aged = with(&|o| o.serving = Some(serving("ca-1", next_made - HOUR)));
        // A rotation under way: the next CA added to the bundle at `next_made`.
        let rotating = with(&|o| {
            o.serving = Some(serving("ca-1", next_made - HOUR));
            o.next = Some(next.clone());
            o.bundle.push(next.clone());
        });
        // Just switched: ca-2 signs, ca-1 is retired but still trusted.
        let switched_at = next_made + 2 * HOUR;
        let switched = Observed {
            signer: Some(next.clone()),
            serving: Some(serving("ca-2", switched_at)),
            bundle: vec![signer.clone(), next.clone()],
            ..Observed::default()
        };
        let serving_renew = serving("ca-1", start()).renew_at();

        type Case = (&'static str, Observed, bool, SystemTime, Option<Step>);
        let cases: Vec<Case> = vec![
            ("current", fresh(), true, start() + HOUR, None),
            ("serving young", fresh(), true, serving_renew - HOUR, None),
            (
                "serving two thirds",
                fresh(),
                true,
                serving_renew,
                Some(Step::RenewServing),
            ),
            (
                "serving expired",
                fresh(),
                true,
                start() + 3 * DAY,
                Some(Step::RenewServing),
            ),
            (
                "names changed",
                with(&|o| {
                    if let Some(s) = o.serving.as_mut() {
                        s.names = vec!["other.svc".into()];
                    }
                }),
                true,
                start() + HOUR,
                Some(Step::RenewServing),
            ),
            (
                "names in another order are the same names",
                with(&|o| {
                    if let Some(s) = o.serving.as_mut() {
                        s.names.reverse();
                        s.names.push("homestead".into());
                    }
                }),
                true,
                start() + HOUR,
                None,
            ),
            (
                "serving missing",
                with(&|o| o.serving = None),
                true,
                start() + HOUR,
                Some(Step::RenewServing),
            ),
            (
                "serving from a foreign CA",
                with(&|o| o.serving = Some(serving("foreign", start()))),
                true,
                start() + HOUR,
                Some(Step::RenewServing),
            ),
            (
                "signer two thirds",
                aged.clone(),
                true,
                next_made,
                Some(Step::AddCa),
            ),
            (
                "signer two thirds, serving expired first",
                fresh(),
                true,
                next_made,
                Some(Step::RenewServing),
            ),
            (
                "signer expired",
                fresh(),
                true,
                signer.not_after,
                Some(Step::Create),
            ),
            (
                "signer missing",
                with(&|o| o.signer = None),
                true,
                start() + HOUR,
                Some(Step::Create),
            ),
            (
                "bundle lost the signer",
                with(&|o| o.bundle = vec![ca("foreign", start())]),
                true,
                start() + HOUR,
                Some(Step::Create),
            ),
            (
                "bundle missing",
                with(&|o| o.bundle.clear()),
                true,
                start() + HOUR,
                Some(Step::Create),
            ),
            (
                "bundle has the signer twice",
                with(&|o| o.bundle.push(signer.clone())),
                true,
                start() + HOUR,
                Some(Step::DropRetiredCas),
            ),
            (
                "bundle has an expired extra CA",
                with(&|o| o.bundle.push(old.clone())),
                true,
                start() + HOUR,
                Some(Step::DropRetiredCas),
            ),
            (
                "next CA not yet trusted long enough",
                rotating.clone(),
                true,
                next_made + HOUR - BACKDATE - Duration::from_secs(1),
                None,
            ),
            (
                "next CA trusted long enough",
                rotating.clone(),
                true,
                next_made + HOUR,
                Some(Step::SwitchSigner),
            ),
            (
                "next CA's bundle never published",
                rotating.clone(),
                false,
                next_made + 10 * HOUR,
                None,
            ),
            (
                "serving cut short by the signer's expiry waits for the next CA",
                with(&|o| {
                    let mut capped = serving("ca-1", start() + 29 * DAY);
                    capped.not_after = start() + 30 * DAY;
                    o.serving = Some(capped);
                    o.next = Some(next.clone());
                    o.bundle.push(next.clone());
                }),
                false,
                start() + 30 * DAY - HOUR,
                None,
            ),
            (
                "serving cut short, its signer gone: start over",
                with(&|o| {
                    let mut capped = serving("ca-1", start() + 29 * DAY);
                    capped.not_after = start() + 30 * DAY;
                    o.serving = Some(capped);
                }),
                false,
                start() + 30 * DAY,
                Some(Step::Create),
            ),
            (
                "next CA left the bundle",
                with(&|o| {
                    o.serving = Some(serving("ca-1", next_made - HOUR));
                    o.next = Some(next.clone());
                }),
                true,
                next_made + HOUR,
                Some(Step::AddCa),
            ),
            (
                "retired CA kept while replicas load the new certificate",
                switched.clone(),
                true,
                switched_at + HOUR / 2,
                None,
            ),
            (
                "retired CA dropped after the overlap",
                switched.clone(),
                true,
                switched_at + HOUR,
                Some(Step::DropRetiredCas),
            ),
            (
                "retired CA kept while the bundle is unpublished",
                switched.clone(),
                false,
                switched_at + 2 * HOUR,
                None,
            ),
            (
                "serving still from the retired CA",
                Observed {
                    serving: Some(serving("ca-1", switched_at)),
                    ..switched.clone()
                },
                true,
                switched_at + HOUR / 2,
                Some(Step::RenewServing),
            ),
        ];
        for (name, observed, published, now, want) in cases {
            let p = plan(&observed, &names(), published, now, &policy());
            assert_eq!(p.step, want, "{name}: {}", p.reason);
            if want.is_none() {
                assert!(p.recheck_at > now, "{name}: recheck in the future");
            }
        }
    }

    #[test]
    fn a_kept_secret_is_looked_at_again_when_the_serving_certificate_is_due() {
        let o = fresh();
        let p = plan(&o, &names(), true, start() + HOUR, &policy());
        assert_eq!(p.step, None);
        let due = o.serving.as_ref().map(CertInfo::renew_at);
        assert_eq!(Some(p.recheck_at), due);
        // Unpublished, a rotation under way is looked at again within a tenth of the overlap.
        let mut rotating = o.clone();
        let next = ca("ca-2", start() + HOUR);
        rotating.next = Some(next.clone());
        rotating.bundle.push(next);
        let now = start() + 3 * HOUR;
        let p = plan(&rotating, &names(), false, now, &policy());
        assert_eq!((p.step, p.recheck_at), (None, now + HOUR / 10));
    }
}
