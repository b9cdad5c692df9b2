//! The caches every replica keeps (admission needs them whether or not this replica leads):
//! Users, Sessions, managed Namespaces (metadata only) and dataset claims. Whenever one
//! changes, the directory is rebuilt (debounced) and swapped in; it is marked synced once
//! every cache has listed in full. Admission never calls the API server.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim};
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::metrics::Metrics;
use crate::state::SharedState;
use homestead_core::directory::Directory;
use homestead_core::names::{LABEL_DATASET, LABEL_MANAGED};
use homestead_core::resources::{Project, Session, User};

/// Quiet time after a change before the directory is rebuilt, so a burst of events (the
/// initial list, a bulk edit) costs one build.
pub const DEBOUNCE: Duration = Duration::from_millis(200);

/// Readers of the caches.
#[derive(Clone)]
pub struct Caches {
    /// Users.
    pub users: Store<User>,
    /// Sessions.
    pub sessions: Store<Session>,
    /// Projects.
    pub projects: Store<Project>,
    /// Namespaces labelled `homestead.dev/managed=true` (metadata only).
    pub namespaces: Store<PartialObjectMeta<Namespace>>,
    /// Claims labelled `homestead.dev/dataset`.
    pub claims: Store<PersistentVolumeClaim>,
}

impl Caches {
    /// Builds the directory from the caches' current contents; returns it with the number
    /// of objects it had to leave out.
    pub fn directory(&self, state: &SharedState) -> (Directory, usize) {
        let users = self.users.state();
        let sessions = self.sessions.state();
        let projects = self.projects.state();
        let claims = self.claims.state();
        let managed: HashSet<String> = self
            .namespaces
            .state()
            .iter()
            .filter(|ns| ns.metadata.deletion_timestamp.is_none())
            .map(|ns| ns.name_any())
            .collect();
        let (directory, problems) = Directory::build_with_projects(
            &state.config,
            users.iter().map(|u| &**u),
            sessions.iter().map(|s| &**s),
            projects.iter().map(|p| &**p),
            claims.iter().map(|c| &**c),
            Some(&managed),
        );
        for problem in &problems {
            tracing::debug!(%problem, "left out of the directory");
        }
        (directory, problems.len())
    }
}

/// Drops `managedFields` (often the bulk of an object) before an object is cached.
fn prune<K: Resource>(object: &mut K) {
    object.meta_mut().managed_fields = None;
}

/// Feeds a watch stream into a cache and pokes `changed` on every event.
fn reflect<K, S>(
    writer: reflector::store::Writer<K>,
    stream: S,
    changed: Arc<Notify>,
    what: &'static str,
) -> impl std::future::Future<Output = ()> + Send
where
    K: Resource + Clone + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Default,
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
{
    stream
        .default_backoff()
        .modify(prune::<K>)
        .reflect(writer)
        .for_each(move |event| {
            match event {
                Ok(_) => changed.notify_one(),
                Err(e) => tracing::warn!(cache = what, error = %e, "watch failed; retrying"),
            }
            std::future::ready(())
        })
}

/// Starts the caches and the directory rebuild; everything stops when `token` is cancelled.
pub fn start(
    client: Client,
    state: Arc<SharedState>,
    metrics: Metrics,
    token: CancellationToken,
) -> (Caches, tokio::task::JoinHandle<()>) {
    let changed = Arc::new(Notify::new());
    let (users, users_writer) = reflector::store();
    let (sessions, sessions_writer) = reflector::store();
    let (projects, projects_writer) = reflector::store();
    let (namespaces, namespaces_writer) = reflector::store();
    let (claims, claims_writer) = reflector::store();
    let caches = Caches {
        users,
        sessions,
        projects,
        namespaces,
        claims,
    };
    let watchers = futures::future::join5(
        reflect(
            users_writer,
            watcher(Api::<User>::all(client.clone()), watcher::Config::default()),
            changed.clone(),
            "users",
        ),
        reflect(
            sessions_writer,
            watcher(
                Api::<Session>::all(client.clone()),
                watcher::Config::default(),
            ),
            changed.clone(),
            "sessions",
        ),
        reflect(
            projects_writer,
            watcher(
                Api::<Project>::all(client.clone()),
                watcher::Config::default(),
            ),
            changed.clone(),
            "projects",
        ),
        reflect(
            namespaces_writer,
            watcher(
                Api::<PartialObjectMeta<Namespace>>::all(client.clone()),
                watcher::Config::default().labels(&format!("{LABEL_MANAGED}=true")),
            ),
            changed.clone(),
            "namespaces",
        ),
        reflect(
            claims_writer,
            watcher(
                Api::<PersistentVolumeClaim>::all(client),
                watcher::Config::default().labels(LABEL_DATASET),
            ),
            changed.clone(),
            "dataset claims",
        ),
    );
    let rebuild = rebuild_loop(caches.clone(), state, metrics, changed);
    let task_token = token.clone();
    let handle = tokio::spawn(async move {
        tokio::select! {
            _ = task_token.cancelled() => {}
            _ = watchers => {}
            _ = rebuild => {}
        }
    });
    (caches, handle)
}

async fn rebuild_loop(
    caches: Caches,
    state: Arc<SharedState>,
    metrics: Metrics,
    changed: Arc<Notify>,
) {
    let ready = async {
        caches.users.wait_until_ready().await?;
        caches.sessions.wait_until_ready().await?;
        caches.projects.wait_until_ready().await?;
        caches.namespaces.wait_until_ready().await?;
        caches.claims.wait_until_ready().await
    };
    if ready.await.is_err() {
        tracing::error!("a cache stopped before its first sync");
        return;
    }
    loop {
        let (directory, problems) = caches.directory(&state);
        metrics.set_managed("User", caches.users.len());
        metrics.set_managed("Session", caches.sessions.len());
        metrics.set_managed("Project", caches.projects.len());
        metrics.set_managed("Namespace", caches.namespaces.len());
        metrics.set_managed("PersistentVolumeClaim", caches.claims.len());
        metrics
            .directory_problems
            .set(i64::try_from(problems).unwrap_or(i64::MAX));
        tracing::debug!(
            users = directory.user_count(),
            namespaces = directory.namespace_count(),
            problems,
            "directory rebuilt"
        );
        state.directory.store(directory);
        if !state.directory.is_synced() {
            state.directory.mark_synced();
            tracing::info!("caches synced; admission is ready");
        }
        changed.notified().await;
        tokio::time::sleep(DEBOUNCE).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use homestead_core::config::Config;
    use homestead_core::resources::UserSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, Time};
    use kube::api::ObjectMeta;
    use kube::runtime::watcher::Event;

    fn namespace(name: &str, deleting: bool) -> PartialObjectMeta<Namespace> {
        PartialObjectMeta {
            types: None,
            metadata: ObjectMeta {
                name: Some(name.into()),
                deletion_timestamp: deleting
                    .then_some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)),
                ..Default::default()
            },
            _phantom: Default::default(),
        }
    }

    #[test]
    fn the_directory_counts_only_live_managed_namespaces() {
        let (users, mut users_writer) = reflector::store();
        let (sessions, _sessions_writer) = reflector::store::<Session>();
        let (projects, _projects_writer) = reflector::store::<Project>();
        let (namespaces, mut namespaces_writer) = reflector::store();
        let (claims, _claims_writer) = reflector::store::<PersistentVolumeClaim>();
        for name in ["ada", "bob", "eve"] {
            users_writer.apply_watcher_event(&Event::Apply(User::new(
                name,
                UserSpec {
                    username: name.into(),
                    uid: 1000,
                    gid: 1000,
                    ..Default::default()
                },
            )));
        }
        namespaces_writer.apply_watcher_event(&Event::Apply(namespace("home-ada", false)));
        namespaces_writer.apply_watcher_event(&Event::Apply(namespace("home-bob", true)));
        let caches = Caches {
            users,
            sessions,
            projects,
            namespaces,
            claims,
        };
        let state = SharedState::new(Arc::new(Config::default()));
        let (directory, problems) = caches.directory(&state);
        assert_eq!(problems, 0);
        assert_eq!(directory.user_count(), 3);
        assert!(directory.namespace("home-ada").is_some());
        assert!(
            directory.namespace("home-bob").is_none(),
            "a namespace being deleted is no longer managed"
        );
        assert!(
            directory.namespace("home-eve").is_none(),
            "not labelled managed (not yet created, or foreign)"
        );
    }

    #[test]
    fn managed_fields_are_pruned() {
        let mut user = User::new("ada", UserSpec::default());
        user.metadata.managed_fields = Some(vec![ManagedFieldsEntry::default()]);
        prune(&mut user);
        assert!(user.metadata.managed_fields.is_none());
    }
}
