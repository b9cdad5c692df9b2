//! Memory of the controller's caches and the admission directory at scale: 10,000 Users
//! and 1,000 Sessions (each cached twice, as the running process does: once by the
//! admission caches and once by each reconciler's own store), their 11,000 managed
//! namespaces (metadata only) and 1,000 dataset claims; then the directory is built while
//! the previous one is still held (as during a swap); then the pod index gets 10,000 pods
//! (their metadata as a watch delivers it, cut down as the running process cuts it).
//! Prints the resident set (VmRSS) and its peak (VmHWM) of the whole process after each.
//!
//! `cargo run --release --example cache_memory [USERS] [SESSIONS] [PODS]`

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use kube::api::ObjectMeta;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, store::Writer};
use kube::runtime::watcher::Event;

use homestead::controller::Caches;
use homestead::controller::pods::{CachedPod, cut_down};
use homestead::state::SharedState;
use homestead_core::config::Config;
use homestead_core::resources::{Phase, ResourceStatus, Session, SessionSpec, User, UserSpec};

fn status(namespace: &str) -> ResourceStatus {
    let now = Time(Timestamp::UNIX_EPOCH);
    let condition = |t: &str, reason: &str, message: &str| Condition {
        type_: t.into(),
        status: "True".into(),
        reason: reason.into(),
        message: message.into(),
        observed_generation: Some(1),
        last_transition_time: now.clone(),
    };
    ResourceStatus {
        phase: Some(Phase::Deployed),
        namespace: Some(namespace.into()),
        reason: None,
        conditions: vec![
            condition("Ready", "Deployed", "every object exists and matches"),
            condition(
                "NamespaceOwned",
                "Created",
                "homestead created the namespace",
            ),
            condition("Complete", "Complete", "nothing was left out"),
        ],
        observed_generation: Some(1),
        lifecycle: None,
        hooks: None,
    }
}

fn meta(name: &str, i: usize) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        uid: Some(format!("6f1c2b1e-0000-4000-8000-{i:012}")),
        resource_version: Some(format!("{}", 1_000_000 + i)),
        generation: Some(1),
        creation_timestamp: Some(Time(Timestamp::UNIX_EPOCH)),
        labels: Some(BTreeMap::from([(
            "homestead.dev/source".into(),
            "ldap".into(),
        )])),
        finalizers: Some(vec!["homestead.dev/cleanup".into()]),
        ..Default::default()
    }
}

fn fill<K>(writer: &mut Writer<K>, objects: Vec<K>)
where
    K: Resource + Clone,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    writer.apply_watcher_event(&Event::Init);
    for o in objects {
        writer.apply_watcher_event(&Event::InitApply(o));
    }
    writer.apply_watcher_event(&Event::InitDone);
}

fn users(n: usize) -> Vec<User> {
    (0..n)
        .map(|i| {
            let name = format!("user{i:05}");
            let mut u = User::new(
                &name,
                UserSpec {
                    username: name.clone(),
                    uid: 10_000 + i as i64,
                    gid: 10_000 + i as i64,
                    supplemental_groups: vec![500, 501, 502],
                    ..Default::default()
                },
            );
            u.metadata = meta(&name, i);
            u.status = Some(status(&format!("home-{name}")));
            u
        })
        .collect()
}

fn sessions(n: usize, users: usize) -> Vec<Session> {
    (0..n)
        .map(|i| {
            let name = format!("cm{}-1", 30_000 + i);
            let mut s = Session::new(
                &name,
                SessionSpec {
                    proposal_code: "cm".into(),
                    proposal_number: 30_000 + i as u64,
                    visit: 1,
                    instrument: "i03".into(),
                    start_date: "2024-03-15 9:00:00.0".into(),
                    end_date: "2024-05-24 9:00:00.0".into(),
                    data_directory: format!("/dls/i03/data/2024/{name}/"),
                    gid: 200_000 + i as i64,
                    members: (0..8)
                        .map(|m| format!("user{:05}", (i * 8 + m) % users.max(1)))
                        .collect(),
                    default_member: None,
                    ended: false,
                },
            );
            s.metadata = meta(&name, 100_000 + i);
            s.status = Some(status(&name));
            s
        })
        .collect()
}

fn vm(field: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n_users: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let n_sessions: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000);
    let n_pods: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    println!("baseline: VmRSS {} VmHWM {}", vm("VmRSS:"), vm("VmHWM:"));

    let (users_store, mut users_writer) = reflector::store();
    let (sessions_store, mut sessions_writer) = reflector::store();
    let (namespaces, mut namespaces_writer) = reflector::store();
    let (claims, mut claims_writer) = reflector::store();
    // The reconcilers' own stores (kube's Controller keeps one per watched kind).
    let (_ctl_users, mut ctl_users_writer) = reflector::store::<User>();
    let (_ctl_sessions, mut ctl_sessions_writer) = reflector::store::<Session>();

    fill(&mut users_writer, users(n_users));
    fill(&mut ctl_users_writer, users(n_users));
    fill(&mut sessions_writer, sessions(n_sessions, n_users));
    fill(&mut ctl_sessions_writer, sessions(n_sessions, n_users));
    let ns_names: Vec<String> = (0..n_users)
        .map(|i| format!("home-user{i:05}"))
        .chain((0..n_sessions).map(|i| format!("cm{}-1", 30_000 + i)))
        .collect();
    fill(
        &mut namespaces_writer,
        ns_names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let mut m = meta(n, 200_000 + i);
                m.labels = Some(BTreeMap::from([
                    ("homestead.dev/managed".into(), "true".into()),
                    ("app.kubernetes.io/managed-by".into(), "homestead".into()),
                    ("kubernetes.io/metadata.name".into(), n.clone()),
                ]));
                m.finalizers = None;
                PartialObjectMeta::<Namespace> {
                    types: None,
                    metadata: m,
                    _phantom: Default::default(),
                }
            })
            .collect(),
    );
    fill(
        &mut claims_writer,
        (0..n_sessions)
            .map(|i| PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some("imagenet".into()),
                    namespace: Some(format!("cm{}-1", 30_000 + i)),
                    labels: Some(BTreeMap::from([(
                        "homestead.dev/dataset".into(),
                        "imagenet".into(),
                    )])),
                    ..Default::default()
                },
                ..Default::default()
            })
            .collect(),
    );
    println!(
        "caches filled: VmRSS {} VmHWM {}",
        vm("VmRSS:"),
        vm("VmHWM:")
    );

    let caches = Caches {
        users: users_store,
        sessions: sessions_store,
        projects: reflector::store::<homestead_core::resources::Project>().0,
        namespaces,
        claims,
    };
    let state = SharedState::new(std::sync::Arc::new(Config::default()));
    for _ in 0..3 {
        // Each rebuild replaces the previous directory, which lives until the swap.
        let (directory, problems) = caches.directory(&state);
        assert_eq!(problems, 0);
        state.directory.store(directory);
    }
    let directory = state.directory.load();
    println!(
        "directory: {} users, {} namespaces",
        directory.user_count(),
        directory.namespace_count()
    );
    println!(
        "after directory builds: VmRSS {} VmHWM {}",
        vm("VmRSS:"),
        vm("VmHWM:")
    );

    // The pod index: what a metadata watch of labelled pods delivers, cut down before it
    // is stored, exactly as src/controller/pods.rs does.
    let mut writer = state.pods.take_writer().expect("the pod index's writer");
    writer.apply_watcher_event(&Event::Init);
    for i in 0..n_pods {
        let mut pod = pod_metadata(i, n_users.max(1), n_sessions.max(1));
        cut_down(&mut pod);
        writer.apply_watcher_event(&Event::InitApply(pod));
    }
    writer.apply_watcher_event(&Event::InitDone);
    println!(
        "pod index ({} pods): VmRSS {} VmHWM {}",
        state.pods.len(),
        vm("VmRSS:"),
        vm("VmHWM:")
    );
}

/// A pod's metadata as the API server lists it (managedFields included).
fn pod_metadata(i: usize, users: usize, sessions: usize) -> CachedPod {
    let user = format!("user{:05}", i % users);
    let namespace = if i.is_multiple_of(2) {
        format!("home-{user}")
    } else {
        format!("cm{}-1", 30_000 + i % sessions)
    };
    let mut m = meta(&format!("analysis-7d9f8c6b5-{i:05}"), 300_000 + i);
    m.namespace = Some(namespace);
    m.finalizers = None;
    m.generate_name = Some("analysis-7d9f8c6b5-".into());
    m.labels = Some(BTreeMap::from([
        ("app".into(), "analysis".into()),
        ("pod-template-hash".into(), "7d9f8c6b5".into()),
        ("homestead.dev/user".into(), user.clone()),
    ]));
    m.annotations = Some(BTreeMap::from([(
        "homestead.dev/run-as".into(),
        user.clone(),
    )]));
    m.owner_references = Some(vec![
        k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
            api_version: "apps/v1".into(),
            kind: "ReplicaSet".into(),
            name: "analysis-7d9f8c6b5".into(),
            uid: format!("6f1c2b1e-0000-4000-9000-{i:012}"),
            controller: Some(true),
            block_owner_deletion: Some(true),
        },
    ]);
    m.managed_fields = Some(vec![
        k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry {
            api_version: Some("v1".into()),
            fields_type: Some("FieldsV1".into()),
            manager: Some("kube-controller-manager".into()),
            operation: Some("Update".into()),
            ..Default::default()
        },
    ]);
    CachedPod {
        types: None,
        metadata: m,
        _phantom: Default::default(),
    }
}
