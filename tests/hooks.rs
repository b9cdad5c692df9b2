//! Site hooks over real sockets: `homestead::hooks` calling a real HTTP(S) server in the
//! test (`support::hook_server`). Blocking hooks agree, refuse (then agree), time out;
//! notifying hooks are retried and given up on; https with a caBundle and credentials;
//! the payload matches its JSON Schema (`manifests/hooks/payload.schema.json`). The same
//! flows through the controller on a real API server are in `tests/hooks_cluster.rs`.

mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use k8s_openapi::api::core::v1::ObjectReference;
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use homestead::certs::CertificateAuthority;
use homestead::hooks::{Call, Endpoint, HookMetrics, Hooks};
use homestead_core::config::{Config, HookEvent};
use homestead_core::hooks::{HookAnswer, NOTIFY_ATTEMPTS, Payload, PayloadStatus};
use homestead_core::resources::Phase;
use support::cluster::{eventually, metric_sum};
use support::hook_server::{HookServer, Reply, schema_violations};

const WAIT: Duration = Duration::from_secs(60);

fn hooks_config(yaml: &str) -> Config {
    Config::from_yaml(yaml).expect("configuration")
}

fn call(event: HookEvent, name: &str) -> Call {
    let spec = json!({"username": name, "uid": 1001, "gid": 1001});
    let payload = Payload {
        event_type: event,
        kind: "User",
        name,
        spec: &spec,
        status: PayloadStatus { phase: Phase::New },
        namespace: Some("home-ada"),
    };
    Call {
        event,
        uid: "6f1c2b1e-0000-4000-8000-000000000001".into(),
        generation: 1,
        body: Bytes::from(payload.to_vec().expect("payload")),
    }
}

fn start(config: &Config, metrics: &HookMetrics) -> (Hooks, CancellationToken) {
    let token = CancellationToken::new();
    let hooks = Hooks::start(config, None, None, metrics.clone(), token.clone()).expect("hooks");
    (hooks, token)
}

fn metrics_text(metrics: &HookMetrics) -> String {
    let mut registry = Registry::default();
    metrics.register(&mut registry);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
    text
}

fn schema() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/hooks/payload.schema.json");
    serde_json::from_slice(&std::fs::read(path).expect("schema file")).expect("schema JSON")
}

#[tokio::test]
async fn a_blocking_hook_that_agrees_lets_the_change_through_and_gets_the_documented_request() {
    let server = HookServer::start().await;
    let config = hooks_config(&format!(
        "hooks: [{{name: quota, url: '{}', blocking: true}}]",
        server.url("/homestead?site=test")
    ));
    let metrics = HookMetrics::default();
    let (hooks, _token) = start(&config, &metrics);
    hooks
        .ask(&["quota".into()], &call(HookEvent::Create, "ada"))
        .await
        .expect("the hook agreed");
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    let request = &seen[0];
    assert_eq!(request.path, "/homestead?site=test");
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        request.header("idempotency-key"),
        Some("6f1c2b1e-0000-4000-8000-000000000001/1/CREATE/quota")
    );
    assert_eq!(request.header("authorization"), None);
    assert_eq!(request.event(), "CREATE");
    assert_eq!(request.body["status"], json!({"phase": "New"}));
    assert_eq!(
        schema_violations(&schema(), &request.body),
        Vec::<String>::new()
    );
    let text = metrics_text(&metrics);
    assert_eq!(
        metric_sum(
            &text,
            "homestead_hook_calls_total",
            &["hook=\"quota\"", "event=\"CREATE\"", "result=\"ok\""]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        metric_sum(
            &text,
            "homestead_hook_call_duration_seconds_count",
            &["hook=\"quota\""]
        ),
        1.0,
        "{text}"
    );
}

#[tokio::test]
async fn a_refusing_blocking_hook_stops_the_change_with_its_answer_until_it_agrees() {
    let server = HookServer::start().await;
    let long = format!("over quota: {}", "x".repeat(3000));
    server.then(&[Reply::Status(403, long.clone())]);
    let config = hooks_config(&format!(
        "hooks: [{{name: quota, url: '{}', blocking: true}}]",
        server.url("/")
    ));
    let metrics = HookMetrics::default();
    let (hooks, _token) = start(&config, &metrics);
    let change = call(HookEvent::Update, "ada");
    let refusal = hooks
        .ask(&["quota".into()], &change)
        .await
        .expect_err("the hook refused");
    assert_eq!(refusal.hook, "quota");
    assert_eq!(refusal.reason, "Refused");
    let prefix = "hook quota answered HTTP 403: ";
    assert_eq!(
        refusal.message,
        format!("{prefix}{}", &long[..1024]),
        "the first 1 KB"
    );
    // Asked again (the retry of the same change): it agrees now, and both calls carried
    // the same idempotency key.
    hooks.ask(&["quota".into()], &change).await.expect("agreed");
    let keys: Vec<Option<String>> = server
        .seen()
        .iter()
        .map(|s| s.header("idempotency-key").map(str::to_owned))
        .collect();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0], keys[1]);
    let text = metrics_text(&metrics);
    for (result, want) in [("refused", 1.0), ("ok", 1.0)] {
        assert_eq!(
            metric_sum(
                &text,
                "homestead_hook_calls_total",
                &["hook=\"quota\"", &format!("result=\"{result}\"")]
            ),
            want,
            "{text}"
        );
    }
}

#[tokio::test]
async fn a_hook_that_does_not_answer_in_time_refuses_and_holds_up_no_other_hook() {
    let slow = HookServer::start().await;
    slow.answer(Reply::Hang);
    let fast = HookServer::start().await;
    let config = hooks_config(&format!(
        "hooks:\n  - {{name: slow, url: '{}', blocking: true, timeout: 300ms}}\n  - {{name: other, url: '{}', blocking: true, timeout: 30s}}\n  - {{name: hanging, url: '{}', blocking: true, timeout: 1m}}",
        slow.url("/"),
        fast.url("/"),
        slow.url("/")
    ));
    let metrics = HookMetrics::default();
    let (hooks, _token) = start(&config, &metrics);
    let refusal = hooks
        .ask(&["slow".into()], &call(HookEvent::Create, "ada"))
        .await
        .expect_err("timed out");
    assert_eq!(refusal.reason, "TimedOut");
    assert_eq!(refusal.message, "hook slow did not answer within 300ms");
    // While a call to a hanging hook is in flight (for up to a minute), another hook
    // — for another object — is called and answers.
    let hanging = tokio::spawn({
        let hooks = hooks.clone();
        async move {
            hooks
                .ask(&["hanging".into()], &call(HookEvent::Create, "bob"))
                .await
        }
    });
    eventually("the hanging call to reach its hook", WAIT, || async {
        (slow.seen_for("bob").len() == 1).then_some(())
    })
    .await;
    hooks
        .ask(&["other".into()], &call(HookEvent::Create, "carol"))
        .await
        .expect("the other hook answered");
    assert!(!hanging.is_finished(), "the hanging call is still waiting");
    hanging.abort();
    let text = metrics_text(&metrics);
    assert_eq!(
        metric_sum(
            &text,
            "homestead_hook_calls_total",
            &["hook=\"slow\"", "result=\"timeout\""]
        ),
        1.0,
        "{text}"
    );
}

#[tokio::test]
async fn a_hook_nobody_listens_on_is_unreachable() {
    let port = support::cluster::free_port();
    let config = hooks_config(&format!(
        "hooks: [{{name: gone, url: 'http://127.0.0.1:{port}/', blocking: true}}]"
    ));
    let (hooks, _token) = start(&config, &HookMetrics::default());
    let refusal = hooks
        .ask(&["gone".into()], &call(HookEvent::Delete, "ada"))
        .await
        .expect_err("nothing listens");
    assert_eq!(refusal.reason, "Unreachable");
    assert!(
        refusal
            .message
            .starts_with("hook gone could not be called: connecting to 127.0.0.1"),
        "{}",
        refusal.message
    );
}

#[tokio::test]
async fn notifying_hooks_are_retried_with_the_same_key_until_they_answer() {
    let server = HookServer::start().await;
    server.then(&[
        Reply::Status(500, "busy".into()),
        Reply::Status(503, "still busy".into()),
    ]);
    let config = hooks_config(&format!(
        "hooks: [{{name: tickets, url: '{}'}}]",
        server.url("/")
    ));
    let metrics = HookMetrics::default();
    let (hooks, token) = start(&config, &metrics);
    let object = ObjectReference::default();
    hooks
        .tell(
            &["tickets".into()],
            &call(HookEvent::Update, "ada"),
            &object,
        )
        .await;
    let seen = eventually("three calls: two failures and a success", WAIT, || async {
        let seen = server.seen();
        (seen.len() >= 3).then_some(seen)
    })
    .await;
    let keys: Vec<&str> = seen
        .iter()
        .filter_map(|s| s.header("idempotency-key"))
        .collect();
    assert_eq!(keys, vec![keys[0]; 3], "every retry carries the same key");
    let text = eventually("the success counted", WAIT, || async {
        let text = metrics_text(&metrics);
        (metric_sum(&text, "homestead_hook_calls_total", &["result=\"ok\""]) == 1.0).then_some(text)
    })
    .await;
    assert_eq!(
        metric_sum(&text, "homestead_hook_calls_total", &["result=\"refused\""]),
        2.0,
        "{text}"
    );
    assert_eq!(
        metric_sum(&text, "homestead_hook_notifications_failed_total", &[]),
        0.0
    );
    token.cancel();
}

#[tokio::test]
async fn a_notifying_hook_that_keeps_failing_is_given_up_on_after_its_attempts() {
    let server = HookServer::start().await;
    server.answer(Reply::Status(500, "down".into()));
    let config = hooks_config(&format!(
        "hooks: [{{name: tickets, url: '{}'}}]",
        server.url("/")
    ));
    let metrics = HookMetrics::default();
    let (hooks, token) = start(&config, &metrics);
    hooks
        .tell(
            &["tickets".into()],
            &call(HookEvent::Create, "ada"),
            &ObjectReference::default(),
        )
        .await;
    eventually("the notification given up on", WAIT, || async {
        let text = metrics_text(&metrics);
        (metric_sum(
            &text,
            "homestead_hook_notifications_failed_total",
            &["hook=\"tickets\""],
        ) == 1.0)
            .then_some(())
    })
    .await;
    assert_eq!(
        server.seen().len(),
        NOTIFY_ATTEMPTS as usize,
        "bounded: no more calls"
    );
    token.cancel();
}

#[tokio::test]
async fn https_hooks_trust_their_ca_bundle_and_send_credentials() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let day = Duration::from_secs(86_400);
    let ca = CertificateAuthority::generate("hooks-test-ca", day).expect("CA");
    let serving = ca
        .issue_serving(
            &["localhost".into()],
            &[IpAddr::V4(Ipv4Addr::LOCALHOST)],
            day,
        )
        .expect("serving certificate");
    let server = HookServer::start_tls(&serving.cert_pem, &serving.key_pem).await;
    let url = format!("https://127.0.0.1:{}/quota", server.addr.port());
    let config = hooks_config(&format!(
        "hooks:\n  - name: quota\n    url: '{url}'\n    blocking: true\n    caBundle: |\n{}",
        ca.cert_pem()
            .lines()
            .map(|l| format!("      {l}\n"))
            .collect::<String>()
    ));
    let endpoint = Endpoint::new(&config.hooks[0]).expect("endpoint");
    let answer = endpoint
        .call(Bytes::from_static(b"{}"), "key-1", Some("Bearer s3cret"))
        .await;
    assert_eq!(
        answer,
        HookAnswer::Answered {
            status: 200,
            body: b"ok".to_vec()
        }
    );
    let seen = server.seen();
    assert_eq!(seen[0].header("authorization"), Some("Bearer s3cret"));
    assert_eq!(seen[0].header("idempotency-key"), Some("key-1"));

    // Another CA's bundle: the server is not trusted, nothing is sent.
    let other = CertificateAuthority::generate("another-ca", day).expect("CA");
    let mut untrusting = config.hooks[0].clone();
    untrusting.ca_bundle = Some(other.cert_pem().to_owned());
    let answer = Endpoint::new(&untrusting)
        .expect("endpoint")
        .call(Bytes::from_static(b"{}"), "key-2", Some("Bearer s3cret"))
        .await;
    match answer {
        HookAnswer::Unreachable(why) => assert!(why.starts_with("TLS with 127.0.0.1"), "{why}"),
        other => panic!("expected a TLS failure, got {other:?}"),
    }
    assert_eq!(
        server.seen().len(),
        1,
        "the untrusted server got no request"
    );
}

#[test]
fn payloads_of_every_kind_and_event_match_the_schema_and_the_check_can_fail() {
    let schema = schema();
    let specs = [
        ("User", json!({"username": "ada", "uid": 1001, "gid": 1001})),
        (
            "Session",
            json!({"proposalCode": "cm", "proposalNumber": 37235, "visit": 2}),
        ),
        (
            "Project",
            json!({"owner": "ada", "members": [{"username": "bob", "role": "edit"}]}),
        ),
    ];
    for (kind, spec) in &specs {
        for event in [HookEvent::Create, HookEvent::Update, HookEvent::Delete] {
            for (phase, namespace) in [(Phase::New, None), (Phase::Deployed, Some("ns"))] {
                let payload = Payload {
                    event_type: event,
                    kind,
                    name: "x",
                    spec,
                    status: PayloadStatus { phase },
                    namespace,
                };
                let value: Value = serde_json::from_slice(&payload.to_vec().unwrap()).unwrap();
                assert_eq!(
                    schema_violations(&schema, &value),
                    Vec::<String>::new(),
                    "{value}"
                );
            }
        }
    }
    let good = json!({"eventType": "CREATE", "kind": "User", "name": "ada", "spec": {},
        "status": {"phase": "New"}, "namespace": null});
    assert!(schema_violations(&schema, &good).is_empty());
    for (change, want) in [
        (json!({"eventType": "create"}), "$.eventType"),
        (json!({"kind": "Pod"}), "$.kind"),
        (json!({"name": ""}), "$.name"),
        (json!({"spec": "x"}), "$.spec"),
        (json!({"status": {}}), "$.status: phase is required"),
        (json!({"status": {"phase": "Gone"}}), "$.status.phase"),
        (json!({"namespace": 3}), "$.namespace"),
        (json!({"extra": true}), "extra is not allowed"),
    ] {
        let mut bad = good.clone();
        for (k, v) in change.as_object().unwrap() {
            bad[k] = v.clone();
        }
        let violations = schema_violations(&schema, &bad);
        assert!(
            violations.iter().any(|v| v.contains(want)),
            "{bad}: {violations:?}"
        );
    }
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("namespace");
    assert_eq!(
        schema_violations(&schema, &missing),
        ["$: namespace is required"]
    );
}
