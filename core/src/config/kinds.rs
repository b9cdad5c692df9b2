//! `trustedSubmitters` (services that create objects on behalf of a person and name them in
//! a label) and `workloadKinds` (custom resources that carry pod templates).

use serde::{Deserialize, Serialize};

use super::{Problem, problem};
use crate::custom::{self, Token};
use crate::workload::PodKind;

/// A service that creates objects on behalf of people and says who in a label of the
/// object: JupyterHub's KubeSpawner (`hub.jupyter.org/username`), the Argo server in SSO
/// mode (`workflows.argoproj.io/creator-preferred-username`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrustedSubmitter {
    /// The exact `userInfo.username` of the service (no prefix is stripped), e.g.
    /// `system:serviceaccount:jhub:hub`.
    pub username: String,
    /// The label of the object being admitted (its own `metadata.labels`: a pod's, a
    /// workload's, a Workflow's) whose value is the directory username of the person.
    pub identity_label: String,
}

/// A custom resource whose controller makes pods from pod templates inside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadKind {
    /// API group, e.g. `kubeflow.org`.
    pub group: String,
    /// API version, e.g. `v1`.
    pub version: String,
    /// Kind, e.g. `PyTorchJob`.
    pub kind: String,
    /// The resource (plural) the webhook rules name; Kubernetes' guess from the kind when
    /// unset (`PyTorchJob` → `pytorchjobs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// JSON pointers to its pod templates, `*` for every item of a list or value of a map,
    /// e.g. `/spec/pytorchReplicaSpecs/*/template`.
    pub pod_templates: Vec<String>,
}

impl WorkloadKind {
    /// The resource the webhook rules name.
    pub fn resource(&self) -> String {
        self.resource
            .clone()
            .unwrap_or_else(|| guess_resource(&self.kind))
    }

    /// The parsed pointers; those that do not parse are left out (a checked configuration
    /// has none).
    pub fn pointers(&self) -> Vec<Vec<Token>> {
        self.pod_templates
            .iter()
            .filter_map(|p| custom::parse_pointer(p).ok())
            .collect()
    }
}

/// Kubernetes' guess of a kind's resource (`UnsafeGuessKindToResource`): lower case, and
/// `s` → `ses`, `y` → `ies`, else `+s`.
pub fn guess_resource(kind: &str) -> String {
    let lower = kind.to_ascii_lowercase();
    if lower.ends_with('s') {
        format!("{lower}es")
    } else if let Some(stem) = lower.strip_suffix('y') {
        format!("{stem}ies")
    } else {
        format!("{lower}s")
    }
}

/// True when `key` is a valid label key: an optional DNS subdomain prefix and `/`, then a
/// name of at most 63 alphanumerics, `-`, `_` and `.` starting and ending alphanumeric.
pub fn is_label_key(key: &str) -> bool {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric();
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty() && p.len() <= 253 && p.split('.').all(crate::names::is_dns1123_label)
    });
    name_ok && prefix_ok
}

pub(super) fn check_submitters(
    submitters: &[TrustedSubmitter],
    others: &[(&str, &[String])],
    problems: &mut Vec<Problem>,
) {
    for (i, s) in submitters.iter().enumerate() {
        let path = format!("trustedSubmitters[{i}]");
        if s.username.trim().is_empty() {
            problems.push(problem(&format!("{path}.username"), "is empty".into()));
        }
        if !is_label_key(&s.identity_label) {
            problems.push(problem(
                &format!("{path}.identityLabel"),
                format!("{:?} is not a label key", s.identity_label),
            ));
        } else if s.identity_label.starts_with("homestead.dev/") {
            problems.push(problem(
                &format!("{path}.identityLabel"),
                format!(
                    "{:?} is one of homestead's own labels; name the submitter's label",
                    s.identity_label
                ),
            ));
        }
        if submitters[..i].iter().any(|o| o.username == s.username) {
            problems.push(problem(
                &format!("{path}.username"),
                format!("{:?} is listed twice", s.username),
            ));
        }
        for (field, names) in others {
            if names.contains(&s.username) {
                problems.push(problem(
                    &format!("{path}.username"),
                    format!(
                        "{:?} is also in {field}; an identity is either a submitter (believed for the person its label names) or that, not both",
                        s.username
                    ),
                ));
            }
        }
    }
}

pub(super) fn check_kinds(kinds: &[WorkloadKind], problems: &mut Vec<Problem>) {
    for (i, k) in kinds.iter().enumerate() {
        let path = format!("workloadKinds[{i}]");
        for (field, value) in [
            ("group", &k.group),
            ("version", &k.version),
            ("kind", &k.kind),
        ] {
            if value.trim().is_empty() {
                problems.push(problem(&format!("{path}.{field}"), "is empty".into()));
            }
        }
        if k.group.trim().is_empty() {
            // The core group has only built-in kinds.
        } else if PodKind::from_group_kind(&k.group, &k.kind).is_some()
            || crate::argo::WorkflowKind::from_group_kind(&k.group, &k.kind).is_some()
        {
            problems.push(problem(
                &format!("{path}.kind"),
                format!("{}/{} is built in", k.group, k.kind),
            ));
        } else if ["apps", "batch", crate::resources::GROUP].contains(&k.group.as_str()) {
            problems.push(problem(
                &format!("{path}.group"),
                format!(
                    "{:?} is a built-in API group, not a custom resource's",
                    k.group
                ),
            ));
        }
        if let Some(resource) = &k.resource
            && !crate::names::is_dns1123_label(resource)
        {
            problems.push(problem(
                &format!("{path}.resource"),
                format!("{resource:?} is not a resource name (lower case, e.g. pytorchjobs)"),
            ));
        }
        let same = kinds[..i]
            .iter()
            .any(|o| o.group == k.group && o.version == k.version && o.kind == k.kind);
        if same {
            problems.push(problem(
                &path,
                format!("{}/{} {} is listed twice", k.group, k.version, k.kind),
            ));
        }
        if k.pod_templates.is_empty() {
            problems.push(problem(
                &format!("{path}.podTemplates"),
                "is empty: name at least one pod template (e.g. /spec/template)".into(),
            ));
        }
        let mut parsed: Vec<(usize, Vec<Token>)> = Vec::new();
        for (j, pointer) in k.pod_templates.iter().enumerate() {
            let field = format!("{path}.podTemplates[{j}]");
            match custom::parse_pointer(pointer) {
                Err(e) => {
                    problems.push(problem(&field, format!("{e}; it cannot be a pod template")))
                }
                Ok(tokens) => {
                    if let Some((other, _)) =
                        parsed.iter().find(|(_, o)| custom::overlaps(o, &tokens))
                    {
                        problems.push(problem(
                            &field,
                            format!(
                                "{pointer:?} overlaps {:?} (podTemplates[{other}]): one pod template would be inside another",
                                k.pod_templates[*other]
                            ),
                        ));
                    }
                    parsed.push((j, tokens));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_are_guessed_as_kubernetes_does() {
        assert_eq!(guess_resource("PyTorchJob"), "pytorchjobs");
        assert_eq!(guess_resource("SparkApplication"), "sparkapplications");
        assert_eq!(guess_resource("Policy"), "policies");
        assert_eq!(guess_resource("Ingress"), "ingresses");
    }

    #[test]
    fn label_keys() {
        for ok in [
            "hub.jupyter.org/username",
            "workflows.argoproj.io/creator-preferred-username",
            "user",
        ] {
            assert!(is_label_key(ok), "{ok}");
        }
        for bad in ["", "/x", "a/", "Hub.org/x", "x/-y", "a b", &"a".repeat(64)] {
            assert!(!is_label_key(bad), "{bad}");
        }
    }
}
