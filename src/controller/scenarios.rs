//! API-server scenarios: a reconcile runs against a scripted fake API server (a
//! `tower-test` mock service behind a real `kube::Client`); every request must match the
//! script in order, and any request beyond it fails the test.

use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::ObjectMeta;
use kube::client::Body;
use kube::runtime::controller::Action;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector;
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use serde_json::{Value, json};
use tower_test::mock::Handle;

use super::Metrics;
use super::reconcile::{Context, Owned, backoff, error_policy, reconcile};
use super::status::{Outcome, next_status};
use homestead_core::config::Config;
use homestead_core::desired::{
    DesiredObjects, FINALIZER, Kind, Object, ObjectKey, OwnerKind, SecretSources, is_met,
    session_objects, user_objects,
};
use homestead_core::names::{LABEL_MANAGED, LABEL_MANAGED_BY, LABEL_SESSION, LABEL_USER};
use homestead_core::resources::{Session, User, UserSpec};

/// What the fake API server answers.
#[derive(Clone)]
enum Reply {
    /// This status code and body.
    Json(u16, Value),
    /// 200 with the request body (what an apply of it returns, near enough).
    Echo,
    /// A `Status` failure with this code.
    Fail(u16),
    /// No answer until the client is gone (a watch that stays open).
    Hang,
}

struct Step {
    method: Method,
    path: String,
    reply: Reply,
}

fn step(method: Method, path: &str, reply: Reply) -> Step {
    Step {
        method,
        path: path.to_owned(),
        reply,
    }
}

/// One request the fake server saw.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    uri: String,
    body: Value,
}

impl Seen {
    fn path(&self) -> &str {
        self.uri.split('?').next().unwrap_or_default()
    }
}

fn status_body(code: u16) -> Value {
    let reason = match code {
        404 => "NotFound",
        409 => "Conflict",
        429 => "TooManyRequests",
        _ => "InternalError",
    };
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!("scripted {code}"), "reason": reason, "code": code
    })
}

/// Serves `steps` in order, then refuses anything more; returns what it saw once every
/// client is dropped.
fn serve(
    mut handle: Handle<Request<Body>, Response<Body>>,
    steps: Vec<Step>,
) -> tokio::task::JoinHandle<Vec<Seen>> {
    tokio::spawn(async move {
        let mut seen = Vec::new();
        let mut hung = Vec::new();
        let total = steps.len();
        for (i, step) in steps.into_iter().enumerate() {
            let Some((request, send)) = handle.next_request().await else {
                panic!(
                    "client gone after {i} of {total} requests; next expected {} {}",
                    step.method, step.path
                );
            };
            let method = request.method().clone();
            let uri = request.uri().to_string();
            let bytes = request.into_body().collect_bytes().await.unwrap();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let path = uri.split('?').next().unwrap_or_default().to_owned();
            assert_eq!(
                (&method, path.as_str()),
                (&step.method, step.path.as_str()),
                "request {i}: got {method} {uri}\nseen so far: {:#?}",
                seen.iter()
                    .map(|s: &Seen| format!("{} {}", s.method, s.uri))
                    .collect::<Vec<_>>()
            );
            let (code, reply) = match step.reply {
                Reply::Json(code, v) => (code, v),
                Reply::Echo => (200, body.clone()),
                Reply::Fail(code) => (code, status_body(code)),
                Reply::Hang => {
                    hung.push(send);
                    seen.push(Seen { method, uri, body });
                    continue;
                }
            };
            send.send_response(
                Response::builder()
                    .status(code)
                    .header("content-type", "application/json")
                    .body(Body::from(serde_json::to_vec(&reply).unwrap()))
                    .unwrap(),
            );
            seen.push(Seen { method, uri, body });
        }
        if let Some((request, _)) = handle.next_request().await {
            panic!(
                "unexpected request beyond the script: {} {}",
                request.method(),
                request.uri()
            );
        }
        seen
    })
}

struct Harness {
    ctx: Arc<Context>,
    server: tokio::task::JoinHandle<Vec<Seen>>,
}

impl Harness {
    /// A context whose live copies hold nothing (every kind listed, empty).
    fn new(config: Config, users: &[User], steps: Vec<Step>) -> Self {
        Self::with_live(config, users, Vec::new(), steps)
    }

    /// A context whose live copies (of every owner kind) hold `live`.
    fn with_live(
        config: Config,
        users: &[User],
        live: Vec<(ObjectKey, Value)>,
        steps: Vec<Step>,
    ) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = Client::new(service, "default");
        let (store, mut writer) = reflector::store();
        for user in users {
            writer.apply_watcher_event(&watcher::Event::Apply(user.clone()));
        }
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: "homestead".into(),
                instance: None,
            },
        );
        let ctx = Arc::new(Context::new(
            client,
            Arc::new(config),
            store,
            recorder,
            Metrics::default(),
        ));
        for kind in [OwnerKind::User, OwnerKind::Session, OwnerKind::Project] {
            ctx.live(kind).synced_with(live.clone());
        }
        Self {
            ctx,
            server: serve(handle, steps),
        }
    }

    /// A context calling the hooks of `config` (a real HTTP server the test starts; the
    /// scripted API server has nothing to do with them).
    fn hooked(config: Config, steps: Vec<Step>) -> Self {
        let mut h = Self::new(config.clone(), &[], steps);
        let Ok(ctx) = Arc::try_unwrap(h.ctx) else {
            panic!("the harness holds the only context");
        };
        let hooks = crate::hooks::Hooks::start(
            &config,
            None,
            None,
            crate::hooks::HookMetrics::default(),
            tokio_util::sync::CancellationToken::new(),
        )
        .expect("hooks");
        h.ctx = Arc::new(ctx.with_hooks(hooks));
        h
    }

    /// Drops the client and returns what the server saw.
    async fn finish(self) -> Vec<Seen> {
        drop(self.ctx);
        self.server.await.expect("fake API server")
    }
}

const USERS: &str = "/apis/homestead.dev/v1alpha1/users";
const SESSIONS: &str = "/apis/homestead.dev/v1alpha1/sessions";
const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/default/events";

fn user(name: &str) -> User {
    let mut u = User::new(
        name,
        UserSpec {
            username: name.into(),
            uid: 1001,
            gid: 1001,
            ..Default::default()
        },
    );
    u.metadata.uid = Some(format!("uid-{name}"));
    u.metadata.generation = Some(1);
    u.metadata.resource_version = Some("1".into());
    u.finalizers_mut().push(FINALIZER.into());
    u
}

fn session(members: &[&str]) -> Session {
    let mut s = homestead_core::desired::testing::session(members);
    s.metadata.generation = Some(2);
    s.finalizers_mut().push(FINALIZER.into());
    s
}

fn deployed<K: Owned>(obj: &mut K, namespace: &str, generation: i64, problems: Vec<String>) {
    let status = next_status(
        None,
        Some(generation),
        Some(namespace),
        &Outcome::Deployed {
            problems,
            storage: Vec::new(),
            unbound: Vec::new(),
        },
        &Time(Timestamp::UNIX_EPOCH),
    );
    let mut value = serde_json::to_value(&*obj).unwrap();
    value["status"] = serde_json::to_value(status).unwrap();
    *obj = serde_json::from_value(value).unwrap();
}

fn namespace_json(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}})
}

/// A namespace homestead made for `owner` (its labels and its owner reference; the uid is
/// the one [`user`] and [`session`] give).
fn our_namespace(kind: OwnerKind, owner: &str, name: &str) -> Value {
    let mut ns = labelled_namespace(kind, owner, name);
    let uid = match kind {
        OwnerKind::User => format!("uid-{owner}"),
        OwnerKind::Session => "uid-session".to_owned(),
        OwnerKind::Project => format!("uid-project-{owner}"),
    };
    ns["metadata"]["ownerReferences"] = json!([{
        "apiVersion": "homestead.dev/v1alpha1", "kind": kind.as_str(), "name": owner,
        "uid": uid, "controller": true
    }]);
    ns
}

/// A namespace carrying homestead's labels for `owner` and no owner reference: what an
/// attacker able to label namespaces makes for a future owner.
fn labelled_namespace(kind: OwnerKind, owner: &str, name: &str) -> Value {
    namespace_json(
        name,
        json!({LABEL_MANAGED: "true", LABEL_MANAGED_BY: "homestead", kind.label(): owner}),
    )
}

/// The request path of an object's apply.
fn object_path(object: &Object) -> String {
    let key = object.key();
    let resource = key.kind.api_resource();
    let base = if resource.group.is_empty() {
        format!("/api/{}", resource.version)
    } else {
        format!("/apis/{}/{}", resource.group, resource.version)
    };
    match &key.namespace {
        Some(ns) => format!("{base}/namespaces/{ns}/{}/{}", resource.plural, key.name),
        None => format!("{base}/{}/{}", resource.plural, key.name),
    }
}

/// The applies of `objects`, in order.
fn applies(objects: &[Object]) -> Vec<Step> {
    homestead_core::desired::apply_order(objects)
        .into_iter()
        .map(|o| step(Method::PATCH, &object_path(o), Reply::Echo))
        .collect()
}

/// The objects of `plan` as the API server holds them after applying it (for the live
/// copies): each intent, with a volume bound to its claim.
fn stored(plan: &DesiredObjects) -> Vec<(ObjectKey, Value)> {
    plan.objects
        .iter()
        .map(|o| {
            let mut v = o.intent().unwrap();
            if o.kind() == Kind::PersistentVolume {
                v["spec"]["claimRef"]["uid"] = json!("claim-uid");
                v["spec"]["claimRef"]["resourceVersion"] = json!("12");
                v["status"] = json!({"phase": "Bound"});
            }
            if o.kind() == Kind::PersistentVolumeClaim {
                v["status"] = json!({"phase": "Bound"});
            }
            (o.key(), v)
        })
        .collect()
}

/// The applies of the objects of `plan` that `live` does not already hold as planned.
fn changed_applies(plan: &DesiredObjects, live: &[(ObjectKey, Value)]) -> Vec<Step> {
    let changed: Vec<Object> = plan
        .objects
        .iter()
        .filter(|o| {
            let intent = o.intent().unwrap();
            !live
                .iter()
                .any(|(k, v)| *k == o.key() && is_met(&intent, v))
        })
        .cloned()
        .collect();
    applies(&changed)
}

fn with_status<K: Resource + serde::Serialize>(obj: &K) -> Reply {
    Reply::Json(200, serde_json::to_value(obj).unwrap())
}

fn phase_of(seen: &Seen) -> String {
    seen.body["status"]["phase"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn paths_are_the_real_api_paths() {
    let plan = user_objects(&Config::default(), &user("ada"), &SecretSources::new()).unwrap();
    let paths: Vec<String> = plan.objects.iter().map(object_path).collect();
    assert_eq!(
        paths,
        [
            "/api/v1/namespaces/home-ada",
            "/apis/rbac.authorization.k8s.io/v1/namespaces/home-ada/rolebindings/homestead-owner",
            "/api/v1/namespaces/home-ada/configmaps/homestead",
            "/api/v1/persistentvolumes/homestead-home-ada-homestead-private",
            "/api/v1/namespaces/home-ada/persistentvolumeclaims/homestead-private",
            "/api/v1/persistentvolumes/homestead-home-ada-homestead-shared",
            "/api/v1/namespaces/home-ada/persistentvolumeclaims/homestead-shared",
        ]
    );
}

#[tokio::test]
async fn a_new_user_first_gets_the_finalizer() {
    let mut ada = user("ada");
    ada.finalizers_mut().clear();
    let mut finalized = ada.clone();
    finalized.finalizers_mut().push(FINALIZER.into());
    let h = Harness::new(
        Config::default(),
        &[],
        vec![step(
            Method::PATCH,
            &format!("{USERS}/ada"),
            with_status(&finalized),
        )],
    );
    let action = reconcile(Arc::new(ada), h.ctx.clone()).await.unwrap();
    assert_eq!(action, Action::await_change());
    let seen = h.finish().await;
    assert_eq!(
        seen[0].body,
        json!([
            {"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]}
        ])
    );
}

#[tokio::test]
async fn create_applies_every_object_and_reports_deployed() {
    let ada = user("ada");
    let plan = user_objects(&Config::default(), &ada, &SecretSources::new()).unwrap();
    let mut steps = vec![
        step(Method::GET, "/api/v1/namespaces/home-ada", Reply::Fail(404)),
        step(
            Method::PATCH,
            &format!("{USERS}/ada/status"),
            with_status(&ada),
        ),
    ];
    steps.extend(applies(&plan.objects));
    steps.push(step(
        Method::PATCH,
        &format!("{USERS}/ada/status"),
        with_status(&ada),
    ));
    steps.push(step(Method::POST, EVENTS, Reply::Echo));
    let h = Harness::new(Config::default(), &[], steps);
    let action = reconcile(Arc::new(ada), h.ctx.clone()).await.unwrap();
    assert_eq!(action, Action::requeue(super::reconcile::RESYNC));
    let seen = h.finish().await;
    assert_eq!(phase_of(&seen[1]), "Deploying");
    assert_eq!(seen[1].body["status"]["observedGeneration"], 1);
    for s in seen[2..seen.len() - 2]
        .iter()
        .filter(|s| s.method == Method::PATCH)
    {
        assert!(
            s.uri.contains("fieldManager=homestead") && s.uri.contains("force=true"),
            "server-side apply with the one field manager: {}",
            s.uri
        );
    }
    let ns = &seen[2].body;
    assert_eq!(ns["metadata"]["labels"][LABEL_MANAGED], "true");
    assert_eq!(ns["metadata"]["labels"][LABEL_USER], "ada");
    let rb = seen
        .iter()
        .find(|s| s.path().ends_with("/rolebindings/homestead-owner"))
        .unwrap();
    assert_eq!(rb.body["roleRef"]["name"], "edit");
    assert_eq!(rb.body["subjects"][0]["name"], "ada");
    assert_eq!(rb.body["metadata"]["ownerReferences"][0]["kind"], "User");
    let pv = seen
        .iter()
        .find(|s| {
            s.method == Method::PATCH
                && s.path()
                    .ends_with("/persistentvolumes/homestead-home-ada-homestead-private")
        })
        .unwrap();
    assert_eq!(pv.body["spec"]["persistentVolumeReclaimPolicy"], "Retain");
    assert_eq!(pv.body["spec"]["claimRef"]["name"], "homestead-private");
    let last_status = &seen[seen.len() - 2];
    assert_eq!(phase_of(last_status), "Deployed");
    assert_eq!(last_status.body["status"]["namespace"], "home-ada");
    let event = seen.last().unwrap();
    assert_eq!(event.body["reason"], "Deployed");
    assert_eq!(event.body["regarding"]["name"], "ada");
}

#[tokio::test]
async fn a_reconcile_with_nothing_to_change_sends_nothing() {
    // After a restart: every object exists as planned (the volumes bound by the binder).
    let mut ada = user("ada");
    deployed(&mut ada, "home-ada", 1, vec![]);
    let plan = user_objects(&Config::default(), &ada, &SecretSources::new()).unwrap();
    let h = Harness::with_live(Config::default(), &[], stored(&plan), Vec::new());
    reconcile(Arc::new(ada), h.ctx.clone()).await.unwrap();
    let mut text = String::new();
    let mut registry = prometheus_client::registry::Registry::default();
    h.ctx.metrics.register(&mut registry);
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(
        text.contains(
            r#"homestead_controller_applies_total{kind="PersistentVolume",result="unchanged"} 2"#
        ),
        "{text}"
    );
    assert!(h.finish().await.is_empty(), "not one request");
}

#[tokio::test]
async fn drift_is_repaired_and_a_noop_writes_no_status() {
    // The RoleBinding was deleted by hand; its watch event triggers this reconcile.
    let mut ada = user("ada");
    deployed(&mut ada, "home-ada", 1, vec![]);
    let plan = user_objects(&Config::default(), &ada, &SecretSources::new()).unwrap();
    let mut live = stored(&plan);
    live.retain(|(k, _)| k.kind != Kind::RoleBinding);
    // Someone also edited the ConfigMap.
    for (k, v) in &mut live {
        if k.kind == Kind::ConfigMap {
            v["data"]["uid"] = json!("0");
        }
    }
    let steps = changed_applies(&plan, &live);
    assert_eq!(steps.len(), 2);
    let h = Harness::with_live(Config::default(), &[], live, steps);
    reconcile(Arc::new(ada), h.ctx.clone()).await.unwrap();
    let seen = h.finish().await;
    let rb = seen
        .iter()
        .find(|s| s.path().ends_with("/rolebindings/homestead-owner"))
        .expect("the missing RoleBinding is applied again");
    assert_eq!(rb.method, Method::PATCH);
    let cm = seen
        .iter()
        .find(|s| s.path().ends_with("/configmaps/homestead"))
        .expect("the edited ConfigMap is applied again");
    assert_eq!(cm.body["data"]["uid"], "1001");
    assert!(
        seen.iter().all(|s| !s.path().ends_with("/status")),
        "status unchanged, so not written"
    );
    assert!(seen.iter().all(|s| s.method != Method::POST), "no event");
}

#[tokio::test]
async fn a_storage_configuration_change_keeps_volumes_and_says_how_to_migrate() {
    let mut ada = user("ada");
    deployed(&mut ada, "home-ada", 1, vec![]);
    let old =
        Config::from_yaml("storage: {private: {pathTemplate: '/export/home/{username}'}}").unwrap();
    let new =
        Config::from_yaml("storage: {private: {pathTemplate: '/srv/home/{username}'}}").unwrap();
    let live = stored(&user_objects(&old, &ada, &SecretSources::new()).unwrap());
    let steps = vec![
        step(
            Method::PATCH,
            &format!("{USERS}/ada/status"),
            with_status(&ada),
        ),
        step(Method::POST, EVENTS, Reply::Echo),
    ];
    let h = Harness::with_live(new, &[], live, steps);
    reconcile(Arc::new(ada), h.ctx.clone()).await.unwrap();
    let seen = h.finish().await;
    assert_eq!(phase_of(&seen[0]), "Deployed", "the User stays Deployed");
    let storage = seen[0].body["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "StorageCurrent")
        .unwrap();
    assert_eq!(storage["status"], "False");
    let message = storage["message"].as_str().unwrap();
    for part in [
        "homestead-home-ada-homestead-private",
        "/export/home/ada",
        "/srv/home/ada",
        "copy it there",
    ] {
        assert!(message.contains(part), "{part} in {message}");
    }
    assert_eq!(seen[1].body["reason"], "StorageDiffers");
    assert_eq!(seen[1].body["type"], "Warning");
}

#[tokio::test]
async fn a_foreign_namespace_is_never_adopted() {
    let ada = user("ada");
    let steps = vec![
        step(
            Method::GET,
            "/api/v1/namespaces/home-ada",
            Reply::Json(200, namespace_json("home-ada", json!({"team": "x"}))),
        ),
        step(
            Method::PATCH,
            &format!("{USERS}/ada/status"),
            with_status(&ada),
        ),
        step(Method::POST, EVENTS, Reply::Echo),
    ];
    let h = Harness::new(Config::default(), &[], steps);
    let action = reconcile(Arc::new(ada), h.ctx.clone()).await.unwrap();
    assert_eq!(action, Action::requeue(super::reconcile::FOREIGN_RECHECK));
    let seen = h.finish().await;
    assert_eq!(seen.len(), 3, "nothing is applied");
    assert_eq!(phase_of(&seen[1]), "Failed");
    assert!(
        seen[1].body["status"]["reason"]
            .as_str()
            .unwrap()
            .contains("not created by homestead")
    );
    let owned = seen[1].body["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "NamespaceOwned")
        .unwrap();
    assert_eq!(owned["status"], "False");
    assert_eq!(seen[2].body["reason"], "NamespaceNotOwned");
    assert_eq!(seen[2].body["type"], "Warning");
}

#[tokio::test]
async fn another_users_namespace_is_not_adopted_either() {
    let ada = user("ada");
    let steps = vec![
        step(
            Method::GET,
            "/api/v1/namespaces/home-ada",
            Reply::Json(200, our_namespace(OwnerKind::User, "bob", "home-ada")),
        ),
        step(
            Method::PATCH,
            &format!("{USERS}/ada/status"),
            with_status(&ada),
        ),
        step(Method::POST, EVENTS, Reply::Echo),
    ];
    let h = Harness::new(Config::default(), &[], steps);
    reconcile(Arc::new(ada), h.ctx.clone()).await.unwrap();
    let seen = h.finish().await;
    assert_eq!(phase_of(&seen[1]), "Failed");
}

#[tokio::test]
async fn a_labelled_namespace_without_the_owners_uid_is_never_adopted() {
    // Someone able to label namespaces made home-ada for a future User ada, with a
    // backdoor RoleBinding in it. Its labels put it in the live copies.
    let ada = user("ada");
    let forged = labelled_namespace(OwnerKind::User, "ada", "home-ada");
    let live = vec![(
        ObjectKey {
            kind: Kind::Namespace,
            namespace: None,
            name: "home-ada".into(),
        },
        forged,
    )];
    let steps = vec![
        step(
            Method::PATCH,
            &format!("{USERS}/ada/status"),
            with_status(&ada),
        ),
        step(Method::POST, EVENTS, Reply::Echo),
    ];
    let h = Harness::with_live(Config::default(), &[], live, steps);
    let action = reconcile(Arc::new(ada), h.ctx.clone()).await.unwrap();
    assert_eq!(action, Action::requeue(super::reconcile::FOREIGN_RECHECK));
    let seen = h.finish().await;
    assert_eq!(seen.len(), 2, "nothing in the namespace is touched");
    assert_eq!(phase_of(&seen[0]), "Failed");
    let reason = seen[0].body["status"]["reason"].as_str().unwrap();
    for words in [
        "\"home-ada\"",
        "no ownerReference names this User (uid uid-ada)",
        "never adopted",
    ] {
        assert!(reason.contains(words), "{words} in {reason}");
    }
    assert_eq!(seen[1].body["reason"], "NamespaceNotOwned");
}

#[tokio::test]
async fn a_namespace_made_before_owner_references_is_adopted() {
    // homestead made home-ada before namespaces carried the reference: its objects in it
    // name ada's uid. The next apply adds the reference.
    let mut ada = user("ada");
    deployed(&mut ada, "home-ada", 1, vec![]);
    let plan = user_objects(&Config::default(), &ada, &SecretSources::new()).unwrap();
    let mut live = stored(&plan);
    for (k, v) in &mut live {
        if k.kind == Kind::Namespace {
            v["metadata"]
                .as_object_mut()
                .unwrap()
                .remove("ownerReferences");
        }
    }
    let steps = changed_applies(&plan, &live);
    assert_eq!(steps.len(), 1, "the namespace");
    let h = Harness::with_live(Config::default(), &[], live, steps);
    reconcile(Arc::new(ada), h.ctx.clone()).await.unwrap();
    let seen = h.finish().await;
    assert_eq!(
        seen[0].body["metadata"]["ownerReferences"][0]["uid"],
        "uid-ada"
    );
}

#[tokio::test]
async fn a_deleted_claims_volume_is_freed_and_the_claim_reported_not_bound() {
    // ines deleted homestead-private: the claim is gone, its Retain volume is Released
    // with the deleted claim's uid.
    let mut ada = user("ada");
    deployed(&mut ada, "home-ada", 1, vec![]);
    let plan = user_objects(&Config::default(), &ada, &SecretSources::new()).unwrap();
    let volume = "homestead-home-ada-homestead-private";
    let mut live = stored(&plan);
    live.retain(|(k, _)| !(k.kind == Kind::PersistentVolumeClaim && k.name == "homestead-private"));
    let mut released = Value::Null;
    for (k, v) in &mut live {
        if k.name == volume {
            v["status"] = json!({"phase": "Released"});
            released = v.clone();
        }
    }
    let mut steps = changed_applies(&plan, &live);
    assert_eq!(steps.len(), 2, "the volume (Released) and the claim");
    steps.push(step(
        Method::PATCH,
        &format!("/api/v1/persistentvolumes/{volume}"),
        Reply::Json(200, released),
    ));
    steps.push(step(
        Method::PATCH,
        &format!("{USERS}/ada/status"),
        with_status(&ada),
    ));
    let h = Harness::with_live(Config::default(), &[], live, steps);
    reconcile(Arc::new(ada), h.ctx.clone()).await.unwrap();
    let seen = h.finish().await;
    let heal = &seen[2];
    assert!(
        !heal.uri.contains("fieldManager"),
        "a JSON Patch, not an apply: {}",
        heal.uri
    );
    assert_eq!(
        heal.body,
        json!([
            {"op": "test", "path": "/spec/claimRef/uid", "value": "claim-uid"},
            {"op": "remove", "path": "/spec/claimRef/uid"},
            {"op": "remove", "path": "/spec/claimRef/resourceVersion"},
        ])
    );
    let status = &seen[3].body["status"];
    assert_eq!(status["phase"], "Deployed", "not Failed");
    let bound = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "StorageBound")
        .unwrap();
    assert_eq!(
        (&bound["status"], &bound["reason"]),
        (&json!("False"), &json!("NotBound"))
    );
    let message = bound["message"].as_str().unwrap();
    for words in ["home-ada/homestead-private is not Bound yet", volume] {
        assert!(message.contains(words), "{words} in {message}");
    }
}

#[tokio::test]
async fn a_disabled_user_loses_the_role_binding_and_keeps_everything_else() {
    let mut ada = user("ada");
    deployed(&mut ada, "home-ada", 1, vec![]);
    let live = stored(&user_objects(&Config::default(), &ada, &SecretSources::new()).unwrap());
    ada.spec.disabled = true;
    ada.metadata.generation = Some(2);
    let plan = user_objects(&Config::default(), &ada, &SecretSources::new()).unwrap();
    assert!(plan.objects.iter().all(|o| o.kind() != Kind::RoleBinding));
    let binding =
        "/apis/rbac.authorization.k8s.io/v1/namespaces/home-ada/rolebindings/homestead-owner";
    for reply in [Reply::Json(200, status_body(200)), Reply::Fail(404)] {
        let mut steps = vec![step(
            Method::PATCH,
            &format!("{USERS}/ada/status"),
            with_status(&ada),
        )];
        steps.extend(changed_applies(&plan, &live));
        // Already gone (404) is just as good.
        steps.push(step(Method::DELETE, binding, reply));
        steps.push(step(
            Method::PATCH,
            &format!("{USERS}/ada/status"),
            with_status(&ada),
        ));
        let h = Harness::with_live(Config::default(), &[], live.clone(), steps);
        reconcile(Arc::new(ada.clone()), h.ctx.clone())
            .await
            .unwrap();
        let seen = h.finish().await;
        assert_eq!(
            seen.iter().filter(|s| s.method == Method::DELETE).count(),
            1,
            "only the RoleBinding is deleted"
        );
        assert!(
            seen.iter().all(|s| !s.path().contains("persistentvolume")),
            "storage is kept in place, untouched"
        );
        assert_eq!(phase_of(seen.last().unwrap()), "Deployed");
    }
}

#[tokio::test]
async fn members_added_and_removed_change_their_claims_but_never_volumes() {
    // bob left, carol joined; ada stays. The artifact secret is cloned from its source.
    let config =
        Config::from_yaml("controller: {artifactSecret: {namespace: argo, name: minio}}").unwrap();
    let mut visit = session(&["ada", "carol"]);
    deployed(&mut visit, "cm37235-2", 1, vec![]);
    let users = [user("ada"), user("bob"), user("carol")];
    let source = Secret {
        metadata: ObjectMeta {
            name: Some("minio".into()),
            namespace: Some("argo".into()),
            ..Default::default()
        },
        string_data: None,
        type_: Some("Opaque".into()),
        ..Default::default()
    };
    let members = users
        .iter()
        .map(|u| (u.spec.username.clone(), u.spec.clone()))
        .collect();
    let sources = SecretSources::from([(("argo".into(), "minio".into()), source.clone())]);
    let mut before = visit.clone();
    before.spec.members = vec!["ada".into(), "bob".into()];
    let live = stored(&session_objects(&config, &before, &members, &sources).unwrap());
    let plan = session_objects(&config, &visit, &members, &sources).unwrap();
    let mut steps = vec![
        step(
            Method::GET,
            "/api/v1/namespaces/argo/secrets/minio",
            Reply::Json(200, serde_json::to_value(&source).unwrap()),
        ),
        step(
            Method::PATCH,
            &format!("{SESSIONS}/cm37235-2/status"),
            with_status(&visit),
        ),
    ];
    steps.extend(changed_applies(&plan, &live));
    steps.push(step(
        Method::DELETE,
        "/api/v1/namespaces/cm37235-2/persistentvolumeclaims/homestead-private-bob",
        Reply::Json(200, status_body(200)),
    ));
    steps.push(step(
        Method::PATCH,
        &format!("{SESSIONS}/cm37235-2/status"),
        with_status(&visit),
    ));
    let h = Harness::with_live(config, &users, live, steps);
    reconcile(Arc::new(visit), h.ctx.clone()).await.unwrap();
    let seen = h.finish().await;
    assert!(
        seen.iter()
            .all(|s| !s.path().contains("homestead-private-ada")),
        "the staying member's claim and volume are left alone"
    );
    let carol = seen
        .iter()
        .find(|s| {
            s.path()
                .ends_with("/persistentvolumeclaims/homestead-private-carol")
        })
        .expect("the new member's claim is applied");
    assert_eq!(carol.method, Method::PATCH);
    assert!(
        seen.iter().any(|s| s.method == Method::PATCH
            && s.path()
                .ends_with("/persistentvolumes/homestead-cm37235-2-homestead-private-carol")),
        "and its volume"
    );
    let deletes: Vec<_> = seen.iter().filter(|s| s.method == Method::DELETE).collect();
    assert_eq!(deletes.len(), 1);
    assert!(deletes[0].path().ends_with("/homestead-private-bob"));
    assert!(
        seen.iter()
            .all(|s| !(s.method == Method::DELETE && s.path().contains("persistentvolumes"))),
        "volumes are never deleted"
    );
    let cm = seen
        .iter()
        .find(|s| s.path().ends_with("/configmaps/sessionspaces"))
        .unwrap();
    assert_eq!(cm.body["data"]["members"], r#"["ada","carol"]"#);
    let rb = seen
        .iter()
        .find(|s| s.path().ends_with("/rolebindings/visit-member"))
        .unwrap();
    assert_eq!(rb.body["subjects"].as_array().unwrap().len(), 2);
    assert!(
        seen.iter()
            .all(|s| !s.path().ends_with("/secrets/artifact-s3")),
        "the artifact secret is unchanged"
    );
    let secret = plan
        .objects
        .iter()
        .find(|o| o.key().name == "artifact-s3")
        .unwrap()
        .to_value()
        .unwrap();
    assert_eq!(secret["type"], "Opaque");
    assert_eq!(secret["metadata"]["labels"][LABEL_SESSION], "cm37235-2");
}

fn deleting(mut ada: User) -> User {
    ada.metadata.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
    ada
}

#[tokio::test]
async fn delete_removes_the_namespace_keeps_volumes_and_drops_the_finalizer() {
    let mut ada = user("ada");
    deployed(&mut ada, "home-ada", 1, vec![]);
    let ada = deleting(ada);
    let mut done = ada.clone();
    done.finalizers_mut().clear();
    let steps = vec![
        step(
            Method::PATCH,
            &format!("{USERS}/ada/status"),
            with_status(&ada),
        ),
        step(
            Method::GET,
            "/api/v1/namespaces/home-ada",
            Reply::Json(200, our_namespace(OwnerKind::User, "ada", "home-ada")),
        ),
        step(
            Method::DELETE,
            "/api/v1/namespaces/home-ada",
            Reply::Json(200, our_namespace(OwnerKind::User, "ada", "home-ada")),
        ),
        step(Method::POST, EVENTS, Reply::Echo),
        step(Method::PATCH, &format!("{USERS}/ada"), with_status(&done)),
    ];
    let h = Harness::new(Config::default(), &[], steps);
    reconcile(Arc::new(ada), h.ctx.clone()).await.unwrap();
    let seen = h.finish().await;
    assert_eq!(phase_of(&seen[0]), "Deleting");
    assert_eq!(seen[3].body["reason"], "NamespaceDeleted");
    assert_eq!(
        seen[4].body,
        json!([
            {"op": "test", "path": "/metadata/finalizers/0", "value": FINALIZER},
            {"op": "remove", "path": "/metadata/finalizers/0"}
        ])
    );
    assert!(seen.iter().all(|s| !s.path().contains("persistentvolume")));
}

#[tokio::test]
async fn delete_keeps_namespaces_when_configured_or_foreign() {
    let mut ada = user("ada");
    deployed(&mut ada, "home-ada", 1, vec![]);
    let ada = deleting(ada);
    let mut done = ada.clone();
    done.finalizers_mut().clear();
    let keep = Config::from_yaml("controller: {deleteNamespaces: false}").unwrap();
    let steps = vec![
        step(
            Method::PATCH,
            &format!("{USERS}/ada/status"),
            with_status(&ada),
        ),
        step(
            Method::GET,
            "/api/v1/namespaces/home-ada",
            Reply::Json(200, our_namespace(OwnerKind::User, "ada", "home-ada")),
        ),
        // The owner reference goes, so the garbage collector keeps the namespace.
        step(
            Method::PATCH,
            "/api/v1/namespaces/home-ada",
            Reply::Json(200, namespace_json("home-ada", json!({}))),
        ),
        step(Method::PATCH, &format!("{USERS}/ada"), with_status(&done)),
    ];
    let h = Harness::new(keep, &[], steps);
    reconcile(Arc::new(ada.clone()), h.ctx.clone())
        .await
        .unwrap();
    let seen = h.finish().await;
    assert!(seen.iter().all(|s| s.method != Method::DELETE));
    assert_eq!(
        seen[2].body,
        json!([
            {"op": "test", "path": "/metadata/ownerReferences/0/uid", "value": "uid-ada"},
            {"op": "remove", "path": "/metadata/ownerReferences/0"}
        ])
    );

    // Homestead's labels without the owner reference: not homestead's, not deleted.
    let steps = vec![
        step(
            Method::PATCH,
            &format!("{USERS}/ada/status"),
            with_status(&ada),
        ),
        step(
            Method::GET,
            "/api/v1/namespaces/home-ada",
            Reply::Json(200, labelled_namespace(OwnerKind::User, "ada", "home-ada")),
        ),
        step(Method::PATCH, &format!("{USERS}/ada"), with_status(&done)),
    ];
    let h = Harness::new(Config::default(), &[], steps);
    reconcile(Arc::new(ada.clone()), h.ctx.clone())
        .await
        .unwrap();
    assert!(h.finish().await.iter().all(|s| s.method != Method::DELETE));

    let steps = vec![
        step(
            Method::PATCH,
            &format!("{USERS}/ada/status"),
            with_status(&ada),
        ),
        step(
            Method::GET,
            "/api/v1/namespaces/home-ada",
            Reply::Json(200, namespace_json("home-ada", json!({}))),
        ),
        step(Method::PATCH, &format!("{USERS}/ada"), with_status(&done)),
    ];
    let h = Harness::new(Config::default(), &[], steps);
    reconcile(Arc::new(ada), h.ctx.clone()).await.unwrap();
    assert!(h.finish().await.iter().all(|s| s.method != Method::DELETE));
}

#[tokio::test]
async fn api_errors_fail_one_object_back_off_and_spare_the_rest() {
    for code in [409u16, 429, 500] {
        let mut ada = user("ada");
        deployed(&mut ada, "home-ada", 1, vec![]);
        let plan = user_objects(&Config::default(), &ada, &SecretSources::new()).unwrap();
        let mut steps = vec![step(
            Method::GET,
            "/api/v1/namespaces/home-ada",
            Reply::Json(200, our_namespace(OwnerKind::User, "ada", "home-ada")),
        )];
        for object in homestead_core::desired::apply_order(&plan.objects) {
            let reply = if object.kind() == Kind::ConfigMap {
                Reply::Fail(code)
            } else {
                Reply::Echo
            };
            steps.push(step(Method::PATCH, &object_path(object), reply));
        }
        steps.push(step(
            Method::PATCH,
            &format!("{USERS}/ada/status"),
            with_status(&ada),
        ));
        steps.push(step(Method::POST, EVENTS, Reply::Echo));
        // Then another user reconciles normally with the same context.
        let mut bob = user("bob");
        deployed(&mut bob, "home-bob", 1, vec![]);
        let bob_plan = user_objects(&Config::default(), &bob, &SecretSources::new()).unwrap();
        steps.push(step(
            Method::GET,
            "/api/v1/namespaces/home-bob",
            Reply::Json(200, our_namespace(OwnerKind::User, "bob", "home-bob")),
        ));
        steps.extend(applies(&bob_plan.objects));
        // Claims just made are not Bound yet: the status says so.
        steps.push(step(
            Method::PATCH,
            &format!("{USERS}/bob/status"),
            with_status(&bob),
        ));

        let h = Harness::new(Config::default(), &[], steps);
        let ada = Arc::new(ada);
        let err = reconcile(ada.clone(), h.ctx.clone()).await.unwrap_err();
        assert_eq!(err.status_code(), Some(code), "{err}");
        let first = error_policy(ada.clone(), &err, h.ctx.clone());
        let second = error_policy(ada.clone(), &err, h.ctx.clone());
        assert_eq!(first, Action::requeue(backoff(1, &err)));
        assert_eq!(second, Action::requeue(backoff(2, &err)));
        assert!(backoff(2, &err) > backoff(1, &err), "backoff grows");
        assert_eq!(h.ctx.failure_count(OwnerKind::User, "ada"), 2);

        reconcile(Arc::new(bob), h.ctx.clone()).await.unwrap();
        assert_eq!(h.ctx.failure_count(OwnerKind::User, "bob"), 0);
        assert_eq!(h.ctx.failure_count(OwnerKind::User, "ada"), 2, "per object");

        let seen = h.finish().await;
        let ada_applies = seen
            .iter()
            .filter(|s| s.method == Method::PATCH && s.path().contains("home-ada"))
            .count();
        assert_eq!(
            ada_applies,
            plan.objects.len(),
            "every object of ada was still attempted after the failure ({code})"
        );
        let status = seen
            .iter()
            .find(|s| s.path().ends_with("/users/ada/status"))
            .unwrap();
        assert_eq!(phase_of(status), "Failed");
        assert!(
            status.body["status"]["reason"]
                .as_str()
                .unwrap()
                .contains("ConfigMap home-ada/homestead"),
            "{}",
            status.body
        );
    }
}

#[tokio::test]
async fn backoff_is_capped_and_conflicts_retry_sooner() {
    let conflict = super::Error::Kube(kube::Error::Api(Box::new(
        serde_json::from_value(status_body(409)).unwrap(),
    )));
    let internal = super::Error::Kube(kube::Error::Api(Box::new(
        serde_json::from_value(status_body(500)).unwrap(),
    )));
    assert!(backoff(1, &conflict) < backoff(1, &internal));
    assert_eq!(backoff(30, &internal), std::time::Duration::from_secs(300));
}

#[tokio::test]
async fn an_invalid_spec_fails_without_touching_the_cluster() {
    let mut ada = user("ada");
    ada.spec.namespace = Some("Bad_Name".into());
    let steps = vec![
        step(
            Method::PATCH,
            &format!("{USERS}/ada/status"),
            with_status(&ada),
        ),
        step(Method::POST, EVENTS, Reply::Echo),
    ];
    let h = Harness::new(Config::default(), &[], steps);
    let action = reconcile(Arc::new(ada), h.ctx.clone()).await.unwrap();
    assert_eq!(action, Action::await_change());
    let seen = h.finish().await;
    assert_eq!(phase_of(&seen[0]), "Failed");
    assert_eq!(seen[1].body["reason"], "InvalidSpec");
}

mod lease {
    use super::*;
    use crate::controller::lease::{LeaseSettings, try_hold};
    use k8s_openapi::api::coordination::v1::Lease;
    use kube::api::Api;

    const LEASE: &str =
        "/apis/coordination.k8s.io/v1/namespaces/homestead/leases/homestead-controller";
    const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/homestead/leases";

    fn lease(holder: &str, renewed: Timestamp) -> Value {
        json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "homestead-controller", "namespace": "homestead", "resourceVersion": "41"},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15,
                     "renewTime": renewed.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()}
        })
    }

    async fn round(steps: Vec<Step>) -> (Result<bool, kube::Error>, Vec<Seen>) {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let server = serve(handle, steps);
        let client = Client::new(service, "default");
        let api: Api<Lease> = Api::namespaced(client, "homestead");
        let result = try_hold(&api, &LeaseSettings::new("homestead", "pod-a")).await;
        drop(api);
        (result, server.await.unwrap())
    }

    #[tokio::test]
    async fn a_missing_lease_is_created_and_held() {
        let (held, seen) = round(vec![
            step(Method::GET, LEASE, Reply::Fail(404)),
            step(Method::POST, LEASES, Reply::Echo),
        ])
        .await;
        assert!(held.unwrap());
        assert_eq!(seen[1].body["spec"]["holderIdentity"], "pod-a");
    }

    #[tokio::test]
    async fn a_fresh_lease_of_another_replica_is_followed() {
        let (held, seen) = round(vec![step(
            Method::GET,
            LEASE,
            Reply::Json(200, lease("pod-b", Timestamp::now())),
        )])
        .await;
        assert!(!held.unwrap());
        assert_eq!(seen.len(), 1, "no write");
    }

    #[tokio::test]
    async fn an_expired_lease_is_taken_with_its_resource_version() {
        let old = Timestamp::now() - k8s_openapi::jiff::SignedDuration::from_secs(60);
        let (held, seen) = round(vec![
            step(Method::GET, LEASE, Reply::Json(200, lease("pod-b", old))),
            step(Method::PUT, LEASE, Reply::Echo),
        ])
        .await;
        assert!(held.unwrap());
        assert_eq!(seen[1].body["metadata"]["resourceVersion"], "41");
        assert_eq!(seen[1].body["spec"]["holderIdentity"], "pod-a");
    }

    #[tokio::test]
    async fn losing_the_race_is_a_conflict_and_means_follow() {
        let old = Timestamp::now() - k8s_openapi::jiff::SignedDuration::from_secs(60);
        let (held, _) = round(vec![
            step(Method::GET, LEASE, Reply::Json(200, lease("pod-b", old))),
            step(Method::PUT, LEASE, Reply::Fail(409)),
        ])
        .await;
        assert!(!held.unwrap());
    }

    /// The reply to `request` with `code` and `body`.
    fn reply(send: tower_test::mock::SendResponse<Response<Body>>, code: u16, body: &Value) {
        send.send_response(
            Response::builder()
                .status(code)
                .header("content-type", "application/json")
                .body(Body::from(serde_json::to_vec(body).unwrap()))
                .unwrap(),
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_hung_renewal_stops_leading_before_the_lease_can_expire() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = Client::new(service, "default");
        let settings = LeaseSettings::new("homestead", "pod-a");
        let (leader, mut leading) = tokio::sync::watch::channel(false);
        let token = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn(crate::controller::lease::run(
            client,
            settings.clone(),
            leader,
            Metrics::default(),
            token.clone(),
        ));
        // Round one: there is no lease; it is created and held.
        let started = tokio::time::Instant::now();
        let (request, send) = handle.next_request().await.unwrap();
        assert_eq!(
            (request.method(), request.uri().path()),
            (&Method::GET, LEASE)
        );
        reply(send, 404, &status_body(404));
        let (request, send) = handle.next_request().await.unwrap();
        assert_eq!(
            (request.method(), request.uri().path()),
            (&Method::POST, LEASES)
        );
        let body = request.into_body().collect_bytes().await.unwrap();
        reply(send, 201, &serde_json::from_slice(&body).unwrap());
        leading.wait_for(|l| *l).await.unwrap();
        // Round two: the API server never answers the read.
        let (request, _hung) = handle.next_request().await.unwrap();
        assert_eq!(
            (request.method(), request.uri().path()),
            (&Method::GET, LEASE)
        );
        // (The borrow wait_for returns is dropped at once: it would block the sender.)
        let stopped = tokio::time::timeout(Duration::from_secs(120), async {
            leading.wait_for(|l| !*l).await.map(|_| ())
        })
        .await;
        assert!(
            stopped.is_ok(),
            "a hung renewal must not keep the replica leading"
        );
        let after = started.elapsed();
        assert!(
            after <= settings.renew_deadline && after < settings.duration,
            "stopped leading {after:?} after the lease was taken"
        );
        // Shut down; every request from now on (a round, the release) finds no lease.
        token.cancel();
        let answer = tokio::spawn(async move {
            while let Some((_, send)) = handle.next_request().await {
                reply(send, 404, &status_body(404));
            }
        });
        task.await.unwrap();
        answer.abort();
    }

    #[tokio::test]
    async fn our_own_lease_is_renewed() {
        let (held, seen) = round(vec![
            step(
                Method::GET,
                LEASE,
                Reply::Json(200, lease("pod-a", Timestamp::now())),
            ),
            step(Method::PUT, LEASE, Reply::Echo),
        ])
        .await;
        assert!(held.unwrap());
        assert_eq!(seen[1].body["spec"]["holderIdentity"], "pod-a");
    }
}

#[tokio::test]
async fn a_bound_volume_keeps_its_binding_on_reapply() {
    let mut ada = user("ada");
    deployed(&mut ada, "home-ada", 1, vec![]);
    let plan = user_objects(&Config::default(), &ada, &SecretSources::new()).unwrap();
    // The volumes are bound, and someone removed a label homestead set on them.
    let mut live = stored(&plan);
    for (k, v) in &mut live {
        if k.kind == Kind::PersistentVolume {
            v["metadata"]["labels"]
                .as_object_mut()
                .unwrap()
                .remove("homestead.dev/claim");
        }
    }
    let steps = changed_applies(&plan, &live);
    assert_eq!(steps.len(), 2, "the two volumes");
    let h = Harness::with_live(Config::default(), &[], live, steps);
    reconcile(Arc::new(ada), h.ctx.clone()).await.unwrap();
    let seen = h.finish().await;
    for apply in &seen {
        assert!(apply.path().contains("/persistentvolumes/"));
        assert_eq!(
            apply.body["spec"]["claimRef"]["uid"], "claim-uid",
            "the binding is re-applied as it stands"
        );
        assert_eq!(
            apply.body["metadata"]["labels"]["homestead.dev/claim"],
            apply.body["spec"]["claimRef"]["name"]
        );
    }
}

/// Projects: a hand-over's workloads, and what only a scripted server can do to it.
mod projects {
    use super::*;
    use crate::controller::apply::stale_member_claims;
    use crate::controller::live::Live;
    use crate::controller::project::WORKLOADS_FIELD_MANAGER;
    use homestead_core::desired::project_objects;
    use homestead_core::handover::StampedKind;
    use homestead_core::resources::{Project, ProjectMember, ProjectSpec};
    use k8s_openapi::api::core::v1::PersistentVolumeClaim;
    use kube::api::Api;

    const PROJECT_STATUS: &str = "/apis/homestead.dev/v1alpha1/projects/mx/status";
    const NS_EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/p-mx/events";
    const DEPLOYMENT: &str = "/apis/apps/v1/namespaces/p-mx/deployments/web";

    /// Project `mx` (gid 4000) just handed from ada to bob, ada kept as `edit`: its
    /// objects are in place as planned (the live copies), its workloads not yet settled
    /// (`status.owner` is still ada).
    fn handed_over() -> (Project, Vec<User>, Vec<(ObjectKey, Value)>) {
        let users = vec![user("ada"), user("bob")];
        let mut p = Project::new(
            "mx",
            ProjectSpec {
                owner: "bob".into(),
                members: vec![ProjectMember {
                    username: "ada".into(),
                    role: "edit".into(),
                }],
                gid: Some(4000),
                ..Default::default()
            },
        );
        p.metadata.uid = Some("uid-project-mx".into());
        p.metadata.generation = Some(2);
        p.finalizers_mut().push(FINALIZER.into());
        deployed(&mut p, "p-mx", 2, vec![]);
        let status = p.status.as_mut().unwrap();
        status.gid = Some(4000);
        status.members = Some(1);
        status.owner = Some("ada".into());
        status.runners = Some(vec!["ada".into(), "bob".into()]);
        let specs = users
            .iter()
            .map(|u| (u.spec.username.clone(), u.spec.clone()))
            .collect();
        let plan = project_objects(&Config::default(), &p, &specs, &SecretSources::new()).unwrap();
        (p, users, stored(&plan))
    }

    fn list_path(kind: StampedKind) -> String {
        let r = kind.api_resource();
        format!(
            "/apis/{}/{}/namespaces/p-mx/{}",
            r.group, r.version, r.plural
        )
    }

    /// The lists of every workload kind in p-mx: ada's Deployment `web`; Argo not
    /// installed (404).
    fn lists() -> Vec<Step> {
        StampedKind::ALL
            .into_iter()
            .map(|kind| {
                let reply = match kind {
                    StampedKind::Deployment => Reply::Json(
                        200,
                        json!({"apiVersion": "apps/v1", "kind": "DeploymentList",
                               "metadata": {"resourceVersion": "7"},
                               "items": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                          "metadata": {"name": "web", "namespace": "p-mx"},
                                          "spec": {"template": {"metadata": {"annotations": {"homestead.dev/run-as": "ada"}}}}}]}),
                    ),
                    StampedKind::Workflow
                    | StampedKind::CronWorkflow
                    | StampedKind::WorkflowTemplate => Reply::Fail(404),
                    _ => Reply::Json(
                        200,
                        json!({"apiVersion": "v1", "kind": "List", "metadata": {}, "items": []}),
                    ),
                };
                step(Method::GET, &list_path(kind), reply)
            })
            .collect()
    }

    /// The re-stamp (answered with the Deployment), its Event and the recorded owner.
    fn settled(project: &Project) -> Vec<Step> {
        let web = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                         "metadata": {"name": "web", "namespace": "p-mx"}});
        vec![
            step(Method::PATCH, DEPLOYMENT, Reply::Json(200, web)),
            step(Method::POST, NS_EVENTS, Reply::Echo),
            step(Method::PATCH, PROJECT_STATUS, with_status(project)),
        ]
    }

    #[tokio::test]
    async fn a_hand_over_restamps_the_old_owners_workloads_once() {
        let (project, users, live) = handed_over();
        let mut steps = lists();
        steps.extend(settled(&project));
        let h = Harness::with_live(Config::default(), &users, live.clone(), steps);
        reconcile(Arc::new(project.clone()), h.ctx.clone())
            .await
            .unwrap();
        let seen = h.finish().await;
        let patch = &seen[9];
        assert_eq!(
            patch.body,
            json!([
                {"op": "test", "path": "/spec/template/metadata/annotations/homestead.dev~1run-as", "value": "ada"},
                {"op": "replace", "path": "/spec/template/metadata/annotations/homestead.dev~1run-as", "value": "bob"},
            ]),
            "only the stamp, and only if it still names ada"
        );
        let event = &seen[10].body;
        assert_eq!(event["reason"], "Transferred");
        assert_eq!(event["type"], "Normal");
        assert_eq!(
            (&event["regarding"]["kind"], &event["regarding"]["name"]),
            (&json!("Deployment"), &json!("web"))
        );
        assert_eq!(event["related"]["kind"], "Project");
        let status = &seen[11];
        assert!(
            status
                .uri
                .contains(&format!("fieldManager={WORKLOADS_FIELD_MANAGER}")),
            "{}",
            status.uri
        );
        assert_eq!(
            status.body["status"],
            json!({"owner": "bob", "runners": ["ada", "bob"]})
        );

        // Settled: the next reconcile lists nothing and writes nothing.
        let mut done = project;
        done.status.as_mut().unwrap().owner = Some("bob".into());
        let h = Harness::with_live(Config::default(), &users, live, Vec::new());
        reconcile(Arc::new(done), h.ctx.clone()).await.unwrap();
        assert!(h.finish().await.is_empty());
    }

    /// A re-stamp the API server refuses — a conflict, throttling, an internal error —
    /// fails the reconcile (the owner stays unrecorded, the Project says Failed) and backs
    /// off; the retry lists again and finishes the hand-over.
    #[tokio::test]
    async fn a_refused_restamp_is_retried_until_the_hand_over_is_done() {
        for code in [409u16, 429, 500] {
            let (project, users, live) = handed_over();
            let mut steps = lists();
            steps.push(step(Method::PATCH, DEPLOYMENT, Reply::Fail(code)));
            steps.push(step(Method::PATCH, PROJECT_STATUS, with_status(&project)));
            steps.push(step(Method::POST, EVENTS, Reply::Echo));
            steps.extend(lists());
            steps.extend(settled(&project));
            let h = Harness::with_live(Config::default(), &users, live, steps);
            let project = Arc::new(project);
            let err = reconcile(project.clone(), h.ctx.clone()).await.unwrap_err();
            assert_eq!(err.status_code(), Some(code), "{err}");
            let wait = error_policy(project.clone(), &err, h.ctx.clone());
            assert_eq!(wait, Action::requeue(backoff(1, &err)));
            assert_eq!(h.ctx.failure_count(OwnerKind::Project, "mx"), 1);
            reconcile(project.clone(), h.ctx.clone()).await.unwrap();
            assert_eq!(h.ctx.failure_count(OwnerKind::Project, "mx"), 0);
            let seen = h.finish().await;
            let failed = &seen[10];
            assert_eq!(phase_of(failed), "Failed", "{code}");
            assert!(
                failed.body["status"]["reason"]
                    .as_str()
                    .unwrap()
                    .contains("workloads of Project mx"),
                "{}",
                failed.body
            );
            assert!(
                failed.body["status"].get("owner").is_none(),
                "the owner is recorded only once the hand-over is done"
            );
            let recorded: Vec<&Seen> = seen
                .iter()
                .filter(|s| s.uri.contains(WORKLOADS_FIELD_MANAGER))
                .collect();
            assert_eq!(recorded.len(), 1, "{code}");
            assert_eq!(recorded[0].body["status"]["owner"], "bob");
        }
    }

    /// A re-stamp admission keeps refusing (here: the template mounts a claim the new
    /// owner may not) is given up on after a few failed reconciles in a row: the workload
    /// keeps running as the old owner, a Warning Event says why, and the hand-over of
    /// the rest is recorded instead of failing for ever.
    #[tokio::test]
    async fn a_restamp_refused_again_and_again_is_given_up() {
        use crate::controller::project::GIVE_UP_AFTER;
        let (project, users, live) = handed_over();
        let mut steps = lists();
        steps.push(step(Method::PATCH, DEPLOYMENT, Reply::Fail(403)));
        steps.push(step(Method::POST, NS_EVENTS, Reply::Echo));
        steps.push(step(Method::PATCH, PROJECT_STATUS, with_status(&project)));
        let h = Harness::with_live(Config::default(), &users, live, steps);
        let project = Arc::new(project);
        let refused = super::super::Error::Kube(kube::Error::Api(Box::new(
            serde_json::from_value(status_body(403)).unwrap(),
        )));
        for _ in 0..GIVE_UP_AFTER {
            error_policy(project.clone(), &refused, h.ctx.clone());
        }
        reconcile(project.clone(), h.ctx.clone()).await.unwrap();
        let seen = h.finish().await;
        let event = &seen[10].body;
        assert_eq!(
            (&event["reason"], &event["type"]),
            (&json!("NotTransferred"), &json!("Warning"))
        );
        assert!(
            event["note"].as_str().unwrap().contains("scripted 403"),
            "{event}"
        );
        assert_eq!(seen[11].body["status"]["owner"], "bob");
    }

    /// A watch that expires (410 Gone, which a real API server sends when it pleases) is
    /// followed by a fresh list: the live copies drop what went meanwhile and take in
    /// what came, so a former member's claim made during the gap is still found stale.
    #[tokio::test]
    async fn an_expired_watch_relists_the_live_copies() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let claim = |name: &str| {
            json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                   "metadata": {"name": name, "namespace": "p-mx", "resourceVersion": "5",
                                "labels": {LABEL_MANAGED_BY: "homestead", "homestead.dev/project": "mx"}},
                   "spec": {}})
        };
        let list = |names: &[&str]| {
            Reply::Json(
                200,
                json!({"apiVersion": "v1", "kind": "PersistentVolumeClaimList",
                       "metadata": {"resourceVersion": "10"},
                       "items": names.iter().map(|n| claim(n)).collect::<Vec<_>>()}),
            )
        };
        const CLAIMS: &str = "/api/v1/persistentvolumeclaims";
        let expired = json!({"type": "ERROR", "object": {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "too old resource version: 10 (20)", "reason": "Expired", "code": 410}});
        let steps = vec![
            step(
                Method::GET,
                CLAIMS,
                list(&["homestead-private-ada", "homestead-private-bob"]),
            ),
            step(Method::GET, CLAIMS, Reply::Json(200, expired)),
            // Meanwhile bob's claim went and erin's came.
            step(
                Method::GET,
                CLAIMS,
                list(&["homestead-private-ada", "homestead-private-erin"]),
            ),
            step(Method::GET, CLAIMS, Reply::Hang),
        ];
        let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let server = serve(handle, steps);
        let client = Client::new(service, "default");
        let live = Live::new(1);
        let stream = live.watch(
            Kind::PersistentVolumeClaim,
            Api::<PersistentVolumeClaim>::all(client),
            watcher::Config::default(),
        );
        let drain = tokio::spawn(async move {
            futures::pin_mut!(stream);
            let mut errors = 0;
            while let Some(item) = futures::StreamExt::next(&mut stream).await {
                errors += usize::from(item.is_err());
            }
            errors
        });
        let key = |name: &str| ObjectKey {
            kind: Kind::PersistentVolumeClaim,
            namespace: Some("p-mx".into()),
            name: name.into(),
        };
        let relisted = tokio::time::timeout(Duration::from_secs(20), async {
            while live.get(&key("homestead-private-erin")).is_none() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(relisted.is_ok(), "the watch was never relisted");
        assert!(live.get(&key("homestead-private-bob")).is_none());
        assert_eq!(
            stale_member_claims(&live, "p-mx", "mx", &["homestead-private-ada".to_owned()]),
            [key("homestead-private-erin")]
        );
        drain.abort();
        let _ = drain.await;
        let seen = server.await.expect("fake API server");
        assert!(seen[1].uri.contains("watch=true"), "{}", seen[1].uri);
        assert!(
            !seen[2].uri.contains("watch=true"),
            "a fresh list: {}",
            seen[2].uri
        );
    }
}

/// A site hook that agrees to everything and counts its calls: a real HTTP server on
/// 127.0.0.1 (the hooks' client is not the Kubernetes client this module scripts).
async fn agreeing_hook() -> (
    String,
    Arc<std::sync::atomic::AtomicUsize>,
    tokio::task::JoinHandle<()>,
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let counter = counter.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |_: http::Request<hyper::body::Incoming>| {
                        counter.fetch_add(1, Ordering::SeqCst);
                        async {
                            Ok::<_, std::convert::Infallible>(http::Response::new(
                                http_body_util::Full::new(bytes::Bytes::from_static(b"ok")),
                            ))
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    (url, calls, task)
}

/// A blocking hook's agreement is written before anything is applied: when the apply
/// then fails, the failed status keeps it and the retry applies without asking again —
/// even when the retry reads a cached User that has not caught up with those writes (the
/// controller remembers what it wrote, and never writes a stale record back). (A real API
/// server does not fail a ConfigMap apply on request, nor hold back a watch event; this
/// script does.)
#[tokio::test]
async fn a_hooks_agreement_survives_a_failed_apply_and_is_not_asked_again() {
    use homestead_core::config::HookEvent;
    use homestead_core::resources::HookRecord;
    use std::sync::atomic::Ordering;
    let (url, calls, hook) = agreeing_hook().await;
    let config = Config::from_yaml(&format!(
        "hooks: [{{name: quota, url: '{url}', kinds: [User], blocking: true}}]"
    ))
    .unwrap();
    // Generation 1 was created through the hooks; generation 2 is a spec change.
    let mut ada = user("ada");
    deployed(&mut ada, "home-ada", 1, vec![]);
    ada.metadata.generation = Some(2);
    if let Some(status) = ada.status.as_mut() {
        status.hooks = Some(HookRecord {
            generation: 1,
            event: HookEvent::Create,
            agreed: true,
            notified: true,
        });
    }
    let plan = user_objects(&config, &ada, &SecretSources::new()).unwrap();
    let namespace = || {
        step(
            Method::GET,
            "/api/v1/namespaces/home-ada",
            Reply::Json(200, our_namespace(OwnerKind::User, "ada", "home-ada")),
        )
    };
    let status = || {
        step(
            Method::PATCH,
            &format!("{USERS}/ada/status"),
            with_status(&ada),
        )
    };
    // First reconcile: asked, agreement written with Deploying, the ConfigMap fails.
    let mut steps = vec![namespace(), status()];
    for object in homestead_core::desired::apply_order(&plan.objects) {
        let reply = if object.kind() == Kind::ConfigMap {
            Reply::Fail(500)
        } else {
            Reply::Echo
        };
        steps.push(step(Method::PATCH, &object_path(object), reply));
    }
    steps.extend([status(), step(Method::POST, EVENTS, Reply::Echo)]);
    // Second reconcile, from the cached User as it was before: not asked; Deploying (the
    // cache says generation 1 is deployed), everything applied, Deployed and told.
    steps.push(namespace());
    steps.push(status());
    steps.extend(applies(&plan.objects));
    steps.push(status());
    let h = Harness::hooked(config, steps);

    let err = reconcile(Arc::new(ada.clone()), h.ctx.clone())
        .await
        .unwrap_err();
    assert_eq!(err.status_code(), Some(500), "{err}");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "asked once");
    let agreed = HookRecord {
        generation: 2,
        event: HookEvent::Update,
        agreed: true,
        notified: false,
    };
    reconcile(Arc::new(ada), h.ctx.clone()).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1, "not asked again");
    hook.abort();

    let seen = h.finish().await;
    let written: Vec<(String, Value)> = seen
        .iter()
        .filter(|s| s.path().ends_with("/users/ada/status"))
        .map(|s| (phase_of(s), s.body["status"]["hooks"].clone()))
        .collect();
    let agreed = serde_json::to_value(&agreed).unwrap();
    let told = json!({"generation": 2, "event": "UPDATE", "agreed": true, "notified": true});
    assert_eq!(
        written,
        [
            ("Deploying".to_owned(), agreed.clone()),
            ("Failed".to_owned(), agreed.clone()),
            ("Deploying".to_owned(), agreed),
            ("Deployed".to_owned(), told),
        ]
    );
}
