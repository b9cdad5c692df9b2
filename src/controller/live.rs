//! What the cluster holds of the objects homestead made, as the reconcilers compare with
//! it: fed by the same watches that trigger reconciles (one watch per kind), each object
//! [`reduce`]d to what an intent can set and kept as compact JSON, keyed by
//! [`ObjectKey`]. A reconcile waits until every kind has listed once, then reads here
//! instead of asking the API server, and applies only what differs
//! ([`homestead_core::desired::is_met`]).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use futures::{Stream, TryStreamExt};
use kube::Resource;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::watch;

use homestead_core::desired::{Kind, ObjectKey, reduce};

/// Live copies of one owner kind's objects; cheap to clone (every handle shares them).
#[derive(Clone)]
pub struct Live {
    inner: Arc<RwLock<Inner>>,
    synced: watch::Sender<usize>,
}

#[derive(Default)]
struct Inner {
    objects: HashMap<ObjectKey, Arc<str>>,
    /// Objects of a kind being listed afresh (swapped in when the list is done).
    listing: HashMap<Kind, HashMap<ObjectKey, Arc<str>>>,
    /// Kinds that have listed at least once.
    listed: HashSet<Kind>,
}

impl Live {
    /// An empty store that is ready once `kinds` kinds have listed.
    pub fn new(kinds: usize) -> Self {
        let (synced, _) = watch::channel(kinds);
        Self {
            inner: Arc::default(),
            synced,
        }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits until every kind has listed once.
    pub async fn ready(&self) {
        let mut rx = self.synced.subscribe();
        let _ = rx.wait_for(|pending| *pending == 0).await;
    }

    /// The reduced live object, if it exists.
    pub fn get(&self, key: &ObjectKey) -> Option<Value> {
        let text = self.read().objects.get(key).cloned()?;
        serde_json::from_str(&text).ok()
    }

    /// The live object as `T`, if it exists (only the fields [`reduce`] keeps are set).
    pub fn get_as<T: DeserializeOwned>(&self, key: &ObjectKey) -> Option<T> {
        serde_json::from_value(self.get(key)?).ok()
    }

    /// Keys of every live object of `kind` in `namespace`.
    pub fn keys(&self, kind: Kind, namespace: &str) -> Vec<ObjectKey> {
        self.read()
            .objects
            .keys()
            .filter(|k| k.kind == kind && k.namespace.as_deref() == Some(namespace))
            .cloned()
            .collect()
    }

    /// How many objects are held.
    pub fn len(&self) -> usize {
        self.read().objects.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Applies one watch event of `kind`.
    pub fn observe<K: Resource + Serialize>(&self, kind: Kind, event: &watcher::Event<K>) {
        let entry = |object: &K| {
            let key = ObjectKey {
                kind,
                namespace: object.meta().namespace.clone(),
                name: object.meta().name.clone().unwrap_or_default(),
            };
            let mut value = serde_json::to_value(object).ok()?;
            reduce(&mut value);
            Some((key, Arc::<str>::from(value.to_string())))
        };
        let mut inner = self.write();
        match event {
            watcher::Event::Init => {
                inner.listing.insert(kind, HashMap::new());
            }
            watcher::Event::InitApply(object) => {
                if let Some((key, value)) = entry(object) {
                    inner.listing.entry(kind).or_default().insert(key, value);
                }
            }
            watcher::Event::InitDone => {
                let listed = inner.listing.remove(&kind).unwrap_or_default();
                inner.objects.retain(|k, _| k.kind != kind);
                inner.objects.extend(listed);
                if inner.listed.insert(kind) {
                    self.synced
                        .send_modify(|pending| *pending = pending.saturating_sub(1));
                }
            }
            watcher::Event::Apply(object) => {
                if let Some((key, value)) = entry(object) {
                    inner.objects.insert(key, value);
                }
            }
            watcher::Event::Delete(object) => {
                if let Some((key, _)) = entry(object) {
                    inner.objects.remove(&key);
                }
            }
        }
    }

    /// Holds exactly `objects` (reduced as a watch would) and counts every kind as listed:
    /// the state a reconcile sees once the watches have synced.
    #[cfg(test)]
    pub(crate) fn synced_with(&self, objects: impl IntoIterator<Item = (ObjectKey, Value)>) {
        let mut inner = self.write();
        inner.objects = objects
            .into_iter()
            .map(|(key, mut value)| {
                reduce(&mut value);
                (key, Arc::<str>::from(value.to_string()))
            })
            .collect();
        self.synced.send_replace(0);
    }

    /// Watches `api` (selected by `config`), keeping this store current, and yields every
    /// object touched (applied or deleted), for a controller to map to its owner.
    pub fn watch<K>(
        &self,
        kind: Kind,
        api: Api<K>,
        config: watcher::Config,
    ) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static
    where
        K: Resource
            + Clone
            + std::fmt::Debug
            + DeserializeOwned
            + Serialize
            + Send
            + Sync
            + 'static,
    {
        let live = self.clone();
        watcher(api, config)
            .default_backoff()
            .map_ok(move |event| {
                live.observe(kind, &event);
                event
            })
            .touched_objects()
    }
}
