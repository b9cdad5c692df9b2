//! The kinds admission looks into, and where each keeps its pod: a Pod is one, a
//! Deployment, StatefulSet, DaemonSet, ReplicaSet or Job has one at `spec.template`, a
//! CronJob at `spec.jobTemplate.spec.template`.
//!
//! Objects are parsed into the borrowed pod model of [`crate::pod`], reading only
//! the path down to the pod; the rest of a workload is skipped without being built.

use serde::{Deserialize, Deserializer};

use crate::pod::{Metadata, PodSpec};

/// A kind that carries a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PodKind {
    /// `v1` Pod.
    Pod,
    /// `apps` Deployment.
    Deployment,
    /// `apps` StatefulSet.
    StatefulSet,
    /// `apps` DaemonSet.
    DaemonSet,
    /// `apps` ReplicaSet.
    ReplicaSet,
    /// `batch` Job.
    Job,
    /// `batch` CronJob.
    CronJob,
}

impl PodKind {
    /// The kind for an API group and kind name; `None` for kinds without a pod.
    pub fn from_group_kind(group: &str, kind: &str) -> Option<Self> {
        Some(match (group, kind) {
            ("", "Pod") => PodKind::Pod,
            ("apps", "Deployment") => PodKind::Deployment,
            ("apps", "StatefulSet") => PodKind::StatefulSet,
            ("apps", "DaemonSet") => PodKind::DaemonSet,
            ("apps", "ReplicaSet") => PodKind::ReplicaSet,
            ("batch", "Job") => PodKind::Job,
            ("batch", "CronJob") => PodKind::CronJob,
            _ => return None,
        })
    }

    /// True for everything but Pod.
    pub fn is_workload(self) -> bool {
        self != PodKind::Pod
    }

    /// RFC 6901 pointer from the object to its pod (empty for a Pod).
    pub fn pod_pointer(self) -> &'static str {
        match self {
            PodKind::Pod => "",
            PodKind::CronJob => "/spec/jobTemplate/spec/template",
            _ => "/spec/template",
        }
    }

    /// Field-path prefix of the pod in messages (`""`, `"spec.template."`, ...).
    pub fn field_prefix(self) -> &'static str {
        match self {
            PodKind::Pod => "",
            PodKind::CronJob => "spec.jobTemplate.spec.template.",
            _ => "spec.template.",
        }
    }
}

/// The pod of an object: its metadata and spec, and where they live in the object.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PodView<'a> {
    /// Pointer to the pod (`""` for a Pod, `/spec/template` for most workloads).
    pub pointer: &'static str,
    /// Field-path prefix for messages.
    pub field: &'static str,
    /// The pod's (or template's) metadata; `None` when the template has none.
    pub metadata: Option<Metadata<'a>>,
    /// The pod spec; `None` when absent.
    pub spec: Option<PodSpec<'a>>,
    /// True when the object has no `spec`/`template` above the pod (a workload without
    /// a template): there is nothing to patch into.
    pub missing_parent: bool,
}

impl PodView<'_> {
    /// `homestead.dev/run-as`, if set.
    pub fn run_as(&self) -> Option<&str> {
        self.metadata
            .as_ref()
            .and_then(|m| m.annotations.as_ref())
            .and_then(|a| a.run_as.as_deref())
    }

    /// True when the pod opts out of dataset mounts.
    pub fn no_datasets(&self) -> bool {
        self.metadata
            .as_ref()
            .and_then(|m| m.labels)
            .is_some_and(|l| l.no_datasets)
    }
}

#[derive(Deserialize)]
struct PodDoc<'a> {
    #[serde(default, borrow)]
    metadata: Option<Metadata<'a>>,
    #[serde(default, borrow)]
    spec: Option<PodSpec<'a>>,
}

#[derive(Deserialize)]
struct TemplateHolder<'a> {
    #[serde(default, borrow)]
    template: Option<PodDoc<'a>>,
}

#[derive(Deserialize)]
struct WorkloadDoc<'a> {
    #[serde(default, borrow)]
    spec: Option<TemplateHolder<'a>>,
}

#[derive(Deserialize)]
struct JobTemplate<'a> {
    #[serde(default, borrow)]
    spec: Option<TemplateHolder<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CronJobSpec<'a> {
    #[serde(default, borrow)]
    job_template: Option<JobTemplate<'a>>,
}

#[derive(Deserialize)]
struct CronJobDoc<'a> {
    #[serde(default, borrow)]
    spec: Option<CronJobSpec<'a>>,
}

/// Parses the pod out of an object of `kind`, borrowing from `json`.
pub fn parse(kind: PodKind, json: &str) -> Result<PodView<'_>, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_str(json);
    let pod = deserialize(kind, &mut deserializer)?;
    deserializer.end()?;
    Ok(pod)
}

/// Reads the pod out of an object of `kind` from any deserializer.
pub fn deserialize<'de, D: Deserializer<'de>>(
    kind: PodKind,
    deserializer: D,
) -> Result<PodView<'de>, D::Error> {
    let pointer = kind.pod_pointer();
    let field = kind.field_prefix();
    let template = match kind {
        PodKind::Pod => {
            let doc = PodDoc::deserialize(deserializer)?;
            return Ok(PodView {
                pointer,
                field,
                metadata: doc.metadata,
                spec: doc.spec,
                missing_parent: false,
            });
        }
        PodKind::CronJob => CronJobDoc::deserialize(deserializer)?
            .spec
            .and_then(|s| s.job_template)
            .and_then(|j| j.spec)
            .map(|h| h.template),
        _ => WorkloadDoc::deserialize(deserializer)?
            .spec
            .map(|h| h.template),
    };
    Ok(match template {
        None => PodView {
            pointer,
            field,
            missing_parent: true,
            ..PodView::default()
        },
        Some(template) => {
            let (metadata, spec) = template.map_or((None, None), |t| (t.metadata, t.spec));
            PodView {
                pointer,
                field,
                metadata,
                spec,
                missing_parent: false,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_pod_of_each_kind() {
        let pod = parse(
            PodKind::Pod,
            r#"{"metadata":{"annotations":{"homestead.dev/run-as":"ada"}},"spec":{"containers":[{"name":"a"}]}}"#,
        )
        .unwrap();
        assert_eq!(pod.pointer, "");
        assert_eq!(pod.run_as(), Some("ada"));
        assert_eq!(pod.spec.unwrap().containers.unwrap().len(), 1);

        let cron = parse(
            PodKind::CronJob,
            r#"{"spec":{"schedule":"* * * * *","jobTemplate":{"spec":{"template":{"metadata":{"labels":{"homestead.dev/no-datasets":""}},"spec":{"containers":[]}}}}}}"#,
        )
        .unwrap();
        assert_eq!(cron.pointer, "/spec/jobTemplate/spec/template");
        assert!(cron.no_datasets());
        assert!(!cron.missing_parent);

        let deploy = parse(PodKind::Deployment, r#"{"spec":{"replicas":1}}"#).unwrap();
        assert_eq!(deploy.pointer, "/spec/template");
        assert!(!deploy.missing_parent && deploy.spec.is_none());
        assert!(
            parse(PodKind::Job, r#"{"metadata":{}}"#)
                .unwrap()
                .missing_parent
        );
        assert!(parse(PodKind::Pod, r#"{"spec":{"containers":"x"}}"#).is_err());
        assert_eq!(
            PodKind::from_group_kind("apps", "StatefulSet"),
            Some(PodKind::StatefulSet)
        );
        assert_eq!(PodKind::from_group_kind("", "Deployment"), None);
    }
}
