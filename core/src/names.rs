//! Fixed names homestead reads and writes, and the one mapping from a username to a
//! Kubernetes object name.

use thiserror::Error;

/// Label marking a namespace as managed by homestead (only the controller sets it).
pub const LABEL_MANAGED: &str = "homestead.dev/managed";
/// Label naming the `User` (object name) that owns a user namespace.
pub const LABEL_USER: &str = "homestead.dev/user";
/// Label naming the `Session` (object name) that owns a session namespace.
pub const LABEL_SESSION: &str = "homestead.dev/session";
/// Label naming the `Project` (object name) that owns a project namespace.
pub const LABEL_PROJECT: &str = "homestead.dev/project";
/// Label on a PVC making it a dataset claim of its namespace; the value is the dataset name.
pub const LABEL_DATASET: &str = "homestead.dev/dataset";
/// Label on a pod (or template) that opts out of dataset mounts.
pub const LABEL_NO_DATASETS: &str = "homestead.dev/no-datasets";
/// Label on the objects an identity source owns: `ldap` on Users, `ispyb` on Sessions.
pub const LABEL_SOURCE: &str = "homestead.dev/source";
/// Standard label naming the manager of an object.
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Annotation naming the username a pod runs as.
pub const ANNOTATION_RUN_AS: &str = "homestead.dev/run-as";
/// Annotation on a User, Session or Project being deleted that lets the delete through
/// the blocking hooks it names (comma-separated); only cluster admins may set it.
pub const ANNOTATION_SKIP_HOOKS: &str = "homestead.dev/skip-hooks";

/// Volume (and user-namespace claim) of the identity's private data.
pub const VOLUME_PRIVATE: &str = "homestead-private";
/// Volume and claim of the shared data.
pub const VOLUME_SHARED: &str = "homestead-shared";
/// Volume and claim of a session's data directory.
pub const VOLUME_DATA: &str = "homestead-data";
/// Volume and claim of a project's data (projects with `spec.storage`).
pub const VOLUME_PROJECT: &str = "homestead-project";
/// Prefix of dataset volumes: `dataset-<name>`.
pub const VOLUME_DATASET_PREFIX: &str = "dataset-";

/// The prefix of every environment variable homestead writes: the only variables of a
/// container that admission keeps when it reads the pod.
pub const ENV_PREFIX: &str = "HOMESTEAD_";
/// Environment variables written into every container.
pub const ENV_USER: &str = "HOMESTEAD_USER";
/// The identity's uid.
pub const ENV_UID: &str = "HOMESTEAD_UID";
/// The identity's effective gid.
pub const ENV_GID: &str = "HOMESTEAD_GID";
/// The pod's namespace.
pub const ENV_NAMESPACE: &str = "HOMESTEAD_NAMESPACE";
/// Mount path of the private volume.
pub const ENV_PRIVATE_DIR: &str = "HOMESTEAD_PRIVATE_DIR";
/// Mount path of the shared volume.
pub const ENV_SHARED_DIR: &str = "HOMESTEAD_SHARED_DIR";
/// Mount path of the session data volume (session namespaces only).
pub const ENV_DATA_DIR: &str = "HOMESTEAD_DATA_DIR";
/// Mount path of the project volume (project namespaces with storage only).
pub const ENV_PROJECT_DIR: &str = "HOMESTEAD_PROJECT_DIR";

/// The claim holding a member's private data in a session namespace.
pub fn session_private_claim(username: &str) -> Result<String, NameError> {
    Ok(format!("{VOLUME_PRIVATE}-{}", object_name(username)?))
}

/// The volume name of a dataset.
pub fn dataset_volume(dataset: &str) -> String {
    format!("{VOLUME_DATASET_PREFIX}{dataset}")
}

/// Why a username has no object name.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NameError {
    /// The username is empty.
    #[error("username is empty")]
    Empty,
    /// The username has a character that is not a letter, digit, `-`, `_` or `.`.
    #[error(
        "username {username:?} contains {found:?}; only letters, digits, '-', '_' and '.' can be mapped to a name"
    )]
    BadCharacter {
        /// The username.
        username: String,
        /// The first offending character.
        found: char,
    },
    /// The mapped name does not start and end with a letter or digit.
    #[error("username {0:?} must start and end with a letter or digit")]
    BadEdge(String),
    /// The mapped name is longer than a DNS-1123 label.
    #[error("username {0:?} is longer than 63 characters")]
    TooLong(String),
}

/// Maps a Unix username to its DNS-1123 label form: letters are lowercased and `_` and
/// `.` become `-`. Every place that names an object after a user calls this.
pub fn object_name(username: &str) -> Result<String, NameError> {
    if username.is_empty() {
        return Err(NameError::Empty);
    }
    let mut name = String::with_capacity(username.len());
    for c in username.chars() {
        match c {
            'a'..='z' | '0'..='9' | '-' => name.push(c),
            'A'..='Z' => name.push(c.to_ascii_lowercase()),
            '_' | '.' => name.push('-'),
            found => {
                return Err(NameError::BadCharacter {
                    username: username.to_owned(),
                    found,
                });
            }
        }
    }
    if name.len() > 63 {
        return Err(NameError::TooLong(username.to_owned()));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err(NameError::BadEdge(username.to_owned()));
    }
    Ok(name)
}

/// True when `name` is a valid DNS-1123 label (namespace names, most object names).
pub fn is_dns1123_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_map_to_labels() {
        let cases = [
            ("ada", Ok("ada")),
            ("Ada.Lovelace", Ok("ada-lovelace")),
            ("enu43627", Ok("enu43627")),
            ("j_doe", Ok("j-doe")),
            ("", Err(NameError::Empty)),
            ("_ada", Err(NameError::BadEdge("_ada".into()))),
        ];
        for (input, want) in cases {
            assert_eq!(
                object_name(input).as_deref().map_err(Clone::clone),
                want,
                "{input}"
            );
        }
        assert!(matches!(
            object_name("ada@example.org"),
            Err(NameError::BadCharacter { found: '@', .. })
        ));
        assert!(matches!(
            object_name(&"a".repeat(64)),
            Err(NameError::TooLong(_))
        ));
    }

    #[test]
    fn mapped_names_are_labels() {
        for u in ["ada", "Bob_2", "x.y.z", "a-b"] {
            assert!(is_dns1123_label(&object_name(u).unwrap()), "{u}");
        }
        assert!(!is_dns1123_label("Home-Ada"));
        assert!(!is_dns1123_label("-a"));
    }
}
