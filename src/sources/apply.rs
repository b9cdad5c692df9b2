//! Listing the objects a source may own, and writing its plan to the cluster with
//! server-side apply.

use std::fmt::Debug;

use anyhow::{Context, Result};
use futures::{StreamExt, stream};
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::Value;

use homestead_core::sources::{Source, SyncPlan};

use super::report::{SyncCounts, SyncReport};

/// Writes in flight at once.
const CONCURRENT_WRITES: usize = 16;
/// Objects per list page.
const LIST_PAGE: u32 = 500;

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

/// Applies a plan as the source's field manager, writing every object even when some fail.
/// `body` is the server-side apply body of an object: only the fields the source owns. The
/// report's `skipped_records` and `details` are the caller's to fill.
pub async fn apply_plan<S>(
    api: &Api<S::Object>,
    plan: &SyncPlan<S::Object>,
    body: fn(&S::Object) -> Result<Value>,
) -> SyncReport<()>
where
    S: Source,
    S::Object: DeserializeOwned + Debug,
{
    #[derive(Clone, Copy)]
    enum Kind {
        Created,
        Updated,
        Retired,
    }
    let kind_name = S::Object::kind(&()).to_string();
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
    let params = PatchParams::apply(S::FIELD_MANAGER).force();
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

    let mut report = SyncReport {
        counts: SyncCounts {
            unchanged: plan.unchanged,
            skipped: plan.skipped.len(),
            retired_as: S::RETIRED_AS,
            ..SyncCounts::default()
        },
        skipped: plan.skipped.clone(),
        ..SyncReport::default()
    };
    for (kind, name, result) in results {
        match result {
            Ok(()) => {
                let counter = match kind {
                    Kind::Created => &mut report.counts.created,
                    Kind::Updated => &mut report.counts.updated,
                    Kind::Retired => &mut report.counts.retired,
                };
                *counter += 1;
                tracing::debug!(object = %name, "applied");
            }
            Err(e) => {
                let error = format!("{e:#}");
                tracing::warn!(object = %name, error = %error, "could not apply");
                report.counts.failed += 1;
                report.failures.push((name, error));
            }
        }
    }
    report
}
