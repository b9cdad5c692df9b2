//! What the controller creates besides namespaces and storage: RBAC, service accounts,
//! quotas and cloned secrets.

use k8s_openapi::api::core::v1::{LimitRangeSpec, ResourceQuotaSpec};
use serde::{Deserialize, Serialize};

use super::{Problem, problem};
use crate::names::is_dns1123_label;

/// Controller settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ControllerConfig {
    /// ClusterRoles bound in managed namespaces.
    pub rbac: RbacConfig,
    /// ServiceAccounts created in every user namespace.
    pub service_accounts: Vec<String>,
    /// ResourceQuota `homestead` in every managed namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_quota: Option<ResourceQuotaSpec>,
    /// LimitRange `homestead` in every managed namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_range: Option<LimitRangeSpec>,
    /// Secrets copied into managed namespaces and kept in step with their source.
    pub secret_clones: Vec<SecretClone>,
    /// Source of the `artifact-s3` Secret cloned into every session namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_secret: Option<SecretRef>,
    /// Delete a User's or Session's namespace when it is deleted (PVs are always kept).
    pub delete_namespaces: bool,
    /// The Pod Security Admission levels every managed namespace is labelled with.
    pub pod_security: PodSecurityConfig,
}

/// A Pod Security Standard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PodSecurityLevel {
    /// Unrestricted.
    Privileged,
    /// Prevents known privilege escalations (host namespaces, hostPath, privileged, ...).
    Baseline,
    /// Hardened: baseline plus non-root, no capabilities, a seccomp profile.
    Restricted,
}

impl PodSecurityLevel {
    /// The label value: `privileged`, `baseline` or `restricted`.
    pub fn as_str(self) -> &'static str {
        match self {
            PodSecurityLevel::Privileged => "privileged",
            PodSecurityLevel::Baseline => "baseline",
            PodSecurityLevel::Restricted => "restricted",
        }
    }
}

/// The Pod Security Admission modes of managed namespaces; an unset (`null`) mode gets no
/// label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct PodSecurityConfig {
    /// Pods that violate this level are refused (`pod-security.kubernetes.io/enforce`).
    pub enforce: Option<PodSecurityLevel>,
    /// Violations are warned about to the client (`pod-security.kubernetes.io/warn`).
    pub warn: Option<PodSecurityLevel>,
    /// Violations are written to the audit log (`pod-security.kubernetes.io/audit`).
    pub audit: Option<PodSecurityLevel>,
}

impl Default for PodSecurityConfig {
    fn default() -> Self {
        Self {
            enforce: Some(PodSecurityLevel::Baseline),
            warn: Some(PodSecurityLevel::Restricted),
            audit: Some(PodSecurityLevel::Restricted),
        }
    }
}

impl PodSecurityConfig {
    /// The namespace labels: `pod-security.kubernetes.io/<mode>` → level.
    pub fn labels(&self) -> impl Iterator<Item = (String, &'static str)> + '_ {
        [
            ("enforce", self.enforce),
            ("warn", self.warn),
            ("audit", self.audit),
        ]
        .into_iter()
        .filter_map(|(mode, level)| {
            level.map(|l| (format!("pod-security.kubernetes.io/{mode}"), l.as_str()))
        })
    }
}

impl Default for ControllerConfig {
    fn default() -> Self {
        Self {
            rbac: RbacConfig::default(),
            service_accounts: Vec::new(),
            resource_quota: None,
            limit_range: None,
            secret_clones: Vec::new(),
            artifact_secret: None,
            delete_namespaces: true,
            pod_security: PodSecurityConfig::default(),
        }
    }
}

/// ClusterRoles the controller binds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct RbacConfig {
    /// Bound to the owner of a user namespace by RoleBinding `homestead-owner`.
    pub user_cluster_role: String,
    /// Bound to the members of a session by RoleBinding `visit-member`.
    pub session_member_cluster_role: String,
    /// Bound to ServiceAccount `argo-workflow` in session namespaces.
    pub workflow_cluster_role: String,
}

impl Default for RbacConfig {
    fn default() -> Self {
        Self {
            user_cluster_role: "edit".into(),
            session_member_cluster_role: "edit".into(),
            workflow_cluster_role: "edit".into(),
        }
    }
}

/// A Secret by namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretRef {
    /// Namespace of the source.
    pub namespace: String,
    /// Name of the source.
    pub name: String,
}

/// Where a cloned Secret goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CloneTarget {
    /// User namespaces.
    Users,
    /// Session namespaces.
    Sessions,
    /// Both.
    #[default]
    All,
}

/// A Secret copied into managed namespaces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretClone {
    /// The source.
    pub from: SecretRef,
    /// Name of the copy; the source's name when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Which namespaces get it.
    #[serde(default)]
    pub to: CloneTarget,
}

impl ControllerConfig {
    pub(super) fn check(&self, path: &str, problems: &mut Vec<Problem>) {
        for (field, role) in [
            ("userClusterRole", &self.rbac.user_cluster_role),
            (
                "sessionMemberClusterRole",
                &self.rbac.session_member_cluster_role,
            ),
            ("workflowClusterRole", &self.rbac.workflow_cluster_role),
        ] {
            if role.is_empty() {
                problems.push(problem(&format!("{path}.rbac.{field}"), "is empty".into()));
            }
        }
        for (i, sa) in self.service_accounts.iter().enumerate() {
            if !is_dns1123_label(sa) {
                problems.push(problem(
                    &format!("{path}.serviceAccounts[{i}]"),
                    format!("{sa:?} is not a valid ServiceAccount name"),
                ));
            }
        }
        let refs = self
            .secret_clones
            .iter()
            .enumerate()
            .map(|(i, c)| (format!("{path}.secretClones[{i}].from"), &c.from))
            .chain(
                self.artifact_secret
                    .iter()
                    .map(|r| (format!("{path}.artifactSecret"), r)),
            );
        for (at, r) in refs {
            if !is_dns1123_label(&r.namespace) {
                problems.push(problem(
                    &format!("{at}.namespace"),
                    format!("{:?} is not a namespace name", r.namespace),
                ));
            }
            if r.name.is_empty() {
                problems.push(problem(&format!("{at}.name"), "is empty".into()));
            }
        }
    }
}
