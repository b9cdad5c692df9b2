//! The kinds admission looks into, and where each keeps its pod: a Pod is one, a
//! Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController or Job has one at
//! `spec.template`, a CronJob at `spec.jobTemplate.spec.template`, a PodTemplate at
//! `template`.
//!
//! Objects are parsed into the borrowed pod model of [`crate::pod`], reading only
//! the path down to the pod; the rest of a workload is skipped without being built.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer};

use crate::json::{self, Raw};
use crate::pod::{Container, ControllerRef, Metadata, PodSpec, controller_reference};

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
    /// `v1` ReplicationController.
    ReplicationController,
    /// `v1` PodTemplate.
    PodTemplate,
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
            ("", "ReplicationController") => PodKind::ReplicationController,
            ("", "PodTemplate") => PodKind::PodTemplate,
            _ => return None,
        })
    }

    /// True for everything but Pod.
    pub fn is_workload(self) -> bool {
        self != PodKind::Pod
    }

    /// True for the kinds whose controllers make pods (or workloads) from their template:
    /// every workload but PodTemplate. A trusted controller's object is believed only when
    /// its controller is one of these, so its stamp can only have come from homestead.
    pub fn makes_pods(self) -> bool {
        self.is_workload() && self != PodKind::PodTemplate
    }

    /// RFC 6901 pointer from the object to its pod (empty for a Pod).
    pub fn pod_pointer(self) -> &'static str {
        match self {
            PodKind::Pod => "",
            PodKind::CronJob => "/spec/jobTemplate/spec/template",
            PodKind::PodTemplate => "/template",
            _ => "/spec/template",
        }
    }

    /// Field-path prefix of the pod in messages (`""`, `"spec.template."`, ...).
    pub fn field_prefix(self) -> &'static str {
        match self {
            PodKind::Pod => "",
            PodKind::CronJob => "spec.jobTemplate.spec.template.",
            PodKind::PodTemplate => "template.",
            _ => "spec.template.",
        }
    }
}

/// The pod of an object: its metadata and spec, and where they live in the object.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PodView<'a> {
    /// Pointer to the pod (`""` for a Pod, `/spec/template` for most workloads; made for
    /// a configured kind's templates).
    pub pointer: Cow<'static, str>,
    /// Field-path prefix for messages.
    pub field: Cow<'static, str>,
    /// The pod's (or template's) metadata; `None` when the template has none.
    pub metadata: Option<Metadata<'a>>,
    /// The pod spec; `None` when absent.
    pub spec: Option<PodSpec<'a>>,
    /// True when the object has no `spec`/`template` above the pod, or a `null` template
    /// (a workload without a template): there is nothing to patch into.
    pub missing_parent: bool,
    /// The controller of the object itself (for a workload: of the workload, not of its
    /// template), from `metadata.ownerReferences`.
    pub controller: Option<ControllerRef<'a>>,
}

impl<'a> PodView<'a> {
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
            .and_then(|m| m.labels.as_ref())
            .is_some_and(|l| l.no_datasets)
    }

    /// The `homestead.dev/user` label, if set.
    pub fn user_label(&self) -> Option<&str> {
        self.metadata
            .as_ref()
            .and_then(|m| m.labels.as_ref())
            .and_then(|l| l.user.as_deref())
    }

    /// Every container of every kind with its list's name (`containers`,
    /// `initContainers`, `ephemeralContainers`) and its index in that list.
    pub fn containers(&self) -> impl Iterator<Item = (&'static str, usize, &Container<'a>)> {
        self.spec.iter().flat_map(|spec| {
            [
                ("containers", &spec.containers),
                ("initContainers", &spec.init_containers),
                ("ephemeralContainers", &spec.ephemeral_containers),
            ]
            .into_iter()
            .flat_map(|(list, containers)| {
                containers
                    .iter()
                    .flatten()
                    .enumerate()
                    .map(move |(i, c)| (list, i, c))
            })
        })
    }
}

#[derive(Deserialize)]
struct ObjectMetadata<'a> {
    #[serde(
        default,
        borrow,
        rename = "ownerReferences",
        deserialize_with = "controller_reference"
    )]
    controller: Option<ControllerRef<'a>>,
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
    metadata: Option<ObjectMetadata<'a>>,
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
    metadata: Option<ObjectMetadata<'a>>,
    #[serde(default, borrow)]
    spec: Option<CronJobSpec<'a>>,
}

#[derive(Deserialize)]
struct PodTemplateDoc<'a> {
    #[serde(default, borrow)]
    metadata: Option<ObjectMetadata<'a>>,
    #[serde(default, borrow)]
    template: Option<PodDoc<'a>>,
}

/// Parses the pod out of an object of `kind`, borrowing from `text`.
pub fn parse(kind: PodKind, text: &str) -> Result<PodView<'_>, json::Error> {
    let mut deserializer = json::Deserializer::new(text);
    let pod = deserialize(kind, &mut deserializer)?;
    deserializer.end()?;
    Ok(pod)
}

/// Reads the pod out of an object of `kind` from any deserializer.
pub fn deserialize<'de, D: Deserializer<'de>>(
    kind: PodKind,
    deserializer: D,
) -> Result<PodView<'de>, D::Error> {
    let pointer = Cow::Borrowed(kind.pod_pointer());
    let field = Cow::Borrowed(kind.field_prefix());
    // The template: absent (`None`), `null` (`Some(None)`) or there.
    let (controller, template) = match kind {
        PodKind::Pod => {
            let doc = PodDoc::deserialize(deserializer)?;
            let controller = doc.metadata.as_ref().and_then(|m| m.controller.clone());
            return Ok(PodView {
                pointer,
                field,
                metadata: doc.metadata,
                spec: doc.spec,
                missing_parent: false,
                controller,
            });
        }
        PodKind::CronJob => {
            let doc = CronJobDoc::deserialize(deserializer)?;
            let template = doc
                .spec
                .and_then(|s| s.job_template)
                .and_then(|j| j.spec)
                .map(|h| h.template);
            (doc.metadata.and_then(|m| m.controller), template)
        }
        PodKind::PodTemplate => {
            let doc = PodTemplateDoc::deserialize(deserializer)?;
            (doc.metadata.and_then(|m| m.controller), Some(doc.template))
        }
        _ => {
            let doc = WorkloadDoc::deserialize(deserializer)?;
            (
                doc.metadata.and_then(|m| m.controller),
                doc.spec.map(|h| h.template),
            )
        }
    };
    Ok(match template.flatten() {
        None => PodView {
            pointer,
            field,
            missing_parent: true,
            controller,
            ..PodView::default()
        },
        Some(template) => PodView {
            pointer,
            field,
            metadata: template.metadata,
            spec: template.spec,
            missing_parent: false,
            controller,
        },
    })
}

/// Reads a pod template of a configured kind (`metadata` and `spec`, see
/// [`crate::custom`]) out of its value, borrowing from it.
pub fn from_value<'v>(
    value: &'v serde_json::Value,
    pointer: String,
    field: String,
) -> Result<PodView<'v>, serde_json::Error> {
    let doc = PodDoc::deserialize(value)?;
    Ok(PodView {
        pointer: Cow::Owned(pointer),
        field: Cow::Owned(field),
        metadata: doc.metadata,
        spec: doc.spec,
        missing_parent: false,
        controller: None,
    })
}

/// The JSON text of what an UPDATE may not change behind the pod's person: a Pod's
/// `spec`, a workload's whole pod template. `None` when the object has none.
pub fn guarded_text(kind: PodKind, text: &str) -> Result<Option<Raw<'_>>, json::Error> {
    #[derive(Deserialize)]
    struct Holder<'a> {
        #[serde(default, borrow)]
        template: Option<Raw<'a>>,
    }
    #[derive(Deserialize)]
    struct Spec<'a> {
        #[serde(default, borrow)]
        spec: Option<Raw<'a>>,
    }
    #[derive(Deserialize)]
    struct Workload<'a> {
        #[serde(default, borrow)]
        spec: Option<Holder<'a>>,
    }
    #[derive(Deserialize)]
    struct JobTemplate<'a> {
        #[serde(default, borrow)]
        spec: Option<Holder<'a>>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct CronSpec<'a> {
        #[serde(default, borrow)]
        job_template: Option<JobTemplate<'a>>,
    }
    #[derive(Deserialize)]
    struct Cron<'a> {
        #[serde(default, borrow)]
        spec: Option<CronSpec<'a>>,
    }
    Ok(match kind {
        PodKind::Pod => json::from_str::<Spec<'_>>(text)?.spec,
        PodKind::PodTemplate => json::from_str::<Holder<'_>>(text)?.template,
        PodKind::CronJob => json::from_str::<Cron<'_>>(text)?
            .spec
            .and_then(|s| s.job_template)
            .and_then(|j| j.spec)
            .and_then(|h| h.template),
        _ => json::from_str::<Workload<'_>>(text)?
            .spec
            .and_then(|h| h.template),
    })
}

/// True when two JSON texts mean the same value (object members in any order). The API
/// server writes both objects of an UPDATE the same way, so equal texts are the fast path;
/// only texts that differ are parsed.
pub fn same_json(a: Option<Raw<'_>>, b: Option<Raw<'_>>) -> Result<bool, json::Error> {
    let (a, b) = match (a, b) {
        (None, None) => return Ok(true),
        (Some(a), Some(b)) => (a.get(), b.get()),
        (Some(one), None) | (None, Some(one)) => return Ok(one.get() == "null"),
    };
    if a == b {
        return Ok(true);
    }
    Ok(json::from_str::<serde_json::Value>(a)? == json::from_str::<serde_json::Value>(b)?)
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
        assert!(deploy.missing_parent && deploy.spec.is_none());
        for null in [
            r#"{"spec":{"template":null}}"#,
            r#"{"spec":{"template":null,"selector":{}}}"#,
        ] {
            assert!(
                parse(PodKind::Deployment, null).unwrap().missing_parent,
                "{null}"
            );
        }
        let empty = parse(PodKind::StatefulSet, r#"{"spec":{"template":{}}}"#).unwrap();
        assert!(!empty.missing_parent && empty.metadata.is_none());
        let rc = parse(
            PodKind::ReplicationController,
            r#"{"metadata":{"ownerReferences":[{"apiVersion":"apps/v1","kind":"Deployment","controller":true}]},
                "spec":{"template":{"metadata":{"annotations":{"homestead.dev/run-as":"ada"}}}}}"#,
        )
        .unwrap();
        assert_eq!(rc.run_as(), Some("ada"));
        assert_eq!(rc.controller.unwrap().kind, "Deployment");
        let template = parse(
            PodKind::PodTemplate,
            r#"{"template":{"metadata":{"labels":{"homestead.dev/user":"ada"}},"spec":{}}}"#,
        )
        .unwrap();
        assert_eq!(
            (&*template.pointer, template.user_label()),
            ("/template", Some("ada"))
        );
        assert!(parse(PodKind::PodTemplate, "{}").unwrap().missing_parent);
    }

    #[test]
    fn guarded_parts_compare_by_meaning() {
        let same = |kind, a: &str, b: &str| {
            same_json(
                guarded_text(kind, a).unwrap(),
                guarded_text(kind, b).unwrap(),
            )
            .unwrap()
        };
        let pod =
            r#"{"metadata":{"labels":{"a":"1"}},"spec":{"containers":[{"name":"a","image":"x"}]}}"#;
        let relabelled =
            r#"{"metadata":{"labels":{"a":"2"}},"spec":{"containers":[{"image":"x","name":"a"}]}}"#;
        assert!(
            same(PodKind::Pod, pod, relabelled),
            "a pod's metadata is not guarded"
        );
        let new_image = r#"{"spec":{"containers":[{"name":"a","image":"y"}]}}"#;
        assert!(!same(PodKind::Pod, pod, new_image));
        let d = |template: &str| format!(r#"{{"spec":{{"replicas":1,"template":{template}}}}}"#);
        let scaled = r#"{"spec":{"replicas":9,"template":{"spec":{}}}}"#;
        assert!(same(PodKind::Deployment, &d(r#"{"spec":{}}"#), scaled));
        assert!(!same(
            PodKind::Deployment,
            &d(r#"{"spec":{}}"#),
            &d(r#"{"metadata":{"annotations":{"restartedAt":"now"}},"spec":{}}"#)
        ));
        assert!(same(PodKind::Deployment, &d("null"), r#"{"spec":{}}"#));
        let cron = r#"{"spec":{"schedule":"@daily","jobTemplate":{"spec":{"template":{"spec":{"x":1}}}}}}"#;
        let cron2 = r#"{"spec":{"schedule":"@hourly","jobTemplate":{"spec":{"template":{"spec":{"x":2}}}}}}"#;
        assert!(!same(PodKind::CronJob, cron, cron2));
        assert!(same(
            PodKind::PodTemplate,
            r#"{"template":{"a":[1,2]}}"#,
            r#"{"template":{"a":[1,2]},"x":1}"#
        ));
        assert!(guarded_text(PodKind::Job, r#"{"spec":"x"}"#).is_err());
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
