//! The kinds admission looks into, and where each keeps its pod: a Pod is one, a
//! Deployment, StatefulSet, DaemonSet, ReplicaSet or Job has one at `spec.template`, a
//! CronJob at `spec.jobTemplate.spec.template`.
//!
//! Objects are parsed into typed k8s-openapi parts, reading only the path down to the
//! pod; the rest of a workload is skipped without being built.

use std::collections::BTreeMap;

use json_patch::jsonptr::PointerBuf;
use k8s_openapi::api::core::v1::{PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;

use crate::core::names;

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

    /// JSON Pointer tokens from the object to its pod (empty for a Pod).
    pub fn pod_tokens(self) -> &'static [&'static str] {
        match self {
            PodKind::Pod => &[],
            PodKind::CronJob => &["spec", "jobTemplate", "spec", "template"],
            _ => &["spec", "template"],
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
pub struct PodView {
    /// Pointer to the pod (root for a Pod, `/spec/template` for most workloads).
    pub pointer: PointerBuf,
    /// Field-path prefix for messages.
    pub field: &'static str,
    /// The pod's (or template's) metadata; `None` when the template has none.
    pub metadata: Option<ObjectMeta>,
    /// The pod spec; `None` when absent.
    pub spec: Option<PodSpec>,
    /// True when the object has no `spec`/`template` above the pod (a workload without
    /// a template): there is nothing to patch into.
    pub missing_parent: bool,
}

impl PodView {
    /// `homestead.dev/run-as`, if set.
    pub fn run_as(&self) -> Option<&str> {
        annotation(self.metadata.as_ref(), names::ANNOTATION_RUN_AS)
    }

    /// True when the pod opts out of dataset mounts.
    pub fn no_datasets(&self) -> bool {
        self.metadata
            .as_ref()
            .and_then(|m| m.labels.as_ref())
            .is_some_and(|l| l.contains_key(names::LABEL_NO_DATASETS))
    }
}

fn annotation<'a>(metadata: Option<&'a ObjectMeta>, key: &str) -> Option<&'a str> {
    metadata
        .and_then(|m| m.annotations.as_ref())
        .and_then(|a: &BTreeMap<String, String>| a.get(key))
        .map(String::as_str)
}

#[derive(Deserialize)]
struct PodDoc {
    #[serde(default)]
    metadata: Option<ObjectMeta>,
    #[serde(default)]
    spec: Option<PodSpec>,
}

#[derive(Deserialize)]
struct TemplateHolder {
    #[serde(default)]
    template: Option<PodTemplateSpec>,
}

#[derive(Deserialize)]
struct WorkloadDoc {
    #[serde(default)]
    spec: Option<TemplateHolder>,
}

#[derive(Deserialize)]
struct JobTemplate {
    #[serde(default)]
    spec: Option<TemplateHolder>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CronJobSpec {
    #[serde(default)]
    job_template: Option<JobTemplate>,
}

#[derive(Deserialize)]
struct CronJobDoc {
    #[serde(default)]
    spec: Option<CronJobSpec>,
}

/// Parses the pod out of an object of `kind`.
pub fn parse(kind: PodKind, json: &str) -> Result<PodView, serde_json::Error> {
    let pointer = PointerBuf::from_tokens(kind.pod_tokens().iter().copied());
    let field = kind.field_prefix();
    let template = match kind {
        PodKind::Pod => {
            let doc: PodDoc = serde_json::from_str(json)?;
            return Ok(PodView {
                pointer,
                field,
                metadata: doc.metadata,
                spec: doc.spec,
                missing_parent: false,
            });
        }
        PodKind::CronJob => {
            let doc: CronJobDoc = serde_json::from_str(json)?;
            doc.spec
                .and_then(|s| s.job_template)
                .and_then(|j| j.spec)
                .map(|h| h.template)
        }
        _ => {
            let doc: WorkloadDoc = serde_json::from_str(json)?;
            doc.spec.map(|h| h.template)
        }
    };
    Ok(match template {
        None => PodView {
            pointer,
            field,
            missing_parent: true,
            ..PodView::default()
        },
        Some(template) => {
            let template = template.unwrap_or_default();
            PodView {
                pointer,
                field,
                metadata: template.metadata,
                spec: template.spec,
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
        assert_eq!(pod.pointer.as_str(), "");
        assert_eq!(pod.run_as(), Some("ada"));
        assert_eq!(pod.spec.unwrap().containers[0].name, "a");

        let cron = parse(
            PodKind::CronJob,
            r#"{"spec":{"schedule":"* * * * *","jobTemplate":{"spec":{"template":{"metadata":{"labels":{"homestead.dev/no-datasets":""}},"spec":{"containers":[]}}}}}}"#,
        )
        .unwrap();
        assert_eq!(cron.pointer.as_str(), "/spec/jobTemplate/spec/template");
        assert!(cron.no_datasets());
        assert!(!cron.missing_parent);

        let deploy = parse(PodKind::Deployment, r#"{"spec":{"replicas":1}}"#).unwrap();
        assert_eq!(deploy.pointer.as_str(), "/spec/template");
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
