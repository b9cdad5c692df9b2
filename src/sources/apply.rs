//! Writing a source's plan to the cluster with server-side apply.

use std::fmt;
use std::fmt::Debug;

use anyhow::{Context, Result};
use futures::{StreamExt, stream};
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::Value;

use homestead_core::sources::SyncPlan;

/// Writes in flight at once.
const CONCURRENT_WRITES: usize = 16;
/// Objects per list page.
const LIST_PAGE: u32 = 500;

/// What one sync did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Objects created.
    pub created: usize,
    /// Owned objects updated.
    pub updated: usize,
    /// Owned objects retired (Users disabled, Sessions ended) because they left the source.
    pub retired: usize,
    /// Owned objects already right (or held as they are).
    pub unchanged: usize,
    /// Desired objects not applied: bad source data plus names taken by objects managed by
    /// hand.
    pub skipped: usize,
    /// Source records (rows, entries) with bad data.
    pub skipped_records: usize,
    /// Writes that failed (logged one by one).
    pub failed: usize,
    /// The word for `retired` in this source (`disabled`, `ended`).
    pub retired_as: &'static str,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "created {}, updated {}, {} {}, unchanged {}, skipped {}, failed {}",
            self.created,
            self.updated,
            self.retired_as,
            self.retired,
            self.unchanged,
            self.skipped,
            self.failed
        )
    }
}

/// What applying a plan did.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    /// The counts (`skipped_records` is the caller's to fill).
    pub summary: Summary,
    /// Desired objects not applied because an object managed by hand has the name.
    pub skipped: Vec<(String, String)>,
    /// Writes that failed: `(name, error)`.
    pub failures: Vec<(String, String)>,
}

/// Every object of a kind in the cluster, page by page.
pub async fn list_all<K>(api: &Api<K>) -> Result<Vec<K>>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let mut objects = Vec::new();
    let mut params = ListParams::default().limit(LIST_PAGE);
    loop {
        let page = api
            .list(&params)
            .await
            .with_context(|| format!("listing {}s", K::kind(&())))?;
        objects.extend(page.items);
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(objects),
        }
    }
}

/// Applies a plan as `field_manager`, writing every object even when some fail. `body` is
/// the server-side apply body of an object: only the fields the source owns.
pub async fn apply_plan<K>(
    api: &Api<K>,
    plan: &SyncPlan<K>,
    field_manager: &str,
    retired_as: &'static str,
    body: fn(&K) -> Result<Value>,
) -> Applied
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    #[derive(Clone, Copy)]
    enum Kind {
        Created,
        Updated,
        Retired,
    }
    let kind_name = K::kind(&()).to_string();
    // Owned items and a `move` closure keep the future `Send` (borrowing closures inside
    // stream combinators defeat the compiler's Send proof).
    let writes: Vec<(Kind, String, Result<Value>)> = plan
        .create
        .iter()
        .map(|o| (Kind::Created, o))
        .chain(plan.update.iter().map(|o| (Kind::Updated, o)))
        .chain(plan.retire.iter().map(|o| (Kind::Retired, o)))
        .map(|(kind, object)| (kind, object.name_any(), body(object)))
        .collect();
    let params = PatchParams::apply(field_manager).force();
    let results: Vec<(Kind, String, Result<()>)> = stream::iter(writes)
        .map(move |(kind, name, body)| {
            let api = api.clone();
            let params = params.clone();
            let kind_name = kind_name.clone();
            async move {
                let result = match body {
                    Ok(body) => api
                        .patch(&name, &params, &Patch::Apply(body))
                        .await
                        .map(|_| ())
                        .with_context(|| format!("applying {kind_name} {name}")),
                    Err(e) => Err(e),
                };
                (kind, name, result)
            }
        })
        .buffer_unordered(CONCURRENT_WRITES)
        .collect()
        .await;

    let mut applied = Applied {
        summary: Summary {
            unchanged: plan.unchanged,
            skipped: plan.skipped.len(),
            retired_as,
            ..Summary::default()
        },
        skipped: plan.skipped.clone(),
        ..Applied::default()
    };
    for (kind, name, result) in results {
        match result {
            Ok(()) => {
                let counter = match kind {
                    Kind::Created => &mut applied.summary.created,
                    Kind::Updated => &mut applied.summary.updated,
                    Kind::Retired => &mut applied.summary.retired,
                };
                *counter += 1;
                tracing::debug!(object = %name, "applied");
            }
            Err(e) => {
                let error = format!("{e:#}");
                tracing::warn!(object = %name, error = %error, "could not apply");
                applied.summary.failed += 1;
                applied.failures.push((name, error));
            }
        }
    }
    applied
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_reads_well() {
        let s = Summary {
            created: 1,
            updated: 2,
            retired: 3,
            unchanged: 4,
            skipped: 5,
            skipped_records: 6,
            failed: 0,
            retired_as: "ended",
        };
        assert_eq!(
            s.to_string(),
            "created 1, updated 2, ended 3, unchanged 4, skipped 5, failed 0"
        );
    }
}
