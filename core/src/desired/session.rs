//! A `Session`'s namespace and everything in it.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use k8s_openapi::api::rbac::v1::Subject;
use kube::ResourceExt;

use super::storage::storage_objects;
use super::user::{
    child_meta, common_objects, namespace_object, private_location, role_binding, shared_location,
    user_subject,
};
use super::{
    DesiredObjects, DesiredObjectsError, MEMBER_ROLE_BINDING, Object, Owner, OwnerKind,
    SESSION_CONFIG_MAP, SecretSources, WORKFLOW_SERVICE_ACCOUNT,
};
use crate::config::Config;
use crate::directory::{session_namespace, session_value};
use crate::names::{self, VOLUME_DATA, VOLUME_SHARED};
use crate::resources::{Session, UserSpec};
use crate::template::Value;

/// Everything `session` should have. `members` maps usernames to their `User` specs (a
/// member's private claim needs their uid and storage); `sources` holds the clone sources
/// that exist.
pub fn session_objects(
    config: &Config,
    session: &Session,
    members: &BTreeMap<String, UserSpec>,
    sources: &SecretSources,
) -> Result<DesiredObjects, DesiredObjectsError> {
    let spec = &session.spec;
    let namespace = session_namespace(config, spec);
    if !names::is_dns1123_label(&namespace) {
        return Err(DesiredObjectsError::Invalid(format!(
            "namespace {namespace:?} is not a valid namespace name"
        )));
    }
    if spec.gid <= 0 {
        return Err(DesiredObjectsError::Invalid(format!(
            "spec.gid {} must be positive",
            spec.gid
        )));
    }
    let owner = Owner {
        kind: OwnerKind::Session,
        name: session.name_any(),
        uid: session.uid().unwrap_or_default(),
    };
    let mut objects = vec![namespace_object(config, &owner, &namespace)];
    let mut problems = Vec::new();

    let data = BTreeMap::from([
        ("proposal_code".to_owned(), spec.proposal_code.clone()),
        (
            "proposal_number".to_owned(),
            spec.proposal_number.to_string(),
        ),
        ("visit".to_owned(), spec.visit.to_string()),
        ("instrument".to_owned(), spec.instrument.clone()),
        ("start_date".to_owned(), spec.start_date.clone()),
        ("end_date".to_owned(), spec.end_date.clone()),
        ("data_directory".to_owned(), spec.data_directory.clone()),
        ("gid".to_owned(), spec.gid.to_string()),
        (
            "members".to_owned(),
            serde_json::to_string(&spec.members).unwrap_or_else(|_| "[]".into()),
        ),
    ]);
    objects.push(Object::ConfigMap(ConfigMap {
        metadata: child_meta(&owner, &namespace, SESSION_CONFIG_MAP),
        data: Some(data),
        ..Default::default()
    }));
    objects.push(Object::ServiceAccount(ServiceAccount {
        metadata: child_meta(&owner, &namespace, WORKFLOW_SERVICE_ACCOUNT),
        ..Default::default()
    }));
    objects.push(Object::RoleBinding(role_binding(
        &owner,
        &namespace,
        WORKFLOW_SERVICE_ACCOUNT,
        &config.controller.rbac.workflow_cluster_role,
        vec![Subject {
            api_group: None,
            kind: "ServiceAccount".into(),
            name: WORKFLOW_SERVICE_ACCOUNT.into(),
            namespace: Some(namespace.clone()),
        }],
    )));
    objects.push(Object::RoleBinding(role_binding(
        &owner,
        &namespace,
        MEMBER_ROLE_BINDING,
        &config.controller.rbac.session_member_cluster_role,
        spec.members
            .iter()
            .map(|m| user_subject(config, m))
            .collect(),
    )));

    common_objects(
        config,
        &owner,
        &namespace,
        sources,
        &mut objects,
        &mut problems,
    );

    let slot = &config.storage.session;
    if slot.enabled {
        let path = slot.path_template.render(|key| match key {
            "dataDirectory" => Some(Value::Text(&spec.data_directory)),
            other => session_value(config, spec, other),
        });
        objects.extend(storage_objects(
            &owner,
            &namespace,
            VOLUME_DATA,
            slot,
            &path,
            &slot.size,
        ));
    }
    if config.storage.shared.enabled {
        let (path, size) = shared_location(config, &namespace, None);
        objects.extend(storage_objects(
            &owner,
            &namespace,
            VOLUME_SHARED,
            &config.storage.shared,
            &path,
            &size,
        ));
    }
    let mut member_claims = Vec::new();
    if config.storage.private.enabled {
        for member in &spec.members {
            let claim = match names::session_private_claim(member) {
                Ok(claim) => claim,
                Err(e) => {
                    problems.push(format!("member {member:?}: {e}"));
                    continue;
                }
            };
            if member_claims.contains(&claim) {
                continue;
            }
            // A listed member's claim is wanted whether or not their User is known (yet):
            // only a claim of someone no longer a member is stale. A User missing from the
            // cache must never cost a member their claim.
            member_claims.push(claim.clone());
            let Some(user) = members.get(member) else {
                problems.push(format!(
                    "member {member:?} has no User; their private claim waits for one"
                ));
                continue;
            };
            let over = user.storage.as_ref().and_then(|s| s.private.as_ref());
            let (path, size) = private_location(config, user, over);
            objects.extend(storage_objects(
                &owner,
                &namespace,
                &claim,
                &config.storage.private,
                &path,
                &size,
            ));
        }
    }
    Ok(DesiredObjects {
        namespace,
        objects,
        absent: Vec::new(),
        member_claims: Some(member_claims),
        problems,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::testing::{session, user};
    use crate::desired::{ARTIFACT_SECRET, Kind};
    use crate::names::{LABEL_MANAGED, LABEL_SESSION};
    use k8s_openapi::api::core::v1::Secret;

    fn members(names: &[(&str, i64)]) -> BTreeMap<String, UserSpec> {
        names
            .iter()
            .map(|(n, uid)| ((*n).to_owned(), user(n, *uid).spec))
            .collect()
    }

    use crate::desired::test_support::{find, keys};

    #[test]
    fn session_gets_everything_in_order() {
        let config =
            Config::from_yaml("controller: {artifactSecret: {namespace: argo, name: minio}}")
                .unwrap();
        let sources = SecretSources::from([(
            ("argo".into(), "minio".into()),
            Secret {
                string_data: None,
                type_: Some("Opaque".into()),
                ..Default::default()
            },
        )]);
        let plan = session_objects(
            &config,
            &session(&["enu43627", "iat69393"]),
            &members(&[("enu43627", 1001), ("iat69393", 1002)]),
            &sources,
        )
        .unwrap();
        assert_eq!(plan.namespace, "cm37235-2");
        assert_eq!(
            keys(&plan),
            [
                "Namespace cm37235-2",
                "ConfigMap cm37235-2/sessionspaces",
                "ServiceAccount cm37235-2/argo-workflow",
                "RoleBinding cm37235-2/argo-workflow",
                "RoleBinding cm37235-2/visit-member",
                "Secret cm37235-2/artifact-s3",
                "PersistentVolume homestead-cm37235-2-homestead-data",
                "PersistentVolumeClaim cm37235-2/homestead-data",
                "PersistentVolume homestead-cm37235-2-homestead-shared",
                "PersistentVolumeClaim cm37235-2/homestead-shared",
                "PersistentVolume homestead-cm37235-2-homestead-private-enu43627",
                "PersistentVolumeClaim cm37235-2/homestead-private-enu43627",
                "PersistentVolume homestead-cm37235-2-homestead-private-iat69393",
                "PersistentVolumeClaim cm37235-2/homestead-private-iat69393",
            ]
        );
        assert_eq!(
            plan.member_claims.as_deref(),
            Some(
                &[
                    "homestead-private-enu43627".to_owned(),
                    "homestead-private-iat69393".to_owned()
                ][..]
            )
        );
        assert!(plan.problems.is_empty(), "{:?}", plan.problems);
        let Object::Namespace(ns) = &plan.objects[0] else {
            panic!()
        };
        let labels = ns.metadata.labels.as_ref().unwrap();
        assert_eq!(labels[LABEL_SESSION], "cm37235-2");
        assert_eq!(labels[LABEL_MANAGED], "true");
        assert!(
            find(&plan, Kind::Secret, ARTIFACT_SECRET)
                .meta()
                .annotations
                .is_some()
        );
    }

    #[test]
    fn namespaces_carry_the_configured_pod_security_levels() {
        let labels = |yaml: &str| {
            let config = Config::from_yaml(yaml).unwrap();
            let plan = session_objects(
                &config,
                &session(&["enu43627"]),
                &members(&[("enu43627", 1001)]),
                &SecretSources::new(),
            )
            .unwrap();
            let Object::Namespace(ns) = &plan.objects[0] else {
                panic!()
            };
            ns.metadata
                .labels
                .clone()
                .unwrap()
                .into_iter()
                .filter(|(k, _)| k.starts_with("pod-security.kubernetes.io/"))
                .collect::<BTreeMap<_, _>>()
        };
        let psa = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (format!("pod-security.kubernetes.io/{k}"), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>()
        };
        assert_eq!(
            labels(""),
            psa(&[
                ("audit", "restricted"),
                ("enforce", "baseline"),
                ("warn", "restricted")
            ])
        );
        assert_eq!(
            labels("controller: {podSecurity: {enforce: restricted, warn: null, audit: null}}"),
            psa(&[("enforce", "restricted")])
        );
        assert!(Config::from_yaml("controller: {podSecurity: {enforce: strict}}").is_err());
    }

    #[test]
    fn config_map_has_exactly_the_session_keys_as_strings() {
        let plan = session_objects(
            &Config::default(),
            &session(&["enu43627", "iat69393", "mrg27357"]),
            &BTreeMap::new(),
            &SecretSources::new(),
        )
        .unwrap();
        let Object::ConfigMap(cm) = find(&plan, Kind::ConfigMap, SESSION_CONFIG_MAP) else {
            panic!()
        };
        let data = cm.data.as_ref().unwrap();
        let want = [
            ("proposal_code", "cm"),
            ("proposal_number", "37235"),
            ("visit", "2"),
            ("instrument", "i03"),
            ("start_date", "2024-03-15 9:00:00.0"),
            ("end_date", "2034-05-24 9:00:00.0"),
            ("data_directory", "/dls/i03/data/2024/cm37235-2/"),
            ("gid", "159620"),
            ("members", r#"["enu43627","iat69393","mrg27357"]"#),
        ];
        assert_eq!(data.len(), want.len(), "{data:?}");
        for (k, v) in want {
            assert_eq!(data[k], v, "{k}");
        }
        let members: Vec<String> = serde_json::from_str(&data["members"]).unwrap();
        assert_eq!(members.len(), 3);
    }

    #[test]
    fn role_bindings_name_members_and_the_workflow_account() {
        let config = Config::from_yaml(
            "usernamePrefix: 'oidc:'\ncontroller: {rbac: {sessionMemberClusterRole: visit, workflowClusterRole: argo-wf}}",
        )
        .unwrap();
        let plan = session_objects(
            &config,
            &session(&["ada", "bob"]),
            &BTreeMap::new(),
            &SecretSources::new(),
        )
        .unwrap();
        let Object::RoleBinding(rb) = find(&plan, Kind::RoleBinding, MEMBER_ROLE_BINDING) else {
            panic!()
        };
        assert_eq!(rb.role_ref.name, "visit");
        let names: Vec<_> = rb
            .subjects
            .iter()
            .flatten()
            .map(|s| (s.kind.as_str(), s.name.as_str()))
            .collect();
        assert_eq!(names, [("User", "oidc:ada"), ("User", "oidc:bob")]);
        let Object::RoleBinding(wf) = find(&plan, Kind::RoleBinding, WORKFLOW_SERVICE_ACCOUNT)
        else {
            panic!()
        };
        assert_eq!(wf.role_ref.name, "argo-wf");
        let s = &wf.subjects.as_ref().unwrap()[0];
        assert_eq!(
            (s.kind.as_str(), s.name.as_str(), s.namespace.as_deref()),
            ("ServiceAccount", "argo-workflow", Some("cm37235-2"))
        );
    }

    #[test]
    fn data_volume_follows_the_session_template() {
        let config = Config::from_yaml(
            "storage:\n  session: {backend: nfs, server: dls-nfs, pathTemplate: '/dls/{instrument}/{proposalCode}{proposalNumber}-{visit}', readOnly: true}\n",
        )
        .unwrap();
        let plan = session_objects(
            &config,
            &session(&[]),
            &BTreeMap::new(),
            &SecretSources::new(),
        )
        .unwrap();
        let Object::PersistentVolume(pv) = find(
            &plan,
            Kind::PersistentVolume,
            "homestead-cm37235-2-homestead-data",
        ) else {
            panic!()
        };
        let nfs = pv.spec.as_ref().unwrap().nfs.as_ref().unwrap();
        assert_eq!(nfs.path, "/dls/i03/cm37235-2");
        assert_eq!(nfs.read_only, Some(true));
        // default template: the session's data directory itself
        let plan = session_objects(
            &Config::default(),
            &session(&[]),
            &BTreeMap::new(),
            &SecretSources::new(),
        )
        .unwrap();
        let Object::PersistentVolume(pv) = find(
            &plan,
            Kind::PersistentVolume,
            "homestead-cm37235-2-homestead-data",
        ) else {
            panic!()
        };
        assert_eq!(
            pv.spec.as_ref().unwrap().host_path.as_ref().unwrap().path,
            "/dls/i03/data/2024/cm37235-2/"
        );
    }

    #[test]
    fn member_claims_follow_members_and_their_users() {
        let config = Config::default();
        let plan = session_objects(
            &config,
            &session(&["Ada.L", "ghost", "bad@name", "Ada.L"]),
            &members(&[("Ada.L", 4242)]),
            &SecretSources::new(),
        )
        .unwrap();
        // ghost has no User (yet, or not in the cache yet): no claim is made for them,
        // but one that exists is still wanted, never deleted as a former member's.
        assert_eq!(
            plan.member_claims.as_deref(),
            Some(
                &[
                    "homestead-private-ada-l".to_owned(),
                    "homestead-private-ghost".to_owned()
                ][..]
            )
        );
        assert!(
            !plan
                .objects
                .iter()
                .any(|o| o.key().name.contains("homestead-private-ghost")),
            "nothing is made for a member without a User"
        );
        let Object::PersistentVolume(pv) = find(
            &plan,
            Kind::PersistentVolume,
            "homestead-cm37235-2-homestead-private-ada-l",
        ) else {
            panic!()
        };
        assert_eq!(
            pv.spec.as_ref().unwrap().host_path.as_ref().unwrap().path,
            "/export/home/Ada.L",
            "the member's own private data"
        );
        assert_eq!(plan.problems.len(), 2, "{:?}", plan.problems);
        assert!(plan.problems[0].contains("ghost") && plan.problems[0].contains("no User"));
        assert!(plan.problems[1].contains("bad@name"));

        let mut no_private = config.clone();
        no_private.storage.private.enabled = false;
        let plan = session_objects(
            &no_private,
            &session(&["Ada.L"]),
            &members(&[("Ada.L", 4242)]),
            &SecretSources::new(),
        )
        .unwrap();
        assert_eq!(plan.member_claims.as_deref(), Some(&[][..]));
    }

    #[test]
    fn bad_sessions_plan_nothing() {
        let mut s = session(&[]);
        s.spec.proposal_code = "CM".into();
        assert!(
            session_objects(
                &Config::default(),
                &s,
                &BTreeMap::new(),
                &SecretSources::new()
            )
            .is_err()
        );
        let mut s = session(&[]);
        s.spec.gid = 0;
        assert!(
            session_objects(
                &Config::default(),
                &s,
                &BTreeMap::new(),
                &SecretSources::new()
            )
            .is_err()
        );
    }
}
