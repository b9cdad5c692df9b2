//! A `Project`'s namespaces and everything in them.
//!
//! Every project namespace (the project namespace and each child namespace) gets the same
//! set: the namespace with homestead's labels, one RoleBinding per configured role that
//! someone has (`homestead-project-<role>`; the RoleBinding of a role nobody has is
//! absent, so unsharing the last person of a role removes it), the configured
//! ServiceAccounts, a ConfigMap describing the project, the clones and quota, the shared
//! volume, and one private claim per person whose role runs pods. The project volume
//! (`spec.storage`) lives in the project namespace only.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use kube::ResourceExt;

use super::storage::storage_objects;
use super::user::{
    child_meta, common_objects, namespace_object, private_location, role_binding, shared_location,
    user_subject,
};
use super::{
    DesiredObjects, DesiredObjectsError, Kind, Object, ObjectKey, Owner, OwnerKind, SecretSources,
};
use crate::config::Config;
use crate::directory::project_namespaces;
use crate::names::{self, VOLUME_PROJECT, VOLUME_SHARED};
use crate::resources::{Project, UserSpec};
use crate::template::Value;

/// Prefix of the RoleBinding of each role: `homestead-project-<role>`.
pub const PROJECT_ROLE_BINDING_PREFIX: &str = "homestead-project-";
/// ConfigMap with a project's details.
pub const PROJECT_CONFIG_MAP: &str = "homestead-project";

/// The RoleBinding of `role`.
pub fn project_role_binding(role: &str) -> String {
    format!("{PROJECT_ROLE_BINDING_PREFIX}{role}")
}

/// Who has which role in a project, by username: the owner has the owner role; each
/// member their own (the first listing wins; the owner keeps the owner role); with
/// `allUsers`, every other User in `users` has that role. Sorted by username.
pub fn project_roles<'a>(
    config: &'a Config,
    project: &'a Project,
    users: &'a BTreeMap<String, UserSpec>,
) -> BTreeMap<&'a str, &'a str> {
    let spec = &project.spec;
    let mut roles = BTreeMap::from([(spec.owner.as_str(), config.projects.owner_role.as_str())]);
    for member in &spec.members {
        roles
            .entry(member.username.as_str())
            .or_insert(member.role.as_str());
    }
    if let Some(all) = &spec.all_users {
        for username in users.keys() {
            roles.entry(username.as_str()).or_insert(all.role.as_str());
        }
    }
    roles
}

/// The project gid: `spec.gid`, else the owner's primary gid (`None` when the owner has
/// no User in `users`).
pub fn project_gid(project: &Project, users: &BTreeMap<String, UserSpec>) -> Option<i64> {
    project
        .spec
        .gid
        .or_else(|| users.get(&project.spec.owner).map(|u| u.gid))
}

/// Everything `project` should have. `users` maps usernames to `User` specs: the owner's
/// and the members' (and, for `allUsers`, every User's), for their private claims, the
/// default gid and the all-users RoleBinding; `sources` holds the clone sources that
/// exist.
pub fn project_objects(
    config: &Config,
    project: &Project,
    users: &BTreeMap<String, UserSpec>,
    sources: &SecretSources,
) -> Result<DesiredObjects, DesiredObjectsError> {
    let spec = &project.spec;
    let namespaces = project_namespaces(config, project);
    if let Some(bad) = namespaces.iter().find(|ns| !names::is_dns1123_label(ns)) {
        return Err(DesiredObjectsError::Invalid(format!(
            "namespace {bad:?} is not a valid namespace name"
        )));
    }
    let gid = project_gid(project, users).ok_or_else(|| {
        DesiredObjectsError::Invalid(format!(
            "spec.gid is unset and the owner {:?} has no User to take the gid from",
            spec.owner
        ))
    })?;
    if gid <= 0 {
        return Err(DesiredObjectsError::Invalid(format!(
            "spec.gid {gid} must be positive"
        )));
    }
    let owner = Owner {
        kind: OwnerKind::Project,
        name: project.name_any(),
        uid: project.uid().unwrap_or_default(),
    };
    let roles = project_roles(config, project, users);
    let mut problems = Vec::new();
    let mut by_role: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (username, role) in &roles {
        if config.projects.role(role).is_none() {
            problems.push(format!(
                "{username:?} has role {role:?}, which is not configured; they get no access"
            ));
            continue;
        }
        by_role.entry(role).or_default().push(username);
    }
    // People who run pods get a private claim in every project namespace.
    let mut member_claims = Vec::new();
    let mut private = Vec::new();
    if config.storage.private.enabled {
        for (username, role) in &roles {
            if !config.projects.role(role).is_some_and(|r| r.runs_pods) {
                continue;
            }
            let claim = match names::session_private_claim(username) {
                Ok(claim) => claim,
                Err(e) => {
                    problems.push(format!("member {username:?}: {e}"));
                    continue;
                }
            };
            let Some(user) = users.get(*username) else {
                problems.push(format!(
                    "{username:?} has no User; their private claim waits for one"
                ));
                continue;
            };
            let over = user.storage.as_ref().and_then(|s| s.private.as_ref());
            private.push((claim.clone(), private_location(config, user, over)));
            member_claims.push(claim);
        }
    }

    let main = namespaces[0].clone();
    let mut objects = Vec::new();
    let mut absent = Vec::new();
    for namespace in &namespaces {
        objects.push(namespace_object(config, &owner, namespace));
    }
    for namespace in &namespaces {
        for sa in &config.controller.service_accounts {
            objects.push(Object::ServiceAccount(ServiceAccount {
                metadata: child_meta(&owner, namespace, sa),
                ..Default::default()
            }));
        }
        for (name, role) in &config.projects.roles {
            let binding = project_role_binding(name);
            match by_role.get(name.as_str()) {
                Some(people) => objects.push(Object::RoleBinding(role_binding(
                    &owner,
                    namespace,
                    &binding,
                    &role.cluster_role,
                    people.iter().map(|u| user_subject(config, u)).collect(),
                ))),
                None => absent.push(ObjectKey {
                    kind: Kind::RoleBinding,
                    namespace: Some(namespace.clone()),
                    name: binding,
                }),
            }
        }
        let members: BTreeMap<&str, &str> = roles
            .iter()
            .filter(|(u, _)| **u == spec.owner || spec.members.iter().any(|m| m.username == **u))
            .map(|(u, r)| (*u, *r))
            .collect();
        let data = BTreeMap::from([
            ("project".to_owned(), owner.name.clone()),
            ("owner".to_owned(), spec.owner.clone()),
            ("gid".to_owned(), gid.to_string()),
            ("namespace".to_owned(), main.clone()),
            (
                "members".to_owned(),
                serde_json::to_string(&members).unwrap_or_else(|_| "{}".into()),
            ),
        ]);
        objects.push(Object::ConfigMap(ConfigMap {
            metadata: child_meta(&owner, namespace, PROJECT_CONFIG_MAP),
            data: Some(data),
            ..Default::default()
        }));
        common_objects(
            config,
            &owner,
            namespace,
            sources,
            &mut objects,
            &mut problems,
        );
        if config.storage.shared.enabled {
            let (path, size) = shared_location(config, namespace, None);
            objects.extend(storage_objects(
                &owner,
                namespace,
                VOLUME_SHARED,
                &config.storage.shared,
                &path,
                &size,
            ));
        }
        if *namespace == main
            && let Some(storage) = &spec.storage
            && config.storage.project.enabled
        {
            let slot = &config.storage.project;
            let path = storage.path.clone().unwrap_or_else(|| {
                slot.path_template.render(|key| match key {
                    "name" => Some(Value::Text(&owner.name)),
                    "namespace" => Some(Value::Text(&main)),
                    "gid" => Some(Value::Number(gid)),
                    other => config.variable(other),
                })
            });
            let size = storage.size.clone().unwrap_or_else(|| slot.size.clone());
            objects.extend(storage_objects(
                &owner,
                namespace,
                VOLUME_PROJECT,
                slot,
                &path,
                &size,
            ));
        }
        for (claim, (path, size)) in &private {
            objects.extend(storage_objects(
                &owner,
                namespace,
                claim,
                &config.storage.private,
                path,
                size,
            ));
        }
    }
    problems.dedup();
    Ok(DesiredObjects {
        namespace: main,
        objects,
        absent,
        member_claims: Some(member_claims),
        problems,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::test_support::{find, keys};
    use crate::desired::testing::user;
    use crate::names::{LABEL_MANAGED, LABEL_PROJECT};
    use crate::resources::{AllUsers, ProjectMember, ProjectSpec, StorageOverride};
    use proptest::prelude::*;

    fn users(names: &[(&str, i64)]) -> BTreeMap<String, UserSpec> {
        names
            .iter()
            .map(|(n, uid)| ((*n).to_owned(), user(n, *uid).spec))
            .collect()
    }

    fn project(members: &[(&str, &str)]) -> Project {
        let mut p = Project::new(
            "mx",
            ProjectSpec {
                owner: "ada".into(),
                members: members
                    .iter()
                    .map(|(u, r)| ProjectMember {
                        username: (*u).into(),
                        role: (*r).into(),
                    })
                    .collect(),
                ..Default::default()
            },
        );
        p.metadata.uid = Some("uid-mx".into());
        p
    }

    fn people() -> BTreeMap<String, UserSpec> {
        users(&[("ada", 1001), ("bob", 1002), ("erin", 1005), ("zed", 1009)])
    }

    /// The subjects of each role's RoleBinding in `namespace`, and the absent ones.
    fn bindings(plan: &DesiredObjects, namespace: &str) -> Vec<String> {
        let mut out: Vec<String> = plan
            .objects
            .iter()
            .filter_map(|o| match o {
                Object::RoleBinding(rb) if rb.metadata.namespace.as_deref() == Some(namespace) => {
                    let who: Vec<&str> = rb
                        .subjects
                        .iter()
                        .flatten()
                        .map(|s| s.name.as_str())
                        .collect();
                    Some(format!(
                        "{} -> {}: {}",
                        rb.metadata.name.as_deref().unwrap_or_default(),
                        rb.role_ref.name,
                        who.join(",")
                    ))
                }
                _ => None,
            })
            .collect();
        out.extend(
            plan.absent
                .iter()
                .filter(|k| k.namespace.as_deref() == Some(namespace))
                .map(|k| format!("{} absent", k.name)),
        );
        out.sort();
        out
    }

    #[test]
    fn a_new_project_gets_everything_in_order() {
        let plan = project_objects(
            &Config::default(),
            &project(&[("bob", "edit"), ("erin", "view")]),
            &people(),
            &SecretSources::new(),
        )
        .unwrap();
        assert_eq!(plan.namespace, "p-mx");
        assert_eq!(
            keys(&plan),
            [
                "Namespace p-mx",
                "RoleBinding p-mx/homestead-project-admin",
                "RoleBinding p-mx/homestead-project-edit",
                "RoleBinding p-mx/homestead-project-view",
                "ConfigMap p-mx/homestead-project",
                "PersistentVolume homestead-p-mx-homestead-shared",
                "PersistentVolumeClaim p-mx/homestead-shared",
                "PersistentVolume homestead-p-mx-homestead-private-ada",
                "PersistentVolumeClaim p-mx/homestead-private-ada",
                "PersistentVolume homestead-p-mx-homestead-private-bob",
                "PersistentVolumeClaim p-mx/homestead-private-bob",
            ]
        );
        assert!(plan.problems.is_empty(), "{:?}", plan.problems);
        assert_eq!(
            plan.member_claims.as_deref(),
            Some(
                &[
                    "homestead-private-ada".to_owned(),
                    "homestead-private-bob".to_owned()
                ][..]
            ),
            "view members run no pods, so they get no claim"
        );
        let Object::Namespace(ns) = &plan.objects[0] else {
            panic!()
        };
        let labels = ns.metadata.labels.as_ref().unwrap();
        assert_eq!(
            (
                labels[LABEL_MANAGED].as_str(),
                labels[LABEL_PROJECT].as_str()
            ),
            ("true", "mx")
        );
        // The namespace names its Project (the controller recognises its namespaces by
        // that uid).
        let refs = ns.metadata.owner_references.as_ref().unwrap();
        assert_eq!(
            (refs[0].kind.as_str(), refs[0].name.as_str()),
            ("Project", "mx")
        );
        for o in &plan.objects[1..] {
            assert_eq!(
                o.meta().labels.as_ref().unwrap()[LABEL_PROJECT],
                "mx",
                "{o:?}"
            );
            if o.kind() != Kind::PersistentVolume {
                let r = &o.meta().owner_references.as_ref().unwrap()[0];
                assert_eq!((r.kind.as_str(), r.uid.as_str()), ("Project", "uid-mx"));
            }
        }
        let Object::PersistentVolume(pv) = find(
            &plan,
            Kind::PersistentVolume,
            "homestead-p-mx-homestead-private-bob",
        ) else {
            panic!()
        };
        assert_eq!(
            pv.spec.as_ref().unwrap().host_path.as_ref().unwrap().path,
            "/export/home/bob",
            "a member's own private data"
        );
        let Object::ConfigMap(cm) = find(&plan, Kind::ConfigMap, PROJECT_CONFIG_MAP) else {
            panic!()
        };
        let data = cm.data.as_ref().unwrap();
        assert_eq!(data["gid"], "1001", "no spec.gid: the owner's");
        assert_eq!(
            data["members"],
            r#"{"ada":"admin","bob":"edit","erin":"view"}"#
        );
    }

    /// The planner's table: each row is a Project (as edited), and the RoleBindings of its
    /// namespace that follow.
    #[test]
    fn role_bindings_follow_every_edit() {
        type Edit = fn(&mut Project);
        let table: [(&str, Edit, &[&str]); 7] = [
            (
                "created: only the owner",
                |_| {},
                &[
                    "homestead-project-admin -> admin: ada",
                    "homestead-project-edit absent",
                    "homestead-project-view absent",
                ],
            ),
            (
                "shared with bob (edit) and erin (view)",
                |p| {
                    p.spec.members = vec![member("bob", "edit"), member("erin", "view")];
                },
                &[
                    "homestead-project-admin -> admin: ada",
                    "homestead-project-edit -> edit: bob",
                    "homestead-project-view -> view: erin",
                ],
            ),
            (
                "unshared from erin: her role's binding goes",
                |p| p.spec.members = vec![member("bob", "edit")],
                &[
                    "homestead-project-admin -> admin: ada",
                    "homestead-project-edit -> edit: bob",
                    "homestead-project-view absent",
                ],
            ),
            (
                "handed to bob, ada stays as edit",
                |p| {
                    p.spec.owner = "bob".into();
                    p.spec.members = vec![member("ada", "edit")];
                },
                &[
                    "homestead-project-admin -> admin: bob",
                    "homestead-project-edit -> edit: ada",
                    "homestead-project-view absent",
                ],
            ),
            (
                "handed to bob, ada not kept: she loses access",
                |p| p.spec.owner = "bob".into(),
                &[
                    "homestead-project-admin -> admin: bob",
                    "homestead-project-edit absent",
                    "homestead-project-view absent",
                ],
            ),
            (
                "the owner listed as a member keeps the owner role",
                |p| p.spec.members = vec![member("ada", "view")],
                &[
                    "homestead-project-admin -> admin: ada",
                    "homestead-project-edit absent",
                    "homestead-project-view absent",
                ],
            ),
            (
                "shared with all users as view; a member keeps their own role",
                |p| {
                    p.spec.members = vec![member("bob", "edit")];
                    p.spec.all_users = Some(AllUsers {
                        role: "view".into(),
                    });
                },
                &[
                    "homestead-project-admin -> admin: ada",
                    "homestead-project-edit -> edit: bob",
                    "homestead-project-view -> view: erin,zed",
                ],
            ),
        ];
        for (name, edit, want) in table {
            let mut p = project(&[]);
            edit(&mut p);
            let plan =
                project_objects(&Config::default(), &p, &people(), &SecretSources::new()).unwrap();
            assert_eq!(bindings(&plan, "p-mx"), want, "{name}");
        }
    }

    /// The planner's table of private claims (and the ConfigMap's owner): a Project as
    /// edited — shared, unshared, handed over with and without transferring workloads —
    /// and the claims every project namespace then has. A claim left out is pruned by
    /// the controller; its volume is kept.
    #[test]
    fn private_claims_follow_every_edit() {
        type Edit = fn(&mut Project);
        let table: [(&str, Edit, &str, &[&str]); 7] = [
            ("created", |_| {}, "ada", &["ada"]),
            (
                "shared with bob (edit) and erin (view)",
                |p| p.spec.members = vec![member("bob", "edit"), member("erin", "view")],
                "ada",
                &["ada", "bob"],
            ),
            (
                "bob unshared",
                |p| p.spec.members = vec![member("erin", "view")],
                "ada",
                &["ada"],
            ),
            (
                "bob made a viewer",
                |p| p.spec.members = vec![member("bob", "view")],
                "ada",
                &["ada"],
            ),
            (
                "handed to bob with transfer, ada not kept",
                |p| p.spec.owner = "bob".into(),
                "bob",
                &["bob"],
            ),
            (
                "handed to bob with transfer, ada kept as edit",
                |p| {
                    p.spec.owner = "bob".into();
                    p.spec.members = vec![member("ada", "edit")];
                },
                "bob",
                &["ada", "bob"],
            ),
            (
                "handed to bob without transfer: ada stays a member who runs pods",
                |p| {
                    p.spec.owner = "bob".into();
                    p.spec.transfer_workloads = Some(false);
                    p.spec.members = vec![member("ada", "edit")];
                },
                "bob",
                &["ada", "bob"],
            ),
        ];
        for (name, edit, owner, runners) in table {
            let mut p = project(&[]);
            p.spec.gid = Some(4000);
            p.spec.child_namespaces = vec!["ci".into()];
            edit(&mut p);
            let plan =
                project_objects(&Config::default(), &p, &people(), &SecretSources::new()).unwrap();
            let want: Vec<String> = runners
                .iter()
                .map(|u| format!("homestead-private-{u}"))
                .collect();
            assert_eq!(plan.member_claims.as_deref(), Some(&want[..]), "{name}");
            for ns in ["p-mx", "p-mx-ci"] {
                let mut claims: Vec<String> = plan
                    .objects
                    .iter()
                    .filter(|o| {
                        o.kind() == Kind::PersistentVolumeClaim
                            && o.key().namespace.as_deref() == Some(ns)
                            && o.key().name.starts_with("homestead-private-")
                    })
                    .map(|o| o.key().name)
                    .collect();
                claims.sort();
                assert_eq!(claims, want, "{name}: {ns}");
            }
            let Object::ConfigMap(cm) = find(&plan, Kind::ConfigMap, PROJECT_CONFIG_MAP) else {
                panic!()
            };
            let data = cm.data.as_ref().unwrap();
            assert_eq!(data["owner"], owner, "{name}");
            assert_eq!(
                data["gid"], "4000",
                "{name}: a set gid does not follow the owner"
            );
        }
    }

    fn member(username: &str, role: &str) -> ProjectMember {
        ProjectMember {
            username: username.into(),
            role: role.into(),
        }
    }

    #[test]
    fn child_namespaces_are_managed_the_same_way_and_storage_lives_in_the_first() {
        let mut p = project(&[("bob", "edit")]);
        p.spec.child_namespaces = vec!["ci".into()];
        p.spec.gid = Some(4000);
        p.spec.storage = Some(StorageOverride {
            path: None,
            size: Some("1Ti".into()),
        });
        let plan =
            project_objects(&Config::default(), &p, &people(), &SecretSources::new()).unwrap();
        assert_eq!(plan.namespace, "p-mx");
        for ns in ["p-mx", "p-mx-ci"] {
            assert_eq!(
                bindings(&plan, ns),
                [
                    "homestead-project-admin -> admin: ada",
                    "homestead-project-edit -> edit: bob",
                    "homestead-project-view absent",
                ],
                "{ns}"
            );
            for claim in [
                "homestead-shared",
                "homestead-private-ada",
                "homestead-private-bob",
            ] {
                assert!(
                    plan.objects
                        .iter()
                        .any(|o| o.key().to_string()
                            == format!("PersistentVolumeClaim {ns}/{claim}")),
                    "{ns}/{claim}"
                );
            }
        }
        let keys = keys(&plan);
        assert_eq!(
            &keys[..2],
            ["Namespace p-mx", "Namespace p-mx-ci"],
            "namespaces first"
        );
        assert!(keys.contains(&"PersistentVolumeClaim p-mx/homestead-project".to_owned()));
        assert!(!keys.contains(&"PersistentVolumeClaim p-mx-ci/homestead-project".to_owned()));
        let Object::PersistentVolume(pv) = find(
            &plan,
            Kind::PersistentVolume,
            "homestead-p-mx-homestead-project",
        ) else {
            panic!()
        };
        let spec = pv.spec.as_ref().unwrap();
        assert_eq!(spec.host_path.as_ref().unwrap().path, "/export/projects/mx");
        assert_eq!(spec.capacity.as_ref().unwrap()["storage"].0, "1Ti");
    }

    #[test]
    fn what_cannot_be_planned() {
        // A member without a User: their claim waits, the rest applies.
        let plan = project_objects(
            &Config::default(),
            &project(&[("ghost", "edit"), ("bob", "boss")]),
            &people(),
            &SecretSources::new(),
        )
        .unwrap();
        assert_eq!(plan.problems.len(), 2, "{:?}", plan.problems);
        assert!(plan.problems.iter().any(|p| p.contains("boss")));
        assert!(
            plan.problems
                .iter()
                .any(|p| p.contains("ghost") && p.contains("no User"))
        );
        assert_eq!(
            bindings(&plan, "p-mx")[1],
            "homestead-project-edit -> edit: ghost",
            "RBAC needs no User"
        );
        // No gid at all, a gid of 0, a bad namespace: nothing.
        let mut p = project(&[]);
        p.spec.owner = "ghost".into();
        let none = BTreeMap::new();
        assert!(project_objects(&Config::default(), &p, &none, &SecretSources::new()).is_err());
        let mut p = project(&[]);
        p.spec.gid = Some(0);
        assert!(project_objects(&Config::default(), &p, &people(), &SecretSources::new()).is_err());
        let mut p = project(&[]);
        p.spec.namespace = Some("Bad_Name".into());
        assert!(project_objects(&Config::default(), &p, &people(), &SecretSources::new()).is_err());
    }

    proptest! {
        /// Planning is a function of the Project alone: the order members are listed in
        /// (and repeats of the same person) change nothing, and planning twice gives the
        /// same plan.
        #[test]
        fn plans_are_idempotent_and_order_free(
            picks in prop::collection::vec((0usize..4, 0usize..3), 0..8)
        ) {
            let names = ["bob", "erin", "zed", "ghost"];
            let roles = ["admin", "edit", "view"];
            // The first listing of a person wins, so dedup before shuffling.
            let mut seen = Vec::new();
            let members: Vec<(&str, &str)> = picks
                .iter()
                .filter(|(n, _)| { let new = !seen.contains(n); seen.push(*n); new })
                .map(|(n, r)| (names[*n], roles[*r]))
                .collect();
            let mut reversed = members.clone();
            reversed.reverse();
            let config = Config::default();
            let a = project_objects(&config, &project(&members), &people(), &SecretSources::new()).unwrap();
            let again = project_objects(&config, &project(&members), &people(), &SecretSources::new()).unwrap();
            let b = project_objects(&config, &project(&reversed), &people(), &SecretSources::new()).unwrap();
            prop_assert_eq!(&a, &again);
            prop_assert_eq!(keys(&a), keys(&b));
            prop_assert_eq!(bindings(&a, "p-mx"), bindings(&b, "p-mx"));
        }
    }
}
