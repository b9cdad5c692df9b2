//! The controller on a real API server (`HOMESTEAD_TEST_KUBECONFIG`; see
//! `tests/support/cluster.rs`): a restart with nothing changed writes nothing, a storage
//! configuration change keeps existing volumes, `serve` outside the cluster says once why
//! it cannot lead, and the LDAP sync feeds Users the leader deploys.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, PostParams};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;

use homestead_core::resources::{Phase, Session, User};
use support::cluster::{
    Cluster, Person, ServeOptions, WAIT, eventually, kubeconfig_in_namespace, metric_sum,
    wait_phase,
};
use support::slapd::{Options, Slapd, posix_group, posix_user};

/// resourceVersion of every object homestead made for `owners` (by label), and of the
/// owners themselves.
async fn versions(client: &Client, users: &[&Person], session: &str) -> BTreeMap<String, String> {
    async fn add<K>(client: &Client, selector: &str, out: &mut BTreeMap<String, String>)
    where
        K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        let items = Api::<K>::all(client.clone())
            .list_metadata(&ListParams::default().labels(selector))
            .await
            .expect("list")
            .items;
        for item in items {
            let key = format!(
                "{} {}/{}",
                K::kind(&()),
                item.namespace().unwrap_or_default(),
                item.name_any()
            );
            out.insert(key, item.resource_version().unwrap_or_default());
        }
    }
    let mut out = BTreeMap::new();
    let mut selectors: Vec<String> = users
        .iter()
        .map(|u| format!("homestead.dev/user={}", u.username))
        .collect();
    selectors.push(format!("homestead.dev/session={session}"));
    for selector in &selectors {
        use k8s_openapi::api::core::v1::{ConfigMap, Secret, ServiceAccount};
        use k8s_openapi::api::rbac::v1::RoleBinding;
        add::<Namespace>(client, selector, &mut out).await;
        add::<ServiceAccount>(client, selector, &mut out).await;
        add::<RoleBinding>(client, selector, &mut out).await;
        add::<ConfigMap>(client, selector, &mut out).await;
        add::<Secret>(client, selector, &mut out).await;
        add::<PersistentVolumeClaim>(client, selector, &mut out).await;
        add::<PersistentVolume>(client, selector, &mut out).await;
    }
    for user in users {
        let u = Api::<User>::all(client.clone())
            .get(&user.username)
            .await
            .expect("User");
        out.insert(
            format!("User {}", user.username),
            u.resource_version().unwrap_or_default(),
        );
    }
    let s = Api::<Session>::all(client.clone())
        .get(session)
        .await
        .expect("Session");
    out.insert(
        format!("Session {session}"),
        s.resource_version().unwrap_or_default(),
    );
    out
}

/// Waits until every claim in `namespaces` is Bound (the PV binder has caught up).
async fn wait_bound(client: &Client, namespaces: &[&str]) {
    for ns in namespaces {
        let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
        eventually(&format!("claims in {ns} bound"), WAIT, || {
            let claims = claims.clone();
            async move {
                let list = claims.list(&ListParams::default()).await.ok()?;
                (!list.items.is_empty()
                    && list.items.iter().all(|c| {
                        c.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound")
                    }))
                .then_some(())
            }
        })
        .await;
    }
}

/// Waits until the PV binder has finished with every claim in `namespaces` and its volume
/// (its last writes: the claim's `bind-completed` annotation and `Bound` phase, the
/// volume `Bound` to the claim's uid), then returns the volumes.
async fn wait_binder_done(client: &Client, namespaces: &[&str]) -> Vec<PersistentVolume> {
    let mut volumes = Vec::new();
    for ns in namespaces {
        let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
        let pvs: Api<PersistentVolume> = Api::all(client.clone());
        let done = eventually(&format!("the binder done in {ns}"), WAIT, || {
            let (claims, pvs) = (claims.clone(), pvs.clone());
            async move {
                let list = claims.list(&ListParams::default()).await.ok()?;
                let mut done = Vec::new();
                for claim in &list.items {
                    let bound = claim.status.as_ref()?.phase.as_deref() == Some("Bound");
                    let completed = claim
                        .annotations()
                        .contains_key("pv.kubernetes.io/bind-completed");
                    let pv = pvs
                        .get(claim.spec.as_ref()?.volume_name.as_ref()?)
                        .await
                        .ok()?;
                    let pv_bound = pv.status.as_ref()?.phase.as_deref() == Some("Bound");
                    let to_claim = pv.spec.as_ref()?.claim_ref.as_ref()?.uid == claim.metadata.uid;
                    if !(bound && completed && pv_bound && to_claim) {
                        return None;
                    }
                    done.push(pv);
                }
                (!done.is_empty()).then_some(done)
            }
        })
        .await;
        volumes.extend(done);
    }
    volumes
}

/// Waits until each owner says every claim of it is Bound (homestead saw the binder's work).
async fn wait_storage_bound<K>(api: &Api<K>, name: &str)
where
    K: Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    eventually(&format!("{name} StorageBound"), WAIT, || async {
        let value = serde_json::to_value(api.get(name).await.ok()?).ok()?;
        let conditions = value.pointer("/status/conditions")?.as_array()?.clone();
        conditions
            .iter()
            .any(|c| c["type"] == "StorageBound" && c["status"] == "True")
            .then_some(())
    })
    .await;
}

/// Who wrote `pv`'s fields: (manager, operation, subresource) of each managedFields entry.
fn writers(pv: &PersistentVolume) -> Vec<(String, String, String)> {
    pv.metadata
        .managed_fields
        .iter()
        .flatten()
        .map(|m| {
            (
                m.manager.clone().unwrap_or_default(),
                m.operation.clone().unwrap_or_default(),
                m.subresource.clone().unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test]
#[ignore = "needs a cluster"]
async fn a_restart_with_nothing_changed_changes_nothing() {
    let cluster = Cluster::exclusive().await;
    let mut serve = cluster.serve(ServeOptions::default()).await;
    let ada = cluster.user("quiet-ada", &[]).await;
    let bob = cluster.user("quiet-bob", &[]).await;
    let visit = cluster.session(&[&ada, &bob]).await;
    // Before the restart: the PV binder has finished, and homestead has seen it finish.
    let volumes = wait_binder_done(
        &cluster.admin,
        &[&ada.namespace, &bob.namespace, &visit.name],
    )
    .await;
    assert!(
        volumes.len() >= 5,
        "private, member and data volumes: {}",
        volumes.len()
    );
    for volume in &volumes {
        // Each volume was made bound to its claim's uid, as the binder binds: the binder
        // only recorded the binding (status), it never rewrote the volume.
        let rewrote = writers(volume)
            .into_iter()
            .any(|(manager, op, sub)| manager != "homestead" && op == "Update" && sub.is_empty());
        assert!(!rewrote, "{}: {:?}", volume.name_any(), writers(volume));
    }
    let users: Api<User> = Api::all(cluster.admin.clone());
    wait_storage_bound(&users, &ada.username).await;
    wait_storage_bound(&users, &bob.username).await;
    wait_storage_bound(&Api::<Session>::all(cluster.admin.clone()), &visit.name).await;
    let before = versions(&cluster.admin, &[&ada, &bob], &visit.name).await;
    assert!(before.len() > 20, "{before:#?}");

    serve.restart().await;
    // The new process has reconciled each of them (at least) once and is idle...
    eventually(
        "every owner reconciled after the restart, none running",
        WAIT,
        || async {
            let text = serve.metrics().await;
            let users = metric_sum(
                &text,
                "homestead_controller_reconciles_total",
                &[r#"kind="User""#, r#"result="ok""#],
            );
            let sessions = metric_sum(
                &text,
                "homestead_controller_reconciles_total",
                &[r#"kind="Session""#, r#"result="ok""#],
            );
            let running = metric_sum(&text, "homestead_controller_reconciles_in_flight", &[]);
            (users >= 2.0 && sessions >= 1.0 && running == 0.0).then_some(())
        },
    )
    .await;
    // ...and nothing happened within 2 s of that: no apply at all, no object changed.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let text = serve.metrics().await;
    let unchanged = metric_sum(
        &text,
        "homestead_controller_applies_total",
        &[r#"result="unchanged""#],
    );
    let applied = metric_sum(
        &text,
        "homestead_controller_applies_total",
        &[r#"result="applied""#],
    );
    assert!(unchanged >= 20.0, "compared with what exists: {text}");
    let which: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(r#"result="applied""#))
        .collect();
    assert_eq!(applied, 0.0, "nothing applied after a restart: {which:#?}");
    let after = versions(&cluster.admin, &[&ada, &bob], &visit.name).await;
    let changed: Vec<&String> = after
        .keys()
        .filter(|k| before.get(*k) != after.get(*k))
        .collect();
    assert!(changed.is_empty(), "resourceVersions changed: {changed:#?}");
}

fn private_volume(person: &Person) -> String {
    format!("homestead-{}-homestead-private", person.namespace)
}

fn host_path(pv: &PersistentVolume) -> Option<String> {
    Some(pv.spec.as_ref()?.host_path.as_ref()?.path.clone())
}

#[tokio::test]
#[ignore = "needs a cluster"]
async fn a_storage_configuration_change_keeps_existing_volumes_and_users_deployed() {
    let cluster = Cluster::exclusive().await;
    let root = format!("/tmp/homestead-e2e/{}", cluster.suffix());
    let config = |dir: &str| {
        format!(
            "{}storage: {{private: {{pathTemplate: '{root}/{dir}/{{username}}'}}}}\n",
            cluster.default_config()
        )
    };
    let mut serve = cluster.serve(ServeOptions::config(config("old"))).await;
    let ada = cluster.user("move-ada", &[]).await;
    wait_bound(&cluster.admin, &[&ada.namespace]).await;
    let volumes: Api<PersistentVolume> = Api::all(cluster.admin.clone());
    let before = volumes
        .get(&private_volume(&ada))
        .await
        .expect("ada's volume");
    assert_eq!(
        host_path(&before),
        Some(format!("{root}/old/{}", ada.username))
    );

    // The configuration moves private storage; homestead restarts with it.
    serve.set_config(&config("new"));
    serve.restart().await;
    let users: Api<User> = Api::all(cluster.admin.clone());
    let condition = eventually("ada's StorageCurrent condition", WAIT, || async {
        let user = users.get(&ada.username).await.ok()?;
        let status = user.status?;
        let condition = status
            .conditions
            .into_iter()
            .find(|c| c.type_ == "StorageCurrent")?;
        (condition.status == "False").then_some((status.phase, condition))
    })
    .await;
    assert_eq!(
        condition.0,
        Some(Phase::Deployed),
        "the User stays Deployed"
    );
    assert_eq!(condition.1.reason, "DiffersFromConfiguration");
    for part in [
        &private_volume(&ada),
        &format!("{root}/old/"),
        &format!("{root}/new/"),
        &"copy it there".to_owned(),
    ] {
        assert!(
            condition.1.message.contains(part.as_str()),
            "{part} in {}",
            condition.1.message
        );
    }
    let after = volumes
        .get(&private_volume(&ada))
        .await
        .expect("ada's volume");
    let fields = |pv: &PersistentVolume| {
        let managed = pv.metadata.managed_fields.iter().flatten();
        managed
            .map(|m| format!("{:?} {:?} {:?}", m.manager, m.operation, m.time))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        after.resource_version(),
        before.resource_version(),
        "the volume is untouched: {:#?} then {:#?}",
        fields(&before),
        fields(&after)
    );
    let events: Api<Event> = Api::namespaced(cluster.admin.clone(), "default");
    eventually("a StorageDiffers event about ada", WAIT, || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items
            .iter()
            .any(|e| {
                e.reason.as_deref() == Some("StorageDiffers")
                    && e.regarding.as_ref().and_then(|r| r.name.as_deref())
                        == Some(ada.username.as_str())
            })
            .then_some(())
    })
    .await;

    // A new User gets the new location.
    let bob = cluster.user("move-bob", &[]).await;
    let volume = volumes
        .get(&private_volume(&bob))
        .await
        .expect("bob's volume");
    assert_eq!(
        host_path(&volume),
        Some(format!("{root}/new/{}", bob.username))
    );
    let bob_user = users.get(&bob.username).await.expect("bob");
    let current = bob_user
        .status
        .expect("status")
        .conditions
        .into_iter()
        .find(|c| c.type_ == "StorageCurrent")
        .expect("condition");
    assert_eq!(current.status, "True");
}

#[tokio::test]
#[ignore = "needs a cluster"]
async fn outside_the_cluster_a_missing_lease_namespace_is_said_once_and_shown_in_a_metric() {
    let cluster = Cluster::exclusive().await;
    let scratch = tempfile::tempdir().expect("temp dir");
    // The kubeconfig's context names a namespace that does not exist (yet): the Lease's.
    let lease_namespace = cluster.name("lease");
    cluster.delete_on_drop::<Namespace>(None, &lease_namespace);
    let kubeconfig = kubeconfig_in_namespace(scratch.path(), &lease_namespace);
    let missing = cluster.name("not-installed");
    let options = ServeOptions {
        kubeconfig: Some(kubeconfig),
        ..ServeOptions::default()
    };
    let mut serve = support::cluster::Serve::prepare();
    let args = [
        "--webhook-configuration",
        &missing,
        "--webhook-url",
        &serve.url(),
        "--cert-mode",
        "external",
        "--ca-bundle",
        &String::from_utf8(serve.ca()).expect("PEM"),
    ];
    serve.launch(&cluster, options.args(&args)).await;

    // It serves admission (ready), cannot lead, and says so once.
    eventually(
        "two failed lease rounds",
        Duration::from_secs(30),
        || async {
            let text = serve.metrics().await;
            let failed = metric_sum(
                &text,
                "homestead_controller_lease_errors_total",
                &[r#"reason="namespace_not_found""#],
            );
            (failed >= 2.0).then_some(())
        },
    )
    .await;
    let text = serve.metrics().await;
    assert_eq!(
        metric_sum(&text, "homestead_controller_lease_failing", &[]),
        1.0
    );
    assert_eq!(metric_sum(&text, "homestead_controller_leader", &[]), 0.0);
    let log = serve.log();
    let said: Vec<&str> = log
        .lines()
        .filter(|l| {
            l.contains(&format!(
                "the Lease namespace \"{lease_namespace}\" does not exist"
            ))
        })
        .collect();
    assert_eq!(said.len(), 1, "said once: {said:#?}");
    assert!(said[0].contains("ERROR"), "{}", said[0]);
    assert!(
        said[0].contains("--lease-namespace"),
        "says what to do: {}",
        said[0]
    );

    // The namespace appears: it leads, and says so.
    let ns: Namespace =
        serde_json::from_value(json!({"metadata": {"name": lease_namespace}})).expect("ns");
    Api::<Namespace>::all(cluster.admin.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("create the namespace");
    eventually("leading", Duration::from_secs(60), || async {
        (serve.metric("homestead_controller_leader ").await == Some(1.0)).then_some(())
    })
    .await;
    assert_eq!(
        serve.metric("homestead_controller_lease_failing ").await,
        Some(0.0)
    );
    // The leader's webhook task finds neither configuration: one warning, not a stream.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let log = serve.log();
    assert!(log.contains("the Lease can be used again"), "{log}");
    let warned: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("does not exist; homestead does not create it"))
        .collect();
    assert_eq!(warned.len(), 1, "{warned:#?}");
    assert!(
        warned[0].contains("MutatingWebhookConfiguration and ValidatingWebhookConfiguration"),
        "{}",
        warned[0]
    );
    serve.stop();
}

#[tokio::test]
#[ignore = "needs a cluster"]
async fn ldap_people_become_users_the_leader_deploys() {
    let cluster = Cluster::exclusive().await;
    let [ines, tomas] = ["ldap-ines", "ldap-tomas"].map(|n| cluster.name(n));
    let (uid_ines, uid_tomas, gid) = (cluster.uid(), cluster.uid(), cluster.uid());
    let ldif = [
        posix_user(&ines, uid_ines as u32, uid_ines as u32),
        posix_user(&tomas, uid_tomas as u32, uid_tomas as u32),
        posix_group(&cluster.name("ldap-optics"), gid as u32, &[ines.as_str()]),
    ]
    .concat();
    let slapd = Slapd::start(Options::default(), &ldif);
    for name in [&ines, &tomas] {
        cluster.delete_on_drop::<User>(None, name);
        cluster.delete_on_drop::<Namespace>(None, &format!("home-{name}"));
        cluster.delete_labelled_on_drop::<PersistentVolume>(&format!("homestead.dev/user={name}"));
    }
    let config = format!(
        "{}ldap: {}\n",
        cluster.default_config(),
        serde_json::to_string(&slapd.config()).expect("json")
    );
    let _serve = cluster.serve(ServeOptions::config(config)).await;
    let users: Api<User> = Api::all(cluster.admin.clone());
    for (name, uid) in [(&ines, uid_ines), (&tomas, uid_tomas)] {
        let user = wait_phase(&users, name, Phase::Deployed).await;
        assert_eq!(user.spec.uid, uid);
    }
    let user = users.get(&ines).await.expect("ines");
    assert_eq!(user.spec.supplemental_groups, [gid]);
    assert!(
        user.labels().contains_key("homestead.dev/source"),
        "{:?}",
        user.labels()
    );
}
