//! Storage for private, shared and session data: where it lives on the backend, how it
//! is provisioned, where it mounts.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use super::{Problem, check_absolute, problem};
use crate::template::Template;

/// How a volume is provisioned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Backend {
    /// A static NFS PersistentVolume (`server` + rendered path).
    Nfs,
    /// A static hostPath PersistentVolume (single-node and development clusters).
    #[default]
    HostPath,
    /// A static CSI PersistentVolume (`csi.driver`; the rendered path is the volume handle).
    Csi,
    /// A claim on a StorageClass; the path template is not used.
    StorageClass,
}

/// A CSI driver and its attributes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CsiSource {
    /// Driver name, e.g. `nfs.csi.k8s.io`.
    pub driver: String,
    /// Filesystem type, if the driver needs one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fs_type: Option<String>,
    /// Extra attributes; `{path}` is not expanded here, the rendered path is the handle.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub volume_attributes: BTreeMap<String, String>,
}

/// One kind of data (private, shared or session).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StorageConfig {
    /// Mount this kind of data at all.
    pub enabled: bool,
    /// How the volume is provisioned.
    pub backend: Backend,
    /// Path on the backend, e.g. `/export/home/{username}`.
    pub path_template: Template,
    /// NFS server (backend `nfs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// CSI driver (backend `csi`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csi: Option<CsiSource>,
    /// StorageClass of the claim (backend `storageClass`; empty for the cluster default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
    /// Requested capacity, e.g. `10Gi`.
    pub size: String,
    /// Access modes of the volume and claim.
    pub access_modes: Vec<String>,
    /// Where containers see it; for session data, unset means the session's
    /// `dataDirectory`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_path: Option<String>,
    /// Mount it read-only.
    pub read_only: bool,
}

impl StorageConfig {
    fn slot(path_template: &str, mount_path: Option<&str>, size: &str) -> Self {
        Self {
            enabled: true,
            backend: Backend::HostPath,
            path_template: Template::new(path_template),
            server: None,
            csi: None,
            storage_class_name: None,
            size: size.into(),
            access_modes: vec!["ReadWriteMany".into()],
            mount_path: mount_path.map(Into::into),
            read_only: false,
        }
    }

    /// Default private storage: `/export/home/{username}` mounted at `/private`.
    pub fn private_default() -> Self {
        Self::slot("/export/home/{username}", Some("/private"), "10Gi")
    }

    /// Default shared storage: `/export/shared` mounted at `/shared`.
    pub fn shared_default() -> Self {
        Self::slot("/export/shared", Some("/shared"), "100Gi")
    }

    /// Default session data: the session's data directory, mounted where it lives.
    pub fn session_default() -> Self {
        Self::slot("{dataDirectory}", None, "1Ti")
    }

    /// Default project storage: `/export/projects/{name}` mounted at `/project`.
    pub fn project_default() -> Self {
        Self::slot("/export/projects/{name}", Some("/project"), "100Gi")
    }

    fn check(&self, path: &str, problems: &mut Vec<Problem>) {
        if !self.enabled {
            return;
        }
        match self.backend {
            Backend::Nfs if self.server.as_deref().is_none_or(str::is_empty) => {
                problems.push(problem(
                    &format!("{path}.server"),
                    "backend nfs needs a server".into(),
                ));
            }
            Backend::Csi if self.csi.as_ref().is_none_or(|c| c.driver.is_empty()) => {
                problems.push(problem(
                    &format!("{path}.csi.driver"),
                    "backend csi needs a driver".into(),
                ));
            }
            _ => {}
        }
        if self.backend != Backend::StorageClass {
            let source = self.path_template.source();
            if !source.starts_with('/') && !source.starts_with('{') {
                problems.push(problem(
                    &format!("{path}.pathTemplate"),
                    format!("{source:?} must be an absolute path"),
                ));
            }
        }
        if !is_quantity(&self.size) {
            problems.push(problem(
                &format!("{path}.size"),
                format!("{:?} is not a quantity such as 10Gi", self.size),
            ));
        }
        const MODES: [&str; 4] = [
            "ReadWriteOnce",
            "ReadOnlyMany",
            "ReadWriteMany",
            "ReadWriteOncePod",
        ];
        if self.access_modes.is_empty() {
            problems.push(problem(
                &format!("{path}.accessModes"),
                "needs at least one mode".into(),
            ));
        }
        for (i, mode) in self.access_modes.iter().enumerate() {
            if !MODES.contains(&mode.as_str()) {
                problems.push(problem(
                    &format!("{path}.accessModes[{i}]"),
                    format!("{mode:?} is not one of {}", MODES.join(", ")),
                ));
            }
        }
        if let Some(mount) = &self.mount_path {
            check_absolute(&format!("{path}.mountPath"), mount, problems);
        }
    }
}

/// Private, shared and session-data storage. Each slot may be given in part; the rest
/// comes from that slot's defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StorageSet {
    /// Each identity's own data (`homestead-private`).
    #[serde(
        default = "StorageConfig::private_default",
        deserialize_with = "private_slot"
    )]
    pub private: StorageConfig,
    /// Data shared by everyone (`homestead-shared`).
    #[serde(
        default = "StorageConfig::shared_default",
        deserialize_with = "shared_slot"
    )]
    pub shared: StorageConfig,
    /// A session's data directory (`homestead-data`).
    #[serde(
        default = "StorageConfig::session_default",
        deserialize_with = "session_slot"
    )]
    pub session: StorageConfig,
    /// A project's volume (`homestead-project`), for Projects with `spec.storage`.
    #[serde(
        default = "StorageConfig::project_default",
        deserialize_with = "project_slot"
    )]
    pub project: StorageConfig,
}

impl Default for StorageSet {
    fn default() -> Self {
        Self {
            private: StorageConfig::private_default(),
            shared: StorageConfig::shared_default(),
            session: StorageConfig::session_default(),
            project: StorageConfig::project_default(),
        }
    }
}

impl StorageSet {
    pub(super) fn check(&self, path: &str, problems: &mut Vec<Problem>) {
        self.private.check(&format!("{path}.private"), problems);
        self.shared.check(&format!("{path}.shared"), problems);
        self.session.check(&format!("{path}.session"), problems);
        self.project.check(&format!("{path}.project"), problems);
        if self.project.enabled && self.project.mount_path.is_none() {
            problems.push(problem(
                &format!("{path}.project.mountPath"),
                "is required".into(),
            ));
        }
        if self.private.enabled && self.private.mount_path.is_none() {
            problems.push(problem(
                &format!("{path}.private.mountPath"),
                "is required".into(),
            ));
        }
        if self.shared.enabled && self.shared.mount_path.is_none() {
            problems.push(problem(
                &format!("{path}.shared.mountPath"),
                "is required".into(),
            ));
        }
    }
}

/// A slot as written in the file: every field optional.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PartialStorage {
    enabled: Option<bool>,
    backend: Option<Backend>,
    path_template: Option<Template>,
    server: Option<String>,
    csi: Option<CsiSource>,
    storage_class_name: Option<String>,
    size: Option<String>,
    access_modes: Option<Vec<String>>,
    mount_path: Option<String>,
    read_only: Option<bool>,
}

impl PartialStorage {
    fn over(self, mut base: StorageConfig) -> StorageConfig {
        if let Some(v) = self.enabled {
            base.enabled = v;
        }
        if let Some(v) = self.backend {
            base.backend = v;
        }
        if let Some(v) = self.path_template {
            base.path_template = v;
        }
        if self.server.is_some() {
            base.server = self.server;
        }
        if self.csi.is_some() {
            base.csi = self.csi;
        }
        if self.storage_class_name.is_some() {
            base.storage_class_name = self.storage_class_name;
        }
        if let Some(v) = self.size {
            base.size = v;
        }
        if let Some(v) = self.access_modes {
            base.access_modes = v;
        }
        if self.mount_path.is_some() {
            base.mount_path = self.mount_path;
        }
        if let Some(v) = self.read_only {
            base.read_only = v;
        }
        base
    }
}

fn private_slot<'de, D: Deserializer<'de>>(d: D) -> Result<StorageConfig, D::Error> {
    Ok(PartialStorage::deserialize(d)?.over(StorageConfig::private_default()))
}

fn shared_slot<'de, D: Deserializer<'de>>(d: D) -> Result<StorageConfig, D::Error> {
    Ok(PartialStorage::deserialize(d)?.over(StorageConfig::shared_default()))
}

fn project_slot<'de, D: Deserializer<'de>>(d: D) -> Result<StorageConfig, D::Error> {
    Ok(PartialStorage::deserialize(d)?.over(StorageConfig::project_default()))
}

fn session_slot<'de, D: Deserializer<'de>>(d: D) -> Result<StorageConfig, D::Error> {
    Ok(PartialStorage::deserialize(d)?.over(StorageConfig::session_default()))
}

/// True for a Kubernetes quantity of the common forms: `10Gi`, `500M`, `1.5T`, `1000`.
pub(crate) fn is_quantity(s: &str) -> bool {
    const SUFFIXES: [&str; 13] = [
        "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "k", "M", "G", "T", "P", "E", "",
    ];
    SUFFIXES.iter().any(|suffix| {
        s.strip_suffix(suffix).is_some_and(|number| {
            let mut parts = number.splitn(2, '.');
            let whole = parts.next().unwrap_or_default();
            let frac = parts.next();
            !whole.is_empty()
                && whole.bytes().all(|b| b.is_ascii_digit())
                && frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn partial_slots_keep_their_own_defaults() {
        let config = Config::from_yaml("storage:\n  shared:\n    readOnly: true\n").unwrap();
        assert!(config.storage.shared.read_only);
        assert_eq!(config.storage.shared.mount_path.as_deref(), Some("/shared"));
        assert_eq!(
            config.storage.shared.path_template.source(),
            "/export/shared"
        );
        assert_eq!(config.storage.private, StorageConfig::private_default());
    }

    #[test]
    fn backend_requirements_are_checked() {
        let yaml = "storage:\n  private: {backend: nfs}\n  shared: {backend: csi}\n  session: {size: lots, accessModes: [ReadWriteSometimes]}\n";
        let problems: Vec<String> = Config::from_yaml(yaml)
            .err()
            .map(|e| e.to_string())
            .into_iter()
            .collect();
        let text = problems.join("\n");
        for want in [
            "storage.private.server: backend nfs needs a server",
            "storage.shared.csi.driver: backend csi needs a driver",
            "storage.session.size:",
            "storage.session.accessModes[0]:",
        ] {
            assert!(text.contains(want), "missing {want:?} in {text}");
        }
    }

    #[test]
    fn quantities() {
        for ok in ["10Gi", "1", "1.5T", "500M"] {
            assert!(is_quantity(ok), "{ok}");
        }
        for bad in ["", "Gi", "ten", "1.Gi", "-1"] {
            assert!(!is_quantity(bad), "{bad}");
        }
    }
}
