//! Example files compiled into the binary: the directory offline use falls back to
//! (`review`, `mutate`, `serve --dev`), the example configuration (every field, documented;
//! never read implicitly) and an example AdmissionReview.
//!
//! The files live in `manifests/examples/`; the tests below keep them loadable.

use homestead_core::config::{Config, ConfigError};
use homestead_core::directory::{Directory, DirectoryError, DirectoryProblem};

/// `manifests/examples/config.yaml`: every configuration field, commented.
pub const EXAMPLE_CONFIG: &str = include_str!("../manifests/examples/config.yaml");

/// `manifests/examples/directory.yaml`: users ada, bob, carol (disabled) and dave, session
/// `cm37235-2` (members ada, bob, carol) and two dataset claims.
pub const EXAMPLE_DIRECTORY: &str = include_str!("../manifests/examples/directory.yaml");

/// `manifests/examples/review-pod.json`: an AdmissionReview v1 for a plain Pod CREATE by
/// `ada` in `home-ada`.
pub const EXAMPLE_REVIEW: &str = include_str!("../manifests/examples/review-pod.json");

/// Where [`EXAMPLE_REVIEW`] lives, relative to the repository root.
pub const EXAMPLE_REVIEW_PATH: &str = "manifests/examples/review-pod.json";

/// Where [`EXAMPLE_CONFIG`] lives, relative to the repository root.
pub const EXAMPLE_CONFIG_PATH: &str = "manifests/examples/config.yaml";

/// Where [`EXAMPLE_DIRECTORY`] lives, relative to the repository root.
pub const EXAMPLE_DIRECTORY_PATH: &str = "manifests/examples/directory.yaml";

/// The example configuration, parsed.
pub fn example_config() -> Result<Config, ConfigError> {
    Config::from_yaml(EXAMPLE_CONFIG)
}

/// The example directory, built with `config` (objects it cannot use are reported).
pub fn example_directory(
    config: &Config,
) -> Result<(Directory, Vec<DirectoryProblem>), DirectoryError> {
    Directory::from_yaml(config, EXAMPLE_DIRECTORY)
}

#[cfg(test)]
mod tests {
    use super::*;
    use homestead_core::directory::NamespaceOwner;

    #[test]
    fn example_config_parses_and_differs_from_defaults_only_where_commented() {
        let config = example_config().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.username_prefix, "");
        assert_eq!(config.namespaces.user.source(), "home-{username}");
        assert_eq!(
            config.storage.private.server.as_deref(),
            Some("nfs.example.org")
        );
        assert_eq!(
            config.trusted_controllers,
            Config::default().trusted_controllers
        );
        assert_eq!(
            config.workflow_controllers,
            Config::default().workflow_controllers
        );
        assert!(config.ldap.is_none());
    }

    #[test]
    fn example_config_mentions_every_field() {
        fn keys(value: &serde_json::Value, path: &str, out: &mut Vec<String>) {
            if let serde_json::Value::Object(map) = value {
                for (key, child) in map {
                    out.push(format!("{path}{key}"));
                    keys(child, &format!("{path}{key}."), out);
                }
            }
        }
        let mut all = Vec::new();
        let ldap =
            "url: ldap://x\nusers: {base: b, filter: (a=b)}\ngroups: {base: b, filter: (a=b)}\n";
        let config = Config {
            ldap: Some(serde_saphyr::from_str(ldap).unwrap_or_else(|e| panic!("{e}"))),
            ..Config::default()
        };
        keys(&serde_json::to_value(&config).unwrap(), "", &mut all);
        let missing: Vec<&String> = all
            .iter()
            .filter(|path| {
                let key = path.rsplit('.').next().unwrap_or_default();
                !EXAMPLE_CONFIG.contains(&format!("{key}:"))
            })
            .collect();
        assert!(
            missing.is_empty(),
            "{EXAMPLE_CONFIG_PATH} does not mention {missing:?}; document the new fields there"
        );
    }

    #[test]
    fn example_directory_loads_without_problems() {
        let config = example_config().unwrap_or_else(|e| panic!("{e}"));
        let (dir, problems) = example_directory(&config).unwrap_or_else(|e| panic!("{e}"));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(dir.user_count(), 4);
        assert_eq!(dir.namespace_count(), 5);
        let ada = dir.user("ada").expect("ada");
        assert_eq!((ada.uid, ada.gid), (1001, 1001));
        assert_eq!(ada.supplemental_groups, vec![2000]);
        assert!(dir.user("carol").expect("carol").disabled);
        let Some(NamespaceOwner::Session(session)) = dir.namespace("cm37235-2") else {
            panic!("session namespace cm37235-2 missing");
        };
        assert_eq!(session.gid, 159620);
        assert_eq!(session.members, ["ada", "bob", "carol"]);
        assert!(!session.is_member("dave"));
        assert_eq!(dir.datasets("cm37235-2")[0].name, "imagenet");
        assert_eq!(dir.datasets("home-ada")[0].name, "reference-genomes");
    }

    #[test]
    fn example_review_is_a_pod_create_by_ada() {
        let review: serde_json::Value = serde_json::from_str(EXAMPLE_REVIEW).unwrap();
        assert_eq!(review["apiVersion"], "admission.k8s.io/v1");
        let request = &review["request"];
        assert_eq!(request["userInfo"]["username"], "ada");
        assert_eq!(request["namespace"], "home-ada");
        assert_eq!(request["operation"], "CREATE");
        assert_eq!(request["kind"]["kind"], "Pod");
        assert!(EXAMPLE_REVIEW_PATH.ends_with("review-pod.json"));
    }
}
