//! The `Project` reconciler: a project's namespaces (the project namespace and its child
//! namespaces), one RoleBinding per role that someone has, the project ConfigMap,
//! storage (the shared volume, the project volume, one private claim per person who runs
//! pods), clones and quota. `spec.adopt` takes over an existing namespace that no other
//! homestead object owns (nothing in it is touched); `deletionPolicy: Keep` lets go of the
//! namespaces on delete instead of deleting them ([`let_go`]). Once a plan is in place,
//! a hand-over re-stamps the old owner's workloads and an unshare names the former
//! member's ([`settle_workloads`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::Error;
use super::apply::delete_object;
use super::reconcile::{Context, Owned, run_controller};
use homestead_core::config::Config;
use homestead_core::desired::{
    ANNOTATION_APPLIED, DesiredObjects, DesiredObjectsError, FIELD_MANAGER, Kind, MANAGED_BY,
    ObjectKey, OwnerKind, PROJECT_CONFIG_MAP, SecretSources, project_objects,
};
use homestead_core::directory::{project_namespace, project_namespaces};
use homestead_core::handover::{
    StampedKind, Workload, WorkloadStep, people_changed, plan_workloads, recorded_status,
};
use homestead_core::names::{
    LABEL_MANAGED, LABEL_MANAGED_BY, LABEL_PROJECT, LABEL_SESSION, LABEL_USER, object_name,
};
use homestead_core::resources::{DeletionPolicy, Project, ResourceStatus, User, UserSpec};

impl Owned for Project {
    const KIND: OwnerKind = OwnerKind::Project;

    fn status(&self) -> Option<&ResourceStatus> {
        self.status.as_ref().map(|s| &s.common)
    }

    fn plan(
        &self,
        ctx: &Context,
        sources: &SecretSources,
    ) -> Result<DesiredObjects, DesiredObjectsError> {
        project_objects(&ctx.config, self, &project_users(ctx, self), sources)
    }

    fn namespace_name(&self, config: &Config) -> Option<String> {
        Some(project_namespace(config, self))
    }

    fn namespace_names(&self, config: &Config) -> Vec<String> {
        project_namespaces(config, self)
    }

    fn extra_status(&self, plan: Option<&DesiredObjects>) -> (Value, Value) {
        let current = self
            .status
            .as_ref()
            .map_or(Value::Null, |s| json!({"gid": s.gid, "members": s.members}));
        let Some(plan) = plan else {
            return (current.clone(), current);
        };
        // The gid the plan used is in the project ConfigMap.
        let gid = plan.objects.iter().find_map(|o| match o {
            homestead_core::desired::Object::ConfigMap(cm)
                if cm.metadata.name.as_deref() == Some(PROJECT_CONFIG_MAP) =>
            {
                cm.data.as_ref()?.get("gid")?.parse::<i64>().ok()
            }
            _ => None,
        });
        let mut members: Vec<&str> = self
            .spec
            .members
            .iter()
            .map(|m| m.username.as_str())
            .filter(|u| *u != self.spec.owner)
            .collect();
        members.sort_unstable();
        members.dedup();
        let count = i64::try_from(members.len()).unwrap_or(i64::MAX);
        (json!({"gid": gid, "members": count}), current)
    }

    fn may_adopt(&self, labels: Option<&BTreeMap<String, String>>) -> bool {
        self.spec.adopt && !homestead_owned(labels)
    }

    fn keeps_namespaces(&self) -> bool {
        self.spec.deletion_policy == DeletionPolicy::Keep
    }

    fn settle(&self, ctx: &Context) -> impl std::future::Future<Output = Result<(), Error>> + Send {
        settle_workloads(self, ctx)
    }
}

/// Reconciles failed in a row after which a workload whose re-stamp is refused is given
/// up on (a refusal right after the edit may be admission not having seen it yet).
pub const GIVE_UP_AFTER: u32 = 3;

/// Field manager of the status fields [`settle_workloads`] records (`status.owner`,
/// `status.runners`): apart from the reconcile's own status writes, which never name them.
pub const WORKLOADS_FIELD_MANAGER: &str = "homestead-workloads";

/// A Project's workloads after its people changed (see [`homestead_core::handover`]):
/// on a hand-over the old owner's workloads in every project namespace are re-stamped to
/// the new owner (with `spec.transferWorkloads`), and an unshared person's workloads are
/// named; one Event per workload, on the workload. Then the people are recorded in the
/// status, so the next reconcile lists nothing. A workload that fails to re-stamp fails
/// the reconcile, which is retried (the ones already re-stamped need nothing the next
/// time); one still refused after [`GIVE_UP_AFTER`] failures in a row is left running as
/// the old owner, in a Warning Event.
pub async fn settle_workloads(project: &Project, ctx: &Context) -> Result<(), Error> {
    let Some(change) = people_changed(&ctx.config, project) else {
        return Ok(());
    };
    let name = project.name_any();
    if change.needs_workloads() {
        let namespaces = project_namespaces(&ctx.config, project);
        let kinds = StampedKind::listed(&ctx.config);
        let workloads = list_workloads(&ctx.client, &kinds, &namespaces).await?;
        let steps = plan_workloads(&name, &change, &workloads);
        for step in &steps {
            if let Some(patch) = &step.patch {
                let api = workload_api(&ctx.client, &step.workload);
                let patch: json_patch::Patch = serde_json::from_value(patch.clone())
                    .map_err(|e| Error::Serialize(step.workload.describe(), e))?;
                match api
                    .patch(
                        &step.workload.name,
                        &PatchParams {
                            field_manager: Some(FIELD_MANAGER.to_owned()),
                            ..PatchParams::default()
                        },
                        &Patch::Json::<()>(patch),
                    )
                    .await
                {
                    Ok(_) => {
                        tracing::info!(project = %name, workload = %step.workload.describe(), "re-stamped to the new owner");
                    }
                    Err(kube::Error::Api(status)) if status.code == 404 => continue,
                    // Refused (by admission, or its stamp changed meanwhile) again and
                    // again: this workload is given up on, and said so, so the hand-over
                    // of the others completes.
                    Err(kube::Error::Api(status))
                        if matches!(status.code, 400 | 403 | 422)
                            && ctx.failure_count(OwnerKind::Project, &name) >= GIVE_UP_AFTER =>
                    {
                        let from = step.workload.run_as.as_deref().unwrap_or_default();
                        let gave_up = WorkloadStep {
                            patch: None,
                            reason: "NotTransferred",
                            warning: true,
                            note: format!(
                                "Project {name} was handed from {from} to {}, but re-stamping this was refused {GIVE_UP_AFTER} times and given up: {}; it keeps running as {from}",
                                change.now.owner, status.message
                            ),
                            ..step.clone()
                        };
                        tracing::warn!(project = %name, workload = %step.workload.describe(), error = %status.message, "gave up re-stamping");
                        workload_event(ctx, project, &gave_up).await;
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            workload_event(ctx, project, step).await;
        }
    }
    let body = json!({
        "apiVersion": Project::api_version(&()),
        "kind": Project::kind(&()),
        "status": recorded_status(&change.now),
    });
    Api::<Project>::all(ctx.client.clone())
        .patch_status(
            &name,
            &PatchParams::apply(WORKLOADS_FIELD_MANAGER).force(),
            &Patch::Apply(body),
        )
        .await?;
    Ok(())
}

/// Every workload of `kinds` (those a hand-over re-stamps) in `namespaces`. A kind the
/// API server does not serve (Argo's, without Argo) has none.
async fn list_workloads(
    client: &Client,
    kinds: &[StampedKind],
    namespaces: &[String],
) -> Result<Vec<Workload>, Error> {
    let mut out = Vec::new();
    for namespace in namespaces {
        for kind in kinds {
            let api: Api<DynamicObject> =
                Api::namespaced_with(client.clone(), namespace, &kind.api_resource());
            let list = match api.list(&ListParams::default()).await {
                Ok(list) => list,
                Err(kube::Error::Api(status)) if status.code == 404 => continue,
                Err(e) => return Err(e.into()),
            };
            for object in list.items {
                let value = serde_json::to_value(&object)
                    .map_err(|e| Error::Serialize(format!("{} {namespace}", kind.as_str()), e))?;
                out.extend(Workload::read(kind.clone(), &value));
            }
        }
    }
    Ok(out)
}

fn workload_api(client: &Client, workload: &Workload) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        &workload.namespace,
        &workload.kind.api_resource(),
    )
}

/// The Event of one workload's step, on the workload (so its namespace's people see it),
/// naming the Project.
async fn workload_event(ctx: &Context, project: &Project, step: &WorkloadStep) {
    let resource = step.workload.kind.api_resource();
    let regarding = ObjectReference {
        api_version: Some(resource.api_version),
        kind: Some(resource.kind),
        name: Some(step.workload.name.clone()),
        namespace: Some(step.workload.namespace.clone()),
        ..ObjectReference::default()
    };
    let event = Event {
        type_: if step.warning {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: step.reason.to_owned(),
        note: Some(step.note.clone()),
        action: "Reconcile".to_owned(),
        secondary: Some(project.object_ref(&())),
    };
    if let Err(e) = ctx.recorder.publish(&event, &regarding).await {
        tracing::warn!(error = %e, reason = step.reason, workload = %step.workload.describe(), "could not publish an event");
    }
}

/// True when the labels say some homestead object owns the namespace.
fn homestead_owned(labels: Option<&BTreeMap<String, String>>) -> bool {
    labels.is_some_and(|l| {
        l.get(LABEL_MANAGED_BY).map(String::as_str) == Some(MANAGED_BY)
            || [LABEL_MANAGED, LABEL_USER, LABEL_SESSION, LABEL_PROJECT]
                .iter()
                .any(|k| l.contains_key(*k))
    })
}

/// The Users a project's plan needs, from the cache, by username: the owner's and the
/// members' (every User's when it is shared with all users). A User is found by its
/// object name and must carry exactly that username.
fn project_users(ctx: &Context, project: &Project) -> BTreeMap<String, UserSpec> {
    if project.spec.all_users.is_some() {
        return ctx
            .users
            .state()
            .iter()
            .map(|u| (u.spec.username.clone(), u.spec.clone()))
            .collect();
    }
    std::iter::once(&project.spec.owner)
        .chain(project.spec.members.iter().map(|m| &m.username))
        .filter_map(|username| {
            let name = object_name(username).ok()?;
            let user = ctx.users.get(&ObjectRef::new(&name))?;
            (user.spec.username == *username).then(|| (username.clone(), user.spec.clone()))
        })
        .collect()
}

/// True when `user` changing can change `project`'s plan.
fn concerns(project: &Project, user: &User) -> bool {
    let username = &user.spec.username;
    project.spec.all_users.is_some()
        || project.spec.owner == *username
        || project.spec.members.iter().any(|m| m.username == *username)
}

/// `deletionPolicy: Keep`: homestead lets go of `namespaces` and deletes nothing in them.
/// Its RoleBindings are deleted (the access it granted goes with it); every other object
/// it made there loses its owner reference (so the garbage collector leaves it) and
/// homestead's labels; each namespace loses homestead's labels and annotation, so
/// admission and the controller no longer manage it. PersistentVolumes are kept as they
/// always are.
pub async fn let_go(ctx: &Context, namespaces: &[String]) -> Result<(), Error> {
    let live = ctx.live(OwnerKind::Project);
    let unlabel = json!({
        "metadata": {
            "labels": {LABEL_MANAGED_BY: null, LABEL_PROJECT: null, LABEL_MANAGED: null},
            "annotations": {ANNOTATION_APPLIED: null},
        }
    });
    for namespace in namespaces {
        for key in live.keys(Kind::RoleBinding, namespace) {
            delete_object(&ctx.client, &key).await?;
        }
        for kind in [
            Kind::ServiceAccount,
            Kind::ConfigMap,
            Kind::Secret,
            Kind::ResourceQuota,
            Kind::LimitRange,
            Kind::PersistentVolumeClaim,
        ] {
            for key in live.keys(kind, namespace) {
                let mut patch = unlabel.clone();
                patch["metadata"]["ownerReferences"] = Value::Null;
                merge_patch(&ctx.client, &key, patch).await?;
            }
        }
        let key = ObjectKey {
            kind: Kind::Namespace,
            namespace: None,
            name: namespace.clone(),
        };
        merge_patch(&ctx.client, &key, unlabel.clone()).await?;
        tracing::info!(%namespace, "let go of the namespace (deletionPolicy Keep); nothing in it was deleted");
    }
    Ok(())
}

async fn merge_patch(client: &Client, key: &ObjectKey, patch: Value) -> Result<(), Error> {
    let resource = key.kind.api_resource();
    let api: Api<DynamicObject> = match &key.namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    match api
        .patch(
            &key.name,
            &PatchParams::apply(FIELD_MANAGER),
            &Patch::Merge(patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Reconciles Projects until `token` is cancelled. A User appearing or changing re-syncs
/// the projects it owns or is a member of (and those shared with all users).
pub async fn run(ctx: Arc<Context>, token: CancellationToken) {
    let client = ctx.client.clone();
    run_controller::<Project>(ctx, token, move |controller| {
        let projects = controller.store();
        controller.watches(
            Api::<User>::all(client),
            watcher::Config::default(),
            move |user: User| {
                projects
                    .state()
                    .iter()
                    .filter(|p| concerns(p, &user))
                    .map(|p| ObjectRef::from_obj(&**p))
                    .collect::<Vec<_>>()
            },
        )
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use homestead_core::resources::ProjectSpec;

    #[test]
    fn only_a_namespace_no_homestead_object_owns_is_adopted() {
        let mut project = Project::new(
            "mx",
            ProjectSpec {
                owner: "ada".into(),
                adopt: true,
                ..Default::default()
            },
        );
        let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        for (what, l, adopted) in [
            ("no labels", None, true),
            (
                "someone's own labels",
                Some(labels(&[("team", "mx")])),
                true,
            ),
            (
                "a user's namespace",
                Some(labels(&[(LABEL_MANAGED, "true"), (LABEL_USER, "bob")])),
                false,
            ),
            (
                "a session's",
                Some(labels(&[(LABEL_SESSION, "cm1-1")])),
                false,
            ),
            (
                "another project's",
                Some(labels(&[(LABEL_PROJECT, "other")])),
                false,
            ),
            (
                "made by homestead",
                Some(labels(&[(LABEL_MANAGED_BY, "homestead")])),
                false,
            ),
        ] {
            assert_eq!(project.may_adopt(l.as_ref()), adopted, "{what}");
        }
        project.spec.adopt = false;
        assert!(!project.may_adopt(None), "only with spec.adopt");
    }
}
