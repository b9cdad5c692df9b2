//! The pod index admission reads for `exec`, `attach`, `port-forward` and `proxy`: every
//! pod labelled `homestead.dev/user` (mutation labels every pod of a managed namespace),
//! metadata only, each cut down to its name, namespace and that one label before it is
//! stored. Every replica keeps it, whether or not it leads; admission never calls the API
//! server for it.

use std::collections::BTreeMap;
use std::sync::Mutex;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ObjectMeta};
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, ObjectRef, Store, store::Writer};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use tokio_util::sync::CancellationToken;

use homestead_core::names::LABEL_USER;
use homestead_core::pod_index::PodIndex;

/// A cached pod: its metadata, cut down.
pub type CachedPod = PartialObjectMeta<Pod>;

/// The pod index: a reflector store, and its writer until the watch takes it.
pub struct PodCache {
    store: Store<CachedPod>,
    writer: Mutex<Option<Writer<CachedPod>>>,
}

impl std::fmt::Debug for PodCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PodCache")
            .field("pods", &self.store.len())
            .finish_non_exhaustive()
    }
}

impl Default for PodCache {
    fn default() -> Self {
        let (store, writer) = reflector::store();
        Self {
            store,
            writer: Mutex::new(Some(writer)),
        }
    }
}

impl PodCache {
    /// Number of pods cached.
    pub fn len(&self) -> usize {
        self.store.len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The writer, once (the one watch that fills the cache takes it).
    pub fn take_writer(&self) -> Option<Writer<CachedPod>> {
        self.writer.lock().ok().and_then(|mut w| w.take())
    }
}

impl PodIndex for PodCache {
    fn user_of(&self, namespace: &str, name: &str) -> Option<String> {
        let pod = self.store.get(&ObjectRef::new(name).within(namespace))?;
        pod.labels().get(LABEL_USER).cloned()
    }
}

/// Keeps only what the index reads: name, namespace, the `homestead.dev/user` label (and
/// the resource version the watch resumes from).
pub fn cut_down(pod: &mut CachedPod) {
    let metadata = std::mem::take(&mut pod.metadata);
    let user = metadata
        .labels
        .and_then(|mut labels| labels.remove(LABEL_USER));
    pod.metadata = ObjectMeta {
        name: metadata.name,
        namespace: metadata.namespace,
        resource_version: metadata.resource_version,
        labels: user.map(|user| BTreeMap::from([(LABEL_USER.to_owned(), user)])),
        ..ObjectMeta::default()
    };
}

/// Watches the labelled pods of every namespace into `cache` until `token` is cancelled.
/// Does nothing when the cache's writer was already taken.
pub async fn run(client: Client, cache: &PodCache, token: CancellationToken) {
    let Some(writer) = cache.take_writer() else {
        return;
    };
    let stream = watcher(
        Api::<CachedPod>::all(client),
        watcher::Config::default().labels(LABEL_USER),
    )
    .default_backoff()
    .modify(cut_down)
    .reflect(writer)
    .for_each(|event| {
        if let Err(e) = event {
            tracing::warn!(cache = "pods", error = %e, "watch failed; retrying");
        }
        std::future::ready(())
    });
    tokio::select! {
        _ = token.cancelled() => {}
        _ = stream => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::watcher::Event;

    #[test]
    fn pods_are_cut_down_and_found_by_namespace_and_name() {
        let cache = PodCache::default();
        let mut writer = cache.take_writer().unwrap();
        assert!(cache.take_writer().is_none(), "one writer");
        let mut pod = CachedPod {
            types: None,
            metadata: ObjectMeta {
                name: Some("analysis".into()),
                namespace: Some("cm37235-2".into()),
                labels: Some(BTreeMap::from([
                    (LABEL_USER.to_owned(), "ada".to_owned()),
                    ("app".to_owned(), "x".to_owned()),
                ])),
                annotations: Some(BTreeMap::from([("a".to_owned(), "b".to_owned())])),
                ..ObjectMeta::default()
            },
            _phantom: Default::default(),
        };
        cut_down(&mut pod);
        assert!(pod.metadata.annotations.is_none());
        assert_eq!(pod.metadata.labels.as_ref().map(BTreeMap::len), Some(1));
        writer.apply_watcher_event(&Event::Apply(pod));
        assert_eq!(
            cache.user_of("cm37235-2", "analysis").as_deref(),
            Some("ada")
        );
        assert_eq!(cache.user_of("home-ada", "analysis"), None);
        assert_eq!(cache.user_of("cm37235-2", "other"), None);
        assert_eq!(cache.len(), 1);
    }
}
