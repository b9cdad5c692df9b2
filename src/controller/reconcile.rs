//! The reconcile loop shared by `User` and `Session`: finalizer, namespace ownership,
//! server-side apply of the plan, removals, status and events; cleanup on delete; and the
//! per-object backoff of the error policy.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{
    ConfigMap, LimitRange, Namespace, PersistentVolume, PersistentVolumeClaim, ResourceQuota,
    Secret, ServiceAccount,
};
use k8s_openapi::api::rbac::v1::RoleBinding;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::core::ClusterResourceScope;
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use super::Error;
use super::apply::{apply_object, delete_object, stale_member_claims};
use super::live::Live;
use super::metrics::Metrics;
use super::session::{lifecycle_event, outside_window};
use super::status::{
    CONDITION_STORAGE_CURRENT, Outcome, next_status, should_mark_deploying, with_hooks,
    with_lifecycle,
};
use crate::hooks::{Call, Hooks, Refusal};
use homestead_core::config::Config;
use homestead_core::config::HookEvent;
use homestead_core::desired::{
    DesiredObjects, DesiredObjectsError, FIELD_MANAGER, FINALIZER, Kind, MANAGED_BY,
    NamespaceOwnership, ObjectKey, Owner, OwnerKind, SecretSources, VolumeHeal, apply_order,
    clone_sources, is_met, keep_existing_storage, namespace_ownership, references_owner,
    release_namespace_patch, unbound_claims, volumes_to_heal,
};
use homestead_core::hooks::{self, ANNOTATION_SKIP_HOOKS, ChangeHooks, Payload, PayloadStatus};
use homestead_core::lifecycle::{LifecycleError, LifecyclePlan};
use homestead_core::names::LABEL_MANAGED_BY;
use homestead_core::resources::{HookRecord, Lifecycle, Phase, ResourceStatus, User};

/// How often a healthy object is reconciled again even if nothing changed.
pub const RESYNC: Duration = Duration::from_secs(60 * 60);
/// Reconciles of one kind running at once.
pub const CONCURRENCY: u16 = 16;
/// How often a namespace homestead did not create is looked at again.
pub const FOREIGN_RECHECK: Duration = Duration::from_secs(10 * 60);

/// What the reconcilers share.
pub struct Context {
    /// API client.
    pub client: Client,
    /// The configuration.
    pub config: Arc<Config>,
    /// The cached Users (a session's member claims need their uid and storage).
    pub users: Store<User>,
    /// Publishes events about Users and Sessions.
    pub recorder: Recorder,
    /// Controller metrics.
    pub metrics: Metrics,
    /// The site's hooks ([`Hooks::default`]: none).
    pub hooks: Hooks,
    /// What exists of the objects made for Users, and for Sessions.
    live: [Live; 3],
    failures: Mutex<HashMap<String, u32>>,
    /// The `status.hooks` this controller last wrote, by object uid (the caches can be
    /// behind its own writes; see `homestead_core::hooks::latest`).
    hook_records: Mutex<HashMap<String, HookRecord>>,
}

impl Context {
    /// A context for `client`.
    pub fn new(
        client: Client,
        config: Arc<Config>,
        users: Store<User>,
        recorder: Recorder,
        metrics: Metrics,
    ) -> Self {
        Self {
            client,
            config,
            users,
            recorder,
            metrics,
            hooks: Hooks::default(),
            live: [
                Live::new(WATCHED_KINDS),
                Live::new(WATCHED_KINDS),
                Live::new(WATCHED_KINDS),
            ],
            failures: Mutex::default(),
            hook_records: Mutex::default(),
        }
    }

    /// This context calling `hooks`.
    pub fn with_hooks(mut self, hooks: Hooks) -> Self {
        self.hooks = hooks;
        self
    }

    /// What exists of the objects homestead made for owners of `kind`.
    pub fn live(&self, kind: OwnerKind) -> &Live {
        match kind {
            OwnerKind::User => &self.live[0],
            OwnerKind::Session => &self.live[1],
            OwnerKind::Project => &self.live[2],
        }
    }

    fn failures(&self) -> std::sync::MutexGuard<'_, HashMap<String, u32>> {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn hook_records(&self) -> std::sync::MutexGuard<'_, HashMap<String, HookRecord>> {
        self.hook_records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `obj`'s status with the newest hook record: the stored one or the one last written.
    fn hook_status<K: Owned>(&self, obj: &K) -> Option<ResourceStatus> {
        let uid = obj.uid().unwrap_or_default();
        let written = self.hook_records().get(&uid).cloned();
        let stored = obj.status();
        let hooks = hooks::latest(stored.and_then(|s| s.hooks.as_ref()), written.as_ref());
        if hooks.is_none() {
            return stored.cloned();
        }
        Some(ResourceStatus {
            hooks,
            ..stored.cloned().unwrap_or_default()
        })
    }

    /// Failures in a row of one object (for tests and diagnostics).
    pub fn failure_count(&self, kind: OwnerKind, name: &str) -> u32 {
        self.failures()
            .get(&failure_key(kind, name))
            .copied()
            .unwrap_or_default()
    }
}

fn failure_key(kind: OwnerKind, name: &str) -> String {
    format!("{}/{name}", kind.as_str())
}

/// A resource homestead reconciles into a namespace: `User` or `Session`.
pub trait Owned:
    Resource<DynamicType = (), Scope = ClusterResourceScope>
    + Clone
    + Debug
    + DeserializeOwned
    + Serialize
    + Send
    + Sync
    + 'static
{
    /// Which kind it is.
    const KIND: OwnerKind;
    /// Its status.
    fn status(&self) -> Option<&ResourceStatus>;
    /// What it should have.
    fn plan(
        &self,
        ctx: &Context,
        sources: &SecretSources,
    ) -> Result<DesiredObjects, DesiredObjectsError>;
    /// The namespace it manages, if one can be named.
    fn namespace_name(&self, config: &Config) -> Option<String>;
    /// Every namespace it manages (a Project's child namespaces too).
    fn namespace_names(&self, config: &Config) -> Vec<String> {
        self.namespace_name(config).into_iter().collect()
    }
    /// Status fields besides the common ones, as a reconcile of `plan` writes them (a
    /// Project's gid and member count), and as they are now; `Null` for neither.
    fn extra_status(
        &self,
        _plan: Option<&DesiredObjects>,
    ) -> (serde_json::Value, serde_json::Value) {
        (serde_json::Value::Null, serde_json::Value::Null)
    }
    /// True when it may take over an existing namespace homestead did not create for it,
    /// whose labels are `labels` (a Project with `spec.adopt`).
    fn may_adopt(&self, _labels: Option<&BTreeMap<String, String>>) -> bool {
        false
    }
    /// True when deleting it keeps its namespaces: homestead lets go of them instead.
    fn keeps_namespaces(&self) -> bool {
        false
    }
    /// What follows a plan applied in full (a Project's workloads on a hand-over or an
    /// unshare, see [`super::project::settle_workloads`]); nothing by default.
    fn settle(
        &self,
        _ctx: &Context,
    ) -> impl std::future::Future<Output = Result<(), Error>> + Send {
        std::future::ready(Ok(()))
    }
    /// Where it is in its life at `now` (Sessions); `None` for kinds that have none.
    fn lifecycle(
        &self,
        _config: &Config,
        _now: Timestamp,
    ) -> Option<Result<LifecyclePlan, LifecycleError>> {
        None
    }
}

fn owner_of<K: Owned>(obj: &K) -> Owner {
    Owner {
        kind: K::KIND,
        name: obj.name_any(),
        uid: obj.uid().unwrap_or_default(),
    }
}

/// Reconciles one object: adds the finalizer, applies or cleans up, records metrics and
/// resets the object's backoff on success.
pub async fn reconcile<K: Owned>(obj: Arc<K>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    ctx.metrics.in_flight.inc();
    let api: Api<K> = Api::all(ctx.client.clone());
    let name = obj.name_any();
    let result = finalizer(&api, FINALIZER, obj, |event| async {
        match event {
            FinalizerEvent::Apply(obj) => apply(obj, &ctx).await,
            FinalizerEvent::Cleanup(obj) => cleanup(obj, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)));
    ctx.metrics.in_flight.dec();
    ctx.metrics.reconciled(
        K::KIND.as_str(),
        result.is_ok(),
        started.elapsed().as_secs_f64(),
    );
    match &result {
        Ok(_) => {
            ctx.failures().remove(&failure_key(K::KIND, &name));
        }
        Err(e) => tracing::warn!(kind = K::KIND.as_str(), %name, error = %e, "reconcile failed"),
    }
    result
}

/// Per-object backoff: each failure in a row doubles the wait (a conflict retries
/// sooner, throttling later), up to five minutes. Other objects are not affected.
pub fn error_policy<K: Owned>(obj: Arc<K>, error: &Error, ctx: Arc<Context>) -> Action {
    let failures = {
        let mut map = ctx.failures();
        let n = map
            .entry(failure_key(K::KIND, &obj.name_any()))
            .or_default();
        *n = n.saturating_add(1);
        *n
    };
    Action::requeue(backoff(failures, error))
}

/// The wait after `failures` failures in a row ending with `error`.
pub fn backoff(failures: u32, error: &Error) -> Duration {
    if error.is_hook_rejection() {
        return hooks::retry_after(failures);
    }
    let base = match error.status_code() {
        Some(409) => Duration::from_millis(500),
        Some(429) => Duration::from_secs(5),
        _ => Duration::from_secs(2),
    };
    let factor = 1u32 << failures.saturating_sub(1).min(10);
    (base * factor).min(Duration::from_secs(300))
}

async fn fetch_sources(ctx: &Context, kind: OwnerKind) -> Result<SecretSources, Error> {
    let mut sources = BTreeMap::new();
    for (from, _) in clone_sources(&ctx.config, kind) {
        let key = (from.namespace.clone(), from.name.clone());
        if sources.contains_key(&key) {
            continue;
        }
        let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &from.namespace);
        if let Some(secret) = api.get_opt(&from.name).await? {
            sources.insert(key, secret);
        }
    }
    Ok(sources)
}

async fn apply<K: Owned>(obj: Arc<K>, ctx: &Context) -> Result<Action, Error> {
    let owner = owner_of(&*obj);
    let live = ctx.live(K::KIND);
    // Compare with what exists only once every kind has listed.
    live.ready().await;
    // A Session outside its open window: nothing is applied (see session::outside_window).
    let now = Timestamp::now();
    let lifecycle = match obj.lifecycle(&ctx.config, now).transpose() {
        Ok(lifecycle) => lifecycle,
        Err(e) => {
            let outcome = Outcome::Failed {
                reason: "InvalidSpec",
                message: e.to_string(),
            };
            if write_status(&*obj, ctx, None, &outcome, None).await? {
                publish(ctx, &*obj, EventType::Warning, "InvalidSpec", e.to_string()).await;
            }
            return Ok(Action::await_change());
        }
    };
    if let Some(plan) = &lifecycle
        && let Some(action) = outside_window(&*obj, ctx, plan, now).await?
    {
        return Ok(action);
    }
    let sources = fetch_sources(ctx, K::KIND).await?;
    let mut plan = match obj.plan(ctx, &sources) {
        Ok(plan) => plan,
        Err(e) => {
            let outcome = Outcome::Failed {
                reason: "InvalidSpec",
                message: e.to_string(),
            };
            if write_status(&*obj, ctx, None, &outcome, None).await? {
                publish(ctx, &*obj, EventType::Warning, "InvalidSpec", e.to_string()).await;
            }
            return Ok(Action::await_change());
        }
    };
    // A namespace homestead made for this owner is in the live copies; any other one is
    // looked up (it may exist without being homestead's). Every planned namespace is
    // checked (a Project's child namespaces too).
    let planned: Vec<String> = plan
        .objects
        .iter()
        .filter(|o| o.kind() == Kind::Namespace)
        .map(|o| o.key().name)
        .collect();
    for name in &planned {
        let namespace_key = ObjectKey {
            kind: Kind::Namespace,
            namespace: None,
            name: name.clone(),
        };
        let existing = match live.get_as::<Namespace>(&namespace_key) {
            Some(ns) => Some(ns),
            None => {
                Api::<Namespace>::all(ctx.client.clone())
                    .get_opt(name)
                    .await?
            }
        };
        let Some(existing) = existing else {
            continue;
        };
        let labels = existing.metadata.labels.as_ref();
        // A Project with `adopt` takes over a namespace no homestead object owns.
        if obj.may_adopt(labels) {
            continue;
        }
        if owner.created(labels) && existing.metadata.deletion_timestamp.is_some() {
            // A namespace being deleted cannot take new objects; try again once it is gone.
            return Ok(Action::requeue(Duration::from_secs(5)));
        }
        let evidence = children_name_owner(live, name, &owner);
        if let NamespaceOwnership::NotOwned(why) =
            namespace_ownership(&owner, &existing.metadata, evidence)
        {
            let note = format!(
                "namespace {name} exists and was not created by homestead for this {}: {why}; it is not adopted and nothing in it is touched",
                K::KIND.as_str()
            );
            let outcome = Outcome::NamespaceNotOwned { why };
            if write_status(&*obj, ctx, Some(name), &outcome, None).await? {
                publish(ctx, &*obj, EventType::Warning, "NamespaceNotOwned", note).await;
            }
            return Ok(Action::requeue(FOREIGN_RECHECK));
        }
    }
    let storage = keep_existing_storage(&mut plan, |key| live.get(key));
    let heals = volumes_to_heal(&plan, |key| live.get(key));
    let unbound = unbound_claims(&plan, |key| live.get(key), &heals);
    let generation = obj.meta().generation;
    // Blocking hooks are asked before anything is applied (once per change: see
    // homestead_core::hooks); their agreement is recorded first, so a failed apply
    // retried does not ask again.
    let change = hooks::plan_change(
        &ctx.config,
        K::KIND,
        ctx.hook_status(&*obj).as_ref(),
        generation,
    );
    let mut record = None;
    if let Some(change) = &change
        && !change.blocking.is_empty()
    {
        let phase = obj.status().and_then(|s| s.phase).unwrap_or_default();
        let call = hook_call(
            &*obj,
            change.event,
            change.generation,
            phase,
            Some(&plan.namespace),
        )?;
        if let Err(refusal) = ctx.hooks.ask(&change.blocking, &call).await {
            let pending = change.pending();
            return Err(refused(&*obj, ctx, Some(&plan.namespace), refusal, pending).await);
        }
    }
    if let Some(change) = &change
        && change.agreement_unrecorded()
    {
        record = Some(change.agreed());
    }
    if record.is_some() || should_mark_deploying(obj.status(), generation) {
        write_status_in(
            &*obj,
            ctx,
            Some(&plan.namespace),
            &Outcome::Deploying,
            Some(&plan),
            None,
            record.clone(),
        )
        .await?;
    }

    let mut failures = Vec::new();
    // Claims before volumes: a volume made anew is bound to the uid its claim's apply
    // returns (see `claim_ref_for`).
    let mut claim_uids: HashMap<(Option<String>, String), String> = HashMap::new();
    for object in apply_order(&plan.objects) {
        let key = object.key();
        let kind = key.kind.as_str();
        let intent = match object.intent() {
            Ok(intent) => intent,
            Err(e) => {
                failures.push((key.to_string(), Error::Serialize(key.to_string(), e)));
                continue;
            }
        };
        let existing = live.get(&key);
        if existing.as_ref().is_some_and(|e| is_met(&intent, e)) {
            ctx.metrics.applied(kind, "unchanged");
            continue;
        }
        let claim_uid = planned_claim(object).and_then(|claim| claim_uids.get(&claim));
        match apply_object(
            &ctx.client,
            &key,
            intent,
            existing.as_ref(),
            claim_uid.map(String::as_str),
        )
        .await
        {
            Err(e) => {
                ctx.metrics.applied(kind, "failed");
                tracing::warn!(object = %key, error = %e, "apply failed");
                let fatal = key.kind == Kind::Namespace;
                failures.push((key.to_string(), e));
                if fatal {
                    break;
                }
            }
            Ok(uid) => {
                ctx.metrics.applied(kind, "applied");
                if let (Kind::PersistentVolumeClaim, Some(uid)) = (key.kind, uid) {
                    claim_uids.insert((key.namespace.clone(), key.name.clone()), uid);
                }
            }
        }
    }
    if failures.is_empty() {
        for key in &plan.absent {
            if live.get(key).is_none() {
                continue;
            }
            if let Err(e) = delete_object(&ctx.client, key).await {
                failures.push((key.to_string(), e));
            }
        }
        // A Released volume whose claim was deleted and is planned again keeps the deleted
        // claim's uid, which an apply cannot clear: free it so the new claim binds.
        for heal in &heals {
            match heal_volume(&ctx.client, heal).await {
                Ok(()) => {
                    tracing::info!(volume = %heal.volume.name, claim = %heal.claim, "freed a Released volume for its claim made again; its data is untouched");
                }
                Err(e) => failures.push((heal.volume.to_string(), e)),
            }
        }
        // A former member's claim goes from every namespace of the owner (a Project's
        // child namespaces too); its volume is kept.
        if let Some(wanted) = &plan.member_claims {
            for namespace in &planned {
                for key in stale_member_claims(live, namespace, &owner.name, wanted) {
                    match delete_object(&ctx.client, &key).await {
                        Ok(_) => {
                            tracing::info!(%namespace, claim = %key.name, "removed the claim of a former member; its volume is kept");
                        }
                        Err(e) => failures.push((key.to_string(), e)),
                    }
                }
            }
        }
        if failures.is_empty()
            && let Err(e) = obj.settle(ctx).await
        {
            failures.push((
                format!("workloads of {} {}", K::KIND.as_str(), owner.name),
                e,
            ));
        }
    }

    if let Some((first, error)) = failures.into_iter().next() {
        let message = format!("{first}: {error}");
        let outcome = Outcome::Failed {
            reason: "ApplyFailed",
            message: message.clone(),
        };
        if write_status_in(
            &*obj,
            ctx,
            Some(&plan.namespace),
            &outcome,
            Some(&plan),
            None,
            record,
        )
        .await?
        {
            publish(ctx, &*obj, EventType::Warning, "ApplyFailed", message).await;
        }
        return Err(error);
    }
    let was = obj.status().and_then(|s| s.phase);
    let storage_said_before = obj.status().and_then(|s| {
        s.conditions
            .iter()
            .find(|c| c.type_ == CONDITION_STORAGE_CURRENT)
            .map(|c| c.message.clone())
    });
    let outcome = Outcome::Deployed {
        problems: plan.problems.clone(),
        storage: storage.clone(),
        unbound,
    };
    let lifecycle_now = lifecycle.as_ref().map(|p| p.lifecycle);
    write_status_in(
        &*obj,
        ctx,
        Some(&plan.namespace),
        &outcome,
        Some(&plan),
        lifecycle_now,
        change.as_ref().map(ChangeHooks::notified),
    )
    .await?;
    // Notifying hooks hear of the change once it is applied (and recorded).
    if let Some(change) = &change
        && !change.notifying.is_empty()
    {
        let phase = if lifecycle_now == Some(Lifecycle::Ended) {
            Phase::Ended
        } else {
            Phase::Deployed
        };
        let call = hook_call(
            &*obj,
            change.event,
            change.generation,
            phase,
            Some(&plan.namespace),
        )?;
        ctx.hooks
            .tell(&change.notifying, &call, &obj.object_ref(&()))
            .await;
    }
    if let Some(now) = lifecycle_now {
        lifecycle_event(&*obj, ctx, now).await;
    }
    if !matches!(was, Some(Phase::Deployed | Phase::Ended)) {
        publish(
            ctx,
            &*obj,
            EventType::Normal,
            "Deployed",
            format!("namespace {} and its objects are in place", plan.namespace),
        )
        .await;
    }
    if !storage.is_empty() && storage_said_before.as_deref() != Some(storage.join("; ").as_str()) {
        publish(
            ctx,
            &*obj,
            EventType::Warning,
            "StorageDiffers",
            storage.join("; "),
        )
        .await;
    }
    // A Session wakes up again just after its next boundary (when it ends).
    let wake = lifecycle
        .and_then(|p| p.wake_after(now))
        .map_or(RESYNC, |w| w.min(RESYNC));
    Ok(Action::requeue(wake))
}

/// Deletion: blocking hooks first (the finalizer stays until they agree, or an admin's
/// `homestead.dev/skip-hooks` names them), then the clean-up, then the notifying hooks.
async fn cleanup<K: Owned>(obj: Arc<K>, ctx: &Context) -> Result<Action, Error> {
    let namespace = obj.namespace_name(&ctx.config);
    let skip = hooks::skip_annotation(obj.meta().annotations.as_ref());
    let change = hooks::plan_delete(
        &ctx.config,
        K::KIND,
        ctx.hook_status(&*obj).as_ref(),
        obj.meta().generation,
        skip,
    );
    let mut record = None;
    if let Some(change) = &change {
        if !change.blocking.is_empty() {
            let call = hook_call(
                &*obj,
                HookEvent::Delete,
                change.generation,
                Phase::Deleting,
                namespace.as_deref(),
            )?;
            if let Err(refusal) = ctx.hooks.ask(&change.blocking, &call).await {
                let pending = change.pending();
                return Err(refused(&*obj, ctx, namespace.as_deref(), refusal, pending).await);
            }
        }
        if change.agreement_unrecorded() {
            record = Some(change.agreed());
            if !change.skipped.is_empty() {
                publish(
                    ctx,
                    &*obj,
                    EventType::Warning,
                    "HooksSkipped",
                    format!(
                        "deleted without asking blocking hook(s) {}: annotation {ANNOTATION_SKIP_HOOKS} names them",
                        change.skipped.join(", ")
                    ),
                )
                .await;
            }
        }
    }
    write_status_in(
        &*obj,
        ctx,
        namespace.as_deref(),
        &Outcome::Deleting,
        None,
        None,
        record,
    )
    .await?;
    let action = clean_up(&*obj, ctx).await?;
    // The object goes once the finalizer is removed: nothing to remember for it.
    ctx.hook_records().remove(&obj.uid().unwrap_or_default());
    if let Some(change) = &change
        && !change.notifying.is_empty()
    {
        let call = hook_call(
            &*obj,
            HookEvent::Delete,
            change.generation,
            Phase::Deleting,
            namespace.as_deref(),
        )?;
        ctx.hooks
            .tell(&change.notifying, &call, &obj.object_ref(&()))
            .await;
    }
    Ok(action)
}

/// The JSON payload and key material of one hook call about `obj`.
fn hook_call<K: Owned>(
    obj: &K,
    event: HookEvent,
    generation: i64,
    phase: Phase,
    namespace: Option<&str>,
) -> Result<Call, Error> {
    let name = obj.name_any();
    let what = || format!("{} {name}", K::KIND.as_str());
    let value = serde_json::to_value(obj).map_err(|e| Error::Serialize(what(), e))?;
    let spec = value.get("spec").cloned().unwrap_or_default();
    let payload = Payload {
        event_type: event,
        kind: K::KIND.as_str(),
        name: &name,
        spec: &spec,
        status: PayloadStatus { phase },
        namespace,
    };
    let body = payload.to_vec().map_err(|e| Error::Serialize(what(), e))?;
    Ok(Call {
        event,
        uid: obj.uid().unwrap_or_default(),
        generation,
        body: body.into(),
    })
}

/// Records a blocking hook's refusal (phase `Failed`, condition `HookRejected`, the change
/// `pending` in `status.hooks`, an Event when the status changed) and returns the error
/// that retries the object with backoff.
async fn refused<K: Owned>(
    obj: &K,
    ctx: &Context,
    namespace: Option<&str>,
    refusal: Refusal,
    pending: HookRecord,
) -> Error {
    let outcome = Outcome::HookRejected {
        reason: refusal.reason,
        message: refusal.message.clone(),
    };
    match write_status_in(obj, ctx, namespace, &outcome, None, None, Some(pending)).await {
        Ok(true) => {
            publish(
                ctx,
                obj,
                EventType::Warning,
                "HookRejected",
                refusal.message.clone(),
            )
            .await;
        }
        Ok(false) => {}
        Err(e) => return e,
    }
    Error::HookRejected {
        hook: refusal.hook,
        message: refusal.message,
    }
}

async fn clean_up<K: Owned>(obj: &K, ctx: &Context) -> Result<Action, Error> {
    let owner = owner_of(obj);
    let all = obj.namespace_names(&ctx.config);
    if obj.keeps_namespaces() {
        // Kept: first no owner reference through which the garbage collector would delete
        // the namespace once the owner is gone, then homestead's labels and bindings.
        let namespaces: Api<Namespace> = Api::all(ctx.client.clone());
        for namespace in &all {
            if let Some(ns) = namespaces.get_opt(namespace).await? {
                release_namespace(&namespaces, &owner, &ns).await?;
            }
        }
        super::project::let_go(ctx, &all).await?;
        publish(
            ctx,
            obj,
            EventType::Normal,
            "NamespaceKept",
            format!(
                "let go of namespace(s) {}: homestead's labels and RoleBindings removed, nothing in them deleted",
                all.join(", ")
            ),
        )
        .await;
        return Ok(Action::await_change());
    }
    let namespaces: Api<Namespace> = Api::all(ctx.client.clone());
    for namespace in all {
        if ctx.config.controller.delete_namespaces {
            delete_namespace(obj, ctx, &namespace).await?;
            continue;
        }
        // Kept: the owner reference would let the garbage collector delete the namespace
        // once the owner is gone, so it is removed (from a namespace homestead owns).
        let Some(ns) = namespaces.get_opt(&namespace).await? else {
            continue;
        };
        if owns_namespace(obj, ctx, &ns).await {
            release_namespace(&namespaces, &owner, &ns).await?;
            tracing::info!(%namespace, "keeping the namespace (deleteNamespaces is off)");
        }
    }
    Ok(Action::await_change())
}

/// True when homestead created namespace `ns` for `obj` (its labels and an owner reference
/// with `obj`'s uid, or objects homestead made in it naming that uid); logged when not.
async fn owns_namespace<K: Owned>(obj: &K, ctx: &Context, ns: &Namespace) -> bool {
    let owner = owner_of(obj);
    let namespace = ns.name_any();
    let live = ctx.live(K::KIND);
    live.ready().await;
    let evidence = children_name_owner(live, &namespace, &owner);
    match namespace_ownership(&owner, &ns.metadata, evidence) {
        NamespaceOwnership::NotOwned(why) => {
            tracing::info!(%namespace, %why, "not touching a namespace homestead did not create");
            false
        }
        _ => true,
    }
}

/// Deletes `namespace` if homestead created it for `obj` and it is not already going, and
/// says so in an Event; persistent volumes stay (`Retain`). Returns true when it asked.
pub(super) async fn delete_namespace<K: Owned>(
    obj: &K,
    ctx: &Context,
    namespace: &str,
) -> Result<bool, Error> {
    let namespaces: Api<Namespace> = Api::all(ctx.client.clone());
    let Some(ns) = namespaces.get_opt(namespace).await? else {
        return Ok(false);
    };
    if !owns_namespace(obj, ctx, &ns).await || ns.metadata.deletion_timestamp.is_some() {
        return Ok(false);
    }
    match namespaces.delete(namespace, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 404 => {}
        Err(e) => return Err(e.into()),
    }
    publish(
        ctx,
        obj,
        EventType::Normal,
        "NamespaceDeleted",
        format!("deleted namespace {namespace}; persistent volumes are kept"),
    )
    .await;
    Ok(true)
}

/// Removes `owner`'s owner reference from namespace `ns`, so the garbage collector does
/// not delete it once the owner is gone (the namespace is kept).
async fn release_namespace(
    namespaces: &Api<Namespace>,
    owner: &Owner,
    ns: &Namespace,
) -> Result<(), Error> {
    let Some(patch) = release_namespace_patch(owner, &ns.metadata) else {
        return Ok(());
    };
    let name = ns.name_any();
    let patch: json_patch::Patch = serde_json::from_value(patch)
        .map_err(|e| Error::Serialize(format!("Namespace {name}"), e))?;
    namespaces
        .patch(&name, &PatchParams::default(), &Patch::Json::<()>(patch))
        .await?;
    Ok(())
}

/// True when an object homestead made in `namespace` (in the live copies) names `owner`'s
/// uid in its owner references: evidence that homestead made the namespace for it.
fn children_name_owner(live: &Live, namespace: &str, owner: &Owner) -> bool {
    [
        Kind::ServiceAccount,
        Kind::RoleBinding,
        Kind::ConfigMap,
        Kind::Secret,
        Kind::ResourceQuota,
        Kind::LimitRange,
        Kind::PersistentVolumeClaim,
    ]
    .into_iter()
    .flat_map(|kind| live.keys(kind, namespace))
    .any(|key| live.get(&key).is_some_and(|v| references_owner(owner, &v)))
}

/// The (namespace, name) of the claim a planned volume is for.
fn planned_claim(object: &homestead_core::desired::Object) -> Option<(Option<String>, String)> {
    let homestead_core::desired::Object::PersistentVolume(volume) = object else {
        return None;
    };
    let claim = volume.spec.as_ref()?.claim_ref.as_ref()?;
    Some((claim.namespace.clone(), claim.name.clone()?))
}

/// Sends the JSON Patch of `heal` to its volume.
async fn heal_volume(client: &Client, heal: &VolumeHeal) -> Result<(), Error> {
    let patch: json_patch::Patch = serde_json::from_value(heal.patch.clone())
        .map_err(|e| Error::Serialize(heal.volume.to_string(), e))?;
    Api::<PersistentVolume>::all(client.clone())
        .patch(
            &heal.volume.name,
            &PatchParams::default(),
            &Patch::Json::<()>(patch),
        )
        .await?;
    Ok(())
}

/// Writes the status for `outcome` unless it is already there. Returns true on a write.
/// `plan`, when there is one, gives the kind's extra status fields ([`Owned::extra_status`]).
async fn write_status<K: Owned>(
    obj: &K,
    ctx: &Context,
    namespace: Option<&str>,
    outcome: &Outcome,
    plan: Option<&DesiredObjects>,
) -> Result<bool, Error> {
    write_status_in(obj, ctx, namespace, outcome, plan, None, None).await
}

/// [`write_status`], recording a Session's `lifecycle` and what the hooks were asked or
/// told too (`None` keeps the last one).
pub(super) async fn write_status_in<K: Owned>(
    obj: &K,
    ctx: &Context,
    namespace: Option<&str>,
    outcome: &Outcome,
    plan: Option<&DesiredObjects>,
    lifecycle: Option<Lifecycle>,
    hooks: Option<HookRecord>,
) -> Result<bool, Error> {
    let now = Time(Timestamp::now());
    let current = obj.status();
    let mut next = next_status(current, obj.meta().generation, namespace, outcome, &now);
    // The newest hook record known, not a stale cached one: the status is written whole.
    if let Some(known) = ctx.hook_status(obj) {
        next.hooks = known.hooks;
    }
    if let Some(lifecycle) = lifecycle {
        next = with_lifecycle(next, lifecycle);
    }
    next = with_hooks(next, hooks);
    let (extra, current_extra) = obj.extra_status(plan);
    if current == Some(&next) && extra == current_extra {
        return Ok(false);
    }
    let mut status = serde_json::to_value(&next)
        .map_err(|e| Error::Serialize(format!("status of {}", obj.name_any()), e))?;
    if let (Some(status), serde_json::Value::Object(extra)) = (status.as_object_mut(), extra) {
        status.extend(extra);
    }
    let api: Api<K> = Api::all(ctx.client.clone());
    let body = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(
        &obj.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(body),
    )
    .await?;
    if let Some(record) = next.hooks {
        ctx.hook_records()
            .insert(obj.uid().unwrap_or_default(), record);
    }
    Ok(true)
}

/// The longest note the API server accepts on an Event (`events.k8s.io/v1`).
const EVENT_NOTE_MAX: usize = 1024;

pub(super) async fn publish<K: Owned>(
    ctx: &Context,
    obj: &K,
    type_: EventType,
    reason: &str,
    note: String,
) {
    let event = Event {
        type_,
        reason: reason.to_owned(),
        note: Some(truncate_note(note)),
        action: "Reconcile".to_owned(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &obj.object_ref(&())).await {
        tracing::warn!(error = %e, reason, "could not publish an event");
    }
}

/// `note` cut to [`EVENT_NOTE_MAX`] bytes at a character boundary, ending in `…` when
/// cut, so a long error (a webhook's denial of several fields) still makes an Event.
pub(crate) fn truncate_note(mut note: String) -> String {
    if note.len() <= EVENT_NOTE_MAX {
        return note;
    }
    let mut end = EVENT_NOTE_MAX - '…'.len_utf8();
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    note.truncate(end);
    note.push('…');
    note
}

/// Label selector of everything homestead made for owners of `kind`.
fn owned_selector(kind: OwnerKind) -> String {
    format!("{LABEL_MANAGED_BY}={MANAGED_BY},{}", kind.label())
}

/// How many kinds each controller watches into its live copies (see [`run_controller`]).
pub const WATCHED_KINDS: usize = 9;

/// Runs the controller for `K` until `token` is cancelled: watches `K`, every kind it owns
/// (drift is repaired), its namespaces and volumes (by label), and the sources of cloned
/// Secrets (a change re-syncs every copy). The watches of what it made also keep its live
/// copies ([`Context::live`]). `extra` adds kind-specific watches.
pub async fn run_controller<K: Owned>(
    ctx: Arc<Context>,
    token: CancellationToken,
    extra: impl FnOnce(Controller<K>) -> Controller<K>,
) {
    let client = ctx.client.clone();
    let live = ctx.live(K::KIND).clone();
    let owned = watcher::Config::default().labels(&owned_selector(K::KIND));
    let controller = Controller::new(Api::<K>::all(client.clone()), watcher::Config::default())
        .with_config(
            ControllerConfig::default()
                .concurrency(CONCURRENCY)
                .debounce(Duration::from_millis(500)),
        );
    let store = controller.store();
    let by_label = |labels: &BTreeMap<String, String>| {
        labels
            .get(K::KIND.label())
            .map(|name| ObjectRef::<K>::new(name))
    };
    // WATCHED_KINDS streams feed `live`.
    let mut controller = controller
        .owns_stream(live.watch(
            Kind::ServiceAccount,
            Api::<ServiceAccount>::all(client.clone()),
            owned.clone(),
        ))
        .owns_stream(live.watch(
            Kind::RoleBinding,
            Api::<RoleBinding>::all(client.clone()),
            owned.clone(),
        ))
        .owns_stream(live.watch(
            Kind::ConfigMap,
            Api::<ConfigMap>::all(client.clone()),
            owned.clone(),
        ))
        .owns_stream(live.watch(
            Kind::Secret,
            Api::<Secret>::all(client.clone()),
            owned.clone(),
        ))
        .owns_stream(live.watch(
            Kind::ResourceQuota,
            Api::<ResourceQuota>::all(client.clone()),
            owned.clone(),
        ))
        .owns_stream(live.watch(
            Kind::LimitRange,
            Api::<LimitRange>::all(client.clone()),
            owned.clone(),
        ))
        .owns_stream(live.watch(
            Kind::PersistentVolumeClaim,
            Api::<PersistentVolumeClaim>::all(client.clone()),
            owned.clone(),
        ))
        .watches_stream(
            live.watch(
                Kind::Namespace,
                Api::<Namespace>::all(client.clone()),
                owned.clone(),
            ),
            move |ns: Namespace| ns.metadata.labels.as_ref().and_then(by_label),
        )
        .watches_stream(
            live.watch(
                Kind::PersistentVolume,
                Api::<PersistentVolume>::all(client.clone()),
                owned.clone(),
            ),
            move |pv: PersistentVolume| pv.metadata.labels.as_ref().and_then(by_label),
        );
    for (from, _) in clone_sources(&ctx.config, K::KIND) {
        let store = store.clone();
        controller = controller.watches(
            Api::<Secret>::namespaced(client.clone(), &from.namespace),
            watcher::Config::default().fields(&format!("metadata.name={}", from.name)),
            move |_: Secret| {
                store
                    .state()
                    .iter()
                    .map(|o| ObjectRef::from_obj(&**o))
                    .collect::<Vec<_>>()
            },
        );
    }
    extra(controller)
        .graceful_shutdown_on(token.cancelled_owned())
        .run(reconcile::<K>, error_policy::<K>, ctx)
        .for_each(|result| async move {
            match result {
                Ok((object, _)) => {
                    tracing::debug!(kind = K::KIND.as_str(), name = %object.name, "reconciled")
                }
                Err(e) => tracing::debug!(kind = K::KIND.as_str(), error = %e, "controller"),
            }
        })
        .await;
}

#[cfg(test)]
mod tests {
    use super::{EVENT_NOTE_MAX, truncate_note};

    #[test]
    fn event_notes_fit_the_api_server_limit() {
        for (note, want_cut) in [
            (String::new(), false),
            ("a".repeat(EVENT_NOTE_MAX), false),
            ("a".repeat(EVENT_NOTE_MAX + 1), true),
            // A multi-byte character across the limit is not split.
            (
                format!("{}é{}", "a".repeat(EVENT_NOTE_MAX - 3), "b".repeat(50)),
                true,
            ),
        ] {
            let cut = truncate_note(note.clone());
            assert!(cut.len() <= EVENT_NOTE_MAX, "{} bytes", cut.len());
            assert_eq!(cut.ends_with('…'), want_cut, "{note:?}");
            assert!(note.starts_with(cut.trim_end_matches('…')));
        }
    }
}
