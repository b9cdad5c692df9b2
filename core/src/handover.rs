//! A Project's people changing, as it concerns the workloads in its namespaces (issue 13).
//!
//! - **Hand-over** (`spec.owner` changed; the owner last handed to is `status.owner`):
//!   with `spec.transferWorkloads` (the default) every workload of the old owner in the
//!   project namespaces is re-stamped to the new owner — its `homestead.dev/run-as` is
//!   replaced (a JSON Patch that first tests the old value), and homestead's mutating
//!   webhook then rewrites the rest of the pod template for the new owner (uid, groups,
//!   private claim), as it does for any template homestead changes. Without it they keep
//!   running as the old owner (validation requires the old owner to stay a member whose
//!   role runs pods).
//! - **Unshare** (someone in `status.runners` no longer runs pods in the project: removed,
//!   or given a role that runs none): each of their workloads is named, as admission
//!   refuses its next pods.
//!
//! Only top-level workloads are re-stamped and named: one whose controller is itself a
//! stamped kind (a Deployment's ReplicaSet, a CronJob's Job, a CronWorkflow's Workflow)
//! is made again by that controller from its re-stamped template. A Job's pod template
//! cannot change once created: a Job of the old owner runs to its end as them and is
//! named instead. Pure: the controller lists the workloads, applies the patches, publishes
//! one Event per workload and then records `status.owner` and `status.runners`, so a
//! reconcile after that finds nothing to do.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use kube::core::ApiResource;
use serde_json::{Value, json};

use crate::argo::{self, WorkflowKind, WorkflowView};
use crate::config::{Config, WorkloadKind};
use crate::custom;
use crate::names::ANNOTATION_RUN_AS;
use crate::patch::pointer;
use crate::resources::Project;

/// A kind of workload homestead stamps and a hand-over re-stamps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StampedKind {
    /// `apps/v1 Deployment`.
    Deployment,
    /// `apps/v1 StatefulSet`.
    StatefulSet,
    /// `apps/v1 DaemonSet`.
    DaemonSet,
    /// `apps/v1 ReplicaSet`.
    ReplicaSet,
    /// `batch/v1 Job` (its pod template is immutable).
    Job,
    /// `batch/v1 CronJob`.
    CronJob,
    /// `argoproj.io/v1alpha1 Workflow`.
    Workflow,
    /// `argoproj.io/v1alpha1 CronWorkflow`.
    CronWorkflow,
    /// `argoproj.io/v1alpha1 WorkflowTemplate`.
    WorkflowTemplate,
    /// A custom resource configured in `workloadKinds` (a Kubeflow PyTorchJob): its stamps
    /// are in the pod templates its pointers name.
    Configured(Box<WorkloadKind>),
}

impl StampedKind {
    /// Every kind, in the order the controller lists them.
    pub const ALL: [StampedKind; 9] = [
        StampedKind::Deployment,
        StampedKind::StatefulSet,
        StampedKind::DaemonSet,
        StampedKind::ReplicaSet,
        StampedKind::Job,
        StampedKind::CronJob,
        StampedKind::Workflow,
        StampedKind::CronWorkflow,
        StampedKind::WorkflowTemplate,
    ];

    /// Every kind a hand-over lists with `config`: the built-in ones and the configured
    /// `workloadKinds`.
    pub fn listed(config: &Config) -> Vec<StampedKind> {
        StampedKind::ALL
            .into_iter()
            .chain(
                config
                    .workload_kinds
                    .iter()
                    .map(|k| StampedKind::Configured(Box::new(k.clone()))),
            )
            .collect()
    }

    /// The API resource (group, version, plural) to list and patch.
    pub fn api_resource(&self) -> ApiResource {
        let argo = |kind: &str, plural: &str| ApiResource {
            group: argo::GROUP.to_owned(),
            version: "v1alpha1".to_owned(),
            api_version: format!("{}/v1alpha1", argo::GROUP),
            kind: kind.to_owned(),
            plural: plural.to_owned(),
        };
        match self {
            StampedKind::Deployment => ApiResource::erase::<Deployment>(&()),
            StampedKind::StatefulSet => ApiResource::erase::<StatefulSet>(&()),
            StampedKind::DaemonSet => ApiResource::erase::<DaemonSet>(&()),
            StampedKind::ReplicaSet => ApiResource::erase::<ReplicaSet>(&()),
            StampedKind::Job => ApiResource::erase::<Job>(&()),
            StampedKind::CronJob => ApiResource::erase::<CronJob>(&()),
            StampedKind::Workflow => argo("Workflow", "workflows"),
            StampedKind::CronWorkflow => argo("CronWorkflow", "cronworkflows"),
            StampedKind::WorkflowTemplate => argo("WorkflowTemplate", "workflowtemplates"),
            StampedKind::Configured(k) => ApiResource {
                group: k.group.clone(),
                version: k.version.clone(),
                api_version: format!("{}/{}", k.group, k.version),
                kind: k.kind.clone(),
                plural: k.resource(),
            },
        }
    }

    /// The kind as Kubernetes writes it.
    pub fn as_str(&self) -> &str {
        match self {
            StampedKind::Deployment => "Deployment",
            StampedKind::StatefulSet => "StatefulSet",
            StampedKind::DaemonSet => "DaemonSet",
            StampedKind::ReplicaSet => "ReplicaSet",
            StampedKind::Job => "Job",
            StampedKind::CronJob => "CronJob",
            StampedKind::Workflow => "Workflow",
            StampedKind::CronWorkflow => "CronWorkflow",
            StampedKind::WorkflowTemplate => "WorkflowTemplate",
            StampedKind::Configured(k) => &k.kind,
        }
    }

    /// The built-in kind for an API group and kind name.
    pub fn from_group_kind(group: &str, kind: &str) -> Option<Self> {
        StampedKind::ALL.into_iter().find(|k| {
            let resource = k.api_resource();
            resource.group == group && resource.kind == kind
        })
    }

    /// RFC 6901 pointer to the annotations map that holds the stamp of a built-in kind
    /// (`None` for a configured kind, whose templates are found in the object).
    fn annotations_pointer(&self) -> Option<&'static str> {
        Some(match self {
            StampedKind::CronJob => "/spec/jobTemplate/spec/template/metadata/annotations",
            StampedKind::Workflow | StampedKind::WorkflowTemplate => {
                "/spec/podMetadata/annotations"
            }
            StampedKind::CronWorkflow => "/spec/workflowSpec/podMetadata/annotations",
            StampedKind::Configured(_) => return None,
            _ => "/spec/template/metadata/annotations",
        })
    }

    /// Pointers to where `object` of this kind may hold a stamp: the one place of a
    /// built-in kind; each pod template a configured kind's pointers find.
    fn stamp_pointers(&self, object: &Value) -> Vec<String> {
        let stamp = pointer(&[ANNOTATION_RUN_AS]);
        match (self, self.annotations_pointer()) {
            (StampedKind::Configured(kind), _) => custom::find(object, &kind.pointers())
                .into_iter()
                .map(|template| format!("{}/metadata/annotations{stamp}", template.pointer))
                .collect(),
            (_, Some(annotations)) => vec![format!("{annotations}{stamp}")],
            (_, None) => Vec::new(),
        }
    }

    fn workflow_kind(&self) -> Option<WorkflowKind> {
        match self {
            StampedKind::Workflow => Some(WorkflowKind::Workflow),
            StampedKind::CronWorkflow => Some(WorkflowKind::CronWorkflow),
            StampedKind::WorkflowTemplate => Some(WorkflowKind::WorkflowTemplate),
            _ => None,
        }
    }
}

/// A workload found in a project namespace, as far as a hand-over goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// Its kind.
    pub kind: StampedKind,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its stamp (`None`: none, or not a string).
    pub run_as: Option<String>,
    /// True when its controller is itself a stamped kind, which makes it again from its
    /// own template (a Deployment's ReplicaSet).
    pub controlled: bool,
    /// Pointers to every place that holds its stamp: the stamp of each of its pod
    /// templates, and the copies that must say what the stamp says (an Argo Workflow's
    /// `status.storedWorkflowTemplateSpec.podMetadata`).
    pub stamps: Vec<String>,
}

impl Workload {
    /// Reads a listed object of `kind`; `None` without a name and namespace.
    pub fn read(kind: StampedKind, object: &Value) -> Option<Self> {
        let meta = object.get("metadata")?;
        let name = meta.get("name")?.as_str()?.to_owned();
        let namespace = meta.get("namespace")?.as_str()?.to_owned();
        let stamp_at = |at: &String| object.pointer(at).and_then(Value::as_str);
        let templates = kind.stamp_pointers(object);
        let run_as = templates.iter().find_map(stamp_at).map(str::to_owned);
        let mut stamps: Vec<String> = templates
            .into_iter()
            .filter(|at| run_as.is_some() && stamp_at(at) == run_as.as_deref())
            .collect();
        let controlled = meta
            .get("ownerReferences")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
            .any(|r| {
                let group = r
                    .get("apiVersion")
                    .and_then(Value::as_str)
                    .and_then(|v| v.split_once('/'))
                    .map_or("", |(group, _)| group);
                r.get("kind")
                    .and_then(Value::as_str)
                    .is_some_and(|k| StampedKind::from_group_kind(group, k).is_some())
            });
        let copies: Vec<String> = match (kind.workflow_kind(), &run_as) {
            (Some(workflow), Some(stamp)) => WorkflowView::read(workflow, object)
                .others
                .into_iter()
                .filter(|found| found.pod_metadata && found.value.as_deref() == Some(stamp))
                .map(|found| {
                    format!(
                        "{}{}",
                        pointer(&found.path),
                        pointer(&["annotations", ANNOTATION_RUN_AS])
                    )
                })
                .collect(),
            _ => Vec::new(),
        };
        stamps.extend(copies);
        Some(Self {
            kind,
            namespace,
            name,
            run_as,
            controlled,
            stamps,
        })
    }

    /// `Deployment p-mx/web`.
    pub fn describe(&self) -> String {
        format!("{} {}/{}", self.kind.as_str(), self.namespace, self.name)
    }

    /// The JSON Patch that re-stamps it from `from` to `to`: each place is first tested
    /// to still say `from`, so a workload changed meanwhile is not re-stamped blindly.
    pub fn restamp_patch(&self, from: &str, to: &str) -> Value {
        let mut ops = Vec::new();
        for path in &self.stamps {
            ops.push(json!({"op": "test", "path": path, "value": from}));
            ops.push(json!({"op": "replace", "path": path, "value": to}));
        }
        Value::Array(ops)
    }
}

/// What a Project's people were when its workloads were last looked at, and are now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct People {
    /// The owner.
    pub owner: String,
    /// The owner and the members whose role runs pods, sorted.
    pub runners: Vec<String>,
}

impl People {
    /// The people of `project` as its spec says now.
    pub fn now(config: &Config, project: &Project) -> Self {
        let spec = &project.spec;
        let runs = |role: &str| config.projects.role(role).is_some_and(|r| r.runs_pods);
        let mut runners = BTreeSet::new();
        if runs(&config.projects.owner_role) {
            runners.insert(spec.owner.clone());
        }
        let mut seen = BTreeSet::from([spec.owner.as_str()]);
        for member in &spec.members {
            // The first listing of a person wins (as for their RoleBinding).
            if seen.insert(member.username.as_str()) && runs(&member.role) {
                runners.insert(member.username.clone());
            }
        }
        Self {
            owner: spec.owner.clone(),
            runners: runners.into_iter().collect(),
        }
    }
}

/// What changed since the workloads were last looked at: `None` when nothing that
/// concerns them did (no listing needed). A Project never looked at (no `status.owner`)
/// only has its people recorded.
pub fn people_changed(config: &Config, project: &Project) -> Option<Change> {
    let now = People::now(config, project);
    let status = project.status.as_ref();
    let Some(handed_to) = status.and_then(|s| s.owner.clone()) else {
        return Some(Change {
            handed_over: None,
            transfer: false,
            unshared: Vec::new(),
            now,
        });
    };
    let all_users_run = project
        .spec
        .all_users
        .as_ref()
        .is_some_and(|a| config.projects.role(&a.role).is_some_and(|r| r.runs_pods));
    let before = status.and_then(|s| s.runners.clone()).unwrap_or_default();
    let unshared: Vec<String> = if all_users_run {
        Vec::new()
    } else {
        before
            .into_iter()
            .filter(|u| now.runners.binary_search(u).is_err())
            .collect()
    };
    let handed_over = (handed_to != now.owner).then_some(handed_to);
    let recorded = status.and_then(|s| s.runners.as_ref()) == Some(&now.runners);
    if handed_over.is_none() && unshared.is_empty() && recorded {
        return None;
    }
    Some(Change {
        handed_over,
        transfer: project.spec.transfers_workloads(),
        unshared,
        now,
    })
}

/// A change of a Project's people that concerns its workloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The previous owner, when the project was handed over.
    pub handed_over: Option<String>,
    /// `spec.transferWorkloads`.
    pub transfer: bool,
    /// Who ran pods before and no longer does.
    pub unshared: Vec<String>,
    /// The people now (recorded in the status once done).
    pub now: People,
}

impl Change {
    /// True when the workloads must be listed (not only the people recorded).
    pub fn needs_workloads(&self) -> bool {
        self.handed_over.is_some() || !self.unshared.is_empty()
    }
}

/// One workload and what happens to it, with the Event that says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadStep {
    /// The workload.
    pub workload: Workload,
    /// The JSON Patch to send, when it is re-stamped.
    pub patch: Option<Value>,
    /// The Event's reason.
    pub reason: &'static str,
    /// True for a Warning (its pods are or may be refused).
    pub warning: bool,
    /// The Event's note.
    pub note: String,
}

/// What to do with `workloads` (those listed in the project's namespaces) for `change`
/// of Project `project`: re-stamps first, then the workloads that keep running as
/// someone else, then those whose next pods are refused. Workloads that need nothing
/// (someone else's, already re-stamped, made by a stamped controller) have no step.
pub fn plan_workloads(project: &str, change: &Change, workloads: &[Workload]) -> Vec<WorkloadStep> {
    let owner = change.now.owner.as_str();
    let mut restamps = Vec::new();
    let mut kept = Vec::new();
    let mut refused = Vec::new();
    for workload in workloads.iter().filter(|w| !w.controlled) {
        let Some(run_as) = workload.run_as.as_deref() else {
            continue;
        };
        let mut runs_as = run_as;
        if change.handed_over.as_deref() == Some(run_as) {
            if !change.transfer {
                kept.push(WorkloadStep {
                    workload: workload.clone(),
                    patch: None,
                    reason: "NotTransferred",
                    warning: false,
                    note: format!(
                        "Project {project} was handed from {run_as} to {owner} with transferWorkloads false: this keeps running as {run_as}"
                    ),
                });
            } else if change.now.runners.binary_search(&change.now.owner).is_err() {
                kept.push(WorkloadStep {
                    workload: workload.clone(),
                    patch: None,
                    reason: "NotTransferred",
                    warning: true,
                    note: format!(
                        "Project {project} was handed from {run_as} to {owner}, but the owner's role runs no pods (projects.ownerRole): this keeps running as {run_as}"
                    ),
                });
            } else if workload.kind == StampedKind::Job {
                kept.push(WorkloadStep {
                    workload: workload.clone(),
                    patch: None,
                    reason: "NotTransferred",
                    warning: true,
                    note: format!(
                        "Project {project} was handed from {run_as} to {owner}, but a Job's pod template cannot change: it runs to its end as {run_as}"
                    ),
                });
            } else {
                restamps.push(WorkloadStep {
                    workload: workload.clone(),
                    patch: Some(workload.restamp_patch(run_as, owner)),
                    reason: "Transferred",
                    warning: false,
                    note: format!(
                        "Project {project} was handed from {run_as} to {owner}: re-stamped, its next pods run as {owner}"
                    ),
                });
                runs_as = owner;
            }
        }
        if change.unshared.iter().any(|u| u == runs_as) {
            refused.push(WorkloadStep {
                workload: workload.clone(),
                patch: None,
                reason: "RunsAsFormerMember",
                warning: true,
                note: format!(
                    "runs as {runs_as}, who no longer runs pods in Project {project}: its next pods are refused"
                ),
            });
        }
    }
    restamps.extend(kept);
    restamps.extend(refused);
    restamps
}

/// The status fields recorded once a change is done, as JSON (`status.owner`,
/// `status.runners`).
pub fn recorded_status(people: &People) -> Value {
    json!({"owner": people.owner, "runners": people.runners})
}

/// Why an owner change of `old` to `new` without transferring workloads is refused: the
/// old owner's workloads keep running as them, so they must stay a member whose role runs
/// pods. `None` when it is fine (or no such change).
pub fn untransferred_owner_problem(
    config: &Config,
    old: &Project,
    new: &Project,
) -> Option<String> {
    let before = &old.spec.owner;
    if *before == new.spec.owner || new.spec.transfers_workloads() {
        return None;
    }
    let runs = |role: &str| config.projects.role(role).is_some_and(|r| r.runs_pods);
    let role = new
        .spec
        .members
        .iter()
        .find(|m| m.username == *before)
        .map(|m| m.role.as_str())
        .or(new.spec.all_users.as_ref().map(|a| a.role.as_str()));
    match role {
        Some(role) if runs(role) => None,
        Some(role) => Some(format!(
            "with transferWorkloads false, {before}'s workloads keep running as {before}, so {before} must stay a member whose role runs pods; role {role:?} runs none (keep them with a role such as edit, or set transferWorkloads to true to hand their workloads to {})",
            new.spec.owner
        )),
        None => Some(format!(
            "with transferWorkloads false, {before}'s workloads keep running as {before}, so {before} must stay a member (add them to spec.members with a role that runs pods, or set transferWorkloads to true to hand their workloads to {})",
            new.spec.owner
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{AllUsers, ProjectMember, ProjectSpec, ProjectStatus};

    fn project(owner: &str, members: &[(&str, &str)]) -> Project {
        Project::new(
            "mx",
            ProjectSpec {
                owner: owner.into(),
                members: members
                    .iter()
                    .map(|(u, r)| ProjectMember {
                        username: (*u).into(),
                        role: (*r).into(),
                    })
                    .collect(),
                ..Default::default()
            },
        )
    }

    /// `project` as last recorded with `owner` and `runners`.
    fn recorded(mut project: Project, owner: &str, runners: &[&str]) -> Project {
        project.status = Some(ProjectStatus {
            owner: Some(owner.into()),
            runners: Some(runners.iter().map(|r| (*r).to_owned()).collect()),
            ..Default::default()
        });
        project
    }

    fn workload(kind: StampedKind, name: &str, run_as: &str) -> Value {
        let annotations = json!({ANNOTATION_RUN_AS: run_as});
        let mut object = json!({"metadata": {"name": name, "namespace": "p-mx"}});
        let pointer = kind.annotations_pointer().unwrap();
        // Build the path down to the annotations map.
        let mut at = &mut object;
        let tokens: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
        for (i, token) in tokens.iter().enumerate() {
            let last = i + 1 == tokens.len();
            let next = if last { annotations.clone() } else { json!({}) };
            at = at
                .as_object_mut()
                .unwrap()
                .entry(token.to_string())
                .or_insert(next);
        }
        object
    }

    fn read(kind: StampedKind, object: &Value) -> Workload {
        Workload::read(kind, object).unwrap()
    }

    /// The namespace's workloads: ada's Deployment, CronJob, Job and Workflow, ada's
    /// Deployment's ReplicaSet, bob's StatefulSet, an unstamped DaemonSet.
    fn workloads() -> Vec<Workload> {
        let mut rs = workload(StampedKind::ReplicaSet, "web-1", "ada");
        rs["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "controller": true}]);
        let mut wf = workload(StampedKind::Workflow, "run", "ada");
        wf["status"] = json!({"storedWorkflowTemplateSpec": {"podMetadata": {"annotations": {ANNOTATION_RUN_AS: "ada"}}}});
        vec![
            read(
                StampedKind::Deployment,
                &workload(StampedKind::Deployment, "web", "ada"),
            ),
            read(StampedKind::ReplicaSet, &rs),
            read(
                StampedKind::CronJob,
                &workload(StampedKind::CronJob, "nightly", "ada"),
            ),
            read(StampedKind::Job, &workload(StampedKind::Job, "once", "ada")),
            read(StampedKind::Workflow, &wf),
            read(
                StampedKind::StatefulSet,
                &workload(StampedKind::StatefulSet, "db", "bob"),
            ),
            read(
                StampedKind::DaemonSet,
                &json!({"metadata": {"name": "agent", "namespace": "p-mx"}, "spec": {"template": {}}}),
            ),
        ]
    }

    fn summary(steps: &[WorkloadStep]) -> Vec<String> {
        steps
            .iter()
            .map(|s| {
                format!(
                    "{} {}{}",
                    s.reason,
                    s.workload.describe(),
                    if s.patch.is_some() { " (patched)" } else { "" }
                )
            })
            .collect()
    }

    /// The planner's table: a Project as last recorded and as edited; whether the
    /// workloads are looked at, and what happens to each.
    #[test]
    fn owner_changes_and_unshares() {
        let config = Config::default();
        type Row = (&'static str, Project, Option<Vec<&'static str>>);
        let table: Vec<Row> = vec![
            (
                "never looked at: the people are recorded, nothing listed",
                project("ada", &[("bob", "edit")]),
                Some(vec![]),
            ),
            (
                "nothing changed: nothing to do",
                recorded(project("ada", &[("bob", "edit")]), "ada", &["ada", "bob"]),
                None,
            ),
            (
                "a member added: recorded, nothing listed",
                recorded(
                    project("ada", &[("bob", "edit"), ("erin", "edit")]),
                    "ada",
                    &["ada", "bob"],
                ),
                Some(vec![]),
            ),
            (
                "handed to bob with transfer, ada kept as edit",
                recorded(project("bob", &[("ada", "edit")]), "ada", &["ada", "bob"]),
                Some(vec![
                    "Transferred Deployment p-mx/web (patched)",
                    "Transferred CronJob p-mx/nightly (patched)",
                    "Transferred Workflow p-mx/run (patched)",
                    "NotTransferred Job p-mx/once",
                ]),
            ),
            (
                "handed to bob with transfer, ada not kept: her Job's pods are refused",
                recorded(project("bob", &[]), "ada", &["ada", "bob"]),
                Some(vec![
                    "Transferred Deployment p-mx/web (patched)",
                    "Transferred CronJob p-mx/nightly (patched)",
                    "Transferred Workflow p-mx/run (patched)",
                    "NotTransferred Job p-mx/once",
                    "RunsAsFormerMember Job p-mx/once",
                ]),
            ),
            (
                "handed to bob without transfer, ada kept as edit",
                {
                    let mut p =
                        recorded(project("bob", &[("ada", "edit")]), "ada", &["ada", "bob"]);
                    p.spec.transfer_workloads = Some(false);
                    p
                },
                Some(vec![
                    "NotTransferred Deployment p-mx/web",
                    "NotTransferred CronJob p-mx/nightly",
                    "NotTransferred Job p-mx/once",
                    "NotTransferred Workflow p-mx/run",
                ]),
            ),
            (
                "bob unshared: his StatefulSet's pods are refused",
                recorded(project("ada", &[]), "ada", &["ada", "bob"]),
                Some(vec!["RunsAsFormerMember StatefulSet p-mx/db"]),
            ),
            (
                "bob made a viewer: the same",
                recorded(project("ada", &[("bob", "view")]), "ada", &["ada", "bob"]),
                Some(vec!["RunsAsFormerMember StatefulSet p-mx/db"]),
            ),
            (
                "bob unshared but everyone may edit: nobody is refused",
                {
                    let mut p = recorded(project("ada", &[]), "ada", &["ada", "bob"]);
                    p.spec.all_users = Some(AllUsers {
                        role: "edit".into(),
                    });
                    p
                },
                Some(vec![]),
            ),
        ];
        let mut failures = Vec::new();
        for (name, project, want) in table {
            let change = people_changed(&config, &project);
            let got = change.as_ref().map(|change| {
                let steps = if change.needs_workloads() {
                    plan_workloads("mx", change, &workloads())
                } else {
                    Vec::new()
                };
                summary(&steps)
            });
            let want = want.map(|w| w.into_iter().map(str::to_owned).collect::<Vec<_>>());
            if got != want {
                failures.push(format!("{name}:\n  got  {got:?}\n  want {want:?}"));
            }
        }
        assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    }

    #[test]
    fn nothing_is_handed_to_an_owner_who_runs_no_pods() {
        let mut config = Config::default();
        config.projects.owner_role = "view".into();
        let change =
            people_changed(&config, &recorded(project("bob", &[]), "ada", &["ada"])).unwrap();
        let steps = plan_workloads("mx", &change, &workloads());
        assert!(
            steps.iter().all(|s| s.patch.is_none()),
            "{:?}",
            summary(&steps)
        );
        assert!(
            steps
                .iter()
                .any(|s| s.reason == "NotTransferred" && s.note.contains("runs no pods")),
            "{:?}",
            summary(&steps)
        );
    }

    #[test]
    fn a_restamp_tests_then_replaces_the_stamp_and_its_copies() {
        let change = people_changed(
            &Config::default(),
            &recorded(project("bob", &[]), "ada", &["ada"]),
        )
        .unwrap();
        assert_eq!(change.now.runners, ["bob"]);
        assert_eq!(change.unshared, ["ada"]);
        let steps = plan_workloads("mx", &change, &workloads());
        let workflow = steps
            .iter()
            .find(|s| s.workload.kind == StampedKind::Workflow)
            .unwrap();
        assert_eq!(
            workflow.patch.as_ref().unwrap(),
            &json!([
                {"op": "test", "path": "/spec/podMetadata/annotations/homestead.dev~1run-as", "value": "ada"},
                {"op": "replace", "path": "/spec/podMetadata/annotations/homestead.dev~1run-as", "value": "bob"},
                {"op": "test", "path": "/status/storedWorkflowTemplateSpec/podMetadata/annotations/homestead.dev~1run-as", "value": "ada"},
                {"op": "replace", "path": "/status/storedWorkflowTemplateSpec/podMetadata/annotations/homestead.dev~1run-as", "value": "bob"},
            ])
        );
        let cron = steps
            .iter()
            .find(|s| s.workload.kind == StampedKind::CronJob)
            .unwrap();
        assert_eq!(
            cron.patch.as_ref().unwrap()[1]["path"],
            "/spec/jobTemplate/spec/template/metadata/annotations/homestead.dev~1run-as"
        );
        assert!(
            cron.note.contains("handed from ada to bob"),
            "{}",
            cron.note
        );
        // Applied, the patches leave nothing to re-stamp: a re-run changes nothing.
        let after: Vec<Workload> = workloads()
            .into_iter()
            .map(|w| {
                let mut object =
                    workload(w.kind.clone(), &w.name, w.run_as.as_deref().unwrap_or(""));
                if let Some(step) = steps.iter().find(|s| s.workload == w && s.patch.is_some()) {
                    let patch: Vec<Value> =
                        serde_json::from_value(step.patch.clone().unwrap()).unwrap();
                    let stamp = patch[1]["path"].as_str().unwrap();
                    *object.pointer_mut(stamp).unwrap() = json!("bob");
                }
                Workload {
                    controlled: w.controlled,
                    ..read(w.kind.clone(), &object)
                }
            })
            .collect();
        let again = plan_workloads("mx", &change, &after);
        assert!(
            again.iter().all(|s| s.patch.is_none()),
            "{:?}",
            summary(&again)
        );
        // And once recorded, nothing is looked at again.
        let mut done = recorded(project("bob", &[]), "bob", &["bob"]);
        done.spec.transfer_workloads = Some(true);
        assert_eq!(people_changed(&Config::default(), &done), None);
    }

    #[test]
    fn workloads_are_read_from_where_their_stamp_lives() {
        for kind in StampedKind::ALL {
            let w = read(kind.clone(), &workload(kind.clone(), "x", "ada"));
            assert_eq!(w.run_as.as_deref(), Some("ada"), "{kind:?}");
            assert!(!w.controlled && w.stamps.len() == 1, "{kind:?}");
            let resource = kind.api_resource();
            assert_eq!(
                StampedKind::from_group_kind(&resource.group, &resource.kind),
                Some(kind)
            );
        }
        assert_eq!(StampedKind::Job.api_resource().plural, "jobs");
        assert_eq!(
            StampedKind::CronWorkflow.api_resource().api_version,
            "argoproj.io/v1alpha1"
        );
        assert!(Workload::read(StampedKind::Job, &json!({"metadata": {"name": "x"}})).is_none());
    }

    /// A configured kind (a PyTorchJob with a master and a worker template) is listed
    /// with the built-in ones, read from each of its templates, and re-stamped in each.
    #[test]
    fn configured_kinds_are_handed_over_in_every_template() {
        let config: Config = serde_json::from_value(json!({"workloadKinds": [{
            "group": "kubeflow.org", "version": "v1", "kind": "PyTorchJob",
            "podTemplates": ["/spec/pytorchReplicaSpecs/*/template"]}]}))
        .unwrap();
        let kinds = StampedKind::listed(&config);
        assert_eq!(kinds.len(), StampedKind::ALL.len() + 1);
        let pytorch = kinds.last().unwrap().clone();
        let resource = pytorch.api_resource();
        assert_eq!(
            (
                resource.api_version.as_str(),
                resource.plural.as_str(),
                pytorch.as_str()
            ),
            ("kubeflow.org/v1", "pytorchjobs", "PyTorchJob")
        );
        let stamped = |who: &str| json!({"metadata": {"annotations": {ANNOTATION_RUN_AS: who}}});
        let job = json!({
            "metadata": {"name": "train", "namespace": "p-mx"},
            "spec": {"pytorchReplicaSpecs": {
                "Master": {"replicas": 1, "template": stamped("ada")},
                "Worker": {"replicas": 4, "template": stamped("ada")},
                "Other": {"replicas": 1}}}
        });
        let w = read(pytorch.clone(), &job);
        assert_eq!(w.run_as.as_deref(), Some("ada"));
        assert_eq!(w.describe(), "PyTorchJob p-mx/train");
        let change =
            people_changed(&config, &recorded(project("bob", &[]), "ada", &["ada"])).unwrap();
        let steps = plan_workloads("mx", &change, std::slice::from_ref(&w));
        assert_eq!(
            summary(&steps),
            ["Transferred PyTorchJob p-mx/train (patched)"]
        );
        let at = |replica: &str| {
            format!(
                "/spec/pytorchReplicaSpecs/{replica}/template/metadata/annotations/homestead.dev~1run-as"
            )
        };
        assert_eq!(
            steps[0].patch.as_ref().unwrap(),
            &json!([
                {"op": "test", "path": at("Master"), "value": "ada"},
                {"op": "replace", "path": at("Master"), "value": "bob"},
                {"op": "test", "path": at("Worker"), "value": "ada"},
                {"op": "replace", "path": at("Worker"), "value": "bob"},
            ])
        );
        // Without the stamp in any template, it runs as nobody homestead knows: no step.
        let bare = json!({"metadata": {"name": "t", "namespace": "p-mx"}, "spec": {}});
        let w = read(pytorch, &bare);
        assert!(w.run_as.is_none() && w.stamps.is_empty());
    }

    #[test]
    fn an_owner_change_without_transfer_keeps_the_old_owner_running_pods() {
        let config = Config::default();
        let old = project("ada", &[("bob", "edit")]);
        let handed = |members: &[(&str, &str)], transfer: Option<bool>| {
            let mut p = project("bob", members);
            p.spec.transfer_workloads = transfer;
            p
        };
        let table: Vec<(&str, Project, Option<&str>)> = vec![
            ("with transfer (the default)", handed(&[], None), None),
            ("with transfer, said so", handed(&[], Some(true)), None),
            (
                "without, ada kept as edit",
                handed(&[("ada", "edit")], Some(false)),
                None,
            ),
            (
                "without, ada dropped",
                handed(&[], Some(false)),
                Some("must stay a member"),
            ),
            (
                "without, ada kept as view",
                handed(&[("ada", "view")], Some(false)),
                Some("runs none"),
            ),
            ("the same owner", project("ada", &[]), None),
        ];
        for (name, new, want) in table {
            let got = untransferred_owner_problem(&config, &old, &new);
            match (want, &got) {
                (None, None) => {}
                (Some(word), Some(message)) if message.contains(word) => {}
                _ => panic!("{name}: got {got:?}, wanted {want:?}"),
            }
        }
        let mut open = handed(&[], Some(false));
        open.spec.all_users = Some(AllUsers {
            role: "edit".into(),
        });
        assert_eq!(
            untransferred_owner_problem(&config, &old, &open),
            None,
            "everyone runs pods"
        );
    }
}
