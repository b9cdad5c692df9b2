//! Site hooks, the I/O half: the HTTP calls ([`client`]), the credentials read from their
//! Secret at each call, the metrics ([`metrics`]), and the background delivery of
//! notifications. What to call, with what, and what an answer means is decided by the
//! core (`homestead_core::hooks`); the reconcilers (`src/controller/reconcile.rs`) ask
//! blocking hooks before a change and hand notifications to [`Hooks::tell`] after it.
//!
//! **Isolation.** A blocking call is bounded by its hook's timeout and runs inside the one
//! reconcile it is about. Each notifying hook has its own bounded queue and its own
//! delivery tasks (at most [`NOTIFY_CONCURRENCY`] calls at once), so a slow or failing
//! hook delays only its own notifications; a full queue drops the notification (an Event
//! and `homestead_hook_notifications_dropped_total` say so) rather than wait.

pub mod client;
pub mod metrics;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use k8s_openapi::api::core::v1::{ObjectReference, Secret};
use kube::Client;
use kube::api::Api;
use kube::runtime::events::{Event, EventType, Recorder};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

pub use client::{Endpoint, EndpointError};
pub use metrics::HookMetrics;

use homestead_core::config::{Config, HookEvent};
use homestead_core::hooks::{
    HookAnswer, Verdict, authorization, idempotency_key, notify_retry_after,
};

/// Notifications waiting for one hook; more are dropped (and said so).
pub const NOTIFY_QUEUE: usize = 1024;
/// Calls to one notifying hook in flight at once.
pub const NOTIFY_CONCURRENCY: usize = 4;

/// One change to ask or tell hooks about.
#[derive(Clone, Debug)]
pub struct Call {
    /// `CREATE`, `UPDATE` or `DELETE`.
    pub event: HookEvent,
    /// The object's uid.
    pub uid: String,
    /// The generation the change is about.
    pub generation: i64,
    /// The JSON payload.
    pub body: Bytes,
}

impl Call {
    /// The idempotency key of this call to `hook`.
    pub fn key(&self, hook: &str) -> String {
        idempotency_key(&self.uid, self.generation, self.event, hook)
    }
}

/// A blocking hook that did not agree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The hook.
    pub hook: String,
    /// `Refused`, `TimedOut` or `Unreachable`.
    pub reason: &'static str,
    /// The hook's name and the first 1 KB of its answer.
    pub message: String,
}

/// What calls share: the client that reads credentials, the event recorder, the metrics.
struct Shared {
    client: Option<Client>,
    recorder: Option<Recorder>,
    metrics: HookMetrics,
}

impl Shared {
    /// The `Authorization` value of `endpoint`'s credentials Secret, read now.
    async fn authorization(&self, endpoint: &Endpoint) -> Result<Option<String>, String> {
        let Some(secret) = &endpoint.config.credentials_secret else {
            return Ok(None);
        };
        let Some(client) = &self.client else {
            return Err("no Kubernetes client to read credentialsSecret".into());
        };
        let what = format!("credentials Secret {}/{}", secret.namespace, secret.name);
        let found = Api::<Secret>::namespaced(client.clone(), &secret.namespace)
            .get_opt(&secret.name)
            .await
            .map_err(|e| format!("reading {what}: {e}"))?
            .ok_or_else(|| format!("{what} not found"))?;
        let data = found.data.unwrap_or_default();
        authorization(|key| data.get(key).map(|b| b.0.clone()))
            .map(Some)
            .map_err(|e| format!("{what} {e}"))
    }

    /// One call to `endpoint`, counted and timed.
    async fn call(&self, endpoint: &Endpoint, call: &Call) -> HookAnswer {
        let started = Instant::now();
        let answer = match self.authorization(endpoint).await {
            Ok(auth) => {
                endpoint
                    .call(
                        call.body.clone(),
                        &call.key(endpoint.name()),
                        auth.as_deref(),
                    )
                    .await
            }
            Err(why) => HookAnswer::Unreachable(why),
        };
        self.metrics.called(
            endpoint.name(),
            call.event.as_str(),
            answer.result(),
            started.elapsed().as_secs_f64(),
        );
        answer
    }

    async fn publish(&self, object: &ObjectReference, reason: &str, note: String) {
        let Some(recorder) = &self.recorder else {
            return;
        };
        let event = Event {
            type_: EventType::Warning,
            reason: reason.to_owned(),
            note: Some(crate::controller::reconcile::truncate_note(note)),
            action: "Hook".to_owned(),
            secondary: None,
        };
        if let Err(e) = recorder.publish(&event, object).await {
            tracing::warn!(error = %e, reason, "could not publish an event");
        }
    }
}

/// A notification waiting for delivery.
struct Notification {
    call: Call,
    object: ObjectReference,
}

/// The configured hooks, ready to be called; cheap to clone. [`Hooks::default`] has none.
#[derive(Clone, Default)]
pub struct Hooks {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    endpoints: BTreeMap<String, Arc<Endpoint>>,
    queues: BTreeMap<String, mpsc::Sender<Notification>>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&String> = self.inner.iter().flat_map(|i| i.endpoints.keys()).collect();
        f.debug_struct("Hooks").field("hooks", &names).finish()
    }
}

impl Hooks {
    /// Sets up every hook of `config` (reading `caFile`s) and starts the delivery of
    /// notifications until `token` is cancelled. `client` reads credentials Secrets;
    /// `recorder` publishes the Events of failed notifications. Needs a tokio runtime when
    /// any hook is notifying.
    pub fn start(
        config: &Config,
        client: Option<Client>,
        recorder: Option<Recorder>,
        metrics: HookMetrics,
        token: CancellationToken,
    ) -> Result<Self, EndpointError> {
        if config.hooks.is_empty() {
            return Ok(Self::default());
        }
        let shared = Arc::new(Shared {
            client,
            recorder,
            metrics,
        });
        let mut endpoints = BTreeMap::new();
        let mut queues = BTreeMap::new();
        for hook in &config.hooks {
            let endpoint = Arc::new(Endpoint::new(hook)?);
            if !hook.blocking {
                let (tx, rx) = mpsc::channel(NOTIFY_QUEUE);
                tokio::spawn(deliver_all(
                    shared.clone(),
                    endpoint.clone(),
                    rx,
                    token.clone(),
                ));
                queues.insert(hook.name.clone(), tx);
            }
            endpoints.insert(hook.name.clone(), endpoint);
        }
        Ok(Self {
            inner: Some(Arc::new(Inner {
                endpoints,
                queues,
                shared,
            })),
        })
    }

    /// Asks the blocking hooks `names` (at once) about `call`; the first refusal, in the
    /// order of `names`, when any did not agree.
    pub async fn ask(&self, names: &[String], call: &Call) -> Result<(), Refusal> {
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        let asked = names.iter().filter_map(|name| {
            let endpoint = inner.endpoints.get(name)?;
            Some(async move { (name, inner.shared.call(endpoint, call).await) })
        });
        for (name, answer) in futures::future::join_all(asked).await {
            if let Verdict::Refused { reason, message } = answer.verdict(name) {
                tracing::info!(hook = %name, event = call.event.as_str(), %message, "a blocking hook did not agree");
                return Err(Refusal {
                    hook: name.clone(),
                    reason,
                    message,
                });
            }
        }
        Ok(())
    }

    /// Queues `call` for the notifying hooks `names`; never waits. A full queue drops the
    /// notification, with an Event on `object` and a metric.
    pub async fn tell(&self, names: &[String], call: &Call, object: &ObjectReference) {
        let Some(inner) = &self.inner else {
            return;
        };
        for name in names {
            let Some(queue) = inner.queues.get(name) else {
                continue;
            };
            let notification = Notification {
                call: call.clone(),
                object: object.clone(),
            };
            if queue.try_send(notification).is_err() {
                inner.shared.metrics.dropped(name);
                tracing::warn!(hook = %name, event = call.event.as_str(), "hook queue full: notification dropped");
                inner
                    .shared
                    .publish(
                        object,
                        "HookNotifyDropped",
                        format!(
                            "hook {name} was not told of this {}: its queue of {NOTIFY_QUEUE} notifications is full",
                            call.event.as_str()
                        ),
                    )
                    .await;
            }
        }
    }
}

/// Delivers the notifications of one hook, [`NOTIFY_CONCURRENCY`] at a time, until
/// `token` is cancelled or every sender is gone.
async fn deliver_all(
    shared: Arc<Shared>,
    endpoint: Arc<Endpoint>,
    mut queue: mpsc::Receiver<Notification>,
    token: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(NOTIFY_CONCURRENCY));
    loop {
        let notification = tokio::select! {
            _ = token.cancelled() => return,
            next = queue.recv() => match next {
                Some(n) => n,
                None => return,
            },
        };
        let permit = tokio::select! {
            _ = token.cancelled() => return,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let (shared, endpoint, token) = (shared.clone(), endpoint.clone(), token.clone());
        tokio::spawn(async move {
            let _permit = permit;
            deliver(&shared, &endpoint, &notification, &token).await;
        });
    }
}

/// Calls `endpoint` about one notification until it answers 2xx, waiting longer after
/// each failure; after [`homestead_core::hooks::NOTIFY_ATTEMPTS`] failed calls gives up
/// with an Event and a metric.
async fn deliver(
    shared: &Shared,
    endpoint: &Endpoint,
    notification: &Notification,
    token: &CancellationToken,
) {
    let name = endpoint.name();
    let event = notification.call.event.as_str();
    for attempt in 1.. {
        let answer = shared.call(endpoint, &notification.call).await;
        let Verdict::Refused { message, .. } = answer.verdict(name) else {
            return;
        };
        match notify_retry_after(attempt) {
            Some(wait) => {
                tracing::info!(hook = %name, event, attempt, %message, "notifying hook failed; trying again");
                tokio::select! {
                    _ = token.cancelled() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
            None => {
                tracing::warn!(hook = %name, event, attempt, %message, "notifying hook failed; giving up");
                shared.metrics.gave_up(name);
                shared
                    .publish(
                        &notification.object,
                        "HookNotifyFailed",
                        format!("hook {name} was not told of this {event} after {attempt} attempts: {message}"),
                    )
                    .await;
                return;
            }
        }
    }
}
