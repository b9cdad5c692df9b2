//! Argo Workflows (`argoproj.io/v1alpha1`): where a Workflow, CronWorkflow,
//! WorkflowTemplate or ClusterWorkflowTemplate keeps the metadata Argo gives its pods, and
//! every `homestead.dev/run-as` in one.
//!
//! Argo's workflow controller makes each pod from the workflow's `spec.podMetadata`
//! (a CronWorkflow's `spec.workflowSpec.podMetadata`), with a template's own `metadata`
//! (and `spec.templateDefaults.metadata`) merged over it; a Workflow run from a
//! `workflowTemplateRef` takes the template's spec under its own, and the controller keeps
//! a copy of the joined spec in `status.storedWorkflowTemplateSpec`. So homestead's stamp
//! lives in `podMetadata.annotations`; no template's metadata may carry one (a template can
//! be used by someone else, and would override the stamp); and any other `podMetadata`
//! (the controller's copies) must say what the stamp says.
//!
//! These objects are not on the Pod path: they are kept raw by the envelope and read here
//! into a `serde_json::Value`, which is walked once.

use serde_json::Value;

use crate::names::ANNOTATION_RUN_AS;

/// Argo's API group.
pub const GROUP: &str = "argoproj.io";

/// An Argo kind homestead stamps or checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WorkflowKind {
    /// `Workflow`: its pods are made by the workflow controller.
    Workflow,
    /// `CronWorkflow`: the workflow controller makes Workflows from `spec.workflowSpec`.
    CronWorkflow,
    /// `WorkflowTemplate`: run by `workflowTemplateRef`, or its templates by `templateRef`.
    WorkflowTemplate,
    /// `ClusterWorkflowTemplate` (cluster-scoped): as a WorkflowTemplate, for every
    /// namespace.
    ClusterWorkflowTemplate,
}

impl WorkflowKind {
    /// The kind for an API group and kind name; `None` for anything else.
    pub fn from_group_kind(group: &str, kind: &str) -> Option<Self> {
        if group != GROUP {
            return None;
        }
        Some(match kind {
            "Workflow" => WorkflowKind::Workflow,
            "CronWorkflow" => WorkflowKind::CronWorkflow,
            "WorkflowTemplate" => WorkflowKind::WorkflowTemplate,
            "ClusterWorkflowTemplate" => WorkflowKind::ClusterWorkflowTemplate,
            _ => return None,
        })
    }

    /// The members from the object to its workflow spec: `spec`, or a CronWorkflow's
    /// `spec.workflowSpec`.
    pub fn spec_keys(self) -> &'static [&'static str] {
        match self {
            WorkflowKind::CronWorkflow => &["spec", "workflowSpec"],
            _ => &["spec"],
        }
    }

    /// Field path of the stamp, for messages.
    pub fn stamp_field(self) -> &'static str {
        match self {
            WorkflowKind::CronWorkflow => {
                "spec.workflowSpec.podMetadata.annotations[\"homestead.dev/run-as\"]"
            }
            _ => "spec.podMetadata.annotations[\"homestead.dev/run-as\"]",
        }
    }
}

/// A `homestead.dev/run-as` somewhere other than the stamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The members and indexes down to the annotations map that holds it (unescaped).
    pub path: Vec<String>,
    /// Its value (`None` when it is not a string).
    pub value: Option<String>,
    /// True when it is in some `podMetadata` (a copy of a workflow's pod metadata, which
    /// must say what the stamp says); false when it is in a template's `metadata` or
    /// anywhere else, where none may be.
    pub pod_metadata: bool,
}

impl Found {
    /// The field path of the annotation, for messages: `spec.templates[2].metadata...`.
    pub fn field(&self) -> String {
        let mut out = String::new();
        for token in &self.path {
            if token.bytes().all(|b| b.is_ascii_digit()) && !token.is_empty() {
                out.push('[');
                out.push_str(token);
                out.push(']');
            } else {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(token);
            }
        }
        out.push_str(".annotations[\"homestead.dev/run-as\"]");
        out
    }
}

/// What homestead reads out of an Argo object.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WorkflowView {
    /// The stamp: `homestead.dev/run-as` in the workflow spec's `podMetadata.annotations`
    /// (`None` when absent or not a string).
    pub stamp: Option<String>,
    /// True when the stamp's key is there but its value is not a string.
    pub stamp_invalid: bool,
    /// How far the path to the stamp exists: 0 nothing, 1 the workflow spec, 2 its
    /// `podMetadata`, 3 its `annotations` (each an object).
    pub depth: usize,
    /// Every other `homestead.dev/run-as`, except in the object's own `metadata`.
    pub others: Vec<Found>,
    /// The controller of the object (`metadata.ownerReferences` with `controller: true`),
    /// as `(group, kind)`.
    pub controller: Option<(String, String)>,
}

impl WorkflowView {
    /// Reads an object of `kind`.
    pub fn read(kind: WorkflowKind, object: &Value) -> Self {
        let mut view = WorkflowView {
            depth: stamp_depth(kind, object),
            controller: controller(object),
            ..WorkflowView::default()
        };
        if view.depth == 3
            && let Some(value) = object
                .pointer(stamp_pointer(kind))
                .and_then(|a| a.get(ANNOTATION_RUN_AS))
        {
            match value.as_str() {
                Some(s) => view.stamp = Some(s.to_owned()),
                None => view.stamp_invalid = true,
            }
        }
        let stamp_path: Vec<&str> = kind
            .spec_keys()
            .iter()
            .copied()
            .chain(["podMetadata", "annotations"])
            .collect();
        let mut path = Vec::new();
        walk(object, &mut path, &stamp_path, &mut view.others);
        view
    }

    /// True when any `homestead.dev/run-as` is in the object outside its own metadata.
    pub fn has_any(&self) -> bool {
        self.stamp.is_some() || self.stamp_invalid || !self.others.is_empty()
    }
}

/// The escaped RFC 6901 pointer to the stamp's annotations map.
fn stamp_pointer(kind: WorkflowKind) -> &'static str {
    match kind {
        WorkflowKind::CronWorkflow => "/spec/workflowSpec/podMetadata/annotations",
        _ => "/spec/podMetadata/annotations",
    }
}

fn stamp_depth(kind: WorkflowKind, object: &Value) -> usize {
    let spec = kind
        .spec_keys()
        .iter()
        .try_fold(object, |v, key| v.get(key).filter(|v| v.is_object()));
    let Some(spec) = spec else { return 0 };
    let Some(pod_metadata) = spec.get("podMetadata").filter(|v| v.is_object()) else {
        return 1;
    };
    if pod_metadata
        .get("annotations")
        .is_some_and(Value::is_object)
    {
        3
    } else {
        2
    }
}

/// Collects every `annotations` map holding `homestead.dev/run-as`, but the stamp's and
/// the object's own.
fn walk(value: &Value, path: &mut Vec<String>, stamp: &[&str], out: &mut Vec<Found>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                if path.is_empty() && key == "metadata" {
                    continue;
                }
                path.push(key.clone());
                if key == "annotations"
                    && let Some(run_as) = child.get(ANNOTATION_RUN_AS)
                    && !path.iter().map(String::as_str).eq(stamp.iter().copied())
                {
                    let parent = path.len().checked_sub(2).map(|i| path[i].as_str());
                    out.push(Found {
                        path: path[..path.len() - 1].to_vec(),
                        value: run_as.as_str().map(str::to_owned),
                        pod_metadata: parent == Some("podMetadata"),
                    });
                }
                walk(child, path, stamp, out);
                path.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                path.push(i.to_string());
                walk(child, path, stamp, out);
                path.pop();
            }
        }
        _ => {}
    }
}

/// The controller of an object (`metadata.ownerReferences` with `controller: true`), as
/// `(group, kind)`.
pub(crate) fn controller(object: &Value) -> Option<(String, String)> {
    let refs = object.pointer("/metadata/ownerReferences")?.as_array()?;
    let owner = refs
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))?;
    let api_version = owner.get("apiVersion")?.as_str()?;
    let group = api_version
        .split_once('/')
        .map_or("", |(group, _)| group)
        .to_owned();
    Some((group, owner.get("kind")?.as_str()?.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_the_stamp_and_every_other_run_as() {
        let wf = json!({
            "metadata": {"annotations": {"homestead.dev/run-as": "ignored"},
                "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "CronWorkflow", "controller": true}]},
            "spec": {
                "podMetadata": {"annotations": {"homestead.dev/run-as": "ada"}},
                "templateDefaults": {"metadata": {"annotations": {"homestead.dev/run-as": "bob"}}},
                "templates": [{"name": "a"}, {"name": "b", "metadata": {"annotations": {"homestead.dev/run-as": 7}}}]
            },
            "status": {"storedWorkflowTemplateSpec": {"podMetadata": {"annotations": {"homestead.dev/run-as": "ada"}}}}
        });
        let view = WorkflowView::read(WorkflowKind::Workflow, &wf);
        assert_eq!(view.stamp.as_deref(), Some("ada"));
        assert_eq!(view.depth, 3);
        assert_eq!(
            view.controller,
            Some(("argoproj.io".into(), "CronWorkflow".into()))
        );
        let fields: Vec<_> = view
            .others
            .iter()
            .map(|f| (f.field(), f.value.clone(), f.pod_metadata))
            .collect();
        assert_eq!(
            fields,
            [
                (
                    "spec.templateDefaults.metadata.annotations[\"homestead.dev/run-as\"]".into(),
                    Some("bob".into()),
                    false
                ),
                (
                    "spec.templates[1].metadata.annotations[\"homestead.dev/run-as\"]".into(),
                    None,
                    false
                ),
                (
                    "status.storedWorkflowTemplateSpec.podMetadata.annotations[\"homestead.dev/run-as\"]"
                        .into(),
                    Some("ada".into()),
                    true
                ),
            ]
        );
        let cron = json!({"spec": {"workflowSpec": {"podMetadata": {}}}});
        let view = WorkflowView::read(WorkflowKind::CronWorkflow, &cron);
        assert_eq!((view.depth, view.stamp), (2, None));
        // A CronWorkflow's stamp is in its workflowSpec; spec.podMetadata is not the stamp.
        let odd = json!({"spec": {"podMetadata": {"annotations": {"homestead.dev/run-as": "x"}}, "workflowSpec": {}}});
        let view = WorkflowView::read(WorkflowKind::CronWorkflow, &odd);
        assert_eq!((view.depth, view.others.len()), (1, 1));
        assert_eq!(
            WorkflowView::read(WorkflowKind::Workflow, &json!({})).depth,
            0
        );
    }
}
