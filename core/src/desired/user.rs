//! A `User`'s namespace and everything in it.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ConfigMap, LimitRange, Namespace, ResourceQuota, Secret, ServiceAccount,
};
use k8s_openapi::api::rbac::v1::{RoleBinding, RoleRef, Subject};
use kube::ResourceExt;
use kube::core::ObjectMeta;

use super::storage::storage_objects;
use super::{
    DesiredObjects, DesiredObjectsError, Kind, OWNER_ROLE_BINDING, Object, ObjectKey, Owner,
    OwnerKind, QUOTA_NAME, SecretSources, USER_CONFIG_MAP, clone_sources,
};
use crate::config::{Config, StorageConfig};
use crate::directory::user_namespace;
use crate::names::{self, VOLUME_PRIVATE, VOLUME_SHARED};
use crate::resources::{StorageOverride, User, UserSpec};
use crate::template::Value;

/// Everything `user` should have. `sources` holds the clone sources that exist.
pub fn user_objects(
    config: &Config,
    user: &User,
    sources: &SecretSources,
) -> Result<DesiredObjects, DesiredObjectsError> {
    let spec = &user.spec;
    let namespace = user_namespace(config, spec).map_err(DesiredObjectsError::Invalid)?;
    if !names::is_dns1123_label(&namespace) {
        return Err(DesiredObjectsError::Invalid(format!(
            "namespace {namespace:?} is not a valid namespace name"
        )));
    }
    let owner = Owner {
        kind: OwnerKind::User,
        name: user.name_any(),
        uid: user.uid().unwrap_or_default(),
    };
    let mut objects = vec![namespace_object(config, &owner, &namespace)];
    let mut absent = Vec::new();
    let mut problems = Vec::new();

    for sa in &config.controller.service_accounts {
        objects.push(Object::ServiceAccount(ServiceAccount {
            metadata: child_meta(&owner, &namespace, sa),
            ..Default::default()
        }));
    }
    let binding_key = ObjectKey {
        kind: Kind::RoleBinding,
        namespace: Some(namespace.clone()),
        name: OWNER_ROLE_BINDING.to_owned(),
    };
    if spec.disabled {
        absent.push(binding_key);
    } else {
        objects.push(Object::RoleBinding(role_binding(
            &owner,
            &namespace,
            OWNER_ROLE_BINDING,
            &config.controller.rbac.user_cluster_role,
            vec![user_subject(config, &spec.username)],
        )));
    }

    let private_dir = config
        .storage
        .private
        .enabled
        .then(|| config.storage.private.mount_path.clone())
        .flatten();
    let shared_dir = config
        .storage
        .shared
        .enabled
        .then(|| config.storage.shared.mount_path.clone())
        .flatten();
    let mut data = BTreeMap::from([
        ("username".to_owned(), spec.username.clone()),
        ("uid".to_owned(), spec.uid.to_string()),
        ("gid".to_owned(), spec.gid.to_string()),
        (
            "groups".to_owned(),
            serde_json::to_string(&spec.supplemental_groups).unwrap_or_else(|_| "[]".into()),
        ),
        ("namespace".to_owned(), namespace.clone()),
    ]);
    if let Some(dir) = private_dir {
        data.insert("private_dir".to_owned(), dir);
    }
    if let Some(dir) = shared_dir {
        data.insert("shared_dir".to_owned(), dir);
    }
    objects.push(Object::ConfigMap(ConfigMap {
        metadata: child_meta(&owner, &namespace, USER_CONFIG_MAP),
        data: Some(data),
        ..Default::default()
    }));

    common_objects(
        config,
        &owner,
        &namespace,
        sources,
        &mut objects,
        &mut problems,
    );

    let overrides = spec.storage.as_ref();
    if config.storage.private.enabled {
        let (path, size) =
            private_location(config, spec, overrides.and_then(|o| o.private.as_ref()));
        objects.extend(storage_objects(
            &owner,
            &namespace,
            VOLUME_PRIVATE,
            &config.storage.private,
            &path,
            &size,
        ));
    }
    if config.storage.shared.enabled {
        let (path, size) = shared_location(
            config,
            &namespace,
            overrides.and_then(|o| o.shared.as_ref()),
        );
        objects.extend(storage_objects(
            &owner,
            &namespace,
            VOLUME_SHARED,
            &config.storage.shared,
            &path,
            &size,
        ));
    }
    Ok(DesiredObjects {
        namespace,
        objects,
        absent,
        member_claims: None,
        problems,
    })
}

/// Where a user's private data lives and how big its claim is: the user's overrides, else
/// the configured template (`{username}` is the login name as the filesystem knows it).
pub(super) fn private_location(
    config: &Config,
    spec: &UserSpec,
    over: Option<&StorageOverride>,
) -> (String, String) {
    let slot: &StorageConfig = &config.storage.private;
    let path = over.and_then(|o| o.path.clone()).unwrap_or_else(|| {
        slot.path_template.render(|key| match key {
            "username" => Some(Value::Text(&spec.username)),
            "uid" => Some(Value::Number(spec.uid)),
            "gid" => Some(Value::Number(spec.gid)),
            other => config.variable(other),
        })
    });
    let size = over
        .and_then(|o| o.size.clone())
        .unwrap_or_else(|| slot.size.clone());
    (path, size)
}

/// Where shared data lives for `namespace`.
pub(super) fn shared_location(
    config: &Config,
    namespace: &str,
    over: Option<&StorageOverride>,
) -> (String, String) {
    let slot = &config.storage.shared;
    let path = over.and_then(|o| o.path.clone()).unwrap_or_else(|| {
        slot.path_template.render(|key| match key {
            "namespace" => Some(Value::Text(namespace)),
            other => config.variable(other),
        })
    });
    let size = over
        .and_then(|o| o.size.clone())
        .unwrap_or_else(|| slot.size.clone());
    (path, size)
}

/// Cloned Secrets, quota and limits: the same for users and sessions.
pub(super) fn common_objects(
    config: &Config,
    owner: &Owner,
    namespace: &str,
    sources: &SecretSources,
    objects: &mut Vec<Object>,
    problems: &mut Vec<String>,
) {
    for (from, name) in clone_sources(config, owner.kind) {
        let Some(source) = sources.get(&(from.namespace.clone(), from.name.clone())) else {
            problems.push(format!(
                "Secret {}/{} to clone as {name} does not exist",
                from.namespace, from.name
            ));
            continue;
        };
        let mut meta = child_meta(owner, namespace, &name);
        meta.annotations = Some(BTreeMap::from([(
            CLONED_FROM.to_owned(),
            format!("{}/{}", from.namespace, from.name),
        )]));
        objects.push(Object::Secret(Secret {
            metadata: meta,
            data: source.data.clone(),
            string_data: None,
            type_: source.type_.clone(),
            immutable: None,
        }));
    }
    if let Some(spec) = &config.controller.resource_quota {
        objects.push(Object::ResourceQuota(ResourceQuota {
            metadata: child_meta(owner, namespace, QUOTA_NAME),
            spec: Some(spec.clone()),
            status: None,
        }));
    }
    if let Some(spec) = &config.controller.limit_range {
        objects.push(Object::LimitRange(LimitRange {
            metadata: child_meta(owner, namespace, QUOTA_NAME),
            spec: Some(spec.clone()),
        }));
    }
}

/// Annotation on a cloned Secret naming its source.
pub const CLONED_FROM: &str = "homestead.dev/cloned-from";

/// The namespace of `owner`: homestead's labels and the configured Pod Security
/// Admission levels.
pub(super) fn namespace_object(config: &Config, owner: &Owner, namespace: &str) -> Object {
    let mut labels = owner.namespace_labels();
    labels.extend(
        config
            .controller
            .pod_security
            .labels()
            .map(|(key, level)| (key, level.to_owned())),
    );
    Object::Namespace(Namespace {
        metadata: ObjectMeta {
            name: Some(namespace.to_owned()),
            labels: Some(labels),
            owner_references: Some(vec![owner.reference()]),
            ..Default::default()
        },
        spec: None,
        status: None,
    })
}

pub(super) fn child_meta(owner: &Owner, namespace: &str, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(namespace.to_owned()),
        labels: Some(owner.labels()),
        owner_references: Some(vec![owner.reference()]),
        ..Default::default()
    }
}

pub(super) fn user_subject(config: &Config, username: &str) -> Subject {
    Subject {
        api_group: Some("rbac.authorization.k8s.io".into()),
        kind: "User".into(),
        name: format!("{}{username}", config.username_prefix),
        namespace: None,
    }
}

pub(super) fn role_binding(
    owner: &Owner,
    namespace: &str,
    name: &str,
    cluster_role: &str,
    subjects: Vec<Subject>,
) -> RoleBinding {
    RoleBinding {
        metadata: child_meta(owner, namespace, name),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "ClusterRole".into(),
            name: cluster_role.to_owned(),
        },
        subjects: Some(subjects),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::testing::user;
    use crate::names::{LABEL_MANAGED, LABEL_MANAGED_BY, LABEL_USER};
    use k8s_openapi::ByteString;

    use crate::desired::test_support::{find, keys};

    #[test]
    fn default_user_gets_namespace_binding_configmap_and_storage() {
        let config = Config::default();
        let plan = user_objects(&config, &user("ada", 1001), &SecretSources::new()).unwrap();
        assert_eq!(plan.namespace, "home-ada");
        assert_eq!(
            keys(&plan),
            [
                "Namespace home-ada",
                "RoleBinding home-ada/homestead-owner",
                "ConfigMap home-ada/homestead",
                "PersistentVolume homestead-home-ada-homestead-private",
                "PersistentVolumeClaim home-ada/homestead-private",
                "PersistentVolume homestead-home-ada-homestead-shared",
                "PersistentVolumeClaim home-ada/homestead-shared",
            ]
        );
        assert!(plan.absent.is_empty() && plan.problems.is_empty());
        let Object::Namespace(ns) = &plan.objects[0] else {
            panic!()
        };
        let labels = ns.metadata.labels.as_ref().unwrap();
        assert_eq!(labels[LABEL_MANAGED], "true");
        assert_eq!(labels[LABEL_USER], "ada");
        assert_eq!(labels[LABEL_MANAGED_BY], "homestead");
        assert_eq!(labels["pod-security.kubernetes.io/enforce"], "baseline");
        assert_eq!(labels["pod-security.kubernetes.io/warn"], "restricted");
        assert_eq!(labels["pod-security.kubernetes.io/audit"], "restricted");
        assert_eq!(
            ns.metadata.owner_references.as_ref().unwrap()[0].uid,
            "uid-ada",
            "the namespace is recognised by its owner's uid"
        );
        for o in &plan.objects[1..] {
            let meta = o.meta();
            assert_eq!(meta.labels.as_ref().unwrap()[LABEL_USER], "ada", "{o:?}");
            if o.kind() != Kind::PersistentVolume {
                assert_eq!(
                    meta.owner_references.as_ref().unwrap()[0].uid,
                    "uid-ada",
                    "{o:?}"
                );
            }
        }
    }

    #[test]
    fn role_binding_uses_prefix_and_configured_role() {
        let config = Config::from_yaml(
            "usernamePrefix: 'oidc:'\ncontroller: {rbac: {userClusterRole: homestead-user}}",
        )
        .unwrap();
        let plan = user_objects(&config, &user("Ada.L", 1001), &SecretSources::new()).unwrap();
        assert_eq!(plan.namespace, "home-ada-l");
        let Object::RoleBinding(rb) = find(&plan, Kind::RoleBinding, OWNER_ROLE_BINDING) else {
            panic!()
        };
        assert_eq!(rb.role_ref.name, "homestead-user");
        assert_eq!(rb.role_ref.kind, "ClusterRole");
        let subjects = rb.subjects.as_ref().unwrap();
        assert_eq!(subjects.len(), 1);
        assert_eq!(
            (subjects[0].kind.as_str(), subjects[0].name.as_str()),
            ("User", "oidc:Ada.L")
        );
    }

    #[test]
    fn config_map_has_identity_and_mount_paths() {
        let plan = user_objects(
            &Config::default(),
            &user("ada", 1001),
            &SecretSources::new(),
        )
        .unwrap();
        let Object::ConfigMap(cm) = find(&plan, Kind::ConfigMap, USER_CONFIG_MAP) else {
            panic!()
        };
        let data = cm.data.as_ref().unwrap();
        let want = [
            ("username", "ada"),
            ("uid", "1001"),
            ("gid", "1001"),
            ("groups", "[2000,2001]"),
            ("namespace", "home-ada"),
            ("private_dir", "/private"),
            ("shared_dir", "/shared"),
        ];
        assert_eq!(data.len(), want.len(), "{data:?}");
        for (k, v) in want {
            assert_eq!(data[k], v, "{k}");
        }
    }

    #[test]
    fn disabled_user_loses_only_the_role_binding() {
        let mut u = user("ada", 1001);
        let enabled = user_objects(&Config::default(), &u, &SecretSources::new()).unwrap();
        u.spec.disabled = true;
        let plan = user_objects(&Config::default(), &u, &SecretSources::new()).unwrap();
        assert_eq!(
            plan.absent,
            [ObjectKey {
                kind: Kind::RoleBinding,
                namespace: Some("home-ada".into()),
                name: OWNER_ROLE_BINDING.into()
            }]
        );
        let without: Vec<_> = enabled
            .objects
            .into_iter()
            .filter(|o| o.kind() != Kind::RoleBinding)
            .collect();
        assert_eq!(plan.objects, without, "everything else is unchanged");
    }

    #[test]
    fn overrides_service_accounts_quota_limits_and_clones() {
        let config = Config::from_yaml(
            r#"
storage:
  private: {backend: nfs, server: nfs1, pathTemplate: "/home/{uid:06}"}
  shared: {enabled: false}
controller:
  serviceAccounts: [jupyter, runner]
  resourceQuota: {hard: {pods: "20"}}
  limitRange: {limits: [{type: Container, default: {cpu: "1"}}]}
  secretClones:
    - {from: {namespace: infra, name: registry}, name: pull-secret}
    - {from: {namespace: infra, name: missing}}
"#,
        )
        .unwrap();
        let mut source = Secret {
            data: Some(BTreeMap::from([(
                ".dockerconfigjson".into(),
                ByteString(b"{}".to_vec()),
            )])),
            type_: Some("kubernetes.io/dockerconfigjson".into()),
            ..Default::default()
        };
        source.metadata.labels = Some(BTreeMap::from([("foreign".into(), "x".into())]));
        let sources = SecretSources::from([(("infra".into(), "registry".into()), source)]);
        let u = user("ada", 42);
        let plan = user_objects(&config, &u, &sources).unwrap();
        assert_eq!(
            keys(&plan),
            [
                "Namespace home-ada",
                "ServiceAccount home-ada/jupyter",
                "ServiceAccount home-ada/runner",
                "RoleBinding home-ada/homestead-owner",
                "ConfigMap home-ada/homestead",
                "Secret home-ada/pull-secret",
                "ResourceQuota home-ada/homestead",
                "LimitRange home-ada/homestead",
                "PersistentVolume homestead-home-ada-homestead-private",
                "PersistentVolumeClaim home-ada/homestead-private",
            ]
        );
        assert_eq!(
            plan.problems,
            ["Secret infra/missing to clone as missing does not exist"]
        );
        let Object::Secret(secret) = find(&plan, Kind::Secret, "pull-secret") else {
            panic!()
        };
        assert_eq!(
            secret.type_.as_deref(),
            Some("kubernetes.io/dockerconfigjson")
        );
        assert_eq!(secret.data.as_ref().unwrap()[".dockerconfigjson"].0, b"{}");
        assert_eq!(
            secret.metadata.labels.as_ref().unwrap().get("foreign"),
            None,
            "the source's labels are not copied"
        );
        assert_eq!(
            secret.metadata.annotations.as_ref().unwrap()[CLONED_FROM],
            "infra/registry"
        );
        let Object::PersistentVolume(pv) = find(
            &plan,
            Kind::PersistentVolume,
            "homestead-home-ada-homestead-private",
        ) else {
            panic!()
        };
        let nfs = pv.spec.as_ref().unwrap().nfs.as_ref().unwrap();
        assert_eq!(
            (nfs.server.as_str(), nfs.path.as_str()),
            ("nfs1", "/home/000042")
        );
        let Object::ConfigMap(cm) = find(&plan, Kind::ConfigMap, USER_CONFIG_MAP) else {
            panic!()
        };
        assert!(!cm.data.as_ref().unwrap().contains_key("shared_dir"));
    }

    #[test]
    fn per_user_storage_override_and_namespace() {
        let mut u = user("ada", 1001);
        u.spec.namespace = Some("ada-lab".into());
        u.spec.storage = Some(crate::resources::UserStorage {
            private: Some(StorageOverride {
                path: Some("/big/ada".into()),
                size: Some("1Ti".into()),
            }),
            shared: None,
        });
        let plan = user_objects(&Config::default(), &u, &SecretSources::new()).unwrap();
        assert_eq!(plan.namespace, "ada-lab");
        let Object::PersistentVolume(pv) = find(
            &plan,
            Kind::PersistentVolume,
            "homestead-ada-lab-homestead-private",
        ) else {
            panic!()
        };
        let spec = pv.spec.as_ref().unwrap();
        assert_eq!(spec.host_path.as_ref().unwrap().path, "/big/ada");
        assert_eq!(spec.capacity.as_ref().unwrap()["storage"].0, "1Ti");
        let Object::PersistentVolume(shared) = find(
            &plan,
            Kind::PersistentVolume,
            "homestead-ada-lab-homestead-shared",
        ) else {
            panic!()
        };
        assert_eq!(
            shared
                .spec
                .as_ref()
                .unwrap()
                .host_path
                .as_ref()
                .unwrap()
                .path,
            "/export/shared"
        );
    }

    #[test]
    fn invalid_users_plan_nothing() {
        let mut u = user("ada", 1001);
        u.spec.namespace = Some("Not_A_Namespace".into());
        let err = user_objects(&Config::default(), &u, &SecretSources::new()).unwrap_err();
        assert!(
            err.to_string().contains("not a valid namespace name"),
            "{err}"
        );
        let mut u = user("ada", 1001);
        u.spec.username = "ada@example.org".into();
        assert!(user_objects(&Config::default(), &u, &SecretSources::new()).is_err());
    }
}
