//! The certificate rotation carried out with real keys: the core's planner
//! (`homestead_core::certs::rotation`) driven step by step through [`super::Rcgen`], over
//! whole CA lifetimes, and the certificates it makes read back by the core's parser.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use homestead_core::certs::rotation::{Policy, RotationPlan, Step, WEBHOOK_CA_NAME, apply, plan};
use homestead_core::certs::secret::{
    KEY_CA_BUNDLE, KEY_SIGNER_CERT, KEY_SIGNER_KEY, KEY_TLS_CERT, KEY_TLS_KEY, Material, Observed,
};
use homestead_core::certs::{CertInfo, Crypto, Pair, parse_certificates, parse_pair, split_names};

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use x509_parser::extensions::GeneralName;

use super::Rcgen;

fn make_ca(now: SystemTime, validity: Duration) -> Result<Pair, crate::certs::CertError> {
    Rcgen.make_ca(WEBHOOK_CA_NAME, now, validity)
}

fn issue_serving(
    ca: &Pair,
    names: &[String],
    now: SystemTime,
    validity: Duration,
) -> Result<Pair, crate::certs::CertError> {
    let (dns, ips) = split_names(names);
    Rcgen.issue_serving(ca, &dns, &ips, now, validity)
}

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
) -> (Vec<Step>, RotationPlan) {
    let mut steps = Vec::new();
    for _ in 0..6 {
        let observed = Observed::from_secret(data.as_ref(), &Rcgen);
        let plan = plan(&observed, names, published, now, &policy());
        let Some(step) = plan.step else {
            return (steps, plan);
        };
        let current = data
            .as_ref()
            .map(|d| Material::from_secret(d, &observed))
            .unwrap_or_default();
        let next = apply(step, &current, &observed, names, now, &policy(), &Rcgen).expect("apply");
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
    Observed::from_secret(Some(data), &Rcgen)
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
    let mut have = serving.names.clone();
    have.sort();
    let mut want = names();
    want.sort();
    assert_eq!(have, want);
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
    let foreign = make_ca(start(), 30 * DAY).expect("ca");
    let foreign_serving = issue_serving(&foreign, &names(), start(), DAY).expect("serving");
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
    make_ca(start() - 40 * DAY, 30 * DAY).expect("ca").cert_pem
}

#[test]
fn problems_name_what_is_wrong() {
    let mut data = fresh();
    data.insert(KEY_SIGNER_CERT.into(), b"junk".to_vec());
    let other = make_ca(start(), DAY).expect("ca");
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
    let ca: Pair = make_ca(start(), 2 * DAY).expect("ca");
    let ca_end = parse_certificates("ca", ca.cert_pem.as_bytes()).expect("ca")[0].not_after;
    let s = issue_serving(&ca, &names(), start() + DAY, 30 * DAY).expect("serving");
    let s = parse_pair("tls", s.cert_pem.as_bytes(), s.key_pem.as_bytes(), &Rcgen).expect("pair");
    assert_eq!(s.not_after, ca_end);
}

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
