//! State shared between the admission server and the controller: the configuration and
//! the directory, swapped atomically as the controller's caches change. Admission reads
//! it lock-free on every request and never waits for the controller.

use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::watch;

use homestead_core::config::Config;
use homestead_core::directory::Directory;

use crate::controller::pods::PodCache;

/// The directory admission decides from, replaced whole when its sources change.
#[derive(Debug)]
pub struct DirectoryHandle {
    current: ArcSwap<Directory>,
    synced: watch::Sender<bool>,
}

impl DirectoryHandle {
    /// An empty directory that is not yet synced.
    pub fn new() -> Self {
        Self {
            current: ArcSwap::from_pointee(Directory::default()),
            synced: watch::Sender::new(false),
        }
    }

    /// A directory that is complete from the start (offline use).
    pub fn loaded(directory: Directory) -> Self {
        let handle = Self::new();
        handle.store(directory);
        handle.mark_synced();
        handle
    }

    /// The current directory.
    pub fn load(&self) -> Arc<Directory> {
        self.current.load_full()
    }

    /// Replaces the directory; requests already running keep the one they loaded.
    pub fn store(&self, directory: Directory) {
        self.current.store(Arc::new(directory));
    }

    /// Records that the directory reflects a full sync of its sources.
    pub fn mark_synced(&self) {
        self.synced.send_replace(true);
    }

    /// True once the directory reflects a full sync (readiness waits for this).
    pub fn is_synced(&self) -> bool {
        *self.synced.borrow()
    }

    /// Completes once the directory reflects a full sync of its sources.
    pub async fn wait_synced(&self) {
        // The sender lives in `self`, so the channel cannot close while this waits.
        let _ = self.synced.subscribe().wait_for(|synced| *synced).await;
    }
}

impl Default for DirectoryHandle {
    fn default() -> Self {
        Self::new()
    }
}

/// Everything admission needs, shared by every connection.
#[derive(Debug)]
pub struct SharedState {
    /// The configuration (fixed for the life of the process).
    pub config: Arc<Config>,
    /// The directory.
    pub directory: DirectoryHandle,
    /// Which User each labelled pod runs as (filled by the controller's pod watch; empty
    /// offline).
    pub pods: PodCache,
}

impl SharedState {
    /// State for `config` with an empty, unsynced directory and no pods.
    pub fn new(config: Arc<Config>) -> Arc<Self> {
        Arc::new(Self {
            config,
            directory: DirectoryHandle::new(),
            pods: PodCache::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_replaces_and_sync_is_sticky() {
        let handle = DirectoryHandle::new();
        assert!(!handle.is_synced());
        let before = handle.load();
        handle.store(Directory::default());
        assert!(!Arc::ptr_eq(&before, &handle.load()));
        handle.mark_synced();
        assert!(handle.is_synced());
    }
}
