//! Site hooks through the real controller on a real API server (`HOMESTEAD_TEST_KUBECONFIG`;
//! see `tests/support/cluster.rs`), the hooks being real HTTP servers in this test
//! (`support::hook_server`): a blocking hook refuses a User's CREATE (phase `Failed`,
//! condition `HookRejected`, nothing made) and then agrees (the User is deployed, the
//! notifying hook is told, retried with the same key); an UPDATE asks again, a steady-state
//! reconcile does not; a DELETE waits for the blocking hook, a non-admin may not skip it, an
//! admin's `homestead.dev/skip-hooks` lets it through (an Event says so).

mod support;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use homestead_core::config::HookEvent;
use homestead_core::resources::{HookRecord, Phase, User};
use support::cluster::{
    Cluster, ServeOptions, WAIT, client_as, client_with_groups, eventually, wait_phase,
};
use support::hook_server::{HookServer, Reply, Seen, schema_violations};

fn schema() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("manifests/hooks/payload.schema.json");
    serde_json::from_slice(&std::fs::read(path).expect("schema file")).expect("schema JSON")
}

fn user(name: &str, uid: i64) -> User {
    serde_json::from_value(json!({
        "apiVersion": "homestead.dev/v1alpha1", "kind": "User",
        "metadata": {"name": name},
        "spec": {"username": name, "uid": uid, "gid": uid}
    }))
    .expect("user")
}

/// The `HookRejected` condition of `user` when it is `True`: its message.
fn rejection(user: &User) -> Option<String> {
    let status = user.status.as_ref()?;
    (status.phase == Some(Phase::Failed)).then_some(())?;
    status
        .conditions
        .iter()
        .find(|c| c.type_ == "HookRejected" && c.status == "True")
        .map(|c| c.message.clone())
}

/// Changes an annotation of `name`: a change the controller reconciles at once (no new
/// generation), to retry now rather than after the backoff.
async fn poke(users: &Api<User>, name: &str, value: &str) {
    users
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"test.homestead.dev/poke": value}}})),
        )
        .await
        .expect("poke");
}

fn keys(seen: &[Seen]) -> Vec<String> {
    seen.iter()
        .filter_map(|s| s.header("idempotency-key").map(str::to_owned))
        .collect()
}

#[tokio::test]
#[ignore = "needs a cluster"]
async fn a_blocking_hook_holds_a_users_create_until_it_agrees_and_is_asked_once_per_change() {
    let cluster = Cluster::exclusive().await;
    let quota = HookServer::start().await;
    let tickets = HookServer::start().await;
    quota.answer(Reply::Status(403, "over quota".into()));
    tickets.then(&[Reply::Status(500, "busy".into())]);
    let config = format!(
        "{}hooks:\n  - {{name: quota, url: '{}', kinds: [User], blocking: true, timeout: 5s}}\n  - {{name: tickets, url: '{}', kinds: [User]}}\n",
        cluster.default_config(),
        quota.url("/quota"),
        tickets.url("/tickets"),
    );
    let serve = cluster.serve(ServeOptions::config(config)).await;
    let name = cluster.name("hooked");
    cluster.apply_user(&user(&name, cluster.uid())).await;
    let users: Api<User> = Api::all(cluster.admin.clone());

    // Refused: Failed with the hook's answer, nothing made, nobody told.
    let message = eventually("the User refused by the hook", WAIT, || async {
        rejection(&users.get(&name).await.ok()?)
    })
    .await;
    assert_eq!(message, "hook quota answered HTTP 403: over quota");
    let namespaces: Api<Namespace> = Api::all(cluster.admin.clone());
    assert!(
        namespaces
            .get_opt(&format!("home-{name}"))
            .await
            .expect("get")
            .is_none(),
        "nothing is made while the hook refuses"
    );
    assert!(
        tickets.seen_for(&name).is_empty(),
        "notifying hooks hear only of applied changes"
    );
    let uid = users.get(&name).await.expect("user").uid().expect("uid");
    let asked = quota.seen_for(&name);
    let first = &asked[0];
    assert_eq!(first.path, "/quota");
    assert_eq!(first.event(), "CREATE");
    assert_eq!(first.body["kind"], "User");
    assert_eq!(first.body["namespace"], format!("home-{name}"));
    assert_eq!(first.body["spec"]["username"], name.as_str());
    assert_eq!(
        first.header("idempotency-key"),
        Some(format!("{uid}/1/CREATE/quota").as_str())
    );
    assert_eq!(
        schema_violations(&schema(), &first.body),
        Vec::<String>::new()
    );

    // It agrees: the User is deployed, the agreement and the notification are recorded.
    quota.answer(Reply::ok());
    poke(&users, &name, "agreed").await;
    let deployed = wait_phase(&users, &name, Phase::Deployed).await;
    let status = deployed.status.expect("status");
    assert_eq!(
        status.hooks,
        Some(HookRecord {
            generation: 1,
            event: HookEvent::Create,
            agreed: true,
            notified: true
        })
    );
    let hook = status
        .conditions
        .iter()
        .find(|c| c.type_ == "HookRejected")
        .expect("HookRejected condition");
    assert_eq!(
        (hook.status.as_str(), hook.reason.as_str()),
        ("False", "Agreed")
    );
    let asked = quota.seen_for(&name);
    assert!(
        keys(&asked)
            .iter()
            .all(|k| *k == format!("{uid}/1/CREATE/quota")),
        "every retry of the CREATE carried the same key: {:?}",
        keys(&asked)
    );
    assert!(
        namespaces
            .get_opt(&format!("home-{name}"))
            .await
            .expect("get")
            .is_some()
    );

    // The notifying hook was told after the change, retried once (500), same key.
    let told = eventually("tickets told twice (500, then 200)", WAIT, || async {
        let told = tickets.seen_for(&name);
        (told.len() >= 2).then_some(told)
    })
    .await;
    assert_eq!(told.len(), 2);
    assert_eq!(keys(&told), vec![format!("{uid}/1/CREATE/tickets"); 2]);
    assert_eq!(told[0].event(), "CREATE");
    assert_eq!(told[0].body["status"]["phase"], "Deployed");
    assert_eq!(
        schema_violations(&schema(), &told[0].body),
        Vec::<String>::new()
    );

    // A spec change is an UPDATE, asked and told once more.
    users
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"supplementalGroups": [4242]}})),
        )
        .await
        .expect("change the spec");
    let updated = eventually("the UPDATE agreed and told", WAIT, || async {
        let user = users.get(&name).await.ok()?;
        let record = user.status?.hooks?;
        (record.generation == 2 && record.notified).then_some(record)
    })
    .await;
    assert_eq!(updated.event, HookEvent::Update);
    let update_key = format!("{uid}/2/UPDATE/quota");
    assert!(keys(&quota.seen_for(&name)).contains(&update_key));
    eventually("tickets told of the UPDATE", WAIT, || async {
        keys(&tickets.seen_for(&name))
            .contains(&format!("{uid}/2/UPDATE/tickets"))
            .then_some(())
    })
    .await;

    // Steady state: reconciles that find nothing new ask nobody.
    let calls = quota.seen_for(&name).len();
    let reconciles = || async {
        support::cluster::metric_sum(
            &serve.metrics().await,
            "homestead_controller_reconciles_total",
            &["kind=\"User\"", "result=\"ok\""],
        )
    };
    let before = reconciles().await;
    poke(&users, &name, "steady").await;
    eventually("another reconcile of Users", WAIT, || async {
        (reconciles().await > before).then_some(())
    })
    .await;
    assert_eq!(
        quota.seen_for(&name).len(),
        calls,
        "no call without a change"
    );
}

/// A person given `update` on Users (as a site might give a help desk).
async fn user_editor(cluster: &Cluster) -> Client {
    let name = cluster.name("user-editor");
    let admin = cluster.admin.clone();
    cluster.delete_on_drop::<ClusterRole>(None, &name);
    cluster.delete_on_drop::<ClusterRoleBinding>(None, &name);
    let role: ClusterRole = serde_json::from_value(json!({
        "metadata": {"name": name},
        "rules": [{"apiGroups": ["homestead.dev"], "resources": ["users"],
                   "verbs": ["get", "list", "update", "patch"]}]
    }))
    .expect("role");
    Api::<ClusterRole>::all(admin.clone())
        .create(&PostParams::default(), &role)
        .await
        .expect("ClusterRole");
    let binding: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": name}]
    }))
    .expect("binding");
    Api::<ClusterRoleBinding>::all(admin)
        .create(&PostParams::default(), &binding)
        .await
        .expect("ClusterRoleBinding");
    client_as(&name).await
}

fn skip_patch(hooks: &str) -> Patch<Value> {
    Patch::Merge(json!({"metadata": {"annotations": {"homestead.dev/skip-hooks": hooks}}}))
}

#[tokio::test]
#[ignore = "needs a cluster"]
async fn a_delete_waits_for_blocking_hooks_and_only_an_admin_can_skip_one() {
    let cluster = Cluster::exclusive().await;
    let quota = HookServer::start().await;
    let tickets = HookServer::start().await;
    let config = format!(
        "{}hooks:\n  - {{name: quota, url: '{}', kinds: [User], events: [DELETE], blocking: true}}\n  - {{name: tickets, url: '{}', kinds: [User], events: [DELETE]}}\n",
        cluster.default_config(),
        quota.url("/"),
        tickets.url("/"),
    );
    let serve = cluster.serve(ServeOptions::config(config)).await;
    serve.register_webhooks(&cluster).await;
    // No hook hears of CREATE: both are deployed without a call.
    let held = cluster.user("held", &[]).await;
    let skipped = cluster.user("skipped", &[]).await;
    assert!(quota.seen().is_empty() && tickets.seen().is_empty());

    quota.answer(Reply::Status(503, "an open ticket".into()));
    let users: Api<User> = Api::all(cluster.admin.clone());
    for person in [&held, &skipped] {
        users
            .delete(&person.username, &DeleteParams::default())
            .await
            .expect("delete");
    }
    for person in [&held, &skipped] {
        let message = eventually("the delete refused by the hook", WAIT, || async {
            let user = users.get(&person.username).await.ok()?;
            user.metadata.deletion_timestamp.as_ref()?;
            rejection(&user)
        })
        .await;
        assert_eq!(message, "hook quota answered HTTP 503: an open ticket");
    }
    let asked = quota.seen_for(&held.username);
    assert_eq!(asked[0].event(), "DELETE");
    assert_eq!(asked[0].body["status"]["phase"], "Deleting");
    assert_eq!(
        schema_violations(&schema(), &asked[0].body),
        Vec::<String>::new()
    );
    let namespaces: Api<Namespace> = Api::all(cluster.admin.clone());
    assert!(
        namespaces
            .get_opt(&held.namespace)
            .await
            .expect("get")
            .is_some(),
        "nothing is cleaned up while the hook refuses"
    );
    assert!(
        tickets.seen().is_empty(),
        "nobody is told of a delete that has not happened"
    );

    // Someone allowed to edit Users, but no admin, may not skip the hook.
    let editor = user_editor(&cluster).await;
    let as_editor: Api<User> = Api::all(editor);
    let refused = as_editor
        .patch(
            &skipped.username,
            &PatchParams::default(),
            &skip_patch("quota"),
        )
        .await;
    match refused {
        Err(kube::Error::Api(status)) => {
            assert!(
                status.message.contains("homestead.dev/skip-hooks")
                    && status.message.contains("cluster admin"),
                "{}",
                status.message
            );
        }
        other => panic!("a non-admin set skip-hooks: {other:?}"),
    }

    // An admin may: the delete goes through that hook, an Event says so, the notifying
    // hook hears of it.
    let root = client_with_groups(&cluster.name("root"), &["system:masters"]).await;
    Api::<User>::all(root)
        .patch(
            &skipped.username,
            &PatchParams::default(),
            &skip_patch("quota, gone-hook"),
        )
        .await
        .expect("an admin sets skip-hooks");
    eventually("the skipped User deleted", WAIT, || async {
        users
            .get_opt(&skipped.username)
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    let events: Api<Event> = Api::namespaced(cluster.admin.clone(), "default");
    let note = eventually("a HooksSkipped event", WAIT, || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items.into_iter().find_map(|e| {
            (e.reason.as_deref() == Some("HooksSkipped")
                && e.regarding.as_ref().and_then(|r| r.name.as_deref())
                    == Some(skipped.username.as_str()))
            .then_some(e.note)
            .flatten()
        })
    })
    .await;
    assert!(
        note.contains("quota") && note.contains("homestead.dev/skip-hooks"),
        "{note}"
    );
    eventually("tickets told of the skipped delete", WAIT, || async {
        tickets
            .seen_for(&skipped.username)
            .iter()
            .any(|s| s.event() == "DELETE")
            .then_some(())
    })
    .await;

    // The other is still held; once the hook agrees it goes too.
    let still = users.get(&held.username).await.expect("still there");
    assert!(still.metadata.deletion_timestamp.is_some());
    assert!(
        still
            .finalizers()
            .iter()
            .any(|f| f.starts_with("homestead.dev"))
    );
    quota.answer(Reply::ok());
    poke(&users, &held.username, "agreed").await;
    eventually(
        "the held User deleted once the hook agreed",
        WAIT,
        || async {
            users
                .get_opt(&held.username)
                .await
                .ok()?
                .is_none()
                .then_some(())
        },
    )
    .await;
    let asked = quota.seen_for(&held.username);
    assert!(asked.last().is_some_and(|s| s.event() == "DELETE"));
    let keys = keys(&asked);
    assert!(
        keys.iter().all(|k| k == &keys[0]),
        "one change, one key: {keys:?}"
    );
    eventually("tickets told of the held delete", WAIT, || async {
        (!tickets.seen_for(&held.username).is_empty()).then_some(())
    })
    .await;
}

#[tokio::test]
#[ignore = "needs a cluster"]
async fn sessions_and_projects_ask_and_tell_hooks_too() {
    let cluster = Cluster::exclusive().await;
    let quota = HookServer::start().await;
    let tickets = HookServer::start().await;
    let config = format!(
        "{}hooks:\n  - {{name: quota, url: '{}', kinds: [Session, Project], blocking: true}}\n  - {{name: tickets, url: '{}', kinds: [Session, Project], events: [CREATE, DELETE]}}\n",
        cluster.default_config(),
        quota.url("/"),
        tickets.url("/"),
    );
    let _serve = cluster.serve(ServeOptions::config(config)).await;
    let ada = cluster.user("hooked-ada", &[]).await;
    assert!(quota.seen().is_empty(), "no hook hears of Users");

    // A Session: asked before, told after, with its namespace.
    let visit = cluster.session(&[&ada]).await;
    let asked = quota.seen_for(&visit.name);
    assert_eq!(asked.len(), 1, "asked once");
    assert_eq!(
        (asked[0].event(), &asked[0].body["kind"]),
        ("CREATE", &json!("Session"))
    );
    assert_eq!(asked[0].body["namespace"], visit.name.as_str());
    assert_eq!(asked[0].body["spec"]["members"], json!([ada.username]));
    assert_eq!(
        schema_violations(&schema(), &asked[0].body),
        Vec::<String>::new()
    );
    eventually("tickets told of the Session", WAIT, || async {
        tickets
            .seen_for(&visit.name)
            .iter()
            .any(|s| s.event() == "CREATE" && s.body["kind"] == "Session")
            .then_some(())
    })
    .await;

    // A Project: the same, and its DELETE.
    let name = cluster.name("hooked");
    cluster.delete_on_drop::<homestead_core::resources::Project>(None, &name);
    cluster.delete_on_drop::<Namespace>(None, &format!("p-{name}"));
    let projects: Api<homestead_core::resources::Project> = Api::all(cluster.admin.clone());
    let project = json!({
        "apiVersion": "homestead.dev/v1alpha1", "kind": "Project",
        "metadata": {"name": name}, "spec": {"owner": ada.username}
    });
    projects
        .patch(
            &name,
            &PatchParams::apply("hooks-e2e").force(),
            &Patch::Apply(project),
        )
        .await
        .expect("apply Project");
    wait_phase(&projects, &name, Phase::Deployed).await;
    let asked = quota.seen_for(&name);
    assert_eq!(asked.len(), 1);
    assert_eq!(
        (asked[0].event(), &asked[0].body["kind"]),
        ("CREATE", &json!("Project"))
    );
    assert_eq!(asked[0].body["namespace"], format!("p-{name}"));
    projects
        .delete(&name, &DeleteParams::default())
        .await
        .expect("delete the Project");
    eventually("the Project deleted", WAIT, || async {
        projects.get_opt(&name).await.ok()?.is_none().then_some(())
    })
    .await;
    assert!(quota.seen_for(&name).iter().any(|s| s.event() == "DELETE"));
    eventually(
        "tickets told of the Project's CREATE and DELETE",
        WAIT,
        || async {
            let events: Vec<String> = tickets
                .seen_for(&name)
                .iter()
                .map(|s| s.event().to_owned())
                .collect();
            (events.contains(&"CREATE".to_owned()) && events.contains(&"DELETE".to_owned()))
                .then_some(())
        },
    )
    .await;
}
