//! The `Session` reconciler: a session's namespace, config map, workflow account, member
//! binding, artifact secret, data volume and one private claim per member.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use tokio_util::sync::CancellationToken;

use super::Error;
use super::reconcile::{
    Context, Owned, RESYNC, delete_namespace, publish, run_controller, write_status_in,
};
use super::status::Outcome;
use homestead_core::config::{AfterGrace, Config};
use homestead_core::desired::{
    DesiredObjects, DesiredObjectsError, OwnerKind, SecretSources, session_objects,
};
use homestead_core::directory::session_namespace;
use homestead_core::lifecycle::{self, LifecycleError, LifecyclePlan};
use homestead_core::names::object_name;
use homestead_core::resources::{Lifecycle, Phase, ResourceStatus, Session, User, UserSpec};

impl Owned for Session {
    const KIND: OwnerKind = OwnerKind::Session;

    fn status(&self) -> Option<&ResourceStatus> {
        self.status.as_ref()
    }

    fn plan(
        &self,
        ctx: &Context,
        sources: &SecretSources,
    ) -> Result<DesiredObjects, DesiredObjectsError> {
        let members = member_users(ctx, self);
        session_objects(&ctx.config, self, &members, sources)
    }

    fn namespace_name(&self, config: &Config) -> Option<String> {
        Some(session_namespace(config, &self.spec))
    }

    fn lifecycle(
        &self,
        config: &Config,
        now: Timestamp,
    ) -> Option<Result<LifecyclePlan, LifecycleError>> {
        Some(lifecycle::plan(&config.sessions, &self.spec, now))
    }
}

/// What a Session outside its open window gets instead of its objects, and when it wakes
/// up next; `None` when the objects are applied as usual (`Active`, or `Ended` with
/// `afterGrace: refusePods` or `readOnly`: the namespace and its data stay, and admission
/// refuses new pods or mounts the data read-only).
///
/// - `Scheduled`: nothing is created (a namespace that exists because the dates moved
///   later is left as it is; admission refuses new pods in it). Wakes up when it opens.
/// - `Ended` with `afterGrace: deleteNamespace`: the namespace is deleted (persistent
///   volumes stay, `Retain`); nothing is applied again unless the session comes back.
pub(super) async fn outside_window<K: Owned>(
    obj: &K,
    ctx: &Context,
    plan: &LifecyclePlan,
    now: Timestamp,
) -> Result<Option<Action>, Error> {
    let namespace = obj.namespace_name(&ctx.config);
    let (phase, message, action) = match plan.lifecycle {
        Lifecycle::Active => return Ok(None),
        Lifecycle::Ended if ctx.config.sessions.after_grace != AfterGrace::DeleteNamespace => {
            return Ok(None);
        }
        Lifecycle::Scheduled => {
            let opens = plan.opens.map_or_else(String::new, |o| o.to_string());
            let wake = plan.wake_after(now).map_or(RESYNC, |w| w.min(RESYNC));
            (
                Phase::Scheduled,
                format!("the session opens at {opens}; nothing is created before then"),
                Action::requeue(wake),
            )
        }
        Lifecycle::Ended => {
            if let Some(namespace) = &namespace {
                delete_namespace(obj, ctx, namespace).await?;
            }
            (
                Phase::Ended,
                format!(
                    "the session has ended; its namespace {} is deleted (afterGrace: deleteNamespace) and its persistent volumes are kept",
                    namespace.as_deref().unwrap_or_default()
                ),
                Action::await_change(),
            )
        }
    };
    let outcome = Outcome::OutsideWindow { phase, message };
    write_status_in(
        obj,
        ctx,
        namespace.as_deref(),
        &outcome,
        None,
        Some(plan.lifecycle),
        None,
    )
    .await?;
    lifecycle_event(obj, ctx, plan.lifecycle).await;
    Ok(Some(action))
}

/// Publishes an Event when a Session moves to `now` from the lifecycle its status records
/// (not for the first `Active`).
pub(super) async fn lifecycle_event<K: Owned>(obj: &K, ctx: &Context, now: Lifecycle) {
    let was = obj.status().and_then(|s| s.lifecycle);
    if was == Some(now) || (was.is_none() && now == Lifecycle::Active) {
        return;
    }
    let (reason, note) = match now {
        Lifecycle::Scheduled => ("SessionScheduled", "the session has not opened yet"),
        Lifecycle::Active => ("SessionOpened", "the session is open"),
        Lifecycle::Ended => (
            "SessionEnded",
            match ctx.config.sessions.after_grace {
                AfterGrace::RefusePods => "the session has ended; new pods are refused",
                AfterGrace::ReadOnly => "the session has ended; new pods get its data read-only",
                AfterGrace::DeleteNamespace => "the session has ended; its namespace is deleted",
            },
        ),
    };
    publish(ctx, obj, EventType::Normal, reason, note.to_owned()).await;
}

/// The Users of a session's members, from the cache, by username. A User is found by its
/// object name (the mapped username) and must carry exactly that username.
fn member_users(ctx: &Context, session: &Session) -> BTreeMap<String, UserSpec> {
    session
        .spec
        .members
        .iter()
        .filter_map(|member| {
            let name = object_name(member).ok()?;
            let user = ctx.users.get(&ObjectRef::new(&name))?;
            (user.spec.username == *member).then(|| (member.clone(), user.spec.clone()))
        })
        .collect()
}

/// Reconciles Sessions until `token` is cancelled. A User appearing or changing re-syncs
/// the sessions it is a member of (its private claim depends on it).
pub async fn run(ctx: Arc<Context>, token: CancellationToken) {
    let client = ctx.client.clone();
    run_controller::<Session>(ctx, token, move |controller| {
        let sessions = controller.store();
        controller.watches(
            Api::<User>::all(client),
            watcher::Config::default(),
            move |user: User| {
                sessions
                    .state()
                    .iter()
                    .filter(|s| s.spec.members.contains(&user.spec.username))
                    .map(|s| ObjectRef::from_obj(&**s))
                    .collect::<Vec<_>>()
            },
        )
    })
    .await;
}
