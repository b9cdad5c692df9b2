//! Which `User` each pod of the managed namespaces runs as, for the requests that carry no
//! pod: `exec`, `attach`, `port-forward` and `proxy` (their review holds only the options).
//! Mutation labels every pod `homestead.dev/user=<User object name>`; the shell keeps a
//! metadata-only cache of those labels and admission reads it through [`PodIndex`],
//! without calling the API server.

use std::collections::HashMap;

/// A read-only lookup of the `homestead.dev/user` label of pods.
pub trait PodIndex: Send + Sync {
    /// The `homestead.dev/user` label of pod `name` in `namespace`; `None` when the pod is
    /// not known (not cached yet, gone, or never labelled).
    fn user_of(&self, namespace: &str, name: &str) -> Option<String>;
}

/// A fixed index: offline reviews and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodUsers {
    users: HashMap<(String, String), String>,
}

impl PodUsers {
    /// An index of `(namespace, pod, user)` entries.
    pub fn new<'a>(entries: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>) -> Self {
        Self {
            users: entries
                .into_iter()
                .map(|(ns, pod, user)| ((ns.to_owned(), pod.to_owned()), user.to_owned()))
                .collect(),
        }
    }
}

impl PodIndex for PodUsers {
    fn user_of(&self, namespace: &str, name: &str) -> Option<String> {
        self.users
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
    }
}
