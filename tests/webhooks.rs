//! The webhook registration against an API server played by tower-test: the Secret is
//! created and the CA published in both configurations, edits are repaired, nothing is
//! written when all is right, cert-manager's caBundle is left alone, and a conflicting
//! write surfaces as an error for the next pass to retry.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use http::{Method, Request, Response, StatusCode};
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::ObjectMeta;
use kube::client::Body;
use serde_json::{Value, json};

use homestead::certs::{CertificateAuthority, Ring};
use homestead::webhooks::{CertMode, WebhookSettings, reconcile_once};
use homestead_core::certs::parse_certificates;
use homestead_core::certs::rotation::{Policy, Step};
use homestead_core::certs::secret::{KEY_CA_BUNDLE, KEY_TLS_CERT, Observed};
use homestead_core::webhooks::{self, Registration, Target};

const NAME: &str = "homestead";
const NS: &str = "homestead";
const SECRET: &str = "homestead-webhook-tls";
const MUTATING: &str = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations";
const VALIDATING: &str = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations";
const SECRETS: &str = "/api/v1/namespaces/homestead/secrets";

/// A tiny in-memory API server: objects by path, resourceVersion checked on replace.
#[derive(Default)]
struct Fake {
    objects: BTreeMap<String, Value>,
    next_version: u64,
    /// (method, path) of every request, in order.
    log: Vec<(Method, String)>,
    /// Answer the next write with 409 Conflict.
    conflict_next_write: bool,
}

fn status(code: StatusCode, reason: &str, message: &str) -> Response<Body> {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code.as_u16()
    });
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(&body).expect("json")))
        .expect("response")
}

fn ok(code: StatusCode, value: &Value) -> Response<Body> {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(value).expect("json")))
        .expect("response")
}

impl Fake {
    fn put_object(&mut self, path: &str, mut value: Value) -> Value {
        self.next_version += 1;
        value["metadata"]["resourceVersion"] = json!(self.next_version.to_string());
        self.objects.insert(path.to_owned(), value.clone());
        value
    }

    fn handle(&mut self, method: Method, path: &str, body: &[u8]) -> Response<Body> {
        self.log.push((method.clone(), path.to_owned()));
        let is_write = method == Method::PUT || method == Method::POST;
        if is_write && self.conflict_next_write {
            self.conflict_next_write = false;
            return status(
                StatusCode::CONFLICT,
                "Conflict",
                "the object has been modified",
            );
        }
        match method {
            Method::GET => match self.objects.get(path) {
                Some(v) => ok(StatusCode::OK, v),
                None => status(StatusCode::NOT_FOUND, "NotFound", "not found"),
            },
            Method::POST => {
                let value: Value = serde_json::from_slice(body).expect("json body");
                let name = value["metadata"]["name"].as_str().expect("name").to_owned();
                let at = format!("{path}/{name}");
                if self.objects.contains_key(&at) {
                    return status(StatusCode::CONFLICT, "AlreadyExists", "already exists");
                }
                let stored = self.put_object(&at, value);
                ok(StatusCode::CREATED, &stored)
            }
            Method::PUT => {
                let value: Value = serde_json::from_slice(body).expect("json body");
                let Some(current) = self.objects.get(path) else {
                    return status(StatusCode::NOT_FOUND, "NotFound", "not found");
                };
                if value["metadata"]["resourceVersion"] != current["metadata"]["resourceVersion"] {
                    return status(StatusCode::CONFLICT, "Conflict", "resourceVersion differs");
                }
                let stored = self.put_object(path, value);
                ok(StatusCode::OK, &stored)
            }
            _ => status(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", "no"),
        }
    }

    fn writes(&self) -> Vec<(Method, String)> {
        self.log
            .iter()
            .filter(|(m, _)| *m != Method::GET)
            .cloned()
            .collect()
    }

    fn mutating(&self) -> MutatingWebhookConfiguration {
        serde_json::from_value(self.objects[&format!("{MUTATING}/{NAME}")].clone())
            .expect("mutating")
    }

    fn validating(&self) -> ValidatingWebhookConfiguration {
        serde_json::from_value(self.objects[&format!("{VALIDATING}/{NAME}")].clone())
            .expect("validating")
    }

    fn set_mutating(&mut self, m: MutatingWebhookConfiguration) {
        let value = serde_json::to_value(m).expect("mutating");
        self.put_object(&format!("{MUTATING}/{NAME}"), value);
    }

    fn set_validating(&mut self, v: ValidatingWebhookConfiguration) {
        let value = serde_json::to_value(v).expect("validating");
        self.put_object(&format!("{VALIDATING}/{NAME}"), value);
    }

    fn secret(&self) -> Option<Secret> {
        self.objects
            .get(&format!("{SECRETS}/{SECRET}"))
            .map(|v| serde_json::from_value(v.clone()).expect("secret"))
    }
}

fn client(fake: Arc<Mutex<Fake>>) -> Client {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    tokio::spawn(async move {
        while let Some((request, send)) = handle.next_request().await {
            let (parts, body) = request.into_parts();
            let bytes = body.collect_bytes().await.expect("body");
            let response =
                fake.lock()
                    .expect("lock")
                    .handle(parts.method, parts.uri.path(), &bytes);
            send.send_response(response);
        }
    });
    Client::new(service, "default")
}

fn registration() -> Registration {
    Registration {
        target: Target::Service {
            name: NAME.into(),
            namespace: NS.into(),
            port: 443,
        },
        namespace: NS.into(),
        excluded_namespaces: vec![],
        failure_policy: "Fail".into(),
        timeout_seconds: 5,
        workload_kinds: Vec::new(),
    }
}

fn settings(mode: CertMode, ca_bundle: Option<Vec<u8>>) -> WebhookSettings {
    WebhookSettings {
        mode,
        namespace: NS.into(),
        secret: SECRET.into(),
        configuration: Some(NAME.into()),
        registration: registration(),
        ca_bundle,
        policy: Policy::default(),
        names: vec![format!("{NAME}.{NS}.svc")],
    }
}

/// A fake holding both configurations as the chart installs them (no caBundle).
fn installed() -> Arc<Mutex<Fake>> {
    let mut fake = Fake::default();
    let meta = ObjectMeta {
        name: Some(NAME.into()),
        ..ObjectMeta::default()
    };
    let m = MutatingWebhookConfiguration {
        metadata: meta.clone(),
        webhooks: Some(webhooks::mutating(&registration(), None)),
    };
    let v = ValidatingWebhookConfiguration {
        metadata: meta,
        webhooks: Some(webhooks::validating(&registration(), None)),
    };
    fake.set_mutating(m);
    fake.set_validating(v);
    Arc::new(Mutex::new(fake))
}

/// The installed configurations behind a fake API server, and a client of it.
fn connected() -> (Arc<Mutex<Fake>>, Client) {
    install_crypto();
    let fake = installed();
    let client = client(fake.clone());
    (fake, client)
}

fn bundles(fake: &Fake) -> Vec<Option<Vec<u8>>> {
    let m = fake.mutating().webhooks.unwrap_or_default();
    let v = fake.validating().webhooks.unwrap_or_default();
    m.iter()
        .map(|w| w.client_config.ca_bundle.clone().map(|b| b.0))
        .chain(
            v.iter()
                .map(|w| w.client_config.ca_bundle.clone().map(|b| b.0)),
        )
        .collect()
}

fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[tokio::test]
async fn self_mode_creates_the_secret_and_publishes_its_ca_everywhere() {
    let (fake, client) = connected();
    let s = settings(CertMode::SelfSigned, None);
    let outcome = reconcile_once(&client, &s, SystemTime::now())
        .await
        .expect("pass");
    assert_eq!(outcome.steps, [Step::Create]);
    assert_eq!(
        outcome.repaired,
        [
            "MutatingWebhookConfiguration",
            "ValidatingWebhookConfiguration"
        ]
    );
    let fake = fake.lock().expect("lock");
    let secret = fake.secret().expect("secret created");
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
    let data: BTreeMap<String, Vec<u8>> = secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    let observed = Observed::from_secret(Some(&data), &Ring);
    assert!(observed.problems.is_empty(), "{:?}", observed.problems);
    let serving = observed.serving.expect("serving");
    assert_eq!(serving.names, [format!("{NAME}.{NS}.svc")]);
    // Every webhook of both configurations trusts exactly the Secret's bundle.
    let ca = data[KEY_CA_BUNDLE].clone();
    let all = bundles(&fake);
    assert_eq!(all.len(), 5);
    assert!(all.iter().all(|b| b.as_deref() == Some(ca.as_slice())));
    // And that bundle trusts the serving certificate the replicas load.
    let cas = parse_certificates("ca", &ca).expect("ca");
    assert!(cas.iter().any(|c| serving.issued_by(c)));
    assert!(data.contains_key(KEY_TLS_CERT));
}

#[tokio::test]
async fn a_second_pass_writes_nothing() {
    let (fake, client) = connected();
    let s = settings(CertMode::SelfSigned, None);
    let now = SystemTime::now();
    reconcile_once(&client, &s, now).await.expect("first");
    let writes_before = fake.lock().expect("lock").writes().len();
    let outcome = reconcile_once(&client, &s, now + Duration::from_secs(60))
        .await
        .expect("second");
    assert!(
        outcome.steps.is_empty() && outcome.repaired.is_empty(),
        "{outcome:?}"
    );
    assert_eq!(fake.lock().expect("lock").writes().len(), writes_before);
    assert!(outcome.recheck_at.is_some_and(|t| t > now));
}

#[tokio::test]
async fn edited_selectors_rules_and_ca_bundle_are_repaired() {
    let (fake, client) = connected();
    let s = settings(CertMode::SelfSigned, None);
    let now = SystemTime::now();
    reconcile_once(&client, &s, now).await.expect("first");
    let good_m = fake.lock().expect("lock").mutating().webhooks;
    let good_v = fake.lock().expect("lock").validating().webhooks;
    {
        // Someone opens kube-system to the webhook, drops a rule and swaps the CA.
        let mut f = fake.lock().expect("lock");
        let mut m = f.mutating();
        let w = &mut m.webhooks.as_mut().expect("webhooks")[0];
        w.namespace_selector = None;
        w.client_config.ca_bundle = Some(k8s_openapi::ByteString(b"-----BEGIN junk".to_vec()));
        let mut v = f.validating();
        v.webhooks.as_mut().expect("webhooks")[0]
            .rules
            .as_mut()
            .expect("rules")
            .pop();
        v.webhooks.as_mut().expect("webhooks")[2].failure_policy = Some("Ignore".into());
        f.set_mutating(m);
        f.set_validating(v);
    }
    let outcome = reconcile_once(&client, &s, now + Duration::from_secs(60))
        .await
        .expect("repair");
    assert!(outcome.steps.is_empty(), "{outcome:?}");
    assert_eq!(outcome.repaired.len(), 2);
    let f = fake.lock().expect("lock");
    assert_eq!(f.mutating().webhooks, good_m);
    assert_eq!(f.validating().webhooks, good_v);
}

#[tokio::test]
async fn cert_manager_mode_repairs_rules_but_leaves_ca_bundle_to_cainjector() {
    install_crypto();
    let fake = installed();
    {
        let mut f = fake.lock().expect("lock");
        let mut m = f.mutating();
        for w in m.webhooks.iter_mut().flatten() {
            w.client_config.ca_bundle = Some(k8s_openapi::ByteString(b"INJECTED".to_vec()));
            w.timeout_seconds = Some(30);
        }
        f.set_mutating(m);
    }
    let client = client(fake.clone());
    let s = settings(CertMode::CertManager, None);
    let outcome = reconcile_once(&client, &s, SystemTime::now())
        .await
        .expect("pass");
    assert_eq!(outcome.repaired, ["MutatingWebhookConfiguration"]);
    let f = fake.lock().expect("lock");
    assert!(f.secret().is_none(), "cert-manager owns the Secret");
    let m = f.mutating().webhooks.expect("webhooks");
    assert_eq!(m[0].timeout_seconds, Some(5));
    assert_eq!(
        m[0].client_config
            .ca_bundle
            .as_ref()
            .map(|b| b.0.as_slice()),
        Some(&b"INJECTED"[..])
    );
    // The validating configuration has no caBundle yet: cainjector's job, not ours.
    assert!(
        f.validating()
            .webhooks
            .expect("webhooks")
            .iter()
            .all(|w| w.client_config.ca_bundle.is_none())
    );
}

#[tokio::test]
async fn external_mode_publishes_the_given_ca() {
    let (fake, client) = connected();
    let ca = CertificateAuthority::generate("test CA", Duration::from_secs(86400)).expect("ca");
    let s = settings(CertMode::External, Some(ca.cert_pem().as_bytes().to_vec()));
    reconcile_once(&client, &s, SystemTime::now())
        .await
        .expect("pass");
    let f = fake.lock().expect("lock");
    assert!(f.secret().is_none(), "the operator owns the Secret");
    assert!(
        bundles(&f)
            .iter()
            .all(|b| b.as_deref() == Some(ca.cert_pem().as_bytes()))
    );
}

#[tokio::test]
async fn a_conflicting_write_fails_the_pass_and_the_next_pass_converges() {
    let (fake, client) = connected();
    let s = settings(CertMode::SelfSigned, None);
    fake.lock().expect("lock").conflict_next_write = true;
    let err = reconcile_once(&client, &s, SystemTime::now())
        .await
        .expect_err("conflict");
    assert!(format!("{err:#}").contains("Secret"), "{err:#}");
    let outcome = reconcile_once(&client, &s, SystemTime::now())
        .await
        .expect("retry");
    assert_eq!(outcome.steps, [Step::Create]);
    assert_eq!(outcome.repaired.len(), 2);
}

#[tokio::test]
async fn missing_configurations_are_reported_not_recreated() {
    install_crypto();
    let fake = Arc::new(Mutex::new(Fake::default()));
    let client = client(fake.clone());
    let s = settings(CertMode::External, None);
    let outcome = reconcile_once(&client, &s, SystemTime::now())
        .await
        .expect("pass");
    assert_eq!(
        outcome.missing,
        [
            "MutatingWebhookConfiguration",
            "ValidatingWebhookConfiguration"
        ]
    );
    assert!(fake.lock().expect("lock").writes().is_empty());
}

#[tokio::test]
async fn a_ca_rotation_runs_across_passes_and_publishes_each_bundle() {
    let (fake, client) = connected();
    let s = settings(CertMode::SelfSigned, None);
    let day = Duration::from_secs(86400);
    let t0 = SystemTime::now();
    reconcile_once(&client, &s, t0).await.expect("create");
    // Two thirds into the CA's life (the serving certificate is renewed first).
    let t1 = t0 + s.policy.ca_validity * 2 / 3 + day;
    let outcome = reconcile_once(&client, &s, t1).await.expect("add");
    assert_eq!(outcome.steps, [Step::RenewServing, Step::AddCa]);
    let two_cas = |f: &Fake| {
        bundles(f).iter().all(|b| {
            b.as_deref()
                .is_some_and(|b| parse_certificates("ca", b).map(|c| c.len()) == Ok(2))
        })
    };
    assert!(two_cas(&fake.lock().expect("lock")), "both CAs published");
    // Within the overlap nothing moves; after it the signer switches.
    let outcome = reconcile_once(&client, &s, t1 + s.policy.overlap / 2)
        .await
        .expect("wait");
    assert!(outcome.steps.is_empty(), "{outcome:?}");
    let t2 = t1 + s.policy.overlap * 2;
    let outcome = reconcile_once(&client, &s, t2).await.expect("switch");
    assert_eq!(outcome.steps, [Step::SwitchSigner]);
    assert!(
        outcome.repaired.is_empty(),
        "bundle unchanged by the switch"
    );
    let t3 = t2 + s.policy.overlap * 2;
    let outcome = reconcile_once(&client, &s, t3).await.expect("drop");
    assert_eq!(outcome.steps, [Step::DropRetiredCas]);
    assert_eq!(outcome.repaired.len(), 2, "the one-CA bundle is published");
    let f = fake.lock().expect("lock");
    let one: Vec<_> = bundles(&f);
    assert!(one.iter().all(|b| {
        b.as_deref()
            .is_some_and(|b| parse_certificates("ca", b).map(|c| c.len()) == Ok(1))
    }));
}

mod bootstrap {
    use super::*;
    use homestead::webhooks::bootstrap::{Bootstrap, ensure_secret_exists, wait_for_file};

    #[tokio::test]
    async fn creates_a_missing_secret_that_the_leader_then_keeps() {
        let (fake, client) = connected();
        let s = settings(CertMode::SelfSigned, None);
        let now = SystemTime::now();
        let got = ensure_secret_exists(&client, &s, now).await.expect("init");
        assert_eq!(got, Bootstrap::Created);
        let created = fake.lock().expect("lock").secret().expect("secret");
        // The leader's first pass keeps the Secret and only publishes its CA.
        let outcome = reconcile_once(&client, &s, now).await.expect("leader");
        assert!(outcome.steps.is_empty(), "{outcome:?}");
        assert_eq!(outcome.repaired.len(), 2);
        assert_eq!(fake.lock().expect("lock").secret(), Some(created));
    }

    #[tokio::test]
    async fn never_touches_an_existing_secret() {
        let (fake, client) = connected();
        let s = settings(CertMode::SelfSigned, None);
        reconcile_once(&client, &s, SystemTime::now())
            .await
            .expect("leader");
        let writes = fake.lock().expect("lock").writes().len();
        let got = ensure_secret_exists(&client, &s, SystemTime::now())
            .await
            .expect("init");
        assert_eq!(got, Bootstrap::Existed);
        assert_eq!(fake.lock().expect("lock").writes().len(), writes);
    }

    #[tokio::test]
    async fn losing_the_race_to_another_replica_is_fine() {
        let (fake, client) = connected();
        fake.lock().expect("lock").conflict_next_write = true;
        let s = settings(CertMode::SelfSigned, None);
        let got = ensure_secret_exists(&client, &s, SystemTime::now())
            .await
            .expect("init");
        assert_eq!(got, Bootstrap::Existed);
    }

    #[tokio::test]
    async fn other_modes_leave_the_secret_to_its_owner() {
        let (fake, client) = connected();
        for mode in [CertMode::CertManager, CertMode::External] {
            let got = ensure_secret_exists(&client, &settings(mode, None), SystemTime::now())
                .await
                .expect("init");
            assert_eq!(got, Bootstrap::NotManaged);
        }
        assert!(fake.lock().expect("lock").log.is_empty());
    }

    #[tokio::test]
    async fn waits_for_the_mounted_file_and_gives_up_with_a_reason() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tls.crt");
        let writer = {
            let path = path.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                std::fs::write(&path, "pem").expect("write");
            })
        };
        wait_for_file(&path, Duration::from_secs(20))
            .await
            .expect("appears");
        writer.await.expect("writer");
        let err = wait_for_file(&dir.path().join("never"), Duration::from_millis(10))
            .await
            .expect_err("times out");
        assert!(err.to_string().contains("did not appear"), "{err}");
    }
}
